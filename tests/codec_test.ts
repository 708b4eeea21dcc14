import assert from "node:assert/strict";
import fc from "fast-check";
import {
  decodePacket,
  encodeMoveBatches,
  encodePacket,
  encodePluginFrame,
} from "../shared/protocol/codec.ts";
import { encodeFrame, type Frame, FrameDecoder } from "../shared/protocol/frame.ts";
import type { MoveState } from "../shared/protocol/move_state.ts";
import {
  AuthStatus,
  type MoveEntry,
  type Packet,
  PACKET_KINDS,
  type PacketKind,
  PacketType,
  PLUGIN_STATES,
  type PluginStateName,
  Role,
} from "../shared/protocol/packets.ts";
import { ErrorCode, ProtocolError } from "../shared/protocol/protocol_error.ts";

// ---------------------------------------------------------------- arbitraries

/** fc.record with ordinary prototypes, so decoded packets compare deep-equal. */
function record<T>(model: { [K in keyof T]: fc.Arbitrary<T[K]> }): fc.Arbitrary<T> {
  return fc.record(model, { noNullPrototype: true });
}

const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffff_ffff });
const f32 = fc.float(); // 32-bit floats, NaN, ±0 and ±Infinity included
// Whole code points, so strings are well-formed; 60 × 4 bytes stays within a str8.
const str8 = fc.string({ unit: "binary", maxLength: 60 });
const str16 = fc.string({ unit: "binary", maxLength: 300 });
const bytes8 = fc.uint8Array({ maxLength: 255 });
const bytes16 = fc.uint8Array({ maxLength: 600 });
const key32 = fc.uint8Array({ minLength: 32, maxLength: 32 });
const role = fc.constantFrom(Role.Client, Role.Cluster, Role.Master);

const moveState: fc.Arbitrary<MoveState> = fc
  .record({
    x: f32,
    y: f32,
    z: f32,
    yaw: fc.option(f32, { nil: undefined }),
    velocity: fc.option(fc.tuple(f32, f32, f32), { nil: undefined }),
  })
  .map(({ x, y, z, yaw, velocity }) => ({
    x,
    y,
    z,
    ...(yaw === undefined ? {} : { yaw }),
    ...(velocity === undefined ? {} : { vx: velocity[0], vy: velocity[1], vz: velocity[2] }),
  }));

const moveEntry: fc.Arbitrary<MoveEntry> = record({ clientId: u32, state: moveState });

/** One arbitrary per kind; the mapped type makes the compiler insist on every kind. */
const ARBITRARIES: { readonly [K in PacketKind]: fc.Arbitrary<Extract<Packet, { kind: K }>> } = {
  Hello: record({ kind: fc.constant("Hello"), version: u16, role }),
  HelloOk: record({ kind: fc.constant("HelloOk"), version: u16, role, serverName: str8 }),
  Error: record({ kind: fc.constant("Error"), code: u16, reason: str16 }),
  Ping: record({ kind: fc.constant("Ping"), value: u32 }),
  Pong: record({ kind: fc.constant("Pong"), value: u32 }),
  RequestClusters: fc.constant({ kind: "RequestClusters" }),
  SendClusters: record({
    kind: fc.constant("SendClusters"),
    clusters: fc.array(
      record({
        id: u32,
        name: str8,
        host: str8,
        port: u16,
        load: u32,
        maxConnections: u32,
        keyVersion: u16,
        full: fc.boolean(),
      }),
      { maxLength: 5 },
    ),
  }),
  JoinCluster: record({
    kind: fc.constant("JoinCluster"),
    clusterId: u32,
    clientPublicKey: key32,
    credential: bytes16,
  }),
  JoinTicket: record({
    kind: fc.constant("JoinTicket"),
    clusterId: u32,
    host: str8,
    port: u16,
    keyVersion: u16,
    clusterPublicKey: key32,
    ticket: bytes16,
  }),
  BecomeCluster: record({
    kind: fc.constant("BecomeCluster"),
    keyName: str8,
    clusterNonce: key32,
  }),
  VerifyCluster: record({ kind: fc.constant("VerifyCluster"), sealedPassphrase: bytes8 }),
  AnswerCluster: record({
    kind: fc.constant("AnswerCluster"),
    name: str8,
    host: str8,
    port: u16,
    maxConnections: u32,
    keyVersion: u16,
    publicKey: key32,
    proof: key32,
  }),
  CreateCluster: record({ kind: fc.constant("CreateCluster"), clusterId: u32 }),
  Heartbeat: record({ kind: fc.constant("Heartbeat"), load: u32, maxConnections: u32 }),
  Deregister: record({ kind: fc.constant("Deregister"), reason: str16 }),
  ClusterPage: record({ kind: fc.constant("ClusterPage"), url: str16 }),
  ClusterPlugins: record({
    kind: fc.constant("ClusterPlugins"),
    plugins: fc.array(
      record({
        name: str8,
        state: fc.constantFrom<PluginStateName>(...PLUGIN_STATES, "unknown"),
        restarts: u32,
      }),
      { maxLength: 32 },
    ),
  }),
  RequestKey: record({ kind: fc.constant("RequestKey"), cachedVersion: u16 }),
  VersionOfKey: record({ kind: fc.constant("VersionOfKey"), version: u16 }),
  SendPubKey: record({ kind: fc.constant("SendPubKey"), version: u16, publicKey: key32 }),
  KeyExchange: record({
    kind: fc.constant("KeyExchange"),
    clientPublicKey: key32,
    clientRandom: key32,
  }),
  KeyExchangeOk: record({ kind: fc.constant("KeyExchangeOk"), serverRandom: key32 }),
  SendPassword: record({ kind: fc.constant("SendPassword"), ticket: bytes16 }),
  Authenticate: record({
    kind: fc.constant("Authenticate"),
    status: fc.constantFrom(...Object.values(AuthStatus)),
    clientId: u32,
  }),
  ClusterJoinCluster: record({ kind: fc.constant("ClusterJoinCluster"), clusterId: u32 }),
  LeaveCluster: fc.constant({ kind: "LeaveCluster" }),
  DisconnectCluster: record({ kind: fc.constant("DisconnectCluster"), reason: str16 }),
  Move: record({ kind: fc.constant("Move"), state: moveState }),
  MoveBatch: record({
    kind: fc.constant("MoveBatch"),
    entries: fc.array(moveEntry, { maxLength: 20 }),
  }),
  Spawn: record({ kind: fc.constant("Spawn"), clientId: u32, playerId: str8, state: moveState }),
  Despawn: record({ kind: fc.constant("Despawn"), clientId: u32 }),
  TlsJoin: record({ kind: fc.constant("TlsJoin"), bindingSecret: key32, ticket: bytes16 }),
  Plugin: record({
    kind: fc.constant("Plugin"),
    command: fc.integer({ min: 0x80, max: 0xff }),
    payload: fc.uint8Array({ maxLength: 300 }),
  }),
};

const anyPacket: fc.Arbitrary<Packet> = fc.oneof(
  ...PACKET_KINDS.map((kind) => ARBITRARIES[kind] as fc.Arbitrary<Packet>),
);

// ---------------------------------------------------------------- helpers

/** Splits whole frame bytes into a Frame, checking the length field. */
function toFrame(bytes: Uint8Array): Frame {
  const length = new DataView(bytes.buffer, bytes.byteOffset).getUint32(0);
  assert.equal(length, bytes.length - 4, "length field counts type and payload");
  return { type: bytes[4], payload: bytes.subarray(5) };
}

function roundTrip(packet: Packet): Packet {
  const bytes = encodePacket(packet);
  const decoded = decodePacket(toFrame(bytes));
  if (decoded instanceof ProtocolError) throw decoded;
  assert.deepEqual(encodePacket(decoded), bytes, "re-encoding gives the same bytes");
  return decoded;
}

function expectError(result: Packet | ProtocolError, code: ErrorCode): ProtocolError {
  if (!(result instanceof ProtocolError)) {
    assert.fail(`expected a ProtocolError, got ${result.kind}`);
  }
  assert.equal(result.errorCode, code, result.message);
  return result;
}

function decodeHex(type: number, hex: string): Packet | ProtocolError {
  return decodePacket({ type, payload: Uint8Array.fromHex(hex) });
}

/** One small valid example of every kind, for the hostile-input tests. */
const SAMPLES: readonly Packet[] = PACKET_KINDS.map((kind) =>
  fc.sample(ARBITRARIES[kind] as fc.Arbitrary<Packet>, { numRuns: 1, seed: 42 })[0]
);

// ---------------------------------------------------------------- round trips

for (const kind of PACKET_KINDS) {
  Deno.test(`a ${kind} packet round-trips through encode and decode`, () => {
    fc.assert(
      fc.property(ARBITRARIES[kind] as fc.Arbitrary<Packet>, (packet) => {
        assert.deepEqual(roundTrip(packet), packet);
      }),
      { numRuns: 60 },
    );
  });
}

Deno.test("random packet sequences split at random points decode to the same packets", () => {
  fc.assert(
    fc.property(
      fc.array(anyPacket, { minLength: 1, maxLength: 12 }),
      fc.array(fc.integer({ min: 1, max: 200 }), { minLength: 1, maxLength: 30 }),
      fc.boolean(),
      (packets, cuts, oneByteChunks) => {
        const frames = packets.map(encodePacket);
        const bytes = new Uint8Array(frames.reduce((n, f) => n + f.length, 0));
        let at = 0;
        for (const f of frames) {
          bytes.set(f, at);
          at += f.length;
        }
        const decoder = new FrameDecoder();
        const out: Packet[] = [];
        at = 0;
        for (let i = 0; at < bytes.length; i++) {
          const size = oneByteChunks ? 1 : cuts[i % cuts.length];
          decoder.push(bytes.subarray(at, at + size));
          at += size;
          for (let f = decoder.next(); f !== undefined; f = decoder.next()) {
            if (f instanceof ProtocolError) throw f;
            const p = decodePacket(f);
            if (p instanceof ProtocolError) throw p;
            out.push(p.kind === "Plugin" ? { ...p, payload: p.payload.slice() } : p);
          }
        }
        assert.equal(decoder.bufferedBytes, 0);
        assert.deepEqual(out, packets);
      },
    ),
    { numRuns: 200 },
  );
});

Deno.test("encodePacket sizes every frame exactly", () => {
  fc.assert(
    fc.property(anyPacket, (packet) => {
      const bytes = encodePacket(packet);
      assert.equal(bytes.buffer.byteLength, bytes.length);
      toFrame(bytes);
    }),
    { numRuns: 300 },
  );
});

Deno.test("decoded byte fields are copies, a Plugin payload is a view of the frame", () => {
  const ticket = new Uint8Array([1, 2, 3]);
  const frame = toFrame(encodePacket({ kind: "SendPassword", ticket }));
  const decoded = decodePacket(frame);
  assert.ok(!(decoded instanceof ProtocolError) && decoded.kind === "SendPassword");
  assert.notEqual(decoded.ticket.buffer, frame.payload.buffer);
  const pluginFrame = toFrame(encodePluginFrame(0x90, new Uint8Array([4, 5])));
  const plugin = decodePacket(pluginFrame);
  assert.ok(!(plugin instanceof ProtocolError) && plugin.kind === "Plugin");
  assert.equal(plugin.payload.buffer, pluginFrame.payload.buffer);
  assert.equal(plugin.command, 0x90);
});

Deno.test("strings keep a leading byte order mark and every Unicode plane", () => {
  const serverName = "\ufeffmaster 🌍 日本 é";
  const p = roundTrip({ kind: "HelloOk", version: 3, role: Role.Master, serverName });
  assert.ok(p.kind === "HelloOk");
  assert.equal(p.serverName, serverName);
});

Deno.test("an Error packet with a code from a newer version still decodes", () => {
  assert.deepEqual(roundTrip({ kind: "Error", code: 999, reason: "new" }), {
    kind: "Error",
    code: 999,
    reason: "new",
  });
});

Deno.test("a Move packet keeps f32 specials and drops a partial velocity", () => {
  const state = { x: Number.NaN, y: -0, z: Number.POSITIVE_INFINITY, yaw: Math.fround(0.1) };
  assert.deepEqual(roundTrip({ kind: "Move", state }), { kind: "Move", state });
  const partial = roundTrip({ kind: "Move", state: { x: 1, y: 2, z: 3, vx: 1, vy: 1 } });
  assert.deepEqual(partial, { kind: "Move", state: { x: 1, y: 2, z: 3 } });
});

// ---------------------------------------------------------------- hostile input

Deno.test("every truncation of every packet is BadPacket, or BadHello for a Hello", () => {
  for (const packet of SAMPLES) {
    if (packet.kind === "Plugin") continue; // opaque: any length is valid
    const { type, payload } = toFrame(encodePacket(packet));
    const code = packet.kind === "Hello" ? ErrorCode.BadHello : ErrorCode.BadPacket;
    for (let cut = 0; cut < payload.length; cut++) {
      expectError(decodePacket({ type, payload: payload.subarray(0, cut) }), code);
    }
  }
});

Deno.test("a trailing byte after any packet is BadPacket, or BadHello for a Hello", () => {
  for (const packet of SAMPLES) {
    if (packet.kind === "Plugin") continue;
    const bytes = encodePacket(packet);
    const longer = new Uint8Array(bytes.length + 1);
    longer.set(bytes);
    const err = expectError(
      decodePacket({ type: bytes[4], payload: longer.subarray(5) }),
      packet.kind === "Hello" ? ErrorCode.BadHello : ErrorCode.BadPacket,
    );
    assert.match(err.message, /trailing/);
  }
});

Deno.test("every type outside the table and the plugin range is UnknownPacket", () => {
  const known = new Set<number>(Object.values(PacketType));
  let unknown = 0;
  for (let type = 0; type < 0x80; type++) {
    if (known.has(type)) continue;
    unknown++;
    const err = expectError(
      decodePacket({ type, payload: new Uint8Array() }),
      ErrorCode.UnknownPacket,
    );
    assert.equal(err.code, "unknown_packet");
  }
  assert.equal(unknown, 0x80 - known.size);
  for (const type of [-1, 256, 1.5, Number.NaN]) {
    expectError(decodePacket({ type, payload: new Uint8Array() }), ErrorCode.UnknownPacket);
  }
});

Deno.test("every type in 0x80..0xff is a plugin command with any payload", () => {
  for (let command = 0x80; command <= 0xff; command++) {
    const p = decodePacket({ type: command, payload: new Uint8Array([command]) });
    assert.ok(!(p instanceof ProtocolError) && p.kind === "Plugin");
    assert.equal(p.command, command);
  }
});

Deno.test("a Hello with the wrong magic, an unknown role or a bad length is BadHello", () => {
  expectError(decodeHex(0x01, "5355535800" + "0101"), ErrorCode.BadHello); // "SUSX"
  expectError(decodeHex(0x01, "7375737400" + "0101"), ErrorCode.BadHello); // "sust"
  expectError(decodeHex(0x01, "53555354" + "0001" + "00"), ErrorCode.BadHello);
  expectError(decodeHex(0x01, "53555354" + "0001" + "04"), ErrorCode.BadHello);
  expectError(decodeHex(0x01, ""), ErrorCode.BadHello);
  assert.deepEqual(decodeHex(0x01, "53555354" + "0002" + "02"), {
    kind: "Hello",
    version: 2, // a version mismatch is the server's decision, not the codec's
    role: Role.Cluster,
  });
});

Deno.test("invalid UTF-8 in any string field is BadPacket", () => {
  const invalid = ["ff", "c080", "eda080", "e282", "f4908080", "80"];
  for (const bad of invalid) {
    const length = (bad.length / 2).toString(16).padStart(2, "0");
    expectError(decodeHex(0x02, "0001" + "03" + length + bad), ErrorCode.BadPacket);
    expectError(decodeHex(0x03, "0005" + "00" + length + bad), ErrorCode.BadPacket);
    expectError(
      decodeHex(0x2c, "00000001" + length + bad + "00" + "0".repeat(24)),
      ErrorCode.BadPacket,
    );
  }
});

Deno.test("bad enum values, flag bits and fixed sizes are BadPacket", () => {
  // HelloOk with role 9.
  expectError(decodeHex(0x02, "0001" + "09" + "00"), ErrorCode.BadPacket);
  // Authenticate with status 21.
  expectError(decodeHex(0x26, "15" + "00000001"), ErrorCode.BadPacket);
  // ClusterInfo with a reserved flag bit.
  const cluster = "00000001" + "00" + "00" + "1871" + "00000000" + "00000010" + "0001";
  assert.ok(!(decodeHex(0x11, "0001" + cluster + "01" + "00") instanceof ProtocolError));
  expectError(decodeHex(0x11, "0001" + cluster + "02" + "00"), ErrorCode.BadPacket);
  // MoveState with an unknown flag bit.
  expectError(decodeHex(0x2a, "04" + "0".repeat(24)), ErrorCode.BadPacket);
  // 31-byte key and random where 32 are required.
  const k31 = "1f" + "00".repeat(31);
  const k32 = "20" + "00".repeat(32);
  expectError(decodeHex(0x23, k31 + k32), ErrorCode.BadPacket);
  expectError(decodeHex(0x23, k32 + k31), ErrorCode.BadPacket);
  expectError(decodeHex(0x24, k31), ErrorCode.BadPacket);
  expectError(decodeHex(0x14, "00" + k31), ErrorCode.BadPacket);
});

Deno.test("counts and length prefixes larger than the bytes left are BadPacket", () => {
  expectError(decodeHex(0x11, "ffff" + "00".repeat(30)), ErrorCode.BadPacket);
  expectError(decodeHex(0x2b, "ffff" + "00".repeat(30)), ErrorCode.BadPacket);
  expectError(decodeHex(0x12, "00000000" + "ff" + "00"), ErrorCode.BadPacket);
  expectError(decodeHex(0x25, "ffff" + "00".repeat(100)), ErrorCode.BadPacket);
  expectError(decodeHex(0x03, "0001" + "0005" + "6869"), ErrorCode.BadPacket);
});

Deno.test("a frame of length 0 or above the bound is rejected before decoding", () => {
  const zero = new FrameDecoder();
  zero.push(Uint8Array.fromHex("00000000"));
  const a = zero.next();
  assert.ok(a instanceof ProtocolError && a.errorCode === ErrorCode.BadFrame);
  const big = new FrameDecoder();
  big.push(Uint8Array.fromHex("00010001"));
  const b = big.next();
  assert.ok(b instanceof ProtocolError && b.errorCode === ErrorCode.FrameTooLarge);
});

// ---------------------------------------------------------------- encode-time errors

Deno.test("strings longer than their prefix allows are a RangeError naming the field", () => {
  const cases: [Packet, RegExp][] = [
    [{ kind: "HelloOk", version: 3, role: 3, serverName: "a".repeat(256) }, /HelloOk\.serverName/],
    [{ kind: "HelloOk", version: 3, role: 3, serverName: "é".repeat(128) }, /HelloOk\.serverName/],
    [{ kind: "Error", code: 1, reason: "a".repeat(65536) }, /Error\.reason/],
    [{ kind: "Deregister", reason: "€".repeat(21846) }, /Deregister\.reason/],
    [
      { kind: "Spawn", clientId: 1, playerId: "p".repeat(300), state: { x: 0, y: 0, z: 0 } },
      /Spawn\.playerId/,
    ],
    [{
      kind: "SendClusters",
      clusters: [{
        id: 1,
        name: "n",
        host: "h".repeat(256),
        port: 1,
        load: 0,
        maxConnections: 1,
        keyVersion: 1,
        full: false,
      }],
    }, /ClusterInfo\.host/],
  ];
  for (const [packet, field] of cases) {
    assert.throws(
      () => encodePacket(packet),
      (err: unknown) => err instanceof RangeError && field.test(err.message),
    );
  }
  // Exactly at the limit is fine.
  roundTrip({ kind: "HelloOk", version: 3, role: 3, serverName: "é".repeat(127) + "a" });
});

Deno.test("byte fields, integers, enums and counts out of range are a RangeError", () => {
  const k32 = new Uint8Array(32);
  const cases: [Packet, RegExp][] = [
    [{ kind: "VerifyCluster", sealedPassphrase: new Uint8Array(256) }, /sealedPassphrase/],
    [{ kind: "SendPassword", ticket: new Uint8Array(65536) }, /SendPassword\.ticket/],
    [
      { kind: "KeyExchange", clientPublicKey: new Uint8Array(31), clientRandom: k32 },
      /clientPublicKey/,
    ],
    [{ kind: "KeyExchangeOk", serverRandom: new Uint8Array(33) }, /serverRandom/],
    [{ kind: "BecomeCluster", keyName: "k", clusterNonce: new Uint8Array(0) }, /clusterNonce/],
    [{ kind: "Ping", value: 2 ** 32 }, /Ping\.value/],
    [{ kind: "Ping", value: -1 }, /Ping\.value/],
    [{ kind: "Pong", value: 1.5 }, /Pong\.value/],
    [{ kind: "RequestKey", cachedVersion: 65536 }, /RequestKey\.cachedVersion/],
    [{ kind: "Despawn", clientId: Number.NaN }, /Despawn\.clientId/],
    [{
      kind: "JoinTicket",
      clusterId: 1,
      host: "h",
      port: 70000,
      keyVersion: 1,
      clusterPublicKey: k32,
      ticket: k32,
    }, /JoinTicket\.port/],
    [{ kind: "Hello", version: 3, role: 4 as Role }, /Hello\.role/],
    [{ kind: "Authenticate", status: 21 as AuthStatus, clientId: 1 }, /Authenticate\.status/],
    [{ kind: "Plugin", command: 0x7f, payload: new Uint8Array() }, /plugin command/],
    [{
      kind: "MoveBatch",
      entries: new Array(65536).fill({ clientId: 1, state: { x: 0, y: 0, z: 0 } }),
    }, /MoveBatch\.entries/],
  ];
  for (const [packet, field] of cases) {
    assert.throws(
      () => encodePacket(packet),
      (err: unknown) => err instanceof RangeError && field.test(err.message),
      field.source,
    );
  }
  assert.throws(() => encodePluginFrame(0x100, new Uint8Array()), RangeError);
  assert.throws(() => encodeFrame(0x100, new Uint8Array()), RangeError);
});

Deno.test("a string with a lone surrogate is a TypeError naming the field", () => {
  assert.throws(
    () => encodePacket({ kind: "Deregister", reason: "bye \udc00" }),
    (err: unknown) => err instanceof TypeError && /Deregister\.reason/.test(err.message),
  );
});

// ---------------------------------------------------------------- MoveBatch helper

function decodeAll(bytes: Uint8Array, maxFrameBytes: number): Packet[] {
  const decoder = new FrameDecoder({ maxFrameBytes });
  decoder.push(bytes);
  const out: Packet[] = [];
  for (let f = decoder.next(); f !== undefined; f = decoder.next()) {
    if (f instanceof ProtocolError) throw f;
    const p = decodePacket(f);
    if (p instanceof ProtocolError) throw p;
    out.push(p);
  }
  assert.equal(decoder.bufferedBytes, 0);
  return out;
}

Deno.test("encodeMoveBatches splits entries into frames within the bound, in order", () => {
  fc.assert(
    fc.property(
      fc.array(moveEntry, { maxLength: 200 }),
      fc.integer({ min: 3 + 4 + 29, max: 2000 }),
      (entries, maxFrameBytes) => {
        const bytes = encodeMoveBatches(entries, maxFrameBytes);
        assert.equal(bytes.buffer.byteLength, bytes.length);
        const packets = decodeAll(bytes, maxFrameBytes);
        const decoded = packets.flatMap((p) => {
          assert.ok(p.kind === "MoveBatch");
          assert.ok(p.entries.length > 0);
          return p.entries;
        });
        assert.deepEqual(decoded, entries);
      },
    ),
    { numRuns: 150 },
  );
});

Deno.test("encodeMoveBatches equals encodePacket when everything fits one frame", () => {
  const entries = [{ clientId: 7, state: { x: 1, y: 2, z: 3, yaw: 0.5 } }];
  assert.deepEqual(encodeMoveBatches(entries), encodePacket({ kind: "MoveBatch", entries }));
  assert.equal(encodeMoveBatches([]).length, 0);
});

Deno.test("encodeMoveBatches caps a frame at 65535 entries", () => {
  const entries = new Array<MoveEntry>(70000).fill({ clientId: 1, state: { x: 0, y: 0, z: 0 } });
  const packets = decodeAll(encodeMoveBatches(entries, 2 ** 21), 2 ** 21);
  assert.deepEqual(packets.map((p) => p.kind === "MoveBatch" && p.entries.length), [65535, 4465]);
});

Deno.test("encodeMoveBatches refuses a bound that cannot hold one entry", () => {
  const entries = [{ clientId: 1, state: { x: 0, y: 0, z: 0, yaw: 0 } }];
  assert.throws(() => encodeMoveBatches(entries, 3 + 4 + 16), RangeError);
  assert.equal(encodeMoveBatches(entries, 3 + 4 + 17).length, 4 + 3 + 4 + 17);
});

Deno.test("ClusterPlugins: a state code a master does not know decodes as unknown", () => {
  // count 1, name "a", state 9 (not assigned), restarts 1
  const payload = Uint8Array.from([1, 1, 0x61, 9, 0, 0, 0, 1]);
  const p = decodePacket({ type: PacketType.ClusterPlugins, payload });
  assert.ok(!(p instanceof ProtocolError));
  assert.deepEqual(p, {
    kind: "ClusterPlugins",
    plugins: [{ name: "a", state: "unknown", restarts: 1 }],
  });
});
