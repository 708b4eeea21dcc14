/**
 * Where received bytes wait: the bytes the kernel holds in the generator's sockets that the
 * generator has not read yet, beside the bytes it holds in the server's ends of the same
 * connections, sampled from `/proc/net/tcp` a few times a second during a window.
 *
 * A frame's one-way latency includes the time it sits in the receiver's socket. A loop-lag
 * sampler does not see that wait: a loop can keep turning every few ms while its sockets hold
 * tens of ms of traffic. Bytes unread in the generator's sockets are time the generator added,
 * not the server; bytes unread in the server's ends are the server's (issue 24).
 *
 * {@linkcode parseTcpTable} and {@linkcode backlogOf} are pure; {@linkcode ReceiveBacklogSampler}
 * reads `/proc` from its own Worker thread (`receive_backlog_worker.ts`): one read of the table
 * takes ~3 ms of kernel time with 700 sockets open, which on the generator's thread would add
 * to the very latency it measures. Linux only; elsewhere it records nothing.
 *
 * @module
 */

/** One row of `/proc/net/tcp`: the endpoints as `hex-address:hex-port`, queues and inode. */
export interface TcpRow {
  /** Local endpoint as the kernel prints it (`0100007F:1F90`). */
  readonly local: string;
  /** Remote endpoint, same form. */
  readonly remote: string;
  /** Bytes sent and not yet acknowledged. */
  readonly txQueue: number;
  /** Bytes received and not yet read by the socket's owner. */
  readonly rxQueue: number;
  /** The socket's inode (`socket:[inode]` in `/proc/<pid>/fd`). */
  readonly inode: number;
}

/**
 * Parses the text of `/proc/net/tcp` (the header line is skipped).
 *
 * @example
 * ```ts
 * import { parseTcpTable } from "./receive_backlog.ts";
 * import assert from "node:assert/strict";
 *
 * const text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n" +
 *   "   1: 0100007F:CFDE 0100007F:68CB 01 00000010:00000A00 00:00000000 00000000     0        0 4711 1 0\n";
 * assert.deepEqual(parseTcpTable(text), [
 *   { local: "0100007F:CFDE", remote: "0100007F:68CB", txQueue: 16, rxQueue: 2560, inode: 4711 },
 * ]);
 * ```
 */
export function parseTcpTable(text: string): TcpRow[] {
  const rows: TcpRow[] = [];
  const lines = text.split("\n");
  for (let i = 1; i < lines.length; i++) {
    const fields = lines[i].trim().split(/\s+/);
    if (fields.length < 10) continue;
    const queues = fields[4].split(":");
    rows.push({
      local: fields[1],
      remote: fields[2],
      txQueue: parseInt(queues[0], 16),
      rxQueue: parseInt(queues[1], 16),
      inode: Number(fields[9]),
    });
  }
  return rows;
}

/** Unread bytes on each side of one process's loopback connections, at one moment. */
export interface Backlog {
  /** Bytes waiting in the process's own sockets. */
  readonly ownBytes: number;
  /** Bytes waiting in the peers' ends of those connections (on this machine). */
  readonly peerBytes: number;
}

/**
 * Sums the unread bytes of the sockets in `inodes` and of their peers' ends.
 *
 * @param rows The table ({@linkcode parseTcpTable}).
 * @param inodes The process's sockets.
 *
 * @example
 * ```ts
 * import { backlogOf, type TcpRow } from "./receive_backlog.ts";
 * import assert from "node:assert/strict";
 *
 * const rows: TcpRow[] = [
 *   { local: "A:1", remote: "A:2", txQueue: 0, rxQueue: 3000, inode: 7 }, // the generator's
 *   { local: "A:2", remote: "A:1", txQueue: 3000, rxQueue: 40, inode: 8 }, // the server's end
 *   { local: "A:5", remote: "A:6", txQueue: 0, rxQueue: 999, inode: 9 }, // someone else's
 * ];
 * assert.deepEqual(backlogOf(rows, new Set([7])), { ownBytes: 3000, peerBytes: 40 });
 * ```
 */
export function backlogOf(rows: readonly TcpRow[], inodes: ReadonlySet<number>): Backlog {
  let ownBytes = 0;
  const peers = new Set<string>();
  for (const row of rows) {
    if (!inodes.has(row.inode)) continue;
    ownBytes += row.rxQueue;
    peers.add(`${row.remote}>${row.local}`);
  }
  let peerBytes = 0;
  for (const row of rows) {
    if (peers.has(`${row.local}>${row.remote}`)) peerBytes += row.rxQueue;
  }
  return { ownBytes, peerBytes };
}

/** The mean and the worst sample of a window, each side, bytes, and what they mean in time. */
export interface BacklogFigures {
  /** Samples taken. */
  readonly samples: number;
  /** The generator's own sockets: mean over the samples, bytes. */
  readonly generatorMeanBytes: number;
  /** The generator's own sockets: largest sample, bytes. */
  readonly generatorMaxBytes: number;
  /** The servers' ends: mean over the samples, bytes. */
  readonly serverMeanBytes: number;
  /** The servers' ends: largest sample, bytes. */
  readonly serverMaxBytes: number;
  /**
   * Mean time a received byte waited in the generator's sockets, ms: mean unread bytes over
   * the bytes it read per second (Little's law); absent when no rate was given.
   */
  readonly generatorWaitMs?: number;
  /** The same in the servers' ends. */
  readonly serverWaitMs?: number;
}

/** Bytes per second each side read over a window, to turn unread bytes into time. */
export interface ReadRates {
  /** What this process read from its sockets. */
  readonly ownBytesPerSecond: number;
  /** What the peers read from their ends. */
  readonly peerBytesPerSecond: number;
}

/** How often the table is sampled, ms. */
export const BACKLOG_SAMPLE_MS = 100;

/** Most samples a window keeps per side (a 60 s window at 100 ms is 600). */
export const BACKLOG_MAX_SAMPLES = 4096;

/**
 * The memory the sampler and its Worker share: `control` = [window epoch, samples taken this
 * epoch, stop]; `samples` = the generator's side then the server's, `BACKLOG_MAX_SAMPLES` each.
 */
export interface BacklogShared {
  /** [epoch, samples, stop]. */
  readonly control: Int32Array;
  /** Bytes per sample: generator's side at `i`, server's at `BACKLOG_MAX_SAMPLES + i`. */
  readonly samples: Float64Array;
}

/** Views over one shared buffer of a {@linkcode ReceiveBacklogSampler}. */
export function backlogShared(buffer: SharedArrayBuffer): BacklogShared {
  return {
    control: new Int32Array(buffer, 0, 4),
    samples: new Float64Array(buffer, 16, 2 * BACKLOG_MAX_SAMPLES),
  };
}

/** Bytes of the buffer {@linkcode backlogShared} views. */
const SHARED_BYTES = 16 + 2 * BACKLOG_MAX_SAMPLES * 8;

/**
 * Samples this process's receive backlog and its peers' while a window runs, from a Worker.
 *
 * @example
 * ```ts
 * import { ReceiveBacklogSampler } from "./receive_backlog.ts";
 * import assert from "node:assert/strict";
 *
 * const sampler = new ReceiveBacklogSampler();
 * sampler.start();
 * await new Promise((r) => setTimeout(r, 200));
 * const figures = sampler.finish();
 * sampler.stop();
 * // On Linux the window was sampled; elsewhere there is nothing to say.
 * assert.ok(figures === undefined || figures.samples >= 1);
 * ```
 */
export class ReceiveBacklogSampler {
  readonly #shared = backlogShared(new SharedArrayBuffer(SHARED_BYTES));
  #worker: Worker | undefined;

  /** Starts a new window: the Worker (started on first use) samples from now on. */
  start(): void {
    this.#worker ??= this.#spawn();
    const control = this.#shared.control;
    Atomics.store(control, 1, 0);
    Atomics.add(control, 0, 1);
  }

  /**
   * The window's figures since {@linkcode start}, or `undefined` if nothing was sampled.
   *
   * @param rates What each side read per second over the window, for the waits in ms.
   */
  finish(rates?: ReadRates): BacklogFigures | undefined {
    const { control, samples } = this.#shared;
    const taken = Math.min(BACKLOG_MAX_SAMPLES, Atomics.load(control, 1));
    // A new epoch makes the Worker start over: nothing more lands in this window's slots.
    Atomics.add(control, 0, 1);
    Atomics.store(control, 1, 0);
    if (taken === 0) return undefined;
    const generator = samples.slice(0, taken);
    const server = samples.slice(BACKLOG_MAX_SAMPLES, BACKLOG_MAX_SAMPLES + taken);
    const generatorMeanBytes = mean(generator);
    const serverMeanBytes = mean(server);
    return {
      samples: taken,
      generatorMeanBytes: Math.round(generatorMeanBytes),
      generatorMaxBytes: Math.max(...generator),
      serverMeanBytes: Math.round(serverMeanBytes),
      serverMaxBytes: Math.max(...server),
      ...(rates === undefined ? {} : {
        generatorWaitMs: waitMs(generatorMeanBytes, rates.ownBytesPerSecond),
        serverWaitMs: waitMs(serverMeanBytes, rates.peerBytesPerSecond),
      }),
    };
  }

  /** Stops the Worker. */
  stop(): void {
    Atomics.store(this.#shared.control, 2, 1);
    this.#worker?.terminate();
    this.#worker = undefined;
  }

  #spawn(): Worker {
    const worker = new Worker(new URL("./receive_backlog_worker.ts", import.meta.url), {
      type: "module",
    });
    worker.postMessage({ buffer: this.#shared.control.buffer, intervalMs: BACKLOG_SAMPLE_MS });
    return worker;
  }
}

function mean(values: Float64Array): number {
  let sum = 0;
  for (const value of values) sum += value;
  return sum / values.length;
}

/** Unread bytes over the read rate, ms, to 0.1 ms (0 when nothing was read). */
function waitMs(meanBytes: number, bytesPerSecond: number): number {
  return bytesPerSecond > 0 ? Math.round(meanBytes / bytesPerSecond * 10_000) / 10 : 0;
}
