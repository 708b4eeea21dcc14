/**
 * Hostile plugins against a real cluster (in-process master and cluster on 127.0.0.1, players
 * over real sockets): each attack of issue 15 that broke the Worker sandbox, run against the
 * subprocess sandbox. In each, a bystander player keeps echoing through another plugin and
 * must get every answer; the hostile plugin is restarted (or its flood absorbed); the cluster's
 * RSS stays under {@linkcode RSS_BOUND_MB}. Figures (echo round trips during the attack, RSS)
 * are printed, never asserted against a clock.
 */

import { QUIET_CONSOLE } from "./_logs.ts";
import assert from "node:assert/strict";
import { type LogRecord, reset } from "@logtape/logtape";
import { type ClusterOptions, clusterOptionsFromConfig } from "../cluster/mod.ts";
import type { PluginSpec } from "../cluster/plugin_host.ts";
import { NO_PLUGIN_PERMISSIONS } from "../cluster/plugin_permissions.ts";
import type { WorkerPluginHostOptions } from "../cluster/worker_plugin_host.ts";
import { ConfigError, parseConfig } from "../shared/config.ts";
import { formatLogRecord, setupLogging } from "../shared/logging.ts";
import { FORGED_LINE } from "../plugins/testing/floods.ts";
import { freePort, REPO_ROOT, spawnRole, waitForLine, writeTempConfig } from "./_process.ts";
import {
  playerJoins,
  type RawClient,
  startWorld,
  UNLIMITED_PLAYERS,
  waitUntil,
  type World,
} from "./_raw_client.ts";
import { generateKey } from "../shared/keys.ts";

/** The test process (master, cluster and players) must stay under this resident size. */
const RSS_BOUND_MB = 1024;

const HOST_OPTIONS: WorkerPluginHostOptions = {
  restartBackoffMs: 50,
  maxRestartBackoffMs: 200,
  maxRestarts: 50,
  // Loading is not what these tests measure: a busy machine must not fail them.
  loadTimeoutMs: 60_000,
};

function spec(file: string, name: string, extra: Partial<PluginSpec> = {}): PluginSpec {
  return {
    url: new URL(`../plugins/${file}`, import.meta.url).href,
    name,
    settings: {},
    permissions: NO_PLUGIN_PERMISSIONS,
    ...extra,
  };
}

const utf8 = (text: string) => new TextEncoder().encode(text);
const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

/** The next Plugin packet with `command`, skipping others. */
async function nextWith(client: RawClient, command: number, timeoutMs = 60_000): Promise<string> {
  for (;;) {
    const packet = await client.next(timeoutMs);
    if (packet.kind === "Plugin" && packet.command === command) return text(packet.payload);
  }
}

interface Bystander {
  /** Stops echoing; resolves with the echo count and the slowest round trip (ms). */
  stop(): Promise<{ echoes: number; maxMs: number; p99Ms: number }>;
}

/**
 * Keeps `client` echoing through plugins/echo.ts (0x80) until stopped; each echo must come. With
 * `paceMs`, an echo starts at most every `paceMs` (a player under the cluster's default rate
 * limits); without it, as fast as the round trip allows.
 */
function keepEchoing(client: RawClient, paceMs = 0): Bystander {
  let stopped = false;
  let echoes = 0;
  let maxMs = 0;
  const rtts: number[] = [];
  const loop = (async () => {
    // Bounded in count; in time by the client's 10 s wait per answer.
    for (let i = 0; i < 100_000 && !stopped; i++) {
      const started = performance.now();
      client.send({ kind: "Plugin", command: 0x80, payload: utf8(`e${i}`) });
      assert.equal(await nextWith(client, 0x80), `e${i}`);
      const rtt = performance.now() - started;
      maxMs = Math.max(maxMs, rtt);
      rtts.push(rtt);
      echoes++;
      const wait = paceMs - (performance.now() - started);
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      rtts.sort((x, y) => x - y);
      const p99Ms = rtts.length === 0
        ? 0
        : rtts[Math.min(rtts.length - 1, Math.floor(rtts.length * 0.99))];
      return { echoes, maxMs, p99Ms };
    },
  };
}

function rssMb(): number {
  return Math.round(Deno.memoryUsage().rss / 1048576);
}

function processGone(pid: number): boolean {
  try {
    Deno.statSync(`/proc/${pid}`);
    return false;
  } catch {
    return true;
  }
}

async function withWorld(
  specs: PluginSpec[],
  body: (w: World, attacker: RawClient, bystander: RawClient) => Promise<void>,
  options: Partial<ClusterOptions> = {},
): Promise<void> {
  await using w = await startWorld({
    pluginSpecs: [spec("echo.ts", "echo"), ...specs],
    // The default: short enough for a quick test, long enough that a loaded machine (the suite
    // runs in parallel) does not make a healthy plugin miss its pings.
    pluginWatchdogMs: 2000,
    pluginHostOptions: HOST_OPTIONS,
    // The bystander echoes in a closed loop and the flooders must reach the plugin host: the
    // per-player limits (which would throttle both) are tested in cluster_fairness_test.
    playerRateLimits: UNLIMITED_PLAYERS,
    status: { port: 0 },
    ...options,
  });
  const a = await playerJoins(w.master.addr.port, w.cluster.addr.port);
  const b = await playerJoins(w.master.addr.port, w.cluster.addr.port);
  try {
    await body(w, a.client, b.client);
    assert.equal(w.cluster.players.size, 2, "both players are still connected");
    assert.equal(w.master.registry.size, 1, "the cluster is still listed");
  } finally {
    await a.client.close();
    await b.client.close();
  }
}

async function metrics(w: World): Promise<string> {
  return await (await fetch(`http://127.0.0.1:${w.cluster.statusAddr!.port}/metrics`)).text();
}

Deno.test("a plugin that SIGKILLs, SIGQUITs or SIGSTOPs its own process is restarted; the cluster and a bystander carry on", async () => {
  let pid = 0;
  await withWorld([spec("testing/kills_itself.ts", "kills_itself")], async (w, a, b) => {
    pid = Number(await nextWith(a, 0xa1));
    // Signalling the cluster (its parent) needs the run permission.
    a.send({ kind: "Plugin", command: 0xa2, payload: new Uint8Array() });
    assert.equal(await nextWith(a, 0xa2), "NotCapable");
    // SIGINT and SIGTERM (what a process group gets from Ctrl-C or systemd) are ignored: the
    // same process answers next, with no restart's greeting (0xa1) before it.
    for (const signal of ["SIGINT", "SIGTERM"]) {
      a.send({ kind: "Plugin", command: 0xa0, payload: utf8(signal) });
    }
    a.send({ kind: "Plugin", command: 0xa2, payload: new Uint8Array() });
    for (;;) {
      const packet = await a.next(10_000);
      if (packet.kind !== "Plugin" || (packet.command !== 0xa1 && packet.command !== 0xa2)) {
        continue;
      }
      assert.equal(packet.command, 0xa2, "SIGINT/SIGTERM must not restart the plugin");
      break;
    }
    assert.ok(!processGone(pid));
    for (const signal of ["SIGKILL", "SIGQUIT", "SIGSTOP"]) {
      const bystander = keepEchoing(b);
      a.send({ kind: "Plugin", command: 0xa0, payload: utf8(signal) });
      // The restarted plugin greets again from a new process.
      const next = Number(await nextWith(a, 0xa1));
      const { echoes, maxMs, p99Ms } = await bystander.stop();
      assert.notEqual(next, pid);
      await waitUntil(() => processGone(pid), `process ${pid} to be gone`);
      console.log(
        `${signal}: bystander ${echoes} echoes, p99 ${p99Ms.toFixed(1)} ms, slowest ${
          maxMs.toFixed(1)
        } ms`,
      );
      pid = next;
    }
    const text = await metrics(w);
    const count = (name: string) => Number(new RegExp(`${name} (\\d+)`).exec(text)?.[1]);
    // SIGKILL and SIGQUIT end it by a signal; SIGSTOP leaves it silent until the watchdog.
    assert.ok(count('sustenet_cluster_plugin_kills_total\\{reason="crash"\\}') >= 2, text);
    assert.ok(count('sustenet_cluster_plugin_kills_total\\{reason="hang"\\}') >= 1, text);
    assert.ok(count("sustenet_cluster_plugin_restarts_total") >= 3, text);
  });
  // The cluster stopped: its plugin subprocesses were killed and reaped with it.
  assert.ok(processGone(pid), `plugin process ${pid} outlived the cluster`);
});

Deno.test("heap exhaustion and ArrayBuffer hoarding end only the plugin's process (max_memory_mb)", async () => {
  const hostile = spec("testing/exhausts_memory.ts", "exhausts_memory", { maxMemoryMb: 64 });
  await withWorld([hostile], async (w, a, b) => {
    let pid = Number(await nextWith(a, 0xa1));
    for (const how of ["heap", "buffers"]) {
      const bystander = keepEchoing(b);
      a.send({ kind: "Plugin", command: 0xa0, payload: utf8(how) });
      const next = Number(await nextWith(a, 0xa1, 60_000));
      const { echoes, maxMs, p99Ms } = await bystander.stop();
      assert.notEqual(next, pid);
      await waitUntil(() => processGone(pid), `process ${pid} to be gone`);
      console.log(
        `${how}: bystander ${echoes} echoes, p99 ${p99Ms.toFixed(1)} ms, slowest ${
          maxMs.toFixed(1)
        } ms, RSS ${rssMb()} MiB`,
      );
      assert.ok(rssMb() < RSS_BOUND_MB, `RSS ${rssMb()} MiB`);
      pid = next;
    }
    const text = await metrics(w);
    const kills = (reason: string) =>
      Number(new RegExp(`plugin_kills_total\\{reason="${reason}"\\} (\\d+)`).exec(text)?.[1]);
    // The buffer hoarder yields, so only its memory cap ends it. The heap filler never yields:
    // V8's heap limit ends it, unless (on a loaded machine) the watchdog gets there first.
    assert.ok(kills("memory") >= 1, text);
    assert.equal(kills("memory") + kills("hang"), 2);
  });
});

Deno.test("a busy-looping plugin is SIGKILLed by the watchdog: its process is gone and it is restarted", async () => {
  await withWorld([spec("testing/hangs.ts", "hangs")], async (w, a, b) => {
    await nextWith(a, 0x92);
    a.send({ kind: "Plugin", command: 0x94, payload: new Uint8Array() });
    const pid = Number(await nextWith(a, 0x94));
    const bystander = keepEchoing(b);
    a.send({ kind: "Plugin", command: 0x90, payload: new Uint8Array() });
    await nextWith(a, 0x92); // greeted again: restarted
    const { echoes, maxMs, p99Ms } = await bystander.stop();
    await waitUntil(() => processGone(pid), `process ${pid} to be gone`);
    console.log(
      `hang: bystander ${echoes} echoes, p99 ${p99Ms.toFixed(1)} ms, slowest ${
        maxMs.toFixed(1)
      } ms`,
    );
    a.send({ kind: "Plugin", command: 0x94, payload: new Uint8Array() });
    assert.notEqual(Number(await nextWith(a, 0x94)), pid);
    assert.match(await metrics(w), /sustenet_cluster_plugin_kills_total\{reason="hang"\} [1-9]/);
  });
});

Deno.test("floods of sends, sends to a missing player and log lines never stall the cluster; logs are rate-limited", async () => {
  const records: LogRecord[] = [];
  await setupLogging({
    level: "info",
    console: QUIET_CONSOLE,
    sinks: {
      capture(record: LogRecord) {
        if (record.category[1] === "plugin" && record.category[2] === "floods") {
          records.push(record);
        }
      },
    },
  });
  try {
    await withWorld([spec("testing/floods.ts", "floods")], async (w, a, b) => {
      // [command, payload[0] × 100 000 events]
      for (const [command, hundredThousands] of [[0xa0, 4], [0xa1, 10], [0xa2, 10]]) {
        const bystander = keepEchoing(b);
        const started = performance.now();
        a.send({ kind: "Plugin", command, payload: new Uint8Array([hundredThousands]) });
        await nextWith(a, 0xaf, 60_000);
        const ms = performance.now() - started;
        const { echoes, maxMs, p99Ms } = await bystander.stop();
        console.log(
          `flood 0x${command.toString(16)} × ${hundredThousands * 100_000}: ${ms.toFixed(0)} ms, ` +
            `bystander ${echoes} echoes, p99 ${p99Ms.toFixed(1)} ms, slowest ${
              maxMs.toFixed(1)
            } ms, RSS ${rssMb()} MiB`,
        );
        assert.ok(rssMb() < RSS_BOUND_MB, `RSS ${rssMb()} MiB`);
      }
      const spam = records.filter((r) => String(r.properties.pluginMessage).startsWith("spam "));
      const summaries = records.filter((r) => r.properties.count !== undefined);
      const dropped = summaries.reduce((sum, r) => sum + Number(r.properties.count), 0);
      console.log(`log flood: ${spam.length} lines written, ${summaries.length} summaries`);
      // The burst (500) plus 100/s while it lasted; a million were asked for.
      assert.ok(spam.length < 10_000, `${spam.length} spam lines reached the log`);
      assert.ok(summaries.length >= 1);
      assert.ok(dropped > 0 && dropped <= 1_000_000);
      assert.match(
        await metrics(w),
        /sustenet_cluster_plugin_dropped_log_lines_total [1-9]\d*/,
      );
    });
  } finally {
    await reset();
  }
});

Deno.test("console.log from a plugin becomes an escaped log line of that plugin, never a raw line", async () => {
  const records: LogRecord[] = [];
  await setupLogging({
    level: "info",
    console: QUIET_CONSOLE,
    sinks: { capture: (record: LogRecord) => void records.push(record) },
  });
  try {
    await withWorld([spec("testing/floods.ts", "floods")], async (_w, a) => {
      a.send({ kind: "Plugin", command: 0xa3, payload: new Uint8Array() });
      await nextWith(a, 0xaf);
      await waitUntil(
        () => records.some((r) => r.properties.pluginMessage === FORGED_LINE),
        "the console line as a log record",
      );
      const forged = records.find((r) => r.properties.pluginMessage === FORGED_LINE)!;
      assert.deepEqual(forged.category, ["sustenet", "plugin", "floods"]);
      const line = formatLogRecord(forged);
      assert.ok(!line.includes("\n") && !line.includes("\x1b"), line);
    });
  } finally {
    await reset();
  }
});

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory) out.push(...await listFiles(path));
      else out.push(`${path} ${(await Deno.stat(path)).mtime?.getTime()}`);
    }
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  return out.sort();
}

Deno.test("without a write grant a plugin writes nothing through caches, localStorage or a Worker", async () => {
  const info = new Deno.Command(Deno.execPath(), { args: ["info", "--json"] }).outputSync();
  const { originStorage } = JSON.parse(text(info.stdout)) as { originStorage: string };
  const before = await listFiles(originStorage);
  await withWorld([spec("testing/writes_storage.ts", "writes_storage")], async (_w, a, b) => {
    a.send({ kind: "Plugin", command: 0xa0, payload: new Uint8Array() });
    const results = JSON.parse(await nextWith(a, 0xa0)) as Record<string, string>;
    assert.deepEqual(results, {
      caches: "TypeError",
      localStorage: "TypeError",
      sessionStorage: "TypeError",
      worker: "TypeError",
      cwd: "NotCapable",
      execPath: "NotCapable",
      stdout: "NotCapable",
    });
    const bystander = keepEchoing(b);
    assert.ok((await bystander.stop()).echoes >= 1);
  });
  assert.deepEqual(await listFiles(originStorage), before, "no file written or changed");
});

Deno.test("a player flooding a slow plugin fills only its bounded queue: messages dropped, plugin kept", async () => {
  await withWorld(
    [spec("testing/slow.ts", "slow")],
    async (w, a, b) => {
      const bystander = keepEchoing(b);
      // 20 000 commands of 0.5 ms each: far more than the plugin can take in time, while its
      // queue (8192 by default) holds 4 s of work; it keeps answering pings meanwhile.
      for (let i = 0; i < 20_000; i++) {
        a.send({ kind: "Plugin", command: 0xa0, payload: new Uint8Array(16) });
      }
      // The attacker's own question waits behind its share of the queue (or is dropped with
      // the rest of its flood): ask until answered, a bounded number of times.
      let handled = -1;
      for (let i = 0; i < 60 && handled < 0; i++) {
        a.send({ kind: "Plugin", command: 0xa1, payload: new Uint8Array() });
        handled = await nextWith(a, 0xa1, 1_000).then(Number, () => -1);
      }
      assert.ok(handled > 0, "the slow plugin answers after the flood");
      const { echoes, maxMs, p99Ms } = await bystander.stop();
      const text = await metrics(w);
      const dropped = Number(
        /sustenet_cluster_plugin_dropped_messages_total (\d+)/.exec(text)?.[1],
      );
      console.log(
        `queue flood: ${handled} handled, ${dropped} dropped; bystander ${echoes} echoes, ` +
          `p99 ${p99Ms.toFixed(1)} ms, slowest ${maxMs.toFixed(1)} ms`,
      );
      assert.ok(dropped > 0, "some messages were dropped");
      // Every message was either handled or dropped (echo, fast, may add drops of its own).
      assert.ok(handled + dropped >= 20_000, `${handled} + ${dropped}`);
      assert.match(text, /sustenet_cluster_plugin_restarts_total 0/);
      assert.match(text, /sustenet_cluster_plugin_kills_total\{reason="hang"\} 0/);
    },
  );
});

Deno.test("ffi or run without trusted = true is refused by the config, naming the field", () => {
  for (const grant of ["ffi = true", 'run = ["ls"]']) {
    assert.throws(
      () =>
        parseConfig(
          `[[cluster.plugins]]\nurl = "./plugins/testing/uses_ffi.ts"\npermissions = { ${grant} }`,
          { baseDir: REPO_ROOT },
        ),
      (err: unknown) =>
        err instanceof ConfigError && /permissions\.(ffi|run)/.test(err.message) &&
        /trusted/.test(err.message),
    );
  }
  const trusted = parseConfig(
    `[[cluster.plugins]]\nurl = "./plugins/testing/uses_ffi.ts"\ntrusted = true\n` +
      `permissions = { ffi = true }`,
    { baseDir: REPO_ROOT },
  );
  assert.equal(clusterOptionsFromConfig(trusted).pluginSpecs?.[0].trusted, true);
  for (const bad of ["max_memory_mb = 8", "max_memory_mb = 1.5", 'trusted = "yes"']) {
    assert.throws(
      () => parseConfig(`[[cluster.plugins]]\nurl = "./plugins/echo.ts"\n${bad}`, { baseDir: "/" }),
      new RegExp(bad.split(" ")[0]),
    );
  }
});

Deno.test("deno task cluster: a plugin killing its own process leaves the cluster serving; SIGTERM to its process group drains players and ends plugins cleanly", async () => {
  const tasks = JSON.parse(await Deno.readTextFile(`${REPO_ROOT}deno.json`)).tasks;
  // The task's own flags (not -A): spawning plugin subprocesses needs exactly --allow-run.
  const keysDir = await Deno.makeTempDir();
  // The task writes keys under ./keys; this test's keys live in a temporary directory.
  const denoFlags = String(tasks.cluster).split(" ").filter((f) => f.startsWith("--"))
    .map((f) => f === "--allow-write=keys" ? `--allow-write=${keysDir}` : f);
  await generateKey(keysDir, "cluster_key");
  try {
    const masterPort = await freePort();
    await using masterConfig = await writeTempConfig(
      `[all]\nport = ${masterPort}\nkeys_dir = "${keysDir}"\nstatus_enabled = false\n`,
    );
    await using clusterConfig = await writeTempConfig(
      `[all]\nserver_name = "iso-1"\nport = ${await freePort()}\nkeys_dir = "${keysDir}"\n` +
        `status_enabled = false\n[cluster]\nmaster_port = ${masterPort}\nreconnect_min_ms = 100\n` +
        `[[cluster.plugins]]\nurl = "${REPO_ROOT}plugins/echo.ts"\n` +
        `[[cluster.plugins]]\nurl = "${REPO_ROOT}plugins/testing/kills_itself.ts"\n`,
    );
    await using master = spawnRole("master", ["--config", masterConfig.path]);
    await using cluster = spawnRole("cluster", ["--config", clusterConfig.path], {
      denoFlags,
      ownProcessGroup: true,
    });
    await waitForLine(master, /^master listening on /);
    const ready = await waitForLine(cluster, /^cluster iso-1 listening on 127\.0\.0\.1:(\d+)/);
    const clusterPort = Number(ready[1]);
    let a: Awaited<ReturnType<typeof playerJoins>> | undefined;
    for (let i = 0; i < 100 && a === undefined; i++) {
      a = await playerJoins(masterPort, clusterPort).catch(() => undefined);
      if (a === undefined) await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(a !== undefined, "a player joins");
    const b = await playerJoins(masterPort, clusterPort);
    try {
      const pid = Number(await nextWith(a.client, 0xa1));
      // The cluster runs with the default per-player limits: the bystander plays at 100 Hz.
      const bystander = keepEchoing(b.client, 10);
      a.client.send({ kind: "Plugin", command: 0xa0, payload: utf8("SIGKILL") });
      const restarted = Number(await nextWith(a.client, 0xa1));
      assert.notEqual(restarted, pid);
      const { echoes } = await bystander.stop();
      assert.ok(echoes >= 1);
      assert.ok(processGone(pid));
      // What Ctrl-C in a terminal or systemd's stop does: a signal to every process of the
      // group, the plugins' subprocesses included. They ignore it; the cluster drains.
      Deno.kill(-cluster.child.pid, "SIGTERM");
      let bye = await b.client.next(10_000);
      // Skip the plugins' own packets (the restart's greetings) still on the way.
      while (bye.kind === "Plugin") bye = await b.client.next(10_000);
      assert.equal(bye.kind, "DisconnectCluster", JSON.stringify(bye));
      const status = await cluster.waitExit();
      assert.equal(status.code, 0, cluster.stderrText());
      const out = cluster.stdoutLines().join("\n") + cluster.stderrText();
      assert.match(out, /cluster iso-1 stopped/);
      assert.doesNotMatch(out, /ended by SIGTERM|ended by SIGINT/);
      await waitUntil(() => processGone(restarted), `plugin process ${restarted} to be gone`);
    } finally {
      await a.client.close();
      await b.client.close();
    }
  } finally {
    await Deno.remove(keysDir, { recursive: true });
  }
});
