/**
 * One store test suite, run against both engines behind `AccountStore`: the embedded SQLite
 * file and a real PostgreSQL server this test starts itself (tests/_postgres.ts). Migrations,
 * uniqueness under concurrent inserts, refresh token rotation and replay, revocation, and SQL
 * injection strings in every field.
 */
import assert from "node:assert/strict";
import {
  type AccountStore,
  PostgresAccountStore,
  type RefreshTokenRecord,
  SqliteAccountStore,
} from "../auth/mod.ts";
import { MIGRATIONS, MIGRATIONS_TABLE } from "../auth/account_store.ts";
import { startPostgres } from "./_postgres.ts";
import { INJECTIONS } from "./_injections.ts";

type Opener = () => Promise<AccountStore>;

function token(hash: string, accountId: string, expiresAt = 10_000): RefreshTokenRecord {
  return { tokenHash: hash, accountId, expiresAt, createdAt: 1 };
}

async function suite(t: Deno.TestContext, open: Opener, reopen: Opener): Promise<void> {
  await t.step("migrations are applied at start, once", async () => {
    const store = await open();
    try {
      assert.equal(await store.schemaVersion(), MIGRATIONS.at(-1)?.version);
      await store.createAccount({ id: "m1", username: "kept", passwordHash: "h", createdAt: 1 });
    } finally {
      await store.close();
    }
    const again = await reopen();
    try {
      assert.equal(await again.schemaVersion(), MIGRATIONS.at(-1)?.version);
      assert.equal((await again.findByUsername("kept"))?.id, "m1");
    } finally {
      await again.close();
    }
  });

  const store = await reopen();
  try {
    await t.step(
      "an account is found by name and id; a second one of the name is taken",
      async () => {
        const account = { id: "a1", username: "alice", passwordHash: "$scrypt$x", createdAt: 42 };
        assert.equal(await store.createAccount(account), "created");
        assert.deepEqual(await store.findByUsername("alice"), account);
        assert.deepEqual(await store.findById("a1"), account);
        assert.equal(
          await store.createAccount({ ...account, id: "a2", passwordHash: "other" }),
          "taken",
        );
        assert.equal((await store.findByUsername("alice"))?.passwordHash, "$scrypt$x");
        assert.equal(await store.findById("a2"), undefined);
        assert.equal(await store.findByUsername("nobody"), undefined);
      },
    );

    await t.step("concurrent registrations of one name make exactly one account", async () => {
      const before = await store.countAccounts();
      const results = await Promise.all(
        Array.from(
          { length: 40 },
          (_, i) =>
            store.createAccount({
              id: `race-${i}`,
              username: "racer",
              passwordHash: "h",
              createdAt: i,
            }),
        ),
      );
      assert.equal(results.filter((r) => r === "created").length, 1);
      assert.equal(results.filter((r) => r === "taken").length, 39);
      assert.equal(await store.countAccounts(), before + 1);
    });

    await t.step(
      "a refresh token rotates once; its replay is reported and stores nothing",
      async () => {
        await store.addRefreshToken(token("r1", "a1"));
        const rotated = await store.rotateRefreshToken("r1", token("r2", "ignored"), 100);
        assert.deepEqual(rotated, { kind: "rotated", accountId: "a1" });
        assert.deepEqual(
          await store.rotateRefreshToken("r1", token("r3", "a1"), 101),
          { kind: "reused", accountId: "a1" },
        );
        // r3 was not stored: rotating it is unknown.
        assert.deepEqual(await store.rotateRefreshToken("r3", token("r4", "a1"), 102), {
          kind: "invalid",
        });
        assert.deepEqual(await store.rotateRefreshToken("nope", token("r5", "a1"), 102), {
          kind: "invalid",
        });
        // r2 (the new one) belongs to a1 and is live.
        assert.deepEqual(await store.rotateRefreshToken("r2", token("r6", "x"), 103), {
          kind: "rotated",
          accountId: "a1",
        });
      },
    );

    await t.step("an expired refresh token is invalid", async () => {
      await store.addRefreshToken(token("old", "a1", 500));
      assert.deepEqual(await store.rotateRefreshToken("old", token("n", "a1"), 500), {
        kind: "invalid",
      });
      assert.equal(await store.revokeRefreshToken("old", 500), undefined);
    });

    await t.step("concurrent rotations of one token: exactly one wins", async () => {
      await store.addRefreshToken(token("contested", "a1"));
      const results = await Promise.all(
        Array.from(
          { length: 10 },
          (_, i) => store.rotateRefreshToken("contested", token(`c-${i}`, "a1"), 200),
        ),
      );
      assert.equal(results.filter((r) => r.kind === "rotated").length, 1);
      assert.equal(results.filter((r) => r.kind === "reused").length, 9);
    });

    await t.step(
      "revocation: one token, all of an account's, and by a password change",
      async () => {
        await store.addRefreshToken(token("l1", "a1"));
        assert.equal(await store.revokeRefreshToken("l1", 300), "a1");
        assert.equal(await store.revokeRefreshToken("l1", 301), undefined);
        await store.addRefreshToken(token("l2", "a1"));
        await store.addRefreshToken(token("l3", "a1"));
        await store.revokeAllRefreshTokens("a1", 302);
        assert.equal((await store.rotateRefreshToken("l2", token("z", "a1"), 303)).kind, "reused");
        await store.addRefreshToken(token("l4", "a1"));
        await store.setPasswordHash("a1", "$scrypt$new", 304);
        assert.equal((await store.findById("a1"))?.passwordHash, "$scrypt$new");
        assert.equal((await store.rotateRefreshToken("l4", token("z2", "a1"), 305)).kind, "reused");
      },
    );

    await t.step(
      "a device account is created with its device, found by it, then named",
      async () => {
        const account = { id: "d1", username: "device:abc", passwordHash: "!device", createdAt: 5 };
        assert.equal(await store.createDeviceAccount(account, "dev-hash-1"), "created");
        assert.deepEqual(await store.findByDevice("dev-hash-1"), account);
        assert.equal(
          await store.createDeviceAccount(
            { ...account, id: "d2", username: "device:x" },
            "dev-hash-1",
          ),
          "taken",
        );
        assert.equal(await store.findById("d2"), undefined); // the transaction left nothing behind
        assert.equal(await store.setCredentials("d1", "alice", "h2"), "taken");
        assert.equal(await store.setCredentials("d1", "dora", "h2"), "ok");
        assert.deepEqual(await store.findByDevice("dev-hash-1"), {
          ...account,
          username: "dora",
          passwordHash: "h2",
        });
        assert.equal(await store.findByDevice("nope"), undefined);
      },
    );

    await t.step(
      "injection strings in every field are stored and matched as plain data",
      async () => {
        const before = await store.countAccounts();
        for (const [i, evil] of INJECTIONS.entries()) {
          const clean = evil.replaceAll("\u0000", ""); // PostgreSQL text holds no NUL
          const account = {
            id: `${clean}#${i}`,
            username: `${clean}~${i}`,
            passwordHash: clean,
            createdAt: i,
          };
          assert.equal(await store.createAccount(account), "created");
          assert.deepEqual(await store.findByUsername(account.username), account);
          assert.deepEqual(await store.findById(account.id), account);
          assert.equal(await store.findByUsername(clean), undefined);
          await store.addRefreshToken(token(`${clean}$${i}`, account.id));
          assert.equal(
            (await store.rotateRefreshToken(`${clean}$${i}`, token(`${clean}%${i}`, "x"), 1)).kind,
            "rotated",
          );
          await store.revokeAllRefreshTokens(clean, 2); // an id no account has: nothing changes
          await store.setPasswordHash(clean, clean, 3);
          assert.equal(await store.findByDevice(clean), undefined);
          assert.equal(await store.setCredentials(clean, `${clean}!${i}`, clean), "ok"); // no such id
        }
        assert.equal(await store.countAccounts(), before + INJECTIONS.length);
        assert.equal((await store.findById("a1"))?.passwordHash, "$scrypt$new");
        assert.equal(await store.schemaVersion(), MIGRATIONS.at(-1)?.version);
      },
    );
  } finally {
    await store.close();
  }
}

Deno.test("the store suite on SQLite (WAL file)", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "sustenet_auth_sqlite_" });
  try {
    const open = () => Promise.resolve(SqliteAccountStore.open(`${dir}/auth.sqlite`));
    await suite(t, open, open);
    const { DatabaseSync } = await import("node:sqlite");
    const db = new DatabaseSync(`${dir}/auth.sqlite`);
    try {
      assert.deepEqual({ ...db.prepare("PRAGMA journal_mode").get() }, { journal_mode: "wal" });
      assert.deepEqual({ ...db.prepare("PRAGMA integrity_check").get() }, {
        integrity_check: "ok",
      });
    } finally {
      db.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the store suite on a real PostgreSQL", async (t) => {
  await using pg = await startPostgres();
  const url = await pg.createDatabase("store_suite");
  const open = () => PostgresAccountStore.connect(url);
  await suite(t, open, open);
});

Deno.test("a version-1 SQLite database is migrated to the current schema at start, data kept", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sustenet_auth_migrate_" });
  try {
    const { DatabaseSync } = await import("node:sqlite");
    const old = new DatabaseSync(`${dir}/auth.sqlite`);
    old.exec(MIGRATIONS_TABLE);
    for (const statement of MIGRATIONS[0]?.statements ?? []) old.exec(statement);
    old.prepare("INSERT INTO schema_migrations (version, applied_at) VALUES (1, 0)").run();
    old.prepare("INSERT INTO accounts VALUES ('old-1', 'veteran', 'h', 1)").run();
    old.close();
    const store = SqliteAccountStore.open(`${dir}/auth.sqlite`);
    try {
      assert.equal(await store.schemaVersion(), MIGRATIONS.at(-1)?.version);
      assert.equal((await store.findByUsername("veteran"))?.id, "old-1");
      const device = { id: "d", username: "device:1", passwordHash: "!device", createdAt: 2 };
      assert.equal(await store.createDeviceAccount(device, "h1"), "created");
    } finally {
      await store.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
