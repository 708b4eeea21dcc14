// This module is browser compatible.
/**
 * The paths the live browser page is served on (`live_page.ts`), apart so that config
 * validation can refuse a WebSocket path that would shadow one without loading server code.
 *
 * @module
 */

/**
 * Every path the live page answers; any other on its port is a 404.
 *
 * @example
 * ```ts
 * import { LIVE_PAGE_PATHS } from "./live_page_paths.ts";
 * import assert from "node:assert/strict";
 *
 * assert.ok(LIVE_PAGE_PATHS.includes("/"));
 * assert.ok(!LIVE_PAGE_PATHS.includes("/sustenet"));
 * ```
 */
export const LIVE_PAGE_PATHS: readonly string[] = Object.freeze([
  "/",
  "/index.html",
  "/demo.js",
  "/sustenet.js",
  "/config.json",
]);
