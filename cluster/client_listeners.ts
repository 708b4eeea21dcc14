/**
 * Where a cluster's clients connect: the TCP listener, and when configured the TLS listener
 * (where the TLS session mode is allowed) and the WebSocket listener (`ws://`, or `wss://` with
 * a certificate). Every transport's connections take the same frame bounds, timeouts and
 * protocol; the extra listeners are announced to the master as endpoints.
 *
 * It must never leave a listener open after `close`, including the ones a failed `listen`
 * opened before its failure.
 *
 * @module
 */

import { logSuccess, roleLogger } from "../shared/logging.ts";
import type { Endpoint } from "../shared/protocol/packets.ts";
import type { CloseReason } from "../shared/frame_session.ts";
import { listenTlsFrames, type TlsListenOptions } from "../shared/tls_listener.ts";
import { type FrameListener, type FrameTransport, listenFrames } from "../shared/transport.ts";
import {
  listenWebSocket,
  type WebSocketListener,
  type WebSocketServerOptions,
} from "../shared/websocket_listener.ts";

const logger = roleLogger("cluster");

/**
 * A host and port.
 *
 * @example
 * ```ts
 * import type { ClusterAddress } from "./client_listeners.ts";
 * import { startCluster } from "./cluster_server.ts";
 * import assert from "node:assert/strict";
 *
 * const keysDir = await Deno.makeTempDir();
 * const cluster = await startCluster({ hostname: "127.0.0.1", port: 0, keysDir, master: null });
 * // Port 0 was asked: the address holds the port the OS picked, ready to connect to.
 * const addr: ClusterAddress = cluster.addr;
 * assert.notEqual(addr.port, 0);
 * const conn = await Deno.connect(addr);
 * conn.close();
 * await cluster.stop();
 * await Deno.remove(keysDir, { recursive: true });
 * ```
 */
export interface ClusterAddress {
  /** Bound IP address. */
  readonly hostname: string;
  /** Bound port (the real one when 0 was asked). */
  readonly port: number;
}

/**
 * Options of {@linkcode ClientListeners}.
 *
 * @example
 * ```ts
 * import type { ClientListenersOptions } from "./client_listeners.ts";
 * import assert from "node:assert/strict";
 *
 * const options: ClientListenersOptions = {
 *   hostname: "127.0.0.1",
 *   port: 0,
 *   maxFrameBytes: 65536,
 *   pendingMaxFrameBytes: 4096,
 *   maxQueueBytes: 1 << 20,
 *   handshakeTimeoutMs: 5000,
 *   idleTimeoutMs: 30_000,
 *   onConnection: (connection) => void connection.close(),
 * };
 * assert.equal(options.port, 0);
 * ```
 */
export interface ClientListenersOptions {
  /** Address the TCP and TLS listeners bind (and the WebSocket one unless it names its own). */
  readonly hostname: string;
  /** TCP port (0: the OS picks). */
  readonly port: number;
  /** Largest frame once authenticated. */
  readonly maxFrameBytes: number;
  /** Largest frame until Authenticate(20): Hello, KeyExchange and SendPassword are all small. */
  readonly pendingMaxFrameBytes: number;
  /** Bound of each connection's send queue. */
  readonly maxQueueBytes: number;
  /** From connecting to Authenticate(20): the whole handshake, ticket included. */
  readonly handshakeTimeoutMs: number;
  /** A connection silent this long is closed. */
  readonly idleTimeoutMs: number;
  /** TLS listener (certificate and port), or undefined for none. */
  readonly tls?: TlsListenOptions;
  /** WebSocket listener, or undefined/false for none (with `tls`: `wss://` only). */
  readonly webSocket?: WebSocketServerOptions | false;
  /** Each new connection, and whether it came through the TLS listener. */
  readonly onConnection: (connection: FrameTransport, tls: boolean) => void;
  /** After each write to a client: how long its oldest bytes waited since queued, ms. */
  readonly onWritten?: (waitedMs: number) => void;
}

/**
 * The cluster's client listeners.
 *
 * @example
 * ```ts
 * import { ClientListeners } from "./client_listeners.ts";
 * import { ErrorCode } from "../shared/protocol/protocol_error.ts";
 * import assert from "node:assert/strict";
 *
 * const listeners = new ClientListeners({
 *   hostname: "127.0.0.1",
 *   port: 0,
 *   maxFrameBytes: 65536,
 *   pendingMaxFrameBytes: 4096,
 *   maxQueueBytes: 1 << 20,
 *   handshakeTimeoutMs: 5000,
 *   idleTimeoutMs: 30_000,
 *   onConnection: (connection) => void connection.close(),
 * });
 * listeners.listen();
 * assert.ok(listeners.addr.port > 0);
 * assert.equal(listeners.tlsAddr, null);
 * assert.equal(listeners.endpoints, undefined);
 * await listeners.close({ code: ErrorCode.ShuttingDown, message: "bye" });
 * ```
 */
export class ClientListeners {
  readonly #options: ClientListenersOptions;
  #tcp: FrameListener | undefined;
  /** The TLS client listener (`tls` option), where the TLS session mode is allowed. */
  #tls: FrameListener | undefined;
  #webSocket: WebSocketListener | undefined;

  /**
   * Prepares the listeners (nothing is bound until `listen`).
   *
   * @param options Addresses, bounds, timeouts, TLS and WebSocket, and the connection handler.
   */
  constructor(options: ClientListenersOptions) {
    this.#options = options;
  }

  /**
   * Binds every configured listener (once).
   *
   * @throws {Deno.errors.AddrInUse} (or another listen error) if a port cannot be bound; those
   * already bound stay until `close`.
   */
  listen(): void {
    const o = this.#options;
    const connectionOptions = {
      maxFrameBytes: o.maxFrameBytes,
      pendingMaxFrameBytes: o.pendingMaxFrameBytes,
      maxQueueBytes: o.maxQueueBytes,
      handshakeTimeoutMs: o.handshakeTimeoutMs,
      idleTimeoutMs: o.idleTimeoutMs,
      ...(o.onWritten === undefined ? {} : { onWritten: o.onWritten }),
      onConnection: (connection: FrameTransport) => o.onConnection(connection, false),
    };
    this.#tcp = listenFrames({ hostname: o.hostname, port: o.port, ...connectionOptions });
    const tls = o.tls;
    if (tls !== undefined) {
      this.#tls = listenTlsFrames({
        hostname: o.hostname,
        ...connectionOptions,
        ...tls,
        onConnection: (connection: FrameTransport) => o.onConnection(connection, true),
      });
    }
    const ws = o.webSocket;
    if (ws !== undefined && ws !== false) {
      this.#webSocket = listenWebSocket({
        hostname: ws.hostname ?? o.hostname,
        port: ws.port,
        path: ws.path,
        allowedOrigins: ws.allowedOrigins,
        page: ws.page, // the live page (web/live_page.ts), when `ws_page` is on
        ...connectionOptions,
        // With a certificate, wss:// only (announced as a wss endpoint).
        ...(tls === undefined ? {} : { tls: { cert: tls.cert, key: tls.key } }),
      });
    }
  }

  /**
   * Where TCP clients connect.
   *
   * @throws {TypeError} Before `listen`.
   */
  get addr(): ClusterAddress {
    if (this.#tcp === undefined) throw new TypeError("the client listeners are not listening");
    return { hostname: this.#tcp.addr.hostname, port: this.#tcp.addr.port };
  }

  /** Where the TLS listener is, or null when there is none. */
  get tlsAddr(): ClusterAddress | null {
    const tls = this.#tls;
    return tls === undefined ? null : { hostname: tls.addr.hostname, port: tls.addr.port };
  }

  /** The WebSocket listener (`ws://hostname:port/path`), or null when there is none. */
  get webSocketAddr():
    | (ClusterAddress & { readonly path: string; readonly scheme: "ws" | "wss" })
    | null {
    const ws = this.#webSocket;
    return ws === undefined ? null : {
      hostname: ws.addr.hostname,
      port: ws.addr.port,
      path: ws.path,
      scheme: ws.scheme,
    };
  }

  /** The extra listeners announced to the master (and listed to clients), if any. */
  get endpoints(): readonly Endpoint[] | undefined {
    const endpoints: Endpoint[] = [];
    const ws = this.#webSocket;
    if (ws !== undefined) endpoints.push({ kind: ws.scheme, port: ws.addr.port, path: ws.path });
    const tls = this.#tls;
    if (tls !== undefined) endpoints.push({ kind: "tls", port: tls.addr.port, path: "" });
    return endpoints.length === 0 ? undefined : endpoints;
  }

  /**
   * Logs where clients connect: the TCP address (as a success), and the WebSocket URL if any.
   *
   * @param name The cluster's name, to start each line with.
   * @throws {TypeError} Before `listen`.
   */
  logListening(name: string): void {
    const addr = this.addr;
    logSuccess(logger, "cluster {name} listening on {host}:{port}", {
      name,
      host: addr.hostname,
      port: addr.port,
    });
    const ws = this.webSocketAddr;
    if (ws === null) return;
    logger.info("cluster {name} WebSocket on {scheme}://{host}:{port}{path}", {
      name,
      scheme: ws.scheme,
      host: ws.hostname,
      port: ws.port,
      path: ws.path,
    });
  }

  /**
   * Stops accepting and closes every connection with `reason`.
   *
   * @param reason The Error frame each open connection gets.
   */
  async close(reason: CloseReason): Promise<void> {
    await Promise.all([
      this.#tcp?.close(reason),
      this.#tls?.close(reason),
      this.#webSocket?.close(reason),
    ]);
  }
}
