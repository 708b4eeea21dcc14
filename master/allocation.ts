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
 * Reservations are counted per requester (connection, address, player): one requester holds
 * at most a few at a time ({@linkcode ReservationLimits}), so asking for tickets and never
 * using them cannot make a cluster look full to everyone else. A reservation ends at the
 * cluster's next heartbeat (which reports the player if it came) or after the window, and at
 * once when its connection is closed for abuse.
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
import type { JoinLimitScope } from "./join_limiter.ts";

/** Why a JoinCluster was refused (also the `reason` label of the refusal metric). */
export type JoinRefusalReason =
  | "unknown_cluster"
  | "cluster_full"
  | "no_cluster"
  | "unauthorized"
  | "rate_limited"
  | "reservation_cap";

/** A refused join: the Error frame to answer with (the connection stays open). */
export interface JoinRefusal {
  /** Discriminant: refused. */
  readonly ok: false;
  /** Why, for metrics and logs. */
  readonly reason: JoinRefusalReason;
  /** The Error code (11–14, 19). */
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
  rate_limited: {
    ok: false,
    reason: "rate_limited",
    code: ErrorCode.RateLimited,
    message: "too many join requests; wait a second",
  },
  reservation_cap: {
    ok: false,
    reason: "reservation_cap",
    code: ErrorCode.RateLimited,
    message: "too many unused tickets; wait a second",
  },
};

/** Who asked for a ticket: each is counted on its own against {@linkcode ReservationLimits}. */
export interface Requester {
  /** A key unique to the client connection. */
  readonly connection: string;
  /** The client's IP address. */
  readonly address: string;
  /** The player id the authentication hook decided. */
  readonly player: string;
}

/** How many reservations one requester may hold at once. Every field has a default. */
export interface ReservationLimits {
  /**
   * Per client connection.
   * @default {3}
   */
  readonly perConnection?: number;
  /**
   * Per IP address (players behind one NAT share it).
   * @default {8}
   */
  readonly perAddress?: number;
  /**
   * Per player id.
   * @default {3}
   */
  readonly perPlayer?: number;
}

interface Reservation {
  readonly at: number;
  readonly requester: Requester | undefined;
}

interface ClusterReservations {
  /** Oldest first. */
  list: Reservation[];
  /** The heartbeat and load seen when the list was last pruned (for the unused estimate). */
  heartbeat: number;
  load: number;
}

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
  /** Reservations one requester may hold (see {@linkcode ReservationLimits}). */
  readonly reservationLimits?: ReservationLimits;
  /** Told each time reservations are released unused (see `releasedUnused`), e.g. metrics. */
  readonly onReleasedUnused?: (count: number) => void;
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
  /** Recent tickets per cluster. */
  readonly #reserved = new Map<ClusterId, ClusterReservations>();
  /** Reservations held per requester key (`c:`, `a:`, `p:` + id); only keys above 0. */
  readonly #held = new Map<string, number>();
  readonly #limits: { readonly [S in JoinLimitScope]: number };
  #releasedUnused = 0;
  readonly #onReleasedUnused: ((count: number) => void) | undefined;

  /**
   * @param options Registry, ticket lifetime, reservation window.
   * @throws {RangeError} If a duration is not a positive number.
   */
  constructor(options: ClusterAllocatorOptions) {
    this.#registry = options.registry;
    this.#ticketTtlMs = positive("ticketTtlMs", options.ticketTtlMs);
    this.#windowMs = positive("reservationWindowMs", options.reservationWindowMs ?? 5000);
    this.#onReleasedUnused = options.onReleasedUnused;
    const limits = options.reservationLimits ?? {};
    this.#limits = {
      connection: count("perConnection", limits.perConnection ?? 3),
      address: count("perAddress", limits.perAddress ?? 8),
      player: count("perPlayer", limits.perPlayer ?? 3),
    };
    options.registry.onRemove((record) => {
      this.#keys.delete(record.id);
      const entry = this.#reserved.get(record.id);
      if (entry !== undefined) this.#drop(entry, entry.list.length);
      this.#reserved.delete(record.id);
    });
  }

  /**
   * Reservations released without the cluster's reported load growing to match (tickets
   * never used, or used after the heartbeat that ended their reservation): an estimate, as a
   * heartbeat reports a count, not who joined.
   */
  get releasedUnused(): number {
    return this.#releasedUnused;
  }

  /** Reservations held now by requesters (for tests and the status page). */
  get heldReservations(): number {
    let total = 0;
    for (const entry of this.#reserved.values()) {
      total += entry.list.filter((r) => r.requester !== undefined).length;
    }
    return total;
  }

  /**
   * The first of the requester's limits it has reached, or `undefined` if it may reserve one
   * more.
   *
   * @param requester Who asks.
   * @param now Current Unix ms.
   *
   * @example One connection holds at most 3 reservations
   * ```ts
   * import { ClusterAllocator } from "./allocation.ts";
   * import { ClusterRegistry } from "./registry.ts";
   * import assert from "node:assert/strict";
   *
   * const registry = new ClusterRegistry();
   * const allocator = new ClusterAllocator({ registry, ticketTtlMs: 30_000 });
   * const { record } = registry.register({
   *   name: "a", host: "h", port: 1, maxConnections: 0, keyVersion: 1,
   *   publicKey: new Uint8Array(32), keyName: "k",
   * }, 0);
   * const requester = { connection: "1", address: "10.0.0.1", player: "p" };
   * for (let i = 0; i < 3; i++) allocator.reserve(record.id, 10, requester);
   * assert.equal(allocator.capReached(requester, 20), "connection");
   * registry.heartbeat(record.id, 0, 0, 30); // the heartbeat ends them
   * assert.equal(allocator.capReached(requester, 40), undefined);
   * ```
   */
  capReached(requester: Requester, now: number): JoinLimitScope | undefined {
    this.#pruneAll(now);
    if ((this.#held.get(heldKey("connection", requester)) ?? 0) >= this.#limits.connection) {
      return "connection";
    }
    if ((this.#held.get(heldKey("address", requester)) ?? 0) >= this.#limits.address) {
      return "address";
    }
    if ((this.#held.get(heldKey("player", requester)) ?? 0) >= this.#limits.player) {
      return "player";
    }
    return undefined;
  }

  /**
   * Releases every reservation of one connection at once (it was closed or refused for
   * abuse: its tickets are not expected to be used).
   *
   * @param connection The requester's connection key.
   * @returns How many were released.
   */
  releaseConnection(connection: string): number {
    if (!this.#held.has(`c:${connection}`)) return 0;
    let released = 0;
    for (const [id, entry] of this.#reserved) {
      const kept: Reservation[] = [];
      for (const reservation of entry.list) {
        if (reservation.requester?.connection === connection) {
          this.#forget(reservation);
          released++;
        } else {
          kept.push(reservation);
        }
      }
      entry.list = kept;
      if (kept.length === 0) this.#reserved.delete(id);
    }
    this.#countUnused(released);
    return released;
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

  /**
   * Counts one ticket issued now for cluster `id` as reserved load, held by `requester` (if
   * given) until it ends. The caller checked {@linkcode capReached} first.
   */
  reserve(id: ClusterId, now: number, requester?: Requester): void {
    let entry = this.#reserved.get(id);
    if (entry === undefined) {
      const record = this.#registry.get(id);
      entry = { list: [], heartbeat: record?.lastHeartbeat ?? 0, load: record?.load ?? 0 };
      this.#reserved.set(id, entry);
    }
    entry.list.push({ at: now, requester });
    if (requester !== undefined) {
      for (const scope of SCOPES) {
        const key = heldKey(scope, requester);
        this.#held.set(key, (this.#held.get(key) ?? 0) + 1);
      }
    }
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
      ...(record.endpoints === undefined ? {} : { endpoints: record.endpoints }),
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
      ...(record.endpoints === undefined ? {} : { endpoints: record.endpoints }),
    }));
  }

  #reservedCount(record: ClusterRecord, now: number): number {
    const entry = this.#reserved.get(record.id);
    if (entry === undefined) return 0;
    // A heartbeat after a ticket already reports that player (or the ticket went unused);
    // either way the reservation has done its job.
    const since = Math.max(record.lastHeartbeat, now - this.#windowMs);
    const list = entry.list;
    let drop = 0;
    while (drop < list.length && list[drop].at < since) drop++;
    // What the reported load grew by since the last look covers that many reservations; the
    // rest were not used (yet).
    const arrived = record.lastHeartbeat !== entry.heartbeat
      ? Math.max(0, record.load - entry.load)
      : 0;
    entry.heartbeat = record.lastHeartbeat;
    entry.load = record.load;
    this.#countUnused(Math.max(0, drop - arrived));
    this.#drop(entry, drop);
    if (entry.list.length === 0) this.#reserved.delete(record.id);
    return entry.list.length;
  }

  #countUnused(count: number): void {
    if (count === 0) return;
    this.#releasedUnused += count;
    this.#onReleasedUnused?.(count);
  }

  #pruneAll(now: number): void {
    for (const id of [...this.#reserved.keys()]) {
      const record = this.#registry.get(id);
      if (record !== undefined) this.#reservedCount(record, now);
    }
  }

  /** Removes the `count` oldest reservations of `entry` and their requester counts. */
  #drop(entry: ClusterReservations, count: number): void {
    if (count === 0) return;
    for (let i = 0; i < count; i++) this.#forget(entry.list[i]);
    entry.list.splice(0, count);
  }

  #forget(reservation: Reservation): void {
    const requester = reservation.requester;
    if (requester === undefined) return;
    for (const scope of SCOPES) {
      const key = heldKey(scope, requester);
      const held = (this.#held.get(key) ?? 0) - 1;
      if (held > 0) this.#held.set(key, held);
      else this.#held.delete(key);
    }
  }
}

const SCOPES: readonly JoinLimitScope[] = ["connection", "address", "player"];

function heldKey(scope: JoinLimitScope, requester: Requester): string {
  switch (scope) {
    case "connection":
      return `c:${requester.connection}`;
    case "address":
      return `a:${requester.address}`;
    case "player":
      return `p:${requester.player}`;
  }
}

function count(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(`${name} must be an integer >= 1, got ${value}`);
  }
  return value;
}

function positive(name: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) {
    throw new RangeError(`${name} must be a positive number of ms, got ${value}`);
  }
  return value;
}
