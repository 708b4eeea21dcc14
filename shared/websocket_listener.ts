/**
 * The server side of the WebSocket transport: {@linkcode listenWebSocket} serves HTTP with
 * `Deno.serve`, upgrades requests on one path with `Deno.upgradeWebSocket` and hands each
 * socket, wrapped in a session of `websocket_transport.ts`, to the same `onConnection` a TCP
 * listener calls. Server-only (it uses `Deno.serve`).
 *
 * Origin policy: a request without an `Origin` header (a non-browser client) is accepted; a
 * browser's request is accepted only if its `Origin` is in `allowedOrigins` (or the list holds
 * `"*"`), else refused with 403 before any upgrade. Another path is 404, a plain HTTP request
 * on the path 426. Each refusal is logged, rate-limited per kind.
 *
 * The live page (`page` option, config `ws_page`): the same port also answers GET for the
 * page's own paths (`web/live_page.ts`: `/`, `/index.html`, `/demo.js`, `/sustenet.js`,
 * `/config.json`), with no origin check (they are public static files; the origin policy is the
 * WebSocket's); every other path stays 404.
 *
 * `wss://`: with the `tls` option the public port speaks TLS. Each socket's handshake runs in
 * `listenTlsStreams` (the relay of the TLS listener, so a stalled handshake is closed at the
 * handshake timeout and a plain client is refused with a logged reason), and the decrypted
 * stream is relayed to this listener's `Deno.serve`, bound to an internal loopback port that
 * serves only streams the relay brought (by the hop's port, which also gives the real peer
 * address). Why not `Deno.serve({ cert, key })`: it could not close a stalled handshake.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { CloseReason, FrameSessionOptions, FrameTransport } from "./frame_session.ts";
import { handOver } from "./accept_loop.ts";
import { LogThrottle } from "./log_throttle.ts";
import { webSocketSession } from "./websocket_transport.ts";
import { createRecordCipher } from "./create_record_cipher.ts";
import { type LivePage, type LivePageOptions, startLivePage } from "../web/live_page.ts";
import { LIVE_PAGE_PATHS } from "../web/live_page_paths.ts";
import {
  closeQuietly,
  listenTlsStreams,
  relayBytes,
  type TlsStreamListener,
} from "./tls_stream_listener.ts";

const logger = getLogger(["sustenet", "system", "websocket"]);

/**
 * Where and how a server's WebSocket listener runs (`startMaster` / `startCluster` option
 * `webSocket`; config keys `ws_enabled`, `ws_port`, `ws_path`, `ws_allowed_origins`).
 *
 * @example
 * ```ts
 * import type { WebSocketServerOptions } from "./websocket_listener.ts";
 * import { startMaster } from "../master/start_master.ts";
 * import assert from "node:assert/strict";
 *
 * // A master that browsers reach at ws://127.0.0.1:<port>/sustenet.
 * const webSocket: WebSocketServerOptions = { port: 0, path: "/sustenet", allowedOrigins: ["*"] };
 * const keysDir = await Deno.makeTempDir();
 * const master = await startMaster({ port: 0, keysDir, webSocket });
 * assert.equal(master.webSocketAddr?.path, "/sustenet");
 * assert.ok((master.webSocketAddr?.port ?? 0) > 0);
 * await master.stop();
 * await Deno.remove(keysDir, { recursive: true });
 * ```
 */
export interface WebSocketServerOptions {
  /** Address to bind; default: the server's TCP address. */
  readonly hostname?: string;
  /** Port; 0 = the OS chooses. */
  readonly port: number;
  /**
   * HTTP path upgraded to the protocol.
   *
   * @default {"/sustenet"}
   */
  readonly path?: string;
  /**
   * Browser origins allowed, or `"*"`; requests without Origin are always allowed.
   *
   * @default {[]}
   */
  readonly allowedOrigins?: readonly string[];
  /**
   * Also serve the live browser page on this port (config `ws_page`; `web/live_page.ts`),
   * telling it where the master is; its bundle is made once, when the listener starts.
   *
   * @default {undefined} (no page)
   */
  readonly page?: {
    /** The master's WebSocket URL (`ws://host:port/path` or `wss://…`) the page joins through. */
    readonly masterUrl: string;
    /** Side of a fragment in world units (the grid the page draws); default 64. */
    readonly fragmentSize?: number;
    /** The cluster the page joins, by server name; the master's choice when absent. */
    readonly clusterName?: string;
  };
}

/** Options of {@linkcode listenWebSocket}; session options apply to every accepted socket. */
export interface ListenWebSocketOptions extends FrameSessionOptions {
  /**
   * Address to bind.
   *
   * @default {"127.0.0.1"}
   */
  readonly hostname?: string;
  /** Port to bind; 0 picks a free one (read it back from {@linkcode WebSocketListener.addr}). */
  readonly port: number;
  /**
   * The HTTP path upgraded to the protocol; other paths get 404.
   *
   * @default {"/sustenet"}
   */
  readonly path?: string;
  /**
   * Browser origins allowed (exact `scheme://host[:port]`), or `"*"` for any. Requests without
   * an `Origin` header (non-browser clients) are always allowed.
   *
   * @default {[]}
   */
  readonly allowedOrigins?: readonly string[];
  /** Called with each accepted connection; set its handler here unless `onFrame` is given. */
  readonly onConnection?: (connection: FrameTransport) => void;
  /**
   * Also serve the live browser page (`web/live_page.ts`) at `/` and its files, beside `path`
   * (which must not be one of them). Its `deno bundle` starts now; requests wait for it.
   *
   * @default {undefined} (no page)
   */
  readonly page?: LivePageOptions;
  /**
   * Serve `wss://`: the certificate chain and key (PEM, checked first with
   * `loadTlsCredentials`); the TLS handshake and the upgrade request must come within
   * `handshakeTimeoutMs`. Without it the listener serves `ws://`.
   */
  readonly tls?: {
    readonly cert: string;
    readonly key: string;
    /**
     * Most connections in their TLS handshake at once.
     *
     * @default {256}
     */
    readonly maxHandshakes?: number;
  };
}

/** A WebSocket listener made by {@linkcode listenWebSocket}. */
export interface WebSocketListener {
  /** The bound address (with the real port when 0 was asked). */
  readonly addr: Deno.NetAddr;
  /** The upgraded path. */
  readonly path: string;
  /** `"wss"` when the listener speaks TLS (`tls` option), else `"ws"`. */
  readonly scheme: "ws" | "wss";
  /** Connections accepted and not yet closed. */
  readonly connections: ReadonlySet<FrameTransport>;
  /**
   * Stops accepting, closes every open connection (with `reason` as Error frame if given) and
   * resolves once all are closed and the HTTP server has stopped.
   */
  close(reason?: CloseReason): Promise<void>;
}

/** How often each kind of refused request is logged, at most. */
const REFUSAL_LOG_INTERVAL_MS = 10_000;

/**
 * Listens for WebSocket upgrades on `path` and runs the protocol over each socket.
 *
 * @param options Address, path, origins, session options and the callbacks.
 * @returns The listener; its `addr.port` is the real port.
 * @throws {TypeError} If `page` is given and `path` is one of the page's paths.
 *
 * @example
 * ```ts
 * import { listenWebSocket } from "./websocket_listener.ts";
 * import { connectWebSocket } from "./websocket_transport.ts";
 * import { encodeFrame } from "./protocol/frame.ts";
 * import assert from "node:assert/strict";
 *
 * const server = listenWebSocket({
 *   port: 0,
 *   onFrame: (frame, conn) => conn.send(encodeFrame(frame.type, frame.payload)),
 * });
 * const got = Promise.withResolvers<number>();
 * const client = await connectWebSocket({
 *   url: `ws://127.0.0.1:${server.addr.port}${server.path}`,
 *   onFrame: (frame) => got.resolve(frame.payload[0]),
 * });
 * client.send(encodeFrame(0x80, new Uint8Array([7])));
 * assert.equal(await got.promise, 7);
 * await client.close();
 * await server.close();
 * ```
 */
export function listenWebSocket(options: ListenWebSocketOptions): WebSocketListener {
  const path = options.path ?? "/sustenet";
  if (options.page !== undefined && LIVE_PAGE_PATHS.includes(path)) {
    throw new TypeError(`the WebSocket path ${path} is one of the live page's paths`);
  }
  const origins = new Set(options.allowedOrigins ?? []);
  const anyOrigin = origins.has("*");
  const connections = new Set<FrameTransport>();
  const refusals = new LogThrottle({ intervalMs: REFUSAL_LOG_INTERVAL_MS });
  let closing = false;

  const refuse = (
    status: number,
    kind: string,
    detail: string,
    remote: Deno.NetAddr,
  ): Response => {
    const suppressed = refusals.admit(kind, Date.now());
    if (suppressed !== null) {
      logger.warn("refused WebSocket request from {remote}: {detail}{more}", {
        remote: `${remote.hostname}:${remote.port}`,
        detail,
        more: suppressed > 0 ? ` (${suppressed} more like it not logged)` : "",
      });
    }
    return new Response(`${detail}\n`, { status });
  };

  const tls = options.tls;
  const handshakeTimeoutMs = options.handshakeTimeoutMs ?? 10_000;
  /** wss: streams the relay brought to the internal port, by the local port of their hop. */
  const relayed = new Map<number, RelayedStream>();

  const server = Deno.serve({
    // wss: the HTTP side is internal; the public port is the TLS relay's.
    hostname: tls === undefined ? options.hostname ?? "127.0.0.1" : "127.0.0.1",
    port: tls === undefined ? options.port : 0,
    onListen() {},
  }, (request, info) => {
    let remote = info.remoteAddr;
    if (tls !== undefined) {
      const stream = relayed.get(remote.port);
      // Anything else on the loopback port did not come through TLS: never served.
      if (stream === undefined || remote.hostname !== "127.0.0.1") {
        return refuse(403, "relay", "not through the wss relay", remote);
      }
      clearTimeout(stream.upgradeTimer);
      stream.requested = true;
      remote = stream.peer;
    }
    const url = new URL(request.url);
    if (closing) return new Response("shutting down\n", { status: 503 });
    if (url.pathname !== path) {
      const served = page?.respond(request);
      if (served !== undefined) return served;
      return refuse(404, "path", `wrong path ${JSON.stringify(url.pathname.slice(0, 64))}`, remote);
    }
    const origin = request.headers.get("origin");
    if (origin !== null && !anyOrigin && !origins.has(origin)) {
      return refuse(
        403,
        "origin",
        `origin ${JSON.stringify(origin.slice(0, 128))} not allowed`,
        remote,
      );
    }
    if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return refuse(426, "upgrade", "not a WebSocket upgrade", remote);
    }
    const { socket, response } = Deno.upgradeWebSocket(request);
    const connection = webSocketSession(socket, {
      // The fast server ciphers (FFI, node:crypto), as on TCP, unless the options bring one.
      createRecordCipher,
      ...options,
      remoteAddr: { transport: "tcp", hostname: remote.hostname, port: remote.port },
    });
    handOver(connection, connections, options.onConnection, logger);
    return response;
  });

  // After Deno.serve bound (a bind error leaves no bundle running).
  const page: LivePage | undefined = options.page === undefined
    ? undefined
    : startLivePage(options.page);

  let tlsStreams: TlsStreamListener | undefined;
  if (tls !== undefined) {
    const internal = server.addr;
    const bridge = async (stream: Deno.Conn<Deno.NetAddr>): Promise<void> => {
      let hop: Deno.TcpConn;
      try {
        hop = await Deno.connect({ hostname: "127.0.0.1", port: internal.port });
      } catch (error) {
        logger.error("wss relay cannot reach its own HTTP side: {error}", { error });
        closeQuietly(stream);
        return;
      }
      const key = hop.localAddr.port;
      // TLS done, the upgrade request must follow within the same handshake timeout.
      const upgradeTimer = setTimeout(() => {
        const suppressed = refusals.admit("upgrade timeout", Date.now());
        if (suppressed !== null) {
          logger.warn("wss connection from {remote} closed: {detail}{more}", {
            remote: `${stream.remoteAddr.hostname}:${stream.remoteAddr.port}`,
            detail: `no WebSocket upgrade within ${handshakeTimeoutMs} ms`,
            more: suppressed > 0 ? ` (${suppressed} more like it not logged)` : "",
          });
        }
        closeQuietly(stream);
      }, handshakeTimeoutMs);
      // The stream is closed by the direction that writes to it, after its last bytes.
      relayBytes(stream, hop, { keepFrom: true });
      const done = relayBytes(hop, stream, { flushOnEnd: true }).finally(() => {
        clearTimeout(upgradeTimer);
        relayed.delete(key);
      });
      relayed.set(key, { peer: stream.remoteAddr, stream, upgradeTimer, requested: false, done });
    };
    try {
      tlsStreams = listenTlsStreams({
        hostname: options.hostname,
        port: options.port,
        cert: tls.cert,
        key: tls.key,
        handshakeTimeoutMs,
        maxHandshakes: tls.maxHandshakes,
        label: "wss",
        onStream: (stream) => {
          bridge(stream).catch((error) => logger.error("wss relay: {error}", { error }));
        },
      });
    } catch (error) {
      server.shutdown();
      page?.close();
      throw error;
    }
  }

  return {
    addr: tlsStreams?.addr ?? server.addr,
    path,
    scheme: tls === undefined ? "ws" : "wss",
    connections,
    async close(reason?: CloseReason): Promise<void> {
      closing = true;
      await Promise.all([...[...connections].map((c) => c.close(reason)), page?.close()]);
      // After the HTTP side let its sockets go (the close frames are through the relay), the
      // streams still open (idle after TLS, or mid-request) end with their relay.
      await server.shutdown();
      // Only now: closing the TLS listener earlier cut the close frames on their way out.
      await tlsStreams?.close();
      // Streams that asked for something end with their relay once the HTTP side let them go
      // (their close frames flushed), within the handshake timeout; idle ones at once.
      const ending: Promise<void>[] = [];
      for (const { stream, upgradeTimer, requested, done } of relayed.values()) {
        clearTimeout(upgradeTimer);
        if (requested) ending.push(done);
        else closeQuietly(stream);
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        Promise.all(ending),
        new Promise((resolve) => timer = setTimeout(resolve, handshakeTimeoutMs)),
      ]);
      clearTimeout(timer);
      for (const { stream } of relayed.values()) closeQuietly(stream);
    },
  };
}

/** A wss stream relayed to the internal HTTP port. */
interface RelayedStream {
  /** The real peer (the HTTP side sees the loopback hop). */
  readonly peer: Deno.NetAddr;
  /** The decrypted stream; closing it ends both relays. */
  readonly stream: Deno.Conn;
  /** Closes the stream if no upgrade request came in time. */
  readonly upgradeTimer: ReturnType<typeof setTimeout>;
  /** Whether an HTTP request came (then the HTTP side ends the stream). */
  requested: boolean;
  /** Settles when the relay towards the peer ended (the stream is closed). */
  readonly done: Promise<void>;
}
