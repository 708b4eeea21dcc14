import assert from "node:assert/strict";
import {
  type BenchResults,
  checkGoals,
  compareEcho,
  formatReport,
  writeResults,
} from "../report.ts";
import { summariseRelay } from "../relay_campaign.ts";
import type { WindowResult } from "../load_job.ts";

function window(received: number, p99: number, open = 10): WindowResult {
  return {
    durationMs: 1000,
    sent: 200,
    skipped: 0,
    received,
    receivedPerSecond: received,
    p50Ms: p99 / 2,
    p99Ms: p99,
    maxMs: p99,
    latencyBuckets: [],
    openClients: open,
    generator: { pid: 1, cpuPercent: 10, rssBytes: 1 },
    servers: [{ pid: 2, cpuPercent: 20, rssBytes: 50 << 20 }],
  };
}

Deno.test("a relay run is judged on the median of its windows", () => {
  const result = {
    kind: "relay",
    ok: true,
    clients: 10,
    connectMs: 5,
    windows: [window(1800, 5), window(100, 500), window(1790, 6)],
  } as const;
  const run = summariseRelay("confirm", 10, 20, result);
  assert.equal(run.receivedPerSecond, 1790);
  assert.equal(run.p99Ms, 6);
  assert.equal(run.pass, true);
  assert.equal(run.serverCpuPercent, 20);
});

Deno.test("a run whose clients were disconnected fails", () => {
  const result = {
    kind: "relay",
    ok: true,
    clients: 10,
    connectMs: 5,
    windows: [window(1800, 5, 9)],
  } as const;
  const run = summariseRelay("probe", 10, 20, result);
  assert.equal(run.pass, false);
  assert.deepEqual(run.reasons, ["clients were disconnected"]);
});

const results: BenchResults = {
  version: 1,
  startedAt: "2026-01-02T03:04:05.678Z",
  durationS: 1,
  mode: "full",
  machine: {
    nproc: 2,
    cpuModel: "Test CPU",
    aesNi: true,
    memTotalBytes: 0,
    kernel: "6",
    loadAverage: [0, 0, 0],
    deno: "2",
    v8: "1",
    node: "v20",
  },
  sealing: [{
    implementation: "openssl",
    recordBytes: 16384,
    recordsPerSecond: 1,
    megabytesPerSecond: 2,
  }],
  relay: [
    { label: "raw", runs: [], maxSustainedClients: 300, confirmed: true, framesPerSecondAtMax: 1 },
    { label: "sustenet-sealed", runs: [], confirmed: false, probeBest: 200 },
    { label: "colyseus", runs: [], confirmed: false },
  ],
  goals: [],
  scenarios: [
    {
      name: "echo",
      result: { kind: "echo", ok: true, clients: 2, connectMs: 1, windows: [window(10, 1)] },
    },
    {
      name: "join storm",
      result: {
        kind: "join",
        ok: true,
        joins: 5,
        failures: 1,
        durationMs: 10,
        joinsPerSecond: 400,
        p50Ms: 1,
        p99Ms: 2,
        cpuUsPerJoin: { generator: 900, servers: [700, 450] },
        firstError: "refused",
      },
    },
    {
      name: "idle",
      result: {
        kind: "idle",
        ok: true,
        clients: 10,
        connectMs: 1,
        rssBeforeBytes: 0,
        rssAfterBytes: 10240,
        rssPerClientBytes: 1024,
      },
    },
    { name: "broken", result: { kind: "join", ok: false, error: "no master" } },
  ],
  pluginEcho: {
    inProcess: {
      clients: 16,
      echoesPerSecond: 400_000,
      p50Ms: 0.5,
      p99Ms: 2,
      clusterCpuPercent: 90,
      generatorCpuPercent: 70,
    },
    target: 0.7,
  },
  profile: {
    clients: 5,
    top: [{ functionName: "seal", location: "a.ts:1", selfMs: 5, percent: 50 }],
  },
  skipped: [{ what: "colyseus", why: "node is not installed" }],
};

Deno.test("the report shows every part, probe-only maxima marked as such", () => {
  const text = formatReport({ ...results, goals: checkGoals(results.relay) });
  for (
    const expected of [
      "Test CPU (AES-NI)",
      "openssl",
      "short probe only (not confirmed)",
      /sealed ≥ 0.7 × raw\s+0\.67×\s+not confirmed/,
      /plaintext ≥ 0\.9 × raw\s+n\/a\s+not measured/,
      "1.0 KiB per client",
      "CPU per join: generator 900 µs, servers 700 + 450 µs (cluster first)",
      "(first error: refused)",
      "broken: failed: no master",
      "seal",
      "skipped colyseus: node is not installed",
      /in-process\s+16\s+400\.0 k\s+0\.50\s+2\.00\s+90 %\s+70 %/,
      /sandboxed\s+not measured/,
      "sandboxed / in-process: n/a (goal ≥ 0.7×: not measured)",
    ]
  ) {
    const found = typeof expected === "string" ? text.includes(expected) : expected.test(text);
    assert.ok(found, `missing ${expected} in:\n${text}`);
  }
});

Deno.test("the echo comparison gives the ratio of sandboxed to in-process echoes per second", () => {
  const run = (perSecond: number, p99: number) =>
    ({
      kind: "echo",
      ok: true,
      clients: 16,
      connectMs: 1,
      windows: [window(1, 1), { ...window(perSecond, p99), receivedPerSecond: perSecond }],
    }) as const;
  const low = compareEcho(run(400_000, 2), run(200_000, 4));
  assert.deepEqual(low.inProcess, {
    clients: 16,
    echoesPerSecond: 400_000,
    p50Ms: 1,
    p99Ms: 2,
    clusterCpuPercent: 20,
    generatorCpuPercent: 10,
  });
  assert.equal(low.sandboxed?.p99Ms, 4);
  assert.equal(low.ratio, 0.5);
  assert.equal(low.met, false);
  assert.match(formatReport({ ...results, pluginEcho: low }), /0\.5× \(goal ≥ 0\.7×: NOT met\)/);
  const failed = compareEcho(run(1000, 1), { kind: "echo", ok: false, error: "no cluster" });
  assert.equal(failed.sandboxed, undefined);
  assert.equal(failed.ratio, undefined);
  assert.equal(failed.met, undefined);
  const none = compareEcho(undefined, undefined);
  assert.deepEqual(none, { target: 0.7 });
  assert.equal(compareEcho(run(0, 1), run(10, 1)).ratio, undefined);
});

Deno.test("results are written as a JSON file named after the start time", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = await writeResults(results, `${dir}/nested`);
    assert.ok(path.endsWith("/nested/2026-01-02T03-04-05.678Z.json"));
    assert.deepEqual(JSON.parse(await Deno.readTextFile(path)), results);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
