// This module is browser compatible.
/**
 * Which cluster a player joins, and the join ticket that lets them in.
 * {@linkcode ClusterAllocator} picks the asked cluster or, for id 0, the least-loaded one with
 * room, counting tickets issued since that cluster's last heartbeat (within a short window) as
 * reserved load so a join storm spreads over clusters instead of piling on one between two
 * heartbeats. It then seals the ticket (docs/PROTOCOL.md "Join ticket") with that cluster's
 * key. It must never hand out a cluster key, and never issue a ticket for a cluster that is
 * not listed.
 *
 * @module
 */

import {
  clientKeyHash,
  clusterKeyHash,
  newTicketId,
  sealJoinTicket,
} from "../shared/join_ticket.ts";
import type { ClusterInfo, JoinTicketPacket } from "../shared/protocol/packets.ts";
import { ErrorCode } from "../shared/protocol/protocol_error.ts";
import { importAesKey } from "../shared/security.ts";
import { roleLogger } from "../shared/logging.ts";
import type { ClusterId, ClusterRecord, ClusterRegistry } from "./registry.ts";

/** Why a JoinCluster was refused (also the `reason` label of the refusal metric). */
export type JoinRefusalReason = "unknown_cluster" | "cluster_full" | "no_cluster" | "unauthorized";

/** A refused join: the Error frame to answer with (the connection stays open). */
export interface JoinRefusal {
  /** Discriminant: refused. */
  readonly ok: false;
  /** Why, for metrics and logs. */
  readonly reason: JoinRefusalReason;
  /** The Error code (11–14). */
  readonly code: number;
  /** The Error reason sent to the client. */
  readonly message: string;
}

/** The outcome of {@linkcode ClusterAllocator.choose}. */
export type Allocation = { readonly ok: true; readonly record: ClusterRecord } | JoinRefusal;

const logger = roleLogger("master", "allocation");

const REFUSALS: { readonly [R in JoinRefusalReason]: JoinRefusal } = {
  unknown_cluster: {
    ok: false,
    reason: "unknown_cluster",
    code: ErrorCode.UnknownCluster,
    message: "no such cluster",
  },
  cluster_full: {
    ok: false,
    reason: "cluster_full",
    code: ErrorCode.ClusterFull,
    message: "cluster is full",
  },
  no_cluster: {
    ok: false,
    reason: "no_cluster",
    code: ErrorCode.NoCluster,
    message: "no cluster with room",
  },
  unauthorized: {
    ok: false,
    reason: "unauthorized",
    code: ErrorCode.Unauthorized,
    message: "not authorized",
  },
};

/**
 * The Error frame of a join refusal.
 *
 * @param reason Why the join was refused.
 *
 * @example
 * ```ts
 * import { joinRefusal } from "./allocation.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(joinRefusal("cluster_full").code, 12);
 * ```
 */
export function joinRefusal(reason: JoinRefusalReason): JoinRefusal {
  return REFUSALS[reason];
}

/** Options of {@linkcode ClusterAllocator}. */
export interface ClusterAllocatorOptions {
  /** The live clusters. */
  readonly registry: ClusterRegistry;
  /** Lifetime of a ticket, in ms. */
  readonly ticketTtlMs: number;
  /**
   * How long an issued ticket counts as reserved load (unless a later heartbeat already
   * reports it), in ms.
   *
   * @default {5000}
   */
  readonly reservationWindowMs?: number;
}

/**
 * Picks clusters for joins and seals their tickets. Cluster keys are given with
 * {@linkcode setClusterKey} when a cluster registers and forgotten when the registry removes
 * it.
 *
 * @example Auto-join spreads by reserved load
 * ```ts
 * import { ClusterAllocator } from "./allocation.ts";
 * import { ClusterRegistry } from "./registry.ts";
 * import assert from "node:assert/strict";
 *
 * const registry = new ClusterRegistry();
 * const allocator = new ClusterAllocator({ registry, ticketTtlMs: 30_000 });
 * const base = { host: "127.0.0.1", maxConnections: 10, keyVersion: 1, keyName: "k" };
 * const a = registry.register({ ...base, name: "a", port: 1, publicKey: new Uint8Array(32) }, 0);
 * const b = registry.register({ ...base, name: "b", port: 2, publicKey: new Uint8Array(32) }, 0);
 * const first = allocator.choose(0, 100);
 * assert.ok(first.ok && first.record.id === a.record.id);
 * allocator.reserve(a.record.id, 100);
 * const second = allocator.choose(0, 200);
 * assert.ok(second.ok && second.record.id === b.record.id);
 * ```
 */
export class ClusterAllocator {
  readonly #registry: ClusterRegistry;
  readonly #ticketTtlMs: number;
  readonly #windowMs: number;
  readonly #keys = new Map<ClusterId, Promise<CryptoKey>>();
  /** Issue times of recent tickets per cluster, oldest first. */
  readonly #reserved = new Map<ClusterId, number[]>();

  /**
   * @param options Registry, ticket lifetime, reservation window.
   * @throws {RangeError} If a duration is not a positive number.
   */
  constructor(options: ClusterAllocatorOptions) {
    this.#registry = options.registry;
    this.#ticketTtlMs = positive("ticketTtlMs", options.ticketTtlMs);
    this.#windowMs = positive("reservationWindowMs", options.reservationWindowMs ?? 5000);
    options.registry.onRemove((record) => {
      this.#keys.delete(record.id);
      this.#reserved.delete(record.id);
    });
  }

  /**
   * Remembers the key tickets for cluster `id` are sealed with (imported once, kept
   * non-extractable).
   *
   * @param id A registered cluster.
   * @param clusterKey Its 32-byte key.
   */
  setClusterKey(id: ClusterId, clusterKey: Uint8Array): void {
    const imported = importAesKey(clusterKey);
    // Issuing a ticket awaits this promise and fails too; log it here so it is never unhandled.
    imported.catch((error: unknown) => {
      logger.error("cluster {id} key cannot be imported: {error}", { id, error });
    });
    this.#keys.set(id, imported);
  }

  /**
   * Load including reserved tickets: the reported load plus tickets issued after the last
   * heartbeat and within the reservation window.
   */
  effectiveLoad(record: ClusterRecord, now: number): number {
    return record.load + this.#reservedCount(record, now);
  }

  /** Whether the cluster has no free slot, counting reservations (0 capacity = unlimited). */
  isFull(record: ClusterRecord, now: number): boolean {
    return record.maxConnections !== 0 && this.effectiveLoad(record, now) >= record.maxConnections;
  }

  /**
   * Picks the cluster for a JoinCluster: the asked id, or for 0 the non-full cluster with the
   * smallest effective load (the oldest on a tie).
   *
   * @param clusterId The id asked for, 0 = any with room.
   * @param now Current Unix ms.
   */
  choose(clusterId: number, now: number): Allocation {
    if (clusterId !== 0) {
      const record = this.#registry.get(clusterId);
      if (record === undefined) return REFUSALS.unknown_cluster;
      return this.isFull(record, now) ? REFUSALS.cluster_full : { ok: true, record };
    }
    let best: ClusterRecord | undefined;
    let bestLoad = Infinity;
    for (const record of this.#registry.list()) {
      if (this.isFull(record, now)) continue;
      const load = this.effectiveLoad(record, now);
      if (load < bestLoad) {
        best = record;
        bestLoad = load;
      }
    }
    return best === undefined ? REFUSALS.no_cluster : { ok: true, record: best };
  }

  /** Counts one ticket issued now for cluster `id` as reserved load. */
  reserve(id: ClusterId, now: number): void {
    let times = this.#reserved.get(id);
    if (times === undefined) {
      times = [];
      this.#reserved.set(id, times);
    }
    times.push(now);
  }

  /**
   * Seals a join ticket for `record` and builds the JoinTicket answer. The caller has already
   * chosen and reserved the cluster.
   *
   * @param record The chosen cluster.
   * @param playerId The id the authentication hook returned.
   * @param clientPublicKey The client's raw ephemeral X25519 public key.
   * @param now Current Unix ms (the ticket expires at `now + ticketTtlMs`).
   * @throws {RangeError} If the cluster has no key (not registered through this allocator) or
   * a claim is out of range.
   */
  async issueTicket(
    record: ClusterRecord,
    playerId: string,
    clientPublicKey: Uint8Array,
    now: number,
  ): Promise<JoinTicketPacket> {
    const key = this.#keys.get(record.id);
    if (key === undefined) throw new RangeError(`cluster ${record.id} has no ticket key`);
    const ticket = await sealJoinTicket(await key, {
      clusterId: record.id,
      // Binds the ticket to this cluster's identity, not just to an id a restart may reissue.
      clusterKeyHash: await clusterKeyHash(record.publicKey),
      playerId,
      expiresAtMs: now + this.#ticketTtlMs,
      clientKeyHash: await clientKeyHash(clientPublicKey),
      ticketId: newTicketId(),
    });
    return {
      kind: "JoinTicket",
      clusterId: record.id,
      host: record.host,
      port: record.port,
      keyVersion: record.keyVersion,
      clusterPublicKey: record.publicKey,
      ticket,
    };
  }

  /**
   * The SendClusters entries: every live cluster with its reported load and whether it is
   * full (reservations counted).
   */
  clusterInfos(now: number): ClusterInfo[] {
    return this.#registry.list().map((record) => ({
      id: record.id,
      name: record.name,
      host: record.host,
      port: record.port,
      load: record.load,
      maxConnections: record.maxConnections,
      keyVersion: record.keyVersion,
      full: this.isFull(record, now),
    }));
  }

  #reservedCount(record: ClusterRecord, now: number): number {
    const times = this.#reserved.get(record.id);
    if (times === undefined) return 0;
    // A heartbeat after a ticket already reports that player (or the ticket went unused);
    // either way the reservation has done its job.
    const since = Math.max(record.lastHeartbeat, now - this.#windowMs);
    let drop = 0;
    while (drop < times.length && times[drop] < since) drop++;
    if (drop > 0) times.splice(0, drop);
    if (times.length === 0) this.#reserved.delete(record.id);
    return times.length;
  }
}

function positive(name: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) {
    throw new RangeError(`${name} must be a positive number of ms, got ${value}`);
  }
  return value;
}
