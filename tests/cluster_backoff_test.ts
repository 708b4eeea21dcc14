import assert from "node:assert/strict";
import { ReconnectBackoff } from "../cluster/backoff.ts";

Deno.test("the reconnect delay doubles from min up to max and stays there", () => {
  const backoff = new ReconnectBackoff({ minMs: 500, maxMs: 10_000, jitter: 0 });
  const delays = Array.from({ length: 8 }, () => backoff.next());
  assert.deepEqual(delays, [500, 1000, 2000, 4000, 8000, 10_000, 10_000, 10_000]);
  assert.equal(backoff.attempts, 8);
});

Deno.test("a reset starts again from the minimum", () => {
  const backoff = new ReconnectBackoff({ minMs: 100, maxMs: 1000, jitter: 0 });
  backoff.next();
  backoff.next();
  backoff.next();
  backoff.reset();
  assert.equal(backoff.attempts, 0);
  assert.equal(backoff.next(), 100);
});

Deno.test("jitter takes off at most its fraction of each delay", () => {
  let r = 0;
  const values = [0, 0.5, 0.999999, 1];
  const backoff = new ReconnectBackoff({
    minMs: 1000,
    maxMs: 1000,
    jitter: 0.25,
    random: () => values[r++ % values.length],
  });
  assert.deepEqual([backoff.next(), backoff.next(), backoff.next(), backoff.next()], [
    1000,
    875,
    750,
    750,
  ]);
});

Deno.test("jittered delays stay within bounds however many attempts fail", () => {
  const backoff = new ReconnectBackoff({ minMs: 50, maxMs: 800 });
  for (let i = 0; i < 5000; i++) {
    const delay = backoff.next();
    assert.ok(Number.isFinite(delay));
    assert.ok(delay >= 50 * 0.75 && delay <= 800, `delay ${delay} out of bounds`);
  }
});

Deno.test("a misbehaving random source cannot push a delay out of bounds", () => {
  const high = new ReconnectBackoff({ minMs: 100, maxMs: 100, random: () => 7 });
  const low = new ReconnectBackoff({ minMs: 100, maxMs: 100, random: () => -3 });
  assert.equal(high.next(), 75);
  assert.equal(low.next(), 100);
});

Deno.test("different random draws spread clusters apart", () => {
  const delays = new Set<number>();
  for (let i = 0; i < 20; i++) {
    delays.add(new ReconnectBackoff({ minMs: 1000, maxMs: 1000 }).next());
  }
  assert.ok(delays.size > 1);
});

Deno.test("bad backoff options are refused with a RangeError naming the option", () => {
  assert.throws(() => new ReconnectBackoff({ minMs: 0, maxMs: 10 }), /minMs/);
  assert.throws(() => new ReconnectBackoff({ minMs: Number.NaN, maxMs: 10 }), /minMs/);
  assert.throws(() => new ReconnectBackoff({ minMs: 10, maxMs: 5 }), /maxMs/);
  assert.throws(() => new ReconnectBackoff({ minMs: 10, maxMs: Infinity }), /maxMs/);
  assert.throws(() => new ReconnectBackoff({ minMs: 10, maxMs: 20, jitter: 1.5 }), /jitter/);
  assert.throws(() => new ReconnectBackoff({ minMs: 10, maxMs: 20, jitter: -0.1 }), /jitter/);
});
