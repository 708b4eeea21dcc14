/**
 * Fairness per player on real sockets: a player flooding plugin commands is throttled, then
 * kicked with "rate limit exceeded", before any plugin sees the flood; the plugin keeps its
 * state; a bystander keeps every answer; a chat flood cannot make honest readers slow
 * consumers; an honest 60 Hz client is never throttled. Figures (bystander latency, RSS, rates)
 * are printed, never asserted on speed.
 */

import assert from "node:assert/strict";
import { type LogRecord, reset } from "@logtape/logtape";
import chat, { CHAT_COMMAND } from "../plugins/chat.ts";
import { COUNTS_COMMAND } from "../plugins/testing/counts.ts";
import { FLOOD_KICK_REASON } from "../cluster/player_rate_limit.ts";
import { NO_PLUGIN_PERMISSIONS } from "../cluster/plugin_permissions.ts";
import type { ClusterServer } from "../cluster/mod.ts";
import { setupLogging } from "../shared/logging.ts";
import { renderPrometheus } from "../shared/metrics.ts";
import { definePlugin } from "../shared/plugin.ts";
import { encodePacket } from "../shared/protocol/codec.ts";
import {
  processRss,
  spawnRole,
  waitForLine,
  waitForRegistered,
  writeEchoDeployment,
} from "./_process.ts";
import { playerJoins, type RawClient, startWorld, waitUntil } from "./_raw_client.ts";
import { closeQuietly } from "../shared/tls_stream_listener.ts";
import { QUIET_CONSOLE } from "./_logs.ts";
import { isSocketGone } from "./_socket_gone.ts";

const COUNTS_URL = new URL("../plugins/testing/counts.ts", import.meta.url).href;
const FLOODER = decodeURIComponent(new URL("./_flooder.ts", import.meta.url).pathname);
const MiB = 1024 * 1024;
/** The RSS growth a flood may cause, generously: the unlimited attack measured 74 → 700 MB. */
const RSS_BOUND_BYTES = 256 * MiB;
/** A generous wait for one answer on a machine whose cores are shared. */
const ANSWER_WAIT_MS = 60_000;

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function u32(value: number): Uint8Array {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setUint32(0, value);
  return bytes;
}

function u32At(bytes: Uint8Array, at: number): number {
  return new DataView(bytes.buffer, bytes.byteOffset).getUint32(at);
}

function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

const ms = (value: number) => `${value.toFixed(1)} ms`;
const mb = (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB`;

/** What {@linkcode flood} achieved. */
interface FloodResult {
  readonly frames: number;
  readonly bytes: number;
  readonly seconds: number;
}

/**
 * Sends plugin command 0x80 with `payloadBytes` as fast as the client's own queue allows, until
 * the cluster closes the connection, `maxMs` pass or `maxFrames` are sent.
 */
async function flood(
  client: RawClient,
  payloadBytes: number,
  maxMs: number,
  maxFrames: number,
): Promise<FloodResult> {
  const frame = encodePacket({
    kind: "Plugin",
    command: 0x80,
    payload: new Uint8Array(payloadBytes),
  });
  const connection = client.connection;
  const started = performance.now();
  let frames = 0;
  while (connection.isOpen && frames < maxFrames && performance.now() - started < maxMs) {
    // Up to 256 KiB queued per turn: the flood is as fast as sealing and the socket allow.
    while (connection.isOpen && connection.queuedBytes < 256 * 1024 && frames < maxFrames) {
      connection.send(frame);
      frames++;
    }
    await delay(1);
  }
  return {
    frames,
    bytes: frames * frame.length,
    seconds: (performance.now() - started) / 1000,
  };
}

/** A bystander's round trips: Ping → Pong and an echo (0x80) per round, every `everyMs`. */
async function bystander(
  client: RawClient,
  keepGoing: (round: number) => boolean,
  everyMs: number,
  maxRounds: number,
  onRound: () => void = () => {},
): Promise<number[]> {
  const rtts: number[] = [];
  for (let round = 1; round <= maxRounds && keepGoing(round); round++) {
    const sentAt = performance.now();
    client.send({ kind: "Ping", value: round });
    client.send({ kind: "Plugin", command: 0x80, payload: u32(round) });
    assert.equal((await client.expect("Pong", ANSWER_WAIT_MS)).value, round);
    rtts.push(performance.now() - sentAt);
    const echo = await client.expect("Plugin", ANSWER_WAIT_MS);
    assert.equal(echo.command, 0x80);
    assert.equal(u32At(echo.payload, 0), round);
    onRound();
    await delay(everyMs);
  }
  return rtts;
}

/** Reads a player's packets until DisconnectCluster; undefined if the socket ended first. */
async function disconnectReason(client: RawClient): Promise<string | undefined> {
  for (;;) {
    let packet;
    try {
      packet = await client.next(ANSWER_WAIT_MS);
    } catch (error) {
      // A reset (our unread flood) may cut the stream before the DisconnectCluster.
      if (!client.connection.isOpen) return undefined;
      throw error;
    }
    if (packet.kind === "DisconnectCluster") return packet.reason;
  }
}

async function askCounts(client: RawClient): Promise<{ instance: number; seen: number }> {
  client.send({ kind: "Plugin", command: COUNTS_COMMAND, payload: new Uint8Array() });
  const answer = await client.expect("Plugin", ANSWER_WAIT_MS);
  assert.equal(answer.command, COUNTS_COMMAND);
  return { instance: u32At(answer.payload, 0), seen: u32At(answer.payload, 4) };
}

function metricsText(cluster: ClusterServer): string {
  return renderPrometheus(cluster.metrics.families());
}

function metric(text: string, name: string): number {
  const found = text.match(new RegExp(`^${name} (\\d+)$`, "m"));
  assert.ok(found, `${name} missing from /metrics`);
  return Number(found[1]);
}

Deno.test("a player flooding plugin commands is throttled, then kicked; the Worker plugin keeps its state and a bystander every answer", async () => {
  await using w = await startWorld({
    pluginSpecs: [{
      url: COUNTS_URL,
      name: "counts",
      settings: {},
      permissions: NO_PLUGIN_PERMISSIONS,
    }],
  });
  const { client: steady } = await playerJoins(w.master.addr.port, w.cluster.addr.port);
  const { client: flooder } = await playerJoins(w.master.addr.port, w.cluster.addr.port);
  try {
    const before = await askCounts(steady);
    const rssBefore = Deno.memoryUsage().rss;
    let rssPeak = rssBefore;
    let roundsAfterKick = 0;
    const flooding = flood(flooder, 16, 20_000, 100_000_000);
    const rtts = await bystander(
      steady,
      // Through the flood and 10 rounds after the kick (bounded: at most 2000 rounds).
      () => flooder.connection.isOpen || roundsAfterKick++ < 10,
      20,
      2000,
      () => rssPeak = Math.max(rssPeak, Deno.memoryUsage().rss),
    );
    const sent = await flooding;
    const reason = await disconnectReason(flooder);
    await waitUntil(() => w.cluster.players.size === 1, "the flooder to be gone", ANSWER_WAIT_MS);

    const text = metricsText(w.cluster);
    assert.equal(metric(text, "sustenet_cluster_flood_kicks_total"), 1);
    const throttled = metric(text, "sustenet_cluster_messages_throttled_total");
    assert.ok(throttled > 0);
    assert.ok(metric(text, "sustenet_cluster_bytes_throttled_total") >= throttled * 17);
    if (reason !== undefined) assert.equal(reason, FLOOD_KICK_REASON);
    // The plugin was never restarted and was given every message the cluster let through.
    const after = await askCounts(steady);
    assert.equal(after.instance, before.instance, "the plugin was restarted");
    assert.equal(after.seen, w.cluster.metrics.pluginMessages.value);
    assert.ok(after.seen < sent.frames / 2, `${after.seen} of ${sent.frames} reached the plugin`);
    assert.ok(rssPeak - rssBefore < RSS_BOUND_BYTES, `RSS grew ${mb(rssPeak - rssBefore)}`);
    console.log(
      `flood: ${sent.frames} frames, ${mb(sent.bytes)} in ${sent.seconds.toFixed(1)} s ` +
        `(${(sent.bytes / MiB / sent.seconds).toFixed(1)} MiB/s); ${throttled} dropped, ` +
        `${after.seen} reached the plugin; kicked, reason seen by the client: ` +
        `${reason ?? "(lost to the reset)"}; bystander ${rtts.length} rounds, RTT p50 ` +
        `${ms(quantile(rtts, 0.5))} p99 ${ms(quantile(rtts, 0.99))} max ` +
        `${ms(Math.max(...rtts))}; test-process RSS ${mb(rssBefore)} → peak ${mb(rssPeak)}`,
    );
  } finally {
    await flooder.close();
    await steady.close();
  }
});

Deno.test("a flood kick sends DisconnectCluster('rate limit exceeded'), tells plugins why and logs a few lines", async () => {
  const left: string[] = [];
  const lines: string[] = [];
  await setupLogging({
    level: "info",
    console: QUIET_CONSOLE,
    sinks: {
      memory(record: LogRecord) {
        if (record.category.includes("cluster")) lines.push(String(record.rawMessage));
      },
    },
  });
  try {
    const echo = definePlugin({
      onMessage: (ctx, from, command, payload) => ctx.send(from, command, payload),
      onLeave: (_ctx, _player, reason) => void left.push(reason),
    });
    await using w = await startWorld({
      plugins: [echo],
      playerRateLimits: { commandsPerS: 100, commandsBurst: 50, floodKickMs: 200 },
    });
    const { client } = await playerJoins(w.master.addr.port, w.cluster.addr.port);
    try {
      // Bursts of 100 commands (twice the bucket: each one drops some), each in one record
      // and weighed before the next is sent, until the cluster kicks: nothing is left unread
      // when the kick comes, so the DisconnectCluster reaches us.
      const metrics = w.cluster.metrics;
      let sent = 0;
      for (let round = 0; round < 100 && metrics.floodKicks.value === 0; round++) {
        for (let i = 0; i < 100; i++) {
          client.send({ kind: "Plugin", command: 0x80, payload: u32(sent++) });
        }
        // (Frames after the kick's close are never weighed.)
        await waitUntil(
          () =>
            metrics.pluginMessages.value + metrics.messagesThrottled.value === sent ||
            metrics.floodKicks.value > 0,
          "the burst to be weighed",
          ANSWER_WAIT_MS,
        );
        await delay(50);
      }
      assert.equal(await disconnectReason(client), FLOOD_KICK_REASON);
      await waitUntil(() => left.length === 1, "the plugin to hear the leave", ANSWER_WAIT_MS);
      assert.equal(left[0], `kicked: ${FLOOD_KICK_REASON}`);
      assert.equal(metrics.floodKicks.value, 1);
      // At least half of each burst was over the bucket and dropped; what passed was echoed
      // before the DisconnectCluster (disconnectReason read past those echoes).
      assert.ok(sent >= 200, `kicked after ${sent} commands`);
      const weighed = metrics.pluginMessages.value + metrics.messagesThrottled.value;
      assert.ok(weighed > sent - 100 && weighed <= sent, `${weighed} of ${sent} weighed`);
      assert.ok(metrics.messagesThrottled.value >= (sent - 100) / 2);
    } finally {
      await client.close();
    }
    // Hundreds of drops, a handful of lines: one per throttle episode (one, unless the machine
    // stalled a second between bursts), at most 5 per 10 s, and one for the kick.
    const throttleLines = lines.filter((line) => line.startsWith("throttling player")).length;
    assert.ok(throttleLines >= 1 && throttleLines <= 5, `${throttleLines} throttle lines`);
    assert.equal(lines.filter((line) => line.startsWith("kicking player")).length, 1);
  } finally {
    await reset();
  }
});

/**
 * A TCP relay between one client and the cluster that reads the cluster's side at most
 * `bytesPerS`: an honest player on a modest link.
 */
class ThrottledRelay implements AsyncDisposable {
  readonly #listener: Deno.TcpListener;
  readonly #conns: Deno.Conn[] = [];
  readonly #pumps: Promise<unknown>[] = [];

  constructor(target: number, bytesPerS: number) {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.#listener = listener;
    this.#pumps.push((async () => {
      const client = await listener.accept();
      const server = await Deno.connect({ hostname: "127.0.0.1", port: target });
      this.#conns.push(client, server);
      this.#pumps.push(pump(client, server, Infinity), pump(server, client, bytesPerS));
    })());
  }

  get port(): number {
    return this.#listener.addr.port;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.#listener.close();
    for (const conn of this.#conns) closeQuietly(conn);
    await Promise.allSettled(this.#pumps);
  }
}

async function pump(from: Deno.Conn, to: Deno.Conn, bytesPerS: number): Promise<void> {
  const buffer = new Uint8Array(16 * 1024);
  const started = performance.now();
  let total = 0;
  try {
    for (;;) {
      const n = await from.read(buffer);
      if (n === null) break;
      total += n;
      let at = 0;
      while (at < n) at += await to.write(buffer.subarray(at, n));
      // Never ahead of the rate: wait until `total` bytes are due.
      const dueMs = total / bytesPerS * 1000 - (performance.now() - started);
      if (dueMs > 0) await delay(dueMs);
    }
  } catch (error) {
    if (!isSocketGone(error)) throw error;
  }
}

Deno.test("one player chatting at 4 MB/s cannot make 10 honest readers (2 MB/s each) slow consumers", async () => {
  const readers = 10;
  const lineBytes = 1000;
  // Chat's own line limit is lifted: the cluster's per-player byte limit alone bounds the
  // fan-out. Queues are small (256 KiB) so a reader falling behind would be dropped quickly.
  await using w = await startWorld({
    plugins: [{
      plugin: chat,
      name: "chat",
      settings: { maxLength: 60_000, messagesPerSecond: 1_000_000, messageBurst: 1_000_000 },
    }],
    maxQueueBytes: 256 * 1024,
  });
  const relays: ThrottledRelay[] = [];
  const honest: RawClient[] = [];
  const { client: sender } = await playerJoins(w.master.addr.port, w.cluster.addr.port);
  try {
    for (let i = 0; i < readers; i++) {
      const relay = new ThrottledRelay(w.cluster.addr.port, 2_000_000);
      relays.push(relay);
      // Through the relay: the ticket names the cluster, not the port it is reached on.
      const join = await playerJoins(w.master.addr.port, relay.port);
      honest.push(join.client);
    }
    // 4 MB/s offered: 40 lines of 1000 bytes every 10 ms, for 6 s (more than loopback socket
    // buffers hide), as far as the sender's own queue takes them (the cluster stops reading a
    // throttled sender: TCP pushes back), until the sender is kicked.
    const line = new Uint8Array(lineBytes).fill(0x61);
    const started = performance.now();
    let offered = 0;
    let refused = 0;
    while (
      sender.connection.isOpen && performance.now() - started < 6000 && offered + refused < 24_000
    ) {
      for (let i = 0; i < 40; i++) {
        if (sender.connection.queuedBytes > 512 * 1024) {
          refused++;
          continue;
        }
        sender.send({ kind: "Plugin", command: CHAT_COMMAND, payload: line });
        offered++;
      }
      await delay(10);
    }
    const seconds = (performance.now() - started) / 1000;
    // The cluster weighs what the sender queued, unless it kicks the sender first.
    const metrics = w.cluster.metrics;
    await waitUntil(
      () =>
        metrics.pluginMessages.value + metrics.messagesThrottled.value === offered ||
        (metrics.floodKicks.value === 1 && !sender.connection.isOpen),
      "the cluster to weigh every line or kick the sender",
      30_000,
    );
    const passed = w.cluster.metrics.pluginMessages.value;
    for (const reader of honest) {
      for (let i = 0; i < passed; i++) {
        const got = await reader.expect("Plugin", ANSWER_WAIT_MS);
        assert.equal(got.command, CHAT_COMMAND);
        assert.equal(got.payload.length, 4 + lineBytes);
      }
    }
    // Every reader is still there (the sender too, unless it was kicked for flooding).
    assert.equal(w.cluster.players.size, readers + (sender.connection.isOpen ? 1 : 0));
    for (const reader of honest) assert.ok(reader.connection.isOpen);
    const perReader = passed * (5 + 4 + lineBytes);
    console.log(
      `chat flood: ${offered + refused} lines (${mb((offered + refused) * lineBytes)}) offered ` +
        `in ${seconds.toFixed(1)} s = ` +
        `${((offered + refused) * lineBytes / 1e6 / seconds).toFixed(1)} MB/s, ${offered} ` +
        `taken by the sender's socket (TCP backpressure); ${passed} passed; each of ${readers} ` +
        `readers got ${mb(perReader)} = ${(perReader / 1e3 / seconds).toFixed(0)} kB/s; ` +
        `none dropped`,
    );
  } finally {
    await sender.close();
    for (const reader of honest) await reader.close();
    for (const relay of relays) await relay[Symbol.asyncDispose]();
  }
});

Deno.test("an honest client at 60 Hz (Move, two commands, a Ping a second) is never throttled", async () => {
  const echo = definePlugin({
    onMessage: (ctx, from, command, payload) => ctx.send(from, command, payload),
  });
  await using w = await startWorld({ plugins: [echo] });
  const { client } = await playerJoins(w.master.addr.port, w.cluster.addr.port);
  try {
    const frames = 180; // 3 s at 60 Hz
    let echoes = 0;
    for (let frame = 0; frame < frames; frame++) {
      client.send({ kind: "Move", state: { x: frame, y: 0, z: 0 } });
      client.send({ kind: "Plugin", command: 0x80, payload: new Uint8Array(64) });
      client.send({ kind: "Plugin", command: 0x81, payload: new Uint8Array(200) });
      if (frame % 60 === 0) client.send({ kind: "Ping", value: frame });
      await delay(1000 / 60);
    }
    // Every answer arrives: 2 echoes per frame and 3 Pongs.
    let pongs = 0;
    while (echoes < frames * 2 || pongs < 3) {
      const packet = await client.next(ANSWER_WAIT_MS);
      if (packet.kind === "Plugin") echoes++;
      else if (packet.kind === "Pong") pongs++;
    }
    assert.equal(w.cluster.metrics.messagesThrottled.value, 0);
    assert.equal(w.cluster.metrics.movesAccepted.value, frames);
    assert.equal(w.cluster.players.size, 1);
  } finally {
    await client.close();
  }
});

/** Kills a child that may have exited already. */
function killIfRunning(child: Deno.ChildProcess): void {
  try {
    child.kill("SIGKILL");
  } catch (error) {
    if (!(error instanceof TypeError)) throw error; // it had exited already
  }
}

/** The stdout lines of a child process. */
async function* flooderLines(child: Deno.ChildProcess): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buffered = "";
  for await (const chunk of child.stdout) {
    buffered += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = buffered.indexOf("\n")) >= 0) {
      yield buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
    }
  }
}

Deno.test("a real cluster process (deno task cluster, echo in a Worker) kicks a flooder and counts it in /metrics; the bystander carries on", async () => {
  await using deployment = await writeEchoDeployment("fair-1", 'log_level = "warning"\n');
  const { masterPort, statusPort } = deployment;
  await using master = spawnRole("master", ["--config", deployment.masterConfig]);
  await using cluster = spawnRole("cluster", ["--config", deployment.clusterConfig]);
  const scrape = async () => await (await fetch(`http://127.0.0.1:${statusPort}/metrics`)).text();
  try {
    await waitForLine(master, /^master listening on /);
    const ready = await waitForLine(cluster, /^cluster fair-1 listening on 127\.0\.0\.1:(\d+) /);
    const clusterPort = Number(ready[1]);
    await waitForRegistered(statusPort);
    const { client: steady } = await playerJoins(masterPort, clusterPort);
    // The flooder runs in a third process: the bystander's figures are the cluster's, not
    // those of a test process busy sealing 80 MB/s.
    const flooder = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", FLOODER, String(masterPort), String(clusterPort), "16", "20000"],
      stdout: "piped",
      stderr: "inherit",
      stdin: "null",
    }).spawn();
    const lines = flooderLines(flooder);
    try {
      assert.equal((await lines.next()).value, "flooding");
      const pid = cluster.child.pid;
      const rssBefore = await processRss(pid);
      let rssPeak = rssBefore ?? 0;
      let sampling = Promise.resolve();
      let flooding = true;
      const result = lines.next().then((line) => {
        flooding = false;
        return JSON.parse(String(line.value)) as FloodResult & { reason: string | null };
      });
      let roundsAfterKick = 0;
      const rtts = await bystander(
        steady,
        () => flooding || roundsAfterKick++ < 10,
        20,
        2000,
        () => {
          sampling = sampling.then(async () => {
            rssPeak = Math.max(rssPeak, (await processRss(pid)) ?? 0);
          });
        },
      );
      const sent = await result;
      await sampling;
      if (sent.reason !== null) assert.equal(sent.reason, FLOOD_KICK_REASON);
      const text = await scrape();
      assert.equal(metric(text, "sustenet_cluster_flood_kicks_total"), 1);
      const throttled = metric(text, "sustenet_cluster_messages_throttled_total");
      assert.ok(throttled > 0);
      assert.equal(metric(text, "sustenet_cluster_players"), 1);
      // Echo (in a Worker) still answers: it was never restarted for good.
      steady.send({ kind: "Plugin", command: 0x80, payload: u32(7) });
      assert.equal(u32At((await steady.expect("Plugin", ANSWER_WAIT_MS)).payload, 0), 7);
      if (rssBefore !== undefined) {
        assert.ok(
          rssPeak - rssBefore < RSS_BOUND_BYTES,
          `cluster RSS grew ${mb(rssPeak - rssBefore)}`,
        );
      }
      console.log(
        `process flood: ${sent.frames} frames, ${mb(sent.bytes)} in ` +
          `${sent.seconds.toFixed(1)} s (${(sent.bytes / MiB / sent.seconds).toFixed(1)} MiB/s), ` +
          `${throttled} dropped, kicked (client saw: ${sent.reason ?? "reset"}); bystander ` +
          `${rtts.length} rounds, RTT p50 ${ms(quantile(rtts, 0.5))} p99 ` +
          `${ms(quantile(rtts, 0.99))} max ${ms(Math.max(...rtts))}; cluster RSS ` +
          `${rssBefore === undefined ? "n/a" : `${mb(rssBefore)} → peak ${mb(rssPeak)}`}`,
      );
      assert.equal((await flooder.status).code, 0);
    } finally {
      await steady.close();
      killIfRunning(flooder);
      await flooder.status;
      await lines.return?.(undefined);
    }
  } finally {
    cluster.kill("SIGTERM");
    master.kill("SIGTERM");
    await cluster.waitExit();
    await master.waitExit();
  }
});
