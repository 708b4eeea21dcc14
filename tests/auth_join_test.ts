/**
 * Accounts end to end, in-process on real sockets (127.0.0.1, port 0): the account service,
 * a master verifying access tokens offline, a cluster with a plugin. A registered player joins
 * with its access token and the plugin sees the account id as the player id; forged, expired,
 * unknown-key and garbage tokens (and guests, when refused) never get a ticket; a signing key
 * rotation reaches the master without a restart. The flow runs on SQLite and on a real
 * PostgreSQL.
 */
import assert from "node:assert/strict";
import { type AuthStoreChoice, rotateKeyRing, signAccessToken, startAuth } from "../auth/mod.ts";
import { AuthClient, ClientError, SustenetClient } from "../client/mod.ts";
import { startCluster } from "../cluster/mod.ts";
import { accountAuthenticate, loadPublicKeySet } from "../master/account_authenticate.ts";
import { startMaster } from "../master/mod.ts";
import { generateKey } from "../shared/keys.ts";
import { definePlugin } from "../shared/plugin.ts";
import { startPostgres } from "./_postgres.ts";
import { waitFor } from "./_wait.ts";

const WHO = 0x90;

/** Tells each player who the cluster thinks it is. */
const whoPlugin = definePlugin({
  onJoin(ctx, player) {
    ctx.send(player.clientId, WHO, new TextEncoder().encode(player.playerId));
  },
});

async function world(store: (dir: string) => Promise<AuthStoreChoice>, allowGuests: boolean) {
  const dir = await Deno.makeTempDir({ prefix: "sustenet_auth_join_" });
  await generateKey(dir, "cluster_key");
  const auth = await startAuth({
    port: 0,
    store: await store(dir),
    signingKeys: `${dir}/auth_signing.json`,
    publicKeysOut: `${dir}/auth_public.json`,
    scrypt: { logN: 10, r: 8, p: 1 },
  });
  const accounts = await accountAuthenticate({
    loadKeys: () => loadPublicKeySet(`${dir}/auth_public.json`),
    allowGuests,
    reloadMinMs: 0,
  });
  const master = await startMaster({
    port: 0,
    keysDir: dir,
    authenticate: accounts.authenticate,
    // Every refused join counts against the connection; these tests refuse on purpose.
    joinLimits: { refusalsBeforeClose: 1000, addressBurst: 1000, addressRatePerS: 1000 },
  });
  const cluster = await startCluster({
    port: 0,
    keysDir: dir,
    serverName: "c1",
    identityKeyName: "c1_identity",
    master: { hostname: "127.0.0.1", port: master.addr.port },
    heartbeatIntervalMs: 50,
    plugins: [whoPlugin],
  });
  await waitFor("the cluster listed", () => master.registry.list().length === 1);
  const clients: SustenetClient[] = [];
  return {
    dir,
    auth,
    accounts,
    master,
    cluster,
    authClient: new AuthClient(`http://127.0.0.1:${auth.addr.port}`),
    async connect(credential: string) {
      const client = await SustenetClient.connect({ port: master.addr.port, credential });
      clients.push(client);
      return client;
    },
    async [Symbol.asyncDispose]() {
      for (const client of clients) await client.close();
      await cluster.stop();
      await master.stop();
      await auth.stop();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

async function joinedAs(client: SustenetClient): Promise<string> {
  const session = await client.join("auto");
  const who = Promise.withResolvers<string>();
  session.on("message", ({ command, payload }) => {
    if (command === WHO) who.resolve(new TextDecoder().decode(payload));
  });
  const id = await who.promise;
  await session.leave();
  return id;
}

function unauthorized(e: unknown): boolean {
  assert.ok(e instanceof ClientError, String(e));
  assert.equal(e.code, "unauthorized");
  return true;
}

const sqlite = (dir: string) =>
  Promise.resolve({ kind: "sqlite", path: `${dir}/a.sqlite` } as const);

async function flow(store: (dir: string) => Promise<AuthStoreChoice>): Promise<void> {
  await using w = await world(store, false);
  const tokens = await w.authClient.register("PlayerOne", "correct horse battery");
  const loggedIn = await w.authClient.login("playerone", "correct horse battery");
  assert.equal(loggedIn.accountId, tokens.accountId);
  const client = await w.connect(loggedIn.accessToken);
  assert.equal(await joinedAs(client), tokens.accountId);
  assert.equal(w.accounts.counts.ok, 1);
}

Deno.test("register, log in, join with the token: the plugin sees the account id (SQLite)", async () => {
  await flow(sqlite);
});

Deno.test("the same flow with the accounts in a real PostgreSQL", async () => {
  await using pg = await startPostgres();
  const url = await pg.createDatabase("join_flow");
  await flow(() => Promise.resolve({ kind: "postgres", url }));
});

Deno.test("forged, expired, unknown-key and garbage tokens and refused guests never get a ticket", async () => {
  await using w = await world(sqlite, false);
  const real = await w.authClient.register("victim", "correct horse battery");
  const [, payload] = real.accessToken.split(".");
  const other = await crypto.subtle.generateKey({ name: "Ed25519" }, false, [
    "sign",
    "verify",
  ]) as CryptoKeyPair;
  const now = Math.floor(Date.now() / 1000);
  const claims = { sub: real.accountId, name: "victim", iat: now, exp: now + 600, jti: "j" };
  const kid = w.auth.keyRing.current.kid;
  const tampered = JSON.parse(new TextDecoder().decode(Uint8Array.fromBase64(
    payload ?? "",
    { alphabet: "base64url" },
  )));
  tampered.sub = "someone-else";
  const [h, , s] = real.accessToken.split(".");
  const credentials: [string, string][] = [
    [
      "forged (right kid, wrong key)",
      await signAccessToken({ kid, privateKey: other.privateKey }, claims),
    ],
    [
      "unknown key id",
      await signAccessToken({ kid: "0000000000000000", privateKey: other.privateKey }, claims),
    ],
    [
      "expired",
      await signAccessToken(w.auth.keyRing.current, { ...claims, iat: now - 700, exp: now - 100 }),
    ],
    [
      "payload swapped under a real signature",
      `${h}.${
        new TextEncoder().encode(JSON.stringify(tampered)).toBase64({
          alphabet: "base64url",
          omitPadding: true,
        })
      }.${s}`,
    ],
    ["alg none", `${btoa('{"alg":"none","kid":"' + kid + '"}').replaceAll("=", "")}.${payload}.`],
    ["garbage", "hello"],
    ["empty (guests refused)", ""],
  ];
  const before = w.master.metrics.ticketsIssued.value;
  for (const [what, credential] of credentials) {
    const client = await w.connect(credential);
    await assert.rejects(client.join("auto"), unauthorized, what);
  }
  assert.equal(w.master.metrics.ticketsIssued.value, before, "no ticket issued");
  assert.equal(w.cluster.players.size, 0);
  assert.equal(w.accounts.counts.bad_signature, 2);
  assert.equal(w.accounts.counts.unknown_key, 1);
  assert.equal(w.accounts.counts.expired, 1);
  assert.equal(w.accounts.counts.guest_refused, 1);
  // The real one still works.
  assert.equal(await joinedAs(await w.connect(real.accessToken)), real.accountId);
});

Deno.test("with guests allowed an empty credential is a guest and a token is its account", async () => {
  await using w = await world(sqlite, true);
  assert.match(await joinedAs(await w.connect("")), /^guest-[0-9a-f]{16}$/);
  const tokens = await w.authClient.register("member", "correct horse battery");
  assert.equal(await joinedAs(await w.connect(tokens.accessToken)), tokens.accountId);
  // A bad token is refused even though guests may join: it is not silently a guest.
  await assert.rejects((await w.connect("not.a.token")).join("auto"), unauthorized);
});

Deno.test("a signing key rotation reaches the master without a restart; old tokens stay valid", async () => {
  await using w = await world(sqlite, false);
  const before = await w.authClient.register("rotator", "correct horse battery");
  const ring = await rotateKeyRing(`${w.dir}/auth_signing.json`, 1);
  // The service restarted on the rotated ring (the store file is kept).
  await w.auth.stop();
  await using restarted = await startAuth({
    port: 0,
    store: { kind: "sqlite", path: `${w.dir}/a.sqlite` },
    signingKeys: ring,
    publicKeysOut: `${w.dir}/auth_public.json`,
    scrypt: { logN: 10, r: 8, p: 1 },
  });
  const after = await new AuthClient(`http://127.0.0.1:${restarted.addr.port}`)
    .login("rotator", "correct horse battery");
  assert.notEqual(after.accessToken.split(".")[0], before.accessToken.split(".")[0]);
  assert.equal(await joinedAs(await w.connect(after.accessToken)), before.accountId);
  assert.equal(await joinedAs(await w.connect(before.accessToken)), before.accountId);
  assert.equal(w.accounts.counts.unknown_key, 0);
});

Deno.test("a device login joins as its account, and keeps that id after linking a username", async () => {
  await using w = await world(sqlite, false);
  const deviceId = crypto.randomUUID().replaceAll("-", "");
  const device = await w.authClient.device(deviceId);
  assert.equal(await joinedAs(await w.connect(device.accessToken)), device.accountId);
  await w.authClient.linkDevice(device.accessToken, "Linked", "correct horse battery");
  const named = await w.authClient.login("linked", "correct horse battery");
  assert.equal(named.accountId, device.accountId);
  assert.equal(await joinedAs(await w.connect(named.accessToken)), device.accountId);
});
