/**
 * The client library against a real master and real clusters, in-process on 127.0.0.1 port 0.
 */
import assert from "node:assert/strict";
import { type ClientError, type ClusterSession, SustenetClient } from "../client/mod.ts";
import { type ClusterOptions, type ClusterServer, startCluster } from "../cluster/mod.ts";
import { type MasterOptions, type MasterServer, startMaster } from "../master/mod.ts";
import { generateKey } from "../shared/keys.ts";
import { definePlugin } from "../shared/plugin.ts";
import { waitFor } from "./_wait.ts";
import { hasCode } from "./_has_code.ts";

const ECHO = 0x80;

/** Replies to command 0x80 with the same payload. */
const echoPlugin = definePlugin({
  onMessage(ctx, from, command, payload) {
    if (command === ECHO) ctx.send(from, ECHO, payload);
  },
});

interface World extends AsyncDisposable {
  readonly keysDir: string;
  readonly master: MasterServer;
  readonly clusters: ClusterServer[];
  startCluster(name: string, options?: Partial<ClusterOptions>): Promise<ClusterServer>;
  connect(options?: Parameters<typeof SustenetClient.connect>[0]): Promise<SustenetClient>;
}

async function startWorld(
  clusterCount: number,
  options: { master?: Partial<MasterOptions>; cluster?: Partial<ClusterOptions> } = {},
): Promise<World> {
  const keysDir = await Deno.makeTempDir({ prefix: "sustenet_client_test_" });
  await generateKey(keysDir, "cluster_key");
  const master = await startMaster({ port: 0, keysDir, serverName: "master-1", ...options.master });
  const clusters: ClusterServer[] = [];
  const clients: SustenetClient[] = [];
  const world: World = {
    keysDir,
    master,
    clusters,
    async startCluster(name, extra = {}) {
      const cluster = await startCluster({
        port: 0,
        keysDir,
        serverName: name,
        identityKeyName: `${name}_identity`,
        master: { hostname: "127.0.0.1", port: master.addr.port },
        heartbeatIntervalMs: 50,
        plugins: [echoPlugin],
        ...options.cluster,
        ...extra,
      });
      clusters.push(cluster);
      await waitFor(`cluster ${name} registered`, () => cluster.clusterId !== undefined);
      await waitFor(
        `cluster ${name} listed`,
        () => master.registry.list().some((c) => c.name === name),
      );
      return cluster;
    },
    async connect(clientOptions = {}) {
      const client = await SustenetClient.connect({ port: master.addr.port, ...clientOptions });
      clients.push(client);
      return client;
    },
    async [Symbol.asyncDispose]() {
      await Promise.all(clients.map((c) => c.close()));
      await Promise.all(clusters.map((c) => c.stop()));
      await master.stop();
      await Deno.remove(keysDir, { recursive: true });
    },
  };
  try {
    for (let i = 1; i <= clusterCount; i++) await world.startCluster(`cluster-${i}`);
  } catch (error) {
    await world[Symbol.asyncDispose]();
    throw error;
  }
  return world;
}

/** Sends an echo and resolves with the payload that comes back. */
function echo(session: ClusterSession, text: string): Promise<string> {
  const { promise, resolve } = Promise.withResolvers<string>();
  const off = session.on("message", ({ command, payload }) => {
    if (command !== ECHO) return;
    off();
    resolve(new TextDecoder().decode(payload));
  });
  assert.equal(session.send(ECHO, new TextEncoder().encode(text)), true);
  return promise;
}

Deno.test("a client lists the clusters, auto-joins one, exchanges messages and leaves", async () => {
  await using world = await startWorld(2);
  const client = await world.connect();
  assert.equal(client.serverName, "master-1");
  assert.equal(client.connected, true);
  const clusters = await client.listClusters();
  assert.deepEqual(clusters.map((c) => c.name).sort(), ["cluster-1", "cluster-2"]);
  assert.ok(clusters.every((c) => c.host === "127.0.0.1" && c.port > 0 && !c.full));

  const session = await client.join("auto");
  assert.ok(clusters.some((c) => c.id === session.clusterId));
  assert.ok(session.clientId > 0);
  assert.match(session.serverName, /^cluster-\d$/);
  assert.equal(session.status, "joined");
  assert.equal(await echo(session, "hello"), "hello");
  assert.equal(session.move({ x: 1, y: 2, z: 3 }), true);
  assert.equal(await echo(session, "still here"), "still here");

  await session.leave();
  assert.equal(session.status, "closed");
  assert.equal((await session.closed).code, "disconnected");
  assert.throws(() => session.send(ECHO, new Uint8Array()), hasCode("invalid_state"));
  assert.equal(client.sessions.size, 0);
});

Deno.test("a client joins a cluster by id, and each join gets its own player", async () => {
  await using world = await startWorld(2);
  const client = await world.connect();
  const target = (await client.listClusters()).find((c) => c.name === "cluster-2");
  assert.ok(target !== undefined);
  const first = await client.join(target.id);
  const second = await client.join(target.id);
  assert.equal(first.clusterId, target.id);
  assert.equal(first.name, "cluster-2");
  assert.notEqual(first.clientId, second.clientId);
  assert.equal(await echo(second, "two"), "two");
  await waitFor("two players", () => world.clusters[1].players.size === 2);
  await client.close();
  assert.equal(first.status, "closed");
  assert.equal(second.status, "closed");
});

Deno.test("with fragments on, nearby players arrive as spawn, moves and despawn events", async () => {
  await using world = await startWorld(1, {
    cluster: {
      fragments: { size: 64, maxPlayersPerFragment: 100, crowdThreshold: 50 },
      tickHz: 50,
    },
  });
  const client = await world.connect();
  const watcher = await client.join("auto");
  const mover = await client.join("auto");
  const spawned = Promise.withResolvers<{ clientId: number; playerId: string }>();
  const moved = Promise.withResolvers<{ x: number; z: number }>();
  const despawned = Promise.withResolvers<number>();
  watcher.on("spawn", ({ clientId, playerId }) => {
    if (clientId === mover.clientId) spawned.resolve({ clientId, playerId });
  });
  watcher.on("moves", ({ entries }) => {
    const entry = entries.find((e) => e.clientId === mover.clientId && e.state.x === 5);
    if (entry !== undefined) moved.resolve({ x: entry.state.x, z: entry.state.z });
  });
  watcher.on("despawn", ({ clientId }) => {
    if (clientId === mover.clientId) despawned.resolve(clientId);
  });
  watcher.move({ x: 1, y: 0, z: 1 });
  mover.move({ x: 2, y: 0, z: 2 });
  assert.match((await spawned.promise).playerId, /^guest-/);
  mover.move({ x: 5, y: 0, z: 6 });
  assert.deepEqual(await moved.promise, { x: 5, z: 6 });
  const moverId = mover.clientId;
  await mover.leave();
  assert.equal(await despawned.promise, moverId);
});

Deno.test("a closed master port is master_unreachable", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  await assert.rejects(SustenetClient.connect({ port }), hasCode("master_unreachable"));
});

Deno.test("auto-join without any cluster is no_cluster, and the master connection stays usable", async () => {
  await using world = await startWorld(0);
  const client = await world.connect();
  await assert.rejects(client.join("auto"), hasCode("no_cluster"));
  assert.equal(client.connected, true);
  assert.deepEqual(await client.listClusters(), []);
});

Deno.test("joining an id the master does not know is unknown_cluster", async () => {
  await using world = await startWorld(1);
  const client = await world.connect();
  await assert.rejects(client.join(999_999), hasCode("unknown_cluster"));
  assert.equal(client.connected, true);
  await assert.rejects(client.join(0), RangeError);
});

Deno.test("a full cluster is refused as cluster_full", async () => {
  await using world = await startWorld(1, { cluster: { maxConnections: 1 } });
  const client = await world.connect();
  const [cluster] = await client.listClusters();
  await client.join(cluster.id);
  await waitFor(
    "the master to see the load",
    () => world.master.registry.get(cluster.id)?.load === 1,
  );
  await assert.rejects(client.join(cluster.id), hasCode("cluster_full"));
  await assert.rejects(client.join("auto"), hasCode("no_cluster"));
});

Deno.test("the master's authentication hook refusing the credential is unauthorized", async () => {
  await using world = await startWorld(1, {
    master: {
      authenticate: (credential) =>
        Promise.resolve(
          new TextDecoder().decode(credential) === "letmein" ? { playerId: "alice" } : null,
        ),
    },
  });
  const refused = await world.connect({ credential: "wrong" });
  await assert.rejects(refused.join("auto"), hasCode("unauthorized"));
  const allowed = await world.connect({ credential: "letmein" });
  const session = await allowed.join("auto");
  assert.equal(await echo(session, "hi alice"), "hi alice");
});

Deno.test("an expired ticket is refused by the cluster as ticket_refused (status 44)", async () => {
  await using world = await startWorld(1, { master: { ticketTtlMs: 1 } });
  const client = await world.connect();
  await assert.rejects(client.join("auto"), (e) => {
    hasCode("ticket_refused")(e);
    assert.equal((e as ClientError).status, 44);
    return true;
  });
  assert.equal(world.clusters[0].players.size, 0);
});

Deno.test("a wrong pinned key is key_mismatch before anything reaches the cluster", async () => {
  await using world = await startWorld(1);
  const client = await world.connect({
    pinnedKeys: { "cluster-1": crypto.getRandomValues(new Uint8Array(32)) },
  });
  await assert.rejects(client.join("auto"), hasCode("key_mismatch"));
  assert.equal(world.clusters[0].players.size, 0);
});

Deno.test("the cluster's .pub file as pin lets the join through", async () => {
  await using world = await startWorld(1);
  const file = `${world.keysDir}/cluster-1_identity.pub`;
  const client = await world.connect({ pinnedKeys: { "cluster-1": { file } } });
  const session = await client.join("auto");
  assert.equal(await echo(session, "pinned"), "pinned");
});

Deno.test("RequestKey: the key learned on first use is confirmed by version on the next join", async () => {
  await using world = await startWorld(1);
  const client = await world.connect({ requestKey: true });
  const first = await client.join("auto");
  const cached = Object.values(client.cachedKeys());
  assert.equal(cached.length, 1);
  assert.deepEqual(cached[0].publicKey, world.clusters[0].identity.publicKey);
  assert.equal(cached[0].version, world.clusters[0].identity.version);
  await first.leave();
  const second = await client.join("auto");
  assert.equal(await echo(second, "cached"), "cached");
  // A cache whose key differs from the master's stops the join.
  const address = Object.keys(client.cachedKeys())[0];
  const stale = await world.connect({
    requestKey: true,
    keyCache: { [address]: { version: 1, publicKey: new Uint8Array(32).fill(3) } },
  });
  await assert.rejects(stale.join("auto"), hasCode("key_mismatch"));
});

Deno.test("a stopping cluster's reason reaches the player as a disconnect", async () => {
  await using world = await startWorld(1);
  const client = await world.connect();
  const session = await client.join("auto");
  const disconnected = Promise.withResolvers<{ reason: string; reconnecting: boolean }>();
  session.on("disconnect", (detail) => disconnected.resolve(detail));
  await world.clusters[0].stop("maintenance at noon");
  const detail = await disconnected.promise;
  assert.match(detail.reason, /maintenance at noon/);
  assert.equal(detail.reconnecting, false);
  const error = await session.closed;
  assert.equal(error.code, "disconnected");
  assert.equal(session.status, "closed");
});

Deno.test("keepalive Pings keep idle connections open; without them the cluster times out", async () => {
  await using world = await startWorld(1, {
    master: { idleTimeoutMs: 400 },
    cluster: { idleTimeoutMs: 400 },
  });
  const alive = await world.connect({ keepaliveMs: 100 });
  const aliveSession = await alive.join("auto");
  const quiet = await world.connect({ keepaliveMs: 0 });
  const quietSession = await quiet.join("auto");
  const quietEnd = await quietSession.closed;
  assert.equal(quietEnd.code, "timeout");
  await waitFor("the quiet master connection to time out", () => !quiet.connected);
  await new Promise((resolve) => setTimeout(resolve, 500));
  // The keepalive client outlived two idle timeouts.
  assert.equal(aliveSession.status, "joined");
  assert.equal(alive.connected, true);
  assert.equal(await echo(aliveSession, "alive"), "alive");
});

Deno.test("with reconnect on, a player rejoins a restarted cluster with a new ticket", async () => {
  await using world = await startWorld(1);
  const client = await world.connect({ reconnect: { minMs: 50, maxMs: 200 } });
  const session = await client.join("auto");
  const firstClusterId = session.clusterId;
  const port = world.clusters[0].addr.port;
  const events: string[] = [];
  const rejoined = Promise.withResolvers<void>();
  const dropped = Promise.withResolvers<void>();
  session.on("disconnect", ({ reconnecting }) => {
    events.push(`disconnect ${reconnecting}`);
    dropped.resolve();
  });
  session.on("error", ({ error }) => events.push(`error ${error.code}`));
  session.on("reconnect", () => {
    events.push("reconnect");
    rejoined.resolve();
  });

  await world.clusters[0].stop("restarting");
  await dropped.promise;
  assert.equal(session.status, "reconnecting");
  assert.equal(session.send(ECHO, new Uint8Array()), false); // not sent while reconnecting
  await world.startCluster("cluster-1", { port });
  await rejoined.promise;
  assert.equal(events[0], "disconnect true");
  assert.equal(events.at(-1), "reconnect");
  assert.equal(session.status, "joined");
  assert.notEqual(session.clusterId, firstClusterId); // registered again under a new id
  assert.equal(await echo(session, "back"), "back");
  await session.leave();
});

Deno.test("a rejoin reopens the master connection when the master restarted too", async () => {
  const keysDir = await Deno.makeTempDir({ prefix: "sustenet_client_test_" });
  await generateKey(keysDir, "cluster_key");
  const clusterOptions = (masterPort: number, port = 0): ClusterOptions => ({
    port,
    keysDir,
    master: { hostname: "127.0.0.1", port: masterPort },
    heartbeatIntervalMs: 50,
    plugins: [echoPlugin],
  });
  let master = await startMaster({ port: 0, keysDir });
  const masterPort = master.addr.port;
  let cluster = await startCluster(clusterOptions(masterPort));
  let client: SustenetClient | undefined;
  try {
    await waitFor("registration", () => master.registry.size === 1);
    client = await SustenetClient.connect({
      port: masterPort,
      reconnect: { minMs: 50, maxMs: 100 },
    });
    const masterGone = Promise.withResolvers<string>();
    client.on("disconnect", ({ error }) => masterGone.resolve(error.code));
    const session = await client.join("auto");
    const rejoined = Promise.withResolvers<void>();
    session.on("reconnect", () => rejoined.resolve());
    const clusterPort = cluster.addr.port;
    await cluster.stop();
    await master.stop();
    assert.equal(await masterGone.promise, "disconnected");
    assert.equal(client.connected, false);
    master = await startMaster({ port: masterPort, keysDir });
    cluster = await startCluster(clusterOptions(masterPort, clusterPort));
    await rejoined.promise;
    assert.equal(client.connected, true);
    assert.equal(await echo(session, "both back"), "both back");
  } finally {
    await client?.close();
    await cluster.stop();
    await master.stop();
    await Deno.remove(keysDir, { recursive: true });
  }
});

Deno.test("rejoining gives up after maxAttempts, and close() ends a session while it retries", async () => {
  await using world = await startWorld(1);
  const limited = await world.connect({ reconnect: { minMs: 10, maxMs: 20, maxAttempts: 2 } });
  const endless = await world.connect({ reconnect: { minMs: 10, maxMs: 20 } });
  const given = await limited.join("auto");
  const retrying = await endless.join("auto");
  const failures: string[] = [];
  given.on("error", ({ error }) => failures.push(error.code));
  const final = Promise.withResolvers<boolean>();
  given.on("disconnect", ({ reconnecting }) => {
    if (!reconnecting) final.resolve(reconnecting);
  });
  const retried = Promise.withResolvers<void>();
  retrying.on("error", () => retried.resolve());
  await world.clusters[0].stop();
  assert.equal(await final.promise, false);
  assert.deepEqual(failures, ["no_cluster", "no_cluster"]);
  assert.equal((await given.closed).code, "no_cluster");
  await retried.promise;
  assert.equal(retrying.status, "reconnecting");
  await retrying.close();
  assert.equal(retrying.status, "closed");
});

Deno.test("a player who leaves is not reconnected", async () => {
  await using world = await startWorld(1);
  const client = await world.connect({ reconnect: { minMs: 20, maxMs: 50 } });
  const session = await client.join("auto");
  let reconnects = 0;
  session.on("reconnect", () => reconnects++);
  await session.leave();
  await new Promise((resolve) => setTimeout(resolve, 150));
  assert.equal(reconnects, 0);
  assert.equal(session.status, "closed");
  assert.equal(client.sessions.size, 0);
  await waitFor("the cluster to drop the player", () => world.clusters[0].players.size === 0);
});

Deno.test("a full master refuses the connection as server_full", async () => {
  await using world = await startWorld(0, { master: { maxConnections: 1 } });
  await world.connect();
  await assert.rejects(world.connect(), hasCode("server_full"));
});
