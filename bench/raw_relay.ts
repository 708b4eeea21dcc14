/**
 * The baseline relay server: plain Deno TCP, the protocol's framing and nothing else (no Hello,
 * no sealing, no plugin). Each frame received is copied once and queued on every other
 * connection; each connection writes everything queued in one event-loop turn with one write.
 * That is the most a Deno server can relay with this framing: the ceiling the Sustenet cluster
 * is compared to.
 *
 * Run as its own process: `deno run -A bench/raw_relay.ts [--port 0] [--hostname 127.0.0.1]`;
 * it prints `raw relay listening on <host>:<port>` once listening and stops on SIGTERM/SIGINT.
 * It must never let one connection's queue grow beyond its bound, and never crash on bad input
 * (a bad frame closes that connection only).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { BatchedWriter } from "./batched_writer.ts";
import { FrameScanner } from "./frame_scanner.ts";
import { FRAME_HEADER_BYTES } from "../shared/protocol/frame.ts";

/** Options of {@linkcode startRawRelay}. */
export interface RawRelayOptions {
  /**
   * Address to bind.
   *
   * @default {"127.0.0.1"}
   */
  readonly hostname?: string;
  /** Port; 0 lets the OS choose (read it back from {@linkcode RawRelay.addr}). */
  readonly port: number;
  /**
   * Bound of each connection's outgoing queue, in bytes; above it the connection is dropped.
   *
   * @default {4194304}
   */
  readonly maxQueueBytes?: number;
}

/** A running relay. */
export interface RawRelay {
  /** The bound address. */
  readonly addr: Deno.NetAddr;
  /** Connections open now. */
  readonly connectionCount: number;
  /** Stops accepting, closes every connection, resolves when all loops have ended. */
  close(): Promise<void>;
}

/** One relayed connection: a read loop and a per-turn batched write queue. */
class RelayPeer {
  readonly #conn: Deno.TcpConn;
  readonly #peers: Set<RelayPeer>;
  readonly #writer: BatchedWriter;
  readonly #scanner = new FrameScanner();
  #open = true;
  readonly done: Promise<void>;

  constructor(conn: Deno.TcpConn, peers: Set<RelayPeer>, maxQueueBytes: number) {
    this.#conn = conn;
    this.#peers = peers;
    this.#writer = new BatchedWriter(conn, {
      maxQueueBytes,
      onFailure: (reason) => {
        console.error(`raw relay: dropping a connection: ${reason}`);
        this.close();
      },
    });
    peers.add(this);
    this.done = this.#readLoop();
  }

  close(): void {
    if (!this.#open) return;
    this.#open = false;
    this.#peers.delete(this);
    this.#writer.stop();
    try {
      this.#conn.close();
    } catch (error) {
      if (!(error instanceof Deno.errors.BadResource)) throw error;
      // Already closed by the runtime after a failed read or write.
    }
  }

  /** Queues bytes shared with other receivers (never modified). */
  enqueue(frame: Uint8Array): void {
    if (this.#open) this.#writer.send(frame);
  }

  readonly #relay = (view: DataView, offset: number, length: number): void => {
    // One copy per frame received, shared by every receiver's queue.
    const start = view.byteOffset + offset - FRAME_HEADER_BYTES;
    const frame = new Uint8Array(view.buffer, start, FRAME_HEADER_BYTES + length).slice();
    for (const peer of this.#peers) if (peer !== this) peer.enqueue(frame);
  };

  async #readLoop(): Promise<void> {
    const buffer = new Uint8Array(64 * 1024);
    try {
      while (this.#open) {
        const n = await this.#conn.read(buffer);
        if (n === null) break;
        const result = this.#scanner.push(buffer.subarray(0, n), this.#relay);
        if (typeof result !== "number") {
          console.error(`raw relay: closing a connection: ${result.message}`);
          break;
        }
      }
    } catch (error) {
      if (this.#open) console.error(`raw relay: read failed: ${String(error)}`);
    }
    this.close();
    await this.#writer.flushed();
  }
}

/**
 * Starts the relay in this process.
 *
 * @param options Address and queue bound.
 *
 * @example Two peers: one sends, the other receives
 * ```ts
 * import { startRawRelay } from "./raw_relay.ts";
 * import { encodeFrame } from "../shared/protocol/frame.ts";
 * import assert from "node:assert/strict";
 *
 * const relay = startRawRelay({ port: 0 });
 * const a = await Deno.connect({ port: relay.addr.port });
 * const b = await Deno.connect({ port: relay.addr.port });
 * while (relay.connectionCount < 2) await new Promise((r) => setTimeout(r, 5));
 * await a.write(encodeFrame(0x90, new Uint8Array([7])));
 * const got = new Uint8Array(6);
 * let n = 0;
 * while (n < 6) n += (await b.read(got.subarray(n))) ?? 6;
 * assert.deepEqual([...got], [0, 0, 0, 2, 0x90, 7]);
 * a.close();
 * b.close();
 * await relay.close();
 * ```
 */
export function startRawRelay(options: RawRelayOptions): RawRelay {
  const listener = Deno.listen({
    hostname: options.hostname ?? "127.0.0.1",
    port: options.port,
    transport: "tcp",
  });
  const peers = new Set<RelayPeer>();
  const all = new Set<RelayPeer>();
  const maxQueueBytes = options.maxQueueBytes ?? 4 * 1024 * 1024;
  let closing = false;
  const acceptLoop = (async () => {
    try {
      for await (const conn of listener) {
        conn.setNoDelay(true);
        const peer = new RelayPeer(conn, peers, maxQueueBytes);
        all.add(peer);
        peer.done.then(() => all.delete(peer));
      }
    } catch (error) {
      // A bench relay that cannot accept (out of descriptors) stops accepting, visibly.
      if (!closing) console.error(`raw relay: accept failed, no longer accepting: ${error}`);
    }
  })();
  return {
    addr: listener.addr,
    get connectionCount() {
      return peers.size;
    },
    async close() {
      closing = true;
      listener.close();
      await acceptLoop;
      for (const peer of all) peer.close();
      await Promise.all([...all].map((peer) => peer.done));
    },
  };
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      port: { type: "string", default: "0" },
      hostname: { type: "string", default: "127.0.0.1" },
    },
  });
  const relay = startRawRelay({ hostname: values.hostname, port: Number(values.port) });
  console.log(`raw relay listening on ${relay.addr.hostname}:${relay.addr.port}`);
  const stop = Promise.withResolvers<void>();
  const onSignal = () => stop.resolve();
  Deno.addSignalListener("SIGTERM", onSignal);
  Deno.addSignalListener("SIGINT", onSignal);
  await stop.promise;
  Deno.removeSignalListener("SIGTERM", onSignal);
  Deno.removeSignalListener("SIGINT", onSignal);
  await relay.close();
}
