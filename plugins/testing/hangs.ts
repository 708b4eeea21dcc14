// This module is browser compatible.
/**
 * Test plugin: command 0x90 makes it spin forever (`for (;;) {}`), the case only a watchdog
 * can handle. Each joining player gets command 0x92 `"hello"` (so a restart shows up as a
 * second greeting), command 0x91 is echoed, and command 0x94 answers its process id.
 *
 * It must never be configured on a real cluster.
 *
 * @module
 */

import { definePlugin } from "../../shared/plugin.ts";

/**
 * The hanging plugin.
 *
 * @example
 * ```ts
 * import hangs from "./hangs.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(typeof hangs.onJoin, "function");
 * ```
 */
export default definePlugin({
  onJoin(ctx, player) {
    ctx.send(player.clientId, 0x92, new TextEncoder().encode("hello"));
  },
  onMessage(ctx, from, command, payload) {
    if (command === 0x90) {
      for (;;) {
        // Spins without yielding: the event loop never runs again.
      }
    }
    if (command === 0x91) ctx.send(from, 0x91, payload);
    if (command === 0x94) ctx.send(from, 0x94, new TextEncoder().encode(String(Deno.pid)));
  },
});
