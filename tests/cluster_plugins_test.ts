import { QUIET_CONSOLE } from "./_logs.ts";
import assert from "node:assert/strict";
import { type LogRecord, reset } from "@logtape/logtape";
import { type ClusterOptions, clusterOptionsFromConfig, startCluster } from "../cluster/mod.ts";
import { PluginLoadError } from "../cluster/plugin_host.ts";
import { NO_PLUGIN_PERMISSIONS } from "../cluster/plugin_permissions.ts";
import { parseConfig } from "../shared/config.ts";
import { setupLogging } from "../shared/logging.ts";
import { definePlugin } from "../shared/plugin.ts";
import { playerJoins, type RawClient, startWorld, waitUntil } from "./_raw_client.ts";

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

/** The next Plugin packet with `command`, skipping others (greetings from restarted plugins). */
async function nextWith(client: RawClient, command: number): Promise<Uint8Array> {
  for (;;) {
    const packet = await client.next();
    if (packet.kind === "Plugin" && packet.command === command) return packet.payload;
  }
}

async function echoes(client: RawClient, text: string): Promise<void> {
  client.send({ kind: "Plugin", command: 0x80, payload: utf8(text) });
  assert.equal(new TextDecoder().decode(await nextWith(client, 0x80)), text);
}

function utf8(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

Deno.test("a hanging, a throwing and an unpermitted plugin never stop another player's echo", async () => {
  const secret = await Deno.makeTempFile();
  await Deno.writeTextFile(secret, "not for plugins");
  try {
    const config = parseConfig(
      [
        "[cluster]\nplugin_watchdog_ms = 1000",
        ...["echo", "testing/hangs", "testing/throws", "testing/reads_file"].map((p) =>
          `[[cluster.plugins]]\nurl = "./plugins/${p}.ts"`
        ),
      ].join("\n"),
      { baseDir: REPO_ROOT },
    );
    const options = clusterOptionsFromConfig(config);
    assert.equal(options.pluginWatchdogMs, 1000);
    await using w = await startWorld({
      pluginSpecs: options.pluginSpecs,
      pluginWatchdogMs: options.pluginWatchdogMs,
      status: { port: 0 },
    });
    const a = await playerJoins(w.master.addr.port, w.cluster.addr.port);
    const b = await playerJoins(w.master.addr.port, w.cluster.addr.port);
    try {
      await echoes(b.client, "before");
      // 0x93: throws from a timer; 0x92: a rejected hook (throws only).
      a.client.send({ kind: "Plugin", command: 0x93, payload: new Uint8Array() });
      a.client.send({ kind: "Plugin", command: 0x92, payload: new Uint8Array() });
      await echoes(b.client, "after throws");
      // 0x90: hangs spins forever, throws throws, reads_file tries the file without a grant.
      a.client.send({ kind: "Plugin", command: 0x90, payload: utf8(secret) });
      assert.equal(new TextDecoder().decode(await nextWith(a.client, 0x90)), "error:NotCapable");
      await echoes(b.client, "while hung");
      const health = `http://127.0.0.1:${w.cluster.statusAddr!.port}/health`;
      const hangsState = async () => {
        const body = await (await fetch(health)).json() as {
          plugins: { name: string; state: string }[];
        };
        return body.plugins.find((p) => p.name === "hangs")?.state;
      };
      // The watchdog notices the hang and restarts the plugin; a restart greets again (0x92).
      await nextWith(a.client, 0x92);
      await echoes(b.client, "after the restart");
      assert.equal(await hangsState(), "running");
      // Everyone still answers: the restarted hangs, throws, and A's own echo.
      a.client.send({ kind: "Plugin", command: 0x91, payload: utf8("x") });
      await nextWith(a.client, 0x91);
      await echoes(a.client, "A is fine too");
      assert.equal(w.cluster.players.size, 2);
      assert.equal(w.master.registry.size, 1);
    } finally {
      await a.client.close();
      await b.client.close();
    }
  } finally {
    await Deno.remove(secret);
  }
});

Deno.test("motd with a read grant greets a joining player through a real cluster (0x83)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/motd.txt`, "welcome to eu-1");
    // A relative grant resolves against the config's directory, like the url.
    const config = parseConfig(
      [
        "[[cluster.plugins]]",
        `url = "${REPO_ROOT}plugins/motd.ts"`,
        'permissions = { read = ["./motd.txt"] }',
        'settings = { path = "' + `${dir}/motd.txt` + '" }',
      ].join("\n"),
      { file: `${dir}/Config.toml` },
    );
    const options = clusterOptionsFromConfig(config);
    assert.deepEqual(options.pluginSpecs?.[0].permissions.read, [`${dir}/motd.txt`]);
    await withCluster({ pluginSpecs: options.pluginSpecs }, async (ports) => {
      const { client } = await playerJoins(ports.master, ports.cluster);
      try {
        const greeting = await client.expect("Plugin");
        assert.equal(greeting.command, 0x83);
        assert.equal(new TextDecoder().decode(greeting.payload), "welcome to eu-1");
      } finally {
        await client.close();
      }
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an embedder's sink filtered on [sustenet, plugin] gets a sandboxed plugin's log lines", async () => {
  const lines: string[] = [];
  await setupLogging({
    level: "info",
    console: QUIET_CONSOLE,
    sinks: {
      plugins(record: LogRecord) {
        const [root, role, name] = record.category;
        if (root !== "sustenet" || role !== "plugin") return;
        lines.push(`${name} ${record.level} ${String(record.properties.pluginMessage)}`);
      },
    },
  });
  try {
    const config = parseConfig('[[cluster.plugins]]\nurl = "./plugins/motd.ts"\n', {
      baseDir: REPO_ROOT,
    });
    // motd without settings.path logs an error from inside its Worker at start.
    await withCluster({ pluginSpecs: clusterOptionsFromConfig(config).pluginSpecs }, () => {
      return Promise.resolve();
    });
    assert.deepEqual(lines, [
      "motd error settings.path must name the message-of-the-day file; greeting nobody",
    ]);
  } finally {
    await reset();
  }
});
