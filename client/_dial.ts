/**
 * Opens the client's connections (to the master or a cluster) over TCP (shared/transport.ts,
 * loaded only when used, so a WebSocket-only client never loads Deno socket code) or WebSocket
 * (shared/websocket_transport.ts), with a bounded connect time, turning failures into
 * `ClientError`s (`master_unreachable` / `cluster_unreachable` / `timeout`). Private to
 * `client/`.
 *
 * It must never leave a socket open after it gave up on it.
 *
 * @module
 */

import type { FrameSessionOptions, FrameTransport } from "../shared/frame_session.ts";
import { roleLogger } from "../shared/logging.ts";
import type { Endpoint } from "../shared/protocol/packets.ts";
import { connectWebSocket } from "../shared/websocket_transport.ts";
import { ClientError } from "./errors.ts";

const logger = roleLogger("client", "dial");

/** Where to connect: a TCP host and port, or a WebSocket URL. */
export type DialTarget =
  | { readonly kind: "tcp"; readonly host: string; readonly port: number }
  | {
    readonly kind: "ws";
    readonly url: string;
    /** Certificates (PEM) to trust for a `wss://` URL; default: the system's. */
    readonly caCerts?: readonly string[];
  };

/** `host:port` or the URL, for messages. */
function describe(target: DialTarget): string {
  return target.kind === "tcp" ? `${target.host}:${target.port}` : target.url;
}

/**
 * The WebSocket URL of a cluster: the endpoint of the scheme the client uses (`ws` or `wss`)
 * from a ticket's endpoint list, on the ticket's host.
 *
 * @param scheme `"ws"` or `"wss"`, as the master URL's.
 * @param host The cluster's host (an IPv6 address gets brackets).
 * @param endpoints The ticket's endpoints.
 * @returns The URL, or `undefined` if the cluster has no such endpoint.
 *
 * @example
 * ```ts
 * import { clusterWebSocketUrl } from "./_dial.ts";
 * import assert from "node:assert/strict";
 *
 * const url = clusterWebSocketUrl("ws", "::1", [{ kind: "ws", port: 6291, path: "/sustenet" }]);
 * assert.equal(url, "ws://[::1]:6291/sustenet");
 * ```
 */
export function clusterWebSocketUrl(
  scheme: "ws" | "wss",
  host: string,
  endpoints: readonly Endpoint[] | undefined,
): string | undefined {
  const endpoint = endpoints?.find((e) => e.kind === scheme);
  if (endpoint === undefined) return undefined;
  const hostPart = host.includes(":") ? `[${host}]` : host;
  return `${scheme}://${hostPart}:${endpoint.port}${endpoint.path}`;
}

/**
 * Connects to `target` within `timeoutMs`; reading starts when the caller calls `start`.
 *
 * @param what Which server this is, for the error code and message.
 * @param target TCP host and port, or a `ws://` / `wss://` URL.
 * @param options Connection options (no `onFrame`: the caller starts reading).
 * @param timeoutMs Longest wait for the connection.
 * @throws {ClientError} `master_unreachable` / `cluster_unreachable` if the connection fails,
 * `timeout` if it takes longer than `timeoutMs`.
 *
 * @example Dial a cluster from a join ticket
 * ```ts
 * import { dial } from "./_dial.ts";
 * import assert from "node:assert/strict";
 *
 * async function openCluster(host: string, port: number) {
 *   const conn = await dial("cluster", { kind: "tcp", host, port }, { maxFrameBytes: 65536 }, 5000);
 *   conn.start((frame) => console.log(frame.type));
 *   return conn;
 * }
 * assert.equal(typeof openCluster, "function");
 * ```
 */
export async function dial(
  what: "master" | "cluster",
  target: DialTarget,
  options: FrameSessionOptions,
  timeoutMs: number,
): Promise<FrameTransport> {
  const connecting: Promise<FrameTransport> = target.kind === "tcp"
    ? import("../shared/transport.ts").then(({ connectFrames }) =>
      connectFrames({ ...options, hostname: target.host, port: target.port })
    )
    // The WebSocket gets its own (longer) limit: this race decides the error.
    : connectWebSocket({
      ...options,
      url: target.url,
      connectTimeoutMs: timeoutMs + 1000,
      ...(target.caCerts === undefined ? {} : { caCerts: target.caCerts }),
    });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), timeoutMs);
  });
  try {
    const result = await Promise.race([connecting, timeout]);
    if (result === "timeout") {
      // Too late for the caller, but the socket may still open: close it when it does.
      connecting.then(
        (conn) => conn.close(),
        (error: unknown) => logger.debug("late connect to {what} failed: {error}", { what, error }),
      );
      throw new ClientError("timeout", `no connection to the ${what} ${describe(target)} in time`);
    }
    return result;
  } catch (cause) {
    if (cause instanceof ClientError) throw cause;
    const message = cause instanceof Error ? cause.message : String(cause);
    throw new ClientError(
      what === "master" ? "master_unreachable" : "cluster_unreachable",
      `cannot connect to the ${what} at ${describe(target)}: ${message}`,
      { cause },
    );
  } finally {
    clearTimeout(timer);
  }
}
