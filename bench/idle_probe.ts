/**
 * What one idle connection costs a server process, measured inside it: `deno run -A
 * bench/idle_probe.ts [--clients N] [--server cluster|bare|frame|sealed] [--snapshot FILE]
 * [--read-bytes N (bare)] [--idle-ms N] [--trim-ms N (frame, sealed: `idleTrimMs`)]`.
 *
 * The server runs in its own process with `--inspect` on a loopback port; through the inspector
 * the probe collects garbage and reads `Deno.memoryUsage()` before and after `N` clients
 * connected (and, for `cluster`, authenticated through the master, sealed), so the figures are
 * what the connections retain, not garbage left by their handshakes. The servers:
 *
 * - `cluster`: the bench's sealed cluster (`bench/cluster_server.ts`), clients joined through
 *   the master as the bench's idle part joins them.
 * - `bare`: `Deno.listen` and one pending read per socket (into `--read-bytes`, 4096 by
 *   default): Deno's own floor.
 * - `frame`: a plaintext `FrameConnection` per socket (`listenFrames`; no idle timer unless
 *   `--idle-ms`).
 * - `sealed`: a `FrameConnection` per socket that switched to sealed records (FFI ciphers) and
 *   exchanged one sealed frame each way.
 *
 * A bench tool for issue 23 (docs/PERFORMANCE.md, "Idle memory"); it binds 127.0.0.1 only and
 * closes every connection and process it opened before it exits.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { startSustenetServers } from "./bench_servers.ts";
import { closeAll, connectClients, mapConcurrent } from "./load_clients.ts";
import { BenchChild } from "./child_process.ts";
import { connectFrames, type FrameConnection, listenFrames } from "../shared/transport.ts";
import { encodeFrame } from "../shared/protocol/frame.ts";
import { InspectorSession, type MemorySample } from "./inspector_session.ts";
import { freePort } from "../tests/_process.ts";

const SEND_KEY = new Uint8Array(32).fill(1);
const RECEIVE_KEY = new Uint8Array(32).fill(2);

/** The server side of the `bare`, `frame` and `sealed` probes (run in the child process). */
function serveFloor(
  kind: string,
  readBytes: number,
  idleTimeoutMs: number,
  idleTrimMs: number,
): void {
  if (kind === "bare") {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    console.log(`port ${(listener.addr as Deno.NetAddr).port}`);
    (async () => {
      for await (const conn of listener) {
        conn.setNoDelay(true);
        (async () => {
          const buffer = new Uint8Array(readBytes);
          while ((await conn.read(buffer)) !== null) { /* drop */ }
          conn.close();
        })();
      }
    })();
    return;
  }
  const server = listenFrames({
    port: 0,
    idleTimeoutMs,
    idleTrimMs,
    handshakeTimeoutMs: 0,
    onFrame: (_frame, conn) => {
      if (kind === "sealed" && !conn.sealed) {
        conn.startSealing({ sendKey: SEND_KEY, receiveKey: RECEIVE_KEY });
      }
      conn.send(encodeFrame(0x10, new Uint8Array(8)));
    },
  });
  console.log(`port ${server.addr.port}`);
}

/** Clients of the floor probes: plain sockets, or framed ones that seal. */
async function connectFloor(
  kind: string,
  port: number,
  clients: number,
): Promise<{ close(): Promise<void> }> {
  if (kind === "bare") {
    const outcome = await mapConcurrent(clients, 64, () => Deno.connect({ port }));
    if (!outcome.ok) throw outcome.error;
    return {
      close: () => {
        for (const conn of outcome.values) conn.close();
        return Promise.resolve();
      },
    };
  }
  const outcome = await mapConcurrent(clients, 64, async () => {
    const answered = Promise.withResolvers<void>();
    let answers = 0;
    const conn: FrameConnection = await connectFrames({
      port,
      idleTimeoutMs: 0,
      handshakeTimeoutMs: 0,
      readBufferBytes: 1024,
      onFrame: () => {
        if (++answers === (kind === "sealed" ? 2 : 1)) answered.resolve();
      },
    });
    conn.send(encodeFrame(0x10, new Uint8Array(8)));
    if (kind === "sealed") {
      conn.startSealing({ sendKey: RECEIVE_KEY, receiveKey: SEND_KEY });
      conn.send(encodeFrame(0x10, new Uint8Array(8)));
    }
    await answered.promise;
    return conn;
  });
  if (!outcome.ok) throw outcome.error;
  return { close: () => Promise.all(outcome.values.map((c) => c.close())).then(() => {}) };
}

function kib(bytes: number): string {
  return `${(bytes / 1024).toFixed(1)} KiB`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      clients: { type: "string", default: "2000" },
      server: { type: "string", default: "cluster" },
      snapshot: { type: "string" },
      serve: { type: "string" },
      settle: { type: "string", default: "1000" },
      "read-bytes": { type: "string", default: "4096" },
      "idle-ms": { type: "string", default: "0" },
      "trim-ms": { type: "string", default: "1000" },
    },
  });
  if (values.serve !== undefined) {
    return serveFloor(
      values.serve,
      Number(values["read-bytes"]),
      Number(values["idle-ms"]),
      Number(values["trim-ms"]),
    );
  }
  const clients = Number(values.clients);
  const kind = values.server;
  const inspectPort = await freePort();
  const inspectFlag = `--inspect=127.0.0.1:${inspectPort}`;
  let stop: () => Promise<void>;
  let connect: () => Promise<{ close(): Promise<void> }>;
  if (kind === "cluster") {
    const servers = await startSustenetServers({ sealed: true, clusterDenoFlags: [inspectFlag] });
    stop = () => servers.stop();
    connect = async () => {
      const conns = await connectClients(servers.target, clients, {
        concurrency: 64,
        readBufferBytes: 1024,
      });
      return { close: () => closeAll(conns) };
    };
  } else {
    const child = BenchChild.spawn({
      name: `${kind} server`,
      command: Deno.execPath(),
      args: [
        "run",
        "-A",
        inspectFlag,
        import.meta.filename as string,
        "--serve",
        kind,
        "--read-bytes",
        values["read-bytes"],
        "--idle-ms",
        values["idle-ms"],
        "--trim-ms",
        values["trim-ms"],
      ],
    });
    stop = async () => {
      await child.stop();
    };
    const port = Number((await child.waitForLine(/^port (\d+)/, 30_000))[1]);
    connect = () => connectFloor(kind, port, clients);
  }
  try {
    const inspector = await InspectorSession.open(inspectPort);
    try {
      const before = await inspector.measure();
      const started = performance.now();
      const conns = await connect();
      const connectMs = Math.round(performance.now() - started);
      try {
        await new Promise((resolve) => setTimeout(resolve, Number(values.settle)));
        const after = await inspector.measure();
        const per = (key: keyof MemorySample) => (after[key] - before[key]) / clients;
        console.log(
          `${kind}: ${clients} idle connections (connected in ${connectMs} ms), per connection: ` +
            `rss ${kib(per("rss"))}, heapUsed ${kib(per("heapUsed"))}, ` +
            `heapTotal ${kib(per("heapTotal"))}, external ${kib(per("external"))}; ` +
            `rss ${kib(before.rss)} → ${kib(after.rss)}`,
        );
        if (values.snapshot !== undefined) await inspector.snapshot(values.snapshot);
      } finally {
        await conns.close();
      }
    } finally {
      inspector.close();
    }
  } finally {
    await stop();
  }
}

if (import.meta.main) await main();
