import assert from "node:assert/strict";
import { BenchUsageError, parseBenchArgs } from "../bench_options.ts";
import { BenchChild } from "../child_process.ts";
import { REPO_ROOT } from "../bench_servers.ts";
import type { BenchResults } from "../report.ts";

Deno.test("bench options: defaults, subsets and bad flags", () => {
  const all = parseBenchArgs([], "/r");
  assert.ok(all !== "help");
  assert.equal(all.quick, false);
  assert.equal(all.parts.size, 14);
  assert.ok(all.parts.has("world"));
  assert.ok(all.parts.has("echo-sandboxed"));
  assert.ok(all.parts.has("echo-subprocess"));
  assert.equal(all.resultsDir, "/r");
  assert.equal(all.generators, 1);
  const some = parseBenchArgs(["--profile", "--results", "/x", "--only", "echo"], "/r");
  assert.ok(some !== "help");
  assert.deepEqual([...some.parts], ["echo"]);
  assert.equal(some.profile, true);
  assert.equal(some.resultsDir, "/x");
  assert.equal(parseBenchArgs(["--help"], "/r"), "help");
  assert.throws(() => parseBenchArgs(["--fast"], "/r"), BenchUsageError);
  assert.throws(() => parseBenchArgs(["--only", "raw,"], "/r"), /unknown part ""/);
  const two = parseBenchArgs(["--generators", "2"], "/r");
  assert.ok(two !== "help");
  assert.equal(two.generators, 2);
  for (const bad of ["0", "9", "1.5", "x"]) {
    assert.throws(() => parseBenchArgs(["--generators", bad], "/r"), /--generators must be/);
  }
});

Deno.test("deno task bench --quick --only raw,sealing,echo,echo-sandboxed prints the tables and writes the JSON", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await using bench = BenchChild.spawn({
      name: "bench",
      command: Deno.execPath(),
      args: [
        "run",
        "-A",
        `${REPO_ROOT}bench/main.ts`,
        "--quick",
        "--only",
        "raw,sealing,echo,echo-sandboxed",
        "--results",
        dir,
      ],
      cwd: REPO_ROOT,
    });
    const status = await bench.waitExit(60_000);
    assert.equal(status.code, 0, bench.stderrText);
    const out = bench.stdoutLines.join("\n");
    assert.match(out, /Relay: 32-byte payload at 20 Hz/);
    assert.match(out, /Sealing \(AES-256-GCM/);
    assert.match(out, /in-process vs sandboxed[\s\S]*sandboxed \/ in-process: \d+(\.\d+)?×/);
    const files = [...Deno.readDirSync(dir)].map((e) => e.name);
    assert.equal(files.length, 1);
    const results = JSON.parse(await Deno.readTextFile(`${dir}/${files[0]}`)) as BenchResults;
    assert.equal(results.mode, "quick");
    assert.deepEqual(results.relay.map((s) => [s.label, s.runs.length, s.runs[0].phase]), [
      ["raw", 1, "fixed"],
    ]);
    assert.ok(results.sealing.length > 0);
    assert.deepEqual(results.goals, []);
    assert.deepEqual(results.scenarios.map((s) => [s.name, s.result.ok]), [
      ["echo", true],
      ["echo-sandboxed", true],
    ]);
    const echo = results.pluginEcho;
    assert.ok(echo?.inProcess !== undefined && echo.sandboxed !== undefined, JSON.stringify(echo));
    assert.ok(echo.inProcess.echoesPerSecond > 0 && echo.sandboxed.echoesPerSecond > 0);
    assert.ok(echo.sandboxed.p99Ms >= echo.sandboxed.p50Ms);
    assert.ok(echo.ratio !== undefined && echo.ratio > 0);
    assert.equal(echo.target, 0.7);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an unknown part exits 2 with the usage", async () => {
  await using bench = BenchChild.spawn({
    name: "bench",
    command: Deno.execPath(),
    args: ["run", "-A", `${REPO_ROOT}bench/main.ts`, "--only", "udp"],
  });
  assert.equal((await bench.waitExit(30_000)).code, 2);
  assert.match(bench.stderrText, /unknown part "udp"[\s\S]*usage: deno task bench/);
});
