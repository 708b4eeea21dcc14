/**
 * One measurement window of a load run: counters the scenario bumps (sent, received, skipped),
 * a latency histogram, and CPU % / RSS of the generator and of each server process between
 * {@linkcode WindowMeter.start} and {@linkcode WindowMeter.finish}, read from `/proc` at exactly
 * the window's edges, and the generator's own event-loop lag (a timer every
 * {@linkcode LAG_SAMPLE_MS} ms): a window in which the generator itself stalled over
 * `STALL_MS` is marked a generator fault, so its tail is never blamed on the server. It also
 * samples the bytes left unread in the generator's sockets and in the server's ends
 * ({@linkcode ReceiveBacklogSampler}): where a frame's wait sat when no loop stalled.
 *
 * It must never allocate per sample (counters and a fixed histogram only).
 *
 * @module
 */

import { EventLoopLagSampler } from "../shared/event_loop_lag.ts";
import { LatencyHistogram } from "./latency_histogram.ts";
import type { ProcessFigures, WindowResult } from "./load_job.ts";
import {
  type MachineSample,
  machineUsageBetween,
  type ProcessSample,
  sampleMachine,
  sampleProcess,
  usageBetween,
} from "./process_stats.ts";
import { PROBE_FRAME_BYTES } from "./probe_frame.ts";
import { ReceiveBacklogSampler } from "./receive_backlog.ts";
import { STALL_MS } from "./server_lag.ts";

/** How often the generator samples its own event-loop lag, ms (as the servers do). */
export const LAG_SAMPLE_MS = 5;

/**
 * Counts one window.
 *
 * @example
 * ```ts
 * import { WindowMeter } from "./window_meter.ts";
 * import assert from "node:assert/strict";
 *
 * const meter = new WindowMeter([]);
 * meter.start();
 * meter.sent += 2;
 * meter.received += 2;
 * meter.histogram.recordMicros(1500);
 * meter.histogram.recordMicros(2500);
 * await new Promise((r) => setTimeout(r, 20));
 * const result = meter.finish(2);
 * meter.stop();
 * assert.equal(result.received, 2);
 * assert.equal(result.p99Ms, 2.496);
 * assert.equal(result.openClients, 2);
 * assert.equal(typeof result.generatorFault, "boolean"); // true if this process stalled
 * ```
 */
export class WindowMeter {
  /** Latencies of this window. */
  readonly histogram: LatencyHistogram = new LatencyHistogram();
  /** Frames sent in this window. */
  sent = 0;
  /** Sends skipped in this window. */
  skipped = 0;
  /** Frames received in this window. */
  received = 0;
  /** `true` between start and finish. */
  measuring = false;
  /** The generator's event-loop lag in this window. */
  readonly lag: LatencyHistogram = new LatencyHistogram();
  readonly #lagSampler: EventLoopLagSampler;
  readonly #backlog: ReceiveBacklogSampler;

  readonly #serverPids: readonly number[];
  #startMs = 0;
  #before: ProcessSample[] = [];
  #machineBefore: MachineSample | undefined;

  /** @param serverPids Server processes to measure beside this one. */
  constructor(serverPids: readonly number[]) {
    this.#serverPids = serverPids;
    this.#backlog = new ReceiveBacklogSampler();
    this.#lagSampler = new EventLoopLagSampler(LAG_SAMPLE_MS, (lateMs) => {
      // A sample due before the window began is late because of what came before it (the
      // window's own start reads /proc), not a stall inside the window.
      if (this.measuring && performance.now() - lateMs >= this.#startMs) {
        this.lag.recordMicros(lateMs * 1000);
      }
    });
    // The slow first-time work of a window's edges, done now rather than at the first window's
    // start: the Worker's start (~40 ms) and the clock-tick lookup (a `getconf` child).
    this.#backlog.start();
    sampleProcess(Deno.pid);
  }

  /** Stops the lag sampler (the meter is done). */
  stop(): void {
    this.#lagSampler.stop();
    this.#backlog.stop();
  }

  /** Resets the counters and reads every process's CPU time. */
  start(): void {
    this.sent = 0;
    this.skipped = 0;
    this.received = 0;
    this.histogram.reset();
    this.lag.reset();
    this.#before = [Deno.pid, ...this.#serverPids].map(sampleProcess);
    this.#machineBefore = sampleMachine();
    this.#startMs = performance.now();
    this.#backlog.start();
    this.measuring = true;
  }

  /**
   * Ends the window and summarises it.
   *
   * @param openClients Clients still connected at the end.
   */
  finish(openClients: number): WindowResult {
    this.measuring = false;
    const durationMs = performance.now() - this.#startMs;
    // Frame bytes only (a sealed record's header and tag are left out): the waits are upper
    // bounds, close for the generator (one record carries dozens of frames), looser for the
    // server (each record it reads carries one frame).
    const receiveBacklog = this.#backlog.finish({
      ownBytesPerSecond: this.received * PROBE_FRAME_BYTES * 1000 / durationMs,
      peerBytesPerSecond: this.sent * PROBE_FRAME_BYTES * 1000 / durationMs,
    });
    const figures: ProcessFigures[] = this.#before.map((before) => {
      const usage = usageBetween(before, sampleProcess(before.pid));
      return {
        pid: before.pid,
        cpuPercent: round(usage.cpuPercent, 1),
        rssBytes: usage.rssBytes,
        waitPercent: round(usage.waitPercent, 1),
      };
    });
    const machine = machineUsageBetween(this.#machineBefore!, sampleMachine());
    const h = this.histogram;
    const lagMaxMs = round(this.lag.maxMicros / 1000, 3);
    return {
      durationMs: round(durationMs, 1),
      sent: this.sent,
      skipped: this.skipped,
      received: this.received,
      receivedPerSecond: Math.round(this.received * 1000 / durationMs),
      p50Ms: h.percentileMicros(50) / 1000,
      p99Ms: h.percentileMicros(99) / 1000,
      maxMs: round(h.maxMicros / 1000, 3),
      latencyBuckets: h.toSparse(),
      openClients,
      generator: figures[0],
      servers: figures.slice(1),
      generatorLag: { p99Ms: this.lag.percentileMicros(99) / 1000, maxMs: lagMaxMs },
      generatorFault: lagMaxMs > STALL_MS,
      ...(receiveBacklog === undefined ? {} : { receiveBacklog }),
      machine: {
        busyPercent: round(machine.busyPercent, 1),
        stealPercent: round(machine.stealPercent, 1),
      },
    };
  }
}

function round(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}
