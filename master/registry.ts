// This module is browser compatible.
/**
 * The master's table of live clusters: {@linkcode ClusterRegistry} assigns cluster ids (random
 * non-zero u32s, so a restarted master does not hand out the ids of its previous life again
 * and ids cannot be guessed), keeps
 * what each cluster announced and reported (load, capacity, identity key, heartbeat times),
 * and removes a cluster at once when told (heartbeat loss, disconnect, Deregister, a newer
 * cluster at the same address). Pure bookkeeping: it must never do I/O, start timers or hand
 * out the ticket keys it holds through its read-only view.
 *
 * @module
 */

import type { AnswerClusterPacket } from "../shared/protocol/packets.ts";

/** A cluster id assigned by the master: a u32, never 0. */
export type ClusterId = number & { readonly __brand: "ClusterId" };

/** What a cluster announced in AnswerCluster (its proof aside), and the key it used. */
export interface ClusterAnnouncement extends Omit<AnswerClusterPacket, "kind" | "proof"> {
  /** Name of the shared key the cluster registered with. */
  readonly keyName: string;
}

/** One live cluster as the registry knows it. Records are replaced, never mutated. */
export interface ClusterRecord extends ClusterAnnouncement {
  /** Id assigned at registration. */
  readonly id: ClusterId;
  /** Connected players, from the last Heartbeat (0 until the first). */
  readonly load: number;
  /** When it registered (Unix ms). */
  readonly registeredAt: number;
  /** When its last Heartbeat arrived (Unix ms; `registeredAt` until the first). */
  readonly lastHeartbeat: number;
  /**
   * The id of the master holding this cluster's link when that is another master (learnt
   * from a shared registry store); absent when the cluster is linked to this master.
   */
  readonly owner?: string;
}

/** Called after a cluster registered here or a Heartbeat updated a record. */
export type ClusterChangeListener = (
  record: ClusterRecord,
  change: "registered" | "heartbeat",
) => void;

/** Why a cluster left the registry. */
export type ClusterRemovalReason =
  | "deregistered"
  | "heartbeat_timeout"
  | "disconnected"
  | "replaced"
  | "shutdown";

/** Called with each removed record and why it was removed. */
export type ClusterRemovalListener = (record: ClusterRecord, reason: ClusterRemovalReason) => void;

/** The read-only face of the registry handed to embedders (`startMaster().registry`). */
export interface ClusterRegistryView {
  /** Number of live clusters. */
  readonly size: number;
  /** The live cluster with this id, if any. */
  get(id: number): ClusterRecord | undefined;
  /** Every live cluster, by id. */
  list(): readonly ClusterRecord[];
}

/** The result of {@linkcode ClusterRegistry.register}. */
export interface Registration {
  /** The new record. */
  readonly record: ClusterRecord;
  /** The older cluster at the same host:port that the new one replaced, if any. */
  readonly replaced?: ClusterRecord;
}

const MAX_CLUSTER_ID = 0xffff_ffff;

/**
 * Options of {@linkcode ClusterRegistry}.
 *
 * @example
 * ```ts
 * import { ClusterRegistry, type ClusterRegistryOptions } from "./registry.ts";
 * import assert from "node:assert/strict";
 *
 * const options: ClusterRegistryOptions = { randomId: () => 42 };
 * assert.equal(new ClusterRegistry(options).size, 0);
 * ```
 */
export interface ClusterRegistryOptions {
  /**
   * Draws a candidate id (a u32; 0 and ids in use are drawn again), for tests.
   *
   * @default {a u32 from crypto.getRandomValues}
   */
  readonly randomId?: () => number;
}

function cryptoRandomU32(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0];
}

/** Draws before giving up (only a broken `randomId` can need more than a few). */
const MAX_ID_DRAWS = 1000;

/**
 * The live clusters, by id. Registering a cluster whose host:port is already listed replaces
 * the older one (removed with reason `"replaced"`; its owner closes that link).
 *
 * @example Register, heartbeat, remove
 * ```ts
 * import { ClusterRegistry } from "./registry.ts";
 * import assert from "node:assert/strict";
 *
 * const registry = new ClusterRegistry();
 * const announcement = {
 *   name: "eu-1",
 *   host: "127.0.0.1",
 *   port: 6257,
 *   maxConnections: 100,
 *   keyVersion: 1,
 *   publicKey: new Uint8Array(32),
 *   keyName: "cluster_key",
 * };
 * const { record } = registry.register(announcement, 1_000);
 * assert.ok(record.id >= 1 && record.id <= 0xffff_ffff);
 * assert.equal(registry.heartbeat(record.id, 12, 100, 2_000), true);
 * assert.equal(registry.get(record.id)?.load, 12);
 * registry.remove(record.id, "deregistered");
 * assert.equal(registry.size, 0);
 * ```
 */
export class ClusterRegistry implements ClusterRegistryView {
  readonly #records = new Map<ClusterId, ClusterRecord>();
  readonly #listeners: ClusterRemovalListener[] = [];
  readonly #changeListeners: ClusterChangeListener[] = [];
  readonly #randomId: () => number;

  /** @param options The id source (random by default). */
  constructor(options: ClusterRegistryOptions = {}) {
    this.#randomId = options.randomId ?? cryptoRandomU32;
  }

  /** Number of live clusters. */
  get size(): number {
    return this.#records.size;
  }

  /**
   * Adds a cluster with a fresh random id (never 0, never one in use); a cluster already at the
   * same host:port is removed first.
   *
   * @param announcement What the cluster announced.
   * @param now Registration time (Unix ms).
   * @throws {RangeError} If no free id was drawn in 1000 tries (only a broken `randomId`).
   */
  register(announcement: ClusterAnnouncement, now: number): Registration {
    const previous = this.findByAddress(announcement.host, announcement.port);
    if (previous !== undefined) this.remove(previous.id, "replaced");
    const record: ClusterRecord = {
      id: this.#allocateId(),
      name: announcement.name,
      host: announcement.host,
      port: announcement.port,
      maxConnections: announcement.maxConnections,
      keyVersion: announcement.keyVersion,
      publicKey: announcement.publicKey.slice(),
      keyName: announcement.keyName,
      ...(announcement.endpoints === undefined ? {} : { endpoints: announcement.endpoints }),
      load: 0,
      registeredAt: now,
      lastHeartbeat: now,
    };
    this.#records.set(record.id, record);
    for (const listener of this.#changeListeners) listener(record, "registered");
    return previous === undefined ? { record } : { record, replaced: previous };
  }

  /**
   * Lists a cluster another master registered (a record from a shared store), under its own
   * id. An older record at the same host:port is replaced; a record that is older than the
   * one listed at its address, or whose id is taken by a different cluster, is ignored.
   *
   * @param record The other master's record (`owner` set).
   * @returns Whether it is listed now.
   *
   * @example
   * ```ts
   * import { ClusterRegistry, type ClusterId } from "./registry.ts";
   * import assert from "node:assert/strict";
   *
   * const registry = new ClusterRegistry();
   * const record = {
   *   id: 7 as ClusterId, name: "eu-1", host: "10.0.0.2", port: 6257, maxConnections: 0,
   *   keyVersion: 1, publicKey: new Uint8Array(32), keyName: "cluster_key", load: 3,
   *   registeredAt: 1, lastHeartbeat: 1, owner: "m2",
   * };
   * assert.equal(registry.adopt(record), true);
   * assert.equal(registry.get(7)?.owner, "m2");
   * ```
   */
  adopt(record: ClusterRecord): boolean {
    const same = this.#records.get(record.id);
    // A local cluster keeps its id; the shared store's atomic claim settles real collisions.
    if (
      same !== undefined &&
      (same.owner === undefined || same.host !== record.host || same.port !== record.port)
    ) {
      return false;
    }
    const previous = this.findByAddress(record.host, record.port);
    if (previous !== undefined && previous.id !== record.id) {
      if (previous.registeredAt > record.registeredAt) return false;
      this.remove(previous.id, "replaced");
    }
    this.#records.set(record.id, { ...record, publicKey: record.publicKey.slice() });
    return true;
  }

  /**
   * Records a Heartbeat.
   *
   * @returns `false` if the cluster is no longer listed.
   */
  heartbeat(id: ClusterId, load: number, maxConnections: number, now: number): boolean {
    const record = this.#records.get(id);
    if (record === undefined) return false;
    const updated = { ...record, load, maxConnections, lastHeartbeat: now };
    this.#records.set(id, updated);
    for (const listener of this.#changeListeners) listener(updated, "heartbeat");
    return true;
  }

  /**
   * Removes a cluster at once and tells the removal listeners.
   *
   * @returns The removed record, or `undefined` if it was not listed.
   */
  remove(id: ClusterId, reason: ClusterRemovalReason): ClusterRecord | undefined {
    const record = this.#records.get(id);
    if (record === undefined) return undefined;
    this.#records.delete(id);
    for (const listener of this.#listeners) listener(record, reason);
    return record;
  }

  /** The live cluster with this id, if any. */
  get(id: number): ClusterRecord | undefined {
    return this.#records.get(id as ClusterId);
  }

  /** The live cluster announcing this host:port, if any. */
  findByAddress(host: string, port: number): ClusterRecord | undefined {
    for (const record of this.#records.values()) {
      if (record.host === host && record.port === port) return record;
    }
    return undefined;
  }

  /** Every live cluster, in registration order. */
  list(): readonly ClusterRecord[] {
    return [...this.#records.values()];
  }

  /** The clusters whose last heartbeat is `timeoutMs` or more before `now`. */
  silentSince(now: number, timeoutMs: number): readonly ClusterRecord[] {
    return [...this.#records.values()].filter((r) => now - r.lastHeartbeat >= timeoutMs);
  }

  /** Adds a listener called on every removal; returns a function that removes it. */
  onRemove(listener: ClusterRemovalListener): () => void {
    this.#listeners.push(listener);
    return () => {
      const at = this.#listeners.indexOf(listener);
      if (at >= 0) this.#listeners.splice(at, 1);
    };
  }

  /** Adds a listener called on every registration and Heartbeat; returns its remover. */
  onChange(listener: ClusterChangeListener): () => void {
    this.#changeListeners.push(listener);
    return () => {
      const at = this.#changeListeners.indexOf(listener);
      if (at >= 0) this.#changeListeners.splice(at, 1);
    };
  }

  /**
   * A read-only view (size, get, list) that cannot register or remove anything.
   *
   * @example
   * ```ts
   * import { ClusterRegistry } from "./registry.ts";
   * import assert from "node:assert/strict";
   *
   * const view = new ClusterRegistry().view();
   * assert.equal(view.size, 0);
   * assert.equal("remove" in view, false);
   * ```
   */
  view(): ClusterRegistryView {
    const size = () => this.size;
    return Object.freeze({
      get size() {
        return size();
      },
      get: (id: number) => this.get(id),
      list: () => this.list(),
    });
  }

  #allocateId(): ClusterId {
    // Random rather than counting from 1: a master restarted with an empty table would
    // otherwise give a new cluster the id an old one had, and tickets are checked against ids.
    for (let draw = 0; draw < MAX_ID_DRAWS; draw++) {
      const candidate = this.#randomId();
      if (!Number.isInteger(candidate) || candidate < 1 || candidate > MAX_CLUSTER_ID) continue;
      if (!this.#records.has(candidate as ClusterId)) return candidate as ClusterId;
    }
    throw new RangeError(`no free cluster id after ${MAX_ID_DRAWS} draws`);
  }
}
