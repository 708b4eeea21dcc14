/**
 * The cluster's client admission (cluster/client_admission.ts) without sockets: real
 * `FrameSession`s over in-memory channels, a real player table, outbox, game room, pending
 * pool and session machine. The thing under test is the admission: refusing while the cluster
 * drains or stops, holding a new connection pending while its handshake runs, closing only the
 * connection that sent bad input, and cleaning up once a connection has closed.
 */

import assert from "node:assert/strict";
import { type ChannelSink, FrameSession } from "../shared/frame_session.ts";
import { generateIdentityKeyPair } from "../shared/identity_key.ts";
import { decodePacket, encodePacket } from "../shared/protocol/codec.ts";
import { type Packet, PROTOCOL_VERSION, Role } from "../shared/protocol/packets.ts";
import { ErrorCode } from "../shared/protocol/protocol_error.ts";
import type { FrameTransport } from "../shared/transport.ts";
import { ClientAdmission } from "../cluster/client_admission.ts";
import { settingsOf } from "../cluster/cluster_options.ts";
import { GameRoom } from "../cluster/game_room.ts";
import { ClusterMetrics } from "../cluster/metrics.ts";
import { PlayerOutbox } from "../cluster/player_outbox.ts";
import { PlayerTable } from "../cluster/players.ts";
import { framesOf, MemoryChannel } from "./_memory_channel.ts";

const quiet = { handshakeTimeoutMs: 0, idleTimeoutMs: 0, closeFlushTimeoutMs: 10 };

async function setUp(state: { closing: boolean; draining: boolean }) {
  const players = new PlayerTable<FrameTransport>();
  const outbox = new PlayerOutbox({ players, kicking() {} });
  const metrics = new ClusterMetrics({
    players: () => players.size,
    connections: () => [],
    masterLinkState: () => "disabled",
    fragments: () => undefined,
  });
  const room = new GameRoom({ players, outbox, metrics, maxFrameBytes: 65536, clock: () => 0 });
  const pair = await generateIdentityKeyPair();
  const publicKey = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
  const admission = new ClientAdmission({
    players,
    outbox,
    room,
    metrics,
    settings: settingsOf({}),
    sessionOptions: () => ({
      serverName: "eu-1",
      identity: { privateKey: pair.privateKey, publicKey, version: 1 },
      tickets: () => undefined,
    }),
    closing: () => state.closing,
    draining: () => state.draining,
    clusterId: () => undefined,
  });
  return { admission, metrics };
}

/** A connection over an in-memory channel: feed it packets, read what it was sent. */
function connection() {
  const channel = new MemoryChannel();
  const session = new FrameSession(channel, quiet);
  const feed = (packet: Packet) => (channel.sink as ChannelSink).receive(encodePacket(packet));
  const written = () => channel.writes.flatMap(framesOf).map((f) => decodePacket(f) as Packet);
  return { channel, session, feed, written };
}

Deno.test("client admission: a draining or stopping cluster refuses new connections", async () => {
  const state = { closing: false, draining: true };
  const { admission, metrics } = await setUp(state);
  const drained = connection();
  admission.accept(drained.session, false);
  await drained.session.closed;
  state.closing = true;
  const stopped = connection();
  admission.accept(stopped.session, false);
  await stopped.session.closed;
  assert.equal(metrics.connectionsRefused.value, 2);
  assert.equal(metrics.connectionsAccepted.value, 0);
  assert.deepEqual(drained.written(), [{
    kind: "Error",
    code: ErrorCode.ShuttingDown,
    reason: "cluster draining: no new players",
  }]);
  assert.deepEqual(stopped.written(), [{
    kind: "Error",
    code: ErrorCode.ShuttingDown,
    reason: "cluster shutting down",
  }]);
  assert.equal(admission.size, 0);
  assert.equal(admission.pendingSize, 0);
  admission.stop();
});

Deno.test("client admission: a new connection is pending through its handshake and cleaned up once closed", async () => {
  const { admission, metrics } = await setUp({ closing: false, draining: false });
  const client = connection();
  const before = Date.now();
  admission.accept(client.session, false);
  assert.equal(metrics.connectionsAccepted.value, 1);
  assert.equal(admission.size, 1);
  assert.equal(admission.pendingSize, 1);
  assert.deepEqual([...admission.connections()], [client.session]);
  assert.ok((admission.acceptedAt(client.session) ?? 0) >= before);
  await client.feed({ kind: "Hello", version: PROTOCOL_VERSION, role: Role.Client });
  assert.equal(client.written()[0]?.kind, "HelloOk");
  await client.session.close();
  await admission.cleanedUp();
  assert.equal(admission.size, 0);
  assert.equal(admission.pendingSize, 0);
  assert.equal(admission.acceptedAt(client.session), undefined);
  admission.stop();
});

Deno.test("client admission: bad input before authentication closes only its own connection", async () => {
  const { admission, metrics } = await setUp({ closing: false, draining: false });
  const bad = connection();
  const good = connection();
  admission.accept(bad.session, false);
  admission.accept(good.session, false);
  // A game packet before any Hello.
  await bad.feed({ kind: "Ping", value: 1 });
  const info = await bad.session.closed;
  assert.ok(info.code !== undefined && info.code >= ErrorCode.BadHello, `code ${info.code}`);
  // The admission and the pending pool saw the close before this test did (they listened first).
  assert.equal(metrics.preAuth.badInput.value, 1);
  assert.deepEqual([...admission.connections()], [good.session]);
  assert.equal(admission.pendingSize, 1);
  await good.session.close();
  await admission.cleanedUp();
  assert.equal(admission.size, 0);
  admission.stop();
});
