/**
 * The load tester (`deno task client --bots N --scenario …`) against real master and cluster
 * processes: built-in scenarios, a scenario module of the user's, the aggregate summary (no
 * per-bot lines), JSON for CI, and exit codes.
 */
import assert from "node:assert/strict";
import { Deployment, freePort, spawnRole, waitForClusters } from "./_process.ts";

async function startServers() {
  const deployment = await Deployment.create("sustenet_load_");
  try {
    const masterPort = await freePort();
    await deployment.start(
      "master",
      "master",
      `[all]\nport = ${masterPort}\nkeys_dir = "keys"\nstatus_enabled = false\n` +
        `log_level = "warning"\n`,
      /^master listening on /,
    );
    const plugin = (name: string) => new URL(`../plugins/${name}`, import.meta.url).href;
    await deployment.start(
      "cluster",
      "cluster",
      `[all]\nserver_name = "load-1"\nport = ${await freePort()}\nkeys_dir = "keys"\n` +
        `status_enabled = false\nlog_level = "warning"\n` +
        `[cluster]\nmaster_port = ${masterPort}\nheartbeat_interval_ms = 100\n` +
        // One fragment as wide as the walk area (256): the walkers always see each other (with
        // 64 they could start two fragments apart and never get a position back).
        `[cluster.fragments]\nenabled = true\nsize = 256\n` +
        `[[cluster.plugins]]\nurl = "${plugin("echo.ts")}"\n` +
        `[[cluster.plugins]]\nurl = "${plugin("chat.ts")}"\n`,
      /^cluster load-1 listening on /,
    );
    await waitForClusters(masterPort);
    return { deployment, master: `127.0.0.1:${masterPort}` };
  } catch (error) {
    await deployment[Symbol.asyncDispose]();
    throw error;
  }
}

async function bots(master: string, ...args: string[]) {
  await using client = spawnRole("client", ["--master", master, "--bots", ...args]);
  const status = await client.waitExit();
  return {
    code: status.code,
    stdout: client.stdoutLines().join("\n"),
    stderr: client.stderrText(),
  };
}

interface LoadJson {
  scenario: string;
  bots: { total: number; joined: number };
  messages: { sent: number; received: number; sentPerS: number; receivedPerS: number };
  rttMs: { count: number; p50: number; p95: number; p99: number; max: number } | null;
  joinMs: { count: number; p50: number; p95: number; p99: number; max: number } | null;
  errors: { total: number; byReason: Record<string, number> };
}

function lastJson(stdout: string): LoadJson {
  const lines = stdout.trim().split("\n");
  assert.equal(lines.length, 1, `stdout holds the JSON alone:\n${stdout}`);
  return JSON.parse(lines[0]);
}

Deno.test("load tester: built-in scenarios, a scenario module, summary and JSON", async (t) => {
  const { deployment, master } = await startServers();
  await using _ = deployment;

  await t.step("echo --json: RTT and join percentiles, rates, no errors", async () => {
    const run = await bots(
      master,
      "4",
      "--seconds",
      "1.5",
      "--interval",
      "50",
      "--scenario",
      "echo",
      "--json",
    );
    assert.equal(run.code, 0, run.stderr);
    const json = lastJson(run.stdout);
    assert.equal(json.scenario, "echo");
    assert.deepEqual(json.bots, { total: 4, joined: 4 });
    assert.ok(json.rttMs !== null && json.rttMs.count === json.messages.received, run.stdout);
    assert.ok(json.rttMs.p50 <= json.rttMs.p95 && json.rttMs.p95 <= json.rttMs.p99);
    assert.ok(json.joinMs !== null && json.joinMs.count === 4);
    assert.ok(json.messages.sent > 0 && json.messages.receivedPerS > 0);
    assert.deepEqual(json.errors, { total: 0, byReason: {} });
    // Progress went to stderr, as lines (no terminal here).
    assert.match(run.stderr, /^joined \d\/4 \| \d+ msgs\/s /m);
  });

  await t.step("mixed (the default): an aggregate summary, not a line per bot", async () => {
    const run = await bots(master, "5", "--seconds", "1.5");
    assert.equal(run.code, 0, run.stderr);
    assert.match(
      run.stdout,
      /^bots joined 5\/5 in [\d.]+ s; join p50 [\d.]+ p95 [\d.]+ p99 [\d.]+ max [\d.]+ ms \(5\)$/m,
    );
    assert.match(run.stdout, /^messages sent \d+ \(\d+\/s\) received \d+ \(\d+\/s\)$/m);
    assert.match(run.stdout, /^rtt p50 [\d.]+ p95 [\d.]+ p99 [\d.]+ max [\d.]+ ms \(\d+\)$/m);
    assert.match(run.stdout, /^errors 0$/m);
    assert.doesNotMatch(run.stdout, /^bot \d+:/m);
  });

  await t.step(
    "walk with fragments on: moves go out, positions of the others come back",
    async () => {
      const run = await bots(
        master,
        "3",
        "--seconds",
        "1.5",
        "--interval",
        "50",
        "--scenario",
        "walk",
        "--json",
      );
      assert.equal(run.code, 0, run.stderr);
      const json = lastJson(run.stdout);
      assert.ok(json.messages.sent > 0 && json.messages.received > 0, run.stdout);
      assert.equal(json.rttMs, null); // moves have no round trip
    },
  );

  await t.step(
    "a scenario module: its commands, an unowned one counted by reason, exit 1",
    async () => {
      const dir = await Deno.makeTempDir({ prefix: "sustenet_scenario_" });
      try {
        const module = `${dir}/scenario.ts`;
        await Deno.writeTextFile(
          module,
          `export default async function (bot) {\n` +
            `  bot.chat("hi from " + bot.bot);\n` +
            `  bot.send(0x90, new Uint8Array([1]));\n` +
            `  bot.move({ x: bot.bot, y: 0, z: 1 });\n` +
            `  while (bot.playing()) { bot.echo(); await bot.sleep(100); }\n` +
            `}\n`,
        );
        const run = await bots(master, "2", "--seconds", "1", "--scenario", module, "--json");
        assert.equal(run.code, 1, "errors fail the run");
        const json = lastJson(run.stdout);
        assert.deepEqual(json.bots, { total: 2, joined: 2 });
        assert.deepEqual(json.errors, { total: 2, byReason: { "unhandled 0x90": 2 } });
        assert.ok(json.rttMs !== null && json.rttMs.count >= 4, run.stdout); // chat + echoes
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  );

  await t.step("a scenario that is neither built in nor importable is a usage error", async () => {
    const run = await bots(master, "1", "--scenario", "./no/such/scenario.ts");
    assert.equal(run.code, 2);
    assert.match(
      run.stderr,
      /--scenario \.\/no\/such\/scenario\.ts: not a built-in \(idle, chat, echo, walk, mixed\)/,
    );
  });
});
