/**
 * The account service of Sustenet: accounts in SQLite (embedded) or PostgreSQL, scrypt
 * password hashes, Ed25519 access tokens that masters verify offline, rotated refresh tokens.
 * Run it with `deno task auth`, or in-process with {@linkcode startAuth}.
 *
 * @example
 * ```ts
 * import { startAuth } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await using auth = await startAuth({
 *   port: 0,
 *   store: { kind: "sqlite", path: `${dir}/auth.sqlite` },
 *   signingKeys: `${dir}/ring.json`,
 *   scrypt: { logN: 10, r: 8, p: 1 },
 * });
 * assert.ok(auth.addr.port > 0);
 * ```
 *
 * @module
 */

export * from "./access_token.ts";
export * from "./account_store.ts";
export * from "./auth_error.ts";
export * from "./auth_options.ts";
export * from "./auth_service.ts";
export * from "./key_ring.ts";
export * from "./login_limiter.ts";
export * from "./password_hasher.ts";
export * from "./postgres_account_store.ts";
export * from "./sqlite_account_store.ts";
export * from "./start_auth.ts";
export * from "./username.ts";
