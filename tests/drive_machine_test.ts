/**
 * The one drive loop of the protocol machines (shared/drive_machine.ts), without sockets: a
 * scripted machine on a `FrameSession` over an in-memory channel. The thing under test is the
 * driver: decode and hand over with the time, apply actions in order, run a derive step and
 * feed its result back, seal at once, close with the Error frame, drop what `admit` refuses.
 */

import assert from "node:assert/strict";
import { driveMachine, stepMachine } from "../shared/drive_machine.ts";
import { type ChannelSink, FrameSession } from "../shared/frame_session.ts";
import type { MachineAction, ProtocolMachine } from "../shared/machine_action.ts";
import { decodePacket, encodePacket } from "../shared/protocol/codec.ts";
import type { Frame } from "../shared/protocol/frame.ts";
import type { Packet } from "../shared/protocol/packets.ts";
import { ErrorCode, ProtocolError } from "../shared/protocol/protocol_error.ts";
import { framesOf, MemoryChannel } from "./_memory_channel.ts";

type Seen = { readonly type: "seen"; readonly what: string; readonly now: number };
type Action = MachineAction<string, Seen>;

/** Answers what each packet asks for; records what it was given. */
class ScriptedMachine implements ProtocolMachine<string, Seen> {
  readonly received: (Packet | ProtocolError)[] = [];
  /** The raw frames given with the packets (type and a copy of the payload). */
  readonly frames: { readonly type: number; readonly payload: number[] }[] = [];
  readonly derivedResults: string[] = [];
  constructor(readonly script: (packet: Packet | ProtocolError, now: number) => Action[]) {}

  receive(packet: Packet | ProtocolError, now: number, frame?: Frame): readonly Action[] {
    this.received.push(packet);
    if (frame !== undefined) this.frames.push({ type: frame.type, payload: [...frame.payload] });
    return this.script(packet, now);
  }

  derived(result: string, now: number): readonly Action[] {
    this.derivedResults.push(result);
    return [
      { type: "send", frame: encodePacket({ kind: "Pong", value: result.length }) },
      { type: "seen", what: `derived ${result}`, now },
    ];
  }
}

const quiet = { handshakeTimeoutMs: 0, idleTimeoutMs: 0, closeFlushTimeoutMs: 10 };

function setUp(machine: ScriptedMachine, options: Parameters<typeof driveMachine>[2] = {}) {
  const channel = new MemoryChannel();
  const session = new FrameSession(channel, quiet);
  const driver = driveMachine<string, Seen>(session, machine, options);
  const feed = (packet: Packet) => (channel.sink as ChannelSink).receive(encodePacket(packet));
  const written = async (): Promise<Packet[]> => {
    await new Promise((resolve) => setTimeout(resolve, 0));
    return channel.writes.flatMap(framesOf).map((frame) => decodePacket(frame) as Packet);
  };
  return { channel, session, driver, feed, written };
}

Deno.test("drive machine: packets in with the time, sends and events out in order", async () => {
  const events: Seen[] = [];
  let clock = 1000;
  const machine = new ScriptedMachine((packet, now) =>
    packet instanceof ProtocolError || packet.kind !== "Ping" ? [] : [
      { type: "send", frame: encodePacket({ kind: "Pong", value: packet.value }) },
      { type: "seen", what: `ping ${packet.value}`, now },
      { type: "send", frame: encodePacket({ kind: "Pong", value: packet.value + 1 }) },
    ]
  );
  const { session, feed, written } = setUp(machine, {
    now: () => clock++,
    onEvent: (event) => events.push(event as Seen),
  });
  await feed({ kind: "Ping", value: 7 });
  await feed({ kind: "Ping", value: 9 });
  assert.deepEqual(machine.received, [{ kind: "Ping", value: 7 }, { kind: "Ping", value: 9 }]);
  assert.deepEqual(events, [
    { type: "seen", what: "ping 7", now: 1000 },
    { type: "seen", what: "ping 9", now: 1001 },
  ]);
  assert.deepEqual(await written(), [
    { kind: "Pong", value: 7 },
    { kind: "Pong", value: 8 },
    { kind: "Pong", value: 9 },
    { kind: "Pong", value: 10 },
  ]);
  await session.close();
});

Deno.test("drive machine: a malformed frame reaches the machine as the codec's error", async () => {
  const machine = new ScriptedMachine(() => []);
  const { channel, session } = setUp(machine);
  // A Ping (0x0C) whose u32 is cut short.
  await (channel.sink as ChannelSink).receive(new Uint8Array([0, 0, 0, 2, 0x0c, 1]));
  assert.equal(machine.received.length, 1);
  assert.ok(machine.received[0] instanceof ProtocolError);
  // With the raw frame, for a machine that hands such frames on (the client's plugins).
  assert.deepEqual(machine.frames, [{ type: 0x0c, payload: [1] }]);
  await session.close();
});

Deno.test("drive machine: a derive step runs and its result comes back as an input", async () => {
  const events: Seen[] = [];
  const gate = Promise.withResolvers<string>();
  const machine = new ScriptedMachine(() => [{ type: "derive", derive: () => gate.promise }]);
  const { session, feed, written } = setUp(machine, {
    now: () => 5,
    onEvent: (event) => events.push(event as Seen),
  });
  await feed({ kind: "Ping", value: 1 });
  assert.deepEqual(machine.derivedResults, [], "nothing before the step ends");
  // The machine still sees what arrives meanwhile (it decides what that means).
  await feed({ kind: "Ping", value: 2 });
  assert.equal(machine.received.length, 2);
  gate.resolve("keys");
  await gate.promise;
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.deepEqual(machine.derivedResults, ["keys", "keys"]);
  assert.deepEqual(events.map((e) => [e.what, e.now]), [["derived keys", 5], ["derived keys", 5]]);
  assert.deepEqual(await written(), [{ kind: "Pong", value: 4 }, { kind: "Pong", value: 4 }]);
  await session.close();
});

Deno.test("drive machine: a derive step that rejects closes with Internal", async () => {
  const errors: unknown[] = [];
  const machine = new ScriptedMachine(() => [{
    type: "derive",
    derive: () => Promise.reject(new Error("bug")),
  }]);
  const { channel, session, feed } = setUp(machine, { onDeriveError: (e) => errors.push(e) });
  await feed({ kind: "Ping", value: 1 });
  const info = await session.closed;
  assert.equal(errors.length, 1);
  assert.equal(info.code, ErrorCode.Internal);
  const sent = channel.writes.flatMap(framesOf).map((f) => decodePacket(f));
  assert.deepEqual(sent, [{ kind: "Error", code: ErrorCode.Internal, reason: "internal error" }]);
});

Deno.test("drive machine: seal switches at once, before the next frame of the read", async () => {
  const key = new Uint8Array(32).fill(3);
  const machine = new ScriptedMachine(() => [
    { type: "send", frame: encodePacket({ kind: "Pong", value: 1 }) },
    { type: "seal", keys: { sendKey: key, receiveKey: key } },
  ]);
  const { channel, session } = setUp(machine);
  // Two frames in one read: the second must already be read as a record.
  await (channel.sink as ChannelSink).receive(
    new Uint8Array([
      ...encodePacket({ kind: "Ping", value: 1 }),
      ...encodePacket({ kind: "Ping", value: 2 }),
    ]),
  );
  assert.equal(session.sealed, true);
  assert.equal(machine.received.length, 1, "the plaintext second frame is no frame");
  await session.close();
});

Deno.test("drive machine: close sends Error(code, message) and applies nothing after it", async () => {
  const closes: string[] = [];
  const events: Seen[] = [];
  const machine = new ScriptedMachine(() => [
    { type: "close", code: ErrorCode.AuthFailed, reason: "key x did not open", message: "no" },
    { type: "seen", what: "after close", now: 0 },
  ]);
  const { channel, session, feed } = setUp(machine, {
    onClose: (action) => closes.push(action.reason),
    onEvent: (event) => events.push(event as Seen),
  });
  await feed({ kind: "Ping", value: 1 });
  const info = await session.closed;
  assert.deepEqual(closes, ["key x did not open"]);
  assert.deepEqual(events, []);
  assert.equal(info.code, ErrorCode.AuthFailed);
  const sent = channel.writes.flatMap(framesOf).map((f) => decodePacket(f));
  assert.deepEqual(sent, [{ kind: "Error", code: ErrorCode.AuthFailed, reason: "no" }]);
});

Deno.test("drive machine: a close without a code sends no Error frame", async () => {
  const machine = new ScriptedMachine(() => [{ type: "close", reason: "left", level: "debug" }]);
  const { channel, session, feed } = setUp(machine);
  await feed({ kind: "Ping", value: 1 });
  const info = await session.closed;
  assert.equal(info.code, undefined);
  assert.deepEqual(channel.writes.flatMap(framesOf), []);
});

Deno.test("drive machine: a frame admit refuses never reaches the machine", async () => {
  const machine = new ScriptedMachine(() => []);
  const { session, feed } = setUp(machine, {
    admit: (frame) => frame.payload[3] !== 66,
  });
  await feed({ kind: "Ping", value: 66 });
  await feed({ kind: "Ping", value: 67 });
  assert.deepEqual(machine.received, [{ kind: "Ping", value: 67 }]);
  await session.close();
});

Deno.test("drive machine: apply runs the adapter's own actions like the machine's", async () => {
  const machine = new ScriptedMachine(() => []);
  const { driver, session, written } = setUp(machine);
  driver.apply([
    { type: "send", frame: encodePacket({ kind: "Ping", value: 3 }) },
    { type: "derive", derive: () => Promise.resolve("abc") },
  ]);
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.deepEqual(await written(), [{ kind: "Ping", value: 3 }, { kind: "Pong", value: 3 }]);
  await session.close();
});

Deno.test("step machine: derive steps settle in place, in order", async () => {
  const machine = new ScriptedMachine((_packet, now) => [
    { type: "seen", what: "first", now },
    { type: "derive", derive: () => Promise.resolve("k") },
    { type: "seen", what: "last", now },
  ]);
  const actions = await stepMachine(machine, { kind: "Ping", value: 1 }, 9);
  assert.deepEqual(actions.map((a) => a.type === "seen" ? a.what : a.type), [
    "first",
    "send",
    "derived k",
    "last",
  ]);
});
