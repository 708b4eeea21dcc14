// This module is browser compatible.
/**
 * Test plugin: on command 0x90 it bypasses its context and posts forged events straight to
 * the host (a protocol command 0x2a, an out-of-range payload, garbage), then answers command
 * 0x91 properly, so a test can check the host dropped the forgeries and kept going.
 *
 * It must never be configured on a real cluster.
 *
 * @module
 */

import { definePlugin } from "../../shared/plugin.ts";

interface Poster {
  postMessage(message: unknown): void;
}

/**
 * The forging plugin.
 *
 * @example
 * ```ts
 * import forges from "./forges.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(typeof forges.onMessage, "function");
 * ```
 */
export default definePlugin({
  onMessage(ctx, from, command) {
    if (command !== 0x90) return;
    const scope = globalThis as unknown as Poster;
    scope.postMessage({
      events: [
        { kind: "send", to: from, command: 0x2a, at: 0, length: 0 },
        { kind: "send", to: from, command: 0x90, at: 0, length: 999 },
        { kind: "kick", client: -1, reason: "x" },
        "garbage",
      ],
      bytes: new Uint8Array(1),
    });
    scope.postMessage("not a batch");
    ctx.send(from, 0x91, new Uint8Array([1]));
  },
});
