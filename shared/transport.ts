/**
 * The Deno TCP adapter of the wire protocol: {@linkcode FrameConnection} is a
 * {@linkcode FrameSession} (the runtime-free core in `frame_session.ts`: frames, records, the
 * outgoing queue) over a `Deno.Conn`. {@linkcode listenFrames} and {@linkcode connectFrames}
 * open such connections. The core's types are re-exported here, so code that only needs
 * frames over TCP imports one module.
 *
 * This adapter only moves bytes: a read loop with a buffer that grows and shrinks with the
 * traffic, one socket write per batch the core hands it, read pauses for rate limits, and the
 * mapping of Deno's socket errors.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import {
  type ByteChannel,
  type ChannelErrorKind,
  type ChannelSink,
  type CloseInfo,
  type CloseReason,
  FrameSession,
  type FrameSessionOptions,
  type PeerAddress,
} from "./frame_session.ts";
import { createRecordCipher } from "./create_record_cipher.ts";
import { acceptLoop, handOver } from "./accept_loop.ts";

export {
  broadcast,
  type ByteChannel,
  type ChannelErrorKind,
  ChannelOverflowError,
  type ChannelSink,
  type CloseInfo,
  type CloseReason,
  type CloseSource,
  encodeErrorFrame,
  type FrameHandler,
  FrameSession,
  type FrameSessionOptions,
  type FrameTransport,
  type PeerAddress,
  recordBytesFor,
  type SealingKey,
  type SealingKeys,
  TransportError,
  type TransportErrorCode,
} from "./frame_session.ts";

const logger = getLogger(["sustenet", "system", "transport"]);

/**
 * First size of the read buffer; it doubles (up to `readBufferBytes`) when a read fills it. A
 * pending read holds its buffer for as long as the peer is quiet, so this is what every idle
 * connection pays: 512 bytes hold a handshake frame or a dozen small records, and busier
 * links grow past it on their first full reads.
 */
const INITIAL_READ_BUFFER_BYTES = 512;

/** Consecutive reads using under a quarter of a grown read buffer before it shrinks back. */
const SHRINK_AFTER_SMALL_READS = 64;

/** Options of {@linkcode FrameConnection}: those of every {@linkcode FrameSession}. */
export type FrameConnectionOptions = FrameSessionOptions;

function checkPositiveInteger(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(`${name} must be a positive integer, got ${value}`);
  }
  return value;
}

/** A `Deno.Addr` as a {@linkcode PeerAddress} (non-IP addresses keep only their kind). */
function toPeerAddress(addr: Deno.Addr): PeerAddress {
  return addr.transport === "tcp" || addr.transport === "udp"
    ? addr
    : { transport: addr.transport, hostname: "", port: 0 };
}

/** A `Deno.Conn` as a {@linkcode ByteChannel}. */
class TcpChannel implements ByteChannel {
  readonly remoteAddr: PeerAddress;
  readonly #conn: Deno.Conn;
  readonly #readBufferBytes: number;
  #readLoop: Promise<void> | undefined;
  /** No read before this time (`performance.now()` ms); see `pauseReading`. */
  #readsResumeAt = 0;
  /** Ends a read pause early (set while the read loop waits out a pause). */
  #wakeReads: (() => void) | undefined;

  constructor(conn: Deno.Conn, readBufferBytes: number) {
    this.#conn = conn;
    this.remoteAddr = toPeerAddress(conn.remoteAddr);
    this.#readBufferBytes = readBufferBytes;
  }

  startReading(sink: ChannelSink): void {
    this.#readLoop = this.#runReads(sink);
  }

  write(bytes: Uint8Array): Promise<number> {
    return this.#conn.write(bytes);
  }

  pauseReading(untilMs: number): void {
    this.#readsResumeAt = Math.max(this.#readsResumeAt, untilMs);
  }

  async close(_info: CloseInfo): Promise<void> {
    try {
      this.#conn.close();
    } catch (error) {
      if (!(error instanceof Deno.errors.BadResource)) throw error;
      // Already closed (by the runtime after a failure): nothing left to release.
    }
    this.#wakeReads?.(); // a paused read loop ends now, not when its pause would have
    await this.#readLoop;
  }

  classify(error: unknown): ChannelErrorKind {
    if (
      error instanceof Deno.errors.ConnectionReset || error instanceof Deno.errors.BrokenPipe ||
      error instanceof Deno.errors.ConnectionAborted
    ) {
      return "peer_gone";
    }
    return error instanceof Deno.errors.BadResource ? "closed" : "failure";
  }

  async #runReads(sink: ChannelSink): Promise<void> {
    const max = this.#readBufferBytes;
    const initial = Math.min(INITIAL_READ_BUFFER_BYTES, max);
    // Small first: most connections are idle most of the time and a buffer is held per read.
    let buffer = new Uint8Array(initial);
    let smallReads = 0;
    try {
      while (sink.isOpen()) {
        // No clock read per socket read unless a pause was asked (0 = none pending).
        if (this.#readsResumeAt !== 0) {
          const pauseMs = this.#readsResumeAt - performance.now();
          if (pauseMs <= 0) this.#readsResumeAt = 0;
          else {
            let timer: ReturnType<typeof setTimeout> | undefined;
            await new Promise<void>((resolve) => {
              this.#wakeReads = resolve;
              timer = setTimeout(resolve, pauseMs);
            });
            clearTimeout(timer);
            this.#wakeReads = undefined;
            // The pause is not idleness: the peer had sent more than it may.
            sink.resumed();
            continue;
          }
        }
        const n = await this.#conn.read(buffer);
        if (!sink.isOpen()) return;
        if (n === null) {
          sink.ended("connection closed by peer");
          return;
        }
        // The decoder lets go of `buffer` once drained (frames are delivered and handlers have
        // returned by then), so the next read may reuse or replace it.
        await sink.receive(buffer.subarray(0, n));
        if (n === buffer.length) {
          smallReads = 0;
          // A peer that has not authenticated gets no bigger buffer than the first one.
          if (buffer.length < max && sink.readLimitsRaised()) {
            buffer = new Uint8Array(Math.min(buffer.length * 2, max));
          }
        } else if (buffer.length > initial && n < buffer.length / 4) {
          if (++smallReads >= SHRINK_AFTER_SMALL_READS) {
            smallReads = 0;
            buffer = new Uint8Array(initial);
          }
        } else {
          smallReads = 0;
        }
      }
    } catch (error) {
      if (!sink.isOpen()) return; // our own close interrupted the read
      sink.failed("read", error);
    }
  }
}

/**
 * One framed TCP connection: a {@linkcode FrameSession} over a `Deno.Conn` (frames in through a
 * handler, pre-encoded frames out through a bounded, per-turn batched queue, sealed records
 * after {@linkcode FrameSession.startSealing}).
 *
 * @example Echo one frame over loopback
 * ```ts
 * import { connectFrames, listenFrames } from "./transport.ts";
 * import { encodeFrame } from "./protocol/frame.ts";
 * import assert from "node:assert/strict";
 *
 * const server = listenFrames({
 *   port: 0,
 *   onFrame: (frame, conn) => conn.send(encodeFrame(frame.type, frame.payload)),
 * });
 * const got = Promise.withResolvers<number>();
 * const client = await connectFrames({
 *   port: server.addr.port,
 *   onFrame: (frame) => got.resolve(frame.payload[0]),
 * });
 * client.send(encodeFrame(0x04, new Uint8Array([42, 0, 0, 0])));
 * assert.equal(await got.promise, 42);
 * assert.equal((await client.close()).by, "local");
 * await server.close();
 * ```
 */
export class FrameConnection extends FrameSession {
  /** This side's address. */
  readonly localAddr: Deno.Addr;

  /**
   * Wraps an open connection; timers start now, reading starts once there is a handler.
   *
   * @param conn A connected socket; the connection owns it from now on.
   * @param options Bounds, timeouts and the frame handler.
   * @throws {RangeError} If an option is out of range.
   */
  constructor(conn: Deno.Conn, options: FrameConnectionOptions = {}) {
    const readBufferBytes = checkPositiveInteger(
      "readBufferBytes",
      options.readBufferBytes ?? 64 * 1024,
    );
    // The fast server ciphers (FFI, node:crypto) unless the caller brought its own factory.
    super(new TcpChannel(conn, readBufferBytes), { createRecordCipher, ...options });
    this.localAddr = conn.localAddr;
  }
}

/** Options of {@linkcode listenFrames}; connection options apply to every accepted one. */
export interface ListenFramesOptions extends FrameConnectionOptions {
  /**
   * Address to bind.
   *
   * @default {"127.0.0.1"}
   */
  readonly hostname?: string;
  /** Port to bind; 0 picks a free one (read it back from {@linkcode FrameListener.addr}). */
  readonly port: number;
  /** Called with each accepted connection; set its handler here unless `onFrame` is given. */
  readonly onConnection?: (connection: FrameConnection) => void;
}

/** A listening socket made by {@linkcode listenFrames}. */
export interface FrameListener {
  /** The bound address (with the real port when 0 was asked). */
  readonly addr: Deno.NetAddr;
  /** Connections accepted and not yet closed. */
  readonly connections: ReadonlySet<FrameConnection>;
  /**
   * Stops accepting, closes every open connection (with `reason` as Error frame if given) and
   * resolves once all are closed.
   */
  close(reason?: CloseReason): Promise<void>;
}

/**
 * Listens for TCP connections and wraps each in a {@linkcode FrameConnection} (no-delay on).
 *
 * @param options Address, connection options and the callbacks.
 * @returns The listener; its `addr.port` is the real port.
 *
 * @example
 * ```ts
 * import { listenFrames } from "./transport.ts";
 * import assert from "node:assert/strict";
 *
 * const server = listenFrames({ port: 0, onFrame: () => {} });
 * assert.ok(server.addr.port > 0);
 * await server.close();
 * ```
 */
export function listenFrames(options: ListenFramesOptions): FrameListener {
  const listener = Deno.listen({
    hostname: options.hostname ?? "127.0.0.1",
    port: options.port,
    transport: "tcp",
  });
  const connections = new Set<FrameConnection>();
  let closing = false;

  const accepting = acceptLoop(listener, {
    logger,
    label: "TCP",
    closing: () => closing,
    onConn: (conn) => {
      conn.setNoDelay(true);
      handOver(new FrameConnection(conn, options), connections, options.onConnection, logger);
    },
  });

  return {
    addr: listener.addr,
    connections,
    async close(reason?: CloseReason): Promise<void> {
      if (!closing) {
        closing = true;
        listener.close();
      }
      await accepting;
      await Promise.all([...connections].map((c) => c.close(reason)));
    },
  };
}

/** Options of {@linkcode connectFrames}. */
export interface ConnectFramesOptions extends FrameConnectionOptions {
  /**
   * Host to connect to.
   *
   * @default {"127.0.0.1"}
   */
  readonly hostname?: string;
  /** Port to connect to. */
  readonly port: number;
}

/**
 * Connects over TCP (no-delay on) and wraps the socket in a {@linkcode FrameConnection}.
 *
 * @param options Address and connection options (give `onFrame`, or call `start` at once).
 * @returns The connection; close it with {@linkcode FrameConnection.close}.
 *
 * @example
 * ```ts
 * import { connectFrames, listenFrames } from "./transport.ts";
 * import assert from "node:assert/strict";
 *
 * const server = listenFrames({ port: 0, onFrame: () => {} });
 * const client = await connectFrames({ port: server.addr.port, onFrame: () => {} });
 * assert.equal(client.isOpen, true);
 * await client.close();
 * await server.close();
 * ```
 */
export async function connectFrames(options: ConnectFramesOptions): Promise<FrameConnection> {
  const conn = await Deno.connect({
    hostname: options.hostname ?? "127.0.0.1",
    port: options.port,
    transport: "tcp",
  });
  conn.setNoDelay(true);
  return new FrameConnection(conn, options);
}
