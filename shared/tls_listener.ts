/**
 * The TLS adapter of the frame transport: {@linkcode listenTlsFrames} accepts TLS connections
 * (`Deno.listenTls`), completes each handshake under the handshake timeout, and hands the
 * decrypted stream to a {@linkcode FrameConnection} exactly like a TCP one; a TLS `Deno.Conn`
 * is a `Deno.Conn`, so framing, queues and backpressure are the transport's own.
 * {@linkcode connectTlsFrames} is the client side (Deno clients and tests).
 *
 * It must never hand a connection to the server before its handshake completed, never let a
 * handshake outlive the handshake timeout, and never hold more than `maxHandshakes` of them:
 * a failed or stalled handshake (a plain client on the TLS port, a scanner) closes that one
 * socket with a logged, rate-limited reason.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { LogThrottle } from "./log_throttle.ts";
import { ErrorCode } from "./protocol/protocol_error.ts";
import {
  type CloseReason,
  FrameConnection,
  type FrameConnectionOptions,
  type FrameListener,
  type ListenFramesOptions,
} from "./transport.ts";

const logger = getLogger(["sustenet", "system", "tls"]);

/** Log lines per reason per 10 s about failed handshakes; the rest are counted. */
const LOG_LINES = 5;
const LOG_INTERVAL_MS = 10_000;

/**
 * A server's TLS listener as `startMaster` / `startCluster` take it: where, and the PEM texts
 * (load and check them with `loadTlsCredentials` first).
 *
 * @example
 * ```ts
 * import type { TlsListenOptions } from "./tls_listener.ts";
 * import assert from "node:assert/strict";
 *
 * const tls: TlsListenOptions = { port: 0, cert: "PEM", key: "PEM" };
 * assert.equal(tls.port, 0);
 * ```
 */
export interface TlsListenOptions {
  /** Port; 0 picks a free one. */
  readonly port: number;
  /** Certificate chain, PEM. */
  readonly cert: string;
  /** Private key, PEM. */
  readonly key: string;
}

/**
 * Options of {@linkcode listenTlsFrames}: those of `listenFrames` plus the certificate.
 *
 * @example
 * ```ts
 * import type { ListenTlsFramesOptions } from "./tls_listener.ts";
 * import assert from "node:assert/strict";
 *
 * const options: ListenTlsFramesOptions = { port: 0, cert: "PEM", key: "PEM" };
 * assert.equal(options.port, 0);
 * ```
 */
export interface ListenTlsFramesOptions extends ListenFramesOptions {
  /** Certificate chain, PEM (checked first with `loadTlsCredentials`). */
  readonly cert: string;
  /** Private key, PEM. */
  readonly key: string;
  /**
   * Most connections in their TLS handshake at once; a new one past it is closed at once.
   *
   * @default {256}
   */
  readonly maxHandshakes?: number;
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
 * Listens for TLS connections and wraps each, once its handshake completed, in a
 * {@linkcode FrameConnection}.
 *
 * @param options Address, certificate, connection options and the callbacks.
 * @returns The listener; its `addr.port` is the real port.
 * @throws {Error} From `Deno.listenTls` (bad PEM, port in use).
 *
 * @example
 * ```ts
 * import { listenTlsFrames } from "./tls_listener.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(typeof listenTlsFrames, "function");
 * ```
 */
export function listenTlsFrames(options: ListenTlsFramesOptions): FrameListener {
  const listener = Deno.listenTls({
    hostname: options.hostname ?? "127.0.0.1",
    port: options.port,
    cert: options.cert,
    key: options.key,
    transport: "tcp",
  });
  const maxHandshakes = options.maxHandshakes ?? 256;
  const handshakeTimeoutMs = options.handshakeTimeoutMs ?? 10_000;
  const connections = new Set<FrameConnection>();
  const handshaking = new Set<Deno.TlsConn>();
  const throttle = new LogThrottle({
    intervalMs: LOG_INTERVAL_MS,
    linesPerInterval: LOG_LINES,
    maxKeys: 8,
  });
  let closing = false;

  const refuse = (conn: Deno.TlsConn, reason: string): void => {
    const remote = conn.remoteAddr.hostname;
    const suppressed = throttle.admit(reason, Date.now());
    if (suppressed !== null) {
      logger.info("TLS connection from {remote} closed: {reason}{more}", {
        remote,
        reason,
        more: suppressed > 0 ? ` (${suppressed} more like it not logged)` : "",
      });
    }
    try {
      conn.close();
    } catch (error) {
      if (!(error instanceof Deno.errors.BadResource)) throw error;
    }
  };

  const handshake = async (conn: Deno.TlsConn): Promise<void> => {
    handshaking.add(conn);
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const timedOut = new Promise<"timeout">((resolve) => {
        timer = setTimeout(() => resolve("timeout"), handshakeTimeoutMs);
      });
      const outcome = await Promise.race([conn.handshake().then(() => "done" as const), timedOut]);
      if (outcome === "timeout") {
        refuse(conn, `TLS handshake not completed within ${handshakeTimeoutMs} ms`);
        return;
      }
    } catch (error) {
      refuse(conn, `TLS handshake failed: ${handshakeFailure(error)}`);
      return;
    } finally {
      clearTimeout(timer);
      handshaking.delete(conn);
    }
    if (closing) {
      conn.close();
      return;
    }
    const connection = new FrameConnection(conn, options);
    connections.add(connection);
    connection.closed.then(() => connections.delete(connection));
    try {
      options.onConnection?.(connection);
    } catch (error) {
      logger.error("onConnection failed for {remote}: {error}", {
        remote: conn.remoteAddr.hostname,
        error,
      });
      connection.close({ code: ErrorCode.Internal, message: "internal error" });
    }
  };

  const accept = async (): Promise<void> => {
    while (!closing) {
      let conn: Deno.TlsConn;
      try {
        conn = await listener.accept();
      } catch (error) {
        if (closing || error instanceof Deno.errors.BadResource) return;
        logger.warn("TLS accept failed: {error}", { error });
        // Back off briefly so a persistent failure (e.g. out of descriptors) does not spin.
        await new Promise((resolve) => setTimeout(resolve, 100));
        continue;
      }
      if (closing) {
        conn.close();
        return;
      }
      if (handshaking.size >= maxHandshakes) {
        refuse(conn, `${maxHandshakes} TLS handshakes in progress is the limit`);
        continue;
      }
      // Each handshake runs on its own: a stalled one never holds up the next accept.
      handshake(conn).catch((error) => logger.error("TLS handshake task: {error}", { error }));
    }
  };
  const acceptLoop = accept();

  return {
    addr: listener.addr,
    connections,
    async close(reason?: CloseReason): Promise<void> {
      if (!closing) {
        closing = true;
        listener.close();
        for (const conn of handshaking) {
          try {
            conn.close();
          } catch (error) {
            if (!(error instanceof Deno.errors.BadResource)) throw error;
          }
        }
      }
      await acceptLoop;
      await Promise.all([...connections].map((c) => c.close(reason)));
    },
  };
}

/**
 * Options of {@linkcode connectTlsFrames}.
 *
 * @example
 * ```ts
 * import type { ConnectTlsFramesOptions } from "./tls_listener.ts";
 * import assert from "node:assert/strict";
 *
 * const options: ConnectTlsFramesOptions = { port: 6266, caCerts: ["PEM"] };
 * assert.equal(options.port, 6266);
 * ```
 */
export interface ConnectTlsFramesOptions extends FrameConnectionOptions {
  /**
   * Host to connect to; also the name the certificate must be valid for.
   *
   * @default {"127.0.0.1"}
   */
  readonly hostname?: string;
  /** Port to connect to. */
  readonly port: number;
  /** Certificates to trust (PEM), e.g. the dev CA of `deno task certs`; default: the system's. */
  readonly caCerts?: readonly string[];
}

/**
 * Connects over TLS, completes the handshake and wraps the stream in a
 * {@linkcode FrameConnection}.
 *
 * @param options Address, trusted certificates and connection options.
 * @returns The connection.
 * @throws {Error} If the connection or the handshake fails (e.g. an untrusted certificate).
 *
 * @example
 * ```ts
 * import { connectTlsFrames } from "./tls_listener.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(typeof connectTlsFrames, "function");
 * ```
 */
export async function connectTlsFrames(
  options: ConnectTlsFramesOptions,
): Promise<FrameConnection> {
  const conn = await Deno.connectTls({
    hostname: options.hostname ?? "127.0.0.1",
    port: options.port,
    ...(options.caCerts === undefined ? {} : { caCerts: [...options.caCerts] }),
  });
  try {
    await conn.handshake();
  } catch (error) {
    conn.close();
    throw error;
  }
  return new FrameConnection(conn, options);
}
