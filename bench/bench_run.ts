/**
 * One bench run, in order: sealing throughput; the relay campaign of each system (raw relay,
 * Sustenet plaintext, Sustenet sealed, Colyseus — fixed R in quick mode, the search for the most
 * clients sustained at 20 Hz in full mode); idle memory and join storm on a sealed cluster;
 * echo on a sealed cluster with the echo plugin in-process, then the same load with it
 * sandboxed (issue 6), each on a fresh cluster, back to back; optionally a CPU profile of the
 * sealed cluster under relay load. Each server runs in its own process, each load in a
 * generator process of its own.
 *
 * A part that fails (a server that does not start, Colyseus not installable) is recorded in
 * `skipped` and the run carries on; every server is stopped before the next part starts.
 *
 * @module
 */

import { type AccountsFigures, measureAccounts } from "./auth_bench.ts";
import type { BenchOptions } from "./bench_options.ts";
import {
  type BenchServer,
  type EchoPluginMode,
  startColyseusServer,
  startRawRelayServer,
  startSustenetServers,
  type SustenetServers,
} from "./bench_servers.ts";
import { profileCluster } from "./cluster_profile.ts";
import { ensureColyseus } from "./colyseus_install.ts";
import type { LoadJob, LoadResult, LoadScenario, WindowedRun } from "./load_job.ts";
import { machineInfo } from "./machine_info.ts";
import {
  type RelayJobFactory,
  type RelayPlan,
  type RelayRun,
  runRelayCampaign,
  type SystemResult,
} from "./relay_campaign.ts";
import {
  type BenchResults,
  checkGoals,
  compareEcho,
  formatTable,
  medianEchoRun,
  RELAY_HEADERS,
  relayRow,
  steadinessGoal,
} from "./report.ts";
import type { BacklogFigures } from "./receive_backlog.ts";
import type { WriteDelayFigures } from "./server_lag.ts";
import { relayJob, runGenerator } from "./run_generator.ts";
import { placeChildren } from "./child_process.ts";
import { measureSealing } from "./seal_throughput.ts";
import {
  judgeSteadiness,
  type SteadinessResult,
  STEADY_LOAD_SHARE,
  STEADY_P999_MS,
} from "./steadiness.ts";
import { runWorldBench, type WorldResults } from "./world_bench.ts";

/** Sends per client per second in every relay run (issue 9). */
const HZ = 20;

/**
 * Deadline of a generator: handshakes, warm-up and windows (twice: each window may be measured
 * again when the generator stalled in it), plus slack.
 */
function deadlineFor(clients: number, run: WindowedRun): number {
  return 20_000 + clients * 20 + run.warmupMs + 2 * run.windowMs * run.windows;
}

/** Each run's job for a started server: the relay scenario against its target. */
function relayJobs(server: BenchServer): RelayJobFactory {
  return (clients, run) =>
    relayJob(
      server.target,
      { kind: "relay", clients, hz: HZ, ...run },
      server.pids,
      deadlineFor(clients, run),
      server.metricsUrl,
    );
}

/** `; unread: 14.2 ms in the generator's sockets, 0.9 in the cluster's (mean wait)`, or "". */
function unreadNote(backlog: BacklogFigures | undefined): string {
  if (backlog?.generatorWaitMs === undefined) return "";
  return `; unread: ${backlog.generatorWaitMs} ms in the generator's sockets, ` +
    `${backlog.serverWaitMs} in the cluster's (mean wait)`;
}

/** `; cluster writes: p99 ≤20 ms, worst ≤100 ms`, or "". */
function writeNote(delay: WriteDelayFigures | undefined): string {
  if (delay === undefined || delay.writes === 0) return "";
  const bound = (ms: number | null) => ms === null ? ">1000" : `≤${ms}`;
  return `; cluster writes waited p99 ${bound(delay.p99BoundMs)} ms, worst ${
    bound(delay.maxBoundMs)
  } ms`;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The best count a campaign reached: confirmed, else the probes'. */
function bestOf(system: SystemResult | undefined): number | undefined {
  return system?.maxSustainedClients ?? system?.probeBest;
}

/** The state of one run while it goes. */
class BenchRun {
  readonly skipped: { what: string; why: string }[] = [];
  readonly relay: SystemResult[] = [];
  readonly scenarios: { name: string; result: LoadResult }[] = [];
  /** The steadiness check, when part `steady` ran. */
  steadiness: SteadinessResult | undefined;
  /** Each echo part's result, by where its plugin ran. */
  readonly echo = new Map<EchoPluginMode, LoadResult>();
  readonly #options: BenchOptions;
  readonly #log: (line: string) => void;
  readonly #probe: WindowedRun;
  readonly #confirm: WindowedRun = { warmupMs: 3000, windowMs: 10_000, windows: 3 };

  constructor(options: BenchOptions, log: (line: string) => void) {
    this.#options = options;
    this.#log = log;
    this.#probe = options.quick
      ? { warmupMs: 1000, windowMs: 2000, windows: 1 }
      : { warmupMs: 1500, windowMs: 3000, windows: 1 };
  }

  #plan(fixedClients: number, start: number, min: number, max: number): RelayPlan {
    return {
      mode: this.#options.quick ? "fixed" : "search",
      fixedClients,
      hz: HZ,
      probe: this.#probe,
      confirm: this.#confirm,
      search: { start, min, max: Math.max(min, max) },
      generatorProcesses: this.#options.generators,
    };
  }

  readonly #printRun = (label: string, run: RelayRun): void => {
    this.#log(`  ${formatTable(RELAY_HEADERS, [relayRow(label, run)]).split("\n")[1]}`);
    if (!run.pass) this.#log(`    ${run.reasons.join("; ")}`);
  };

  /** One system's campaign; a server that does not start is recorded, not fatal. */
  async #campaign<S extends BenchServer>(
    label: string,
    start: () => Promise<S>,
    plan: RelayPlan,
  ): Promise<SystemResult | undefined> {
    this.#log(`relay: ${label} …`);
    try {
      const result = await runRelayCampaign(label, start, relayJobs, plan, this.#printRun);
      this.relay.push(result);
      return result;
    } catch (error) {
      this.skipped.push({ what: `relay ${label}`, why: messageOf(error) });
      this.#log(`  ${label} failed: ${messageOf(error)}`);
      return undefined;
    }
  }

  /** The four relay campaigns, each search started near where the raw relay ended. */
  async relayCampaigns(): Promise<void> {
    const parts = this.#options.parts;
    let rawBest: number | undefined;
    if (parts.has("raw")) {
      const raw = await this.#campaign("raw", startRawRelayServer, this.#plan(50, 300, 10, 2000));
      rawBest = bestOf(raw);
    }
    for (const sealed of [false, true]) {
      if (!parts.has(sealed ? "sealed" : "plaintext")) continue;
      // Started near the raw relay's maximum (sealed a little below); the search grows past it
      // as far as the cluster goes (it batches broadcasts, so it may go well beyond).
      const start = rawBest === undefined
        ? (sealed ? 150 : 250)
        : Math.round(rawBest * (sealed ? 0.8 : 0.9));
      await this.#campaign(
        `sustenet-${sealed ? "sealed" : "plaintext"}`,
        () => startSustenetServers({ sealed }),
        this.#plan(50, start, 10, 2000),
      );
    }
    if (parts.has("ws-sealed")) {
      // The same fan-out workload, the generator's clients joining over the cluster's
      // WebSocket listener (one binary message per batch), in the same run as TCP and Colyseus.
      const sealedBest = bestOf(this.relay.find((r) => r.label === "sustenet-sealed"));
      const start = sealedBest === undefined ? 150 : Math.round(sealedBest * 0.8);
      await this.#campaign(
        "sustenet-ws-sealed",
        () => startSustenetServers({ sealed: true, webSocket: true }),
        this.#plan(50, start, 10, 2000),
      );
    }
    if (parts.has("steady")) await this.#steadiness();
    if (parts.has("colyseus")) {
      const available = await ensureColyseus(this.#options.quick);
      if (!available.ok) {
        this.skipped.push({ what: "colyseus", why: available.why });
        this.#log(`colyseus skipped: ${available.why}`);
      } else {
        await this.#campaign("colyseus", startColyseusServer, this.#plan(20, 50, 4, 600));
      }
    }
  }

  /**
   * Issue 24's steadiness check: a fresh sealed cluster at 80 % of its confirmed maximum (the
   * probes' best if none was confirmed, 150 without a sealed campaign; 50 in quick mode) for
   * one 60 s window (5 s in quick mode).
   */
  async #steadiness(): Promise<void> {
    const quick = this.#options.quick;
    const sealedBest = bestOf(this.relay.find((r) => r.label === "sustenet-sealed"));
    const clients = quick
      ? 50
      : Math.max(10, Math.round((sealedBest ?? 150 / STEADY_LOAD_SHARE) * STEADY_LOAD_SHARE));
    const run = quick
      ? { warmupMs: 1000, windowMs: 5000, windows: 1 }
      : { warmupMs: 3000, windowMs: 60_000, windows: 1 };
    this.#log(`steadiness: sealed cluster, ${clients} clients, ${run.windowMs / 1000} s …`);
    let servers: SustenetServers | undefined;
    try {
      servers = await startSustenetServers({ sealed: true });
      const result = await runGenerator(relayJobs(servers)(clients, run) as LoadJob);
      if (!result.ok || result.kind !== "relay") {
        throw new Error(result.ok ? "not a relay result" : result.error);
      }
      // A window the generator stalled in was measured again: judge the last one.
      const window = result.windows[result.windows.length - 1];
      this.steadiness = judgeSteadiness(clients, HZ, window);
      const s = this.steadiness;
      this.#log(
        `  p99 ${s.p99Ms} ms, p99.9 ${s.p999Ms} ms (≤ ${STEADY_P999_MS}), cluster stalls > 20 ms: ` +
          `${s.serverStalls ?? "?"}${unreadNote(s.receiveBacklog)}${writeNote(s.writeDelay)}; ${
            s.pass ? "pass" : `FAIL: ${s.reasons.join("; ")}`
          }`,
      );
    } catch (error) {
      this.skipped.push({ what: "steady", why: messageOf(error) });
      this.#log(`  steady failed: ${messageOf(error)}`);
    } finally {
      await servers?.stop();
    }
  }

  async #onCluster(
    name: string,
    scenario: LoadScenario,
    servers: SustenetServers,
    serverPids: readonly number[] = servers.pids,
  ) {
    this.#log(`${name} …`);
    const clients = "clients" in scenario ? scenario.clients : 0;
    const result = await runGenerator({
      target: servers.target,
      scenario,
      serverPids,
      deadlineMs: 120_000 + clients * 20,
    });
    this.scenarios.push({ name, result });
    return result;
  }

  /** Idle memory and join storm on one fresh sealed cluster; then the echo parts. */
  async clusterScenarios(): Promise<void> {
    const parts = this.#options.parts;
    const quick = this.#options.quick;
    if (parts.has("idle") || parts.has("join")) {
      let servers: SustenetServers | undefined;
      try {
        servers = await startSustenetServers({ sealed: true });
        // Idle first, on a fresh process, so its RSS is not inflated by earlier load.
        if (parts.has("idle")) {
          for (const clients of quick ? [300] : [1000, 10_000]) {
            const scenario = { kind: "idle", clients, settleMs: 2000 } as const;
            await this.#onCluster(`idle ${clients}`, scenario, servers);
          }
        }
        if (parts.has("join")) {
          const scenario = { kind: "join", joins: quick ? 100 : 1000, concurrency: 32 } as const;
          // The master's CPU counts too: it answers two of a join's requests.
          await this.#onCluster("join storm", scenario, servers, [
            servers.clusterPid,
            servers.masterPid,
          ]);
        }
      } catch (error) {
        this.skipped.push({ what: "idle/join", why: messageOf(error) });
      } finally {
        await servers?.stop();
      }
    }
    await this.#echoScenarios();
  }

  /**
   * The echo load with the plugin in-process (`echo`), in a Worker (`echo-sandboxed`) and in
   * its own subprocess (`echo-subprocess`): each on a fresh sealed cluster, back to back, so they
   * differ only in where the plugin runs. Full mode alternates the variants over
   * {@linkcode ECHO_ROUNDS} rounds and keeps each one's median run: on this machine type one
   * variant's figure moved 485 k → 785 k echoes/s between runs minutes apart, more than the
   * difference measured.
   */
  async #echoScenarios(): Promise<void> {
    const quick = this.#options.quick;
    const run = quick
      ? { warmupMs: 500, windowMs: 2000, windows: 1 }
      : { warmupMs: 2000, windowMs: 5_000, windows: 1 };
    // 128 in flight per client in full mode: enough to saturate every variant, so echoes/s is
    // each one's capacity. At 32 the subprocess's figure was its round trip (one more process
    // hop) while its cluster sat at 71 % of a core; the RTT columns report latency apart.
    const scenario = { kind: "echo", clients: 16, inflight: quick ? 8 : 128, ...run } as const;
    const variants: readonly (readonly [
      "echo" | "echo-sandboxed" | "echo-subprocess",
      EchoPluginMode,
    ])[] = [
      ["echo", "in-process"],
      ["echo-sandboxed", "sandboxed"],
      ["echo-subprocess", "subprocess"],
    ];
    const rounds = this.#echoRounds;
    const runs = new Map<EchoPluginMode, LoadResult[]>();
    for (let round = 1; round <= rounds; round++) {
      for (const [part, echo] of variants) {
        if (!this.#options.parts.has(part)) continue;
        const name = rounds === 1 ? part : `${part} (round ${round} of ${rounds})`;
        let servers: SustenetServers | undefined;
        try {
          servers = await startSustenetServers({ sealed: true, echo });
          const result = await this.#onCluster(name, scenario, servers);
          runs.set(echo, [...runs.get(echo) ?? [], result]);
        } catch (error) {
          this.skipped.push({ what: name, why: messageOf(error) });
          this.#log(`  ${name} failed: ${messageOf(error)}`);
        } finally {
          await servers?.stop();
        }
      }
    }
    for (const [echo, results] of runs) this.echo.set(echo, medianEchoRun(results));
  }

  /** Rounds of each echo variant: one in quick mode. */
  get #echoRounds(): number {
    return this.#options.quick ? 1 : ECHO_ROUNDS;
  }

  /** Issue 6's comparison, when either echo part ran. */
  echoComparison(): BenchResults["pluginEcho"] {
    const parts = this.#options.parts;
    if (!parts.has("echo") && !parts.has("echo-sandboxed") && !parts.has("echo-subprocess")) {
      return undefined;
    }
    return {
      ...compareEcho(
        this.echo.get("in-process"),
        this.echo.get("sandboxed"),
        this.echo.get("subprocess"),
      ),
      rounds: this.#echoRounds,
    };
  }

  /** A CPU profile of the sealed cluster at 80 % of its measured maximum (or 150 clients). */
  async profile(stamp: string): Promise<BenchResults["profile"]> {
    const sealedBest = bestOf(this.relay.find((r) => r.label === "sustenet-sealed"));
    const clients = sealedBest === undefined ? 150 : Math.max(10, Math.round(sealedBest * 0.8));
    this.#log(`profiling the sealed cluster at ${clients} clients …`);
    try {
      await Deno.mkdir(this.#options.resultsDir, { recursive: true });
      const keepAs = `${this.#options.resultsDir}/${stamp}-cluster.cpuprofile`;
      const result = await profileCluster(clients, HZ, keepAs);
      return { clients: result.clients, top: result.top };
    } catch (error) {
      this.skipped.push({ what: "profile", why: messageOf(error) });
      return undefined;
    }
  }
}

/**
 * Runs the bench.
 *
 * @param options What to run.
 * @param log Progress lines.
 * @returns Everything measured (written out by the caller).
 */
export async function runBench(
  options: BenchOptions,
  log: (line: string) => void,
): Promise<BenchResults> {
  const started = new Date();
  const startMs = performance.now();
  const machine = await machineInfo();
  const placement = placeChildren(options.pin);
  log(
    `Sustenet bench (${options.quick ? "quick" : "full"}): ${machine.nproc} × ` +
      `${machine.cpuModel}, Deno ${machine.deno}, load ` +
      machine.loadAverage.map((l) => l.toFixed(2)).join(" ") +
      // Alternated runs tied the long runs' stalls to it (docs/PERFORMANCE.md, issue 24).
      (machine.damon === "on"
        ? '; DAMON reclaim is on: expect 20-100 ms stalls in both loops (docs/PERFORMANCE.md, "DAMON")'
        : "") +
      (placement === undefined
        ? options.pin ? "; --pin ignored (needs Linux, taskset and 2 cores)" : ""
        : `; servers on cores ${placement.server}, generators on ${placement.generator}`),
  );
  const run = new BenchRun(options, log);
  let sealing: BenchResults["sealing"] = [];
  if (options.parts.has("sealing")) {
    log("sealing throughput …");
    sealing = await measureSealing(options.quick ? 200 : 1000);
  }
  await run.relayCampaigns();
  await run.clusterScenarios();
  const profile = options.profile
    ? await run.profile(started.toISOString().replaceAll(":", "-"))
    : undefined;
  let accounts: AccountsFigures | undefined;
  if (options.parts.has("auth")) {
    try {
      accounts = await measureAccounts(options.quick, log);
    } catch (error) {
      run.skipped.push({ what: "auth", why: messageOf(error) });
      log(`  auth failed: ${messageOf(error)}`);
    }
  }
  let world: WorldResults | undefined;
  if (options.parts.has("world")) {
    try {
      world = await runWorldBench({ quick: options.quick, profile: options.profile }, log);
    } catch (error) {
      run.skipped.push({ what: "world", why: messageOf(error) });
      log(`  world failed: ${messageOf(error)}`);
    }
  }
  const pluginEcho = run.echoComparison();
  return {
    version: 1,
    startedAt: started.toISOString(),
    durationS: Math.round((performance.now() - startMs) / 1000),
    mode: options.quick ? "quick" : "full",
    machine,
    ...(placement === undefined ? {} : { placement }),
    sealing,
    relay: run.relay,
    goals: options.quick ? [] : [...checkGoals(run.relay), ...steadinessGoal(run.steadiness)],
    scenarios: run.scenarios,
    ...(pluginEcho === undefined ? {} : { pluginEcho }),
    ...(profile === undefined ? {} : { profile }),
    ...(accounts === undefined ? {} : { accounts }),
    ...(run.steadiness === undefined ? {} : { steadiness: run.steadiness }),
    ...(world === undefined ? {} : { world }),
    skipped: run.skipped,
  };
}

/** Rounds of the echo parts in full mode (odd, so the median is a run). */
const ECHO_ROUNDS = 5;
