/**
 * The behaviour docs/PROTOCOL.md states in "Questions a client author asks", each checked
 * against real servers on loopback (or the sans-I/O piece that decides it).
 */
import assert from "node:assert/strict";
import { stepMachine } from "../shared/drive_machine.ts";
import { ClientSession } from "../cluster/client_session.ts";
import { startCluster } from "../cluster/mod.ts";
import { startMaster } from "../master/mod.ts";
import echo from "../plugins/echo.ts";
import { generateEphemeralKeyPair } from "../shared/key_derivation.ts";
import { generateKey } from "../shared/keys.ts";
import { decodePacket } from "../shared/protocol/codec.ts";
import { type Packet, PROTOCOL_VERSION } from "../shared/protocol/packets.ts";
import { ErrorCode, ProtocolError } from "../shared/protocol/protocol_error.ts";
import { NodeRecordCipher } from "../shared/record_cipher_node.ts";
import { SealedRecordReader, SealedRecordWriter } from "../shared/sealed_record.ts";
import { playerJoins, RawClient, startWorld } from "./_raw_client.ts";

async function withServers(
  body: (ports: { master: number; cluster: number }) => Promise<void>,
): Promise<void> {
  const keysDir = await Deno.makeTempDir({ prefix: "sustenet_answers_" });
  try {
    await generateKey(keysDir, "cluster_key");
    await using master = await startMaster({ port: 0, keysDir });
    await using cluster = await startCluster({ port: 0, keysDir, master: null });
    await body({ master: master.addr.port, cluster: cluster.addr.port });
  } finally {
    await Deno.remove(keysDir, { recursive: true });
  }
}

Deno.test("a first frame that is not a valid Hello is BadHello on master and cluster alike; a bad length is BadFrame", async () => {
  await withServers(async (ports) => {
    for (const port of [ports.master, ports.cluster]) {
      for (
        const [bytes, code] of [
          ["00000005040000002a", ErrorCode.BadHello], // a valid Ping
          ["0000000106", ErrorCode.BadHello], // an unknown type
          ["00000006040000002a00", ErrorCode.BadHello], // a Ping that does not decode
          ["0000000701535553540002", ErrorCode.BadHello], // a Hello without its role byte
          ["00000000", ErrorCode.BadFrame], // length 0: checked from the header
        ] as const
      ) {
        const peer = await RawClient.connect(port);
        try {
          peer.connection.send(Uint8Array.fromHex(bytes));
          const error = await peer.expect("Error");
          assert.equal(
            error.code,
            code,
            `${bytes} to ${port === ports.master ? "master" : "cluster"}`,
          );
          await peer.closed;
        } finally {
          await peer.close();
        }
      }
    }
  });
});

Deno.test("the master connection answers Ping and stays open after a JoinTicket", async () => {
  await using world = await startWorld();
  const master = await RawClient.connect(world.master.addr.port);
  try {
    master.send({ kind: "Hello", version: PROTOCOL_VERSION, role: 1 });
    await master.expect("HelloOk");
    master.send({ kind: "Ping", value: 7 });
    assert.equal((await master.expect("Pong")).value, 7);
    const keys = await generateEphemeralKeyPair();
    master.send({
      kind: "JoinCluster",
      clusterId: 0,
      clientPublicKey: keys.publicRaw,
      credential: new Uint8Array(),
    });
    await master.expect("JoinTicket");
    master.send({ kind: "Ping", value: 8 });
    assert.equal((await master.expect("Pong")).value, 8);
    master.send({ kind: "RequestClusters" });
    const list = await master.expect("SendClusters");
    // max_connections 0 is "no limit": listed as 0 and never full.
    assert.deepEqual(list.clusters.map((c) => [c.maxConnections, c.full]), [[0, false]]);
  } finally {
    await master.close();
  }
});

Deno.test("RequestClusters to a cluster: UnexpectedPacket before authentication, its own entry after", async () => {
  await using world = await startWorld();
  const early = await RawClient.connect(world.cluster.addr.port);
  try {
    early.send({ kind: "Hello", version: PROTOCOL_VERSION, role: 1 });
    await early.expect("HelloOk");
    early.send({ kind: "RequestClusters" });
    assert.equal((await early.expect("Error")).code, ErrorCode.UnexpectedPacket);
  } finally {
    await early.close();
  }
  const { client } = await playerJoins(world.master.addr.port, world.cluster.addr.port);
  try {
    client.send({ kind: "RequestClusters" });
    const { clusters } = await client.expect("SendClusters");
    assert.deepEqual(clusters.map((c) => [c.id, c.name]), [[world.cluster.clusterId, "eu-1"]]);
  } finally {
    await client.close();
  }
});

Deno.test("RequestKey sent twice is answered twice; the handshake goes on", async () => {
  const publicKey = new Uint8Array(32).fill(7);
  const session = new ClientSession({
    serverName: "c",
    identity: { privateKey: {} as CryptoKey, publicKey, version: 3 },
    tickets: () => undefined,
    admit: () => undefined,
  });
  const frames = async (packet: Packet) =>
    (await stepMachine(session, packet)).flatMap((a) => a.type === "send" ? [a.frame] : []);
  const decode = (frame: Uint8Array) =>
    decodePacket({ type: frame[4], payload: frame.subarray(5) });
  await frames({ kind: "Hello", version: PROTOCOL_VERSION, role: 1 });
  for (let i = 0; i < 2; i++) {
    const [answer] = await frames({ kind: "RequestKey", cachedVersion: 0 });
    assert.deepEqual(decode(answer), { kind: "SendPubKey", version: 3, publicKey });
  }
  const [same] = await frames({ kind: "RequestKey", cachedVersion: 3 });
  assert.deepEqual(decode(same), { kind: "VersionOfKey", version: 3 });
  assert.equal(session.state, "handshake");
});

Deno.test("with fragments off a move brings no Move, Spawn or MoveBatch to anyone", async () => {
  await using world = await startWorld({ plugins: [echo] });
  const a = await playerJoins(world.master.addr.port, world.cluster.addr.port);
  const b = await playerJoins(world.master.addr.port, world.cluster.addr.port);
  try {
    a.client.send({ kind: "Move", state: { x: 1, y: 0, z: 2 } });
    // The echo comes after the move was handled (one connection, in order) …
    a.client.send({ kind: "Plugin", command: 0x80, payload: new Uint8Array([1]) });
    await a.client.expect("Plugin");
    // … and b's Pong after anything the move could have sent b.
    b.client.send({ kind: "Ping", value: 1 });
    await b.client.expect("Pong");
    const seen = [...a.client.pending, ...b.client.pending].map((p) =>
      p instanceof ProtocolError ? p.message : p.kind
    );
    assert.deepEqual(seen, []);
  } finally {
    await a.client.close();
    await b.client.close();
  }
});

Deno.test("sealed records: shorter than the 16-byte tag is an error; a record of zero frames is valid", () => {
  const cipher = new NodeRecordCipher(new Uint8Array(32));
  const record = (counter: number, plaintext: Uint8Array) => {
    const sealed = cipher.seal(counter, plaintext);
    const out = new Uint8Array(4 + sealed.length);
    new DataView(out.buffer).setUint32(0, sealed.length);
    out.set(sealed, 4);
    return out;
  };
  const ping = Uint8Array.fromHex("00000005040000002a");
  // A writer never makes an empty record (an empty batch seals to nothing) …
  assert.equal((new SealedRecordWriter(cipher).seal(new Uint8Array(0)) as Uint8Array).length, 0);
  // … but a reader accepts one: it opens, uses its counter and yields no frame.
  const reader = new SealedRecordReader(cipher);
  reader.push(record(0, new Uint8Array(0)));
  reader.push(record(1, ping));
  assert.deepEqual(reader.next(), new Uint8Array(0));
  assert.deepEqual(reader.next(), ping);
  const short = new SealedRecordReader(cipher);
  short.push(Uint8Array.fromHex("0000000f" + "00".repeat(15)));
  const refused = short.next();
  assert.ok(refused instanceof Error && /below the 16-byte tag/.test(refused.message));
});

Deno.test("a flood of commands no plugin handles gets no more Error(Unhandled) answers than its rate limit lets through", async () => {
  // Default per-player limits: 200 commands a second in bursts of 400.
  await using world = await startWorld({ plugins: [echo] });
  const { client } = await playerJoins(world.master.addr.port, world.cluster.addr.port);
  try {
    const sent = 1000;
    for (let i = 0; i < sent; i++) {
      client.send({ kind: "Plugin", command: 0x90, payload: new Uint8Array([1]) });
    }
    client.send({ kind: "Ping", value: 1 });
    let unhandled = 0;
    for (let packet = await client.next(); packet.kind !== "Pong"; packet = await client.next()) {
      if (packet.kind === "Error" && packet.code === ErrorCode.Unhandled) unhandled++;
    }
    assert.ok(unhandled > 0 && unhandled < sent, `${unhandled} answers to ${sent} commands`);
    assert.equal(world.cluster.metrics.pluginUnhandled.value, unhandled);
  } finally {
    await client.close();
  }
});
