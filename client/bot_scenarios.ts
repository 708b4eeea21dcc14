/**
 * Load-test scenarios: what each bot of `deno task client --bots N --scenario …` does once it
 * has joined a cluster. A scenario is a function called once per bot with a
 * {@linkcode BotContext}; it plays until `bot.playing()` turns false (time up, run stopped or
 * session lost) and returns. The runner joins before and leaves after, and measures
 * everything the context sends and gets back. Built-ins: `idle`, `chat`, `echo`, `walk` and
 * `mixed` (chat + echo, the default).
 *
 * A scenario module (`--scenario ./my_scenario.ts`) default-exports such a function:
 *
 * ```ts
 * import type { BotContext } from "./bot_scenarios.ts"; // "@sustenet/sustenet/client" outside
 *
 * export default async function wander(bot: BotContext) {
 *   bot.chat(`hello from bot ${bot.bot}`);
 *   while (bot.playing()) {
 *     bot.move({ x: Math.random() * 100, y: 0, z: Math.random() * 100 });
 *     bot.echo();
 *     await bot.sleep(bot.intervalMs);
 *   }
 * }
 * ```
 *
 * It must never let a scenario's throw stop other bots (the runner records it as an error).
 *
 * @module
 */

import type { MoveState } from "../shared/protocol/move_state.ts";
import type { ClusterSession } from "./cluster_session.ts";

/** What a scenario gets for one bot: the session and measured ways to use it. */
export interface BotContext {
  /** The bot's number, from 1. */
  readonly bot: number;
  /** The bot's session on the cluster (for anything the helpers below do not cover). */
  readonly session: ClusterSession;
  /** The run's `intervalMs`: the pace built-in scenarios keep. */
  readonly intervalMs: number;
  /** Aborts when the bot's time is up or the run is stopped. */
  readonly signal: AbortSignal;
  /** True while the bot has time left, the run goes on and its session is joined. */
  playing(): boolean;
  /** Waits `ms`, or less if the bot's time runs out first. */
  sleep(ms: number): Promise<void>;
  /** Sends a chat line (command 0x81, the chat plugin); the RTT is until it comes back. */
  chat(text: string): void;
  /** Sends an echo request (command 0x80, the echo plugin); the RTT is until it comes back. */
  echo(payload?: Uint8Array): void;
  /** Sends a move (the cluster's fragments answer with positions of nearby players). */
  move(state: MoveState): void;
  /** Sends any plugin command (counted as sent; replies are counted as received). */
  send(command: number, payload: Uint8Array): void;
  /** Records a failure of the scenario's own, counted by `reason`. */
  error(reason: string): void;
}

/**
 * A scenario: called once per bot after it joined; the bot leaves when it returns.
 *
 * @example
 * ```ts
 * import type { BotScenario } from "./bot_scenarios.ts";
 * import assert from "node:assert/strict";
 *
 * const wave: BotScenario = (bot) => bot.chat("o/");
 * assert.equal(typeof wave, "function");
 * ```
 */
export type BotScenario = (bot: BotContext) => void | Promise<void>;

/** Keeps `bot` doing `step` every interval until it stops playing. */
async function every(bot: BotContext, step: () => void): Promise<void> {
  while (bot.playing()) {
    step();
    await bot.sleep(bot.intervalMs);
  }
}

/** How a walking bot wanders ({@linkcode walkScenario}). */
export interface WalkOptions {
  /**
   * Side of the square it wanders in from the origin, in world units (64 is one fragment at
   * the default fragment size).
   *
   * @default {256}
   */
  readonly area?: number;
  /**
   * Distance it covers per move, in world units.
   *
   * @default {4}
   */
  readonly step?: number;
  /**
   * Time between two moves, in ms.
   *
   * @default {the run's intervalMs}
   */
  readonly moveIntervalMs?: number;
  /**
   * The second ground axis: `z` (the fragments' x/z plane, y = 0) or `y` (a 2D view such as
   * the demo page's, z = 0).
   *
   * @default {"z"}
   */
  readonly ground?: "z" | "y";
  /** A scenario the bot plays meanwhile (the demo's bots chat and echo as they walk). */
  readonly alongside?: BotScenario;
}

/**
 * A walking scenario: from a random start in the square `[0, area]²`, a move every interval,
 * turning a little at random each step and staying in the square, facing where it goes.
 *
 * @param options The square, the pace, the plane and what the bot does meanwhile.
 * @returns The scenario.
 * @throws {RangeError} If `area`, `step` or `moveIntervalMs` is not a positive number.
 *
 * @example
 * ```ts
 * import { type BotContext, walkScenario } from "./bot_scenarios.ts";
 * import type { MoveState } from "../shared/protocol/move_state.ts";
 * import assert from "node:assert/strict";
 *
 * const moves: MoveState[] = [];
 * let rounds = 3;
 * const bot = {
 *   bot: 1,
 *   intervalMs: 1,
 *   playing: () => rounds-- > 0,
 *   sleep: () => Promise.resolve(),
 *   move: (state: MoveState) => moves.push(state),
 * } as unknown as BotContext;
 * await walkScenario({ area: 64, ground: "y" })(bot);
 * assert.equal(moves.length, 3);
 * for (const m of moves) assert.ok(m.x >= 0 && m.x <= 64 && m.y >= 0 && m.y <= 64 && m.z === 0);
 * ```
 */
export function walkScenario(options: WalkOptions = {}): BotScenario {
  const area = options.area ?? 256;
  const step = options.step ?? 4;
  for (
    const [name, value] of [["area", area], ["step", step], [
      "moveIntervalMs",
      options.moveIntervalMs ?? 1,
    ]] as const
  ) {
    if (!Number.isFinite(value) || value <= 0) {
      throw new RangeError(`walk: ${name} must be a number > 0, got ${value}`);
    }
  }
  const inside = (v: number) => Math.min(area, Math.max(0, v));
  return async (bot: BotContext) => {
    let x = Math.random() * area, other = Math.random() * area;
    let heading = Math.random() * 2 * Math.PI;
    const walking = (async () => {
      while (bot.playing()) {
        heading += (Math.random() - 0.5) * 0.8;
        x = inside(x + Math.cos(heading) * step);
        other = inside(other + Math.sin(heading) * step);
        bot.move(
          options.ground === "y"
            ? { x, y: other, z: 0, yaw: heading }
            : { x, y: 0, z: other, yaw: heading },
        );
        await bot.sleep(options.moveIntervalMs ?? bot.intervalMs);
      }
    })();
    await Promise.all([walking, options.alongside?.(bot)]);
  };
}

/**
 * The built-in scenarios, by name.
 *
 * - `idle`: joins and stays (keepalive only): what idle players cost.
 * - `chat`: a chat line every interval; RTT until the bot hears its own line.
 * - `echo`: an echo request every interval; RTT until it comes back.
 * - `walk`: a move every interval, wandering in a 256 × 256 square from a random start; with
 *   `[cluster.fragments] enabled = true` the positions of nearby bots come back (counted as
 *   received), with fragments off nothing does.
 * - `mixed`: a chat line and an echo request every interval (the default).
 *
 * @example
 * ```ts
 * import { BUILTIN_SCENARIOS } from "./bot_scenarios.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(Object.keys(BUILTIN_SCENARIOS), ["idle", "chat", "echo", "walk", "mixed"]);
 * ```
 */
export const BUILTIN_SCENARIOS: Readonly<Record<string, BotScenario>> = Object.freeze({
  idle: async (bot: BotContext) => {
    while (bot.playing()) await bot.sleep(bot.intervalMs);
  },
  chat: (bot: BotContext) => {
    let line = 0;
    return every(bot, () => bot.chat(`bot ${bot.bot} says hello #${line++}`));
  },
  echo: (bot: BotContext) => every(bot, () => bot.echo()),
  walk: walkScenario(),
  mixed: (bot: BotContext) => {
    let line = 0;
    return every(bot, () => {
      bot.chat(`bot ${bot.bot} says hello #${line++}`);
      bot.echo();
    });
  },
});

/**
 * Finds a scenario: a built-in name, or a module path / URL whose default export (or export
 * named `scenario`) is a {@linkcode BotScenario}. A relative path resolves against `cwd`.
 *
 * @param spec `idle`, `chat`, `echo`, `walk`, `mixed`, or a module such as `./scenario.ts`.
 * @param cwd Directory relative paths resolve against (default: the working directory).
 * @throws {TypeError} If the module cannot be imported or exports no scenario function.
 *
 * @example
 * ```ts
 * import { BUILTIN_SCENARIOS, loadScenario } from "./bot_scenarios.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(await loadScenario("echo"), BUILTIN_SCENARIOS.echo);
 * await assert.rejects(loadScenario("./no/such/scenario.ts"), TypeError);
 * ```
 */
export async function loadScenario(spec: string, cwd: string = Deno.cwd()): Promise<BotScenario> {
  const builtin = Object.hasOwn(BUILTIN_SCENARIOS, spec) ? BUILTIN_SCENARIOS[spec] : undefined;
  if (builtin !== undefined) return builtin;
  const base = new URL(`file://${cwd.endsWith("/") ? cwd : `${cwd}/`}`);
  const url = /^[a-z][a-z0-9+.-]*:/i.test(spec) ? new URL(spec) : new URL(spec, base);
  let module: Record<string, unknown>;
  try {
    module = await import(url.href);
  } catch (cause) {
    const why = cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause);
    throw new TypeError(
      `--scenario ${spec}: not a built-in (${
        Object.keys(BUILTIN_SCENARIOS).join(", ")
      }) and cannot import ${url.href} (${why})`,
      { cause },
    );
  }
  const scenario = module.default ?? module.scenario;
  if (typeof scenario !== "function") {
    throw new TypeError(
      `--scenario ${spec}: the module must default-export a function (bot) => …`,
    );
  }
  return scenario as BotScenario;
}
