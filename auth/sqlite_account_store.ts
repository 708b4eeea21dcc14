/**
 * {@linkcode AccountStore} on SQLite through Deno's built-in `node:sqlite` (no server, one
 * file). WAL journal, `synchronous = FULL` (a committed account survives a crash of the
 * process or the machine), foreign keys on, a busy timeout so two processes on one file wait
 * instead of failing, and `BEGIN IMMEDIATE` transactions for read-then-write steps. Statements
 * are prepared with placeholders; no value is ever spliced into SQL.
 *
 * @module
 */

import { DatabaseSync, type StatementSync } from "node:sqlite";
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

// node:sqlite types a row as a generic record; the accounts table's columns make it an AccountRow.
function toAccount(row: unknown): AccountRecord | undefined {
  return accountFromRow(row as AccountRow | undefined);
}

function isUniqueViolation(error: unknown): boolean {
  // SQLITE_CONSTRAINT_PRIMARYKEY (1555) / SQLITE_CONSTRAINT_UNIQUE (2067)
  const code = (error as { errcode?: number })?.errcode;
  return code === 2067 || code === 1555;
}

/**
 * Accounts in a SQLite file.
 *
 * @example
 * ```ts
 * import { SqliteAccountStore } from "./sqlite_account_store.ts";
 * import assert from "node:assert/strict";
 *
 * const store = SqliteAccountStore.open(":memory:");
 * const account = { id: "a1", username: "alice", passwordHash: "h", createdAt: 1 };
 * assert.equal(await store.createAccount(account), "created");
 * assert.equal(await store.createAccount({ ...account, id: "a2" }), "taken");
 * assert.equal((await store.findByUsername("alice"))?.id, "a1");
 * await store.close();
 * ```
 */
export class SqliteAccountStore implements AccountStore {
  readonly engine = "sqlite";
  readonly #db: DatabaseSync;
  readonly #insertAccount: StatementSync;
  readonly #byName: StatementSync;
  readonly #byId: StatementSync;

  private constructor(db: DatabaseSync) {
    this.#db = db;
    this.#insertAccount = db.prepare(
      "INSERT INTO accounts (id, username, password_hash, created_at) VALUES (?, ?, ?, ?)",
    );
    this.#byName = db.prepare("SELECT * FROM accounts WHERE username = ?");
    this.#byId = db.prepare("SELECT * FROM accounts WHERE id = ?");
  }

  /**
   * Opens (creating if needed) the database file and applies pending migrations.
   *
   * @param path File path, or `:memory:`.
   */
  static open(path: string): SqliteAccountStore {
    const db = new DatabaseSync(path);
    try {
      db.exec("PRAGMA busy_timeout = 5000");
      db.exec("PRAGMA journal_mode = WAL");
      db.exec("PRAGMA synchronous = FULL");
      db.exec("PRAGMA foreign_keys = ON");
      migrate(db);
      return new SqliteAccountStore(db);
    } catch (error) {
      db.close();
      throw error;
    }
  }

  #transaction<T>(body: () => T): T {
    this.#db.exec("BEGIN IMMEDIATE");
    try {
      const result = body();
      this.#db.exec("COMMIT");
      return result;
    } catch (error) {
      this.#db.exec("ROLLBACK");
      throw error;
    }
  }

  createAccount(account: AccountRecord): Promise<"created" | "taken"> {
    try {
      this.#insertAccount.run(
        account.id,
        account.username,
        account.passwordHash,
        account.createdAt,
      );
      return Promise.resolve("created");
    } catch (error) {
      if (isUniqueViolation(error)) return Promise.resolve("taken");
      throw error;
    }
  }

  findByUsername(username: string): Promise<AccountRecord | undefined> {
    return Promise.resolve(toAccount(this.#byName.get(username)));
  }

  findById(id: string): Promise<AccountRecord | undefined> {
    return Promise.resolve(toAccount(this.#byId.get(id)));
  }

  setPasswordHash(id: string, passwordHash: string, nowMs: number): Promise<void> {
    this.#transaction(() => {
      this.#db.prepare("UPDATE accounts SET password_hash = ? WHERE id = ?").run(passwordHash, id);
      this.#db.prepare(
        "UPDATE refresh_tokens SET revoked_at = ? WHERE account_id = ? AND revoked_at IS NULL",
      ).run(nowMs, id);
    });
    return Promise.resolve();
  }

  addRefreshToken(token: RefreshTokenRecord): Promise<void> {
    this.#db.prepare(
      "INSERT INTO refresh_tokens (token_hash, account_id, expires_at, created_at) VALUES (?, ?, ?, ?)",
    ).run(token.tokenHash, token.accountId, token.expiresAt, token.createdAt);
    return Promise.resolve();
  }

  rotateRefreshToken(
    oldHash: string,
    next: RefreshTokenRecord,
    nowMs: number,
  ): Promise<RotateResult> {
    return Promise.resolve(this.#transaction((): RotateResult => {
      const row = this.#db.prepare(
        "SELECT account_id, expires_at, revoked_at FROM refresh_tokens WHERE token_hash = ?",
      ).get(oldHash) as
        | { account_id: string; expires_at: number | bigint; revoked_at: number | bigint | null }
        | undefined;
      if (row === undefined) return { kind: "invalid" };
      if (row.revoked_at !== null) return { kind: "reused", accountId: row.account_id };
      if (Number(row.expires_at) <= nowMs) return { kind: "invalid" };
      this.#db.prepare("UPDATE refresh_tokens SET revoked_at = ? WHERE token_hash = ?")
        .run(nowMs, oldHash);
      this.#db.prepare(
        "INSERT INTO refresh_tokens (token_hash, account_id, expires_at, created_at) VALUES (?, ?, ?, ?)",
      ).run(next.tokenHash, row.account_id, next.expiresAt, next.createdAt);
      return { kind: "rotated", accountId: row.account_id };
    }));
  }

  revokeRefreshToken(tokenHash: string, nowMs: number): Promise<string | undefined> {
    const row = this.#db.prepare(
      "UPDATE refresh_tokens SET revoked_at = ? WHERE token_hash = ? AND revoked_at IS NULL " +
        "AND expires_at > ? RETURNING account_id",
    ).get(nowMs, tokenHash, nowMs) as { account_id: string } | undefined;
    return Promise.resolve(row?.account_id);
  }

  revokeAllRefreshTokens(accountId: string, nowMs: number): Promise<void> {
    this.#db.prepare(
      "UPDATE refresh_tokens SET revoked_at = ? WHERE account_id = ? AND revoked_at IS NULL",
    ).run(nowMs, accountId);
    return Promise.resolve();
  }

  createDeviceAccount(account: AccountRecord, deviceHash: string): Promise<"created" | "taken"> {
    try {
      this.#transaction(() => {
        this.#insertAccount.run(
          account.id,
          account.username,
          account.passwordHash,
          account.createdAt,
        );
        this.#db.prepare(
          "INSERT INTO devices (device_hash, account_id, created_at) VALUES (?, ?, ?)",
        )
          .run(deviceHash, account.id, account.createdAt);
      });
      return Promise.resolve("created");
    } catch (error) {
      if (isUniqueViolation(error)) return Promise.resolve("taken");
      throw error;
    }
  }

  findByDevice(deviceHash: string): Promise<AccountRecord | undefined> {
    return Promise.resolve(toAccount(
      this.#db.prepare(
        "SELECT a.* FROM accounts a JOIN devices d ON d.account_id = a.id WHERE d.device_hash = ?",
      ).get(deviceHash),
    ));
  }

  setCredentials(id: string, username: string, passwordHash: string): Promise<"ok" | "taken"> {
    try {
      this.#db.prepare("UPDATE accounts SET username = ?, password_hash = ? WHERE id = ?")
        .run(username, passwordHash, id);
      return Promise.resolve("ok");
    } catch (error) {
      if (isUniqueViolation(error)) return Promise.resolve("taken");
      throw error;
    }
  }

  countAccounts(): Promise<number> {
    const row = this.#db.prepare("SELECT count(*) AS n FROM accounts").get() as { n: number };
    return Promise.resolve(Number(row.n));
  }

  schemaVersion(): Promise<number> {
    return Promise.resolve(currentVersion(this.#db));
  }

  close(): Promise<void> {
    if (this.#db.isOpen) this.#db.close();
    return Promise.resolve();
  }
}

function currentVersion(db: DatabaseSync): number {
  const row = db.prepare("SELECT max(version) AS v FROM schema_migrations").get() as {
    v: number | null;
  };
  return Number(row.v ?? 0);
}

function migrate(db: DatabaseSync): void {
  db.exec(MIGRATIONS_TABLE);
  // IMMEDIATE: a second process starting on the same file waits, then sees the versions.
  db.exec("BEGIN IMMEDIATE");
  try {
    const applied = currentVersion(db);
    for (const migration of MIGRATIONS) {
      if (migration.version <= applied) continue;
      for (const statement of migration.statements) db.exec(statement);
      db.prepare("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)")
        .run(migration.version, Date.now());
    }
    db.exec("COMMIT");
  } catch (error) {
    db.exec("ROLLBACK");
    throw error;
  }
}
