/**
 * GC pause metrics are opt-in (`SUSTENET_GC_METRICS=1`): V8's GCProfiler is costly under load
 * (docs/PERFORMANCE.md), so by default the families are declared but hold no samples.
 */
import assert from "node:assert/strict";
import { renderPrometheus } from "../shared/metrics.ts";
import { gcMetricsRequested, RuntimeMetrics } from "../shared/runtime_metrics.ts";
import { spinEveryCore, spinThisThread } from "./_process.ts";

// Makes garbage until `done` says so, at most `rounds` times (each round ~4 MiB).
async function churn(done: () => boolean, rounds = 500): Promise<void> {
  let keep: Uint8Array[] = [];
  for (let i = 0; i < rounds && !done(); i++) {
    for (let j = 0; j < 64; j++) keep.push(new Uint8Array(64 * 1024));
    keep = [];
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
}

function gcCount(metrics: RuntimeMetrics): number {
  const text = renderPrometheus(metrics.families());
  let total = 0;
  for (const match of text.matchAll(/^sustenet_gc_pauses_total\{type="[^"]+"\} (\d+)$/gm)) {
    total += Number(match[1]);
  }
  return total;
}

Deno.test("with gcMetrics, collections are counted and timed by type", async () => {
  const metrics = new RuntimeMetrics({ role: "test", gcMetrics: true });
  try {
    await churn(() => gcCount(metrics) > 0);
    assert.ok(gcCount(metrics) > 0, "no collection recorded after 500 rounds of garbage");
    assert.ok(metrics.gcPauseSeconds() > 0);
  } finally {
    metrics.stop();
  }
});

Deno.test("by default no GC profiler runs: the families are declared and empty", async () => {
  const metrics = new RuntimeMetrics({ role: "test" });
  try {
    await churn(() => false, 50);
    const text = renderPrometheus(metrics.families());
    assert.match(text, /^# TYPE sustenet_gc_pause_seconds_total counter$/m);
    assert.equal(gcCount(metrics), 0);
  } finally {
    metrics.stop();
  }
});

Deno.test("SUSTENET_GC_METRICS=1 is what turns GC metrics on in the servers", () => {
  const before = Deno.env.get("SUSTENET_GC_METRICS");
  try {
    Deno.env.delete("SUSTENET_GC_METRICS");
    assert.equal(gcMetricsRequested(), false);
    Deno.env.set("SUSTENET_GC_METRICS", "1");
    assert.equal(gcMetricsRequested(), true);
  } finally {
    if (before === undefined) Deno.env.delete("SUSTENET_GC_METRICS");
    else Deno.env.set("SUSTENET_GC_METRICS", before);
  }
});

Deno.test("the event loop's wait for a core is exported and grows while more threads than cores spin", async () => {
  const metrics = new RuntimeMetrics({ role: "test" });
  const waitOf = () => {
    const text = renderPrometheus(metrics.families());
    const match = /^sustenet_event_loop_cpu_wait_seconds_total (\S+)$/m.exec(text);
    return match === null ? undefined : Number(match[1]);
  };
  // One busy child per core: this loop then has to wait for a core too.
  const children = await spinEveryCore();
  try {
    const before = waitOf();
    assert.ok(before !== undefined && before >= 0, "exported on Linux");
    const x = await spinThisThread(1000);
    assert.ok(x > 0);
    assert.ok(waitOf()! > before, "the wait grew");
  } finally {
    metrics.stop();
    await children.exited;
  }
});
