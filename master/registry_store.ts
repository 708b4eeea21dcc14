// This module is browser compatible.
/**
 * The registry store interface: what several masters share so that any of them lists every
 * cluster and places players by the same load figures. A store keeps each cluster record
 * (with an expiry its owner refreshes on every heartbeat), the reservations of recent tickets
 * and the ids of issued tickets, and tells every master of each change. The master's own
 * `ClusterRegistry` stays the synchronous view joins are decided on; `RegistrySync` keeps it
 * in step with the store. An engine (Redis, NATS JetStream KV, Deno KV) is one file that
 * implements {@linkcode RegistryStore}; this module must never do I/O itself.
 *
 * @module
 */

import type { ClusterRecord, ClusterRemovalReason } from "./registry.ts";

/** A cluster record as every master sees it: `owner` is the master holding its link. */
export interface StoredCluster extends Omit<ClusterRecord, "owner"> {
  /** The id of the master the cluster is linked to. */
  readonly owner: string;
}

/** A change another master (or this one) made, as the store delivers it. */
export type RegistryStoreEvent =
  | { readonly kind: "up"; readonly record: StoredCluster; readonly sentAt: number }
  /** Carries the whole record, so a master that missed `up` lists the cluster from it. */
  | { readonly kind: "heartbeat"; readonly record: StoredCluster; readonly sentAt: number }
  | {
    readonly kind: "down";
    readonly owner: string;
    readonly id: number;
    readonly reason: ClusterRemovalReason;
    readonly sentAt: number;
  }
  | {
    readonly kind: "reserve";
    readonly owner: string;
    readonly id: number;
    readonly sentAt: number;
  }
  /** The store was unreachable and is back: changes may have been missed, read a snapshot. */
  | { readonly kind: "resync" }
  /** The store's health changed. */
  | { readonly kind: "health"; readonly health: RegistryStoreHealth };

/** Whether the store answers, for `/health`. */
export interface RegistryStoreHealth {
  /** `true` while the store answers in time. */
  readonly ok: boolean;
  /** What is wrong (or `"ok"`), never a password. */
  readonly detail: string;
  /** When the state last changed (Unix ms). */
  readonly since: number;
}

/** Everything the store holds now: every master's clusters, and live reservations by cluster. */
export interface RegistrySnapshot {
  /** Every cluster record that has not expired. */
  readonly clusters: readonly StoredCluster[];
  /** Reservations not yet expired, by cluster id. */
  readonly reservations: ReadonlyMap<number, number>;
}

/** Error codes of {@linkcode RegistryStoreError}. */
export type RegistryStoreErrorCode = "store_unreachable" | "store_failed";

/**
 * A store that cannot be used: `store_unreachable` when it cannot be reached at start (the
 * master exits 2 naming the URL), `store_failed` for a failed or timed-out operation.
 *
 * @example
 * ```ts
 * import { RegistryStoreError } from "./registry_store.ts";
 * import assert from "node:assert/strict";
 *
 * const error = new RegistryStoreError("store_unreachable", "cannot reach redis://h:6379");
 * assert.equal(error.code, "store_unreachable");
 * assert.equal(error.exitCode, 2);
 * ```
 */
export class RegistryStoreError extends Error {
  /** What went wrong. */
  readonly code: RegistryStoreErrorCode;
  /** The exit status `deno task master` uses for it (2: fix the configuration). */
  readonly exitCode: number;

  /**
   * Makes a new RegistryStoreError.
   *
   * @param code What went wrong.
   * @param message The reason, naming the store's address (never its password).
   */
  constructor(code: RegistryStoreErrorCode, message: string) {
    super(message);
    this.name = "RegistryStoreError";
    this.code = code;
    this.exitCode = code === "store_unreachable" ? 2 : 1;
  }
}

/**
 * A registry shared by masters. Writes are called without waiting on the hot path; a store
 * that fails reports it in {@linkcode health} and through a `health` event, and is retried.
 *
 * @example The in-memory store implements it
 * ```ts
 * import type { RegistryStore } from "./registry_store.ts";
 * import { MemoryRegistryStore } from "./memory_registry_store.ts";
 * import assert from "node:assert/strict";
 *
 * const store: RegistryStore = new MemoryRegistryStore();
 * await store.open(() => {});
 * assert.equal(store.health().ok, true);
 * await store.close();
 * ```
 */
export interface RegistryStore {
  /** The engine, for `/health` (`"memory"`, `"redis"`). */
  readonly kind: string;
  /** This master's id in the store (random per start). */
  readonly masterId: string;
  /**
   * Connects and starts delivering events.
   *
   * @throws {RegistryStoreError} `store_unreachable` if the store cannot be reached.
   */
  open(onEvent: (event: RegistryStoreEvent) => void): Promise<void>;
  /** Every record and reservation the store holds now. */
  snapshot(): Promise<RegistrySnapshot>;
  /**
   * Claims `record.id` atomically and stores the record for `ttlMs`: `false` if another
   * master holds that id (the caller draws again).
   */
  claim(record: StoredCluster, ttlMs: number): Promise<boolean>;
  /** Stores the record again for `ttlMs` (a heartbeat) and tells the other masters. */
  refresh(record: StoredCluster, ttlMs: number): Promise<void>;
  /** Deletes a record this master owns and tells the other masters why. */
  remove(id: number, reason: ClusterRemovalReason): Promise<void>;
  /** Records one reservation on cluster `id` for `ttlMs` and tells the other masters. */
  reserve(id: number, ttlMs: number): Promise<void>;
  /** Claims a ticket id for `ttlMs`: `false` if it was already issued. */
  claimTicketId(ticketId: Uint8Array, ttlMs: number): Promise<boolean>;
  /** Whether the store answers now. */
  health(): RegistryStoreHealth;
  /** Disconnects; no event is delivered afterwards. */
  close(): Promise<void>;
}

/**
 * A fresh random master id (12 hex digits), for a store's `masterId`.
 *
 * @example
 * ```ts
 * import { newMasterId } from "./registry_store.ts";
 * import assert from "node:assert/strict";
 *
 * assert.match(newMasterId(), /^[0-9a-f]{12}$/);
 * ```
 */
export function newMasterId(): string {
  return crypto.getRandomValues(new Uint8Array(6)).toHex();
}
