// This module is browser compatible.
/**
 * Example plugin: a chat room. A player sends command 0x81 with UTF-8 text; everyone,
 * the sender included, receives command 0x81 with `u32 senderClientId | text`. Text over
 * `settings.maxLength` bytes (default 200) or not valid UTF-8 is refused: the sender alone gets
 * command 0x82 with the reason as UTF-8 text. Each player may send `settings.messagesPerSecond`
 * lines a second (default 5) in bursts of `settings.messageBurst` (default 10); a line over
 * that is refused the same way, so one chatty player cannot flood everyone's screen (the
 * cluster's own per-player limits bound the bytes; this bounds the lines people must read).
 *
 * It must never broadcast text it refused, nor text that is not valid UTF-8, and never keep
 * state for a player who left.
 *
 * @example
 * ```ts
 * import chat, { CHAT_COMMAND, CHAT_REFUSED_COMMAND } from "./chat.ts";
 * import { InProcessPluginHost } from "../cluster/in_process_plugin_host.ts";
 * import { asClientId } from "../shared/plugin.ts";
 * import assert from "node:assert/strict";
 *
 * const out: string[] = [];
 * const host = new InProcessPluginHost(chat, {
 *   send: (to, command, payload) =>
 *     out.push(`to ${to} ${command}: ${new TextDecoder().decode(payload)}`),
 *   broadcast: (command, payload) =>
 *     out.push(`all ${command}: ${new TextDecoder().decode(payload.subarray(4))}`),
 *   kick() {},
 * }, { name: "chat", settings: { maxLength: 5, messagesPerSecond: 1, messageBurst: 2 } });
 * await host.start();
 * for (const text of ["hi", "too long", "ok", "again"]) {
 *   host.message(asClientId(3), CHAT_COMMAND, new TextEncoder().encode(text));
 * }
 * assert.deepEqual(out, [
 *   `all ${CHAT_COMMAND}: hi`,
 *   `to 3 ${CHAT_REFUSED_COMMAND}: message is 8 bytes, the limit is 5`,
 *   `all ${CHAT_COMMAND}: ok`,
 *   `to 3 ${CHAT_REFUSED_COMMAND}: too many messages, the limit is 1 per second`,
 * ]);
 * ```
 *
 * @module
 */

import { type ClientId, definePlugin, type PluginContext } from "../shared/plugin.ts";
import { TokenBucket } from "../shared/token_bucket.ts";

/**
 * Chat text, from a player and to everyone.
 *
 * @example
 * ```ts
 * import chat, { CHAT_COMMAND } from "./chat.ts";
 * import { asClientId, createPluginContext } from "../shared/plugin.ts";
 * import assert from "node:assert/strict";
 *
 * const sent: [number, string][] = [];
 * const ctx = createPluginContext({
 *   name: "chat",
 *   settings: {},
 *   players: () => [],
 *   sink: {
 *     send: (_to, command, payload) => sent.push([command, new TextDecoder().decode(payload)]),
 *     broadcast: (command, payload) => sent.push([command, new TextDecoder().decode(payload.subarray(4))]),
 *     kick() {},
 *     log() {},
 *   },
 * });
 * // A line from player 1 goes to everyone, prefixed with the sender's id.
 * chat.onMessage?.(ctx, asClientId(1), CHAT_COMMAND, new TextEncoder().encode("hi all"));
 * assert.deepEqual(sent, [[CHAT_COMMAND, "hi all"]]);
 * ```
 */
export const CHAT_COMMAND = 0x81;
/**
 * A refusal, to the sender only.
 *
 * @example
 * ```ts
 * import chat, { CHAT_COMMAND, CHAT_REFUSED_COMMAND } from "./chat.ts";
 * import { asClientId, createPluginContext } from "../shared/plugin.ts";
 * import assert from "node:assert/strict";
 *
 * const sent: [number, string][] = [];
 * const ctx = createPluginContext({
 *   name: "chat",
 *   settings: {},
 *   players: () => [],
 *   sink: {
 *     send: (_to, command, payload) => sent.push([command, new TextDecoder().decode(payload)]),
 *     broadcast: (command, payload) => sent.push([command, new TextDecoder().decode(payload.subarray(4))]),
 *     kick() {},
 *     log() {},
 *   },
 * });
 * // A line that is not UTF-8 is refused to its sender only.
 * chat.onMessage?.(ctx, asClientId(1), CHAT_COMMAND, new Uint8Array([0xff]));
 * assert.deepEqual(sent, [[CHAT_REFUSED_COMMAND, "message is not valid UTF-8"]]);
 * ```
 */
export const CHAT_REFUSED_COMMAND = 0x82;
/**
 * `settings.maxLength` when not set, in bytes.
 *
 * @example
 * ```ts
 * import chat, { CHAT_COMMAND, CHAT_REFUSED_COMMAND, DEFAULT_MAX_LENGTH } from "./chat.ts";
 * import { asClientId, createPluginContext } from "../shared/plugin.ts";
 * import assert from "node:assert/strict";
 *
 * const sent: [number, string][] = [];
 * const ctx = createPluginContext({
 *   name: "chat",
 *   settings: {},
 *   players: () => [],
 *   sink: {
 *     send: (_to, command, payload) => sent.push([command, new TextDecoder().decode(payload)]),
 *     broadcast: (command, payload) => sent.push([command, new TextDecoder().decode(payload.subarray(4))]),
 *     kick() {},
 *     log() {},
 *   },
 * });
 * // No `maxLength` setting: a line one byte over the default is refused.
 * chat.onMessage?.(ctx, asClientId(1), CHAT_COMMAND, new Uint8Array(DEFAULT_MAX_LENGTH + 1));
 * assert.deepEqual(sent, [[
 *   CHAT_REFUSED_COMMAND,
 *   `message is ${DEFAULT_MAX_LENGTH + 1} bytes, the limit is ${DEFAULT_MAX_LENGTH}`,
 * ]]);
 * ```
 */
export const DEFAULT_MAX_LENGTH = 200;
/**
 * `settings.messagesPerSecond` when not set: lines one player may send per second.
 *
 * @example
 * ```ts
 * import chat, { CHAT_COMMAND, CHAT_REFUSED_COMMAND, DEFAULT_MESSAGES_PER_SECOND } from "./chat.ts";
 * import { asClientId, createPluginContext } from "../shared/plugin.ts";
 * import assert from "node:assert/strict";
 *
 * const sent: [number, string][] = [];
 * const ctx = createPluginContext({
 *   name: "chat",
 *   settings: { messageBurst: 1 },
 *   players: () => [],
 *   sink: {
 *     send: (_to, command, payload) => sent.push([command, new TextDecoder().decode(payload)]),
 *     broadcast: (command, payload) => sent.push([command, new TextDecoder().decode(payload.subarray(4))]),
 *     kick() {},
 *     log() {},
 *   },
 * });
 * // A burst of one: the second line at once is over the default rate.
 * const line = new TextEncoder().encode("gg");
 * chat.onMessage?.(ctx, asClientId(1), CHAT_COMMAND, line);
 * chat.onMessage?.(ctx, asClientId(1), CHAT_COMMAND, line);
 * assert.deepEqual(sent[1], [
 *   CHAT_REFUSED_COMMAND,
 *   `too many messages, the limit is ${DEFAULT_MESSAGES_PER_SECOND} per second`,
 * ]);
 * ```
 */
export const DEFAULT_MESSAGES_PER_SECOND = 5;
/**
 * `settings.messageBurst` when not set: lines one player may send at once.
 *
 * @example
 * ```ts
 * import chat, { CHAT_COMMAND, CHAT_REFUSED_COMMAND, DEFAULT_MESSAGE_BURST } from "./chat.ts";
 * import { asClientId, createPluginContext } from "../shared/plugin.ts";
 * import assert from "node:assert/strict";
 *
 * const sent: [number, string][] = [];
 * const ctx = createPluginContext({
 *   name: "chat",
 *   settings: {},
 *   players: () => [],
 *   sink: {
 *     send: (_to, command, payload) => sent.push([command, new TextDecoder().decode(payload)]),
 *     broadcast: (command, payload) => sent.push([command, new TextDecoder().decode(payload.subarray(4))]),
 *     kick() {},
 *     log() {},
 *   },
 * });
 * // One player sends a burst at once: the first DEFAULT_MESSAGE_BURST lines get through.
 * for (let i = 0; i <= DEFAULT_MESSAGE_BURST; i++) {
 *   chat.onMessage?.(ctx, asClientId(1), CHAT_COMMAND, new TextEncoder().encode(`line ${i}`));
 * }
 * assert.equal(sent.filter(([command]) => command === CHAT_COMMAND).length, DEFAULT_MESSAGE_BURST);
 * assert.equal(sent.at(-1)?.[0], CHAT_REFUSED_COMMAND);
 * ```
 */
export const DEFAULT_MESSAGE_BURST = 10;

/**
 * The settings chat reads; any other key is logged as unknown when it starts.
 *
 * @example
 * ```ts
 * import { CHAT_SETTINGS } from "./chat.ts";
 * import assert from "node:assert/strict";
 *
 * assert.ok(CHAT_SETTINGS.includes("maxLength"));
 * ```
 */
export const CHAT_SETTINGS: readonly string[] = ["maxLength", "messagesPerSecond", "messageBurst"];

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true });

// A limit from settings, or the default (with an error logged) when it is not a positive
// integer; read per message so one plugin object can serve hosts with different settings.
function positiveSetting(ctx: PluginContext, name: string, fallback: number): number {
  const value = ctx.settings[name];
  if (value === undefined) return fallback;
  if (typeof value === "number" && Number.isInteger(value) && value > 0) return value;
  ctx.log.error(`settings.${name} must be a positive integer; using ${fallback}`);
  return fallback;
}

// Each player's line bucket, per context (one plugin object can serve several hosts).
const buckets = new WeakMap<PluginContext, Map<ClientId, TokenBucket>>();

function mayPost(ctx: PluginContext, from: ClientId, limit: number): boolean {
  let players = buckets.get(ctx);
  if (players === undefined) buckets.set(ctx, players = new Map());
  let bucket = players.get(from);
  if (bucket === undefined) {
    const burst = positiveSetting(ctx, "messageBurst", DEFAULT_MESSAGE_BURST);
    bucket = new TokenBucket({ ratePerS: limit, burst });
    players.set(from, bucket);
  }
  return bucket.take(1, performance.now());
}

function isUtf8(bytes: Uint8Array): boolean {
  try {
    strictDecoder.decode(bytes);
    return true;
  } catch (err) {
    if (err instanceof TypeError) return false; // the fatal decoder's "invalid UTF-8"
    throw err;
  }
}

/**
 * The chat plugin.
 *
 * @example
 * ```ts
 * import chat from "./chat.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(typeof chat.onMessage, "function");
 * ```
 */
export default definePlugin({
  commands: [CHAT_COMMAND],
  onStart(ctx) {
    // A misspelt setting (`max_message_length` for `maxLength`) would otherwise be ignored.
    for (const key of Object.keys(ctx.settings)) {
      if (!CHAT_SETTINGS.includes(key)) {
        ctx.log.warning(`unknown setting ${key}; chat reads ${CHAT_SETTINGS.join(", ")}`);
      }
    }
  },
  onMessage(ctx, from, command, payload) {
    if (command !== CHAT_COMMAND) return;
    const limit = positiveSetting(ctx, "maxLength", DEFAULT_MAX_LENGTH);
    if (payload.length > limit) {
      const reason = `message is ${payload.length} bytes, the limit is ${limit}`;
      ctx.send(from, CHAT_REFUSED_COMMAND, encoder.encode(reason));
      return;
    }
    if (!isUtf8(payload)) {
      ctx.send(from, CHAT_REFUSED_COMMAND, encoder.encode("message is not valid UTF-8"));
      return;
    }
    // Counted after the checks: a refused line never reaches anyone's screen.
    const rate = positiveSetting(ctx, "messagesPerSecond", DEFAULT_MESSAGES_PER_SECOND);
    if (!mayPost(ctx, from, rate)) {
      const reason = `too many messages, the limit is ${rate} per second`;
      ctx.send(from, CHAT_REFUSED_COMMAND, encoder.encode(reason));
      return;
    }
    const line = new Uint8Array(4 + payload.length);
    new DataView(line.buffer).setUint32(0, from);
    line.set(payload, 4);
    ctx.broadcast(CHAT_COMMAND, line);
  },
  onLeave(ctx, player) {
    buckets.get(ctx)?.delete(player.clientId);
  },
});
