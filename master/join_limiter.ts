// This module is browser compatible.
/**
 * How many join tickets the master hands out per connection, per address and per player, as
 * token buckets (shared/token_bucket.ts), sans-I/O: the caller passes the time in. A requester
 * over a limit is refused (`Error(RateLimited)`), and a connection that keeps asking while
 * refused runs out of strikes and is closed.
 *
 * A refused connection must cool down: after a refusal it gets no ticket until its strikes
 * have refilled (one per second), so a flooder that ignores refusals never gets another ticket
 * and is closed after `refusalsBeforeClose` of them, while an honest client that backs off for
 * a second carries on.
 *
 * It must never keep more than `maxTrackedKeys` addresses or players: idle entries (a full
 * bucket, nothing to remember) are swept, and past the cap the least recently used entry is
 * forgotten, so an attacker choosing addresses or player ids cannot grow its memory.
 *
 * @module
 */

import { TokenBucket } from "../shared/token_bucket.ts";

/** Which limit refused a ticket (also the `scope` label of the metrics). */
export type JoinLimitScope = "connection" | "address" | "player";

/** The scopes, in the order they are checked. */
export const JOIN_LIMIT_SCOPES: readonly JoinLimitScope[] = ["connection", "address", "player"];

/** Rates and bursts of {@linkcode JoinLimiter}. Every field has a default. */
export interface JoinLimits {
  /**
   * Tickets per second one connection may ask for.
   * @default {2}
   */
  readonly connectionRatePerS?: number;
  /**
   * Tickets one connection may ask for at once.
   * @default {4}
   */
  readonly connectionBurst?: number;
  /**
   * Tickets per second all connections of one IP address may ask for (players behind one NAT
   * share it).
   * @default {10}
   */
  readonly addressRatePerS?: number;
  /**
   * Tickets all connections of one IP address may ask for at once.
   * @default {20}
   */
  readonly addressBurst?: number;
  /**
   * Tickets per second one player id (as the authentication hook decided it) may ask for.
   * @default {2}
   */
  readonly playerRatePerS?: number;
  /**
   * Tickets one player id may ask for at once.
   * @default {4}
   */
  readonly playerBurst?: number;
  /**
   * Refusals a connection may collect (refilled at one per second) before it is closed.
   * @default {10}
   */
  readonly refusalsBeforeClose?: number;
  /**
   * Most addresses and most players tracked (each map on its own).
   * @default {4096}
   */
  readonly maxTrackedKeys?: number;
}

/** The verdict on one JoinCluster. */
export type JoinVerdict =
  | { readonly ok: true }
  | { readonly ok: false; /** The limit that refused it. */ readonly scope: JoinLimitScope };

const ADMITTED: JoinVerdict = Object.freeze({ ok: true });
const REFUSED: { readonly [S in JoinLimitScope]: JoinVerdict } = {
  connection: Object.freeze({ ok: false, scope: "connection" }),
  address: Object.freeze({ ok: false, scope: "address" }),
  player: Object.freeze({ ok: false, scope: "player" }),
};

/** Minimum time between two sweeps of idle entries, in ms (a sweep visits every entry). */
const SWEEP_EVERY_MS = 1000;

/**
 * One connection's ticket bucket and strikes; made by {@linkcode JoinLimiter.connection}.
 * Dropped with the connection, so it needs no bound.
 *
 * @example Ten strikes, refilled at one per second
 * ```ts
 * import { JoinLimiter } from "./join_limiter.ts";
 * import assert from "node:assert/strict";
 *
 * const conn = new JoinLimiter({ refusalsBeforeClose: 2 }).connection();
 * assert.equal(conn.strike(0), false);
 * assert.equal(conn.coolingDown(500), true);
 * assert.equal(conn.strike(500), false);
 * assert.equal(conn.strike(600), true); // out of strikes: close
 * ```
 */
export class ConnectionJoinLimit {
  readonly #tickets: TokenBucket;
  readonly #strikes: TokenBucket;
  readonly #strikeBurst: number;

  /** @internal Made by {@linkcode JoinLimiter.connection}. */
  constructor(tickets: TokenBucket, refusalsBeforeClose: number) {
    this.#tickets = tickets;
    this.#strikeBurst = refusalsBeforeClose;
    this.#strikes = new TokenBucket({ ratePerS: 1, burst: refusalsBeforeClose });
  }

  /** @internal The ticket bucket. */
  get tickets(): TokenBucket {
    return this.#tickets;
  }

  /** Whether a refusal is still being served (strikes not refilled yet). */
  coolingDown(nowMs: number): boolean {
    return this.#strikes.tokens(nowMs) < this.#strikeBurst;
  }

  /**
   * Counts one refusal.
   *
   * @returns `true` if the connection ran out of strikes and must be closed.
   */
  strike(nowMs: number): boolean {
    return !this.#strikes.take(1, nowMs);
  }
}

/**
 * A bounded map of token buckets by key: idle buckets (full again) are swept, and past the cap
 * the least recently used one is forgotten (it comes back full, which only ever favours the
 * key, never grows memory).
 */
class BucketMap {
  readonly #buckets = new Map<string, TokenBucket>();
  readonly #ratePerS: number;
  readonly #burst: number;
  readonly #max: number;
  #sweptAt = -Infinity;
  forgotten = 0;

  constructor(ratePerS: number, burst: number, max: number) {
    this.#ratePerS = ratePerS;
    this.#burst = burst;
    this.#max = max;
  }

  get size(): number {
    return this.#buckets.size;
  }

  /** The bucket of `key` (made full if new), moved to the most recently used end. */
  get(key: string, nowMs: number): TokenBucket {
    let bucket = this.#buckets.get(key);
    if (bucket !== undefined) {
      this.#buckets.delete(key);
    } else {
      if (this.#buckets.size >= this.#max) this.#makeRoom(nowMs);
      bucket = new TokenBucket({ ratePerS: this.#ratePerS, burst: this.#burst });
    }
    this.#buckets.set(key, bucket);
    return bucket;
  }

  #makeRoom(nowMs: number): void {
    if (nowMs - this.#sweptAt >= SWEEP_EVERY_MS) {
      this.#sweptAt = nowMs;
      for (const [key, bucket] of this.#buckets) {
        if (bucket.tokens(nowMs) >= this.#burst) this.#buckets.delete(key);
      }
    }
    while (this.#buckets.size >= this.#max) {
      const oldest = this.#buckets.keys().next().value as string;
      this.#buckets.delete(oldest);
      this.forgotten++;
    }
  }
}

function positive(name: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) {
    throw new RangeError(`${name} must be a finite number > 0, got ${value}`);
  }
  return value;
}

function positiveInteger(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(`${name} must be an integer >= 1, got ${value}`);
  }
  return value;
}

/**
 * The master's ticket rate limits. One per master; {@linkcode connection} makes each client
 * connection's own limit.
 *
 * @example A connection over its burst is refused, then cools down
 * ```ts
 * import { JoinLimiter } from "./join_limiter.ts";
 * import assert from "node:assert/strict";
 *
 * const limiter = new JoinLimiter({ connectionRatePerS: 1, connectionBurst: 2 });
 * const conn = limiter.connection();
 * assert.deepEqual(limiter.admit(conn, "10.0.0.1", 0), { ok: true });
 * assert.deepEqual(limiter.admit(conn, "10.0.0.1", 0), { ok: true });
 * assert.deepEqual(limiter.admit(conn, "10.0.0.1", 0), { ok: false, scope: "connection" });
 * assert.equal(limiter.refused(conn, 0), false); // one strike, not closed
 * // A token is back after 1 s, but the strike is only refilled after 1 s too.
 * assert.deepEqual(limiter.admit(conn, "10.0.0.1", 1000), { ok: true });
 * ```
 */
export class JoinLimiter {
  readonly #connectionRate: number;
  readonly #connectionBurst: number;
  readonly #refusalsBeforeClose: number;
  readonly #addresses: BucketMap;
  readonly #players: BucketMap;

  /**
   * @param limits Rates, bursts, strikes and the key bound.
   * @throws {RangeError} Naming the first limit that is not a positive number (an integer for
   * counts).
   */
  constructor(limits: JoinLimits = {}) {
    this.#connectionRate = positive("connectionRatePerS", limits.connectionRatePerS ?? 2);
    this.#connectionBurst = positive("connectionBurst", limits.connectionBurst ?? 4);
    this.#refusalsBeforeClose = positiveInteger(
      "refusalsBeforeClose",
      limits.refusalsBeforeClose ?? 10,
    );
    const maxKeys = positiveInteger("maxTrackedKeys", limits.maxTrackedKeys ?? 4096);
    this.#addresses = new BucketMap(
      positive("addressRatePerS", limits.addressRatePerS ?? 10),
      positive("addressBurst", limits.addressBurst ?? 20),
      maxKeys,
    );
    this.#players = new BucketMap(
      positive("playerRatePerS", limits.playerRatePerS ?? 2),
      positive("playerBurst", limits.playerBurst ?? 4),
      maxKeys,
    );
  }

  /** A new connection's limit (its bucket starts full). */
  connection(): ConnectionJoinLimit {
    return new ConnectionJoinLimit(
      new TokenBucket({ ratePerS: this.#connectionRate, burst: this.#connectionBurst }),
      this.#refusalsBeforeClose,
    );
  }

  /** Addresses and players tracked now (each at most `maxTrackedKeys`). */
  get trackedKeys(): { readonly addresses: number; readonly players: number } {
    return { addresses: this.#addresses.size, players: this.#players.size };
  }

  /** Entries forgotten at the cap before they were idle (a sign of many distinct peers). */
  get forgotten(): number {
    return this.#addresses.forgotten + this.#players.forgotten;
  }

  /**
   * Checks (and on success spends) one ticket of the connection and of its address; asked
   * before the authentication hook runs, so a flood never reaches the hook.
   *
   * @param conn The connection's limit.
   * @param address The client's address key (`addressKey` in `shared/ip_address.ts`).
   * @param nowMs The current time in ms.
   */
  admit(conn: ConnectionJoinLimit, address: string, nowMs: number): JoinVerdict {
    if (conn.coolingDown(nowMs) || conn.tickets.tokens(nowMs) < 1) return REFUSED.connection;
    const byAddress = this.#addresses.get(address, nowMs);
    if (!byAddress.take(1, nowMs)) return REFUSED.address;
    conn.tickets.take(1, nowMs);
    return ADMITTED;
  }

  /**
   * Checks (and on success spends) one ticket of a player id, after the hook decided it.
   *
   * @param playerId The id the hook returned.
   * @param nowMs The current time in ms.
   */
  admitPlayer(playerId: string, nowMs: number): JoinVerdict {
    return this.#players.get(playerId, nowMs).take(1, nowMs) ? ADMITTED : REFUSED.player;
  }

  /**
   * Counts a refusal against the connection (any limit, and a reservation cap).
   *
   * @returns `true` if the connection ran out of strikes and must be closed.
   */
  refused(conn: ConnectionJoinLimit, nowMs: number): boolean {
    return conn.strike(nowMs);
  }
}
