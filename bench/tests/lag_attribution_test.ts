import assert from "node:assert/strict";
import { WindowMeter } from "../window_meter.ts";
import { summariseRelay } from "../relay_campaign.ts";
import type { WindowResult } from "../load_job.ts";

/** Blocks this process's event loop for `ms`, as a stalled generator would. */
function blockLoop(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // busy: no timer can fire
  }
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 15));

Deno.test("a window in which the generator's own loop stalled over 20 ms is a generator fault", async () => {
  const meter = new WindowMeter([]);
  try {
    meter.start();
    await tick();
    blockLoop(40);
    await tick();
    const stalled = meter.finish(0);
    assert.equal(stalled.generatorFault, true);
    assert.ok(stalled.generatorLag !== undefined && stalled.generatorLag.maxMs >= 30);
  } finally {
    meter.stop();
  }
});

function window(p99Ms: number, fault: boolean, serverMax: number | null = 5): WindowResult {
  return {
    durationMs: 10_000,
    sent: 0,
    skipped: 0,
    received: 0,
    receivedPerSecond: 10 * 9 * 20,
    p50Ms: 1,
    p99Ms,
    maxMs: p99Ms,
    latencyBuckets: [],
    openClients: 10,
    generator: { pid: 1, cpuPercent: 10, rssBytes: 1 },
    servers: [{ pid: 2, cpuPercent: 50, rssBytes: 1 }],
    generatorLag: { p99Ms: 1, maxMs: fault ? 60 : 4 },
    generatorFault: fault,
    serverLag: { samples: 2000, stalls: serverMax === null ? 1 : 0, maxBoundMs: serverMax },
  };
}

Deno.test("the verdict leaves out windows the generator stalled in, and says so", () => {
  const result = {
    kind: "relay" as const,
    ok: true as const,
    clients: 10,
    connectMs: 5,
    windows: [window(80, true), window(10, false), window(12, false), window(14, false)],
  };
  const run = summariseRelay("confirm", 10, 20, result);
  assert.equal(run.pass, true, run.reasons.join("; "));
  assert.equal(run.p99Ms, 12);
  assert.equal(run.generatorFaults, 1);
  assert.equal(run.generatorLagMaxMs, 4);
  assert.equal(run.serverLagMaxMs, 5);
});

Deno.test("a run whose generator stalled in every window fails as the generator's, not the server's", () => {
  const result = {
    kind: "relay" as const,
    ok: true as const,
    clients: 10,
    connectMs: 5,
    windows: [window(80, true), window(90, true)],
  };
  const run = summariseRelay("probe", 10, 20, result);
  assert.equal(run.pass, false);
  assert.ok(
    run.reasons.some((r) => /generator stalled in every window/.test(r)),
    run.reasons.join(),
  );
});

Deno.test("a server stall past the histogram's largest bound reads as null, never as a number", () => {
  const result = {
    kind: "relay" as const,
    ok: true as const,
    clients: 10,
    connectMs: 5,
    windows: [window(10, false, 20), window(10, false, null)],
  };
  const run = summariseRelay("confirm", 10, 20, result);
  assert.equal(run.serverLagMaxMs, null);
  assert.equal(run.serverStalls, 1);
});
