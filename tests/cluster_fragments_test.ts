import assert from "node:assert/strict";
import { renderPrometheus } from "../shared/metrics.ts";
import type { Packet } from "../shared/protocol/packets.ts";
import { playerJoins, type RawClient, startWorld } from "./_raw_client.ts";

/** Reads packets until one matches; fails after the raw client's timeout. */
async function readUntil(client: RawClient, match: (p: Packet) => boolean): Promise<Packet> {
  for (;;) {
    const packet = await client.next();
    if (match(packet)) return packet;
  }
}

Deno.test("with fragments on, players see spawns and moves of their neighbours only", async () => {
  await using w = await startWorld({
    fragments: { size: 10, viewDistance: 1, maxPlayersPerFragment: 2, crowdThreshold: 10 },
    tickHz: 50,
  });
  const { master, cluster } = w;
  const clients: RawClient[] = [];
  try {
    const join = () => playerJoins(master.addr.port, cluster.addr.port);
    const a = await join();
    const b = await join();
    const far = await join();
    clients.push(a.client, b.client, far.client);

    a.client.send({ kind: "Move", state: { x: 1, y: 0, z: 1 } });
    far.client.send({ kind: "Move", state: { x: 500, y: 0, z: 500 } });
    b.client.send({ kind: "Move", state: { x: 5, y: 0, z: 5, yaw: 1 } });

    const spawn = await readUntil(a.client, (p) => p.kind === "Spawn");
    assert.ok(spawn.kind === "Spawn");
    assert.equal(spawn.clientId, b.auth.clientId);
    assert.equal(spawn.state.x, 5);
    assert.ok(spawn.playerId.length > 0);

    b.client.send({ kind: "Move", state: { x: 6, y: 0, z: 5 } });
    const batch = await readUntil(
      a.client,
      (p) => p.kind === "MoveBatch" && p.entries.some((e) => e.state.x === 6),
    );
    assert.ok(batch.kind === "MoveBatch");
    assert.ok(batch.entries.every((e) => e.clientId === b.auth.clientId));

    // B leaves: A is told to despawn it.
    await b.client.close();
    const despawn = await readUntil(a.client, (p) => p.kind === "Despawn");
    assert.ok(despawn.kind === "Despawn" && despawn.clientId === b.auth.clientId);

    // The far player saw nothing of A or B.
    far.client.send({ kind: "Ping", value: 9 });
    const seen: Packet[] = [];
    for (let p = await far.client.next(); p.kind !== "Pong"; p = await far.client.next()) {
      seen.push(p);
    }
    assert.deepEqual(seen.filter((p) => p.kind === "Spawn"), []);
    assert.ok(seen.every((p) => p.kind !== "MoveBatch" || p.entries.length === 0));

    const text = renderPrometheus(cluster.metrics.families());
    assert.match(text, /^sustenet_cluster_fragment_players\{fragment="50,50"\} 1$/m);
  } finally {
    for (const client of clients) await client.close();
  }
});

Deno.test("a refused move is corrected with the player's own stored state", async () => {
  await using w = await startWorld({
    fragments: {
      size: 10,
      maxPlayersPerFragment: 1,
      crowdThreshold: 10,
      bounds: { minX: -100, minZ: -100, maxX: 100, maxZ: 100 },
    },
  });
  const { master, cluster } = w;
  const clients: RawClient[] = [];
  try {
    const a = await playerJoins(master.addr.port, cluster.addr.port);
    const b = await playerJoins(master.addr.port, cluster.addr.port);
    clients.push(a.client, b.client);
    a.client.send({ kind: "Move", state: { x: 1, y: 0, z: 1 } });
    b.client.send({ kind: "Move", state: { x: 50, y: 0, z: 50 } });
    b.client.send({ kind: "Ping", value: 1 });
    await readUntil(b.client, (p) => p.kind === "Pong");
    // Into A's full fragment: refused, and B is told where it really is.
    b.client.send({ kind: "Move", state: { x: 2, y: 0, z: 2 } });
    const correction = await readUntil(
      b.client,
      (p) => p.kind === "MoveBatch" && p.entries.some((e) => e.clientId === b.auth.clientId),
    );
    assert.ok(correction.kind === "MoveBatch");
    assert.equal(correction.entries[0].state.x, 50);
    // Out of bounds: clamped onto the edge, and told so.
    b.client.send({ kind: "Move", state: { x: 500, y: 0, z: 50 } });
    const clamped = await readUntil(
      b.client,
      (p) => p.kind === "MoveBatch" && p.entries.some((e) => e.clientId === b.auth.clientId),
    );
    assert.ok(clamped.kind === "MoveBatch");
    assert.equal(clamped.entries[0].state.x, 100);
    // NaN is no position: refused, corrected.
    b.client.send({ kind: "Move", state: { x: Number.NaN, y: 0, z: 0 } });
    const nan = await readUntil(b.client, (p) => p.kind === "MoveBatch");
    assert.ok(nan.kind === "MoveBatch" && nan.entries[0].state.x === 100);
    assert.ok(cluster.metrics.movesRejected.value >= 2);
  } finally {
    for (const client of clients) await client.close();
  }
});
