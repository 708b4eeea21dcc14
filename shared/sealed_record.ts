// This module is browser compatible.
/**
 * Sans-I/O sealed record layer (docs/PROTOCOL.md, "Sealed records"): each record is
 * `u32 length | ciphertext ‖ tag`, its nonce the per-direction record counter, which both sides
 * track and which is never sent. {@linkcode SealedRecordWriter} turns batches of frames into
 * records; {@linkcode SealedRecordReader} turns received bytes back into plaintext batches.
 *
 * This module does no I/O and must never reuse a counter value, never buffer more of a record
 * than its checked length, and never hand out plaintext from a record whose tag failed. After
 * one failure a reader stays failed: a gap, replay or reorder cannot be recovered from.
 *
 * @module
 */

import { RECORD_TAG_BYTES, type RecordCipher, RecordError } from "./record_cipher.ts";

/** Bytes of a record's length prefix. */
export const RECORD_HEADER_BYTES = 4;

/**
 * Default bound on a record's length field (ciphertext + tag): 1 MiB of plaintext + the tag.
 *
 * @example
 * ```ts
 * import { DEFAULT_MAX_RECORD_BYTES, SealedRecordReader } from "./sealed_record.ts";
 * import { WebCryptoRecordCipher } from "./record_cipher.ts";
 * import assert from "node:assert/strict";
 *
 * // A length field over the bound fails the reader before any byte of the record arrives.
 * const reader = new SealedRecordReader(await WebCryptoRecordCipher.create(new Uint8Array(32)));
 * const header = new Uint8Array(4);
 * new DataView(header.buffer).setUint32(0, DEFAULT_MAX_RECORD_BYTES + 1);
 * reader.push(header);
 * assert.ok((await reader.next()) instanceof Error);
 * ```
 */
export const DEFAULT_MAX_RECORD_BYTES = 1024 * 1024 + RECORD_TAG_BYTES;

/** Largest value the u32 length field can hold. */
const MAX_U32 = 0xffff_ffff;

/** Bytes of frame length prefix, used to split an oversized batch at frame boundaries. */
const FRAME_HEADER_BYTES = 4;

/** A read buffer larger than this is dropped when it empties, so idle links hold little. */
const KEEP_BUFFER_BYTES = 64 * 1024;

/**
 * Least size of a reused output or read buffer. Small, so that a link that only ever carries a
 * handshake and a few pings keeps a few hundred bytes, not kilobytes; busy links double it to
 * what their traffic needs on their first batches.
 */
const MIN_BUFFER_BYTES = 256;

/** Shared empty buffer: a reader owns no buffer until a record is split across chunks. */
const NO_BYTES: Uint8Array = new Uint8Array(0);

/** Options of {@linkcode SealedRecordWriter} and {@linkcode SealedRecordReader}. */
export interface SealedRecordOptions {
  /**
   * Largest record length field (ciphertext + tag). Both sides of a link must agree.
   *
   * @default {1048592}
   */
  readonly maxRecordBytes?: number;
  /**
   * Reader only: open records in place when the cipher can (`sync` with `openInto`), so
   * {@linkcode SealedRecordReader.next} returns a view of the reader's own buffer, valid only
   * until the next `push` or `next`, instead of a new array per record. For consumers that
   * read each plaintext at once and keep nothing (a load generator).
   *
   * @default {false}
   */
  readonly inPlace?: boolean;
  /**
   * Writer only: seal into a buffer the writer keeps (up to 64 KiB; larger batches get their
   * own array), so {@linkcode SealedRecordWriter.seal} returns a view valid only until the next
   * `seal`, instead of a new array per batch. For a caller that has written each batch before
   * sealing the next (the transport). Only with a cipher that seals synchronously into a buffer.
   *
   * @default {false}
   */
  readonly reuseOutput?: boolean;
}

/** What {@linkcode SealedRecordReader.next} gives: a plaintext, the final error, or "need more". */
export type RecordReadResult = Uint8Array | RecordError | undefined;

function checkMaxRecordBytes(options: SealedRecordOptions): number {
  const max = options.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES;
  if (!Number.isInteger(max) || max <= RECORD_TAG_BYTES || max > MAX_U32) {
    throw new RangeError(
      `maxRecordBytes must be an integer ${RECORD_TAG_BYTES + 1}..${MAX_U32}, got ${max}`,
    );
  }
  return max;
}

/**
 * Seals batches of frames into records, one counter value per record.
 *
 * A batch (one or more arrays of whole frames, everything queued in one event-loop turn)
 * becomes one record, or several if it exceeds the record bound; records are only ever split
 * between frames. Frames are packed together only up to 1 MiB of plaintext (the bound every
 * reader accepts), so a peer with a smaller frame bound can still read them; a single frame
 * above that, up to `maxRecordBytes - 16`, gets a record of its own. Counters are taken synchronously when {@linkcode seal} is called, so with an
 * asynchronous cipher the returned records must be written in call order.
 *
 * @example Two frames, one record
 * ```ts
 * import { SealedRecordReader, SealedRecordWriter } from "./sealed_record.ts";
 * import { NodeRecordCipher } from "./record_cipher_node.ts";
 * import assert from "node:assert/strict";
 *
 * const key = new Uint8Array(32).fill(9);
 * const writer = new SealedRecordWriter(new NodeRecordCipher(key));
 * const frames = [new Uint8Array([0, 0, 0, 1, 0x10]), new Uint8Array([0, 0, 0, 1, 0x11])];
 * const record = writer.seal(frames);
 * assert.ok(record instanceof Uint8Array);
 * assert.equal(record.length, 4 + 10 + 16);
 * assert.equal(writer.counter, 1);
 *
 * const reader = new SealedRecordReader(new NodeRecordCipher(key));
 * reader.push(record);
 * assert.deepEqual(reader.next(), new Uint8Array([0, 0, 0, 1, 0x10, 0, 0, 0, 1, 0x11]));
 * assert.equal(reader.next(), undefined);
 * ```
 */
export class SealedRecordWriter {
  readonly #cipher: RecordCipher;
  readonly #maxPlaintextBytes: number;
  /** Bound on frames packed together; every reader accepts it whatever its own frame bound. */
  readonly #packBytes: number;
  /** The cipher again when it seals synchronously into a caller's buffer, else `undefined`. */
  readonly #intoCipher: SealIntoCipher | undefined;
  /** The reused output buffer, when `reuseOutput` was asked (empty until first needed). */
  readonly #output: { buffer: Uint8Array } | undefined;
  #counter = 0;

  /**
   * Makes a writer that seals with `cipher`, counting records from 0.
   *
   * @param cipher The cipher of this direction's key.
   * @param options Record bound.
   * @throws {RangeError} If `maxRecordBytes` is out of range.
   */
  constructor(cipher: RecordCipher, options: SealedRecordOptions = {}) {
    this.#cipher = cipher;
    this.#intoCipher = canSealInto(cipher) ? cipher : undefined;
    this.#output = options.reuseOutput === true ? { buffer: new Uint8Array(0) } : undefined;
    this.#maxPlaintextBytes = checkMaxRecordBytes(options) - RECORD_TAG_BYTES;
    this.#packBytes = Math.min(
      this.#maxPlaintextBytes,
      DEFAULT_MAX_RECORD_BYTES - RECORD_TAG_BYTES,
    );
  }

  /** The counter (nonce) the next record will use; also the number of records sealed so far. */
  get counter(): number {
    return this.#counter;
  }

  /** Largest plaintext one record can carry (`maxRecordBytes - 16`). */
  get maxPlaintextBytes(): number {
    return this.#maxPlaintextBytes;
  }

  /**
   * Seals a batch of whole frames into one record, or several back to back if the batch is
   * larger than one record may be. An empty batch gives an empty array and uses no counter.
   * The input arrays are only read, never modified or kept. With a cipher that offers
   * `sealInto` (and is synchronous) the whole batch is sealed into one new array, each record
   * in place right after its length prefix; the bytes are the same as through `seal`. With
   * `reuseOutput` that array is the writer's own, valid until the next call.
   *
   * @param batch One array of concatenated frames, or a list of such arrays.
   * @returns The record bytes, length prefixes included: a value when the cipher completed
   * synchronously, otherwise a promise.
   * @throws {RangeError} If one frame alone is larger than a record's plaintext bound, or the
   * batch does not consist of whole frames where it has to be split.
   * @throws {RecordError} `record_counter_exhausted` after 2^53 - 1 records.
   */
  seal(batch: Uint8Array | readonly Uint8Array[]): Uint8Array | Promise<Uint8Array> {
    const chunks = batch instanceof Uint8Array ? [batch] : batch;
    let total = 0;
    for (const chunk of chunks) total += chunk.length;
    if (total === 0) return new Uint8Array(0);
    // The common case is one record: the batch as it is, no grouping.
    const groups = total <= this.#packBytes
      ? [{ pieces: chunks, bytes: total }]
      : this.#group(chunks);
    const first = this.#counter;
    for (let i = 0; i < groups.length; i++) this.#takeCounter();
    if (this.#intoCipher !== undefined) {
      return sealGroupsInto(this.#intoCipher, first, groups, this.#output);
    }
    const cipher = this.#cipher;
    const results = groups.map((group, i) =>
      cipher.seal(first + i, concat(group.pieces, group.bytes))
    );
    const ready: Uint8Array[] = [];
    for (const result of results) {
      if (!(result instanceof Uint8Array)) return Promise.all(results).then(joinRecords);
      ready.push(result);
    }
    return joinRecords(ready);
  }

  /**
   * Gives back the reused output buffer and the cipher's rebuildable state (see
   * `RecordCipher.trim`), for a link idle for a while: the next {@linkcode seal} allocates
   * again. Call it only once the last sealed output was written.
   */
  trim(): void {
    if (this.#output !== undefined) this.#output.buffer = NO_BYTES;
    this.#cipher.trim?.();
  }

  #takeCounter(): number {
    if (this.#counter >= Number.MAX_SAFE_INTEGER) {
      throw new RecordError("record_counter_exhausted", "record counter exhausted; rekey the link");
    }
    return this.#counter++;
  }

  /**
   * Groups a batch of more than `#packBytes` into record plaintexts of at most `#packBytes`;
   * a single frame larger than that (up to `#maxPlaintextBytes`) gets a record of its own.
   */
  #group(chunks: readonly Uint8Array[]): RecordGroup[] {
    const pack = this.#packBytes;
    const pieces: Uint8Array[] = [];
    for (const chunk of chunks) {
      if (chunk.length <= pack) pieces.push(chunk);
      else splitFrames(chunk, pack, this.#maxPlaintextBytes, pieces);
    }
    const groups: RecordGroup[] = [];
    let group: Uint8Array[] = [];
    let groupBytes = 0;
    for (let piece of pieces) {
      if (groupBytes > 0 && groupBytes + piece.length > pack) {
        // Fill the record with the whole frames of this piece that fit, so records break at the
        // same frames however the batch was cut into pieces (e.g. staged runs of small frames).
        const fit = frameBytesWithin(piece, pack - groupBytes);
        if (fit > 0) {
          group.push(piece.subarray(0, fit));
          groupBytes += fit;
          piece = piece.subarray(fit);
        }
        groups.push({ pieces: group, bytes: groupBytes });
        group = [];
        groupBytes = 0;
      }
      group.push(piece);
      groupBytes += piece.length;
    }
    if (groupBytes > 0) groups.push({ pieces: group, bytes: groupBytes });
    return groups;
  }
}

/**
 * Opens records received in any chunking and gives back their plaintexts in order.
 *
 * Push bytes with {@linkcode push} (they are copied) or {@linkcode pushView} (read in place),
 * then call {@linkcode next} until it gives `undefined`. The length prefix of a record is checked as soon as its 4 bytes are in, before
 * any of its body is kept: a record above `maxRecordBytes` (or too short to hold a tag) fails
 * the reader at once. The counter advances once per record, so a record that was tampered with,
 * replayed, dropped or reordered fails its tag. Every failure is final.
 *
 * When the cipher completes asynchronously (WebCrypto, or a large record with the hybrid cipher)
 * {@linkcode next} gives a promise; await it before calling {@linkcode next} again.
 *
 * @example A replayed record fails
 * ```ts
 * import { SealedRecordReader, SealedRecordWriter } from "./sealed_record.ts";
 * import { NodeRecordCipher, } from "./record_cipher_node.ts";
 * import { RecordError } from "./record_cipher.ts";
 * import assert from "node:assert/strict";
 *
 * const cipher = new NodeRecordCipher(new Uint8Array(32));
 * const record = new SealedRecordWriter(cipher).seal(new Uint8Array([0, 0, 0, 1, 4]));
 * assert.ok(record instanceof Uint8Array);
 * const reader = new SealedRecordReader(cipher);
 * reader.push(record);
 * reader.push(record);
 * assert.ok(reader.next() instanceof Uint8Array);
 * const replay = reader.next();
 * assert.ok(replay instanceof RecordError);
 * assert.equal(replay.code, "record_auth_failed");
 * ```
 */
export class SealedRecordReader {
  readonly #cipher: RecordCipher;
  #maxRecordBytes: number;
  readonly #inPlace: boolean;
  #counter = 0;
  /**
   * Received bytes not yet consumed live in `#buf[#start, #end)`: the reader's own buffer
   * (`#own`), or a caller's chunk lent by {@linkcode pushView} (`#borrowed`).
   */
  #buf: Uint8Array = NO_BYTES;
  #start = 0;
  #end = 0;
  /** The reader's own buffer: empty until a record is split across chunks (then kept). */
  #own: Uint8Array = NO_BYTES;
  #borrowed = false;
  #failed: RecordError | undefined;

  /**
   * Makes a reader that opens records sealed with `cipher`, expecting counters from 0.
   *
   * @param cipher The cipher of this direction's key.
   * @param options Record bound.
   * @throws {RangeError} If `maxRecordBytes` is out of range.
   */
  constructor(cipher: RecordCipher, options: SealedRecordOptions = {}) {
    this.#cipher = cipher;
    this.#maxRecordBytes = checkMaxRecordBytes(options);
    this.#inPlace = options.inPlace === true && cipher.sync && cipher.openInto !== undefined;
  }

  /** The counter (nonce) the next record must have been sealed with. */
  get counter(): number {
    return this.#counter;
  }

  /** Bytes received but not yet opened. */
  get bufferedBytes(): number {
    return this.#end - this.#start;
  }

  /** The largest record length field accepted now. */
  get maxRecordBytes(): number {
    return this.#maxRecordBytes;
  }

  /**
   * Raises the record bound, e.g. once the peer has authenticated: record headers checked from
   * now on may announce up to `maxRecordBytes`. A failed reader stays failed. Only raising is
   * allowed.
   *
   * @param maxRecordBytes The new bound, an integer from the current bound to 2^32-1.
   * @throws {RangeError} If it is not an integer, is above 2^32-1 or below the current bound.
   *
   * @example
   * ```ts
   * import { SealedRecordReader, SealedRecordWriter } from "./sealed_record.ts";
   * import { NodeRecordCipher } from "./record_cipher_node.ts";
   * import assert from "node:assert/strict";
   *
   * const cipher = new NodeRecordCipher(new Uint8Array(32));
   * const frame = new Uint8Array(5000);
   * frame.set([0, 0, 0x13, 0x84, 0x80]); // one frame of length 4996
   * const record = new SealedRecordWriter(cipher).seal(frame) as Uint8Array;
   * const reader = new SealedRecordReader(cipher, { maxRecordBytes: 4096 + 4 + 16 });
   * reader.raiseMaxRecordBytes(65536 + 4 + 16);
   * reader.push(record);
   * assert.equal((reader.next() as Uint8Array).length, 5000);
   * assert.throws(() => reader.raiseMaxRecordBytes(100), RangeError);
   * ```
   */
  raiseMaxRecordBytes(maxRecordBytes: number): void {
    if (
      !Number.isInteger(maxRecordBytes) || maxRecordBytes < this.#maxRecordBytes ||
      maxRecordBytes > MAX_U32
    ) {
      throw new RangeError(
        `maxRecordBytes can only be raised to an integer ${this.#maxRecordBytes}..${MAX_U32}, got ${maxRecordBytes}`,
      );
    }
    this.#maxRecordBytes = maxRecordBytes;
  }

  /** The error the reader failed with, or `undefined` while the stream is healthy. */
  get error(): RecordError | undefined {
    return this.#failed;
  }

  /**
   * Appends received bytes (copied, so the caller may reuse its buffer). Ignored once failed.
   *
   * @param bytes Any number of bytes, records split anywhere.
   */
  push(bytes: Uint8Array): void {
    if (this.#failed !== undefined || bytes.length === 0) return;
    if (this.#borrowed) this.#keepRest();
    this.#makeRoom(bytes.length);
    this.#buf.set(bytes, this.#end);
    this.#end += bytes.length;
    this.#checkHeader();
  }

  /**
   * Appends received bytes without copying them when nothing is buffered: records are read
   * where they lie in `bytes`, and only the start of a record cut off at its end is copied, once
   * {@linkcode next} gives `undefined`. So a link whose reads hold whole records never copies
   * them, and owns no buffer while idle. The caller must leave `bytes` untouched until `next`
   * has given `undefined` (or an error), or until the next `push`, `pushView` or `space`. With
   * `inPlace`, or when bytes are already buffered, it copies like {@linkcode push}.
   *
   * @param bytes Any number of bytes, records split anywhere.
   *
   * @example
   * ```ts
   * import { SealedRecordReader, SealedRecordWriter } from "./sealed_record.ts";
   * import { NodeRecordCipher } from "./record_cipher_node.ts";
   * import assert from "node:assert/strict";
   *
   * const cipher = new NodeRecordCipher(new Uint8Array(32));
   * const writer = new SealedRecordWriter(cipher);
   * const one = writer.seal(new Uint8Array([0, 0, 0, 1, 4])) as Uint8Array;
   * const two = writer.seal(new Uint8Array([0, 0, 0, 1, 5])) as Uint8Array;
   * const chunk = new Uint8Array([...one, ...two.subarray(0, 7)]);
   * const reader = new SealedRecordReader(cipher);
   * reader.pushView(chunk);
   * assert.deepEqual(reader.next(), new Uint8Array([0, 0, 0, 1, 4]));
   * assert.equal(reader.next(), undefined); // the 7 bytes of `two` were copied
   * chunk.fill(0); // so the caller may reuse its buffer now
   * reader.pushView(two.subarray(7));
   * assert.deepEqual(reader.next(), new Uint8Array([0, 0, 0, 1, 5]));
   * ```
   */
  pushView(bytes: Uint8Array): void {
    if (this.#start !== this.#end || this.#inPlace) return this.push(bytes);
    if (this.#failed !== undefined || bytes.length === 0) return;
    this.#buf = bytes;
    this.#start = 0;
    this.#end = bytes.length;
    this.#borrowed = true;
    this.#checkHeader();
  }

  /**
   * Free space of at least `minBytes` at the end of the reader's buffer, to read into directly
   * and then {@linkcode commit}: the same as {@linkcode push} without its copy. Like `push`, it
   * ends the validity of an in-place plaintext. Empty once the reader failed.
   *
   * @param minBytes The least room wanted (a read's size), ≥ 1.
   *
   * @example
   * ```ts
   * import { SealedRecordReader, SealedRecordWriter } from "./sealed_record.ts";
   * import { NodeRecordCipher } from "./record_cipher_node.ts";
   * import assert from "node:assert/strict";
   *
   * const cipher = new NodeRecordCipher(new Uint8Array(32));
   * const record = new SealedRecordWriter(cipher).seal(new Uint8Array([0, 0, 0, 1, 4]));
   * const reader = new SealedRecordReader(cipher);
   * const space = reader.space(4096);
   * space.set(record as Uint8Array); // as a socket read would
   * reader.commit((record as Uint8Array).length);
   * assert.deepEqual(reader.next(), new Uint8Array([0, 0, 0, 1, 4]));
   * ```
   */
  space(minBytes: number): Uint8Array {
    if (this.#failed !== undefined) return new Uint8Array(0);
    if (this.#borrowed) this.#keepRest();
    this.#makeRoom(Math.max(1, minBytes));
    return this.#buf.subarray(this.#end);
  }

  /**
   * Takes `bytes` bytes written at the start of the last {@linkcode space} as received.
   *
   * @param bytes How many were written there.
   * @throws {RangeError} If more than the space holds.
   */
  commit(bytes: number): void {
    if (this.#failed !== undefined || bytes === 0) return;
    if (!Number.isInteger(bytes) || bytes < 0 || this.#end + bytes > this.#buf.length) {
      throw new RangeError(`cannot commit ${bytes} bytes: more than the space given`);
    }
    this.#end += bytes;
    this.#checkHeader();
  }

  /**
   * Gives back the reader's own buffer when nothing is buffered, and the cipher's rebuildable
   * state (see `RecordCipher.trim`), for a link idle for a while.
   */
  trim(): void {
    if (!this.#borrowed && this.#start === this.#end) {
      this.#own = NO_BYTES;
      this.#buf = NO_BYTES;
      this.#start = 0;
      this.#end = 0;
    }
    this.#cipher.trim?.();
  }

  /** Makes `#buf` hold at least `length` free bytes after `#end`. */
  #makeRoom(length: number): void {
    const used = this.#end - this.#start;
    if (this.#end + length <= this.#buf.length) return;
    if (used + length <= this.#buf.length) {
      this.#buf.copyWithin(0, this.#start, this.#end);
    } else {
      // Grows to what is received, never to what a header announces.
      const grown = new Uint8Array(
        Math.max(used + length, this.#buf.length * 2, MIN_BUFFER_BYTES),
      );
      grown.set(this.#buf.subarray(this.#start, this.#end));
      this.#buf = grown;
      this.#own = grown;
    }
    this.#start = 0;
    this.#end = used;
  }

  /** Copies what is left of a lent chunk into the reader's own buffer, and gives the chunk back. */
  #keepRest(): void {
    const rest = this.#buf.subarray(this.#start, this.#end);
    this.#borrowed = false;
    this.#buf = this.#own;
    this.#start = 0;
    this.#end = 0;
    if (rest.length === 0) return;
    this.#makeRoom(rest.length);
    this.#buf.set(rest);
    this.#end = rest.length;
  }

  /**
   * Opens the next whole record.
   *
   * @returns Its plaintext (with `inPlace`, a view valid until the next `push` or `next`);
   * `undefined` if more bytes are needed; the final
   * {@linkcode RecordError} if the stream failed (also on every later call). With an
   * asynchronous cipher, a promise of the plaintext or the final error.
   */
  next(): RecordReadResult | Promise<Uint8Array | RecordError> {
    if (this.#failed !== undefined) return this.#failed;
    const header = this.#checkHeader();
    if (header === undefined) {
      if (this.#borrowed && this.#failed === undefined) this.#keepRest();
      return this.#failed;
    }
    const end = this.#start + RECORD_HEADER_BYTES + header;
    if (end > this.#end) {
      if (this.#borrowed) this.#keepRest();
      return undefined;
    }
    if (this.#counter >= Number.MAX_SAFE_INTEGER) {
      return this.#fail(
        new RecordError("record_counter_exhausted", "record counter exhausted; rekey the link"),
      );
    }
    const counter = this.#counter++;
    // A view, not a copy: a cipher reads its input before returning, even when it returns a
    // promise, so the buffer may move afterwards.
    const sealed = this.#buf.subarray(this.#start + RECORD_HEADER_BYTES, end);
    this.#consume(end);
    let result: Uint8Array | Promise<Uint8Array>;
    try {
      if (this.#inPlace) {
        // Consumed bytes, decrypted where they lie: the view lives until the next push or next.
        const cipher = this.#cipher as RecordCipher & {
          openInto: NonNullable<RecordCipher["openInto"]>;
        };
        return sealed.subarray(0, cipher.openInto(counter, sealed, sealed));
      }
      result = this.#cipher.open(counter, sealed);
    } catch (error) {
      if (error instanceof RecordError) return this.#fail(error);
      throw error;
    }
    if (result instanceof Uint8Array) return result;
    return result.then(
      (plaintext) => plaintext,
      (error: unknown) => {
        if (error instanceof RecordError) return this.#fail(error);
        throw error;
      },
    );
  }

  /** Marks `[#start, end)` consumed; gives back a lent chunk, frees a large buffer, once empty. */
  #consume(end: number): void {
    this.#start = end;
    if (this.#start === this.#end) {
      this.#start = 0;
      this.#end = 0;
      this.#borrowed = false;
      if (this.#own.length > KEEP_BUFFER_BYTES) this.#own = NO_BYTES;
      this.#buf = this.#own;
    }
  }

  /**
   * Validates the length prefix of the next record if its 4 bytes are in.
   *
   * @returns The length, `undefined` if not enough bytes or the reader just failed (then
   * `#failed` is set).
   */
  #checkHeader(): number | undefined {
    if (this.#end - this.#start < RECORD_HEADER_BYTES) return undefined;
    const b = this.#buf;
    const s = this.#start;
    const length = b[s] * 0x100_0000 + ((b[s + 1] << 16) | (b[s + 2] << 8) | b[s + 3]);
    if (length > this.#maxRecordBytes) {
      this.#fail(
        new RecordError(
          "record_too_large",
          `record length ${length} above max_record_bytes ${this.#maxRecordBytes}`,
        ),
      );
      return undefined;
    }
    if (length < RECORD_TAG_BYTES) {
      this.#fail(
        new RecordError(
          "record_too_small",
          `record length ${length} below the ${RECORD_TAG_BYTES}-byte tag`,
        ),
      );
      return undefined;
    }
    return length;
  }

  #fail(error: RecordError): RecordError {
    this.#failed ??= error;
    // The stream cannot be resynchronised: free what is buffered.
    this.#buf = NO_BYTES;
    this.#own = NO_BYTES;
    this.#borrowed = false;
    this.#start = 0;
    this.#end = 0;
    return this.#failed;
  }
}

/** The frames of one record: views of the batch, `bytes` in all, sealed in this order. */
interface RecordGroup {
  readonly pieces: readonly Uint8Array[];
  readonly bytes: number;
}

/** A synchronous cipher that can seal into a caller's buffer. */
type SealIntoCipher = RecordCipher & {
  sealInto(counter: number, plaintext: Uint8Array, out: Uint8Array): number;
};

/** Tells whether the writer may seal a whole batch into one buffer with `cipher`. */
function canSealInto(cipher: RecordCipher): cipher is SealIntoCipher {
  return cipher.sync && typeof cipher.sealInto === "function";
}

/**
 * Seals `groups` (counters `first`, `first + 1`, ...) into one new array of records: each
 * group's frames are copied right after the record's length prefix and sealed in place there,
 * and a group of one view is sealed straight from it, so a batch costs one allocation (none
 * with a reused `output` it fits in) and at most one copy of its bytes. Gives the same bytes as
 * sealing each group with `seal`; every byte of the result is written.
 */
function sealGroupsInto(
  cipher: SealIntoCipher,
  first: number,
  groups: readonly RecordGroup[],
  output: { buffer: Uint8Array } | undefined,
): Uint8Array {
  let size = 0;
  for (const group of groups) size += RECORD_HEADER_BYTES + group.bytes + RECORD_TAG_BYTES;
  let out: Uint8Array;
  if (output === undefined || size > KEEP_BUFFER_BYTES) {
    out = new Uint8Array(size);
  } else {
    if (output.buffer.length < size) {
      output.buffer = new Uint8Array(
        Math.min(KEEP_BUFFER_BYTES, Math.max(size * 2, MIN_BUFFER_BYTES)),
      );
    }
    out = output.buffer.subarray(0, size);
  }
  let offset = 0;
  for (let i = 0; i < groups.length; i++) {
    const { pieces, bytes } = groups[i];
    const n = bytes + RECORD_TAG_BYTES;
    out[offset] = n >>> 24;
    out[offset + 1] = n >>> 16;
    out[offset + 2] = n >>> 8;
    out[offset + 3] = n;
    const body = offset + RECORD_HEADER_BYTES;
    const record = out.subarray(body, body + n);
    if (pieces.length === 1) {
      cipher.sealInto(first + i, pieces[0], record);
    } else {
      let at = body;
      for (const piece of pieces) {
        out.set(piece, at);
        at += piece.length;
      }
      // In place: the plaintext starts where the ciphertext goes, as sealInto allows.
      cipher.sealInto(first + i, record.subarray(0, bytes), record);
    }
    offset = body + n;
  }
  return out;
}

/** Concatenates `chunks` (`total` bytes) into a new array. */
function concat(chunks: readonly Uint8Array[], total: number): Uint8Array {
  if (chunks.length === 1 && chunks[0].length === total) return chunks[0];
  const out = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

/**
 * Cuts concatenated frames into views of at most `pack` bytes, between frames only; a frame
 * larger than `pack` (but within `max`) becomes a view of its own.
 */
function splitFrames(bytes: Uint8Array, pack: number, max: number, out: Uint8Array[]): void {
  let start = 0;
  let pos = 0;
  while (pos < bytes.length) {
    if (bytes.length - pos < FRAME_HEADER_BYTES) {
      throw new RangeError("batch to split does not end on a frame boundary");
    }
    const frameBytes = FRAME_HEADER_BYTES +
      bytes[pos] * 0x100_0000 + ((bytes[pos + 1] << 16) | (bytes[pos + 2] << 8) | bytes[pos + 3]);
    if (frameBytes > max) {
      throw new RangeError(`frame of ${frameBytes} bytes above the record plaintext bound ${max}`);
    }
    if (pos + frameBytes > bytes.length) {
      throw new RangeError("batch to split does not end on a frame boundary");
    }
    if (pos > start && pos + frameBytes - start > pack) {
      out.push(bytes.subarray(start, pos));
      start = pos;
    }
    pos += frameBytes;
    if (frameBytes > pack) {
      out.push(bytes.subarray(start, pos));
      start = pos;
    }
  }
  if (pos > start) out.push(bytes.subarray(start, pos));
}

/** Bytes of the longest run of whole frames at the start of `bytes` within `room` bytes. */
function frameBytesWithin(bytes: Uint8Array, room: number): number {
  let pos = 0;
  while (bytes.length - pos >= FRAME_HEADER_BYTES) {
    const end = pos + FRAME_HEADER_BYTES +
      bytes[pos] * 0x100_0000 + ((bytes[pos + 1] << 16) | (bytes[pos + 2] << 8) | bytes[pos + 3]);
    // Called only for a piece longer than `room`, so a frame within `room` is within `bytes`.
    if (end > room) break;
    pos = end;
  }
  return pos;
}

/** Prefixes each sealed record with its u32 length and joins them into one array. */
function joinRecords(sealed: readonly Uint8Array[]): Uint8Array {
  let total = 0;
  for (const s of sealed) total += RECORD_HEADER_BYTES + s.length;
  const out = new Uint8Array(total);
  let offset = 0;
  for (const s of sealed) {
    const n = s.length;
    out[offset] = n >>> 24;
    out[offset + 1] = n >>> 16;
    out[offset + 2] = n >>> 8;
    out[offset + 3] = n;
    out.set(s, offset + RECORD_HEADER_BYTES);
    offset += RECORD_HEADER_BYTES + n;
  }
  return out;
}
