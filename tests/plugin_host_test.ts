import assert from "node:assert/strict";
import { withLogs } from "./_logs.ts";
import { InProcessPluginHost } from "../cluster/in_process_plugin_host.ts";
import type { PluginActions, PluginHost } from "../cluster/plugin_host.ts";
import { PluginLoadError } from "../cluster/plugin_host.ts";
import {
  type HostEvent,
  MessageBatcher,
  parseWorkerEvent,
  type WorkerEvent,
} from "../cluster/plugin_messages.ts";
import {
  buildWorkerPermissions,
  NO_PLUGIN_PERMISSIONS,
  PLUGIN_PERMISSION_NAMES,
} from "../cluster/plugin_permissions.ts";
import { WorkerPluginHost, type WorkerPluginHostOptions } from "../cluster/worker_plugin_host.ts";
import type { PluginPermissions } from "../shared/config_schema.ts";
import {
  asClientId,
  type BroadcastOptions,
  createPluginContext,
  definePlugin,
  type PlayerInfo,
  PlayerRoster,
  type PluginMove,
  type SustenetPlugin,
} from "../shared/plugin.ts";
import chat from "../plugins/chat.ts";
import echo from "../plugins/echo.ts";
import motd from "../plugins/motd.ts";
import referee from "../plugins/testing/referee.ts";
import throws from "../plugins/testing/throws.ts";
import { waitFor } from "./_wait.ts";

// ---------------------------------------------------------------------------------------------
// Helpers

type Action =
  | { kind: "send"; to: number; command: number; payload: string }
  | { kind: "broadcast"; command: number; payload: string; options: BroadcastOptions }
  | { kind: "kick"; client: number; reason: string };

// A recording PluginActions; payloads are copied as hex (they are only valid during the call).
function recorder(): { actions: PluginActions; log: Action[] } {
  const log: Action[] = [];
  return {
    log,
    actions: {
      send: (to, command, payload) =>
        log.push({ kind: "send", to, command, payload: hex(payload) }),
      broadcast: (command, payload, options) =>
        log.push({ kind: "broadcast", command, payload: hex(payload), options: { ...options } }),
      kick: (client, reason) => log.push({ kind: "kick", client, reason }),
    },
  };
}

function hex(bytes: Uint8Array): string {
  return bytes.toHex();
}

const utf8 = (text: string) => new TextEncoder().encode(text);
const utf8Hex = (text: string) => hex(utf8(text));

function u32Hex(value: number): string {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setUint32(0, value);
  return hex(bytes);
}

const P1: PlayerInfo = { clientId: asClientId(1), playerId: "guest-1" };
const P2: PlayerInfo = { clientId: asClientId(2), playerId: "guest-2" };
const P3: PlayerInfo = { clientId: asClientId(3), playerId: "guest-3" };

const pluginUrl = (path: string) => new URL(`../plugins/${path}`, import.meta.url);

function workerHost(
  path: string,
  actions: PluginActions,
  settings: Record<string, unknown> = {},
  permissions: Partial<PluginPermissions> = {},
  options: WorkerPluginHostOptions = {},
): WorkerPluginHost {
  return new WorkerPluginHost(
    {
      url: pluginUrl(path),
      name: path.replace(/^.*\//, "").replace(/\.ts$/, ""),
      settings,
      permissions: { ...NO_PLUGIN_PERMISSIONS, ...permissions },
    },
    actions,
    // Loading is not what these tests measure: a busy machine must not fail them.
    { loadTimeoutMs: 60_000, ...options },
  );
}

// Runs the same script against a host and returns what the plugin did.
async function script(
  host: PluginHost,
  log: Action[],
  steps: (host: PluginHost) => Promise<void> | void,
): Promise<Action[]> {
  await host.start();
  await steps(host);
  await host.flush();
  await host.stop();
  return log;
}

// Both hosts, same plugin file, same script: returns [in-process actions, Worker actions].
async function bothWays(
  path: string,
  plugin: SustenetPlugin,
  steps: (host: PluginHost) => Promise<void> | void,
  settings: Record<string, unknown> = {},
  permissions: Partial<PluginPermissions> = {},
): Promise<[Action[], Action[]]> {
  const direct = recorder();
  const name = path.replace(/^.*\//, "").replace(/\.ts$/, "");
  const inProcess = new InProcessPluginHost(plugin, direct.actions, { name, settings });
  const sandboxed = recorder();
  const worker = workerHost(path, sandboxed.actions, settings, permissions);
  try {
    return [
      await script(inProcess, direct.log, steps),
      await script(worker, sandboxed.log, steps),
    ];
  } finally {
    await worker.stop();
  }
}

// ---------------------------------------------------------------------------------------------
// The example plugins behave the same in-process and in a Worker

Deno.test("echo answers command 0x80 to its sender only, the same in-process and in a Worker", async () => {
  const [direct, sandboxed] = await bothWays("echo.ts", echo, (host) => {
    host.join(P1);
    host.join(P2);
    host.message(P1.clientId, 0x80, new Uint8Array([1, 2, 3]));
    host.message(P2.clientId, 0x81, new Uint8Array([9])); // not echo's
    host.message(P2.clientId, 0x80, new Uint8Array());
  });
  assert.deepEqual(direct, [
    { kind: "send", to: 1, command: 0x80, payload: "010203" },
    { kind: "send", to: 2, command: 0x80, payload: "" },
  ]);
  assert.deepEqual(sandboxed, direct);
});

Deno.test("chat broadcasts sender id and text, refuses long or non-UTF-8 text, either host", async () => {
  const [direct, sandboxed] = await bothWays("chat.ts", chat, (host) => {
    host.join(P1);
    host.join(P2);
    host.message(P2.clientId, 0x81, utf8("hello"));
    host.message(P1.clientId, 0x81, utf8("x".repeat(21)));
    host.message(P1.clientId, 0x81, utf8("x".repeat(20)));
    host.message(P1.clientId, 0x81, new Uint8Array([0xff, 0xfe]));
    host.message(P1.clientId, 0x80, utf8("not chat"));
  }, { maxLength: 20 });
  assert.deepEqual(direct, [
    { kind: "broadcast", command: 0x81, payload: u32Hex(2) + utf8Hex("hello"), options: {} },
    {
      kind: "send",
      to: 1,
      command: 0x82,
      payload: utf8Hex("message is 21 bytes, the limit is 20"),
    },
    { kind: "broadcast", command: 0x81, payload: u32Hex(1) + utf8Hex("x".repeat(20)), options: {} },
    { kind: "send", to: 1, command: 0x82, payload: utf8Hex("message is not valid UTF-8") },
  ]);
  assert.deepEqual(sandboxed, direct);
});

Deno.test("chat refuses a player's lines over messagesPerSecond with 0x82; other players unaffected, either host", async () => {
  const [direct, sandboxed] = await bothWays("chat.ts", chat, (host) => {
    host.join(P1);
    host.join(P2);
    for (let i = 0; i < 5; i++) host.message(P1.clientId, 0x81, utf8(`line ${i}`));
    host.message(P2.clientId, 0x81, utf8("my turn"));
  }, { messagesPerSecond: 1, messageBurst: 3 });
  const refusal = {
    kind: "send",
    to: 1,
    command: 0x82,
    payload: utf8Hex("too many messages, the limit is 1 per second"),
  };
  assert.deepEqual(direct, [
    ...[0, 1, 2].map((i) => ({
      kind: "broadcast",
      command: 0x81,
      payload: u32Hex(1) + utf8Hex(`line ${i}`),
      options: {},
    })),
    refusal,
    refusal,
    { kind: "broadcast", command: 0x81, payload: u32Hex(2) + utf8Hex("my turn"), options: {} },
  ]);
  assert.deepEqual(sandboxed, direct);
});

Deno.test("chat's default limit is 200 bytes and a bad maxLength falls back to it with an error", async () => {
  await withLogs(async (records) => {
    const { actions, log } = recorder();
    const host = new InProcessPluginHost(chat, actions, {
      name: "chat",
      settings: { maxLength: "lots" },
    });
    await host.start();
    host.message(P1.clientId, 0x81, utf8("y".repeat(200)));
    host.message(P1.clientId, 0x81, utf8("y".repeat(201)));
    await host.stop();
    assert.deepEqual(log.map((a) => a.kind), ["broadcast", "send"]);
    assert.ok(records.some((r) => r.level === "error" && r.category.includes("chat")));
  });
});

Deno.test("motd greets every joining player with the file's text, the same in-process and in a Worker", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/motd.txt`, "Welcome to Sustenet!");
    const [direct, sandboxed] = await bothWays(
      "motd.ts",
      motd,
      (host) => {
        host.join(P1);
        host.join(P2);
        host.leave(P2, "quit");
        host.join(P3);
      },
      { path: `${dir}/motd.txt` },
      { read: [dir] },
    );
    const greeting = utf8Hex("Welcome to Sustenet!");
    assert.deepEqual(direct, [
      { kind: "send", to: 1, command: 0x83, payload: greeting },
      { kind: "send", to: 2, command: 0x83, payload: greeting },
      { kind: "send", to: 3, command: 0x83, payload: greeting },
    ]);
    assert.deepEqual(sandboxed, direct);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("moves, kicks, broadcast options and an async onStop are the same through both hosts", async () => {
  const verdicts: boolean[][] = [[], []];
  let run = 0;
  const moves: PluginMove[] = [
    { x: 1, y: 5, z: 1 },
    { x: 1, y: -1, z: 1, yaw: 0.5 },
    { x: 1, y: -200, z: 1, yaw: 0, vx: 1, vy: -9, vz: 0 },
  ];
  const [direct, sandboxed] = await bothWays("testing/referee.ts", referee, async (host) => {
    const mine = verdicts[run++];
    host.join(P1);
    host.join(P2);
    for (const move of moves) mine.push(await host.move(P1.clientId, move));
  });
  assert.deepEqual(verdicts[0], [true, false, false]);
  assert.deepEqual(verdicts[1], verdicts[0]);
  assert.deepEqual(direct, [
    { kind: "broadcast", command: 0x95, payload: utf8Hex("1"), options: { except: 1 } },
    { kind: "broadcast", command: 0x96, payload: utf8Hex("1"), options: { fragment: 7 } },
    { kind: "broadcast", command: 0x95, payload: utf8Hex("2"), options: { except: 2 } },
    { kind: "broadcast", command: 0x96, payload: utf8Hex("2"), options: { fragment: 7 } },
    { kind: "kick", client: 1, reason: "fell out of the world" },
    { kind: "broadcast", command: 0x97, payload: utf8Hex("bye"), options: {} },
  ]);
  assert.deepEqual(sandboxed, direct);
});

Deno.test("ctx.players() lists the current players in join order in both hosts", async () => {
  const lists: string[] = [];
  const plugin = definePlugin({
    onMessage(ctx) {
      lists.push(ctx.players().map((p) => p.playerId).join(","));
    },
  });
  const host = new InProcessPluginHost(plugin, recorder().actions, { name: "roster" });
  await host.start();
  host.join(P1);
  host.join(P2);
  host.message(P1.clientId, 0x80, new Uint8Array());
  host.leave(P1, "quit");
  host.join(P3);
  host.message(P2.clientId, 0x80, new Uint8Array());
  await host.stop();
  assert.deepEqual(lists, ["guest-1,guest-2", "guest-2,guest-3"]);
});

// ---------------------------------------------------------------------------------------------
// Failures inside plugins

Deno.test("a plugin whose hooks throw or reject keeps answering the next messages (in-process)", async () => {
  await withLogs(async (records) => {
    const { actions, log } = recorder();
    const host = new InProcessPluginHost(throws, actions, { name: "throws" });
    await host.start();
    host.message(P1.clientId, 0x90, new Uint8Array()); // throws
    host.message(P1.clientId, 0x91, new Uint8Array([1]));
    host.message(P1.clientId, 0x92, new Uint8Array()); // rejects
    host.message(P1.clientId, 0x91, new Uint8Array([2]));
    await new Promise((resolve) => setTimeout(resolve, 0)); // let the rejection land
    await host.stop();
    assert.deepEqual(log.map((a) => a.kind === "send" && a.payload), ["01", "02"]);
    assert.equal(host.hookErrors, 2);
    const errors = records.filter((r) => r.level === "error");
    assert.deepEqual(errors.map((r) => [r.properties.hook, r.properties.errorName]), [
      ["onMessage", "Error"],
      ["onMessage", "RangeError"],
    ]);
    assert.deepEqual(errors[0].category, ["sustenet", "plugin", "throws"]);
  });
});

Deno.test("a plugin whose hooks throw, reject or throw from a timer keeps running in a Worker", async () => {
  await withLogs(async (records) => {
    const { actions, log } = recorder();
    const host = workerHost("testing/throws.ts", actions);
    try {
      await host.start();
      host.message(P1.clientId, 0x90, new Uint8Array()); // throws
      host.message(P1.clientId, 0x91, new Uint8Array([1]));
      host.message(P1.clientId, 0x92, new Uint8Array()); // rejects
      host.message(P1.clientId, 0x93, new Uint8Array()); // throws later, outside any hook
      host.message(P1.clientId, 0x91, new Uint8Array([2]));
      await waitFor("three reported errors", () => host.stats.hookErrors === 3);
      host.message(P1.clientId, 0x91, new Uint8Array([3]));
      await host.flush();
      assert.deepEqual(log.map((a) => a.kind === "send" && a.payload), ["01", "02", "03"]);
      assert.equal(host.state, "running");
      assert.equal(host.stats.restarts, 0);
      const errors = records.filter((r) => r.level === "error");
      assert.deepEqual(errors.map((r) => [r.properties.hook, r.properties.errorName]), [
        ["onMessage", "Error"],
        ["onMessage", "RangeError"],
        ["uncaught", "TypeError"],
      ]);
    } finally {
      await host.stop();
    }
  });
});

Deno.test("a plugin's bad ctx call throws in the plugin and never reaches the cluster", async () => {
  const { actions, log } = recorder();
  const plugin = definePlugin({
    onMessage(ctx, from) {
      ctx.send(from, 0x2a, new Uint8Array()); // Move is the protocol's, not a plugin's
    },
    onJoin(ctx, player) {
      ctx.kick(player.clientId, 42 as never);
    },
    onTick(ctx) {
      ctx.broadcast(0x80, "text" as never);
    },
  });
  const host = new InProcessPluginHost(plugin, actions, { name: "sloppy" });
  await host.start();
  host.join(P1);
  host.message(P1.clientId, 0x80, new Uint8Array());
  host.tick(50);
  await host.stop();
  assert.deepEqual(log, []);
  assert.equal(host.hookErrors, 3);
});

Deno.test("plugin log lines reach the plugin's category with their level, braces left alone", async () => {
  await withLogs(async (records) => {
    const plugin = definePlugin({
      onStart(ctx) {
        ctx.log.debug("d");
        ctx.log.info("i {notAPlaceholder}");
        ctx.log.warning("w");
        ctx.log.error("e");
      },
    });
    const host = new InProcessPluginHost(plugin, recorder().actions, { name: "chatty" });
    await host.start();
    await host.stop();
    const mine = records.filter((r) => r.category.join(".") === "sustenet.plugin.chatty");
    assert.deepEqual(mine.map((r) => r.level), ["debug", "info", "warning", "error"]);
    assert.equal(mine[1].message.join(""), "i {notAPlaceholder}");
  });
});

// ---------------------------------------------------------------------------------------------
// Host lifecycle and arguments

Deno.test("stop is idempotent, later events are ignored, and start after stop is refused", async () => {
  const { actions, log } = recorder();
  const direct = new InProcessPluginHost(echo, actions, { name: "echo" });
  const worker = workerHost("echo.ts", actions);
  // Stopped while starting: the start fails, no Worker is left behind.
  const early = workerHost("echo.ts", actions);
  const starting = early.start();
  await early.stop();
  await assert.rejects(starting, PluginLoadError);
  assert.equal(early.state, "stopped");
  for (const host of [direct, worker] as PluginHost[]) {
    await host.start();
    await Promise.all([host.stop(), host.stop()]);
    assert.equal(host.state, "stopped");
    host.message(P1.clientId, 0x80, new Uint8Array([1]));
    assert.equal(await host.move(P1.clientId, { x: 0, y: 0, z: 0 }), true);
    await host.flush();
    await assert.rejects(host.start(), PluginLoadError);
  }
  assert.deepEqual(log, []);
  assert.equal(worker.stats.droppedEvents, 1);
});

Deno.test("start is shared by concurrent callers and onStart finishes before start resolves", async () => {
  let started = false;
  const plugin = definePlugin({
    async onStart() {
      await new Promise((resolve) => setTimeout(resolve, 5));
      started = true;
    },
  });
  const host = new InProcessPluginHost(plugin, recorder().actions, { name: "slow" });
  await Promise.all([host.start(), host.start()]);
  assert.equal(started, true);
  assert.equal(host.state, "running");
  await host.stop();
});

Deno.test("an onStop that never settles is abandoned after stopTimeoutMs", async () => {
  const plugin = definePlugin({ onStop: () => new Promise<void>(() => {}) });
  const host = new InProcessPluginHost(plugin, recorder().actions, {
    name: "stuck",
    stopTimeoutMs: 20,
  });
  await host.start();
  await host.stop();
  assert.equal(host.state, "stopped");
});

Deno.test("hosts refuse bad arguments from the cluster with RangeError or TypeError", async () => {
  const { actions } = recorder();
  const direct = new InProcessPluginHost(echo, actions, { name: "echo" });
  const worker = workerHost("echo.ts", actions);
  try {
    for (const host of [direct, worker] as PluginHost[]) {
      await host.start();
      assert.throws(() => host.message(P1.clientId, 0x10, new Uint8Array()), RangeError);
      assert.throws(() => host.message(asClientId(1), 0x100, new Uint8Array()), RangeError);
      assert.throws(() => host.message(-1 as never, 0x80, new Uint8Array()), RangeError);
      assert.throws(() => host.message(P1.clientId, 0x80, [1] as never), TypeError);
      assert.throws(() => host.join({ clientId: 1 } as never), TypeError);
      assert.throws(() => host.leave(null as never, "x"), TypeError);
      assert.throws(() => host.move(P1.clientId, { x: 0, y: NaN, z: 0 }), TypeError);
      assert.throws(() => host.move(P1.clientId, { x: 0, y: 0, z: 0, yaw: Infinity }), TypeError);
      assert.throws(() => host.move(2 ** 32 as never, { x: 0, y: 0, z: 0 }), RangeError);
      assert.throws(() => host.tick(-1), RangeError);
      assert.throws(() => host.tick(NaN), RangeError);
    }
  } finally {
    await direct.stop();
    await worker.stop();
  }
  assert.throws(() => new InProcessPluginHost(42 as never, actions, { name: "x" }), TypeError);
  assert.throws(
    () => new InProcessPluginHost(echo, actions, { name: "x", settings: { f: () => 1 } }),
    /must be plain data/,
  );
  assert.throws(
    () => new InProcessPluginHost(echo, actions, { name: "x", stopTimeoutMs: 0 }),
    RangeError,
  );
});

Deno.test("a Worker host refuses bad options, bad permissions and uncloneable settings", () => {
  const { actions } = recorder();
  const spec = {
    url: pluginUrl("echo.ts"),
    name: "echo",
    settings: {},
    permissions: NO_PLUGIN_PERMISSIONS,
  };
  assert.throws(() => new WorkerPluginHost(spec, actions, { watchdogMs: 0 }), RangeError);
  assert.throws(() => new WorkerPluginHost(spec, actions, { maxRestarts: -1 }), RangeError);
  assert.throws(() => new WorkerPluginHost(spec, actions, { moveTimeoutMs: NaN }), RangeError);
  assert.throws(
    () => new WorkerPluginHost({ ...spec, settings: { f: () => 1 } }, actions),
    TypeError,
  );
  assert.throws(
    () =>
      new WorkerPluginHost(
        { ...spec, permissions: { ...NO_PLUGIN_PERMISSIONS, net: "inherit" } } as never,
        actions,
      ),
    TypeError,
  );
});

Deno.test("a Worker move goes without a round trip when the plugin has no onMove", async () => {
  const host = workerHost("echo.ts", recorder().actions);
  try {
    await host.start();
    assert.deepEqual(host.hooks, ["onMessage"]);
    const before = host.stats.eventsToWorker;
    assert.equal(host.move(P1.clientId, { x: 0, y: -5, z: 0 }), true); // a boolean, not a promise
    await host.flush();
    assert.equal(host.stats.eventsToWorker, before + 1); // only the flush barrier
  } finally {
    await host.stop();
  }
});

Deno.test("a Worker move whose verdict comes too late is accepted and logged", async () => {
  await withLogs(async (records) => {
    // The verdict after the flush has moveTimeoutMs to come: generous for a busy machine, yet
    // half the referee's dawdle; the watchdog must not take the dawdle for a hang.
    const host = workerHost("testing/referee.ts", recorder().actions, {}, {}, {
      moveTimeoutMs: 500,
      watchdogMs: 30_000,
    });
    try {
      await host.start();
      // The referee dawdles 1000 ms on x = 999 and would reject y = -1.
      assert.equal(await host.move(P1.clientId, { x: 999, y: -1, z: 0 }), true);
      assert.equal(host.stats.moveTimeouts, 1);
      assert.ok(records.some((r) => r.level === "warning" && r.properties.count === 1));
      // Once it caught up, its verdicts count again.
      await host.flush();
      assert.equal(await host.move(P1.clientId, { x: 0, y: -1, z: 0 }), false);
    } finally {
      await host.stop();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Batching

Deno.test("1000 messages in one turn cross to the Worker and back in a few postMessages", async () => {
  const { actions, log } = recorder();
  // A trusted plugin's Worker: the subprocess's batching is counted in plugin_isolation_test.
  const host = workerHost("echo.ts", actions, {}, {}, { isolation: "worker" });
  const proto = Worker.prototype;
  const original = proto.postMessage;
  let posts = 0;
  try {
    await host.start();
    const before = host.stats;
    const counting = function (this: Worker, message: unknown, transfer: Transferable[]) {
      posts++;
      Reflect.apply(original, this, [message, transfer]);
    };
    proto.postMessage = counting as Worker["postMessage"];
    const payload = new Uint8Array(4);
    for (let i = 0; i < 1000; i++) {
      new DataView(payload.buffer).setUint32(0, i); // one reused buffer: the host copies
      host.message(P1.clientId, 0x80, payload);
    }
    await host.flush();
    proto.postMessage = original;
    const after = host.stats;
    assert.equal(log.length, 1000);
    assert.equal(log[999].kind === "send" && log[999].payload, u32Hex(999));
    assert.equal(log[0].kind === "send" && log[0].payload, u32Hex(0));
    // One batch out (a watchdog ping may add one), and one or two back.
    assert.ok(posts <= 2, `${posts} postMessage calls to the Worker`);
    assert.equal(after.postsToWorker - before.postsToWorker, posts);
    const back = after.batchesFromWorker - before.batchesFromWorker;
    assert.ok(back <= 3, `${back} postMessage calls from the Worker`);
    assert.equal(after.eventsFromWorker - before.eventsFromWorker >= 1001, true);
  } finally {
    proto.postMessage = original;
    await host.stop();
  }
});

Deno.test("the batcher copies payloads when packed, grows, and transfers one exact buffer", async () => {
  const posted: { events: readonly HostEvent[]; bytes: Uint8Array; transfer: Transferable[] }[] =
    [];
  const batcher = new MessageBatcher<HostEvent>(
    (batch, transfer) => posted.push({ ...batch, transfer }),
    { initialBytes: 4 },
  );
  const reused = new Uint8Array([1, 2, 3]);
  const first = batcher.pack(reused);
  batcher.push({ kind: "message", from: asClientId(1), command: 0x80, at: first, length: 3 });
  reused.fill(9); // after pack: must not change what was queued
  const big = new Uint8Array(100).fill(7);
  const second = batcher.pack(big);
  batcher.push({ kind: "message", from: asClientId(1), command: 0x80, at: second, length: 100 });
  batcher.push({ kind: "tick", dtMs: 5 });
  assert.equal(batcher.pending, 3);
  await Promise.resolve();
  assert.equal(posted.length, 1);
  assert.equal(batcher.posts, 1);
  assert.equal(batcher.eventsPosted, 3);
  const [batch] = posted;
  assert.equal(batch.bytes.length, 103);
  assert.deepEqual([...batch.bytes.subarray(0, 3)], [1, 2, 3]);
  assert.ok(batch.bytes.subarray(3).every((b) => b === 7));
  assert.deepEqual(batch.transfer, [batch.bytes.buffer]);
  // Nothing pending: nothing posted. Events without payloads transfer nothing.
  batcher.flush();
  assert.equal(posted.length, 1);
  batcher.push({ kind: "stop" });
  batcher.flush();
  assert.deepEqual(posted[1].transfer, []);
  assert.equal(posted[1].bytes.length, 0);
  assert.throws(() => new MessageBatcher(() => {}, { initialBytes: 0 }), RangeError);
});

// ---------------------------------------------------------------------------------------------
// The host's boundary against forged Worker events

Deno.test("parseWorkerEvent accepts well-formed events and names what is wrong with the rest", () => {
  const good: WorkerEvent[] = [
    { kind: "ready", hooks: ["onJoin", "onMessage"] },
    { kind: "loadFailed", reason: "x" },
    { kind: "started" },
    { kind: "send", to: asClientId(1), command: 0x80, at: 0, length: 4 },
    { kind: "broadcast", command: 0xff, at: 4, length: 0, options: {} },
    { kind: "broadcast", command: 0x81, at: 0, length: 1, options: { except: asClientId(2) } },
    { kind: "broadcast", command: 0x81, at: 0, length: 1, options: { fragment: 3 } },
    {
      kind: "broadcast",
      command: 0x81,
      at: 0,
      length: 1,
      options: { except: asClientId(2), fragment: 3 },
    },
    { kind: "kick", client: asClientId(1), reason: "bye" },
    { kind: "log", level: "warning", message: "hm" },
    { kind: "hookError", hook: "onTick", errorName: "Error", errorMessage: "x" },
    { kind: "hookError", hook: "uncaught", errorName: "Error", errorMessage: "x" },
    { kind: "moveResult", id: 3, accept: false },
    { kind: "pong", seq: 1 },
    { kind: "barrierDone", id: 2 },
    { kind: "stopped" },
  ];
  for (const event of good) assert.deepEqual(parseWorkerEvent(event, 4), event);
  // Unknown hook names in ready are dropped, not trusted.
  assert.deepEqual(parseWorkerEvent({ kind: "ready", hooks: ["onMessage", "onEvil"] }, 0), {
    kind: "ready",
    hooks: ["onMessage"],
  });
  const bad: unknown[] = [
    null,
    "send",
    { kind: "teleport" },
    { kind: "send", to: -1, command: 0x80, at: 0, length: 0 },
    { kind: "send", to: 1, command: 0x7f, at: 0, length: 0 },
    { kind: "send", to: 1, command: 0x80, at: 2, length: 3 },
    { kind: "send", to: 1, command: 0x80, at: -1, length: 1 },
    { kind: "send", to: 1, command: 0x80, at: 0.5, length: 1 },
    { kind: "broadcast", command: 0x80, at: 0, length: 0, options: null },
    { kind: "broadcast", command: 0x80, at: 0, length: 0, options: { except: "2" } },
    { kind: "broadcast", command: 0x80, at: 0, length: 0, options: { fragment: -3 } },
    { kind: "broadcast", command: 0x10, at: 0, length: 0, options: {} },
    { kind: "broadcast", command: 0x80, at: 0, length: 9, options: {} },
    { kind: "kick", client: 1, reason: 5 },
    { kind: "kick", client: 1.5, reason: "x" },
    { kind: "log", level: "fatal", message: "x" },
    { kind: "log", level: "info", message: {} },
    { kind: "hookError", hook: "onEvil", errorName: "E", errorMessage: "x" },
    { kind: "hookError", hook: "onTick", errorName: 1, errorMessage: "x" },
    { kind: "moveResult", id: 1, accept: "yes" },
    { kind: "pong", seq: -1 },
    { kind: "barrierDone", id: "1" },
    { kind: "ready", hooks: "onJoin" },
    { kind: "loadFailed", reason: 1 },
  ];
  for (const event of bad) {
    assert.equal(typeof parseWorkerEvent(event, 4), "string", JSON.stringify(event));
  }
});

Deno.test("long texts from a Worker are cut before they reach logs or kicks", () => {
  const long = "z".repeat(100_000);
  const log = parseWorkerEvent({ kind: "log", level: "info", message: long }, 0);
  assert.ok(typeof log === "object" && log.kind === "log" && log.message.length <= 8193);
  const kick = parseWorkerEvent({ kind: "kick", client: 1, reason: long }, 0);
  assert.ok(typeof kick === "object" && kick.kind === "kick" && kick.reason.length <= 1025);
});

// ---------------------------------------------------------------------------------------------
// Plugin API

Deno.test("definePlugin accepts hook objects and refuses non-objects, non-function hooks and typos", () => {
  const plugin = { onTick() {}, helper: 1 };
  assert.equal(definePlugin(plugin), plugin);
  assert.throws(() => definePlugin(null as never), TypeError);
  assert.throws(() => definePlugin([] as never), TypeError);
  assert.throws(() => definePlugin("x" as never), /must be an object/);
  assert.throws(() => definePlugin({ onTick: 5 } as never), /onTick must be a function/);
  assert.throws(() => definePlugin({ onMesage() {} } as never), /unknown hook onMesage/);
});

Deno.test("the plugin context checks every argument and freezes a copy of the settings", () => {
  const calls: string[] = [];
  const settings = { nested: { limit: 3 } };
  const ctx = createPluginContext({
    name: "t",
    settings,
    players: () => [],
    sink: {
      send: (to, command) => calls.push(`send ${to} ${command}`),
      broadcast: (command, _payload, options) =>
        calls.push(`broadcast ${command} ${JSON.stringify(options)}`),
      kick: (client, reason) => calls.push(`kick ${client} ${reason}`),
      log: (level, message) => calls.push(`${level} ${message}`),
    },
  });
  ctx.send(asClientId(1), 0xff, new Uint8Array());
  ctx.broadcast(0x80, new Uint8Array(), { except: asClientId(2), fragment: 0 });
  ctx.broadcast(0x80, new Uint8Array());
  ctx.kick(asClientId(1), "bye");
  ctx.log.warning("careful");
  assert.deepEqual(calls, [
    "send 1 255",
    'broadcast 128 {"except":2,"fragment":0}',
    "broadcast 128 {}",
    "kick 1 bye",
    "warning careful",
  ]);
  assert.throws(() => ctx.send(asClientId(1), 0x7f, new Uint8Array()), RangeError);
  assert.throws(() => ctx.send(asClientId(1), 128.5, new Uint8Array()), RangeError);
  assert.throws(() => ctx.send(-1 as never, 0x80, new Uint8Array()), RangeError);
  assert.throws(() => ctx.send(asClientId(1), 0x80, new ArrayBuffer(1) as never), TypeError);
  assert.throws(() => ctx.broadcast(0x80, new Uint8Array(), { except: -2 as never }), RangeError);
  assert.throws(() => ctx.broadcast(0x80, new Uint8Array(), { fragment: 1.5 }), RangeError);
  assert.throws(() => ctx.broadcast(0x80, new Uint8Array(), null as never), TypeError);
  assert.throws(() => ctx.kick(asClientId(1), undefined as never), TypeError);
  assert.throws(() => ctx.kick(0.5 as never, "x"), RangeError);
  assert.equal(calls.length, 5);
  // The plugin sees a frozen copy: it can neither change the host's settings nor its own.
  assert.ok(Object.isFrozen(ctx.settings));
  assert.ok(Object.isFrozen(ctx.settings.nested));
  settings.nested.limit = 4;
  assert.deepEqual(ctx.settings, { nested: { limit: 3 } });
});

Deno.test("asClientId and the roster keep ids u32 and the list in join order", () => {
  assert.throws(() => asClientId(2 ** 32), RangeError);
  assert.throws(() => asClientId(Number.NaN), RangeError);
  const roster = new PlayerRoster();
  roster.add(P1);
  roster.add(P2);
  roster.add({ ...P1, playerId: "renamed" }); // same id: replaced in place
  assert.deepEqual(roster.list().map((p) => p.playerId), ["renamed", "guest-2"]);
  assert.equal(roster.remove(asClientId(9)), undefined);
  assert.equal(roster.remove(P1.clientId)?.playerId, "renamed");
  assert.equal(roster.size, 1);
  assert.ok(Object.isFrozen(roster.list()));
});

// ---------------------------------------------------------------------------------------------
// Permissions

Deno.test("the Worker permission descriptor is complete: every key present, false unless granted", () => {
  const descriptor = buildWorkerPermissions({ read: ["/srv/motd"], net: true });
  assert.deepEqual(Object.keys(descriptor).sort(), [...PLUGIN_PERMISSION_NAMES].sort());
  assert.deepEqual(descriptor, {
    read: ["/srv/motd"],
    write: false,
    net: true,
    env: false,
    run: false,
    ffi: false,
    sys: false,
    import: false,
  });
  assert.deepEqual(buildWorkerPermissions(NO_PLUGIN_PERMISSIONS), NO_PLUGIN_PERMISSIONS);
  // An empty list grants nothing, spelt false.
  assert.equal(buildWorkerPermissions({ env: [] }).env, false);
  // The descriptor owns its lists.
  const grant = ["/a"];
  const built = buildWorkerPermissions({ read: grant });
  grant.push("/b");
  assert.deepEqual(built.read, ["/a"]);
});

Deno.test("the permission builder refuses inherit, unknown keys and malformed grants", () => {
  assert.throws(() => buildWorkerPermissions({ net: "inherit" } as never), /inherit/);
  assert.throws(
    () => buildWorkerPermissions({ network: true } as never),
    /unknown plugin permission/,
  );
  assert.throws(() => buildWorkerPermissions({ read: "yes" } as never), TypeError);
  assert.throws(() => buildWorkerPermissions({ read: [""] }), TypeError);
  assert.throws(() => buildWorkerPermissions({ read: ["/a\0b"] }), TypeError);
  assert.throws(() => buildWorkerPermissions({ read: [1] } as never), TypeError);
  assert.throws(() => buildWorkerPermissions(null as never), TypeError);
  assert.throws(() => buildWorkerPermissions([] as never), TypeError);
});

Deno.test("remote plugin hosts are added to the import grant, and only to it", () => {
  assert.deepEqual(buildWorkerPermissions({}, { importHosts: ["a.example"] }).import, [
    "a.example",
  ]);
  assert.deepEqual(
    buildWorkerPermissions({ import: ["b.example"] }, { importHosts: ["a.example", "b.example"] })
      .import,
    ["b.example", "a.example"],
  );
  assert.equal(
    buildWorkerPermissions({ import: true }, { importHosts: ["a.example"] }).import,
    true,
  );
  const host = new WorkerPluginHost({
    url: "https://plugins.example.com:8443/chat.ts",
    name: "remote",
    settings: {},
    permissions: NO_PLUGIN_PERMISSIONS,
  }, recorder().actions);
  assert.deepEqual(host.permissions.import, ["plugins.example.com:8443"]);
  assert.equal(host.permissions.net, false);
  assert.equal(host.state, "idle");
});
