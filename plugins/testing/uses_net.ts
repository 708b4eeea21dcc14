/**
 * Test plugin: on command 0x90 with a UTF-8 `host:port` payload it tries `fetch` (answering
 * command 0x90) and `Deno.connect` (answering command 0x91), each with `ok` or
 * `error:<error name>` (without net permission: `error:NotCapable`).
 *
 * It must never be configured on a real cluster.
 *
 * @module
 */

import { definePlugin } from "../../shared/plugin.ts";

const encoder = new TextEncoder();

function outcome(err: unknown): Uint8Array {
  return encoder.encode(`error:${err instanceof Error ? err.name : "?"}`);
}

/**
 * The network-using plugin.
 *
 * @example
 * ```ts
 * import usesNet from "./uses_net.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(typeof usesNet.onMessage, "function");
 * ```
 */
export default definePlugin({
  async onMessage(ctx, from, command, payload) {
    if (command !== 0x90) return;
    const address = new TextDecoder().decode(payload);
    try {
      const response = await fetch(`http://${address}/`);
      await response.body?.cancel();
      ctx.send(from, 0x90, encoder.encode("ok"));
    } catch (err) {
      ctx.send(from, 0x90, outcome(err));
    }
    const [hostname, port] = address.split(":");
    try {
      const conn = await Deno.connect({ hostname, port: Number(port) });
      conn.close();
      ctx.send(from, 0x91, encoder.encode("ok"));
    } catch (err) {
      ctx.send(from, 0x91, outcome(err));
    }
  },
});
