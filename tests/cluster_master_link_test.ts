import assert from "node:assert/strict";
import { MasterLink, type MasterLinkOptions } from "../cluster/master_link.ts";
import {
  type MasterLinkAction,
  MasterLinkSession,
  type RegistrationDetails,
} from "../cluster/master_link_session.ts";
import { stepMachine } from "../shared/drive_machine.ts";
import { proveAnnounce } from "../shared/announce_proof.ts";
import { deriveMasterLinkKeys } from "../shared/key_derivation.ts";
import { decodePacket, encodePacket } from "../shared/protocol/codec.ts";
import type { Frame } from "../shared/protocol/frame.ts";
import type { Packet } from "../shared/protocol/packets.ts";
import { ErrorCode, ProtocolError } from "../shared/protocol/protocol_error.ts";
import { encrypt, importAesKey } from "../shared/security.ts";
import { type FrameConnection, listenFrames } from "../shared/transport.ts";

const ANNOUNCEMENT: RegistrationDetails = {
  name: "eu-1",
  host: "127.0.0.1",
  port: 6257,
  maxConnections: 500,
  keyVersion: 3,
  publicKey: new Uint8Array(32).fill(9),
};

function newSession(clusterKey: Uint8Array): MasterLinkSession {
  return new MasterLinkSession({ keyName: "cluster_key", clusterKey, announcement: ANNOUNCEMENT });
}

function decodeBytes(bytes: Uint8Array): Packet {
  const packet = decodePacket({ type: bytes[4], payload: bytes.subarray(5) });
  assert.ok(!(packet instanceof ProtocolError));
  return packet;
}

function sent(actions: readonly MasterLinkAction[]): Packet {
  assert.equal(actions.length, 1);
  const action = actions[0];
  assert.ok(action.type === "send", `expected a send, got ${action.type}`);
  return decodeBytes(action.frame);
}

function failure(actions: readonly MasterLinkAction[]): MasterLinkAction & { type: "close" } {
  assert.equal(actions.length, 1);
  const action = actions[0];
  assert.ok(action.type === "close", `expected a failure, got ${action.type}`);
  return action;
}

async function challenge(clusterKey: Uint8Array, passphrase: Uint8Array): Promise<Packet> {
  return {
    kind: "VerifyCluster",
    sealedPassphrase: await encrypt(await importAesKey(clusterKey), passphrase),
  };
}

const HELLO_OK: Packet = { kind: "HelloOk", version: 3, role: 3, serverName: "master" };

/**
 * A MasterLink to the fake master on `port` announcing {@linkcode ANNOUNCEMENT} with no load;
 * `more` adds or overrides options.
 */
function linkTo(
  port: number,
  clusterKey: Uint8Array,
  more: Partial<MasterLinkOptions> = {},
): MasterLink {
  return new MasterLink({
    hostname: "127.0.0.1",
    port,
    keyName: "cluster_key",
    clusterKey,
    announcement: ANNOUNCEMENT,
    load: () => 0,
    ...more,
  });
}

Deno.test("registration runs Hello, BecomeCluster, AnswerCluster and derives the link keys", async () => {
  const clusterKey = crypto.getRandomValues(new Uint8Array(32));
  const session = newSession(clusterKey);
  assert.deepEqual(decodeBytes(session.hello()), { kind: "Hello", version: 3, role: 2 });
  const become = sent(await stepMachine(session, HELLO_OK));
  assert.ok(become.kind === "BecomeCluster");
  assert.equal(become.keyName, "cluster_key");
  assert.equal(become.clusterNonce.length, 32);

  const passphrase = crypto.getRandomValues(new Uint8Array(32));
  const step = session.receive(await challenge(clusterKey, passphrase), 0);
  assert.ok(
    step.length === 1 && step[0].type === "derive",
    "opening the challenge is an async derive step",
  );
  const answer = sent(
    session.derived(await (step[0] as MasterLinkAction & { type: "derive" }).derive(), 0),
  );
  const expected = await deriveMasterLinkKeys(clusterKey, become.clusterNonce, passphrase);
  const fields = {
    name: "eu-1",
    host: "127.0.0.1",
    port: 6257,
    maxConnections: 500,
    keyVersion: 3,
    publicKey: ANNOUNCEMENT.publicKey,
  };
  // The passphrase stays on the cluster; the proof binds every announced field to it.
  assert.deepEqual(answer, {
    kind: "AnswerCluster",
    ...fields,
    proof: await proveAnnounce(expected.announceKey, fields),
  });
  assert.ok(!encodePacket(answer).toHex().includes(passphrase.toHex()));

  const created = session.receive({ kind: "CreateCluster", clusterId: 12 }, 0);
  const [seal, registered] = created;
  assert.ok(seal.type === "seal", "CreateCluster switches to sealed records at once");
  assert.ok(registered.type === "registered");
  assert.equal(registered.clusterId, 12);
  assert.deepEqual(seal.keys.sendKey, expected.clusterToMaster);
  assert.deepEqual(seal.keys.receiveKey, expected.masterToCluster);
  assert.equal(session.state, "registered");
  assert.equal(session.clusterId, 12);
});

Deno.test("each session challenges with a fresh nonce", async () => {
  const key = new Uint8Array(32);
  const a = sent(await stepMachine(newSession(key), HELLO_OK));
  const b = sent(await stepMachine(newSession(key), HELLO_OK));
  assert.ok(a.kind === "BecomeCluster" && b.kind === "BecomeCluster");
  assert.notDeepEqual(a.clusterNonce, b.clusterNonce);
});

Deno.test("a challenge sealed with another key fails with AuthFailed naming the key", async () => {
  const session = newSession(crypto.getRandomValues(new Uint8Array(32)));
  await stepMachine(session, HELLO_OK);
  const other = crypto.getRandomValues(new Uint8Array(32));
  const failed = failure(await stepMachine(session, await challenge(other, new Uint8Array(32))));
  assert.equal(failed.code, ErrorCode.AuthFailed);
  assert.match(failed.reason, /cluster_key/);
  assert.equal(session.state, "failed");
});

Deno.test("random bytes as a challenge (unknown key name) fail with AuthFailed", async () => {
  const session = newSession(crypto.getRandomValues(new Uint8Array(32)));
  await stepMachine(session, HELLO_OK);
  const failed = failure(
    await stepMachine(session, {
      kind: "VerifyCluster",
      sealedPassphrase: crypto.getRandomValues(new Uint8Array(60)),
    }),
  );
  assert.equal(failed.code, ErrorCode.AuthFailed);
});

Deno.test("an empty or over-long passphrase is refused", async () => {
  for (const length of [0, 256]) {
    const key = crypto.getRandomValues(new Uint8Array(32));
    const session = newSession(key);
    await stepMachine(session, HELLO_OK);
    const failed = failure(
      await stepMachine(session, await challenge(key, new Uint8Array(length))),
    );
    assert.equal(failed.code, ErrorCode.AuthFailed);
    assert.match(failed.reason, new RegExp(`${length} bytes`));
  }
});

Deno.test("the master's Error fails the link without answering", async () => {
  const session = newSession(new Uint8Array(32));
  await stepMachine(session, HELLO_OK);
  const failed = failure(
    await stepMachine(session, { kind: "Error", code: 10, reason: "cluster registration failed" }),
  );
  assert.equal(failed.code, undefined);
  assert.match(failed.reason, /AuthFailed/);
  assert.deepEqual(await stepMachine(session, HELLO_OK), [], "a failed session ignores the rest");
});

Deno.test("a peer that is not a master, or speaks another version, is refused", async () => {
  const notMaster = failure(
    await stepMachine(newSession(new Uint8Array(32)), { ...HELLO_OK, role: 2 } as Packet),
  );
  assert.equal(notMaster.code, ErrorCode.UnexpectedPacket);
  const otherVersion = failure(
    await stepMachine(newSession(new Uint8Array(32)), { ...HELLO_OK, version: 1 } as Packet),
  );
  assert.equal(otherVersion.code, ErrorCode.VersionMismatch);
  const notHelloOk = failure(
    await stepMachine(newSession(new Uint8Array(32)), { kind: "CreateCluster", clusterId: 1 }),
  );
  assert.equal(notHelloOk.code, ErrorCode.UnexpectedPacket);
});

Deno.test("packets out of order fail the link with UnexpectedPacket", async () => {
  const key = crypto.getRandomValues(new Uint8Array(32));
  const early = newSession(key);
  await stepMachine(early, HELLO_OK);
  assert.equal(
    failure(await stepMachine(early, { kind: "CreateCluster", clusterId: 1 })).code,
    ErrorCode.UnexpectedPacket,
  );

  const during = newSession(key);
  await stepMachine(during, HELLO_OK);
  const pending = stepMachine(during, await challenge(key, new Uint8Array(32).fill(1)));
  assert.equal(
    failure(await stepMachine(during, { kind: "CreateCluster", clusterId: 1 })).code,
    ErrorCode.UnexpectedPacket,
  );
  assert.deepEqual(await pending, [], "the answer is dropped once the link failed");

  const twice = newSession(key);
  await stepMachine(twice, HELLO_OK);
  await stepMachine(twice, await challenge(key, new Uint8Array(32).fill(1)));
  assert.equal(
    failure(await stepMachine(twice, await challenge(key, new Uint8Array(32).fill(2)))).code,
    ErrorCode.UnexpectedPacket,
  );
});

Deno.test("a registered link answers Ping and refuses anything else", async () => {
  const key = crypto.getRandomValues(new Uint8Array(32));
  const session = newSession(key);
  await stepMachine(session, HELLO_OK);
  await stepMachine(session, await challenge(key, new Uint8Array(32).fill(1)));
  await stepMachine(session, { kind: "CreateCluster", clusterId: 1 });
  assert.deepEqual(sent(await stepMachine(session, { kind: "Ping", value: 5 })), {
    kind: "Pong",
    value: 5,
  });
  assert.deepEqual(await stepMachine(session, { kind: "Pong", value: 5 }), []);
  assert.equal(
    failure(await stepMachine(session, { kind: "CreateCluster", clusterId: 2 })).code,
    ErrorCode.UnexpectedPacket,
  );
});

Deno.test("a malformed frame from the master fails the link with the codec's code", async () => {
  const session = newSession(new Uint8Array(32));
  const failed = failure(
    await stepMachine(session, new ProtocolError(ErrorCode.BadPacket, "HelloOk truncated")),
  );
  assert.equal(failed.code, ErrorCode.BadPacket);
});

Deno.test("a Deregister reason of any length or content still encodes", () => {
  const packet = decodeBytes(newSession(new Uint8Array(32)).deregister("🙂".repeat(40_000)));
  assert.ok(packet.kind === "Deregister" && packet.reason.isWellFormed());
  assert.ok(packet.reason.length <= 1000);
});

Deno.test("heartbeat and deregister frames carry load, capacity and reason", () => {
  const session = newSession(new Uint8Array(32));
  assert.deepEqual(decodeBytes(session.heartbeat(42)), {
    kind: "Heartbeat",
    load: 42,
    maxConnections: 500,
  });
  assert.deepEqual(decodeBytes(session.deregister("shutting down")), {
    kind: "Deregister",
    reason: "shutting down",
  });
});

// ---------------------------------------------------------------- the adapter, over sockets

interface FakeMaster {
  readonly port: number;
  readonly received: Packet[];
  readonly connections: FrameConnection[];
  /** Resolves at the next packet of this kind. */
  next(kind: Packet["kind"]): Promise<Packet>;
  close(): Promise<void>;
}

/**
 * A hand-played master: knows one key, registers every cluster as `clusterId`. With `refuse`,
 * it answers that packet kind as a master from before it does (`Error(UnknownPacket)`).
 */
function fakeMaster(
  clusterKey: Uint8Array,
  clusterId: number,
  port = 0,
  refuse?: Packet["kind"],
): FakeMaster {
  const received: Packet[] = [];
  const connections: FrameConnection[] = [];
  const waiters: { kind: Packet["kind"]; resolve: (p: Packet) => void }[] = [];
  const record = (packet: Packet) => {
    received.push(packet);
    for (let i = waiters.length - 1; i >= 0; i--) {
      if (waiters[i].kind === packet.kind) waiters.splice(i, 1)[0].resolve(packet);
    }
  };
  const listener = listenFrames({
    port,
    idleTimeoutMs: 0,
    onConnection: (connection) => {
      connections.push(connection);
      let keys: { sendKey: Uint8Array; receiveKey: Uint8Array } | undefined;
      connection.start((frame: Frame) => {
        const packet = decodePacket(frame);
        if (packet instanceof ProtocolError) throw packet;
        record(structuredClone(packet));
        if (packet.kind === refuse) {
          // What a master whose codec lacks the type answers (master_connection.ts).
          connection.close({
            code: ErrorCode.UnknownPacket,
            message: `unknown packet type ${frame.type}`,
          });
        } else if (packet.kind === "Hello") {
          connection.send(
            encodePacket({ kind: "HelloOk", version: 3, role: 3, serverName: "fake" }),
          );
        } else if (packet.kind === "BecomeCluster") {
          const nonce = packet.clusterNonce.slice();
          (async () => {
            // Keys are ready before the challenge goes out, so the switch below is synchronous.
            const passphrase = crypto.getRandomValues(new Uint8Array(32));
            const derived = await deriveMasterLinkKeys(clusterKey, nonce, passphrase);
            keys = { sendKey: derived.masterToCluster, receiveKey: derived.clusterToMaster };
            const sealedPassphrase = await encrypt(await importAesKey(clusterKey), passphrase);
            connection.send(encodePacket({ kind: "VerifyCluster", sealedPassphrase }));
          })().catch((error) => connection.close({ code: 18, message: String(error) }));
        } else if (packet.kind === "AnswerCluster" && keys !== undefined) {
          connection.send(encodePacket({ kind: "CreateCluster", clusterId }));
          connection.startSealing(keys);
        }
      });
    },
  });
  return {
    port: listener.addr.port,
    received,
    connections,
    next: (kind) => new Promise((resolve) => waiters.push({ kind, resolve })),
    close: () => listener.close(),
  };
}

Deno.test("the link registers, heartbeats and deregisters on stop", async () => {
  const clusterKey = crypto.getRandomValues(new Uint8Array(32));
  const master = fakeMaster(clusterKey, 77);
  const registered = Promise.withResolvers<number>();
  const link = linkTo(master.port, clusterKey, {
    load: () => 3,
    heartbeatIntervalMs: 20,
    onRegistered: (id) => registered.resolve(id),
  });
  try {
    const firstBeat = master.next("Heartbeat");
    link.start();
    assert.equal(await registered.promise, 77);
    assert.equal(link.clusterId, 77);
    assert.equal(link.state, "registered");
    assert.deepEqual(await firstBeat, { kind: "Heartbeat", load: 3, maxConnections: 500 });
    await master.next("Heartbeat"); // and again, on the timer
    const deregister = master.next("Deregister");
    await link.stop("maintenance");
    assert.deepEqual(await deregister, { kind: "Deregister", reason: "maintenance" });
    assert.equal(link.state, "stopped");
    assert.equal(link.registrations, 1);
  } finally {
    await link.stop();
    await master.close();
  }
});

Deno.test("a lost master is reconnected to and registered with again", async () => {
  const clusterKey = crypto.getRandomValues(new Uint8Array(32));
  let master = fakeMaster(clusterKey, 1);
  const port = master.port;
  const lost = Promise.withResolvers<string>();
  let registrations = Promise.withResolvers<number>();
  const link = linkTo(port, clusterKey, {
    reconnectMinMs: 20,
    reconnectMaxMs: 40,
    onRegistered: (id) => registrations.resolve(id),
    onLost: (reason) => lost.resolve(reason),
  });
  try {
    link.start();
    assert.equal(await registrations.promise, 1);
    registrations = Promise.withResolvers<number>();
    await master.close();
    await lost.promise;
    assert.equal(link.clusterId, 1, "the last id is kept while the master is away");
    // A few failed attempts against the closed port, then the master is back.
    await new Promise((resolve) => setTimeout(resolve, 60));
    assert.notEqual(link.state, "registered");
    master = fakeMaster(clusterKey, 2, port);
    assert.equal(await registrations.promise, 2);
    assert.equal(link.clusterId, 2);
    assert.equal(link.registrations, 2);
  } finally {
    await link.stop();
    await master.close();
  }
});

Deno.test("a master without our key refuses us and the link keeps retrying", async () => {
  const master = fakeMaster(crypto.getRandomValues(new Uint8Array(32)), 1);
  const link = linkTo(master.port, crypto.getRandomValues(new Uint8Array(32)), {
    reconnectMinMs: 10,
    reconnectMaxMs: 20,
  });
  try {
    link.start();
    while (master.connections.length < 2) await new Promise((r) => setTimeout(r, 10));
    assert.equal(link.clusterId, undefined);
    assert.equal(master.received.some((p) => p.kind === "AnswerCluster"), false);
  } finally {
    await link.stop();
    await master.close();
  }
  assert.equal(link.state, "stopped");
});

Deno.test("the link sends its plugins after registering and again only when they change", async () => {
  const clusterKey = crypto.getRandomValues(new Uint8Array(32));
  const master = fakeMaster(clusterKey, 5);
  let state: "running" | "restarting" = "running";
  const link = linkTo(master.port, clusterKey, {
    heartbeatIntervalMs: 20,
    plugins: () => [{ name: "echo", state, restarts: state === "running" ? 0 : 1 }],
  });
  const count = (kind: Packet["kind"]) => master.received.filter((p) => p.kind === kind).length;
  try {
    const first = master.next("ClusterPlugins");
    link.start();
    assert.deepEqual(await first, {
      kind: "ClusterPlugins",
      plugins: [{ name: "echo", state: "running", restarts: 0 }],
    });
    const beats = count("Heartbeat");
    while (count("Heartbeat") < beats + 5) await master.next("Heartbeat");
    assert.equal(count("ClusterPlugins"), 1, "unchanged: not sent again");
    const second = master.next("ClusterPlugins");
    state = "restarting";
    assert.deepEqual(await second, {
      kind: "ClusterPlugins",
      plugins: [{ name: "echo", state: "restarting", restarts: 1 }],
    });
  } finally {
    await link.stop();
    await master.close();
  }
});

Deno.test("a master from before ClusterPlugins drops the link once; the next link goes without", async () => {
  const clusterKey = crypto.getRandomValues(new Uint8Array(32));
  const master = fakeMaster(clusterKey, 6, 0, "ClusterPlugins");
  const link = linkTo(master.port, clusterKey, {
    heartbeatIntervalMs: 20,
    reconnectMinMs: 10,
    reconnectMaxMs: 20,
    plugins: () => [{ name: "echo", state: "running", restarts: 0 }],
  });
  const count = (kind: Packet["kind"]) => master.received.filter((p) => p.kind === kind).length;
  try {
    link.start();
    while (link.registrations < 2) await master.next("Heartbeat");
    const beats = count("Heartbeat");
    while (count("Heartbeat") < beats + 5) await master.next("Heartbeat");
    assert.equal(count("ClusterPlugins"), 1);
    assert.equal(link.registrations, 2, "the second link stays up");
    assert.equal(link.state, "registered");
  } finally {
    await link.stop();
    await master.close();
  }
});
