/**
 * `deno task auth` as a real process (auth/main.ts): its embedded SQLite starts with no setup,
 * and kill -9 in the middle of a registration storm loses no acknowledged account and leaves
 * the database intact (checked after a restart); `--help` and a bad config behave like the
 * other roles; `rotate-key` publishes the new key beside the old one; `deno task master` with
 * `auth_public_keys` and `allow_guests = false` lets accounts in and keeps guests out.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { startAuth } from "../auth/mod.ts";
import { AuthClient, ClientError, SustenetClient } from "../client/mod.ts";
import { startCluster } from "../cluster/mod.ts";
import { definePlugin } from "../shared/plugin.ts";
import { promtool, sampleValue, scrape } from "./_ops_deployment.ts";
import { Deployment, freePort, REPO_ROOT, runDeno, spawnRole, waitForLine } from "./_process.ts";

async function startAuthProcess(dir: string) {
  const port = await freePort();
  const proc = spawnRole("auth", [
    "--port",
    String(port),
    "--no-status-enabled",
    "--sqlite-path",
    `${dir}/auth.sqlite`,
    "--signing-keys",
    `${dir}/ring.json`,
    "--public-keys-out",
    `${dir}/public.json`,
    "--scrypt-log-n",
    "10",
    "--login-rate-per-addr",
    "100000",
    "--login-burst-per-addr",
    "100000",
  ], { cwd: dir });
  await waitForLine(proc, /^auth listening on 127\.0\.0\.1:\d+$/, 60_000);
  return { proc, base: `http://127.0.0.1:${port}` };
}

async function register(base: string, username: string): Promise<string | undefined> {
  try {
    const res = await fetch(`${base}/v1/register`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ username, password: `password of ${username}` }),
    });
    const body = await res.json();
    return res.status === 201 ? String(body.account_id) : undefined;
  } catch (error) {
    if (error instanceof TypeError) return undefined; // the server died mid-request
    throw error;
  }
}

Deno.test("kill -9 during a registration storm loses no acknowledged account", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sustenet_auth_crash_" });
  try {
    const first = await startAuthProcess(dir);
    const acknowledged = new Map<string, string>();
    const KILL_AFTER = 120;
    let killed = false;
    const worker = async (w: number) => {
      for (let i = 0; i < 2_000 && !killed; i++) {
        const name = `storm${w}x${i}`;
        const id = await register(first.base, name);
        if (id !== undefined) acknowledged.set(name, id);
        if (acknowledged.size >= KILL_AFTER && !killed) {
          killed = true;
          first.proc.kill("SIGKILL");
        }
      }
    };
    await Promise.all(Array.from({ length: 8 }, (_, w) => worker(w)));
    const status = await first.proc.waitExit();
    assert.equal(status.signal, "SIGKILL");
    assert.ok(acknowledged.size >= KILL_AFTER);

    const second = await startAuthProcess(dir);
    try {
      for (const [name, id] of acknowledged) {
        const res = await fetch(`${second.base}/v1/login`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ username: name, password: `password of ${name}` }),
        });
        const body = await res.json();
        assert.equal(res.status, 200, `${name}: ${JSON.stringify(body)}`);
        assert.equal(body.account_id, id);
      }
    } finally {
      await second.proc.close();
    }
    const db = new DatabaseSync(`${dir}/auth.sqlite`);
    try {
      assert.deepEqual({ ...db.prepare("PRAGMA integrity_check").get() }, {
        integrity_check: "ok",
      });
      const { n } = db.prepare("SELECT count(*) AS n FROM accounts").get() as { n: number };
      assert.ok(n >= acknowledged.size, `${n} rows, ${acknowledged.size} acknowledged`);
      const dupes = db.prepare(
        "SELECT count(*) AS n FROM (SELECT username FROM accounts GROUP BY username HAVING count(*) > 1)",
      ).get() as { n: number };
      assert.equal(dupes.n, 0);
    } finally {
      db.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deno task auth starts with no setup, answers --help, and exits 2 on a bad config", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sustenet_auth_fresh_" });
  try {
    const help = spawnRole("auth", ["--help"], { cwd: dir });
    assert.equal((await help.waitExit()).code, 0);
    assert.match(help.stdoutLines()[0] ?? "", /^usage: deno task auth/);
    assert.ok(help.stdoutLines().some((l) => l.includes("--scrypt-log-n VALUE")));
    assert.ok(!help.stdoutLines().some((l) => l.includes("--key-name")));

    const bad = spawnRole("auth", ["--scrypt-log-n", "9"], { cwd: dir });
    assert.equal((await bad.waitExit()).code, 2);
    assert.match(bad.stderrText(), /--scrypt-log-n must be an integer 10\.\.20, got 9/);
    const pg = spawnRole("auth", ["--store", "postgres"], { cwd: dir });
    assert.equal((await pg.waitExit()).code, 2);
    assert.match(pg.stderrText(), /postgres_url/);
    const secret = spawnRole("auth", ["--postgres-url", "http://user:hunter2@db/x"], { cwd: dir });
    assert.equal((await secret.waitExit()).code, 2);
    assert.doesNotMatch(secret.stderrText(), /hunter2/);

    // No flags at all: defaults, files created in the working directory.
    const port = await freePort();
    const fresh = spawnRole("auth", ["--port", String(port), "--no-status-enabled"], { cwd: dir });
    try {
      await waitForLine(fresh, /^auth listening on/, 60_000);
      const res = await fetch(`http://127.0.0.1:${port}/health`);
      assert.equal((await res.json()).store, "sqlite");
    } finally {
      await fresh.close();
    }
    await Deno.stat(`${dir}/auth.sqlite`);
    assert.equal((await Deno.stat(`${dir}/keys/auth_signing.json`)).mode! & 0o777, 0o600);
    const before = JSON.parse(await Deno.readTextFile(`${dir}/keys/auth_public.json`));

    const rotate = spawnRole("auth", ["rotate-key"], { cwd: dir });
    assert.equal((await rotate.waitExit()).code, 0, rotate.stderrText());
    const after = JSON.parse(await Deno.readTextFile(`${dir}/keys/auth_public.json`));
    assert.equal(after.keys.length, 2);
    assert.equal(after.keys[1].kid, before.keys[0].kid);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("master/main.ts with auth_public_keys: a token joins as its account, a guest and a bad token are refused and counted on /metrics", async () => {
  await using deployment = await Deployment.create("sustenet_auth_master_");
  const dir = deployment.dir;
  await using auth = await startAuth({
    port: 0,
    store: { kind: "sqlite", path: `${dir}/auth.sqlite` },
    signingKeys: `${dir}/keys/auth_signing.json`,
    publicKeysOut: `${dir}/keys/auth_public.json`,
    scrypt: { logN: 10, r: 8, p: 1 },
  });
  const port = await freePort();
  const statusPort = await freePort();
  await deployment.start(
    "master",
    "master",
    `[all]\nport = ${port}\nstatus_port = ${statusPort}\n` +
      `[master]\nauth_public_keys = "keys/auth_public.json"\nallow_guests = false\n`,
    /^master listening on/,
  );
  const seenIds: string[] = [];
  const seen = Promise.withResolvers<string>();
  await using cluster = await startCluster({
    port: 0,
    keysDir: `${dir}/keys`,
    serverName: "c1",
    identityKeyName: "c1_identity",
    master: { hostname: "127.0.0.1", port },
    heartbeatIntervalMs: 50,
    plugins: [definePlugin({
      onJoin: (_ctx, player) => {
        seenIds.push(player.playerId);
        seen.resolve(player.playerId);
      },
    })],
  });
  const tokens = await new AuthClient(`http://127.0.0.1:${auth.addr.port}`)
    .register("procuser", "correct horse battery");
  const guest = await SustenetClient.connect({ port });
  const garbage = await SustenetClient.connect({ port, credential: "not.a.token" });
  const member = await SustenetClient.connect({ port, credential: tokens.accessToken });
  try {
    for (let i = 0; i < 600 && (await member.listClusters()).length === 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await assert.rejects(
      guest.join("auto"),
      (e) => e instanceof ClientError && e.code === "unauthorized",
    );
    await assert.rejects(
      garbage.join("auto"),
      (e) => e instanceof ClientError && e.code === "unauthorized",
    );
    const session = await member.join("auto");
    assert.equal(await seen.promise, tokens.accountId);
    assert.equal(cluster.players.size, 1);
    await session.leave();
    // The verdicts are on the master's /metrics, by reason, and promtool accepts the page.
    const text = await scrape(`http://127.0.0.1:${statusPort}`);
    const verdict = (reason: string) =>
      sampleValue(text, `sustenet_master_account_tokens_total{reason="${reason}"}`);
    assert.equal(verdict("guest_refused"), 1, text);
    assert.equal(verdict("malformed"), 1, text);
    assert.equal(verdict("ok"), 1, text);
    assert.equal(verdict("expired"), 0, text);
    const checked = await promtool(text);
    assert.equal(checked.code, 0, checked.output);
  } finally {
    await guest.close();
    await garbage.close();
    await member.close();
  }

  // The CLI: register (password on stdin) saves a token file; join --token-file uses it,
  // refreshing an access token about to expire first.
  const tokenFile = `${dir}/token.json`;
  const cli = (args: string[], stdin: string) =>
    runDeno(["run", "-A", `${REPO_ROOT}client/main.ts`, ...args], { stdin });
  const authUrl = `http://127.0.0.1:${auth.addr.port}`;
  const registered = await cli(
    ["--auth", authUrl, "--token-file", tokenFile, "register", "CliUser"],
    "cli password 123\n",
  );
  assert.equal(registered.code, 0, registered.stderr);
  assert.match(registered.stdout, /^registered as cliuser \(account [0-9a-f-]{36}\); tokens saved/);
  assert.equal((await Deno.stat(tokenFile)).mode! & 0o777, 0o600);
  const saved = JSON.parse(await Deno.readTextFile(tokenFile));
  assert.ok(
    !registered.stdout.includes(saved.accessToken) &&
      !registered.stdout.includes(saved.refreshToken),
  );
  const wrong = await cli(
    ["--auth", authUrl, "--token-file", tokenFile, "login", "cliuser"],
    "nope nope\n",
  );
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /invalid_credentials/);
  await Deno.writeTextFile(tokenFile, JSON.stringify({ ...saved, accessExpiresAt: 0 }));
  const joined = await cli(
    ["--master", `127.0.0.1:${port}`, "--token-file", tokenFile, "join", "auto"],
    "",
  );
  assert.equal(joined.code, 0, joined.stderr);
  assert.match(joined.stdout, /^joined c1/);
  assert.equal(seenIds.at(-1), saved.accountId);
  const refreshed = JSON.parse(await Deno.readTextFile(tokenFile));
  assert.notEqual(refreshed.refreshToken, saved.refreshToken);
  assert.ok(refreshed.accessExpiresAt > Date.now());
});
