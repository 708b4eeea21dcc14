// This module is browser compatible.
/**
 * A bounded set of measurements (round-trip or join times, in ms) with percentiles, for the
 * load tester's summary. Past its capacity it keeps a uniform random sample of everything
 * recorded (reservoir sampling), so memory stays bounded however long a run lasts while count,
 * minimum and maximum stay exact.
 *
 * It must never grow past its capacity, and never report a percentile of an empty set.
 *
 * @module
 */

/** Percentiles of a {@linkcode SampleSet}, in the unit recorded (ms); undefined when empty. */
export interface Percentiles {
  /** How many values were recorded. */
  readonly count: number;
  /** The median. */
  readonly p50: number;
  /** The 95th percentile. */
  readonly p95: number;
  /** The 99th percentile. */
  readonly p99: number;
  /** The largest value recorded. */
  readonly max: number;
}

/**
 * Measurements with percentiles.
 *
 * @example
 * ```ts
 * import { SampleSet } from "./sample_set.ts";
 * import assert from "node:assert/strict";
 *
 * const rtt = new SampleSet();
 * for (let ms = 1; ms <= 100; ms++) rtt.record(ms);
 * assert.deepEqual(rtt.percentiles(), { count: 100, p50: 50, p95: 95, p99: 99, max: 100 });
 * assert.equal(new SampleSet().percentiles(), undefined);
 * ```
 */
export class SampleSet {
  readonly #capacity: number;
  readonly #values: Float64Array;
  #count = 0;
  #max = -Infinity;

  /**
   * @param capacity Most values kept (≥ 1); past it a uniform sample of all is kept.
   * @throws {RangeError} If `capacity` is not a positive integer.
   */
  constructor(capacity = 100_000) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(`capacity must be a positive integer, got ${capacity}`);
    }
    this.#capacity = capacity;
    this.#values = new Float64Array(capacity);
  }

  /** How many values were recorded (kept or not). */
  get count(): number {
    return this.#count;
  }

  /**
   * Records one value.
   *
   * @param value A finite number.
   */
  record(value: number): void {
    if (!Number.isFinite(value)) return;
    this.#count++;
    if (value > this.#max) this.#max = value;
    if (this.#count <= this.#capacity) {
      this.#values[this.#count - 1] = value;
      return;
    }
    // Algorithm R: the n-th value replaces a kept one with probability capacity / n.
    const slot = Math.floor(Math.random() * this.#count);
    if (slot < this.#capacity) this.#values[slot] = value;
  }

  /** The percentiles (nearest rank), or undefined if nothing was recorded. */
  percentiles(): Percentiles | undefined {
    if (this.#count === 0) return undefined;
    const kept = this.#values.slice(0, Math.min(this.#count, this.#capacity)).sort();
    const rank = (p: number) => kept[Math.max(0, Math.ceil((p / 100) * kept.length) - 1)];
    return { count: this.#count, p50: rank(50), p95: rank(95), p99: rank(99), max: this.#max };
  }
}
