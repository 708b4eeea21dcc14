/**
 * The subprocess's input channel (`plugin_input_listener.ts`) against a hostile plugin and a
 * hostile local process: a plugin may reach exactly one loopback port, its own connection there
 * with a guessed secret is never fed, and the host's batches still reach the plugin; a stranger
 * that connects first with a wrong secret gets nothing and does not hold up the child.
 */

import assert from "node:assert/strict";
import { WorkerPluginHost } from "../cluster/worker_plugin_host.ts";
import { NO_PLUGIN_PERMISSIONS } from "../cluster/plugin_permissions.ts";
import type { PluginPermissions } from "../shared/config_types.ts";
import {
  MAX_PENDING_PLUGIN_CONNECTIONS,
  PluginInputListener,
} from "../cluster/plugin_input_listener.ts";
import { PROBE_COMMAND } from "../plugins/testing/probes_input.ts";
import { asClientId, type ClientId } from "../shared/plugin.ts";

/** A host running `plugins/testing/<file>` in its own subprocess; its sends go to `onSend`. */
function processHost(
  file: string,
  permissions: PluginPermissions,
  onSend: (command: number, payload: Uint8Array) => void,
): WorkerPluginHost {
  const host = new WorkerPluginHost({
    url: new URL(`../plugins/testing/${file}`, import.meta.url),
    name: file.replace(/\.ts$/, "").replaceAll("_", "-"),
    settings: {},
    permissions,
  }, {
    send: (_to: ClientId, command: number, payload: Uint8Array) => onSend(command, payload),
    broadcast() {},
    kick() {},
  }, { loadTimeoutMs: 60_000 });
  assert.equal(host.isolation, "process");
  return host;
}

Deno.test("a plugin reaches only its own input port, and its connection there with a guessed secret gets nothing", async () => {
  const answers: { command: number; payload: Uint8Array }[] = [];
  let answered = Promise.withResolvers<void>();
  const host = processHost("probes_input.ts", NO_PLUGIN_PERMISSIONS, (command, payload) => {
    answers.push({ command, payload: payload.slice() });
    answered.resolve();
  });
  await host.start();
  try {
    // The host's batches reach the plugin (its echo comes back): the channel is the entry's.
    host.message(asClientId(1), 0x80, new Uint8Array([7]));
    await answered.promise;
    assert.deepEqual(answers[0], { command: 0x80, payload: new Uint8Array([7]) });
    answered = Promise.withResolvers<void>();
    host.message(asClientId(1), PROBE_COMMAND, new Uint8Array());
    await answered.promise;
    const report = JSON.parse(new TextDecoder().decode(answers[1].payload));
    assert.equal(report.ports, 1, "one loopback port, the host's listener");
    // Closed by the host (a wrong secret) or never accepted: never fed with batches.
    assert.ok(report.probe === "closed" || report.probe === "pending", report.probe);
    assert.equal(host.stats.restarts, 0);
  } finally {
    await host.stop();
  }
});

Deno.test("a plugin granted all net, or a list, keeps it beside its input's address", async () => {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    () => new Response("hi"),
  );
  const address = `127.0.0.1:${server.addr.port}`;
  try {
    for (const net of [true, ["127.0.0.1"]]) {
      const sent: string[] = [];
      const both = Promise.withResolvers<void>();
      const host = processHost("uses_net.ts", { ...NO_PLUGIN_PERMISSIONS, net }, (_, payload) => {
        sent.push(new TextDecoder().decode(payload));
        if (sent.length === 2) both.resolve();
      });
      await host.start();
      try {
        host.message(asClientId(1), 0x90, new TextEncoder().encode(address));
        await both.promise;
        assert.deepEqual(sent, ["ok", "ok"], `net = ${JSON.stringify(net)}`);
      } finally {
        await host.stop();
      }
    }
  } finally {
    await server.shutdown();
  }
});

Deno.test("a stranger connecting first with a wrong secret, or with none, never gets the channel", async () => {
  const input = new PluginInputListener();
  const [port, secret] = input.hello.trim().split(" ");
  const address = { hostname: "127.0.0.1", port: Number(port) };
  const silent = await Deno.connect(address);
  const wrong = await Deno.connect(address);
  await wrong.write(new TextEncoder().encode("f".repeat(32)));
  assert.equal(await wrong.read(new Uint8Array(1)), null, "closed unread");
  // The silent one is still pending: the child's own connection is not held up by it.
  const child = await Deno.connect(address);
  await child.write(new TextEncoder().encode(secret));
  const conn = await input.channel;
  assert.equal(input.connection, conn);
  assert.equal(await silent.read(new Uint8Array(1)), null, "closed once the channel was found");
  await conn.write(new Uint8Array([1, 2, 3]));
  const got = new Uint8Array(3);
  let used = 0;
  while (used < 3) used += (await child.read(got.subarray(used))) ?? 3;
  assert.deepEqual(got, new Uint8Array([1, 2, 3]));
  for (const c of [silent, wrong, child]) c.close();
  input.close();
});

Deno.test("connections held open without the secret cannot keep the child's own out", async () => {
  const input = new PluginInputListener();
  const [port, secret] = input.hello.trim().split(" ");
  const address = { hostname: "127.0.0.1", port: Number(port) };
  // Every slot taken by a connection that never sends anything.
  const silent: Deno.TcpConn[] = [];
  for (let i = 0; i < MAX_PENDING_PLUGIN_CONNECTIONS; i++) silent.push(await Deno.connect(address));
  const child = await Deno.connect(address);
  await child.write(new TextEncoder().encode(secret));
  const conn = await input.channel;
  // Each silent one is closed: the oldest to make room, the rest once the channel was found.
  for (const c of silent) assert.equal(await c.read(new Uint8Array(1)), null);
  await conn.write(new Uint8Array([9]));
  const got = new Uint8Array(1);
  assert.equal(await child.read(got), 1);
  assert.equal(got[0], 9);
  for (const c of [...silent, child]) c.close();
  input.close();
});

Deno.test("closing the listener before the child connected rejects the channel", async () => {
  const input = new PluginInputListener();
  const waiting = input.channel;
  input.close();
  await assert.rejects(waiting, /closed before the child connected/);
  input.close(); // idempotent
});
