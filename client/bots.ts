/**
 * Headless bots for load tests and demos: each bot connects to the master, lists the clusters,
 * auto-joins one (waiting out the master's `RateLimited` refusals, as many bots behind one
 * address meet them), then runs a scenario (client/bot_scenarios.ts: a built-in such as `mixed`
 * — a chat line, command 0x81, and an echo request, command 0x80, every interval — or a
 * module of the user's) until its time is up, and leaves. {@linkcode startBots} runs many at
 * once and measures them: join times, round-trip times, messages per second and errors by
 * reason, for a live status line, a summary and JSON (`deno task client --bots`, `deno task
 * demo`).
 *
 * It must never let one bot's failure stop the others (each failure is recorded in its
 * report), and never leave a connection or timer behind once `done` resolves.
 *
 * @module
 */

import { CHAT_COMMAND, CHAT_REFUSED_COMMAND } from "../plugins/chat.ts";
import { ECHO_COMMAND } from "../plugins/echo.ts";
import type { ClusterInfo } from "../shared/protocol/packets.ts";
import { type BotContext, type BotScenario, BUILTIN_SCENARIOS } from "./bot_scenarios.ts";
import type { ClusterSession } from "./cluster_session.ts";
import { ClientError } from "./errors.ts";
import { type Percentiles, SampleSet } from "./sample_set.ts";
import { DenoSustenetClient as SustenetClient } from "./deno_sustenet_client.ts";
import type { SustenetClientOptions } from "./sustenet_client.ts";

/** Options of {@linkcode startBots}. */
export interface BotOptions {
  /** The master to connect to. */
  readonly master: { readonly host: string; readonly port: number };
  /** How many bots (≥ 1). */
  readonly count: number;
  /** How long each bot plays after joining, in seconds (> 0). */
  readonly seconds: number;
  /**
   * The pace of the built-in scenarios: time between two rounds of one bot, in ms.
   *
   * @default {250}
   */
  readonly intervalMs?: number;
  /**
   * What each bot does once joined (see client/bot_scenarios.ts).
   *
   * @default {BUILTIN_SCENARIOS.mixed}
   */
  readonly scenario?: BotScenario;
  /** Further client options (credential, pinned keys, timeouts…). */
  readonly client?: Omit<SustenetClientOptions, "host" | "port">;
  /**
   * The cluster every bot joins (a master id), or `"auto"` for the master's choice.
   *
   * @default {"auto"}
   */
  readonly cluster?: number | "auto";
}

/** What one bot did. */
export interface BotReport {
  /** The bot's number, from 1. */
  readonly bot: number;
  /** Whether it joined a cluster. */
  joined: boolean;
  /** The cluster it joined: master id, server name and its client id there. */
  cluster: { id: number; name: string; clientId: number } | undefined;
  /** Time from its start to joined (RateLimited waits included), in ms. */
  joinMs: number | undefined;
  /** Chat lines sent. */
  chatSent: number;
  /** Chat lines received (its own included, as the chat plugin broadcasts to all). */
  chatReceived: number;
  /** Echo requests sent. */
  echoSent: number;
  /** Echo replies received with the payload that was sent. */
  echoed: number;
  /** Moves sent. */
  movesSent: number;
  /** Positions received (MoveBatch entries and Spawns). */
  movesReceived: number;
  /** Other plugin commands sent (`bot.send`). */
  otherSent: number;
  /** Other plugin commands received. */
  otherReceived: number;
  /** Failures, as `code: message`. */
  readonly errors: string[];
}

/** A snapshot of a run, for a live status line. */
export interface BotStatus {
  /** Bots in the run. */
  readonly total: number;
  /** Bots that joined a cluster so far. */
  readonly joined: number;
  /** Messages sent by all bots (plugin commands and moves). */
  readonly sent: number;
  /** Messages received by all bots (plugin commands and positions). */
  readonly received: number;
  /** Failures recorded so far. */
  readonly errors: number;
  /** Time since the start, in ms. */
  readonly elapsedMs: number;
}

/** The measurements of a run. */
export interface BotStats {
  /** Round-trip times of echo requests and own chat lines, in ms. */
  readonly rttMs: Percentiles | undefined;
  /** Join times (start to joined, RateLimited waits included), in ms. */
  readonly joinMs: Percentiles | undefined;
  /** Messages sent per second of play (from the first join to the last bot's end). */
  readonly sentPerS: number;
  /** Messages received per second of play. */
  readonly receivedPerS: number;
  /** Failures by reason (their code, e.g. `no_cluster`, `chat_refused`), most frequent first. */
  readonly errorsByReason: readonly { readonly reason: string; readonly count: number }[];
}

/** The outcome of a run. */
export interface BotSummary {
  /** Every bot's report, by bot number. */
  readonly bots: readonly BotReport[];
  /** The clusters the first bot to list saw. */
  readonly clusters: readonly ClusterInfo[];
  /** The final status. */
  readonly status: BotStatus;
  /** Percentiles, rates and errors by reason. */
  readonly stats: BotStats;
}

/** A running set of bots. */
export interface BotRun {
  /** Resolves once every bot has joined or failed to. */
  readonly allJoined: Promise<void>;
  /** Resolves once every bot has finished (left, closed); never rejects. */
  readonly done: Promise<BotSummary>;
  /** The current status. */
  status(): BotStatus;
  /** Round-trip percentiles so far (for a live line). */
  rtt(): Percentiles | undefined;
  /** Ends the run early (each bot leaves at once). */
  stop(): void;
}

const encoder = new TextEncoder();

function describeError(error: unknown): string {
  if (error instanceof ClientError) return `${error.code}: ${error.message}`;
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

/** Waits `ms`, or less if `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done);
  });
}

/** What every bot of a run shares: the samples. */
interface RunShared {
  readonly rtt: SampleSet;
  readonly joins: SampleSet;
  firstJoinAt: number | undefined;
}

/**
 * Starts `count` bots at once.
 *
 * @param options The master, how many bots, for how long, doing what.
 * @throws {RangeError} If `count`, `seconds` or `intervalMs` is out of range.
 *
 * @example Options are checked before anything connects
 * ```ts
 * import { startBots } from "./bots.ts";
 * import assert from "node:assert/strict";
 *
 * assert.throws(
 *   () => startBots({ master: { host: "127.0.0.1", port: 6256 }, count: 0, seconds: 1 }),
 *   RangeError,
 * );
 * ```
 */
export function startBots(options: BotOptions): BotRun {
  const { count, seconds } = options;
  const intervalMs = options.intervalMs ?? 250;
  if (!Number.isInteger(count) || count < 1) {
    throw new RangeError(`count must be an integer >= 1, got ${count}`);
  }
  if (!Number.isFinite(seconds) || seconds <= 0) {
    throw new RangeError(`seconds must be a number > 0, got ${seconds}`);
  }
  if (!Number.isFinite(intervalMs) || intervalMs < 1) {
    throw new RangeError(`intervalMs must be a number >= 1, got ${intervalMs}`);
  }
  const scenario = options.scenario ?? BUILTIN_SCENARIOS.mixed;
  const startedAt = performance.now();
  const stopper = new AbortController();
  const shared: RunShared = {
    rtt: new SampleSet(),
    joins: new SampleSet(),
    firstJoinAt: undefined,
  };
  const reports: BotReport[] = [];
  let clusters: readonly ClusterInfo[] = [];
  const joinSettled: Promise<void>[] = [];
  const runs: Promise<void>[] = [];
  for (let bot = 1; bot <= count; bot++) {
    const report: BotReport = {
      bot,
      joined: false,
      cluster: undefined,
      joinMs: undefined,
      chatSent: 0,
      chatReceived: 0,
      echoSent: 0,
      echoed: 0,
      movesSent: 0,
      movesReceived: 0,
      otherSent: 0,
      otherReceived: 0,
      errors: [],
    };
    reports.push(report);
    const settled = Promise.withResolvers<void>();
    joinSettled.push(settled.promise);
    runs.push(
      runBot(
        report,
        options,
        scenario,
        intervalMs,
        shared,
        stopper.signal,
        settled.resolve,
        (l) => {
          if (clusters.length === 0) clusters = l;
        },
      ),
    );
  }
  const status = (): BotStatus => {
    let joined = 0, sent = 0, received = 0, errors = 0;
    for (const r of reports) {
      if (r.joined) joined++;
      sent += r.chatSent + r.echoSent + r.movesSent + r.otherSent;
      received += r.chatReceived + r.echoed + r.movesReceived + r.otherReceived;
      errors += r.errors.length;
    }
    return {
      total: count,
      joined,
      sent,
      received,
      errors,
      elapsedMs: performance.now() - startedAt,
    };
  };
  const done = Promise.all(runs).then((): BotSummary => {
    const final = status();
    const playedS = shared.firstJoinAt === undefined
      ? 0
      : (performance.now() - shared.firstJoinAt) / 1000;
    const reasons = new Map<string, number>();
    for (const r of reports) {
      for (const error of r.errors) {
        const reason = /^([A-Za-z_]+(?: 0x[0-9a-f]{2})?):/.exec(error)?.[1] ?? error;
        reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
      }
    }
    return {
      bots: reports,
      clusters,
      status: final,
      stats: {
        rttMs: shared.rtt.percentiles(),
        joinMs: shared.joins.percentiles(),
        sentPerS: playedS > 0 ? final.sent / playedS : 0,
        receivedPerS: playedS > 0 ? final.received / playedS : 0,
        errorsByReason: [...reasons].map(([reason, n]) => ({ reason, count: n }))
          .sort((a, b) => b.count - a.count || a.reason.localeCompare(b.reason)),
      },
    };
  });
  return {
    allJoined: Promise.all(joinSettled).then(() => undefined),
    done,
    status,
    rtt: () => shared.rtt.percentiles(),
    stop: () => stopper.abort(),
  };
}

async function runBot(
  report: BotReport,
  options: BotOptions,
  scenario: BotScenario,
  intervalMs: number,
  shared: RunShared,
  signal: AbortSignal,
  onJoinSettled: () => void,
  onClusters: (clusters: readonly ClusterInfo[]) => void,
): Promise<void> {
  let client: SustenetClient | undefined;
  let session: ClusterSession | undefined;
  const startedAt = performance.now();
  try {
    client = await SustenetClient.connect({
      ...options.client,
      host: options.master.host,
      port: options.master.port,
    });
    onClusters(await client.listClusters());
    session = await joinPolitely(client, options.cluster ?? "auto", signal);
    const joinedAt = performance.now();
    report.joined = true;
    report.joinMs = joinedAt - startedAt;
    shared.joins.record(report.joinMs);
    shared.firstJoinAt ??= joinedAt;
    report.cluster = {
      id: session.clusterId,
      name: session.serverName,
      clientId: session.clientId,
    };
    onJoinSettled();
    const replyWaitMs = options.client?.timeoutMs ?? 10_000;
    await play(
      report,
      session,
      scenario,
      options.seconds * 1000,
      intervalMs,
      shared,
      signal,
      replyWaitMs,
    );
    if (session.status === "joined") await session.leave();
  } catch (error) {
    report.errors.push(describeError(error));
  } finally {
    onJoinSettled();
    try {
      await client?.close();
    } catch (error) {
      report.errors.push(describeError(error));
    }
  }
}

/** Most `RateLimited` refusals a bot waits out before it gives up joining. */
const JOIN_ATTEMPTS = 20;

/**
 * Auto-joins, waiting out `RateLimited` refusals as the protocol asks (at least a second, plus
 * up to a second of jitter so that many bots behind one address spread their retries over the
 * master's per-address limits instead of coming back together).
 */
async function joinPolitely(
  client: SustenetClient,
  cluster: number | "auto",
  signal: AbortSignal,
): Promise<ClusterSession> {
  for (let attempt = 1;; attempt++) {
    try {
      return await client.join(cluster);
    } catch (error) {
      const limited = error instanceof ClientError && error.code === "rate_limited";
      if (!limited || attempt >= JOIN_ATTEMPTS || signal.aborted) throw error;
    }
    await sleep(1000 + Math.random() * 1000, signal);
  }
}

/** Runs the scenario for one joined bot, measuring what it sends and gets back. */
async function play(
  report: BotReport,
  session: ClusterSession,
  scenario: BotScenario,
  durationMs: number,
  intervalMs: number,
  shared: RunShared,
  runSignal: AbortSignal,
  replyWaitMs: number,
): Promise<void> {
  const deadline = performance.now() + durationMs;
  const timeUp = new AbortController();
  const timer = setTimeout(() => timeUp.abort(), durationMs);
  const signal = AbortSignal.any([runSignal, timeUp.signal]);
  const pendingEchoes = new Map<number, { bytes: Uint8Array; at: number }>();
  const ownChat: number[] = []; // send times of own lines not heard back yet, in order
  let echoSequence = 0;
  const offs = [
    session.on("message", ({ command, payload }) => {
      if (command === CHAT_COMMAND) {
        report.chatReceived++;
        const sender = payload.length >= 4
          ? new DataView(payload.buffer, payload.byteOffset).getUint32(0)
          : -1;
        const sentAt = sender === session.clientId ? ownChat.shift() : undefined;
        if (sentAt !== undefined) shared.rtt.record(performance.now() - sentAt);
      } else if (command === ECHO_COMMAND && payload.length >= 4) {
        const sequence = new DataView(payload.buffer, payload.byteOffset).getUint32(0);
        const sent = pendingEchoes.get(sequence);
        if (sent !== undefined && sameBytes(sent.bytes, payload)) {
          pendingEchoes.delete(sequence);
          report.echoed++;
          shared.rtt.record(performance.now() - sent.at);
        } else {
          report.otherReceived++;
        }
      } else if (command === CHAT_REFUSED_COMMAND) {
        ownChat.shift();
        report.errors.push(`chat_refused: ${new TextDecoder().decode(payload)}`);
      } else {
        report.otherReceived++;
      }
    }),
    session.on("moves", ({ entries }) => report.movesReceived += entries.length),
    session.on("spawn", () => report.movesReceived++),
    session.on("unhandled", ({ command, reason }) => {
      const which = command === undefined ? "" : ` 0x${command.toString(16).padStart(2, "0")}`;
      report.errors.push(`unhandled${which}: ${reason}`);
    }),
    session.on("disconnect", ({ error }) => report.errors.push(describeError(error))),
  ];
  const playing = () =>
    !signal.aborted && performance.now() < deadline && session.status === "joined";
  // Sends from a scenario after the session dropped are not errors of the scenario's: the
  // drop itself is recorded once, by the disconnect listener.
  const sendIfJoined = (send: () => boolean): boolean => {
    if (session.status !== "joined") return false;
    return send();
  };
  const bot: BotContext = {
    bot: report.bot,
    session,
    intervalMs,
    signal,
    playing,
    sleep: (ms) => sleep(Math.min(ms, Math.max(0, deadline - performance.now())), signal),
    chat(text) {
      if (!sendIfJoined(() => session.send(CHAT_COMMAND, encoder.encode(text)))) return;
      ownChat.push(performance.now());
      report.chatSent++;
    },
    echo(payload) {
      const sequence = echoSequence++ >>> 0;
      const body = payload ?? encoder.encode(`bot${report.bot}`.slice(0, 8).padEnd(8));
      const bytes = new Uint8Array(4 + body.length);
      new DataView(bytes.buffer).setUint32(0, sequence);
      bytes.set(body, 4);
      if (!sendIfJoined(() => session.send(ECHO_COMMAND, bytes))) return;
      pendingEchoes.set(sequence, { bytes, at: performance.now() });
      report.echoSent++;
    },
    move(state) {
      if (sendIfJoined(() => session.move(state))) report.movesSent++;
    },
    send(command, payload) {
      if (sendIfJoined(() => session.send(command, payload))) report.otherSent++;
    },
    error(reason) {
      report.errors.push(`scenario: ${reason}`);
    },
  };
  try {
    await scenario(bot);
    // Wait for the replies still on their way (each echo and own chat line), however slow the
    // machine, up to the client's answer timeout: leaving earlier would count them as lost.
    const giveUpAt = performance.now() + replyWaitMs;
    while (
      (pendingEchoes.size > 0 || ownChat.length > 0) && !runSignal.aborted &&
      session.status === "joined" && performance.now() < giveUpAt
    ) {
      await sleep(10, runSignal);
    }
  } catch (error) {
    report.errors.push(`scenario: ${describeError(error)}`);
  } finally {
    clearTimeout(timer);
    for (const off of offs) off();
  }
}

function ms(value: number): string {
  return value < 10 ? value.toFixed(2) : value < 100 ? value.toFixed(1) : value.toFixed(0);
}

function percentileText(p: Percentiles | undefined, unit = "ms"): string {
  return p === undefined
    ? "none"
    : `p50 ${ms(p.p50)} p95 ${ms(p.p95)} p99 ${ms(p.p99)} max ${ms(p.max)} ${unit} (${p.count})`;
}

/**
 * One status line: bots joined, messages per second since `previous`, errors, and the RTT
 * percentiles so far when given.
 *
 * @param status The current status.
 * @param previous The status of the previous line, if any (for the rate).
 * @param rtt Round-trip percentiles so far (`BotRun.rtt()`).
 *
 * @example
 * ```ts
 * import { formatBotStatus } from "./bots.ts";
 * import assert from "node:assert/strict";
 *
 * const before = { total: 4, joined: 2, sent: 10, received: 10, errors: 0, elapsedMs: 1000 };
 * const now = { ...before, joined: 4, received: 30, elapsedMs: 2000 };
 * assert.equal(formatBotStatus(now, before), "joined 4/4 | 20 msgs/s | sent 10 received 30 | errors 0 | 2.0 s");
 * const rtt = { count: 9, p50: 1.5, p95: 3, p99: 4, max: 5 };
 * assert.match(formatBotStatus(now, before, rtt), /\| rtt p50 1\.50 p99 4\.00 ms$/);
 * ```
 */
export function formatBotStatus(
  status: BotStatus,
  previous?: BotStatus,
  rtt?: Percentiles,
): string {
  const seconds = (status.elapsedMs - (previous?.elapsedMs ?? 0)) / 1000;
  const received = status.received - (previous?.received ?? 0);
  const rate = seconds > 0 ? Math.round(received / seconds) : 0;
  return `joined ${status.joined}/${status.total} | ${rate} msgs/s | sent ${status.sent} ` +
    `received ${status.received} | errors ${status.errors} | ${
      (status.elapsedMs / 1000).toFixed(1)
    } s` + (rtt === undefined ? "" : ` | rtt p50 ${ms(rtt.p50)} p99 ${ms(rtt.p99)} ms`);
}

/**
 * The load test's summary: a few aggregate lines, never one per bot — joins with their time
 * percentiles, messages and rates, RTT percentiles, errors by reason.
 *
 * @param summary The run's outcome.
 *
 * @example
 * ```ts
 * import { formatLoadSummary } from "./bots.ts";
 * import assert from "node:assert/strict";
 *
 * const lines = formatLoadSummary({
 *   clusters: [],
 *   bots: [],
 *   status: { total: 2, joined: 2, sent: 40, received: 80, errors: 1, elapsedMs: 2500 },
 *   stats: {
 *     rttMs: { count: 40, p50: 1.2, p95: 2.5, p99: 4, max: 6 },
 *     joinMs: { count: 2, p50: 30, p95: 41, p99: 41, max: 41 },
 *     sentPerS: 20,
 *     receivedPerS: 40,
 *     errorsByReason: [{ reason: "chat_refused", count: 1 }],
 *   },
 * });
 * assert.deepEqual(lines, [
 *   "bots joined 2/2 in 2.5 s; join p50 30.0 p95 41.0 p99 41.0 max 41.0 ms (2)",
 *   "messages sent 40 (20/s) received 80 (40/s)",
 *   "rtt p50 1.20 p95 2.50 p99 4.00 max 6.00 ms (40)",
 *   "errors 1: chat_refused 1",
 * ]);
 * ```
 */
export function formatLoadSummary(summary: BotSummary): string[] {
  const { status, stats } = summary;
  const errors = stats.errorsByReason.map((e) => `${e.reason} ${e.count}`).join(", ");
  return [
    `bots joined ${status.joined}/${status.total} in ${(status.elapsedMs / 1000).toFixed(1)} s; ` +
    `join ${percentileText(stats.joinMs)}`,
    `messages sent ${status.sent} (${Math.round(stats.sentPerS)}/s) received ${status.received} ` +
    `(${Math.round(stats.receivedPerS)}/s)`,
    `rtt ${percentileText(stats.rttMs)}`,
    `errors ${status.errors}${errors === "" ? "" : `: ${errors}`}`,
  ];
}

/**
 * The run's outcome as one JSON-ready object (`deno task client --bots N --json`), for CI:
 * totals, rates, percentiles (ms) and errors by reason; no per-bot lines.
 *
 * @param summary The run's outcome.
 * @param scenario The scenario's name or module, as given.
 *
 * @example
 * ```ts
 * import { loadSummaryJson } from "./bots.ts";
 * import assert from "node:assert/strict";
 *
 * const json = loadSummaryJson({
 *   clusters: [],
 *   bots: [],
 *   status: { total: 1, joined: 1, sent: 4, received: 4, errors: 0, elapsedMs: 1000 },
 *   stats: { rttMs: undefined, joinMs: undefined, sentPerS: 4, receivedPerS: 4, errorsByReason: [] },
 * }, "echo");
 * assert.equal(json.scenario, "echo");
 * assert.equal(json.bots.joined, 1);
 * assert.equal(json.rttMs, null);
 * ```
 */
export function loadSummaryJson(summary: BotSummary, scenario: string): {
  scenario: string;
  bots: { total: number; joined: number };
  seconds: number;
  messages: { sent: number; received: number; sentPerS: number; receivedPerS: number };
  rttMs: Percentiles | null;
  joinMs: Percentiles | null;
  errors: { total: number; byReason: Record<string, number> };
} {
  const { status, stats } = summary;
  return {
    scenario,
    bots: { total: status.total, joined: status.joined },
    seconds: status.elapsedMs / 1000,
    messages: {
      sent: status.sent,
      received: status.received,
      sentPerS: stats.sentPerS,
      receivedPerS: stats.receivedPerS,
    },
    rttMs: stats.rttMs ?? null,
    joinMs: stats.joinMs ?? null,
    errors: {
      total: status.errors,
      byReason: Object.fromEntries(stats.errorsByReason.map((e) => [e.reason, e.count])),
    },
  };
}

/**
 * The per-bot account of a run (the demo's): one line per bot (where it joined, what it sent
 * and got), then the totals. A load test prints {@linkcode formatLoadSummary} instead.
 *
 * @param summary The run's outcome.
 *
 * @example
 * ```ts
 * import { formatBotSummary } from "./bots.ts";
 * import assert from "node:assert/strict";
 *
 * const lines = formatBotSummary({
 *   clusters: [],
 *   status: { total: 1, joined: 1, sent: 2, received: 2, errors: 0, elapsedMs: 1500 },
 *   stats: { rttMs: undefined, joinMs: undefined, sentPerS: 0, receivedPerS: 0, errorsByReason: [] },
 *   bots: [{
 *     bot: 1,
 *     joined: true,
 *     cluster: { id: 1, name: "eu-1", clientId: 3 },
 *     joinMs: 12,
 *     chatSent: 1,
 *     chatReceived: 1,
 *     echoSent: 1,
 *     echoed: 1,
 *     movesSent: 0,
 *     movesReceived: 0,
 *     otherSent: 0,
 *     otherReceived: 0,
 *     errors: [],
 *   }],
 * });
 * assert.equal(lines[0], "bot 1: joined eu-1 (cluster 1) as client 3; chat sent 1 received 1, echo sent 1 echoed 1");
 * assert.equal(lines.at(-1), "bots joined: 1/1; chat sent 1 received 1; echo sent 1 echoed 1; errors 0");
 * ```
 */
export function formatBotSummary(summary: BotSummary): string[] {
  const lines: string[] = [];
  let chatSent = 0, chatReceived = 0, echoSent = 0, echoed = 0, errors = 0;
  for (const bot of summary.bots) {
    chatSent += bot.chatSent;
    chatReceived += bot.chatReceived;
    echoSent += bot.echoSent;
    echoed += bot.echoed;
    errors += bot.errors.length;
    const where = bot.cluster === undefined
      ? "did not join"
      : `joined ${bot.cluster.name} (cluster ${bot.cluster.id}) as client ${bot.cluster.clientId}`;
    lines.push(
      `bot ${bot.bot}: ${where}; chat sent ${bot.chatSent} received ${bot.chatReceived}, ` +
        `echo sent ${bot.echoSent} echoed ${bot.echoed}` +
        (bot.errors.length > 0 ? `; errors: ${bot.errors.join(" / ")}` : ""),
    );
  }
  lines.push(
    `bots joined: ${summary.status.joined}/${summary.status.total}; chat sent ${chatSent} ` +
      `received ${chatReceived}; echo sent ${echoSent} echoed ${echoed}; errors ${errors}`,
  );
  return lines;
}
