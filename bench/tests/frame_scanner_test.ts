import assert from "node:assert/strict";
import fc from "fast-check";
import { FrameScanner } from "../frame_scanner.ts";
import { encodeFrame } from "../../shared/protocol/frame.ts";
import { ErrorCode, ProtocolError } from "../../shared/protocol/protocol_error.ts";

/** Scans `chunks` and returns each frame as `[type, ...payload]`. */
function scanAll(scanner: FrameScanner, chunks: readonly Uint8Array[]): number[][] {
  const frames: number[][] = [];
  for (const chunk of chunks) {
    const result = scanner.push(chunk, (view, offset, length) => {
      frames.push([...new Uint8Array(view.buffer, view.byteOffset + offset, length)]);
    });
    if (result instanceof ProtocolError) throw result;
  }
  return frames;
}

/** Cuts `bytes` at the given positions. */
function cut(bytes: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let start = 0;
  for (const p of [...points, bytes.length]) {
    chunks.push(bytes.subarray(start, p));
    start = p;
  }
  return chunks;
}

Deno.test("every frame comes out whole and in order however the stream is chunked", () => {
  fc.assert(fc.property(
    fc.array(fc.tuple(fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 300 })), {
      maxLength: 20,
    }),
    fc.array(fc.nat(), { maxLength: 30 }),
    (specs, cuts) => {
      const frames = specs.map(([type, payload]) => encodeFrame(type, payload));
      const stream = new Uint8Array(frames.reduce((n, f) => n + f.length, 0));
      let offset = 0;
      for (const f of frames) {
        stream.set(f, offset);
        offset += f.length;
      }
      // Copy each chunk into a reused buffer, as a socket read loop does.
      const readBuffer = new Uint8Array(stream.length + 1);
      const got: number[][] = [];
      const scanner = new FrameScanner();
      for (const chunk of cut(stream, cuts)) {
        readBuffer.set(chunk);
        got.push(...scanAll(scanner, [readBuffer.subarray(0, chunk.length)]));
      }
      assert.deepEqual(got, specs.map(([type, payload]) => [type, ...payload]));
    },
  ));
});

Deno.test("a frame split into single bytes is reassembled", () => {
  const frame = encodeFrame(0x90, new Uint8Array(40).fill(3));
  const scanner = new FrameScanner();
  const got = scanAll(scanner, [...frame].map((b) => new Uint8Array([b])));
  assert.deepEqual(got, [[0x90, ...new Uint8Array(40).fill(3)]]);
});

Deno.test("a zero length is BadFrame and the scanner stays failed", () => {
  const scanner = new FrameScanner();
  const result = scanner.push(new Uint8Array([0, 0, 0, 0, 1]), () => assert.fail("no frame"));
  assert.ok(result instanceof ProtocolError);
  assert.equal(result.errorCode, ErrorCode.BadFrame);
  assert.equal(scanner.error, result);
  assert.equal(scanner.push(encodeFrame(1, new Uint8Array()), () => assert.fail()), result);
});

Deno.test("a length above the bound is FrameTooLarge, also when the header is split", () => {
  const whole = new FrameScanner(100);
  const a = whole.push(new Uint8Array([0, 0, 0, 101]), () => assert.fail());
  assert.ok(a instanceof ProtocolError && a.errorCode === ErrorCode.FrameTooLarge);
  const split = new FrameScanner(100);
  assert.equal(split.push(new Uint8Array([0, 0]), () => assert.fail()), 0);
  const b = split.push(new Uint8Array([1, 0, 9]), () => assert.fail());
  assert.ok(b instanceof ProtocolError && b.errorCode === ErrorCode.FrameTooLarge);
});

Deno.test("frames before a bad length are still visited", () => {
  const scanner = new FrameScanner();
  const seen: number[] = [];
  const bytes = new Uint8Array([...encodeFrame(7, new Uint8Array([1])), 0, 0, 0, 0]);
  const result = scanner.push(bytes, (view, offset) => seen.push(view.getUint8(offset)));
  assert.ok(result instanceof ProtocolError);
  assert.deepEqual(seen, [7]);
});

Deno.test("stop keeps the rest of the read and later reads until takeRemainder", () => {
  const scanner = new FrameScanner();
  const first = encodeFrame(0x24, new Uint8Array([1]));
  const seen: number[] = [];
  const visit = (view: DataView, offset: number) => {
    seen.push(view.getUint8(offset));
    scanner.stop();
  };
  assert.equal(scanner.push(new Uint8Array([...first, 9, 8]), visit), 1);
  assert.equal(scanner.push(new Uint8Array([7]), visit), 0);
  assert.deepEqual([...scanner.takeRemainder()], [9, 8, 7]);
  assert.deepEqual([...scanner.takeRemainder()], []);
  // Scanning resumed: the next frame is visited.
  assert.equal(scanner.push(encodeFrame(5, new Uint8Array()), visit), 1);
  assert.deepEqual(seen, [0x24, 5]);
});

Deno.test("stop on a frame completed from the carry keeps the rest of that read", () => {
  const scanner = new FrameScanner();
  const frame = encodeFrame(0x24, new Uint8Array([1, 2]));
  scanner.push(frame.subarray(0, 3), () => assert.fail());
  const n = scanner.push(new Uint8Array([...frame.subarray(3), 4, 4]), () => scanner.stop());
  assert.equal(n, 1);
  assert.deepEqual([...scanner.takeRemainder()], [4, 4]);
});

Deno.test("a bad bound is refused", () => {
  assert.throws(() => new FrameScanner(0), RangeError);
  assert.throws(() => new FrameScanner(1.5), RangeError);
});

/** Scans `chunks` a run at a time and returns each frame as `[type, ...payload]`. */
function scanRuns(scanner: FrameScanner, chunks: readonly Uint8Array[]): number[][] {
  const frames: number[][] = [];
  for (const chunk of chunks) {
    let inRuns = 0;
    const result = scanner.pushRuns(chunk, (view, start, end) => {
      for (let pos = start; pos < end; pos += 4 + view.getUint32(pos)) {
        const length = view.getUint32(pos);
        frames.push([...new Uint8Array(view.buffer, view.byteOffset + pos + 4, length)]);
        inRuns++;
      }
      assert.ok(start < end, "a run is never empty");
    });
    if (result instanceof ProtocolError) throw result;
    assert.equal(result, inRuns, "the count returned is the frames handed over");
  }
  return frames;
}

Deno.test("runs hand over the same frames as push, however the stream is chunked", () => {
  fc.assert(fc.property(
    fc.array(fc.tuple(fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 300 })), {
      maxLength: 20,
    }),
    fc.array(fc.nat(), { maxLength: 30 }),
    (specs, cuts) => {
      const stream = new Uint8Array(specs.flatMap(([type, payload]) => [
        ...encodeFrame(type, payload),
      ]));
      const readBuffer = new Uint8Array(stream.length + 1);
      const got: number[][] = [];
      const scanner = new FrameScanner();
      for (const chunk of cut(stream, cuts)) {
        readBuffer.set(chunk);
        got.push(...scanRuns(scanner, [readBuffer.subarray(0, chunk.length)]));
      }
      assert.deepEqual(got, specs.map(([type, payload]) => [type, ...payload]));
    },
  ));
});

Deno.test("runs: one call for a carried frame, one for the whole frames of the read", () => {
  const frame = encodeFrame(0x90, new Uint8Array(8).fill(1));
  const bytes = new Uint8Array([...frame, ...frame, ...frame]);
  const scanner = new FrameScanner();
  const runs: number[] = [];
  const visitRun = (_view: DataView, start: number, end: number) => runs.push(end - start);
  assert.equal(scanner.pushRuns(bytes.subarray(0, frame.length + 3), visitRun), 1);
  assert.deepEqual(runs, [frame.length]);
  assert.equal(scanner.pushRuns(bytes.subarray(frame.length + 3), visitRun), 2);
  assert.deepEqual(runs, [frame.length, frame.length, frame.length]);
});

Deno.test("runs: frames before a bad length are handed over, then the stream fails", () => {
  const scanner = new FrameScanner();
  const seen: number[] = [];
  const bytes = new Uint8Array([...encodeFrame(7, new Uint8Array([1])), 0, 0, 0, 0, 9]);
  const result = scanner.pushRuns(bytes, (view, start, end) => {
    for (let pos = start; pos < end; pos += 4 + view.getUint32(pos)) {
      seen.push(view.getUint8(pos + 4));
    }
  });
  assert.ok(result instanceof ProtocolError);
  assert.equal(result.errorCode, ErrorCode.BadFrame);
  assert.deepEqual(seen, [7]);
  assert.equal(scanner.pushRuns(encodeFrame(1, new Uint8Array()), () => seen.push(-1)), result);
  assert.deepEqual(seen, [7]);
});
