// This module is browser compatible.
/**
 * Example plugin: a chat room. A player sends command 0x81 with UTF-8 text; everyone,
 * the sender included, receives command 0x81 with `u32 senderClientId | text`. Text over
 * `settings.maxLength` bytes (default 200) or not valid UTF-8 is refused: the sender alone gets
 * command 0x82 with the reason as UTF-8 text.
 *
 * It must never broadcast text it refused, nor text that is not valid UTF-8.
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
 * }, { name: "chat", settings: { maxLength: 5 } });
 * await host.start();
 * host.message(asClientId(3), CHAT_COMMAND, new TextEncoder().encode("hi"));
 * host.message(asClientId(3), CHAT_COMMAND, new TextEncoder().encode("too long"));
 * assert.deepEqual(out, [
 *   `all ${CHAT_COMMAND}: hi`,
 *   `to 3 ${CHAT_REFUSED_COMMAND}: message is 8 bytes, the limit is 5`,
 * ]);
 * ```
 *
 * @module
 */

import { definePlugin, type PluginContext } from "../shared/plugin.ts";

/**
 * Chat text, from a player and to everyone.
 *
 * @example
 * ```ts
 * import { CHAT_COMMAND } from "./chat.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(CHAT_COMMAND, 0x81);
 * ```
 */
export const CHAT_COMMAND = 0x81;
/**
 * A refusal, to the sender only.
 *
 * @example
 * ```ts
 * import { CHAT_REFUSED_COMMAND } from "./chat.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(CHAT_REFUSED_COMMAND, 0x82);
 * ```
 */
export const CHAT_REFUSED_COMMAND = 0x82;
/**
 * `settings.maxLength` when not set, in bytes.
 *
 * @example
 * ```ts
 * import { DEFAULT_MAX_LENGTH } from "./chat.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(DEFAULT_MAX_LENGTH, 200);
 * ```
 */
export const DEFAULT_MAX_LENGTH = 200;

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true });

// The limit from settings, or the default (with an error logged) when it is not a positive
// integer; read per message so one plugin object can serve hosts with different settings.
function maxLength(ctx: PluginContext): number {
  const value = ctx.settings.maxLength;
  if (value === undefined) return DEFAULT_MAX_LENGTH;
  if (typeof value === "number" && Number.isInteger(value) && value > 0) return value;
  ctx.log.error(`settings.maxLength must be a positive integer; using ${DEFAULT_MAX_LENGTH}`);
  return DEFAULT_MAX_LENGTH;
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
  onMessage(ctx, from, command, payload) {
    if (command !== CHAT_COMMAND) return;
    const limit = maxLength(ctx);
    if (payload.length > limit) {
      const reason = `message is ${payload.length} bytes, the limit is ${limit}`;
      ctx.send(from, CHAT_REFUSED_COMMAND, encoder.encode(reason));
      return;
    }
    if (!isUtf8(payload)) {
      ctx.send(from, CHAT_REFUSED_COMMAND, encoder.encode("message is not valid UTF-8"));
      return;
    }
    const line = new Uint8Array(4 + payload.length);
    new DataView(line.buffer).setUint32(0, from);
    line.set(payload, 4);
    ctx.broadcast(CHAT_COMMAND, line);
  },
});
