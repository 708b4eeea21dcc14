import assert from "node:assert/strict";
import { type LogRecord, reset } from "@logtape/logtape";
import { type MasterServer, startMaster } from "../master/mod.ts";
import { renderPrometheus } from "../shared/metrics.ts";
import { generateKey, loadKey } from "../shared/keys.ts";
import { encodePacket } from "../shared/protocol/codec.ts";
import { type Frame, FrameDecoder } from "../shared/protocol/frame.ts";
import { Role } from "../shared/protocol/packets.ts";
import { ErrorCode, ProtocolError } from "../shared/protocol/protocol_error.ts";
import { setupLogging } from "../shared/logging.ts";
import { definePlugin } from "../shared/plugin.ts";
import { RawPeer, registerRawCluster } from "./_master_peer.ts";
import { playerJoins, type RawClient, startWorld, waitUntil } from "./_raw_client.ts";
import { concatBytes, errorCodeOf } from "./_bytes.ts";
import { closeQuietly } from "../shared/tls_stream_listener.ts";
import { QUIET_CONSOLE } from "./_logs.ts";
import { isSocketGone } from "./_socket_gone.ts";

const HELLO_CLIENT = encodePacket({ kind: "Hello", version: 3, role: Role.Client });

const echo = definePlugin({
  onMessage(ctx, from, command, payload) {
    if (command === 0x80) ctx.send(from, 0x80, payload);
  },
});

async function echoes(client: RawClient, text: string): Promise<void> {
  const payload = new TextEncoder().encode(text);
  client.send({ kind: "Plugin", command: 0x80, payload });
  assert.equal(new TextDecoder().decode((await client.expect("Plugin")).payload), text);
}

/** Reads `conn` to its end and returns every frame (and a final decoding error, if any). */
async function readAllFrames(conn: Deno.Conn): Promise<(Frame | ProtocolError)[]> {
  const decoder = new FrameDecoder({ maxFrameBytes: 1 << 24 });
  const frames: (Frame | ProtocolError)[] = [];
  const buffer = new Uint8Array(64 * 1024);
  while (true) {
    let n: number | null;
    try {
      n = await conn.read(buffer);
    } catch (error) {
      // The server may reset a connection it dropped while our writes were still arriving.
      if (error instanceof Deno.errors.ConnectionReset) break;
      throw error;
    }
    if (n === null) break;
    decoder.push(buffer.subarray(0, n));
    for (let f = decoder.next(); f !== undefined; f = decoder.next()) {
      frames.push(f instanceof ProtocolError ? f : { type: f.type, payload: f.payload.slice() });
    }
  }
  return frames;
}

function connectionsOf(master: MasterServer): number {
  const text = renderPrometheus(master.metrics.families());
  return Number(text.match(/^sustenet_master_connections (\d+)$/m)?.[1]);
}

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Writes, ignoring the errors of a socket the server has already dropped. */
async function writeIgnoringDrop(conn: Deno.Conn, bytes: Uint8Array): Promise<boolean> {
  try {
    let at = 0;
    while (at < bytes.length) at += await conn.write(bytes.subarray(at));
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.BrokenPipe || error instanceof Deno.errors.ConnectionReset) {
      return false;
    }
    throw error;
  }
}

Deno.test("a master client that floods requests and never reads is dropped as a slow consumer", async () => {
  const keysDir = await Deno.makeTempDir();
  await generateKey(keysDir, "k");
  const key = await loadKey(keysDir, "k");
  const maxQueueBytes = 128 * 1024;
  const master = await startMaster({ port: 0, keysDir, maxQueueBytes, heartbeatTimeoutMs: 60_000 });
  const clusters = [];
  const reader = await RawPeer.hello(master.addr.port, "client");
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: master.addr.port });
  try {
    // Long cluster names make every SendClusters answer large (about 9 KiB).
    for (let i = 0; i < 40; i++) {
      clusters.push(
        await registerRawCluster(master.addr.port, {
          keyName: "k",
          key,
          name: `c${i}-${"x".repeat(200)}`,
          port: 1000 + i,
        }),
      );
    }
    const rssBefore = Deno.memoryUsage().rss;
    assert.ok(await writeIgnoringDrop(conn, HELLO_CLIENT));
    const request = encodePacket({ kind: "RequestClusters" });
    const batch = concatBytes(Array.from({ length: 4 }, () => request));
    // Written until the master drops it or stops reading; never read before.
    let lastFramesIn = -1;
    let still = 0;
    for (let i = 0; i < 20_000 && still < 20; i++) {
      if (!await writeIgnoringDrop(conn, batch)) break;
      await delay(2);
      const framesIn = master.metrics.traffic("framesIn");
      still = framesIn === lastFramesIn ? still + 1 : 0;
      lastFramesIn = framesIn;
    }
    // The master dropped it (its Error frame may be lost to the reset our unread requests
    // cause); if the Error arrived, it says SlowConsumer.
    const frames = await readAllFrames(conn);
    const code = errorCodeOf(frames.at(-1));
    if (code !== undefined) assert.equal(code, ErrorCode.SlowConsumer);
    await waitUntil(
      () => connectionsOf(master) === 41,
      "the master to forget the slow client",
      5000,
    );
    // Its answers were bounded by the queue plus the socket buffers, not by what it asked.
    assert.ok(Deno.memoryUsage().rss - rssBefore < 64 * 1024 * 1024);
    // Everyone else carries on.
    reader.send({ kind: "Ping", value: 7 });
    assert.equal((await reader.expect("Pong")).value, 7);
    assert.equal(master.registry.size, 40);
  } finally {
    conn.close();
    await reader.close();
    for (const cluster of clusters) await cluster.peer.close();
    await master.stop();
    await Deno.remove(keysDir, { recursive: true });
  }
});

Deno.test("slowloris: a master connection trickling its Hello is closed by handshake_timeout_ms", async () => {
  const keysDir = await Deno.makeTempDir();
  const master = await startMaster({ port: 0, keysDir, handshakeTimeoutMs: 300 });
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: master.addr.port });
  try {
    const reading = readAllFrames(conn);
    let sent = 0;
    // One byte every 50 ms: never idle, never a whole Hello before the deadline.
    for (const byte of HELLO_CLIENT.subarray(0, HELLO_CLIENT.length - 1)) {
      if (!await writeIgnoringDrop(conn, new Uint8Array([byte]))) break;
      sent++;
      await delay(50);
    }
    const frames = await reading;
    assert.equal(frames.length, 1);
    assert.equal(errorCodeOf(frames[0]), ErrorCode.Timeout);
    assert.ok(sent > 1, "the trickle was cut before it started");
  } finally {
    conn.close();
    await master.stop();
    await Deno.remove(keysDir, { recursive: true });
  }
});

Deno.test("slowloris: a cluster connection trickling its key exchange is closed by handshake_timeout_ms", async () => {
  await using w = await startWorld({ plugins: [echo], handshakeTimeoutMs: 400 });
  const { client } = await playerJoins(w.master.addr.port, w.cluster.addr.port);
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: w.cluster.addr.port });
  try {
    const reading = readAllFrames(conn);
    assert.ok(await writeIgnoringDrop(conn, HELLO_CLIENT));
    const exchange = encodePacket({
      kind: "KeyExchange",
      clientPublicKey: new Uint8Array(32).fill(9),
      clientRandom: new Uint8Array(32),
    });
    for (const byte of exchange.subarray(0, exchange.length - 1)) {
      if (!await writeIgnoringDrop(conn, new Uint8Array([byte]))) break;
      await delay(20);
    }
    const frames = await reading;
    assert.equal(frames[0] instanceof ProtocolError ? -1 : frames[0]?.type, 0x02); // HelloOk
    assert.equal(errorCodeOf(frames.at(-1)), ErrorCode.Timeout);
    await echoes(client, "still playing");
    assert.equal(w.cluster.players.size, 1);
  } finally {
    conn.close();
    await client.close();
  }
});

Deno.test("a connection flood beyond max_pending_per_address gets ServerFull while the player keeps playing", async () => {
  await using w = await startWorld({ plugins: [echo], maxConnections: 2, maxPendingPerAddress: 1 });
  const { client } = await playerJoins(w.master.addr.port, w.cluster.addr.port);
  const flood: Deno.Conn[] = [];
  try {
    // One pending slot for this address: the first flood connection takes it, the rest are
    // refused (the player, authenticated, holds no pending slot).
    for (let i = 0; i < 30; i++) {
      flood.push(await Deno.connect({ hostname: "127.0.0.1", port: w.cluster.addr.port }));
    }
    await echoes(client, "during the flood");
    const answers = await Promise.all(flood.slice(1).map(readAllFrames));
    for (const frames of answers) {
      assert.equal(frames.length, 1);
      assert.equal(errorCodeOf(frames[0]), ErrorCode.ServerFull);
    }
    await waitUntil(
      () => w.cluster.metrics.preAuth.refused.get("per_address") >= 29,
      "the refusals to be counted",
    );
    await echoes(client, "after the flood");
    assert.equal(w.cluster.players.size, 1);
  } finally {
    for (const conn of flood) conn.close();
    await client.close();
  }
});

Deno.test("a connection flood beyond the master's max_pending_per_address gets ServerFull; clients carry on", async () => {
  const keysDir = await Deno.makeTempDir();
  const master = await startMaster({
    port: 0,
    keysDir,
    maxConnections: 2,
    maxPendingPerAddress: 1,
  });
  const client = await RawPeer.hello(master.addr.port, "client");
  const flood: Deno.Conn[] = [];
  try {
    for (let i = 0; i < 30; i++) {
      flood.push(await Deno.connect({ hostname: "127.0.0.1", port: master.addr.port }));
    }
    client.send({ kind: "Ping", value: 1 });
    assert.equal((await client.expect("Pong")).value, 1);
    const answers = await Promise.all(flood.slice(1).map(readAllFrames));
    for (const frames of answers) assert.equal(errorCodeOf(frames[0]), ErrorCode.ServerFull);
    assert.equal(master.metrics.preAuth.refused.get("per_address"), 29);
    client.send({ kind: "Ping", value: 2 });
    assert.equal((await client.expect("Pong")).value, 2);
  } finally {
    for (const conn of flood) conn.close();
    await client.close();
    await master.stop();
    await Deno.remove(keysDir, { recursive: true });
  }
});

/**
 * A TCP relay between one client and the cluster that can stop reading the cluster's side, so
 * a client whose own library reads everything can play a player that never reads.
 */
class PausableRelay implements AsyncDisposable {
  readonly #listener: Deno.TcpListener;
  readonly #target: number;
  #paused = false;
  #resume: (() => void) | undefined;
  #pumps: Promise<unknown>[] = [];
  #conns: Deno.Conn[] = [];
  /** Bytes read from the cluster's side so far. */
  fromServer = 0;

  constructor(target: number) {
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.#target = target;
    this.#pumps.push(this.#acceptOne());
  }

  get port(): number {
    return this.#listener.addr.port;
  }

  async #acceptOne(): Promise<void> {
    const client = await this.#listener.accept();
    const server = await Deno.connect({ hostname: "127.0.0.1", port: this.#target });
    this.#conns.push(client, server);
    this.#pumps.push(this.#pump(client, server, false), this.#pump(server, client, true));
  }

  async #pump(from: Deno.Conn, to: Deno.Conn, fromServer: boolean): Promise<void> {
    const buffer = new Uint8Array(16 * 1024);
    try {
      for (;;) {
        if (fromServer && this.#paused) {
          await new Promise<void>((resolve) => this.#resume = resolve);
        }
        const n = await from.read(buffer);
        if (n === null) break;
        if (fromServer) this.fromServer += n;
        // Once resumed after a pause, the client side is not fed any more: only counted.
        if (!fromServer || this.#resume === undefined) await to.write(buffer.subarray(0, n));
      }
    } catch (error) {
      // Either side may be reset or closed under the pump when a test ends it.
      if (!isSocketGone(error)) throw error;
    }
  }

  /** Stops reading what the cluster sends. */
  pause(): void {
    this.#paused = true;
  }

  /** Reads (and discards) whatever the cluster wrote, up to its end; resolves at the end. */
  async drain(): Promise<void> {
    this.#paused = false;
    const resume = this.#resume;
    this.#resume = () => {};
    resume?.();
    await this.#pumps[2];
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.#listener.close();
    this.#paused = false;
    this.#resume?.(); // a paused pump would wait forever
    for (const conn of this.#conns) closeQuietly(conn);
    await Promise.allSettled(this.#pumps);
  }
}

Deno.test("a cluster player that never reads while a plugin broadcasts is dropped at its queue bound", async () => {
  const maxQueueBytes = 256 * 1024;
  const payload = new Uint8Array(16 * 1024 - 1).fill(7); // + 1 command byte + 4 length bytes
  const frameBytes = payload.length + 5;
  // Under the bound per round: a connection's queue is flushed once per event-loop turn.
  const perRound = 4;
  // The transport logs the drop synchronously inside the send that overflowed, so the plugin
  // knows exactly how many bytes the slow player's queue accepted.
  let dropped = false;
  let accepted = 0;
  await setupLogging({
    level: "warning",
    console: QUIET_CONSOLE,
    sinks: {
      drops(record: LogRecord) {
        if (/outgoing queue above/.test(String(record.properties.reason))) dropped = true;
      },
    },
  });
  const left: string[] = [];
  const shouter = definePlugin({
    onMessage(ctx, _from, command) {
      if (command !== 0x81) return;
      for (let i = 0; i < perRound; i++) {
        ctx.broadcast(0x81, payload);
        if (!dropped) accepted += frameBytes; // the frame that overflowed is not counted
      }
    },
    onLeave: (_ctx, _player, reason) => void left.push(reason),
  });
  try {
    await using w = await startWorld({ plugins: [echo, shouter], maxQueueBytes });
    await using relay = new PausableRelay(w.cluster.addr.port);
    const slow = await playerJoins(w.master.addr.port, relay.port);
    const steady = await playerJoins(w.master.addr.port, w.cluster.addr.port);
    try {
      const beforePause = relay.fromServer;
      relay.pause();
      for (let round = 0; round < 2000 && !dropped; round++) {
        steady.client.send({ kind: "Plugin", command: 0x81, payload: new Uint8Array() });
        for (let i = 0; i < perRound; i++) {
          assert.equal((await steady.client.expect("Plugin")).payload.length, payload.length);
        }
      }
      assert.ok(dropped, "the slow player was never dropped");
      // Gone from the cluster, with the reason, while the other player carries on.
      await waitUntil(() => left.length === 1, "the slow player to leave", 60_000);
      assert.equal(left[0], `outgoing queue above ${maxQueueBytes} bytes`);
      assert.equal(w.cluster.players.size, 1);
      await echoes(steady.client, "still playing");
      steady.client.send({ kind: "Plugin", command: 0x81, payload: new Uint8Array() });
      for (let i = 0; i < perRound; i++) await steady.client.expect("Plugin");
      // Everything the cluster wrote into the slow socket, read to its end.
      await relay.drain();
      const written = relay.fromServer - beforePause;
      // The cluster never held more than maxQueueBytes for it: what its queue accepted and
      // never wrote stays within the bound (socket buffers took the rest).
      assert.ok(accepted - written <= maxQueueBytes, `${accepted} accepted, ${written} written`);
      assert.ok(accepted > maxQueueBytes, `${accepted} accepted before the drop`);
    } finally {
      await steady.client.close();
      await slow.client.close();
    }
  } finally {
    await reset();
  }
});
