// This module is browser compatible.
/**
 * Test plugin: command 0x90 makes its Worker close itself (`self.close()`), a plugin that
 * dies without an error; the watchdog notices the silence. Each joining player gets command
 * 0x92 `"hello"`, and command 0x91 is echoed.
 *
 * It must never be configured on a real cluster.
 *
 * @module
 */

import { definePlugin } from "../../shared/plugin.ts";

interface Closable {
  close(): void;
}

/**
 * The exiting plugin.
 *
 * @example
 * ```ts
 * import exits from "./exits.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(typeof exits.onMessage, "function");
 * ```
 */
export default definePlugin({
  onJoin(ctx, player) {
    ctx.send(player.clientId, 0x92, new TextEncoder().encode("hello"));
  },
  onMessage(ctx, from, command, payload) {
    if (command === 0x90) (globalThis as unknown as Closable).close();
    if (command === 0x91) ctx.send(from, 0x91, payload);
  },
});
