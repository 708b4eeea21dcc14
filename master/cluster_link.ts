// This module is browser compatible.
/**
 * The master's side of a registered cluster, as a sans-I/O state machine: sealed Heartbeats
 * update the registry, Deregister removes the cluster, ClusterPage and ClusterPlugins are handed
 * to the console, Ping gets Pong, and a cluster silent
 * for `heartbeatTimeoutMs` is due to be dropped. Anything else is `UnexpectedPacket` and close.
 * It must never keep the cluster listed after it reports leaving or falls silent.
 *
 * @module
 */

import type { Packet, PluginSummary } from "../shared/protocol/packets.ts";
import { ErrorCode } from "../shared/protocol/protocol_error.ts";
import { closeWith, commonAction, type ConnectionAction, NO_ACTION } from "./connection_action.ts";
import type { ClusterId, ClusterRegistry } from "./registry.ts";

/** Options of {@linkcode ClusterLink}. */
export interface ClusterLinkOptions {
  /** The id this cluster was registered with. */
  readonly id: ClusterId;
  /** The registry it is listed in. */
  readonly registry: ClusterRegistry;
  /** A cluster without a Heartbeat for this long is dropped, in ms. */
  readonly heartbeatTimeoutMs: number;
  /** Told the cluster's status page URL (ClusterPage), already checked: http(s), ≤ 512. */
  readonly onPage?: (id: ClusterId, url: string) => void;
  /** Told the cluster's plugins and their state (ClusterPlugins), each time they change. */
  readonly onPlugins?: (id: ClusterId, plugins: readonly PluginSummary[]) => void;
}

/** The result of {@linkcode ClusterLink.checkHeartbeat}. */
export type HeartbeatCheck =
  | { readonly expired: false; /** Check again in this many ms. */ readonly nextCheckMs: number }
  | { readonly expired: true; /** Close with this action. */ readonly action: ConnectionAction };

/**
 * A registered cluster's link, from CreateCluster until it leaves.
 *
 * @example Heartbeats keep it listed; Deregister removes it
 * ```ts
 * import { ClusterLink } from "./cluster_link.ts";
 * import { ClusterRegistry } from "./registry.ts";
 * import assert from "node:assert/strict";
 *
 * const registry = new ClusterRegistry();
 * const { record } = registry.register({
 *   name: "eu-1",
 *   host: "127.0.0.1",
 *   port: 6257,
 *   maxConnections: 10,
 *   keyVersion: 1,
 *   publicKey: new Uint8Array(32),
 *   keyName: "k",
 * }, 0);
 * const link = new ClusterLink({ id: record.id, registry, heartbeatTimeoutMs: 3000 });
 * link.handle({ kind: "Heartbeat", load: 4, maxConnections: 10 }, 1000);
 * assert.equal(registry.get(record.id)?.load, 4);
 * assert.deepEqual(link.checkHeartbeat(2000), { expired: false, nextCheckMs: 2000 });
 * assert.equal(link.handle({ kind: "Deregister", reason: "bye" }, 1500).kind, "close");
 * assert.equal(registry.size, 0);
 * ```
 */
export class ClusterLink {
  readonly #id: ClusterId;
  readonly #registry: ClusterRegistry;
  readonly #timeoutMs: number;
  readonly #onPage: ((id: ClusterId, url: string) => void) | undefined;
  readonly #onPlugins: ((id: ClusterId, plugins: readonly PluginSummary[]) => void) | undefined;

  /** @param options Id, registry, heartbeat timeout. */
  constructor(options: ClusterLinkOptions) {
    this.#id = options.id;
    this.#registry = options.registry;
    this.#timeoutMs = options.heartbeatTimeoutMs;
    this.#onPage = options.onPage;
    this.#onPlugins = options.onPlugins;
  }

  /** The cluster's id. */
  get id(): ClusterId {
    return this.#id;
  }

  /**
   * Handles one (sealed) packet from the cluster.
   *
   * @param packet The decoded packet.
   * @param now Current Unix ms.
   */
  handle(packet: Packet, now: number): ConnectionAction {
    switch (packet.kind) {
      case "Heartbeat":
        if (!this.#registry.heartbeat(this.#id, packet.load, packet.maxConnections, now)) {
          // Removed meanwhile (replaced by a newer cluster at its address).
          return { kind: "close", message: "cluster no longer listed" };
        }
        return NO_ACTION;
      case "Deregister":
        this.#registry.remove(this.#id, "deregistered");
        return { kind: "close", message: "cluster deregistered" };
      case "ClusterPage":
        // Only a link on the console: anything but a plain http(s) URL is ignored.
        if (isPageUrl(packet.url)) this.#onPage?.(this.#id, packet.url);
        return NO_ACTION;
      case "ClusterPlugins":
        // The codec bounded it (≤ 32 entries of str8 names); the console shows it as text.
        this.#onPlugins?.(this.#id, packet.plugins);
        return NO_ACTION;
      default:
        return commonAction(packet);
    }
  }

  /**
   * Tells whether the cluster missed its heartbeats; if so it is removed from the registry
   * at once and the result says how to close the link.
   *
   * @param now Current Unix ms.
   */
  checkHeartbeat(now: number): HeartbeatCheck {
    const record = this.#registry.get(this.#id);
    if (record === undefined) {
      return { expired: true, action: { kind: "close", message: "cluster no longer listed" } };
    }
    const silent = now - record.lastHeartbeat;
    if (silent < this.#timeoutMs) return { expired: false, nextCheckMs: this.#timeoutMs - silent };
    this.#registry.remove(this.#id, "heartbeat_timeout");
    return { expired: true, action: closeWith(ErrorCode.Timeout, "heartbeat timeout") };
  }

  /**
   * Removes the cluster because its connection ended (no-op if already removed).
   *
   * @example
   * ```ts
   * import { ClusterLink } from "./cluster_link.ts";
   * import { ClusterRegistry } from "./registry.ts";
   * import assert from "node:assert/strict";
   *
   * const registry = new ClusterRegistry();
   * const announcement = {
   *   name: "a", host: "h", port: 1, maxConnections: 0, keyVersion: 1,
   *   publicKey: new Uint8Array(32), keyName: "k",
   * };
   * const { record } = registry.register(announcement, 0);
   * new ClusterLink({ id: record.id, registry, heartbeatTimeoutMs: 1000 }).disconnected();
   * assert.equal(registry.size, 0);
   * ```
   */
  disconnected(): void {
    this.#registry.remove(this.#id, "disconnected");
  }
}

/** Whether `url` may be shown as a link: http(s), at most 512 characters. */
function isPageUrl(url: string): boolean {
  if (url.length > 512 || !URL.canParse(url)) return false;
  const protocol = new URL(url).protocol;
  return protocol === "http:" || protocol === "https:";
}
