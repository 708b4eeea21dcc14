/**
 * The master's per-connection machine (master/master_connection_machine.ts) without sockets:
 * Hello, a client's requests as ordered derive steps, the cluster registration's steps, and
 * the events the adapter acts on.
 */

import assert from "node:assert/strict";
import {
  type MasterConnectionAction,
  MasterConnectionMachine,
  type MasterConnectionMachineOptions,
} from "../master/master_connection_machine.ts";
import { settleActions, stepMachine } from "../shared/drive_machine.ts";
import { decodePacket } from "../shared/protocol/codec.ts";
import type { Packet } from "../shared/protocol/packets.ts";
import { ErrorCode, ProtocolError } from "../shared/protocol/protocol_error.ts";

const CLIENT_HELLO: Packet = { kind: "Hello", version: 3, role: 1 };
const CLUSTER_HELLO: Packet = { kind: "Hello", version: 3, role: 2 };

function machine(overrides: Partial<MasterConnectionMachineOptions> = {}) {
  return new MasterConnectionMachine({
    serverName: "master",
    admitRole: () => undefined,
    request: (packet) =>
      Promise.resolve({
        action: { kind: "send", packet: { kind: "Pong", value: packet.kind === "Ping" ? 1 : 0 } },
      }),
    clusterKeys: () => Promise.resolve(undefined),
    registrationDeadline: 60_000,
    ...overrides,
  });
}

function sentPackets(actions: readonly MasterConnectionAction[]): unknown[] {
  return actions.flatMap((a) =>
    a.type === "send" ? [decodePacket({ type: a.frame[4], payload: a.frame.subarray(5) })] : []
  );
}

Deno.test("master connection machine: a client's Hello is answered and greeted", async () => {
  const m = machine();
  const actions = await stepMachine(m, CLIENT_HELLO, 0);
  assert.deepEqual(actions.map((a) => a.type), ["send", "greeted"]);
  assert.deepEqual(sentPackets(actions), [{
    kind: "HelloOk",
    version: 3,
    role: 3,
    serverName: "master",
  }]);
  assert.equal(m.phase, "client");
});

Deno.test("master connection machine: a refused slot closes before any HelloOk", async () => {
  const m = machine({
    admitRole: () => ({ kind: "close", code: ErrorCode.ServerFull, message: "full" }),
  });
  const actions = await stepMachine(m, CLIENT_HELLO, 0);
  assert.deepEqual(actions, [{
    type: "close",
    code: ErrorCode.ServerFull,
    reason: "full",
    level: "debug",
  }]);
  assert.equal(m.phase, "closed");
});

Deno.test("master connection machine: a malformed first frame is BadHello", async () => {
  const actions = await stepMachine(machine(), new ProtocolError(ErrorCode.BadPacket, "cut"), 0);
  assert.deepEqual(actions, [{ type: "close", code: ErrorCode.BadHello, reason: "cut" }]);
});

Deno.test("master connection machine: requests are derive steps, answered with an event", async () => {
  const m = machine();
  await stepMachine(m, CLIENT_HELLO, 0);
  const step = m.receive({ kind: "Ping", value: 1 }, 0);
  assert.deepEqual(step.map((a) => a.type), ["derive"]);
  const actions = await settleActions(m, step);
  assert.deepEqual(actions.map((a) => a.type), ["answered", "send"]);
  assert.deepEqual(sentPackets(actions), [{ kind: "Pong", value: 1 }]);
});

Deno.test("master connection machine: the 33rd request in flight closes with SlowConsumer", async () => {
  const m = machine({ request: () => new Promise(() => {}) });
  await stepMachine(m, CLIENT_HELLO, 0);
  for (let i = 0; i < 32; i++) {
    assert.equal(m.receive({ kind: "RequestClusters" }, 0)[0].type, "derive");
  }
  const last = m.receive({ kind: "RequestClusters" }, 0);
  assert.ok(last[0].type === "close" && last[0].code === ErrorCode.SlowConsumer);
});

Deno.test("master connection machine: a cluster's BecomeCluster is challenged after the key lookup", async () => {
  const names: string[] = [];
  const m = machine({
    clusterKeys: (name) => {
      names.push(name);
      return Promise.resolve(new Uint8Array(32).fill(1));
    },
  });
  await stepMachine(m, CLUSTER_HELLO, 0);
  assert.equal(m.phase, "registering");
  const become = m.receive({
    kind: "BecomeCluster",
    keyName: "cluster_key",
    clusterNonce: new Uint8Array(32),
  }, 1);
  assert.deepEqual(become.map((a) => a.type), ["derive"]);
  const challenge = sentPackets(await settleActions(m, become, 1));
  assert.deepEqual(names, ["cluster_key"]);
  assert.equal((challenge[0] as Packet).kind, "VerifyCluster");
});

Deno.test("master connection machine: a registration is refused once, then closed", async () => {
  const m = machine();
  await stepMachine(m, CLUSTER_HELLO, 0);
  const actions = await stepMachine(m, { kind: "Move", state: { x: 0, y: 0, z: 0 } }, 1);
  assert.deepEqual(actions.map((a) => a.type), ["refused", "close"]);
  assert.ok(actions[0].type === "refused" && actions[0].reason === "out_of_order");
  assert.deepEqual(m.closed(), [], "reported once");
});

Deno.test("master connection machine: a cluster leaving mid-registration is refused as abandoned", async () => {
  const m = machine();
  await stepMachine(m, CLUSTER_HELLO, 0);
  const events = m.closed();
  assert.deepEqual(events, [{ type: "refused", reason: "abandoned", keyName: undefined }]);
  assert.deepEqual(m.expire(), []);
});

Deno.test("master connection machine: the deadline refuses a registration still running", async () => {
  const m = machine();
  await stepMachine(m, CLUSTER_HELLO, 0);
  const actions = m.expire();
  assert.deepEqual(actions.map((a) => a.type), ["refused", "close"]);
  assert.ok(actions[0].type === "refused" && actions[0].reason === "timeout");
});
