/**
 * The client library against servers that misbehave on purpose: scripted masters and clusters
 * built from shared/transport.ts and the codec (never the real servers), to reach the paths a
 * correct server never takes — an impostor cluster, unknown packets for client plugins, a
 * master that does not answer.
 */
import assert from "node:assert/strict";
import { type ClientError, type ClientPlugin, SustenetClient } from "../client/mod.ts";
import { startCluster } from "../cluster/mod.ts";
import { clientSessionKeysForCluster, generateEphemeralKeyPair } from "../shared/key_derivation.ts";
import { decodePacket, encodePacket, encodePluginFrame } from "../shared/protocol/codec.ts";
import { encodeFrame, type Frame } from "../shared/protocol/frame.ts";
import type { Packet } from "../shared/protocol/packets.ts";
import { type FrameListener, type FrameTransport, listenFrames } from "../shared/transport.ts";
import { hasCode } from "./_has_code.ts";

function decode(frame: Frame): Packet {
  const packet = decodePacket(frame);
  if (packet instanceof Error) throw packet;
  return packet;
}

interface TicketTarget {
  readonly host: string;
  readonly port: number;
  readonly publicKey: Uint8Array;
}

/**
 * A scripted master: HelloOk, an empty cluster list, a JoinTicket for `target` (with a
 * placeholder ticket), and `afterHello` frames sent right after HelloOk.
 */
function fakeMaster(options: {
  target?: TicketTarget;
  afterHello?: Uint8Array[];
  silent?: "hello" | "requests";
  received?: Packet[];
}): FrameListener {
  return listenFrames({
    port: 0,
    onFrame: (frame, conn) => {
      const packet = decode(frame);
      options.received?.push(packet);
      if (packet.kind === "Hello") {
        if (options.silent === "hello") return;
        conn.send(encodePacket({ kind: "HelloOk", version: 3, role: 3, serverName: "fake" }));
        for (const bytes of options.afterHello ?? []) conn.send(bytes);
      } else if (options.silent === "requests") {
        return;
      } else if (packet.kind === "RequestClusters") {
        conn.send(encodePacket({ kind: "SendClusters", clusters: [] }));
      } else if (packet.kind === "JoinCluster" && options.target !== undefined) {
        conn.send(encodePacket({
          kind: "JoinTicket",
          clusterId: 1,
          host: options.target.host,
          port: options.target.port,
          keyVersion: 1,
          clusterPublicKey: options.target.publicKey,
          ticket: new Uint8Array(64).fill(0xee),
        }));
      } else if (packet.kind === "Ping") {
        conn.send(encodePacket({ kind: "Pong", value: packet.value }));
      }
    },
  });
}

/**
 * A scripted cluster holding a real identity key: it runs the handshake, accepts any ticket,
 * then sends `afterAuth` frames in the same batch as Authenticate(20).
 */
async function fakeCluster(afterAuth: Uint8Array[]) {
  const identity = await generateEphemeralKeyPair();
  const received: Packet[] = [];
  const listener = listenFrames({
    port: 0,
    onFrame: (frame, conn: FrameTransport) => {
      const packet = decode(frame);
      received.push(packet);
      if (packet.kind === "Hello") {
        conn.send(encodePacket({ kind: "HelloOk", version: 3, role: 2, serverName: "fake-c" }));
      } else if (packet.kind === "KeyExchange") {
        const serverRandom = crypto.getRandomValues(new Uint8Array(32));
        clientSessionKeysForCluster(
          identity.privateKey,
          packet.clientPublicKey,
          packet.clientRandom,
          serverRandom,
        ).then((keys) => {
          conn.send(encodePacket({ kind: "KeyExchangeOk", serverRandom }));
          conn.startSealing({ sendKey: keys.clusterToClient, receiveKey: keys.clientToCluster });
        }, (error: unknown) => conn.close({ code: 18, message: String(error) }));
      } else if (packet.kind === "SendPassword") {
        conn.send(encodePacket({ kind: "Authenticate", status: 20, clientId: 5 }));
        for (const bytes of afterAuth) conn.send(bytes);
      }
    },
  });
  return { listener, publicKey: identity.publicRaw, received };
}

Deno.test("a cluster without the expected private key fails the join as key_mismatch", async () => {
  const keysDir = await Deno.makeTempDir();
  const cluster = await startCluster({ port: 0, keysDir, master: null });
  // The master vouches for a key the cluster does not hold: a stand-in for an impostor.
  const wrongKey = (await generateEphemeralKeyPair()).publicRaw;
  const master = fakeMaster({
    target: { host: "127.0.0.1", port: cluster.addr.port, publicKey: wrongKey },
  });
  const client = await SustenetClient.connect({ port: master.addr.port });
  try {
    await assert.rejects(client.join("auto"), hasCode("key_mismatch"));
    assert.equal(cluster.players.size, 0);
  } finally {
    await client.close();
    await master.close();
    await cluster.stop();
    await Deno.remove(keysDir, { recursive: true });
  }
});

Deno.test("a closed cluster port in a ticket is cluster_unreachable", async () => {
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = probe.addr.port;
  probe.close();
  const publicKey = (await generateEphemeralKeyPair()).publicRaw;
  const master = fakeMaster({ target: { host: "127.0.0.1", port, publicKey } });
  const client = await SustenetClient.connect({ port: master.addr.port });
  try {
    await assert.rejects(client.join("auto"), hasCode("cluster_unreachable"));
  } finally {
    await client.close();
    await master.close();
  }
});

Deno.test("a master that never answers Hello is a timeout", async () => {
  const master = fakeMaster({ silent: "hello" });
  try {
    await assert.rejects(
      SustenetClient.connect({ port: master.addr.port, timeoutMs: 200 }),
      hasCode("timeout"),
    );
  } finally {
    await master.close();
  }
});

Deno.test("a request the master never answers is a timeout and ends the connection", async () => {
  const master = fakeMaster({ silent: "requests" });
  const client = await SustenetClient.connect({ port: master.addr.port, timeoutMs: 200 });
  try {
    const ended = Promise.withResolvers<string>();
    client.on("disconnect", ({ error }) => ended.resolve(error.code));
    await assert.rejects(client.listClusters(), hasCode("timeout"));
    assert.equal(await ended.promise, "timeout");
    await assert.rejects(client.listClusters(), hasCode("disconnected"));
  } finally {
    await client.close();
    await master.close();
  }
});

Deno.test("client plugins receive the master's unknown frames; unclaimed ones end the connection", async () => {
  const unknown = encodeFrame(0x1a, new Uint8Array([1, 2, 3]));
  const plugin = encodePluginFrame(0x90, new Uint8Array([9]));
  const received: Packet[] = [];
  const master = fakeMaster({ afterHello: [unknown, plugin], received });
  const seen: string[] = [];
  const taker: ClientPlugin = {
    receiveMaster(frame, packet) {
      seen.push(`${frame.type}:${packet?.kind ?? "undecodable"}:${frame.payload.length}`);
      return true;
    },
  };
  const ignoring: ClientPlugin = { receiveCluster: () => true };
  const claimed = await SustenetClient.connect({
    port: master.addr.port,
    clientPlugins: [ignoring, taker],
  });
  try {
    assert.deepEqual(await claimed.listClusters(), []);
    assert.deepEqual(seen, ["26:undecodable:3", "144:Plugin:1"]);
    assert.equal(claimed.connected, true);

    const unclaimed = await SustenetClient.connect({ port: master.addr.port });
    const ended = Promise.withResolvers<ClientError>();
    unclaimed.on("disconnect", ({ error }) => ended.resolve(error));
    const error = await ended.promise;
    assert.equal(error.code, "protocol_error");
    assert.equal(unclaimed.connected, false);
    await unclaimed.close();
  } finally {
    await claimed.close();
    await master.close();
  }
});

Deno.test("client plugins receive the cluster's unknown frames; events at join are not lost", async () => {
  const greeting = encodePluginFrame(0x83, new TextEncoder().encode("welcome"));
  const unknown = encodeFrame(0x2f, new Uint8Array([7]));
  const cluster = await fakeCluster([greeting, unknown]);
  const master = fakeMaster({
    target: { host: "127.0.0.1", port: cluster.listener.addr.port, publicKey: cluster.publicKey },
  });
  const frames: number[] = [];
  const client = await SustenetClient.connect({
    port: master.addr.port,
    clientPlugins: [{
      receiveCluster(frame) {
        frames.push(frame.type);
        return frame.type === 0x2f;
      },
    }],
  });
  try {
    const session = await client.join("auto");
    assert.equal(session.clientId, 5);
    assert.equal(session.serverName, "fake-c");
    // Listeners added right after the join still get what came with the authentication.
    const message = Promise.withResolvers<string>();
    session.on("message", ({ command, payload }) => {
      message.resolve(`${command}:${new TextDecoder().decode(payload)}`);
    });
    assert.equal(await message.promise, "131:welcome");
    assert.deepEqual(frames, [0x2f]);
    assert.equal(session.status, "joined");
    assert.ok(cluster.received.some((p) => p.kind === "SendPassword"));
  } finally {
    await client.close();
    await master.close();
    await cluster.listener.close();
  }
});
