// This module is browser compatible.
/**
 * Test plugin with state a restart would lose: it counts every message it is given and picks a
 * random instance id when it starts. Command 0x80 is echoed to its sender; command 0x90 is
 * answered (0x90) with `u32 instance | u32 messages seen`, the query included. A flood test asks
 * before and after: the same instance and a count equal to the messages the cluster delivered
 * prove the plugin was never restarted and lost nothing.
 *
 * It must never be configured on a real cluster.
 *
 * @module
 */

import { definePlugin, type PluginContext } from "../../shared/plugin.ts";

/**
 * The query command (and its answer).
 *
 * @example
 * ```ts
 * import counts, { COUNTS_COMMAND } from "./counts.ts";
 * import { asClientId, createPluginContext } from "../../shared/plugin.ts";
 * import assert from "node:assert/strict";
 *
 * const answers: Uint8Array[] = [];
 * const ctx = createPluginContext({
 *   name: "counts",
 *   settings: {},
 *   players: () => [],
 *   sink: { send: (_to, _command, payload) => answers.push(payload), broadcast() {}, kick() {}, log() {} },
 * });
 * counts.onStart?.(ctx);
 * counts.onMessage?.(ctx, asClientId(1), 0x80, new Uint8Array([1])); // echoed, and counted
 * counts.onMessage?.(ctx, asClientId(1), COUNTS_COMMAND, new Uint8Array());
 * const answer = new DataView(answers[1].buffer);
 * assert.equal(answer.getUint32(4), 2); // messages seen, the query included
 * ```
 */
export const COUNTS_COMMAND = 0x90;

interface State {
  readonly instance: number;
  seen: number;
}

// Per context, so one plugin object can serve several hosts.
const states = new WeakMap<PluginContext, State>();

/**
 * The counting plugin.
 *
 * @example
 * ```ts
 * import counts, { COUNTS_COMMAND } from "./counts.ts";
 * import { InProcessPluginHost } from "../../cluster/in_process_plugin_host.ts";
 * import { asClientId } from "../../shared/plugin.ts";
 * import assert from "node:assert/strict";
 *
 * const answers: Uint8Array[] = [];
 * const host = new InProcessPluginHost(counts, {
 *   send: (_to, command, payload) => void (command === COUNTS_COMMAND && answers.push(payload.slice())),
 *   broadcast() {},
 *   kick() {},
 * }, { name: "counts" });
 * await host.start();
 * host.message(asClientId(1), 0x80, new Uint8Array([1]));
 * host.message(asClientId(1), COUNTS_COMMAND, new Uint8Array());
 * assert.equal(new DataView(answers[0].buffer).getUint32(4), 2);
 * ```
 */
export default definePlugin({
  onStart(ctx) {
    states.set(ctx, { instance: crypto.getRandomValues(new Uint32Array(1))[0], seen: 0 });
  },
  onMessage(ctx, from, command, payload) {
    const state = states.get(ctx);
    if (state === undefined) return;
    state.seen++;
    if (command === 0x80) ctx.send(from, 0x80, payload);
    if (command === COUNTS_COMMAND) {
      const answer = new Uint8Array(8);
      const view = new DataView(answer.buffer);
      view.setUint32(0, state.instance);
      view.setUint32(4, state.seen);
      ctx.send(from, COUNTS_COMMAND, answer);
    }
  },
});
