/**
 * Join floods against a real master on 127.0.0.1 (in-process `startMaster`, a real
 * `startCluster` of capacity 12, raw clients): the measured attack — one connection asking 24
 * tickets a second and never using them — no longer starves the cluster, the flooder is
 * refused then closed with a reason, the master writes a handful of log lines instead of
 * thousands, and an honest client is never limited.
 *
 * Every test client shares 127.0.0.1, so tests that measure the connection limits raise the
 * per-address ones (an address stands for many players behind one NAT in production).
 */

import { captureLogs as captureLogsAt } from "./_logs.ts";
import assert from "node:assert/strict";
import { reset as resetLogging } from "@logtape/logtape";
import { type ClusterOptions, type ClusterServer, startCluster } from "../cluster/mod.ts";
import { type MasterOptions, type MasterServer, startMaster } from "../master/mod.ts";
import { generateKey } from "../shared/keys.ts";
import type { LogRecord } from "../shared/logging.ts";
import { renderPrometheus } from "../shared/metrics.ts";
import { type Packet, PROTOCOL_VERSION } from "../shared/protocol/packets.ts";
import { ErrorCode } from "../shared/protocol/protocol_error.ts";
import { type ClusterJoin, playerJoins, RawClient, waitUntil } from "./_raw_client.ts";
import { registerRawCluster } from "./_master_peer.ts";

interface World {
  readonly master: MasterServer;
  readonly cluster: ClusterServer | undefined;
  readonly keysDir: string;
}

async function withWorld(
  masterOptions: MasterOptions,
  clusterOptions: ClusterOptions | false,
  run: (world: World) => Promise<void>,
): Promise<void> {
  const keysDir = await Deno.makeTempDir({ prefix: "sustenet_join_flood_" });
  await generateKey(keysDir, "cluster_key");
  const master = await startMaster({ port: 0, keysDir, ...masterOptions });
  let cluster: ClusterServer | undefined;
  try {
    if (clusterOptions !== false) {
      cluster = await startCluster({
        port: 0,
        keysDir,
        serverName: "eu-1",
        master: { hostname: "127.0.0.1", port: master.addr.port },
        ...clusterOptions,
      });
      await waitUntil(() => master.registry.size === 1, "the cluster to be listed", 60_000);
    }
    await run({ master, cluster, keysDir });
  } finally {
    await cluster?.stop();
    await master.stop();
    await Deno.remove(keysDir, { recursive: true });
  }
}

const JOIN: Packet = {
  kind: "JoinCluster",
  clusterId: 0,
  clientPublicKey: new Uint8Array(32).fill(7),
  credential: new Uint8Array(),
};

/** What one flooding connection saw. */
interface Flood {
  /** JoinCluster requests sent. */
  readonly sent: number;
  /** Tickets received. */
  readonly tickets: number;
  /** Error answers, in order. */
  readonly errors: readonly PacketOfError[];
  /** When the first RateLimited error arrived. */
  readonly firstRefusal: Promise<void>;
  /** Resolves when the flood ended (connection closed or `maxRequests` sent and answered). */
  readonly done: Promise<void>;
}

type PacketOfError = Extract<Packet, { kind: "Error" }>;

/**
 * One connection asking a ticket every `intervalMs` (24/s by default) and never using them,
 * until the master closes it or `maxRequests` were sent.
 */
async function flood(port: number, maxRequests = 240, intervalMs = 42): Promise<Flood> {
  const client = await RawClient.connect(port);
  client.send({ kind: "Hello", version: PROTOCOL_VERSION, role: 1 });
  await client.expect("HelloOk");
  const errors: PacketOfError[] = [];
  let sent = 0;
  let tickets = 0;
  const refused = Promise.withResolvers<void>();
  const reading = (async () => {
    while (true) {
      let packet: Packet;
      try {
        packet = await client.next(10_000);
      } catch {
        return; // closed (or nothing more within 10 s)
      }
      if (packet.kind === "JoinTicket") tickets++;
      if (packet.kind === "Error") {
        errors.push(packet);
        if (packet.code === ErrorCode.RateLimited) refused.resolve();
      }
      if (sent >= maxRequests && errors.length + tickets >= sent) return;
    }
  })();
  const sending = (async () => {
    while (sent < maxRequests && client.connection.isOpen) {
      client.send(JOIN);
      sent++;
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  })();
  const state = {
    get sent() {
      return sent;
    },
    get tickets() {
      return tickets;
    },
    errors,
    firstRefusal: refused.promise,
    done: Promise.all([reading, sending]).then(async () => {
      refused.resolve();
      await client.close();
    }),
  };
  return state;
}

const captureLogs = () => captureLogsAt("info");

/**
 * The most master lines a flood from one address may cause between `from` and `to`: per 10 s
 * window, 3 lines per kind (ticket issued, each refusal reason and scope, closed for abuse: at
 * most 6 kinds) and one "N more lines … were not logged" per kind, so a slow run (more windows)
 * is not a failure.
 */
function lineBound(from: number, to: number): number {
  return 6 * (3 + 1) * Math.ceil((to - from + 1) / 10_000);
}

function masterLines(records: readonly LogRecord[], from: number, to: number): LogRecord[] {
  return records.filter((r) =>
    r.category[1] === "master" && r.timestamp >= from && r.timestamp <= to
  );
}

/**
 * For tests against a raw cluster that never heartbeats: it stays listed and its reservations
 * last, however slowly the test runs.
 */
const SILENT_CLUSTER_KEPT: MasterOptions = {
  heartbeatTimeoutMs: 600_000,
  reservationWindowMs: 600_000,
};

// Every client is on 127.0.0.1: per-address limits high enough for 12 honest players plus one
// flooder, so what is measured is the connection limits.
const ONE_ADDRESS_FOR_ALL: MasterOptions = {
  joinLimits: { addressRatePerS: 100, addressBurst: 100, reservationsPerAddress: 64 },
};

Deno.test("the measured attack: 24 tickets/s from one connection, 12 honest players still join a cluster of 12", async () => {
  const records = await captureLogs();
  try {
    await withWorld(ONE_ADDRESS_FOR_ALL, { maxConnections: 12 }, async ({ master, cluster }) => {
      const started = Date.now();
      const flooder = await flood(master.addr.port);
      await flooder.firstRefusal;
      // 12 honest players join while the flood is on, all at once, each with its own
      // connection, and stay connected.
      const joins: ClusterJoin[] = await Promise.all(
        Array.from({ length: 12 }, () => playerJoins(master.addr.port, cluster!.addr.port)),
      );
      try {
        assert.equal(cluster!.players.size, 12);
        await flooder.done;
        const ended = Date.now();

        // (2) The flooder was refused with RateLimited, then closed with a reason.
        assert.ok(flooder.tickets <= 3, `the flooder got ${flooder.tickets} tickets`);
        assert.ok(flooder.errors.length > 0);
        for (const error of flooder.errors) assert.equal(error.code, ErrorCode.RateLimited);
        const last = flooder.errors.at(-1)!;
        assert.equal(last.reason, "too many join requests");
        assert.ok(flooder.sent < 240, `closed after ${flooder.sent} requests`);
        assert.equal(master.metrics.joinAbuseClosed.value, 1);
        assert.ok(master.metrics.ticketsRateLimited.get("connection") > 0);
        assert.equal(master.metrics.ticketsIssued.value, 12 + flooder.tickets);
        // The flooder's reservations were released when it was refused.
        assert.ok(master.metrics.reservationsReleasedUnused.value >= flooder.tickets);

        // (3) A handful of master log lines for the whole flood.
        const lines = masterLines(records, started, ended);
        console.log(
          `flooder: ${flooder.sent} requests, ${flooder.tickets} tickets, ` +
            `${flooder.errors.length} refusals, closed after ${ended - started} ms; ` +
            `12/12 honest joined; ${lines.length} master log lines`,
        );
        assert.ok(lines.length <= lineBound(started, ended), `${lines.length} master log lines`);
      } finally {
        await Promise.all(joins.map((join) => join.client.close()));
      }
    });
  } finally {
    await resetLogging();
  }
});

Deno.test("a flooder that reconnects again and again gets a few log lines, never one per request", async () => {
  const records = await captureLogs();
  try {
    // Default limits: the flooder's address runs out too.
    await withWorld({}, { maxConnections: 12 }, async ({ master }) => {
      const started = Date.now();
      let requests = 0;
      for (let i = 0; i < 20; i++) {
        // As fast as it can: 50 requests back to back per connection.
        const flooder = await flood(master.addr.port, 50, 0);
        await flooder.done;
        requests += flooder.sent;
      }
      const ended = Date.now();
      const lines = masterLines(records, started, ended);
      console.log(
        `${requests} JoinCluster over 20 connections in ${ended - started} ms: ` +
          `${lines.length} master log lines; ` +
          `refused by connection ${master.metrics.ticketsRateLimited.get("connection")}, ` +
          `by address ${master.metrics.ticketsRateLimited.get("address")}, ` +
          `capped ${master.metrics.reservationsCapped.get("connection")}, ` +
          `closed ${master.metrics.joinAbuseClosed.value}`,
      );
      assert.ok(requests >= 200);
      assert.ok(lines.length <= lineBound(started, ended), `${lines.length} master log lines`);
      assert.ok(master.metrics.joinAbuseClosed.value >= 1);
    });
  } finally {
    await resetLogging();
  }
});

Deno.test("an honest client joining, leaving and rejoining every 600 ms is never limited", async () => {
  await withWorld({}, { maxConnections: 12 }, async ({ master, cluster }) => {
    for (let i = 0; i < 6; i++) {
      const join = await playerJoins(master.addr.port, cluster!.addr.port);
      await join.client.close();
      await new Promise((resolve) => setTimeout(resolve, 600));
    }
    // And one connection asking tickets for three clusters in a row (auto-join retries).
    const client = await RawClient.connect(master.addr.port);
    client.send({ kind: "Hello", version: PROTOCOL_VERSION, role: 1 });
    await client.expect("HelloOk");
    for (let i = 0; i < 3; i++) {
      client.send(JOIN);
      await client.expect("JoinTicket");
    }
    await client.close();
    const text = renderPrometheus(master.metrics.families());
    for (const scope of ["connection", "address", "player"]) {
      assert.match(text, new RegExp(`tickets_rate_limited_total\\{scope="${scope}"\\} 0$`, "m"));
      assert.match(text, new RegExp(`reservations_capped_total\\{scope="${scope}"\\} 0$`, "m"));
    }
    assert.match(text, /^sustenet_master_join_abuse_closed_total 0$/m);
    assert.equal(master.metrics.ticketsIssued.value, 9);
  });
});

Deno.test("connections of one address share its reservation cap; the rest get RateLimited", async () => {
  await withWorld(SILENT_CLUSTER_KEPT, false, async ({ master, keysDir }) => {
    const key = await Deno.readFile(`${keysDir}/cluster_key`);
    // A cluster that never heartbeats: its reservations last the whole window.
    const raw = await registerRawCluster(master.addr.port, {
      keyName: "cluster_key",
      key,
      maxConnections: 100,
    });
    try {
      const answers: string[] = [];
      for (let i = 0; i < 10; i++) {
        const client = await RawClient.connect(master.addr.port);
        client.send({ kind: "Hello", version: PROTOCOL_VERSION, role: 1 });
        await client.expect("HelloOk");
        client.send(JOIN);
        const answer = await client.next();
        answers.push(
          answer.kind === "Error" ? `Error ${answer.code} ${answer.reason}` : answer.kind,
        );
        await client.close();
      }
      assert.deepEqual(answers, [
        ...Array(8).fill("JoinTicket"),
        ...Array(2).fill("Error 19 too many unused tickets; wait a second"),
      ]);
      assert.equal(master.metrics.reservationsCapped.get("address"), 2);
      assert.equal(master.metrics.joinsRefused.get("reservation_cap"), 2);
    } finally {
      await raw.peer.close();
    }
  });
});

Deno.test("one player id is limited across connections", async () => {
  const options: MasterOptions = {
    authenticate: () => Promise.resolve({ playerId: "alice" }),
    joinLimits: { playerRatePerS: 1, playerBurst: 2, reservationsPerPlayer: 10 },
  };
  await withWorld(options, { maxConnections: 12 }, async ({ master }) => {
    const answers: string[] = [];
    for (let i = 0; i < 3; i++) {
      const client = await RawClient.connect(master.addr.port);
      client.send({ kind: "Hello", version: PROTOCOL_VERSION, role: 1 });
      await client.expect("HelloOk");
      client.send(JOIN);
      const answer = await client.next();
      answers.push(answer.kind === "Error" ? `Error ${answer.code}` : answer.kind);
      await client.close();
    }
    assert.deepEqual(answers, ["JoinTicket", "JoinTicket", "Error 19"]);
    assert.equal(master.metrics.ticketsRateLimited.get("player"), 1);
  });
});

/** Asks one ticket on a fresh connection; the answer's kind, or `Error <code>`. */
async function askOnce(port: number): Promise<string> {
  const client = await RawClient.connect(port);
  try {
    client.send({ kind: "Hello", version: PROTOCOL_VERSION, role: 1 });
    await client.expect("HelloOk");
    client.send(JOIN);
    const answer = await client.next();
    return answer.kind === "Error" ? `Error ${answer.code}` : answer.kind;
  } finally {
    await client.close();
  }
}

/**
 * Against a cluster of 12 that does not heartbeat (so reservations last their 5 s window):
 * one connection asks 24 tickets back to back, then 12 other connections ask one each.
 */
async function unusedTicketsThenHonest(options: MasterOptions) {
  let result: { flooderTickets: number; honest: string[] } | undefined;
  await withWorld({ ...SILENT_CLUSTER_KEPT, ...options }, false, async ({ master, keysDir }) => {
    const key = await Deno.readFile(`${keysDir}/cluster_key`);
    const raw = await registerRawCluster(master.addr.port, {
      keyName: "cluster_key",
      key,
      maxConnections: 12,
    });
    try {
      const flooder = await flood(master.addr.port, 24, 0);
      await flooder.done;
      const honest: string[] = [];
      for (let i = 0; i < 12; i++) honest.push(await askOnce(master.addr.port));
      result = { flooderTickets: flooder.tickets, honest };
    } finally {
      await raw.peer.close();
    }
  });
  return result!;
}

Deno.test("with the limits lifted, unused tickets from one connection fill an empty cluster (the attack is real)", async () => {
  const lifted = 1_000_000;
  const { flooderTickets, honest } = await unusedTicketsThenHonest({
    joinLimits: {
      connectionRatePerS: lifted,
      connectionBurst: lifted,
      addressRatePerS: lifted,
      addressBurst: lifted,
      reservationsPerConnection: lifted,
      reservationsPerAddress: lifted,
    },
  });
  assert.equal(flooderTickets, 12);
  assert.deepEqual(honest, Array(12).fill(`Error ${ErrorCode.NoCluster}`));
});

Deno.test("with the default limits, a connection flooding unused tickets holds none; 12 others get the 12 slots", async () => {
  const { flooderTickets, honest } = await unusedTicketsThenHonest(ONE_ADDRESS_FOR_ALL);
  // Three tickets (its reservation cap), then refused: a requester over its limit loses its
  // reservations, so the cluster is empty again for the next players.
  assert.equal(flooderTickets, 3);
  assert.deepEqual(honest, Array(12).fill("JoinTicket"));
});
