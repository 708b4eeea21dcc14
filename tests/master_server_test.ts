/**
 * The master over real loopback sockets: an in-process `startMaster` on port 0, and raw
 * clusters and clients built from shared/transport + codec (tests/_master_peer.ts).
 */

import { captureLogs } from "./_logs.ts";
import { PROTOCOL_VERSION } from "../shared/protocol/packets.ts";
import assert from "node:assert/strict";
import { saveKey } from "../shared/keys.ts";
import { openJoinTicket, TicketVerifier } from "../shared/join_ticket.ts";
import { ErrorCode } from "../shared/protocol/protocol_error.ts";
import { sha256 } from "../shared/security.ts";
import {
  answerOf,
  MASTER_KEY_NAME as KEY_NAME,
  type RawPeer,
  registerRawCluster,
  withMaster,
} from "./_master_peer.ts";
import { decrypt, importAesKey } from "../shared/security.ts";
import { deriveMasterLinkKeys } from "../shared/key_derivation.ts";
import { formatLogRecord } from "../shared/logging.ts";
import { reset as resetLogging } from "@logtape/logtape";
import { waitFor } from "./_wait.ts";

const CLIENT_KEY = new Uint8Array(32).fill(9);

function join(clusterId: number, credential = new Uint8Array()) {
  return { kind: "JoinCluster" as const, clusterId, clientPublicKey: CLIENT_KEY, credential };
}

async function expectRegistrationFailure(peer: RawPeer): Promise<void> {
  const error = await peer.expectError(ErrorCode.AuthFailed);
  assert.equal(error.reason, "cluster registration failed");
  await peer.waitClosed();
}

// ------------------------------------------------------------------------------ registration

Deno.test("a cluster with the right key registers, is listed and its link is sealed", async () => {
  await withMaster({}, async ({ master, cluster, hello }) => {
    const { peer, clusterId } = await cluster({ name: "eu-1", port: 7001, maxConnections: 50 });
    assert.ok(clusterId > 0);
    const record = master.registry.get(clusterId);
    assert.equal(record?.name, "eu-1");
    assert.equal(record?.port, 7001);
    assert.equal(record?.keyName, KEY_NAME);
    assert.ok(peer.connection.sealed);

    // Sealed both ways: a heartbeat reaches the registry, a ping comes back.
    peer.send({ kind: "Heartbeat", load: 7, maxConnections: 50 });
    peer.send({ kind: "Ping", value: 77 });
    assert.equal((await peer.expect("Pong")).value, 77);
    await waitFor("load 7", () => master.registry.get(clusterId)?.load === 7);

    const client = await hello("client");
    client.send({ kind: "RequestClusters" });
    const list = await client.expect("SendClusters");
    assert.deepEqual(list.clusters, [{
      id: clusterId,
      name: "eu-1",
      host: "127.0.0.1",
      port: 7001,
      load: 7,
      maxConnections: 50,
      keyVersion: 1,
      full: false,
    }]);
    assert.equal(master.metrics.clustersRegistered.value, 1);
  });
});

Deno.test("a cluster with the wrong key is refused with the generic error, never listed", async () => {
  await withMaster({}, async ({ master, challenge }) => {
    const { peer, sealedPassphrase } = await challenge();
    const wrongKey = await importAesKey(crypto.getRandomValues(new Uint8Array(32)));
    await assert.rejects(decrypt(wrongKey, sealedPassphrase));
    peer.send(await answerOf({ keyName: KEY_NAME, key: new Uint8Array(32) }, new Uint8Array(32)));
    await expectRegistrationFailure(peer);
    assert.equal(master.registry.size, 0);
    assert.equal(master.metrics.authFailures.get("wrong_proof"), 1);
  });
});

Deno.test("an unknown key name gets a challenge of the same length and the same refusal", async () => {
  await withMaster({}, async ({ master, challenge }) => {
    const known = await challenge(KEY_NAME);
    const unknown = await challenge("no_such_key");
    assert.equal(unknown.sealedPassphrase.length, known.sealedPassphrase.length);
    assert.equal(unknown.sealedPassphrase.length, 12 + 32 + 16);
    unknown.peer.send(
      await answerOf({ keyName: "x", key: new Uint8Array(32) }, new Uint8Array(32)),
    );
    await expectRegistrationFailure(unknown.peer);
    // A name that is not even a valid file name is just another unknown key.
    const traversal = await challenge("../../etc/passwd");
    traversal.peer.send(
      await answerOf({ keyName: "x", key: new Uint8Array(32) }, new Uint8Array(32)),
    );
    await expectRegistrationFailure(traversal.peer);
    assert.equal(master.registry.size, 0);
  });
});

Deno.test("an answer replayed from a previous challenge is refused", async () => {
  await withMaster({}, async ({ master, key, challenge }) => {
    const first = await challenge();
    const oldPassphrase = await decrypt(await importAesKey(key), first.sealedPassphrase);
    await first.peer.close();
    const second = await challenge();
    second.peer.send(
      await answerOf({ keyName: KEY_NAME, key }, oldPassphrase, second.clusterNonce),
    );
    await expectRegistrationFailure(second.peer);
    assert.equal(master.registry.size, 0);
  });
});

Deno.test("an answer after the registration deadline is refused", async () => {
  await withMaster({ registrationTimeoutMs: 800 }, async ({ master, key, challenge }) => {
    const { peer, sealedPassphrase, clusterNonce } = await challenge();
    const passphrase = await decrypt(await importAesKey(key), sealedPassphrase);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    peer.send(await answerOf({ keyName: KEY_NAME, key }, passphrase, clusterNonce));
    await expectRegistrationFailure(peer);
    assert.equal(master.registry.size, 0);
  });
});

Deno.test("registration gets one try: a second BecomeCluster is refused", async () => {
  await withMaster({}, async ({ master, challenge }) => {
    const { peer } = await challenge();
    peer.send({ kind: "BecomeCluster", keyName: KEY_NAME, clusterNonce: new Uint8Array(32) });
    await expectRegistrationFailure(peer);
    assert.equal(master.registry.size, 0);
  });
});

Deno.test("a key added to the keys dir is accepted without a restart", async () => {
  await withMaster({}, async ({ master, port, keysDir }) => {
    const newKey = crypto.getRandomValues(new Uint8Array(32));
    await saveKey(keysDir, "added_later", newKey);
    const cluster = await registerRawCluster(port, { keyName: "added_later", key: newKey });
    try {
      assert.equal(master.registry.get(cluster.clusterId)?.keyName, "added_later");
    } finally {
      await cluster.peer.close();
    }
  });
});

Deno.test("a tampered sealed record from a cluster closes its link and unlists it", async () => {
  await withMaster({}, async ({ master, key, challenge }) => {
    const { peer, sealedPassphrase, clusterNonce } = await challenge();
    const passphrase = await decrypt(await importAesKey(key), sealedPassphrase);
    const keys = await deriveMasterLinkKeys(key, clusterNonce, passphrase);
    // Seal with the wrong direction's key: the master cannot open the first record.
    peer.sealOn("CreateCluster", {
      sendKey: keys.masterToCluster,
      receiveKey: keys.masterToCluster,
    });
    peer.send(await answerOf({ keyName: KEY_NAME, key }, passphrase, clusterNonce));
    const created = await peer.expect("CreateCluster");
    assert.equal(master.registry.size, 1);
    peer.send({ kind: "Heartbeat", load: 1, maxConnections: 1 });
    await peer.waitClosed();
    await waitFor("deregistration", () => master.registry.get(created.clusterId) === undefined);
  });
});

// ------------------------------------------------------------------------------ registry life

Deno.test("a cluster that misses its heartbeats is removed", async () => {
  await withMaster({ heartbeatTimeoutMs: 250 }, async ({ master, cluster }) => {
    const { peer, clusterId } = await cluster();
    assert.ok(master.registry.get(clusterId));
    await peer.expectError(ErrorCode.Timeout, 60_000);
    await peer.waitClosed();
    assert.equal(master.registry.get(clusterId), undefined);
    assert.equal(master.metrics.clustersRemoved.get("heartbeat_timeout"), 1);
  });
});

Deno.test("heartbeats keep a cluster listed past the heartbeat timeout", async () => {
  await withMaster({ heartbeatTimeoutMs: 600 }, async ({ master, cluster }) => {
    const { peer, clusterId } = await cluster();
    for (let i = 0; i < 10; i++) {
      peer.send({ kind: "Heartbeat", load: i, maxConnections: 100 });
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.equal(master.registry.get(clusterId)?.load, 9);
  });
});

Deno.test("a cluster that disconnects is removed at once", async () => {
  await withMaster({}, async ({ master, cluster, hello }) => {
    const { peer, clusterId } = await cluster();
    await peer.close();
    await waitFor("removal", () => master.registry.size === 0, 2000);
    const client = await hello("client");
    client.send({ kind: "RequestClusters" });
    assert.deepEqual((await client.expect("SendClusters")).clusters, []);
    client.send(join(clusterId));
    await client.expectError(ErrorCode.UnknownCluster);
  });
});

Deno.test("a cluster that sends Deregister is removed", async () => {
  await withMaster({}, async ({ master, cluster }) => {
    const { peer } = await cluster();
    peer.send({ kind: "Deregister", reason: "shutting down" });
    await peer.waitClosed();
    assert.equal(master.registry.size, 0);
    assert.equal(master.metrics.clustersRemoved.get("deregistered"), 1);
  });
});

Deno.test("a newer cluster at the same host:port replaces the older one", async () => {
  await withMaster({}, async ({ master, cluster }) => {
    const older = await cluster({ name: "old", port: 7100 });
    const newer = await cluster({ name: "new", port: 7100 });
    await older.peer.waitClosed();
    assert.deepEqual(master.registry.list().map((r) => r.name), ["new"]);
    assert.equal(master.registry.get(newer.clusterId)?.name, "new");
    assert.notEqual(newer.clusterId, older.clusterId);
  });
});

// ------------------------------------------------------------------------------ joins

Deno.test("auto-join picks the least-loaded cluster with room", async () => {
  await withMaster({}, async ({ master, cluster, hello }) => {
    const loads = [50, 10, 30];
    const clusters = [];
    for (const [i, load] of loads.entries()) {
      const c = await cluster({ name: `c${i}`, port: 7200 + i, maxConnections: 100 });
      c.peer.send({ kind: "Heartbeat", load, maxConnections: 100 });
      clusters.push(c);
    }
    await waitFor("every load reported", () => master.registry.list().every((r) => r.load > 0));
    const client = await hello("client");
    client.send(join(0));
    assert.equal((await client.expect("JoinTicket")).clusterId, clusters[1].clusterId);
  });
});

Deno.test("a join storm spreads over clusters through reserved load", async () => {
  await withMaster({}, async ({ cluster, hello }) => {
    const ids = new Set<number>();
    for (let i = 0; i < 3; i++) ids.add((await cluster({ port: 7300 + i })).clusterId);
    const client = await hello("client");
    for (let i = 0; i < 3; i++) client.send(join(0));
    const chosen = new Set<number>();
    for (let i = 0; i < 3; i++) chosen.add((await client.expect("JoinTicket")).clusterId);
    assert.deepEqual(chosen, ids);
  });
});

Deno.test("a full cluster is refused with ClusterFull and the connection stays open", async () => {
  await withMaster({}, async ({ master, cluster, hello }) => {
    const { peer, clusterId } = await cluster({ maxConnections: 2 });
    peer.send({ kind: "Heartbeat", load: 2, maxConnections: 2 });
    await waitFor("load 2", () => master.registry.get(clusterId)?.load === 2);
    const client = await hello("client");
    client.send(join(clusterId));
    assert.equal((await client.expectError(ErrorCode.ClusterFull)).reason, "cluster is full");
    client.send(join(0));
    await client.expectError(ErrorCode.NoCluster);
    client.send({ kind: "RequestClusters" });
    assert.equal((await client.expect("SendClusters")).clusters[0].full, true);
    assert.equal(master.metrics.joinsRefused.get("cluster_full"), 1);
    assert.equal(master.metrics.joinsRefused.get("no_cluster"), 1);
  });
});

Deno.test("an unknown cluster id is refused with UnknownCluster, the client may retry", async () => {
  await withMaster({}, async ({ cluster, hello }) => {
    const client = await hello("client");
    client.send(join(4242));
    await client.expectError(ErrorCode.UnknownCluster);
    client.send(join(0));
    await client.expectError(ErrorCode.NoCluster);
    const { clusterId } = await cluster();
    client.send(join(clusterId));
    assert.equal((await client.expect("JoinTicket")).clusterId, clusterId);
  });
});

Deno.test("the ticket opens with the cluster key and carries the right claims", async () => {
  await withMaster({ ticketTtlMs: 10_000 }, async ({ key, cluster, hello }) => {
    const publicKey = crypto.getRandomValues(new Uint8Array(32));
    const { clusterId } = await cluster({ host: "10.1.2.3", port: 7400, keyVersion: 3, publicKey });
    const client = await hello("client");
    const before = Date.now();
    client.send(join(clusterId));
    const answer = await client.expect("JoinTicket");
    assert.equal(answer.host, "10.1.2.3");
    assert.equal(answer.port, 7400);
    assert.equal(answer.keyVersion, 3);
    assert.deepEqual(answer.clusterPublicKey, publicKey);
    const claims = await openJoinTicket(key, answer.ticket);
    assert.equal(claims.clusterId, clusterId);
    assert.match(claims.playerId, /^guest-[0-9a-f]{16}$/);
    assert.ok(claims.expiresAtMs >= before + 10_000 && claims.expiresAtMs <= Date.now() + 10_000);
    assert.deepEqual(claims.clientKeyHash, await sha256(CLIENT_KEY));
    assert.equal(claims.ticketId.length, 16);
    assert.deepEqual(claims.clusterKeyHash, await sha256(publicKey));
    const verdict = await new TicketVerifier({
      clusterKey: key,
      clusterId,
      identityPublicKey: publicKey,
    }).verify(
      answer.ticket,
      CLIENT_KEY,
    );
    assert.equal(verdict.ok, true);
  });
});

Deno.test("the authenticate hook decides the player id; refusal or throw is Unauthorized", async () => {
  const hook = (credential: Uint8Array) => {
    const text = new TextDecoder().decode(credential);
    if (text === "boom") return Promise.reject(new Error("auth backend down"));
    if (text === "long") return Promise.resolve({ playerId: "x".repeat(300) });
    return Promise.resolve(text === "alice-token" ? { playerId: "alice" } : null);
  };
  await withMaster({ authenticate: hook }, async ({ master, key, cluster, hello }) => {
    const { clusterId } = await cluster();
    const client = await hello("client");
    const encode = (s: string) => new TextEncoder().encode(s);
    for (const credential of ["wrong", "boom", "long"]) {
      client.send(join(clusterId, encode(credential)));
      const error = await client.expectError(ErrorCode.Unauthorized);
      assert.equal(error.reason, "not authorized");
    }
    client.send(join(clusterId, encode("alice-token")));
    const ticket = await client.expect("JoinTicket");
    assert.equal((await openJoinTicket(key, ticket.ticket)).playerId, "alice");
    assert.equal(master.metrics.joinsRefused.get("unauthorized"), 3);
    assert.equal(master.metrics.ticketsIssued.value, 1);
  });
});

Deno.test("a client with too many requests in flight is dropped with SlowConsumer", async () => {
  const gate = Promise.withResolvers<void>();
  const hook = async () => {
    await gate.promise;
    return { playerId: "p" };
  };
  await withMaster({ authenticate: hook }, async ({ hello }) => {
    const client = await hello("client");
    try {
      for (let i = 0; i < 40; i++) client.send(join(0));
      await client.expectError(ErrorCode.SlowConsumer);
      await client.waitClosed();
    } finally {
      gate.resolve();
    }
  });
});

Deno.test("a JoinCluster with a client key that is not 32 bytes is BadPacket", async () => {
  await withMaster({}, async ({ hello }) => {
    const client = await hello("client");
    // The codec cannot encode it (key32): the bytes by hand, a 31-byte key and no credential.
    client.connection.send(
      Uint8Array.fromHex(`00000027 12 00000000 1f${"00".repeat(31)} 0000`.replaceAll(" ", "")),
    );
    await client.expectError(ErrorCode.BadPacket);
    await client.waitClosed();
  });
});

// ------------------------------------------------------------------------------ connections

Deno.test("max_connections: an extra client gets ServerFull at its Hello and is closed", async () => {
  await withMaster({ maxConnections: 2 }, async ({ master, hello, connect }) => {
    await hello("client");
    await hello("client");
    const third = await connect();
    third.send({ kind: "Hello", version: PROTOCOL_VERSION, role: 1 });
    await third.expectError(ErrorCode.ServerFull);
    await third.waitClosed();
    assert.equal(master.metrics.connectionsRefused.value, 1);
  });
});

Deno.test("a connection that never says Hello is closed with Timeout", async () => {
  await withMaster({ handshakeTimeoutMs: 200 }, async ({ connect }) => {
    const peer = await connect();
    await peer.expectError(ErrorCode.Timeout);
    await peer.waitClosed();
  });
});

Deno.test("a silent client is closed after the idle timeout; Ping keeps it alive", async () => {
  await withMaster({ idleTimeoutMs: 600 }, async ({ hello }) => {
    const silent = await hello("client");
    const pinging = await hello("client");
    for (let i = 0; i < 9; i++) {
      pinging.send({ kind: "Ping", value: i });
      assert.equal((await pinging.expect("Pong")).value, i);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await silent.expectError(ErrorCode.Timeout);
    assert.ok(pinging.connection.isOpen);
  });
});

Deno.test("a bad first frame is answered with the right error and closed", async () => {
  await withMaster({}, async ({ connect }) => {
    const notHello = await connect();
    notHello.send({ kind: "Ping", value: 1 });
    await notHello.expectError(ErrorCode.BadHello);
    await notHello.waitClosed();

    // A v1 peer (before AnswerCluster carried a proof) gets a readable VersionMismatch.
    const newer = await connect();
    newer.send({ kind: "Hello", version: 1, role: 2 });
    const mismatch = await newer.expectError(ErrorCode.VersionMismatch);
    assert.equal(mismatch.reason, "version 1 unsupported (this master speaks 3)");
    await newer.waitClosed();
    assert.equal((await newer.connection.closed).by, "remote", "the master closed the socket");

    const master = await connect();
    master.send({ kind: "Hello", version: 3, role: 3 });
    await master.expectError(ErrorCode.BadHello);

    const badMagic = await connect();
    badMagic.connection.send(Uint8Array.fromHex("000000080153555358000101"));
    await badMagic.expectError(ErrorCode.BadHello);

    const tooLarge = await connect();
    tooLarge.connection.send(Uint8Array.fromHex("0001000101"));
    await tooLarge.expectError(ErrorCode.FrameTooLarge);

    // A first frame that is not a valid Hello is BadHello, even when it does not decode.
    const unknown = await connect();
    unknown.connection.send(Uint8Array.fromHex("0000000106"));
    await unknown.expectError(ErrorCode.BadHello);
  });
});

Deno.test("packets of the wrong role or state are UnexpectedPacket", async () => {
  await withMaster({}, async ({ master, hello }) => {
    const client = await hello("client");
    client.send({ kind: "BecomeCluster", keyName: KEY_NAME, clusterNonce: new Uint8Array(32) });
    await client.expectError(ErrorCode.UnexpectedPacket);

    const cluster = await hello("cluster");
    cluster.send({ kind: "RequestClusters" });
    await cluster.expectError(ErrorCode.UnexpectedPacket);

    const early = await hello("cluster");
    early.send(await answerOf({ keyName: KEY_NAME, key: new Uint8Array(32) }, new Uint8Array(32)));
    await expectRegistrationFailure(early);

    const twice = await hello("client");
    twice.send({ kind: "Hello", version: 3, role: 1 });
    await twice.expectError(ErrorCode.UnexpectedPacket);
    assert.equal(master.registry.size, 0);
  });
});

Deno.test("stop() sends ShuttingDown to every connection and closes them", async () => {
  await withMaster({}, async ({ master, cluster, hello }) => {
    const { peer } = await cluster();
    const client = await hello("client");
    await master.stop();
    await client.expectError(ErrorCode.ShuttingDown);
    await peer.expectError(ErrorCode.ShuttingDown);
    await client.waitClosed();
    await peer.waitClosed();
    assert.equal(master.registry.size, 0);
    assert.equal(master.metrics.clustersRemoved.get("shutdown"), 1);
  });
});

// ------------------------------------------------------------------------------ status HTTP

Deno.test("/health, /metrics and / answer with the master's state", async () => {
  await withMaster({ status: { port: 0 } }, async ({ master, cluster, hello }) => {
    assert.ok(master.statusAddr !== null);
    const base = `http://127.0.0.1:${master.statusAddr.port}`;
    const { clusterId } = await cluster({ name: "<b>eu</b> & co" });
    const client = await hello("client");
    client.send(join(clusterId));
    await client.expect("JoinTicket");
    client.send(join(999));
    await client.expectError(ErrorCode.UnknownCluster);

    const health = await (await fetch(`${base}/health`)).json();
    assert.equal(health.status, "ok");
    assert.equal(health.role, "master");
    assert.equal(health.clusters, 1);
    assert.equal(health.connections, 2);
    assert.equal(typeof health.uptimeS, "number");

    const metrics = await (await fetch(`${base}/metrics`)).text();
    assert.match(metrics, /^sustenet_master_clusters 1$/m);
    assert.match(metrics, /^sustenet_master_connections 2$/m);
    assert.match(metrics, /^sustenet_master_tickets_issued_total 1$/m);
    assert.match(metrics, /^sustenet_master_joins_refused_total\{reason="unknown_cluster"\} 1$/m);
    assert.match(metrics, /^sustenet_master_auth_failures_total\{reason="wrong_proof"\} 0$/m);
    const framesIn = /^sustenet_master_frames_in_total (\d+)$/m.exec(metrics);
    assert.ok(framesIn !== null && Number(framesIn[1]) >= 4);
    assert.match(metrics, /^sustenet_master_bytes_out_total [1-9]\d*$/m);

    // The console: a shell without data (no inline script), and the data as JSON.
    const page = await fetch(`${base}/`);
    assert.match(page.headers.get("content-type") ?? "", /text\/html/);
    assert.match(page.headers.get("content-security-policy") ?? "", /script-src 'self'/);
    const html = await page.text();
    assert.ok(!html.includes("<b>eu</b>"));
    assert.ok(!/<script>/.test(html));
    const state = await (await fetch(`${base}/api/state`)).json();
    assert.equal(state.totals.clusters, 1);
    assert.equal(state.clusters[0].name, "<b>eu</b> & co");
    // The plain page (no script) escapes peer strings itself.
    const plain = await (await fetch(`${base}/status`)).text();
    assert.ok(plain.includes("&lt;b&gt;eu&lt;/b&gt; &amp; co"));
    assert.ok(!plain.includes("<b>eu</b>"));
  });
});

// ------------------------------------------------------------------------------ logs

Deno.test("the master logs why registrations fail, and never a key, passphrase or ticket", async () => {
  const records = await captureLogs();
  const secrets: Uint8Array[] = [];
  try {
    await withMaster({ registrationTimeoutMs: 1000 }, async ({ key, port, challenge, hello }) => {
      secrets.push(key);
      const ok = await registerRawCluster(port, { keyName: KEY_NAME, key });
      const wrong = await challenge();
      secrets.push(await decrypt(await importAesKey(key), wrong.sealedPassphrase));
      wrong.peer.send(await answerOf({ keyName: KEY_NAME, key }, new Uint8Array(32)));
      await expectRegistrationFailure(wrong.peer);
      const unknown = await challenge("nobody");
      unknown.peer.send(await answerOf({ keyName: KEY_NAME, key }, new Uint8Array(32)));
      await expectRegistrationFailure(unknown.peer);
      const late = await challenge();
      await expectRegistrationFailure(late.peer);

      const client = await hello("client");
      const credential = new TextEncoder().encode("super-secret-credential");
      client.send(join(ok.clusterId, credential));
      secrets.push((await client.expect("JoinTicket")).ticket, credential);
      await ok.peer.close();
    });
  } finally {
    await resetLogging();
  }
  const lines = records.map((record) => formatLogRecord(record));
  const text = lines.join("\n");
  for (const reason of ["wrong_proof", "unknown_key", "timeout"]) {
    assert.match(text, new RegExp(`cluster registration from .* refused: ${reason}`));
  }
  assert.match(text, /cluster test-cluster \(\d+\) registered/);
  for (const secret of secrets) {
    for (
      const form of [
        secret.toHex(),
        secret.toBase64(),
        secret.toBase64({ alphabet: "base64url", omitPadding: true }),
        new TextDecoder().decode(secret),
      ]
    ) {
      if (form.length < 8) continue;
      assert.ok(!text.includes(form), "a secret reached a log line");
    }
    for (const record of records) {
      for (const value of Object.values(record.properties)) {
        assert.ok(!(value instanceof Uint8Array), "bytes passed to a log record");
      }
    }
  }
});
