// This module is browser compatible.
/**
 * Test plugin: fails on purpose in every way a hook can. Command 0x90 throws, 0x92 returns a
 * rejected promise, 0x93 throws later from a timer (outside any hook); 0x91 is echoed, so a
 * test can check the plugin still answers after each failure.
 *
 * It must never be configured on a real cluster.
 *
 * @module
 */

import { definePlugin } from "../../shared/plugin.ts";

/**
 * The throwing plugin.
 *
 * @example
 * ```ts
 * import throws from "./throws.ts";
 * import assert from "node:assert/strict";
 *
 * assert.throws(() => throws.onMessage?.({} as never, 1 as never, 0x90, new Uint8Array()));
 * ```
 */
export default definePlugin({
  onMessage(ctx, from, command, payload) {
    if (command === 0x90) throw new Error("thrown on purpose");
    if (command === 0x91) ctx.send(from, 0x91, payload);
    if (command === 0x92) return Promise.reject(new RangeError("rejected on purpose"));
    if (command === 0x93) {
      setTimeout(() => {
        throw new TypeError("thrown from a timer on purpose");
      }, 0);
    }
  },
});
