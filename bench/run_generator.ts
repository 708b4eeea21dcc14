/**
 * Runs one load job in its own generator process and returns its result: the Deno generator
 * (`bench/load_generator.ts`) for raw and Sustenet targets, the Node one
 * (`bench/colyseus/load_generator.mjs`, Colyseus's own client library) for Colyseus. Window
 * percentiles are recomputed here from the latency buckets, so both generators' figures come
 * from the same code.
 *
 * It never lets a generator outlive its job's deadline plus a margin: an overrunning
 * generator is killed and reported as a failed result.
 *
 * @module
 */

import { BenchChild, ChildProcessError } from "./child_process.ts";
import { LatencyHistogram } from "./latency_histogram.ts";
import { mergeShardResults, splitClients } from "./generator_shards.ts";
import {
  CONNECTED_LINE,
  type LoadJob,
  type LoadResult,
  type LoadScenario,
  type LoadTarget,
  START_LINE,
  type WindowResult,
} from "./load_job.ts";
import { COLYSEUS_DIR, REPO_ROOT } from "./bench_servers.ts";

/** A Colyseus server, driven by the Node generator. */
export interface ColyseusTarget {
  readonly kind: "colyseus";
  readonly host: string;
  readonly port: number;
}

/** The relay scenario, the only one every generator runs. */
export type RelayScenario = Extract<LoadScenario, { readonly kind: "relay" }>;

/** A job for the Node generator: the Deno job's shape with a Colyseus target. */
export interface ColyseusJob extends Omit<LoadJob, "target" | "scenario"> {
  /** The Colyseus server. */
  readonly target: ColyseusTarget;
  /** Only the relay scenario exists for Colyseus. */
  readonly scenario: RelayScenario;
}

/**
 * Makes a relay job for any target (Colyseus targets get a {@linkcode ColyseusJob}).
 *
 * @param target Where the clients connect.
 * @param scenario The relay run.
 * @param serverPids Server processes to measure.
 * @param deadlineMs Deadline of the whole job.
 * @param serverMetricsUrl The server's `/metrics`, for its lag per window (Deno generator).
 *
 * @example
 * ```ts
 * import { relayJob } from "./run_generator.ts";
 * import assert from "node:assert/strict";
 *
 * const scenario = { kind: "relay", clients: 2, hz: 20, warmupMs: 0, windowMs: 500, windows: 1 } as const;
 * const job = relayJob({ kind: "colyseus", host: "127.0.0.1", port: 2567 }, scenario, [1], 9000);
 * assert.equal(job.target.kind, "colyseus");
 * ```
 */
export function relayJob(
  target: LoadTarget | ColyseusTarget,
  scenario: RelayScenario,
  serverPids: readonly number[],
  deadlineMs: number,
  serverMetricsUrl?: string,
): LoadJob | ColyseusJob {
  return target.kind === "colyseus" ? { target, scenario, serverPids, deadlineMs } : {
    target,
    scenario,
    serverPids,
    deadlineMs,
    ...(serverMetricsUrl === undefined ? {} : { serverMetricsUrl }),
  };
}

/** Time a generator gets beyond its job's own deadline before it is killed, ms. */
const KILL_MARGIN_MS = 15_000;

/**
 * Recomputes a window's p50/p99 from its latency buckets.
 *
 * @param window A window as a generator printed it.
 *
 * @example
 * ```ts
 * import { withPercentiles } from "./run_generator.ts";
 * import assert from "node:assert/strict";
 *
 * const window = withPercentiles({
 *   durationMs: 1000, sent: 2, skipped: 0, received: 2, receivedPerSecond: 2,
 *   p50Ms: -1, p99Ms: -1, maxMs: 0.09, latencyBuckets: [[40, 1], [90, 1]], openClients: 2,
 *   generator: { pid: 1, cpuPercent: 1, rssBytes: 1 }, servers: [],
 * });
 * assert.equal(window.p50Ms, 0.04);
 * assert.equal(window.p99Ms, 0.09);
 * ```
 */
export function withPercentiles(window: WindowResult): WindowResult {
  const histogram = new LatencyHistogram();
  histogram.merge(window.latencyBuckets, window.maxMs * 1000);
  return {
    ...window,
    p50Ms: histogram.percentileMicros(50) / 1000,
    p99Ms: histogram.percentileMicros(99) / 1000,
  };
}

/**
 * Runs a job in a fresh generator process.
 *
 * @param job A Deno job, or a Colyseus job (run with Node from `bench/colyseus/`).
 * @returns The generator's result; a crash or overrun is an `ok: false` result.
 */
export async function runGenerator(job: LoadJob | ColyseusJob): Promise<LoadResult> {
  const child = spawnGenerator(job, false);
  try {
    return await collect(child, job);
  } finally {
    await child.stop();
  }
}

/**
 * Runs a relay or echo job split over `processes` generator processes (clients shared as
 * evenly as possible): each connects its share, then all start sending together, and their
 * results are merged ({@linkcode mergeShardResults}; generator CPU is their sum). Processes
 * connect one after the other, so Colyseus's first one creates the room the others join.
 * With one process (or another scenario) it is {@linkcode runGenerator}.
 *
 * @param job The whole load.
 * @param processes How many generator processes.
 * @returns The merged result; any process failing fails it.
 */
export async function runGenerators(
  job: LoadJob | ColyseusJob,
  processes: number,
): Promise<LoadResult> {
  const scenario = job.scenario;
  if (processes <= 1 || (scenario.kind !== "relay" && scenario.kind !== "echo")) {
    return await runGenerator(job);
  }
  const shares = splitClients(scenario.clients, processes);
  if (shares.length === 1 || shares.some((n) => n < 2)) return await runGenerator(job);
  const children: BenchChild[] = [];
  const deadline = performance.now() + job.deadlineMs + KILL_MARGIN_MS;
  try {
    const jobs = shares.map((clients) =>
      ({
        ...job,
        scenario: { ...scenario, clients },
        waitForStart: true,
      }) as LoadJob | ColyseusJob
    );
    for (const shard of jobs) {
      const child = spawnGenerator(shard, true);
      children.push(child);
      await child.waitForLine(new RegExp(`^${CONNECTED_LINE}$`), deadline - performance.now());
    }
    await Promise.all(children.map((child) => child.writeLine(START_LINE)));
    return mergeShardResults(
      await Promise.all(children.map((child, i) => collect(child, jobs[i], deadline))),
    );
  } catch (error) {
    if (!(error instanceof ChildProcessError)) throw error;
    return { kind: scenario.kind, ok: false, error: error.message };
  } finally {
    await Promise.all(children.map((child) => child.stop()));
  }
}

function spawnGenerator(job: LoadJob | ColyseusJob, stdin: boolean): BenchChild {
  return job.target.kind === "colyseus"
    ? BenchChild.spawn({
      name: "colyseus load generator",
      command: "node",
      args: [`${COLYSEUS_DIR}/load_generator.mjs`, "--job", JSON.stringify(job)],
      cwd: COLYSEUS_DIR,
      stdin,
      side: "generator",
    })
    : BenchChild.spawn({
      name: "load generator",
      command: Deno.execPath(),
      args: ["run", "-A", `${REPO_ROOT}bench/load_generator.ts`, "--job", JSON.stringify(job)],
      cwd: REPO_ROOT,
      stdin,
      side: "generator",
    });
}

/** Waits for a generator's result line and exit; a crash or overrun is an `ok: false` result. */
async function collect(
  child: BenchChild,
  job: LoadJob | ColyseusJob,
  deadline = performance.now() + job.deadlineMs + KILL_MARGIN_MS,
): Promise<LoadResult> {
  try {
    const match = await child.waitForLine(/^LOAD_RESULT (.*)$/, deadline - performance.now());
    await child.waitExit(KILL_MARGIN_MS);
    const result = JSON.parse(match[1]) as LoadResult;
    if (result.ok && (result.kind === "relay" || result.kind === "echo")) {
      return { ...result, windows: result.windows.map(withPercentiles) };
    }
    return result;
  } catch (error) {
    if (!(error instanceof ChildProcessError) && !(error instanceof SyntaxError)) throw error;
    return { kind: job.scenario.kind, ok: false, error: error.message };
  }
}
