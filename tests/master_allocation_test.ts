/** Cluster choice, reserved load, tickets and the client session, driven without sockets. */

import assert from "node:assert/strict";
import { ClusterAllocator, joinRefusal } from "../master/allocation.ts";
import { type AuthenticateHook, guestAuthenticate } from "../master/authenticate.ts";
import { MasterClientSession } from "../master/master_client_session.ts";
import { type ClusterAnnouncement, type ClusterId, ClusterRegistry } from "../master/registry.ts";
import { openJoinTicket } from "../shared/join_ticket.ts";
import { encodePacket } from "../shared/protocol/codec.ts";
import type { Packet } from "../shared/protocol/packets.ts";
import { sha256 } from "../shared/security.ts";

function announcement(port: number, extra: Partial<ClusterAnnouncement> = {}): ClusterAnnouncement {
  return {
    name: `c${port}`,
    host: "127.0.0.1",
    port,
    maxConnections: 10,
    keyVersion: 1,
    publicKey: new Uint8Array(32).fill(port & 0xff),
    keyName: "k",
    ...extra,
  };
}

function setup(windowMs = 5000) {
  const registry = new ClusterRegistry();
  const allocator = new ClusterAllocator({
    registry,
    ticketTtlMs: 30_000,
    reservationWindowMs: windowMs,
  });
  const add = (
    port: number,
    extra: Partial<ClusterAnnouncement> = {},
    key = new Uint8Array(32),
  ) => {
    const { record } = registry.register(announcement(port, extra), 0);
    allocator.setClusterKey(record.id, key);
    return record.id;
  };
  return { registry, allocator, add };
}

function chosenId(allocation: ReturnType<ClusterAllocator["choose"]>): number {
  assert.ok(allocation.ok, JSON.stringify(allocation));
  return allocation.record.id;
}

Deno.test("auto-join takes the least-loaded non-full cluster, the oldest on a tie", () => {
  const { registry, allocator, add } = setup();
  const a = add(1);
  const b = add(2);
  const c = add(3);
  assert.equal(chosenId(allocator.choose(0, 10)), a);
  registry.heartbeat(a, 5, 10, 10);
  registry.heartbeat(b, 3, 10, 10);
  registry.heartbeat(c, 3, 10, 10);
  assert.equal(chosenId(allocator.choose(0, 20)), b);
  registry.heartbeat(b, 10, 10, 30); // full
  assert.equal(chosenId(allocator.choose(0, 40)), c);
});

Deno.test("reserved tickets count as load until a heartbeat or the window ends", () => {
  const { registry, allocator, add } = setup(1000);
  const a = add(1);
  const b = add(2);
  const record = () => registry.get(a)!;
  allocator.reserve(a, 100);
  allocator.reserve(a, 200);
  assert.equal(allocator.effectiveLoad(record(), 300), 2);
  assert.equal(chosenId(allocator.choose(0, 300)), b);
  // The window passes the first ticket.
  assert.equal(allocator.effectiveLoad(record(), 1150), 1);
  // A heartbeat after both tickets already reports them.
  registry.heartbeat(a, 2, 10, 250);
  assert.equal(allocator.effectiveLoad(record(), 300), 2);
  allocator.reserve(a, 400);
  assert.equal(allocator.effectiveLoad(record(), 500), 3);
});

Deno.test("a cluster full with reservations is refused by id; capacity 0 is unlimited", () => {
  const { allocator, add } = setup();
  const small = add(1, { maxConnections: 1 });
  const unlimited = add(2, { maxConnections: 0 });
  allocator.reserve(small, 10);
  assert.deepEqual(allocator.choose(small, 20), joinRefusal("cluster_full"));
  for (let i = 0; i < 1000; i++) allocator.reserve(unlimited, 10);
  assert.equal(chosenId(allocator.choose(unlimited, 20)), unlimited);
  assert.equal(chosenId(allocator.choose(0, 20)), unlimited);
});

Deno.test("unknown ids, no clusters and only full clusters are refused with their codes", () => {
  const { allocator, add, registry } = setup();
  assert.deepEqual(allocator.choose(0, 0), joinRefusal("no_cluster"));
  assert.deepEqual(allocator.choose(7, 0), joinRefusal("unknown_cluster"));
  const id = add(1, { maxConnections: 1 });
  registry.heartbeat(id, 1, 1, 5);
  assert.deepEqual(allocator.choose(0, 10), joinRefusal("no_cluster"));
  assert.equal(joinRefusal("unknown_cluster").code, 11);
  assert.equal(joinRefusal("cluster_full").code, 12);
  assert.equal(joinRefusal("no_cluster").code, 13);
  assert.equal(joinRefusal("unauthorized").code, 14);
});

Deno.test("a removed cluster is never chosen and its key and reservations are forgotten", async () => {
  const { allocator, add, registry } = setup();
  const id = add(1);
  allocator.reserve(id, 0);
  const record = registry.get(id)!;
  registry.remove(id, "disconnected");
  assert.deepEqual(allocator.choose(id, 0), joinRefusal("unknown_cluster"));
  await assert.rejects(
    allocator.issueTicket(record, "p", new Uint8Array(32), 0),
    RangeError,
  );
});

Deno.test("issued tickets carry the claims and the cluster's address and key", async () => {
  const key = crypto.getRandomValues(new Uint8Array(32));
  const { allocator, add, registry } = setup();
  const id = add(1, { host: "10.0.0.9", keyVersion: 4 }, key);
  const clientKey = crypto.getRandomValues(new Uint8Array(32));
  const packet = await allocator.issueTicket(registry.get(id)!, "alice", clientKey, 1_000);
  assert.equal(packet.clusterId, id);
  assert.equal(packet.host, "10.0.0.9");
  assert.equal(packet.port, 1);
  assert.equal(packet.keyVersion, 4);
  assert.deepEqual(packet.clusterPublicKey, new Uint8Array(32).fill(1));
  const claims = await openJoinTicket(key, packet.ticket);
  assert.equal(claims.clusterId, id);
  assert.equal(claims.playerId, "alice");
  assert.equal(claims.expiresAtMs, 31_000);
  assert.deepEqual(claims.clientKeyHash, await sha256(clientKey));
  const again = await allocator.issueTicket(registry.get(id)!, "alice", clientKey, 1_000);
  assert.notDeepEqual((await openJoinTicket(key, again.ticket)).ticketId, claims.ticketId);
});

Deno.test("the allocator refuses durations that are not positive", () => {
  const registry = new ClusterRegistry();
  assert.throws(() => new ClusterAllocator({ registry, ticketTtlMs: 0 }), RangeError);
  assert.throws(
    () => new ClusterAllocator({ registry, ticketTtlMs: 1, reservationWindowMs: -1 }),
    RangeError,
  );
});

// ------------------------------------------------------------------------------ client session

function session(authenticate: AuthenticateHook = guestAuthenticate, maxFrameBytes = 65536) {
  const fixture = setup();
  const s = new MasterClientSession({
    allocator: fixture.allocator,
    authenticate,
    remoteAddr: { hostname: "127.0.0.1", port: 5555 },
    maxFrameBytes,
    now: () => 1_000,
  });
  return { ...fixture, session: s };
}

const joinPacket = (clusterId: number, credential = new Uint8Array()): Packet => ({
  kind: "JoinCluster",
  clusterId,
  clientPublicKey: new Uint8Array(32).fill(3),
  credential,
});

Deno.test("the session answers RequestClusters with every cluster and its full flag", async () => {
  const { session: s, add, registry } = session();
  const a = add(1, { maxConnections: 1 });
  const b = add(2);
  registry.heartbeat(a, 1, 1, 500);
  const { action } = await s.handle({ kind: "RequestClusters" });
  assert.equal(action.kind, "send");
  if (action.kind !== "send" || action.packet.kind !== "SendClusters") return;
  assert.deepEqual(action.packet.clusters.map((c) => [c.id, c.load, c.full]), [
    [a, 1, true],
    [b, 0, false],
  ]);
});

Deno.test("a cluster list larger than a frame is cut to fit", async () => {
  const { session: s, add } = session(guestAuthenticate, 200);
  for (let port = 1; port <= 20; port++) add(port, { name: "n".repeat(30) });
  const { action } = await s.handle({ kind: "RequestClusters" });
  assert.ok(action.kind === "send");
  const bytes = encodePacket(action.packet);
  assert.ok(bytes.length <= 200, `${bytes.length}`);
  assert.ok(action.packet.kind === "SendClusters" && action.packet.clusters.length >= 3);
});

Deno.test("a join is answered with a ticket and its outcome", async () => {
  const { session: s, add } = session(() => Promise.resolve({ playerId: "bob" }));
  const id = add(1);
  const result = await s.handle(joinPacket(0));
  assert.equal(result.action.kind, "send");
  assert.ok(result.action.kind === "send" && result.action.packet.kind === "JoinTicket");
  assert.deepEqual(result.join, { issued: true, clusterId: id as ClusterId, playerId: "bob" });
});

Deno.test("hook refusals, throws and bad ids give Unauthorized without a ticket", async () => {
  const hooks: AuthenticateHook[] = [
    () => Promise.resolve(null),
    () => Promise.reject(new Error("down")),
    () => Promise.resolve({ playerId: "" }),
    () => Promise.resolve({ playerId: "\ud800" }),
    () => Promise.resolve({ playerId: "é".repeat(128) }),
    () => Promise.resolve({ playerId: 42 } as unknown as { playerId: string }),
  ];
  for (const hook of hooks) {
    const { session: s, add } = session(hook);
    add(1);
    const result = await s.handle(joinPacket(0));
    assert.deepEqual(result.join, { issued: false, reason: "unauthorized" });
    assert.deepEqual(result.action, {
      kind: "send",
      packet: { kind: "Error", code: 14, reason: "not authorized" },
    });
  }
});

Deno.test("the hook receives the credential and the client's address", async () => {
  let seen: { credential: string; host: string; port: number } | undefined;
  const hook: AuthenticateHook = (credential, info) => {
    seen = {
      credential: new TextDecoder().decode(credential),
      host: info.remoteAddr.hostname,
      port: info.remoteAddr.port,
    };
    return Promise.resolve({ playerId: "p" });
  };
  const { session: s, add } = session(hook);
  add(1);
  await s.handle(joinPacket(0, new TextEncoder().encode("token")));
  assert.deepEqual(seen, { credential: "token", host: "127.0.0.1", port: 5555 });
});

Deno.test("join refusals keep the connection open; bad keys and stray packets close it", async () => {
  const { session: s } = session();
  for (const [id, code] of [[0, 13], [9, 11]]) {
    const result = await s.handle(joinPacket(id));
    assert.ok(result.action.kind === "send" && result.action.packet.kind === "Error");
    assert.equal(result.action.packet.code, code);
  }
  const badKey = await s.handle({
    kind: "JoinCluster",
    clusterId: 0,
    clientPublicKey: new Uint8Array(33),
    credential: new Uint8Array(),
  });
  assert.equal(badKey.action.kind, "close");
  assert.ok(badKey.action.kind === "close" && badKey.action.code === 5);
  const stray = await s.handle({ kind: "Heartbeat", load: 1, maxConnections: 1 });
  assert.ok(stray.action.kind === "close" && stray.action.code === 7);
  const peerError = await s.handle({ kind: "Error", code: 18, reason: "bye" });
  assert.ok(peerError.action.kind === "close" && peerError.action.code === undefined);
  assert.deepEqual((await s.handle({ kind: "Pong", value: 1 })).action, { kind: "none" });
});
