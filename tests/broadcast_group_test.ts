import assert from "node:assert/strict";
import fc from "fast-check";
import {
  BroadcastGroup,
  BroadcastGroupError,
  type BroadcastGroupOptions,
} from "../shared/broadcast_group.ts";
import { encodeFrame, type Frame } from "../shared/protocol/frame.ts";
import { ErrorCode } from "../shared/protocol/protocol_error.ts";
import type { RecordCipherKind } from "../shared/record_cipher.ts";
import { NodeRecordCipher } from "../shared/record_cipher_node.ts";
import { SealedRecordWriter } from "../shared/sealed_record.ts";
import {
  connectFrames,
  type ConnectFramesOptions,
  type FrameConnection,
  type FrameListener,
  listenFrames,
  type ListenFramesOptions,
  type PeerAddress,
} from "../shared/transport.ts";
import { concatBytes as concat, errorCodeOf, readExactly } from "./_bytes.ts";
import { waitFor } from "./_wait.ts";

const CLIENT_KEY = new Uint8Array(32).fill(0x11); // client → server
const SERVER_KEY = new Uint8Array(32).fill(0x22); // server → client
const SWITCH = 0x17; // the client's last plaintext frame
const BROADCAST = 0x80;
const DIRECT = 0x81;
const MARKER = 0x82;

/** Deno 2.9's default sanitizers let a pending timer pass; on, a leaked flush timer fails. */
const OPS = { sanitizeOps: true } as const;

/** A member and the client at the other end of it. */
interface Peer {
  /** The server side: the connection that is (or is not) a group member. */
  readonly member: FrameConnection;
  /** The client side, collecting what it receives. */
  readonly client: FrameConnection;
  /** Frames the client received, copied, in order. */
  readonly got: Frame[];
}

/** Listeners and their peers, closed together. */
interface Bench {
  readonly peers: Peer[];
  close(): Promise<void>;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `done` every 2 ms until it holds ({@linkcode waitFor}, with its 60 s bound). */
function waitUntil(done: () => boolean, what: string): Promise<void> {
  return waitFor(what, done, 60_000, 2);
}

function copyFrame(f: Frame): Frame {
  return { type: f.type, payload: f.payload.slice() };
}

/** A payload that names its step: `u16 step | u8 sub | padding`, `size` bytes in all (≥ 3). */
function tagged(step: number, size = 3, sub = 0): Uint8Array {
  const payload = new Uint8Array(Math.max(3, size)).fill((step + sub) & 0xff);
  payload[0] = step >> 8;
  payload[1] = step & 0xff;
  payload[2] = sub;
  return payload;
}

function portOf(addr: Deno.Addr | PeerAddress): number {
  assert.equal(addr.transport, "tcp");
  return (addr as Deno.NetAddr | PeerAddress).port;
}

/** Connects `count` collecting clients to `listener`, pairing each with its server side. */
async function connectPeers(
  listener: FrameListener,
  count: number,
  clientOptions: Omit<ConnectFramesOptions, "port" | "onFrame"> = {},
): Promise<Peer[]> {
  const peers: Peer[] = [];
  for (let i = 0; i < count; i++) {
    const got: Frame[] = [];
    const client = await connectFrames({
      ...clientOptions,
      port: listener.addr.port,
      onFrame: (f) => got.push(copyFrame(f)),
    });
    let member: FrameConnection | undefined;
    await waitUntil(() => {
      member = [...listener.connections].find((c) =>
        portOf(c.remoteAddr) === portOf(client.localAddr)
      );
      return member !== undefined;
    }, "the server side of a client");
    peers.push({ member: member as FrameConnection, client, got });
  }
  return peers;
}

/** One listener with `count` peers. */
async function bench(
  count: number,
  options: Omit<ListenFramesOptions, "port"> = {},
): Promise<Bench> {
  const listener = listenFrames({ port: 0, onFrame: () => {}, ...options });
  const peers = await connectPeers(listener, count);
  return {
    peers,
    async close() {
      await Promise.all(peers.map((p) => p.client.close()));
      await listener.close();
    },
  };
}

/** A bench of `count` peers, all of them members of one new group made with `options`. */
async function groupBench(
  count: number,
  options?: BroadcastGroupOptions,
): Promise<{ b: Bench; group: BroadcastGroup }> {
  const b = await bench(count);
  const group = new BroadcastGroup(options);
  for (const p of b.peers) group.add(p.member);
  return { b, group };
}

/** A short readable name of a frame: type, first payload bytes (the step), size. */
function label(frame: Frame): string {
  return `${frame.type.toString(16)} ${
    frame.payload.subarray(0, 3).toHex()
  } (${frame.payload.length} B)`;
}

/** Index of the first difference of two byte arrays, -1 if equal. */
function firstDifference(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

/** Asserts equal bytes, naming the first differing offset (a full diff of large arrays is slow). */
function assertBytes(got: Uint8Array, expected: Uint8Array, message = "bytes"): void {
  const at = firstDifference(got, expected);
  if (at >= 0) {
    assert.fail(`${message} differ at offset ${at} (${got.length} vs ${expected.length})`);
  }
}

/** Asserts equal frame lists: a readable diff of labels first, then every payload byte. */
function assertFrames(got: readonly Frame[], expected: readonly Frame[], message = "frames"): void {
  assert.deepEqual(got.map(label), expected.map(label), message);
  for (const [i, frame] of got.entries()) {
    assertBytes(frame.payload, expected[i].payload, `${message}: payload of frame ${i}`);
  }
}

/** Waits until every peer received `expected[i]` frames, then checks them exactly. */
async function expectFrames(peers: readonly Peer[], expected: readonly Frame[][]): Promise<void> {
  try {
    await waitUntil(
      () => peers.every((p, i) => p.got.length >= expected[i].length),
      "every client to receive its frames",
    );
  } catch (error) {
    // Show what did arrive: the comparison below fails with the difference.
    for (const [i, p] of peers.entries()) assertFrames(p.got, expected[i], `peer ${i}`);
    throw error;
  }
  for (const [i, p] of peers.entries()) assertFrames(p.got, expected[i], `peer ${i}`);
}

function f(type: number, payload: Uint8Array): Frame {
  return { type, payload };
}

// ---------------------------------------------------------------- 1. plain broadcasts

Deno.test(
  "broadcasts reach every member in order, as encodeFrame's bytes, in one write per turn",
  OPS,
  async () => {
    const listener = listenFrames({ port: 0, onFrame: () => {} });
    const raws = await Promise.all(
      [0, 1, 2].map(() => Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port })),
    );
    await waitUntil(() => listener.connections.size === 3, "three accepted connections");
    const members = [...listener.connections];
    const group = new BroadcastGroup();
    for (const m of members) assert.equal(group.add(m), true);
    assert.equal(group.size, 3);
    for (const m of members) {
      assert.equal(group.has(m), true);
      assert.equal(m.group, group);
    }

    // Sizes around the transport's staging threshold (512) and well above it.
    const sizes = [0, 1, 3, 200, 507, 508, 1000, 20_000, 4, 4];
    const encoded: Uint8Array[] = [];
    let frames = 0;
    const reused = encodeFrame(0x90, new Uint8Array(10).fill(1));
    for (const [i, size] of sizes.entries()) {
      const payload = new Uint8Array(size).fill(i + 1);
      const type = 0x40 + i;
      encoded.push(encodeFrame(type, payload));
      frames++;
      if (i % 2 === 0) group.broadcastFrame(type, payload);
      else group.broadcast(encodeFrame(type, payload));
      // The group copies: changing the caller's arrays afterwards changes nothing sent.
      payload.fill(0xee);
    }
    // An array reused by the caller between two broadcasts.
    encoded.push(reused.slice());
    group.broadcast(reused);
    reused.fill(0xff, 5);
    encoded.push(reused.slice());
    group.broadcast(reused);
    frames += 2;
    // Several frames in one call, counted as such.
    const pair = [
      encodeFrame(0x50, new Uint8Array([1, 2])),
      encodeFrame(0x51, new Uint8Array(700)),
    ];
    encoded.push(...pair);
    group.broadcast(concat(pair), undefined, 2);
    frames += 2;

    // Handed out at the end of this turn: after the code above, before any later microtask.
    for (const m of members) assert.equal(m.queuedBytes, 0);
    await Promise.resolve();
    for (const m of members) assert.ok(m.queuedBytes > 0, "handed out at the end of the turn");

    const expected = concat(encoded);
    for (const raw of raws) assertBytes(await readExactly(raw, expected.length), expected);
    for (const m of members) {
      await waitUntil(() => m.framesOut === frames, "framesOut to count the frames");
      assert.equal(m.writes, 1, "one turn of broadcasts is one write");
      assert.equal(m.bytesOut, expected.length);
    }

    // A later turn is a later write with exactly its own bytes (nothing repeated).
    const later = encodeFrame(0x60, new Uint8Array([9, 9, 9]));
    group.broadcastFrame(0x60, new Uint8Array([9, 9, 9]));
    for (const raw of raws) assertBytes(await readExactly(raw, later.length), later);
    for (const m of members) {
      await waitUntil(() => m.framesOut === frames + 1, "framesOut of the second turn");
      assert.equal(m.writes, 2);
    }
    for (const raw of raws) raw.close();
    await listener.close();
  },
);

Deno.test(
  "broadcastFrame refuses a type that is not a byte and broadcasts nothing",
  OPS,
  async () => {
    const b = await bench(1);
    const group = new BroadcastGroup();
    group.add(b.peers[0].member);
    for (const type of [-1, 256, 1.5, Number.NaN]) {
      assert.throws(() => group.broadcastFrame(type, new Uint8Array(1)), RangeError);
    }
    group.broadcastFrame(0x80, tagged(1));
    await expectFrames(b.peers, [[f(0x80, tagged(1))]]);
    await delay(10);
    assert.equal(b.peers[0].got.length, 1, "the refused frames were not half-broadcast");
    await b.close();
  },
);

// ---------------------------------------------------------------- 2. except

Deno.test(
  "a sender left out (except) gets everyone else's frames in order, not its own",
  OPS,
  async () => {
    const b = await bench(4);
    const [p0, p1, p2, outsider] = b.peers;
    const members = [p0, p1, p2];
    const group = new BroadcastGroup();
    for (const p of members) group.add(p.member);
    const expected: Frame[][] = [[], [], [], []];
    // Senders interleaved in one turn, with sizes on both sides of the staging threshold.
    const senders = [0, 0, 1, 2, 1, 0, 2, 2, 1, 0, 1, 2];
    for (const [step, sender] of senders.entries()) {
      const payload = tagged(step, step % 3 === 0 ? 900 : 5);
      group.broadcastFrame(BROADCAST, payload, members[sender].member);
      for (const i of [0, 1, 2]) if (i !== sender) expected[i].push(f(BROADCAST, payload));
    }
    // Leaving out a connection that is not a member leaves out nobody.
    group.broadcastFrame(BROADCAST, tagged(100), outsider.member);
    group.broadcast(encodeFrame(BROADCAST, tagged(101)), outsider.member);
    for (const i of [0, 1, 2]) {
      expected[i].push(
        f(BROADCAST, tagged(100)),
        f(BROADCAST, tagged(101)),
      );
    }
    await expectFrames(b.peers, expected);
    for (const [i, p] of members.entries()) {
      await waitUntil(() => p.member.framesOut === expected[i].length, "framesOut");
    }
    assert.equal(outsider.member.framesOut, 0);
    await b.close();
  },
);

// ---------------------------------------------------------------- 3. direct sends

Deno.test(
  "direct sends interleave with broadcasts exactly as per-connection queuing would",
  OPS,
  async () => {
    const { b, group } = await groupBench(3);
    const [p0, p1, p2] = b.peers;
    const A = tagged(1), B = tagged(2), C = tagged(3), D = tagged(4);
    const E = tagged(5, 2000), F = tagged(6, 3000), G = tagged(7);
    group.broadcastFrame(BROADCAST, A);
    assert.equal(p0.member.sendFrame(DIRECT, B), true);
    group.broadcast(encodeFrame(BROADCAST, C));
    assert.equal(p0.member.send(encodeFrame(DIRECT, D)), true);
    // A large direct frame (sendFrame's by-reference path) and a broadcast p1 is left out of.
    assert.equal(p1.member.sendFrame(DIRECT, E), true);
    group.broadcastFrame(BROADCAST, F, p1.member);
    assert.equal(p1.member.sendFrame(DIRECT, G), true);
    // catchUp on its own changes nothing a member receives.
    group.catchUp(p2.member);
    group.catchUp(p2.member);
    await expectFrames(b.peers, [
      [f(BROADCAST, A), f(DIRECT, B), f(BROADCAST, C), f(DIRECT, D), f(BROADCAST, F)],
      [f(BROADCAST, A), f(BROADCAST, C), f(DIRECT, E), f(DIRECT, G)],
      [f(BROADCAST, A), f(BROADCAST, C), f(BROADCAST, F)],
    ]);
    await waitUntil(() => p0.member.framesOut === 5 && p1.member.framesOut === 4, "framesOut");
    await b.close();
  },
);

// ---------------------------------------------------------------- 4. membership

Deno.test(
  "members added or deleted mid-turn get exactly what was broadcast while members",
  OPS,
  async () => {
    const b = await bench(3);
    const [p0, p1, p2] = b.peers;
    const group = new BroadcastGroup();
    assert.equal(group.add(p0.member), true);
    assert.equal(group.add(p1.member), true);
    assert.equal(group.size, 2);
    assert.equal(group.has(p2.member), false);

    group.broadcastFrame(BROADCAST, tagged(1));
    assert.equal(group.add(p2.member), true);
    assert.equal(group.add(p2.member), false, "adding a member again");
    assert.equal(group.size, 3);
    group.broadcastFrame(BROADCAST, tagged(2));
    assert.equal(group.delete(p1.member), true);
    assert.equal(group.delete(p1.member), false, "deleting a non-member");
    assert.equal(p1.member.group, undefined);
    assert.equal(group.has(p1.member), false);
    assert.equal(group.size, 2);
    group.broadcastFrame(BROADCAST, tagged(3));
    // A deleted member's direct sends are its own again.
    p1.member.sendFrame(DIRECT, tagged(4));
    // Deleted and added back in the same turn: only what comes after.
    assert.equal(group.delete(p0.member), true);
    assert.equal(group.add(p0.member), true);
    group.broadcastFrame(BROADCAST, tagged(5));
    await expectFrames(b.peers, [
      [
        f(BROADCAST, tagged(1)),
        f(BROADCAST, tagged(2)),
        f(BROADCAST, tagged(3)),
        f(BROADCAST, tagged(5)),
      ],
      [f(BROADCAST, tagged(1)), f(BROADCAST, tagged(2)), f(DIRECT, tagged(4))],
      [f(BROADCAST, tagged(2)), f(BROADCAST, tagged(3)), f(BROADCAST, tagged(5))],
    ]);
    await b.close();
  },
);

Deno.test(
  "a connection in another group cannot join, and can once it has left that group",
  OPS,
  async () => {
    const b = await bench(2);
    const [p0, p1] = b.peers;
    const first = new BroadcastGroup();
    const second = new BroadcastGroup();
    first.add(p0.member);
    first.add(p1.member);
    first.broadcastFrame(BROADCAST, tagged(1));
    assert.throws(
      () => second.add(p0.member),
      (e: unknown) => e instanceof BroadcastGroupError && e.code === "connection_in_another_group",
    );
    assert.equal(second.size, 0);
    assert.equal(first.has(p0.member), true, "a refused join leaves the first group as it was");
    assert.equal(p0.member.group, first);
    // Deleting from the other group (not a member there) changes nothing either.
    assert.equal(second.delete(p0.member), false);
    assert.equal(p0.member.group, first);

    assert.equal(first.delete(p1.member), true);
    assert.equal(second.add(p1.member), true);
    assert.equal(p1.member.group, second);
    second.broadcastFrame(BROADCAST, tagged(2));
    first.broadcastFrame(BROADCAST, tagged(3));
    await expectFrames(b.peers, [
      [f(BROADCAST, tagged(1)), f(BROADCAST, tagged(3))],
      [f(BROADCAST, tagged(1)), f(BROADCAST, tagged(2))],
    ]);
    await b.close();
  },
);

// ---------------------------------------------------------------- 5. closing members

Deno.test(
  "a member whose client closes leaves the group; the others get everything",
  OPS,
  async () => {
    const { b, group } = await groupBench(3);
    const [p0, p1, p2] = b.peers;
    group.broadcastFrame(BROADCAST, tagged(1));
    await expectFrames(b.peers, [[f(BROADCAST, tagged(1))], [f(BROADCAST, tagged(1))], [
      f(BROADCAST, tagged(1)),
    ]]);
    await p2.client.close();
    assert.equal((await p2.member.closed).by, "remote");
    group.broadcastFrame(BROADCAST, tagged(2));
    group.broadcastFrame(BROADCAST, tagged(3), p0.member);
    await waitUntil(() => !group.has(p2.member), "the closed member to leave");
    assert.equal(group.size, 2);
    assert.equal(p2.member.group, undefined);
    await expectFrames([p0, p1], [
      [f(BROADCAST, tagged(1)), f(BROADCAST, tagged(2))],
      [f(BROADCAST, tagged(1)), f(BROADCAST, tagged(2)), f(BROADCAST, tagged(3))],
    ]);
    await b.close();
  },
);

Deno.test(
  "a member the server closes mid-turn gets what came before, then its Error frame",
  OPS,
  async () => {
    const { b, group } = await groupBench(3);
    const [p0, p1, p2] = b.peers;
    const clientClosed = p1.client.closed;
    group.broadcastFrame(BROADCAST, tagged(1));
    group.broadcastFrame(BROADCAST, tagged(2, 1000));
    const closing = p1.member.close({ code: ErrorCode.Internal, message: "bye" });
    group.broadcastFrame(BROADCAST, tagged(3));
    // A member closed without a reason gets what came before, then the socket closes.
    group.broadcastFrame(BROADCAST, tagged(4));
    const closingQuietly = p2.member.close();
    group.broadcastFrame(BROADCAST, tagged(5));
    assert.equal(p1.member.sendFrame(DIRECT, tagged(6)), false, "closing refuses direct sends");
    const info = await closing;
    assert.equal(info.by, "local");
    assert.equal((await clientClosed).by, "remote");
    await closingQuietly;
    await p2.client.closed;
    const all = [1, 2, 3, 4, 5].map((n) => f(BROADCAST, tagged(n, n === 2 ? 1000 : 3)));
    assertFrames(p1.got.slice(0, 2), all.slice(0, 2));
    assert.equal(p1.got.length, 3);
    assert.equal(errorCodeOf(p1.got[2]), ErrorCode.Internal);
    assertFrames(p2.got, all.slice(0, 4));
    await expectFrames([p0], [all]);
    await waitUntil(() => group.size === 1, "the closed members to leave");
    assert.equal(group.has(p0.member), true);
    // The group goes on serving the one left.
    group.broadcastFrame(BROADCAST, tagged(7));
    await expectFrames([p0], [[...all, f(BROADCAST, tagged(7))]]);
    await b.close();
  },
);

Deno.test(
  "a member whose queue bound is below a turn's share is closed as a slow consumer",
  OPS,
  async () => {
    const fast = listenFrames({ port: 0, onFrame: () => {} });
    const slow = listenFrames({ port: 0, onFrame: () => {}, maxQueueBytes: 4096 });
    const [p0, p1] = await connectPeers(fast, 2);
    const [ps] = await connectPeers(slow, 1);
    const slowClosed = ps.client.closed;
    const group = new BroadcastGroup();
    for (const p of [p0, ps, p1]) group.add(p.member);
    // One small turn fits the slow member's bound.
    group.broadcastFrame(BROADCAST, tagged(0));
    await expectFrames([p0, ps, p1], [[f(BROADCAST, tagged(0))], [f(BROADCAST, tagged(0))], [
      f(BROADCAST, tagged(0)),
    ]]);
    // 3 × 2005 bytes in one turn: above 4096 as one share, though each frame fits.
    const big = [1, 2, 3].map((n) => f(BROADCAST, tagged(n, 2000)));
    for (const frame of big) group.broadcastFrame(frame.type, frame.payload);
    await waitUntil(() => !group.has(ps.member), "the slow member to leave");
    assert.equal(group.size, 2);
    const info = await ps.member.closed;
    assert.equal(info.code, ErrorCode.SlowConsumer);
    assert.equal((await slowClosed).by, "remote");
    const last = ps.got.at(-1) as Frame;
    assert.equal(errorCodeOf(last), ErrorCode.SlowConsumer);
    const before = ps.got.slice(0, -1);
    assertFrames(before, [f(BROADCAST, tagged(0)), ...big].slice(0, before.length));
    // The others get everything, that turn and the next.
    group.broadcastFrame(BROADCAST, tagged(4));
    const all = [f(BROADCAST, tagged(0)), ...big, f(BROADCAST, tagged(4))];
    await expectFrames([p0, p1], [all, all]);
    await Promise.all([p0, p1, ps].map((p) => p.client.close()));
    await Promise.all([fast.close(), slow.close()]);
  },
);

Deno.test(
  "a member whose queue overflows on a direct send after its share is closed and leaves",
  OPS,
  async () => {
    const fast = listenFrames({ port: 0, onFrame: () => {} });
    const slow = listenFrames({ port: 0, onFrame: () => {}, maxQueueBytes: 4096 });
    const [p0] = await connectPeers(fast, 1);
    const [ps] = await connectPeers(slow, 1);
    const group = new BroadcastGroup();
    group.add(p0.member);
    group.add(ps.member);
    group.broadcastFrame(BROADCAST, tagged(1, 3000));
    // The share (3005 bytes) goes first; 3005 more passes the 4096 bound.
    assert.equal(ps.member.sendFrame(DIRECT, tagged(2, 3000)), false);
    group.broadcastFrame(BROADCAST, tagged(3));
    assert.equal((await ps.member.closed).code, ErrorCode.SlowConsumer);
    await ps.client.closed;
    assert.equal(errorCodeOf(ps.got.at(-1) as Frame), ErrorCode.SlowConsumer);
    await waitUntil(() => !group.has(ps.member), "the slow member to leave");
    group.broadcastFrame(BROADCAST, tagged(4));
    await expectFrames([p0], [
      [f(BROADCAST, tagged(1, 3000)), f(BROADCAST, tagged(3)), f(BROADCAST, tagged(4))],
    ]);
    assert.equal(group.size, 1);
    await p0.client.close();
    await Promise.all([fast.close(), slow.close()]);
  },
);

// ---------------------------------------------------------------- model of per-connection queuing

/** One step of a program run against a group in one synchronous turn. */
type Step =
  | {
    readonly kind: "broadcast";
    readonly size: number;
    readonly except: number | undefined;
    readonly as: "frame" | "bytes" | "pair";
  }
  | {
    readonly kind: "direct";
    readonly peer: number;
    readonly size: number;
    readonly as: "frame" | "bytes";
  }
  | { readonly kind: "add"; readonly peer: number }
  | { readonly kind: "delete"; readonly peer: number }
  | { readonly kind: "flush" }
  | { readonly kind: "catchUp"; readonly peer: number };

/**
 * Runs `steps` on `group` synchronously and returns what per-connection queuing at call time
 * would deliver to each peer: broadcasts to the current members but `except`, direct frames to
 * their connection.
 */
function runProgram(
  group: BroadcastGroup,
  peers: readonly Peer[],
  steps: readonly Step[],
): Frame[][] {
  const expected: Frame[][] = peers.map(() => []);
  const inGroup = new Set(peers.flatMap((p, i) => group.has(p.member) ? [i] : []));
  for (const [n, step] of steps.entries()) {
    switch (step.kind) {
      case "broadcast": {
        const frames = step.as === "pair"
          ? [f(BROADCAST, tagged(n, step.size, 0)), f(BROADCAST, tagged(n, 3, 1))]
          : [f(BROADCAST, tagged(n, step.size))];
        const except = step.except === undefined ? undefined : peers[step.except].member;
        if (step.as === "frame") group.broadcastFrame(BROADCAST, frames[0].payload, except);
        else {
          const bytes = concat(frames.map((x) => encodeFrame(x.type, x.payload)));
          group.broadcast(bytes, except, frames.length);
        }
        for (const i of inGroup) if (i !== step.except) expected[i].push(...frames);
        break;
      }
      case "direct": {
        const payload = tagged(n, step.size);
        const member = peers[step.peer].member;
        const ok = step.as === "frame"
          ? member.sendFrame(DIRECT, payload)
          : member.send(encodeFrame(DIRECT, payload));
        assert.equal(ok, true);
        expected[step.peer].push(f(DIRECT, payload));
        break;
      }
      case "add":
        assert.equal(group.add(peers[step.peer].member), !inGroup.has(step.peer));
        inGroup.add(step.peer);
        break;
      case "delete":
        assert.equal(group.delete(peers[step.peer].member), inGroup.has(step.peer));
        inGroup.delete(step.peer);
        break;
      case "flush":
        group.flush();
        break;
      case "catchUp":
        group.catchUp(peers[step.peer].member);
        break;
    }
    assert.equal(group.size, inGroup.size);
  }
  return expected;
}

// ---------------------------------------------------------------- 6. large turns

Deno.test("a turn of broadcasts well over 256 KiB arrives complete and in order", OPS, async () => {
  const { b, group } = await groupBench(3);
  const steps: Step[] = [];
  for (let n = 0; n < 600; n++) {
    steps.push({
      kind: "broadcast",
      size: 1024,
      except: n % 7 === 0 ? n % 3 : undefined,
      as: "frame",
    });
    if (n % 100 === 50) steps.push({ kind: "direct", peer: n % 3, size: 40, as: "frame" });
  }
  // Frames far larger than the first turn buffer, after it has grown.
  steps.push({ kind: "broadcast", size: 60_000, except: undefined, as: "bytes" });
  steps.push({ kind: "broadcast", size: 60_000, except: 1, as: "frame" });
  const expected = runProgram(group, b.peers, steps);
  await expectFrames(b.peers, expected);
  for (const [i, p] of b.peers.entries()) {
    await waitUntil(() => p.member.framesOut === expected[i].length, "framesOut");
  }
  await b.close();
});

Deno.test(
  "a single broadcast frame larger than the turn buffer bound arrives whole",
  OPS,
  async () => {
    const listener = listenFrames({ port: 0, onFrame: () => {}, maxQueueBytes: 4 * 1024 * 1024 });
    const peers = await connectPeers(listener, 2, { maxFrameBytes: 1024 * 1024 });
    const group = new BroadcastGroup();
    for (const p of peers) group.add(p.member);
    const expected = runProgram(group, peers, [
      { kind: "broadcast", size: 100, except: undefined, as: "frame" },
      { kind: "broadcast", size: 400 * 1024, except: undefined, as: "frame" },
      { kind: "broadcast", size: 300 * 1024, except: 0, as: "bytes" },
      { kind: "broadcast", size: 100, except: undefined, as: "frame" },
    ]);
    await expectFrames(peers, expected);
    await Promise.all(peers.map((p) => p.client.close()));
    await listener.close();
  },
);

Deno.test(
  "a relay that broadcasts each received frame to all but its sender keeps each sender's order",
  OPS,
  async () => {
    const group = new BroadcastGroup();
    // The payload is a view valid only during the handler: the group copies it.
    const listener = listenFrames({
      port: 0,
      onFrame: (frame, conn) => group.broadcastFrame(frame.type, frame.payload, conn),
    });
    const peers = await connectPeers(listener, 3);
    for (const p of peers) group.add(p.member);
    const perSender = 50;
    for (const [i, p] of peers.entries()) {
      for (let n = 0; n < perSender; n++) p.client.sendFrame(0x90 + i, tagged(n, n % 2 ? 600 : 4));
    }
    await waitUntil(
      () => peers.every((p) => p.got.length === 2 * perSender),
      "every client to receive the others' frames",
    );
    for (const [i, p] of peers.entries()) {
      for (const [j] of peers.entries()) {
        const from = p.got.filter((x) => x.type === 0x90 + j);
        if (i === j) assert.equal(from.length, 0, "nobody gets its own frames back");
        else {
          const sent = Array.from(
            { length: perSender },
            (_, n) => f(0x90 + j, tagged(n, n % 2 ? 600 : 4)),
          );
          assertFrames(from, sent, `peer ${i} from ${j}`);
        }
      }
    }
    await Promise.all(peers.map((p) => p.client.close()));
    await listener.close();
  },
);

// ---------------------------------------------------------------- 7. sealed connections

for (const kind of ["node", "webcrypto", "hybrid"] as const satisfies RecordCipherKind[]) {
  Deno.test(`group broadcasts arrive intact on sealed connections (${kind})`, OPS, async () => {
    const listener = listenFrames({
      port: 0,
      recordCipher: kind,
      onFrame(frame, conn) {
        if (frame.type === SWITCH) {
          conn.startSealing({ sendKey: SERVER_KEY, receiveKey: CLIENT_KEY });
          conn.markEstablished();
        }
      },
    });
    const peers = await connectPeers(listener, 3);
    for (const p of peers) {
      p.client.send(encodeFrame(SWITCH, new Uint8Array(4)));
      p.client.startSealing({ sendKey: CLIENT_KEY, receiveKey: SERVER_KEY });
    }
    await waitUntil(() => peers.every((p) => p.member.sealed), "the server sides to seal");
    const group = new BroadcastGroup();
    for (const p of peers) group.add(p.member);
    const steps: Step[] = [];
    for (let n = 0; n < 300; n++) {
      steps.push({
        kind: "broadcast",
        size: n % 10 === 0 ? 1500 : 1024,
        except: n % 5 === 0 ? n % 3 : undefined,
        as: n % 2 === 0 ? "frame" : "bytes",
      });
      if (n % 60 === 0) steps.push({ kind: "direct", peer: n % 3, size: 10, as: "frame" });
    }
    const expected = runProgram(group, peers, steps);
    await expectFrames(peers, expected);
    // A second turn on the same records counters.
    const more = runProgram(group, peers, [{ kind: "broadcast", size: 8, except: 0, as: "pair" }]);
    await expectFrames(peers, expected.map((e, i) => [...e, ...more[i]]));
    for (const p of peers) assert.equal(p.client.isOpen, true);
    await Promise.all(peers.map((p) => p.client.close()));
    await listener.close();
  });
}

// ---------------------------------------------------------------- 8. flushIntervalMs

Deno.test("the constructor refuses a negative, NaN or infinite flushIntervalMs", OPS, () => {
  for (const flushIntervalMs of [-1, -0.001, Number.NaN, Infinity, -Infinity]) {
    assert.throws(() => new BroadcastGroup({ flushIntervalMs }), RangeError, `${flushIntervalMs}`);
  }
  assert.equal(new BroadcastGroup().size, 0);
  assert.equal(new BroadcastGroup({ flushIntervalMs: 0 }).size, 0);
  assert.equal(new BroadcastGroup({ flushIntervalMs: 2.5 }).size, 0);
  // Flushing a group with nothing broadcast does nothing (and starts no timer).
  new BroadcastGroup({ flushIntervalMs: 30 }).flush();
});

Deno.test(
  "with flushIntervalMs 30, broadcasts a few ms apart are all delivered, in order",
  OPS,
  async () => {
    const { b, group } = await groupBench(2, { flushIntervalMs: 30 });
    const expected: Frame[] = [];
    for (let n = 0; n < 4; n++) {
      group.broadcastFrame(BROADCAST, tagged(n), b.peers[1].member);
      group.broadcastFrame(BROADCAST, tagged(n, 3, 1));
      expected.push(f(BROADCAST, tagged(n)), f(BROADCAST, tagged(n, 3, 1)));
      await delay(5);
    }
    await expectFrames(b.peers, [expected, expected.filter((x) => x.payload[2] === 1)]);
    await b.close();
  },
);

Deno.test(
  "senders left out of their own broadcasts get one write per hand-out, like the rest",
  OPS,
  async () => { // Long enough that the six sends below fall in one interval even on a busy machine.
    const { b, group } = await groupBench(3, { flushIntervalMs: 1000 });
    // A first hand-out starts the interval: the broadcasts below wait for its end.
    group.broadcastFrame(BROADCAST, tagged(9));
    await expectFrames(b.peers, b.peers.map(() => [f(BROADCAST, tagged(9))]));
    await waitUntil(() => b.peers.every((p) => p.member.queuedBytes === 0), "writes");
    const before = b.peers.map((p) => p.member.writes);
    // Each member sends twice, each from its own task (as frames arrive), leaving itself out.
    for (let n = 0; n < 6; n++) {
      group.broadcastFrame(BROADCAST, tagged(n), b.peers[n % 3].member);
      await delay(1);
    }
    const expected = b.peers.map((_, i) => [
      f(BROADCAST, tagged(9)),
      ...[0, 1, 2, 3, 4, 5].filter((n) => n % 3 !== i).map((n) => f(BROADCAST, tagged(n))),
    ]);
    await expectFrames(b.peers, expected);
    await waitUntil(() => b.peers.every((p) => p.member.queuedBytes === 0), "writes");
    assert.deepEqual(b.peers.map((p, i) => p.member.writes - before[i]), [1, 1, 1]);
    await b.close();
  },
);

Deno.test(
  "a fractional flushIntervalMs is never cut short: hand-outs stay at least that far apart",
  OPS,
  async () => {
    const b = await bench(1);
    const member = b.peers[0].member;
    const group = new BroadcastGroup({ flushIntervalMs: 2.5 });
    group.add(member);
    // Records when the group hands the member its share (timers truncate 2.4 to 2 ms).
    const handOuts: number[] = [];
    const send = member.send.bind(member);
    // One hand-out may be two sends in the same task (the share wraps the turn buffer): mark
    // the first send of each task only.
    let marked = false;
    member.send = (bytes: Uint8Array, frames?: number) => {
      if (!marked) {
        marked = true;
        handOuts.push(performance.now());
        queueMicrotask(() => marked = false);
      }
      return send(bytes, frames);
    };
    const until = performance.now() + 60;
    for (let n = 0; performance.now() < until; n++) {
      group.broadcastFrame(BROADCAST, tagged(n));
      await delay(0);
    }
    group.flush();
    assert.ok(handOuts.length >= 5, `only ${handOuts.length} hand-outs`);
    // The last one is the explicit flush() above, which may come at any time.
    for (let i = 1; i < handOuts.length - 1; i++) {
      const gap = handOuts[i] - handOuts[i - 1];
      assert.ok(gap >= 2.45, `hand-outs ${i - 1} and ${i} only ${gap.toFixed(2)} ms apart`);
    }
    await b.close();
  },
);

Deno.test(
  "flush hands a delayed turn out at once and cancels its timer; direct sends never wait",
  OPS,
  async () => {
    const b = await bench(2);
    const [p0, p1] = b.peers;
    // An interval far above the test's length: only flush() or a direct send can deliver.
    const group = new BroadcastGroup({ flushIntervalMs: 60_000 });
    group.add(p0.member);
    group.add(p1.member);
    // The first broadcast after a quiet period goes out at the end of its turn.
    group.broadcastFrame(BROADCAST, tagged(1));
    await expectFrames(b.peers, [[f(BROADCAST, tagged(1))], [f(BROADCAST, tagged(1))]]);
    await waitUntil(() => p0.member.queuedBytes === 0 && p1.member.queuedBytes === 0, "writes");

    // The next one waits for the interval (a timer is now pending).
    group.broadcastFrame(BROADCAST, tagged(2));
    await delay(20);
    assert.equal(p0.member.queuedBytes + p1.member.queuedBytes, 0);
    // A direct send to p0 takes p0's share first, without waiting.
    p0.member.sendFrame(DIRECT, tagged(3));
    await expectFrames([p0], [[
      f(BROADCAST, tagged(1)),
      f(BROADCAST, tagged(2)),
      f(DIRECT, tagged(3)),
    ]]);
    assert.equal(p1.got.length, 1, "p1's share still waits");
    assert.equal(p1.member.queuedBytes, 0);
    // flush() queues p1's share synchronously, and cancels the timer (else the sanitizers fail).
    group.flush();
    assert.ok(p1.member.queuedBytes > 0);
    await expectFrames(b.peers, [
      [f(BROADCAST, tagged(1)), f(BROADCAST, tagged(2)), f(DIRECT, tagged(3))],
      [f(BROADCAST, tagged(1)), f(BROADCAST, tagged(2))],
    ]);
    // Again, with the delayed turn ended by delete instead: the timer remains until flush().
    group.broadcastFrame(BROADCAST, tagged(4));
    assert.equal(group.delete(p1.member), true);
    group.flush();
    await expectFrames(b.peers, [
      [
        f(BROADCAST, tagged(1)),
        f(BROADCAST, tagged(2)),
        f(DIRECT, tagged(3)),
        f(BROADCAST, tagged(4)),
      ],
      [f(BROADCAST, tagged(1)), f(BROADCAST, tagged(2)), f(BROADCAST, tagged(4))],
    ]);
    await b.close();
  },
);

Deno.test(
  "flushMsPerMember scales the wait with the group: none for a tiny one, the cap for a big one",
  OPS,
  async () => {
    for (const perMember of [-1, Number.NaN]) {
      assert.throws(() => new BroadcastGroup({ flushMsPerMember: perMember }), RangeError);
    }
    const b = await bench(2);
    const [p0, p1] = b.peers;
    // 2 members × 0 ms: no wait at all, though the cap is a minute.
    const prompt = new BroadcastGroup({ flushIntervalMs: 60_000, flushMsPerMember: 0 });
    prompt.add(p0.member);
    prompt.add(p1.member);
    for (const n of [1, 2, 3]) {
      prompt.broadcastFrame(BROADCAST, tagged(n));
      await waitUntil(() => p1.got.length === n, `broadcast ${n} without a flush()`);
    }
    prompt.delete(p0.member);
    prompt.delete(p1.member);
    // 2 members × 30 s = 60 s, the cap: the second broadcast waits for flush().
    const slow = new BroadcastGroup({ flushIntervalMs: 60_000, flushMsPerMember: 30_000 });
    slow.add(p0.member);
    slow.add(p1.member);
    slow.broadcastFrame(BROADCAST, tagged(4));
    await waitUntil(() => p1.got.length === 4, "the first broadcast after a quiet period");
    slow.broadcastFrame(BROADCAST, tagged(5));
    await delay(20);
    assert.equal(p1.got.length, 4, "the second one waits");
    slow.flush();
    await waitUntil(() => p1.got.length === 5, "flush()");
    await b.close();
  },
);

// ---------------------------------------------------------------- 9. property

Deno.test(
  "any program of broadcasts, direct sends and membership changes in one turn delivers what per-connection queuing would",
  OPS,
  async () => {
    const b = await bench(4, { maxQueueBytes: 16 * 1024 * 1024 });
    const peers = b.peers;
    const peer = fc.integer({ min: 0, max: peers.length - 1 });
    // Mostly small frames (both sides of the 512-byte staging threshold), sometimes near the
    // 64 KiB frame bound so a turn passes the 256 KiB turn buffer.
    const size = fc.oneof(
      { arbitrary: fc.integer({ min: 3, max: 700 }), weight: 9 },
      { arbitrary: fc.constant(60_000), weight: 1 },
    );
    const step: fc.Arbitrary<Step> = fc.oneof(
      {
        arbitrary: fc.record({
          kind: fc.constant("broadcast" as const),
          size,
          except: fc.option(peer, { nil: undefined }),
          as: fc.constantFrom("frame" as const, "bytes" as const, "pair" as const),
        }),
        weight: 6,
      },
      {
        arbitrary: fc.record({
          kind: fc.constant("direct" as const),
          peer,
          size,
          as: fc.constantFrom("frame" as const, "bytes" as const),
        }),
        weight: 3,
      },
      { arbitrary: fc.record({ kind: fc.constant("add" as const), peer }), weight: 2 },
      { arbitrary: fc.record({ kind: fc.constant("delete" as const), peer }), weight: 2 },
      { arbitrary: fc.record({ kind: fc.constant("flush" as const) }), weight: 1 },
      { arbitrary: fc.record({ kind: fc.constant("catchUp" as const), peer }), weight: 1 },
    );
    let run = 0;
    let previous: BroadcastGroup | undefined;
    await fc.assert(
      fc.asyncProperty(
        fc.subarray([0, 1, 2, 3]),
        fc.array(step, { minLength: 1, maxLength: 40 }),
        async (initial, steps) => {
          run++;
          // Start clean, whatever a failed (shrinking) run left: no membership, nothing in flight.
          if (previous !== undefined) { for (const p of peers) previous.delete(p.member); }
          for (const p of peers) p.member.sendFrame(MARKER, tagged(run));
          await waitUntil(
            () =>
              peers.every((p) =>
                p.got.at(-1)?.type === MARKER && p.got.at(-1)?.payload[1] === (run & 0xff)
              ),
            "the start markers",
          );
          for (const p of peers) p.got.length = 0;

          const group = new BroadcastGroup();
          previous = group;
          for (const i of initial) group.add(peers[i].member);
          const expected = runProgram(group, peers, steps);
          // The group's own end-of-turn hand-out, then leave and mark the end.
          await delay(0);
          for (const p of peers) group.delete(p.member);
          for (const p of peers) p.member.sendFrame(MARKER, tagged(run, 3, 1));
          await waitUntil(
            () => peers.every((p) => p.got.at(-1)?.type === MARKER),
            "the end markers",
          );
          for (const [i, p] of peers.entries()) {
            assertFrames(p.got.slice(0, -1), expected[i], `peer ${i}`);
          }
        },
      ),
      { numRuns: 30 },
    );
    // Every frame handed to a connection was counted once in framesOut.
    await waitUntil(
      () => peers.every((p) => p.member.framesOut === p.client.framesIn),
      "framesOut to match what the clients received",
    );
    await b.close();
  },
);

// ---------------------------------------------------------------- sealing switch

Deno.test(
  "a frame broadcast before startSealingWriter goes out in plaintext",
  OPS,
  async () => {
    // Per-connection queuing at call time queues A before the switch (plaintext, as
    // startSealingWriter documents for frames queued before it) and B after it (sealed): the
    // switch takes the member's share first, as send/sendFrame/close do.
    const listener = listenFrames({ port: 0, onFrame: () => {}, recordCipher: "node" });
    const raw = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
    await waitUntil(() => listener.connections.size === 1, "the accepted connection");
    const [member] = [...listener.connections];
    const group = new BroadcastGroup();
    group.add(member);
    const a = encodeFrame(BROADCAST, tagged(1));
    const b = encodeFrame(BROADCAST, tagged(2));
    group.broadcast(a);
    member.startSealingWriter(SERVER_KEY);
    group.broadcast(b);
    const record = new SealedRecordWriter(new NodeRecordCipher(SERVER_KEY)).seal([b]);
    assert.ok(record instanceof Uint8Array);
    const expected = concat([a, record]);
    const got = await readExactly(raw, expected.length);
    raw.close();
    await listener.close();
    assertBytes(got.subarray(0, a.length), a, "the frame broadcast before the switch");
    assertBytes(got, expected);
  },
);
