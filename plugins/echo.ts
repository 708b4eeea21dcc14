// This module is browser compatible.
/**
 * Example plugin: echoes plugin command 0x80 back to its sender, payload unchanged. The
 * smallest useful plugin, and the one tests use to measure the host round trip.
 *
 * It must never answer anyone but the sender, nor any other command.
 *
 * @example
 * ```ts
 * import echo from "./echo.ts";
 * import { InProcessPluginHost } from "../cluster/in_process_plugin_host.ts";
 * import { asClientId } from "../shared/plugin.ts";
 * import assert from "node:assert/strict";
 *
 * const replies: number[][] = [];
 * const host = new InProcessPluginHost(echo, {
 *   send: (_to, _command, payload) => replies.push([...payload]),
 *   broadcast() {},
 *   kick() {},
 * }, { name: "echo" });
 * await host.start();
 * host.message(asClientId(1), 0x80, new Uint8Array([7]));
 * host.message(asClientId(1), 0x81, new Uint8Array([8])); // not echo's command
 * assert.deepEqual(replies, [[7]]);
 * ```
 *
 * @module
 */

import { definePlugin } from "../shared/plugin.ts";

/**
 * The command echo answers (and answers with).
 *
 * @example
 * ```ts
 * import echo, { ECHO_COMMAND } from "./echo.ts";
 * import { asClientId, createPluginContext } from "../shared/plugin.ts";
 * import assert from "node:assert/strict";
 *
 * const sent: [number, string][] = [];
 * const ctx = createPluginContext({
 *   name: "echo",
 *   settings: {},
 *   players: () => [],
 *   sink: {
 *     send: (_to, command, payload) => sent.push([command, new TextDecoder().decode(payload)]),
 *     broadcast: (command, payload) => sent.push([command, new TextDecoder().decode(payload.subarray(4))]),
 *     kick() {},
 *     log() {},
 *   },
 * });
 * echo.onMessage?.(ctx, asClientId(1), ECHO_COMMAND, new TextEncoder().encode("ping"));
 * assert.deepEqual(sent, [[ECHO_COMMAND, "ping"]]);
 * ```
 */
export const ECHO_COMMAND = 0x80;

/**
 * The echo plugin.
 *
 * @example
 * ```ts
 * import echo from "./echo.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(typeof echo.onMessage, "function");
 * ```
 */
export default definePlugin({
  // Declared, so the cluster answers a command no plugin handles instead of dropping it.
  commands: [ECHO_COMMAND],
  onMessage(ctx, from, command, payload) {
    if (command === ECHO_COMMAND) ctx.send(from, ECHO_COMMAND, payload);
  },
});
