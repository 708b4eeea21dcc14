import assert from "node:assert/strict";
import { BenchConnection } from "../bench_connection.ts";
import { type FrameTransport, listenFrames } from "../../shared/transport.ts";
import { encodeFrame } from "../../shared/protocol/frame.ts";
import { HybridRecordCipher } from "../../shared/record_cipher_node.ts";

const toServer = new Uint8Array(32).fill(1);
const toClient = new Uint8Array(32).fill(2);

/**
 * A server built on the real transport: on frame 0x23 it answers 0x24 in plaintext, switches
 * to sealed records and at once sends 0x80 sealed; then it echoes every frame it receives.
 */
function sealingServer() {
  return listenFrames({
    port: 0,
    handshakeTimeoutMs: 0,
    idleTimeoutMs: 0,
    onFrame(frame, conn: FrameTransport) {
      if (frame.type === 0x23) {
        conn.send(encodeFrame(0x24, new Uint8Array([1])));
        conn.startSealing({ sendKey: toClient, receiveKey: toServer });
        conn.send(encodeFrame(0x80, new Uint8Array([42])));
        return;
      }
      conn.send(encodeFrame(frame.type, frame.payload));
    },
  });
}

function recorder() {
  const frames: number[][] = [];
  let wake: (() => void) | undefined;
  return {
    frames,
    visit(view: DataView, offset: number, length: number) {
      frames.push([...new Uint8Array(view.buffer, view.byteOffset + offset, length)]);
      wake?.();
    },
    async until(count: number) {
      while (frames.length < count) await new Promise<void>((resolve) => (wake = resolve));
    },
  };
}

/** Connects, records every frame, and on 0x24 holds what follows and calls `onSwitch`. */
async function connectSwitching(port: number, onSwitch: (conn: BenchConnection) => void) {
  const conn = await BenchConnection.connect("127.0.0.1", port);
  const got = recorder();
  conn.startReading((view, offset, length) => {
    got.visit(view, offset, length);
    if (view.getUint8(offset) === 0x24) {
      conn.holdFrames();
      onSwitch(conn);
    }
  });
  return { conn, got };
}

Deno.test("sealing switched from the visitor reads records sent right after the last frame", async () => {
  const server = sealingServer();
  const { conn, got } = await connectSwitching(server.addr.port, (c) => {
    c.startSealing({ sendKey: toServer, receiveKey: toClient });
  });
  conn.send(encodeFrame(0x23, new Uint8Array()));
  await got.until(2);
  conn.send(encodeFrame(0x81, new Uint8Array([7, 7])));
  conn.send(encodeFrame(0x82, new Uint8Array([8])));
  await got.until(4);
  assert.deepEqual(got.frames, [[0x24, 1], [0x80, 42], [0x81, 7, 7], [0x82, 8]]);
  assert.equal(conn.framesIn, 4);
  conn.close();
  assert.equal(await conn.closed, "closed by owner");
  await server.close();
});

Deno.test("sealing switched later (after an await) opens the held bytes", async () => {
  const server = sealingServer();
  let switched: Promise<void> | undefined;
  const { conn, got } = await connectSwitching(server.addr.port, (c) => {
    switched = new Promise((resolve) => setTimeout(resolve, 50)).then(() =>
      c.startSealing({ sendKey: toServer, receiveKey: toClient })
    );
  });
  conn.send(encodeFrame(0x23, new Uint8Array()));
  await got.until(1);
  await switched;
  await got.until(2);
  assert.deepEqual(got.frames, [[0x24, 1], [0x80, 42]]);
  conn.close();
  await conn.closed;
  await server.close();
});

Deno.test("records opened asynchronously (WebCrypto) are still visited in order", async () => {
  const server = sealingServer();
  const receiveKey = await HybridRecordCipher.create(toClient, 0); // every record async
  const { conn, got } = await connectSwitching(server.addr.port, (c) => {
    c.startSealing({ sendKey: toServer, receiveKey });
  });
  conn.send(encodeFrame(0x23, new Uint8Array()));
  await got.until(2);
  const expected: number[][] = [[0x24, 1], [0x80, 42]];
  for (let i = 0; i < 40; i++) {
    const payload = new Uint8Array(i % 3 === 0 ? 3000 : 5).fill(i);
    expected.push([0x81, ...payload]);
    conn.send(encodeFrame(0x81, payload));
    if (i % 4 === 0) await new Promise((resolve) => setTimeout(resolve, 1));
  }
  await got.until(expected.length);
  assert.deepEqual(got.frames, expected);
  conn.close();
  await conn.closed;
  await server.close();
});

Deno.test("resumeFrames reads held bytes as frames again", async () => {
  const server = listenFrames({
    port: 0,
    onFrame: (frame, conn) => {
      conn.send(encodeFrame(0x24, new Uint8Array()));
      conn.send(encodeFrame(0x26, frame.payload));
    },
  });
  const { conn, got } = await connectSwitching(server.addr.port, (c) => {
    setTimeout(() => c.resumeFrames(), 20);
  });
  conn.send(encodeFrame(0x23, new Uint8Array([5])));
  await got.until(2);
  assert.deepEqual(got.frames, [[0x24], [0x26, 5]]);
  conn.close();
  await conn.closed;
  await server.close();
});

Deno.test("a record sealed with the wrong key closes the connection", async () => {
  const server = sealingServer();
  const conn = await BenchConnection.connect("127.0.0.1", server.addr.port);
  conn.startReading((view, offset) => {
    if (view.getUint8(offset) === 0x24) {
      conn.holdFrames();
      conn.startSealing({ sendKey: toServer, receiveKey: new Uint8Array(32) });
    }
  });
  conn.send(encodeFrame(0x23, new Uint8Array()));
  assert.match(await conn.closed, /^bad record/);
  await server.close();
});

Deno.test("a bad frame, a peer close and a full queue each close the connection", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepting = listener.accept();
  const conn = await BenchConnection.connect("127.0.0.1", listener.addr.port);
  const peer = await accepting;
  conn.startReading(() => {});
  await peer.write(new Uint8Array([0, 0, 0, 0]));
  assert.match(await conn.closed, /^bad frame: frame length 0/);
  peer.close();

  const accepting2 = listener.accept();
  const conn2 = await BenchConnection.connect("127.0.0.1", listener.addr.port, {
    maxQueueBytes: 100,
  });
  const peer2 = await accepting2;
  conn2.startReading(() => {});
  assert.equal(conn2.send(new Uint8Array(60)), true);
  assert.equal(conn2.send(new Uint8Array(60)), false);
  assert.match(await conn2.closed, /outgoing queue above 100 bytes/);
  assert.equal(conn2.send(new Uint8Array(1)), false);
  peer2.close();

  const accepting3 = listener.accept();
  const conn3 = await BenchConnection.connect("127.0.0.1", listener.addr.port);
  (await accepting3).close();
  conn3.startReading(() => {});
  assert.equal(await conn3.closed, "connection closed by peer");
  listener.close();
});
