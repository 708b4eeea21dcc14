/**
 * Fragments through a real in-process cluster, counted in ticks (an in-process plugin counts
 * the cluster's ticks), never in wall-clock speed: a walk across fragment borders, and the
 * lower update rate of a crowded fragment.
 */
import assert from "node:assert/strict";
import type { ClusterFragmentOptions } from "../cluster/mod.ts";
import { renderPrometheus } from "../shared/metrics.ts";
import type { Packet } from "../shared/protocol/packets.ts";
import { type ClusterJoin, playerJoins, startWorld, waitUntil, type World } from "./_raw_client.ts";

const TICK_HZ = 50;

/** A world whose cluster runs `onTick` callbacks the test sets, and counts its ticks. */
async function tickedWorld(fragments: ClusterFragmentOptions) {
  const ticks = { count: 0, onTick: (): void => {} };
  const world: World = await startWorld({
    fragments,
    tickHz: TICK_HZ,
    plugins: [{
      onTick() {
        ticks.count++;
        ticks.onTick();
      },
    }],
  });
  const players: ClusterJoin[] = [];
  const join = async (): Promise<ClusterJoin> => {
    const player = await playerJoins(world.master.addr.port, world.cluster.addr.port);
    players.push(player);
    return player;
  };
  /** Resolves once `n` more ticks have run. */
  const ticksPass = (n: number): Promise<void> => {
    const until = ticks.count + n;
    return waitUntil(() => ticks.count >= until, `${n} ticks`);
  };
  return {
    world,
    ticks,
    join,
    ticksPass,
    async [Symbol.asyncDispose]() {
      ticks.onTick = () => {};
      for (const player of players) await player.client.close();
      await world[Symbol.asyncDispose]();
    },
  };
}

/** Every packet the player has received until it answers a Ping (so: everything sent before). */
async function drain(player: ClusterJoin, value: number): Promise<Packet[]> {
  player.client.send({ kind: "Ping", value });
  const seen: Packet[] = [];
  for (let p = await player.client.next(); p.kind !== "Pong"; p = await player.client.next()) {
    seen.push(p);
  }
  return seen;
}

Deno.test("walking across fragment borders gives a watcher one Spawn and one Despawn", async () => {
  // Fragments of 10 units, view distance 1: the watcher at x=5 sees x in [-10, 20).
  await using w = await tickedWorld({
    size: 10,
    viewDistance: 1,
    maxPlayersPerFragment: 8,
    crowdThreshold: 10,
  });
  const watcher = await w.join();
  const walker = await w.join();
  watcher.client.send({ kind: "Move", state: { x: 5, y: 0, z: 5 } });
  walker.client.send({ kind: "Move", state: { x: -35, y: 0, z: 5 } });
  await w.ticksPass(2);
  assert.deepEqual(
    (await drain(watcher, 1)).filter((p) => p.kind === "Spawn" || p.kind === "Despawn"),
    [],
    "the walker starts out of view",
  );

  // From x=-35 to x=45 in steps of 5, a tick or more apart: eight borders crossed, of which
  // one brings the walker into view and one takes it out.
  for (let x = -30; x <= 45; x += 5) {
    walker.client.send({ kind: "Move", state: { x, y: 0, z: 5 } });
    await w.ticksPass(1);
  }
  await w.ticksPass(2);
  const seen = (await drain(watcher, 2)).filter((p) =>
    (p.kind === "Spawn" || p.kind === "Despawn") && p.clientId === walker.auth.clientId
  );
  assert.deepEqual(seen.map((p) => p.kind), ["Spawn", "Despawn"]);
  const spawn = seen[0];
  assert.ok(spawn.kind === "Spawn");
  assert.equal(spawn.state.x, -10, "spawned where it entered the view");
});

/**
 * Runs a walker that moves on every tick next to a watcher (with `crowd` more idle players in
 * their fragment) and returns the MoveBatch frames the watcher got over `ticks` ticks and the
 * fragment's reported update rate.
 */
async function batchesOverTicks(
  crowdThreshold: number,
  ticks: number,
): Promise<{ batches: number; updateHz: number }> {
  await using w = await tickedWorld({
    size: 10,
    viewDistance: 0,
    maxPlayersPerFragment: 8,
    crowdThreshold,
  });
  const watcher = await w.join();
  const walker = await w.join();
  const idle = await w.join();
  watcher.client.send({ kind: "Move", state: { x: 1, y: 0, z: 1 } });
  idle.client.send({ kind: "Move", state: { x: 2, y: 0, z: 2 } });
  let step = 0;
  // A new position every tick: each tick the fragment is due has a change to send.
  w.ticks.onTick = () => {
    step++;
    walker.client.send({ kind: "Move", state: { x: 5 + (step % 2), y: 0, z: 5 } });
  };
  await w.ticksPass(3);
  await drain(watcher, 1);

  // Count from one tick to `ticks` later, reading as frames arrive.
  let counting = true;
  let batches = 0;
  const start = w.ticks.count;
  const reading = (async () => {
    while (counting) {
      const packet = await watcher.client.next();
      if (w.ticks.count >= start + ticks) break;
      if (packet.kind === "MoveBatch") batches++;
    }
  })();
  await w.ticksPass(ticks);
  counting = false;
  w.ticks.onTick = () => {};
  watcher.client.send({ kind: "Ping", value: 2 }); // wakes the reader
  await reading;

  const text = renderPrometheus(w.world.cluster.metrics.families());
  const rate = text.match(/^sustenet_cluster_fragment_update_hz\{fragment="[^"]+"\} ([\d.]+)$/m);
  assert.ok(rate !== null, text);
  return { batches, updateHz: Number(rate[1]) };
}

Deno.test("a crowded fragment reports a lower update rate and sends fewer MoveBatch frames", async () => {
  const TICKS = 40;
  // Three players: at or under a threshold of 10 every tick; over twice 1, every 4th tick.
  const calm = await batchesOverTicks(10, TICKS);
  const crowded = await batchesOverTicks(1, TICKS);
  assert.equal(calm.updateHz, TICK_HZ);
  assert.equal(crowded.updateHz, TICK_HZ / 4);
  assert.ok(calm.batches >= TICKS / 2, `calm: ${calm.batches} batches in ${TICKS} ticks`);
  assert.ok(
    crowded.batches <= TICKS / 4 + 2 && crowded.batches < calm.batches / 2,
    `crowded: ${crowded.batches}, calm: ${calm.batches} batches in ${TICKS} ticks`,
  );
});
