// This module is browser compatible.
/**
 * A fixed-size log-linear latency histogram for the load generators: microsecond values land in
 * buckets of about 1.6 % relative width (exact below 128 µs), so p50/p99 of millions of samples
 * cost one array increment each and histograms from several processes merge by addition.
 *
 * It must never allocate per sample, and its bucket scheme must stay identical to
 * `bench/colyseus/latency_buckets.mjs` (the Node load generator's copy), whose counts are merged
 * here.
 *
 * @module
 */

/** Values below this many microseconds get a bucket each. */
const LINEAR_LIMIT = 128;
/** Sub-buckets per power of two above the linear range (64 → ~1.6 % resolution). */
const SUB_BUCKET_BITS = 6;
const SUB_BUCKETS = 1 << SUB_BUCKET_BITS;
/** log2(LINEAR_LIMIT). */
const LINEAR_BITS = 7;
/** Highest exponent kept: values up to 2^31 µs (about 36 minutes). */
const MAX_EXPONENT = 30;

/**
 * Number of buckets of a {@linkcode LatencyHistogram}.
 *
 * @example
 * ```ts
 * import { LATENCY_BUCKETS } from "./latency_histogram.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(LATENCY_BUCKETS, 128 + 24 * 64);
 * ```
 */
export const LATENCY_BUCKETS = LINEAR_LIMIT + (MAX_EXPONENT - LINEAR_BITS + 1) * SUB_BUCKETS;

/**
 * Returns the bucket of a latency in whole microseconds (negative values count as 0, values
 * beyond the range as the last bucket).
 *
 * @param micros The latency in microseconds.
 *
 * @example
 * ```ts
 * import { latencyBucket } from "./latency_histogram.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(latencyBucket(5), 5);
 * assert.equal(latencyBucket(128), 128);
 * assert.equal(latencyBucket(256), 128 + 64);
 * ```
 */
export function latencyBucket(micros: number): number {
  // `| 0` truncates like Math.floor for these positive int32 values, at a fraction of the cost
  // (the generator buckets every received frame); NaN lands in bucket 0.
  const v = micros >= 1 ? (micros < 2 ** 31 ? micros | 0 : 2 ** 31 - 1) : 0;
  if (v < LINEAR_LIMIT) return v;
  const exponent = 31 - Math.clz32(v);
  const sub = (v >>> (exponent - SUB_BUCKET_BITS)) & (SUB_BUCKETS - 1);
  return LINEAR_LIMIT + (exponent - LINEAR_BITS) * SUB_BUCKETS + sub;
}

/**
 * Returns the lowest microsecond value of a bucket (the inverse of {@linkcode latencyBucket}).
 *
 * @param bucket A bucket index, 0 ≤ bucket < {@linkcode LATENCY_BUCKETS}.
 *
 * @example
 * ```ts
 * import { bucketLowerMicros, latencyBucket } from "./latency_histogram.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(bucketLowerMicros(latencyBucket(1003)), 1000);
 * ```
 */
export function bucketLowerMicros(bucket: number): number {
  if (bucket < LINEAR_LIMIT) return bucket;
  const index = bucket - LINEAR_LIMIT;
  const exponent = Math.floor(index / SUB_BUCKETS) + LINEAR_BITS;
  const sub = index % SUB_BUCKETS;
  return (SUB_BUCKETS + sub) * 2 ** (exponent - SUB_BUCKET_BITS);
}

/**
 * Counts latency samples into log-linear buckets and answers percentiles.
 *
 * @example
 * ```ts
 * import { LatencyHistogram } from "./latency_histogram.ts";
 * import assert from "node:assert/strict";
 *
 * const h = new LatencyHistogram();
 * for (let i = 1; i <= 100; i++) h.recordMicros(i);
 * assert.equal(h.count, 100);
 * assert.equal(h.percentileMicros(50), 50);
 * assert.equal(h.percentileMicros(99), 99);
 * assert.equal(h.maxMicros, 100);
 * ```
 */
export class LatencyHistogram {
  /** Samples per bucket. */
  readonly counts: Uint32Array = new Uint32Array(LATENCY_BUCKETS);
  #count = 0;
  #max = 0;

  /** Number of samples recorded. */
  get count(): number {
    return this.#count;
  }

  /** Largest sample recorded, in microseconds (0 when empty). */
  get maxMicros(): number {
    return this.#max;
  }

  /**
   * Records one sample.
   *
   * @param micros The latency in microseconds.
   */
  recordMicros(micros: number): void {
    this.counts[latencyBucket(micros)]++;
    this.#count++;
    if (micros > this.#max) this.#max = micros;
  }

  /**
   * Records `times` samples of the same value (frames that arrived in one read).
   *
   * @param micros The latency in microseconds.
   * @param times How many samples.
   */
  recordManyMicros(micros: number, times: number): void {
    if (times <= 0) return;
    this.counts[latencyBucket(micros)] += times;
    this.#count += times;
    if (micros > this.#max) this.#max = micros;
  }

  /**
   * Adds another histogram's samples (or a sparse `[bucket, count]` list from another process).
   *
   * @param other The histogram or its sparse form.
   * @param otherMax The other side's maximum when `other` is sparse.
   * @throws {RangeError} If a sparse bucket index is out of range.
   */
  merge(
    other: LatencyHistogram | readonly (readonly [number, number])[],
    otherMax = 0,
  ): void {
    if (other instanceof LatencyHistogram) {
      for (let i = 0; i < LATENCY_BUCKETS; i++) this.counts[i] += other.counts[i];
      this.#count += other.count;
      this.#max = Math.max(this.#max, other.maxMicros);
      return;
    }
    for (const [bucket, n] of other) {
      if (!Number.isInteger(bucket) || bucket < 0 || bucket >= LATENCY_BUCKETS) {
        throw new RangeError(`latency bucket must be 0..${LATENCY_BUCKETS - 1}, got ${bucket}`);
      }
      this.counts[bucket] += n;
      this.#count += n;
    }
    this.#max = Math.max(this.#max, otherMax);
  }

  /** Forgets every sample. */
  reset(): void {
    this.counts.fill(0);
    this.#count = 0;
    this.#max = 0;
  }

  /**
   * Returns the non-empty buckets as `[bucket, count]` pairs, the form sent between processes.
   *
   * @example
   * ```ts
   * import { LatencyHistogram } from "./latency_histogram.ts";
   * import assert from "node:assert/strict";
   *
   * const h = new LatencyHistogram();
   * h.recordManyMicros(3, 2);
   * assert.deepEqual(h.toSparse(), [[3, 2]]);
   * ```
   */
  toSparse(): [number, number][] {
    const out: [number, number][] = [];
    for (let i = 0; i < LATENCY_BUCKETS; i++) {
      if (this.counts[i] > 0) out.push([i, this.counts[i]]);
    }
    return out;
  }

  /**
   * Returns the value at percentile `p` (0 < p ≤ 100), as the lower bound of its bucket capped by
   * the maximum, in microseconds; 0 when empty.
   *
   * @param p The percentile.
   * @throws {RangeError} If `p` is not in (0, 100].
   */
  percentileMicros(p: number): number {
    if (!(p > 0 && p <= 100)) throw new RangeError(`percentile must be in (0, 100], got ${p}`);
    if (this.#count === 0) return 0;
    const rank = Math.ceil((p / 100) * this.#count);
    let seen = 0;
    for (let i = 0; i < LATENCY_BUCKETS; i++) {
      seen += this.counts[i];
      if (seen >= rank) return Math.min(bucketLowerMicros(i), this.#max);
    }
    return this.#max;
  }
}
