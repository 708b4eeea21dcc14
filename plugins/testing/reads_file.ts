/**
 * Test plugin: on command 0x90 it tries `Deno.readTextFile` on the UTF-8 path in the payload
 * and answers the sender with command 0x90: `ok:<text>`, or `error:<error name>` (a Worker
 * without read permission reports `error:NotCapable`).
 *
 * It must never be configured on a real cluster.
 *
 * @module
 */

import { definePlugin } from "../../shared/plugin.ts";

const encoder = new TextEncoder();

/**
 * The file-reading plugin.
 *
 * @example
 * ```ts
 * import readsFile from "./reads_file.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(typeof readsFile.onMessage, "function");
 * ```
 */
export default definePlugin({
  async onMessage(ctx, from, command, payload) {
    if (command !== 0x90) return;
    const path = new TextDecoder().decode(payload);
    try {
      const text = await Deno.readTextFile(path);
      ctx.send(from, 0x90, encoder.encode(`ok:${text}`));
    } catch (err) {
      ctx.send(from, 0x90, encoder.encode(`error:${err instanceof Error ? err.name : "?"}`));
    }
  },
});
