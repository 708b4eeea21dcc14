/**
 * Fragments end to end: a real cluster with interest management on, and bots in a separate
 * load process moving at 20 Hz, once spread over a large world and once all in one fragment.
 * For each case it reports, measured inside the cluster over one window, the frames and bytes
 * per second the cluster sent and the p50 / p99 tick duration (`sustenet_cluster_tick_seconds`),
 * prints a table and writes `bench/results/fragments-<date>.json`.
 *
 * Run: `deno run -A bench/fragment_scenario.ts [--quick]` (1,000 bots, or 200 with `--quick`).
 * The same file is the load process (`--load <job json>`), spawned by the runner. It only
 * listens on loopback, never asserts timing, and never leaves a child or server running: every
 * run is bounded by deadlines (< 60 s full, < 20 s quick).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { type ClusterServer, startCluster } from "../cluster/mod.ts";
import { startMaster } from "../master/mod.ts";
import { generateKey } from "../shared/keys.ts";
import { encodePacket } from "../shared/protocol/codec.ts";
import { BenchChild } from "./child_process.ts";
import { closeAll, connectClients } from "./load_clients.ts";
import { machineInfo } from "./machine_info.ts";

/** The two layouts compared. */
type Layout = "spread" | "one-fragment";

/** What the runner asks the load process to do. */
interface LoadOrder {
  readonly masterPort: number;
  readonly bots: number;
  readonly layout: Layout;
  readonly hz: number;
  /** Moving time, ms; the process exits after it. */
  readonly durationMs: number;
}

/** What the load process reports when done (one `LOAD_DONE <json>` line). */
interface LoadReport {
  readonly movesSent: number;
  readonly framesReceived: number;
  readonly bytesReceived: number;
  readonly openClients: number;
}

/** One case's figures. */
interface CaseResult {
  readonly layout: Layout;
  readonly bots: number;
  readonly populatedFragments: number;
  readonly windowS: number;
  readonly framesOutPerS: number;
  readonly bytesOutPerS: number;
  readonly movesInPerS: number;
  readonly tickP50Ms: number;
  readonly tickP99Ms: number;
  readonly ticksMeasured: number;
  readonly load: LoadReport;
}

const HZ = 20;
/** World edge and fragment edge, in units: 32 × 32 fragments when spread. */
const WORLD = 1024;
const FRAGMENT_SIZE = 32;
const CROWD_THRESHOLD = 100;
const READY_TIMEOUT_MS = 30_000;
const DONE_PREFIX = "LOAD_DONE ";

/** The i-th point of a 2-D low-discrepancy sequence in [0, 1)²: even, repeatable placement. */
function spreadPoint(i: number): { readonly u: number; readonly v: number } {
  // Plastic-number (R2) sequence: no clumps, no PRNG, the same layout every run.
  return { u: (0.5 + 0.7548776662 * i) % 1, v: (0.5 + 0.5698402910 * i) % 1 };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------- the load process

/** Connects the bots, moves them in small circles around their homes, then reports. */
async function runLoad(order: LoadOrder): Promise<void> {
  const conns = await connectClients(
    { kind: "sustenet", masterHost: "127.0.0.1", masterPort: order.masterPort, sealed: false },
    order.bots,
    { concurrency: 32, readBufferBytes: 256 * 1024 },
  );
  let framesReceived = 0;
  let bytesReceived = 0;
  for (const conn of conns) {
    conn.startReading((_view, _offset, length) => {
      framesReceived++;
      bytesReceived += length + 4;
    });
  }
  // Spread: anywhere; one fragment: inside fragment (0, 0), clear of its edges.
  const span = order.layout === "spread" ? WORLD - 8 : FRAGMENT_SIZE - 8;
  const homes = conns.map((_, i) => {
    const { u, v } = spreadPoint(i);
    return { x: 4 + u * span, z: 4 + v * span };
  });
  console.log(`LOAD_READY ${conns.length}`);
  let movesSent = 0;
  let step = 0;
  const timer = setInterval(() => {
    step++;
    for (let i = 0; i < conns.length; i++) {
      const angle = step * 0.1 + i;
      const home = homes[i];
      // A fresh frame per send: the connection queues the array itself.
      const frame = encodePacket({
        kind: "Move",
        state: {
          x: home.x + 2 * Math.cos(angle),
          y: 0,
          z: home.z + 2 * Math.sin(angle),
          yaw: angle,
        },
      });
      if (conns[i].send(frame)) movesSent++;
    }
  }, 1000 / order.hz);
  await sleep(order.durationMs);
  clearInterval(timer);
  const report: LoadReport = {
    movesSent,
    framesReceived,
    bytesReceived,
    openClients: conns.filter((conn) => conn.isOpen).length,
  };
  console.log(`${DONE_PREFIX}${JSON.stringify(report)}`);
  await closeAll(conns);
}

// ---------------------------------------------------------------- the runner

interface Counts {
  readonly framesOut: number;
  readonly bytesOut: number;
  readonly movesIn: number;
  readonly at: number;
}

function counts(cluster: ClusterServer): Counts {
  const m = cluster.metrics;
  return {
    framesOut: m.total("framesOut"),
    bytesOut: m.total("bytesOut"),
    movesIn: m.movesAccepted.value + m.movesRejected.value,
    at: performance.now(),
  };
}

function populatedFragments(cluster: ClusterServer): number {
  const family = cluster.metrics.families().find((f) =>
    f.name === "sustenet_cluster_fragment_players"
  );
  return family === undefined ? 0 : [...family.samples()].length;
}

/** Runs one layout against a fresh in-process master and cluster. */
async function runCase(
  layout: Layout,
  bots: number,
  warmupMs: number,
  windowMs: number,
): Promise<CaseResult> {
  const keysDir = await Deno.makeTempDir({ prefix: "sustenet_fragments_" });
  try {
    await generateKey(keysDir, "cluster_key");
    await using master = await startMaster({
      port: 0,
      keysDir,
      handshakeTimeoutMs: 60_000,
      // Every bot comes from 127.0.0.1 through a few pipelining master connections (a trusted
      // gateway): lift the per-connection and per-address ticket limits.
      joinLimits: {
        connectionRatePerS: 1e6,
        connectionBurst: 1e6,
        reservationsPerConnection: 1e6,
        addressRatePerS: 1e6,
        addressBurst: 1e6,
        reservationsPerAddress: 1e6,
      },
    });
    await using cluster = await startCluster({
      port: 0,
      keysDir,
      master: { hostname: "127.0.0.1", port: master.addr.port },
      serverName: "bench-fragments",
      plaintext: true,
      handshakeTimeoutMs: 60_000,
      idleTimeoutMs: 0,
      maxQueueBytes: 16 * 1024 * 1024,
      tickHz: HZ,
      fragments: {
        size: FRAGMENT_SIZE,
        viewDistance: 1,
        bounds: { minX: 0, minZ: 0, maxX: WORLD, maxZ: WORLD },
        maxPlayersPerFragment: bots,
        crowdThreshold: CROWD_THRESHOLD,
      },
    });
    const deadline = performance.now() + READY_TIMEOUT_MS;
    while (master.registry.size === 0) {
      if (performance.now() > deadline) throw new Error("the cluster did not register");
      await sleep(20);
    }
    const order: LoadOrder = {
      masterPort: master.addr.port,
      bots,
      layout,
      hz: HZ,
      durationMs: warmupMs + windowMs + 500,
    };
    await using load = BenchChild.spawn({
      name: `load (${layout})`,
      command: Deno.execPath(),
      args: ["run", "-A", new URL(import.meta.url).pathname, "--load", JSON.stringify(order)],
    });
    await load.waitForLine(/^LOAD_READY \d+$/, READY_TIMEOUT_MS);
    await sleep(warmupMs);
    const before = counts(cluster);
    cluster.metrics.tickSeconds.reset();
    await sleep(windowMs);
    const after = counts(cluster);
    const ticks = cluster.metrics.tickSeconds;
    const seconds = (after.at - before.at) / 1000;
    const fragments = populatedFragments(cluster);
    const done = await load.waitForLine(/^LOAD_DONE (.+)$/, READY_TIMEOUT_MS);
    await load.waitExit(READY_TIMEOUT_MS);
    return {
      layout,
      bots,
      populatedFragments: fragments,
      windowS: round(seconds, 2),
      framesOutPerS: Math.round((after.framesOut - before.framesOut) / seconds),
      bytesOutPerS: Math.round((after.bytesOut - before.bytesOut) / seconds),
      movesInPerS: Math.round((after.movesIn - before.movesIn) / seconds),
      tickP50Ms: round(ticks.quantile(0.5) * 1000, 3),
      tickP99Ms: round(ticks.quantile(0.99) * 1000, 3),
      ticksMeasured: ticks.count,
      load: JSON.parse(done[1]) as LoadReport,
    };
  } finally {
    await Deno.remove(keysDir, { recursive: true });
  }
}

function round(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

function printTable(results: readonly CaseResult[]): void {
  const rows = [
    [
      "layout",
      "bots",
      "fragments",
      "frames out/s",
      "MB out/s",
      "moves in/s",
      "tick p50",
      "tick p99",
    ],
    ...results.map((r) => [
      r.layout,
      String(r.bots),
      String(r.populatedFragments),
      String(r.framesOutPerS),
      (r.bytesOutPerS / 1e6).toFixed(2),
      String(r.movesInPerS),
      `${r.tickP50Ms} ms`,
      `${r.tickP99Ms} ms`,
    ]),
  ];
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  for (const row of rows) console.log(row.map((cell, i) => cell.padStart(widths[i])).join("  "));
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: { quick: { type: "boolean", default: false }, load: { type: "string" } },
  });
  if (values.load !== undefined) {
    await runLoad(JSON.parse(values.load) as LoadOrder);
    return;
  }
  const quick = values.quick;
  const bots = quick ? 200 : 1000;
  const [warmupMs, windowMs] = quick ? [1000, 3000] : [2000, 8000];
  const startedAt = new Date();
  const results: CaseResult[] = [];
  for (const layout of ["spread", "one-fragment"] as const) {
    console.error(`fragments: ${layout}, ${bots} bots at ${HZ} Hz…`);
    results.push(await runCase(layout, bots, warmupMs, windowMs));
  }
  printTable(results);
  const file = new URL(
    `./results/fragments-${startedAt.toISOString().replaceAll(":", "-")}.json`,
    import.meta.url,
  );
  await Deno.mkdir(new URL("./results/", import.meta.url), { recursive: true });
  const report = {
    version: 1,
    startedAt: startedAt.toISOString(),
    mode: quick ? "quick" : "full",
    machine: await machineInfo(),
    settings: {
      hz: HZ,
      world: WORLD,
      fragmentSize: FRAGMENT_SIZE,
      crowdThreshold: CROWD_THRESHOLD,
    },
    results,
  };
  await Deno.writeTextFile(file, `${JSON.stringify(report, null, 2)}\n`);
  console.log(`wrote ${file.pathname}`);
}

if (import.meta.main) await main();
