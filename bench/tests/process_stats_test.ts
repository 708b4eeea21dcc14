import assert from "node:assert/strict";
import {
  machineUsageBetween,
  parseMachineStat,
  parseRssBytes,
  parseStatTicks,
  ProcessStatsError,
  sampleMachine,
  sampleProcess,
  usageBetween,
} from "../process_stats.ts";
import { parseSchedstat } from "../../shared/cpu_wait.ts";
import { spinEveryCore, spinThisThread } from "../../tests/_process.ts";

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
  const a = { pid: 1, atMs: 10, cpuMs: 0, rssBytes: 0, mainWaitMs: 0 };
  assert.throws(() => usageBetween(a, { ...a, pid: 2, atMs: 20 }), RangeError);
  assert.throws(() => usageBetween(a, a), RangeError);
});

Deno.test("a main thread that shares the cores with more busy processes than cores waits for them", async () => {
  // One busy child per core, and this thread busy too: someone must wait on the run queue,
  // and over a second this thread does (the scheduler shares the cores fairly).
  const children = await spinEveryCore();
  const before = sampleProcess(Deno.pid);
  const machineBefore = sampleMachine();
  const x = await spinThisThread(1000);
  const after = sampleProcess(Deno.pid);
  const machine = machineUsageBetween(machineBefore, sampleMachine());
  await children.exited;
  assert.ok(x > 0);
  assert.ok(
    after.mainWaitMs > before.mainWaitMs,
    `the main thread waited for a core: ${before.mainWaitMs} → ${after.mainWaitMs}`,
  );
  assert.ok(usageBetween(before, after).waitPercent > 0);
  assert.ok(machine.busyPercent > 50, `machine busy ${machine.busyPercent} %`);
});

Deno.test("schedstat and /proc/stat lines parse; malformed ones are refused", () => {
  assert.deepEqual(parseSchedstat("2000000 500000 7"), { runMs: 2, waitMs: 0.5 });
  assert.throws(() => parseSchedstat("1 2"), RangeError);
  assert.throws(() => parseSchedstat("a b c"), RangeError);
  assert.deepEqual(parseMachineStat("cpu  1 2 3 4 5 6 7 8 9 10\nintr 1\n"), {
    busyTicks: 1 + 2 + 3 + 6 + 7 + 8,
    totalTicks: 1 + 2 + 3 + 4 + 5 + 6 + 7 + 8,
    stealTicks: 8,
  });
  assert.throws(() => parseMachineStat("cpu0 1 2 3 4 5 6 7 8\n"), RangeError);
  assert.deepEqual(
    machineUsageBetween(
      { busyTicks: 5, totalTicks: 10, stealTicks: 0 },
      { busyTicks: 5, totalTicks: 10, stealTicks: 0 },
    ),
    { busyPercent: 0, stealPercent: 0 },
  );
});
