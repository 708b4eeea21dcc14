// This module is browser compatible.
/**
 * One load shared by several generator processes: how its clients are split
 * ({@linkcode splitClients}) and how the processes' results become one
 * ({@linkcode mergeShardResults}). A single JavaScript thread near a full core adds its own
 * queueing to the latencies it measures, so the relay load is spread over processes that each
 * stay well below one.
 *
 * Pure functions: it never starts anything.
 *
 * @module
 */

import type { LoadResult, ProcessFigures, WindowResult } from "./load_job.ts";

/**
 * Splits `total` clients over `parts` processes, as evenly as possible (larger shares first).
 *
 * @param total Clients in all.
 * @param parts Processes, ≥ 1.
 * @returns Each process's share, none empty (fewer parts if there are fewer clients).
 * @throws {RangeError} If `parts` is not a positive integer.
 *
 * @example
 * ```ts
 * import { splitClients } from "./generator_shards.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(splitClients(7, 2), [4, 3]);
 * assert.deepEqual(splitClients(1, 3), [1]);
 * ```
 */
export function splitClients(total: number, parts: number): number[] {
  if (!Number.isInteger(parts) || parts < 1) {
    throw new RangeError(`parts must be a positive integer, got ${parts}`);
  }
  const n = Math.min(parts, Math.max(1, total));
  return Array.from({ length: n }, (_, i) => Math.floor(total / n) + (i < total % n ? 1 : 0));
}

/** Sums the processes' CPU and RSS; the first pid stands for them. */
function mergeGenerators(figures: readonly ProcessFigures[]): ProcessFigures {
  return {
    pid: figures[0].pid,
    cpuPercent: Math.round(figures.reduce((sum, f) => sum + f.cpuPercent, 0) * 10) / 10,
    rssBytes: figures.reduce((sum, f) => sum + f.rssBytes, 0),
  };
}

/** One window measured by every process at once, as one. */
function mergeWindow(windows: readonly WindowResult[]): WindowResult {
  const buckets = new Map<number, number>();
  for (const w of windows) {
    for (const [bucket, count] of w.latencyBuckets) {
      buckets.set(bucket, (buckets.get(bucket) ?? 0) + count);
    }
  }
  const sum = (pick: (w: WindowResult) => number) => windows.reduce((s, w) => s + pick(w), 0);
  return {
    durationMs: Math.round(sum((w) => w.durationMs) / windows.length * 10) / 10,
    sent: sum((w) => w.sent),
    skipped: sum((w) => w.skipped),
    received: sum((w) => w.received),
    receivedPerSecond: Math.round(sum((w) => w.receivedPerSecond)),
    // Recomputed from the merged buckets by the caller (run_generator.ts `withPercentiles`).
    p50Ms: Math.max(...windows.map((w) => w.p50Ms)),
    p99Ms: Math.max(...windows.map((w) => w.p99Ms)),
    maxMs: Math.max(...windows.map((w) => w.maxMs)),
    latencyBuckets: [...buckets].sort((a, b) => a[0] - b[0]),
    openClients: sum((w) => w.openClients),
    generator: mergeGenerators(windows.map((w) => w.generator)),
    // Every process measured the same servers over the same span: the first one's figures.
    servers: windows[0].servers,
    ...mergeLag(windows),
  };
}

/** The whole generator's lag: its worst process; a fault if any process stalled. */
function mergeLag(windows: readonly WindowResult[]): Partial<WindowResult> {
  const lags = windows.flatMap((w) => w.generatorLag === undefined ? [] : [w.generatorLag]);
  const serverLag = windows[0].serverLag;
  return {
    ...(lags.length === 0 ? {} : {
      generatorLag: {
        p99Ms: Math.max(...lags.map((l) => l.p99Ms)),
        maxMs: Math.max(...lags.map((l) => l.maxMs)),
      },
      generatorFault: windows.some((w) => w.generatorFault === true),
    }),
    ...(serverLag === undefined ? {} : { serverLag }),
  };
}

/**
 * Merges the results of processes that ran one relay (or echo) load together: counts and
 * rates add up, latency buckets merge, generator CPU and RSS add up (the figure reported is
 * the whole generator's). Any failed process fails the whole.
 *
 * @param results One result per process, in shard order.
 * @returns The load's result.
 * @throws {RangeError} If `results` is empty.
 *
 * @example
 * ```ts
 * import { mergeShardResults } from "./generator_shards.ts";
 * import assert from "node:assert/strict";
 *
 * const window = (received: number, bucket: number, cpu: number) => ({
 *   durationMs: 1000, sent: 10, skipped: 0, received, receivedPerSecond: received,
 *   p50Ms: 0, p99Ms: 0, maxMs: bucket / 1000, latencyBuckets: [[bucket, received]] as [number, number][],
 *   openClients: 2, generator: { pid: cpu, cpuPercent: cpu, rssBytes: 1 }, servers: [],
 * });
 * const shard = (received: number, bucket: number, cpu: number) => ({
 *   kind: "relay" as const, ok: true as const, clients: 2, connectMs: cpu,
 *   windows: [window(received, bucket, cpu)],
 * });
 * const merged = mergeShardResults([shard(30, 100, 40), shard(50, 100, 45)]);
 * assert.ok(merged.ok && merged.kind === "relay");
 * assert.equal(merged.clients, 4);
 * assert.equal(merged.windows[0].received, 80);
 * assert.deepEqual(merged.windows[0].latencyBuckets, [[100, 80]]);
 * assert.equal(merged.windows[0].generator.cpuPercent, 85);
 * ```
 */
export function mergeShardResults(results: readonly LoadResult[]): LoadResult {
  if (results.length === 0) throw new RangeError("no results to merge");
  const failed = results.find((r) => !r.ok);
  if (failed !== undefined) return failed;
  if (results.length === 1) return results[0];
  const first = results[0];
  if (!first.ok || (first.kind !== "relay" && first.kind !== "echo")) return first;
  const loads = results.filter((r) => r.ok && r.kind === first.kind) as (typeof first)[];
  if (loads.length !== results.length) {
    return { kind: first.kind, ok: false, error: "generator processes ran different loads" };
  }
  const windows = Math.min(...loads.map((r) => r.windows.length));
  return {
    kind: first.kind,
    ok: true,
    clients: loads.reduce((sum, r) => sum + r.clients, 0),
    connectMs: Math.max(...loads.map((r) => r.connectMs)),
    windows: Array.from({ length: windows }, (_, i) => mergeWindow(loads.map((r) => r.windows[i]))),
  };
}
