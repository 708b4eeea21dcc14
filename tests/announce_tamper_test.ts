/**
 * Issue 15, "an announce no one can rewrite": a man in the middle on the cluster→master link,
 * clients pinning by name, tickets bound to the cluster's identity, and registration failures
 * that show on the master. Real in-process masters and clusters on 127.0.0.1 sockets; the
 * attacker is a TCP proxy in this file that rewrites AnswerCluster with the codec.
 */

import { withLogs } from "./_logs.ts";
import assert from "node:assert/strict";
import { startMaster } from "../master/mod.ts";
import { type ClusterOptions, type ClusterServer, startCluster } from "../cluster/mod.ts";
import { SustenetClient } from "../client/mod.ts";
import { ClientError } from "../client/errors.ts";
import { parseCliArgs } from "../client/main.ts";
import {
  clientKeyHash,
  clusterKeyHash,
  newTicketId,
  sealJoinTicket,
} from "../shared/join_ticket.ts";
import { generateKey, loadKey } from "../shared/keys.ts";
import { formatLogRecord, type LogRecord } from "../shared/logging.ts";
import { decodePacket, encodePacket } from "../shared/protocol/codec.ts";
import type { AnswerClusterPacket } from "../shared/protocol/packets.ts";
import { ProtocolError } from "../shared/protocol/protocol_error.ts";
import { renderPrometheus } from "../shared/metrics.ts";
import { joinCluster, requestTicket, waitUntil } from "./_raw_client.ts";
import { answerOf, challengeOf, registerRawCluster } from "./_master_peer.ts";
import { withKeysDir } from "./_process.ts";

/** What the attacker puts into AnswerCluster: its own address and identity key. */
const ATTACKER_KEY = new Uint8Array(32).fill(0x66);

function warnings(records: readonly LogRecord[], pattern: RegExp): string[] {
  return records.filter((r) => r.level === "warning").map((r) => formatLogRecord(r)).filter((
    line,
  ) => pattern.test(line));
}

/**
 * A TCP proxy between clusters and a master. Cluster→master bytes are parsed as frames until
 * AnswerCluster (the last plaintext frame a cluster sends), which `rewrite` may replace; after
 * it, and in the other direction, bytes pass unchanged.
 */
function startProxy(
  masterPort: number,
  rewrite: (answer: AnswerClusterPacket) => AnswerClusterPacket,
) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const sockets = new Set<Deno.Conn>();
  let answers = 0;
  let rewritten = 0;
  const pipe = async (from: Deno.Conn, to: Deno.Conn) => {
    try {
      for await (const chunk of from.readable.values({ preventCancel: true })) {
        await writeAll(to, chunk);
      }
    } catch {
      // The other side closed: the pair is torn down below.
    }
  };
  const upstream = async (cluster: Deno.Conn, master: Deno.Conn) => {
    let buffered = new Uint8Array(0);
    let plaintext = true;
    try {
      for await (const chunk of cluster.readable.values({ preventCancel: true })) {
        if (!plaintext) {
          await writeAll(master, chunk);
          continue;
        }
        buffered = concat(buffered, chunk);
        while (plaintext && buffered.length >= 4) {
          const length = new DataView(buffered.buffer, buffered.byteOffset).getUint32(0);
          if (buffered.length < 4 + length) break;
          let frame = buffered.slice(0, 4 + length);
          buffered = buffered.slice(4 + length);
          const packet = decodePacket({ type: frame[4], payload: frame.subarray(5) });
          if (!(packet instanceof ProtocolError) && packet.kind === "AnswerCluster") {
            answers++;
            const changed = rewrite(packet);
            if (changed !== packet) {
              rewritten++;
              frame = new Uint8Array(encodePacket(changed));
            }
            plaintext = false;
          }
          await writeAll(master, frame);
        }
        if (!plaintext && buffered.length > 0) {
          await writeAll(master, buffered);
          buffered = new Uint8Array(0);
        }
      }
    } catch {
      // As above.
    }
  };
  const serving = (async () => {
    for await (const cluster of listener) {
      let master: Deno.Conn;
      try {
        master = await Deno.connect({ hostname: "127.0.0.1", port: masterPort });
      } catch {
        cluster.close();
        continue;
      }
      sockets.add(cluster);
      sockets.add(master);
      Promise.all([upstream(cluster, master), pipe(master, cluster)]).finally(() => {
        for (const conn of [cluster, master]) {
          sockets.delete(conn);
          try {
            conn.close();
          } catch {
            // Already closed.
          }
        }
      });
    }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    answers: () => answers,
    rewritten: () => rewritten,
    async close() {
      listener.close();
      for (const conn of sockets) {
        try {
          conn.close();
        } catch {
          // Already closed.
        }
      }
      await serving.catch(() => {});
    },
  };
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await conn.write(bytes.subarray(written));
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

const FAST_RETRIES = { heartbeatIntervalMs: 100, reconnectMinMs: 50, reconnectMaxMs: 200 };

/** A cluster "eu-1" of `keysDir` registering with the master (or proxy) on `masterPort`. */
function startLinkedCluster(
  keysDir: string,
  masterPort: number,
  more: Partial<ClusterOptions> = {},
): Promise<ClusterServer> {
  return startCluster({
    port: 0,
    keysDir,
    serverName: "eu-1",
    master: { hostname: "127.0.0.1", port: masterPort },
    ...FAST_RETRIES,
    ...more,
  });
}

Deno.test("a proxy that passes AnswerCluster unchanged lets the cluster register (control)", async () => {
  await withKeysDir(async (keysDir) => {
    await using master = await startMaster({ port: 0, keysDir });
    const proxy = startProxy(master.addr.port, (answer) => answer);
    try {
      await using cluster = await startLinkedCluster(keysDir, proxy.port);
      await waitUntil(() => cluster.clusterId !== undefined, "registration through the proxy");
      const [record] = master.registry.list();
      assert.equal(record.name, "eu-1");
      assert.equal(record.port, cluster.addr.port);
      assert.deepEqual(record.publicKey, cluster.identity.publicKey);
      assert.equal(proxy.answers(), 1);
      const failures = renderPrometheus(master.metrics.families());
      assert.doesNotMatch(failures, /^sustenet_master_auth_failures_total\{[^}]*\} [1-9]/m);
    } finally {
      await proxy.close();
    }
  });
});

Deno.test("a man in the middle rewriting AnswerCluster's host, port and key is refused, never listed, counted and warned", async () => {
  await withKeysDir(async (keysDir) => {
    await withLogs(async (records) => {
      await using master = await startMaster({ port: 0, keysDir });
      const attacker = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      let attackerAccepts = 0;
      const accepting = (async () => {
        for await (const conn of attacker) {
          attackerAccepts++;
          conn.close();
        }
      })();
      const proxy = startProxy(master.addr.port, (answer) => ({
        ...answer,
        host: "127.0.0.1",
        port: (attacker.addr as Deno.NetAddr).port,
        publicKey: ATTACKER_KEY,
      }));
      const started = performance.now();
      try {
        await using cluster = await startLinkedCluster(keysDir, proxy.port);
        // Every attempt of the cluster is rewritten and refused; wait for three of them.
        await waitUntil(
          () => master.metrics.authFailures.get("wrong_proof") >= 3,
          "three rewritten registrations to be refused",
        );
        const elapsedMs = performance.now() - started;
        assert.equal(master.registry.size, 0, "the attacker's address and key are never listed");
        assert.equal(master.metrics.clustersRegistered.value, 0);
        assert.equal(cluster.clusterId, undefined, "the cluster was never told it registered");
        assert.ok(proxy.rewritten() >= 3);

        // A client asking for any cluster gets NoCluster, never the attacker's address.
        const grant = await requestTicket(master.addr.port);
        assert.equal(grant.answer.kind, "Error");

        const lines = warnings(records, /cluster registration from .* refused: wrong_proof/);
        assert.ok(lines.length >= 1, "a warning names the reason");
        assert.match(lines[0], /127\.0\.0\.1:\d+/, "and the peer address");
        const metrics = renderPrometheus(master.metrics.families());
        assert.match(
          metrics,
          /^sustenet_master_auth_failures_total\{reason="wrong_proof"\} [3-9]/m,
        );
        console.log(
          `MITM: ${proxy.rewritten()} rewritten AnswerClusters, ` +
            `${master.metrics.authFailures.get("wrong_proof")} refused (wrong_proof), ` +
            `0 listed, ${lines.length} warning line(s), ${elapsedMs.toFixed(0)} ms`,
        );
      } finally {
        await proxy.close();
        attacker.close();
        await accepting.catch(() => {});
      }
      assert.equal(attackerAccepts, 0, "nobody was sent to the attacker");
    });
  });
});

Deno.test("clusters with a wrong or an unknown key are warned about and counted by reason", async () => {
  await withKeysDir(async (keysDir) => {
    await withLogs(async (records) => {
      await using master = await startMaster({ port: 0, keysDir });
      const otherKeys = await Deno.makeTempDir({ prefix: "sustenet_announce_other_" });
      try {
        // Another key under the same name: the cluster cannot open the challenge.
        await generateKey(otherKeys, "cluster_key");
        await generateKey(otherKeys, "nobody_has_this");
        await using wrong = await startLinkedCluster(otherKeys, master.addr.port, {
          serverName: "wrong",
        });
        await using unknown = await startLinkedCluster(otherKeys, master.addr.port, {
          serverName: "unknown",
          keyName: "nobody_has_this",
          identityKeyName: "unknown_identity",
        });
        await waitUntil(
          () =>
            master.metrics.authFailures.get("wrong_key") >= 1 &&
            master.metrics.authFailures.get("unknown_key") >= 1,
          "both refusals to be counted",
        );
        assert.equal(master.registry.size, 0);
        assert.equal(wrong.clusterId, undefined);
        assert.equal(unknown.clusterId, undefined);
        const wrongLines = warnings(records, /refused: wrong_key \(key name "cluster_key"\)/);
        const unknownLines = warnings(
          records,
          /refused: unknown_key \(key name "nobody_has_this"\)/,
        );
        assert.ok(wrongLines.length >= 1, "the wrong key is a warning naming reason and key name");
        assert.ok(unknownLines.length >= 1, "so is the unknown key");
        const metrics = renderPrometheus(master.metrics.families());
        assert.match(metrics, /^sustenet_master_auth_failures_total\{reason="wrong_key"\} [1-9]/m);
        assert.match(
          metrics,
          /^sustenet_master_auth_failures_total\{reason="unknown_key"\} [1-9]/m,
        );
        // No key bytes in any line.
        const text = records.map((r) => formatLogRecord(r)).join("\n");
        for (const name of ["cluster_key", "nobody_has_this"]) {
          const key = await loadKey(otherKeys, name);
          assert.ok(!text.includes(key.toHex()) && !text.includes(key.toBase64()));
        }
      } finally {
        await Deno.remove(otherKeys, { recursive: true });
      }
    });
  });
});

Deno.test("a flood of failed registrations is counted exactly but logged as one line per interval", async () => {
  await withKeysDir(async (keysDir) => {
    await withLogs(async (records) => {
      await using master = await startMaster({ port: 0, keysDir });
      const key = await loadKey(keysDir, "cluster_key");
      const FLOOD = 30;
      const started = performance.now();
      for (let i = 0; i < FLOOD; i++) {
        const { peer, clusterNonce } = await challengeOf(master.addr.port, "cluster_key");
        // The right key but a made-up passphrase: the proof cannot match.
        peer.send(
          await answerOf({ keyName: "cluster_key", key }, new Uint8Array(32), clusterNonce),
        );
        await peer.waitClosed();
      }
      const elapsedMs = performance.now() - started;
      await waitUntil(
        () => master.metrics.authFailures.get("wrong_proof") === FLOOD,
        "every refusal to be counted",
      );
      const lines = warnings(records, /refused: wrong_proof/);
      // One line per 10 s interval (plus the first): never one per refusal.
      const allowed = 1 + Math.ceil(elapsedMs / 10_000);
      assert.ok(lines.length >= 1 && lines.length <= allowed, `${lines.length} lines`);
      console.log(
        `flood: ${FLOOD} failed registrations in ${elapsedMs.toFixed(0)} ms, counted ${
          master.metrics.authFailures.get("wrong_proof")
        }, ${lines.length} warning line(s)`,
      );
      await master.stop();
      // What the throttle left out is reported when the master stops.
      const summary = warnings(records, /more cluster registrations refused: wrong_proof/);
      assert.equal(summary.length, 1);
      assert.match(summary[0], new RegExp(`${FLOOD - lines.length} more`));
    });
  });
});

Deno.test("a pinned client (by name) refuses a listing whose key differs, before connecting", async () => {
  await withKeysDir(async (keysDir) => {
    await using master = await startMaster({ port: 0, keysDir });
    await using real = await startLinkedCluster(keysDir, master.addr.port);
    await waitUntil(() => real.clusterId !== undefined, "the real cluster to register");
    // A second registration named "eu-1" (a holder of the cluster key, or a compromised
    // listing) at another address with another identity key.
    const trap = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    let trapAccepts = 0;
    const accepting = (async () => {
      for await (const conn of trap) {
        trapAccepts++;
        conn.close();
      }
    })();
    const impostor = await registerRawCluster(master.addr.port, {
      keyName: "cluster_key",
      key: await loadKey(keysDir, "cluster_key"),
      name: "eu-1",
      port: (trap.addr as Deno.NetAddr).port,
      publicKey: ATTACKER_KEY,
    });
    const client = await SustenetClient.connect({
      host: "127.0.0.1",
      port: master.addr.port,
      pinnedKeys: { "eu-1": real.identity.publicKey },
    });
    try {
      await assert.rejects(
        client.join(impostor.clusterId),
        (e) => e instanceof ClientError && e.code === "key_mismatch",
      );
      // The real eu-1 passes the same pin.
      const session = await client.join(real.clusterId!);
      await session.leave();
    } finally {
      await client.close();
      await impostor.peer.close();
      trap.close();
      await accepting.catch(() => {});
    }
    assert.equal(trapAccepts, 0, "the impostor's address was never dialled");
  });
});

Deno.test("the CLI pins by cluster name or a bare key, and refuses host:port pins", () => {
  const byName = parseCliArgs(["--pin", "eu-1=keys/eu.pub", "list"]);
  assert.deepEqual(byName.client.pinnedKeys, { "eu-1": { file: "keys/eu.pub" } });
  const bare = parseCliArgs(["--pin", "https://example.com/eu.pub?v=2", "list"]);
  assert.deepEqual(bare.client.pinnedKeys, { "*": { url: "https://example.com/eu.pub?v=2" } });
  assert.throws(
    () => parseCliArgs(["--pin", "127.0.0.1:6257=keys/eu.pub", "list"]),
    /pin a cluster by its name/,
  );
});

Deno.test("a spent ticket is refused (40) at another cluster sharing the AES key, even under the same id", async () => {
  await withKeysDir(async (keysDir) => {
    await using master = await startMaster({ port: 0, keysDir });
    const link = { master: { hostname: "127.0.0.1", port: master.addr.port }, ...FAST_RETRIES };
    await using a = await startCluster({ port: 0, keysDir, serverName: "a", ...link });
    await using b = await startCluster({
      port: 0,
      keysDir,
      serverName: "b",
      identityKeyName: "b_identity",
      ...link,
    });
    await waitUntil(
      () => a.clusterId !== undefined && b.clusterId !== undefined,
      "both clusters to register",
    );
    assert.notEqual(a.clusterId, b.clusterId);

    // A real ticket for A, spent at A.
    const grant = await requestTicket(master.addr.port, a.clusterId);
    assert.ok(grant.answer.kind === "JoinTicket");
    const ticket = grant.answer.ticket;
    const spent = await joinCluster(a.addr.port, {
      ephemeral: grant.ephemeral,
      ticket,
      clusterPublicKey: a.identity.publicKey,
    });
    assert.equal(spent.auth.status, 20);
    await spent.client.close();

    const present = async (sealed: Uint8Array, ephemeral = grant.ephemeral) => {
      const join = await joinCluster(b.addr.port, {
        ephemeral,
        ticket: sealed,
        clusterPublicKey: b.identity.publicKey,
      });
      await join.client.close();
      return join.auth.status;
    };
    // Replayed at B as is: refused.
    assert.equal(await present(ticket), 40);

    // What a restarted master that counted ids from 1 produced: a ticket for A under the id B
    // now holds (same AES key, same id). The identity hash still says A: refused.
    const clusterKey = await loadKey(keysDir, "cluster_key");
    // A fresh ticket under B's id for this client, naming the identity `identityKey`.
    const ticketNaming = async (identityKey: Uint8Array, playerId: string) =>
      await sealJoinTicket(clusterKey, {
        clusterId: b.clusterId!,
        clusterKeyHash: await clusterKeyHash(identityKey),
        playerId,
        expiresAtMs: Date.now() + 30_000,
        clientKeyHash: await clientKeyHash(grant.ephemeral.publicRaw),
        ticketId: newTicketId(),
      });
    assert.equal(await present(await ticketNaming(a.identity.publicKey, "replayed")), 40);
    // Control: the same ticket naming B's own identity is accepted, so the 40 above is the
    // identity binding and nothing else.
    assert.equal(await present(await ticketNaming(b.identity.publicKey, "own")), 20);
    assert.equal(a.players.size + b.players.size >= 1, true);
  });
});

Deno.test("a restarted master gives a cluster a new id, and the old ids' tickets are refused", async () => {
  await withKeysDir(async (keysDir) => {
    const first = await startMaster({ port: 0, keysDir });
    const port = first.addr.port;
    let restarted: Awaited<ReturnType<typeof startMaster>> | undefined;
    try {
      await using cluster = await startLinkedCluster(keysDir, port);
      await waitUntil(() => cluster.clusterId !== undefined, "the first registration");
      const oldId = cluster.clusterId!;
      const grant = await requestTicket(port, oldId);
      assert.ok(grant.answer.kind === "JoinTicket");
      const join = await joinCluster(cluster.addr.port, {
        ephemeral: grant.ephemeral,
        ticket: grant.answer.ticket,
        clusterPublicKey: cluster.identity.publicKey,
      });
      assert.equal(join.auth.status, 20);
      await join.client.close();

      await first.stop();
      const again = await startMaster({ port, keysDir });
      restarted = again;
      await waitUntil(
        () => again.registry.size === 1,
        "the registration with the restarted master",
      );
      const newId = again.registry.list()[0].id;
      assert.notEqual(newId, 0);
      // Random u32s: the same id twice has probability 1 in 4 294 967 295.
      assert.notEqual(newId, oldId, "ids are random, not counted from 1 again");
      // The spent ticket of the old id is refused by the same cluster under its new id (40).
      const replay = await joinCluster(cluster.addr.port, {
        ephemeral: grant.ephemeral,
        ticket: grant.answer.ticket,
        clusterPublicKey: cluster.identity.publicKey,
      });
      await replay.client.close();
      assert.ok(replay.auth.status === 40 || replay.auth.status === 44, `${replay.auth.status}`);
      console.log(`restart: cluster id ${oldId} before, ${newId} after`);
    } finally {
      await first.stop();
      await restarted?.stop();
    }
  });
});

Deno.test("a malformed AnswerCluster or an unexpected packet while registering is counted as out_of_order", async () => {
  await withKeysDir(async (keysDir) => {
    await using master = await startMaster({ port: 0, keysDir });
    const key = await loadKey(keysDir, "cluster_key");
    // A proof of 31 bytes: the codec refuses it (BadPacket) before the registration sees it.
    const short = await challengeOf(master.addr.port, "cluster_key");
    const frame = encodePacket(await answerOf({ keyName: "cluster_key", key }, new Uint8Array(32)));
    const cut = frame.slice(0, frame.length - 1);
    new DataView(cut.buffer).setUint32(0, cut.length - 4);
    cut[cut.length - 32] = 31; // the proof's bytes8 length
    short.peer.connection.send(cut);
    await short.peer.waitClosed();
    // Something that is no part of a registration.
    const odd = await challengeOf(master.addr.port, "cluster_key");
    odd.peer.send({ kind: "RequestClusters" });
    await odd.peer.waitClosed();
    await waitUntil(
      () => master.metrics.authFailures.get("out_of_order") === 2,
      "both to be counted",
    );
    assert.equal(master.registry.size, 0);
  });
});
