/**
 * The master's ticket rate limits (JoinLimiter), per-requester reservation caps and reservation
 * release (ClusterAllocator), driven without sockets with the time passed in: the measured
 * attack (one connection asking 24 tickets/s, never using them) replayed on a fake clock.
 */

import assert from "node:assert/strict";
import { ClusterAllocator } from "../master/allocation.ts";
import { guestAuthenticate } from "../master/authenticate.ts";
import { MasterClientSession } from "../master/master_client_session.ts";
import { JoinLimiter } from "../master/join_limiter.ts";
import { addressKey } from "../shared/ip_address.ts";
import { type ClusterId, ClusterRegistry } from "../master/registry.ts";
import { ErrorCode } from "../shared/protocol/protocol_error.ts";
import type { Packet } from "../shared/protocol/packets.ts";

// ------------------------------------------------------------------------------ JoinLimiter

Deno.test("a connection over its burst is refused, cools down for a second, then is admitted", () => {
  const limiter = new JoinLimiter({ connectionRatePerS: 2, connectionBurst: 4 });
  const conn = limiter.connection();
  for (let i = 0; i < 4; i++) assert.deepEqual(limiter.admit(conn, "10.0.0.1", 0), { ok: true });
  assert.deepEqual(limiter.admit(conn, "10.0.0.1", 0), { ok: false, scope: "connection" });
  assert.equal(limiter.refused(conn, 0), false);
  // 600 ms later a token is back, but the refusal is still being served.
  assert.deepEqual(limiter.admit(conn, "10.0.0.1", 600), { ok: false, scope: "connection" });
  assert.equal(limiter.refused(conn, 600), false);
  // Two strikes refill by 2 s after the first.
  assert.deepEqual(limiter.admit(conn, "10.0.0.1", 2000), { ok: true });
});

Deno.test("a connection that keeps asking while refused runs out of strikes", () => {
  const limiter = new JoinLimiter({ refusalsBeforeClose: 10 });
  const conn = limiter.connection();
  let closedAt: number | undefined;
  // 24 requests a second, as measured, for at most 10 s.
  for (let i = 0; i < 240 && closedAt === undefined; i++) {
    const now = Math.round(i * 1000 / 24);
    if (!limiter.admit(conn, "10.0.0.1", now).ok && limiter.refused(conn, now)) closedAt = now;
  }
  assert.ok(closedAt !== undefined, "the flooder is closed");
  assert.ok(closedAt < 1000, `closed after ${closedAt} ms`);
});

Deno.test("an honest client asking one ticket every 600 ms for an hour is never refused", () => {
  const limiter = new JoinLimiter();
  const conn = limiter.connection();
  for (let now = 0; now < 3_600_000; now += 600) {
    assert.deepEqual(limiter.admit(conn, "10.0.0.1", now), { ok: true });
    assert.deepEqual(limiter.admitPlayer("alice", now), { ok: true });
  }
  // And a burst of four at once (a client retrying over several clusters).
  const other = limiter.connection();
  for (let i = 0; i < 4; i++) assert.equal(limiter.admit(other, "10.0.0.2", 0).ok, true);
});

Deno.test("connections of one address share its bucket; other addresses are not affected", () => {
  const limiter = new JoinLimiter({ addressRatePerS: 1, addressBurst: 3 });
  for (let i = 0; i < 3; i++) {
    assert.deepEqual(limiter.admit(limiter.connection(), "10.0.0.1", 0), { ok: true });
  }
  assert.deepEqual(limiter.admit(limiter.connection(), "10.0.0.1", 0), {
    ok: false,
    scope: "address",
  });
  assert.deepEqual(limiter.admit(limiter.connection(), "10.0.0.2", 0), { ok: true });
});

Deno.test("one player id asking from many connections is limited as one", () => {
  const limiter = new JoinLimiter({ playerRatePerS: 1, playerBurst: 2 });
  assert.deepEqual(limiter.admitPlayer("alice", 0), { ok: true });
  assert.deepEqual(limiter.admitPlayer("alice", 0), { ok: true });
  assert.deepEqual(limiter.admitPlayer("alice", 0), { ok: false, scope: "player" });
  assert.deepEqual(limiter.admitPlayer("bob", 0), { ok: true });
  assert.deepEqual(limiter.admitPlayer("alice", 1000), { ok: true });
});

Deno.test("addresses and players an attacker chooses never grow the maps past the cap", () => {
  const limiter = new JoinLimiter({ maxTrackedKeys: 100 });
  for (let i = 0; i < 100_000; i++) {
    limiter.admit(limiter.connection(), `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`, i);
    limiter.admitPlayer(`guest-${i}`, i);
  }
  assert.ok(limiter.trackedKeys.addresses <= 100, JSON.stringify(limiter.trackedKeys));
  assert.ok(limiter.trackedKeys.players <= 100, JSON.stringify(limiter.trackedKeys));
});

Deno.test("idle entries are swept at the cap before a busy one is forgotten", () => {
  const limiter = new JoinLimiter({ maxTrackedKeys: 10, addressRatePerS: 1, addressBurst: 2 });
  // A busy address (its bucket empty) and nine idle ones.
  limiter.admit(limiter.connection(), "busy", 0);
  limiter.admit(limiter.connection(), "busy", 0);
  for (let i = 0; i < 9; i++) limiter.admit(limiter.connection(), `idle-${i}`, 0);
  // 5 s later the idle ones are full again; a new address sweeps them, keeps "busy".
  limiter.admit(limiter.connection(), "busy", 5000);
  limiter.admit(limiter.connection(), "busy", 5000);
  limiter.admit(limiter.connection(), "newcomer", 5500);
  assert.equal(limiter.forgotten, 0);
  assert.deepEqual(limiter.admit(limiter.connection(), "busy", 5500), {
    ok: false,
    scope: "address",
  });
});

Deno.test("limits that are not positive are RangeErrors naming the limit", () => {
  assert.throws(() => new JoinLimiter({ connectionRatePerS: 0 }), /connectionRatePerS/);
  assert.throws(() => new JoinLimiter({ addressBurst: -1 }), /addressBurst/);
  assert.throws(() => new JoinLimiter({ refusalsBeforeClose: 1.5 }), /refusalsBeforeClose/);
  assert.throws(() => new JoinLimiter({ maxTrackedKeys: 0 }), /maxTrackedKeys/);
  const registry = new ClusterRegistry();
  assert.throws(
    () =>
      new ClusterAllocator({
        registry,
        ticketTtlMs: 1,
        reservationLimits: { perAddress: 0 },
      }),
    /perAddress/,
  );
});

// ------------------------------------------------------------------------------ reservations

function cluster(registry: ClusterRegistry, maxConnections: number, port = 1): ClusterId {
  return registry.register({
    name: `c${port}`,
    host: "127.0.0.1",
    port,
    maxConnections,
    keyVersion: 1,
    publicKey: new Uint8Array(32),
    keyName: "k",
  }, 0).record.id;
}

Deno.test("a requester holds at most its cap of reservations; others still find room", () => {
  const registry = new ClusterRegistry();
  const allocator = new ClusterAllocator({ registry, ticketTtlMs: 30_000 });
  const id = cluster(registry, 12);
  const flooder = { connection: "1", address: "10.0.0.66", player: "guest-1" };
  let reserved = 0;
  for (let i = 0; i < 24; i++) {
    if (allocator.capReached({ ...flooder, player: `guest-${i}` }, 10) !== undefined) continue;
    allocator.reserve(id, 10, { ...flooder, player: `guest-${i}` });
    reserved++;
  }
  assert.equal(reserved, 3);
  // The cluster still has 9 free slots for everyone else.
  assert.equal(allocator.effectiveLoad(registry.get(id)!, 20), 3);
  for (let i = 0; i < 9; i++) {
    const honest = { connection: `h${i}`, address: `10.0.1.${i}`, player: `p${i}` };
    assert.equal(allocator.capReached(honest, 20), undefined);
    assert.ok(allocator.choose(0, 20).ok);
    allocator.reserve(id, 20, honest);
  }
});

Deno.test("the address cap holds across connections, the player cap across addresses", () => {
  const registry = new ClusterRegistry();
  const allocator = new ClusterAllocator({
    registry,
    ticketTtlMs: 30_000,
    reservationLimits: { perConnection: 1, perAddress: 2, perPlayer: 2 },
  });
  const id = cluster(registry, 0);
  allocator.reserve(id, 0, { connection: "a", address: "nat", player: "p1" });
  allocator.reserve(id, 0, { connection: "b", address: "nat", player: "p2" });
  assert.equal(
    allocator.capReached({ connection: "c", address: "nat", player: "p3" }, 0),
    "address",
  );
  allocator.reserve(id, 0, { connection: "d", address: "x", player: "alice" });
  allocator.reserve(id, 0, { connection: "e", address: "y", player: "alice" });
  assert.equal(
    allocator.capReached({ connection: "f", address: "z", player: "alice" }, 0),
    "player",
  );
  assert.equal(
    allocator.capReached({ connection: "a", address: "w", player: "q" }, 0),
    "connection",
  );
});

Deno.test("reservations end at the next heartbeat or the window; unused ones are counted", () => {
  const registry = new ClusterRegistry();
  let unusedEvents = 0;
  const allocator = new ClusterAllocator({
    registry,
    ticketTtlMs: 30_000,
    reservationWindowMs: 5000,
    onReleasedUnused: (count) => unusedEvents += count,
  });
  const id = cluster(registry, 12);
  const requester = (i: number) => ({ connection: `${i}`, address: `a${i}`, player: `p${i}` });
  for (let i = 0; i < 3; i++) allocator.reserve(id, 100, requester(i));
  assert.equal(allocator.heldReservations, 3);
  // One of the three players arrived by the next heartbeat: two were never used.
  registry.heartbeat(id, 1, 12, 1000);
  assert.equal(allocator.effectiveLoad(registry.get(id)!, 1000), 1);
  assert.equal(allocator.releasedUnused, 2);
  assert.equal(allocator.heldReservations, 0);
  assert.equal(allocator.capReached(requester(0), 1000), undefined);
  // Without heartbeats (a stalled cluster) the window ends them.
  allocator.reserve(id, 2000, requester(5));
  assert.equal(allocator.effectiveLoad(registry.get(id)!, 6999), 2);
  assert.equal(allocator.effectiveLoad(registry.get(id)!, 7001), 1);
  assert.equal(allocator.releasedUnused, 3);
  assert.equal(unusedEvents, 3);
});

Deno.test("a connection refused for abuse loses its reservations at once", () => {
  const registry = new ClusterRegistry();
  const allocator = new ClusterAllocator({ registry, ticketTtlMs: 30_000 });
  const id = cluster(registry, 4);
  allocator.reserve(id, 0, { connection: "bad", address: "a", player: "p1" });
  allocator.reserve(id, 0, { connection: "bad", address: "a", player: "p2" });
  allocator.reserve(id, 0, { connection: "good", address: "b", player: "p3" });
  assert.equal(allocator.releaseConnection("bad"), 2);
  assert.equal(allocator.effectiveLoad(registry.get(id)!, 1), 1);
  assert.equal(allocator.releasedUnused, 2);
  assert.equal(allocator.releaseConnection("bad"), 0);
});

// ------------------------------------------------------------------------------ the attack, replayed

const JOIN: Packet = {
  kind: "JoinCluster",
  clusterId: 0,
  clientPublicKey: new Uint8Array(32),
  credential: new Uint8Array(),
};

interface Replay {
  /** Honest joins that got a ticket (of 12). */
  readonly honestIssued: number;
  /** The flooder's answers, in order. */
  readonly answers: readonly string[];
  /** The close action the flooder got, if it was closed. */
  readonly closeAction?: unknown;
}

/**
 * Replays the measured attack on a fake clock: one connection asks a ticket 24 times a second
 * for 10 s and never uses them; an honest client joins every ~0.8 s (used at once, so the next
 * heartbeat reports it) until 12 did; the cluster (capacity 12) heartbeats every second.
 */
async function replayAttack(limiter: JoinLimiter | undefined): Promise<Replay> {
  let now = 0;
  const registry = new ClusterRegistry();
  const allocator = new ClusterAllocator({ registry, ticketTtlMs: 30_000 });
  const id = cluster(registry, 12);
  allocator.setClusterKey(id, new Uint8Array(32));
  const session = (i: number) =>
    new MasterClientSession({
      allocator,
      authenticate: guestAuthenticate,
      remoteAddr: { hostname: "127.0.0.1", port: 40000 + i },
      maxFrameBytes: 65536,
      joinLimiter: limiter,
      connectionKey: `c${i}`,
      now: () => now,
    });
  const flooder = session(0);
  const answers: string[] = [];
  let closeAction: unknown;
  let load = 0;
  let honestIssued = 0;
  let honestTried = 0;
  for (let tick = 0; tick < 240; tick++) {
    now = Math.round(tick * 1000 / 24);
    if (tick % 24 === 0) registry.heartbeat(id, load, 12, now);
    if (closeAction === undefined) {
      const result = await flooder.handle(JOIN);
      const action = result.action;
      answers.push(action.kind === "send" ? action.packet.kind : action.kind);
      if (action.kind === "close") closeAction = action;
    }
    if (tick % 20 === 10 && honestTried < 12) {
      const result = await session(++honestTried).handle(JOIN);
      if (result.join?.issued === true) {
        honestIssued++;
        load++;
      }
    }
  }
  return { honestIssued, answers, closeAction };
}

Deno.test("without limits the replayed attack starves the cluster (the measured attack)", async () => {
  const replay = await replayAttack(undefined);
  console.log(`without limits: ${replay.honestIssued}/12 honest joins got a ticket`);
  assert.ok(replay.honestIssued < 12, `${replay.honestIssued} of 12 honest joins got a ticket`);
});

Deno.test("24 tickets/s from one connection never starve an empty cluster of 12 (fake clock)", async () => {
  // All on one address, as in the socket tests: the address limits are raised so the
  // connection limits are what is measured.
  const replay = await replayAttack(new JoinLimiter({ addressRatePerS: 1000, addressBurst: 1000 }));
  assert.equal(replay.honestIssued, 12);
  assert.deepEqual(replay.closeAction, {
    kind: "close",
    code: ErrorCode.RateLimited,
    message: "too many join requests",
  });
  const tickets = replay.answers.filter((a) => a === "JoinTicket").length;
  console.log(
    `with limits: 12/12 honest; the flooder got ${tickets} tickets and was closed after ` +
      `${replay.answers.length} requests`,
  );
  assert.ok(tickets <= 3, `the flooder got ${tickets} tickets`);
  assert.ok(replay.answers.length < 24, `closed after ${replay.answers.length} requests`);
});

Deno.test("IPv6 peers are limited by their /64, IPv4-mapped ones as IPv4", () => {
  assert.equal(addressKey("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
  assert.equal(addressKey("2001:db8:1:2::9"), "2001:db8:1:2::/64");
  assert.equal(addressKey("2001:0db8:0001:0002:ffff::"), "2001:db8:1:2::/64");
  assert.equal(addressKey("::1"), "0:0:0:0::/64");
  assert.equal(addressKey("fe80::1%eth0"), "fe80:0:0:0::/64");
  assert.equal(addressKey("::ffff:10.0.0.1"), "10.0.0.1");
  const limiter = new JoinLimiter({ addressRatePerS: 1, addressBurst: 1 });
  assert.equal(limiter.admit(limiter.connection(), addressKey("2001:db8::1"), 0).ok, true);
  assert.deepEqual(limiter.admit(limiter.connection(), addressKey("2001:db8::2"), 0), {
    ok: false,
    scope: "address",
  });
});
