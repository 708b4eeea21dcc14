/**
 * The TLS acceptor under every TLS listener: {@linkcode listenTlsStreams} accepts TCP on the
 * public port, relays each socket over loopback to an internal `Deno.listenTls`, completes the
 * handshake under the handshake timeout and hands the decrypted stream (with the real peer's
 * address) to its owner: the frame transport (`tls_listener.ts`, the raw protocol) or the
 * WebSocket listener (`websocket_listener.ts`, `wss://`).
 *
 * It must never hand over a stream before its handshake completed, never let a handshake
 * outlive the handshake timeout, and never hold more than `maxHandshakes` of them: a failed or
 * stalled handshake (a plain client on the TLS port, a scanner) closes that one socket with a
 * logged, rate-limited reason.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { acceptLoop } from "./accept_loop.ts";
import { LogThrottle } from "./log_throttle.ts";

const logger = getLogger(["sustenet", "system", "tls"]);

/** Log lines per reason per 10 s about failed handshakes; the rest are counted. */
const LOG_LINES = 5;
const LOG_INTERVAL_MS = 10_000;

/** Bytes each relay direction moves per read. */
const RELAY_CHUNK_BYTES = 16 * 1024;

/**
 * Options of {@linkcode listenTlsStreams}.
 *
 * @example
 * ```ts
 * import type { ListenTlsStreamsOptions } from "./tls_stream_listener.ts";
 * import assert from "node:assert/strict";
 *
 * const options: ListenTlsStreamsOptions = {
 *   port: 0,
 *   cert: "PEM",
 *   key: "PEM",
 *   onStream: (conn) => conn.close(),
 * };
 * assert.equal(options.port, 0);
 * ```
 */
export interface ListenTlsStreamsOptions {
  /**
   * Address to bind.
   *
   * @default {"127.0.0.1"}
   */
  readonly hostname?: string;
  /** Port; 0 picks a free one. */
  readonly port: number;
  /** Certificate chain, PEM (checked first with `loadTlsCredentials`). */
  readonly cert: string;
  /** Private key, PEM. */
  readonly key: string;
  /**
   * Longest TLS handshake, from the TCP accept, in ms.
   *
   * @default {10000}
   */
  readonly handshakeTimeoutMs?: number;
  /**
   * Most connections in their TLS handshake at once; a new one past it is closed at once.
   *
   * @default {256}
   */
  readonly maxHandshakes?: number;
  /** What the stream is for, in log lines ("TLS", "wss"). @default {"TLS"} */
  readonly label?: string;
  /**
   * Takes each stream whose handshake completed; the callee owns it (closes it). Its
   * `remoteAddr` is the real peer, not the loopback hop.
   */
  readonly onStream: (stream: Deno.Conn<Deno.NetAddr>) => void;
}

/** A listener made by {@linkcode listenTlsStreams}. */
export interface TlsStreamListener {
  /** The public (TCP) address, with the real port when 0 was asked. */
  readonly addr: Deno.NetAddr;
  /**
   * Stops accepting and closes the sockets still in their handshake; streams already handed
   * over are their owner's to close.
   */
  close(): Promise<void>;
}

/** Why a TLS handshake did not complete, from rustls' message, short and never secret. */
function handshakeFailure(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  if (/InvalidContentType|corrupt message|not a TLS|HTTP request/i.test(message)) {
    return "not TLS (a plain client on the TLS port?)";
  }
  return message.length > 200 ? `${message.slice(0, 200)}…` : message;
}

/**
 * A TLS stream with the address of the client behind the relay: what the server sees is the
 * real peer, not the loopback hop (per-address limits key on it).
 */
class RelayedTlsConn implements Deno.Conn<Deno.NetAddr> {
  readonly #tls: Deno.TlsConn;
  readonly remoteAddr: Deno.NetAddr;
  readonly localAddr: Deno.NetAddr;

  constructor(tls: Deno.TlsConn, outer: Deno.TcpConn) {
    this.#tls = tls;
    this.remoteAddr = outer.remoteAddr;
    this.localAddr = outer.localAddr;
  }
  read(p: Uint8Array): Promise<number | null> {
    return this.#tls.read(p);
  }
  write(p: Uint8Array): Promise<number> {
    return this.#tls.write(p);
  }
  close(): void {
    this.#tls.close();
  }
  closeWrite(): Promise<void> {
    return this.#tls.closeWrite();
  }
  ref(): void {
    this.#tls.ref();
  }
  unref(): void {
    this.#tls.unref();
  }
  get readable(): ReadableStream<Uint8Array<ArrayBuffer>> {
    return this.#tls.readable;
  }
  get writable(): WritableStream<Uint8Array<ArrayBufferLike>> {
    return this.#tls.writable;
  }
  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * Closes `conn`, ignoring that it was closed already.
 *
 * @param conn The connection.
 * @throws {Error} Any close failure other than `BadResource`.
 *
 * @example
 * ```ts
 * import { closeQuietly } from "./tls_stream_listener.ts";
 * import assert from "node:assert/strict";
 *
 * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const conn = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
 * closeQuietly(conn);
 * closeQuietly(conn);
 * listener.close();
 * assert.ok(true);
 * ```
 */
export function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch (error) {
    if (!(error instanceof Deno.errors.BadResource)) throw error;
  }
}

/**
 * Copies `from` to `to` until EOF or an error, then closes both (run one per direction).
 *
 * @param from Read side.
 * @param to Write side.
 * @param options `flushOnEnd`: at EOF, `closeWrite` `to` before closing it (a TLS stream, so
 * the last bytes and the close_notify go out); `keepFrom`: close only `to` (the other
 * direction, still flushing into `from`, closes it).
 * @returns Once both are closed.
 *
 * @example
 * ```ts
 * import { relayBytes } from "./tls_stream_listener.ts";
 * import assert from "node:assert/strict";
 *
 * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const [a, b] = await Promise.all([
 *   Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
 *   listener.accept(),
 * ]);
 * const [c, d] = await Promise.all([
 *   Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
 *   listener.accept(),
 * ]);
 * const done = relayBytes(b, c); // a → b ⇒ c → d
 * await a.write(new Uint8Array([1, 2, 3]));
 * a.close();
 * const got = new Uint8Array(3);
 * assert.equal(await d.read(got), 3);
 * await done;
 * d.close();
 * listener.close();
 * ```
 */
export async function relayBytes(
  from: Deno.Conn,
  to: Deno.Conn,
  options: { readonly flushOnEnd?: boolean; readonly keepFrom?: boolean } = {},
): Promise<void> {
  const buffer = new Uint8Array(RELAY_CHUNK_BYTES);
  try {
    for (;;) {
      const n = await from.read(buffer);
      if (n === null) break;
      let offset = 0;
      while (offset < n) offset += await to.write(buffer.subarray(offset, n));
    }
    // A TLS stream drops what it still buffers when closed at once: end it cleanly first.
    if (options.flushOnEnd === true) await to.closeWrite();
  } catch {
    // A reset or a close from the other direction ends the relay; both sides close below.
  } finally {
    if (options.keepFrom !== true) closeQuietly(from);
    closeQuietly(to);
  }
}

/**
 * Listens for TLS connections and hands each, once its handshake completed, to `onStream`.
 *
 * The public port is plain TCP: each socket is relayed over loopback to an internal
 * `Deno.listenTls` listener. Why: Deno 2.9.6 cannot close a `TlsConn` whose handshake has not
 * completed (`close()` cancels the handshake but the socket stays open until the peer sends
 * something), so a silent peer would hold its socket for ever. With the relay the server owns
 * the peer's socket and closes it at the handshake timeout. Cost: one loopback hop (two copies
 * per byte) on TLS connections only.
 *
 * @param options Address, certificate, limits and the stream callback.
 * @returns The listener; its `addr.port` is the real port.
 * @throws {Error} From `Deno.listen` / `Deno.listenTls` (bad PEM, port in use).
 *
 * @example
 * ```ts
 * import { listenTlsStreams } from "./tls_stream_listener.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(typeof listenTlsStreams, "function");
 * ```
 */
export function listenTlsStreams(options: ListenTlsStreamsOptions): TlsStreamListener {
  const inner = Deno.listenTls({
    hostname: "127.0.0.1",
    port: 0,
    cert: options.cert,
    key: options.key,
    transport: "tcp",
  });
  let listener: Deno.TcpListener;
  try {
    listener = Deno.listen({
      hostname: options.hostname ?? "127.0.0.1",
      port: options.port,
      transport: "tcp",
    });
  } catch (error) {
    inner.close();
    throw error;
  }
  const label = options.label ?? "TLS";
  const maxHandshakes = options.maxHandshakes ?? 256;
  const handshakeTimeoutMs = options.handshakeTimeoutMs ?? 10_000;
  /** Peer sockets in their handshake, by the local port of their loopback hop. */
  const handshaking = new Map<number, Deno.TcpConn>();
  const waiting = new Map<number, PromiseWithResolvers<Deno.TlsConn>>();
  const throttle = new LogThrottle({
    intervalMs: LOG_INTERVAL_MS,
    linesPerInterval: LOG_LINES,
    maxKeys: 8,
  });
  let closing = false;

  const refuse = (outer: Deno.Conn, reason: string): void => {
    const suppressed = throttle.admit(reason, Date.now());
    if (suppressed !== null) {
      logger.info("{label} connection from {remote} closed: {reason}{more}", {
        label,
        remote: (outer.remoteAddr as Deno.NetAddr).hostname,
        reason,
        more: suppressed > 0 ? ` (${suppressed} more like it not logged)` : "",
      });
    }
    closeQuietly(outer);
  };

  const handshake = async (outer: Deno.TcpConn): Promise<void> => {
    let hop: Deno.TcpConn;
    try {
      hop = await Deno.connect({ hostname: "127.0.0.1", port: inner.addr.port });
    } catch (error) {
      logger.error("TLS relay cannot reach its own listener: {error}", { error });
      closeQuietly(outer);
      return;
    }
    const key = hop.localAddr.port;
    handshaking.set(key, outer);
    const arrival = waiting.get(key) ?? Promise.withResolvers<Deno.TlsConn>();
    waiting.set(key, arrival);
    relayBytes(outer, hop);
    relayBytes(hop, outer);
    let timer: ReturnType<typeof setTimeout> | undefined;
    let tls: Deno.TlsConn | undefined;
    try {
      const timedOut = new Promise<"timeout">((resolve) => {
        timer = setTimeout(() => resolve("timeout"), handshakeTimeoutMs);
      });
      const done = arrival.promise.then(async (conn) => {
        tls = conn;
        await conn.handshake();
        return "done" as const;
      });
      if (await Promise.race([done, timedOut]) === "timeout") {
        // Closing the peer's socket ends the relay; the internal handshake then fails on EOF.
        done.catch(() => {});
        refuse(outer, `TLS handshake not completed within ${handshakeTimeoutMs} ms`);
        return;
      }
    } catch (error) {
      refuse(outer, `TLS handshake failed: ${handshakeFailure(error)}`);
      if (tls !== undefined) closeQuietly(tls);
      return;
    } finally {
      clearTimeout(timer);
      handshaking.delete(key);
      waiting.delete(key);
    }
    const accepted = tls as Deno.TlsConn | undefined;
    if (accepted === undefined) return;
    if (closing) {
      closeQuietly(accepted);
      return;
    }
    options.onStream(new RelayedTlsConn(accepted, outer));
  };

  // The internal side: each TLS stream is matched to its peer by the hop's port.
  // The internal side: each TLS stream is matched to its peer by the hop's port.
  const acceptInner = (conn: Deno.TlsConn): void => {
    const key = conn.remoteAddr.port;
    const arrival = waiting.get(key);
    if (arrival !== undefined) {
      arrival.resolve(conn);
      return;
    }
    // Here before its peer was registered (or after it gave up): claimed soon, or dropped.
    waiting.set(key, withValue(conn));
    setTimeout(() => {
      if (handshaking.has(key) || waiting.get(key) === undefined) return;
      waiting.delete(key);
      closeQuietly(conn);
    }, handshakeTimeoutMs);
  };

  const acceptOuter = (conn: Deno.TcpConn): void => {
    if (handshaking.size >= maxHandshakes) {
      refuse(conn, `${maxHandshakes} TLS handshakes in progress is the limit`);
      return;
    }
    conn.setNoDelay(true);
    // Each handshake runs on its own: a stalled one never holds up the next accept.
    handshake(conn).catch((error) => logger.error("TLS handshake task: {error}", { error }));
  };
  const isClosing = () => closing;
  const loops = Promise.all([
    acceptLoop(listener, { logger, label, closing: isClosing, onConn: acceptOuter }),
    acceptLoop(inner, { logger, label: "TLS relay", closing: isClosing, onConn: acceptInner }),
  ]);

  return {
    addr: listener.addr,
    async close(): Promise<void> {
      if (!closing) {
        closing = true;
        listener.close();
        inner.close();
        for (const outer of handshaking.values()) closeQuietly(outer);
      }
      await loops;
    },
  };
}

/** A settled `withResolvers` record (the stream arrived before its peer was registered). */
function withValue(conn: Deno.TlsConn): PromiseWithResolvers<Deno.TlsConn> {
  const record = Promise.withResolvers<Deno.TlsConn>();
  record.resolve(conn);
  return record;
}
