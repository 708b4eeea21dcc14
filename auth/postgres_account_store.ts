/**
 * {@linkcode AccountStore} on PostgreSQL through the `postgres` npm driver (porsager), for
 * studios that run several auth services on one database. Same schema and migrations as the
 * SQLite store; migrations run under a transaction-scoped advisory lock so two services starting
 * together apply them once. Every query is a tagged template: values travel as parameters,
 * never as SQL text.
 *
 * @module
 */

import postgres from "postgres";
import {
  accountFromRow,
  type AccountRecord,
  type AccountRow,
  type AccountStore,
  MIGRATIONS,
  MIGRATIONS_TABLE,
  type RefreshTokenRecord,
  type RotateResult,
} from "./account_store.ts";

type Sql = postgres.Sql<Record<string, never>>;

/** Arbitrary constant naming the migration lock (pg_advisory_xact_lock). */
const MIGRATION_LOCK = 0x5375_7374;

function isUniqueViolation(error: unknown): boolean {
  return (error as { code?: unknown })?.code === "23505"; // unique_violation
}

/** Options of {@linkcode PostgresAccountStore.connect}. */
export interface PostgresStoreOptions {
  /** Most connections in the pool. @default {10} */
  readonly maxConnections?: number;
}

/**
 * Accounts in PostgreSQL.
 *
 * @example Type-only (needs a server; tests/auth_store_test.ts starts one)
 * ```ts
 * import { PostgresAccountStore } from "./postgres_account_store.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(typeof PostgresAccountStore.connect, "function");
 * ```
 */
export class PostgresAccountStore implements AccountStore {
  readonly engine = "postgres";
  readonly #sql: Sql;

  private constructor(sql: Sql) {
    this.#sql = sql;
  }

  /**
   * Connects and applies pending migrations.
   *
   * @param url A `postgres://` URL.
   * @param options Pool size.
   */
  static async connect(
    url: string,
    options: PostgresStoreOptions = {},
  ): Promise<PostgresAccountStore> {
    const sql: Sql = postgres(url, {
      max: options.maxConnections ?? 10,
      onnotice: () => {}, // "relation already exists, skipping" and the like
      connect_timeout: 10,
    });
    try {
      await migrate(sql);
      return new PostgresAccountStore(sql);
    } catch (error) {
      await sql.end({ timeout: 1 });
      throw error;
    }
  }

  async createAccount(account: AccountRecord): Promise<"created" | "taken"> {
    const rows = await this.#sql`
      INSERT INTO accounts (id, username, password_hash, created_at)
      VALUES (${account.id}, ${account.username}, ${account.passwordHash}, ${account.createdAt})
      ON CONFLICT DO NOTHING RETURNING id`;
    return rows.length === 1 ? "created" : "taken";
  }

  async findByUsername(username: string): Promise<AccountRecord | undefined> {
    const rows = await this.#sql<AccountRow[]>`SELECT * FROM accounts WHERE username = ${username}`;
    return accountFromRow(rows[0]);
  }

  async findById(id: string): Promise<AccountRecord | undefined> {
    const rows = await this.#sql<AccountRow[]>`SELECT * FROM accounts WHERE id = ${id}`;
    return accountFromRow(rows[0]);
  }

  async setPasswordHash(id: string, passwordHash: string, nowMs: number): Promise<void> {
    await this.#sql.begin(async (tx) => {
      await tx`UPDATE accounts SET password_hash = ${passwordHash} WHERE id = ${id}`;
      await tx`UPDATE refresh_tokens SET revoked_at = ${nowMs}
        WHERE account_id = ${id} AND revoked_at IS NULL`;
    });
  }

  async addRefreshToken(token: RefreshTokenRecord): Promise<void> {
    await this.#sql`
      INSERT INTO refresh_tokens (token_hash, account_id, expires_at, created_at)
      VALUES (${token.tokenHash}, ${token.accountId}, ${token.expiresAt}, ${token.createdAt})`;
  }

  async rotateRefreshToken(
    oldHash: string,
    next: RefreshTokenRecord,
    nowMs: number,
  ): Promise<RotateResult> {
    return await this.#sql.begin(async (tx): Promise<RotateResult> => {
      // The conditional UPDATE is the atomic step: of two racing rotations one sees no row.
      const live = await tx<{ account_id: string }[]>`
        UPDATE refresh_tokens SET revoked_at = ${nowMs}
        WHERE token_hash = ${oldHash} AND revoked_at IS NULL AND expires_at > ${nowMs}
        RETURNING account_id`;
      const owner = live[0]?.account_id;
      if (owner === undefined) {
        const seen = await tx<{ account_id: string; revoked_at: string | null }[]>`
          SELECT account_id, revoked_at FROM refresh_tokens WHERE token_hash = ${oldHash}`;
        const row = seen[0];
        return row !== undefined && row.revoked_at !== null
          ? { kind: "reused", accountId: row.account_id }
          : { kind: "invalid" };
      }
      await tx`
        INSERT INTO refresh_tokens (token_hash, account_id, expires_at, created_at)
        VALUES (${next.tokenHash}, ${owner}, ${next.expiresAt}, ${next.createdAt})`;
      return { kind: "rotated", accountId: owner };
    });
  }

  async revokeRefreshToken(tokenHash: string, nowMs: number): Promise<string | undefined> {
    const rows = await this.#sql<{ account_id: string }[]>`
      UPDATE refresh_tokens SET revoked_at = ${nowMs}
      WHERE token_hash = ${tokenHash} AND revoked_at IS NULL AND expires_at > ${nowMs}
      RETURNING account_id`;
    return rows[0]?.account_id;
  }

  async revokeAllRefreshTokens(accountId: string, nowMs: number): Promise<void> {
    await this.#sql`UPDATE refresh_tokens SET revoked_at = ${nowMs}
      WHERE account_id = ${accountId} AND revoked_at IS NULL`;
  }

  async createDeviceAccount(
    account: AccountRecord,
    deviceHash: string,
  ): Promise<"created" | "taken"> {
    try {
      await this.#sql.begin(async (tx) => {
        await tx`
          INSERT INTO accounts (id, username, password_hash, created_at)
          VALUES (${account.id}, ${account.username}, ${account.passwordHash}, ${account.createdAt})`;
        await tx`
          INSERT INTO devices (device_hash, account_id, created_at)
          VALUES (${deviceHash}, ${account.id}, ${account.createdAt})`;
      });
      return "created";
    } catch (error) {
      if (isUniqueViolation(error)) return "taken";
      throw error;
    }
  }

  async findByDevice(deviceHash: string): Promise<AccountRecord | undefined> {
    const rows = await this.#sql<AccountRow[]>`
      SELECT a.* FROM accounts a JOIN devices d ON d.account_id = a.id
      WHERE d.device_hash = ${deviceHash}`;
    return accountFromRow(rows[0]);
  }

  async setCredentials(
    id: string,
    username: string,
    passwordHash: string,
  ): Promise<"ok" | "taken"> {
    try {
      await this.#sql`UPDATE accounts SET username = ${username}, password_hash = ${passwordHash}
        WHERE id = ${id}`;
      return "ok";
    } catch (error) {
      if (isUniqueViolation(error)) return "taken";
      throw error;
    }
  }

  async countAccounts(): Promise<number> {
    const rows = await this.#sql<{ n: string }[]>`SELECT count(*) AS n FROM accounts`;
    return Number(rows[0]?.n ?? 0);
  }

  async schemaVersion(): Promise<number> {
    const rows = await this.#sql<{ v: number | null }[]>`
      SELECT max(version) AS v FROM schema_migrations`;
    return Number(rows[0]?.v ?? 0);
  }

  async close(): Promise<void> {
    await this.#sql.end({ timeout: 5 });
  }
}

async function migrate(sql: Sql): Promise<void> {
  await sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK})`;
    await tx.unsafe(MIGRATIONS_TABLE); // constant text, no values
    const rows = await tx<{ v: number | null }[]>`SELECT max(version) AS v FROM schema_migrations`;
    const applied = Number(rows[0]?.v ?? 0);
    for (const migration of MIGRATIONS) {
      if (migration.version <= applied) continue;
      for (const statement of migration.statements) await tx.unsafe(statement); // constant text
      await tx`INSERT INTO schema_migrations (version, applied_at)
        VALUES (${migration.version}, ${Date.now()})`;
    }
  });
}
