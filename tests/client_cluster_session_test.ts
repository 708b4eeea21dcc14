import assert from "node:assert/strict";
import { closeActionOf, firstAction } from "./_machine_actions.ts";
import {
  type ClusterSessionAction,
  ClusterSessionMachine,
  type ClusterSessionOptions,
} from "../client/cluster_session_machine.ts";
import { ClientError } from "../client/errors.ts";
import { settleActions } from "../shared/drive_machine.ts";
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

/** Feeds a frame as the driver does (decoded, with the time and the frame itself). */
function receive(session: ClusterSessionMachine, frame: Frame): readonly ClusterSessionAction[] {
  return session.receive(decodePacket(frame), 0, frame);
}

/** Feeds a frame and runs its `derive` step as the driver does. */
function step(session: ClusterSessionMachine, frame: Frame) {
  return settleActions(session, receive(session, frame));
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
  const exchange = firstAction(receive(session, HELLO_OK));
  assert.ok(exchange.type === "send");
  const keying = receive(session, frameOf({ kind: "KeyExchangeOk", serverRandom: SERVER_RANDOM }));
  assert.equal(firstAction(keying).type, "derive");
  await settleActions(session, keying);
  const auth = receive(session, frameOf({ kind: "Authenticate", status: 20, clientId: 7 }));
  assert.deepEqual(auth, [{ type: "authenticated", clientId: 7 }]);
  return parts;
}

function failedWith(actions: readonly ClusterSessionAction[], code: string): void {
  const event = firstAction(actions);
  assert.ok(event.type === "failed", `expected failed, got ${event.type}`);
  assert.equal(event.error.code, code);
  closeActionOf(actions);
}
Deno.test("the client derives the same session keys as the cluster and sends the ticket sealed", async () => {
  const { session, cluster, ephemeral } = await setup();
  assert.equal(packetOf(session.hello()).kind, "Hello");
  const exchangeActions = receive(session, HELLO_OK);
  const exchange = firstAction(exchangeActions);
  assert.ok(exchange.type === "send" && exchangeActions.length === 1); // no learned key
  const keyExchange = packetOf(exchange.frame);
  assert.ok(keyExchange.kind === "KeyExchange");
  assert.deepEqual(keyExchange.clientPublicKey, ephemeral.publicRaw);
  assert.equal(session.serverName, "eu-1");
  assert.equal(session.state, "exchange");

  const [seal, password] = await step(
    session,
    frameOf({ kind: "KeyExchangeOk", serverRandom: SERVER_RANDOM }),
  );
  const clusterKeys = await clientSessionKeysForCluster(
    cluster.privateKey,
    ephemeral.publicRaw,
    keyExchange.clientRandom,
    SERVER_RANDOM,
  );
  assert.ok(seal.type === "seal");
  assert.deepEqual(seal.keys.sendKey, clusterKeys.clientToCluster);
  assert.deepEqual(seal.keys.receiveKey, clusterKeys.clusterToClient);
  assert.ok(password.type === "send"); // after the seal: sent sealed
  assert.deepEqual(packetOf(password.frame), { kind: "SendPassword", ticket: TICKET });
  assert.equal(session.state, "authenticating");
});

Deno.test("an established session delivers game packets as they are and answers Ping", async () => {
  const { session } = await established();
  assert.equal(session.clientId, 7);
  const plugin = firstAction(receive(session, { type: 0x81, payload: new Uint8Array([1, 2]) }));
  assert.ok(plugin.type === "packet" && plugin.packet.kind === "Plugin");
  assert.equal(plugin.packet.command, 0x81);
  const moves = firstAction(receive(
    session,
    frameOf({ kind: "MoveBatch", entries: [{ clientId: 2, state: { x: 1, y: 2, z: 3 } }] }),
  ));
  assert.ok(moves.type === "packet" && moves.packet.kind === "MoveBatch");
  assert.equal(moves.packet.entries.length, 1);
  const spawn = firstAction(receive(
    session,
    frameOf({ kind: "Spawn", clientId: 2, playerId: "guest-2", state: { x: 0, y: 0, z: 0 } }),
  ));
  assert.ok(spawn.type === "packet" && spawn.packet.kind === "Spawn");
  assert.equal(spawn.packet.playerId, "guest-2");
  assert.deepEqual(receive(session, frameOf({ kind: "Despawn", clientId: 2 })), [{
    type: "packet",
    packet: { kind: "Despawn", clientId: 2 },
  }]);
  assert.deepEqual(receive(session, frameOf({ kind: "Pong", value: 5 })), [{
    type: "packet",
    packet: { kind: "Pong", value: 5 },
  }]);
  const reply = firstAction(receive(session, frameOf({ kind: "Ping", value: 9 })));
  assert.ok(reply.type === "send");
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
  assert.equal(
    firstAction(receive(session, { type: 0x80, payload: new Uint8Array() })).type,
    "packet",
  );
  const left = receive(session, frameOf({ kind: "LeaveCluster" }));
  assert.deepEqual(firstAction(left), { type: "left" });
  assert.equal(closeActionOf(left).code, undefined);
  assert.equal(session.state, "ended");
  assert.throws(() => session.send(0x80, new Uint8Array()), ClientError);
});

Deno.test("DisconnectCluster ends the session with the cluster's reason", async () => {
  const { session } = await established();
  const actions = receive(session, frameOf({ kind: "DisconnectCluster", reason: "kicked" }));
  assert.deepEqual(firstAction(actions), { type: "disconnected", reason: "kicked" });
  closeActionOf(actions);
  // The session has ended: later frames yield nothing.
  assert.deepEqual(receive(session, frameOf({ kind: "Pong", value: 1 })), []);
});

Deno.test("nothing but established traffic is allowed before Authenticate", async () => {
  const { session } = await setup();
  const invalid = (e: unknown) => e instanceof ClientError && e.code === "invalid_state";
  assert.throws(() => session.send(0x80, new Uint8Array()), invalid);
  assert.throws(() => session.move({ x: 0, y: 0, z: 0 }), invalid);
  assert.throws(() => session.ping(0), invalid);
  assert.throws(() => session.leave(), invalid);
  // Keys that come before KeyExchangeOk are not taken.
  const keys = { sendKey: new Uint8Array(32), receiveKey: new Uint8Array(32) };
  assert.deepEqual(session.derived({ ok: true, keys }, 0), []);
  assert.equal(session.state, "hello");
  const early = firstAction(receive(session, { type: 0x80, payload: new Uint8Array() }));
  assert.ok(early.type === "unhandled");
  assert.equal(early.closeWith.code, ErrorCode.UnexpectedPacket);
});

Deno.test("a packet out of place at each handshake step is unexpected", async () => {
  const steps: [string, (s: ClusterSessionMachine) => Promise<void>][] = [
    ["hello", () => Promise.resolve()],
    ["exchange", (s) => Promise.resolve(void receive(s, HELLO_OK))],
    ["authenticating", async (s) => {
      receive(s, HELLO_OK);
      await step(s, frameOf({ kind: "KeyExchangeOk", serverRandom: SERVER_RANDOM }));
    }],
  ];
  for (const [state, reach] of steps) {
    const { session } = await setup();
    await reach(session);
    assert.equal(session.state, state);
    const event = firstAction(receive(session, frameOf({ kind: "VersionOfKey", version: 1 })));
    assert.ok(event.type === "unhandled", state);
    assert.equal(event.closeWith.code, ErrorCode.UnexpectedPacket);
    assert.match(event.error.message, new RegExp(state));
  }
});

Deno.test("a HelloOk from a master or another version fails the handshake", async () => {
  const master = (await setup()).session;
  const event = receive(master, frameOf({ kind: "HelloOk", version: 3, role: 3, serverName: "m" }));
  assert.ok(
    firstAction(event).type === "failed" &&
      closeActionOf(event).code === ErrorCode.UnexpectedPacket,
  );
  const other = (await setup()).session;
  const version = receive(
    other,
    frameOf({ kind: "HelloOk", version: 9, role: 2, serverName: "c" }),
  );
  assert.ok(
    firstAction(version).type === "failed" &&
      closeActionOf(version).code === ErrorCode.VersionMismatch,
  );
});

Deno.test("refusing Authenticate statuses map to ticket_refused and cluster_full", async () => {
  for (
    const [status, code] of [[40, "ticket_refused"], [44, "ticket_refused"], [
      50,
      "cluster_full",
    ]] as const
  ) {
    const { session } = await setup();
    receive(session, HELLO_OK);
    await step(session, frameOf({ kind: "KeyExchangeOk", serverRandom: SERVER_RANDOM }));
    const actions = receive(session, frameOf({ kind: "Authenticate", status, clientId: 0 }));
    failedWith(actions, code);
    const event = firstAction(actions);
    assert.ok(event.type === "failed" && event.error.status === status);
  }
});

Deno.test("an Error from the cluster at any step ends the session with its code", async () => {
  const full = (await setup()).session;
  failedWith(receive(full, frameOf({ kind: "Error", code: 8, reason: "full" })), "server_full");
  const { session } = await established();
  failedWith(receive(session, frameOf({ kind: "Error", code: 9, reason: "idle" })), "timeout");
  const other = (await established()).session;
  failedWith(receive(other, frameOf({ kind: "Error", code: 15, reason: "bye" })), "disconnected");
});

Deno.test("RequestKey: a confirmed cached version goes on to the key exchange", async () => {
  const { session } = await setup({ requestKey: { cachedVersion: 12 } });
  const request = firstAction(receive(session, HELLO_OK));
  assert.ok(request.type === "send");
  assert.deepEqual(packetOf(request.frame), { kind: "RequestKey", cachedVersion: 12 });
  assert.equal(session.state, "key");
  const exchange = firstAction(receive(session, frameOf({ kind: "VersionOfKey", version: 12 })));
  assert.ok(exchange.type === "send" && packetOf(exchange.frame).kind === "KeyExchange");
});

Deno.test("RequestKey: a VersionOfKey that does not confirm the cache is a bad packet", async () => {
  const { session } = await setup({ requestKey: { cachedVersion: 12 } });
  receive(session, HELLO_OK);
  const actions = receive(session, frameOf({ kind: "VersionOfKey", version: 13 }));
  failedWith(actions, "protocol_error");
  assert.equal(closeActionOf(actions).code, ErrorCode.BadPacket);
  const none = (await setup({ requestKey: { cachedVersion: 0 } })).session;
  receive(none, HELLO_OK);
  failedWith(receive(none, frameOf({ kind: "VersionOfKey", version: 0 })), "protocol_error");
});

Deno.test("RequestKey: the expected key in SendPubKey is learned, any other is a mismatch", async () => {
  const { session, cluster } = await setup({ requestKey: { cachedVersion: 0 } });
  receive(session, HELLO_OK);
  const [learned, exchange] = receive(
    session,
    frameOf({ kind: "SendPubKey", version: 3, publicKey: cluster.publicRaw }),
  );
  assert.ok(exchange.type === "send");
  assert.ok(learned.type === "learned_key");
  assert.deepEqual(learned.key, { version: 3, publicKey: cluster.publicRaw });

  const other = (await setup({ requestKey: { cachedVersion: 0 } })).session;
  receive(other, HELLO_OK);
  const wrong = receive(
    other,
    frameOf({ kind: "SendPubKey", version: 3, publicKey: new Uint8Array(32).fill(5) }),
  );
  failedWith(wrong, "key_mismatch");
});

Deno.test("an unusable cluster key fails the key derivation as key_mismatch", async () => {
  const { session } = await setup({ clusterPublicKey: new Uint8Array(32) }); // low-order point
  receive(session, HELLO_OK);
  const actions = await step(
    session,
    frameOf({ kind: "KeyExchangeOk", serverRandom: SERVER_RANDOM }),
  );
  failedWith(actions, "key_mismatch");
  assert.equal(session.state, "ended");
});

Deno.test("the end of the connection is explained by the phase it happened in", async () => {
  const sealed = (await setup()).session;
  receive(sealed, HELLO_OK);
  await step(sealed, frameOf({ kind: "KeyExchangeOk", serverRandom: SERVER_RANDOM }));
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
  const frame = { type: 0x7f, payload: new Uint8Array() };
  const unknown = firstAction(receive(session, frame));
  assert.ok(unknown.type === "unhandled" && unknown.closeWith.code === ErrorCode.UnknownPacket);
  assert.equal(unknown.frame, frame); // the raw frame, for the client plugins
  const bad = firstAction(receive(session, { type: 0x2d, payload: new Uint8Array(2) }));
  assert.ok(bad.type === "unhandled" && bad.closeWith.code === ErrorCode.BadPacket);
  const unexpected = firstAction(receive(session, frameOf({ kind: "SendClusters", clusters: [] })));
  assert.ok(unexpected.type === "unhandled" && unexpected.packet?.kind === "SendClusters");
});
