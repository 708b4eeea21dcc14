import assert from "node:assert/strict";
import { settleActions, stepMachine } from "../shared/drive_machine.ts";
import {
  ClientSession,
  type ClientSessionOptions,
  type SessionAction,
} from "../cluster/client_session.ts";
import { exportIdentity, generateIdentityKeyPair } from "../shared/identity_key.ts";
import {
  clientKeyHash,
  clusterKeyHash,
  type JoinTicketClaims,
  newTicketId,
  sealJoinTicket,
  TicketVerifier,
} from "../shared/join_ticket.ts";
import {
  clientSessionKeysForClient,
  type EphemeralKeyPair,
  generateEphemeralKeyPair,
} from "../shared/key_derivation.ts";
import { decodePacket } from "../shared/protocol/codec.ts";
import type { Packet } from "../shared/protocol/packets.ts";
import { ErrorCode, ProtocolError } from "../shared/protocol/protocol_error.ts";

const CLUSTER_ID = 4;
const NOW = 1_000_000;

interface Fixture {
  readonly session: ClientSession;
  readonly clusterKey: Uint8Array;
  readonly clusterPublic: Uint8Array;
  readonly client: EphemeralKeyPair;
  readonly admitted: JoinTicketClaims[];
}

async function fixture(overrides: Partial<ClientSessionOptions> = {}): Promise<Fixture> {
  const pair = await generateIdentityKeyPair();
  const { publicRaw: publicKey } = await exportIdentity(pair);
  const clusterKey = crypto.getRandomValues(new Uint8Array(32));
  const verifier = new TicketVerifier({
    clusterKey,
    clusterId: CLUSTER_ID,
    identityPublicKey: publicKey,
    now: () => NOW,
  });
  const admitted: JoinTicketClaims[] = [];
  let nextId = 7;
  const session = new ClientSession({
    serverName: "eu-1",
    identity: { privateKey: pair.privateKey, publicKey, version: 5 },
    tickets: () => verifier,
    admit: (claims) => {
      admitted.push(claims);
      return nextId++;
    },
    ...overrides,
  });
  return {
    session,
    clusterKey,
    clusterPublic: publicKey,
    client: await generateEphemeralKeyPair(),
    admitted,
  };
}

function packetOf(action: SessionAction | undefined): Packet {
  assert.ok(action !== undefined && action.type === "send", `expected a send, got ${action?.type}`);
  const decoded = decodePacket({ type: action.frame[4], payload: action.frame.subarray(5) });
  assert.ok(!(decoded instanceof ProtocolError));
  return decoded;
}

async function ticketFor(
  f: Fixture,
  changes: Partial<JoinTicketClaims> = {},
  key: Uint8Array = f.clusterKey,
): Promise<Uint8Array> {
  return await sealJoinTicket(key, {
    clusterId: CLUSTER_ID,
    clusterKeyHash: await clusterKeyHash(f.clusterPublic),
    playerId: "guest-1",
    expiresAtMs: NOW + 30_000,
    clientKeyHash: await clientKeyHash(f.client.publicRaw),
    ticketId: newTicketId(),
    ...changes,
  });
}

/** Hello and KeyExchange; returns the KeyExchange answer. */
async function keyExchange(f: Fixture): Promise<readonly SessionAction[]> {
  await stepMachine(f.session, { kind: "Hello", version: 3, role: 1 });
  const clientRandom = crypto.getRandomValues(new Uint8Array(32));
  const actions = await stepMachine(f.session, {
    kind: "KeyExchange",
    clientPublicKey: f.client.publicRaw,
    clientRandom,
  });
  return actions;
}

async function authenticate(
  f: Fixture,
  ticket?: Uint8Array,
): Promise<readonly SessionAction[]> {
  await keyExchange(f);
  return await stepMachine(f.session, {
    kind: "SendPassword",
    ticket: ticket ?? await ticketFor(f),
  });
}

function closeOf(actions: readonly SessionAction[]): SessionAction & { type: "close" } {
  const last = actions.at(-1);
  assert.ok(last !== undefined && last.type === "close", `expected a close, got ${last?.type}`);
  return last;
}

Deno.test("a Hello from a client is answered with HelloOk naming the cluster", async () => {
  const f = await fixture();
  const actions = await stepMachine(f.session, { kind: "Hello", version: 3, role: 1 });
  assert.deepEqual(packetOf(actions[0]), {
    kind: "HelloOk",
    version: 3,
    role: 2,
    serverName: "eu-1",
  });
  assert.equal(f.session.state, "handshake");
});

Deno.test("a first frame that is not a Hello is BadHello", async () => {
  const f = await fixture();
  const actions = await stepMachine(f.session, { kind: "Ping", value: 1 });
  assert.equal(closeOf(actions).code, ErrorCode.BadHello);
  assert.equal(f.session.state, "closed");
  assert.deepEqual(await stepMachine(f.session, { kind: "Hello", version: 3, role: 1 }), []);
});

Deno.test("a malformed first frame is BadHello whatever the codec said", async () => {
  const f = await fixture();
  const error = new ProtocolError(ErrorCode.UnknownPacket, "unknown packet type 6");
  assert.equal(closeOf(await stepMachine(f.session, error)).code, ErrorCode.BadHello);
});

Deno.test("a malformed frame later keeps the codec's error code", async () => {
  const f = await fixture();
  await stepMachine(f.session, { kind: "Hello", version: 3, role: 1 });
  const error = new ProtocolError(ErrorCode.BadPacket, "KeyExchange truncated");
  assert.equal(closeOf(await stepMachine(f.session, error)).code, ErrorCode.BadPacket);
});

Deno.test("another protocol version is VersionMismatch", async () => {
  const f = await fixture();
  const close = closeOf(await stepMachine(f.session, { kind: "Hello", version: 1, role: 1 }));
  assert.equal(close.code, ErrorCode.VersionMismatch);
  assert.match(close.reason, /version 1/);
});

Deno.test("a Hello with a role other than client is refused", async () => {
  const f = await fixture();
  const close = closeOf(await stepMachine(f.session, { kind: "Hello", version: 3, role: 2 }));
  assert.equal(close.code, ErrorCode.UnexpectedPacket);
});

Deno.test("RequestKey sends the key, or VersionOfKey when the cached one is current", async () => {
  const f = await fixture();
  await stepMachine(f.session, { kind: "Hello", version: 3, role: 1 });
  assert.deepEqual(
    packetOf((await stepMachine(f.session, { kind: "RequestKey", cachedVersion: 0 }))[0]),
    {
      kind: "SendPubKey",
      version: 5,
      publicKey: f.clusterPublic,
    },
  );
  assert.deepEqual(
    packetOf((await stepMachine(f.session, { kind: "RequestKey", cachedVersion: 4 }))[0]),
    {
      kind: "SendPubKey",
      version: 5,
      publicKey: f.clusterPublic,
    },
  );
  assert.deepEqual(
    packetOf((await stepMachine(f.session, { kind: "RequestKey", cachedVersion: 5 }))[0]),
    {
      kind: "VersionOfKey",
      version: 5,
    },
  );
  assert.equal(f.session.state, "handshake");
});

Deno.test("the key exchange answers KeyExchangeOk then seals with keys the client derives too", async () => {
  const f = await fixture();
  await stepMachine(f.session, { kind: "Hello", version: 3, role: 1 });
  const clientRandom = crypto.getRandomValues(new Uint8Array(32));
  const step = f.session.receive({
    kind: "KeyExchange",
    clientPublicKey: f.client.publicRaw,
    clientRandom,
  }, 0);
  assert.ok(step.length === 1 && step[0].type === "derive");
  assert.equal(f.session.state, "keying");
  const actions = await settleActions(f.session, step);
  const ok = packetOf(actions[0]);
  assert.ok(ok.kind === "KeyExchangeOk");
  const seal = actions[1];
  assert.ok(seal.type === "seal");
  const clientKeys = await clientSessionKeysForClient(
    f.client.privateKey,
    f.clusterPublic,
    clientRandom,
    ok.serverRandom,
  );
  assert.deepEqual(seal.keys.sendKey, clientKeys.clusterToClient);
  assert.deepEqual(seal.keys.receiveKey, clientKeys.clientToCluster);
  assert.equal(f.session.state, "ticket");
});

Deno.test("an unusable client public key closes with BadPacket", async () => {
  const f = await fixture();
  await stepMachine(f.session, { kind: "Hello", version: 3, role: 1 });
  const actions = await stepMachine(f.session, {
    kind: "KeyExchange",
    clientPublicKey: new Uint8Array(32), // the all-zero point: low order
    clientRandom: new Uint8Array(32),
  });
  const close = closeOf(actions);
  assert.equal(close.code, ErrorCode.BadPacket);
  assert.equal(actions.length, 1);
});

Deno.test("a packet during the key exchange closes the session and drops the answer", async () => {
  const f = await fixture();
  await stepMachine(f.session, { kind: "Hello", version: 3, role: 1 });
  const pending = stepMachine(f.session, {
    kind: "KeyExchange",
    clientPublicKey: f.client.publicRaw,
    clientRandom: new Uint8Array(32),
  });
  const early = await stepMachine(f.session, { kind: "SendPassword", ticket: new Uint8Array(60) });
  assert.equal(closeOf(early).code, ErrorCode.UnexpectedPacket);
  assert.deepEqual(await pending, []);
});

Deno.test("plaintext mode answers the key exchange without sealing", async () => {
  const f = await fixture({ plaintext: true });
  const actions = await keyExchange(f);
  assert.equal(actions.length, 1);
  assert.equal(packetOf(actions[0]).kind, "KeyExchangeOk");
  assert.equal(f.session.state, "ticket");
});

Deno.test("a valid ticket authenticates with a fresh client id", async () => {
  const f = await fixture();
  const actions = await authenticate(f);
  assert.deepEqual(packetOf(actions[0]), { kind: "Authenticate", status: 20, clientId: 7 });
  assert.deepEqual(actions[1], { type: "authenticated", clientId: 7, playerId: "guest-1" });
  assert.equal(f.session.state, "established");
  assert.equal(f.session.clientId, 7);
  assert.equal(f.admitted.length, 1);
  assert.equal(f.admitted[0].playerId, "guest-1");
});

async function refusal(
  f: Fixture,
  ticket: Uint8Array,
): Promise<{ status: number; reason: string; close: SessionAction }> {
  const actions = await authenticate(f, ticket);
  const auth = packetOf(actions[0]);
  assert.ok(auth.kind === "Authenticate");
  assert.equal(auth.clientId, 0);
  const refused = actions[1];
  assert.ok(refused.type === "refused");
  assert.equal(refused.status, auth.status);
  const close = closeOf(actions);
  assert.equal(close.code, undefined, "an Authenticate refusal is not followed by an Error");
  assert.equal(f.session.state, "closed");
  assert.equal(f.admitted.length, 0);
  return { status: auth.status, reason: refused.reason, close };
}

Deno.test("garbage instead of a ticket is refused with 40", async () => {
  const f = await fixture();
  const result = await refusal(f, crypto.getRandomValues(new Uint8Array(80)));
  assert.deepEqual([result.status, result.reason], [40, "invalid"]);
});

Deno.test("a ticket sealed with another key is refused with 40", async () => {
  const f = await fixture();
  const other = crypto.getRandomValues(new Uint8Array(32));
  const result = await refusal(f, await ticketFor(f, {}, other));
  assert.deepEqual([result.status, result.reason], [40, "invalid"]);
});

Deno.test("a ticket for another cluster is refused with 40", async () => {
  const f = await fixture();
  const result = await refusal(f, await ticketFor(f, { clusterId: CLUSTER_ID + 1 }));
  assert.deepEqual([result.status, result.reason], [40, "wrong_cluster"]);
});

Deno.test("a ticket bound to another client key is refused with 40", async () => {
  const f = await fixture();
  const stranger = crypto.getRandomValues(new Uint8Array(32));
  const result = await refusal(
    f,
    await ticketFor(f, { clientKeyHash: await clientKeyHash(stranger) }),
  );
  assert.deepEqual([result.status, result.reason], [40, "wrong_key"]);
});

Deno.test("an expired ticket is refused with 44", async () => {
  const f = await fixture();
  const result = await refusal(f, await ticketFor(f, { expiresAtMs: NOW - 1 }));
  assert.deepEqual([result.status, result.reason], [44, "expired"]);
});

Deno.test("a ticket used twice is refused with 44 the second time", async () => {
  const clusterKey = crypto.getRandomValues(new Uint8Array(32));
  const identityPublicKey = crypto.getRandomValues(new Uint8Array(32));
  const verifier = new TicketVerifier({
    clusterKey,
    clusterId: CLUSTER_ID,
    identityPublicKey,
    now: () => NOW,
  });
  const first = await fixture({ tickets: () => verifier });
  const bound = { clusterKeyHash: await clusterKeyHash(identityPublicKey) };
  const ticket = await ticketFor(first, bound, clusterKey);
  const ok = await authenticate(first, ticket);
  assert.equal(ok[1].type, "authenticated");
  // The same client key on a second connection: only single use stops it.
  const second = await fixture({ tickets: () => verifier });
  const replay = { ...second, client: first.client };
  const result = await refusal(replay, ticket);
  assert.deepEqual([result.status, result.reason], [44, "reused"]);
});

Deno.test("a cluster that never registered refuses every ticket with 50", async () => {
  const f = await fixture({ tickets: () => undefined });
  const result = await refusal(f, await ticketFor(f));
  assert.equal(result.status, 50);
  assert.match(result.reason, /not registered/);
});

Deno.test("a full cluster refuses a valid ticket with 50", async () => {
  const f = await fixture({ admit: () => undefined });
  const result = await refusal(f, await ticketFor(f));
  assert.deepEqual([result.status, result.reason], [50, "cluster full"]);
});

Deno.test("a failing ticket check is refused with 50 and logged as an error", async () => {
  const failing = {
    verify: () => Promise.reject(new Error("key store offline")),
  } as unknown as TicketVerifier;
  const f = await fixture({ tickets: () => failing });
  const actions = await authenticate(f, new Uint8Array(60));
  assert.equal((packetOf(actions[0]) as { status: number }).status, 50);
  assert.equal(closeOf(actions).level, "error");
  assert.match(closeOf(actions).reason, /key store offline/);
});

Deno.test("a packet during the ticket check closes the session and admits nobody", async () => {
  const f = await fixture();
  await keyExchange(f);
  const pending = stepMachine(f.session, { kind: "SendPassword", ticket: await ticketFor(f) });
  const early = await stepMachine(f.session, {
    kind: "Plugin",
    command: 0x80,
    payload: new Uint8Array(),
  });
  assert.equal(closeOf(early).code, ErrorCode.UnexpectedPacket);
  assert.deepEqual(await pending, []);
  assert.equal(f.admitted.length, 0);
});

Deno.test("a connection closed during the ticket check admits nobody", async () => {
  const f = await fixture();
  await keyExchange(f);
  const pending = stepMachine(f.session, { kind: "SendPassword", ticket: await ticketFor(f) });
  assert.equal(f.session.closed(), false);
  assert.deepEqual(await pending, []);
  assert.equal(f.admitted.length, 0);
});

Deno.test("before authentication only the handshake packets are allowed", async () => {
  const notAllowed: Packet[] = [
    { kind: "Move", state: { x: 0, y: 0, z: 0 } },
    { kind: "Plugin", command: 0x80, payload: new Uint8Array() },
    { kind: "Ping", value: 1 },
    { kind: "RequestClusters" },
    { kind: "LeaveCluster" },
    { kind: "SendPassword", ticket: new Uint8Array(1) },
    { kind: "Hello", version: 3, role: 1 },
  ];
  for (const packet of notAllowed) {
    const f = await fixture();
    await stepMachine(f.session, { kind: "Hello", version: 3, role: 1 });
    const close = closeOf(await stepMachine(f.session, packet));
    assert.equal(close.code, ErrorCode.UnexpectedPacket, packet.kind);
  }
  const sealedNotAllowed: Packet[] = [
    { kind: "Move", state: { x: 0, y: 0, z: 0 } },
    { kind: "RequestKey", cachedVersion: 0 },
    { kind: "KeyExchange", clientPublicKey: new Uint8Array(32), clientRandom: new Uint8Array(32) },
    { kind: "Ping", value: 1 },
  ];
  for (const packet of sealedNotAllowed) {
    const f = await fixture();
    await keyExchange(f);
    const close = closeOf(await stepMachine(f.session, packet));
    assert.equal(close.code, ErrorCode.UnexpectedPacket, packet.kind);
  }
});

Deno.test("JoinCluster sent to a cluster is answered with UseMaster", async () => {
  const before = await fixture();
  await keyExchange(before);
  assert.equal(
    closeOf(await stepMachine(before.session, { kind: "ClusterJoinCluster", clusterId: 1 })).code,
    ErrorCode.UseMaster,
  );
  const after = await fixture();
  await authenticate(after);
  assert.equal(
    closeOf(await stepMachine(after.session, { kind: "ClusterJoinCluster", clusterId: 1 })).code,
    ErrorCode.UseMaster,
  );
});

Deno.test("an established player's packets become plugin, move, pong and leave actions", async () => {
  const f = await fixture({
    clusters: () => [{
      id: CLUSTER_ID,
      name: "eu-1",
      host: "127.0.0.1",
      port: 6257,
      load: 1,
      maxConnections: 0,
      keyVersion: 5,
      full: false,
    }],
  });
  await authenticate(f);
  const payload = new Uint8Array([1, 2, 3]);
  assert.deepEqual(await stepMachine(f.session, { kind: "Plugin", command: 0x90, payload }), [
    { type: "plugin", command: 0x90, payload },
  ]);
  const state = { x: 1, y: 2, z: 3, yaw: 0.5 };
  assert.deepEqual(await stepMachine(f.session, { kind: "Move", state }), [{
    type: "move",
    state,
  }]);
  assert.deepEqual(packetOf((await stepMachine(f.session, { kind: "Ping", value: 42 }))[0]), {
    kind: "Pong",
    value: 42,
  });
  assert.deepEqual(await stepMachine(f.session, { kind: "Pong", value: 1 }), []);
  const clusters = packetOf((await stepMachine(f.session, { kind: "RequestClusters" }))[0]);
  assert.ok(clusters.kind === "SendClusters" && clusters.clusters[0].name === "eu-1");
  const leave = await stepMachine(f.session, { kind: "LeaveCluster" });
  assert.equal(packetOf(leave[0]).kind, "LeaveCluster");
  assert.deepEqual(leave[1], { type: "close", reason: "player left", level: "debug" });
  assert.equal(f.session.state, "closed");
  assert.equal(f.session.closed(), true, "the player who left still needs its cleanup");
  assert.equal(f.session.closed(), false);
});

Deno.test("server-only packets from an established player are UnexpectedPacket", async () => {
  const serverOnly: Packet[] = [
    { kind: "HelloOk", version: 3, role: 2, serverName: "x" },
    { kind: "Authenticate", status: 20, clientId: 1 },
    { kind: "MoveBatch", entries: [] },
    { kind: "Despawn", clientId: 1 },
    { kind: "Heartbeat", load: 0, maxConnections: 0 },
    { kind: "KeyExchange", clientPublicKey: new Uint8Array(32), clientRandom: new Uint8Array(32) },
  ];
  for (const packet of serverOnly) {
    const f = await fixture();
    await authenticate(f);
    assert.equal(
      closeOf(await stepMachine(f.session, packet)).code,
      ErrorCode.UnexpectedPacket,
      packet.kind,
    );
  }
});

Deno.test("an Error from the client closes without answering and reports the closing of a player", async () => {
  const f = await fixture();
  await authenticate(f);
  const actions = await stepMachine(f.session, { kind: "Error", code: 9, reason: "bye" });
  assert.deepEqual(actions, [{
    type: "close",
    reason: "client sent Error Timeout: bye",
    level: "info",
  }]);
  const g = await fixture();
  await authenticate(g);
  assert.equal(g.session.closed(), true, "an established session needs its player cleaned up");
  assert.equal(g.session.closed(), false);
});

Deno.test("an over-long Error reason from a client is cut before it reaches the log", async () => {
  const f = await fixture();
  const actions = await stepMachine(f.session, {
    kind: "Error",
    code: 1,
    reason: "x".repeat(5000),
  });
  assert.ok(closeOf(actions).reason.length < 300);
});
