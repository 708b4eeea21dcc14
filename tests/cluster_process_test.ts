import assert from "node:assert/strict";
import {
  freePort,
  REPO_ROOT,
  spawnRole,
  waitForLine,
  waitForRegistered,
  writeEchoDeployment,
  writeTempConfig,
} from "./_process.ts";
import { playerJoins } from "./_raw_client.ts";

Deno.test("cluster/main.ts serves players through a real master and stops cleanly on SIGTERM", async () => {
  await using deployment = await writeEchoDeployment("proc-1");
  const { masterPort, statusPort } = deployment;
  await using master = spawnRole("master", ["--config", deployment.masterConfig]);
  await using cluster = spawnRole("cluster", ["--config", deployment.clusterConfig]);
  await waitForLine(master, /^master listening on /);
  const ready = await waitForLine(
    cluster,
    /^cluster proc-1 listening on 127\.0\.0\.1:(\d+) status http:\/\/127\.0\.0\.1:(\d+)\/$/,
  );
  const clusterPort = Number(ready[1]);
  assert.equal(Number(ready[2]), statusPort);
  // Registration follows the ready line: wait until the master can issue tickets for it.
  await waitForRegistered(statusPort);
  const { client } = await playerJoins(masterPort, clusterPort);
  try {
    client.send({ kind: "Plugin", command: 0x80, payload: new Uint8Array([42]) });
    assert.deepEqual([...(await client.expect("Plugin")).payload], [42]);
    cluster.kill("SIGTERM");
    const bye = await client.expect("DisconnectCluster");
    assert.match(bye.reason, /shutting down/);
    await client.closed;
  } finally {
    await client.close();
  }
  assert.equal((await cluster.waitExit()).code, 0);
});

Deno.test("cluster/main.ts exits 1 naming a plugin that cannot be loaded", async () => {
  const keysDir = await Deno.makeTempDir();
  try {
    await using config = await writeTempConfig(
      `[all]\nport = ${await freePort()}\nkeys_dir = "${keysDir}"\nstatus_enabled = false\n` +
        `[[cluster.plugins]]\nurl = "${new URL("../plugins/missing.ts", import.meta.url).href}"\n` +
        `name = "ghost"\n`,
    );
    await using cluster = spawnRole("cluster", ["--config", config.path]);
    const status = await cluster.waitExit();
    assert.equal(status.code, 1);
    assert.match(cluster.stderrText(), /plugin "ghost"/);
  } finally {
    await Deno.remove(keysDir, { recursive: true });
  }
});

Deno.test("cluster/main.ts exits 2 naming a bad config field", async () => {
  await using config = await writeTempConfig(`[cluster]\nheartbeat_interval_ms = -5\n`);
  await using cluster = spawnRole("cluster", ["--config", config.path], { cwd: REPO_ROOT });
  const status = await cluster.waitExit();
  assert.equal(status.code, 2);
  assert.match(cluster.stderrText(), /heartbeat_interval_ms/);
});
