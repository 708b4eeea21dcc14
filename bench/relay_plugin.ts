// This module is browser compatible.
/**
 * The benchmark's relay plugin: every plugin command {@linkcode RELAY_COMMAND} a player sends is
 * broadcast, payload unchanged, to every other player on the cluster — the fan-out issue 9
 * measures. Loaded in-process by `bench/cluster_server.ts`, or by URL from a config.
 *
 * It must never answer any other command, nor send the frame back to its sender.
 *
 * @example
 * ```ts
 * import relay, { RELAY_COMMAND } from "./relay_plugin.ts";
 * import { InProcessPluginHost } from "../cluster/in_process_plugin_host.ts";
 * import { asClientId, type BroadcastOptions } from "../shared/plugin.ts";
 * import assert from "node:assert/strict";
 *
 * const sent: [number, BroadcastOptions | undefined][] = [];
 * const host = new InProcessPluginHost(relay, {
 *   send() {},
 *   broadcast: (command, _payload, options) => sent.push([command, options]),
 *   kick() {},
 * }, { name: "relay" });
 * await host.start();
 * host.message(asClientId(4), RELAY_COMMAND, new Uint8Array(32));
 * host.message(asClientId(4), 0x80, new Uint8Array(32)); // not the relay's command
 * assert.deepEqual(sent, [[RELAY_COMMAND, { except: 4 }]]);
 * ```
 *
 * @module
 */

import { definePlugin } from "../shared/plugin.ts";

/** The plugin command the relay fans out (the raw relay baseline relays every frame). */
export const RELAY_COMMAND = 0x90;

/**
 * The relay plugin.
 *
 * @example
 * ```ts
 * import relay from "./relay_plugin.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(typeof relay.onMessage, "function");
 * ```
 */
export default definePlugin({
  onMessage(ctx, from, command, payload) {
    if (command === RELAY_COMMAND) ctx.broadcast(command, payload, { except: from });
  },
});
