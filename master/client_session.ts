// This module is browser compatible.
/**
 * One client's conversation with the master after Hello, as a sans-I/O state machine:
 * RequestClusters → SendClusters, JoinCluster → JoinTicket (or an Error 11–14 that leaves the
 * connection open), Ping → Pong; anything else is `UnexpectedPacket` and close. It must never
 * log or keep a credential or a ticket, and never issue a ticket the authentication hook did
 * not approve.
 *
 * @module
 */

import { roleLogger } from "../shared/logging.ts";
import type {
  ClusterInfo,
  JoinClusterPacket,
  Packet,
  SendClustersPacket,
} from "../shared/protocol/packets.ts";
import { ErrorCode } from "../shared/protocol/protocol_error.ts";
import { X25519_PUBLIC_KEY_BYTES } from "../shared/identity_key.ts";
import { type ClusterAllocator, joinRefusal, type JoinRefusalReason } from "./allocation.ts";
import { type AuthenticateHook, isValidPlayerId, type RemoteAddress } from "./authenticate.ts";
import { closeWith, commonAction, type ConnectionAction, sendPacket } from "./connection_action.ts";
import type { ClusterId } from "./registry.ts";

const logger = roleLogger("master", "client");

/** Bytes of a frame header plus type byte and the SendClusters count. */
const SEND_CLUSTERS_OVERHEAD = 4 + 1 + 2;
/** Bytes of a ClusterInfo besides its two strings. */
const CLUSTER_INFO_FIXED = 4 + 1 + 1 + 2 + 4 + 4 + 2 + 1;
const MAX_LIST_ENTRIES = 0xffff;

/** How a JoinCluster ended, for metrics. */
export type JoinOutcome =
  | { readonly issued: true; readonly clusterId: ClusterId; readonly playerId: string }
  | { readonly issued: false; readonly reason: JoinRefusalReason };

/** A client session's answer to one packet, with the join outcome when it was a JoinCluster. */
export interface ClientSessionResult {
  /** What to do on the connection. */
  readonly action: ConnectionAction;
  /** Set for JoinCluster answers (ticket or refusal). */
  readonly join?: JoinOutcome;
}

/** Options of {@linkcode MasterClientSession}. */
export interface MasterClientSessionOptions {
  /** Picks clusters and seals tickets. */
  readonly allocator: ClusterAllocator;
  /** Decides the player id from the credential. */
  readonly authenticate: AuthenticateHook;
  /** The client's address, given to the hook. */
  readonly remoteAddr: RemoteAddress;
  /** The largest frame the client accepts; a cluster list is cut to fit. */
  readonly maxFrameBytes: number;
  /**
   * Clock in Unix ms.
   *
   * @default {Date.now}
   */
  readonly now?: () => number;
}

/**
 * The master's side of one client connection (established, after HelloOk).
 *
 * @example Ping and an unknown cluster
 * ```ts
 * import { MasterClientSession } from "./client_session.ts";
 * import { ClusterAllocator } from "./allocation.ts";
 * import { guestAuthenticate } from "./authenticate.ts";
 * import { ClusterRegistry } from "./registry.ts";
 * import assert from "node:assert/strict";
 *
 * const allocator = new ClusterAllocator({ registry: new ClusterRegistry(), ticketTtlMs: 30_000 });
 * const session = new MasterClientSession({
 *   allocator,
 *   authenticate: guestAuthenticate,
 *   remoteAddr: { hostname: "127.0.0.1", port: 40000 },
 *   maxFrameBytes: 65536,
 * });
 * const pong = await session.handle({ kind: "Ping", value: 9 });
 * assert.deepEqual(pong.action, { kind: "send", packet: { kind: "Pong", value: 9 } });
 * const join = await session.handle({
 *   kind: "JoinCluster",
 *   clusterId: 42,
 *   clientPublicKey: new Uint8Array(32),
 *   credential: new Uint8Array(),
 * });
 * assert.deepEqual(join.join, { issued: false, reason: "unknown_cluster" });
 * ```
 */
export class MasterClientSession {
  readonly #allocator: ClusterAllocator;
  readonly #authenticate: AuthenticateHook;
  readonly #remoteAddr: RemoteAddress;
  readonly #maxFrameBytes: number;
  readonly #now: () => number;

  /** @param options Allocator, hook, address, frame bound, clock. */
  constructor(options: MasterClientSessionOptions) {
    this.#allocator = options.allocator;
    this.#authenticate = options.authenticate;
    this.#remoteAddr = options.remoteAddr;
    this.#maxFrameBytes = options.maxFrameBytes;
    this.#now = options.now ?? Date.now;
  }

  /**
   * Answers one packet. Asynchronous because of JoinCluster (the hook and the sealing); the
   * caller keeps answers in the order of the packets.
   *
   * @param packet A decoded packet from the client.
   */
  async handle(packet: Packet): Promise<ClientSessionResult> {
    switch (packet.kind) {
      case "RequestClusters":
        return { action: sendPacket(this.clusterList()) };
      case "JoinCluster":
        return await this.#join(packet);
      default:
        return { action: commonAction(packet) };
    }
  }

  /** The SendClusters packet for the current registry, cut to fit one frame. */
  clusterList(): SendClustersPacket {
    const infos = this.#allocator.clusterInfos(this.#now());
    const fitting: ClusterInfo[] = [];
    let size = SEND_CLUSTERS_OVERHEAD;
    const encoder = new TextEncoder();
    for (const info of infos) {
      const entry = CLUSTER_INFO_FIXED + encoder.encode(info.name).length +
        encoder.encode(info.host).length;
      if (size + entry > this.#maxFrameBytes || fitting.length === MAX_LIST_ENTRIES) {
        logger.warn("cluster list cut to {shown} of {total} clusters to fit one frame", {
          shown: fitting.length,
          total: infos.length,
        });
        break;
      }
      size += entry;
      fitting.push(info);
    }
    return { kind: "SendClusters", clusters: fitting };
  }

  async #join(packet: JoinClusterPacket): Promise<ClientSessionResult> {
    if (packet.clientPublicKey.length !== X25519_PUBLIC_KEY_BYTES) {
      return {
        action: closeWith(
          ErrorCode.BadPacket,
          `clientPublicKey must be ${X25519_PUBLIC_KEY_BYTES} bytes`,
        ),
      };
    }
    const playerId = await this.#playerId(packet.credential);
    if (playerId === undefined) return refuse("unauthorized");
    const now = this.#now();
    const allocation = this.#allocator.choose(packet.clusterId, now);
    if (!allocation.ok) return refuse(allocation.reason);
    const { record } = allocation;
    // Reserved before the await so concurrent joins already see this one.
    this.#allocator.reserve(record.id, now);
    const ticket = await this.#allocator.issueTicket(
      record,
      playerId,
      packet.clientPublicKey,
      now,
    );
    return {
      action: sendPacket(ticket),
      join: { issued: true, clusterId: record.id, playerId },
    };
  }

  /** The hook's player id, or `undefined` when it refused, threw or returned a bad id. */
  async #playerId(credential: Uint8Array): Promise<string | undefined> {
    let player: unknown;
    try {
      player = await this.#authenticate(credential, { remoteAddr: this.#remoteAddr });
    } catch (error) {
      // The hook's own error; the credential is never part of what is logged here.
      logger.warn("authenticate hook failed for {remote}: {error}", {
        remote: `${this.#remoteAddr.hostname}:${this.#remoteAddr.port}`,
        error: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
      });
      return undefined;
    }
    if (player === null || player === undefined) return undefined;
    const playerId = (player as { playerId?: unknown }).playerId;
    if (!isValidPlayerId(playerId)) {
      logger.warn(
        "authenticate hook returned an invalid player id (empty, > 255 bytes or " +
          "not well-formed); join refused",
      );
      return undefined;
    }
    return playerId;
  }
}

function refuse(reason: JoinRefusalReason): ClientSessionResult {
  const refusal = joinRefusal(reason);
  return {
    action: sendPacket({ kind: "Error", code: refusal.code, reason: refusal.message }),
    join: { issued: false, reason },
  };
}
