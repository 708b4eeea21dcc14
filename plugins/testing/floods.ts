/**
 * Hostile test plugin that floods its host, one attack per command (the payload's first byte,
 * times 100 000, is how many it makes, 10 000 (1 000 logs) per event-loop turn; bounded so a broken host
 * cannot loop forever):
 * - 0xa0: sends to the sender (events to the cluster's main thread);
 * - 0xa1: sends to a player who does not exist;
 * - 0xa2: `ctx.log` lines;
 * - 0xa3: `console.log` lines forging a cluster log line (`… [INFO] cluster: …`) with a
 *   newline and an ANSI escape, then answers 0xa3 `"done"`.
 * After each flood it sends 0xaf `"done"` to the sender.
 *
 * It must never be configured on a real cluster.
 *
 * @module
 */

import { asClientId, definePlugin } from "../../shared/plugin.ts";

/** The text 0xa3 prints: it pretends to be the cluster's own log line. */
export const FORGED_LINE = "\n2026-01-01 00:00:00.000 [SUCCESS] cluster: \x1b[32madmin logged in";

/**
 * The flooding plugin.
 *
 * @example
 * ```ts
 * import floods from "./floods.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(typeof floods.onMessage, "function");
 * ```
 */
export default definePlugin({
  onMessage(ctx, from, command, payload) {
    const done = () => ctx.send(from, 0xaf, new TextEncoder().encode("done"));
    if (command === 0xa3) {
      for (let i = 0; i < 10; i++) console.log(FORGED_LINE);
      done();
      return;
    }
    const bytes = new Uint8Array(8);
    const nobody = asClientId(0xfffffff0);
    const flood: ((i: number) => void) | undefined = command === 0xa0
      ? () => ctx.send(from, 0xa0, bytes)
      : command === 0xa1
      ? () => ctx.send(nobody, 0xa1, bytes)
      : command === 0xa2
      ? (i) => ctx.log.info(`spam ${i}`)
      : undefined;
    if (flood === undefined) return;
    // As fast as the plugin can, in turns of 10 000 (1 000 log lines): one turn of a million
    // would only get it killed for memory, its output queued inside it until the turn ends.
    const perTurn = command === 0xa2 ? 1_000 : 10_000;
    let left = (payload[0] ?? 1) * 100_000 / perTurn;
    let i = 0;
    const turn = () => {
      for (const end = i + perTurn; i < end; i++) flood(i);
      if (--left > 0) setTimeout(turn, 0);
      else done();
    };
    turn();
  },
});
