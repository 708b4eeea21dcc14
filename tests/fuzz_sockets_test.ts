import assert from "node:assert/strict";
import fc from "fast-check";
import { loadKey } from "../shared/keys.ts";
import { type MetricFamily, renderPrometheus } from "../shared/metrics.ts";
import { definePlugin } from "../shared/plugin.ts";
import { RawPeer } from "./_master_peer.ts";
import { playerJoins, type RawClient, startWorld, waitUntil, type World } from "./_raw_client.ts";
import {
  CLUSTER_STAGES,
  fuzzConnection,
  fuzzInputArbitrary,
  type FuzzTargets,
  MASTER_STAGES,
  openClusterStage,
  openMasterStage,
} from "./_fuzz.ts";

/** Fuzz connections per server in CI; `deno task fuzz` runs the long version. */
const RUNS = 200;
/** How long a fuzz connection waits for the server to close it before closing itself. */
const WAIT_MS = 40;
/** Generous bound on RSS growth over a whole fuzz run (this process holds master and cluster). */
const RSS_GROWTH_BOUND = 256 * 1024 * 1024;

const echo = definePlugin({
  onMessage(ctx, from, command, payload) {
    if (command === 0x80) ctx.send(from, 0x80, payload);
  },
});

async function targetsOf(w: World): Promise<FuzzTargets> {
  return {
    masterPort: w.master.addr.port,
    clusterPort: w.cluster.addr.port,
    clusterId: w.master.registry.list()[0].id,
    keyName: "cluster_key",
    key: await loadKey(w.keysDir, "cluster_key"),
  };
}

/** Runs `talk` in a loop until stopped; returns how many exchanges succeeded. */
function keepTalking(talk: (n: number) => Promise<void>): { stop(): Promise<number> } {
  let stopped = false;
  let count = 0;
  let failure: unknown;
  const loop = (async () => {
    while (!stopped) {
      await talk(count);
      count++;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  })().catch((error: unknown) => {
    failure = error;
  });
  return {
    async stop() {
      stopped = true;
      await loop;
      if (failure !== undefined) throw failure;
      return count;
    },
  };
}

function gauge(families: MetricFamily[], name: string): number {
  const value = renderPrometheus(families).match(new RegExp(`^${name} (\\d+)$`, "m"))?.[1];
  assert.ok(value !== undefined, `${name} missing`);
  return Number(value);
}

async function echoes(client: RawClient, n: number): Promise<void> {
  const payload = new Uint8Array([n & 0xff, (n >> 8) & 0xff]);
  client.send({ kind: "Plugin", command: 0x80, payload });
  const answer = await client.expect("Plugin");
  assert.deepEqual(answer.payload, payload);
}

Deno.test("the master survives fuzzed frames at every protocol state while a client keeps talking", async () => {
  await using w = await startWorld({ plugins: [echo] });
  const targets = await targetsOf(w);
  const clusterId = w.master.registry.list()[0].id;
  const rssBefore = Deno.memoryUsage().rss;
  const client = await RawPeer.hello(targets.masterPort, "client");
  try {
    const baseline = gauge(w.master.metrics.families(), "sustenet_master_connections");
    const talker = keepTalking(async (n) => {
      client.send({ kind: "Ping", value: n });
      assert.equal((await client.expect("Pong")).value, n);
    });
    let closedByServer = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...MASTER_STAGES),
        fc.array(fuzzInputArbitrary(), { minLength: 1, maxLength: 3 }),
        async (stage, inputs) => {
          const outcome = await fuzzConnection(
            await openMasterStage(targets, stage),
            inputs,
            WAIT_MS,
          );
          if (outcome.closedByServer) closedByServer++;
        },
      ),
      { numRuns: RUNS },
    );
    const exchanges = await talker.stop();
    assert.ok(exchanges > 0, "the well-behaved client exchanged nothing during the fuzz");
    assert.ok(closedByServer > 0, "the master closed no fuzz connection at all");

    // Everything the fuzz opened is gone; the real cluster is still listed and joinable.
    await waitUntil(
      () => gauge(w.master.metrics.families(), "sustenet_master_connections") <= baseline,
      "the fuzz connections to be closed",
      5000,
    );
    assert.ok(w.master.registry.get(clusterId) !== undefined);
    const player = await playerJoins(targets.masterPort, targets.clusterPort);
    await echoes(player.client, 1);
    await player.client.close();
    assert.ok(Deno.memoryUsage().rss - rssBefore < RSS_GROWTH_BOUND);
  } finally {
    await client.close();
  }
});

Deno.test("the cluster survives fuzzed frames at every protocol state while a player keeps playing", async () => {
  await using w = await startWorld({ plugins: [echo] });
  const targets = await targetsOf(w);
  const rssBefore = Deno.memoryUsage().rss;
  const { client } = await playerJoins(targets.masterPort, targets.clusterPort);
  try {
    const talker = keepTalking((n) => echoes(client, n));
    let closedByServer = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...CLUSTER_STAGES),
        fc.array(fuzzInputArbitrary(), { minLength: 1, maxLength: 3 }),
        async (stage, inputs) => {
          const connection = await openClusterStage(targets, stage);
          const outcome = await fuzzConnection(connection, inputs, WAIT_MS);
          if (outcome.closedByServer) closedByServer++;
        },
      ),
      { numRuns: RUNS },
    );
    const exchanges = await talker.stop();
    assert.ok(exchanges > 0, "the player exchanged nothing during the fuzz");
    assert.ok(closedByServer > 0, "the cluster closed no fuzz connection at all");

    await waitUntil(() => w.cluster.players.size === 1, "fuzzing players to be gone", 60_000);
    await waitUntil(
      () => gauge(w.cluster.metrics.families(), "sustenet_cluster_connections") === 1,
      "the fuzz connections to be closed",
      5000,
    );
    assert.equal(w.cluster.masterLinkState, "registered");
    await echoes(client, 2);
    const second = await playerJoins(targets.masterPort, targets.clusterPort);
    await echoes(second.client, 3);
    await second.client.close();
    assert.ok(Deno.memoryUsage().rss - rssBefore < RSS_GROWTH_BOUND);
  } finally {
    await client.close();
  }
});
