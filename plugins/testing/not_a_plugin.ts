// This module is browser compatible.
/**
 * Test plugin module whose default export is not a plugin, so loading it must fail.
 *
 * It must never be configured on a real cluster.
 *
 * @module
 */

/**
 * Not a plugin: a number.
 *
 * @example
 * ```ts
 * import notAPlugin from "./not_a_plugin.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(notAPlugin, 42);
 * ```
 */
export default 42;
