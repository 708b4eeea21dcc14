import { captureLogs } from "./_logs.ts";
import assert from "node:assert/strict";
import { reset as resetLogging } from "@logtape/logtape";
import { formatLogRecord } from "../shared/logging.ts";
import { decodePacket, encodePacket } from "../shared/protocol/codec.ts";
import { encodeFrame, type Frame, FrameDecoder } from "../shared/protocol/frame.ts";
import { ErrorCode } from "../shared/protocol/protocol_error.ts";
import { type RecordCipherKind, WebCryptoRecordCipher } from "../shared/record_cipher.ts";
import { FfiRecordCipher } from "../shared/record_cipher_ffi.ts";
import { NodeRecordCipher } from "../shared/record_cipher_node.ts";
import { SealedRecordReader, SealedRecordWriter } from "../shared/sealed_record.ts";
import {
  broadcast,
  type CloseInfo,
  connectFrames,
  encodeErrorFrame,
  type FrameConnection,
  type FrameListener,
  listenFrames,
  type ListenFramesOptions,
  recordBytesFor,
  TransportError,
} from "../shared/transport.ts";
import { concatBytes as concat, errorCodeOf, readExactly } from "./_bytes.ts";
import { waitFor } from "./_wait.ts";

const CLIENT_KEY = new Uint8Array(32).fill(0x11); // client → server
const SERVER_KEY = new Uint8Array(32).fill(0x22); // server → client
const SWITCH = 0x17; // last plaintext frame, as CreateCluster

function frame(type: number, size: number, fill = type): Uint8Array {
  return encodeFrame(type, new Uint8Array(size).fill(fill));
}

function copyFrame(f: Frame): Frame {
  return { type: f.type, payload: f.payload.slice() };
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function rawConnect(listener: FrameListener): Promise<Deno.TcpConn> {
  return await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) offset += await conn.write(bytes.subarray(offset));
}

/** Reads from a raw socket until the peer closes; returns everything read. */
async function readToEnd(conn: Deno.Conn): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  const buffer = new Uint8Array(65536);
  for (;;) {
    const n = await conn.read(buffer).catch((error: unknown) => {
      if (error instanceof Deno.errors.ConnectionReset) return null;
      throw error;
    });
    if (n === null) return concat(parts);
    parts.push(buffer.slice(0, n));
  }
}

function decodeAll(bytes: Uint8Array, maxFrameBytes?: number): Frame[] {
  const decoder = new FrameDecoder({ maxFrameBytes });
  decoder.push(bytes);
  const frames: Frame[] = [];
  for (;;) {
    const f = decoder.next();
    if (f === undefined) return frames;
    if (f instanceof Error) throw f;
    frames.push(copyFrame(f));
  }
}

/** A listener whose accepted connections are handed out through `next()`. */
function serve(options: Omit<ListenFramesOptions, "port"> = {}) {
  const accepted: FrameConnection[] = [];
  const waiters: ((c: FrameConnection) => void)[] = [];
  const listener = listenFrames({
    port: 0,
    ...options,
    onConnection(connection) {
      options.onConnection?.(connection);
      const waiter = waiters.shift();
      if (waiter) waiter(connection);
      else accepted.push(connection);
    },
  });
  return {
    listener,
    next(): Promise<FrameConnection> {
      const ready = accepted.shift();
      return ready ? Promise.resolve(ready) : new Promise((resolve) => waiters.push(resolve));
    },
  };
}

Deno.test("frames arrive both ways whatever the chunking", async () => {
  const server = serve({
    onFrame: (f, conn) => conn.send(encodeFrame(f.type, f.payload)),
  });
  const raw = await rawConnect(server.listener);
  const frames = [frame(0x04, 4), frame(0x10, 0), frame(0x80, 3000), frame(0x81, 65535)];
  const stream = concat(frames);
  // Byte by byte for the first frames, then uneven chunks, with pauses in between.
  const cuts = [1, 2, 3, 4, 5, 6, 7, 9, 12, 20, 700, 3100, 40_000, stream.length];
  let start = 0;
  for (const cut of cuts) {
    await writeAll(raw, stream.subarray(start, cut));
    start = cut;
    if (cut < 12) await delay(2);
  }
  const connection = await server.next();
  const echoed: Frame[] = [];
  const decoder = new FrameDecoder();
  const buffer = new Uint8Array(7000); // small reads, so the replies come in pieces too
  while (echoed.length < frames.length) {
    const n = await raw.read(buffer);
    assert.ok(n !== null);
    decoder.push(buffer.subarray(0, n));
    for (let f = decoder.next(); f !== undefined; f = decoder.next()) {
      assert.ok(!(f instanceof Error));
      echoed.push(copyFrame(f));
    }
  }
  assert.deepEqual(echoed, decodeAll(stream));
  assert.equal(connection.framesIn, 4);
  assert.equal(connection.framesOut, 4);
  assert.equal(connection.bytesIn, stream.length);
  assert.equal(connection.bytesOut, stream.length);
  raw.close();
  const info = await connection.closed;
  assert.equal(info.by, "remote");
  await server.listener.close();
});

Deno.test("frames queued in one turn go out as one write, and the frame bytes are untouched", async () => {
  const shared = frame(0x80, 100);
  const copy = shared.slice();
  const server = serve({ onFrame: () => {} });
  const raws = await Promise.all([0, 1, 2].map(() => rawConnect(server.listener)));
  const connections = await Promise.all([0, 1, 2].map(() => server.next()));
  for (const connection of connections) {
    for (let i = 0; i < 99; i++) connection.send(frame(0x81, i));
  }
  // One encoded frame, queued on all three: not copied, not modified.
  assert.equal(broadcast(connections, shared), 3);
  assert.equal(broadcast(connections, shared, connections[1]), 2);
  for (const [i, raw] of raws.entries()) {
    const expected = 99 + (i === 1 ? 1 : 2);
    const got: Frame[] = [];
    const decoder = new FrameDecoder();
    const buffer = new Uint8Array(65536);
    while (got.length < expected) {
      const n = await raw.read(buffer);
      assert.ok(n !== null);
      decoder.push(buffer.subarray(0, n));
      for (let f = decoder.next(); f !== undefined; f = decoder.next()) {
        assert.ok(!(f instanceof Error));
        got.push(copyFrame(f));
      }
    }
    assert.deepEqual(got.slice(0, 99).map((f) => f.payload.length), [...Array(99).keys()]);
    assert.deepEqual(got.at(-1), { type: 0x80, payload: new Uint8Array(100).fill(0x80) });
    assert.equal(connections[i].writes, 1, "everything queued in one turn is one write");
    assert.equal(connections[i].framesOut, expected);
  }
  assert.deepEqual(shared, copy);
  // A later turn is a later write.
  connections[0].send(frame(0x82, 1));
  connections[0].send(frame(0x83, 1));
  await raws[0].read(new Uint8Array(100));
  assert.equal(connections[0].writes, 2);
  for (const raw of raws) raw.close();
  await server.listener.close();
});

for (const kind of ["node", "webcrypto", "hybrid"] as const satisfies RecordCipherKind[]) {
  Deno.test(`a link switches to sealed records mid-batch and mid-read (${kind})`, async () => {
    const serverGot: Frame[] = [];
    const server = serve({
      recordCipher: kind,
      onFrame(f, conn) {
        serverGot.push(copyFrame(f));
        if (f.type === 0x14) {
          // The server sends the last plaintext frame, switches, and goes on in the same turn.
          conn.send(encodeFrame(SWITCH, new Uint8Array([0, 0, 0, 7])));
          conn.startSealing({ sendKey: SERVER_KEY, receiveKey: CLIENT_KEY });
          conn.markEstablished();
          conn.send(frame(0x18, 8));
          conn.send(frame(0x80, 5000));
        } else if (f.type >= 0x80) {
          conn.send(encodeFrame(f.type, f.payload));
        }
      },
    });
    const clientGot: Frame[] = [];
    const done = Promise.withResolvers<void>();
    const client = await connectFrames({
      port: server.listener.addr.port,
      recordCipher: kind,
      onFrame(f, conn) {
        clientGot.push(copyFrame(f));
        if (f.type === SWITCH) {
          assert.equal(conn.sealed, false);
          conn.startSealing({ sendKey: CLIENT_KEY, receiveKey: SERVER_KEY });
          conn.send(frame(0x90, 3));
          conn.send(frame(0x91, 20_000));
        }
        if (f.type === 0x91) done.resolve();
      },
    });
    client.send(frame(0x14, 10));
    await done.promise;
    assert.deepEqual(clientGot.map((f) => f.type), [SWITCH, 0x18, 0x80, 0x90, 0x91]);
    assert.deepEqual(clientGot[2].payload, new Uint8Array(5000).fill(0x80));
    assert.deepEqual(clientGot[4].payload, new Uint8Array(20_000).fill(0x91));
    assert.deepEqual(serverGot.map((f) => f.type), [0x14, 0x90, 0x91]);
    const serverSide = [...server.listener.connections][0];
    assert.equal(serverSide.sealed, true);
    assert.equal(serverSide.writes, 2, "plaintext + sealed in one write, then the echoes");
    await client.close();
    await server.listener.close();
  });
}

Deno.test("sealed bytes that follow the switch frame in the same read are opened as records", async () => {
  const server = serve({
    onFrame(f, conn) {
      if (f.type === SWITCH) conn.startSealing({ sendKey: SERVER_KEY, receiveKey: CLIENT_KEY });
      else conn.send(encodeFrame(f.type, f.payload));
    },
  });
  const raw = await rawConnect(server.listener);
  const writer = new SealedRecordWriter(new NodeRecordCipher(CLIENT_KEY));
  const record = writer.seal([frame(0x80, 10), frame(0x81, 20)]) as Uint8Array;
  // The switch frame and the first record in one write (one read on the server).
  await writeAll(raw, concat([frame(SWITCH, 4), record]));
  const reader = new SealedRecordReader(await WebCryptoRecordCipher.create(SERVER_KEY));
  const got: Frame[] = [];
  const buffer = new Uint8Array(65536);
  while (got.length < 2) {
    const n = await raw.read(buffer);
    assert.ok(n !== null);
    reader.push(buffer.subarray(0, n));
    for (let p = await reader.next(); p !== undefined; p = await reader.next()) {
      assert.ok(p instanceof Uint8Array);
      got.push(...decodeAll(p));
    }
  }
  assert.deepEqual(got, decodeAll(concat([frame(0x80, 10), frame(0x81, 20)])));
  raw.close();
  await server.listener.close();
});

Deno.test("a tampered record closes that connection while the server keeps serving others", async () => {
  const server = serve({
    onFrame(f, conn) {
      if (f.type === SWITCH) conn.startSealing({ sendKey: SERVER_KEY, receiveKey: CLIENT_KEY });
      else conn.send(encodeFrame(f.type, f.payload));
    },
  });
  const good = Promise.withResolvers<Frame>();
  const other = await connectFrames({
    port: server.listener.addr.port,
    onFrame: (f) => good.resolve(copyFrame(f)),
  });
  const raw = await rawConnect(server.listener);
  const writer = new SealedRecordWriter(new NodeRecordCipher(CLIENT_KEY));
  const record = writer.seal(frame(0x80, 10)) as Uint8Array;
  record[record.length - 1] ^= 1;
  await writeAll(raw, concat([frame(SWITCH, 4), record]));
  await server.next(); // `other`
  const info = await (await server.next()).closed;
  assert.equal(info.by, "error");
  assert.equal(info.code, ErrorCode.BadFrame);
  assert.match(info.reason, /authentication/);
  // The Error frame is sealed (the server writer had switched), then the socket is closed.
  const rest = await readToEnd(raw);
  const reader = new SealedRecordReader(new NodeRecordCipher(SERVER_KEY));
  reader.push(rest);
  const plain = reader.next();
  assert.ok(plain instanceof Uint8Array);
  assert.equal(errorCodeOf(decodeAll(plain)[0]), ErrorCode.BadFrame);
  // The other connection is unaffected.
  other.send(frame(0x81, 3));
  assert.deepEqual(await good.promise, { type: 0x81, payload: new Uint8Array(3).fill(0x81) });
  raw.close();
  await other.close();
  await server.listener.close();
});

Deno.test("a peer that never reads is disconnected as a slow consumer with a bounded queue", async () => {
  const records = await captureLogs();
  try {
    await slowConsumerIsDropped();
  } finally {
    await resetLogging();
  }
  const closing = records.filter((r) => r.message.join("").startsWith("closing "));
  assert.equal(closing.length, 1, "one logged reason");
  assert.equal(closing[0].level, "warning");
  assert.match(formatLogRecord(closing[0]), /outgoing queue above 262144 bytes/);
  assert.equal(closing[0].properties.code, ErrorCode.SlowConsumer);
});

async function slowConsumerIsDropped(): Promise<void> {
  const maxQueueBytes = 256 * 1024;
  const server = serve({ onFrame: () => {}, maxQueueBytes, closeFlushTimeoutMs: 100 });
  const raw = await rawConnect(server.listener);
  const connection = await server.next();
  const chunk = frame(0x80, 16 * 1024);
  let maxSeen = 0;
  let refused = false;
  // Until the kernel buffers fill, the queue drains; then it grows to the bound and trips.
  for (let turn = 0; turn < 100_000 && !refused; turn++) {
    for (let i = 0; i < 4 && !refused; i++) {
      refused = !connection.send(chunk);
      maxSeen = Math.max(maxSeen, connection.queuedBytes);
      assert.ok(connection.queuedBytes <= maxQueueBytes);
    }
    await delay(0);
  }
  assert.ok(refused, "the bound tripped");
  assert.ok(maxSeen <= maxQueueBytes);
  assert.equal(connection.send(chunk), false, "a closing connection takes nothing more");
  const info = await connection.closed;
  assert.equal(info.code, ErrorCode.SlowConsumer);
  assert.equal(info.by, "error");
  raw.close();
  await server.listener.close();
}

Deno.test("an oversize or zero-length frame gets an Error frame, then the socket closes", async () => {
  const server = serve({ onFrame: () => {}, maxFrameBytes: 1000 });
  for (
    const [header, code] of [
      [[0, 0, 0x03, 0xe9], ErrorCode.FrameTooLarge], // 1001
      [[0xff, 0xff, 0xff, 0xff], ErrorCode.FrameTooLarge],
      [[0, 0, 0, 0], ErrorCode.BadFrame],
    ] as const
  ) {
    const raw = await rawConnect(server.listener);
    await writeAll(raw, concat([frame(0x10, 2), new Uint8Array(header), new Uint8Array(50)]));
    const replies = decodeAll(await readToEnd(raw));
    assert.equal(replies.length, 1);
    assert.equal(errorCodeOf(replies[0]), code);
    raw.close();
  }
  await server.listener.close();
});

Deno.test("the handshake timeout closes a silent connection; markEstablished stops it", async () => {
  const infos: Promise<CloseInfo>[] = [];
  const server = serve({
    handshakeTimeoutMs: 150,
    idleTimeoutMs: 0,
    onConnection: (c) => infos.push(c.closed),
    onFrame: (f, conn) => {
      if (f.type === 0x01) conn.markEstablished();
    },
  });
  const silent = await rawConnect(server.listener);
  await server.next();
  const replies = decodeAll(await readToEnd(silent));
  assert.equal(errorCodeOf(replies[0]), ErrorCode.Timeout);
  const info = await infos[0];
  assert.equal(info.reason, "handshake timeout");
  assert.equal(info.by, "error");
  silent.close();

  const polite = await connectFrames({ port: server.listener.addr.port, onFrame: () => {} });
  polite.send(frame(0x01, 7));
  const established = await server.next();
  await delay(400);
  assert.equal(established.isOpen, true);
  assert.equal(established.established, true);
  await polite.close();
  await server.listener.close();
});

Deno.test("the idle timeout closes a connection that stops sending, not one that keeps on", async () => {
  const server = serve({ handshakeTimeoutMs: 0, idleTimeoutMs: 300, onFrame: () => {} });
  const closedInfo = Promise.withResolvers<Frame>();
  const client = await connectFrames({
    port: server.listener.addr.port,
    idleTimeoutMs: 0,
    handshakeTimeoutMs: 0,
    onFrame: (f) => closedInfo.resolve(copyFrame(f)),
  });
  const connection = await server.next();
  for (let i = 0; i < 10; i++) {
    client.send(frame(0x04, 4));
    await delay(40);
  }
  assert.equal(connection.isOpen, true, "kept alive by traffic");
  const info = await connection.closed;
  assert.deepEqual(info, { reason: "idle timeout", code: ErrorCode.Timeout, by: "error" });
  assert.equal(errorCodeOf(await closedInfo.promise), ErrorCode.Timeout);
  const clientInfo = await client.closed;
  assert.equal(clientInfo.by, "remote");
  await server.listener.close();
});

Deno.test("close sends its Error frame once, is idempotent and refuses later sends", async () => {
  const server = serve({ onFrame: () => {} });
  const raw = await rawConnect(server.listener);
  const connection = await server.next();
  connection.send(frame(0x80, 5));
  const first = connection.close({ code: ErrorCode.ShuttingDown, message: "server stopping" });
  const second = connection.close();
  assert.equal(first, second);
  assert.equal(connection.isOpen, false);
  assert.equal(connection.send(frame(0x80, 1)), false);
  const replies = decodeAll(await readToEnd(raw));
  assert.deepEqual(replies.map((f) => f.type), [0x80, 0x03]);
  assert.equal(errorCodeOf(replies[1]), ErrorCode.ShuttingDown);
  assert.equal(new TextDecoder().decode(replies[1].payload.subarray(4)), "server stopping");
  assert.deepEqual(await first, {
    reason: "server stopping",
    code: ErrorCode.ShuttingDown,
    by: "local",
  });
  raw.close();
  await server.listener.close();
});

Deno.test("a handler that throws closes only its connection with Error(Internal)", async () => {
  const server = serve({
    onFrame(f) {
      if (f.type === 0x66) throw new Error("plugin bug");
    },
  });
  const raw = await rawConnect(server.listener);
  await writeAll(raw, concat([frame(0x66, 1), frame(0x67, 1)]));
  const replies = decodeAll(await readToEnd(raw));
  assert.equal(errorCodeOf(replies[0]), ErrorCode.Internal);
  const connection = await server.next();
  assert.equal(connection.framesIn, 1, "nothing is delivered after the failure");
  assert.equal((await connection.closed).code, ErrorCode.Internal);
  raw.close();
  await server.listener.close();
});

Deno.test("the listener closes every open connection with the reason given", async () => {
  const server = serve({ onFrame: () => {} });
  const clientsGot: Promise<Frame>[] = [];
  const clients: FrameConnection[] = [];
  for (let i = 0; i < 3; i++) {
    const got = Promise.withResolvers<Frame>();
    clients.push(
      await connectFrames({
        port: server.listener.addr.port,
        onFrame: (f) => got.resolve(copyFrame(f)),
      }),
    );
    clientsGot.push(got.promise);
    await server.next();
  }
  assert.equal(server.listener.connections.size, 3);
  await server.listener.close({ code: ErrorCode.ShuttingDown, message: "bye" });
  assert.equal(server.listener.connections.size, 0);
  for (const got of clientsGot) assert.equal(errorCodeOf(await got), ErrorCode.ShuttingDown);
  for (const client of clients) assert.equal((await client.closed).by, "remote");
});

Deno.test("misuse is refused: bad options, double start, double sealing, bad keys, huge frames", async () => {
  const server = serve({ onFrame: () => {} });
  const port = server.listener.addr.port;
  for (
    const bad of [
      { maxQueueBytes: 0 },
      { maxRecordBytes: 16 },
      { idleTimeoutMs: -1 },
      { handshakeTimeoutMs: Number.NaN },
      { readBufferBytes: 0.5 },
      { maxFrameBytes: 0 },
    ]
  ) {
    await assert.rejects(connectFrames({ port, ...bad }), RangeError);
  }
  const client = await connectFrames({ port, onFrame: () => {}, maxQueueBytes: 1000 });
  assert.throws(() => client.start(() => {}), TransportError);
  assert.throws(() => client.send(new Uint8Array(1001)), RangeError);
  assert.equal(client.send(new Uint8Array(0)), true);
  assert.throws(
    () => client.startSealing({ sendKey: new Uint8Array(16), receiveKey: SERVER_KEY }),
    RangeError,
  );
  assert.equal(client.sealed, false, "a refused key changes nothing");
  client.startSealing({ sendKey: CLIENT_KEY, receiveKey: new NodeRecordCipher(SERVER_KEY) });
  assert.throws(
    () => client.startSealing({ sendKey: CLIENT_KEY, receiveKey: SERVER_KEY }),
    { code: "transport_already_sealed" },
  );
  assert.throws(() => client.startSealingWriter(CLIENT_KEY), TransportError);
  assert.throws(() => client.startSealingReader(SERVER_KEY), TransportError);
  await client.close();
  await server.listener.close();
});

Deno.test("encodeErrorFrame cuts a long reason on a character boundary", () => {
  const f = decodeAll(encodeErrorFrame(18, "é".repeat(600)))[0];
  assert.equal(errorCodeOf(f), 18);
  const length = (f.payload[2] << 8) | f.payload[3];
  assert.equal(length, 1024);
  assert.equal(new TextDecoder("utf-8", { fatal: true }).decode(f.payload.subarray(4)).length, 512);
});

Deno.test("encodeErrorFrame writes exactly what the packet codec writes for an Error", () => {
  const bytes = encodeErrorFrame(ErrorCode.SlowConsumer, "outgoing queue full");
  assert.deepEqual(
    bytes,
    encodePacket({ kind: "Error", code: ErrorCode.SlowConsumer, reason: "outgoing queue full" }),
  );
  assert.deepEqual(decodePacket(decodeAll(bytes)[0]), {
    kind: "Error",
    code: ErrorCode.SlowConsumer,
    reason: "outgoing queue full",
  });
});

Deno.test("a sealed link with maxFrameBytes 2 MiB carries a 1.5 MiB frame both ways", async () => {
  const big = 1536 * 1024;
  const bounds = { maxFrameBytes: 2 * 1024 * 1024, maxQueueBytes: 4 * 1024 * 1024 };
  const server = serve({
    ...bounds,
    onFrame(f, conn) {
      if (f.type === SWITCH) conn.startSealing({ sendKey: SERVER_KEY, receiveKey: CLIENT_KEY });
      else conn.send(encodeFrame(f.type, f.payload));
    },
  });
  const echoed = Promise.withResolvers<Frame>();
  const client = await connectFrames({
    ...bounds,
    port: server.listener.addr.port,
    onFrame: (f) => echoed.resolve(copyFrame(f)),
  });
  client.send(frame(SWITCH, 4));
  client.startSealing({ sendKey: CLIENT_KEY, receiveKey: SERVER_KEY });
  client.send(frame(0x80, big, 0x5a));
  const got = await echoed.promise;
  assert.equal(got.type, 0x80);
  assert.deepEqual(got.payload, new Uint8Array(big).fill(0x5a));
  assert.equal((await client.close()).by, "local");
  await server.listener.close();
});

Deno.test("the record bound follows the frame bound, never below 1 MiB + 16", () => {
  assert.equal(recordBytesFor(64), 1024 * 1024 + 16);
  assert.equal(recordBytesFor(1024 * 1024), 1024 * 1024 + 4 + 16);
  assert.equal(recordBytesFor(16 * 1024 * 1024), 16 * 1024 * 1024 + 4 + 16);
});

Deno.test("a writer with a large record bound packs frames only up to 1 MiB per record", () => {
  const maxRecordBytes = recordBytesFor(4 * 1024 * 1024);
  const writer = new SealedRecordWriter(new NodeRecordCipher(CLIENT_KEY), { maxRecordBytes });
  // A reader with the default bound (a peer whose frame bound is small) reads many small frames.
  const small = new SealedRecordReader(new NodeRecordCipher(CLIENT_KEY));
  const frames = Array.from({ length: 40 }, (_, i) => frame(0x80, 60 * 1024, i));
  small.push(writer.seal(frames) as Uint8Array);
  assert.equal(writer.counter, 3, "2.4 MB of frames in three records");
  const opened: Frame[] = [];
  for (let p = small.next(); p !== undefined; p = small.next()) {
    assert.ok(p instanceof Uint8Array);
    opened.push(...decodeAll(p));
  }
  assert.deepEqual(opened, decodeAll(concat(frames)));
  // One frame above 1 MiB gets a record of its own, between two packed ones.
  const large = new SealedRecordReader(new NodeRecordCipher(CLIENT_KEY), { maxRecordBytes });
  const mixed = [frame(0x81, 10), frame(0x82, 3 * 1024 * 1024), frame(0x83, 10)];
  const fresh = new SealedRecordWriter(new NodeRecordCipher(CLIENT_KEY), { maxRecordBytes });
  large.push(fresh.seal(concat(mixed)) as Uint8Array);
  assert.equal(fresh.counter, 3);
  const back: Frame[] = [];
  for (let p = large.next(); p !== undefined; p = large.next()) {
    assert.ok(p instanceof Uint8Array);
    back.push(...decodeAll(p, 4 * 1024 * 1024));
  }
  assert.deepEqual(back.map((f) => f.type), [0x81, 0x82, 0x83]);
  assert.throws(() => writer.seal(frame(0x84, 4 * 1024 * 1024)), RangeError);
});

Deno.test({
  name: "with libcrypto a mid-batch switch writes exactly the plaintext, then the records",
  ignore: !FfiRecordCipher.available(),
  fn: async () => {
    const switchFrame = encodeFrame(SWITCH, new Uint8Array([0, 0, 0, 7]));
    const small = Array.from({ length: 20 }, (_, i) => frame(0x80 + i, 35));
    const large = [frame(0xa0, 700 * 1024), frame(0xa1, 700 * 1024)]; // two records
    const bounds = { maxFrameBytes: 2 * 1024 * 1024, maxQueueBytes: 4 * 1024 * 1024 };
    const server = serve({
      ...bounds,
      recordCipher: "ffi",
      onConnection(conn) {
        // One turn: the last plaintext frame, the switch, then frames to seal.
        conn.send(switchFrame);
        conn.startSealing({ sendKey: SERVER_KEY, receiveKey: CLIENT_KEY });
        conn.markEstablished();
        for (const f of small) conn.send(f);
        // A later turn: frames above the 1 MiB pack bound, so several records in one write.
        setTimeout(() => {
          for (const f of large) conn.send(f);
        }, 0);
      },
    });
    const raw = await rawConnect(server.listener);
    const reference = new SealedRecordWriter(new NodeRecordCipher(SERVER_KEY), {
      maxRecordBytes: recordBytesFor(bounds.maxFrameBytes),
    });
    const first = concat([switchFrame, reference.seal(small) as Uint8Array]);
    assert.deepEqual(await readExactly(raw, first.length), first);
    const second = reference.seal(large) as Uint8Array;
    assert.equal(reference.counter, 3);
    assert.deepEqual(await readExactly(raw, second.length), second);
    raw.close();
    await server.listener.close();
  },
});

Deno.test("a 200 KiB frame in one write arrives whole, and so do many small frames after it", async () => {
  const got: Frame[] = [];
  const done = Promise.withResolvers<void>();
  const smallCount = 3000;
  const server = serve({
    maxFrameBytes: 256 * 1024,
    readBufferBytes: 256 * 1024,
    onFrame(f) {
      got.push(copyFrame(f));
      if (got.length === 1 + smallCount * 2) done.resolve();
    },
  });
  const raw = await rawConnect(server.listener);
  const big = frame(0x80, 200 * 1024, 0x5b);
  const small = Array.from({ length: smallCount }, (_, i) => frame(0x81, i % 40, i & 0xff));
  await writeAll(raw, concat([big, ...small]));
  // The same small frames again in tiny writes, once the read buffer has grown (enough small
  // reads for it to shrink back on the way).
  for (let i = 0; i < small.length; i += 30) {
    await writeAll(raw, concat(small.slice(i, i + 30)));
    if (i % 300 === 0) await delay(1);
  }
  await done.promise;
  assert.deepEqual(got, decodeAll(concat([big, ...small, ...small]), 256 * 1024));
  raw.close();
  await server.listener.close();
});

Deno.test("a read buffer bound below the first read size still carries frames larger than it", async () => {
  const got = Promise.withResolvers<Frame>();
  const server = serve({ readBufferBytes: 100, onFrame: (f) => got.resolve(copyFrame(f)) });
  const raw = await rawConnect(server.listener);
  await writeAll(raw, frame(0x80, 5000));
  assert.deepEqual(await got.promise, { type: 0x80, payload: new Uint8Array(5000).fill(0x80) });
  raw.close();
  await server.listener.close();
});

/** Many tiny frames, a few large ones and a multi-frame array, as one turn would queue them. */
function mixedTurn(seed: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < 400; i++) {
    out.push(frame(0x80 + (i % 16), 32, (seed + i) & 0xff)); // 37 bytes, like a relayed move
    if (i % 97 === 0) out.push(frame(0xa0, 506 + (i % 3), seed & 0xff)); // 511..513 bytes
    if (i % 131 === 0) out.push(concat([frame(0xb0, 3), frame(0xb1, 4)]));
  }
  out.push(frame(0xc0, 40_000, seed & 0xff));
  return out;
}

for (
  const kind of ["node", "hybrid", ...FfiRecordCipher.available() ? ["ffi" as const] : []] as const
) {
  Deno.test(`a turn of many tiny frames is written with exactly the bytes of the frames (${kind})`, async () => {
    const plainTurn = mixedTurn(1);
    // Above one staging buffer (64 KiB) and above one record (1 MiB) of small frames.
    const longTurn = Array.from({ length: 40_000 }, (_, i) => frame(0x90, 32, i & 0xff));
    const sealedTurn = mixedTurn(2);
    const bounds = { maxQueueBytes: 4 * 1024 * 1024 };
    const server = serve({
      ...bounds,
      recordCipher: kind,
      onConnection(conn) {
        for (const f of plainTurn) conn.send(f);
        conn.send(encodeFrame(SWITCH, new Uint8Array([0, 0, 0, 7])));
        conn.startSealing({ sendKey: SERVER_KEY, receiveKey: CLIENT_KEY });
        conn.markEstablished();
        for (const f of sealedTurn) conn.send(f);
        setTimeout(() => {
          for (const f of longTurn) conn.send(f);
        }, 0);
      },
    });
    const raw = await rawConnect(server.listener);
    const reference = new SealedRecordWriter(new NodeRecordCipher(SERVER_KEY));
    const first = concat([
      ...plainTurn,
      encodeFrame(SWITCH, new Uint8Array([0, 0, 0, 7])),
      reference.seal(sealedTurn) as Uint8Array,
    ]);
    assert.deepEqual(await readExactly(raw, first.length), first);
    const second = reference.seal(longTurn) as Uint8Array;
    assert.equal(reference.counter, 3, "the long turn is two records");
    assert.deepEqual(await readExactly(raw, second.length), second);
    const connection = [...server.listener.connections][0];
    assert.equal(connection.writes, 2);
    assert.equal(connection.framesOut, plainTurn.length + 1 + sealedTurn.length + longTurn.length);
    raw.close();
    await server.listener.close();
  });
}

Deno.test("small frames count exactly against the queue bound", async () => {
  const maxQueueBytes = 10_000;
  const server = serve({ onFrame: () => {}, maxQueueBytes, closeFlushTimeoutMs: 100 });
  const raw = await rawConnect(server.listener);
  const connection = await server.next();
  const tiny = frame(0x80, 32); // 37 bytes
  let accepted = 0;
  // One turn: nothing is written yet, so the bound trips at exactly floor(10000 / 37) frames.
  while (connection.send(tiny)) {
    accepted++;
    assert.equal(connection.queuedBytes, accepted * tiny.length);
  }
  assert.equal(accepted, Math.floor(maxQueueBytes / tiny.length));
  const info = await connection.closed;
  assert.equal(info.code, ErrorCode.SlowConsumer);
  raw.close();
  await server.listener.close();
});

/** A frame to queue: through `sendFrame` (type and payload) or `send` (a caller's array). */
type SendOp =
  | { readonly via: "sendFrame"; readonly type: number; readonly payload: Uint8Array }
  | { readonly via: "send"; readonly bytes: Uint8Array };

/** Small and large frames through sendFrame, with lone and multi-frame caller arrays between. */
function mixedOps(seed: number): SendOp[] {
  const ops: SendOp[] = [];
  const viaFrame = (type: number, size: number, fill: number): SendOp => ({
    via: "sendFrame",
    type,
    payload: new Uint8Array(size).fill(fill & 0xff),
  });
  ops.push({ via: "send", bytes: frame(0x84, 3) }, viaFrame(0x85, 0, 0)); // a lone array first
  for (let i = 0; i < 400; i++) {
    ops.push(viaFrame(0x80 + (i % 16), 32, seed + i));
    if (i % 7 === 0) ops.push({ via: "send", bytes: frame(0x86, 10, seed + i) });
    if (i % 97 === 0) ops.push(viaFrame(0xa0, 506 + (i % 3), seed)); // 511..513 bytes
    if (i % 131 === 0) ops.push({ via: "send", bytes: concat([frame(0xb0, 3), frame(0xb1, 4)]) });
  }
  ops.push(viaFrame(0xc0, 40_000, seed), viaFrame(0x87, 1, seed));
  return ops;
}

function bytesOf(op: SendOp): Uint8Array {
  return op.via === "send" ? op.bytes : encodeFrame(op.type, op.payload);
}

function apply(connection: FrameConnection, op: SendOp): boolean {
  return op.via === "send" ? connection.send(op.bytes) : connection.sendFrame(op.type, op.payload);
}

for (
  const kind of ["node", "hybrid", ...FfiRecordCipher.available() ? ["ffi" as const] : []] as const
) {
  Deno.test(`sendFrame writes exactly the bytes of send(encodeFrame(...)) (${kind})`, async () => {
    const plainTurn = mixedOps(1);
    const sealedTurn = mixedOps(2);
    // Above one staging buffer (64 KiB) and above one record (1 MiB) of small frames.
    const longTurn: SendOp[] = Array.from({ length: 40_000 }, (_, i) => ({
      via: "sendFrame",
      type: 0x90,
      payload: new Uint8Array(32).fill(i & 0xff),
    }));
    const switchFrame = encodeFrame(SWITCH, new Uint8Array([0, 0, 0, 7]));
    const server = serve({
      maxQueueBytes: 4 * 1024 * 1024,
      recordCipher: kind,
      onConnection(conn) {
        for (const op of plainTurn) assert.ok(apply(conn, op));
        conn.sendFrame(SWITCH, new Uint8Array([0, 0, 0, 7]));
        conn.startSealing({ sendKey: SERVER_KEY, receiveKey: CLIENT_KEY });
        conn.markEstablished();
        for (const op of sealedTurn) assert.ok(apply(conn, op));
        setTimeout(() => {
          for (const op of longTurn) assert.ok(apply(conn, op));
        }, 0);
      },
    });
    const raw = await rawConnect(server.listener);
    const reference = new SealedRecordWriter(new NodeRecordCipher(SERVER_KEY));
    const first = concat([
      ...plainTurn.map(bytesOf),
      switchFrame,
      reference.seal(sealedTurn.map(bytesOf)) as Uint8Array,
    ]);
    assert.deepEqual(await readExactly(raw, first.length), first);
    const second = reference.seal(longTurn.map(bytesOf)) as Uint8Array;
    assert.equal(reference.counter, 3, "the long turn is two records");
    assert.deepEqual(await readExactly(raw, second.length), second);
    const connection = [...server.listener.connections][0];
    assert.equal(connection.writes, 2);
    assert.equal(connection.framesOut, plainTurn.length + 1 + sealedTurn.length + longTurn.length);
    assert.equal(connection.bytesOut, first.length + second.length);
    raw.close();
    await server.listener.close();
  });
}

Deno.test("sendFrame trips the queue bound at the same frame as send(encodeFrame(...))", async () => {
  const maxQueueBytes = 12_000;
  const server = serve({ onFrame: () => {}, maxQueueBytes, closeFlushTimeoutMs: 100 });
  const rawA = await rawConnect(server.listener);
  const viaFrame = await server.next();
  const rawB = await rawConnect(server.listener);
  const viaSend = await server.next();
  const ops = mixedOps(3).filter((op) => bytesOf(op).length < 1000); // not the 40 KB frame
  let accepted = 0;
  let expectedBytes = 0;
  // One turn: nothing is written yet, so both queues grow frame by frame until the bound.
  for (const op of ops) {
    const bytes = bytesOf(op);
    const a = apply(viaFrame, op);
    const b = viaSend.send(bytes);
    assert.equal(a, b, `frame ${accepted}`);
    if (!a) break;
    accepted++;
    expectedBytes += bytes.length;
    assert.equal(viaFrame.queuedBytes, expectedBytes);
    assert.equal(viaSend.queuedBytes, expectedBytes);
  }
  assert.ok(accepted > 100 && accepted < ops.length, `tripped after ${accepted} frames`);
  assert.ok(expectedBytes + bytesOf(ops[accepted]).length > maxQueueBytes);
  assert.equal(viaFrame.isOpen, false);
  assert.equal((await viaFrame.closed).code, ErrorCode.SlowConsumer);
  assert.equal((await viaSend.closed).code, ErrorCode.SlowConsumer);
  assert.equal(viaFrame.sendFrame(0x80, new Uint8Array(1)), false, "closed: refused");
  rawA.close();
  rawB.close();
  await server.listener.close();
});

Deno.test("sendFrame refuses a bad type and a frame above maxQueueBytes, open or closed", async () => {
  const server = serve({ onFrame: () => {}, maxQueueBytes: 100 });
  const raw = await rawConnect(server.listener);
  const connection = await server.next();
  for (const type of [-1, 256, 1.5, Number.NaN]) {
    assert.throws(() => connection.sendFrame(type, new Uint8Array(1)), RangeError);
    assert.throws(() => connection.sendFrame(type, new Uint8Array(600)), RangeError);
  }
  assert.throws(() => connection.sendFrame(0x80, new Uint8Array(96)), /above maxQueueBytes/);
  assert.throws(() => connection.sendFrame(0x80, new Uint8Array(600)), /above maxQueueBytes/);
  assert.equal(connection.queuedBytes, 0);
  assert.equal(connection.sendFrame(0x80, new Uint8Array(95)), true); // exactly 100 bytes
  await connection.close();
  assert.throws(() => connection.sendFrame(256, new Uint8Array(1)), RangeError);
  assert.equal(connection.sendFrame(0x80, new Uint8Array(1)), false);
  raw.close();
  await server.listener.close();
});

Deno.test("pauseReading: nothing is read until the pause ends, and a close ends it at once", async () => {
  const frames: number[] = [];
  // When each frame arrived and each pause began, both read on the server's side (a client-side
  // clock would start late by however long the client took to notice the first frame).
  const arrivedAt: number[] = [];
  const pausedAt: number[] = [];
  let serverSide: FrameConnection | undefined;
  const server = listenFrames({
    port: 0,
    onConnection: (conn) => {
      serverSide = conn;
      conn.start((frame) => {
        arrivedAt.push(performance.now());
        frames.push(frame.type === 0x04 ? 1 : 0); // Ping
        // Each frame pauses the reader: the next one waits for the pause.
        pausedAt.push(performance.now());
        conn.pauseReading(150);
      });
    },
  });
  const client = await connectFrames({ port: server.addr.port });
  try {
    client.send(encodePacket({ kind: "Ping", value: 1 }));
    while (frames.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    client.send(encodePacket({ kind: "Ping", value: 2 }));
    while (frames.length === 1) await new Promise((resolve) => setTimeout(resolve, 5));
    // 1 ms of slack for timer rounding.
    assert.ok(arrivedAt[1] - pausedAt[0] >= 149, "the second frame came before the pause ended");
    // A long pause, then a close: the connection ends without waiting the pause out.
    serverSide?.pauseReading(60_000);
    const closing = performance.now();
    await serverSide?.close();
    assert.ok(performance.now() - closing < 30_000, "the close waited for the pause");
    assert.deepEqual(frames, [1, 1]);
  } finally {
    await client.close();
    await server.close();
  }
});

Deno.test("an idle sealed link gives back its buffers and contexts, and seals as before after", async () => {
  // Echoes each frame back; the first one switches both sides to sealed records.
  const server = serve({
    idleTrimMs: 5,
    onFrame: (f, conn) => {
      if (!conn.sealed) conn.startSealing({ sendKey: SERVER_KEY, receiveKey: CLIENT_KEY });
      conn.send(encodeFrame(f.type, f.payload));
    },
  });
  const got: Frame[] = [];
  let wanted = 0;
  let arrived = Promise.withResolvers<void>();
  const client = await connectFrames({
    port: server.listener.addr.port,
    idleTrimMs: 5,
    onFrame: (f) => {
      got.push(copyFrame(f));
      if (got.length === wanted) arrived.resolve();
    },
  });
  const conn = await server.next();
  // A turn of small frames (staged), a large one (by reference) and a multi-frame array.
  const turn = (round: number) => [
    ...Array.from({ length: 50 }, (_, i) => frame(0x80, 20 + i, round)),
    frame(0x81, 40_000, round),
    concat([frame(0x82, 3, round), frame(0x83, 4, round)]),
  ];
  const exchange = async (round: number, first: boolean) => {
    const frames = turn(round);
    const expected = decodeAll(concat([...(first ? [frame(SWITCH, 1, round)] : []), ...frames]));
    got.length = 0;
    wanted = expected.length;
    arrived = Promise.withResolvers<void>();
    if (first) {
      client.send(frame(SWITCH, 1, round));
      client.startSealing({ sendKey: CLIENT_KEY, receiveKey: SERVER_KEY });
    }
    for (const f of frames) client.send(f, f[4] === 0x82 ? 2 : 1);
    // A close (a bug) would never deliver them all: fail then rather than hang.
    await Promise.race([arrived.promise, client.closed.then(() => assert.fail("closed"))]);
    assert.deepEqual(got, expected);
  };
  await exchange(1, true);
  for (let round = 2; round <= 3; round++) {
    const trims = [client.idleTrims, conn.idleTrims];
    await waitFor(
      "both ends trimmed",
      () => client.idleTrims > trims[0] && conn.idleTrims > trims[1],
    );
    await exchange(round, false);
  }
  await client.close();
  await server.listener.close();
});
