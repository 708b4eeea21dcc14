import assert from "node:assert/strict";
import {
  parseRssBytes,
  parseStatTicks,
  ProcessStatsError,
  sampleProcess,
  usageBetween,
} from "../process_stats.ts";

Deno.test("a busy process shows CPU time between two samples", () => {
  const before = sampleProcess(Deno.pid);
  const until = performance.now() + 60;
  let x = 0;
  while (performance.now() < until) x += Math.sqrt(x + 1);
  const after = sampleProcess(Deno.pid);
  assert.ok(x > 0);
  const usage = usageBetween(before, after);
  assert.ok(usage.cpuPercent >= 0);
  assert.ok(after.cpuMs >= before.cpuMs);
  assert.ok(usage.rssBytes > 1024 * 1024);
});

Deno.test("a process that does not exist is a ProcessStatsError", () => {
  assert.throws(() => sampleProcess(2 ** 22 + 7), (error) => {
    assert.ok(error instanceof ProcessStatsError);
    assert.equal(error.code, "process_stats_unavailable");
    return true;
  });
});

Deno.test("a command name with spaces and parentheses does not shift the fields", () => {
  const line = "7 (a (b) c) R 1 7 7 0 -1 0 0 0 0 0 11 22 0 0 20 0 1 0 5 6 7";
  assert.equal(parseStatTicks(line), 33);
});

Deno.test("malformed stat lines are refused; a status without VmRSS is 0", () => {
  assert.throws(() => parseStatTicks("garbage"), RangeError);
  assert.throws(() => parseStatTicks("1 (x) S 1 2"), RangeError);
  assert.equal(parseRssBytes("Name: zombie\n"), 0);
});

Deno.test("samples of two processes or out of order are refused", () => {
  const a = { pid: 1, atMs: 10, cpuMs: 0, rssBytes: 0 };
  assert.throws(() => usageBetween(a, { ...a, pid: 2, atMs: 20 }), RangeError);
  assert.throws(() => usageBetween(a, a), RangeError);
});
