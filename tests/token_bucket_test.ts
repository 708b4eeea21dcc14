import assert from "node:assert/strict";
import fc from "fast-check";
import { TokenBucket } from "../shared/token_bucket.ts";

Deno.test("a bucket lets a burst through, then only the refill rate", () => {
  const bucket = new TokenBucket({ ratePerS: 5, burst: 10 });
  let passed = 0;
  for (let i = 0; i < 100; i++) if (bucket.take(1, 0)) passed++;
  assert.equal(passed, 10);
  // Over the next 2 s, one token every 200 ms.
  for (let t = 1; t <= 2000; t++) if (bucket.take(1, t)) passed++;
  assert.equal(passed, 20);
});

Deno.test("a bucket never refills backwards when time goes back", () => {
  const bucket = new TokenBucket({ ratePerS: 1000, burst: 10, initial: 0 });
  assert.equal(bucket.tokens(100), 0);
  assert.equal(bucket.tokens(50), 0);
  assert.equal(bucket.tokens(105), 5);
});

Deno.test("a cost above the burst is never paid and its wait is Infinity", () => {
  const bucket = new TokenBucket({ ratePerS: 1, burst: 4 });
  assert.equal(bucket.take(5, 0), false);
  assert.equal(bucket.tokens(0), 4);
  assert.equal(bucket.waitMs(5, 0), Infinity);
});

Deno.test("bad options are RangeErrors naming the option", () => {
  assert.throws(() => new TokenBucket({ ratePerS: 0, burst: 1 }), /ratePerS/);
  assert.throws(() => new TokenBucket({ ratePerS: 1, burst: Infinity }), /burst/);
  assert.throws(() => new TokenBucket({ ratePerS: 1, burst: 2, initial: 3 }), /initial/);
});

Deno.test("whatever the calls, tokens stay within 0..burst and spending never exceeds rate × time + burst", () => {
  fc.assert(fc.property(
    fc.double({ min: 0.1, max: 1e6, noNaN: true }),
    fc.double({ min: 0.1, max: 1e6, noNaN: true }),
    fc.array(fc.tuple(fc.nat(1000), fc.double({ min: 0, max: 100, noNaN: true })), {
      maxLength: 200,
    }),
    (ratePerS, burst, steps) => {
      const bucket = new TokenBucket({ ratePerS, burst });
      let now = 0;
      let spent = 0;
      for (const [dt, cost] of steps) {
        now += dt;
        if (bucket.take(cost, now)) spent += cost;
        const tokens = bucket.tokens(now);
        assert.ok(tokens >= 0 && tokens <= burst);
      }
      assert.ok(spent <= burst + (ratePerS * now) / 1000 + 1e-6);
    },
  ));
});
