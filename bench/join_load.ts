/**
 * The join-storm and idle-memory scenarios against a Sustenet master and cluster. Join storm:
 * `joins` clients each do what a fresh client does (connect to the master, list clusters, get
 * a ticket, connect to the cluster, key exchange, SendPassword, Authenticate) with bounded
 * concurrency, then leave; joins per second and per-join time are reported. Idle: `clients`
 * clients join and stay idle while the cluster's RSS is read before and after.
 *
 * A failed join is counted, never fatal to the storm. It must never leave a connection open
 * when it returns.
 *
 * @module
 */

import type { LoadResult, LoadTarget } from "./load_job.ts";
import { LatencyHistogram } from "./latency_histogram.ts";
import { closeAll, connectClients, mapConcurrent } from "./load_clients.ts";
import { joinViaMaster, MasterTicketSource } from "./sustenet_join.ts";
import { type ProcessSample, ProcessStatsError, sampleProcess } from "./process_stats.ts";

type SustenetTarget = Extract<LoadTarget, { readonly kind: "sustenet" }>;

/** One full join from scratch; resolves with its duration in ms. */
async function oneJoin(target: SustenetTarget): Promise<number> {
  const started = performance.now();
  const source = await MasterTicketSource.open(target.masterHost, target.masterPort);
  try {
    await source.listClusters();
    const joined = await joinViaMaster(source, { sealed: target.sealed, readBufferBytes: 4096 });
    joined.conn.close();
    await joined.conn.closed;
  } finally {
    source.close();
    await source.closed;
  }
  return performance.now() - started;
}

/** A process's CPU so far, or `undefined` where `/proc` is not there (not Linux). */
function trySample(pid: number): ProcessSample | undefined {
  try {
    return sampleProcess(pid);
  } catch (error) {
    if (error instanceof ProcessStatsError) return undefined;
    throw error;
  }
}

/**
 * Runs a join storm.
 *
 * @param target The master to join through.
 * @param joins Number of joins.
 * @param concurrency Joins in flight at once.
 * @param serverPids Server processes whose CPU per join is reported (Linux `/proc`).
 */
export async function runJoinStorm(
  target: SustenetTarget,
  joins: number,
  concurrency: number,
  serverPids: readonly number[] = [],
): Promise<LoadResult> {
  const histogram = new LatencyHistogram();
  let failures = 0;
  let firstError: string | undefined;
  const pids = [Deno.pid, ...serverPids];
  const before = pids.map(trySample);
  const started = performance.now();
  await mapConcurrent(joins, concurrency, async () => {
    try {
      histogram.recordMicros((await oneJoin(target)) * 1000);
    } catch (error) {
      failures++;
      firstError ??= error instanceof Error ? error.message : String(error);
    }
  });
  const durationMs = performance.now() - started;
  const after = pids.map(trySample);
  const perJoin = pids.map((_, i) => {
    const [a, b] = [before[i], after[i]];
    return a === undefined || b === undefined ? -1 : Math.round((b.cpuMs - a.cpuMs) * 1000 / joins);
  });
  const result = {
    kind: "join",
    ok: true,
    joins,
    failures,
    durationMs: Math.round(durationMs),
    joinsPerSecond: Math.round((joins - failures) * 1000 / durationMs),
    p50Ms: histogram.percentileMicros(50) / 1000,
    p99Ms: histogram.percentileMicros(99) / 1000,
    ...(perJoin.every((us) => us >= 0)
      ? { cpuUsPerJoin: { generator: perJoin[0], servers: perJoin.slice(1) } }
      : {}),
  } as const;
  return firstError === undefined ? result : { ...result, firstError };
}

/**
 * Connects `clients` idle clients and reports the server's RSS per client.
 *
 * @param target The master to join through.
 * @param clients Number of clients.
 * @param settleMs Wait before the second RSS reading.
 * @param serverPid The cluster process.
 */
export async function runIdle(
  target: SustenetTarget,
  clients: number,
  settleMs: number,
  serverPid: number,
): Promise<LoadResult> {
  const before = sampleProcess(serverPid).rssBytes;
  const started = performance.now();
  // Small read buffers: idle clients receive nothing, and 10k of them must fit in memory.
  const conns = await connectClients(target, clients, { concurrency: 64, readBufferBytes: 1024 });
  const connectMs = Math.round(performance.now() - started);
  try {
    await new Promise((resolve) => setTimeout(resolve, settleMs));
    const after = sampleProcess(serverPid).rssBytes;
    return {
      kind: "idle",
      ok: true,
      clients,
      connectMs,
      rssBeforeBytes: before,
      rssAfterBytes: after,
      rssPerClientBytes: Math.round((after - before) / clients),
    };
  } finally {
    await closeAll(conns);
  }
}
