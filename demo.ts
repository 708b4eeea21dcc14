/**
 * `deno task demo`: a whole Sustenet game on this machine in a few seconds. It makes a
 * temporary directory with a fresh shared cluster key and configs, starts a master and two
 * clusters (running the example plugins `plugins/echo.ts` and `plugins/chat.ts`, sandboxed,
 * with fragments on and a WebSocket listener each) as child processes on 127.0.0.1 with free
 * ports, serves the live browser page (`web/`), waits for the ready lines, runs a few bot
 * clients in this process that list, auto-join, walk, chat and echo, prints a summary, stops
 * the servers with SIGTERM and exits 0. `--keep` leaves the servers, the page and walking bots
 * running until Ctrl-C.
 *
 * ```
 * deno task demo [--bots N] [--seconds S] [--keep]
 * ```
 *
 * It must never leave a child process or the temporary directory behind (whatever fails), and
 * exits non-zero with the reason (and the servers' stderr) when anything does.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { type BotScenario, BUILTIN_SCENARIOS, walkScenario } from "./client/bot_scenarios.ts";
import { type BotRun, formatBotSummary, startBots } from "./client/bots.ts";
import { formatClusterTable } from "./client/main.ts";
import { SustenetClient } from "./client/mod.ts";
import { generateKey } from "./shared/keys.ts";
import { setupLogging } from "./shared/logging.ts";
import type { ClusterInfo } from "./shared/protocol/packets.ts";
import { freePort, type RoleProcess, spawnRole, waitForLine } from "./tests/_process.ts";
import { type DemoPageServer, serveDemoPage } from "./web/demo_web_server.ts";

/** The clusters the demo starts. */
const CLUSTER_NAMES = ["cluster-a", "cluster-b"] as const;
/** Permissions of the master process: those of `deno task master`. */
const SERVER_FLAGS = ["--allow-net", "--allow-read", "--allow-write", "--allow-env"];
/** A cluster's, as `deno task cluster`'s: `--allow-run` starts its plugins' subprocesses. */
const CLUSTER_FLAGS = [...SERVER_FLAGS, "--allow-run"];
/** Side of a fragment in the demo's clusters, in world units. */
export const DEMO_FRAGMENT_SIZE = 64;
/**
 * What the demo's bots do: wander in the first fragment, in the page's x/y view, at about
 * 5 units a second, chatting and echoing meanwhile (the `mixed` scenario).
 */
export const DEMO_BOT_SCENARIO: BotScenario = walkScenario({
  area: DEMO_FRAGMENT_SIZE,
  step: 0.5,
  moveIntervalMs: 100,
  ground: "y",
  alongside: BUILTIN_SCENARIOS.mixed,
});
/** The WebSocket path of the demo's servers. */
const WS_PATH = "/sustenet";
/** Longest wait for a server's ready line, in ms. */
const READY_TIMEOUT_MS = 15_000;

/** The demo's settings from the command line. */
export interface DemoOptions {
  /** Bots to run. */
  readonly bots: number;
  /** How long the bots play, in seconds. */
  readonly seconds: number;
  /** Keep the servers running after the summary, until Ctrl-C. */
  readonly keep: boolean;
}

/**
 * Parses the demo's command line.
 *
 * @param args The arguments after the script.
 * @throws {TypeError} For an unknown flag or a value out of range.
 *
 * @example
 * ```ts
 * import { parseDemoArgs } from "./demo.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(parseDemoArgs([]), { bots: 6, seconds: 4, keep: false });
 * assert.deepEqual(parseDemoArgs(["--bots", "2", "--keep"]), { bots: 2, seconds: 4, keep: true });
 * assert.throws(() => parseDemoArgs(["--bots", "0"]), TypeError);
 * ```
 */
export function parseDemoArgs(args: readonly string[]): DemoOptions {
  const { values } = parseArgs({
    args: [...args],
    strict: true,
    options: {
      bots: { type: "string" },
      seconds: { type: "string" },
      keep: { type: "boolean" },
    },
  });
  const bots = Number(values.bots ?? 6);
  const seconds = Number(values.seconds ?? 4);
  if (!Number.isInteger(bots) || bots < 1 || bots > 200) {
    throw new TypeError(`--bots must be an integer 1..200, got ${values.bots}`);
  }
  if (!Number.isFinite(seconds) || seconds <= 0 || seconds > 3600) {
    throw new TypeError(`--seconds must be a number in (0, 3600], got ${values.seconds}`);
  }
  return { bots, seconds, keep: values.keep === true };
}

const DEMO_USAGE = `usage: deno task demo [--bots N] [--seconds S] [--keep]

Starts a master and two clusters (echo and chat plugins) on 127.0.0.1, runs bots against them,
prints a summary and stops everything.

  --bots N       bots to run, 1..200 (default 6)
  --seconds S    how long the bots play, (0, 3600] (default 4)
  --keep         leave the servers running after the summary, until Ctrl-C (default off)
  -h, --help     this text`;

/** A TOML string literal. */
function tomlString(text: string): string {
  return JSON.stringify(text); // JSON escapes are valid TOML basic-string escapes
}

/** The ports of a demo deployment. */
interface DemoPorts {
  readonly master: number;
  readonly masterWs: number;
  readonly status: number;
  readonly clusters: readonly number[];
  readonly clusterWs: readonly number[];
}

/** The WebSocket keys of a server: listener on, on `port`, open to the demo page's origin. */
function wsKeys(port: number, origin: string | undefined): string {
  return `ws_enabled = true
ws_port = ${port}
ws_path = ${tomlString(WS_PATH)}
ws_allowed_origins = [${origin === undefined ? "" : tomlString(origin)}]
`;
}

/** The master's and clusters' configs. */
function configs(ports: DemoPorts, origin: string | undefined): Map<string, string> {
  const plugin = (file: string) => new URL(`./plugins/${file}`, import.meta.url).href;
  const files = new Map<string, string>();
  files.set(
    "master.toml",
    `[all]
server_name = "demo-master"
port = ${ports.master}
keys_dir = "keys"
status_port = ${ports.status}
log_level = "warning"
${wsKeys(ports.masterWs, origin)}`,
  );
  CLUSTER_NAMES.forEach((name, i) => {
    files.set(
      `${name}.toml`,
      `[all]
server_name = ${tomlString(name)}
port = ${ports.clusters[i]}
keys_dir = "keys"
status_enabled = false
log_level = "warning"
${wsKeys(ports.clusterWs[i], origin)}
[cluster]
master_port = ${ports.master}
identity_key_name = ${tomlString(`${name.replace("-", "_")}_identity`)}
heartbeat_interval_ms = 250

[cluster.fragments]
enabled = true
size = ${DEMO_FRAGMENT_SIZE}

[[cluster.plugins]]
url = ${tomlString(plugin("echo.ts"))}

[[cluster.plugins]]
url = ${tomlString(plugin("chat.ts"))}
`,
    );
  });
  return files;
}

/** The running servers and where they are. */
export interface DemoServers {
  /** Every server process (the master first, then the clusters). */
  readonly processes: RoleProcess[];
  /** The cluster processes by name (replaced when one is restarted). */
  readonly clusters: Map<string, RoleProcess>;
  /** The master's TCP port. */
  masterPort: number;
  /** The master's WebSocket URL. */
  masterWsUrl: string;
  /** The master's status page. */
  statusUrl: string | undefined;
  /** The live browser page, unless it could not be built. */
  page: DemoPageServer | undefined;
}

/** Empty {@linkcode DemoServers}, filled by {@linkcode startDemoServers}. */
export function emptyDemoServers(): DemoServers {
  return {
    processes: [],
    clusters: new Map(),
    masterPort: 0,
    masterWsUrl: "",
    statusUrl: undefined,
    page: undefined,
  };
}

/** Starts a cluster of the demo from its config in `dir` and waits for its ready line. */
async function startCluster(dir: string, servers: DemoServers, name: string): Promise<void> {
  const process = spawnRole("cluster", ["--config", `${dir}/${name}.toml`], {
    denoFlags: CLUSTER_FLAGS,
  });
  servers.processes.push(process);
  servers.clusters.set(name, process);
  await waitForLine(process, new RegExp(`^cluster ${name} listening on `), READY_TIMEOUT_MS);
}

/**
 * Stops a demo cluster (SIGTERM: it drains its players) and starts it again on the same ports
 * with the same keys, as an operator restarting it would.
 *
 * @param dir The demo's directory.
 * @param servers The running servers.
 * @param name `"cluster-a"` or `"cluster-b"`.
 */
export async function restartDemoCluster(
  dir: string,
  servers: DemoServers,
  name: string,
): Promise<void> {
  const old = servers.clusters.get(name);
  if (old === undefined) throw new Error(`no demo cluster ${name}`);
  await old.close(5000);
  servers.processes.splice(servers.processes.indexOf(old), 1);
  await startCluster(dir, servers, name);
}

/**
 * Starts the demo's master, clusters and browser page in `dir` (a fresh temporary directory).
 *
 * @param dir Where keys and configs go.
 * @param servers Filled in as servers start, so a failure halfway still stops what started.
 */
export async function startDemoServers(dir: string, servers: DemoServers): Promise<void> {
  await generateKey(`${dir}/keys`, "cluster_key");
  const ports: DemoPorts = {
    master: await freePort(),
    masterWs: await freePort(),
    status: await freePort(),
    clusters: [await freePort(), await freePort()],
    clusterWs: [await freePort(), await freePort()],
  };
  servers.masterWsUrl = `ws://127.0.0.1:${ports.masterWs}${WS_PATH}`;
  try {
    servers.page = await serveDemoPage({
      masterUrl: servers.masterWsUrl,
      fragmentSize: DEMO_FRAGMENT_SIZE,
    });
  } catch (error) {
    // The game runs without the page (bundling needs esbuild from npm the first time).
    console.log(
      `demo page unavailable: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  for (const [file, text] of configs(ports, servers.page?.origin)) {
    await Deno.writeTextFile(`${dir}/${file}`, text);
  }

  const master = spawnRole("master", ["--config", `${dir}/master.toml`], {
    denoFlags: SERVER_FLAGS,
  });
  servers.processes.push(master);
  const ready = await waitForLine(
    master,
    /^master listening on (\S+):(\d+)(?: status (http:\/\/\S+))?/,
    READY_TIMEOUT_MS,
  );
  servers.masterPort = Number(ready[2]);
  servers.statusUrl = ready[3];

  await Promise.all(CLUSTER_NAMES.map((name) => startCluster(dir, servers, name)));
}

/**
 * Waits until the master lists every demo cluster (they register right after starting).
 *
 * @param observer A client connected to the master.
 */
export async function waitForDemoClusters(observer: SustenetClient): Promise<void> {
  const deadline = performance.now() + READY_TIMEOUT_MS;
  while (true) {
    const listed = await observer.listClusters();
    if (CLUSTER_NAMES.every((name) => listed.some((c) => c.name === name))) return;
    if (performance.now() > deadline) {
      throw new Error(`the clusters did not register with the master in time`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * Stops the page and every server with SIGTERM (SIGKILL after a grace period), waiting for them.
 *
 * @param servers The running servers.
 */
export async function stopDemoServers(servers: DemoServers): Promise<void> {
  await servers.page?.close();
  await Promise.all(servers.processes.map((process) => process.close(5000)));
}

async function runDemo(
  options: DemoOptions,
  servers: DemoServers,
  dir: string,
): Promise<boolean> {
  const started = performance.now();
  console.log("Sustenet demo: starting a master and two clusters on 127.0.0.1…");
  await startDemoServers(dir, servers);
  const observer = await SustenetClient.connect({ port: servers.masterPort });
  let clustersWhilePlaying: readonly ClusterInfo[] = [];
  let summaryLines: string[];
  let allJoined: boolean;
  try {
    await waitForDemoClusters(observer);
    console.log(
      `servers ready in ${((performance.now() - started) / 1000).toFixed(1)} s; ` +
        `running ${options.bots} bots for ${options.seconds} s…`,
    );
    const run = startBots({
      master: { host: "127.0.0.1", port: servers.masterPort },
      count: options.bots,
      seconds: options.seconds,
      intervalMs: 200,
      scenario: DEMO_BOT_SCENARIO,
    });
    await run.allJoined;
    // Clusters report their load every 250 ms: list once the reports include the bots.
    await new Promise((resolve) => setTimeout(resolve, Math.min(600, options.seconds * 500)));
    clustersWhilePlaying = await observer.listClusters();
    const summary = await run.done;
    summaryLines = formatBotSummary(summary);
    allJoined = summary.status.joined === options.bots;
  } finally {
    await observer.close();
  }

  let health = "";
  if (servers.statusUrl !== undefined) {
    const response = await fetch(new URL("health", servers.statusUrl));
    const body = await response.json() as { status?: string; clusters?: number };
    health = ` (health: ${body.status}, ${body.clusters} clusters)`;
  }
  console.log("");
  console.log("== Sustenet demo summary ==");
  console.log(`master: 127.0.0.1:${servers.masterPort}`);
  console.log(`master status page: ${servers.statusUrl ?? "disabled"}${health}`);
  if (servers.page !== undefined) {
    console.log(`demo page: ${servers.page.url} (master over WebSocket: ${servers.masterWsUrl})`);
  }
  console.log("clusters while the bots played:");
  for (const line of formatClusterTable(clustersWhilePlaying)) console.log(`  ${line}`);
  console.log("bots:");
  for (const line of summaryLines.slice(0, -1)) console.log(`  ${line}`);
  console.log(`totals: ${summaryLines.at(-1)}`);
  console.log(
    `demo ${allJoined ? "finished" : "FAILED: not every bot joined"} in ` +
      `${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
  return allJoined;
}

/**
 * Calls `stop` on the first SIGINT / SIGTERM, then exits 0 (1 if stopping failed). Ctrl-C in a
 * terminal reaches the demo twice (the terminal signals the whole process group, and
 * `deno task` forwards the signal to its child too), so the second signal is not a second
 * press: only a third one exits at once (130), leaving whatever has not stopped yet.
 *
 * @param stop Stops the servers.
 * @returns A function that removes the handlers.
 */
function onDemoSignal(stop: (signal: Deno.Signal) => Promise<void>): () => void {
  let received = 0;
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
  const handlers = signals.map((signal) => {
    const handler = () => {
      received++;
      if (received === 3) Deno.exit(130);
      if (received > 1) return;
      stop(signal).then(
        () => Deno.exit(0),
        (error) => {
          console.error(`error while stopping: ${error instanceof Error ? error.message : error}`);
          Deno.exit(1);
        },
      );
    };
    Deno.addSignalListener(signal, handler);
    return [signal, handler] as const;
  });
  return () => {
    for (const [signal, handler] of handlers) Deno.removeSignalListener(signal, handler);
  };
}

/**
 * Runs the demo and returns the exit code.
 *
 * @param args The arguments after the script.
 *
 * @example A bad flag is exit code 2, before anything starts
 * ```ts
 * import { main } from "./demo.ts";
 * import assert from "node:assert/strict";
 *
 * const error = console.error;
 * console.error = () => {};
 * try {
 *   assert.equal(await main(["--bots", "many"]), 2);
 * } finally {
 *   console.error = error;
 * }
 * ```
 */
export async function main(args: readonly string[]): Promise<number> {
  if (args.includes("--help") || args.includes("-h")) {
    console.log(DEMO_USAGE);
    return 0;
  }
  let options: DemoOptions;
  try {
    options = parseDemoArgs(args);
  } catch (error) {
    if (!(error instanceof TypeError)) throw error;
    console.error(`${error.message}\n${DEMO_USAGE}`);
    return 2;
  }
  await setupLogging({ level: "warning", role: "client" });
  const dir = await Deno.makeTempDir({ prefix: "sustenet_demo_" });
  const servers = emptyDemoServers();
  let cleaning: Promise<void> | undefined;
  let walkers: BotRun | undefined;
  const cleanup = (): Promise<void> =>
    cleaning ??= (async () => {
      walkers?.stop();
      await walkers?.done;
      await stopDemoServers(servers);
      await Deno.remove(dir, { recursive: true });
    })();
  // Ctrl-C or SIGTERM at any point stops the servers before the process exits.
  const removeSignals = onDemoSignal(async (signal) => {
    console.log(`${signal}: stopping the servers`);
    await cleanup();
  });
  try {
    const ok = await runDemo(options, servers, dir);
    if (ok && options.keep) {
      // Bots that walk until Ctrl-C, so the page has players to show.
      walkers = startBots({
        master: { host: "127.0.0.1", port: servers.masterPort },
        count: options.bots,
        seconds: 3600,
        intervalMs: 5000, // a chat line each 5 s: people can still read the chat
        scenario: DEMO_BOT_SCENARIO,
      });
      const page = servers.page === undefined ? "" : `, open ${servers.page.url}`;
      console.log(
        `--keep: the servers and ${options.bots} walking bots keep running${page}; ` +
          "press Ctrl-C to stop them",
      );
      // The signal handler stops the servers and exits; until then, wait.
      await new Promise<never>(() => {});
    }
    return ok ? 0 : 1;
  } catch (error) {
    console.error(`demo failed: ${error instanceof Error ? error.message : String(error)}`);
    for (const process of servers.processes) {
      const stderr = process.stderrText().trim();
      if (stderr !== "") console.error(`--- server stderr ---\n${stderr}`);
    }
    return 1;
  } finally {
    removeSignals();
    await cleanup();
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
