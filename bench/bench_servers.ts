/**
 * The servers a bench run measures, each started as its own child process and stopped in
 * `stop()`: the raw Deno relay, a Sustenet master plus the bench cluster
 * (`bench/cluster_server.ts`, sealed or plaintext, its echo plugin in-process or sandboxed, in a
 * temporary directory with fresh keys and configs), and the Colyseus server under Node.
 *
 * It must never leave a process or a temporary directory behind: every start failure stops
 * what was already started, and `stop()` is safe to call twice.
 *
 * @module
 */

import { BenchChild } from "./child_process.ts";
import { freePort } from "../tests/_process.ts";
import { generateKey } from "../shared/keys.ts";
import { MasterTicketSource } from "./sustenet_join.ts";
import { SustenetError } from "../shared/errors.ts";
import type { LoadTarget } from "./load_job.ts";
import type { ColyseusTarget } from "./run_generator.ts";

/** Absolute path of the repository root. */
export const REPO_ROOT: string = decodeURIComponent(new URL("../", import.meta.url).pathname);

/** The master's section: tickets and heartbeats that outlast the longest run. */
/**
 * The load generator's clients all come from 127.0.0.1 and get their tickets through a few
 * pipelining master connections (a trusted gateway, where production players come from many
 * connections and addresses): the per-connection and per-address ticket limits are lifted so a
 * join storm measures the servers.
 */
const MASTER_SECTION = "[master]\nticket_ttl_ms = 600000\nheartbeat_timeout_ms = 10000\n" +
  "ticket_rate_per_conn = 1000000\nticket_burst_per_conn = 1000000\n" +
  "reservations_per_conn = 1000000\nticket_rate_per_addr = 1000000\n" +
  "ticket_burst_per_addr = 1000000\nreservations_per_addr = 1000000";

/**
 * The echo plugin loaded by URL into a Worker with the default permissions (none); the bench
 * cluster then leaves out its in-process echo (see `bench/cluster_server.ts`).
 */
const URL_ECHO = `\n\n[[cluster.plugins]]\nurl = "${
  new URL("../plugins/echo.ts", import.meta.url).href
}"\nname = "echo"`;
// A trusted plugin runs in a Worker; an untrusted one (the default) in its own subprocess.
const SANDBOXED_ECHO = `${URL_ECHO}\ntrusted = true`;
const SUBPROCESS_ECHO = URL_ECHO;

/**
 * The bench cluster's per-player limits, lifted: the echo scenario is a closed-loop throughput
 * test whose clients each send thousands of commands a second (a flood by the production
 * defaults). The limiter still weighs every frame, so its cost stays in the figures.
 */
const UNLIMITED_PLAYERS = "\nplayer_commands_per_s = 1000000\nplayer_commands_burst = 1000000" +
  "\nplayer_command_bytes_per_s = 1073741824\nplayer_command_bytes_burst = 1073741824" +
  "\nplayer_moves_per_s = 1000000\nplayer_moves_burst = 1000000";

/** How long a server may take to print its ready line, ms. */
const READY_TIMEOUT_MS = 30_000;

/** A started server (or group of servers). */
export interface BenchServer extends AsyncDisposable {
  /** Label for reports (`raw`, `sustenet-sealed`, …). */
  readonly label: string;
  /** Processes whose CPU and RSS are the server's. */
  readonly pids: readonly number[];
  /** Where a load generator connects. */
  readonly target: LoadTarget | ColyseusTarget;
  /** The measured server's `/metrics` (Sustenet clusters), for its event-loop lag. */
  readonly metricsUrl?: string;
  /** Stops every process and removes temporary files. */
  stop(): Promise<void>;
}

/** The raw relay. */
export interface RawRelayServer extends BenchServer {
  /** Its port on 127.0.0.1. */
  readonly port: number;
  /** The relay, frames only. */
  readonly target: Extract<LoadTarget, { readonly kind: "raw" }>;
}

/** A Sustenet master and one bench cluster. */
export interface SustenetServers extends BenchServer {
  /** The master's port on 127.0.0.1. */
  readonly masterPort: number;
  /** The cluster process (the one measured). */
  readonly clusterPid: number;
  /** The master process (the join storm's CPU budget reads it). */
  readonly masterPid: number;
  /** `false` when the cluster runs with `plaintext = true`. */
  readonly sealed: boolean;
  /** Where the cluster's echo plugin runs. */
  readonly echo: EchoPluginMode;
  /** The cluster's stdout lines so far (e.g. `--v8-flags=--trace-gc` output). */
  clusterStdout(): readonly string[];
  /** The master, with the cluster's sealing. */
  readonly target: Extract<LoadTarget, { readonly kind: "sustenet" }>;
}

/** The Colyseus server. */
export interface ColyseusServer extends BenchServer {
  /** Its port on 127.0.0.1. */
  readonly port: number;
  /** The server, for the Node generator. */
  readonly target: ColyseusTarget;
}

/** The cluster never registered with the master in time. */
export class BenchServerError extends SustenetError {
  /** @param message What did not start. */
  constructor(message: string) {
    super("bench_server_failed", message);
  }
}

function denoScript(name: string, script: string, args: readonly string[], flags: string[] = []) {
  return BenchChild.spawn({
    name,
    command: Deno.execPath(),
    args: ["run", "-A", ...flags, `${REPO_ROOT}${script}`, ...args],
    cwd: REPO_ROOT,
    side: "server",
  });
}

/** Waits for a one-process server's ready line; stops the child if it never comes. */
async function singleProcess<T extends LoadTarget | ColyseusTarget>(
  child: BenchChild,
  ready: RegExp,
  label: string,
  target: (match: RegExpMatchArray) => T,
): Promise<BenchServer & { readonly target: T; readonly port: number }> {
  try {
    const found = target(await child.waitForLine(ready, READY_TIMEOUT_MS));
    const stop = async () => {
      await child.stop();
    };
    const port = "port" in found ? found.port : 0;
    return { label, target: found, port, pids: [child.pid], stop, [Symbol.asyncDispose]: stop };
  } catch (error) {
    await child.stop();
    throw error;
  }
}

/**
 * Starts the raw relay (`bench/raw_relay.ts`).
 *
 * @example
 * ```ts
 * import { startRawRelayServer } from "./bench_servers.ts";
 * import assert from "node:assert/strict";
 *
 * await using relay = await startRawRelayServer();
 * assert.ok(relay.port > 0 && relay.pids.length === 1);
 * assert.equal(relay.target.kind, "raw");
 * ```
 */
export function startRawRelayServer(): Promise<RawRelayServer> {
  const child = denoScript("raw relay", "bench/raw_relay.ts", ["--port", "0"]);
  return singleProcess(child, /raw relay listening on [^:]+:(\d+)/, "raw", (match) => ({
    kind: "raw",
    host: "127.0.0.1",
    port: Number(match[1]),
  }));
}

/**
 * How the bench cluster runs `plugins/echo.ts`: handed to `startCluster` as a trusted object
 * (`in-process`), or loaded by URL from `[[cluster.plugins]]` with no permissions into a
 * Worker (`sandboxed`, marked `trusted`) or its own `deno run` subprocess (`subprocess`, the
 * default for untrusted plugins).
 */
export type EchoPluginMode = "in-process" | "sandboxed" | "subprocess";

/** Options of {@linkcode startSustenetServers}. */
export interface SustenetServersOptions {
  /** Seal client traffic (`false` = `plaintext = true`). */
  readonly sealed: boolean;
  /**
   * Where the echo plugin runs.
   *
   * @default {"in-process"}
   */
  readonly echo?: EchoPluginMode;
  /**
   * The cluster also listens on WebSocket and the generator's clients join over it.
   *
   * @default {false}
   */
  readonly webSocket?: boolean;
  /** Extra Deno flags for the cluster process (e.g. `--cpu-prof`). */
  readonly clusterDenoFlags?: string[];
  /** Extra Deno flags for the master process (e.g. `--cpu-prof`). */
  readonly masterDenoFlags?: string[];
  /** Working directory of the cluster process (where `--cpu-prof` writes). */
  readonly clusterCwd?: string;
  /**
   * TOML appended after the `[cluster]` keys (e.g. a `[cluster.fragments]` table; the world
   * part's interest management).
   */
  readonly clusterExtraToml?: string;
  /** Run the cluster's status server on this loopback port (`/metrics`); off when absent. */
  readonly clusterStatusPort?: number;
}

/**
 * A role's Config.toml for the bench: loopback, a status server only where asked, quiet logs, timeouts long
 * enough that an overloaded run is measured rather than cut off, and no per-address pending
 * limit to speak of (every generated client comes from 127.0.0.1, many handshakes at once).
 */
function benchConfig(
  name: string,
  port: number,
  section: string,
  allExtra = "",
  statusPort?: number,
): string {
  const status = statusPort === undefined
    ? "status_enabled = false"
    : `status_enabled = true\nstatus_port = ${statusPort}`;
  return `[all]
server_name = "${name}"
port = ${port}${allExtra}
keys_dir = "keys"
${status}
log_level = "warning"
idle_timeout_ms = 600000
handshake_timeout_ms = 60000
max_queue_bytes = 8388608
max_pending_per_address = 4096

${section}
`;
}

/**
 * Starts a master and the bench cluster in a fresh temporary directory, and waits until the
 * cluster is listed by the master.
 *
 * @param options Sealed or plaintext, profiler flags.
 */
export async function startSustenetServers(
  options: SustenetServersOptions,
): Promise<SustenetServers> {
  const dir = await Deno.makeTempDir({ prefix: "sustenet_bench_" });
  const children: BenchChild[] = [];
  const stop = async () => {
    await Promise.all(children.map((child) => child.stop()));
    children.length = 0;
    await Deno.remove(dir, { recursive: true }).catch((error: unknown) => {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    });
  };
  try {
    await generateKey(`${dir}/keys`, "bench");
    const masterPort = await freePort();
    await Deno.writeTextFile(
      `${dir}/master.toml`,
      benchConfig("bench-master", masterPort, MASTER_SECTION),
    );
    const master = denoScript(
      "master",
      "master/main.ts",
      ["--config", `${dir}/master.toml`],
      options.masterDenoFlags,
    );
    children.push(master);
    await master.waitForLine(/^master listening on /, READY_TIMEOUT_MS);

    const clusterPort = await freePort();
    const echo = options.echo ?? "in-process";
    const clusterSection = `[cluster]\nkey_name = "bench"\nmaster_port = ${masterPort}\n` +
      `plaintext = ${!options.sealed}` + UNLIMITED_PLAYERS +
      (echo === "sandboxed" ? SANDBOXED_ECHO : echo === "subprocess" ? SUBPROCESS_ECHO : "") +
      (options.clusterExtraToml === undefined ? "" : `\n${options.clusterExtraToml}`);
    const wsPart = options.webSocket === true
      ? `\nws_enabled = true\nws_port = ${await freePort()}`
      : "";
    // The cluster runs its status server as in production: its /metrics carries the event-loop
    // lag the generator reads around each window.
    const statusPort = options.clusterStatusPort ?? await freePort();
    await Deno.writeTextFile(
      `${dir}/cluster.toml`,
      benchConfig("bench-cluster", clusterPort, clusterSection, wsPart, statusPort),
    );
    const cluster = BenchChild.spawn({
      name: "cluster",
      command: Deno.execPath(),
      args: [
        "run",
        "-A",
        ...(options.clusterDenoFlags ?? []),
        `${REPO_ROOT}bench/cluster_server.ts`,
        "--config",
        `${dir}/cluster.toml`,
      ],
      cwd: options.clusterCwd ?? REPO_ROOT,
      side: "server",
    });
    children.push(cluster);
    await cluster.waitForLine(/^cluster \S+ listening on /, READY_TIMEOUT_MS);
    await waitUntilListed(masterPort);
    return {
      label: `sustenet-${options.webSocket === true ? "ws-" : ""}${
        options.sealed ? "sealed" : "plaintext"
      }`,
      target: {
        kind: "sustenet",
        masterHost: "127.0.0.1",
        masterPort,
        sealed: options.sealed,
        ...(options.webSocket === true ? { webSocket: true } : {}),
      },
      masterPort,
      metricsUrl: `http://127.0.0.1:${statusPort}/metrics`,
      clusterPid: cluster.pid,
      masterPid: master.pid,
      clusterStdout: () => cluster.stdoutLines,
      sealed: options.sealed,
      echo,
      pids: [cluster.pid],
      stop,
      [Symbol.asyncDispose]: stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Polls the master's cluster list until one cluster is registered. */
async function waitUntilListed(masterPort: number): Promise<void> {
  const source = await MasterTicketSource.open("127.0.0.1", masterPort);
  try {
    const deadline = performance.now() + READY_TIMEOUT_MS;
    while (performance.now() < deadline) {
      if ((await source.listClusters()).length > 0) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new BenchServerError(`the cluster did not register within ${READY_TIMEOUT_MS} ms`);
  } finally {
    source.close();
    await source.closed;
  }
}

/** Directory of the Colyseus baseline (its own package.json and node_modules). */
export const COLYSEUS_DIR = `${REPO_ROOT}bench/colyseus`;

/**
 * Starts the Colyseus server under Node (its packages must be installed).
 */
export async function startColyseusServer(): Promise<ColyseusServer> {
  const port = await freePort();
  const child = BenchChild.spawn({
    name: "colyseus server",
    command: "node",
    args: [`${COLYSEUS_DIR}/server.mjs`, "--port", String(port)],
    cwd: COLYSEUS_DIR,
    side: "server",
  });
  return await singleProcess(child, /^colyseus listening on /, "colyseus", () => ({
    kind: "colyseus",
    host: "127.0.0.1",
    port,
  }));
}
