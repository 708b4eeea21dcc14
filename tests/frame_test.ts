import assert from "node:assert/strict";
import fc from "fast-check";
import {
  DEFAULT_MAX_FRAME_BYTES,
  encodeFrame,
  type Frame,
  FrameDecoder,
} from "../shared/protocol/frame.ts";
import { ErrorCode, ProtocolError } from "../shared/protocol/protocol_error.ts";
import { concatBytes as concat } from "./_bytes.ts";

/** Drains every available frame; fails the test on a protocol error. */
function drain(decoder: FrameDecoder): Frame[] {
  const frames: Frame[] = [];
  for (let f = decoder.next(); f !== undefined; f = decoder.next()) {
    if (f instanceof ProtocolError) throw f;
    // Copy: payload views are only valid until the next push.
    frames.push({ type: f.type, payload: f.payload.slice() });
  }
  return frames;
}

function expectError(result: Frame | ProtocolError | undefined, code: ErrorCode): ProtocolError {
  assert.ok(result instanceof ProtocolError, `expected a ProtocolError, got ${String(result)}`);
  assert.equal(result.errorCode, code);
  return result;
}

Deno.test("encodeFrame writes the length, the type and the payload", () => {
  assert.equal(encodeFrame(0x10, new Uint8Array()).toHex(), "0000000110");
  assert.equal(encodeFrame(0xff, new Uint8Array([1, 2])).toHex(), "00000003ff0102");
});

Deno.test("encodeFrame rejects a type that is not a byte", () => {
  for (const type of [-1, 256, 1.5, Number.NaN]) {
    assert.throws(() => encodeFrame(type, new Uint8Array()), RangeError);
  }
});

Deno.test("the decoder rejects a maxFrameBytes that is not a positive u32", () => {
  for (const maxFrameBytes of [0, -1, 1.5, 2 ** 32, Number.NaN]) {
    assert.throws(() => new FrameDecoder({ maxFrameBytes }), RangeError);
  }
  assert.equal(DEFAULT_MAX_FRAME_BYTES, 65536);
});

Deno.test("a frame within one chunk is returned as a view of that chunk", () => {
  const chunk = concat([encodeFrame(1, new Uint8Array([7, 7])), encodeFrame(2, new Uint8Array())]);
  const decoder = new FrameDecoder();
  decoder.push(chunk);
  const first = decoder.next();
  assert.ok(first !== undefined && !(first instanceof ProtocolError));
  assert.equal(first.payload.buffer, chunk.buffer);
  assert.equal(first.payload.byteOffset, 5);
  assert.deepEqual([...first.payload], [7, 7]);
  const second = decoder.next();
  assert.ok(second !== undefined && !(second instanceof ProtocolError));
  assert.equal(second.type, 2);
  assert.equal(second.payload.length, 0);
  assert.equal(decoder.next(), undefined);
  assert.equal(decoder.bufferedBytes, 0);
});

Deno.test("a frame split across chunks is copied into an array of exactly its size", () => {
  const frame = encodeFrame(9, new Uint8Array(100).fill(5));
  const decoder = new FrameDecoder();
  decoder.push(frame.subarray(0, 2));
  assert.equal(decoder.next(), undefined);
  decoder.push(frame.subarray(2, 50));
  assert.equal(decoder.next(), undefined);
  assert.equal(decoder.bufferedBytes, 50);
  decoder.push(frame.subarray(50));
  const f = decoder.next();
  assert.ok(f !== undefined && !(f instanceof ProtocolError));
  assert.equal(f.type, 9);
  assert.equal(f.payload.length, 100);
  assert.equal(f.payload.buffer.byteLength, 101);
  assert.ok(f.payload.every((b) => b === 5));
});

Deno.test("one-byte chunks decode to the same frames", () => {
  const frames = [
    encodeFrame(1, new Uint8Array([1, 2, 3])),
    encodeFrame(0x80, new Uint8Array()),
    encodeFrame(3, new Uint8Array(300).fill(3)),
  ];
  const bytes = concat(frames);
  const decoder = new FrameDecoder();
  const out: Frame[] = [];
  for (let i = 0; i < bytes.length; i++) {
    decoder.push(bytes.subarray(i, i + 1));
    out.push(...drain(decoder));
  }
  assert.deepEqual(out.map((f) => f.type), [1, 0x80, 3]);
  assert.deepEqual([...out[0].payload], [1, 2, 3]);
  assert.equal(out[2].payload.length, 300);
});

Deno.test("after next() returns undefined the caller may reuse its read buffer", () => {
  const bytes = encodeFrame(4, new Uint8Array([10, 20, 30, 40]));
  const readBuffer = new Uint8Array(6);
  const decoder = new FrameDecoder();
  readBuffer.set(bytes.subarray(0, 6));
  decoder.push(readBuffer);
  assert.equal(decoder.next(), undefined);
  readBuffer.fill(0xee); // the next read overwrites the buffer
  readBuffer.set(bytes.subarray(6), 0);
  decoder.push(readBuffer.subarray(0, bytes.length - 6));
  const f = decoder.next();
  assert.ok(f !== undefined && !(f instanceof ProtocolError));
  assert.deepEqual([...f.payload], [10, 20, 30, 40]);
});

Deno.test("several pushes before next() keep every byte in order", () => {
  const decoder = new FrameDecoder();
  const a = encodeFrame(1, new Uint8Array([1]));
  const b = encodeFrame(2, new Uint8Array([2, 2]));
  const bytes = concat([a, b]);
  decoder.push(bytes.subarray(0, 3));
  decoder.push(bytes.subarray(3, 8));
  decoder.push(bytes.subarray(8));
  assert.equal(decoder.bufferedBytes, bytes.length);
  const out = drain(decoder);
  assert.deepEqual(out.map((f) => [f.type, ...f.payload]), [[1, 1], [2, 2, 2]]);
});

Deno.test("random chunkings of random frames decode to the same frames", () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          type: fc.integer({ min: 0, max: 255 }),
          payload: fc.uint8Array({ maxLength: 300 }),
        }),
        { maxLength: 20 },
      ),
      fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 50 }),
      (frames, cuts) => {
        const bytes = concat(frames.map((f) => encodeFrame(f.type, f.payload)));
        const decoder = new FrameDecoder({ maxFrameBytes: 301 });
        const out: Frame[] = [];
        let at = 0;
        for (let i = 0; at < bytes.length; i++) {
          const size = cuts[i % cuts.length];
          decoder.push(bytes.subarray(at, at + size));
          at += size;
          out.push(...drain(decoder));
        }
        assert.equal(decoder.bufferedBytes, 0);
        assert.deepEqual(
          out.map((f) => [f.type, [...f.payload]]),
          frames.map((f) => [f.type, [...f.payload]]),
        );
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("a length of 0 is BadFrame", () => {
  const decoder = new FrameDecoder();
  decoder.push(new Uint8Array([0, 0, 0, 0, 1, 2]));
  expectError(decoder.next(), ErrorCode.BadFrame);
});

Deno.test("an oversize length fails from the header alone, before any payload is buffered", () => {
  const decoder = new FrameDecoder({ maxFrameBytes: 100 });
  decoder.push(new Uint8Array([0, 0, 0, 101]));
  const err = expectError(decoder.next(), ErrorCode.FrameTooLarge);
  assert.equal(err.code, "frame_too_large");
  assert.equal(decoder.bufferedBytes, 4);
});

Deno.test("an oversize length split over one-byte chunks fails as soon as it is complete", () => {
  const decoder = new FrameDecoder();
  const header = [0x7f, 0xff, 0xff, 0xff];
  for (let i = 0; i < 3; i++) {
    decoder.push(new Uint8Array([header[i]]));
    assert.equal(decoder.next(), undefined);
  }
  decoder.push(new Uint8Array([header[3]]));
  expectError(decoder.next(), ErrorCode.FrameTooLarge);
  assert.equal(decoder.bufferedBytes, 4);
});

Deno.test("a frame of exactly maxFrameBytes is accepted and one byte more is not", () => {
  const ok = new FrameDecoder({ maxFrameBytes: 10 });
  ok.push(encodeFrame(1, new Uint8Array(9)));
  const f = ok.next();
  assert.ok(f !== undefined && !(f instanceof ProtocolError));
  assert.equal(f.payload.length, 9);
  const tooBig = new FrameDecoder({ maxFrameBytes: 10 });
  tooBig.push(encodeFrame(1, new Uint8Array(10)));
  expectError(tooBig.next(), ErrorCode.FrameTooLarge);
});

Deno.test("a failed decoder stays failed and ignores further bytes", () => {
  const decoder = new FrameDecoder();
  decoder.push(new Uint8Array([0, 0, 0, 0]));
  const err = expectError(decoder.next(), ErrorCode.BadFrame);
  decoder.push(encodeFrame(1, new Uint8Array()));
  assert.equal(decoder.bufferedBytes, 4);
  assert.equal(decoder.next(), err);
  assert.equal(decoder.error, err);
});

Deno.test("frames before a bad length are still returned", () => {
  const decoder = new FrameDecoder();
  decoder.push(concat([encodeFrame(5, new Uint8Array([1, 2, 3, 4])), new Uint8Array(4)]));
  const f = decoder.next();
  assert.ok(f !== undefined && !(f instanceof ProtocolError));
  assert.equal(f.type, 5);
  expectError(decoder.next(), ErrorCode.BadFrame);
});

Deno.test("takeRemainder returns the bytes after the last frame, partial frames included", () => {
  const switchFrame = encodeFrame(0x24, new Uint8Array(33));
  const record = new Uint8Array([0, 0, 0, 20, 1, 2, 3]);
  const bytes = concat([switchFrame, record]);
  for (let cut = 0; cut <= bytes.length; cut++) {
    const decoder = new FrameDecoder();
    decoder.push(bytes.subarray(0, cut));
    const before = drain(decoder);
    decoder.push(bytes.subarray(cut));
    const frames = [...before, ...drain(decoder)];
    assert.equal(frames.length, 1);
    assert.equal(frames[0].type, 0x24);
    // The record header looks like a partial frame to the decoder: all of it comes back.
    assert.deepEqual([...decoder.takeRemainder()], [...record]);
    assert.equal(decoder.bufferedBytes, 0);
    assert.equal(decoder.next(), undefined);
  }
});

Deno.test("takeRemainder keeps a partial frame's header and body in order", () => {
  const bytes = concat([encodeFrame(1, new Uint8Array([1, 2, 3, 4, 5])), new Uint8Array([9])]);
  const decoder = new FrameDecoder();
  decoder.push(bytes.subarray(0, 2));
  assert.equal(decoder.next(), undefined);
  decoder.push(bytes.subarray(2, 7));
  assert.equal(decoder.next(), undefined);
  decoder.push(bytes.subarray(7));
  decoder.push(new Uint8Array()); // empty chunks are ignored
  assert.equal(decoder.bufferedBytes, bytes.length);
  assert.deepEqual([...decoder.takeRemainder()], [...bytes]);
  assert.equal(decoder.takeRemainder().length, 0);
});

Deno.test("takeRemainder still returns a record that next() mistook for an oversize frame", () => {
  const record = new Uint8Array([0, 0x10, 0, 0, 1, 2, 3]); // 1 MiB record length
  for (let cut = 0; cut <= record.length; cut++) {
    const decoder = new FrameDecoder();
    decoder.push(record.subarray(0, cut));
    const first = decoder.next();
    decoder.push(record.subarray(cut));
    const second = first instanceof ProtocolError ? first : decoder.next();
    expectError(second, ErrorCode.FrameTooLarge);
    const remainder = decoder.takeRemainder();
    // Bytes pushed after the failure are ignored; everything pushed before is returned.
    const kept = cut >= 4 ? cut : record.length;
    assert.deepEqual([...remainder], [...record.subarray(0, kept)]);
  }
});
