import assert from "node:assert/strict";
import fc from "fast-check";
import { WebSocketUnframeError, WebSocketUnframer } from "../websocket_unframer.ts";

/** An unmasked server frame (`first`: FIN and opcode) in the shortest length form. */
function serverFrame(first: number, payload: Uint8Array): Uint8Array {
  const n = payload.length;
  const head = n < 126 ? [first, n] : n < 65536 ? [first, 126, n >>> 8, n & 0xff] : [
    first,
    127,
    0,
    0,
    0,
    0,
    n >>> 24,
    (n >>> 16) & 0xff,
    (n >>> 8) & 0xff,
    n & 0xff,
  ];
  const frame = new Uint8Array(head.length + n);
  frame.set(head);
  frame.set(payload, head.length);
  return frame;
}

/** Feeds `stream` cut at `cuts` through a fresh unframer (each chunk its own buffer). */
function unframeAll(stream: Uint8Array, cuts: readonly number[]) {
  const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
  const unframer = new WebSocketUnframer();
  const data: number[] = [];
  const controls: { opcode: number; payload: number[] }[] = [];
  let start = 0;
  for (const p of [...points, stream.length]) {
    const chunk = stream.slice(start, p);
    const n = unframer.unframe(chunk, chunk.length);
    data.push(...chunk.subarray(0, n));
    for (const c of unframer.takeControls()) {
      controls.push({ opcode: c.opcode, payload: [...c.payload] });
    }
    start = p;
  }
  return { data, controls };
}

Deno.test("data payloads come out whole and in order, controls apart, however the stream is cut", () => {
  fc.assert(fc.property(
    fc.array(
      fc.oneof(
        fc.record({
          opcode: fc.constantFrom(0x1, 0x2),
          payload: fc.uint8Array({ maxLength: 300 }),
        }),
        fc.record({
          opcode: fc.constantFrom(0x8, 0x9, 0xa),
          payload: fc.uint8Array({ maxLength: 125 }),
        }),
      ),
      { maxLength: 12 },
    ),
    fc.array(fc.nat(), { maxLength: 30 }),
    (frames, cuts) => {
      const encoded = frames.map((f) => serverFrame(0x80 | f.opcode, f.payload));
      const stream = new Uint8Array(encoded.reduce((n, f) => n + f.length, 0));
      let offset = 0;
      for (const f of encoded) {
        stream.set(f, offset);
        offset += f.length;
      }
      const { data, controls } = unframeAll(stream, cuts);
      assert.deepEqual(data, frames.filter((f) => f.opcode < 8).flatMap((f) => [...f.payload]));
      assert.deepEqual(
        controls,
        frames.filter((f) => f.opcode >= 8).map((f) => ({
          opcode: f.opcode,
          payload: [...f.payload],
        })),
      );
    },
  ));
});

Deno.test("the 16-bit and 64-bit length forms and a message split into continuation frames", () => {
  const big = new Uint8Array(70_000).map((_, i) => i & 0xff);
  const mid = new Uint8Array(300).fill(7);
  const stream = [
    serverFrame(0x82, big),
    serverFrame(0x02, mid), // binary, not final
    serverFrame(0x80, mid), // its continuation
  ];
  const all = new Uint8Array(stream.reduce((n, f) => n + f.length, 0));
  let offset = 0;
  for (const f of stream) {
    all.set(f, offset);
    offset += f.length;
  }
  assert.equal(stream[0][1], 127);
  assert.equal(stream[1][1], 126);
  const { data } = unframeAll(all, [1, 5, 9, 70_011, 70_012]);
  assert.deepEqual(data, [...big, ...mid, ...mid]);
});

Deno.test("a masked server frame, a reserved opcode, a long or fragmented control frame are refused", () => {
  const cases: [string, number[]][] = [
    ["masked", [0x82, 0x81, 0, 0, 0, 0, 1]],
    ["opcode 3", [0x83, 0x00]],
    ["opcode 11", [0x8b, 0x00]],
    ["RSV1", [0xc2, 0x00]],
    ["ping over 125", [0x89, 126, 0, 126]],
    ["fragmented ping", [0x09, 0x00]],
  ];
  for (const [label, bytes] of cases) {
    const buffer = new Uint8Array(bytes);
    assert.throws(
      () => new WebSocketUnframer().unframe(buffer, buffer.length),
      (error: unknown) =>
        error instanceof WebSocketUnframeError && error.code === "websocket_framing",
      label,
    );
  }
});
