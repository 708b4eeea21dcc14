/**
 * The pieces behind connection slots, without servers: the pending pool's policy (a property
 * test), address keys, and raising the frame and record bounds of a live connection.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { PendingConnections } from "../shared/pending_connections.ts";
import { addressKey } from "../shared/ip_address.ts";
import { encodeFrame, FrameDecoder } from "../shared/protocol/frame.ts";
import { ErrorCode, ProtocolError } from "../shared/protocol/protocol_error.ts";
import { NodeRecordCipher } from "../shared/record_cipher_node.ts";
import { SealedRecordReader, SealedRecordWriter } from "../shared/sealed_record.ts";
import {
  type CloseInfo,
  connectFrames,
  FrameConnection,
  listenFrames,
} from "../shared/transport.ts";
import { waitUntil } from "./_raw_client.ts";

Deno.test("the pending pool never holds more than its bounds, evicts oldest first and keeps exact per-address counts", () => {
  const op = fc.oneof(
    fc.record({ kind: fc.constant("admit" as const), address: fc.integer({ min: 0, max: 4 }) }),
    fc.record({ kind: fc.constant("release" as const), pick: fc.nat() }),
  );
  fc.assert(fc.property(
    fc.integer({ min: 1, max: 6 }),
    fc.integer({ min: 1, max: 4 }),
    fc.array(op, { maxLength: 80 }),
    (maxPending, maxPerAddress, ops) => {
      const pool = new PendingConnections<number>({ maxPending, maxPerAddress });
      // The model: pending ids in admission order, with their address.
      let model: [number, string][] = [];
      let next = 0;
      for (const o of ops) {
        if (o.kind === "admit") {
          const address = `10.0.0.${o.address}`;
          const id = next++;
          const count = model.filter(([, a]) => a === address).length;
          const outcome = pool.admit(id, address);
          if (count >= maxPerAddress) {
            assert.deepEqual(outcome, { kind: "refused", reason: "per_address" });
            continue;
          }
          const evicted = model.length >= maxPending ? model[0][0] : undefined;
          assert.deepEqual(outcome, { kind: "admitted", evicted });
          if (evicted !== undefined) model = model.slice(1);
          model.push([id, address]);
        } else if (model.length > 0) {
          const [id] = model[o.pick % model.length];
          assert.equal(pool.release(id), true);
          assert.equal(pool.release(id), false);
          model = model.filter(([m]) => m !== id);
        }
        assert.equal(pool.size, model.length);
        assert.ok(pool.size <= maxPending);
        for (let a = 0; a <= 4; a++) {
          const address = `10.0.0.${a}`;
          const count = model.filter(([, m]) => m === address).length;
          assert.equal(pool.countOf(address), count);
          assert.ok(count <= maxPerAddress);
        }
      }
    },
  ));
});

Deno.test("bad pending pool bounds are refused, naming the option", () => {
  assert.throws(
    () => new PendingConnections({ maxPending: 0, maxPerAddress: 1 }),
    /maxPending must be an integer >= 1, got 0/,
  );
  assert.throws(
    () => new PendingConnections({ maxPending: 1, maxPerAddress: 1.5 }),
    /maxPerAddress/,
  );
});

Deno.test("address keys: IPv4 as is, IPv4-mapped as IPv4, IPv6 by /64", () => {
  const cases: [string, string][] = [
    ["10.1.2.3", "10.1.2.3"],
    ["::ffff:10.1.2.3", "10.1.2.3"],
    ["::FFFF:10.1.2.3", "10.1.2.3"],
    ["2001:db8:a:b:1:2:3:4", "2001:db8:a:b::/64"],
    ["2001:DB8:A:B::99", "2001:db8:a:b::/64"],
    ["2001:0db8:000a:000b::1", "2001:db8:a:b::/64"],
    ["2001:db8::", "2001:db8:0:0::/64"],
    ["fe80::1%eth0", "fe80:0:0:0::/64"],
    ["[2001:db8:1:2::5]", "2001:db8:1:2::/64"],
    ["::", "0:0:0:0::/64"],
  ];
  for (const [host, key] of cases) assert.equal(addressKey(host), key, host);
  // Two hosts of one /64 share a key; neighbouring /64s do not.
  assert.equal(addressKey("2001:db8:1:2::a"), addressKey("2001:db8:1:2:ffff::b"));
  assert.notEqual(addressKey("2001:db8:1:2::a"), addressKey("2001:db8:1:3::a"));
});

Deno.test("a decoder's raised bound applies to a frame whose header is read afterwards", () => {
  const decoder = new FrameDecoder({ maxFrameBytes: 4096 });
  const small = encodeFrame(0x80, new Uint8Array(4095));
  const big = encodeFrame(0x80, new Uint8Array(8000));
  decoder.push(small);
  decoder.push(big.subarray(0, 3)); // not a whole header yet
  const first = decoder.next();
  assert.ok(first !== undefined && !(first instanceof Error));
  assert.equal(decoder.next(), undefined);
  decoder.raiseMaxFrameBytes(65536);
  decoder.push(big.subarray(3));
  const second = decoder.next();
  assert.ok(second !== undefined && !(second instanceof Error));
  assert.equal(second.payload.length, 8000);
  // Without the raise the same frame fails from its header.
  const strict = new FrameDecoder({ maxFrameBytes: 4096 });
  strict.push(big.subarray(0, 4));
  const error = strict.next();
  assert.ok(error instanceof ProtocolError);
  assert.equal(error.errorCode, ErrorCode.FrameTooLarge);
  // A failed decoder stays failed, raised or not.
  strict.raiseMaxFrameBytes(65536);
  assert.equal(strict.next(), error);
});

Deno.test("a record reader's raised bound applies to records whose header is read afterwards", () => {
  const cipher = new NodeRecordCipher(new Uint8Array(32).fill(3));
  const writer = new SealedRecordWriter(cipher);
  const reader = new SealedRecordReader(cipher, { maxRecordBytes: 4096 + 4 + 16 });
  const small = writer.seal(encodeFrame(0x80, new Uint8Array(100))) as Uint8Array;
  const big = writer.seal(encodeFrame(0x80, new Uint8Array(9000))) as Uint8Array;
  reader.push(small);
  assert.ok(reader.next() instanceof Uint8Array);
  reader.raiseMaxRecordBytes(65536 + 4 + 16);
  assert.equal(reader.maxRecordBytes, 65556);
  reader.push(big);
  assert.equal((reader.next() as Uint8Array).length, 9005);
});

/** A listener whose connections use the pending bounds; `served` gets each accepted one. */
function pendingServer(frames: number[]) {
  const accepted = Promise.withResolvers<FrameConnection>();
  const server = listenFrames({
    port: 0,
    maxFrameBytes: 65536,
    pendingMaxFrameBytes: 4096,
    onFrame: (frame) => frames.push(frame.payload.length),
    onConnection: (connection) => accepted.resolve(connection),
  });
  return { server, accepted: accepted.promise };
}

Deno.test("a live connection refuses a 5000-byte frame before raiseReadLimits and takes it after", async () => {
  const frames: number[] = [];
  const { server, accepted } = pendingServer(frames);
  const strict = await connectFrames({ port: server.addr.port, onFrame: () => {} });
  const raised = await connectFrames({ port: server.addr.port, onFrame: () => {} });
  try {
    const strictServer = await accepted;
    assert.deepEqual(strictServer.readLimits, {
      maxFrameBytes: 4096,
      maxRecordBytes: 4116,
      raised: false,
    });
    strict.send(encodeFrame(0x80, new Uint8Array(4999)));
    const info: CloseInfo = await strictServer.closed;
    assert.equal(info.code, ErrorCode.FrameTooLarge);
    const other = () => [...server.connections].find((c) => c !== strictServer);
    await waitUntil(() => other() !== undefined, "the second connection");
    const raisedServer = other();
    assert.ok(raisedServer !== undefined);
    raisedServer.raiseReadLimits();
    raisedServer.raiseReadLimits(); // idempotent
    assert.equal(raisedServer.readLimits.maxFrameBytes, 65536);
    assert.equal(raisedServer.readLimits.maxRecordBytes, 1024 * 1024 + 16);
    raised.send(encodeFrame(0x80, new Uint8Array(4999)));
    await waitUntil(() => frames.length === 1, "the frame");
    assert.deepEqual(frames, [4999]);
  } finally {
    await strict.close();
    await raised.close();
    await server.close();
  }
});

Deno.test("a sealed live connection refuses a large record before raiseReadLimits and takes it after", async () => {
  const key = new Uint8Array(32).fill(5);
  const frames: number[] = [];
  const { server, accepted } = pendingServer(frames);
  const client = await connectFrames({ port: server.addr.port, onFrame: () => {} });
  try {
    const conn = await accepted;
    conn.startSealing({ sendKey: key, receiveKey: key });
    client.startSealing({ sendKey: key, receiveKey: key });
    // One small frame fits the pending record bound.
    client.send(encodeFrame(0x80, new Uint8Array(10)));
    await waitUntil(() => frames.length === 1, "the small frame");
    conn.raiseReadLimits();
    // A record of 20 000 bytes: past the pending bound, within the full one.
    client.send(encodeFrame(0x80, new Uint8Array(20_000)));
    await waitUntil(() => frames.length === 2, "the large frame");
    assert.deepEqual(frames, [10, 20_000]);
    assert.equal(conn.isOpen, true);
  } finally {
    await client.close();
    await server.close();
  }
});

Deno.test("a sealed pending connection refuses a record above max_pending_frame_bytes + 20", async () => {
  const key = new Uint8Array(32).fill(6);
  const { server, accepted } = pendingServer([]);
  const client = await connectFrames({ port: server.addr.port, onFrame: () => {} });
  try {
    const conn = await accepted;
    conn.startSealing({ sendKey: key, receiveKey: key });
    client.startSealing({ sendKey: key, receiveKey: key });
    client.send(encodeFrame(0x80, new Uint8Array(4200)));
    const info = await conn.closed;
    assert.equal(info.code, ErrorCode.BadFrame);
    assert.match(info.reason, /record length 4221 above max_record_bytes 4116/);
  } finally {
    await client.close();
    await server.close();
  }
});

Deno.test("pendingMaxFrameBytes above maxFrameBytes is refused", async () => {
  const server = listenFrames({ port: 0, onFrame: () => {} });
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
  try {
    assert.throws(
      () => new FrameConnection(conn, { maxFrameBytes: 1024, pendingMaxFrameBytes: 4096 }),
      /pendingMaxFrameBytes must be an integer 1..maxFrameBytes \(1024\), got 4096/,
    );
  } finally {
    conn.close();
    await server.close();
  }
});
