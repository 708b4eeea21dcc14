/**
 * The byte stream between a plugin host and a plugin subprocess (its stdin and stdout): each
 * {@linkcode MessageBatch} travels as one frame, `u32 big-endian length | body`, the body
 * being `u32 n | n bytes of the events as JSON | u32 m | the m payload bytes | u32 k | k
 * records as u32` (the records in the machine's byte order: both ends are on one machine).
 * Why not `node:v8`'s `serialize`: measured on Deno 2.9.6, 100 000 calls of it kept 300 MB
 * that no GC returned, which would get an honest plugin killed for memory; JSON of the few
 * events of a batch costs about the same and keeps nothing. Every event is plain data (the
 * host's settings, players, moves and numbers; the plugin's kinds and strings).
 *
 * The host reads a subprocess that runs untrusted code: {@linkcode PluginFrameReader} must
 * never hold more than one frame of at most `maxFrameBytes` plus one read chunk, never throw on
 * bad input (it fails, stays failed and says why), and never hand out a value that did not
 * deserialize. What it hands out is still untrusted: the host checks it as it checks a
 * Worker's messages (`isMessageBatch`, `parseWorkerEvent`).
 *
 * @module
 */

import type { MessageBatch } from "./plugin_messages.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });
// Lengths are big-endian; records cross in this machine's byte order (both ends share it).

/**
 * Largest frame body a plugin subprocess may send the host: 16 MiB. The child's batcher
 * flushes long before (see `plugin_process_entry.ts`); a bigger frame is a broken or hostile
 * plugin, and it is restarted.
 *
 * @example
 * ```ts
 * import { MAX_PLUGIN_FRAME_BYTES, PluginFrameReader } from "./plugin_stream.ts";
 * import assert from "node:assert/strict";
 *
 * // A reader with the default limit refuses a length prefix one byte above it.
 * const prefix = new Uint8Array(4);
 * new DataView(prefix.buffer).setUint32(0, MAX_PLUGIN_FRAME_BYTES + 1);
 * const reader = new PluginFrameReader();
 * assert.deepEqual(reader.push(prefix), []);
 * assert.equal(
 *   reader.error,
 *   `a frame of ${MAX_PLUGIN_FRAME_BYTES + 1} bytes, above ${MAX_PLUGIN_FRAME_BYTES}`,
 * );
 * ```
 */
export const MAX_PLUGIN_FRAME_BYTES = 16 * 1024 * 1024;

/**
 * Encodes one batch as a frame (length prefix and serialized body).
 *
 * @param batch The batch (its events must be structured-cloneable).
 * @returns The frame's bytes.
 *
 * @example
 * ```ts
 * import { encodePluginFrame, PluginFrameReader } from "./plugin_stream.ts";
 * import assert from "node:assert/strict";
 *
 * const frame = encodePluginFrame({ events: [{ kind: "started" }], bytes: new Uint8Array([1]) });
 * const reader = new PluginFrameReader();
 * assert.deepEqual(reader.push(frame), [{ events: [{ kind: "started" }], bytes: new Uint8Array([1]) }]);
 * ```
 */
export function encodePluginFrame(batch: MessageBatch<unknown>): Uint8Array {
  const json = encoder.encode(JSON.stringify(batch.events));
  const records = batch.records;
  const recordBytes = records === undefined ? 0 : records.length * 4;
  const bodyLength = 12 + json.length + batch.bytes.length + recordBytes;
  const frame = new Uint8Array(4 + bodyLength);
  const view = new DataView(frame.buffer);
  view.setUint32(0, bodyLength);
  let at = 4;
  view.setUint32(at, json.length);
  frame.set(json, at + 4);
  at += 4 + json.length;
  view.setUint32(at, batch.bytes.length);
  frame.set(batch.bytes, at + 4);
  at += 4 + batch.bytes.length;
  view.setUint32(at, records === undefined ? 0 : records.length);
  at += 4;
  if (records !== undefined) {
    frame.set(new Uint8Array(records.buffer, records.byteOffset, recordBytes), at);
  }
  return frame;
}

// A frame body back into a batch; throws (caught by the reader) on any inconsistency.
function decodeBody(body: Uint8Array): MessageBatch<unknown> {
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  let at = 0;
  const take = (length: number): Uint8Array => {
    if (length > body.length - at) throw new RangeError("a field runs past the frame");
    const part = body.slice(at, at + length); // a copy: the batch owns its buffers
    at += length;
    return part;
  };
  const u32 = (): number => {
    if (body.length - at < 4) throw new RangeError("a length runs past the frame");
    const value = view.getUint32(at);
    at += 4;
    return value;
  };
  const events: unknown = JSON.parse(decoder.decode(take(u32())));
  if (!Array.isArray(events)) throw new TypeError("the events are not an array");
  const bytes = take(u32());
  const count = u32();
  if (count > (body.length - at) / 4) throw new RangeError("the records run past the frame");
  const raw = take(count * 4);
  if (at !== body.length) throw new RangeError("bytes after the records");
  if (count === 0) return { events, bytes };
  const records = new Uint32Array(raw.buffer, 0, count);
  return { events, bytes, records };
}

/**
 * Options of {@linkcode PluginFrameReader}.
 *
 * @example
 * ```ts
 * import {
 *   encodePluginFrame,
 *   PluginFrameReader,
 *   type PluginFrameReaderOptions,
 * } from "./plugin_stream.ts";
 * import assert from "node:assert/strict";
 *
 * // A tighter limit than the default, e.g. for a plugin that only sends small notices.
 * const options: PluginFrameReaderOptions = { maxFrameBytes: 1024 };
 * const reader = new PluginFrameReader(options);
 * const small = encodePluginFrame({ events: [], bytes: new Uint8Array(100) });
 * assert.equal(reader.push(small).length, 1);
 * reader.push(encodePluginFrame({ events: [], bytes: new Uint8Array(2000) }));
 * assert.match(reader.error ?? "", /above 1024$/);
 * ```
 */
export interface PluginFrameReaderOptions {
  /**
   * Largest frame body accepted; a longer length prefix fails the reader.
   * @default {MAX_PLUGIN_FRAME_BYTES}
   */
  readonly maxFrameBytes?: number;
}

/**
 * Splits a byte stream into frames and deserializes each (sans-I/O: chunks in, values out).
 * After a bad frame it stays failed: {@linkcode PluginFrameReader.error} says why and
 * `push` returns nothing more.
 *
 * @example A frame cut in two chunks, then garbage
 * ```ts
 * import { encodePluginFrame, PluginFrameReader } from "./plugin_stream.ts";
 * import assert from "node:assert/strict";
 *
 * const frame = encodePluginFrame({ events: [], bytes: new Uint8Array() });
 * const reader = new PluginFrameReader({ maxFrameBytes: 1024 });
 * assert.equal(reader.push(frame.subarray(0, 3)).length, 0);
 * assert.equal(reader.push(frame.subarray(3)).length, 1);
 * reader.push(new Uint8Array([0xff, 0xff, 0xff, 0xff]));
 * assert.match(reader.error ?? "", /above 1024/);
 * ```
 */
export class PluginFrameReader {
  readonly #maxFrameBytes: number;
  #buffer = new Uint8Array(0);
  #used = 0;
  #error: string | null = null;

  /**
   * @param options The frame size limit.
   * @throws {RangeError} If `maxFrameBytes` is not a positive integer.
   */
  constructor(options: PluginFrameReaderOptions = {}) {
    const max = options.maxFrameBytes ?? MAX_PLUGIN_FRAME_BYTES;
    if (!Number.isInteger(max) || max <= 0) {
      throw new RangeError(`maxFrameBytes must be a positive integer, got ${max}`);
    }
    this.#maxFrameBytes = max;
  }

  /** Why the stream was refused, or `null` while it is good. */
  get error(): string | null {
    return this.#error;
  }

  /** Bytes held (a partial frame). */
  get buffered(): number {
    return this.#used;
  }

  /**
   * Adds a chunk and returns the values of the frames it completed, in order.
   *
   * @param chunk Bytes read from the stream (not kept: copied if a frame is incomplete).
   * @returns The deserialized values (possibly none).
   */
  push(chunk: Uint8Array): unknown[] {
    const out: unknown[] = [];
    if (this.#error !== null) return out;
    // A plain view: a node Buffer's `slice` does not copy, and the batches must own their bytes.
    let data = Object.getPrototypeOf(chunk) === Uint8Array.prototype
      ? chunk
      : new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (this.#used > 0) {
      this.#append(chunk);
      data = this.#buffer.subarray(0, this.#used);
    }
    let at = 0;
    while (data.length - at >= 4) {
      const length =
        ((data[at] << 24) | (data[at + 1] << 16) | (data[at + 2] << 8) | data[at + 3]) >>>
        0;
      if (length > this.#maxFrameBytes) {
        this.#fail(`a frame of ${length} bytes, above ${this.#maxFrameBytes}`);
        return out;
      }
      if (data.length - at - 4 < length) break;
      const body = data.subarray(at + 4, at + 4 + length);
      at += 4 + length;
      try {
        out.push(decodeBody(body));
      } catch (err) {
        this.#fail(
          `a frame that does not deserialize (${err instanceof Error ? err.message : err})`,
        );
        return out;
      }
    }
    const rest = data.length - at;
    if (rest === 0) this.#used = 0;
    else if (this.#used === 0) {
      this.#append(data.subarray(at));
    } else {
      this.#buffer.copyWithin(0, at, this.#used);
      this.#used = rest;
    }
    return out;
  }

  #append(bytes: Uint8Array): void {
    const need = this.#used + bytes.length;
    if (need > this.#buffer.length) {
      const grown = new Uint8Array(Math.max(need, this.#buffer.length * 2, 4096));
      grown.set(this.#buffer.subarray(0, this.#used));
      this.#buffer = grown;
    }
    this.#buffer.set(bytes, this.#used);
    this.#used = need;
  }

  #fail(reason: string): void {
    this.#error = reason;
    this.#buffer = new Uint8Array(0);
    this.#used = 0;
  }
}

/**
 * Writes frames in order, one write at a time; frames queued while a write is in flight go out
 * together in the next one, up to `maxWriteBytes` (one copy, one syscall, one wake-up of the
 * reader), so a busy pipe carries fewer, larger writes and an idle one adds no delay.
 *
 * @example Three frames pushed in one turn make two writes
 * ```ts
 * import { PluginFrameWriter } from "./plugin_stream.ts";
 * import assert from "node:assert/strict";
 *
 * const writes: number[][] = [];
 * const writer = new PluginFrameWriter(async (bytes) => void writes.push([...bytes]));
 * writer.push(new Uint8Array([1]));
 * writer.push(new Uint8Array([2]));
 * writer.push(new Uint8Array([3]));
 * await writer.idle();
 * assert.deepEqual(writes, [[1], [2, 3]]);
 * ```
 */
export class PluginFrameWriter {
  readonly #write: (bytes: Uint8Array) => Promise<void>;
  readonly #maxWriteBytes: number;
  #queued: Uint8Array[] = [];
  #pump: Promise<void> | null = null;

  /**
   * @param write Writes all of `bytes`; if it rejects, what is queued is dropped.
   * @param maxWriteBytes Most bytes joined into one write (a bigger frame is written alone).
   */
  constructor(write: (bytes: Uint8Array) => Promise<void>, maxWriteBytes = 256 * 1024) {
    this.#write = write;
    this.#maxWriteBytes = maxWriteBytes;
  }

  /**
   * Queues a frame.
   *
   * @param frame Its bytes (kept until written: do not change them).
   */
  push(frame: Uint8Array): void {
    this.#queued.push(frame);
    this.#pump ??= this.#run();
  }

  /** Settles once everything pushed so far was written (or a write failed). */
  async idle(): Promise<void> {
    while (this.#pump !== null) await this.#pump;
  }

  async #run(): Promise<void> {
    try {
      while (this.#queued.length > 0) {
        // Join queued frames up to the limit; the first one always goes.
        let count = 1;
        let size = this.#queued[0].length;
        while (
          count < this.#queued.length && size + this.#queued[count].length <= this.#maxWriteBytes
        ) {
          size += this.#queued[count++].length;
        }
        const frames = this.#queued.splice(0, count);
        let bytes = frames[0];
        if (count > 1) {
          bytes = new Uint8Array(size);
          let at = 0;
          for (const frame of frames) {
            bytes.set(frame, at);
            at += frame.length;
          }
        }
        await this.#write(bytes);
      }
    } catch {
      this.#queued = [];
    } finally {
      this.#pump = null;
    }
  }
}
