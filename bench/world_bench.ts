/**
 * The `world` part of `deno task bench` (issue 23): an interest-managed MMO world on a real
 * master and cluster (each its own process), driven by the separate generator process
 * `bench/world_load.ts`. Players walk random waypoints at 1.4 units/s in a square world of
 * 64-unit fragments, view distance 1, sized by {@linkcode worldFor} so that each sees ~40
 * others; the `town` layout crowds a fifth of them into a 2 × 2-fragment town at the centre.
 *
 * Players move at 20 Hz, each on its own phase; the cluster updates fragments at
 * {@linkcode WORLD_TICK_HZ}. Full mode searches the most players (sealed, spread) with
 * move-to-screen p99 ≤ 50 ms and ≥ 97 % of the expected positions delivered
 * ({@linkcode MaxClientsSearch}, then confirmed with {@linkcode confirmationCandidates}, like
 * the relay search), then runs at that count: plaintext, the town, and the naive baseline (one
 * fragment covering the whole world, no rate reduction: everyone is sent everyone, as a server
 * without interest management does), plus idle players (memory) and the join rate. Quick mode runs each at a fixed small count.
 *
 * It binds nothing but 127.0.0.1 and stops every process it starts.
 *
 * @module
 */

import { BenchChild } from "./child_process.ts";
import { REPO_ROOT, startSustenetServers, type SustenetServers } from "./bench_servers.ts";
import { ProfileRunError } from "./cluster_profile.ts";
import { confirmationCandidates, MaxClientsSearch } from "./max_clients_search.ts";
import { InspectorSession } from "./inspector_session.ts";
import { sampleProcess } from "./process_stats.ts";
import { formatTable } from "./report.ts";
import { type ProfileEntry, summariseLargestProfile } from "./profile_summary.ts";
import { freePort } from "../tests/_process.ts";
import type { WorldLoadReport, WorldOrder } from "./world_load.ts";
import {
  WORLD_FRAGMENT_SIZE,
  WORLD_VIEW_DISTANCE,
  worldFor,
  type WorldLayout,
  type WorldSize,
} from "./world_layout.ts";

/** Moves per player per second. */
const HZ = 20;
/**
 * The cluster's fragment updates per second (`tick_hz`). A position waits for its fragment's next
 * update, up to a whole tick: at 20 Hz that wait alone is ~50 ms at p99 (measured: p99 52.7–55.3
 * ms at 50 players with the cluster at 5–7 % CPU), so a 50 ms move-to-screen goal needs the
 * cluster to update faster than the players move.
 */
export const WORLD_TICK_HZ = 40;
/** The cluster's crowd threshold in the interest-managed runs (the config default). */
const CROWD_THRESHOLD = 100;

/** Most players of the naive run (its frames grow with N²). */
const NAIVE_MAX = 1000;

/** Interest-managed, or naive (one fragment covering the world, full rate). */
export type WorldMode = "interest" | "naive";

/** One world run. */
export interface WorldRun {
  /** E.g. `"spread sealed"`. */
  readonly label: string;
  /** Layout. */
  readonly layout: WorldLayout;
  /** Interest management or naive. */
  readonly mode: WorldMode;
  /** Sealed client traffic. */
  readonly sealed: boolean;
  /** Players. */
  readonly players: number;
  /** Idle players (no moves). */
  readonly idle: boolean;
  /** The world. */
  readonly world: WorldSize & { readonly fragmentSize: number; readonly viewDistance: number };
  /** The generator's figures. */
  readonly load: WorldLoadReport;
  /** Cluster CPU over the window, % of one core. */
  readonly clusterCpuPercent: number;
  /** Cluster CPU per delivered position, µs. */
  readonly cpuUsPerPosition: number;
  /** Tick duration p50 / p99 over the window, ms (interpolated in the tick histogram). */
  readonly tickP50Ms: number;
  /** p99. */
  readonly tickP99Ms: number;
  /**
   * (cluster RSS in the window − RSS before anyone joined) / players, bytes; for idle runs both
   * read after a full garbage collection.
   */
  readonly rssPerPlayerBytes: number;
  /** p99 ≤ 50 ms and ≥ 97 % delivered (for everyone; outside the town for the town). */
  readonly pass: boolean;
  /** Why not. */
  readonly reasons: readonly string[];
  /** Top functions of the cluster's CPU profile by self time (profiled runs only). */
  readonly profile?: readonly ProfileEntry[];
}

/** One goal of issue 23 with its measurement. */
export interface WorldGoal {
  /** The goal. */
  readonly goal: string;
  /** What was measured, as text. */
  readonly measured: string;
  /** `undefined` when not measured at the goal's scale (quick mode). */
  readonly met?: boolean;
  /** Why it is missed or unmeasured. */
  readonly note?: string;
}

/** The world part's results. */
export interface WorldResults {
  /** Every run, in order. */
  readonly runs: readonly WorldRun[];
  /** The search's confirmed maximum (sealed, spread), when searched. */
  readonly maxSpreadSealed?: number;
  /** Whether that maximum held in its confirmation run. */
  readonly confirmed: boolean;
  /** The goals. */
  readonly goals: readonly WorldGoal[];
  /** What the baseline compares. */
  readonly comparison: string;
}

/** One run's settings. */
export interface RunSpec {
  readonly label: string;
  readonly layout: WorldLayout;
  readonly mode: WorldMode;
  readonly sealed: boolean;
  readonly players: number;
  readonly idle?: boolean;
  readonly warmupMs: number;
  readonly windowMs: number;
  /** Run the cluster with `--cpu-prof` writing here, and summarise the profile. */
  readonly profileDir?: string;
  /** The cluster's fragment tick rate (`tick_hz`). @default {WORLD_TICK_HZ} */
  readonly tickHz?: number;
}

function fragmentsToml(spec: RunSpec, world: WorldSize): string {
  const naive = spec.mode === "naive";
  return [
    "[cluster.fragments]",
    "enabled = true",
    `size = ${naive ? world.side : WORLD_FRAGMENT_SIZE}`,
    `bounds = [0, 0, ${world.side}, ${world.side}]`,
    `view_distance = ${WORLD_VIEW_DISTANCE}`,
    `tick_hz = ${spec.tickHz ?? WORLD_TICK_HZ}`,
    `max_players = ${Math.max(1, spec.players)}`,
    `crowd_threshold = ${naive ? Math.max(1, spec.players) : CROWD_THRESHOLD}`,
    'position_format = "quantized"',
  ].join("\n");
}

/** Histogram buckets of `sustenet_cluster_tick_seconds` from `/metrics`. */
async function tickBuckets(port: number): Promise<Map<number, number>> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const out = new Map<number, number>();
  for (const m of text.matchAll(/^sustenet_cluster_tick_seconds_bucket\{le="([^"]+)"\} (\S+)$/gm)) {
    out.set(m[1] === "+Inf" ? Infinity : Number(m[1]), Number(m[2]));
  }
  return out;
}

/**
 * A quantile of the ticks between two scrapes, linearly interpolated inside its bucket (ms).
 *
 * @param before Cumulative bucket counts at the start.
 * @param after At the end.
 * @param q The quantile (0..1).
 */
export function bucketQuantileMs(
  before: ReadonlyMap<number, number>,
  after: ReadonlyMap<number, number>,
  q: number,
): number {
  const bounds = [...after.keys()].sort((a, b) => a - b);
  const total = (after.get(Infinity) ?? 0) - (before.get(Infinity) ?? 0);
  if (total <= 0) return 0;
  const rank = q * total;
  let lower = 0;
  let below = 0;
  for (const le of bounds) {
    const cum = (after.get(le) ?? 0) - (before.get(le) ?? 0);
    if (cum >= rank) {
      if (le === Infinity) return lower * 1000;
      const inBucket = cum - below;
      const share = inBucket === 0 ? 1 : (rank - below) / inBucket;
      return Math.round((lower + (le - lower) * share) * 1e6) / 1000;
    }
    lower = le;
    below = cum;
  }
  return lower * 1000;
}

function judge(spec: RunSpec, load: WorldLoadReport): { pass: boolean; reasons: string[] } {
  const reasons: string[] = [];
  const who = spec.layout === "town" && load.outside !== undefined ? load.outside : load.all;
  const maxP99 = spec.layout === "town" ? 100 : 50;
  if (load.openAtEnd < spec.players) {
    reasons.push(`${spec.players - load.openAtEnd} connections closed`);
  }
  if (!spec.idle) {
    if (who.p99Ms > maxP99) reasons.push(`p99 ${who.p99Ms} ms > ${maxP99} ms`);
    if (spec.layout === "spread" && who.deliveredRatio < 0.97) {
      reasons.push(`delivered ${(who.deliveredRatio * 100).toFixed(1)} % < 97 %`);
    }
  }
  return { pass: reasons.length === 0, reasons };
}

/**
 * Runs one world run on fresh servers (a master and a cluster process, the generator process).
 *
 * @param spec Layout, mode, sealing, players and times.
 */
export async function runWorld(spec: RunSpec): Promise<WorldRun> {
  const world = worldFor(spec.players);
  const statusPort = await freePort();
  // Idle memory is read after a full collection (through the cluster's inspector), so it is what
  // the idle players hold, not the garbage their joins left.
  const inspectPort = spec.idle === true ? await freePort() : undefined;
  const clusterDenoFlags = [
    ...(spec.profileDir === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${spec.profileDir}`]),
    ...(inspectPort === undefined ? [] : [`--inspect=127.0.0.1:${inspectPort}`]),
  ];
  let servers: SustenetServers | undefined;
  let inspector: InspectorSession | undefined;
  try {
    servers = await startSustenetServers({
      sealed: spec.sealed,
      clusterExtraToml: fragmentsToml(spec, world),
      clusterStatusPort: statusPort,
      ...(clusterDenoFlags.length === 0 ? {} : { clusterDenoFlags }),
    });
    if (inspectPort !== undefined) {
      inspector = await InspectorSession.open(inspectPort);
      await inspector.measure();
    }
    const base = sampleProcess(servers.clusterPid);
    const order: WorldOrder = {
      masterPort: servers.masterPort,
      sealed: spec.sealed,
      players: spec.players,
      layout: spec.layout,
      hz: HZ,
      side: world.side,
      fragmentSize: spec.mode === "naive" ? world.side : WORLD_FRAGMENT_SIZE,
      viewDistance: WORLD_VIEW_DISTANCE,
      quantized: true,
      idle: spec.idle === true,
      joinConcurrency: 64,
      warmupMs: spec.warmupMs,
      windowMs: spec.windowMs,
    };
    await using load = BenchChild.spawn({
      name: `world load (${spec.label})`,
      command: Deno.execPath(),
      args: [
        "run",
        "-A",
        new URL("./world_load.ts", import.meta.url).pathname,
        JSON.stringify(
          order,
        ),
      ],
    });
    const joinDeadline = 60_000 + spec.players * 10;
    await load.waitForLine(/^WORLD_JOINED /, joinDeadline);
    await load.waitForLine(/^WORLD_WINDOW_START$/, spec.warmupMs + 30_000);
    const before = sampleProcess(servers.clusterPid);
    const bucketsBefore = await tickBuckets(statusPort);
    await load.waitForLine(/^WORLD_WINDOW_END$/, spec.windowMs + 30_000);
    const after = sampleProcess(servers.clusterPid);
    const bucketsAfter = await tickBuckets(statusPort);
    let heldRss: number | undefined;
    if (inspector !== undefined) {
      await inspector.measure();
      heldRss = sampleProcess(servers.clusterPid).rssBytes;
    }
    const done = await load.waitForLine(/^WORLD_DONE (.+)$/, 60_000);
    const report = JSON.parse(done[1]) as WorldLoadReport;
    const cpuMs = after.cpuMs - before.cpuMs;
    const wallMs = after.atMs - before.atMs;
    const { pass, reasons } = judge(spec, report);
    let profile: ProfileEntry[] | undefined;
    if (spec.profileDir !== undefined) {
      // SIGTERM: the cluster stops gracefully and Deno writes the profile as it exits.
      await servers.stop();
      servers = undefined;
      profile = await largestProfile(spec.profileDir);
    }
    return {
      ...(profile === undefined ? {} : { profile }),
      label: spec.label,
      layout: spec.layout,
      mode: spec.mode,
      sealed: spec.sealed,
      players: spec.players,
      idle: spec.idle === true,
      world: {
        ...world,
        fragmentSize: order.fragmentSize,
        viewDistance: WORLD_VIEW_DISTANCE,
      },
      load: report,
      clusterCpuPercent: Math.round(cpuMs / wallMs * 1000) / 10,
      cpuUsPerPosition: report.all.received === 0
        ? 0
        : Math.round(cpuMs * 1000 / report.all.received * 100) / 100,
      tickP50Ms: bucketQuantileMs(bucketsBefore, bucketsAfter, 0.5),
      tickP99Ms: bucketQuantileMs(bucketsBefore, bucketsAfter, 0.99),
      rssPerPlayerBytes: Math.round(
        ((heldRss ?? Math.max(before.rssBytes, after.rssBytes)) - base.rssBytes) / spec.players,
      ),
      pass,
      reasons,
    };
  } finally {
    inspector?.close();
    await servers?.stop();
  }
}

/** The top functions of the largest `.cpuprofile` in `dir`. */
async function largestProfile(dir: string): Promise<ProfileEntry[]> {
  const largest = await summariseLargestProfile(dir, 15, `file://${REPO_ROOT}`);
  if (largest === undefined) throw new ProfileRunError(`the cluster wrote no .cpuprofile`);
  return largest.top;
}

/** Table headers of {@linkcode worldRow}. */
export const WORLD_HEADERS: readonly string[] = [
  "run",
  "players",
  "world",
  "nbrs",
  "p50",
  "p99",
  "outside p99",
  "delivered",
  "down/player",
  "cpu",
  "µs/pos",
  "tick p50",
  "tick p99",
  "RSS/player",
  "joins/s",
  "gen lag p99",
  "verdict",
];

/** One table row. */
export function worldRow(r: WorldRun): string[] {
  const o = r.load.outside;
  return [
    r.label,
    String(r.players),
    `${r.world.side}² / ${r.world.fragmentSize}`,
    r.load.all.meanNeighbours.toFixed(1),
    `${r.load.all.p50Ms} ms`,
    `${r.load.all.p99Ms} ms`,
    o === undefined ? "-" : `${o.p99Ms} ms`,
    `${(r.load.all.deliveredRatio * 100).toFixed(1)} %`,
    `${(r.load.all.bytesInPerPlayerPerS / 1000).toFixed(2)} kB/s`,
    `${r.clusterCpuPercent} %`,
    String(r.cpuUsPerPosition),
    `${r.tickP50Ms} ms`,
    `${r.tickP99Ms} ms`,
    `${(r.rssPerPlayerBytes / 1024).toFixed(1)} KiB`,
    String(r.load.joinsPerS),
    `${r.load.generatorLagP99Ms} ms`,
    r.pass ? "pass" : `FAIL: ${r.reasons.join("; ")}`,
  ];
}

/** Options of {@linkcode runWorldBench}. */
export interface WorldBenchOptions {
  /** Quick mode: fixed small counts, short windows. */
  readonly quick: boolean;
  /** Also profile the cluster (`--cpu-prof`) in each layout at its count (spread, town, naive). */
  readonly profile?: boolean;
}

function goals(
  quick: boolean,
  max: number | undefined,
  confirmed: boolean,
  spread: WorldRun | undefined,
  town: WorldRun | undefined,
  idle: WorldRun | undefined,
): WorldGoal[] {
  const scale = quick ? "quick mode: not at the goal's scale" : undefined;
  const out: WorldGoal[] = [];
  out.push({
    goal: "≥ 5,000 players spread (sealed) with p99 ≤ 50 ms and ≥ 97 % delivered",
    measured: max === undefined
      ? "not searched"
      : `${max} players${confirmed ? "" : " (best probe; no confirmation held)"}`,
    ...(quick || max === undefined || !confirmed ? {} : { met: max >= 5000 }),
    ...(scale === undefined
      ? (max !== undefined && max < 5000 ? { note: "see the first failing probe's reasons" } : {})
      : { note: scale }),
  });
  const o = town?.load.outside;
  out.push({
    goal: "town: p99 ≤ 100 ms for everyone outside it",
    measured: o === undefined ? "not run" : `${o.p99Ms} ms at ${town?.players} players`,
    ...(o === undefined ? {} : { met: o.p99Ms <= 100 }),
  });
  const a = spread?.load.all;
  out.push({
    goal: "≤ 10 KB/s downstream per player at ~40 neighbours, 20 Hz",
    measured: a === undefined
      ? "not run"
      : `${(a.bytesInPerPlayerPerS / 1000).toFixed(2)} kB/s at ${a.meanNeighbours} neighbours`,
    ...(a === undefined ? {} : { met: a.bytesInPerPlayerPerS <= 10_000 }),
  });
  out.push({
    goal: "idle authenticated players ≤ 16 KiB each at 10,000",
    measured: idle === undefined
      ? "not run"
      : `${(idle.rssPerPlayerBytes / 1024).toFixed(1)} KiB at ${idle.players}`,
    ...(idle === undefined || idle.players < 10_000
      ? { note: "not at 10,000 players" }
      : { met: idle.rssPerPlayerBytes <= 16 * 1024 }),
  });
  out.push({
    goal: "joins ≥ 2,500/s",
    measured: idle === undefined ? "not run" : `${idle.load.joinsPerS}/s (${idle.players} joins)`,
    ...(idle === undefined ? {} : { met: idle.load.joinsPerS >= 2500 }),
  });
  return out;
}

/**
 * Runs the world part.
 *
 * @param options Quick or full.
 * @param log Progress lines.
 */
export async function runWorldBench(
  options: WorldBenchOptions,
  log: (line: string) => void,
): Promise<WorldResults> {
  const quick = options.quick;
  const runs: WorldRun[] = [];
  const probeTimes = quick
    ? { warmupMs: 1000, windowMs: 2000 }
    : { warmupMs: 2000, windowMs: 4000 };
  const confirmTimes = { warmupMs: 3000, windowMs: 10_000 };
  const run = async (spec: RunSpec): Promise<WorldRun> => {
    log(`world: ${spec.label}, ${spec.players} players …`);
    const r = await runWorld(spec);
    runs.push(r);
    log(`  ${formatTable(WORLD_HEADERS, [worldRow(r)]).split("\n")[1]}`);
    return r;
  };
  /** A search step: a run that cannot even complete (joins time out, the load dies) fails. */
  const attempt = async (spec: RunSpec): Promise<WorldRun | undefined> => {
    try {
      return await run(spec);
    } catch (error) {
      log(`  failed to run: ${error instanceof Error ? error.message : String(error)}`);
      return undefined;
    }
  };
  let n = 100;
  let max: number | undefined;
  let confirmed = false;
  let spread: WorldRun;
  if (quick) {
    spread = await run({
      label: "spread sealed",
      layout: "spread",
      mode: "interest",
      sealed: true,
      players: n,
      ...probeTimes,
    });
  } else {
    const search = new MaxClientsSearch({ start: 2500, min: 50, max: 20_000, growth: 1.4 });
    for (let p = search.next(); p !== undefined; p = search.next()) {
      const r = await attempt({
        label: "spread sealed (probe)",
        layout: "spread",
        mode: "interest",
        sealed: true,
        players: p,
        ...probeTimes,
      });
      search.record(p, r?.pass === true);
    }
    const best = search.best ?? 50;
    let held: WorldRun | undefined;
    for (const c of confirmationCandidates(best, 50)) {
      const r = await attempt({
        label: "spread sealed (confirm)",
        layout: "spread",
        mode: "interest",
        sealed: true,
        players: c,
        ...confirmTimes,
      });
      if (r === undefined) continue;
      // The last one run: if none holds, the rest of the part runs at the lowest count tried.
      held = r;
      if (r.pass) {
        confirmed = true;
        break;
      }
    }
    // Nothing completed at all: one small run, so the rest of the part has a count to use.
    spread = held ?? await run({
      label: "spread sealed",
      layout: "spread",
      mode: "interest",
      sealed: true,
      players: 50,
      ...confirmTimes,
    });
    n = spread.players;
    max = confirmed ? n : search.best;
  }
  const times = quick ? probeTimes : confirmTimes;
  await run({
    label: "spread plaintext",
    layout: "spread",
    mode: "interest",
    sealed: false,
    players: n,
    ...times,
  });
  const town = await run({
    label: "town sealed",
    layout: "town",
    mode: "interest",
    sealed: true,
    players: n,
    ...times,
  });
  // Everyone-sees-everyone builds N² entries a tick (5,000 players: 275 MB of frames a tick),
  // so the naive run is capped; above the cap, the interest-managed world runs at the same
  // count beside it.
  const naiveN = Math.min(n, NAIVE_MAX);
  if (naiveN < n) {
    await run({
      label: "spread sealed (naive's count)",
      layout: "spread",
      mode: "interest",
      sealed: true,
      players: naiveN,
      ...times,
    });
  }
  await run({
    label: "naive sealed (no interest mgmt)",
    layout: "spread",
    mode: "naive",
    sealed: true,
    players: naiveN,
    ...times,
  });
  const idle = await run({
    label: "idle sealed",
    layout: "spread",
    mode: "interest",
    sealed: true,
    players: quick ? 200 : 10_000,
    idle: true,
    warmupMs: quick ? 500 : 2000,
    windowMs: 1000,
  });
  if (options.profile === true) {
    const profiled = [
      { layout: "spread", mode: "interest", players: n },
      { layout: "town", mode: "interest", players: n },
      { layout: "spread", mode: "naive", players: naiveN },
    ] as const;
    for (const { layout, mode, players } of profiled) {
      const dir = await Deno.makeTempDir({ prefix: "sustenet_world_profile_" });
      try {
        const r = await run({
          label: `${mode === "naive" ? "naive" : layout} sealed (--cpu-prof)`,
          layout,
          mode,
          sealed: true,
          players,
          ...times,
          profileDir: dir,
        });
        for (const e of r.profile ?? []) {
          log(`    ${e.percent.toFixed(1).padStart(5)} %  ${e.functionName}  ${e.location}`);
        }
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    }
  }
  const comparison =
    `naive = the same world, players and walk at ${
      Math.min(n, NAIVE_MAX)
    } players (capped at ${NAIVE_MAX}: its frames grow with N²; the interest-managed world runs ` +
    `at that count too), sealed, with one ` +
    `fragment covering the whole world and no rate reduction (everyone is sent everyone's ` +
    `position every tick, as a server without interest management does); interest = 64-unit ` +
    `fragments, view distance 1, crowd threshold ${CROWD_THRESHOLD}. Colyseus StateView: not ` +
    `run (see docs/PERFORMANCE.md, "World (issue 23)").`;
  const result: WorldResults = {
    runs,
    ...(max === undefined ? {} : { maxSpreadSealed: max }),
    confirmed,
    goals: goals(quick, max, confirmed, spread, town, idle),
    comparison,
  };
  return result;
}

/** The world part's tables: runs, then goals. */
export function formatWorld(w: WorldResults): string {
  const lines = [
    `World (issue 23): 64-unit fragments, view distance 1, moves at ${HZ} Hz, cluster tick_hz ` +
    `${WORLD_TICK_HZ}, walkers at 1.4 units/s`,
    formatTable(WORLD_HEADERS, w.runs.map(worldRow)),
    "",
    w.comparison,
    "",
    formatTable(
      ["goal", "measured", "met"],
      w.goals.map((g) => [
        g.goal,
        g.measured,
        g.met === undefined
          ? `n/a${g.note === undefined ? "" : ` (${g.note})`}`
          : g.met
          ? "yes"
          : `MISSED${g.note === undefined ? "" : ` (${g.note})`}`,
      ]),
    ),
  ];
  return lines.join("\n");
}

if (import.meta.main) {
  const quick = Deno.args.includes("--quick");
  const result = await runWorldBench({ quick }, (line) => console.log(line));
  console.log(`\n${formatWorld(result)}`);
  const dir = new URL("./results/", import.meta.url);
  await Deno.mkdir(dir, { recursive: true });
  const file = new URL(`world-${new Date().toISOString().replaceAll(":", "-")}.json`, dir);
  await Deno.writeTextFile(file, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`wrote ${file.pathname}`);
}
