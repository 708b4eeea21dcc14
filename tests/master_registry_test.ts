/**
 * The master's bookkeeping without sockets: registry, cluster link, Hello, status page,
 * metrics, options from config, guest ids and the keys-dir key source.
 */

import assert from "node:assert/strict";
import { guestAuthenticate, isValidPlayerId } from "../master/authenticate.ts";
import { keysDirKeySource, reportKeysDir } from "../master/cluster_keys.ts";
import { ClusterLink } from "../master/cluster_link.ts";
import { answerHello } from "../master/hello.ts";
import {
  type MasterOptions,
  masterOptionsFromConfig,
  resolveMasterOptions,
} from "../master/master_options.ts";
import { startMaster } from "../master/start_master.ts";
import { MasterMetrics } from "../master/metrics.ts";
import { LabeledCounter } from "../shared/metrics.ts";
import {
  type ClusterAnnouncement,
  type ClusterRecord,
  ClusterRegistry,
  type ClusterRemovalReason,
} from "../master/registry.ts";
import { renderStatusPage } from "../master/status_page.ts";
import { parseConfig } from "../shared/config_schema.ts";
import { generateKey, saveKey } from "../shared/keys.ts";
import { renderPrometheus } from "../shared/metrics.ts";

function announcement(port: number, host = "127.0.0.1"): ClusterAnnouncement {
  return {
    name: `c${port}`,
    host,
    port,
    maxConnections: 10,
    keyVersion: 1,
    publicKey: new Uint8Array(32),
    keyName: "k",
  };
}

// ------------------------------------------------------------------------------ registry

Deno.test("the registry draws random non-zero ids, skips ids in use and lists by registration", () => {
  // Injected draws: 0 and an id in use are drawn again.
  const draws = [77, 0, 77, 5, 0xffff_ffff, 12];
  const registry = new ClusterRegistry({ randomId: () => draws.shift() ?? 1 });
  const ids = [1, 2, 3].map((port) => registry.register(announcement(port), port).record.id);
  assert.deepEqual(ids, [77, 5, 0xffff_ffff]);
  registry.remove(ids[1], "disconnected");
  assert.equal(registry.register(announcement(4), 4).record.id, 12);
  assert.deepEqual(registry.list().map((r) => r.id), [77, 0xffff_ffff, 12]);
  assert.equal(registry.size, 3);
});

Deno.test("two registries (a master and its restart) do not start from the same id", () => {
  const firsts = new Set<number>();
  for (let run = 0; run < 50; run++) {
    const id = new ClusterRegistry().register(announcement(7000), 0).record.id;
    assert.ok(Number.isInteger(id) && id >= 1 && id <= 0xffff_ffff, `id ${id} is a non-zero u32`);
    firsts.add(id);
  }
  // 50 draws from 2^32 - 1 values: a repeat has probability ~3e-7.
  assert.equal(firsts.size, 50, "fifty fresh registries gave fifty different first ids");
});

Deno.test("a randomId that never gives a free id is a RangeError, not a hang", () => {
  const registry = new ClusterRegistry({ randomId: () => 0 });
  assert.throws(() => registry.register(announcement(1), 0), RangeError);
});

Deno.test("a registration at a listed host:port replaces the older cluster", () => {
  const registry = new ClusterRegistry();
  const removed: [number, ClusterRemovalReason][] = [];
  registry.onRemove((record, reason) => removed.push([record.id, reason]));
  const older = registry.register(announcement(7000), 0).record;
  const other = registry.register(announcement(7000, "10.0.0.1"), 0).record;
  const { record, replaced } = registry.register(announcement(7000), 10);
  assert.equal(replaced?.id, older.id);
  assert.deepEqual(removed, [[older.id, "replaced"]]);
  assert.deepEqual(registry.list().map((r) => r.id), [other.id, record.id]);
});

Deno.test("heartbeats replace the record; unknown ids are reported", () => {
  const registry = new ClusterRegistry();
  const { record } = registry.register(announcement(1), 100);
  assert.equal(record.lastHeartbeat, 100);
  assert.equal(registry.heartbeat(record.id, 4, 20, 500), true);
  const updated = registry.get(record.id);
  assert.equal(updated?.load, 4);
  assert.equal(updated?.maxConnections, 20);
  assert.equal(updated?.lastHeartbeat, 500);
  assert.equal(updated?.registeredAt, 100);
  assert.equal(record.load, 0, "records are never mutated");
  registry.remove(record.id, "deregistered");
  assert.equal(registry.heartbeat(record.id, 1, 1, 600), false);
  assert.equal(registry.remove(record.id, "deregistered"), undefined);
});

Deno.test("silentSince finds clusters past the heartbeat timeout", () => {
  const registry = new ClusterRegistry();
  const a = registry.register(announcement(1), 0).record.id;
  const b = registry.register(announcement(2), 0).record.id;
  registry.heartbeat(b, 0, 10, 2500);
  assert.deepEqual(registry.silentSince(3000, 3000).map((r) => r.id), [a]);
});

Deno.test("removal listeners can be removed; the view cannot change the registry", () => {
  const registry = new ClusterRegistry();
  let calls = 0;
  const off = registry.onRemove(() => calls++);
  const id = registry.register(announcement(1), 0).record.id;
  registry.remove(id, "shutdown");
  off();
  registry.remove(registry.register(announcement(2), 0).record.id, "shutdown");
  assert.equal(calls, 1);

  const view = registry.view();
  registry.register(announcement(3), 0);
  assert.equal(view.size, 1);
  assert.equal(view.list().length, 1);
  assert.ok(Object.isFrozen(view));
  assert.equal("register" in view, false);
  assert.equal("remove" in view, false);
});

Deno.test("the registry keeps its own copy of the public key", () => {
  const registry = new ClusterRegistry();
  const source = announcement(1);
  const { record } = registry.register(source, 0);
  (source.publicKey as Uint8Array)[0] = 99;
  assert.equal(record.publicKey[0], 0);
});

// ------------------------------------------------------------------------------ cluster link

function linked(timeoutMs = 3000) {
  const registry = new ClusterRegistry();
  const { record } = registry.register(announcement(1), 0);
  return {
    registry,
    record,
    link: new ClusterLink({ id: record.id, registry, heartbeatTimeoutMs: timeoutMs }),
  };
}

Deno.test("a link that misses its heartbeats removes its cluster and closes with Timeout", () => {
  const { registry, record, link } = linked(1000);
  assert.deepEqual(link.checkHeartbeat(400), { expired: false, nextCheckMs: 600 });
  link.handle({ kind: "Heartbeat", load: 1, maxConnections: 10 }, 900);
  assert.deepEqual(link.checkHeartbeat(1500), { expired: false, nextCheckMs: 400 });
  const check = link.checkHeartbeat(1900);
  assert.deepEqual(check, {
    expired: true,
    action: { kind: "close", code: 9, message: "heartbeat timeout" },
  });
  assert.equal(registry.get(record.id), undefined);
});

Deno.test("a link whose cluster was replaced closes on its next heartbeat or check", () => {
  const { registry, link } = linked();
  registry.register(announcement(1), 10); // same host:port
  assert.equal(link.handle({ kind: "Heartbeat", load: 0, maxConnections: 1 }, 20).kind, "close");
  assert.equal(link.checkHeartbeat(20).expired, true);
});

Deno.test("a link answers Ping, ignores Pong and refuses client packets", () => {
  const { link } = linked();
  assert.deepEqual(link.handle({ kind: "Ping", value: 5 }, 0), {
    kind: "send",
    packet: { kind: "Pong", value: 5 },
  });
  assert.deepEqual(link.handle({ kind: "Pong", value: 5 }, 0), { kind: "none" });
  const stray = link.handle({ kind: "RequestClusters" }, 0);
  assert.ok(stray.kind === "close" && stray.code === 7);
});

// ------------------------------------------------------------------------------ hello

Deno.test("Hello: clients and clusters get HelloOk; everything else is refused", () => {
  const client = answerHello({ kind: "Hello", version: 3, role: 1 }, "m-1");
  assert.deepEqual(client, {
    ok: true,
    role: "client",
    reply: { kind: "HelloOk", version: 3, role: 3, serverName: "m-1" },
  });
  const refusals: [Parameters<typeof answerHello>[0], number][] = [
    [{ kind: "Hello", version: 0, role: 1 }, 2],
    [{ kind: "Hello", version: 3, role: 3 }, 1],
    [{ kind: "RequestClusters" }, 1],
    [{ kind: "Error", code: 1, reason: "x" }, 1],
  ];
  for (const [packet, code] of refusals) {
    const outcome = answerHello(packet, "m");
    assert.ok(!outcome.ok && outcome.action.kind === "close" && outcome.action.code === code);
  }
});

// ------------------------------------------------------------------------------ status page

function record(extra: Partial<ClusterRecord>): ClusterRecord {
  const registry = new ClusterRegistry();
  return { ...registry.register(announcement(1), 0).record, ...extra };
}

Deno.test("the status page lists clusters with load and escapes every peer string", () => {
  const html = renderStatusPage({
    serverName: `"Main" <master>`,
    connections: 3,
    uptimeS: 61.7,
    now: 10_000,
    clusters: [
      record({ name: `x' onmouseover='alert(1)`, host: "<h>", load: 5, lastHeartbeat: 9_500 }),
      record({ name: "free", maxConnections: 0, load: 7 }),
    ],
  });
  assert.ok(html.includes("&quot;Main&quot; &lt;master&gt;"));
  assert.ok(html.includes("x&#39; onmouseover=&#39;alert(1)"));
  assert.ok(html.includes("&lt;h&gt;:1"));
  assert.ok(html.includes("5 / 10 (50%)"));
  assert.ok(html.includes("7 / ∞"));
  assert.ok(html.includes("0.5 s ago"));
  assert.ok(html.includes("2 cluster(s), 3 connection(s), up 61 s."));
  assert.ok(!html.includes("<h>"));
});

Deno.test("the status page says so when no cluster is registered", () => {
  const html = renderStatusPage({
    serverName: "m",
    connections: 0,
    uptimeS: 0,
    now: 0,
    clusters: [],
  });
  assert.ok(html.includes("No cluster is registered."));
  assert.ok(!html.includes("<table>"));
});

// ------------------------------------------------------------------------------ metrics

Deno.test("metrics add open connections' traffic to closed ones' and render every family", () => {
  const open = [{ framesIn: 1, framesOut: 2, bytesIn: 30, bytesOut: 40 }];
  const metrics = new MasterMetrics({ clusters: () => 4, connections: () => open });
  metrics.connectionClosed({ framesIn: 10, framesOut: 20, bytesIn: 300, bytesOut: 400 });
  metrics.joinsRefused.inc("no_cluster");
  metrics.clustersRemoved.inc("heartbeat_timeout");
  metrics.authFailures.inc("wrong_proof");
  assert.equal(metrics.traffic("framesIn"), 11);
  assert.equal(metrics.traffic("bytesOut"), 440);
  const text = renderPrometheus(metrics.families());
  for (
    const line of [
      "sustenet_master_clusters 4",
      "sustenet_master_connections 1",
      "sustenet_master_frames_in_total 11",
      "sustenet_master_frames_out_total 22",
      "sustenet_master_bytes_in_total 330",
      "sustenet_master_bytes_out_total 440",
      'sustenet_master_auth_failures_total{reason="wrong_proof"} 1',
      'sustenet_master_auth_failures_total{reason="unknown_key"} 0',
      "sustenet_master_tickets_issued_total 0",
      'sustenet_master_joins_refused_total{reason="no_cluster"} 1',
      'sustenet_master_joins_refused_total{reason="unauthorized"} 0',
      'sustenet_master_clusters_removed_total{reason="heartbeat_timeout"} 1',
      "sustenet_master_connections_refused_total 0",
    ]
  ) {
    assert.ok(text.split("\n").includes(line), line);
  }
  assert.match(text, /# TYPE sustenet_master_frames_in_total counter/);
});

Deno.test("a labeled counter refuses a bad metric name", () => {
  assert.throws(() => new LabeledCounter("bad name", "x", "l", ["a"]), RangeError);
});

// ------------------------------------------------------------------------------ options, ids, keys

Deno.test("options from config resolve default ports and turn the status server off", () => {
  const options = masterOptionsFromConfig(parseConfig(
    `[all]\nport = 7000\nstatus_enabled = false\nmax_connections = 5\nbind_ip = "0.0.0.0"\n` +
      `[master]\nheartbeat_timeout_ms = 1500\nregistration_timeout_ms = 900\n`,
  ));
  assert.equal(options.port, 7000);
  assert.equal(options.hostname, "0.0.0.0");
  assert.equal(options.status, false);
  assert.equal(options.maxConnections, 5);
  assert.equal(options.heartbeatTimeoutMs, 1500);
  assert.equal(options.registrationTimeoutMs, 900);
  const defaults = masterOptionsFromConfig(parseConfig(`[all]\nstatus_port = 9100\n`));
  assert.equal(defaults.port, 6256);
  assert.deepEqual(defaults.status, {
    hostname: "127.0.0.1",
    port: 9100,
    adminToken: null,
    adminTokenFile: null,
    consolePublic: true,
  });
  assert.equal(defaults.ticketTtlMs, 30_000);
});

Deno.test("guest ids are fresh for every join and valid player ids", async () => {
  const info = { remoteAddr: { hostname: "::1", port: 1 } };
  const a = await guestAuthenticate(new Uint8Array(), info);
  const b = await guestAuthenticate(new Uint8Array([1]), info);
  assert.notEqual(a?.playerId, b?.playerId);
  assert.ok(isValidPlayerId(a?.playerId));
  assert.equal(isValidPlayerId("\udc00"), false);
  assert.equal(isValidPlayerId(undefined), false);
});

Deno.test("the keys-dir source reads keys afresh and treats bad files as unknown", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const source = keysDirKeySource(dir);
    assert.equal(await reportKeysDir(dir), 0);
    await Deno.writeFile(`${dir}/short`, new Uint8Array(31));
    assert.equal(await source("short"), undefined);
    assert.equal(await source(".hidden"), undefined);
    assert.equal(await source(""), undefined);
    const key = crypto.getRandomValues(new Uint8Array(32));
    await saveKey(dir, "eu", key);
    assert.deepEqual(await source("eu"), key);
    await Deno.remove(`${dir}/eu`);
    assert.equal(await source("eu"), undefined, "a removed key is gone at once");
    await generateKey(dir, "eu-2");
    assert.equal(await reportKeysDir(dir), 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("reportKeysDir survives a missing directory", async () => {
  assert.equal(await reportKeysDir(`/nonexistent-${crypto.randomUUID()}`), 0);
});

Deno.test("bad master options are refused by name before anything listens", async () => {
  const bad: [MasterOptions, RegExp][] = [
    [{ port: 70000 }, /port/],
    [{ maxConnections: -1 }, /maxConnections/],
    [{ maxFrameBytes: 10 }, /maxFrameBytes/],
    [{ maxQueueBytes: 100 }, /maxQueueBytes/],
    [{ handshakeTimeoutMs: -5 }, /handshakeTimeoutMs/],
    [{ idleTimeoutMs: 1.5 }, /idleTimeoutMs/],
    [{ heartbeatTimeoutMs: 0 }, /heartbeatTimeoutMs/],
    [{ registrationTimeoutMs: 0 }, /registrationTimeoutMs/],
    [{ reservationWindowMs: 0 }, /reservationWindowMs/],
    [{ status: { port: -1 } }, /status\.port/],
    [{ serverName: "\ud800" }, /serverName/],
  ];
  for (const [options, message] of bad) {
    assert.throws(() => resolveMasterOptions(options), message);
    await assert.rejects(
      startMaster({ clusterKeys: () => Promise.resolve(undefined), ...options }),
      message,
    );
  }
  assert.deepEqual(resolveMasterOptions({}).status, false);
});

Deno.test("a link hands ClusterPage and ClusterPlugins to the console, keeps the cluster listed", () => {
  const registry = new ClusterRegistry();
  const { record } = registry.register(announcement(1), 0);
  const pages: string[] = [];
  const summaries: unknown[] = [];
  const link = new ClusterLink({
    id: record.id,
    registry,
    heartbeatTimeoutMs: 1000,
    onPage: (_id, url) => pages.push(url),
    onPlugins: (id, plugins) => summaries.push({ id, plugins }),
  });
  const plugins = [{ name: "echo", state: "running", restarts: 2 }] as const;
  assert.deepEqual(link.handle({ kind: "ClusterPlugins", plugins }, 10), { kind: "none" });
  assert.deepEqual(summaries, [{ id: record.id, plugins }]);
  // A page that is not http(s) is ignored.
  link.handle({ kind: "ClusterPage", url: "javascript:alert(1)" }, 10);
  link.handle({ kind: "ClusterPage", url: "http://10.0.0.7:6281/" }, 10);
  assert.deepEqual(pages, ["http://10.0.0.7:6281/"]);
  assert.equal(registry.size, 1);
});
