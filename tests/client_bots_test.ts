/**
 * The headless bot runner against an in-process master and cluster.
 */
import assert from "node:assert/strict";
import { formatBotSummary, startBots } from "../client/bots.ts";
import { type ClusterServer, startCluster } from "../cluster/mod.ts";
import { startMaster } from "../master/mod.ts";
import chat from "../plugins/chat.ts";
import echo from "../plugins/echo.ts";
import { generateKey } from "../shared/keys.ts";

async function world(clusters: number) {
  const keysDir = await Deno.makeTempDir({ prefix: "sustenet_bots_test_" });
  await generateKey(keysDir, "cluster_key");
  const master = await startMaster({ port: 0, keysDir });
  const started: ClusterServer[] = [];
  for (let i = 0; i < clusters; i++) {
    started.push(
      await startCluster({
        port: 0,
        keysDir,
        serverName: `bots-${i}`,
        master: { hostname: "127.0.0.1", port: master.addr.port },
        plugins: [echo, chat],
      }),
    );
  }
  while (master.registry.size < clusters) await new Promise((r) => setTimeout(r, 20));
  return {
    port: master.addr.port,
    async [Symbol.asyncDispose]() {
      await Promise.all(started.map((c) => c.stop()));
      await master.stop();
      await Deno.remove(keysDir, { recursive: true });
    },
  };
}

Deno.test("bots join, chat with each other and get every echo back", async () => {
  await using servers = await world(1);
  const run = startBots({
    master: { host: "127.0.0.1", port: servers.port },
    count: 3,
    seconds: 0.5,
    intervalMs: 50,
  });
  await run.allJoined;
  assert.equal(run.status().joined, 3);
  const summary = await run.done;
  assert.equal(summary.clusters.length, 1);
  for (const bot of summary.bots) {
    assert.equal(bot.cluster?.name, "bots-0");
    assert.deepEqual(bot.errors, []);
    assert.ok(bot.echoSent > 0 && bot.echoed === bot.echoSent);
    // Each of the 3 bots hears its own lines and the others'.
    assert.ok(bot.chatReceived > bot.chatSent);
  }
  assert.match(formatBotSummary(summary).at(-1) ?? "", /^bots joined: 3\/3;.* errors 0$/);
});

Deno.test("bots that cannot join report why and the run still ends", async () => {
  await using servers = await world(0);
  const run = startBots({
    master: { host: "127.0.0.1", port: servers.port },
    count: 2,
    seconds: 5,
  });
  await run.allJoined;
  const summary = await run.done;
  assert.equal(summary.status.joined, 0);
  assert.equal(summary.status.errors, 2);
  for (const bot of summary.bots) assert.match(bot.errors[0], /^no_cluster: /);
  assert.match(formatBotSummary(summary)[0], /^bot 1: did not join; .*errors: no_cluster/);
});

Deno.test("stop() ends a run early", async () => {
  await using servers = await world(1);
  const run = startBots({
    master: { host: "127.0.0.1", port: servers.port },
    count: 2,
    seconds: 600,
  });
  await run.allJoined;
  const started = performance.now();
  run.stop();
  const summary = await run.done;
  assert.equal(summary.status.joined, 2);
  // A generous bound, still far below the 600 s the bots would otherwise play.
  assert.ok(performance.now() - started < 60_000, "the bots left at once, not after 600 s");
});

Deno.test("bot options out of range are refused", () => {
  const master = { host: "127.0.0.1", port: 1 };
  assert.throws(() => startBots({ master, count: 1.5, seconds: 1 }), RangeError);
  assert.throws(() => startBots({ master, count: 1, seconds: 0 }), RangeError);
  assert.throws(() => startBots({ master, count: 1, seconds: 1, intervalMs: 0 }), RangeError);
});

Deno.test("bots behind one address wait out the master's join limits and all join", async () => {
  // 30 bots from 127.0.0.1 ask at once: past the default per-address burst (20 tickets) and
  // reservation cap (8 unused tickets), so most are refused with RateLimited at first.
  await using servers = await world(1);
  const run = startBots({
    master: { host: "127.0.0.1", port: servers.port },
    count: 30,
    seconds: 0.3,
    intervalMs: 250,
  });
  const summary = await run.done;
  assert.equal(summary.status.joined, 30);
  for (const bot of summary.bots) assert.deepEqual(bot.errors, [], `bot ${bot.bot}`);
});
