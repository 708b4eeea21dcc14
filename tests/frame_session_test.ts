/**
 * The runtime-free core of a framed connection (shared/frame_session.ts) driven without
 * sockets: an in-memory ByteChannel records what the session hands it to write and feeds it
 * bytes, so framing, per-turn batching, the seal switch and the queue bound are checked on
 * their own.
 */

import assert from "node:assert/strict";
import { type ChannelSink, FrameSession } from "../shared/frame_session.ts";
import { framesOf, MemoryChannel } from "./_memory_channel.ts";
import { encodeFrame } from "../shared/protocol/frame.ts";
import { ErrorCode } from "../shared/protocol/protocol_error.ts";
import { createRecordCipher } from "../shared/create_record_cipher.ts";
import { SealedRecordReader, SealedRecordWriter } from "../shared/sealed_record.ts";

const quiet = { handshakeTimeoutMs: 0, idleTimeoutMs: 0, closeFlushTimeoutMs: 10 };

const frames = framesOf;

Deno.test("frame session: frames split across chunks arrive whole and in order", async () => {
  const channel = new MemoryChannel();
  const got: number[] = [];
  const session = new FrameSession(channel, { ...quiet, onFrame: (f) => got.push(f.payload[0]) });
  const bytes = new Uint8Array([
    ...encodeFrame(0x80, new Uint8Array([1])),
    ...encodeFrame(0x80, new Uint8Array([2])),
  ]);
  const sink = channel.sink as ChannelSink;
  for (let i = 0; i < bytes.length; i += 3) await sink.receive(bytes.subarray(i, i + 3));
  assert.deepEqual(got, [1, 2]);
  assert.equal(session.framesIn, 2);
  assert.equal(session.bytesIn, bytes.length);
  await session.close();
});

Deno.test("frame session: everything sent in one turn is one write", async () => {
  const channel = new MemoryChannel();
  const session = new FrameSession(channel, quiet);
  for (let i = 0; i < 100; i++) session.sendFrame(0x80, new Uint8Array([i]));
  session.send(encodeFrame(0x81, new Uint8Array(600)));
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(channel.writes.length, 1);
  const out = frames(channel.writes[0]);
  assert.equal(out.length, 101);
  assert.deepEqual(out.slice(0, 100).map((f) => f.payload[0]), [...Array(100).keys()]);
  assert.equal(out[100].type, 0x81);
  assert.equal(session.framesOut, 101);
  assert.equal(session.writes, 1);
  await session.close();
});

Deno.test("frame session: after the seal switch a turn is one record both ways", async () => {
  const key = new Uint8Array(32).fill(7);
  const channel = new MemoryChannel();
  const got: number[] = [];
  const session = new FrameSession(channel, {
    ...quiet,
    onFrame: (f) => got.push(f.payload[0]),
  });
  session.sendFrame(0x80, new Uint8Array([1])); // plaintext, queued before the switch
  session.startSealing({ sendKey: key, receiveKey: key });
  session.sendFrame(0x80, new Uint8Array([2]));
  session.sendFrame(0x80, new Uint8Array([3]));
  while (channel.writes.length === 0) await new Promise((resolve) => setTimeout(resolve, 1));
  const written = channel.writes[0];
  const plain = encodeFrame(0x80, new Uint8Array([1]));
  assert.deepEqual(written.subarray(0, plain.length), plain);
  const reader = new SealedRecordReader(await createRecordCipher(key, { prefer: "webcrypto" }));
  reader.push(written.subarray(plain.length));
  const opened = await reader.next();
  assert.ok(opened instanceof Uint8Array);
  assert.deepEqual(frames(opened).map((f) => f.payload[0]), [2, 3]);
  assert.equal(reader.bufferedBytes, 0);

  // And the other way: a record fed to the session comes out as its frames.
  const writer = new SealedRecordWriter(await createRecordCipher(key, { prefer: "webcrypto" }));
  const record = await writer.seal([
    encodeFrame(0x80, new Uint8Array([9])),
    encodeFrame(0x80, new Uint8Array([10])),
  ]);
  await (channel.sink as ChannelSink).receive(record);
  assert.deepEqual(got, [9, 10]);
  await session.close();
});

Deno.test("frame session: a peer that does not read is dropped at the queue bound", async () => {
  const channel = new MemoryChannel();
  channel.hold = true;
  const session = new FrameSession(channel, { ...quiet, maxQueueBytes: 4096 });
  let accepted = 0;
  for (let i = 0; i < 1000 && session.send(encodeFrame(0x80, new Uint8Array(1000))); i++) {
    accepted++;
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
  assert.ok(accepted < 10, `accepted ${accepted}`);
  const info = await session.closed;
  assert.equal(info.code, ErrorCode.SlowConsumer);
  assert.equal(channel.closedWith?.code, ErrorCode.SlowConsumer);
});

Deno.test("frame session: a channel overflowing its own buffer closes with SlowConsumer", async () => {
  const channel = new MemoryChannel();
  channel.overflow = true;
  const session = new FrameSession(channel, quiet);
  session.sendFrame(0x80, new Uint8Array([1]));
  const info = await session.closed;
  assert.equal(info.code, ErrorCode.SlowConsumer);
  assert.equal(info.reason, "buffer above bound");
});

Deno.test("frame session: a transport rule broken by the peer closes with its code", async () => {
  const channel = new MemoryChannel();
  const session = new FrameSession(channel, { ...quiet, onFrame: () => {} });
  (channel.sink as ChannelSink).violation(ErrorCode.BadFrame, "text message");
  const info = await session.closed;
  assert.deepEqual(info, { reason: "text message", code: ErrorCode.BadFrame, by: "error" });
  // The Error frame was still handed to the channel before it closed.
  assert.equal(frames(channel.writes[0])[0].type, 0x03);
});

Deno.test("frame session: onWritten reports how long each write's oldest bytes waited, queue included", async () => {
  // A channel whose first write completes only when released (a peer that reads late).
  const channel = new MemoryChannel();
  let release = (): void => {};
  const record = channel.write.bind(channel);
  channel.write = (bytes: Uint8Array) => {
    void record(bytes); // recorded, and resolved at once: the completion given here is ours
    const done = Promise.withResolvers<number>();
    release = () => done.resolve(bytes.length);
    channel.write = record;
    return done.promise;
  };
  const waits: number[] = [];
  const session = new FrameSession(channel, { ...quiet, onWritten: (ms) => waits.push(ms) });
  session.sendFrame(0x80, new Uint8Array([1]));
  const firstQueuedBy = performance.now();
  await new Promise((resolve) => setTimeout(resolve, 0)); // the first write is in flight
  session.sendFrame(0x80, new Uint8Array([2])); // waits behind it
  const secondQueuedBy = performance.now();
  await new Promise((resolve) => setTimeout(resolve, 20));
  const releasedAt = performance.now();
  release();
  for (let turns = 0; waits.length < 2 && turns < 1000; turns++) {
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
  assert.equal(waits.length, 2);
  assert.ok(waits[0] >= releasedAt - firstQueuedBy, `${waits[0]}`);
  assert.ok(waits[1] >= releasedAt - secondQueuedBy, `${waits[1]}`);
  assert.equal(session.writes, 2);
  await session.close();
});
