import assert from "node:assert/strict";
import {
  type ClusterSessionEvent,
  ClusterSessionMachine,
  type ClusterSessionOptions,
} from "../client/cluster_session_machine.ts";
import { ClientError } from "../client/errors.ts";
import { clientSessionKeysForCluster, generateEphemeralKeyPair } from "../shared/key_derivation.ts";
import { decodePacket, encodePacket } from "../shared/protocol/codec.ts";
import type { Frame } from "../shared/protocol/frame.ts";
import type { Packet } from "../shared/protocol/packets.ts";
import { ErrorCode } from "../shared/protocol/protocol_error.ts";

function frameOf(packet: Packet): Frame {
  const bytes = encodePacket(packet);
  return { type: bytes[4], payload: bytes.subarray(5) };
}

function packetOf(bytes: Uint8Array): Packet {
  const packet = decodePacket({ type: bytes[4], payload: bytes.subarray(5) });
  assert.ok(!(packet instanceof Error), "the machine sent a valid packet");
  return packet;
}

const HELLO_OK = frameOf({ kind: "HelloOk", version: 3, role: 2, serverName: "eu-1" });
const SERVER_RANDOM = new Uint8Array(32).fill(0xc0);
const TICKET = new Uint8Array(96).fill(0xe0);

async function setup(extra: Partial<ClusterSessionOptions> = {}) {
  const cluster = await generateEphemeralKeyPair(); // the cluster's identity key
  const ephemeral = await generateEphemeralKeyPair();
  const session = new ClusterSessionMachine({
    ephemeral,
    ticket: TICKET,
    clusterPublicKey: cluster.publicRaw,
    ...extra,
  });
  return { session, cluster, ephemeral };
}

/** Runs the handshake to `established`, checking each step. */
async function established() {
  const parts = await setup();
  const { session } = parts;
  session.hello();
  const exchange = session.receive(HELLO_OK);
  assert.ok(exchange.kind === "send");
  assert.equal(
    session.receive(frameOf({ kind: "KeyExchangeOk", serverRandom: SERVER_RANDOM }))
      .kind,
    "derive_keys",
  );
  await session.deriveKeys();
  const auth = session.receive(frameOf({ kind: "Authenticate", status: 20, clientId: 7 }));
  assert.deepEqual(auth, { kind: "authenticated", clientId: 7 });
  return parts;
}

function failedWith(event: ClusterSessionEvent, code: string): void {
  assert.ok(event.kind === "failed", `expected failed, got ${event.kind}`);
  assert.equal(event.error.code, code);
}

Deno.test("the client derives the same session keys as the cluster and sends the ticket sealed", async () => {
  const { session, cluster, ephemeral } = await setup();
  assert.equal(packetOf(session.hello()).kind, "Hello");
  const exchange = session.receive(HELLO_OK);
  assert.ok(exchange.kind === "send" && exchange.learnedKey === undefined);
  const keyExchange = packetOf(exchange.frame);
  assert.ok(keyExchange.kind === "KeyExchange");
  assert.deepEqual(keyExchange.clientPublicKey, ephemeral.publicRaw);
  assert.equal(session.serverName, "eu-1");
  assert.equal(session.state, "exchange");

  session.receive(frameOf({ kind: "KeyExchangeOk", serverRandom: SERVER_RANDOM }));
  const step = await session.deriveKeys();
  const clusterKeys = await clientSessionKeysForCluster(
    cluster.privateKey,
    ephemeral.publicRaw,
    keyExchange.clientRandom,
    SERVER_RANDOM,
  );
  assert.deepEqual(step.keys.sendKey, clusterKeys.clientToCluster);
  assert.deepEqual(step.keys.receiveKey, clusterKeys.clusterToClient);
  assert.deepEqual(packetOf(step.frame), { kind: "SendPassword", ticket: TICKET });
  assert.equal(session.state, "authenticating");
});

Deno.test("an established session delivers game packets as they are and answers Ping", async () => {
  const { session } = await established();
  assert.equal(session.clientId, 7);
  const plugin = session.receive({ type: 0x81, payload: new Uint8Array([1, 2]) });
  assert.ok(plugin.kind === "Plugin" && plugin.command === 0x81);
  const moves = session.receive(
    frameOf({ kind: "MoveBatch", entries: [{ clientId: 2, state: { x: 1, y: 2, z: 3 } }] }),
  );
  assert.ok(moves.kind === "MoveBatch" && moves.entries.length === 1);
  const spawn = session.receive(
    frameOf({ kind: "Spawn", clientId: 2, playerId: "guest-2", state: { x: 0, y: 0, z: 0 } }),
  );
  assert.ok(spawn.kind === "Spawn" && spawn.playerId === "guest-2");
  assert.deepEqual(session.receive(frameOf({ kind: "Despawn", clientId: 2 })), {
    kind: "Despawn",
    clientId: 2,
  });
  assert.deepEqual(session.receive(frameOf({ kind: "Pong", value: 5 })), {
    kind: "Pong",
    value: 5,
  });
  const reply = session.receive(frameOf({ kind: "Ping", value: 9 }));
  assert.ok(reply.kind === "reply");
  assert.deepEqual(packetOf(reply.frame), { kind: "Pong", value: 9 });
});

Deno.test("an established session makes plugin, move, ping and leave frames", async () => {
  const { session } = await established();
  assert.equal(session.send(0x80, new Uint8Array([104, 105])).toHex(), "00000003806869");
  assert.throws(() => session.send(0x2a, new Uint8Array()), RangeError);
  assert.deepEqual(packetOf(session.move({ x: 1, y: 2, z: 3 })), {
    kind: "Move",
    state: { x: 1, y: 2, z: 3 },
  });
  assert.deepEqual(packetOf(session.ping(4)), { kind: "Ping", value: 4 });
  assert.deepEqual(packetOf(session.leave()), { kind: "LeaveCluster" });
  assert.equal(session.state, "leaving");
  // Messages still arrive while leaving; then the acknowledgement.
  assert.equal(session.receive({ type: 0x80, payload: new Uint8Array() }).kind, "Plugin");
  assert.deepEqual(session.receive(frameOf({ kind: "LeaveCluster" })), { kind: "left" });
  assert.equal(session.state, "ended");
  assert.throws(() => session.send(0x80, new Uint8Array()), ClientError);
});

Deno.test("DisconnectCluster ends the session with the cluster's reason", async () => {
  const { session } = await established();
  const event = session.receive(frameOf({ kind: "DisconnectCluster", reason: "kicked" }));
  assert.deepEqual(event, { kind: "disconnected", reason: "kicked" });
  failedWith(session.receive(frameOf({ kind: "Pong", value: 1 })), "disconnected");
});

Deno.test("nothing but established traffic is allowed before Authenticate", async () => {
  const { session } = await setup();
  const invalid = (e: unknown) => e instanceof ClientError && e.code === "invalid_state";
  assert.throws(() => session.send(0x80, new Uint8Array()), invalid);
  assert.throws(() => session.move({ x: 0, y: 0, z: 0 }), invalid);
  assert.throws(() => session.ping(0), invalid);
  assert.throws(() => session.leave(), invalid);
  await assert.rejects(session.deriveKeys(), invalid);
  const early = session.receive({ type: 0x80, payload: new Uint8Array() });
  assert.ok(early.kind === "unhandled");
  assert.equal(early.closeWith.code, ErrorCode.UnexpectedPacket);
});

Deno.test("a packet out of place at each handshake step is unexpected", async () => {
  const steps: [string, (s: ClusterSessionMachine) => Promise<void>][] = [
    ["hello", () => Promise.resolve()],
    ["exchange", (s) => Promise.resolve(void s.receive(HELLO_OK))],
    ["authenticating", async (s) => {
      s.receive(HELLO_OK);
      s.receive(frameOf({ kind: "KeyExchangeOk", serverRandom: SERVER_RANDOM }));
      await s.deriveKeys();
    }],
  ];
  for (const [state, reach] of steps) {
    const { session } = await setup();
    await reach(session);
    assert.equal(session.state, state);
    const event = session.receive(frameOf({ kind: "VersionOfKey", version: 1 }));
    assert.ok(event.kind === "unhandled", state);
    assert.equal(event.closeWith.code, ErrorCode.UnexpectedPacket);
    assert.match(event.error.message, new RegExp(state));
  }
});

Deno.test("a HelloOk from a master or another version fails the handshake", async () => {
  const master = (await setup()).session;
  const event = master.receive(frameOf({ kind: "HelloOk", version: 3, role: 3, serverName: "m" }));
  assert.ok(event.kind === "failed" && event.closeWith?.code === ErrorCode.UnexpectedPacket);
  const other = (await setup()).session;
  const version = other.receive(frameOf({ kind: "HelloOk", version: 9, role: 2, serverName: "c" }));
  assert.ok(version.kind === "failed" && version.closeWith?.code === ErrorCode.VersionMismatch);
});

Deno.test("refusing Authenticate statuses map to ticket_refused and cluster_full", async () => {
  for (
    const [status, code] of [[40, "ticket_refused"], [44, "ticket_refused"], [
      50,
      "cluster_full",
    ]] as const
  ) {
    const { session } = await setup();
    session.receive(HELLO_OK);
    session.receive(frameOf({ kind: "KeyExchangeOk", serverRandom: SERVER_RANDOM }));
    await session.deriveKeys();
    const event = session.receive(frameOf({ kind: "Authenticate", status, clientId: 0 }));
    failedWith(event, code);
    assert.ok(event.kind === "failed" && event.error.status === status);
  }
});

Deno.test("an Error from the cluster at any step ends the session with its code", async () => {
  const full = (await setup()).session;
  failedWith(full.receive(frameOf({ kind: "Error", code: 8, reason: "full" })), "server_full");
  const { session } = await established();
  failedWith(session.receive(frameOf({ kind: "Error", code: 9, reason: "idle" })), "timeout");
  const other = (await established()).session;
  failedWith(other.receive(frameOf({ kind: "Error", code: 15, reason: "bye" })), "disconnected");
});

Deno.test("RequestKey: a confirmed cached version goes on to the key exchange", async () => {
  const { session } = await setup({ requestKey: { cachedVersion: 12 } });
  const request = session.receive(HELLO_OK);
  assert.ok(request.kind === "send");
  assert.deepEqual(packetOf(request.frame), { kind: "RequestKey", cachedVersion: 12 });
  assert.equal(session.state, "key");
  const exchange = session.receive(frameOf({ kind: "VersionOfKey", version: 12 }));
  assert.ok(exchange.kind === "send" && packetOf(exchange.frame).kind === "KeyExchange");
});

Deno.test("RequestKey: a VersionOfKey that does not confirm the cache is a bad packet", async () => {
  const { session } = await setup({ requestKey: { cachedVersion: 12 } });
  session.receive(HELLO_OK);
  const event = session.receive(frameOf({ kind: "VersionOfKey", version: 13 }));
  failedWith(event, "protocol_error");
  assert.ok(event.kind === "failed" && event.closeWith?.code === ErrorCode.BadPacket);
  const none = (await setup({ requestKey: { cachedVersion: 0 } })).session;
  none.receive(HELLO_OK);
  failedWith(none.receive(frameOf({ kind: "VersionOfKey", version: 0 })), "protocol_error");
});

Deno.test("RequestKey: the expected key in SendPubKey is learned, any other is a mismatch", async () => {
  const { session, cluster } = await setup({ requestKey: { cachedVersion: 0 } });
  session.receive(HELLO_OK);
  const event = session.receive(
    frameOf({ kind: "SendPubKey", version: 3, publicKey: cluster.publicRaw }),
  );
  assert.ok(event.kind === "send");
  assert.deepEqual(event.learnedKey, { version: 3, publicKey: cluster.publicRaw });

  const other = (await setup({ requestKey: { cachedVersion: 0 } })).session;
  other.receive(HELLO_OK);
  const wrong = other.receive(
    frameOf({ kind: "SendPubKey", version: 3, publicKey: new Uint8Array(32).fill(5) }),
  );
  failedWith(wrong, "key_mismatch");
});

Deno.test("an unusable cluster key fails the key derivation as key_mismatch", async () => {
  const { session } = await setup({ clusterPublicKey: new Uint8Array(32) }); // low-order point
  session.receive(HELLO_OK);
  session.receive(frameOf({ kind: "KeyExchangeOk", serverRandom: SERVER_RANDOM }));
  await assert.rejects(
    session.deriveKeys(),
    (e: unknown) => e instanceof ClientError && e.code === "key_mismatch",
  );
  assert.equal(session.state, "ended");
});

Deno.test("the end of the connection is explained by the phase it happened in", async () => {
  const sealed = (await setup()).session;
  sealed.receive(HELLO_OK);
  sealed.receive(frameOf({ kind: "KeyExchangeOk", serverRandom: SERVER_RANDOM }));
  await sealed.deriveKeys();
  const mismatch = sealed.ended({ reason: "bad record", code: ErrorCode.BadFrame, by: "error" });
  assert.equal(mismatch.code, "key_mismatch");

  const waiting = (await setup()).session;
  const timeout = waiting.ended({ reason: "handshake timeout", code: 9, by: "error" });
  assert.equal(timeout.code, "timeout");

  const dropped = (await setup()).session;
  const error = dropped.ended({ reason: "connection closed by peer", by: "remote" });
  assert.equal(error.code, "disconnected");
  assert.match(error.message, /during the handshake \(hello\)/);

  const { session } = await established();
  const later = session.ended({ reason: "connection closed by peer", by: "remote" });
  assert.equal(later.code, "disconnected");
  assert.doesNotMatch(later.message, /handshake/);
});

Deno.test("the machine checks the sizes of the expected key and the client random", async () => {
  const pair = await generateEphemeralKeyPair();
  assert.throws(
    () =>
      new ClusterSessionMachine({
        ephemeral: pair,
        ticket: TICKET,
        clusterPublicKey: new Uint8Array(31),
      }),
    RangeError,
  );
  assert.throws(
    () =>
      new ClusterSessionMachine({
        ephemeral: pair,
        ticket: TICKET,
        clusterPublicKey: pair.publicRaw,
        clientRandom: new Uint8Array(8),
      }),
    RangeError,
  );
});

Deno.test("undecodable frames from the cluster are unhandled with the decoder's code", async () => {
  const { session } = await established();
  const unknown = session.receive({ type: 0x7f, payload: new Uint8Array() });
  assert.ok(unknown.kind === "unhandled" && unknown.closeWith.code === ErrorCode.UnknownPacket);
  const bad = session.receive({ type: 0x2d, payload: new Uint8Array(2) });
  assert.ok(bad.kind === "unhandled" && bad.closeWith.code === ErrorCode.BadPacket);
  const unexpected = session.receive(frameOf({ kind: "SendClusters", clusters: [] }));
  assert.ok(unexpected.kind === "unhandled" && unexpected.packet?.kind === "SendClusters");
});
