import assert from "node:assert/strict";
import fc from "fast-check";
import {
  bucketLowerMicros,
  LATENCY_BUCKETS,
  latencyBucket,
  LatencyHistogram,
} from "../latency_histogram.ts";
import * as nodeBuckets from "../colyseus/latency_buckets.mjs";

Deno.test("a bucket's lower bound is within 1.6 % below every value in it", () => {
  fc.assert(fc.property(fc.integer({ min: 0, max: 2 ** 31 - 1 }), (micros) => {
    const lower = bucketLowerMicros(latencyBucket(micros));
    assert.ok(lower <= micros);
    assert.ok(micros - lower <= Math.max(0, micros / 64), `${micros} → ${lower}`);
  }));
});

Deno.test("buckets are monotonic and within range, out-of-range values clamp", () => {
  let previous = -1;
  for (let v = 0; v < 1_000_000; v += 37) {
    const bucket = latencyBucket(v);
    assert.ok(bucket >= previous && bucket < LATENCY_BUCKETS);
    previous = bucket;
  }
  assert.equal(latencyBucket(-5), 0);
  assert.equal(latencyBucket(0.4), 0);
  assert.equal(latencyBucket(2 ** 40), LATENCY_BUCKETS - 1);
});

Deno.test("the Node generator's bucket function is the same as the TypeScript one", () => {
  assert.equal(nodeBuckets.LATENCY_BUCKETS, LATENCY_BUCKETS);
  fc.assert(fc.property(fc.double({ min: -10, max: 2 ** 32, noNaN: true }), (micros) => {
    assert.equal(nodeBuckets.latencyBucket(micros), latencyBucket(micros));
  }));
});

Deno.test("percentiles match the exact ones within the bucket resolution", () => {
  fc.assert(fc.property(
    fc.array(fc.integer({ min: 1, max: 5_000_000 }), { minLength: 1, maxLength: 500 }),
    (values) => {
      const h = new LatencyHistogram();
      for (const v of values) h.recordMicros(v);
      const sorted = [...values].sort((a, b) => a - b);
      for (const p of [50, 99, 100]) {
        const exact = sorted[Math.ceil((p / 100) * sorted.length) - 1];
        const got = h.percentileMicros(p);
        assert.ok(got <= exact && exact - got <= exact / 64 + 1, `p${p}: ${got} vs ${exact}`);
      }
    },
  ));
});

Deno.test("sparse histograms from another process merge into the same percentiles", () => {
  const a = new LatencyHistogram();
  const b = new LatencyHistogram();
  for (let i = 1; i <= 1000; i++) (i % 2 === 0 ? a : b).recordMicros(i * 10);
  const merged = new LatencyHistogram();
  merged.merge(a);
  merged.merge(b.toSparse(), b.maxMicros);
  assert.equal(merged.count, 1000);
  assert.equal(merged.maxMicros, 10_000);
  const all = new LatencyHistogram();
  for (let i = 1; i <= 1000; i++) all.recordMicros(i * 10);
  assert.equal(merged.percentileMicros(50), all.percentileMicros(50));
  assert.equal(merged.percentileMicros(99), all.percentileMicros(99));
});

Deno.test("bad sparse buckets and percentiles are refused, an empty histogram says 0", () => {
  const h = new LatencyHistogram();
  assert.equal(h.percentileMicros(99), 0);
  assert.throws(() => h.merge([[LATENCY_BUCKETS, 1]]), RangeError);
  assert.throws(() => h.merge([[-1, 1]]), RangeError);
  assert.throws(() => h.merge([[1.5, 1]]), RangeError);
  assert.throws(() => h.percentileMicros(0), RangeError);
  assert.throws(() => h.percentileMicros(101), RangeError);
  assert.throws(() => h.percentileMicros(Number.NaN), RangeError);
});

Deno.test("recordManyMicros counts several samples at once and reset forgets them", () => {
  const h = new LatencyHistogram();
  h.recordManyMicros(500, 3);
  h.recordManyMicros(900, 0);
  assert.equal(h.count, 3);
  assert.equal(h.maxMicros, 500);
  h.reset();
  assert.equal(h.count, 0);
  assert.deepEqual(h.toSparse(), []);
});
