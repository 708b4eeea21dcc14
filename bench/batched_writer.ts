/**
 * The write side shared by the load generator's connections and the raw relay: frames queued
 * during one event-loop turn are written with one socket write (turned into one buffer by the
 * owner's `encode`: joined, or sealed into a record), one write in flight at a time, the queue
 * bounded. It is what `shared/transport.ts` does for the servers, reduced to what the bench
 * needs without its timers and Error frames.
 *
 * It never holds more than `maxQueueBytes` queued (over the bound it reports the failure and
 * drops the queue), and never throws out of its write loop.
 *
 * @module
 */

/**
 * Turns a batch (arrays of whole frames, `totalBytes` in all) into the bytes of one write;
 * `join` is the default encoder (concatenation into a buffer reused between writes).
 */
export type BatchEncoder = (
  batch: readonly Uint8Array[],
  totalBytes: number,
  join: (batch: readonly Uint8Array[], totalBytes: number) => Uint8Array,
) => Uint8Array | Promise<Uint8Array>;

/** Options of {@linkcode BatchedWriter}. */
export interface BatchedWriterOptions {
  /** Bound on queued bytes; above it `onFailure` is called and nothing more is queued. */
  readonly maxQueueBytes: number;
  /** Called once when the queue bound is crossed or a write fails. */
  readonly onFailure: (reason: string) => void;
  /**
   * Makes one write's bytes from a batch.
   *
   * @default {joins the batch into a buffer reused between writes}
   */
  readonly encode?: BatchEncoder;
}

/** Join buffers up to this size are kept between writes. */
const KEEP_JOIN_BYTES = 64 * 1024;

/**
 * Per-turn batched, bounded writes to one socket.
 *
 * @example
 * ```ts
 * import { BatchedWriter } from "./batched_writer.ts";
 * import assert from "node:assert/strict";
 *
 * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
 * const server = await listener.accept();
 * const writer = new BatchedWriter(client, { maxQueueBytes: 1024, onFailure: assert.fail });
 * writer.send(new Uint8Array([1, 2]));
 * writer.send(new Uint8Array([3]));
 * await writer.flushed();
 * assert.equal(writer.writes, 1); // one turn, one write
 * const got = new Uint8Array(3);
 * assert.equal(await server.read(got), 3);
 * assert.deepEqual([...got], [1, 2, 3]);
 * client.close();
 * server.close();
 * listener.close();
 * ```
 */
export class BatchedWriter {
  readonly #conn: Pick<Deno.Conn, "write">;
  readonly #maxQueueBytes: number;
  readonly #onFailure: (reason: string) => void;
  readonly #encode: BatchEncoder;
  #queue: Uint8Array[] = [];
  #spare: Uint8Array[] = [];
  #queuedBytes = 0;
  #flushScheduled = false;
  #writing: Promise<void> | undefined;
  #stopped = false;
  #join = new Uint8Array(4096);
  #writes = 0;

  /**
   * @param conn The socket to write to (not owned: closing it is the caller's job).
   * @param options Bound, failure callback and encoder.
   */
  constructor(conn: Pick<Deno.Conn, "write">, options: BatchedWriterOptions) {
    this.#conn = conn;
    this.#maxQueueBytes = options.maxQueueBytes;
    this.#onFailure = options.onFailure;
    this.#encode = options.encode ?? ((batch, total, join) => join(batch, total));
  }

  /** Socket writes completed. */
  get writes(): number {
    return this.#writes;
  }

  /**
   * Queues bytes (whole frames; never modified, so they may be shared by many writers).
   *
   * @param bytes The frames.
   * @returns `false` if stopped, or if this crossed the bound (then `onFailure` was called).
   */
  send(bytes: Uint8Array): boolean {
    if (this.#stopped) return false;
    if (this.#queuedBytes + bytes.length > this.#maxQueueBytes) {
      this.#fail(`outgoing queue above ${this.#maxQueueBytes} bytes`);
      return false;
    }
    this.#queue.push(bytes);
    this.#queuedBytes += bytes.length;
    if (!this.#flushScheduled && this.#writing === undefined) {
      this.#flushScheduled = true;
      // A microtask runs after everything the current task queues: one turn, one write.
      queueMicrotask(this.#flush);
    }
    return true;
  }

  /** Stops writing: queued bytes are dropped, later sends refused. */
  stop(): void {
    this.#stopped = true;
    this.#queue.length = 0;
    this.#queuedBytes = 0;
  }

  /** Resolves once nothing is being written and, unless stopped, nothing is queued. */
  async flushed(): Promise<void> {
    while (true) {
      if (this.#writing !== undefined) await this.#writing;
      else if (this.#flushScheduled && !this.#stopped) {
        await new Promise<void>((resolve) => queueMicrotask(resolve));
      } else return;
    }
  }

  #fail(reason: string): void {
    if (this.#stopped) return;
    this.stop();
    this.#onFailure(reason);
  }

  readonly #flush = (): void => {
    this.#flushScheduled = false;
    if (this.#writing === undefined && this.#queue.length > 0 && !this.#stopped) {
      this.#writing = this.#writeLoop();
    }
  };

  async #writeLoop(): Promise<void> {
    try {
      while (this.#queue.length > 0 && !this.#stopped) {
        const batch = this.#queue;
        this.#queue = this.#spare;
        const total = this.#queuedBytes;
        this.#queuedBytes = 0;
        const encoded = this.#encode(batch, total, this.#joinBatch);
        const bytes = encoded instanceof Uint8Array ? encoded : await encoded;
        let offset = 0;
        while (offset < bytes.length) {
          offset += await this.#conn.write(offset === 0 ? bytes : bytes.subarray(offset));
        }
        this.#writes++;
        batch.length = 0;
        this.#spare = batch;
      }
    } catch (error) {
      this.#fail(`write failed: ${String(error)}`);
    } finally {
      this.#writing = undefined;
    }
  }

  /** Joins a batch into one buffer, reused between writes (only one write is in flight). */
  readonly #joinBatch = (batch: readonly Uint8Array[], total: number): Uint8Array => {
    if (batch.length === 1) return batch[0];
    let out: Uint8Array;
    if (total > KEEP_JOIN_BYTES) out = new Uint8Array(total);
    else {
      if (this.#join.length < total) this.#join = new Uint8Array(KEEP_JOIN_BYTES);
      out = this.#join.subarray(0, total);
    }
    let offset = 0;
    for (const chunk of batch) {
      out.set(chunk, offset);
      offset += chunk.length;
    }
    return out;
  };
}
