/**
 * Sustenet for Deno: networking for MMOs and large multiplayer games. A master coordinates
 * clusters; clients ask the master for a cluster and play on it; game logic runs in plugins.
 *
 * This entry point re-exports the shared core (protocol, security, config, logging). The roles
 * have their own entry points: `@sustenet/sustenet/master`, `/cluster`, `/client`.
 *
 * @example
 * ```ts
 * import { PROTOCOL_VERSION } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(PROTOCOL_VERSION, 2);
 * ```
 *
 * @module
 */
export * from "./shared/mod.ts";
