import assert from "node:assert/strict";
import { LoadJobError, parseLoadJob } from "../load_job.ts";

const valid = {
  target: { kind: "sustenet", masterHost: "127.0.0.1", masterPort: 6256, sealed: true },
  scenario: { kind: "relay", clients: 10, hz: 20, warmupMs: 0, windowMs: 1000, windows: 3 },
  serverPids: [123],
  deadlineMs: 60_000,
};

function withField(path: string[], value: unknown): string {
  const copy = structuredClone(valid) as Record<string, unknown>;
  let target = copy;
  for (const key of path.slice(0, -1)) target = target[key] as Record<string, unknown>;
  target[path[path.length - 1]] = value;
  return JSON.stringify(copy);
}

Deno.test("every scenario and target kind parses", () => {
  assert.deepEqual(parseLoadJob(JSON.stringify(valid)), valid);
  const scenarios = [
    { kind: "echo", clients: 2, inflight: 4, warmupMs: 0, windowMs: 500, windows: 1 },
    { kind: "join", joins: 5, concurrency: 2 },
    { kind: "idle", clients: 5, settleMs: 0 },
  ];
  for (const scenario of scenarios) {
    assert.deepEqual(parseLoadJob(JSON.stringify({ ...valid, scenario })).scenario, scenario);
  }
  const raw = { kind: "raw", host: "127.0.0.1", port: 7000 };
  assert.deepEqual(parseLoadJob(JSON.stringify({ ...valid, target: raw })).target, raw);
});

Deno.test("each bad field is refused with a LoadJobError naming it", () => {
  const cases: [string, RegExp][] = [
    ["not json", /not JSON/],
    ["[]", /job must be an object/],
    [withField(["target"], null), /target must be an object/],
    [withField(["target", "kind"], "udp"), /target.kind/],
    [withField(["target", "sealed"], "yes"), /target.sealed/],
    [withField(["target", "masterPort"], 0), /target.masterPort/],
    [withField(["target", "masterHost"], ""), /target.masterHost/],
    [withField(["scenario", "kind"], "storm"), /scenario.kind/],
    [withField(["scenario", "clients"], 1), /scenario.clients/],
    [withField(["scenario", "clients"], 1_000_000), /scenario.clients/],
    [withField(["scenario", "hz"], 0.5), /scenario.hz/],
    [withField(["scenario", "windowMs"], 10), /scenario.windowMs/],
    [withField(["scenario", "windows"], 0), /scenario.windows/],
    [withField(["scenario", "warmupMs"], -1), /scenario.warmupMs/],
    [withField(["serverPids"], [0]), /serverPids/],
    [withField(["serverPids"], "1"), /serverPids/],
    [withField(["deadlineMs"], 10 ** 9), /job.deadlineMs/],
  ];
  for (const [text, message] of cases) {
    assert.throws(() => parseLoadJob(text), (error) => {
      assert.ok(error instanceof LoadJobError, `${text}: ${error}`);
      assert.equal(error.code, "load_job_invalid");
      assert.match(error.message, message);
      return true;
    });
  }
});

Deno.test("bad join and idle fields are refused", () => {
  const join = { kind: "join", joins: 0, concurrency: 1 };
  assert.throws(() => parseLoadJob(JSON.stringify({ ...valid, scenario: join })), /joins/);
  const idle = { kind: "idle", clients: 5 };
  assert.throws(() => parseLoadJob(JSON.stringify({ ...valid, scenario: idle })), /settleMs/);
  const echo = { kind: "echo", clients: 5, inflight: 0, warmupMs: 0, windowMs: 500, windows: 1 };
  assert.throws(() => parseLoadJob(JSON.stringify({ ...valid, scenario: echo })), /inflight/);
});

Deno.test("waitForStart is kept when true and refused when not a boolean", () => {
  const job = {
    target: { kind: "raw", host: "127.0.0.1", port: 1 },
    scenario: { kind: "relay", clients: 2, hz: 20, warmupMs: 0, windowMs: 1000, windows: 1 },
    serverPids: [],
    deadlineMs: 1000,
  };
  assert.equal(parseLoadJob(JSON.stringify({ ...job, waitForStart: true })).waitForStart, true);
  assert.equal(parseLoadJob(JSON.stringify(job)).waitForStart, undefined);
  assert.throws(
    () => parseLoadJob(JSON.stringify({ ...job, waitForStart: "yes" })),
    /waitForStart must be a boolean/,
  );
});
