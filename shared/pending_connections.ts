// This module is browser compatible.
/**
 * The pool of connections that have not authenticated yet, sans-I/O: a server asks
 * {@linkcode PendingConnections.admit} for each new connection and calls
 * {@linkcode PendingConnections.release} once it authenticates or closes. Authenticated players
 * and registered clusters have their own limits; this pool keeps unauthenticated peers from
 * ever taking their slots.
 *
 * Policy (docs/SECURITY.md, "Connection slots"): at most `maxPending` connections in all and
 * `maxPerAddress` per source address (`addressKey` of `ip_address.ts`: an IPv4 address, or an IPv6 /64).
 * A new connection over its address's limit is refused; a new connection that finds the pool
 * full takes the place of the oldest pending one, which is evicted. Evicting the oldest rather
 * than refusing the newest means a flood cannot lock honest players out by filling the pool
 * once and holding it until the deadline: every pending connection gets at least
 * `maxPending / (new connections per second)` seconds, far more than a real handshake needs.
 *
 * It must never hold more than `maxPending` connections or per-address counts for more
 * addresses than it holds connections, and never touches a socket or a clock.
 *
 * @module
 */

/**
 * What {@linkcode PendingConnections.admit} decided: `admitted` (with the connection evicted
 * to make room, if any), or `refused` because its address already has `maxPerAddress`.
 *
 * @example
 * ```ts
 * import type { PendingAdmission } from "./pending_connections.ts";
 * import assert from "node:assert/strict";
 *
 * const outcome: PendingAdmission<string> = { kind: "admitted", evicted: undefined };
 * assert.equal(outcome.kind, "admitted");
 * ```
 */
export type PendingAdmission<T> =
  | { readonly kind: "admitted"; readonly evicted: T | undefined }
  | { readonly kind: "refused"; readonly reason: "per_address" };

/**
 * Options of {@linkcode PendingConnections}.
 *
 * @example
 * ```ts
 * import { PendingConnections, type PendingConnectionsOptions } from "./pending_connections.ts";
 * import assert from "node:assert/strict";
 *
 * // One address may hold at most two of the unauthenticated connections.
 * const options: PendingConnectionsOptions = { maxPending: 1024, maxPerAddress: 2 };
 * const pending = new PendingConnections<number>(options);
 * const kinds = [1, 2, 3].map((conn) => pending.admit(conn, "10.0.0.1").kind);
 * assert.deepEqual(kinds, ["admitted", "admitted", "refused"]);
 * ```
 */
export interface PendingConnectionsOptions {
  /** Most connections pending at once (≥ 1). */
  readonly maxPending: number;
  /** Most connections pending at once from one address key (≥ 1). */
  readonly maxPerAddress: number;
}

/**
 * The pending (unauthenticated) connections of one server, oldest first.
 *
 * @example A full pool evicts its oldest; an address at its limit is refused
 * ```ts
 * import { PendingConnections } from "./pending_connections.ts";
 * import assert from "node:assert/strict";
 *
 * const pool = new PendingConnections<string>({ maxPending: 2, maxPerAddress: 1 });
 * assert.deepEqual(pool.admit("a", "10.0.0.1"), { kind: "admitted", evicted: undefined });
 * assert.deepEqual(pool.admit("b", "10.0.0.1"), { kind: "refused", reason: "per_address" });
 * assert.deepEqual(pool.admit("c", "10.0.0.2"), { kind: "admitted", evicted: undefined });
 * assert.deepEqual(pool.admit("d", "10.0.0.3"), { kind: "admitted", evicted: "a" });
 * assert.equal(pool.size, 2);
 * assert.equal(pool.release("c"), true);
 * assert.equal(pool.release("c"), false);
 * assert.equal(pool.countOf("10.0.0.2"), 0);
 * ```
 */
export class PendingConnections<T> {
  readonly #maxPending: number;
  readonly #maxPerAddress: number;
  /** Pending connections and their address keys, in admission order (oldest first). */
  readonly #connections = new Map<T, string>();
  /** Pending connections per address key; a key leaves when its count reaches 0. */
  readonly #perAddress = new Map<string, number>();

  /**
   * @param options The two bounds.
   * @throws {RangeError} If a bound is not an integer ≥ 1.
   */
  constructor(options: PendingConnectionsOptions) {
    for (const [name, value] of Object.entries(options)) {
      if (!Number.isSafeInteger(value) || value < 1) {
        throw new RangeError(`${name} must be an integer >= 1, got ${value}`);
      }
    }
    this.#maxPending = options.maxPending;
    this.#maxPerAddress = options.maxPerAddress;
  }

  /** Connections pending now. */
  get size(): number {
    return this.#connections.size;
  }

  /** Most connections pending at once. */
  get maxPending(): number {
    return this.#maxPending;
  }

  /** Most connections pending at once from one address. */
  get maxPerAddress(): number {
    return this.#maxPerAddress;
  }

  /**
   * Pending connections from one address key.
   *
   * @param address An address key (see `addressKey` in `ip_address.ts`).
   */
  countOf(address: string): number {
    return this.#perAddress.get(address) ?? 0;
  }

  /**
   * Whether `connection` is pending.
   *
   * @param connection The connection.
   */
  has(connection: T): boolean {
    return this.#connections.has(connection);
  }

  /**
   * Admits a new connection, evicting the oldest pending one if the pool is full.
   *
   * @param connection The new connection (not pending yet).
   * @param address Its address key (see `addressKey` in `ip_address.ts`).
   * @returns `admitted` (the caller closes `evicted`, which has left the pool), or `refused`
   * (the caller closes the new connection, which was not added).
   */
  admit(connection: T, address: string): PendingAdmission<T> {
    const count = this.countOf(address);
    if (count >= this.#maxPerAddress) return { kind: "refused", reason: "per_address" };
    let evicted: T | undefined;
    if (this.#connections.size >= this.#maxPending) {
      evicted = this.#connections.keys().next().value as T;
      this.release(evicted);
    }
    this.#connections.set(connection, address);
    this.#perAddress.set(address, this.countOf(address) + 1);
    return { kind: "admitted", evicted };
  }

  /**
   * Takes a connection out of the pool (it authenticated, was refused a slot or closed).
   *
   * @param connection The connection.
   * @returns `true` if it was pending.
   */
  release(connection: T): boolean {
    const address = this.#connections.get(connection);
    if (address === undefined) return false;
    this.#connections.delete(connection);
    const left = this.countOf(address) - 1;
    if (left > 0) this.#perAddress.set(address, left);
    else this.#perAddress.delete(address);
    return true;
  }
}
