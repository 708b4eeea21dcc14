/**
 * Hostile test plugin: on command 0xa0 it fills the V8 heap until the process dies (payload
 * `heap`), or holds ever more ArrayBuffers, which live outside the V8 heap and its cap
 * (payload `buffers`, 32 MiB every millisecond). Each joining player gets 0xa1 with the plugin's
 * process id. In a Worker the heap case aborts the whole cluster (exit 133).
 *
 * It must never be configured on a real cluster.
 *
 * @module
 */

import { definePlugin } from "../../shared/plugin.ts";

const hoard: unknown[] = [];

/**
 * The memory-exhausting plugin.
 *
 * @example
 * ```ts
 * import exhaustsMemory from "./exhausts_memory.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(typeof exhaustsMemory.onMessage, "function");
 * ```
 */
export default definePlugin({
  onJoin(ctx, player) {
    ctx.send(player.clientId, 0xa1, new TextEncoder().encode(String(Deno.pid)));
  },
  onMessage(_ctx, _from, command, payload) {
    if (command !== 0xa0) return;
    if (new TextDecoder().decode(payload) === "buffers") {
      // Bounded: 256 × 32 MiB (8 GiB) at most, should the cap not stop it first.
      let left = 256;
      const timer = setInterval(() => {
        hoard.push(new Uint8Array(32 * 1024 * 1024).fill(1));
        if (--left === 0) clearInterval(timer);
      }, 1);
      return;
    }
    for (;;) hoard.push({ filler: new Array(64).fill(hoard.length) });
  },
});
