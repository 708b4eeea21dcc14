import assert from "node:assert/strict";
import {
  type ClusterOptions,
  clusterOptionsFromConfig,
  startCluster,
} from "../cluster/cluster_server.ts";
import { PluginLoadError } from "../cluster/plugin_host.ts";
import { NO_PLUGIN_PERMISSIONS } from "../cluster/plugin_permissions.ts";
import { parseConfig } from "../shared/config.ts";
import { definePlugin } from "../shared/plugin.ts";
import { playerJoins, startWorld, waitUntil } from "./_raw_client.ts";

const REPO_ROOT = new URL("..", import.meta.url).pathname;

/** Runs `body` against a master and a cluster started with `options`, then stops both. */
async function withCluster(
  options: ClusterOptions,
  body: (ports: { master: number; cluster: number }) => Promise<void>,
): Promise<void> {
  await using w = await startWorld(options);
  await body({ master: w.master.addr.port, cluster: w.cluster.addr.port });
}

Deno.test("a sandboxed plugin configured by URL (plugins/echo.ts) works end to end", async () => {
  const config = parseConfig('[[cluster.plugins]]\nurl = "./plugins/echo.ts"\n', {
    baseDir: REPO_ROOT,
  });
  const options = clusterOptionsFromConfig(config);
  assert.equal(options.pluginSpecs?.[0].name, "echo");
  await withCluster({ pluginSpecs: options.pluginSpecs }, async (ports) => {
    const { client } = await playerJoins(ports.master, ports.cluster);
    try {
      for (const text of ["through", "the", "worker"]) {
        const payload = new TextEncoder().encode(text);
        client.send({ kind: "Plugin", command: 0x80, payload });
        const answer = await client.expect("Plugin");
        assert.equal(new TextDecoder().decode(answer.payload), text);
      }
    } finally {
      await client.close();
    }
  });
});

Deno.test("every plugin receives every event, in-process and sandboxed alike", async () => {
  const seen: string[] = [];
  const recorder = (name: string) =>
    definePlugin({
      onJoin: (_ctx, player) => void seen.push(`${name} join ${player.clientId}`),
      onMessage: (_ctx, from, command) => void seen.push(`${name} message ${from} ${command}`),
      onMove: (_ctx, client) => void seen.push(`${name} move ${client}`),
      onLeave: (_ctx, player) => void seen.push(`${name} leave ${player.clientId}`),
    });
  const echoSpec = {
    url: new URL("../plugins/echo.ts", import.meta.url).href,
    name: "echo",
    settings: {},
    permissions: NO_PLUGIN_PERMISSIONS,
  };
  await withCluster(
    { plugins: [recorder("a"), { plugin: recorder("b"), name: "b" }], pluginSpecs: [echoSpec] },
    async (ports) => {
      const { client, auth } = await playerJoins(ports.master, ports.cluster);
      const id = auth.clientId;
      try {
        client.send({ kind: "Move", state: { x: 1, y: 0, z: 1 } });
        client.send({ kind: "Plugin", command: 0x80, payload: new Uint8Array([5]) });
        assert.deepEqual([...(await client.expect("Plugin")).payload], [5]);
      } finally {
        await client.close();
      }
      await waitUntil(() => seen.length === 8, "every event");
      assert.deepEqual(seen, [
        `a join ${id}`,
        `b join ${id}`,
        `a move ${id}`,
        `b move ${id}`,
        `a message ${id} 128`,
        `b message ${id} 128`,
        `a leave ${id}`,
        `b leave ${id}`,
      ]);
    },
  );
});

Deno.test("a plugin that rejects a move stops it before the other plugins and the grid", async () => {
  const moves: number[] = [];
  const referee = definePlugin({ onMove: (_ctx, _client, move) => move.y >= 0 });
  const witness = definePlugin({ onMove: (_ctx, _client, move) => void moves.push(move.y) });
  await withCluster({ plugins: [referee, witness] }, async (ports) => {
    const { client } = await playerJoins(ports.master, ports.cluster);
    try {
      client.send({ kind: "Move", state: { x: 0, y: -5, z: 0 } });
      client.send({ kind: "Move", state: { x: 0, y: 5, z: 0 } });
      client.send({ kind: "Ping", value: 3 });
      await client.expect("Pong");
      assert.deepEqual(moves, [5]);
    } finally {
      await client.close();
    }
  });
});

Deno.test("a plugin that cannot be loaded fails startCluster with a PluginLoadError naming it", async () => {
  const keysDir = await Deno.makeTempDir();
  try {
    for (const url of ["../plugins/does_not_exist.ts", "../plugins/testing/not_a_plugin.ts"]) {
      await assert.rejects(
        () =>
          startCluster({
            port: 0,
            keysDir,
            master: null,
            pluginSpecs: [{
              url: new URL(url, import.meta.url).href,
              name: "broken",
              settings: {},
              permissions: NO_PLUGIN_PERMISSIONS,
            }],
          }),
        (error: unknown) =>
          error instanceof PluginLoadError && error.plugin === "broken" &&
          error.message.includes('plugin "broken"'),
      );
    }
    // Nothing was left listening or running: a normal start still works.
    await using cluster = await startCluster({ port: 0, keysDir, master: null });
    assert.ok(cluster.addr.port > 0);
  } finally {
    await Deno.remove(keysDir, { recursive: true });
  }
});
