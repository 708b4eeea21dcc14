/**
 * Headless bots for load checks and demos: each bot connects to the master, lists the
 * clusters, auto-joins one (waiting out the master's `RateLimited` refusals, as many bots behind
 * one address meet them), then until its time is up sends a chat line (command 0x81, the
 * chat plugin) and an echo request (command 0x80, the echo plugin) every interval, counting
 * what comes back. {@linkcode startBots} runs many at once and reports live status and a
 * summary; used by `deno task client --bots` and `deno task demo`.
 *
 * It must never let one bot's failure stop the others (each failure is recorded in its
 * report), and never leave a connection or timer behind once `done` resolves.
 *
 * @module
 */

import { CHAT_COMMAND, CHAT_REFUSED_COMMAND } from "../plugins/chat.ts";
import { ECHO_COMMAND } from "../plugins/echo.ts";
import type { ClusterInfo } from "../shared/protocol/packets.ts";
import type { ClusterSession } from "./cluster_session_handle.ts";
import { ClientError } from "./errors.ts";
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
   * Time between two rounds of chat + echo of one bot, in ms.
   *
   * @default {250}
   */
  readonly intervalMs?: number;
  /** Further client options (credential, pinned keys, timeouts…). */
  readonly client?: Omit<SustenetClientOptions, "host" | "port">;
  /**
   * The cluster every bot joins (a master id), or `"auto"` for the master's choice.
   *
   * @default {"auto"}
   */
  readonly cluster?: number | "auto";
  /**
   * Walk while playing: each bot circles its own point of the world, sending a Move every
   * `moveIntervalMs` (so a cluster with fragments on shows players moving).
   */
  readonly walk?: BotWalk;
}

/** How bots walk ({@linkcode BotOptions.walk}). */
export interface BotWalk {
  /**
   * Time between two moves of one bot, in ms.
   *
   * @default {100}
   */
  readonly moveIntervalMs?: number;
  /**
   * Bots spread over a square of this side from the origin, in world units (64 is one
   * fragment at the default fragment size).
   *
   * @default {64}
   */
  readonly area?: number;
}

/**
 * Where bot `bot` stands at `timeMs`: a circle of its own around its own centre in the
 * square `[0, area)²`, one lap in 8 to 14 s, facing where it goes.
 *
 * @param bot The bot's number, from 1.
 * @param timeMs Time since it started walking, in ms.
 * @param area Side of the square the bots spread over.
 * @returns Its position (z = 0) and yaw in radians.
 *
 * @example
 * ```ts
 * import { botPosition } from "./bots.ts";
 * import assert from "node:assert/strict";
 *
 * const a = botPosition(1, 0, 64);
 * const b = botPosition(1, 1000, 64);
 * assert.notDeepEqual(a, b);
 * for (const p of [a, b]) assert.ok(p.x >= 0 && p.x < 64 && p.y >= 0 && p.y < 64);
 * ```
 */
export function botPosition(
  bot: number,
  timeMs: number,
  area: number,
): { x: number; y: number; z: number; yaw: number } {
  // A deterministic spread (golden-ratio steps) keeps bots apart without randomness.
  const cx = area * (0.25 + 0.5 * ((bot * 0.618034) % 1));
  const cy = area * (0.25 + 0.5 * ((bot * 0.381966 + 0.5) % 1));
  const radius = area * (0.08 + 0.1 * ((bot * 0.7548777) % 1));
  const lapMs = 8000 + (bot % 7) * 1000;
  const angle = (2 * Math.PI * timeMs) / lapMs + bot;
  return {
    x: cx + radius * Math.cos(angle),
    y: cy + radius * Math.sin(angle),
    z: 0,
    yaw: angle + Math.PI / 2,
  };
}

/** What one bot did. */
export interface BotReport {
  /** The bot's number, from 1. */
  readonly bot: number;
  /** Whether it joined a cluster. */
  joined: boolean;
  /** The cluster it joined: master id, server name and its client id there. */
  cluster: { id: number; name: string; clientId: number } | undefined;
  /** Chat lines sent. */
  chatSent: number;
  /** Chat lines received (its own included, as the chat plugin broadcasts to all). */
  chatReceived: number;
  /** Echo requests sent. */
  echoSent: number;
  /** Echo replies received with the payload that was sent. */
  echoed: number;
  /** Failures, as `code: message`. */
  readonly errors: string[];
}

/** A snapshot of a run, for a live status line. */
export interface BotStatus {
  /** Bots in the run. */
  readonly total: number;
  /** Bots that joined a cluster so far. */
  readonly joined: number;
  /** Messages sent by all bots (chat + echo). */
  readonly sent: number;
  /** Messages received by all bots (chat + echo). */
  readonly received: number;
  /** Failures recorded so far. */
  readonly errors: number;
  /** Time since the start, in ms. */
  readonly elapsedMs: number;
}

/** The outcome of a run. */
export interface BotSummary {
  /** Every bot's report, by bot number. */
  readonly bots: readonly BotReport[];
  /** The clusters the first bot to list saw. */
  readonly clusters: readonly ClusterInfo[];
  /** The final status. */
  readonly status: BotStatus;
}

/** A running set of bots. */
export interface BotRun {
  /** Resolves once every bot has joined or failed to. */
  readonly allJoined: Promise<void>;
  /** Resolves once every bot has finished (left, closed); never rejects. */
  readonly done: Promise<BotSummary>;
  /** The current status. */
  status(): BotStatus;
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

/**
 * Starts `count` bots at once.
 *
 * @param options The master, how many bots, for how long.
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
  const startedAt = performance.now();
  const stopper = new AbortController();
  const reports: BotReport[] = [];
  let clusters: readonly ClusterInfo[] = [];
  const joinSettled: Promise<void>[] = [];
  const runs: Promise<void>[] = [];
  for (let bot = 1; bot <= count; bot++) {
    const report: BotReport = {
      bot,
      joined: false,
      cluster: undefined,
      chatSent: 0,
      chatReceived: 0,
      echoSent: 0,
      echoed: 0,
      errors: [],
    };
    reports.push(report);
    const settled = Promise.withResolvers<void>();
    joinSettled.push(settled.promise);
    runs.push(
      runBot(report, options, intervalMs, stopper.signal, settled.resolve, (listed) => {
        if (clusters.length === 0) clusters = listed;
      }),
    );
  }
  const status = (): BotStatus => {
    let joined = 0, sent = 0, received = 0, errors = 0;
    for (const r of reports) {
      if (r.joined) joined++;
      sent += r.chatSent + r.echoSent;
      received += r.chatReceived + r.echoed;
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
  return {
    allJoined: Promise.all(joinSettled).then(() => undefined),
    done: Promise.all(runs).then(() => ({ bots: reports, clusters, status: status() })),
    status,
    stop: () => stopper.abort(),
  };
}

async function runBot(
  report: BotReport,
  options: BotOptions,
  intervalMs: number,
  signal: AbortSignal,
  onJoinSettled: () => void,
  onClusters: (clusters: readonly ClusterInfo[]) => void,
): Promise<void> {
  let client: SustenetClient | undefined;
  let session: ClusterSession | undefined;
  try {
    client = await SustenetClient.connect({
      ...options.client,
      host: options.master.host,
      port: options.master.port,
    });
    onClusters(await client.listClusters());
    session = await joinPolitely(client, options.cluster ?? "auto", signal);
    report.joined = true;
    report.cluster = {
      id: session.clusterId,
      name: session.serverName,
      clientId: session.clientId,
    };
    onJoinSettled();
    const stopWalking = options.walk === undefined
      ? undefined
      : walk(report.bot, session, options.walk);
    try {
      await play(report, session, options.seconds * 1000, intervalMs, signal);
    } finally {
      stopWalking?.();
    }
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

/** Starts bot `bot` walking ({@linkcode botPosition}); returns the function that stops it. */
function walk(bot: number, session: ClusterSession, options: BotWalk): () => void {
  const intervalMs = options.moveIntervalMs ?? 100;
  const area = options.area ?? 64;
  if (!Number.isFinite(intervalMs) || intervalMs < 1) {
    throw new RangeError(`walk.moveIntervalMs must be a number >= 1, got ${intervalMs}`);
  }
  if (!Number.isFinite(area) || area <= 0) {
    throw new RangeError(`walk.area must be a number > 0, got ${area}`);
  }
  const started = performance.now();
  const move = () => {
    if (session.status === "joined") {
      session.move(botPosition(bot, performance.now() - started, area));
    }
  };
  move();
  const timer = setInterval(move, intervalMs);
  return () => clearInterval(timer);
}

async function play(
  report: BotReport,
  session: ClusterSession,
  durationMs: number,
  intervalMs: number,
  signal: AbortSignal,
): Promise<void> {
  const pendingEchoes = new Map<number, Uint8Array>();
  session.on("message", ({ command, payload }) => {
    if (command === CHAT_COMMAND) {
      report.chatReceived++;
    } else if (command === ECHO_COMMAND && payload.length >= 4) {
      const sequence = new DataView(payload.buffer, payload.byteOffset).getUint32(0);
      const sent = pendingEchoes.get(sequence);
      if (sent !== undefined && sameBytes(sent, payload)) {
        pendingEchoes.delete(sequence);
        report.echoed++;
      }
    } else if (command === CHAT_REFUSED_COMMAND) {
      report.errors.push(`chat_refused: ${new TextDecoder().decode(payload)}`);
    }
  });
  session.on("disconnect", ({ error }) => report.errors.push(describeError(error)));
  const deadline = performance.now() + durationMs;
  let sequence = 0;
  while (performance.now() < deadline && !signal.aborted && session.status === "joined") {
    session.send(CHAT_COMMAND, encoder.encode(`bot ${report.bot} says hello #${sequence}`));
    report.chatSent++;
    const echo = new Uint8Array(12);
    new DataView(echo.buffer).setUint32(0, sequence);
    echo.set(encoder.encode(`bot${report.bot}`.slice(0, 8).padEnd(8)), 4);
    pendingEchoes.set(sequence, echo);
    session.send(ECHO_COMMAND, echo);
    report.echoSent++;
    sequence++;
    await sleep(Math.min(intervalMs, Math.max(0, deadline - performance.now())), signal);
  }
  // Give the last replies a moment to arrive before leaving.
  if (!signal.aborted) await sleep(Math.min(intervalMs, 200), signal);
}

/**
 * One status line: bots joined, messages per second since `previous`, errors.
 *
 * @param status The current status.
 * @param previous The status of the previous line, if any (for the rate).
 *
 * @example
 * ```ts
 * import { formatBotStatus } from "./bots.ts";
 * import assert from "node:assert/strict";
 *
 * const before = { total: 4, joined: 2, sent: 10, received: 10, errors: 0, elapsedMs: 1000 };
 * const now = { ...before, joined: 4, received: 30, elapsedMs: 2000 };
 * assert.equal(formatBotStatus(now, before), "joined 4/4 | 20 msgs/s | sent 10 received 30 | errors 0 | 2.0 s");
 * ```
 */
export function formatBotStatus(status: BotStatus, previous?: BotStatus): string {
  const seconds = (status.elapsedMs - (previous?.elapsedMs ?? 0)) / 1000;
  const received = status.received - (previous?.received ?? 0);
  const rate = seconds > 0 ? Math.round(received / seconds) : 0;
  return `joined ${status.joined}/${status.total} | ${rate} msgs/s | sent ${status.sent} ` +
    `received ${status.received} | errors ${status.errors} | ${
      (status.elapsedMs / 1000).toFixed(1)
    } s`;
}

/**
 * The readable summary of a run: one line per bot (where it joined, what it sent and got),
 * then the totals.
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
 *   bots: [{
 *     bot: 1,
 *     joined: true,
 *     cluster: { id: 1, name: "eu-1", clientId: 3 },
 *     chatSent: 1,
 *     chatReceived: 1,
 *     echoSent: 1,
 *     echoed: 1,
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
