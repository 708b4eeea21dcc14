// This module is browser compatible.
/**
 * How the client opens a connection to the master or a cluster, as a one-function type the
 * runtime fills in: TCP in Deno (`tcp_connector.ts`), WebSocket in browsers. The client core
 * (`sustenet_client.ts`) only ever calls a {@linkcode Connector}, so it imports no socket API.
 *
 * @module
 */

import type { FrameSessionOptions, FrameTransport } from "../shared/frame_session.ts";
import type { Endpoint } from "../shared/protocol/packets.ts";

/** Where a connector connects: which server, and its address as the master gave it. */
export interface ConnectTarget {
  /** Which server this is (for errors and logs). */
  readonly what: "master" | "cluster";
  /** Host name or IP. */
  readonly host: string;
  /** The TCP port the master gave (or the master's configured port). */
  readonly port: number;
  /**
   * A cluster's other listeners, from its JoinTicket (`ws` / `wss` ones carry a port and a
   * path on the same host); empty for the master and for clusters that announce none.
   */
  readonly endpoints: readonly Endpoint[];
}

/**
 * Opens a framed connection to `target` (reading starts when the caller calls `start`).
 * Rejects on failure; the client turns that into `master_unreachable` / `cluster_unreachable`.
 *
 * @example A connector that refuses everything
 * ```ts
 * import type { Connector } from "./connector.ts";
 * import assert from "node:assert/strict";
 *
 * const offline: Connector = (target) =>
 *   Promise.reject(new Error(`offline: ${target.host}:${target.port}`));
 * const target = { what: "master", host: "127.0.0.1", port: 1, endpoints: [] } as const;
 * await assert.rejects(offline(target, {}), /offline/);
 * ```
 */
export type Connector = (
  target: ConnectTarget,
  options: FrameSessionOptions,
) => Promise<FrameTransport>;
