import assert from "node:assert/strict";
import fc from "fast-check";
import {
  decodePositionBatch,
  encodePositionBatch,
  POSITION_BATCH_TYPE,
  PositionBatchError,
  type PositionBounds,
  positionPrecision,
} from "../shared/protocol/position_batch.ts";
import type { MoveState } from "../shared/protocol/move_state.ts";

/** Reads every `Quantized vector: <label>` of docs/PROTOCOL.md and its hex block. */
function quantizedVectors(markdown: string): Map<string, Uint8Array> {
  const lines = markdown.split("\n");
  const out = new Map<string, Uint8Array>();
  for (let i = 0; i < lines.length; i++) {
    const head = /^Quantized vector: (\S+ \S+)/.exec(lines[i]);
    if (head === null) continue;
    let j = i + 1;
    while (j < lines.length && lines[j] !== "```hex") j++;
    const hex: string[] = [];
    for (j++; j < lines.length && lines[j] !== "```"; j++) hex.push(lines[j]);
    out.set(head[1], Uint8Array.fromHex(hex.join("").replace(/\s+/g, "")));
    i = j;
  }
  return out;
}

const markdown = await Deno.readTextFile(new URL("../docs/PROTOCOL.md", import.meta.url));
const vectors = quantizedVectors(markdown);

Deno.test("PROTOCOL.md's PositionBatch vectors encode and decode as documented", () => {
  assert.equal(vectors.size, 2);
  const wide: PositionBounds = { minX: 0, minZ: 0, maxX: 2048, maxZ: 2048 };
  const frame = vectors.get("PositionBatch over")!;
  const payload = encodePositionBatch([
    { clientId: 7, state: { x: 1024, y: 2, z: 512, yaw: Math.PI / 2 } },
    { clientId: 9, state: { x: 0, y: -1.5, z: 2048 } },
  ], wide);
  assert.equal(new DataView(frame.buffer).getUint32(0), payload.length + 1);
  assert.equal(frame[4], POSITION_BATCH_TYPE);
  assert.deepEqual(frame.subarray(5), payload);
  const [a, b] = decodePositionBatch(frame.subarray(5), wide);
  assert.equal(a.clientId, 7);
  assert.ok(Math.abs(a.state.x - 1024) <= positionPrecision(wide).x);
  assert.equal(a.state.z, 512.0078126192111);
  assert.deepEqual([a.state.y, a.state.yaw], [2, Math.PI / 2]);
  assert.deepEqual(b, { clientId: 9, state: { x: 0, y: -1.5, z: 2048, yaw: 0 } });

  const small: PositionBounds = { minX: -100, minZ: -50, maxX: 100, maxZ: 50 };
  const bytes = vectors.get("PositionBatch payload")!;
  assert.deepEqual(
    encodePositionBatch([{
      clientId: 0x01020304,
      state: { x: 33.3, y: 1000, z: -49.99, yaw: -Math.PI / 4, vx: 1, vy: 2, vz: 3 },
    }], small),
    bytes,
  );
  const [c] = decodePositionBatch(bytes, small);
  assert.equal(c.clientId, 0x01020304);
  assert.equal(c.state.x.toFixed(4), "33.2998");
  assert.equal(c.state.z.toFixed(4), "-49.9893");
  assert.equal(c.state.y, 1000);
  assert.equal(c.state.yaw, 7 * Math.PI / 4);
});

Deno.test("PositionBatch round-trips every state within the stated precision", () => {
  const bounds: PositionBounds = { minX: -300, minZ: 10, maxX: 1748, maxZ: 2058 };
  const p = positionPrecision(bounds);
  const state = fc.record({
    x: fc.double({ min: -300, max: 1748, noNaN: true }),
    y: fc.double({ min: -1023.98, max: 1023.96, noNaN: true }),
    z: fc.double({ min: 10, max: 2058, noNaN: true }),
    yaw: fc.double({ min: -20, max: 20, noNaN: true }),
  });
  fc.assert(fc.property(fc.array(state, { maxLength: 50 }), (states: MoveState[]) => {
    const entries = states.map((s, i) => ({ clientId: i * 7919, state: s }));
    const decoded = decodePositionBatch(encodePositionBatch(entries, bounds), bounds);
    assert.equal(decoded.length, states.length);
    decoded.forEach((d, i) => {
      const s = states[i];
      assert.equal(d.clientId, i * 7919);
      assert.ok(Math.abs(d.state.x - s.x) <= p.x + 1e-9, `x ${s.x} → ${d.state.x}`);
      assert.ok(Math.abs(d.state.z - s.z) <= p.z + 1e-9);
      assert.ok(Math.abs(d.state.y - s.y) <= p.y + 1e-9, `y ${s.y} → ${d.state.y}`);
      const gap = Math.abs(d.state.yaw - (s.yaw ?? 0)) % (2 * Math.PI);
      assert.ok(Math.min(gap, 2 * Math.PI - gap) <= p.yaw + 1e-9);
    });
  }));
});

Deno.test("a PositionBatch whose length does not match its count is refused", () => {
  const bounds: PositionBounds = { minX: 0, minZ: 0, maxX: 1, maxZ: 1 };
  assert.throws(() => decodePositionBatch(new Uint8Array([0]), bounds), PositionBatchError);
  assert.throws(
    () => decodePositionBatch(new Uint8Array([0, 1, 0, 0, 0]), bounds),
    /does not hold 1 entries/,
  );
  assert.deepEqual(decodePositionBatch(new Uint8Array([0, 0]), bounds), []);
});

Deno.test('config: position_format = "quantized" without bounds names both keys; with bounds it reaches the grid', async () => {
  const { parseConfig } = await import("../shared/config_schema.ts");
  const { clusterOptionsFromConfig } = await import("../cluster/cluster_options.ts");
  assert.throws(
    () => parseConfig('[cluster.fragments]\nenabled = true\nposition_format = "quantized"\n'),
    /cluster\.fragments\.position_format[\s\S]*cluster\.fragments\.bounds|cluster\.fragments\.bounds[\s\S]*cluster\.fragments\.position_format/,
  );
  const config = parseConfig(
    '[cluster.fragments]\nenabled = true\nbounds = [0, 0, 2048, 2048]\nposition_format = "quantized"\n',
  );
  assert.equal(config.cluster.fragments.positionFormat, "quantized");
  const fragments = clusterOptionsFromConfig(config).fragments;
  assert.ok(fragments !== false && fragments !== undefined);
  assert.equal(fragments.positionFormat, "quantized");
});
