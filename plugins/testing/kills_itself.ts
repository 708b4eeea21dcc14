/**
 * Hostile test plugin: on command 0xa0 it signals its own process with the signal named in the
 * payload (`SIGKILL`, `SIGQUIT`, `SIGSTOP`; `SIGINT` and `SIGTERM` are ignored) — allowed without any permission — and on 0xa2 it
 * tries to signal its parent (`Deno.ppid`) with SIGSTOP, answering 0xa2 with the error's name.
 * Each joining player gets 0xa1 with the plugin's process id (so a restart shows up as a new
 * id). In a Worker this ends or freezes the whole cluster; in a subprocess only the plugin.
 *
 * It must never be configured on a real cluster.
 *
 * @module
 */

import { definePlugin } from "../../shared/plugin.ts";

/**
 * The self-signalling plugin.
 *
 * @example
 * ```ts
 * import killsItself from "./kills_itself.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(typeof killsItself.onMessage, "function");
 * ```
 */
export default definePlugin({
  onJoin(ctx, player) {
    ctx.send(player.clientId, 0xa1, new TextEncoder().encode(String(Deno.pid)));
  },
  onMessage(ctx, from, command, payload) {
    if (command === 0xa0) {
      Deno.kill(Deno.pid, new TextDecoder().decode(payload) as Deno.Signal);
    } else if (command === 0xa2) {
      let outcome = "allowed";
      try {
        Deno.kill(Deno.ppid, "SIGSTOP");
      } catch (err) {
        outcome = err instanceof Error ? err.name : String(err);
      }
      ctx.send(from, 0xa2, new TextEncoder().encode(outcome));
    }
  },
});
