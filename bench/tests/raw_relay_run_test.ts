import assert from "node:assert/strict";
import { type RawRelayServer, startRawRelayServer } from "../bench_servers.ts";
import { runGenerator, runGenerators } from "../run_generator.ts";
import { runRelayCampaign } from "../relay_campaign.ts";
import { freePort } from "../../tests/_process.ts";

const short = { warmupMs: 300, windowMs: 700, windows: 2 };

Deno.test("a generator process relays through the raw relay process and measures both", async () => {
  await using relay = await startRawRelayServer();
  const result = await runGenerator({
    target: { kind: "raw", host: "127.0.0.1", port: relay.port },
    scenario: { kind: "relay", clients: 4, hz: 20, ...short },
    serverPids: relay.pids,
    deadlineMs: 20_000,
  });
  assert.ok(result.ok && result.kind === "relay", JSON.stringify(result));
  assert.equal(result.clients, 4);
  // Two windows, plus one more for each the generator stalled in (at most two more).
  const faults = result.windows.filter((w) => w.generatorFault === true).length;
  assert.ok(result.windows.length >= 2 && result.windows.length - 2 <= faults, `${faults}`);
  for (const w of result.windows) {
    // 4 clients × 3 receivers × 20 Hz = 240 frames/s expected; allow a loaded machine.
    assert.ok(w.received > 0 && w.received <= w.sent * 3 + 12, JSON.stringify(w));
    assert.ok(w.p99Ms >= w.p50Ms && w.p50Ms >= 0);
    assert.equal(w.openClients, 4);
    assert.equal(w.servers[0].pid, relay.pids[0]);
    assert.ok(w.servers[0].rssBytes > 0 && w.generator.rssBytes > 0);
  }
});

Deno.test("two generator processes share one relay load and report it as one", async () => {
  await using relay = await startRawRelayServer();
  const result = await runGenerators({
    target: { kind: "raw", host: "127.0.0.1", port: relay.port },
    scenario: { kind: "relay", clients: 6, hz: 20, ...short },
    serverPids: relay.pids,
    deadlineMs: 20_000,
  }, 2);
  assert.ok(result.ok && result.kind === "relay", JSON.stringify(result));
  assert.equal(result.clients, 6);
  assert.equal(result.windows.length, 2);
  for (const w of result.windows) {
    // Every client receives the other five's frames, whichever process holds them: frames cross
    // between the two generators through the relay.
    assert.ok(w.received > w.sent * 3, JSON.stringify(w));
    assert.ok(w.received <= w.sent * 5 + 30, JSON.stringify(w));
    assert.equal(w.openClients, 6);
    const buckets = w.latencyBuckets.reduce((n, [, count]) => n + count, 0);
    assert.equal(buckets, w.received);
    assert.ok(w.p99Ms >= w.p50Ms && w.p50Ms >= 0);
    assert.equal(w.servers[0].pid, relay.pids[0]);
  }
});

Deno.test("a shared load fails as a whole when one of its processes cannot connect", async () => {
  const port = await freePort();
  const result = await runGenerators({
    target: { kind: "raw", host: "127.0.0.1", port },
    scenario: { kind: "relay", clients: 4, hz: 20, ...short },
    serverPids: [],
    deadlineMs: 10_000,
  }, 2);
  assert.equal(result.ok, false, JSON.stringify(result));
});

Deno.test("a fixed campaign reports its one run and stops its server", async () => {
  const seen: number[] = [];
  let started: RawRelayServer | undefined;
  const result = await runRelayCampaign(
    "raw",
    async () => (started = await startRawRelayServer()),
    (relay) => (clients, run) => ({
      target: { kind: "raw", host: "127.0.0.1", port: relay.port },
      scenario: { kind: "relay", clients, hz: 20, ...run },
      serverPids: relay.pids,
      deadlineMs: 20_000,
    }),
    {
      mode: "fixed",
      fixedClients: 3,
      hz: 20,
      probe: { ...short, windows: 1 },
      confirm: short,
      search: { start: 3, min: 2, max: 3 },
      criterion: { maxP99Ms: 10_000, minDeliveredRatio: 0 },
    },
    (_label, run) => seen.push(run.clients),
  );
  assert.deepEqual(seen, [3]);
  assert.equal(result.runs[0].phase, "fixed");
  assert.equal(result.runs[0].pass, true);
  assert.equal(result.maxSustainedClients, undefined);
  assert.ok(started !== undefined);
  await assert.rejects(Deno.connect({ port: started.port }), Deno.errors.ConnectionRefused);
});

Deno.test("a generator that cannot connect reports a failed result, not a crash", async () => {
  const port = await freePort();
  const result = await runGenerator({
    target: { kind: "raw", host: "127.0.0.1", port },
    scenario: { kind: "relay", clients: 2, hz: 20, ...short },
    serverPids: [],
    deadlineMs: 10_000,
  });
  assert.equal(result.ok, false);
  assert.ok(!result.ok && /ConnectionRefused/.test(result.error), JSON.stringify(result));
});

Deno.test("a generator past its deadline reports it and exits", async () => {
  await using relay = await startRawRelayServer();
  const result = await runGenerator({
    target: { kind: "raw", host: "127.0.0.1", port: relay.port },
    scenario: { kind: "relay", clients: 2, hz: 20, warmupMs: 5000, windowMs: 1000, windows: 1 },
    serverPids: [],
    deadlineMs: 300,
  });
  assert.ok(!result.ok && /deadline of 300 ms passed/.test(result.error), JSON.stringify(result));
});

Deno.test("a server that fails to restart after a failed run ends the campaign with its runs", async () => {
  let starts = 0;
  const result = await runRelayCampaign(
    "raw",
    () => {
      starts++;
      if (starts > 1) return Promise.reject(new Error("port taken"));
      return startRawRelayServer();
    },
    (relay) => (clients, run) => ({
      target: relay.target,
      scenario: { kind: "relay", clients, hz: 20, ...run },
      serverPids: relay.pids,
      deadlineMs: 20_000,
    }),
    {
      mode: "search",
      fixedClients: 3,
      hz: 20,
      probe: { ...short, windows: 1 },
      confirm: short,
      search: { start: 3, min: 2, max: 4 },
      criterion: { maxP99Ms: -1 }, // nothing passes
    },
    () => {},
  );
  assert.equal(result.runs.length, 1);
  assert.equal(result.runs[0].pass, false);
  assert.equal(result.error, "port taken");
  assert.equal(result.confirmed, false);
});
