/**
 * A newcomer's first run, as README.md shows it: the repository's own Config.toml (ports and
 * keys moved aside by flags), `deno task client join auto` echoing chat and `/cmd 128 hi`, a
 * command no plugin handles answered with "no plugin handles 0x90" (and counted), and bots
 * reporting replies.
 */
import assert from "node:assert/strict";
import { parse as parseToml } from "smol-toml";
import { CHAT_SETTINGS } from "../plugins/chat.ts";
import { generateKey } from "../shared/keys.ts";
import {
  freePort,
  REPO_ROOT,
  type RoleProcess,
  spawnJoiningClient,
  spawnRole,
  waitForClusters,
  waitForLine,
} from "./_process.ts";

/** Master and cluster from the repository's Config.toml, each on free ports. */
async function startFromRepoConfig() {
  const keysDir = await Deno.makeTempDir({ prefix: "sustenet_first_run_" });
  await generateKey(keysDir, "cluster_key");
  const masterPort = await freePort();
  const clusterStatusPort = await freePort();
  const processes: RoleProcess[] = [];
  const close = async () => {
    for (const proc of processes) await proc.close();
    await Deno.remove(keysDir, { recursive: true });
  };
  try {
    const common = ["--config", "Config.toml", "--keys-dir", keysDir, "--log-level", "warning"];
    const master = spawnRole("master", [
      ...common,
      "--port",
      String(masterPort),
      "--no-status-enabled",
    ]);
    processes.push(master);
    await waitForLine(master, /^master listening on /);
    const cluster = spawnRole("cluster", [
      ...common,
      "--port",
      String(await freePort()),
      "--status-port",
      String(clusterStatusPort),
      "--master-port",
      String(masterPort),
    ]);
    processes.push(cluster);
    await waitForLine(cluster, /^cluster .* listening on /);
    await waitForClusters(masterPort);
  } catch (error) {
    await close();
    throw error;
  }
  return { masterPort, clusterStatusPort, [Symbol.asyncDispose]: close };
}

Deno.test("README's plugin example sets only settings chat reads", async () => {
  const readme = await Deno.readTextFile(`${REPO_ROOT}README.md`);
  const blocks = [...readme.matchAll(/```toml\n([\s\S]*?)```/g)].map((m) => m[1]);
  assert.ok(blocks.length > 0);
  for (const block of blocks) {
    const parsed = parseToml(block) as { cluster?: { plugins?: Record<string, unknown>[] } };
    for (const plugin of parsed.cluster?.plugins ?? []) {
      if (!String(plugin.url).endsWith("chat.ts")) continue;
      for (const key of Object.keys(plugin.settings ?? {})) {
        assert.ok(CHAT_SETTINGS.includes(key), `chat does not read settings.${key}`);
      }
    }
  }
});

Deno.test("first run with the repository's Config.toml: chat, /cmd 128 and an unowned command are answered", async () => {
  await using servers = await startFromRepoConfig();
  const child = spawnJoiningClient(servers.masterPort, "auto");
  try {
    await child.readUntil(/joined Sustenet \(cluster \d+\) as client \d+/);
    await child.write("hello newcomer\n");
    await child.readUntil(/\[client \d+\] hello newcomer/);
    await child.write("/cmd 128 hi\n");
    await child.readUntil(/^command 0x80: hi$/m);
    // 0x90: no plugin handles it. The cluster answers (stderr), the session stays open.
    await child.write("/cmd 0x90 anyone?\n");
    await child.stderrUntil(/no plugin handles 0x90/);
    await child.write("still here\n");
    await child.readUntil(/\[client \d+\] still here/);
  } finally {
    const code = await child.finish();
    assert.equal(code, 0, `${child.stdout}\n${child.stderr}`);
  }
  const metrics = await (await fetch(`http://127.0.0.1:${servers.clusterStatusPort}/metrics`))
    .text();
  assert.match(metrics, /^sustenet_cluster_plugin_unhandled_total 1$/m);
});

Deno.test("first run with the repository's Config.toml: bots get replies", async () => {
  await using servers = await startFromRepoConfig();
  await using bots = spawnRole("client", [
    "--master",
    `127.0.0.1:${servers.masterPort}`,
    "--bots",
    "5",
    "--seconds",
    "2",
  ]);
  const status = await bots.waitExit();
  const out = bots.stdoutLines().join("\n");
  assert.equal(status.code, 0, `${out}\n${bots.stderrText()}`);
  const totals = /^messages sent (\d+) \(\d+\/s\) received (\d+) \(\d+\/s\)$/m.exec(out);
  assert.ok(totals !== null, out);
  assert.ok(Number(totals[1]) > 0 && Number(totals[2]) > 0, out);
  assert.match(out, /^rtt p50 [\d.]+ p95 [\d.]+ p99 [\d.]+ max [\d.]+ ms \(\d+\)$/m);
  assert.match(out, /^errors 0$/m);
});
