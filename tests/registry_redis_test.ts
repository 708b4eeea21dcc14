/**
 * Several masters sharing one registry through a real redis-server (Debian's, started by each
 * test on 127.0.0.1): a cluster linked to one master is listed by the other, which issues
 * tickets the cluster accepts; cluster ids never collide; an unreachable Redis at start exits
 * 2 naming the URL; garbage, silence and a restart of Redis degrade `/health` and recover; a
 * join storm through two masters spreads by capacity and never tickets a full cluster.
 */

import assert from "node:assert/strict";
import { startCluster } from "../cluster/mod.ts";
import { SustenetClient } from "../client/mod.ts";
import { ClusterAllocator } from "../master/allocation.ts";
import { type MasterServer, startMaster } from "../master/mod.ts";
import { RedisRegistryStore } from "../master/redis_registry_store.ts";
import { ClusterRegistry } from "../master/registry.ts";
import { RegistryStoreError } from "../master/registry_store.ts";
import { RegistrySync } from "../master/registry_sync.ts";
import { createClient } from "redis";
import { type RawCluster, registerRawCluster } from "./_master_peer.ts";
import { freePort, spawnRole, withKeysDir } from "./_process.ts";
import { redisPing, startRedis } from "./_redis.ts";
import { ONE_ADDRESS_FOR_ALL, playerJoins, requestTicket, waitUntil } from "./_raw_client.ts";

const WAIT_MS = 30_000;

async function health(master: MasterServer): Promise<Record<string, unknown>> {
  const addr = master.statusAddr!;
  const response = await fetch(`http://${addr.hostname}:${addr.port}/health`);
  return await response.json();
}

/** Polls `/health` until its status is `status` (300 tries, 50 ms apart); the last body. */
async function healthUntil(
  master: MasterServer,
  status: "ok" | "degraded",
): Promise<Record<string, unknown>> {
  let body: Record<string, unknown> = {};
  for (let i = 0; i < 300 && body.status !== status; i++) {
    body = await health(master);
    if (body.status !== status) await new Promise((r) => setTimeout(r, 50));
  }
  return body;
}

/** Cluster `eu-1` linked to the master on `masterPort`, heartbeating every 100 ms. */
function startEu1(keysDir: string, masterPort: number): ReturnType<typeof startCluster> {
  return startCluster({
    port: 0,
    keysDir,
    serverName: "eu-1",
    master: { hostname: "127.0.0.1", port: masterPort },
    heartbeatIntervalMs: 100,
  });
}

Deno.test("a cluster linked to one master is listed by another, whose tickets it accepts", async () => {
  await using redis = await startRedis();
  await withKeysDir(async (keysDir) => {
    const options = { port: 0, keysDir, redisUrl: redis.url, joinLimits: ONE_ADDRESS_FOR_ALL };
    await using a = await startMaster(options);
    await using b = await startMaster({ ...options, status: { port: 0 } });
    await using cluster = await startEu1(keysDir, a.addr.port);
    await waitUntil(
      () => b.registry.list().some((r) => r.name === "eu-1"),
      "B lists eu-1",
      WAIT_MS,
    );
    const listed = b.registry.list().find((r) => r.name === "eu-1")!;
    assert.equal(listed.owner, a.registryStatus()?.masterId);
    assert.equal(listed.port, cluster.addr.port);
    // B never saw this cluster's key exchange: it seals with the shared key from keys_dir.
    const join = await playerJoins(b.addr.port, cluster.addr.port);
    await waitUntil(() => (b.registry.get(listed.id)?.load ?? 0) === 1, "B sees load 1", WAIT_MS);
    await join.client.close();
    const status = (await health(b)).registry as Record<string, unknown>;
    assert.equal(status.store, "redis");
    assert.equal(status.ok, true);
    console.log(
      `propagation A -> B: last ${status.lastDelayMs} ms, max ${status.maxDelayMs} ms`,
    );
    const addr = b.statusAddr!;
    const metrics = await (await fetch(`http://${addr.hostname}:${addr.port}/metrics`)).text();
    assert.match(metrics, /^sustenet_master_registry_store_up 1$/m);
    assert.match(metrics, /^sustenet_master_registry_remote_clusters 1$/m);
    assert.match(metrics, /^sustenet_master_registry_delay_seconds\{which="max"\} [\d.]+$/m);
  });
});

Deno.test("two masters racing for one cluster id: exactly one keeps it", async () => {
  await using redis = await startRedis();
  const sides = [0, 1].map(() => {
    const registry = new ClusterRegistry({ randomId: () => 42 });
    const allocator = new ClusterAllocator({ registry, ticketTtlMs: 30_000 });
    const store = new RedisRegistryStore({ url: redis.url });
    const sync = new RegistrySync({
      registry,
      allocator,
      store,
      heartbeatTimeoutMs: 3000,
      reservationWindowMs: 5000,
      ticketTtlMs: 30_000,
    });
    return { registry, sync };
  });
  try {
    for (const side of sides) await side.sync.start();
    const now = Date.now();
    sides.forEach((side, i) =>
      side.registry.register({
        name: `c${i}`,
        host: "127.0.0.1",
        port: 7000 + i,
        maxConnections: 0,
        keyVersion: 1,
        publicKey: new Uint8Array(32),
        keyName: "cluster_key",
      }, now)
    );
    const local = () => sides.map((s) => s.registry.list().filter((r) => r.owner === undefined));
    await waitUntil(() => local().flat().length === 1, "one claim to win", WAIT_MS);
    const [winner] = local().flat();
    assert.equal(winner.id, 42);
    // The loser lists the winner's cluster under that id, owned by the other master.
    const loser = sides.find((s) => s.registry.list().every((r) => r.owner !== undefined))!;
    await waitUntil(() => loser.registry.get(42)?.name === winner.name, "loser lists it", WAIT_MS);
    assert.notEqual(loser.registry.get(42)?.owner, undefined);
  } finally {
    for (const side of sides) await side.sync.stop();
  }
});

Deno.test("an unreachable Redis at start: deno task master exits 2 naming the URL", async () => {
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  const masterPort = await freePort();
  await using master = spawnRole("master", [
    "--port",
    String(masterPort),
    "--no-status-enabled",
    "--redis-url",
    url,
  ]);
  const status = await master.waitExit();
  assert.equal(status.code, 2, master.stderrText());
  assert.match(master.stderrText(), new RegExp(`cannot reach Redis at ${url}`));
});

/** A TCP proxy in front of Redis that can forward, go silent, or answer garbage. */
function startProxy(target: number) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let mode: "forward" | "silent" | "garbage" = "forward";
  const conns = new Set<Deno.Conn>();
  const serve = (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      (async () => {
        if (mode !== "forward") {
          const buffer = new Uint8Array(4096);
          while ((await conn.read(buffer).catch(() => null)) !== null) {
            if (mode === "garbage") await conn.write(new TextEncoder().encode("?!garbage\r\n"));
          }
          return;
        }
        const upstream = await Deno.connect({ hostname: "127.0.0.1", port: target });
        conns.add(upstream);
        await Promise.allSettled([
          conn.readable.pipeTo(upstream.writable),
          upstream.readable.pipeTo(conn.writable),
        ]);
      })().catch(() => {}).finally(() => conns.delete(conn));
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    /** Switches mode and cuts every connection (the client reconnects into the new mode). */
    set(next: typeof mode, cut = true) {
      mode = next;
      if (!cut) return;
      for (const conn of conns) {
        try {
          conn.close();
        } catch {
          // already closed
        }
      }
      conns.clear();
    },
    async close() {
      listener.close();
      this.set("forward");
      await serve;
    },
  };
}

Deno.test("Redis answering garbage or nothing: the master stays up, /health degrades and recovers", async () => {
  await using redis = await startRedis();
  const proxy = startProxy(redis.port);
  try {
    await withKeysDir(async (keysDir) => {
      await using master = await startMaster({
        port: 0,
        keysDir,
        redisUrl: `redis://127.0.0.1:${proxy.port}`,
        status: { port: 0 },
      });
      await using cluster = await startEu1(keysDir, master.addr.port);
      await waitUntil(() => master.registry.size === 1, "the cluster to be listed", WAIT_MS);
      for (const mode of ["garbage", "silent"] as const) {
        proxy.set(mode);
        let body = await healthUntil(master, "degraded");
        assert.equal(body.status, "degraded", `${mode}: ${JSON.stringify(body)}`);
        const registry = body.registry as Record<string, unknown>;
        assert.equal(registry.ok, false);
        console.log(`${mode}: /health ${JSON.stringify(registry.detail)}`);
        // Still serving: the cluster stays listed and joins still get tickets.
        assert.equal(master.registry.size, 1);
        const join = await playerJoins(master.addr.port, cluster.addr.port);
        await join.client.close();
        proxy.set("forward");
        body = await healthUntil(master, "ok");
        assert.equal(body.status, "ok", `${mode} recovery: ${JSON.stringify(body)}`);
      }
    });
  } finally {
    await proxy.close();
  }
});

Deno.test("Redis answering garbage at start: startMaster fails with store_unreachable", async () => {
  const proxy = startProxy(1);
  proxy.set("garbage", false);
  try {
    await withKeysDir(async (keysDir) => {
      await assert.rejects(
        startMaster({ port: 0, keysDir, redisUrl: `redis://127.0.0.1:${proxy.port}` }),
        (error: unknown) =>
          error instanceof RegistryStoreError && error.code === "store_unreachable" &&
          error.message.includes(`redis://127.0.0.1:${proxy.port}`),
      );
    });
  } finally {
    await proxy.close();
  }
});

Deno.test("a Redis restart: masters reconnect, rebuild, and never stop listing the cluster", async () => {
  let redis = await startRedis();
  const port = redis.port;
  try {
    await withKeysDir(async (keysDir) => {
      const options = { port: 0, keysDir, redisUrl: redis.url, heartbeatTimeoutMs: 3000 };
      await using a = await startMaster(options);
      await using b = await startMaster(options);
      await using _cluster = await startEu1(keysDir, a.addr.port);
      await waitUntil(() => b.registry.size === 1, "B lists the cluster", WAIT_MS);
      await redis.stop("SIGKILL");
      const killedAt = performance.now();
      redis = await startRedis({ port });
      let unlistedMs = 0;
      let last = performance.now();
      let recoveredMs: number | undefined;
      // Sampled every 20 ms until both masters answer health ok and Redis holds the record.
      for (let i = 0; i < 1500 && recoveredMs === undefined; i++) {
        await new Promise((r) => setTimeout(r, 20));
        const now = performance.now();
        if (b.registry.size === 0) unlistedMs += now - last;
        last = now;
        const okA = a.registryStatus()?.ok === true;
        const okB = b.registryStatus()?.ok === true;
        if (okA && okB && b.registry.size === 1 && (i % 10 === 0)) {
          const probe = new RedisRegistryStore({ url: redis.url });
          await probe.open(() => {});
          const snapshot = await probe.snapshot();
          await probe.close();
          if (snapshot.clusters.length === 1) recoveredMs = performance.now() - killedAt;
        }
      }
      assert.ok(recoveredMs !== undefined, "the registry was rebuilt in Redis");
      console.log(
        `redis restart: rebuilt in ${(recoveredMs / 1000).toFixed(2)} s; ` +
          `cluster unlisted on B for ${(unlistedMs / 1000).toFixed(2)} s`,
      );
      assert.ok(unlistedMs < 3000, `unlisted for ${unlistedMs} ms`);
    });
  } finally {
    await redis.stop("SIGKILL");
  }
});

Deno.test("a join storm through two masters spreads by capacity; a full cluster gets no ticket", async () => {
  await using redis = await startRedis();
  assert.ok(await redisPing("127.0.0.1", redis.port));
  await withKeysDir(async (keysDir, key) => {
    const options = {
      port: 0,
      keysDir,
      redisUrl: redis.url,
      // The raw clusters do not heartbeat during the storm: tickets count as reserved load.
      heartbeatTimeoutMs: 120_000,
      reservationWindowMs: 120_000,
      joinLimits: { ...ONE_ADDRESS_FOR_ALL, reservationsPerConnection: 1_000_000 },
    };
    await using a = await startMaster(options);
    await using b = await startMaster(options);
    const capacities = [1000, 1000, 2000];
    const clusters: RawCluster[] = [];
    for (const [i, capacity] of capacities.entries()) {
      clusters.push(
        await registerRawCluster((i % 2 === 0 ? a : b).addr.port, {
          keyName: "cluster_key",
          key,
          name: `c${i}`,
          port: 7100 + i,
          maxConnections: capacity,
        }),
      );
    }
    // A full cluster: capacity 5, reporting 5 players.
    const full = await registerRawCluster(a.addr.port, {
      keyName: "cluster_key",
      key,
      name: "full",
      port: 7199,
      maxConnections: 5,
    });
    // It reports its load as a real cluster does, every heartbeat interval (250 ms here) until
    // both masters show it: one early Heartbeat alone can be overtaken on the other master by the
    // registration's own record (load 0) under load; the next heartbeat corrects it.
    let lastBeat = -Infinity;
    await waitUntil(
      () => {
        if (performance.now() - lastBeat >= 250) {
          full.peer.send({ kind: "Heartbeat", load: 5, maxConnections: 5 });
          lastBeat = performance.now();
        }
        return [a, b].every((m) =>
          m.registry.size === 4 && m.registry.get(full.clusterId)?.load === 5
        );
      },
      "both masters list all four",
      WAIT_MS,
    );
    const JOINS = 2000;
    const CONCURRENCY = 16;
    const counts = new Map<number, number>();
    let refused = 0;
    let next = 0;
    const started = performance.now();
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      while (next < JOINS) {
        const n = next++;
        const grant = await requestTicket((n % 2 === 0 ? a : b).addr.port);
        if (grant.answer.kind === "JoinTicket") {
          counts.set(grant.answer.clusterId, (counts.get(grant.answer.clusterId) ?? 0) + 1);
        } else {
          refused++;
        }
      }
    }));
    const seconds = (performance.now() - started) / 1000;
    const total = capacities.reduce((x, y) => x + y, 0);
    const spread = capacities.map((capacity, i) => {
      const got = counts.get(clusters[i].clusterId) ?? 0;
      return { capacity, got, expected: (JOINS * capacity) / total };
    });
    console.log(
      `join storm: ${JOINS} joins through 2 masters in ${
        seconds.toFixed(1)
      } s, ${refused} refused; ` +
        spread.map((s) => `${s.got}/${s.expected} (cap ${s.capacity})`).join(", "),
    );
    assert.equal(refused, 0);
    assert.equal(counts.get(full.clusterId) ?? 0, 0, "the full cluster got a ticket");
    for (const s of spread) {
      assert.ok(Math.abs(s.got - s.expected) <= s.expected * 0.1, JSON.stringify(spread));
    }
    const asked = await requestTicket(b.addr.port, full.clusterId);
    assert.equal(asked.answer.kind, "Error");
    for (const cluster of [...clusters, full]) await cluster.peer.close();
  });
});

Deno.test("a cluster fails over to the next master; a client skips a master that is gone", async () => {
  await using redis = await startRedis();
  await withKeysDir(async (keysDir) => {
    const options = { port: 0, keysDir, redisUrl: redis.url, joinLimits: ONE_ADDRESS_FOR_ALL };
    const a = await startMaster(options);
    await using b = await startMaster(options);
    await using cluster = await startCluster({
      port: 0,
      keysDir,
      serverName: "eu-1",
      masters: [
        { hostname: "127.0.0.1", port: a.addr.port },
        { hostname: "127.0.0.1", port: b.addr.port },
      ],
      heartbeatIntervalMs: 100,
      reconnectMinMs: 50,
      reconnectMaxMs: 200,
    });
    await waitUntil(
      () => b.registry.list()[0]?.owner !== undefined,
      "B lists it remotely",
      WAIT_MS,
    );
    const aPort = a.addr.port;
    await a.stop();
    const stoppedAt = performance.now();
    await waitUntil(
      () => b.registry.list().some((r) => r.name === "eu-1" && r.owner === undefined),
      "the cluster to register with B",
      WAIT_MS,
    );
    console.log(`failover to the next master: ${(performance.now() - stoppedAt).toFixed(0)} ms`);
    await waitUntil(
      () => cluster.clusterId === b.registry.list().find((r) => r.name === "eu-1")?.id,
      "the cluster to learn its new id",
      WAIT_MS,
    );
    const client = await SustenetClient.connect({
      host: "127.0.0.1",
      port: aPort,
      masters: [{ host: "127.0.0.1", port: b.addr.port }],
      timeoutMs: 2000,
    });
    try {
      const session = await client.join("auto");
      assert.equal(session.name ?? session.serverName, "eu-1");
      await session.leave();
    } finally {
      await client.close();
    }
  });
});

Deno.test("garbage written to Redis is never listed and never stops the master", async () => {
  await using redis = await startRedis();
  await withKeysDir(async (keysDir) => {
    await using master = await startMaster({ port: 0, keysDir, redisUrl: redis.url });
    const writer = createClient({ url: redis.url });
    await writer.connect();
    try {
      await writer.set("sustenet:cluster:5", "{not json");
      await writer.set("sustenet:cluster:6", JSON.stringify({ id: 6, name: "x", port: -1 }));
      for (
        const text of [
          "garbage",
          '{"kind":"up","sentAt":1,"record":{"id":0}}',
          '{"kind":"down","owner":"x","id":1,"reason":"because","sentAt":1}',
          JSON.stringify({ kind: "reserve", owner: "x", id: 2 ** 40, sentAt: 1 }),
        ]
      ) {
        await writer.publish("sustenet:events", text);
      }
      // A well-formed message after them is applied: the garbage was skipped, not fatal.
      const record = {
        id: 77,
        name: "late",
        host: "127.0.0.1",
        port: 7300,
        maxConnections: 0,
        keyVersion: 1,
        publicKey: "00".repeat(32),
        keyName: "cluster_key",
        load: 0,
        registeredAt: Date.now(),
        lastHeartbeat: Date.now(),
        owner: "another",
      };
      await writer.publish(
        "sustenet:events",
        JSON.stringify({ kind: "up", record, sentAt: Date.now() }),
      );
      await waitUntil(() => master.registry.get(77)?.name === "late", "the good message", WAIT_MS);
      assert.deepEqual(master.registry.list().map((r) => r.id), [77]);
      assert.equal(master.registryStatus()?.ok, true);
      // A master starting now reads the malformed keys in its snapshot and skips them.
      await using second = await startMaster({ port: 0, keysDir, redisUrl: redis.url });
      assert.equal(second.registry.size, 0);
      assert.equal(second.registryStatus()?.ok, true);
    } finally {
      await writer.close();
    }
  });
});

Deno.test("a frozen Redis (SIGSTOP): /health degrades, joins carry on, and it recovers on SIGCONT", async () => {
  await using redis = await startRedis();
  await withKeysDir(async (keysDir) => {
    await using master = await startMaster({
      port: 0,
      keysDir,
      redisUrl: redis.url,
      status: { port: 0 },
      joinLimits: ONE_ADDRESS_FOR_ALL,
    });
    await using cluster = await startEu1(keysDir, master.addr.port);
    await waitUntil(() => master.registry.size === 1, "the cluster to be listed", WAIT_MS);
    redis.signal("SIGSTOP");
    try {
      await waitUntil(() => master.registryStatus()?.ok === false, "degraded", WAIT_MS);
      assert.equal((await health(master)).status, "degraded");
      console.log(`frozen: ${master.registryStatus()?.detail}`);
      // A join waits for nothing from Redis while it is down.
      const started = performance.now();
      const join = await playerJoins(master.addr.port, cluster.addr.port);
      console.log(`join while Redis is frozen: ${(performance.now() - started).toFixed(0)} ms`);
      await join.client.close();
    } finally {
      redis.signal("SIGCONT");
    }
    await waitUntil(() => master.registryStatus()?.ok === true, "healthy again", WAIT_MS);
    assert.equal(master.registry.size, 1);
  });
});
