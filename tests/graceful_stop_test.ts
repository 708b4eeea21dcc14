/**
 * Graceful stop however the signal arrives: `deno task cluster` (the real task, so `deno task`
 * is the parent and forwards the signal too) with a trusted plugin in a Worker, in a process
 * group of its own; SIGTERM or SIGINT to the whole group, as systemd or Ctrl-C deliver it,
 * reaches the cluster twice. It must drain its player (DisconnectCluster), print its stopped
 * line and exit 0, not 130.
 */
import assert from "node:assert/strict";
import { generateKey, loadOrCreateIdentity } from "../shared/keys.ts";
import { freePort, spawnRole, waitForLine, waitForLog, writeTempConfig } from "./_process.ts";
import { playerJoins } from "./_raw_client.ts";

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  Deno.test(`${signal} to the process group of deno task cluster with a Worker plugin drains players and exits 0`, async () => {
    const keysDir = await Deno.makeTempDir({ prefix: "sustenet_stop_" });
    try {
      await generateKey(keysDir, "cluster_key");
      // The task may write under ./keys only: the identity exists before it starts.
      await loadOrCreateIdentity(keysDir, "cluster_identity");
      const masterPort = await freePort();
      await using masterConfig = await writeTempConfig(
        `[all]\nport = ${masterPort}\nkeys_dir = "${keysDir}"\nstatus_enabled = false\n`,
      );
      await using clusterConfig = await writeTempConfig(
        `[all]\nserver_name = "stop-1"\nport = ${await freePort()}\nkeys_dir = "${keysDir}"\n` +
          `status_enabled = false\n[cluster]\nmaster_port = ${masterPort}\n` +
          `[[cluster.plugins]]\nurl = "${new URL("../plugins/echo.ts", import.meta.url).href}"\n` +
          `trusted = true\n`,
      );
      await using master = spawnRole("master", ["--config", masterConfig.path]);
      await waitForLine(master, /^master listening on /);
      await using cluster = spawnRole("cluster", ["--config", clusterConfig.path], {
        viaTask: true,
        ownProcessGroup: true,
      });
      const ready = await waitForLine(cluster, /^cluster stop-1 listening on 127\.0\.0\.1:(\d+)/);
      await waitForLog(cluster, /registered with master/);
      const player = await playerJoins(masterPort, Number(ready[1]));
      try {
        player.client.send({ kind: "Plugin", command: 0x80, payload: new Uint8Array([1]) });
        assert.equal((await player.client.next()).kind, "Plugin"); // the Worker plugin echoes
        Deno.kill(-cluster.child.pid, signal);
        const bye = await player.client.next();
        assert.equal(bye.kind, "DisconnectCluster", JSON.stringify(bye));
        const status = await cluster.waitExit();
        const out = cluster.stdoutLines().join("\n") + cluster.stderrText();
        assert.equal(status.code, 0, out);
        assert.match(out, /cluster stop-1 stopped/);
      } finally {
        await player.client.close();
      }
    } finally {
      await Deno.remove(keysDir, { recursive: true });
    }
  });
}
