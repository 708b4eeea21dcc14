import { PROTOCOL_VERSION } from "../shared/protocol/packets.ts";
import assert from "node:assert/strict";
import { type LogRecord, reset } from "@logtape/logtape";
import { type ClusterOptions, startCluster } from "../cluster/mod.ts";
import { startMaster } from "../master/mod.ts";
import {
  clientKeyHash,
  clusterKeyHash,
  newTicketId,
  sealJoinTicket,
} from "../shared/join_ticket.ts";
import { generateEphemeralKeyPair } from "../shared/key_derivation.ts";
import { loadKey } from "../shared/keys.ts";
import { setupLogging } from "../shared/logging.ts";
import { definePlugin, type PlayerInfo } from "../shared/plugin.ts";
import {
  joinCluster,
  playerJoins,
  RawClient,
  requestTicket,
  startWorld,
  waitUntil,
  type World,
} from "./_raw_client.ts";
import { keyedClusterClient } from "./_fuzz.ts";
import { QUIET_CONSOLE } from "./_logs.ts";

const echo = definePlugin({
  onMessage(ctx, from, command, payload) {
    if (command === 0x80) ctx.send(from, 0x80, payload);
  },
});

/** A world whose cluster runs the echo plugin (plus `cluster` options). */
function world(cluster: ClusterOptions = {}): Promise<World> {
  return startWorld({ plugins: [echo], ...cluster });
}

async function echoes(client: RawClient, text: string): Promise<void> {
  const payload = new TextEncoder().encode(text);
  client.send({ kind: "Plugin", command: 0x80, payload });
  const answer = await client.expect("Plugin");
  assert.equal(answer.command, 0x80);
  assert.equal(new TextDecoder().decode(answer.payload), text);
}

Deno.test("a client with a valid ticket from the master is authenticated and exchanges plugin messages", async () => {
  await using w = await world({ status: { port: 0 } });
  const { client, auth } = await playerJoins(w.master.addr.port, w.cluster.addr.port);
  try {
    assert.ok(auth.clientId > 0);
    assert.equal(w.cluster.players.size, 1);
    assert.equal(w.cluster.players.get(auth.clientId)?.clientId, auth.clientId);
    await echoes(client, "hello");
    await echoes(client, "again");
    assert.equal(w.cluster.masterLinkState, "registered");
    assert.equal(w.cluster.clusterId, [...w.master.registry.list()][0]?.id);

    const status = w.cluster.statusAddr!;
    const health = await (await fetch(`http://127.0.0.1:${status.port}/health`)).json();
    assert.equal(health.role, "cluster");
    assert.equal(health.players, 1);
    assert.equal(health.masterLink, "registered");
    const metrics = await (await fetch(`http://127.0.0.1:${status.port}/metrics`)).text();
    assert.match(metrics, /^sustenet_cluster_players 1$/m);
    assert.match(metrics, /^sustenet_cluster_auth_results_total\{status="20",reason="ok"\} 1$/m);
    assert.match(metrics, /^sustenet_cluster_plugin_messages_total 2$/m);
    assert.match(metrics, /^sustenet_cluster_master_link\{state="registered"\} 1$/m);
  } finally {
    await client.close();
  }
});

/** Seals a ticket ourselves with the cluster key, for the refusal cases a master never issues. */
async function forgedTicket(
  w: World,
  clientPublic: Uint8Array,
  changes: { clusterId?: number; expiresAtMs?: number; identity?: Uint8Array } = {},
): Promise<Uint8Array> {
  return await sealJoinTicket(await loadKey(w.keysDir, "cluster_key"), {
    clusterId: changes.clusterId ?? w.cluster.clusterId!,
    clusterKeyHash: await clusterKeyHash(changes.identity ?? w.cluster.identity.publicKey),
    playerId: "forged",
    expiresAtMs: changes.expiresAtMs ?? Date.now() + 30_000,
    clientKeyHash: await clientKeyHash(clientPublic),
    ticketId: newTicketId(),
  });
}

async function refusedWith(port: number, join: Parameters<typeof joinCluster>[1]): Promise<number> {
  const { client, auth } = await joinCluster(port, join);
  try {
    assert.equal(auth.clientId, 0);
    await client.closed;
    return auth.status;
  } finally {
    await client.close();
  }
}

Deno.test("bad tickets are refused with the right status and never admitted", async () => {
  await using w = await world({ status: { port: 0 } });
  const port = w.cluster.addr.port;
  const ephemeral = await generateEphemeralKeyPair();

  // Garbage.
  const garbage = crypto.getRandomValues(new Uint8Array(90));
  assert.equal(await refusedWith(port, { ephemeral, ticket: garbage }), 40);
  // Expired.
  const expired = await forgedTicket(w, ephemeral.publicRaw, { expiresAtMs: Date.now() - 1 });
  assert.equal(await refusedWith(port, { ephemeral, ticket: expired }), 44);
  // For another cluster: a real ticket for a second cluster sharing the same key file.
  {
    await using second = await startCluster({
      port: 0,
      keysDir: w.keysDir,
      serverName: "eu-2",
      master: { hostname: "127.0.0.1", port: w.master.addr.port },
    });
    await waitUntil(() => second.clusterId !== undefined, "the second cluster to register");
    const forSecond = await requestTicket(w.master.addr.port, second.clusterId);
    assert.ok(forSecond.answer.kind === "JoinTicket");
    assert.equal(
      await refusedWith(port, { ephemeral: forSecond.ephemeral, ticket: forSecond.answer.ticket }),
      40,
    );
  }
  // Bound to another key: a real ticket, presented with a different ephemeral key.
  const grant = await requestTicket(w.master.addr.port);
  assert.ok(grant.answer.kind === "JoinTicket");
  const thief = await generateEphemeralKeyPair();
  assert.equal(await refusedWith(port, { ephemeral: thief, ticket: grant.answer.ticket }), 40);
  // Reused: the same real ticket twice with the right key.
  const first = await joinCluster(port, {
    ephemeral: grant.ephemeral,
    ticket: grant.answer.ticket,
  });
  assert.equal(first.auth.status, 20);
  assert.equal(
    await refusedWith(port, { ephemeral: grant.ephemeral, ticket: grant.answer.ticket }),
    44,
  );
  assert.equal(w.cluster.players.size, 1);
  await first.client.close();
  await waitUntil(() => w.cluster.players.size === 0, "the player to leave");
  assert.equal(w.cluster.metrics.authResults.get("40"), 3);
  assert.equal(w.cluster.metrics.authResults.get("44"), 2);
  assert.equal(w.cluster.metrics.authResults.get("20"), 1);
});

Deno.test("a packet before authentication is UnexpectedPacket and closes the connection", async () => {
  await using w = await world();
  const client = await RawClient.connect(w.cluster.addr.port);
  try {
    client.send({ kind: "Hello", version: 3, role: 1 });
    await client.expect("HelloOk");
    client.send({ kind: "Plugin", command: 0x80, payload: new Uint8Array([1]) });
    const error = await client.expect("Error");
    assert.equal(error.code, 7);
    await client.closed;
    assert.equal(w.cluster.players.size, 0);
  } finally {
    await client.close();
  }
});

Deno.test("a tampered sealed record closes that connection while another player keeps playing", async () => {
  await using w = await world();
  const a = await playerJoins(w.master.addr.port, w.cluster.addr.port);
  const b = await playerJoins(w.master.addr.port, w.cluster.addr.port);
  try {
    await echoes(a.client, "a");
    a.client.tamperNextRecord = true;
    a.client.send({ kind: "Plugin", command: 0x80, payload: new Uint8Array([1]) });
    await a.client.closed;
    await waitUntil(() => w.cluster.players.size === 1, "the tampering player to be dropped");
    await echoes(b.client, "still here");
    assert.equal(w.cluster.players.get(b.auth.clientId)?.clientId, b.auth.clientId);
  } finally {
    await a.client.close();
    await b.client.close();
  }
});

Deno.test("the cluster survives a master restart: listed again within 3 s while its player keeps playing", async () => {
  await using w = await world();
  const port = w.master.addr.port;
  const { client } = await playerJoins(port, w.cluster.addr.port);
  try {
    await w.master.stop();
    await waitUntil(() => w.cluster.masterLinkState !== "registered", "the link to drop");
    await echoes(client, "master is gone");
    w.master = await startMaster({ port, keysDir: w.keysDir, heartbeatTimeoutMs: 2000 });
    await waitUntil(() => w.master.registry.size === 1, "the cluster to be listed again", 60_000);
    // The master lists the cluster as it sends CreateCluster; the cluster's state follows when
    // that frame arrives.
    await waitUntil(() => w.cluster.masterLinkState === "registered", "the link to register");
    await echoes(client, "master is back");
    assert.equal(w.cluster.players.size, 1);
    // A new player can join through the new master.
    const second = await playerJoins(port, w.cluster.addr.port);
    await second.client.close();
  } finally {
    await client.close();
  }
});

Deno.test("a kicked player gets DisconnectCluster with the reason and plugins see it leave", async () => {
  const left: string[] = [];
  const bouncer = definePlugin({
    onMessage(ctx, from, command) {
      if (command === 0x90) ctx.kick(from, "no spamming");
    },
    onLeave(_ctx, _player: PlayerInfo, reason) {
      left.push(reason);
    },
  });
  await using w = await world({ plugins: [echo, { plugin: bouncer, name: "bouncer" }] });
  const { client } = await playerJoins(w.master.addr.port, w.cluster.addr.port);
  try {
    client.send({ kind: "Plugin", command: 0x90, payload: new Uint8Array() });
    const disconnect = await client.expect("DisconnectCluster");
    assert.equal(disconnect.reason, "no spamming");
    await client.closed;
    await waitUntil(() => left.length === 1, "onLeave");
    assert.equal(left[0], "kicked: no spamming");
    assert.equal(w.cluster.players.size, 0);
    assert.equal(w.cluster.metrics.kicks.value, 1);
  } finally {
    await client.close();
  }
});

Deno.test("broadcasts reach every player, or all but one, from one encoded frame", async () => {
  const shout = definePlugin({
    onMessage(ctx, from, command, payload) {
      if (command === 0x81) ctx.broadcast(0x81, payload);
      if (command === 0x82) ctx.broadcast(0x82, payload, { except: from });
    },
  });
  await using w = await world({ plugins: [shout] });
  const a = await playerJoins(w.master.addr.port, w.cluster.addr.port);
  const b = await playerJoins(w.master.addr.port, w.cluster.addr.port);
  try {
    a.client.send({ kind: "Plugin", command: 0x81, payload: new Uint8Array([7]) });
    assert.deepEqual([...(await a.client.expect("Plugin")).payload], [7]);
    assert.deepEqual([...(await b.client.expect("Plugin")).payload], [7]);
    a.client.send({ kind: "Plugin", command: 0x82, payload: new Uint8Array([8]) });
    const toB = await b.client.expect("Plugin");
    assert.equal(toB.command, 0x82);
    // A round trip on A proves nothing else was queued for it.
    a.client.send({ kind: "Ping", value: 1 });
    assert.equal((await a.client.expect("Pong")).value, 1);
  } finally {
    await a.client.close();
    await b.client.close();
  }
});

Deno.test("max_connections counts players: a connection beyond it is pending, not refused", async () => {
  await using w = await world({ maxConnections: 1 });
  const { client } = await playerJoins(w.master.addr.port, w.cluster.addr.port);
  const extra = await RawClient.connect(w.cluster.addr.port);
  try {
    extra.send({ kind: "Hello", version: PROTOCOL_VERSION, role: 1 });
    await extra.expect("HelloOk");
    await echoes(client, "still fine");
    assert.equal(w.cluster.metrics.connectionsRefused.value, 0);
    assert.equal(w.cluster.metrics.preAuth.pending, 1);
  } finally {
    await extra.close();
    await client.close();
  }
});

Deno.test("a player that leaves gets LeaveCluster back and plugins see it go", async () => {
  const left: string[] = [];
  await using w = await world({
    plugins: [
      echo,
      definePlugin({ onLeave: (_c, p, reason) => left.push(`${p.clientId} ${reason}`) }),
    ],
  });
  const { client, auth } = await playerJoins(w.master.addr.port, w.cluster.addr.port);
  try {
    client.send({ kind: "LeaveCluster" });
    await client.expect("LeaveCluster");
    await client.closed;
    await waitUntil(() => left.length === 1, "onLeave");
    assert.equal(left[0], `${auth.clientId} player left`);
  } finally {
    await client.close();
  }
});

Deno.test("a graceful stop sends DisconnectCluster to players and deregisters", async () => {
  await using w = await world();
  const { client } = await playerJoins(w.master.addr.port, w.cluster.addr.port);
  try {
    await w.cluster.stop("maintenance");
    const disconnect = await client.expect("DisconnectCluster");
    assert.equal(disconnect.reason, "maintenance");
    await client.closed;
    await waitUntil(() => w.master.registry.size === 0, "the master to drop the cluster", 60_000);
    assert.equal(w.cluster.masterLinkState, "stopped");
    const late = await RawClient.connect(w.cluster.addr.port).then(
      (c) => c.close().then(() => "connected"),
      () => "refused",
    );
    assert.equal(late, "refused");
  } finally {
    await client.close();
  }
});

Deno.test("a cluster without a master refuses every ticket with 50", async () => {
  const keysDir = await Deno.makeTempDir();
  try {
    await using cluster = await startCluster({ port: 0, keysDir, master: null });
    assert.equal(cluster.masterLinkState, "disabled");
    const ephemeral = await generateEphemeralKeyPair();
    const status = await refusedWith(cluster.addr.port, {
      ephemeral,
      ticket: new Uint8Array(90),
    });
    assert.equal(status, 50);
  } finally {
    await Deno.remove(keysDir, { recursive: true });
  }
});

Deno.test("a missing cluster key is generated and the identity public key is exported", async () => {
  const keysDir = await Deno.makeTempDir();
  try {
    await using cluster = await startCluster({
      port: 0,
      keysDir,
      master: null,
      identityKeyName: "eu_identity",
    });
    assert.equal((await loadKey(keysDir, "cluster_key")).length, 32);
    const pub = await Deno.readTextFile(`${keysDir}/eu_identity.pub`);
    assert.ok(pub.length > 0);
    // Served in-band too.
    const client = await RawClient.connect(cluster.addr.port);
    client.send({ kind: "Hello", version: 3, role: 1 });
    await client.expect("HelloOk");
    client.send({ kind: "RequestKey", cachedVersion: 0 });
    const sent = await client.expect("SendPubKey");
    assert.deepEqual(sent.publicKey, cluster.identity.publicKey);
    client.send({ kind: "RequestKey", cachedVersion: sent.version });
    assert.equal((await client.expect("VersionOfKey")).version, sent.version);
    await client.close();
  } finally {
    await Deno.remove(keysDir, { recursive: true });
  }
});

Deno.test("plaintext mode is refused off loopback", async () => {
  await assert.rejects(
    () => startCluster({ hostname: "0.0.0.0", plaintext: true, master: null }),
    /plaintext mode needs a loopback hostname/,
  );
});

Deno.test("a silent connection times out in the handshake, an authenticated player does not", async () => {
  await using w = await world({ handshakeTimeoutMs: 150 });
  const { client } = await playerJoins(w.master.addr.port, w.cluster.addr.port);
  const silent = await RawClient.connect(w.cluster.addr.port);
  try {
    const error = await silent.expect("Error");
    assert.equal(error.code, 9);
    await silent.closed;
    await echoes(client, "past the handshake deadline");
  } finally {
    await silent.close();
    await client.close();
  }
});

Deno.test("a kick reason of any length or content still reaches the player", async () => {
  const reason = "🙂".repeat(3000);
  await using w = await world({
    plugins: [definePlugin({ onMessage: (ctx, from) => ctx.kick(from, reason) })],
  });
  const { client } = await playerJoins(w.master.addr.port, w.cluster.addr.port);
  try {
    client.send({ kind: "Plugin", command: 0x80, payload: new Uint8Array() });
    const disconnect = await client.expect("DisconnectCluster");
    assert.ok(disconnect.reason.startsWith("🙂🙂"));
    assert.ok(disconnect.reason.isWellFormed());
    await client.closed;
  } finally {
    await client.close();
  }
});

Deno.test("names that cannot go on the wire are refused at start", async () => {
  await assert.rejects(
    () => startCluster({ serverName: "x".repeat(256), master: null }),
    /serverName must be 1\.\.255 bytes/,
  );
  await assert.rejects(
    () => startCluster({ publicHost: "", hostname: "127.0.0.1", serverName: "", master: null }),
    /serverName/,
  );
  await assert.rejects(
    () => startCluster({ maxFrameBytes: 1024, maxQueueBytes: 1024, master: null }),
    /maxQueueBytes/,
  );
});

Deno.test("after the key exchange, a sealed packet other than SendPassword is UnexpectedPacket, never an admission", async () => {
  await using w = await world();
  const port = w.cluster.addr.port;
  for (
    const packet of [
      { kind: "Plugin", command: 0x80, payload: new Uint8Array([1]) },
      { kind: "Move", state: { x: 1, y: 0, z: 1 } },
      { kind: "Ping", value: 1 },
      { kind: "LeaveCluster" },
    ] as const
  ) {
    const client = await keyedClusterClient(port);
    try {
      client.send(packet);
      const error = await client.expect("Error");
      assert.equal(error.code, 7, packet.kind); // UnexpectedPacket
      await client.closed;
      assert.equal(w.cluster.players.size, 0);
    } finally {
      await client.close();
    }
  }
  assert.equal(w.cluster.metrics.authResults.get("20"), 0);
});

Deno.test("an empty ticket after the key exchange is refused with 40 and admits no one", async () => {
  await using w = await world();
  const ephemeral = await generateEphemeralKeyPair();
  const status = await refusedWith(w.cluster.addr.port, { ephemeral, ticket: new Uint8Array() });
  assert.equal(status, 40);
  assert.equal(w.cluster.players.size, 0);
  assert.equal(w.cluster.metrics.authResults.get("40"), 1);
});

Deno.test("the announced publicHost is what the master lists and hands out", async () => {
  await using w = await world({ publicHost: "10.1.2.3" });
  const [record] = w.master.registry.list();
  assert.equal(record?.host, "10.1.2.3");
  assert.equal(record?.port, w.cluster.addr.port);
  // The listener itself stays on its bind address.
  assert.equal(w.cluster.addr.hostname, "127.0.0.1");
  const grant = await requestTicket(w.master.addr.port);
  assert.ok(grant.answer.kind === "JoinTicket");
  assert.equal(grant.answer.host, "10.1.2.3");
});

Deno.test("a missing cluster key is generated with a warning that the master needs the same key", async () => {
  const keysDir = await Deno.makeTempDir();
  const warnings: string[] = [];
  await setupLogging({
    level: "info",
    console: QUIET_CONSOLE,
    sinks: {
      capture(record: LogRecord) {
        if (record.level !== "warning" || record.category[1] !== "cluster") return;
        warnings.push(record.message.map(String).join(""));
      },
    },
  });
  try {
    await using _cluster = await startCluster({ port: 0, keysDir, master: null });
    assert.equal((await loadKey(keysDir, "cluster_key")).length, 32);
    const generated = warnings.filter((w) => w.includes("generated a new one"));
    assert.equal(generated.length, 1, warnings.join("\n"));
    assert.ok(generated[0].includes(`${keysDir}/cluster_key`));
    assert.match(generated[0], /the master needs this same key/);
    // A second start finds the key and warns no more.
    warnings.length = 0;
    await using _again = await startCluster({ port: 0, keysDir, master: null });
    assert.deepEqual(warnings.filter((w) => w.includes("generated")), []);
  } finally {
    await reset();
    await Deno.remove(keysDir, { recursive: true });
  }
});
