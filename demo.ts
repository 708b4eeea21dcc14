/**
 * `deno task demo`: a whole Sustenet game on this machine in a few seconds. It makes a
 * temporary directory with a fresh shared cluster key and configs, starts a master and two
 * clusters (running the example plugins `plugins/echo.ts` and `plugins/chat.ts`, sandboxed)
 * as child processes on 127.0.0.1 with free ports, waits for their ready lines, runs a few bot
 * clients in this process that list, auto-join, chat and echo, prints a summary, stops the
 * servers with SIGTERM and exits 0. `--keep` leaves the servers running until Ctrl-C.
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
import { formatBotSummary, startBots } from "./client/bots.ts";
import { formatClusterTable } from "./client/main.ts";
import { SustenetClient } from "./client/mod.ts";
import { generateKey } from "./shared/keys.ts";
import { setupLogging } from "./shared/logging.ts";
import type { ClusterInfo } from "./shared/protocol/packets.ts";
import { onShutdownSignal } from "./shared/shutdown_signals.ts";
import { freePort, type RoleProcess, spawnRole, waitForLine } from "./tests/_process.ts";

/** The clusters the demo starts. */
const CLUSTER_NAMES = ["cluster-a", "cluster-b"] as const;
/** Permissions of the master process: those of `deno task master`. */
const SERVER_FLAGS = ["--allow-net", "--allow-read", "--allow-write", "--allow-env"];
/** A cluster's, as `deno task cluster`'s: `--allow-run` starts its plugins' subprocesses. */
const CLUSTER_FLAGS = [...SERVER_FLAGS, "--allow-run"];
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

/** The master's and clusters' configs. */
function configs(
  ports: { master: number; status: number; clusters: readonly number[] },
): Map<string, string> {
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
`,
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

[cluster]
master_port = ${ports.master}
identity_key_name = ${tomlString(`${name.replace("-", "_")}_identity`)}
heartbeat_interval_ms = 250

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
interface Servers {
  readonly processes: RoleProcess[];
  masterPort: number;
  statusUrl: string | undefined;
}

async function startServers(dir: string, servers: Servers): Promise<void> {
  await generateKey(`${dir}/keys`, "cluster_key");
  const ports = {
    master: await freePort(),
    status: await freePort(),
    clusters: [await freePort(), await freePort()],
  };
  for (const [file, text] of configs(ports)) await Deno.writeTextFile(`${dir}/${file}`, text);

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

  const clusters = CLUSTER_NAMES.map((name) => {
    const process = spawnRole("cluster", ["--config", `${dir}/${name}.toml`], {
      denoFlags: CLUSTER_FLAGS,
    });
    servers.processes.push(process);
    return process;
  });
  await Promise.all(
    clusters.map((process, i) =>
      waitForLine(
        process,
        new RegExp(`^cluster ${CLUSTER_NAMES[i]} listening on `),
        READY_TIMEOUT_MS,
      )
    ),
  );
}

/** Waits until the master lists every demo cluster (they register right after starting). */
async function waitForClusters(observer: SustenetClient): Promise<void> {
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

/** Stops every server with SIGTERM (SIGKILL after a grace period) and waits for them. */
async function stopServers(servers: Servers): Promise<void> {
  await Promise.all(servers.processes.map((process) => process.close(5000)));
}

async function runDemo(options: DemoOptions, servers: Servers, dir: string): Promise<boolean> {
  const started = performance.now();
  console.log("Sustenet demo: starting a master and two clusters on 127.0.0.1…");
  await startServers(dir, servers);
  const observer = await SustenetClient.connect({ port: servers.masterPort });
  let clustersWhilePlaying: readonly ClusterInfo[] = [];
  let summaryLines: string[];
  let allJoined: boolean;
  try {
    await waitForClusters(observer);
    console.log(
      `servers ready in ${((performance.now() - started) / 1000).toFixed(1)} s; ` +
        `running ${options.bots} bots for ${options.seconds} s…`,
    );
    const run = startBots({
      master: { host: "127.0.0.1", port: servers.masterPort },
      count: options.bots,
      seconds: options.seconds,
      intervalMs: 200,
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
  const servers: Servers = { processes: [], masterPort: 0, statusUrl: undefined };
  let cleaning: Promise<void> | undefined;
  const cleanup = (): Promise<void> =>
    cleaning ??= (async () => {
      await stopServers(servers);
      await Deno.remove(dir, { recursive: true });
    })();
  // Ctrl-C or SIGTERM at any point stops the servers before the process exits.
  const removeSignals = onShutdownSignal(async (signal) => {
    console.log(`${signal}: stopping the servers`);
    await cleanup();
  });
  try {
    const ok = await runDemo(options, servers, dir);
    if (ok && options.keep) {
      console.log("--keep: the servers keep running; press Ctrl-C to stop them");
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
