/**
 * Test plugin that is honest but slow: each command 0xa0 costs it 0.5 ms of CPU, so a player
 * sending them faster than that fills its host's queue. Command 0xa1 answers 0xa1 with how many
 * 0xa0 it handled (as text), which shows it is still alive and was never restarted.
 *
 * It must never be configured on a real cluster.
 *
 * @module
 */

import { definePlugin } from "../../shared/plugin.ts";

let handled = 0;

/**
 * The slow plugin.
 *
 * @example
 * ```ts
 * import slow from "./slow.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(typeof slow.onMessage, "function");
 * ```
 */
export default definePlugin({
  onMessage(ctx, from, command) {
    if (command === 0xa0) {
      const until = performance.now() + 0.5;
      while (performance.now() < until) {
        // Busy for 0.5 ms: the plugin's own cost per message.
      }
      handled++;
    } else if (command === 0xa1) {
      ctx.send(from, 0xa1, new TextEncoder().encode(String(handled)));
    }
  },
});
