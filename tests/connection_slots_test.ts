/**
 * Connection slots and pre-authentication limits on a real in-process cluster (issue 15):
 * unauthenticated connections have their own pool, a per-address limit, small read bounds
 * and a deadline, so they never take a player's slot or much memory.
 */

import { PROTOCOL_VERSION } from "../shared/protocol/packets.ts";
import assert from "node:assert/strict";
import { reset as resetLogging } from "@logtape/logtape";
import { type ClusterOptions, startCluster } from "../cluster/mod.ts";
import echo, { ECHO_COMMAND } from "../plugins/echo.ts";
import { PER_ADDRESS_REASON, POOL_FULL_REASON } from "../shared/pending_gate.ts";
import { clientSessionKeysForClient } from "../shared/key_derivation.ts";
import type { PacketOf } from "../shared/protocol/packets.ts";
import { ErrorCode } from "../shared/protocol/protocol_error.ts";
import {
  playerJoins,
  RawClient,
  requestTicket,
  startWorld,
  waitUntil,
  type World,
} from "./_raw_client.ts";
import { captureLogs } from "./_logs.ts";

function world(cluster: ClusterOptions = {}): Promise<World> {
  return startWorld({ plugins: [echo], ...cluster });
}

/** The player gets its own plugin command back: it is connected and served. */
async function echoes(client: RawClient, bytes: Uint8Array): Promise<void> {
  client.send({ kind: "Plugin", command: ECHO_COMMAND, payload: bytes });
  const back = await client.expect("Plugin");
  assert.deepEqual([...back.payload], [...bytes]);
}

/** `count` connections that say Hello and then never authenticate. */
async function idlePeers(port: number, count: number): Promise<RawClient[]> {
  const peers: RawClient[] = [];
  for (let i = 0; i < count; i++) {
    const peer = await RawClient.connect(port);
    peer.send({ kind: "Hello", version: PROTOCOL_VERSION, role: 1 });
    await peer.expect("HelloOk");
    peers.push(peer);
  }
  return peers;
}

/** The record header of a 1 MiB record, a frame header announcing 1 MiB. */
const ANNOUNCE_1_MIB = new Uint8Array([0x00, 0x10, 0x00, 0x00, 0x80]);

Deno.test("a cluster with max_connections = N and N+2 never-authenticating connections still lets a ticket holder join", async () => {
  await using w = await world({ maxConnections: 4 });
  const idle = await idlePeers(w.cluster.addr.port, 6);
  try {
    const { client } = await playerJoins(w.master.addr.port, w.cluster.addr.port);
    await echoes(client, new Uint8Array([1, 2, 3]));
    assert.equal(w.cluster.players.size, 1);
    assert.equal(w.cluster.metrics.preAuth.refused.get("pool_full"), 0);
    await client.close();
  } finally {
    await Promise.all(idle.map((peer) => peer.close()));
  }
});

Deno.test("a full pending pool evicts its oldest connection, so a ticket holder still joins", async () => {
  await using w = await world({ maxPendingConnections: 4, maxPendingPerAddress: 100 });
  const idle = await idlePeers(w.cluster.addr.port, 6);
  try {
    // Connections 5 and 6 each took the place of the oldest.
    const first = await idle[0].expect("Error");
    assert.deepEqual([first.code, first.reason], [ErrorCode.ServerFull, POOL_FULL_REASON]);
    await idle[1].expect("Error");
    await Promise.all([idle[0].closed, idle[1].closed]);
    const { client } = await playerJoins(w.master.addr.port, w.cluster.addr.port);
    await echoes(client, new Uint8Array([4]));
    // The joining player's connection took the place of the oldest idle one again.
    assert.equal(w.cluster.metrics.preAuth.refused.get("pool_full"), 3);
    await idle[2].closed;
    await client.close();
  } finally {
    await Promise.all(idle.map((peer) => peer.close()));
  }
});

Deno.test("the per-address limit refuses the (k+1)-th pending connection; an authenticated player is unaffected", async () => {
  await using w = await world({ maxPendingPerAddress: 3 });
  const port = w.cluster.addr.port;
  const { client } = await playerJoins(w.master.addr.port, port);
  const idle = await idlePeers(port, 3);
  const extra = await RawClient.connect(port);
  try {
    const error = await extra.expect("Error");
    assert.deepEqual([error.code, error.reason], [ErrorCode.ServerFull, PER_ADDRESS_REASON]);
    await extra.closed;
    assert.equal(w.cluster.metrics.preAuth.refused.get("per_address"), 1);
    await echoes(client, new Uint8Array([5, 6]));
    // One pending connection gone: the address has room for a ticket holder again.
    await idle[0].close();
    await waitUntil(() => w.cluster.metrics.preAuth.pending === 2, "the slot to be freed");
    const second = await playerJoins(w.master.addr.port, port);
    await echoes(second.client, new Uint8Array([7]));
    assert.equal(w.cluster.players.size, 2);
    await second.client.close();
  } finally {
    await Promise.all([...idle, extra].map((peer) => peer.close()));
    await client.close();
  }
});

Deno.test("a pre-auth peer announcing a 1 MiB frame is closed at once with FrameTooLarge", async () => {
  await using w = await world();
  const peer = await RawClient.connect(w.cluster.addr.port);
  try {
    peer.send({ kind: "Hello", version: PROTOCOL_VERSION, role: 1 });
    await peer.expect("HelloOk");
    peer.connection.send(ANNOUNCE_1_MIB);
    const error = await peer.expect("Error");
    assert.equal(error.code, ErrorCode.FrameTooLarge);
    assert.match(error.reason, /frame length 1048576 above max_frame_bytes 4096/);
    await peer.closed;
    await waitUntil(() => w.cluster.metrics.preAuth.badInput.value === 1, "the count");
  } finally {
    await peer.close();
  }
});

Deno.test("a peer that keyed a session but has no ticket cannot announce a 1 MiB record", async () => {
  await using w = await world();
  const grant = await requestTicket(w.master.addr.port);
  const ticket = grant.answer as PacketOf<"JoinTicket">;
  const peer = await RawClient.connect(w.cluster.addr.port);
  try {
    peer.send({ kind: "Hello", version: PROTOCOL_VERSION, role: 1 });
    await peer.expect("HelloOk");
    const clientRandom = crypto.getRandomValues(new Uint8Array(32));
    peer.send({ kind: "KeyExchange", clientPublicKey: grant.ephemeral.publicRaw, clientRandom });
    const { serverRandom } = await peer.expect("KeyExchangeOk");
    const keys = await clientSessionKeysForClient(
      grant.ephemeral.privateKey,
      ticket.clusterPublicKey,
      clientRandom,
      serverRandom,
    );
    // Reads the cluster's sealed Error; writes the record header as is.
    peer.connection.startSealingReader(keys.clusterToClient);
    peer.connection.send(ANNOUNCE_1_MIB.subarray(0, 4));
    const error = await peer.expect("Error");
    assert.equal(error.code, ErrorCode.BadFrame);
    assert.match(error.reason, /record length 1048576 above max_record_bytes 4116/);
    await peer.closed;
    await waitUntil(() => w.cluster.metrics.preAuth.badInput.value === 1, "the count");
  } finally {
    await peer.close();
  }
});

Deno.test("after Authenticate(20) a player's frames may be up to max_frame_bytes", async () => {
  await using w = await world();
  const { client } = await playerJoins(w.master.addr.port, w.cluster.addr.port);
  try {
    const big = crypto.getRandomValues(new Uint8Array(60_000));
    await echoes(client, big);
  } finally {
    await client.close();
  }
});

Deno.test("pending connections that never authenticate are closed at the deadline, ticket step included", async () => {
  // Long enough for the key exchange below on a busy machine; the ticket step then times out.
  await using w = await world({ handshakeTimeoutMs: 2000 });
  const port = w.cluster.addr.port;
  // Says nothing at all.
  const silent = await RawClient.connect(port);
  // Keys a sealed session, then never sends its ticket (SendPassword).
  const grant = await requestTicket(w.master.addr.port);
  const ticket = grant.answer as PacketOf<"JoinTicket">;
  const keyed = await RawClient.connect(port);
  try {
    keyed.send({ kind: "Hello", version: PROTOCOL_VERSION, role: 1 });
    await keyed.expect("HelloOk");
    const clientRandom = crypto.getRandomValues(new Uint8Array(32));
    keyed.send({ kind: "KeyExchange", clientPublicKey: grant.ephemeral.publicRaw, clientRandom });
    const { serverRandom } = await keyed.expect("KeyExchangeOk");
    const keys = await clientSessionKeysForClient(
      grant.ephemeral.privateKey,
      ticket.clusterPublicKey,
      clientRandom,
      serverRandom,
    );
    await keyed.seal(keys.clientToCluster, keys.clusterToClient);
    for (const peer of [silent, keyed]) {
      const error = await peer.expect("Error", 60_000);
      assert.deepEqual([error.code, error.reason], [ErrorCode.Timeout, "handshake timeout"]);
      await peer.closed;
    }
    await waitUntil(() => w.cluster.metrics.preAuth.timeouts.value === 2, "the count");
    assert.equal(w.cluster.metrics.preAuth.pending, 0);
  } finally {
    await silent.close();
    await keyed.close();
  }
});

Deno.test("a flood of bad pre-auth connections writes a few log lines with a count, not one per connection", async () => {
  const records = await captureLogs();
  try {
    await using w = await world();
    const floods = 30;
    const started = performance.now();
    for (let i = 0; i < floods; i++) {
      const peer = await RawClient.connect(w.cluster.addr.port);
      peer.connection.send(ANNOUNCE_1_MIB);
      await peer.closed;
    }
    await waitUntil(() => w.cluster.metrics.preAuth.badInput.value === floods, "the count");
    const windows = Math.ceil((performance.now() - started) / 10_000);
    const loud = records.filter((r) =>
      r.level !== "debug" && r.category.includes("cluster") &&
      JSON.stringify(r.properties).includes("1048576")
    );
    const transportWarnings = records.filter((r) =>
      r.level !== "debug" && r.category.includes("transport") &&
      JSON.stringify(r.properties).includes("1048576")
    );
    console.log(
      `${floods} oversized pre-auth frames: ${loud.length} cluster line(s) above debug, ` +
        `${transportWarnings.length} transport line(s) above debug`,
    );
    // One line per 10 s window (this loop normally fits in one), none from the transport.
    assert.ok(loud.length >= 1 && loud.length <= windows, `${loud.length} lines`);
    assert.equal(transportWarnings.length, 0);
    // Stopping writes the count held back: every event is accounted for.
    await w.cluster.stop();
    const held = records.filter((r) =>
      r.level === "warning" && typeof r.properties.count === "number" &&
      String(r.properties.what).includes("bad input")
    );
    const reported = loud.reduce((sum, r) => sum + 1 + (r.properties.suppressed as number), 0) +
      held.reduce((sum, r) => sum + (r.properties.count as number), 0);
    assert.equal(reported, floods);
  } finally {
    await resetLogging();
  }
});

Deno.test("bad cluster slot options are refused at start, naming the option", async () => {
  const keysDir = await Deno.makeTempDir();
  try {
    for (
      const [options, name] of [
        [{ maxPendingConnections: 0 }, /maxPendingConnections/],
        [{ maxPendingPerAddress: -1 }, /maxPendingPerAddress/],
        [{ maxPendingFrameBytes: 10 }, /maxPendingFrameBytes/],
      ] as const
    ) {
      await assert.rejects(startCluster({ port: 0, keysDir, master: null, ...options }), name);
    }
  } finally {
    await Deno.remove(keysDir, { recursive: true });
  }
});
