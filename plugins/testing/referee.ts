// This module is browser compatible.
/**
 * Test plugin: exercises moves, kicks and broadcast options. `onMove` rejects y < 0, kicks
 * below y = -100 ("fell out of the world"), and dawdles 1000 ms when x = 999 (to test move
 * timeouts). Each joining player is announced to the others with command 0x95 (its client id
 * as text), and to fragment 7's audience with command 0x96. On stop it broadcasts command 0x97
 * `"bye"` after a short await (to test that hosts wait for an async `onStop`).
 *
 * It must never be configured on a real cluster.
 *
 * @module
 */

import { definePlugin } from "../../shared/plugin.ts";

/**
 * The referee plugin.
 *
 * @example
 * ```ts
 * import referee from "./referee.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(referee.onMove?.({} as never, 1 as never, { x: 0, y: -1, z: 0 }), false);
 * ```
 */
export default definePlugin({
  onJoin(ctx, player) {
    const text = new TextEncoder().encode(String(player.clientId));
    ctx.broadcast(0x95, text, { except: player.clientId });
    ctx.broadcast(0x96, text, { fragment: 7 });
  },
  onMove(ctx, client, move) {
    if (move.x === 999) {
      const until = Date.now() + 1000;
      while (Date.now() < until) {
        // Busy on purpose: the verdict comes late.
      }
    }
    if (move.y < -100) ctx.kick(client, "fell out of the world");
    return move.y >= 0;
  },
  async onStop(ctx) {
    await new Promise((resolve) => setTimeout(resolve, 10));
    ctx.broadcast(0x97, new TextEncoder().encode("bye"));
  },
});
