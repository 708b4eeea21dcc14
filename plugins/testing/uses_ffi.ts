/**
 * Hostile test plugin: at start it opens libc through FFI (needs the `ffi` grant, which the
 * config refuses unless the plugin is `trusted`), so it could read the cluster's key file.
 *
 * It must never be configured on a real cluster.
 *
 * @module
 */

import { definePlugin } from "../../shared/plugin.ts";

/**
 * The FFI plugin.
 *
 * @example
 * ```ts
 * import usesFfi from "./uses_ffi.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(typeof usesFfi.onStart, "function");
 * ```
 */
export default definePlugin({
  onStart(ctx) {
    const libc = Deno.dlopen("libc.so.6", { getpid: { parameters: [], result: "i32" } });
    ctx.log.warning(`loaded libc through FFI in process ${libc.symbols.getpid()}`);
  },
});
