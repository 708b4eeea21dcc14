import assert from "node:assert/strict";
import {
  type EchoPluginMode,
  startSustenetServers,
  type SustenetServers,
} from "../bench_servers.ts";
import type { LoadResult } from "../load_job.ts";
import { runGenerator } from "../run_generator.ts";
import { closeAll, connectClients } from "../load_clients.ts";
import { ECHO_COMMAND, probeFrame, probeNowMs } from "../probe_frame.ts";

const short = { warmupMs: 300, windowMs: 700, windows: 1 };

/** What every run against `servers` shares: its target and pids, and a 30 s deadline. */
function against(servers: SustenetServers) {
  return { target: servers.target, serverPids: servers.pids, deadlineMs: 30_000 };
}

/** Asserts that a relay or echo run succeeded and its first window received something. */
function assertReceived(
  result: LoadResult,
  kind: "relay" | "echo",
): asserts result is Extract<LoadResult, { kind: "relay" | "echo" }> {
  assert.ok(result.ok && result.kind === kind, JSON.stringify(result));
  assert.ok(result.windows[0].received > 0);
}

Deno.test("sealed: relay, echo, join storm and idle run against a real master and cluster", async () => {
  await using servers = await startSustenetServers({ sealed: true });
  assert.deepEqual(servers.target, {
    kind: "sustenet",
    masterHost: "127.0.0.1",
    masterPort: servers.masterPort,
    sealed: true,
  });
  const base = against(servers);

  const relay = await runGenerator({
    ...base,
    serverMetricsUrl: servers.metricsUrl,
    scenario: { kind: "relay", clients: 4, hz: 20, ...short },
  });
  assertReceived(relay, "relay");
  assert.equal(relay.windows[0].servers[0].pid, servers.clusterPid);
  // Both loops' lag is measured in every window: the cluster's from its /metrics, the
  // generator's own by its sampler (a stalled window is re-run, so there may be more).
  const last = relay.windows[relay.windows.length - 1];
  assert.ok(last.serverLag !== undefined && last.serverLag.samples > 0, JSON.stringify(last));
  assert.ok(last.generatorLag !== undefined && last.generatorLag.maxMs >= 0);
  const faults = relay.windows.filter((w) => w.generatorFault === true).length;
  assert.ok(
    relay.windows.length - 1 <= faults,
    `${relay.windows.length} windows, ${faults} faults`,
  );

  const echo = await runGenerator({
    ...base,
    scenario: { kind: "echo", clients: 2, inflight: 4, ...short },
  });
  assertReceived(echo, "echo");

  const join = await runGenerator({
    ...base,
    serverPids: [servers.clusterPid, servers.masterPid],
    scenario: { kind: "join", joins: 8, concurrency: 4 },
  });
  assert.ok(join.ok && join.kind === "join", JSON.stringify(join));
  assert.equal(join.failures, 0, join.firstError);
  assert.ok(join.joinsPerSecond > 0 && join.p99Ms >= join.p50Ms);
  // Every process a join runs in is accounted (CPU ticks are coarse: ≥ 0, not > 0).
  assert.equal(join.cpuUsPerJoin?.servers.length, 2, JSON.stringify(join));
  assert.ok(join.cpuUsPerJoin.generator >= 0);

  const idle = await runGenerator({
    ...base,
    scenario: { kind: "idle", clients: 20, settleMs: 100 },
  });
  assert.ok(idle.ok && idle.kind === "idle", JSON.stringify(idle));
  assert.equal(idle.clients, 20);
  assert.ok(idle.rssAfterBytes > 0);
});

/** Sends `count` echo requests on one joined client and counts answers until quiet. */
async function echoAnswers(echo: EchoPluginMode, count: number): Promise<number> {
  await using servers = await startSustenetServers({ sealed: true, echo });
  assert.equal(servers.echo, echo);
  const conns = await connectClients(servers.target, 1);
  try {
    let answers = 0;
    let wake: (() => void) | undefined;
    conns[0].startReading((view, offset) => {
      if (view.getUint8(offset) !== ECHO_COMMAND) return;
      answers++;
      wake?.();
    });
    for (let i = 0; i < count; i++) conns[0].send(probeFrame(ECHO_COMMAND, probeNowMs(), 0, i));
    while (answers < count) await new Promise<void>((resolve) => (wake = resolve));
    // A second echo plugin would answer each request again: give it time to show.
    await new Promise((resolve) => setTimeout(resolve, 300));
    return answers;
  } finally {
    await closeAll(conns);
  }
}

Deno.test("sandboxed echo: the Worker plugin from [[cluster.plugins]] answers each request once", async () => {
  assert.equal(await echoAnswers("sandboxed", 5), 5);
});

Deno.test("in-process echo: the bench cluster's own echo answers each request once", async () => {
  assert.equal(await echoAnswers("in-process", 5), 5);
});

Deno.test("sandboxed echo: the echo load runs through the Worker plugin", async () => {
  await using servers = await startSustenetServers({ sealed: true, echo: "sandboxed" });
  const echo = await runGenerator({
    ...against(servers),
    scenario: { kind: "echo", clients: 2, inflight: 4, ...short },
  });
  assertReceived(echo, "echo");
});

Deno.test("plaintext: the relay runs against a cluster with plaintext = true", async () => {
  await using servers = await startSustenetServers({ sealed: false });
  assert.equal(servers.label, "sustenet-plaintext");
  const relay = await runGenerator({
    ...against(servers),
    scenario: { kind: "relay", clients: 3, hz: 20, ...short },
  });
  assertReceived(relay, "relay");
});

Deno.test("a sealed generator against a plaintext cluster fails its handshake, reported", async () => {
  await using servers = await startSustenetServers({ sealed: false });
  const result = await runGenerator({
    ...against(servers),
    target: { ...servers.target, sealed: true },
    scenario: { kind: "relay", clients: 2, hz: 20, ...short },
  });
  assert.equal(result.ok, false);
});

Deno.test("join and idle need a Sustenet target", async () => {
  const result = await runGenerator({
    target: { kind: "raw", host: "127.0.0.1", port: 9 },
    scenario: { kind: "join", joins: 1, concurrency: 1 },
    serverPids: [],
    deadlineMs: 5000,
  });
  assert.ok(!result.ok && /needs a Sustenet target/.test(result.error));
});

Deno.test("ws-sealed: the relay runs over the cluster's WebSocket listener", async () => {
  await using servers = await startSustenetServers({ sealed: true, webSocket: true });
  assert.equal(servers.label, "sustenet-ws-sealed");
  assert.equal(servers.target.kind === "sustenet" && servers.target.webSocket, true);
  const relay = await runGenerator({
    ...against(servers),
    scenario: { kind: "relay", clients: 3, hz: 20, ...short },
  });
  assertReceived(relay, "relay");
});
