import assert from "node:assert/strict";
import { mergeShardResults, splitClients } from "../generator_shards.ts";
import type { LoadResult, WindowResult } from "../load_job.ts";

function window(received: number, buckets: [number, number][], cpu: number): WindowResult {
  return {
    durationMs: 1000,
    sent: 5,
    skipped: 1,
    received,
    receivedPerSecond: received,
    p50Ms: 0,
    p99Ms: 0,
    maxMs: 0.5,
    latencyBuckets: buckets,
    openClients: 3,
    generator: { pid: cpu, cpuPercent: cpu, rssBytes: 100 },
    servers: [{ pid: 9, cpuPercent: 50, rssBytes: 7 }],
  };
}

Deno.test("clients are split evenly, larger shares first, and parts must be positive", () => {
  assert.deepEqual(splitClients(700, 2), [350, 350]);
  assert.deepEqual(splitClients(9, 4), [3, 2, 2, 2]);
  assert.deepEqual(splitClients(0, 2), [0]);
  assert.throws(() => splitClients(10, 0), RangeError);
  assert.throws(() => splitClients(10, 1.5), RangeError);
});

Deno.test("windows merge index by index: sums, merged buckets, summed generator CPU", () => {
  const a: LoadResult = {
    kind: "relay",
    ok: true,
    clients: 3,
    connectMs: 10,
    windows: [window(10, [[5, 4], [9, 6]], 40), window(20, [[5, 20]], 41)],
  };
  const b: LoadResult = {
    kind: "relay",
    ok: true,
    clients: 3,
    connectMs: 30,
    windows: [window(6, [[9, 6]], 35), window(2, [[7, 2]], 36)],
  };
  const merged = mergeShardResults([a, b]);
  assert.ok(merged.ok && merged.kind === "relay");
  assert.equal(merged.clients, 6);
  assert.equal(merged.connectMs, 30);
  assert.deepEqual(merged.windows.map((w) => w.received), [16, 22]);
  assert.deepEqual(merged.windows[0].latencyBuckets, [[5, 4], [9, 12]]);
  assert.deepEqual(merged.windows[1].latencyBuckets, [[5, 20], [7, 2]]);
  assert.deepEqual(merged.windows.map((w) => w.generator.cpuPercent), [75, 77]);
  assert.deepEqual(merged.windows.map((w) => w.openClients), [6, 6]);
  assert.deepEqual(merged.windows.map((w) => w.skipped), [2, 2]);
  assert.deepEqual(merged.windows[0].servers, a.windows[0].servers);
});

Deno.test("one failed process fails the whole, and an empty list is an error", () => {
  const ok: LoadResult = { kind: "relay", ok: true, clients: 2, connectMs: 1, windows: [] };
  const failed: LoadResult = { kind: "relay", ok: false, error: "connection refused" };
  assert.deepEqual(mergeShardResults([ok, failed]), failed);
  assert.deepEqual(mergeShardResults([ok]), ok);
  assert.throws(() => mergeShardResults([]), RangeError);
  const echo: LoadResult = { kind: "echo", ok: true, clients: 2, connectMs: 1, windows: [] };
  const mixed = mergeShardResults([ok, echo]);
  assert.equal(mixed.ok, false);
});
