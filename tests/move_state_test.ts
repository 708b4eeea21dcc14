import assert from "node:assert/strict";
import {
  MOVE_FLAG_VELOCITY,
  MOVE_FLAG_YAW,
  MOVE_STATE_MAX_SIZE,
  MOVE_STATE_MIN_SIZE,
  type MoveState,
  moveStateFlags,
  moveStateSize,
  readMoveState,
  writeMoveState,
} from "../shared/protocol/move_state.ts";

function encode(s: MoveState): Uint8Array {
  const bytes = new Uint8Array(moveStateSize(s));
  const end = writeMoveState(new DataView(bytes.buffer), 0, s);
  assert.equal(end, bytes.length);
  return bytes;
}

Deno.test("each optional part round trips and sets its flag", () => {
  const cases: readonly [MoveState, number, number][] = [
    [{ x: 1, y: 2, z: 3 }, 0, 13],
    [{ x: 1, y: 2, z: 3, yaw: 0.5 }, MOVE_FLAG_YAW, 17],
    [{ x: 1, y: 2, z: 3, vx: 4, vy: 5, vz: 6 }, MOVE_FLAG_VELOCITY, 25],
    [{ x: 1, y: 2, z: 3, yaw: -1, vx: 4, vy: 5, vz: 6 }, MOVE_FLAG_YAW | MOVE_FLAG_VELOCITY, 29],
  ];
  for (const [state, flags, size] of cases) {
    assert.equal(moveStateFlags(state), flags);
    assert.equal(moveStateSize(state), size);
    const bytes = encode(state);
    assert.equal(bytes[0], flags);
    assert.deepEqual(readMoveState(new DataView(bytes.buffer), 0), { state, offset: size });
  }
  assert.equal(MOVE_STATE_MIN_SIZE, 13);
  assert.equal(MOVE_STATE_MAX_SIZE, 29);
});

Deno.test("the encoding matches the protocol layout byte for byte", () => {
  const bytes = encode({ x: 1, y: -2, z: 0.5, yaw: 0, vx: 1, vy: 0, vz: -1 });
  assert.equal(
    bytes.toHex(),
    "03" + "3f800000" + "c0000000" + "3f000000" + "00000000" + "3f800000" + "00000000" +
      "bf800000",
  );
});

Deno.test("a partial velocity is not encoded at all", () => {
  const state: MoveState = { x: 0, y: 0, z: 0, vx: 1, vz: 2 };
  const bytes = encode(state);
  assert.equal(bytes.length, 13);
  assert.deepEqual(readMoveState(new DataView(bytes.buffer), 0)?.state, { x: 0, y: 0, z: 0 });
});

Deno.test("values are rounded to f32 and NaN/Infinity pass through unvalidated", () => {
  const bytes = encode({ x: 0.1, y: NaN, z: Infinity, yaw: -Infinity });
  const back = readMoveState(new DataView(bytes.buffer), 0)?.state;
  assert.ok(back);
  assert.equal(back.x, Math.fround(0.1));
  assert.ok(Number.isNaN(back.y));
  assert.equal(back.z, Infinity);
  assert.equal(back.yaw, -Infinity);
});

Deno.test("reading at an offset inside a larger buffer returns the next offset", () => {
  const bytes = new Uint8Array(5 + 29 + 13);
  const view = new DataView(bytes.buffer);
  const a: MoveState = { x: 1, y: 1, z: 1, yaw: 2, vx: 3, vy: 4, vz: 5 };
  const b: MoveState = { x: 9, y: 8, z: 7 };
  const mid = writeMoveState(view, 5, a);
  assert.equal(writeMoveState(view, mid, b), bytes.length);
  const first = readMoveState(view, 5);
  assert.deepEqual(first, { state: a, offset: 34 });
  assert.deepEqual(readMoveState(view, first.offset), { state: b, offset: 47 });
});

Deno.test("every truncation of a valid state decodes to undefined", () => {
  const bytes = encode({ x: 1, y: 2, z: 3, yaw: 4, vx: 5, vy: 6, vz: 7 });
  for (let len = 0; len < bytes.length; len++) {
    assert.equal(readMoveState(new DataView(bytes.buffer, 0, len), 0), undefined, `len ${len}`);
  }
  assert.equal(readMoveState(new DataView(bytes.buffer), 1), undefined);
  assert.equal(readMoveState(new DataView(bytes.buffer), -1), undefined);
});

Deno.test("any unknown flag bit is a decode error", () => {
  for (let bit = 2; bit < 8; bit++) {
    const bytes = new Uint8Array(29);
    bytes[0] = 1 << bit;
    assert.equal(readMoveState(new DataView(bytes.buffer), 0), undefined, `bit ${bit}`);
    bytes[0] = (1 << bit) | MOVE_FLAG_YAW | MOVE_FLAG_VELOCITY;
    assert.equal(readMoveState(new DataView(bytes.buffer), 0), undefined, `bit ${bit} + known`);
  }
});

Deno.test("writing without room throws RangeError and writes nothing", () => {
  const bytes = new Uint8Array(16);
  const view = new DataView(bytes.buffer);
  assert.throws(() => writeMoveState(view, 0, { x: 1, y: 1, z: 1, yaw: 1 }), RangeError);
  assert.throws(() => writeMoveState(view, 4, { x: 1, y: 1, z: 1 }), RangeError);
  assert.throws(() => writeMoveState(view, -1, { x: 1, y: 1, z: 1 }), RangeError);
  assert.ok(bytes.every((b) => b === 0));
});
