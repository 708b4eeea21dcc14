// This module is browser compatible.
/**
 * A token bucket, sans-I/O: the caller passes the time in, it never reads a clock or sets a
 * timer. Servers use one per player, connection or address to bound what a peer may cost
 * (messages per second, bytes per second, tickets per second) while letting short bursts
 * through.
 *
 * It must never hold more than `burst` tokens, never go negative, and never refill backwards
 * when a caller passes an earlier time than before.
 *
 * @module
 */

/**
 * Options of {@linkcode TokenBucket}.
 *
 * @example
 * ```ts
 * import { TokenBucket, type TokenBucketOptions } from "./token_bucket.ts";
 * import assert from "node:assert/strict";
 *
 * // 20 a second, bursts of 40, starting empty.
 * const options: TokenBucketOptions = { ratePerS: 20, burst: 40, initial: 0 };
 * const bucket = new TokenBucket(options);
 * assert.equal(bucket.take(1, 0), false);
 * assert.equal(bucket.take(1, 50), true); // 50 ms refill one token
 * assert.equal(bucket.take(40, 60_000), true); // never more than the burst
 * assert.equal(bucket.take(1, 60_000), false);
 * ```
 */
export interface TokenBucketOptions {
  /** Tokens added per second (> 0, finite). */
  readonly ratePerS: number;
  /** Most tokens the bucket holds: the largest burst allowed (> 0, finite). */
  readonly burst: number;
  /**
   * Tokens at the start.
   * @default {burst}
   */
  readonly initial?: number;
}

/**
 * Tokens that refill at `ratePerS` up to `burst`; {@linkcode TokenBucket.take} spends them.
 *
 * @example Ten messages a second, bursts of three
 * ```ts
 * import { TokenBucket } from "./token_bucket.ts";
 * import assert from "node:assert/strict";
 *
 * const bucket = new TokenBucket({ ratePerS: 10, burst: 3 });
 * assert.deepEqual([1, 2, 3, 4].map(() => bucket.take(1, 0)), [true, true, true, false]);
 * assert.equal(bucket.take(1, 100), true); // 100 ms at 10/s refilled one token
 * assert.equal(bucket.take(1, 100), false);
 * ```
 */
export class TokenBucket {
  readonly #ratePerMs: number;
  readonly #burst: number;
  #tokens: number;
  #at: number | undefined;

  /**
   * Creates a bucket.
   *
   * @param options Rate, burst and initial tokens.
   * @throws {RangeError} If the rate or the burst is not a finite number > 0, or `initial` is
   * outside 0..burst.
   */
  constructor(options: TokenBucketOptions) {
    const { ratePerS, burst } = options;
    if (!Number.isFinite(ratePerS) || ratePerS <= 0) {
      throw new RangeError(`ratePerS must be a finite number > 0, got ${ratePerS}`);
    }
    if (!Number.isFinite(burst) || burst <= 0) {
      throw new RangeError(`burst must be a finite number > 0, got ${burst}`);
    }
    const initial = options.initial ?? burst;
    if (!(initial >= 0 && initial <= burst)) {
      throw new RangeError(`initial must be within 0..${burst}, got ${initial}`);
    }
    this.#ratePerMs = ratePerS / 1000;
    this.#burst = burst;
    this.#tokens = initial;
  }

  /**
   * Spends `cost` tokens if the bucket holds them at `nowMs`.
   *
   * @param cost Tokens to spend (≥ 0). A cost above `burst` can never be paid.
   * @param nowMs The current time in ms (any monotonic clock, the same for every call).
   * @returns `true` if spent, `false` (and nothing spent) if there were too few.
   */
  take(cost: number, nowMs: number): boolean {
    this.#refill(nowMs);
    if (this.#tokens < cost) return false;
    this.#tokens -= cost;
    return true;
  }

  /**
   * The tokens held at `nowMs`.
   *
   * @param nowMs The current time in ms.
   * @returns Tokens, 0..burst.
   *
   * @example
   * ```ts
   * import { TokenBucket } from "./token_bucket.ts";
   * import assert from "node:assert/strict";
   *
   * const bucket = new TokenBucket({ ratePerS: 1000, burst: 10, initial: 0 });
   * assert.equal(bucket.tokens(0), 0);
   * assert.equal(bucket.tokens(5), 5);
   * assert.equal(bucket.tokens(1000), 10);
   * ```
   */
  tokens(nowMs: number): number {
    this.#refill(nowMs);
    return this.#tokens;
  }

  /**
   * Milliseconds from `nowMs` until `cost` tokens are held (0 if they are now; `Infinity` if
   * `cost` exceeds the burst).
   *
   * @param cost Tokens wanted.
   * @param nowMs The current time in ms.
   * @returns The wait in ms.
   *
   * @example
   * ```ts
   * import { TokenBucket } from "./token_bucket.ts";
   * import assert from "node:assert/strict";
   *
   * const bucket = new TokenBucket({ ratePerS: 100, burst: 5, initial: 0 });
   * assert.equal(bucket.waitMs(2, 0), 20);
   * assert.equal(bucket.waitMs(6, 0), Infinity);
   * ```
   */
  waitMs(cost: number, nowMs: number): number {
    this.#refill(nowMs);
    if (cost > this.#burst) return Infinity;
    return Math.max(0, (cost - this.#tokens) / this.#ratePerMs);
  }

  #refill(nowMs: number): void {
    if (this.#at === undefined) {
      this.#at = nowMs;
      return;
    }
    if (!(nowMs > this.#at)) return;
    this.#tokens = Math.min(this.#burst, this.#tokens + (nowMs - this.#at) * this.#ratePerMs);
    this.#at = nowMs;
  }
}
