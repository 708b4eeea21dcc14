// This module is browser compatible.
/**
 * Framing of the wire protocol: `u32 length | u8 type | payload`, `length` counting the type
 * byte and the payload (docs/PROTOCOL.md, "Frames"). {@linkcode encodeFrame} builds one frame;
 * {@linkcode FrameDecoder} cuts a byte stream, arriving in any chunking, back into frames.
 *
 * The decoder must never allocate more than `maxFrameBytes` for one frame, and never for a
 * frame whose length it has not checked: a hostile length is rejected from its 4 header bytes,
 * before any of its payload is buffered. It does no I/O and knows nothing about packets.
 *
 * @module
 */

import { ErrorCode, ProtocolError } from "./protocol_error.ts";

/** One frame: its type byte and its payload (without the length and type). */
export interface Frame {
  /** The packet type byte (docs/PROTOCOL.md "Packet types"), 0..255. */
  readonly type: number;
  /** The payload bytes after the type byte. */
  readonly payload: Uint8Array;
}

/**
 * Default bound on a frame's `length` field (type byte + payload), in bytes.
 *
 * @example
 * ```ts
 * import { DEFAULT_MAX_FRAME_BYTES, encodeFrame, FrameDecoder } from "./frame.ts";
 * import assert from "node:assert/strict";
 *
 * // A frame one byte over the default bound is refused by a default decoder.
 * const decoder = new FrameDecoder();
 * decoder.push(encodeFrame(0x80, new Uint8Array(DEFAULT_MAX_FRAME_BYTES)));
 * assert.ok(decoder.next() instanceof Error);
 * ```
 */
export const DEFAULT_MAX_FRAME_BYTES = 65536;

/**
 * Bytes of a frame's length prefix (the type byte follows it).
 *
 * @example
 * ```ts
 * import { encodeFrame, FRAME_HEADER_BYTES } from "./frame.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(encodeFrame(1, new Uint8Array(3)).length, FRAME_HEADER_BYTES + 1 + 3);
 * ```
 */
export const FRAME_HEADER_BYTES = 4;

/** Largest value the u32 length field can hold. */
const MAX_U32 = 0xffff_ffff;

/**
 * Encodes one whole frame (length, type, payload) into a new, exactly sized array.
 *
 * @param type The packet type byte, an integer 0..255.
 * @param payload The payload; copied.
 * @throws {RangeError} If `type` is not a byte or the frame would not fit a u32 length.
 *
 * @example
 * ```ts
 * import { encodeFrame } from "./frame.ts";
 * import assert from "node:assert/strict";
 *
 * const bytes = encodeFrame(0x04, new Uint8Array([0, 0, 0, 7]));
 * assert.equal(bytes.toHex(), "000000050400000007");
 * ```
 */
export function encodeFrame(type: number, payload: Uint8Array): Uint8Array {
  if (!Number.isInteger(type) || type < 0 || type > 0xff) {
    throw new RangeError(`frame type must be an integer 0..255, got ${type}`);
  }
  const length = payload.length + 1;
  if (length > MAX_U32) {
    throw new RangeError(`frame payload of ${payload.length} bytes exceeds the u32 length field`);
  }
  const out = new Uint8Array(FRAME_HEADER_BYTES + length);
  writeFrameHeader(out, 0, length, type);
  out.set(payload, FRAME_HEADER_BYTES + 1);
  return out;
}

/**
 * Writes a frame header (`u32 length | u8 type`) at `offset`; `length` counts the type byte and
 * the payload. For encoders that size a frame and fill it in place.
 *
 * @param out The destination; must have 5 bytes from `offset`.
 * @param offset Where the frame starts.
 * @param length The frame's length field (payload bytes + 1).
 * @param type The type byte.
 *
 * @example
 * ```ts
 * import { writeFrameHeader } from "./frame.ts";
 * import assert from "node:assert/strict";
 *
 * const out = new Uint8Array(5);
 * writeFrameHeader(out, 0, 1, 0x10);
 * assert.equal(out.toHex(), "0000000110");
 * ```
 */
export function writeFrameHeader(
  out: Uint8Array,
  offset: number,
  length: number,
  type: number,
): void {
  out[offset] = length >>> 24;
  out[offset + 1] = length >>> 16;
  out[offset + 2] = length >>> 8;
  out[offset + 3] = length;
  out[offset + 4] = type;
}

/** Options of {@linkcode FrameDecoder}. */
export interface FrameDecoderOptions {
  /**
   * Largest accepted `length` field (type byte + payload). A larger one is `FrameTooLarge`.
   *
   * @default {65536}
   */
  readonly maxFrameBytes?: number;
}

/**
 * Incremental frame decoder: push bytes as they arrive, pull frames with {@linkcode next}.
 *
 * Zero copy where possible: a frame that lies within one pushed chunk is returned as a view of
 * that chunk. Only a frame split across chunks is copied, into an array of exactly its size
 * (at most `maxFrameBytes`), allocated once its length has been checked.
 *
 * Lifetimes: treat a returned payload as valid until the next {@linkcode push}; copy what you
 * keep longer. The decoder keeps a pushed chunk (without copying) until {@linkcode next} has
 * returned `undefined`, at which point it has copied any partial frame and let go of every
 * chunk, so a reader may then reuse its read buffer. The decoder never modifies a chunk.
 *
 * After an error the decoder stays failed: {@linkcode next} returns the same error again and
 * further pushes are ignored, because the stream can no longer be cut into frames. The bytes
 * from the offending length field on stay available to {@linkcode takeRemainder}.
 *
 * @example Any chunking gives the same frames
 * ```ts
 * import { encodeFrame, FrameDecoder } from "./frame.ts";
 * import assert from "node:assert/strict";
 *
 * const bytes = new Uint8Array([
 *   ...encodeFrame(0x04, new Uint8Array([1, 2, 3, 4])),
 *   ...encodeFrame(0x10, new Uint8Array()),
 * ]);
 * const decoder = new FrameDecoder();
 * decoder.push(bytes.subarray(0, 3));
 * assert.equal(decoder.next(), undefined);
 * decoder.push(bytes.subarray(3));
 * const first = decoder.next();
 * assert.ok(first !== undefined && !(first instanceof Error));
 * assert.equal(first.type, 0x04);
 * assert.deepEqual([...first.payload], [1, 2, 3, 4]);
 * const second = decoder.next();
 * assert.ok(second !== undefined && !(second instanceof Error));
 * assert.equal(second.type, 0x10);
 * assert.equal(decoder.next(), undefined);
 * ```
 *
 * @example A hostile length fails before its payload is buffered
 * ```ts
 * import { FrameDecoder } from "./frame.ts";
 * import { ErrorCode, ProtocolError } from "./protocol_error.ts";
 * import assert from "node:assert/strict";
 *
 * const decoder = new FrameDecoder({ maxFrameBytes: 1024 });
 * decoder.push(new Uint8Array([0xff, 0xff, 0xff, 0xff]));
 * const result = decoder.next();
 * assert.ok(result instanceof ProtocolError);
 * assert.equal(result.errorCode, ErrorCode.FrameTooLarge);
 * ```
 */
export class FrameDecoder {
  #maxFrameBytes: number;
  /** Pushed chunks not yet fully consumed; `#chunks[#head]` is read from `#pos`. */
  #chunks: Uint8Array[] = [];
  #head = 0;
  #pos = 0;
  /** Unconsumed bytes in `#chunks`. */
  #queued = 0;
  /** Length prefix of a frame split across chunks, while incomplete. */
  readonly #header = new Uint8Array(FRAME_HEADER_BYTES);
  #headerFill = 0;
  /** Body (type + payload) of a frame split across chunks, once its length is checked. */
  #body: Uint8Array | undefined;
  #bodyFill = 0;
  #failed: ProtocolError | undefined;

  /**
   * Makes a decoder for one connection's byte stream.
   *
   * @param options Decoder options.
   * @throws {RangeError} If `maxFrameBytes` is not an integer 1..2^32-1.
   */
  constructor(options: FrameDecoderOptions = {}) {
    const max = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    if (!Number.isInteger(max) || max < 1 || max > MAX_U32) {
      throw new RangeError(`maxFrameBytes must be an integer 1..${MAX_U32}, got ${max}`);
    }
    this.#maxFrameBytes = max;
  }

  /** The largest `length` field accepted now. */
  get maxFrameBytes(): number {
    return this.#maxFrameBytes;
  }

  /**
   * Raises the frame bound, e.g. once the peer has authenticated: length fields checked from
   * now on may be up to `maxFrameBytes`. A frame whose length was already checked keeps its
   * buffer; a failed decoder stays failed. Only raising is allowed, so a buffer allocated under
   * the old bound can never exceed the new one.
   *
   * @param maxFrameBytes The new bound, an integer from the current bound to 2^32-1.
   * @throws {RangeError} If it is not an integer, is above 2^32-1 or below the current bound.
   *
   * @example A small bound before authentication, the full one after
   * ```ts
   * import { encodeFrame, FrameDecoder } from "./frame.ts";
   * import assert from "node:assert/strict";
   *
   * const decoder = new FrameDecoder({ maxFrameBytes: 4096 });
   * decoder.raiseMaxFrameBytes(65536);
   * assert.equal(decoder.maxFrameBytes, 65536);
   * decoder.push(encodeFrame(0x80, new Uint8Array(10_000)));
   * const frame = decoder.next();
   * assert.ok(frame !== undefined && !(frame instanceof Error));
   * assert.equal(frame.payload.length, 10_000);
   * assert.throws(() => decoder.raiseMaxFrameBytes(1024), RangeError);
   * ```
   */
  raiseMaxFrameBytes(maxFrameBytes: number): void {
    if (
      !Number.isInteger(maxFrameBytes) || maxFrameBytes < this.#maxFrameBytes ||
      maxFrameBytes > MAX_U32
    ) {
      throw new RangeError(
        `maxFrameBytes can only be raised to an integer ${this.#maxFrameBytes}..${MAX_U32}, got ${maxFrameBytes}`,
      );
    }
    this.#maxFrameBytes = maxFrameBytes;
  }

  /** Bytes received but not yet returned as frames (including a partial frame). */
  get bufferedBytes(): number {
    return this.#queued + this.#headerFill + (this.#body === undefined ? 0 : this.#bodyFill);
  }

  /** The error the decoder failed with, or `undefined` while the stream is healthy. */
  get error(): ProtocolError | undefined {
    return this.#failed;
  }

  /**
   * Queues bytes received from the peer; the chunk is kept by reference, not copied (see the
   * class notes on lifetimes). Ignored once the decoder has failed.
   *
   * @param chunk Any number of bytes, frames split anywhere.
   */
  push(chunk: Uint8Array): void {
    if (this.#failed !== undefined || chunk.length === 0) return;
    if (this.#head > 0) {
      // Drop consumed chunks here rather than per frame: pushes are rarer than frames.
      this.#chunks.splice(0, this.#head);
      this.#head = 0;
    }
    this.#chunks.push(chunk);
    this.#queued += chunk.length;
  }

  /**
   * Returns the next complete frame, a {@linkcode ProtocolError} if the stream is corrupt
   * (length 0: `BadFrame`; length above `maxFrameBytes`: `FrameTooLarge`), or `undefined` if
   * more bytes are needed.
   */
  next(): Frame | ProtocolError | undefined {
    if (this.#failed !== undefined) return this.#failed;
    if (this.#headerFill === 0) {
      // Fast path: the whole frame lies in the current chunk, return a view of it.
      while (this.#head < this.#chunks.length) {
        const chunk = this.#chunks[this.#head];
        const pos = this.#pos;
        const available = chunk.length - pos;
        if (available === 0) {
          this.#head++;
          this.#pos = 0;
          continue;
        }
        if (available < FRAME_HEADER_BYTES) break;
        const length = readU32(chunk, pos);
        const error = this.#check(length);
        if (error !== undefined) return error;
        if (available < FRAME_HEADER_BYTES + length) break;
        const end = pos + FRAME_HEADER_BYTES + length;
        this.#pos = end;
        this.#queued -= FRAME_HEADER_BYTES + length;
        return { type: chunk[pos + FRAME_HEADER_BYTES], payload: chunk.subarray(pos + 5, end) };
      }
    }
    return this.#assemble();
  }

  /**
   * Returns every buffered, undecoded byte (a partial frame included) in stream order and
   * forgets them. Used when a link switches from frames to sealed records: bytes after the
   * last plaintext frame are already record bytes. Call it right after that frame; should
   * {@linkcode next} have been called again and failed on a record header, the bytes are
   * still all returned.
   *
   * @example
   * ```ts
   * import { encodeFrame, FrameDecoder } from "./frame.ts";
   * import assert from "node:assert/strict";
   *
   * const decoder = new FrameDecoder();
   * decoder.push(new Uint8Array([...encodeFrame(0x17, new Uint8Array([0, 0, 0, 1])), 9, 8, 7]));
   * const frame = decoder.next();
   * assert.ok(frame !== undefined && !(frame instanceof Error));
   * assert.equal(frame.type, 0x17);
   * assert.deepEqual([...decoder.takeRemainder()], [9, 8, 7]);
   * assert.equal(decoder.bufferedBytes, 0);
   * ```
   */
  takeRemainder(): Uint8Array {
    const out = new Uint8Array(this.bufferedBytes);
    let offset = 0;
    out.set(this.#header.subarray(0, this.#headerFill), offset);
    offset += this.#headerFill;
    if (this.#body !== undefined) {
      out.set(this.#body.subarray(0, this.#bodyFill), offset);
      offset += this.#bodyFill;
    }
    for (let i = this.#head; i < this.#chunks.length; i++) {
      const chunk = i === this.#head ? this.#chunks[i].subarray(this.#pos) : this.#chunks[i];
      out.set(chunk, offset);
      offset += chunk.length;
    }
    this.#headerFill = 0;
    this.#body = undefined;
    this.#bodyFill = 0;
    this.#releaseChunks();
    return out;
  }

  /** Validates a length field; on failure the decoder is failed for good. */
  #check(length: number): ProtocolError | undefined {
    if (length === 0) {
      this.#failed = new ProtocolError(ErrorCode.BadFrame, "frame length 0");
    } else if (length > this.#maxFrameBytes) {
      // A TLS record header (0x16 0x03 0x0v) read as a length: say so, it is a common mistake.
      const tls = length >>> 16 === 0x1603 && ((length >>> 8) & 0xff) <= 4;
      this.#failed = new ProtocolError(
        ErrorCode.FrameTooLarge,
        `frame length ${length} above max_frame_bytes ${this.#maxFrameBytes}` +
          (tls ? " (a TLS handshake on a plain port? TLS has its own port)" : ""),
      );
    }
    // Buffered bytes are kept as they are (bounded: later pushes are ignored), so
    // takeRemainder() still returns them, e.g. a record header read by mistake as a frame.
    return this.#failed;
  }

  /** Slow path: copies a frame split across chunks into its own array. */
  #assemble(): Frame | ProtocolError | undefined {
    while (this.#head < this.#chunks.length) {
      const chunk = this.#chunks[this.#head];
      const start = this.#pos;
      let pos = start;
      if (this.#headerFill < FRAME_HEADER_BYTES) {
        while (this.#headerFill < FRAME_HEADER_BYTES && pos < chunk.length) {
          this.#header[this.#headerFill++] = chunk[pos++];
        }
      }
      let body = this.#body;
      if (body === undefined && this.#headerFill === FRAME_HEADER_BYTES) {
        const length = readU32(this.#header, 0);
        const error = this.#check(length);
        if (error !== undefined) {
          this.#consume(chunk, start, pos);
          return error;
        }
        // Allocated only now that the length is known to be within bounds.
        body = this.#body = new Uint8Array(length);
        this.#bodyFill = 0;
      }
      if (body !== undefined) {
        const take = Math.min(body.length - this.#bodyFill, chunk.length - pos);
        body.set(chunk.subarray(pos, pos + take), this.#bodyFill);
        this.#bodyFill += take;
        pos += take;
      }
      this.#consume(chunk, start, pos);
      if (body !== undefined && this.#bodyFill === body.length) {
        this.#headerFill = 0;
        this.#body = undefined;
        this.#bodyFill = 0;
        return { type: body[0], payload: body.subarray(1) };
      }
    }
    // Everything pushed is consumed: let go of the chunks so the caller may reuse them.
    this.#releaseChunks();
    return undefined;
  }

  /** Marks the current chunk's bytes `start..pos` as consumed. */
  #consume(chunk: Uint8Array, start: number, pos: number): void {
    this.#queued -= pos - start;
    this.#pos = pos;
    if (pos === chunk.length) {
      this.#head++;
      this.#pos = 0;
    }
  }

  /** Drops every chunk reference; called once all their bytes are consumed or taken. */
  #releaseChunks(): void {
    this.#chunks.length = 0;
    this.#head = 0;
    this.#pos = 0;
    this.#queued = 0;
  }
}

/** Reads a big-endian u32 without a DataView. */
function readU32(bytes: Uint8Array, offset: number): number {
  return bytes[offset] * 0x100_0000 +
    ((bytes[offset + 1] << 16) | (bytes[offset + 2] << 8) | bytes[offset + 3]);
}
