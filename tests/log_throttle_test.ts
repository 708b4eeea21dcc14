import assert from "node:assert/strict";
import { LogThrottle } from "../shared/log_throttle.ts";

Deno.test("a flood becomes one line per interval that counts what was left out", () => {
  const throttle = new LogThrottle({ intervalMs: 100 });
  const lines: number[] = [];
  for (let t = 0; t < 1000; t++) {
    const left = throttle.admit("flood", t);
    if (left !== null) lines.push(left);
  }
  assert.equal(lines.length, 10);
  assert.deepEqual(lines.slice(0, 2), [0, 99]);
  const total = lines.reduce((a, b) => a + b, 0) + lines.length +
    throttle.drain(2000).reduce((a, [, n]) => a + n, 0);
  assert.equal(total, 1000);
});

Deno.test("keys are throttled apart, several lines per window when asked", () => {
  const throttle = new LogThrottle({ intervalMs: 1000, linesPerInterval: 2 });
  assert.equal(throttle.admit("a", 0), 0);
  assert.equal(throttle.admit("a", 1), 0);
  assert.equal(throttle.admit("a", 2), null);
  assert.equal(throttle.admit("b", 3), 0);
  assert.deepEqual(throttle.drain(500), []);
  assert.deepEqual(throttle.drain(1001), [["a", 1]]);
});

Deno.test("an attacker choosing keys cannot grow the throttle past maxKeys; nothing is lost silently", () => {
  const throttle = new LogThrottle({ intervalMs: 1000, maxKeys: 3 });
  for (let i = 0; i < 100; i++) {
    throttle.admit(`addr ${i}`, 0);
    throttle.admit(`addr ${i}`, 0);
  }
  // 97 keys were pushed out, each with one line left out.
  assert.equal(throttle.forgotten, 97);
  assert.equal(throttle.drain(1000).length, 3);
});

Deno.test("bad options are RangeErrors", () => {
  assert.throws(() => new LogThrottle({ intervalMs: 0 }), RangeError);
  assert.throws(() => new LogThrottle({ linesPerInterval: 0.5 }), RangeError);
  assert.throws(() => new LogThrottle({ maxKeys: 0 }), RangeError);
});
