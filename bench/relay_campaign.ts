/**
 * The relay scenario for one system (raw relay, Sustenet plaintext or sealed, Colyseus): either
 * one run at a fixed client count (`--quick`), or the search for the most clients sustained at
 * 20 Hz — short probes steered by {@linkcode MaxClientsSearch}, then confirmation runs
 * (3 s warm-up, median of 3 windows of 10 s) at the best count, stepping down if it does not
 * hold. Each run is a fresh generator process against the same server.
 *
 * It never runs more than the plan's probes plus four confirmations, so every campaign is
 * bounded in time.
 *
 * @module
 */

import type { LoadJob, LoadResult, WindowedRun, WindowResult } from "./load_job.ts";
import {
  confirmationCandidates,
  judgeRelay,
  MaxClientsSearch,
  median,
  type SustainCriterion,
} from "./max_clients_search.ts";
import { type ColyseusJob, runGenerators } from "./run_generator.ts";
import type { BenchServer } from "./bench_servers.ts";

/** What one relay run showed (medians over its windows). */
export interface RelayRun {
  /** Why it ran: a fixed-size run, a search probe, or a confirmation. */
  readonly phase: "fixed" | "probe" | "confirm";
  /** Clients. */
  readonly clients: number;
  /** `false` if the generator failed (then only `error` is meaningful). */
  readonly ok: boolean;
  /** The generator's failure. */
  readonly error?: string;
  /** Time to connect (and authenticate) every client, ms. */
  readonly connectMs: number;
  /** Median frames received per second. */
  readonly receivedPerSecond: number;
  /** R·(R−1)·hz. */
  readonly expectedPerSecond: number;
  /** received / expected. */
  readonly deliveredRatio: number;
  /** Median p50 one-way latency, ms. */
  readonly p50Ms: number;
  /** Median p99 one-way latency, ms. */
  readonly p99Ms: number;
  /** Median server CPU % (all its processes). */
  readonly serverCpuPercent: number;
  /** Largest server RSS seen, bytes. */
  readonly serverRssBytes: number;
  /** Median generator CPU %. */
  readonly generatorCpuPercent: number;
  /** Sends the generator skipped because it lagged (should be 0). */
  readonly skippedSends: number;
  /** Windows left out because the generator stalled in them (each was measured again). */
  readonly generatorFaults?: number;
  /** The generator's worst event-loop lag over the counted windows, ms. */
  readonly generatorLagMaxMs?: number;
  /**
   * The server's worst event-loop lag over the counted windows, as a bucket bound, ms
   * (`null`: over the largest bound); absent for servers without `/metrics`.
   */
  readonly serverLagMaxMs?: number | null;
  /** Server lag samples over 20 ms in the counted windows. */
  readonly serverStalls?: number;
  /** Median share of the machine's cores busy over all windows measured, %. */
  readonly machineBusyPercent?: number;
  /** Median share of the time the server's main thread waited for a core, over all windows, %. */
  readonly serverWaitPercent?: number;
  /** The same for the generator's main thread, %. */
  readonly generatorWaitPercent?: number;
  /**
   * Median over the counted windows of the mean time a received byte waited unread in the
   * generator's sockets, ms (`bench/receive_backlog.ts`): time the generator added, not the
   * server; an upper bound.
   */
  readonly generatorReceiveWaitMs?: number;
  /** The same in the server's ends of the connections: time the server added. */
  readonly serverReceiveWaitMs?: number;
  /**
   * Median over the counted windows of the cluster's 99th-percentile write delay (queued to
   * written, `sustenet_cluster_write_delay_seconds`) as a bucket bound, ms; `null` over 1 s.
   */
  readonly serverWriteP99Ms?: number | null;
  /** Whether it meets the sustained-load criterion. */
  readonly pass: boolean;
  /** Why not. */
  readonly reasons: readonly string[];
}

/** The outcome of one system's campaign. */
export interface SystemResult {
  /** `raw`, `sustenet-plaintext`, `sustenet-sealed`, `colyseus`. */
  readonly label: string;
  /** Every run, in order. */
  readonly runs: readonly RelayRun[];
  /** Most clients sustained in a confirmation run (search mode). */
  readonly maxSustainedClients?: number;
  /** Whether a confirmation run passed (then `maxSustainedClients` is set). */
  readonly confirmed: boolean;
  /** The best count the short probes passed when no confirmation held. */
  readonly probeBest?: number;
  /** Why the campaign ended early (its server failed to restart), if it did. */
  readonly error?: string;
  /** Frames per second delivered at that count. */
  readonly framesPerSecondAtMax?: number;
}

/** How to run a campaign. */
export interface RelayPlan {
  /** `fixed`: one run of `fixedClients`; `search`: find the maximum. */
  readonly mode: "fixed" | "search";
  /** Clients of the fixed run. */
  readonly fixedClients: number;
  /** Sends per client per second. */
  readonly hz: number;
  /** Timing of a fixed run or a probe. */
  readonly probe: WindowedRun;
  /** Timing of a confirmation run. */
  readonly confirm: WindowedRun;
  /** Search range and start. */
  readonly search: { readonly start: number; readonly min: number; readonly max: number };
  /**
   * Most probes.
   *
   * @default {7}
   */
  readonly maxProbes?: number;
  /** The pass criterion (issue 9's by default). */
  readonly criterion?: SustainCriterion;
  /**
   * Generator processes sharing each run's clients (the same for every system, Colyseus
   * included).
   *
   * @default {1}
   */
  readonly generatorProcesses?: number;
}

/** Builds the job of one run for this system. */
export type RelayJobFactory = (clients: number, run: WindowedRun) => LoadJob | ColyseusJob;

/**
 * Sums what each server process used in one window.
 *
 * @param window One window.
 */
function serverCpu(window: WindowResult): number {
  return window.servers.reduce((sum, s) => sum + s.cpuPercent, 0);
}

/**
 * Reduces a generator's result to one {@linkcode RelayRun}.
 *
 * @param phase Why it ran.
 * @param clients Clients asked for.
 * @param hz Rate.
 * @param result The generator's result.
 * @param criterion The pass criterion.
 *
 * @example
 * ```ts
 * import { summariseRelay } from "./relay_campaign.ts";
 * import assert from "node:assert/strict";
 *
 * const failed = summariseRelay("probe", 10, 20, { kind: "relay", ok: false, error: "boom" });
 * assert.equal(failed.pass, false);
 * assert.deepEqual(failed.reasons, ["boom"]);
 * ```
 */
export function summariseRelay(
  phase: RelayRun["phase"],
  clients: number,
  hz: number,
  result: LoadResult,
  criterion: SustainCriterion = {},
): RelayRun {
  if (!result.ok || result.kind !== "relay" || result.windows.length === 0) {
    const error = result.ok ? "no measured window" : result.error;
    return {
      phase,
      clients,
      ok: false,
      error,
      connectMs: 0,
      receivedPerSecond: 0,
      expectedPerSecond: clients * (clients - 1) * hz,
      deliveredRatio: 0,
      p50Ms: 0,
      p99Ms: 0,
      serverCpuPercent: 0,
      serverRssBytes: 0,
      generatorCpuPercent: 0,
      skippedSends: 0,
      pass: false,
      reasons: [error],
    };
  }
  // Windows in which the generator stalled measured the generator, not the server: leave them
  // out (the generator measured each again), unless that leaves nothing.
  const clean = result.windows.filter((w) => w.generatorFault !== true);
  const windows = clean.length > 0 ? clean : result.windows;
  const receivedPerSecond = median(windows.map((w) => w.receivedPerSecond));
  const p99Ms = median(windows.map((w) => w.p99Ms));
  const verdict = judgeRelay({ clients, hz, receivedPerSecond, p99Ms }, criterion);
  const lost = windows.some((w) => w.openClients < clients);
  const lag = lagSummary(windows, result.windows.length - clean.length);
  const reasons = [
    ...verdict.reasons,
    ...(lost ? ["clients were disconnected"] : []),
    ...(clean.length === 0 && !verdict.pass
      ? [
        `generator stalled in every window (${lag.generatorLagMaxMs} ms): not the server's verdict`,
      ]
      : []),
  ];
  return {
    phase,
    clients,
    ok: true,
    connectMs: result.connectMs,
    receivedPerSecond: Math.round(receivedPerSecond),
    expectedPerSecond: verdict.expectedPerSecond,
    deliveredRatio: Math.round(verdict.deliveredRatio * 10000) / 10000,
    p50Ms: median(windows.map((w) => w.p50Ms)),
    p99Ms,
    serverCpuPercent: Math.round(median(windows.map(serverCpu)) * 10) / 10,
    serverRssBytes: Math.max(...windows.flatMap((w) => w.servers.map((s) => s.rssBytes))),
    generatorCpuPercent: median(windows.map((w) => w.generator.cpuPercent)),
    skippedSends: windows.reduce((sum, w) => sum + w.skipped, 0),
    ...lag,
    ...waitSummary(result.windows),
    ...backlogSummary(windows),
    pass: verdict.pass && !lost,
    reasons,
  };
}

/**
 * Whether the cores were the limit: the machine's busy share and each main thread's run-queue
 * wait, medians over every window measured (re-run ones too: a stall is what they explain).
 */
function waitSummary(windows: readonly WindowResult[]): Partial<RelayRun> {
  const busy = windows.flatMap((w) => w.machine === undefined ? [] : [w.machine.busyPercent]);
  const serverWait = windows.flatMap((w) => {
    const waits = w.servers.flatMap((s) => s.waitPercent === undefined ? [] : [s.waitPercent]);
    return waits.length === 0 ? [] : [Math.max(...waits)];
  });
  const generatorWait = windows.flatMap((w) =>
    w.generator.waitPercent === undefined ? [] : [w.generator.waitPercent]
  );
  return {
    ...(busy.length === 0 ? {} : { machineBusyPercent: median(busy) }),
    ...(serverWait.length === 0 ? {} : { serverWaitPercent: median(serverWait) }),
    ...(generatorWait.length === 0 ? {} : { generatorWaitPercent: median(generatorWait) }),
  };
}

/** Where bytes waited: each side's receive queues, the cluster's writes; medians over windows. */
function backlogSummary(windows: readonly WindowResult[]): Partial<RelayRun> {
  const generator = windows.flatMap((w) => w.receiveBacklog?.generatorWaitMs ?? []);
  const server = windows.flatMap((w) => w.receiveBacklog?.serverWaitMs ?? []);
  const writes = windows.flatMap((w) =>
    w.serverWriteDelay === undefined ? [] : [w.serverWriteDelay.p99BoundMs ?? Infinity]
  );
  const writeP99 = writes.length === 0 ? undefined : median(writes);
  return {
    ...(generator.length === 0 ? {} : { generatorReceiveWaitMs: median(generator) }),
    ...(server.length === 0 ? {} : { serverReceiveWaitMs: median(server) }),
    ...(writeP99 === undefined ? {} : {
      serverWriteP99Ms: writeP99 === Infinity ? null : writeP99,
    }),
  };
}

/** Whose loop stalled: the generator's and the server's worst lag over the counted windows. */
function lagSummary(windows: readonly WindowResult[], faults: number): Partial<RelayRun> {
  const generator = windows.flatMap((w) => w.generatorLag === undefined ? [] : [w.generatorLag]);
  const server = windows.flatMap((w) => w.serverLag === undefined ? [] : [w.serverLag]);
  const serverMax = server.some((l) => l.maxBoundMs === null)
    ? null
    : Math.max(0, ...server.map((l) => l.maxBoundMs ?? 0));
  return {
    generatorFaults: faults,
    ...(generator.length === 0 ? {} : {
      generatorLagMaxMs: Math.max(...generator.map((l) => l.maxMs)),
    }),
    ...(server.length === 0 ? {} : {
      serverLagMaxMs: serverMax,
      serverStalls: server.reduce((sum, l) => sum + l.stalls, 0),
    }),
  };
}

/** Pause between runs so the server has closed the previous run's connections, ms. */
const SETTLE_MS = 750;

/**
 * Runs one system's relay campaign: starts its server, runs each planned load in a fresh
 * generator, restarts the server after a failed run (an overloaded server may still be
 * draining, which must not count against the next run), and always stops it.
 *
 * @param label The system's name.
 * @param start Starts the server.
 * @param jobs Builds each run's job for a started server.
 * @param plan Fixed or search, timings, range.
 * @param report Called with every run as it completes (progress output).
 */
export async function runRelayCampaign<S extends BenchServer>(
  label: string,
  start: () => Promise<S>,
  jobs: (server: S) => RelayJobFactory,
  plan: RelayPlan,
  report: (label: string, run: RelayRun) => void,
): Promise<SystemResult> {
  const runs: RelayRun[] = [];
  let server = await start();
  const run = async (phase: RelayRun["phase"], clients: number, timing: WindowedRun) => {
    const previous = runs[runs.length - 1];
    if (previous !== undefined && !previous.pass) {
      await server.stop();
      server = await start();
    } else if (previous !== undefined) {
      await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
    }
    const result = await runGenerators(
      jobs(server)(clients, timing),
      plan.generatorProcesses ?? 1,
    );
    const summary = summariseRelay(phase, clients, plan.hz, result, plan.criterion);
    runs.push(summary);
    report(label, summary);
    return summary;
  };
  try {
    return await campaign(label, runs, run, plan);
  } catch (error) {
    // A server that would not restart ends the campaign, keeping what was measured.
    if (runs.length === 0) throw error;
    const message = error instanceof Error ? error.message : String(error);
    return { label, runs, confirmed: false, error: message };
  } finally {
    await server.stop();
  }
}

/** The fixed run, or the search and its confirmation. */
async function campaign(
  label: string,
  runs: readonly RelayRun[],
  run: (phase: RelayRun["phase"], clients: number, timing: WindowedRun) => Promise<RelayRun>,
  plan: RelayPlan,
): Promise<SystemResult> {
  if (plan.mode === "fixed") {
    await run("fixed", plan.fixedClients, plan.probe);
    return { label, runs, confirmed: false };
  }
  const search = new MaxClientsSearch({ ...plan.search, maxProbes: plan.maxProbes ?? 7 });
  for (let clients = search.next(); clients !== undefined; clients = search.next()) {
    search.record(clients, (await run("probe", clients, plan.probe)).pass);
  }
  // Confirm the best probe with the full measurement, stepping down if it does not hold (probes
  // are short, so a long run can find a tail they missed).
  const candidates = search.best === undefined
    ? []
    : confirmationCandidates(search.best, plan.search.min);
  for (const candidate of candidates) {
    const confirmed = await run("confirm", candidate, plan.confirm);
    if (confirmed.pass) {
      return {
        label,
        runs,
        maxSustainedClients: candidate,
        confirmed: true,
        framesPerSecondAtMax: confirmed.receivedPerSecond,
      };
    }
  }
  // No confirmation held: keep the probes' answer apart, so it is never taken for a result.
  return search.best === undefined
    ? { label, runs, confirmed: false }
    : { label, runs, confirmed: false, probeBest: search.best };
}
