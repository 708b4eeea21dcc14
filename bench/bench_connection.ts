/**
 * The load generator's lean TCP connection: a raw `Deno.TcpConn` with a reused read buffer,
 * frames visited in place by {@linkcode FrameScanner}, and, once sealed, the protocol's record
 * layer (`shared/sealed_record.ts`) with the server runtime's ciphers, exactly as a real
 * client's bytes would be. Everything sent in one event-loop turn goes out as one write (one
 * record when sealed), like the server's transport ({@linkcode BatchedWriter}).
 *
 * It exists so that one generator process can drive hundreds of connections at millions of
 * frames per second while costing less than the server it measures. It must never grow its
 * outgoing queue beyond its bound, never open records out of order, never throw out of its
 * read loop (a failure closes the connection and resolves {@linkcode BenchConnection.closed}),
 * and is for loopback benches only: it checks no timeouts.
 *
 * @module
 */

import { NodeRecordCipher } from "../shared/record_cipher_node.ts";
import { type RecordCipher, RecordError } from "../shared/record_cipher.ts";
import { SealedRecordReader, SealedRecordWriter } from "../shared/sealed_record.ts";
import { BatchedWriter } from "./batched_writer.ts";
import type { BenchSocket } from "./bench_socket.ts";
import { RawWebSocket } from "./raw_websocket.ts";
import { type FrameRunVisitor, FrameScanner, type FrameVisitor } from "./frame_scanner.ts";

/** Options of {@linkcode BenchConnection.connect}. */
export interface BenchConnectionOptions {
  /**
   * Bytes of the read buffer, reused for every read of this connection.
   *
   * @default {32768}
   */
  readonly readBufferBytes?: number;
  /**
   * Bound on bytes queued but not yet written; above it the connection closes.
   *
   * @default {4194304}
   */
  readonly maxQueueBytes?: number;
}

/** One direction's record key: 32 raw bytes (a `node:crypto` cipher is made) or a cipher. */
export type BenchSealingKey = Uint8Array | RecordCipher;

/** Both directions' record keys, from the client's point of view. */
export interface BenchSealingKeys {
  /** Seals what this side sends. */
  readonly sendKey: BenchSealingKey;
  /** Opens what this side receives. */
  readonly receiveKey: BenchSealingKey;
}

function toCipher(key: BenchSealingKey): RecordCipher {
  return key instanceof Uint8Array ? new NodeRecordCipher(key) : key;
}

/**
 * One load-generator connection.
 *
 * @example Frames in and out over loopback
 * ```ts
 * import { BenchConnection } from "./bench_connection.ts";
 * import { encodeFrame } from "../shared/protocol/frame.ts";
 * import assert from "node:assert/strict";
 *
 * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const accepted = listener.accept();
 * const client = await BenchConnection.connect("127.0.0.1", listener.addr.port);
 * const server = BenchConnection.from(await accepted);
 * const got = Promise.withResolvers<number>();
 * server.startReading((view, offset) => got.resolve(view.getUint8(offset)));
 * client.startReading(() => {});
 * client.send(encodeFrame(0x80, new Uint8Array(32)));
 * assert.equal(await got.promise, 0x80);
 * client.close();
 * server.close();
 * await Promise.all([client.closed, server.closed]);
 * listener.close();
 * ```
 */
export class BenchConnection {
  /** Resolves with the reason once the socket is closed and the read loop has ended. */
  readonly closed: Promise<string>;
  /** Time of the read being handled (`performance.timeOrigin + performance.now()`, ms). */
  lastReadMs = 0;
  /** Frames received. */
  framesIn = 0;
  /** Bytes read from the socket. */
  bytesIn = 0;

  readonly #conn: BenchSocket;
  readonly #readBufferBytes: number;
  readonly #writer: BatchedWriter;
  readonly #resolveClosed: (reason: string) => void;
  readonly #scanner = new FrameScanner();
  #visit: FrameVisitor<BenchConnection> = () => {};
  /** Set by {@linkcode startReadingRuns}: frames are then handed over a run at a time. */
  #visitRun: FrameRunVisitor<BenchConnection> | undefined;
  #reading: Promise<void> | undefined;
  #open = true;
  #reason = "";

  #recordReader: SealedRecordReader | undefined;
  #recordWriter: SealedRecordWriter | undefined;
  /** The drain in progress when a record opens asynchronously; later bytes wait for it. */
  #draining: Promise<string | undefined> | undefined;
  #inScan = false;
  #afterScan: (() => Promise<void>) | undefined;

  private constructor(conn: BenchSocket, options: BenchConnectionOptions) {
    this.#conn = conn;
    this.#readBufferBytes = options.readBufferBytes ?? 32 * 1024;
    this.#writer = new BatchedWriter(conn, {
      maxQueueBytes: options.maxQueueBytes ?? 4 * 1024 * 1024,
      onFailure: (reason) => this.close(reason),
      encode: (batch, total, join) => {
        const writer = this.#recordWriter;
        return writer === undefined ? join(batch, total) : writer.seal(batch);
      },
    });
    const { promise, resolve } = Promise.withResolvers<string>();
    this.closed = promise;
    this.#resolveClosed = resolve;
  }

  /**
   * Connects over TCP with no-delay on.
   *
   * @param hostname The host (loopback).
   * @param port The port.
   * @param options Buffer and queue sizes.
   */
  static async connect(
    hostname: string,
    port: number,
    options: BenchConnectionOptions = {},
  ): Promise<BenchConnection> {
    const conn = await Deno.connect({ hostname, port, transport: "tcp" });
    return BenchConnection.from(conn, options);
  }

  /**
   * Connects over WebSocket (`ws://host:port/path`): the same connection, each batch one
   * masked binary message ({@linkcode RawWebSocket}).
   *
   * @param url The cluster's WebSocket URL.
   * @param options Buffer and queue sizes.
   */
  static async connectWebSocket(
    url: string,
    options: BenchConnectionOptions = {},
  ): Promise<BenchConnection> {
    return new BenchConnection(await RawWebSocket.connect(url), options);
  }

  /**
   * Wraps an already connected socket (no-delay is turned on).
   *
   * @param conn The socket; the connection owns it from now on.
   * @param options Buffer and queue sizes.
   */
  static from(conn: Deno.TcpConn, options: BenchConnectionOptions = {}): BenchConnection {
    conn.setNoDelay(true);
    return new BenchConnection(conn, options);
  }

  /** `true` until the connection closes. */
  get isOpen(): boolean {
    return this.#open;
  }

  /**
   * Starts the read loop (or replaces the frame visitor if it runs already).
   *
   * @param visit Called for every frame received, with this connection as its context; see
   * {@linkcode FrameVisitor}.
   */
  startReading(visit: FrameVisitor<BenchConnection>): void {
    this.#visit = visit;
    this.#visitRun = undefined;
    this.#reading ??= this.#readLoop();
  }

  /**
   * Starts the read loop (or replaces the visitor if it runs already) handing over whole frames
   * a run per read ({@linkcode FrameRunVisitor}): the load generator's path for millions of
   * frames per second. {@linkcode holdFrames} takes effect only at the end of a run here.
   *
   * @param visitRun Called with each run of whole frames, with this connection as its context.
   *
   * @example
   * ```ts
   * import { BenchConnection } from "./bench_connection.ts";
   * import { encodeFrame } from "../shared/protocol/frame.ts";
   * import assert from "node:assert/strict";
   *
   * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
   * const accepted = listener.accept();
   * const client = await BenchConnection.connect("127.0.0.1", listener.addr.port);
   * const server = BenchConnection.from(await accepted);
   * const got = Promise.withResolvers<number>();
   * let frames = 0;
   * server.startReadingRuns((view, start, end) => {
   *   for (let pos = start; pos < end; pos += 4 + view.getUint32(pos)) frames++;
   *   if (frames === 2) got.resolve(frames);
   * });
   * client.startReading(() => {});
   * client.send(encodeFrame(0x80, new Uint8Array(32)));
   * client.send(encodeFrame(0x81, new Uint8Array(0)));
   * assert.equal(await got.promise, 2);
   * client.close();
   * server.close();
   * await Promise.all([client.closed, server.closed]);
   * listener.close();
   * ```
   */
  startReadingRuns(visitRun: FrameRunVisitor<BenchConnection>): void {
    this.#visitRun = visitRun;
    this.#reading ??= this.#readLoop();
  }

  /**
   * Holds received bytes after the frame being visited, unread, until
   * {@linkcode startSealing} (they are records) or {@linkcode resumeFrames} (they are frames).
   * Call it from the visitor on the last plaintext frame of a handshake.
   */
  holdFrames(): void {
    this.#scanner.stop();
  }

  /**
   * Seals both directions from now on: frames queued from here are sealed, and bytes held since
   * {@linkcode holdFrames} and all later ones are opened as records (docs/PROTOCOL.md, "Sealed
   * records").
   *
   * @param keys The client's send and receive keys or ciphers.
   * @throws {RangeError} If a raw key is not 32 bytes.
   */
  startSealing(keys: BenchSealingKeys): void {
    this.#recordWriter = new SealedRecordWriter(toCipher(keys.sendKey));
    // In place: each plaintext is scanned at once and nothing of it is kept.
    const reader = new SealedRecordReader(toCipher(keys.receiveKey), { inPlace: true });
    this.#recordReader = reader;
    this.#afterHold(() => this.#openRecords(this.#scanner.takeRemainder()));
  }

  /** Reads bytes held since {@linkcode holdFrames} as frames again. */
  resumeFrames(): void {
    this.#afterHold(() => this.#scan(this.#scanner.takeRemainder()));
  }

  /**
   * Handles held bytes now, or, if called from a visitor, right after the scan in progress (the
   * scanner keeps the rest of that read only once the visitor has returned).
   */
  #afterHold(handle: () => string | undefined | Promise<string | undefined>): void {
    const run = async (): Promise<void> => {
      const failure = await handle();
      if (failure !== undefined) this.close(failure);
    };
    if (this.#inScan) this.#afterScan = run;
    else run().catch((error: unknown) => this.close(`held bytes failed: ${String(error)}`));
  }

  /**
   * Queues whole encoded frames; everything queued in one turn is written together.
   *
   * @param frame One or more whole frames; not modified, may be shared by many connections.
   * @returns `false` if the connection is closed or the frame tripped the queue bound.
   */
  send(frame: Uint8Array): boolean {
    return this.#open && this.#writer.send(frame);
  }

  /**
   * Closes the socket (queued bytes are dropped); idempotent.
   *
   * @param reason Why, reported by {@linkcode closed}.
   */
  close(reason = "closed by owner"): void {
    if (!this.#open) return;
    this.#open = false;
    this.#reason = reason;
    this.#writer.stop();
    try {
      this.#conn.close();
    } catch (error) {
      if (!(error instanceof Deno.errors.BadResource)) throw error;
      // Already closed by the runtime after a failed read or write.
    }
    Promise.all([this.#reading, this.#writer.flushed()])
      .then(() => this.#resolveClosed(this.#reason));
  }

  async #readLoop(): Promise<void> {
    const buffer = new Uint8Array(this.#readBufferBytes);
    try {
      while (this.#open) {
        // Sealed, with no open pending: read straight into the record reader (no copy per read).
        const reader = this.#draining === undefined ? this.#recordReader : undefined;
        const n = await this.#conn.read(
          reader === undefined ? buffer : reader.space(this.#readBufferBytes),
        );
        if (n === null) {
          this.close("connection closed by peer");
          return;
        }
        this.bytesIn += n;
        this.lastReadMs = performance.timeOrigin + performance.now();
        let failure: string | undefined;
        if (reader === undefined) {
          const ingested = this.#ingest(buffer.subarray(0, n));
          failure = typeof ingested === "object" ? await ingested : ingested;
        } else {
          reader.commit(n);
          const opened = this.#openBuffered();
          failure = typeof opened === "object" ? await opened : opened;
        }
        if (failure !== undefined) {
          this.close(failure);
          return;
        }
      }
    } catch (error) {
      if (this.#open) this.close(`read failed: ${String(error)}`);
    }
  }

  /**
   * Feeds one read's bytes: frames, or records once sealed; returns a failure, if any. Plain
   * frames are handled synchronously (no promise per read); a promise only when records open
   * asynchronously or the visitor switched mode mid-read.
   */
  #ingest(chunk: Uint8Array): string | undefined | Promise<string | undefined> {
    if (this.#recordReader === undefined) {
      const failure = this.#scan(chunk);
      return failure !== undefined || this.#afterScan === undefined
        ? failure
        : this.#runAfterScan();
    }
    return this.#ingestRecords(chunk);
  }

  async #ingestRecords(chunk: Uint8Array): Promise<string | undefined> {
    const failure = await this.#openRecords(chunk);
    if (failure !== undefined || this.#afterScan === undefined) return failure;
    return await this.#runAfterScan();
  }

  /** The visitor switched mode mid-read (startSealing / resumeFrames): handles its bytes now. */
  async #runAfterScan(): Promise<undefined> {
    const after = this.#afterScan as () => Promise<void>;
    this.#afterScan = undefined;
    await after();
    return undefined;
  }

  /** Visits the frames of a plaintext chunk; returns a failure reason, if any. */
  #scan(chunk: Uint8Array): string | undefined {
    this.#inScan = true;
    const visitRun = this.#visitRun;
    const result = visitRun === undefined
      ? this.#scanner.push(chunk, this.#visit, this)
      : this.#scanner.pushRuns(chunk, visitRun, this);
    this.#inScan = false;
    if (typeof result !== "number") return `bad frame: ${result.message}`;
    this.framesIn += result;
    return undefined;
  }

  /** Buffers record bytes and opens every complete record, in order. */
  #openRecords(chunk: Uint8Array): string | undefined | Promise<string | undefined> {
    (this.#recordReader as SealedRecordReader).push(chunk);
    return this.#openBuffered();
  }

  /** Opens every complete record buffered in the reader, in order. */
  #openBuffered(): string | undefined | Promise<string | undefined> {
    // A drain awaiting an asynchronous open will reach these bytes after it, in order.
    if (this.#draining !== undefined) return this.#draining;
    const result = this.#drainSync();
    if (typeof result !== "object") return result;
    this.#draining = this.#drainAsync(result);
    return this.#draining;
  }

  /** Opens records while the cipher answers synchronously; hands back a pending open. */
  #drainSync(): string | undefined | Promise<Uint8Array | RecordError> {
    const reader = this.#recordReader as SealedRecordReader;
    while (true) {
      const plaintext = reader.next();
      if (plaintext === undefined) return undefined;
      if (plaintext instanceof RecordError) return `bad record: ${plaintext.message}`;
      if (plaintext instanceof Promise) return plaintext;
      const failure = this.#scan(plaintext);
      if (failure !== undefined) return failure;
    }
  }

  async #drainAsync(
    pending: Promise<Uint8Array | RecordError>,
  ): Promise<string | undefined> {
    try {
      while (true) {
        const plaintext = await pending;
        if (plaintext instanceof RecordError) return `bad record: ${plaintext.message}`;
        const failure = this.#scan(plaintext);
        if (failure !== undefined) return failure;
        const next = this.#drainSync();
        if (typeof next !== "object") return next;
        pending = next;
      }
    } finally {
      // Cleared in the same turn as the last check for bytes, so none can be left behind.
      this.#draining = undefined;
    }
  }
}
