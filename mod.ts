// This module is browser compatible.
/**
 * Sustenet for Deno: networking for MMOs and large multiplayer games. A master coordinates
 * clusters; clients ask the master for a cluster and play on it; game logic runs in plugins.
 *
 * This entry point re-exports the browser-compatible shared core (protocol, codec, security,
 * sealed records, join tickets, logging); it loads in a web page as it does in Deno. The other
 * entry points: `@sustenet/sustenet/browser` (the core plus the client a web page needs),
 * `/server` (server-only shared code: TCP transport, fast ciphers, key and config files),
 * and the roles `/master`, `/cluster`, `/client`.
 *
 * @example
 * ```ts
 * import { PROTOCOL_VERSION } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(PROTOCOL_VERSION, 3);
 * ```
 *
 * @module
 */
export * from "./shared/mod.ts";
