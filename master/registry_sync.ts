/**
 * {@linkcode RegistrySync} keeps this master's `ClusterRegistry` (the synchronous view joins
 * are decided on) in step with a shared {@linkcode RegistryStore}: clusters linked here are
 * claimed (atomically, so ids never collide between masters), refreshed on every heartbeat
 * and removed in the store; other masters' clusters, heartbeats and reservations are applied
 * here as they arrive, and their clusters dropped when their heartbeats stop. When the store
 * comes back after an outage it rebuilds: every local record is written again and a snapshot
 * read. It must never let a store failure reach a client or a cluster link: a failing store
 * makes the master degraded (see {@linkcode RegistrySync.status}), never stopped.
 *
 * @module
 */

import { logSuccess, roleLogger } from "../shared/logging.ts";
import { Gauge, type MetricFamily } from "../shared/metrics.ts";
import type { ClusterAllocator } from "./allocation.ts";
import type { ClusterId, ClusterRecord, ClusterRegistry } from "./registry.ts";
import type {
  RegistryStore,
  RegistryStoreEvent,
  RegistryStoreHealth,
  StoredCluster,
} from "./registry_store.ts";

const logger = roleLogger("master", "registry_sync");

/** Options of {@linkcode RegistrySync}. */
export interface RegistrySyncOptions {
  /** This master's registry. */
  readonly registry: ClusterRegistry;
  /** This master's allocator (reservations from other masters are counted in it). */
  readonly allocator: ClusterAllocator;
  /** The shared store. */
  readonly store: RegistryStore;
  /** A cluster without a heartbeat for this long is dropped (and its record expires), in ms. */
  readonly heartbeatTimeoutMs: number;
  /** How long a reservation counts, in ms. */
  readonly reservationWindowMs: number;
  /** Lifetime of a ticket (and of its claimed id), in ms. */
  readonly ticketTtlMs: number;
  /**
   * Clock in Unix ms.
   *
   * @default {Date.now}
   */
  readonly now?: () => number;
}

/** What `/health` shows of the shared registry. */
export interface RegistrySyncStatus {
  /** The engine. */
  readonly store: string;
  /** This master's id in the store. */
  readonly masterId: string;
  /** Whether the store answers. */
  readonly ok: boolean;
  /** What is wrong, or "ok". */
  readonly detail: string;
  /** Clusters linked to other masters, listed here. */
  readonly remoteClusters: number;
  /** Delay of the last change from another master (sent → applied), in ms. */
  readonly lastDelayMs: number | null;
  /** Largest such delay seen, in ms. */
  readonly maxDelayMs: number | null;
}

/**
 * Connects a registry and allocator to a shared store.
 *
 * @example Two masters on one in-memory space list each other's clusters
 * ```ts
 * import { RegistrySync } from "./registry_sync.ts";
 * import { ClusterRegistry } from "./registry.ts";
 * import { ClusterAllocator } from "./allocation.ts";
 * import { MemoryRegistrySpace, MemoryRegistryStore } from "./memory_registry_store.ts";
 * import assert from "node:assert/strict";
 *
 * const space = new MemoryRegistrySpace();
 * const masters = [0, 1].map(() => {
 *   const registry = new ClusterRegistry();
 *   const allocator = new ClusterAllocator({ registry, ticketTtlMs: 30_000 });
 *   const store = new MemoryRegistryStore({ space });
 *   const sync = new RegistrySync({
 *     registry, allocator, store, heartbeatTimeoutMs: 3000, reservationWindowMs: 5000,
 *     ticketTtlMs: 30_000,
 *   });
 *   return { registry, sync };
 * });
 * for (const m of masters) await m.sync.start();
 * masters[0].registry.register({
 *   name: "eu-1", host: "10.0.0.2", port: 6257, maxConnections: 0, keyVersion: 1,
 *   publicKey: new Uint8Array(32), keyName: "k",
 * }, Date.now());
 * await new Promise((resolve) => setTimeout(resolve, 10));
 * assert.equal(masters[1].registry.list()[0]?.name, "eu-1");
 * for (const m of masters) await m.sync.stop();
 * ```
 */
export class RegistrySync {
  readonly #registry: ClusterRegistry;
  readonly #allocator: ClusterAllocator;
  readonly #store: RegistryStore;
  readonly #timeoutMs: number;
  readonly #windowMs: number;
  readonly #ticketTtlMs: number;
  readonly #now: () => number;
  readonly #unsubscribe: (() => void)[] = [];
  /** Set while a change from the store is applied, so it is not written back. */
  #applying = false;
  #sweepTimer: ReturnType<typeof setInterval> | undefined;
  #resyncing: Promise<void> | undefined;
  #stopped = false;
  #lastDelayMs: number | null = null;
  #maxDelayMs: number | null = null;
  #health: RegistryStoreHealth;

  /** @param options Registry, allocator, store and timings. */
  constructor(options: RegistrySyncOptions) {
    this.#registry = options.registry;
    this.#allocator = options.allocator;
    this.#store = options.store;
    this.#timeoutMs = options.heartbeatTimeoutMs;
    this.#windowMs = options.reservationWindowMs;
    this.#ticketTtlMs = options.ticketTtlMs;
    this.#now = options.now ?? Date.now;
    this.#health = { ok: true, detail: "ok", since: this.#now() };
  }

  /**
   * Opens the store, lists what it holds and starts following it.
   *
   * @throws {import("./registry_store.ts").RegistryStoreError} If the store is unreachable.
   */
  async start(): Promise<void> {
    await this.#store.open((event) => this.#onEvent(event));
    this.#health = this.#store.health();
    const snapshot = await this.#store.snapshot();
    const now = this.#now();
    this.#adoptAll(snapshot.clusters, now);
    for (const [id, count] of snapshot.reservations) {
      if (this.#registry.get(id) === undefined) continue;
      for (let i = 0; i < count; i++) this.#allocator.countReservation(id as ClusterId, now);
    }
    this.#unsubscribe.push(
      this.#registry.onChange((record, change) => this.#onLocalChange(record, change)),
      this.#registry.onRemove((record, reason) => {
        if (this.#applying || record.owner !== undefined || reason === "shutdown") return;
        // Shutdown leaves the records to expire: the clusters move to another master.
        this.#write(this.#store.remove(record.id, reason));
      }),
    );
    const every = Math.max(100, Math.floor(this.#timeoutMs / 4));
    this.#sweepTimer = setInterval(() => this.#sweep(), every);
  }

  /** Tells the other masters of a reservation made here (the allocator's `onReserve`). */
  reserved(id: ClusterId): void {
    if (this.#stopped) return;
    this.#write(this.#store.reserve(id, this.#windowMs));
  }

  /**
   * Claims a ticket id in the store (the allocator's `claimTicketId`). While the store is
   * down the id is used unclaimed: ids are 128 random bits, and joins must not stop.
   */
  async claimTicketId(ticketId: Uint8Array): Promise<boolean> {
    if (!this.#store.health().ok) return true;
    try {
      return await this.#store.claimTicketId(ticketId, this.#ticketTtlMs);
    } catch {
      return true; // the store reports its own failure in health(); the join carries on
    }
  }

  /** The store's state and the measured propagation delay, for `/health`. */
  status(): RegistrySyncStatus {
    const health = this.#store.health();
    return {
      store: this.#store.kind,
      masterId: this.#store.masterId,
      ok: health.ok,
      detail: health.detail,
      remoteClusters: this.#registry.list().filter((r) => r.owner !== undefined).length,
      lastDelayMs: this.#lastDelayMs,
      maxDelayMs: this.#maxDelayMs,
    };
  }

  /** Gauges for `/metrics`: whether the store answers, remote clusters, propagation delays. */
  metricFamilies(): MetricFamily[] {
    return [
      new Gauge(
        "sustenet_master_registry_store_up",
        "1 while the shared registry store answers, else 0",
        () => this.#store.health().ok ? 1 : 0,
      ),
      new Gauge(
        "sustenet_master_registry_remote_clusters",
        "Clusters linked to other masters, listed here",
        () => this.status().remoteClusters,
      ),
      new Gauge(
        "sustenet_master_registry_delay_seconds",
        "Delay of changes from other masters until applied here (last and max)",
        () => [
          { labels: { which: "last" }, value: (this.#lastDelayMs ?? 0) / 1000 },
          { labels: { which: "max" }, value: (this.#maxDelayMs ?? 0) / 1000 },
        ],
      ),
    ];
  }

  /** Stops following the store and closes it. Idempotent. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#sweepTimer);
    for (const unsubscribe of this.#unsubscribe.splice(0)) unsubscribe();
    await this.#resyncing;
    await this.#store.close();
  }

  #stored(record: ClusterRecord): StoredCluster {
    // Every field the record has (a field added to announcements travels too), owned here.
    const { owner: _local, ...fields } = record;
    return { ...fields, owner: this.#store.masterId };
  }

  #onLocalChange(record: ClusterRecord, change: "registered" | "heartbeat"): void {
    if (this.#applying || record.owner !== undefined || this.#stopped) return;
    const stored = this.#stored(record);
    if (change === "heartbeat") {
      this.#write(this.#store.refresh(stored, this.#timeoutMs));
      return;
    }
    this.#write(
      this.#store.claim(stored, this.#timeoutMs).then((claimed) => {
        if (claimed || this.#registry.get(record.id)?.owner !== undefined) return;
        // Another master claimed this id first: drop ours (its link closes on the next
        // heartbeat and the cluster registers again under a fresh id).
        logger.warn("cluster id {id} is held by another master; {name} must register again", {
          id: record.id,
          name: record.name,
        });
        this.#applyRemote(() => this.#registry.remove(record.id, "replaced"));
        this.#resync(); // lists the winner, whose `up` was ignored while the id was ours
      }),
    );
  }

  /** Runs a store write without waiting; its failure shows in the store's health. */
  #write(work: Promise<unknown>): void {
    work.catch((error: unknown) => {
      logger.debug("registry store write failed: {error}", { error });
    });
  }

  #applyRemote<T>(apply: () => T): T {
    this.#applying = true;
    try {
      return apply();
    } finally {
      this.#applying = false;
    }
  }

  #onEvent(event: RegistryStoreEvent): void {
    if (this.#stopped) return;
    const now = this.#now();
    switch (event.kind) {
      case "health":
        this.#onHealth(event.health);
        return;
      case "resync":
        this.#resync();
        return;
      case "up":
      case "heartbeat": {
        const record = event.record;
        if (record.owner === this.#store.masterId) return;
        this.#measure(now - event.sentAt);
        const listed = this.#registry.get(record.id);
        if (listed !== undefined && listed.owner === record.owner) {
          this.#applyRemote(() =>
            this.#registry.heartbeat(listed.id, record.load, record.maxConnections, now)
          );
        } else {
          this.#adoptAll([record], now);
        }
        return;
      }
      case "down": {
        if (event.owner === this.#store.masterId) return;
        this.#measure(now - event.sentAt);
        const listed = this.#registry.get(event.id);
        if (listed?.owner === event.owner) {
          this.#applyRemote(() => this.#registry.remove(listed.id, event.reason));
        }
        return;
      }
      case "reserve": {
        if (event.owner === this.#store.masterId) return;
        this.#measure(now - event.sentAt);
        if (this.#registry.get(event.id) !== undefined) {
          this.#allocator.countReservation(event.id as ClusterId, now);
        }
        return;
      }
    }
  }

  #measure(delayMs: number): void {
    const delay = Math.max(0, delayMs);
    this.#lastDelayMs = delay;
    this.#maxDelayMs = Math.max(this.#maxDelayMs ?? 0, delay);
  }

  #onHealth(health: RegistryStoreHealth): void {
    const was = this.#health.ok;
    this.#health = health;
    if (was && !health.ok) {
      logger.warn(
        "registry store ({store}) failing: {detail}; serving the clusters known so far",
        { store: this.#store.kind, detail: health.detail },
      );
    } else if (!was && health.ok) {
      logSuccess(logger, "registry store ({store}) answering again; rebuilding", {
        store: this.#store.kind,
      });
      this.#resync();
    }
  }

  #adoptAll(records: readonly StoredCluster[], now: number): void {
    for (const stored of records) {
      if (stored.owner === this.#store.masterId) continue;
      // Heard from now: the owner refreshed it within its expiry.
      const record: ClusterRecord = { ...stored, lastHeartbeat: now };
      this.#applyRemote(() => this.#registry.adopt(record));
    }
  }

  /** Writes every local record again and lists what the store holds (after an outage). */
  #resync(): void {
    if (this.#resyncing !== undefined || this.#stopped) return;
    this.#resyncing = (async () => {
      for (const record of this.#registry.list()) {
        if (record.owner === undefined) {
          await this.#store.refresh(this.#stored(record), this.#timeoutMs);
        }
      }
      const snapshot = await this.#store.snapshot();
      if (!this.#stopped) this.#adoptAll(snapshot.clusters, this.#now());
    })().catch((error: unknown) => {
      logger.debug("registry rebuild failed (retried when the store answers): {error}", {
        error,
      });
    }).finally(() => {
      this.#resyncing = undefined;
    });
  }

  /** Drops other masters' clusters whose heartbeats stopped, unless the store is down. */
  #sweep(): void {
    // While the store is down nothing can be heard; the list is kept as it was.
    const health = this.#store.health();
    if (!health.ok) return;
    const now = this.#now();
    for (const record of this.#registry.silentSince(now, this.#timeoutMs)) {
      if (record.owner === undefined) continue; // its own link's timer handles it
      // Silence while the store was down does not count: the owner could not be heard.
      if (now - Math.max(record.lastHeartbeat, health.since) < this.#timeoutMs) continue;
      this.#applyRemote(() => this.#registry.remove(record.id, "heartbeat_timeout"));
    }
  }
}
