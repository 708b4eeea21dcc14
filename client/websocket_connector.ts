// This module is browser compatible.
/**
 * The client's WebSocket {@linkcode Connector}: the master at the URL it is given, each cluster
 * at the `ws` (or, from an https page / a `wss://` master, `wss`) endpoint its JoinTicket
 * announces on the ticket's host. Browsers use it (there is no TCP in a page); Deno can too.
 *
 * @module
 */

import type { FrameSessionOptions } from "../shared/frame_session.ts";
import type { Endpoint } from "../shared/protocol/packets.ts";
import { connectWebSocket } from "../shared/websocket_transport.ts";
import type { Connector, ConnectTarget } from "./connector.ts";

/** Options of {@linkcode webSocketConnector}. */
export interface WebSocketConnectorOptions {
  /** The master's WebSocket URL (`ws://host:port/path` or `wss://…`). */
  readonly masterUrl: string | URL;
  /**
   * Record-cipher factory of the sessions (the Deno client passes the server's faster one).
   *
   * @default {WebCrypto}
   */
  readonly createRecordCipher?: FrameSessionOptions["createRecordCipher"];
  /**
   * Certificates (PEM) to trust for `wss://`, master and clusters alike (Deno only; a browser
   * trusts its own store).
   *
   * @default {the system's}
   */
  readonly caCerts?: readonly string[];
}

/**
 * The URL of a cluster's WebSocket endpoint: `wss` when `secure`, else `ws` (a page served
 * over https may only open `wss`).
 *
 * @param target The cluster, with the endpoints of its JoinTicket.
 * @param secure Whether only `wss` will do.
 * @returns The URL, or `undefined` if the cluster announces no such endpoint.
 *
 * @example
 * ```ts
 * import { clusterWebSocketUrl } from "./websocket_connector.ts";
 * import assert from "node:assert/strict";
 *
 * const target = {
 *   what: "cluster",
 *   host: "127.0.0.1",
 *   port: 6257,
 *   endpoints: [{ kind: "ws", port: 6259, path: "/sustenet" }],
 * } as const;
 * assert.equal(clusterWebSocketUrl(target, false), "ws://127.0.0.1:6259/sustenet");
 * assert.equal(clusterWebSocketUrl(target, true), undefined);
 * ```
 */
export function clusterWebSocketUrl(target: ConnectTarget, secure: boolean): string | undefined {
  const kind: Endpoint["kind"] = secure ? "wss" : "ws";
  const endpoint = target.endpoints.find((e) => e.kind === kind);
  if (endpoint === undefined) return undefined;
  const host = target.host.includes(":") ? `[${target.host}]` : target.host;
  const path = endpoint.path.startsWith("/") ? endpoint.path : `/${endpoint.path}`;
  return `${kind}://${host}:${endpoint.port}${path}`;
}

/**
 * A connector that reaches the master at `masterUrl` and clusters at their WebSocket endpoint.
 *
 * @param options The master's URL.
 * @returns The connector, for `SustenetClient.connect({ connect })`.
 * @throws {TypeError} If `masterUrl` is not a `ws:` or `wss:` URL.
 *
 * @example
 * ```ts ignore
 * import { SustenetClient } from "../browser.ts";
 * import { webSocketConnector } from "./websocket_connector.ts";
 *
 * const client = await SustenetClient.connect({
 *   connect: webSocketConnector({ masterUrl: "ws://127.0.0.1:6260/sustenet" }),
 * });
 * const session = await client.join("auto");
 * ```
 */
export function webSocketConnector(options: WebSocketConnectorOptions): Connector {
  const masterUrl = new URL(options.masterUrl);
  if (masterUrl.protocol !== "ws:" && masterUrl.protocol !== "wss:") {
    throw new TypeError(`masterUrl must be a ws: or wss: URL, got ${masterUrl.href}`);
  }
  const secure = masterUrl.protocol === "wss:";
  return (target, sessionOptions) => {
    const url = target.what === "master" ? masterUrl.href : clusterWebSocketUrl(target, secure);
    if (url === undefined) {
      return Promise.reject(
        new Error(
          `cluster ${target.host}:${target.port} announces no ${secure ? "wss" : "ws"} endpoint`,
        ),
      );
    }
    const cipher = options.createRecordCipher;
    return connectWebSocket({
      ...(cipher === undefined
        ? sessionOptions
        : { createRecordCipher: cipher, ...sessionOptions }),
      url,
      ...(options.caCerts === undefined ? {} : { caCerts: options.caCerts }),
    });
  };
}
