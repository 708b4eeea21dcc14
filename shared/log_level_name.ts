// This module is browser compatible.
/**
 * The one log-level type: Config.toml's `log_level` threshold and the level a plugin's
 * `ctx.log` writes at. It lives apart from `logging.ts` (which re-exports it) because plugin
 * sandboxes import it and must not load LogTape.
 *
 * @module
 */

/**
 * A log level, most verbose first: `debug`, `info`, `warning`, `error` ("success" logs at
 * info level).
 *
 * @example
 * ```ts
 * import type { LogLevelName } from "./log_level_name.ts";
 * import { LOG_LEVEL_NAMES } from "./log_level_name.ts";
 * import assert from "node:assert/strict";
 *
 * const level: LogLevelName = "warning";
 * assert.ok(LOG_LEVEL_NAMES.indexOf(level) > LOG_LEVEL_NAMES.indexOf("info"));
 * ```
 */
export type LogLevelName = "debug" | "info" | "warning" | "error";

/**
 * Every {@linkcode LogLevelName}, most verbose first.
 *
 * @example
 * ```ts
 * import { LOG_LEVEL_NAMES } from "./log_level_name.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(LOG_LEVEL_NAMES, ["debug", "info", "warning", "error"]);
 * ```
 */
export const LOG_LEVEL_NAMES: readonly LogLevelName[] = Object.freeze([
  "debug",
  "info",
  "warning",
  "error",
]);
