// This module is browser compatible.
/**
 * The one storage interface of the account service, and the schema both engines share.
 * {@linkcode SqliteAccountStore} (embedded, the default) and {@linkcode PostgresAccountStore}
 * implement it; one test suite runs against both. Every statement is parameterised; no value
 * is ever spliced into SQL text. Refresh tokens are stored only as SHA-256 hashes.
 *
 * @module
 */

/** An account as stored. */
export interface AccountRecord {
  /** Account id (a UUID; the player id in join tickets). */
  readonly id: string;
  /** Normalised username (unique). */
  readonly username: string;
  /** scrypt hash string. */
  readonly passwordHash: string;
  /** Creation time, Unix ms. */
  readonly createdAt: number;
}

/** A refresh token as stored (its hash only). */
export interface RefreshTokenRecord {
  /** SHA-256 of the token, hex. */
  readonly tokenHash: string;
  /** Owner. */
  readonly accountId: string;
  /** Expiry, Unix ms. */
  readonly expiresAt: number;
  /** Creation time, Unix ms. */
  readonly createdAt: number;
}

/** What rotating a refresh token found. */
export type RotateResult =
  /** The old token was live: it is revoked and the new one stored. */
  | { readonly kind: "rotated"; readonly accountId: string }
  /** The old token had already been used or revoked: a replay; nothing stored. */
  | { readonly kind: "reused"; readonly accountId: string }
  /** Unknown or expired: nothing stored. */
  | { readonly kind: "invalid" };

/**
 * Storage of accounts and refresh tokens.
 *
 * @example Usernames are unique (here in the SQLite store)
 * ```ts
 * import type { AccountStore } from "./account_store.ts";
 * import { SqliteAccountStore } from "./sqlite_account_store.ts";
 * import assert from "node:assert/strict";
 *
 * // Usernames are unique whatever the engine.
 * const dir = await Deno.makeTempDir();
 * const store: AccountStore = SqliteAccountStore.open(`${dir}/accounts.sqlite`);
 * const account = (username: string) => ({
 *   id: crypto.randomUUID(),
 *   username,
 *   passwordHash: "scrypt$…",
 *   createdAt: Date.now(),
 * });
 * assert.equal(await store.createAccount(account("ada")), "created");
 * assert.equal(await store.createAccount(account("ada")), "taken");
 * await store.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export interface AccountStore {
  /** Which engine. */
  readonly engine: "sqlite" | "postgres";
  /** Inserts an account; `"taken"` (and nothing changed) if the username exists. */
  createAccount(account: AccountRecord): Promise<"created" | "taken">;
  /** The account with this normalised username. */
  findByUsername(username: string): Promise<AccountRecord | undefined>;
  /** The account with this id. */
  findById(id: string): Promise<AccountRecord | undefined>;
  /** Replaces an account's password hash and revokes all its refresh tokens at `nowMs`. */
  setPasswordHash(id: string, passwordHash: string, nowMs: number): Promise<void>;
  /** Stores a new refresh token. */
  addRefreshToken(token: RefreshTokenRecord): Promise<void>;
  /**
   * Atomically revokes `oldHash` and stores `next` if `oldHash` is live (unrevoked, unexpired
   * at `nowMs`); `next.accountId` is replaced by the owner of `oldHash`.
   */
  rotateRefreshToken(
    oldHash: string,
    next: RefreshTokenRecord,
    nowMs: number,
  ): Promise<RotateResult>;
  /** Revokes one refresh token; the owner if it was live. */
  revokeRefreshToken(tokenHash: string, nowMs: number): Promise<string | undefined>;
  /** Revokes every refresh token of an account. */
  revokeAllRefreshTokens(accountId: string, nowMs: number): Promise<void>;
  /**
   * Creates an account for a device (no password: its hash never matches) and links the
   * device's id hash to it, in one transaction; `"taken"` (nothing changed) if the device or the
   * username exists.
   */
  createDeviceAccount(account: AccountRecord, deviceHash: string): Promise<"created" | "taken">;
  /** The account a device id hash is linked to. */
  findByDevice(deviceHash: string): Promise<AccountRecord | undefined>;
  /**
   * Gives an account a new username and password hash (a device account becoming a named one);
   * `"taken"` (nothing changed) if another account has the username.
   */
  setCredentials(id: string, username: string, passwordHash: string): Promise<"ok" | "taken">;
  /** Number of accounts. */
  countAccounts(): Promise<number>;
  /** The schema version applied. */
  schemaVersion(): Promise<number>;
  /** Releases the connection(s). */
  close(): Promise<void>;
}

/** One schema migration: statements run in one transaction, then the version is recorded. */
export interface Migration {
  /** Version reached (1, 2, …). */
  readonly version: number;
  /** What it does. */
  readonly description: string;
  /** SQL statements valid on both SQLite and PostgreSQL. */
  readonly statements: readonly string[];
}

/**
 * The versioned schema, applied in order at start by both stores (a version already recorded in
 * `schema_migrations` is skipped). Append; never edit a released entry.
 *
 * @example
 * ```ts
 * import { MIGRATIONS } from "./account_store.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(MIGRATIONS.map((m) => m.version), [1, 2]);
 * ```
 */
export const MIGRATIONS: readonly Migration[] = Object.freeze([
  {
    version: 1,
    description: "accounts and refresh tokens",
    statements: [
      `CREATE TABLE accounts (
        id TEXT PRIMARY KEY,
        username TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        created_at BIGINT NOT NULL
      )`,
      `CREATE TABLE refresh_tokens (
        token_hash TEXT PRIMARY KEY,
        account_id TEXT NOT NULL REFERENCES accounts(id),
        expires_at BIGINT NOT NULL,
        created_at BIGINT NOT NULL,
        revoked_at BIGINT
      )`,
      "CREATE INDEX refresh_tokens_account ON refresh_tokens(account_id)",
    ],
  },
  {
    version: 2,
    description: "device logins linked to accounts",
    statements: [
      `CREATE TABLE devices (
        device_hash TEXT PRIMARY KEY,
        account_id TEXT NOT NULL REFERENCES accounts(id),
        created_at BIGINT NOT NULL
      )`,
      "CREATE INDEX devices_account ON devices(account_id)",
    ],
  },
]);

/** The statement creating the migrations table (both engines). */
export const MIGRATIONS_TABLE =
  "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)";

/** An `accounts` row as both engines return it (`created_at` is a BIGINT: text, number or bigint). */
export interface AccountRow {
  /** The `id` column. */
  readonly id: string;
  /** The `username` column. */
  readonly username: string;
  /** The `password_hash` column. */
  readonly password_hash: string;
  /** The `created_at` column, ms since the epoch. */
  readonly created_at: string | number | bigint;
}

/**
 * The {@linkcode AccountRecord} of an `accounts` row; `undefined` (no such row) stays undefined.
 *
 * @example
 * ```ts
 * import { accountFromRow } from "./account_store.ts";
 * import assert from "node:assert/strict";
 *
 * const row = { id: "a1", username: "ada", password_hash: "scrypt$…", created_at: 5n };
 * assert.deepEqual(accountFromRow(row), {
 *   id: "a1",
 *   username: "ada",
 *   passwordHash: "scrypt$…",
 *   createdAt: 5,
 * });
 * assert.equal(accountFromRow(undefined), undefined);
 * ```
 */
export function accountFromRow(row: AccountRow | undefined): AccountRecord | undefined {
  if (row === undefined) return undefined;
  return {
    id: row.id,
    username: row.username,
    passwordHash: row.password_hash,
    createdAt: Number(row.created_at),
  };
}
