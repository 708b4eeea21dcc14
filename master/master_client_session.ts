// This module is browser compatible.
/**
 * One client's conversation with the master after Hello, as a sans-I/O state machine:
 * RequestClusters → SendClusters, JoinCluster → JoinTicket (or an Error 11–14 or 19 that
 * leaves the connection open), Ping → Pong; anything else is `UnexpectedPacket` and close.
 * JoinCluster passes the ticket limits (join_limiter.ts: connection and address before the
 * authentication hook runs, player after) and the per-requester reservation cap; a connection
 * that keeps asking while refused is closed with `RateLimited`. It must never log or keep a
 * credential or a ticket, never issue a ticket the authentication hook did not approve, and
 * never write a log line per request (lines go through a {@linkcode LogThrottle}).
 *
 * @module
 */

import { roleLogger } from "../shared/logging.ts";
import { LogThrottle } from "../shared/log_throttle.ts";
import type {
  ClusterInfo,
  JoinClusterPacket,
  Packet,
  SendClustersPacket,
} from "../shared/protocol/packets.ts";
import { ErrorCode } from "../shared/protocol/protocol_error.ts";
import { X25519_PUBLIC_KEY_BYTES } from "../shared/identity_key.ts";
import {
  type ClusterAllocator,
  joinRefusal,
  type JoinRefusalReason,
  type Requester,
} from "./allocation.ts";
import type { ConnectionJoinLimit, JoinLimiter, JoinLimitScope } from "./join_limiter.ts";
import { addressKey } from "../shared/ip_address.ts";
import { type AuthenticateHook, isValidPlayerId, type RemoteAddress } from "./authenticate.ts";
import { closeWith, commonAction, type ConnectionAction, sendPacket } from "./connection_action.ts";
import type { ClusterId } from "./registry.ts";

const logger = roleLogger("master", "client");

/** Bytes of a frame header plus type byte and the SendClusters count. */
const SEND_CLUSTERS_OVERHEAD = 4 + 1 + 2;
/** Bytes of a ClusterInfo besides its two strings and its endpoints (their count included). */
const CLUSTER_INFO_FIXED = 4 + 1 + 1 + 2 + 4 + 4 + 2 + 1 + 1;
const MAX_LIST_ENTRIES = 0xffff;

/** How a JoinCluster ended, for metrics. */
export type JoinOutcome =
  | { readonly issued: true; readonly clusterId: ClusterId; readonly playerId: string }
  | {
    readonly issued: false;
    readonly reason: JoinRefusalReason;
    /** For `rate_limited` and `reservation_cap`: which limit refused it. */
    readonly scope?: JoinLimitScope;
    /** Set when the connection is closed for asking too often while refused. */
    readonly closed?: boolean;
  };

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
  /** Ticket rate limits shared by the master's connections; none when absent. */
  readonly joinLimiter?: JoinLimiter;
  /**
   * Unique key of this connection, for per-connection reservations.
   *
   * @default {the remote address with its port}
   */
  readonly connectionKey?: string;
  /**
   * Throttle of this session's warnings (hook failures, cut lists), shared by the master's
   * connections so a flood from many connections of one address stays a few lines.
   *
   * @default {a throttle of its own: 1 line per 10 s per kind}
   */
  readonly logThrottle?: LogThrottle;
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
 * import { MasterClientSession } from "./master_client_session.ts";
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
  readonly #limiter: JoinLimiter | undefined;
  readonly #limit: ConnectionJoinLimit | undefined;
  readonly #connectionKey: string;
  readonly #logThrottle: LogThrottle;

  /** @param options Allocator, hook, address, frame bound, limits, clock. */
  constructor(options: MasterClientSessionOptions) {
    this.#allocator = options.allocator;
    this.#authenticate = options.authenticate;
    this.#remoteAddr = options.remoteAddr;
    this.#maxFrameBytes = options.maxFrameBytes;
    this.#now = options.now ?? Date.now;
    this.#limiter = options.joinLimiter;
    this.#limit = options.joinLimiter?.connection();
    this.#connectionKey = options.connectionKey ??
      `${options.remoteAddr.hostname}:${options.remoteAddr.port}`;
    this.#logThrottle = options.logThrottle ?? new LogThrottle();
  }

  /** The key this session's reservations are held under. */
  get connectionKey(): string {
    return this.#connectionKey;
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
      let entry = CLUSTER_INFO_FIXED + encoder.encode(info.name).length +
        encoder.encode(info.host).length;
      for (const e of info.endpoints ?? []) entry += 1 + 2 + 1 + encoder.encode(e.path).length;
      if (size + entry > this.#maxFrameBytes || fitting.length === MAX_LIST_ENTRIES) {
        const suppressed = this.#logThrottle.admit("cluster list cut", this.#now());
        if (suppressed !== null) {
          logger.warn(
            "cluster list cut to {shown} of {total} clusters to fit one frame " +
              "({suppressed} more cut lists not logged)",
            { shown: fitting.length, total: infos.length, suppressed },
          );
        }
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
    const limiter = this.#limiter;
    const limit = this.#limit;
    const address = addressKey(this.#remoteAddr.hostname);
    if (limiter !== undefined && limit !== undefined) {
      // Before the hook: a flood costs a bucket look-up, never an authentication.
      const verdict = limiter.admit(limit, address, this.#now());
      if (!verdict.ok) return this.#limited(limiter, limit, "rate_limited", verdict.scope);
    }
    const playerId = await this.#playerId(packet.credential);
    if (playerId === undefined) return refuse("unauthorized");
    const now = this.#now();
    let requester: Requester | undefined;
    if (limiter !== undefined && limit !== undefined) {
      const verdict = limiter.admitPlayer(playerId, now);
      if (!verdict.ok) return this.#limited(limiter, limit, "rate_limited", verdict.scope);
      requester = { connection: this.#connectionKey, address, player: playerId };
      const cap = this.#allocator.capReached(requester, now);
      if (cap !== undefined) return this.#limited(limiter, limit, "reservation_cap", cap);
    }
    const allocation = this.#allocator.choose(packet.clusterId, now);
    if (!allocation.ok) return refuse(allocation.reason);
    const { record } = allocation;
    // Reserved before the await so concurrent joins already see this one.
    this.#allocator.reserve(record.id, now, requester);
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

  /**
   * A refusal by a limit: the connection's reservations are released (a requester over its
   * limit is not expected to use them) and it takes a strike; out of strikes, it is closed.
   */
  #limited(
    limiter: JoinLimiter,
    limit: ConnectionJoinLimit,
    reason: "rate_limited" | "reservation_cap",
    scope: JoinLimitScope,
  ): ClientSessionResult {
    this.#allocator.releaseConnection(this.#connectionKey);
    if (limiter.refused(limit, this.#now())) {
      return {
        action: closeWith(ErrorCode.RateLimited, "too many join requests"),
        join: { issued: false, reason, scope, closed: true },
      };
    }
    const refusal = joinRefusal(reason);
    return {
      action: sendPacket({ kind: "Error", code: refusal.code, reason: refusal.message }),
      join: { issued: false, reason, scope },
    };
  }

  /** The hook's player id, or `undefined` when it refused, threw or returned a bad id. */
  async #playerId(credential: Uint8Array): Promise<string | undefined> {
    let player: unknown;
    try {
      player = await this.#authenticate(credential, { remoteAddr: this.#remoteAddr });
    } catch (error) {
      // The hook's own error; the credential is never part of what is logged here.
      const suppressed = this.#logThrottle.admit(
        `hook failed ${this.#remoteAddr.hostname}`,
        this.#now(),
      );
      if (suppressed !== null) {
        logger.warn(
          "authenticate hook failed for {remote}: {error} ({suppressed} more from this " +
            "address not logged)",
          {
            remote: `${this.#remoteAddr.hostname}:${this.#remoteAddr.port}`,
            error: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
            suppressed,
          },
        );
      }
      return undefined;
    }
    if (player === null || player === undefined) return undefined;
    const playerId = (player as { playerId?: unknown }).playerId;
    if (!isValidPlayerId(playerId)) {
      const suppressed = this.#logThrottle.admit("invalid player id", this.#now());
      if (suppressed !== null) {
        logger.warn(
          "authenticate hook returned an invalid player id (empty, > 255 bytes or " +
            "not well-formed); join refused ({suppressed} more not logged)",
          { suppressed },
        );
      }
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
