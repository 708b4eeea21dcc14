// This module is browser compatible.
/**
 * Exponential reconnect backoff with jitter, sans-I/O: it computes delays and never sleeps,
 * schedules or reads a clock itself. The cluster's master link asks it how long to wait before
 * each new attempt and resets it once registration succeeds.
 *
 * It must never return a delay above `maxMs` nor one below `minMs × (1 − jitter)`, whatever
 * the number of attempts (no overflow to Infinity after many failures).
 *
 * @module
 */

/**
 * Options of {@linkcode ReconnectBackoff}.
 *
 * @example
 * ```ts
 * import { ReconnectBackoff, type ReconnectBackoffOptions } from "./backoff.ts";
 * import assert from "node:assert/strict";
 *
 * // Half a second first, doubling up to ten seconds (jitter keeps each delay at or below).
 * const options: ReconnectBackoffOptions = { minMs: 500, maxMs: 10_000 };
 * const backoff = new ReconnectBackoff(options);
 * const delays = Array.from({ length: 8 }, () => backoff.next());
 * assert.ok(delays[0] <= 500);
 * assert.ok(delays.every((delay) => delay > 0 && delay <= 10_000));
 * ```
 */
export interface ReconnectBackoffOptions {
  /** Ceiling of the first delay, in ms (> 0). */
  readonly minMs: number;
  /** Ceiling of every delay, in ms (≥ `minMs`). */
  readonly maxMs: number;
  /**
   * Fraction of each delay taken off at random (0 = none, 1 = anywhere down to 0), so that
   * many clusters losing one master do not all reconnect at the same instant.
   *
   * @default {0.25}
   */
  readonly jitter?: number;
  /**
   * Source of uniform numbers in [0, 1), for tests.
   *
   * @default {Math.random}
   */
  readonly random?: () => number;
}

/**
 * Delays of exponential backoff with jitter: attempt n waits `min(maxMs, minMs × 2ⁿ)` less a
 * random part of up to `jitter` of it.
 *
 * @example Doubling up to the cap, then reset
 * ```ts
 * import { ReconnectBackoff } from "./backoff.ts";
 * import assert from "node:assert/strict";
 *
 * const backoff = new ReconnectBackoff({ minMs: 100, maxMs: 500, random: () => 0 });
 * assert.deepEqual([backoff.next(), backoff.next(), backoff.next(), backoff.next()], [
 *   100,
 *   200,
 *   400,
 *   500,
 * ]);
 * backoff.reset();
 * assert.equal(backoff.next(), 100);
 * ```
 */
export class ReconnectBackoff {
  readonly #minMs: number;
  readonly #maxMs: number;
  readonly #jitter: number;
  readonly #random: () => number;
  #attempts = 0;
  #ceiling: number;

  /**
   * Creates a backoff at its first attempt.
   *
   * @param options Bounds, jitter and random source.
   * @throws {RangeError} If `minMs` is not > 0, `maxMs` is below `minMs`, or `jitter` is not
   * within 0..1.
   */
  constructor(options: ReconnectBackoffOptions) {
    const { minMs, maxMs, jitter = 0.25, random = Math.random } = options;
    if (!Number.isFinite(minMs) || minMs <= 0) {
      throw new RangeError(`backoff minMs must be a finite number > 0, got ${minMs}`);
    }
    if (!Number.isFinite(maxMs) || maxMs < minMs) {
      throw new RangeError(`backoff maxMs must be finite and >= minMs ${minMs}, got ${maxMs}`);
    }
    if (!Number.isFinite(jitter) || jitter < 0 || jitter > 1) {
      throw new RangeError(`backoff jitter must be within 0..1, got ${jitter}`);
    }
    this.#minMs = minMs;
    this.#maxMs = maxMs;
    this.#jitter = jitter;
    this.#random = random;
    this.#ceiling = minMs;
  }

  /**
   * Attempts delayed so far since the last reset.
   *
   * @example
   * ```ts
   * import { ReconnectBackoff } from "./backoff.ts";
   * import assert from "node:assert/strict";
   *
   * const backoff = new ReconnectBackoff({ minMs: 1, maxMs: 8 });
   * backoff.next();
   * assert.equal(backoff.attempts, 1);
   * ```
   */
  get attempts(): number {
    return this.#attempts;
  }

  /**
   * The delay before the next attempt, in whole ms; each call doubles the next ceiling.
   *
   * @example
   * ```ts
   * import { ReconnectBackoff } from "./backoff.ts";
   * import assert from "node:assert/strict";
   *
   * const backoff = new ReconnectBackoff({ minMs: 1000, maxMs: 1000, jitter: 0.5 });
   * const delay = backoff.next();
   * assert.ok(delay >= 500 && delay <= 1000);
   * ```
   */
  next(): number {
    const ceiling = this.#ceiling;
    // Doubling a capped value never overflows, however many attempts fail.
    this.#ceiling = Math.min(this.#maxMs, ceiling * 2);
    this.#attempts++;
    const r = Math.min(Math.max(this.#random(), 0), 1);
    return Math.round(ceiling * (1 - this.#jitter * r));
  }

  /**
   * Starts again from `minMs` (call it once an attempt succeeded).
   *
   * @example
   * ```ts
   * import { ReconnectBackoff } from "./backoff.ts";
   * import assert from "node:assert/strict";
   *
   * const backoff = new ReconnectBackoff({ minMs: 10, maxMs: 100, jitter: 0 });
   * backoff.next();
   * backoff.next();
   * backoff.reset();
   * assert.equal(backoff.attempts, 0);
   * assert.equal(backoff.next(), 10);
   * ```
   */
  reset(): void {
    this.#attempts = 0;
    this.#ceiling = this.#minMs;
  }
}
