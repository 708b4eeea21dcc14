/**
 * The bench's output: the results object (everything measured, written as
 * `bench/results/<ISO date>.json`), the headline comparison of issue 9 (max sustained clients
 * of each system and its ratio to the raw relay and to Colyseus, against the goals), issue 6's
 * end-to-end echo comparison (sandboxed plugin versus in-process), and the plain-text tables
 * printed on stdout.
 *
 * Formatting only: it never measures anything and never changes a figure it prints.
 *
 * @module
 */

import { type AccountsFigures, formatAccounts } from "./auth_bench.ts";
import type { LoadResult } from "./load_job.ts";
import type { Placement } from "./child_process.ts";
import type { MachineInfo } from "./machine_info.ts";
import type { ProfileEntry } from "./profile_summary.ts";
import type { RelayRun, SystemResult } from "./relay_campaign.ts";
import type { SealFigure } from "./seal_throughput.ts";
import { type SteadinessResult, STEADY_P999_MS } from "./steadiness.ts";
import { formatWorld, type WorldResults } from "./world_bench.ts";

/** One of issue 9's goals, checked against this run. */
export interface GoalCheck {
  /** E.g. `"plaintext ≥ 0.9 × raw"`. */
  readonly goal: string;
  /** The measured ratio, if both sides were measured. */
  readonly ratio?: number;
  /** The ratio the goal asks for. */
  readonly target: number;
  /**
   * `undefined` when it could not be measured; never `true` unless both sides were confirmed
   * by the full measurement (a short probe's figure gives a ratio, marked, but meets nothing).
   */
  readonly met?: boolean;
  /** `true` when a side's figure is a short probe's only (no confirmation held). */
  readonly unconfirmed?: boolean;
}

/** One echo run's figures (its last measured window). */
export interface EchoFigures {
  /** Clients connected and echoing. */
  readonly clients: number;
  /** Echoes received per second, all clients together. */
  readonly echoesPerSecond: number;
  /** Round trip, 50th percentile, ms. */
  readonly p50Ms: number;
  /** Round trip, 99th percentile, ms. */
  readonly p99Ms: number;
  /** CPU of the cluster process (all its threads, the plugin Worker's included), %. */
  readonly clusterCpuPercent: number;
  /** CPU of the load generator (the clients), %: near 100 % it, not the cluster, is the limit. */
  readonly generatorCpuPercent: number;
}

/**
 * Issue 6's end-to-end comparison: the same echo load through a real sealed cluster whose echo
 * plugin runs in-process or sandboxed (a Worker loaded by URL, no permissions).
 */
export interface PluginEchoComparison {
  /** The in-process run; absent if not run or failed. */
  readonly inProcess?: EchoFigures;
  /** The sandboxed (Worker, trusted) run; absent if not run or failed. */
  readonly sandboxed?: EchoFigures;
  /** The subprocess (untrusted default) run; absent if not run or failed. */
  readonly subprocess?: EchoFigures;
  /** Sandboxed / in-process echoes per second (2 decimals), when both were measured. */
  readonly ratio?: number;
  /** Subprocess / in-process echoes per second (2 decimals), when both were measured. */
  readonly subprocessRatio?: number;
  /** Whether the subprocess ratio meets the target; `undefined` when not measured. */
  readonly subprocessMet?: boolean;
  /** The ratio issue 6 asks for. */
  readonly target: number;
  /** `undefined` when it could not be measured. */
  readonly met?: boolean;
  /** Runs per variant, alternated; the figures are then each variant's median run. */
  readonly rounds?: number;
}

/** Everything a bench run produced. */
export interface BenchResults {
  /** Results format version. */
  readonly version: 1;
  /** ISO time the run started. */
  readonly startedAt: string;
  /** Total duration, s. */
  readonly durationS: number;
  /** `quick` or `full`. */
  readonly mode: "quick" | "full";
  /** Where it ran. */
  readonly machine: MachineInfo;
  /** The cores servers and generators were held to (`--pin`); absent: anywhere. */
  readonly placement?: Placement;
  /** Sealing throughput. */
  readonly sealing: readonly SealFigure[];
  /** One relay campaign per system. */
  readonly relay: readonly SystemResult[];
  /** The goals of issue 9 (search mode only). */
  readonly goals: readonly GoalCheck[];
  /** Echo, join storm and idle results. */
  readonly scenarios: readonly { readonly name: string; readonly result: LoadResult }[];
  /** Echo with the plugin in-process versus sandboxed (when either echo part ran). */
  readonly pluginEcho?: PluginEchoComparison;
  /** Top functions of the cluster's CPU profile under relay load (`--profile`). */
  readonly profile?: { readonly clients: number; readonly top: readonly ProfileEntry[] };
  /** The auth part (accounts). */
  readonly accounts?: AccountsFigures;
  /** Issue 24's steadiness check (part `steady`). */
  readonly steadiness?: SteadinessResult;
  /** The world part (issue 23): interest-managed world runs and their goals. */
  readonly world?: WorldResults;
  /** Parts skipped and why (Colyseus not installable, openssl missing, …). */
  readonly skipped: readonly { readonly what: string; readonly why: string }[];
}

/**
 * Formats a rate with a k/M suffix.
 *
 * @param perSecond The rate.
 *
 * @example
 * ```ts
 * import { formatRate } from "./report.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(formatRate(2_446_365), "2.45 M");
 * assert.equal(formatRate(49_054), "49.1 k");
 * assert.equal(formatRate(950), "950");
 * ```
 */
export function formatRate(perSecond: number): string {
  if (perSecond >= 1e6) return `${(perSecond / 1e6).toFixed(2)} M`;
  if (perSecond >= 1e4) return `${(perSecond / 1e3).toFixed(1)} k`;
  return String(Math.round(perSecond));
}

/**
 * Formats bytes as MiB or KiB.
 *
 * @param bytes The size.
 *
 * @example
 * ```ts
 * import { formatBytes } from "./report.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(formatBytes(3 * 1024 * 1024), "3.0 MiB");
 * assert.equal(formatBytes(2560), "2.5 KiB");
 * ```
 */
export function formatBytes(bytes: number): string {
  if (Math.abs(bytes) >= 1024 * 1024) return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
  if (Math.abs(bytes) >= 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${Math.round(bytes)} B`;
}

/**
 * Lays out rows under headers in aligned columns (numbers right-aligned).
 *
 * @param headers Column titles.
 * @param rows Cells, as text.
 *
 * @example
 * ```ts
 * import { formatTable } from "./report.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(formatTable(["a", "n"], [["x", "10"], ["yy", "2"]]), "a    n\nx   10\nyy   2");
 * ```
 */
export function formatTable(
  headers: readonly string[],
  rows: readonly (readonly string[])[],
): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]?.length ?? 0)));
  const numeric = headers.map((_, i) =>
    rows.length > 0 && rows.every((r) => /^[\d.,\s%kMGiB×<≈-]*$/.test(r[i] ?? ""))
  );
  const line = (cells: readonly string[]) =>
    cells.map((c, i) => numeric[i] ? c.padStart(widths[i]) : c.padEnd(widths[i]))
      .join("  ").trimEnd();
  return [line(headers), ...rows.map(line)].join("\n");
}

/** The best count a campaign reached: confirmed, else the probes' (marked). */
function bestOf(system: SystemResult | undefined): number | undefined {
  return system?.maxSustainedClients ?? system?.probeBest;
}

/**
 * Checks issue 9's goals: plaintext ≥ 0.9 × raw, sealed ≥ 0.7 × raw, both ≥ 6 × Colyseus
 * (ratios of max sustained clients).
 *
 * @param systems The campaigns, by label.
 *
 * @example
 * ```ts
 * import { checkGoals } from "./report.ts";
 * import assert from "node:assert/strict";
 *
 * const sys = (label: string, n: number) => ({ label, runs: [], maxSustainedClients: n, confirmed: true });
 * const goals = checkGoals([sys("raw", 300), sys("sustenet-plaintext", 280), sys("sustenet-sealed", 180)]);
 * assert.equal(goals[0].met, true);
 * assert.equal(goals[1].met, false);
 * assert.equal(goals[2].met, undefined); // no Colyseus figure
 * const probeOnly = { label: "colyseus", runs: [], confirmed: false, probeBest: 40 };
 * const unsure = checkGoals([sys("sustenet-plaintext", 280), probeOnly])[2];
 * assert.equal(unsure.ratio, 7);
 * assert.equal(unsure.met, undefined); // a short probe's figure meets no goal
 * assert.equal(unsure.unconfirmed, true);
 * ```
 */
export function checkGoals(systems: readonly SystemResult[]): GoalCheck[] {
  const find = (label: string) => systems.find((s) => s.label === label);
  const raw = find("raw");
  const plain = find("sustenet-plaintext");
  const sealed = find("sustenet-sealed");
  const colyseus = find("colyseus");
  const webSocket = find("sustenet-ws-sealed");
  const check = (
    goal: string,
    x: SystemResult | undefined,
    y: SystemResult | undefined,
    target: number,
  ): GoalCheck => {
    const a = bestOf(x);
    const b = bestOf(y);
    if (a === undefined || b === undefined || b === 0) return { goal, target };
    const ratio = Math.round(a / b * 100) / 100;
    if (x?.confirmed !== true || y?.confirmed !== true) {
      return { goal, ratio, target, unconfirmed: true };
    }
    return { goal, ratio, target, met: ratio >= target };
  };
  return [
    check("plaintext ≥ 0.9 × raw", plain, raw, 0.9),
    check("sealed ≥ 0.7 × raw", sealed, raw, 0.7),
    check("plaintext ≥ 6 × Colyseus", plain, colyseus, 6),
    check("sealed ≥ 6 × Colyseus", sealed, colyseus, 6),
    // Issue 16's goals, when the WebSocket relay ran.
    ...(webSocket === undefined ? [] : [
      check("ws-sealed ≥ 0.8 × sealed", webSocket, sealed, 0.8),
      check("ws-sealed ≥ 6 × Colyseus", webSocket, colyseus, 6),
    ]),
  ];
}

/**
 * Issue 24's steadiness goal as a goal row: the ratio is the p99.9 budget over the measured
 * p99.9 (≥ 1 is within it), and it is met only when the cluster's loop also never paused over
 * 20 ms and the generator did not stall.
 *
 * @param steadiness The check's result, if it ran.
 *
 * @example
 * ```ts
 * import { steadinessGoal } from "./report.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(steadinessGoal(undefined), []);
 * ```
 */
export function steadinessGoal(steadiness: SteadinessResult | undefined): GoalCheck[] {
  if (steadiness === undefined) return [];
  const goal = `steady ${Math.round(steadiness.windowMs / 1000)} s at 80 % of sealed max: ` +
    `p99.9 ≤ ${STEADY_P999_MS} ms, no cluster pause > 20 ms`;
  const ratio = steadiness.p999Ms === 0
    ? undefined
    : Math.round(STEADY_P999_MS / steadiness.p999Ms * 100) / 100;
  return [{
    goal,
    target: 1,
    ...(ratio === undefined ? {} : { ratio }),
    ...(steadiness.generatorFault ? {} : { met: steadiness.pass }),
  }];
}

/** Issue 6's goal: the sandboxed echo reaches this fraction of the in-process one. */
const SANDBOXED_ECHO_TARGET = 0.7;

function echoFigures(result: LoadResult | undefined): EchoFigures | undefined {
  if (result === undefined || !result.ok || result.kind !== "echo") return undefined;
  const w = result.windows[result.windows.length - 1];
  if (w === undefined) return undefined;
  return {
    clients: result.clients,
    echoesPerSecond: Math.round(w.receivedPerSecond),
    p50Ms: w.p50Ms,
    p99Ms: w.p99Ms,
    clusterCpuPercent: Math.round(w.servers.reduce((sum, p) => sum + p.cpuPercent, 0)),
    generatorCpuPercent: Math.round(w.generator.cpuPercent),
  };
}

/**
 * The run with the median echoes/s of one variant's alternated rounds (a failed run counts as
 * 0 echoes/s; with an even count, the lower of the middle two).
 *
 * @param results The variant's runs, at least one.
 *
 * @example
 * ```ts
 * import { medianEchoRun } from "./report.ts";
 * import assert from "node:assert/strict";
 *
 * const run = (perSecond: number) => ({
 *   kind: "echo", ok: true, clients: 16, connectMs: 1,
 *   windows: [{
 *     durationMs: 1000, sent: perSecond, skipped: 0, received: perSecond,
 *     receivedPerSecond: perSecond, p50Ms: 1, p99Ms: 3, maxMs: 4, latencyBuckets: [],
 *     openClients: 16, generator: { pid: 1, cpuPercent: 80, rssBytes: 1 },
 *     servers: [{ pid: 2, cpuPercent: 60, rssBytes: 1 }],
 *   }],
 * } as const);
 * const failed = { kind: "echo", ok: false, error: "no cluster" } as const;
 * const median = medianEchoRun([run(700), failed, run(900), run(500), run(800)]);
 * assert.ok(median.ok && median.kind === "echo" && median.windows[0].receivedPerSecond === 700);
 * ```
 */
export function medianEchoRun(results: readonly LoadResult[]): LoadResult {
  const rate = (r: LoadResult) => echoFigures(r)?.echoesPerSecond ?? 0;
  const sorted = [...results].sort((a, b) => rate(a) - rate(b));
  return sorted[Math.floor((sorted.length - 1) / 2)];
}

/**
 * Compares the echo runs with the plugin in-process and sandboxed (issue 6: sandboxed ≥ 0.7 ×
 * in-process, in echoes per second); a run that is missing or failed leaves its side out.
 *
 * @param inProcess The `echo` part's result.
 * @param sandboxed The `echo-sandboxed` part's result.
 *
 * @example
 * ```ts
 * import { compareEcho } from "./report.ts";
 * import assert from "node:assert/strict";
 *
 * const run = (perSecond: number) => ({
 *   kind: "echo", ok: true, clients: 16, connectMs: 1,
 *   windows: [{
 *     durationMs: 1000, sent: perSecond, skipped: 0, received: perSecond,
 *     receivedPerSecond: perSecond, p50Ms: 1, p99Ms: 3, maxMs: 4, latencyBuckets: [],
 *     openClients: 16, generator: { pid: 1, cpuPercent: 80, rssBytes: 1 },
 *     servers: [{ pid: 2, cpuPercent: 99.6, rssBytes: 1 }],
 *   }],
 * } as const);
 * const comparison = compareEcho(run(400_000), run(300_000));
 * assert.equal(comparison.ratio, 0.75);
 * assert.equal(comparison.met, true);
 * assert.equal(comparison.sandboxed?.clusterCpuPercent, 100);
 * assert.equal(compareEcho(run(1), undefined).met, undefined);
 * ```
 */
export function compareEcho(
  inProcess: LoadResult | undefined,
  sandboxed: LoadResult | undefined,
  subprocess?: LoadResult,
): PluginEchoComparison {
  const a = echoFigures(inProcess);
  const b = echoFigures(sandboxed);
  const c = echoFigures(subprocess);
  const sides = {
    ...(a === undefined ? {} : { inProcess: a }),
    ...(b === undefined ? {} : { sandboxed: b }),
    ...(c === undefined ? {} : { subprocess: c }),
  };
  const ratioOf = (x: EchoFigures | undefined) =>
    a === undefined || x === undefined || a.echoesPerSecond === 0
      ? undefined
      : Math.round(x.echoesPerSecond / a.echoesPerSecond * 100) / 100;
  const ratio = ratioOf(b);
  const subprocessRatio = ratioOf(c);
  return {
    ...sides,
    ...(ratio === undefined ? {} : { ratio, met: ratio >= SANDBOXED_ECHO_TARGET }),
    ...(subprocessRatio === undefined
      ? {}
      : { subprocessRatio, subprocessMet: subprocessRatio >= SANDBOXED_ECHO_TARGET }),
    target: SANDBOXED_ECHO_TARGET,
  };
}

function echoRow(label: string, figures: EchoFigures | undefined): string[] {
  if (figures === undefined) return [label, "", "", "", "", "", "not measured"];
  return [
    label,
    String(figures.clients),
    formatRate(figures.echoesPerSecond),
    figures.p50Ms.toFixed(2),
    figures.p99Ms.toFixed(2),
    `${figures.clusterCpuPercent} %`,
    `${figures.generatorCpuPercent} %`,
  ];
}

function formatEcho(echo: PluginEchoComparison): string[] {
  return [
    "",
    "Echo through a sealed cluster: plugins/echo.ts in-process vs sandboxed (Worker, trusted) " +
    "vs subprocess (deno run, no permissions)" +
    ((echo.rounds ?? 1) > 1 ? `, each the median of ${echo.rounds} alternated runs` : ""),
    formatTable(
      ["plugin", "clients", "echoes/s", "RTT p50 ms", "RTT p99 ms", "cluster CPU", "gen CPU"],
      [
        echoRow("in-process", echo.inProcess),
        echoRow("sandboxed", echo.sandboxed),
        echoRow("subprocess", echo.subprocess),
      ],
    ),
    `sandboxed / in-process: ${
      echo.ratio === undefined ? "n/a" : `${echo.ratio}×`
    } (goal ≥ ${echo.target}×: ${
      echo.met === undefined ? "not measured" : echo.met ? "met" : "NOT met"
    })`,
    `subprocess / in-process: ${
      echo.subprocessRatio === undefined ? "n/a" : `${echo.subprocessRatio}×`
    } (goal ≥ ${echo.target}×: ${
      echo.subprocessMet === undefined ? "not measured" : echo.subprocessMet ? "met" : "NOT met"
    })`,
  ];
}

/**
 * One table row of a relay run.
 *
 * @param label The system.
 * @param run The run.
 */
export function relayRow(label: string, run: RelayRun): string[] {
  if (!run.ok) {
    return [
      label,
      run.phase,
      String(run.clients),
      "",
      "",
      "",
      "",
      "",
      "",
      "",
      "",
      "",
      "",
      "failed",
    ];
  }
  return [
    label,
    run.phase,
    String(run.clients),
    formatRate(run.receivedPerSecond),
    `${(run.deliveredRatio * 100).toFixed(1)} %`,
    run.p50Ms.toFixed(2),
    run.p99Ms.toFixed(2),
    `${run.serverCpuPercent.toFixed(0)} %`,
    formatBytes(run.serverRssBytes),
    `${run.generatorCpuPercent.toFixed(0)} %`,
    formatGeneratorLag(run),
    formatServerLag(run),
    formatWaits(run),
    formatBacklog(run),
    formatWriteDelay(run),
    run.pass ? "pass" : "FAIL",
  ];
}

/**
 * The machine's busy share, then the server's and the generator's main-thread run-queue wait
 * (`93 / 9 / 7`: cores 93 % busy; the loops were ready but had no core 9 % and 7 % of the time).
 */
function formatWaits(run: RelayRun): string {
  if (run.machineBusyPercent === undefined) return "";
  const part = (value: number | undefined) => value === undefined ? "?" : value.toFixed(0);
  return `${part(run.machineBusyPercent)} / ${part(run.serverWaitPercent)} / ${
    part(run.generatorWaitPercent)
  }`;
}

/**
 * Mean time a received byte sat unread in the generator's sockets, then in the server's, ms
 * (`14.2 / 0.9`: the frames' wait was the generator's).
 */
function formatBacklog(run: RelayRun): string {
  if (run.generatorReceiveWaitMs === undefined) return "";
  const ms = (value: number | undefined) => value === undefined ? "?" : value.toFixed(1);
  return `${ms(run.generatorReceiveWaitMs)} / ${ms(run.serverReceiveWaitMs)}`;
}

/** The cluster's p99 write delay as its bucket bound (`≤20`, `>1000`). */
function formatWriteDelay(run: RelayRun): string {
  if (run.serverWriteP99Ms === undefined) return "";
  return run.serverWriteP99Ms === null ? ">1000" : `≤${run.serverWriteP99Ms}`;
}

/** The generator's worst lag in ms, with the windows re-run because it stalled (`+2 re-run`). */
function formatGeneratorLag(run: RelayRun): string {
  if (run.generatorLagMaxMs === undefined) return "";
  const faults = run.generatorFaults ?? 0;
  return `${run.generatorLagMaxMs.toFixed(1)}${faults > 0 ? ` +${faults} re-run` : ""}`;
}

/** The server's worst lag as its bucket bound (`≤20`, `>2500`), with stalls over 20 ms. */
function formatServerLag(run: RelayRun): string {
  if (run.serverLagMaxMs === undefined) return "";
  const bound = run.serverLagMaxMs === null ? ">2500" : `≤${run.serverLagMaxMs}`;
  const stalls = run.serverStalls ?? 0;
  return stalls > 0 ? `${bound} (${stalls}×>20)` : bound;
}

/** Headers of {@linkcode relayRow}. */
export const RELAY_HEADERS: readonly string[] = [
  "system",
  "run",
  "R",
  "frames/s",
  "delivered",
  "p50 ms",
  "p99 ms",
  "server CPU",
  "server RSS",
  "gen CPU",
  "gen lag ms",
  "srv lag ms",
  "busy/wait %",
  "unread ms g/s",
  "write p99 ms",
  "verdict",
];

/**
 * The whole report as text: sealing, relay runs, headline with goals, other scenarios,
 * profile, skipped parts.
 *
 * @param results The run's results.
 */
export function formatReport(results: BenchResults): string {
  const out: string[] = [];
  const m = results.machine;
  out.push(
    `Sustenet bench (${results.mode}) — ${m.nproc} × ${m.cpuModel}${
      m.aesNi ? " (AES-NI)" : ""
    }, Deno ${m.deno}, Node ${m.node}, load ${m.loadAverage.map((l) => l.toFixed(2)).join(" ")}${
      m.damon === "on" ? ", DAMON reclaim on" : ""
    }${
      results.placement === undefined
        ? ""
        : `; servers on cores ${results.placement.server}, generators on ${results.placement.generator}`
    }`,
  );
  if (results.sealing.length > 0) {
    out.push("", "Sealing (AES-256-GCM, one record per seal)");
    out.push(formatTable(
      ["implementation", "record", "records/s", "MB/s"],
      results.sealing.map((f) => [
        f.implementation,
        formatBytes(f.recordBytes),
        formatRate(f.recordsPerSecond),
        f.megabytesPerSecond.toFixed(1),
      ]),
    ));
  }
  if (results.accounts !== undefined) out.push("", ...formatAccounts(results.accounts));
  if (results.world !== undefined) out.push("", formatWorld(results.world));
  const runs = results.relay.flatMap((s) => s.runs.map((r) => relayRow(s.label, r)));
  if (runs.length > 0) {
    out.push("", "Relay: 32-byte payload at 20 Hz, fanned out to all other clients");
    out.push(formatTable(RELAY_HEADERS, runs));
  }
  const searched = results.relay.filter((s) => bestOf(s) !== undefined);
  if (searched.length > 0) {
    out.push("", "Max sustained clients at 20 Hz (p99 ≤ 50 ms, ≥ 97 % delivered)");
    out.push(formatTable(
      ["system", "clients", "frames/s", "measured by"],
      searched.map((s) => [
        s.label,
        String(bestOf(s)),
        s.framesPerSecondAtMax === undefined ? "" : formatRate(s.framesPerSecondAtMax),
        s.confirmed ? "median of confirmation windows" : "short probe only (not confirmed)",
      ]),
    ));
    out.push(formatTable(
      ["goal", "ratio", "verdict"],
      results.goals.map((g) => [
        g.goal,
        g.ratio === undefined ? "n/a" : `${g.ratio}×`,
        g.unconfirmed === true
          ? "not confirmed"
          : g.met === undefined
          ? "not measured"
          : g.met
          ? "met"
          : "NOT met",
      ]),
    ));
  }
  for (const s of results.relay) {
    if (s.error !== undefined) out.push(`${s.label} ended early: ${s.error}`);
  }
  const steady = results.steadiness;
  if (steady !== undefined) {
    out.push(
      "",
      `Steadiness: sealed cluster, ${steady.clients} clients, one ${
        Math.round(steady.windowMs / 1000)
      } s window`,
    );
    out.push(formatTable(
      ["p99 ms", "p99.9 ms", "max ms", "delivered", "cluster lag", "gen lag ms", "verdict"],
      [[
        steady.p99Ms.toFixed(2),
        steady.p999Ms.toFixed(2),
        steady.maxMs.toFixed(2),
        `${(steady.deliveredRatio * 100).toFixed(1)} %`,
        steady.serverLagMaxMs === undefined
          ? "n/a"
          : `${steady.serverLagMaxMs === null ? ">2500" : `≤${steady.serverLagMaxMs}`} ms, ${
            steady.serverStalls ?? 0
          }× > 20 ms`,
        steady.generatorLagMaxMs?.toFixed(1) ?? "n/a",
        steady.pass ? "pass" : `FAIL: ${steady.reasons.join("; ")}`,
      ]],
    ));
  }
  for (const { name, result } of results.scenarios) out.push("", scenarioLine(name, result));
  if (results.pluginEcho !== undefined) out.push(...formatEcho(results.pluginEcho));
  if (results.profile !== undefined) {
    out.push(
      "",
      `Cluster CPU profile under relay load (${results.profile.clients} clients, sealed)`,
    );
    out.push(formatTable(
      ["self %", "self ms", "function", "location"],
      results.profile.top.map((e) => [
        e.percent.toFixed(1),
        e.selfMs.toFixed(0),
        e.functionName,
        e.location,
      ]),
    ));
  }
  for (const s of results.skipped) out.push(`skipped ${s.what}: ${s.why}`);
  return out.join("\n");
}

function scenarioLine(name: string, result: LoadResult): string {
  if (!result.ok) return `${name}: failed: ${result.error}`;
  switch (result.kind) {
    case "echo": {
      const w = result.windows[result.windows.length - 1];
      return `${name}: ${result.clients} clients, ${formatRate(w.receivedPerSecond)} echoes/s, ` +
        `RTT p50 ${w.p50Ms.toFixed(2)} ms p99 ${w.p99Ms.toFixed(2)} ms, server CPU ` +
        `${w.servers.reduce((s, p) => s + p.cpuPercent, 0).toFixed(0)} %`;
    }
    case "join":
      return `${name}: ${result.joins} joins (${result.failures} failed) in ${result.durationMs} ms: ` +
        `${result.joinsPerSecond} joins/s, p50 ${result.p50Ms.toFixed(1)} ms p99 ` +
        `${result.p99Ms.toFixed(1)} ms${
          result.cpuUsPerJoin === undefined
            ? ""
            : `; CPU per join: generator ${result.cpuUsPerJoin.generator} µs, servers ${
              result.cpuUsPerJoin.servers.join(" + ")
            } µs (cluster first)`
        }${result.firstError === undefined ? "" : ` (first error: ${result.firstError})`}`;
    case "idle":
      return `${name}: ${result.clients} idle authenticated clients: cluster RSS ` +
        `${formatBytes(result.rssBeforeBytes)} → ${formatBytes(result.rssAfterBytes)}, ` +
        `${formatBytes(result.rssPerClientBytes)} per client (connected in ${result.connectMs} ms)`;
    case "relay":
      return `${name}: ${result.clients} clients`;
  }
}

/**
 * Writes the results as `<dir>/<ISO date>.json` (colons replaced, so the name is portable).
 *
 * @param results The results.
 * @param dir The results directory (created if missing).
 * @returns The file's path.
 */
export async function writeResults(results: BenchResults, dir: string): Promise<string> {
  await Deno.mkdir(dir, { recursive: true });
  const path = `${dir}/${results.startedAt.replaceAll(":", "-")}.json`;
  await Deno.writeTextFile(path, JSON.stringify(results, null, 2) + "\n");
  return path;
}
