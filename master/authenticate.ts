// This module is browser compatible.
/**
 * The master's player identity hook: the type of `startMaster({ authenticate })` and the
 * default, which gives every client an anonymous guest id. The hook decides who a player is
 * from the opaque credential of JoinCluster; the join ticket then carries that id to the
 * cluster. This module must never log or keep a credential.
 *
 * @module
 */

/** Where a connection comes from (a `Deno.NetAddr` fits). */
export interface RemoteAddress {
  /** IP address or host name of the peer. */
  readonly hostname: string;
  /** TCP port of the peer. */
  readonly port: number;
}

/** What the master knows about the connection asking to join, besides the credential. */
export interface AuthenticateInfo {
  /** The client's address. */
  readonly remoteAddr: RemoteAddress;
}

/** The identity the hook grants. */
export interface AuthenticatedPlayer {
  /** Player id written into the join ticket: well-formed UTF-8, at most 255 bytes. */
  readonly playerId: string;
}

/**
 * Decides the player id of a JoinCluster from its credential; `null` (or a throw) refuses the
 * join with `Error(Unauthorized)` and no ticket is issued.
 *
 * @example A hook accepting one shared token
 * ```ts
 * import type { AuthenticateHook } from "./authenticate.ts";
 * import assert from "node:assert/strict";
 *
 * const hook: AuthenticateHook = (credential) =>
 *   Promise.resolve(
 *     new TextDecoder().decode(credential) === "let-me-in" ? { playerId: "alice" } : null,
 *   );
 * const info = { remoteAddr: { hostname: "127.0.0.1", port: 5000 } };
 * assert.deepEqual(await hook(new TextEncoder().encode("let-me-in"), info), { playerId: "alice" });
 * assert.equal(await hook(new Uint8Array(), info), null);
 * ```
 */
export type AuthenticateHook = (
  credential: Uint8Array,
  info: AuthenticateInfo,
) => Promise<AuthenticatedPlayer | null>;

/**
 * The default hook: ignores the credential and returns a fresh anonymous id `guest-<16 hex>`.
 *
 * @example
 * ```ts
 * import { guestAuthenticate } from "./authenticate.ts";
 * import assert from "node:assert/strict";
 *
 * const info = { remoteAddr: { hostname: "127.0.0.1", port: 5000 } };
 * const player = await guestAuthenticate(new Uint8Array(), info);
 * assert.match(player?.playerId ?? "", /^guest-[0-9a-f]{16}$/);
 * ```
 */
export function guestAuthenticate(
  _credential: Uint8Array,
  _info: AuthenticateInfo,
): Promise<AuthenticatedPlayer | null> {
  return Promise.resolve({
    playerId: `guest-${crypto.getRandomValues(new Uint8Array(8)).toHex()}`,
  });
}

/** Largest player id a ticket carries, in UTF-8 bytes (`str8`). */
const MAX_PLAYER_ID_BYTES = 255;

/**
 * Tells whether a hook's player id can go into a ticket: non-empty, well-formed, ≤ 255 UTF-8
 * bytes.
 *
 * @param playerId The id the hook returned.
 *
 * @example
 * ```ts
 * import { isValidPlayerId } from "./authenticate.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(isValidPlayerId("alice"), true);
 * assert.equal(isValidPlayerId(""), false);
 * assert.equal(isValidPlayerId("x".repeat(256)), false);
 * ```
 */
export function isValidPlayerId(playerId: unknown): playerId is string {
  return typeof playerId === "string" && playerId.length > 0 && playerId.isWellFormed() &&
    new TextEncoder().encode(playerId).length <= MAX_PLAYER_ID_BYTES;
}
