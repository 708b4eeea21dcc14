import assert from "node:assert/strict";
import type { PluginSpec } from "../cluster/plugin_host.ts";
import { parseWorkerEvent } from "../cluster/plugin_messages.ts";
import { NO_PLUGIN_PERMISSIONS } from "../cluster/plugin_permissions.ts";
import {
  asClientId,
  checkBroadcastOptions,
  createPluginContext,
  definePlugin,
  type SustenetPlugin,
} from "../shared/plugin.ts";
import type { Packet } from "../shared/protocol/packets.ts";
import type { ClusterFragmentOptions, ClusterOptions, ClusterServer } from "../cluster/mod.ts";
import { type ClusterJoin, playerJoins, type RawClient, startWorld } from "./_raw_client.ts";

/** Fragments of 10 units, each player seeing its own and the 8 around it. */
const FRAGMENTS: ClusterFragmentOptions = {
  size: 10,
  viewDistance: 1,
  maxPlayersPerFragment: 50,
  crowdThreshold: 50,
};

/** Command a player sends to ask for a `near` broadcast, and the command broadcast. */
const SHOUT = 0x90;
const HEARD = 0x91;

/** Reads packets until one matches, keeping the ones skipped in `seen`. */
async function readUntil(
  client: RawClient,
  match: (p: Packet) => boolean,
  seen: Packet[] = [],
): Promise<Packet> {
  for (;;) {
    const packet = await client.next();
    if (match(packet)) return packet;
    seen.push(packet);
  }
}

/** Every packet a client gets before the Pong of a Ping sent now (the cluster answers in order). */
async function drain(client: RawClient, value: number): Promise<Packet[]> {
  client.send({ kind: "Ping", value });
  const seen: Packet[] = [];
  await readUntil(client, (p) => p.kind === "Pong" && p.value === value, seen);
  return seen;
}

/** Starts a world, joins `count` players, runs `body`, then closes the players and the world. */
async function withPlayers(
  options: ClusterOptions,
  count: number,
  body: (players: ClusterJoin[], cluster: ClusterServer) => Promise<void>,
): Promise<void> {
  await using w = await startWorld(options);
  const players: ClusterJoin[] = [];
  try {
    for (let i = 0; i < count; i++) {
      players.push(await playerJoins(w.master.addr.port, w.cluster.addr.port));
    }
    await body(players, w.cluster);
  } finally {
    for (const player of players) await player.client.close();
  }
}

function isMoveOf(id: number, x: number): (p: Packet) => boolean {
  return (p) =>
    p.kind === "MoveBatch" && p.entries.some((e) => e.clientId === id && e.state.x === x);
}

Deno.test("a move a plugin rejects is seen by no one and the mover is corrected", async () => {
  const maxStep = 10;
  const last = new Map<number, { x: number; z: number }>();
  // Server authority: a jump longer than maxStep since the last accepted move is refused.
  const speedLimit = definePlugin({
    onMove(_ctx, client, move) {
      const before = last.get(client);
      if (before !== undefined && Math.hypot(move.x - before.x, move.z - before.z) > maxStep) {
        return false;
      }
      last.set(client, { x: move.x, z: move.z });
    },
  });
  const options = { fragments: FRAGMENTS, tickHz: 50, plugins: [speedLimit] };
  await withPlayers(options, 2, async ([mover, watcher], cluster) => {
    const moverId = mover.auth.clientId;
    watcher.client.send({ kind: "Move", state: { x: 3, y: 0, z: 3 } });
    mover.client.send({ kind: "Move", state: { x: 1, y: 0, z: 1 } });
    await readUntil(watcher.client, (p) => p.kind === "Spawn" && p.clientId === moverId);

    // The cheat: 49 units in one move. Refused; the mover is told where it really is.
    mover.client.send({ kind: "Move", state: { x: 50, y: 0, z: 1 } });
    const correction = await readUntil(
      mover.client,
      (p) => p.kind === "MoveBatch" && p.entries.some((e) => e.clientId === moverId),
    );
    assert.ok(correction.kind === "MoveBatch");
    assert.equal(correction.entries[0].state.x, 1);
    assert.equal(cluster.metrics.movesRejected.value, 1);

    // A legal step after it arrives; the refused position never reached the watcher.
    mover.client.send({ kind: "Move", state: { x: 2, y: 0, z: 1 } });
    const seen: Packet[] = [];
    await readUntil(watcher.client, isMoveOf(moverId, 2), seen);
    assert.ok(!seen.some(isMoveOf(moverId, 50)));
    assert.ok(!seen.some((p) => p.kind === "Despawn"));
  });
});

/** A plugin that broadcasts HEARD near whoever sends SHOUT, leaving the sender out. */
const shoutPlugin: SustenetPlugin = definePlugin({
  onMessage(ctx, from, command, payload) {
    if (command === SHOUT) ctx.broadcast(HEARD, payload, { near: from, except: from });
  },
});

/** The same plugin as a module, for a sandboxed Worker (a data: URL needs no read permission). */
const shoutSpec: PluginSpec = {
  url: `data:application/javascript,${
    encodeURIComponent(
      `export default { onMessage(ctx, from, command, payload) {
        if (command === ${SHOUT}) ctx.broadcast(${HEARD}, payload, { near: from, except: from });
      } };`,
    )
  }`,
  name: "shout",
  settings: {},
  permissions: NO_PLUGIN_PERMISSIONS,
};

for (
  const [how, plugins] of [
    ["an in-process", { plugins: [shoutPlugin] }],
    ["a Worker", { pluginSpecs: [shoutSpec] }],
  ] as const
) {
  Deno.test(`a near broadcast from ${how} plugin reaches the sender's neighbours only`, async () => {
    const options = { fragments: FRAGMENTS, tickHz: 50, ...plugins };
    await withPlayers(options, 3, async ([speaker, neighbour, far]) => {
      speaker.client.send({ kind: "Move", state: { x: 1, y: 0, z: 1 } });
      neighbour.client.send({ kind: "Move", state: { x: 15, y: 0, z: 5 } }); // next fragment
      far.client.send({ kind: "Move", state: { x: 500, y: 0, z: 500 } });
      // Placed once the neighbour sees the speaker spawn.
      await readUntil(neighbour.client, (p) => p.kind === "Spawn");

      speaker.client.send({ kind: "Plugin", command: SHOUT, payload: Uint8Array.of(7) });
      const heard = await readUntil(neighbour.client, (p) => p.kind === "Plugin");
      assert.ok(heard.kind === "Plugin");
      assert.equal(heard.command, HEARD);
      assert.deepEqual([...heard.payload], [7]);

      // The far player and the speaker itself (except) got nothing of it.
      for (const [client, value] of [[far.client, 1], [speaker.client, 2]] as const) {
        const seen = await drain(client, value);
        assert.ok(!seen.some((p) => p.kind === "Plugin"), JSON.stringify(seen));
      }
    });
  });
}

Deno.test("with fragments off, a near broadcast goes to everyone", async () => {
  const loud = definePlugin({
    onMessage(ctx, from, command, payload) {
      if (command === SHOUT) ctx.broadcast(HEARD, payload, { near: from });
    },
  });
  await withPlayers({ plugins: [loud] }, 2, async ([a, b]) => {
    a.client.send({ kind: "Plugin", command: SHOUT, payload: new Uint8Array() });
    for (const client of [a.client, b.client]) {
      const heard = await readUntil(client, (p) => p.kind === "Plugin");
      assert.ok(heard.kind === "Plugin" && heard.command === HEARD);
    }
  });
});

Deno.test("near is checked like except, in the context and in a Worker's messages", () => {
  const broadcasts: unknown[] = [];
  const ctx = createPluginContext({
    name: "t",
    settings: {},
    players: () => [],
    sink: {
      send() {},
      broadcast: (_command, _payload, options) => broadcasts.push(options),
      kick() {},
      log() {},
    },
  });
  const bytes = new Uint8Array(1);
  ctx.broadcast(0x80, bytes, { near: asClientId(3) });
  ctx.broadcast(0x80, bytes, { near: asClientId(3), except: asClientId(3) });
  ctx.broadcast(0x80, bytes, { fragment: 2 ** 40 });
  assert.deepEqual(broadcasts, [{ near: 3 }, { except: 3, near: 3 }, { fragment: 2 ** 40 }]);
  for (const near of [-1, 1.5, 2 ** 32, "3", null]) {
    assert.throws(() => ctx.broadcast(0x80, bytes, { near: near as never }), RangeError);
    assert.equal(typeof checkBroadcastOptions({ near }), "string");
  }
  assert.throws(
    () => ctx.broadcast(0x80, bytes, { near: asClientId(1), fragment: 1 }),
    TypeError,
  );
  assert.throws(() => ctx.broadcast(0x80, bytes, null as never), TypeError);
  assert.equal(broadcasts.length, 3);

  // A Worker's broadcast event is parsed with the same rules.
  const event = (options: unknown) => ({
    kind: "broadcast",
    command: 0x80,
    at: 0,
    length: 1,
    options,
  });
  assert.deepEqual(parseWorkerEvent(event({ near: 5 }), 1), {
    kind: "broadcast",
    command: 0x80,
    at: 0,
    length: 1,
    options: { near: 5 },
  });
  assert.equal(typeof parseWorkerEvent(event({ near: -5 }), 1), "string");
  assert.equal(typeof parseWorkerEvent(event({ near: 5, fragment: 1 }), 1), "string");
});

Deno.test("per-fragment players, update rate, bytes out and tick durations are on /metrics", async () => {
  const options = { fragments: FRAGMENTS, tickHz: 50, status: { port: 0 } };
  await withPlayers(options, 2, async ([a, b], cluster) => {
    a.client.send({ kind: "Move", state: { x: 1, y: 0, z: 1 } });
    b.client.send({ kind: "Move", state: { x: 2, y: 0, z: 2 } });
    await readUntil(a.client, (p) => p.kind === "Spawn");
    b.client.send({ kind: "Move", state: { x: 3, y: 0, z: 2 } });
    await readUntil(a.client, isMoveOf(b.auth.clientId, 3));

    const status = cluster.statusAddr!;
    const response = await fetch(`http://${status.hostname}:${status.port}/metrics`);
    assert.equal(response.status, 200);
    const text = await response.text();
    assert.match(text, /^sustenet_cluster_fragment_players\{fragment="0,0"\} 2$/m);
    assert.match(text, /^sustenet_cluster_fragment_update_hz\{fragment="0,0"\} 50$/m);
    const bytes = /^sustenet_cluster_fragment_bytes_out_total\{fragment="0,0"\} (\d+)$/m.exec(text);
    assert.ok(bytes !== null && Number(bytes[1]) > 0, text);
    const ticks = /^sustenet_cluster_tick_seconds_count (\d+)$/m.exec(text);
    assert.ok(ticks !== null && Number(ticks[1]) > 0, text);
    assert.match(text, /^sustenet_cluster_tick_seconds_bucket\{le="\+Inf"\} \d+$/m);
    assert.match(text, /^sustenet_cluster_tick_p99_seconds \S+$/m);
    assert.ok(cluster.metrics.tickSeconds.count > 0);
  });
});
