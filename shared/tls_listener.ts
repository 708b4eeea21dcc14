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
import { handOver } from "./accept_loop.ts";
import {
  type CloseReason,
  FrameConnection,
  type FrameConnectionOptions,
  type FrameListener,
  type ListenFramesOptions,
} from "./transport.ts";
import { listenTlsStreams } from "./tls_stream_listener.ts";

const logger = getLogger(["sustenet", "system", "tls"]);

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

/**
 * Listens for TLS connections and wraps each, once its handshake completed, in a
 * {@linkcode FrameConnection}.
 *
 * The handshake runs in {@linkcode listenTlsStreams} (a loopback relay, so a stalled
 * handshake is closed at the handshake timeout); framing, queues and backpressure are the
 * transport's own.
 *
 * @param options Address, certificate, connection options and the callbacks.
 * @returns The listener; its `addr.port` is the real port.
 * @throws {Error} From `Deno.listen` / `Deno.listenTls` (bad PEM, port in use).
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
  const connections = new Set<FrameConnection>();
  const streams = listenTlsStreams({
    hostname: options.hostname,
    port: options.port,
    cert: options.cert,
    key: options.key,
    handshakeTimeoutMs: options.handshakeTimeoutMs,
    maxHandshakes: options.maxHandshakes,
    onStream: (stream) =>
      handOver(new FrameConnection(stream, options), connections, options.onConnection, logger),
  });
  return {
    addr: streams.addr,
    connections,
    async close(reason?: CloseReason): Promise<void> {
      await streams.close();
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
