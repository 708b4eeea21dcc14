import assert from "node:assert/strict";
import { closeActionOf, firstAction } from "./_machine_actions.ts";
import {
  type MasterSessionAction,
  MasterSessionMachine,
} from "../client/master_session_machine.ts";
import { ClientError } from "../client/errors.ts";
import { decodePacket, encodePacket } from "../shared/protocol/codec.ts";
import type { Frame } from "../shared/protocol/frame.ts";
import type { ClusterInfo, Packet } from "../shared/protocol/packets.ts";
import { ErrorCode } from "../shared/protocol/protocol_error.ts";

/** The frame of a packet, as the transport would deliver it. */
function frameOf(packet: Packet): Frame {
  const bytes = encodePacket(packet);
  return { type: bytes[4], payload: bytes.subarray(5) };
}

/** Feeds a frame as the driver does (decoded, with the time and the frame itself). */
function receive(session: MasterSessionMachine, frame: Frame): readonly MasterSessionAction[] {
  return session.receive(decodePacket(frame), 0, frame);
}

function readySession(): MasterSessionMachine {
  const session = new MasterSessionMachine();
  session.hello();
  const actions = receive(
    session,
    frameOf({ kind: "HelloOk", version: 3, role: 3, serverName: "master-1" }),
  );
  assert.deepEqual(actions, [{ type: "ready", serverName: "master-1" }]);
  return session;
}

const CLUSTER: ClusterInfo = {
  id: 4,
  name: "eu-1",
  host: "127.0.0.1",
  port: 6257,
  load: 1,
  maxConnections: 10,
  keyVersion: 9,
  full: false,
};

const TICKET = {
  kind: "JoinTicket",
  clusterId: 4,
  host: "127.0.0.1",
  port: 6257,
  keyVersion: 9,
  clusterPublicKey: new Uint8Array(32).fill(1),
  ticket: new Uint8Array(90).fill(2),
} as const;

Deno.test("the master session starts with a client Hello and becomes ready on HelloOk", () => {
  const session = new MasterSessionMachine();
  assert.equal(session.state, "hello");
  assert.equal(session.hello().toHex(), "000000080153555354000301");
  receive(session, frameOf({ kind: "HelloOk", version: 3, role: 3, serverName: "m" }));
  assert.equal(session.state, "ready");
  assert.equal(session.serverName, "m");
});

Deno.test("a HelloOk from a server that is not a master fails the session", () => {
  const session = new MasterSessionMachine();
  const actions = receive(
    session,
    frameOf({ kind: "HelloOk", version: 3, role: 2, serverName: "c" }),
  );
  const event = firstAction(actions);
  assert.ok(event.type === "failed");
  assert.equal(event.error.code, "protocol_error");
  assert.equal(closeActionOf(actions).code, ErrorCode.UnexpectedPacket);
  assert.equal(session.state, "failed");
});

Deno.test("a HelloOk of another protocol version fails with VersionMismatch", () => {
  const session = new MasterSessionMachine();
  const actions = receive(
    session,
    frameOf({ kind: "HelloOk", version: 1, role: 3, serverName: "m" }),
  );
  assert.ok(firstAction(actions).type === "failed");
  assert.equal(closeActionOf(actions).code, ErrorCode.VersionMismatch);
});

Deno.test("any packet but HelloOk or Error before HelloOk is unexpected", () => {
  const session = new MasterSessionMachine();
  const event = firstAction(receive(session, frameOf({ kind: "SendClusters", clusters: [] })));
  assert.ok(event.type === "unhandled");
  assert.equal(event.packet?.kind, "SendClusters");
  assert.equal(event.closeWith.code, ErrorCode.UnexpectedPacket);
  assert.equal(event.error.code, "protocol_error");
});

Deno.test("Error(ServerFull) before HelloOk is a server_full failure", () => {
  const session = new MasterSessionMachine();
  const actions = receive(session, frameOf({ kind: "Error", code: 8, reason: "server full" }));
  const event = firstAction(actions);
  assert.ok(event.type === "failed");
  assert.equal(event.error.code, "server_full");
  assert.equal(event.error.errorCode, 8);
  assert.equal(closeActionOf(actions).code, undefined);
});

Deno.test("requests before HelloOk or after a failure are refused as invalid_state", () => {
  const session = new MasterSessionMachine();
  const invalid = (e: unknown) => e instanceof ClientError && e.code === "invalid_state";
  assert.throws(() => session.requestClusters(), invalid);
  assert.throws(() => session.joinCluster(0, new Uint8Array(32), new Uint8Array()), invalid);
  assert.throws(() => session.ping(1), invalid);
  session.fail(new ClientError("timeout", "gave up"));
  assert.throws(() => session.requestClusters(), invalid);
  // The session has ended: later frames yield nothing.
  assert.deepEqual(receive(session, frameOf({ kind: "Ping", value: 1 })), []);
});

Deno.test("answers are matched to requests in the order they were sent", () => {
  const session = readySession();
  const list = session.requestClusters();
  const join = session.joinCluster(4, new Uint8Array(32), new Uint8Array([1]));
  assert.equal(list.frame.toHex(), "0000000110");
  assert.equal(session.pendingCount, 2);
  const clusters = receive(session, frameOf({ kind: "SendClusters", clusters: [CLUSTER] }));
  assert.deepEqual(clusters, [{ type: "clusters", request: list.request, clusters: [CLUSTER] }]);
  const ticket = firstAction(receive(session, frameOf(TICKET)));
  assert.ok(ticket.type === "ticket");
  assert.equal(ticket.request, join.request);
  assert.deepEqual(ticket.ticket, TICKET);
  assert.equal(session.pendingCount, 0);
});

Deno.test("an answer out of order or unasked for is unexpected", () => {
  const session = readySession();
  session.joinCluster(0, new Uint8Array(32), new Uint8Array());
  const wrong = firstAction(receive(session, frameOf({ kind: "SendClusters", clusters: [] })));
  assert.ok(wrong.type === "unhandled");
  assert.equal(wrong.closeWith.code, ErrorCode.UnexpectedPacket);
  const fresh = readySession();
  const unasked = firstAction(receive(fresh, frameOf(TICKET)));
  assert.equal(unasked.type, "unhandled");
});

Deno.test("each join refusal keeps the session open and maps to its error code", () => {
  const session = readySession();
  const cases: [number, string][] = [
    [ErrorCode.UnknownCluster, "unknown_cluster"],
    [ErrorCode.ClusterFull, "cluster_full"],
    [ErrorCode.NoCluster, "no_cluster"],
    [ErrorCode.Unauthorized, "unauthorized"],
    [ErrorCode.RateLimited, "rate_limited"],
  ];
  for (const [code, expected] of cases) {
    const join = session.joinCluster(0, new Uint8Array(32), new Uint8Array());
    const event = firstAction(receive(session, frameOf({ kind: "Error", code, reason: "no" })));
    assert.ok(event.type === "refused", `code ${code}`);
    assert.equal(event.request, join.request);
    assert.equal(event.error.code, expected);
    assert.equal(session.state, "ready");
  }
});

Deno.test("a refusal code with no join pending, or any other Error, ends the session", () => {
  const idle = readySession();
  const refused = firstAction(receive(idle, frameOf({ kind: "Error", code: 13, reason: "none" })));
  assert.ok(refused.type === "failed" && refused.error.code === "no_cluster");
  assert.equal(idle.state, "failed");

  const shutting = readySession();
  shutting.requestClusters();
  const event = firstAction(receive(shutting, frameOf({ kind: "Error", code: 15, reason: "bye" })));
  assert.ok(event.type === "failed");
  assert.equal(event.error.code, "disconnected");
  assert.match(event.error.message, /ShuttingDown/);
  assert.equal(shutting.pendingCount, 0);

  const future = readySession();
  const unknown = firstAction(
    receive(future, frameOf({ kind: "Error", code: 300, reason: "new" })),
  );
  assert.ok(unknown.type === "failed" && unknown.error.code === "protocol_error");
  assert.match(unknown.error.message, /Unknown\(300\)/);
});

Deno.test("a Ping from the master is answered with a Pong of the same value", () => {
  const session = readySession();
  const event = firstAction(receive(session, frameOf({ kind: "Ping", value: 77 })));
  assert.ok(event.type === "send");
  assert.equal(event.frame.toHex(), "00000005050000004d");
  assert.deepEqual(receive(session, frameOf({ kind: "Pong", value: 3 })), [{
    type: "pong",
    value: 3,
  }]);
  assert.equal(session.ping(2 ** 32 + 5).toHex(), "000000050400000005");
});

Deno.test("undecodable and unknown frames are offered as unhandled with the right close code", () => {
  const session = readySession();
  const frame = { type: 0x06, payload: new Uint8Array() };
  const unknown = firstAction(receive(session, frame));
  assert.ok(unknown.type === "unhandled");
  assert.equal(unknown.packet, undefined);
  assert.equal(unknown.frame, frame); // the raw frame, for the client plugins
  assert.equal(unknown.closeWith.code, ErrorCode.UnknownPacket);
  const bad = firstAction(receive(session, { type: 0x04, payload: new Uint8Array(5) }));
  assert.ok(bad.type === "unhandled");
  assert.equal(bad.closeWith.code, ErrorCode.BadPacket);
  const plugin = firstAction(receive(session, { type: 0x90, payload: new Uint8Array([1]) }));
  assert.ok(plugin.type === "unhandled" && plugin.packet?.kind === "Plugin");
});

Deno.test("joinCluster rejects fields that do not fit the packet", () => {
  const session = readySession();
  assert.throws(
    () => session.joinCluster(2 ** 32, new Uint8Array(32), new Uint8Array()),
    RangeError,
  );
  assert.throws(
    () => session.joinCluster(1, new Uint8Array(32), new Uint8Array(70_000)),
    RangeError,
  );
});
