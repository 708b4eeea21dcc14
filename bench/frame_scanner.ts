// This module is browser compatible.
/**
 * A zero-allocation frame walker for the load generator: it visits each frame of a byte stream
 * (`u32 length | u8 type | payload`, docs/PROTOCOL.md "Frames") as an offset into a `DataView`,
 * instead of building a `Frame` object per frame as `shared/protocol/frame.ts`'s FrameDecoder
 * does. A generator receiving millions of frames per second must cost far less than the server
 * it measures; that, and nothing else, is why this exists beside the decoder.
 *
 * It never allocates per frame (only once per connection for a frame split across reads, and
 * one `DataView` per new read buffer), never buffers more than `maxFrameBytes` + 4, and stops
 * for good at the first bad length.
 *
 * @module
 */

import { DEFAULT_MAX_FRAME_BYTES, FRAME_HEADER_BYTES } from "../shared/protocol/frame.ts";
import { ErrorCode, ProtocolError } from "../shared/protocol/protocol_error.ts";

/**
 * Receives one frame: `view.getUint8(offset)` is its type byte, the payload is the `length - 1`
 * bytes after it. The view is valid only during the call. `context` is what the caller of
 * {@linkcode FrameScanner.push} passed, so one visitor function can serve many streams: a call
 * site that sees one function stays monomorphic (hundreds of per-connection closures do not).
 */
export type FrameVisitor<C = unknown> = (
  view: DataView,
  offset: number,
  length: number,
  context: C,
) => void;

/**
 * Receives a run of whole frames: `[start, end)` of `view` holds one or more complete frames
 * back to back, each starting with its header (`view.getUint32(pos)` is its length, already
 * checked to be 1..`maxFrameBytes`). The view is valid only during the call. A consumer that
 * walks the run itself keeps its per-frame state in locals, which a per-frame
 * {@linkcode FrameVisitor} call cannot.
 */
export type FrameRunVisitor<C = unknown> = (
  view: DataView,
  start: number,
  end: number,
  context: C,
) => void;

/**
 * Walks frames across reads in any chunking.
 *
 * @example Two frames split across two reads
 * ```ts
 * import { FrameScanner } from "./frame_scanner.ts";
 * import { encodeFrame } from "../shared/protocol/frame.ts";
 * import assert from "node:assert/strict";
 *
 * const bytes = new Uint8Array([...encodeFrame(0x80, new Uint8Array([1])), ...encodeFrame(0x81, new Uint8Array())]);
 * const types: number[] = [];
 * const scanner = new FrameScanner();
 * const visit = (view: DataView, offset: number) => types.push(view.getUint8(offset));
 * scanner.push(bytes.subarray(0, 3), visit);
 * scanner.push(bytes.subarray(3), visit);
 * assert.deepEqual(types, [0x80, 0x81]);
 * ```
 */
export class FrameScanner {
  readonly #maxFrameBytes: number;
  /** A frame split across reads, `#carryFill` bytes of it so far (header included). */
  #carry: Uint8Array | undefined;
  #carryView: DataView | undefined;
  #carryFill = 0;
  /** The length field of the carried frame, once its header is in. */
  #carryLength = 0;
  /** The carried frame is whole (set by `#resume`): the push visits it first. */
  #carryReady = false;
  /** View of the last read buffer seen, reused while the caller reuses its buffer. */
  #view: DataView | undefined;
  #stopped = false;
  #remainder: Uint8Array = new Uint8Array(0);
  #failed: ProtocolError | undefined;

  /**
   * @param maxFrameBytes Largest accepted `length` field.
   * @throws {RangeError} If `maxFrameBytes` is not a positive integer.
   */
  constructor(maxFrameBytes: number = DEFAULT_MAX_FRAME_BYTES) {
    if (!Number.isSafeInteger(maxFrameBytes) || maxFrameBytes < 1) {
      throw new RangeError(`maxFrameBytes must be a positive integer, got ${maxFrameBytes}`);
    }
    this.#maxFrameBytes = maxFrameBytes;
  }

  /** The error the stream failed with, if any. */
  get error(): ProtocolError | undefined {
    return this.#failed;
  }

  /**
   * Stops after the frame being visited: the rest of the current chunk and anything pushed later
   * is kept for {@linkcode takeRemainder} (e.g. record bytes after the last plaintext frame).
   */
  stop(): void {
    this.#stopped = true;
  }

  /**
   * Returns the bytes kept since {@linkcode stop}, forgets them and resumes scanning.
   *
   * @example
   * ```ts
   * import { FrameScanner } from "./frame_scanner.ts";
   * import assert from "node:assert/strict";
   *
   * const scanner = new FrameScanner();
   * scanner.push(new Uint8Array([0, 0, 0, 1, 0x24, 9, 9]), () => scanner.stop());
   * assert.deepEqual([...scanner.takeRemainder()], [9, 9]);
   * ```
   */
  takeRemainder(): Uint8Array {
    const out = this.#remainder;
    this.#remainder = new Uint8Array(0);
    this.#stopped = false;
    return out;
  }

  /**
   * Visits every complete frame in `chunk` (after any partial frame from earlier reads).
   *
   * @param chunk Received bytes; only read during the call (a split frame's bytes are copied).
   * @param visit Called per frame.
   * @param context Handed to `visit` with each frame.
   * @returns The number of frames visited, or the {@linkcode ProtocolError} the stream failed
   * with (`BadFrame` for length 0, `FrameTooLarge` above the bound).
   */
  push<C>(chunk: Uint8Array, visit: FrameVisitor<C>, context?: C): number | ProtocolError {
    let pos = this.#resume(chunk);
    if (pos < 0) return this.#failed ?? 0;
    let visited = 0;
    if (this.#carryReady) {
      this.#carryReady = false;
      visit(this.#carryView as DataView, FRAME_HEADER_BYTES, this.#carryLength, context as C);
      visited++;
      if (this.#keptAfterStop(chunk, pos)) return visited;
    }
    const view = this.#viewOf(chunk);
    const base = chunk.byteOffset;
    const end = chunk.length;
    while (end - pos >= FRAME_HEADER_BYTES) {
      const length = view.getUint32(base + pos);
      if (length === 0 || length > this.#maxFrameBytes) return this.#fail(length);
      if (end - pos - FRAME_HEADER_BYTES < length) break;
      visit(view, base + pos + FRAME_HEADER_BYTES, length, context as C);
      visited++;
      pos += FRAME_HEADER_BYTES + length;
      if (this.#keptAfterStop(chunk, pos)) return visited;
    }
    return this.#carryTail(chunk, pos) ?? visited;
  }

  /**
   * Like {@linkcode push}, but hands over whole frames a run at a time: at most one call for a
   * frame completed from earlier reads, then one for all the whole frames in `chunk`. A
   * {@linkcode stop} takes effect only between runs; use {@linkcode push} where a frame may
   * switch the stream's mode.
   *
   * @param chunk Received bytes; only read during the call (a split frame's bytes are copied).
   * @param visitRun Called per run.
   * @param context Handed to `visitRun` with each run.
   * @returns The number of frames in the runs, or the {@linkcode ProtocolError} the stream
   * failed with (frames before the bad length are still visited).
   *
   * @example Counting the frames of a run
   * ```ts
   * import { FrameScanner } from "./frame_scanner.ts";
   * import { encodeFrame } from "../shared/protocol/frame.ts";
   * import assert from "node:assert/strict";
   *
   * const one = encodeFrame(0x80, new Uint8Array([1]));
   * const bytes = new Uint8Array([...one, ...one, ...one]);
   * const types: number[] = [];
   * const scanner = new FrameScanner();
   * const visitRun = (view: DataView, start: number, end: number) => {
   *   for (let pos = start; pos < end; pos += 4 + view.getUint32(pos)) types.push(view.getUint8(pos + 4));
   * };
   * assert.equal(scanner.pushRuns(bytes.subarray(0, 8), visitRun), 1);
   * assert.equal(scanner.pushRuns(bytes.subarray(8), visitRun), 2);
   * assert.deepEqual(types, [0x80, 0x80, 0x80]);
   * ```
   */
  pushRuns<C>(
    chunk: Uint8Array,
    visitRun: FrameRunVisitor<C>,
    context?: C,
  ): number | ProtocolError {
    let pos = this.#resume(chunk);
    if (pos < 0) return this.#failed ?? 0;
    let visited = 0;
    if (this.#carryReady) {
      this.#carryReady = false;
      visitRun(
        this.#carryView as DataView,
        0,
        FRAME_HEADER_BYTES + this.#carryLength,
        context as C,
      );
      visited++;
      if (this.#keptAfterStop(chunk, pos)) return visited;
    }
    const view = this.#viewOf(chunk);
    const base = chunk.byteOffset;
    const end = chunk.length;
    const runStart = pos;
    let failure: ProtocolError | undefined;
    while (end - pos >= FRAME_HEADER_BYTES) {
      const length = view.getUint32(base + pos);
      if (length === 0 || length > this.#maxFrameBytes) {
        failure = this.#fail(length);
        break;
      }
      if (end - pos - FRAME_HEADER_BYTES < length) break;
      visited++;
      pos += FRAME_HEADER_BYTES + length;
    }
    if (pos > runStart) visitRun(view, base + runStart, base + pos, context as C);
    if (failure !== undefined) return failure;
    if (this.#keptAfterStop(chunk, pos)) return visited;
    return this.#carryTail(chunk, pos) ?? visited;
  }

  /** After a visit: when it called {@linkcode stop}, keeps `chunk` from `pos` and says so. */
  #keptAfterStop(chunk: Uint8Array, pos: number): boolean {
    if (!this.#stopped) return false;
    this.#keep(chunk, pos);
    return true;
  }

  /**
   * The start of every push: the stream's state, then a frame carried over from earlier reads,
   * completed from `chunk` (`#carryReady` is then set: the caller visits it first). Returns
   * where `chunk`'s own frames start, or -1 when there is nothing more to do (failed, still
   * partial, or stopped with the chunk kept).
   */
  #resume(chunk: Uint8Array): number {
    if (this.#failed !== undefined) return -1;
    if (this.#stopped) {
      this.#keep(chunk, 0);
      return -1;
    }
    if (this.#carryFill === 0) return 0;
    const pos = this.#fillCarry(chunk);
    if (this.#failed !== undefined) return -1;
    if (this.#carryFill < FRAME_HEADER_BYTES + this.#carryLength) return -1; // still partial
    this.#carryFill = 0;
    this.#carryReady = true;
    return pos;
  }

  /** A view of `chunk`'s buffer, reused while reads reuse their buffer. */
  #viewOf(chunk: Uint8Array): DataView {
    const view = this.#view;
    if (view !== undefined && view.buffer === chunk.buffer) return view;
    return this.#view = new DataView(chunk.buffer);
  }

  /** Keeps a partial frame at `chunk[pos..]` until the next read completes it. */
  #carryTail(chunk: Uint8Array, pos: number): ProtocolError | undefined {
    if (pos >= chunk.length) return undefined;
    this.#carryLength = 0;
    this.#fillCarry(chunk.subarray(pos));
    return this.#failed;
  }

  #ensureCarry(): Uint8Array {
    if (this.#carry === undefined) {
      // Allocated once per connection, on its first split frame.
      this.#carry = new Uint8Array(FRAME_HEADER_BYTES + this.#maxFrameBytes);
      this.#carryView = new DataView(this.#carry.buffer);
    }
    return this.#carry;
  }

  /** Copies what the carried frame still needs from `chunk`; returns the bytes taken. */
  #fillCarry(chunk: Uint8Array): number {
    const carry = this.#ensureCarry();
    let taken = 0;
    if (this.#carryFill < FRAME_HEADER_BYTES) {
      const need = Math.min(FRAME_HEADER_BYTES - this.#carryFill, chunk.length);
      carry.set(chunk.subarray(0, need), this.#carryFill);
      this.#carryFill += need;
      taken = need;
      if (this.#carryFill < FRAME_HEADER_BYTES) return taken;
      const length = (this.#carryView as DataView).getUint32(0);
      if (length === 0 || length > this.#maxFrameBytes) {
        this.#fail(length);
        return taken;
      }
      this.#carryLength = length;
    }
    const need = Math.min(
      FRAME_HEADER_BYTES + this.#carryLength - this.#carryFill,
      chunk.length - taken,
    );
    carry.set(chunk.subarray(taken, taken + need), this.#carryFill);
    this.#carryFill += need;
    return taken + need;
  }

  /** Appends `chunk[from..]` to the remainder kept after {@linkcode stop}. */
  #keep(chunk: Uint8Array, from: number): void {
    const rest = chunk.subarray(from);
    if (rest.length === 0) return;
    const joined = new Uint8Array(this.#remainder.length + rest.length);
    joined.set(this.#remainder);
    joined.set(rest, this.#remainder.length);
    this.#remainder = joined;
  }

  #fail(length: number): ProtocolError {
    this.#failed = length === 0
      ? new ProtocolError(ErrorCode.BadFrame, "frame length 0")
      : new ProtocolError(
        ErrorCode.FrameTooLarge,
        `frame length ${length} above max_frame_bytes ${this.#maxFrameBytes}`,
      );
    this.#carry = undefined;
    this.#carryFill = 0;
    return this.#failed;
  }
}
