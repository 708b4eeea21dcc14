// This module is browser compatible.
/**
 * Log-in attempt limits, sans-I/O (time passed in): one {@linkcode TokenBucket} per account and
 * one per client address (IPv4, or the IPv6 /64 via `addressKey`), a request passing only when
 * both have a token. The maps are bounded: past `maxKeys` the oldest buckets are dropped (a
 * dropped bucket restarts full, which an attacker cannot choose for a given key without also
 * flooding the map from many addresses — and each address has its own bucket).
 *
 * @module
 */

import { addressKey } from "../shared/ip_address.ts";
import { TokenBucket } from "../shared/token_bucket.ts";

/** Limits of {@linkcode LoginLimiter}. */
export interface LoginLimits {
  /** Attempts per second refilled per account. */
  readonly accountRatePerS: number;
  /** Attempts in a burst per account. */
  readonly accountBurst: number;
  /** Attempts per second refilled per address. */
  readonly addressRatePerS: number;
  /** Attempts in a burst per address. */
  readonly addressBurst: number;
  /** Most buckets kept per kind. @default {100000} */
  readonly maxKeys?: number;
}

/** The verdict on one attempt. */
export type LoginVerdict =
  | { readonly allowed: true }
  | {
    readonly allowed: false;
    readonly scope: "account" | "address";
    readonly retryAfterS: number;
  };

class BucketMap {
  readonly #buckets = new Map<string, TokenBucket>();
  constructor(
    readonly ratePerS: number,
    readonly burst: number,
    readonly maxKeys: number,
  ) {}
  get(key: string): TokenBucket {
    let bucket = this.#buckets.get(key);
    if (bucket === undefined) {
      if (this.#buckets.size >= this.maxKeys) {
        const oldest = this.#buckets.keys().next().value;
        if (oldest !== undefined) this.#buckets.delete(oldest);
      }
      bucket = new TokenBucket({ ratePerS: this.ratePerS, burst: this.burst });
      this.#buckets.set(key, bucket);
    }
    return bucket;
  }
}

/**
 * Per-account and per-address attempt limits.
 *
 * @example
 * ```ts
 * import { LoginLimiter } from "./login_limiter.ts";
 * import assert from "node:assert/strict";
 *
 * const limiter = new LoginLimiter({
 *   accountRatePerS: 0.1, accountBurst: 2, addressRatePerS: 1, addressBurst: 100,
 * });
 * assert.equal(limiter.attempt("alice", "10.0.0.1", 0).allowed, true);
 * assert.equal(limiter.attempt("alice", "10.0.0.2", 0).allowed, true);
 * const third = limiter.attempt("alice", "10.0.0.3", 0);
 * assert.ok(!third.allowed && third.scope === "account" && third.retryAfterS === 10);
 * ```
 */
export class LoginLimiter {
  readonly #accounts: BucketMap;
  readonly #addresses: BucketMap;

  /**
   * Makes a new LoginLimiter.
   *
   * @param limits Rates and bursts.
   */
  constructor(limits: LoginLimits) {
    const maxKeys = limits.maxKeys ?? 100_000;
    this.#accounts = new BucketMap(limits.accountRatePerS, limits.accountBurst, maxKeys);
    this.#addresses = new BucketMap(limits.addressRatePerS, limits.addressBurst, maxKeys);
  }

  /**
   * Counts one attempt; refused when either bucket is empty (then nothing is spent).
   *
   * @param account Normalised username, or null for requests with no account (register).
   * @param address Client IP address.
   * @param nowMs Monotonic time in ms.
   */
  attempt(account: string | null, address: string, nowMs: number): LoginVerdict {
    const byAddress = this.#addresses.get(addressKey(address));
    const byAccount = account === null ? undefined : this.#accounts.get(account);
    if (byAddress.tokens(nowMs) < 1) {
      return { allowed: false, scope: "address", retryAfterS: retry(byAddress, nowMs) };
    }
    if (byAccount !== undefined && byAccount.tokens(nowMs) < 1) {
      return { allowed: false, scope: "account", retryAfterS: retry(byAccount, nowMs) };
    }
    byAddress.take(1, nowMs);
    byAccount?.take(1, nowMs);
    return { allowed: true };
  }
}

function retry(bucket: TokenBucket, nowMs: number): number {
  return Math.max(1, Math.ceil(bucket.waitMs(1, nowMs) / 1000));
}
