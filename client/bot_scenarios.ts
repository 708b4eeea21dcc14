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

/** Side of the square the `walk` bots wander in, in world units (a few 64-unit fragments). */
const WALK_AREA = 256;
/** Distance a `walk` bot covers per step, in world units. */
const WALK_STEP = 4;

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
  walk: (bot: BotContext) => {
    let x = Math.random() * WALK_AREA, z = Math.random() * WALK_AREA;
    let heading = Math.random() * 2 * Math.PI;
    return every(bot, () => {
      heading += (Math.random() - 0.5) * 0.8;
      x = Math.min(WALK_AREA, Math.max(0, x + Math.cos(heading) * WALK_STEP));
      z = Math.min(WALK_AREA, Math.max(0, z + Math.sin(heading) * WALK_STEP));
      bot.move({ x, y: 0, z, yaw: heading });
    });
  },
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
