// This module is browser compatible.
/**
 * The latency bucket scheme of `bench/latency_histogram.ts`, in plain JavaScript for the Node
 * load generator (which cannot import TypeScript): microseconds exact below 128, then 64
 * sub-buckets per power of two. Its counts are merged with the Deno generator's, so it must
 * never differ from `latencyBucket` there (`bench/tests/latency_histogram_test.ts` checks both
 * give the same bucket for the same value).
 *
 * @module
 */

/** Number of buckets. */
export const LATENCY_BUCKETS = 128 + 24 * 64;

/**
 * Bucket of a latency in microseconds.
 *
 * @param {number} micros
 * @returns {number}
 */
export function latencyBucket(micros) {
  const v = micros >= 1 ? (micros < 2 ** 31 ? micros | 0 : 2 ** 31 - 1) : 0;
  if (v < 128) return v;
  const exponent = 31 - Math.clz32(v);
  return 128 + (exponent - 7) * 64 + ((v >>> (exponent - 6)) & 63);
}
