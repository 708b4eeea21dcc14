// This module is browser compatible.
/**
 * {@linkcode MemoryRegistryStore}: the embedded registry store, in this process's memory. A
 * master without `redis_url` uses one of its own, so it behaves exactly as a lone master
 * always has (nothing to install). Several stores built on one {@linkcode MemoryRegistrySpace}
 * share it, which lets tests run several masters in one process without Redis. Expiries are
 * checked when read; it must never start a timer.
 *
 * @module
 */

import type { ClusterRemovalReason } from "./registry.ts";
import {
  newMasterId,
  type RegistrySnapshot,
  type RegistryStore,
  type RegistryStoreEvent,
  type RegistryStoreHealth,
  type StoredCluster,
} from "./registry_store.ts";

/**
 * The shared state of the {@linkcode MemoryRegistryStore}s built on it.
 *
 * @example
 * ```ts
 * import { MemoryRegistrySpace, MemoryRegistryStore } from "./memory_registry_store.ts";
 * import assert from "node:assert/strict";
 *
 * const space = new MemoryRegistrySpace();
 * const a = new MemoryRegistryStore({ space });
 * const b = new MemoryRegistryStore({ space });
 * assert.notEqual(a.masterId, b.masterId);
 * ```
 */
export class MemoryRegistrySpace {
  /** Records by id, with their expiry (Unix ms). */
  readonly clusters: Map<number, { record: StoredCluster; expiresAt: number }> = new Map();
  /** Reservation expiries by cluster id. */
  readonly reservations: Map<number, number[]> = new Map();
  /** Ticket ids (hex) and their expiry. */
  readonly tickets: Map<string, number> = new Map();
  /** Open stores' event callbacks. */
  readonly subscribers: Set<(event: RegistryStoreEvent) => void> = new Set();
  readonly #now: () => number;

  /**
   * Makes a new MemoryRegistrySpace.
   *
   * @param now Clock in Unix ms (for tests).
   */
  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** Current Unix ms. */
  now(): number {
    return this.#now();
  }

  /** Delivers `event` to every open store (asynchronously, as a real store would). */
  publish(event: RegistryStoreEvent): void {
    for (const subscriber of this.subscribers) queueMicrotask(() => subscriber(event));
  }
}

/** Options of {@linkcode MemoryRegistryStore}. */
export interface MemoryRegistryStoreOptions {
  /**
   * The space shared with other stores.
   *
   * @default {a space of its own}
   */
  readonly space?: MemoryRegistrySpace;
}

/**
 * A {@linkcode RegistryStore} in memory.
 *
 * @example Two masters' stores on one space see each other's clusters
 * ```ts
 * import { MemoryRegistrySpace, MemoryRegistryStore } from "./memory_registry_store.ts";
 * import type { ClusterId } from "./registry.ts";
 * import assert from "node:assert/strict";
 *
 * const space = new MemoryRegistrySpace();
 * const a = new MemoryRegistryStore({ space });
 * const b = new MemoryRegistryStore({ space });
 * await a.open(() => {});
 * await b.open(() => {});
 * const record = {
 *   id: 5 as ClusterId, name: "eu-1", host: "10.0.0.2", port: 6257, maxConnections: 0,
 *   keyVersion: 1, publicKey: new Uint8Array(32), keyName: "k", load: 0, registeredAt: 0,
 *   lastHeartbeat: 0, owner: a.masterId,
 * };
 * assert.equal(await a.claim(record, 3000), true);
 * assert.equal(await b.claim({ ...record, owner: b.masterId }, 3000), false);
 * assert.equal((await b.snapshot()).clusters.length, 1);
 * ```
 */
export class MemoryRegistryStore implements RegistryStore {
  /** Always `"memory"`. */
  readonly kind = "memory";
  /** This master's id. */
  readonly masterId: string = newMasterId();
  readonly #space: MemoryRegistrySpace;
  #subscriber: ((event: RegistryStoreEvent) => void) | undefined;
  readonly #health: RegistryStoreHealth;

  /**
   * Makes a new MemoryRegistryStore.
   *
   * @param options The shared space, if any.
   */
  constructor(options: MemoryRegistryStoreOptions = {}) {
    this.#space = options.space ?? new MemoryRegistrySpace();
    this.#health = { ok: true, detail: "ok", since: this.#space.now() };
  }

  /** Starts delivering events. */
  open(onEvent: (event: RegistryStoreEvent) => void): Promise<void> {
    this.#subscriber = onEvent;
    this.#space.subscribers.add(onEvent);
    return Promise.resolve();
  }

  /** Every unexpired record and reservation. */
  snapshot(): Promise<RegistrySnapshot> {
    const now = this.#space.now();
    const clusters: StoredCluster[] = [];
    for (const [id, entry] of this.#space.clusters) {
      if (entry.expiresAt <= now) this.#space.clusters.delete(id);
      else clusters.push(entry.record);
    }
    const reservations = new Map<number, number>();
    for (const [id, expiries] of this.#space.reservations) {
      const live = expiries.filter((at) => at > now);
      if (live.length > 0) reservations.set(id, live.length);
    }
    return Promise.resolve({ clusters, reservations });
  }

  /** Claims the id unless an unexpired record of another cluster holds it. */
  claim(record: StoredCluster, ttlMs: number): Promise<boolean> {
    const now = this.#space.now();
    const held = this.#space.clusters.get(record.id);
    if (held !== undefined && held.expiresAt > now) return Promise.resolve(false);
    this.#space.clusters.set(record.id, { record, expiresAt: now + ttlMs });
    this.#space.publish({ kind: "up", record, sentAt: now });
    return Promise.resolve(true);
  }

  /** Stores the record again and publishes a heartbeat. */
  refresh(record: StoredCluster, ttlMs: number): Promise<void> {
    const now = this.#space.now();
    this.#space.clusters.set(record.id, { record, expiresAt: now + ttlMs });
    this.#space.publish({ kind: "heartbeat", record, sentAt: now });
    return Promise.resolve();
  }

  /** Deletes the record and publishes why. */
  remove(id: number, reason: ClusterRemovalReason): Promise<void> {
    const held = this.#space.clusters.get(id);
    if (held?.record.owner === this.masterId) this.#space.clusters.delete(id);
    this.#space.publish({
      kind: "down",
      owner: this.masterId,
      id,
      reason,
      sentAt: this.#space.now(),
    });
    return Promise.resolve();
  }

  /** Records a reservation and publishes it. */
  reserve(id: number, ttlMs: number): Promise<void> {
    const now = this.#space.now();
    const list = this.#space.reservations.get(id) ?? [];
    list.push(now + ttlMs);
    this.#space.reservations.set(id, list.filter((at) => at > now));
    this.#space.publish({ kind: "reserve", owner: this.masterId, id, sentAt: now });
    return Promise.resolve();
  }

  /** Claims the ticket id unless it is held and unexpired. */
  claimTicketId(ticketId: Uint8Array, ttlMs: number): Promise<boolean> {
    const now = this.#space.now();
    const key = ticketId.toHex();
    const held = this.#space.tickets.get(key);
    if (held !== undefined && held > now) return Promise.resolve(false);
    // Expired ids are swept once the map grows, so it stays bounded by the issue rate.
    if (this.#space.tickets.size >= 4096) {
      for (const [id, expiresAt] of this.#space.tickets) {
        if (expiresAt <= now) this.#space.tickets.delete(id);
      }
    }
    this.#space.tickets.set(key, now + ttlMs);
    return Promise.resolve(true);
  }

  /** Always healthy. */
  health(): RegistryStoreHealth {
    return this.#health;
  }

  /** Stops delivering events. */
  close(): Promise<void> {
    if (this.#subscriber !== undefined) this.#space.subscribers.delete(this.#subscriber);
    this.#subscriber = undefined;
    return Promise.resolve();
  }
}
