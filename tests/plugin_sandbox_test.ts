import assert from "node:assert/strict";
import { withLogs } from "./_logs.ts";
import type { PluginActions } from "../cluster/plugin_host.ts";
import { PluginLoadError } from "../cluster/plugin_host.ts";
import { NO_PLUGIN_PERMISSIONS } from "../cluster/plugin_permissions.ts";
import { WorkerPluginHost, type WorkerPluginHostOptions } from "../cluster/worker_plugin_host.ts";
import type { PluginPermissions } from "../shared/config_schema.ts";
import { asClientId, type PlayerInfo } from "../shared/plugin.ts";
import {
  AFTER_FORGED_RUN,
  FORGE_SENDS,
  FORGE_SENDS_ANSWER,
  forgedSendBatches,
} from "../plugins/testing/forges_sends.ts";
import { waitFor } from "./_wait.ts";
import { withTempDir } from "./_process.ts";

// These tests run with -A: every Worker below proves it did not inherit that.

interface Sent {
  readonly to: number;
  readonly command: number;
  readonly text: string;
}

function recorder(): { actions: PluginActions; sent: Sent[]; other: string[] } {
  const sent: Sent[] = [];
  const other: string[] = [];
  return {
    sent,
    other,
    actions: {
      send: (to, command, payload) =>
        sent.push({ to, command, text: new TextDecoder().decode(payload) }),
      broadcast: (command) => other.push(`broadcast ${command}`),
      kick: (client, reason) => other.push(`kick ${client} ${reason}`),
    },
  };
}

const utf8 = (text: string) => new TextEncoder().encode(text);
const P1: PlayerInfo = { clientId: asClientId(1), playerId: "guest-1" };
const P2: PlayerInfo = { clientId: asClientId(2), playerId: "guest-2" };

function host(
  url: string | URL,
  actions: PluginActions,
  permissions: Partial<PluginPermissions> = {},
  options: WorkerPluginHostOptions = {},
  settings: Record<string, unknown> = {},
  name = String(url).replace(/^.*\//, "").replace(/\.[jt]s$/, ""),
): WorkerPluginHost {
  return new WorkerPluginHost(
    {
      url,
      name,
      settings,
      permissions: { ...NO_PLUGIN_PERMISSIONS, ...permissions },
    },
    actions,
    // Loading is not what these tests measure: a busy machine must not fail them.
    { loadTimeoutMs: 60_000, ...options },
  );
}

const pluginUrl = (path: string) => new URL(`../plugins/${path}`, import.meta.url);
const PLUGIN_API = new URL("../shared/plugin.ts", import.meta.url).href;

// Throwaway plugin modules (broken ones cannot live in the repository: fmt and lint would
// reject them). They are JavaScript so that `deno test`, which type-checks Worker module
// graphs, does not spend a type check on each one.

function fileUrl(path: string): URL {
  const url = new URL("file:///");
  url.pathname = path;
  return url;
}

// ---------------------------------------------------------------------------------------------
// Permissions

Deno.test("a Worker plugin has no permission at all by default, although the cluster has -A", async () => {
  await withTempDir("sustenet_plugins_", async (dir) => {
    await Deno.writeTextFile(
      `${dir}/probe.js`,
      `import { definePlugin } from ${JSON.stringify(PLUGIN_API)};
const names = ["read", "write", "net", "env", "run", "ffi", "sys", "import"];
export default definePlugin({
  async onStart(ctx) {
    for (const name of names) {
      const status = await Deno.permissions.query({ name });
      ctx.log.info(name + "=" + status.state);
    }
  },
});
`,
    );
    await withLogs(async (records) => {
      const probe = host(fileUrl(`${dir}/probe.js`), recorder().actions);
      try {
        await probe.start();
        const states = records
          .filter((r) => r.category.join(".") === "sustenet.plugin.probe")
          .map((r) => String(r.properties.pluginMessage));
        assert.equal(states.length, 8);
        for (const state of states) assert.match(state, /=(denied|prompt)$/);
      } finally {
        await probe.stop();
      }
    });
  });
});

Deno.test("a plugin without read permission gets NotCapable and keeps running; a grant lets it read", async () => {
  await withTempDir("sustenet_plugins_", async (dir) => {
    await Deno.writeTextFile(`${dir}/secret.txt`, "s3cret");
    const denied = recorder();
    const blind = host(pluginUrl("testing/reads_file.ts"), denied.actions);
    const allowed = recorder();
    const reader = host(pluginUrl("testing/reads_file.ts"), allowed.actions, { read: [dir] });
    try {
      await blind.start();
      await reader.start();
      blind.message(P1.clientId, 0x90, utf8(`${dir}/secret.txt`));
      blind.message(P1.clientId, 0x90, utf8("/etc/hostname"));
      reader.message(P1.clientId, 0x90, utf8(`${dir}/secret.txt`));
      reader.message(P1.clientId, 0x90, utf8("/etc/hostname")); // outside its grant
      await waitFor("four answers", () => denied.sent.length === 2 && allowed.sent.length === 2);
      // Reads are async: answers may come in either order.
      assert.deepEqual(denied.sent.map((s) => s.text), ["error:NotCapable", "error:NotCapable"]);
      assert.deepEqual(allowed.sent.map((s) => s.text).sort(), ["error:NotCapable", "ok:s3cret"]);
      assert.equal(blind.state, "running");
      assert.equal(blind.stats.restarts, 0);
    } finally {
      await blind.stop();
      await reader.stop();
    }
  });
});

Deno.test("motd without read permission logs NotCapable, greets nobody, and the host carries on", async () => {
  await withTempDir("sustenet_plugins_", async (dir) => {
    await Deno.writeTextFile(`${dir}/motd.txt`, "hello");
    await withLogs(async (records) => {
      const { actions, sent } = recorder();
      const motd = host(pluginUrl("motd.ts"), actions, {}, {}, { path: `${dir}/motd.txt` });
      try {
        await motd.start();
        motd.join(P1);
        await motd.flush();
        assert.deepEqual(sent, []);
        assert.equal(motd.state, "running");
        const warning = records.find((r) => r.level === "warning");
        assert.ok(warning, "a warning was logged");
        assert.match(String(warning.properties.pluginMessage), /NotCapable/);
      } finally {
        await motd.stop();
      }
    });
  });
});

Deno.test("a plugin without net permission can neither fetch nor connect to a local server", async () => {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    () => new Response("hi"),
  );
  const address = `127.0.0.1:${server.addr.port}`;
  const denied = recorder();
  const offline = host(pluginUrl("testing/uses_net.ts"), denied.actions);
  const allowed = recorder();
  const online = host(pluginUrl("testing/uses_net.ts"), allowed.actions, { net: ["127.0.0.1"] });
  try {
    await offline.start();
    await online.start();
    offline.message(P1.clientId, 0x90, utf8(address));
    online.message(P1.clientId, 0x90, utf8(address));
    await waitFor("both answers", () => denied.sent.length === 2 && allowed.sent.length === 2);
    assert.deepEqual(denied.sent.map((s) => [s.command, s.text]), [
      [0x90, "error:NotCapable"],
      [0x91, "error:NotCapable"],
    ]);
    assert.deepEqual(allowed.sent.map((s) => [s.command, s.text]), [[0x90, "ok"], [0x91, "ok"]]);
    assert.equal(offline.state, "running");
  } finally {
    await offline.stop();
    await online.stop();
    await server.shutdown();
  }
});

// ---------------------------------------------------------------------------------------------
// Load failures

Deno.test("a plugin with a syntax error fails start with a PluginLoadError naming it", async () => {
  await withTempDir("sustenet_plugins_", async (dir) => {
    await Deno.writeTextFile(`${dir}/broken.js`, "export default { onTick( ;\n");
    const broken = host(fileUrl(`${dir}/broken.js`), recorder().actions);
    const err = await broken.start().then(
      () => assert.fail("start should fail"),
      (e: unknown) => e,
    );
    assert.ok(err instanceof PluginLoadError);
    assert.equal(err.code, "plugin_load_failed");
    assert.equal(err.plugin, "broken");
    assert.match(err.message, /plugin "broken" failed to load/);
    assert.match(err.message, /broken\.js/);
    assert.equal(broken.state, "failed");
    await broken.stop();
  });
});

Deno.test("a missing plugin URL fails start with a PluginLoadError naming it", async () => {
  const missing = host(pluginUrl("no_such_plugin.ts"), recorder().actions);
  await assert.rejects(missing.start(), (err: unknown) => {
    assert.ok(err instanceof PluginLoadError);
    assert.equal(err.plugin, "no_such_plugin");
    assert.match(err.message, /module not found: file:.*no_such_plugin\.ts/);
    return true;
  });
  await missing.stop();
  const directory = host(pluginUrl("testing"), recorder().actions);
  await assert.rejects(directory.start(), /module is not a file/);
  await directory.stop();
});

Deno.test("a module whose default export is not a plugin fails start with a PluginLoadError", async () => {
  const wrong = host(pluginUrl("testing/not_a_plugin.ts"), recorder().actions);
  await assert.rejects(wrong.start(), /plugin "not_a_plugin" failed to load: TypeError: a plugin/);
  await wrong.stop();
  await withTempDir("sustenet_plugins_", async (dir) => {
    await Deno.writeTextFile(`${dir}/no_default.js`, "export const onTick = () => {};\n");
    const bare = host(fileUrl(`${dir}/no_default.js`), recorder().actions);
    await assert.rejects(bare.start(), /no default export/);
    await bare.stop();
  });
});

Deno.test("a plugin importing a module it has no permission to read fails start; a grant fixes it", async () => {
  await withTempDir("sustenet_plugins_", async (dir) => {
    await Deno.writeTextFile(`${dir}/extra.js`, "export const greeting = 'hi';\n");
    // A computed specifier is not in the static module graph: loading it needs read access.
    await Deno.writeTextFile(
      `${dir}/importer.js`,
      `const target = new URL("./ex" + "tra.js", import.meta.url).href;
await import(target);
export default {};
`,
    );
    const denied = host(fileUrl(`${dir}/importer.js`), recorder().actions);
    await assert.rejects(denied.start(), (err: unknown) => {
      assert.ok(err instanceof PluginLoadError);
      assert.equal(err.plugin, "importer");
      assert.match(err.message, /read access/);
      return true;
    });
    await denied.stop();
    const granted = host(fileUrl(`${dir}/importer.js`), recorder().actions, { read: [dir] });
    await granted.start();
    await granted.stop();
  });
});

Deno.test("a plugin that never finishes loading fails start after loadTimeoutMs", async () => {
  await withTempDir("sustenet_plugins_", async (dir) => {
    await Deno.writeTextFile(
      `${dir}/stalls.js`,
      // A pending timer keeps a subprocess alive (an empty event loop would end it at once).
      "await new Promise(() => setInterval(() => {}, 1000));\nexport default {};\n",
    );
    const stalls = host(fileUrl(`${dir}/stalls.js`), recorder().actions, {}, {
      loadTimeoutMs: 300,
    });
    await assert.rejects(stalls.start(), /did not load and start within 300 ms/);
    await stalls.stop();
  });
});

// ---------------------------------------------------------------------------------------------
// The host's boundary

Deno.test("events a plugin forges with postMessage are dropped and the plugin keeps working", async () => {
  await withLogs(async (records) => {
    const { actions, sent, other } = recorder();
    const forger = host(pluginUrl("testing/forges.ts"), actions, {}, { isolation: "worker" });
    try {
      await forger.start();
      forger.message(P1.clientId, 0x90, new Uint8Array());
      await forger.flush();
      await waitFor("the forged batches", () => forger.stats.invalidEvents >= 5);
      assert.deepEqual(sent, [{ to: 1, command: 0x91, text: "\x01" }]);
      assert.deepEqual(other, []);
      assert.equal(forger.state, "running");
      assert.ok(records.some((r) => r.level === "warning" && r.properties.reason !== undefined));
    } finally {
      await forger.stop();
    }
  });
});

Deno.test("forged compact send runs are dropped record by record and the host keeps running", async () => {
  await withLogs(async (records) => {
    const { actions, sent, other } = recorder();
    const forger = host(pluginUrl("testing/forges_sends.ts"), actions, {}, { isolation: "worker" });
    try {
      await forger.start();
      const before = forger.stats;
      forger.message(P1.clientId, FORGE_SENDS, new Uint8Array());
      // The forged posts precede the plugin's own batch and the barrier: all are read by now.
      await forger.flush();
      const expected = forgedSendBatches(P1.clientId).reduce((sum, b) => sum + b.invalid, 0);
      assert.equal(forger.stats.invalidEvents - before.invalidEvents, expected);
      // Only the valid ctx.send reached the cluster: no forged record, whatever its command.
      assert.deepEqual(sent, [{ to: 1, command: FORGE_SENDS_ANSWER, text: "ok" }]);
      assert.deepEqual(other, []);
      // A malformed run does not drop the valid events after it in the same batch.
      assert.ok(records.some((r) => r.properties.pluginMessage === AFTER_FORGED_RUN));
      assert.ok(records.some((r) => /^sends: /.test(String(r.properties.reason))));
      // The host, and the plugin, keep working.
      assert.equal(forger.state, "running");
      assert.equal(forger.stats.restarts, 0);
      forger.message(P2.clientId, FORGE_SENDS, new Uint8Array());
      await forger.flush();
      assert.equal(forger.stats.invalidEvents - before.invalidEvents, 2 * expected);
      assert.deepEqual(sent.map((s) => [s.to, s.command, s.text]), [
        [1, FORGE_SENDS_ANSWER, "ok"],
        [2, FORGE_SENDS_ANSWER, "ok"],
      ]);
    } finally {
      await forger.stop();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Watchdog and restarts

Deno.test("a plugin that closes its Worker is restarted with its players replayed, then unloaded", async () => {
  const { actions, sent } = recorder();
  const exits = host(pluginUrl("testing/exits.ts"), actions, {}, {
    watchdogMs: 200,
    restartBackoffMs: 20,
    maxRestarts: 1,
  });
  try {
    await exits.start();
    exits.join(P1);
    exits.join(P2);
    await exits.flush();
    assert.deepEqual(sent.map((s) => [s.to, s.command, s.text]), [
      [1, 0x92, "hello"],
      [2, 0x92, "hello"],
    ]);
    exits.message(P1.clientId, 0x90, new Uint8Array()); // closes its Worker
    await waitFor("a restart", () => exits.stats.restarts === 1 && exits.state === "running");
    await exits.flush();
    // onJoin again for both players, so the plugin's state rebuilds.
    assert.deepEqual(sent.slice(2).map((s) => [s.to, s.command]), [[1, 0x92], [2, 0x92]]);
    exits.message(P2.clientId, 0x91, utf8("still here"));
    await exits.flush();
    assert.deepEqual(sent.at(-1), { to: 2, command: 0x91, text: "still here" });
    // A second failure in a row exceeds maxRestarts: unloaded, events dropped, moves accepted.
    exits.message(P1.clientId, 0x90, new Uint8Array());
    await waitFor("unload", () => exits.state === "failed");
    const dropped = exits.stats.droppedEvents;
    exits.message(P1.clientId, 0x91, utf8("anyone?"));
    assert.equal(exits.stats.droppedEvents, dropped + 1);
    assert.equal(exits.move(P1.clientId, { x: 0, y: 0, z: 0 }), true);
    await exits.flush();
    assert.equal(exits.stats.restarts, 1);
  } finally {
    await exits.stop();
  }
  assert.equal(exits.state, "stopped");
});

// Kept last: Deno 2.9.6 cannot stop a thread spinning in `for (;;) {}` (terminate() only cuts
// it off), so the looping thread burns a core until this test process exits.
Deno.test("an infinite-loop plugin is replaced by the watchdog while another host keeps working", async () => {
  await withLogs(async (records) => {
    const looping = recorder();
    const hangs = host(pluginUrl("testing/hangs.ts"), looping.actions, {}, {
      watchdogMs: 300,
      restartBackoffMs: 20,
    });
    const healthy = recorder();
    const echo = host(pluginUrl("echo.ts"), healthy.actions);
    try {
      await hangs.start();
      await echo.start();
      hangs.join(P1);
      await hangs.flush();
      hangs.message(P1.clientId, 0x90, new Uint8Array()); // spins forever
      hangs.message(P1.clientId, 0x91, utf8("lost")); // queued behind the loop: lost with it
      // While it hangs, the other plugin answers.
      echo.message(P2.clientId, 0x80, utf8("ping"));
      await echo.flush();
      assert.deepEqual(healthy.sent, [{ to: 2, command: 0x80, text: "ping" }]);
      await waitFor(
        "the watchdog restart",
        () => hangs.state === "running" && hangs.stats.restarts === 1,
      );
      hangs.message(P1.clientId, 0x91, utf8("back"));
      await hangs.flush();
      assert.deepEqual(looping.sent.map((s) => [s.to, s.command, s.text]), [
        [1, 0x92, "hello"],
        [1, 0x92, "hello"], // replayed onJoin after the restart
        [1, 0x91, "back"],
      ]);
      assert.ok(
        records.some((r) => r.level === "error" && /hung/.test(String(r.properties.reason))),
      );
      echo.message(P2.clientId, 0x80, utf8("pong"));
      await echo.flush();
      assert.equal(healthy.sent.length, 2);
      assert.equal(echo.stats.restarts, 0);
    } finally {
      await hangs.stop();
      await echo.stop();
    }
  });
});
