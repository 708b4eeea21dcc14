/**
 * The steadiness check of issue 24: the sealed cluster held at 80 % of its confirmed maximum
 * for one long window (60 s in full mode) must keep p99.9 one-way latency ≤ 50 ms and its event
 * loop must never pause over 20 ms. A short relay probe can pass while players still see a
 * periodic hitch; this window is long enough to catch one.
 *
 * {@linkcode judgeSteadiness} is pure (one window in, a verdict out); the bench runs the load.
 *
 * @module
 */

import { LatencyHistogram } from "./latency_histogram.ts";
import type { WindowResult } from "./load_job.ts";
import type { BacklogFigures } from "./receive_backlog.ts";
import { STALL_MS, type WriteDelayFigures } from "./server_lag.ts";

/** Largest acceptable p99.9 one-way latency, ms. */
export const STEADY_P999_MS = 50;

/** Share of the confirmed maximum the check runs at. */
export const STEADY_LOAD_SHARE = 0.8;

/** What one steadiness window showed, and its verdict. */
export interface SteadinessResult {
  /** Clients held. */
  readonly clients: number;
  /** Length of the window, ms. */
  readonly windowMs: number;
  /** 99th and 99.9th percentile one-way latency, ms. */
  readonly p99Ms: number;
  /** 99.9th percentile, ms. */
  readonly p999Ms: number;
  /** Largest one-way latency, ms. */
  readonly maxMs: number;
  /** received / R·(R−1)·hz. */
  readonly deliveredRatio: number;
  /** The cluster's lag samples over 20 ms (`undefined`: not measured). */
  readonly serverStalls?: number;
  /** The cluster's worst lag as a bucket bound, ms (`null`: over the largest bound). */
  readonly serverLagMaxMs?: number | null;
  /** The generator's worst lag, ms. */
  readonly generatorLagMaxMs?: number;
  /** Bytes left unread in the generator's sockets and in the cluster's ends, sampled. */
  readonly receiveBacklog?: BacklogFigures;
  /** The cluster's write delays over the window. */
  readonly writeDelay?: WriteDelayFigures;
  /** `true` when the generator stalled: the window says nothing about the server. */
  readonly generatorFault: boolean;
  /** Both conditions hold (and the window was the server's). */
  readonly pass: boolean;
  /** Why not. */
  readonly reasons: readonly string[];
}

/**
 * Judges one steadiness window.
 *
 * @param clients Clients held.
 * @param hz Sends per client per second.
 * @param window The measured window (latency buckets, lag figures).
 *
 * @example A window with one 30 ms cluster pause fails, whatever its latency
 * ```ts
 * import { judgeSteadiness } from "./steadiness.ts";
 * import assert from "node:assert/strict";
 *
 * const window = {
 *   durationMs: 60_000, sent: 0, skipped: 0, received: 2 * 1 * 20 * 60, receivedPerSecond: 40,
 *   p50Ms: 1, p99Ms: 2, maxMs: 3, latencyBuckets: [[100, 2400]] as [number, number][],
 *   openClients: 2, generator: { pid: 1, cpuPercent: 1, rssBytes: 1 }, servers: [],
 *   serverLag: { samples: 12000, stalls: 1, maxBoundMs: 50 },
 * };
 * const verdict = judgeSteadiness(2, 20, window);
 * assert.equal(verdict.pass, false);
 * assert.deepEqual(verdict.reasons, ["cluster loop paused over 20 ms 1 time(s) (worst ≤50 ms)"]);
 * ```
 */
export function judgeSteadiness(
  clients: number,
  hz: number,
  window: WindowResult,
): SteadinessResult {
  const histogram = new LatencyHistogram();
  histogram.merge(window.latencyBuckets, window.maxMs * 1000);
  const p999Ms = histogram.percentileMicros(99.9) / 1000;
  const p99Ms = histogram.percentileMicros(99) / 1000;
  const expected = clients * (clients - 1) * hz;
  const deliveredRatio = expected === 0 ? 0 : window.receivedPerSecond / expected;
  const reasons: string[] = [];
  if (p999Ms > STEADY_P999_MS) reasons.push(`p99.9 ${p999Ms} ms > ${STEADY_P999_MS} ms`);
  const lag = window.serverLag;
  if (lag === undefined) reasons.push("the cluster's event-loop lag was not measured");
  else if (lag.stalls > 0) {
    const worst = lag.maxBoundMs === null ? "over 2.5 s" : `≤${lag.maxBoundMs} ms`;
    reasons.push(`cluster loop paused over ${STALL_MS} ms ${lag.stalls} time(s) (worst ${worst})`);
  }
  const generatorFault = window.generatorFault === true;
  if (generatorFault) reasons.push("the generator stalled: re-run");
  return {
    clients,
    windowMs: window.durationMs,
    p99Ms,
    p999Ms,
    maxMs: window.maxMs,
    deliveredRatio: Math.round(deliveredRatio * 10000) / 10000,
    ...(lag === undefined ? {} : { serverStalls: lag.stalls, serverLagMaxMs: lag.maxBoundMs }),
    ...(window.generatorLag === undefined ? {} : { generatorLagMaxMs: window.generatorLag.maxMs }),
    ...(window.receiveBacklog === undefined ? {} : { receiveBacklog: window.receiveBacklog }),
    ...(window.serverWriteDelay === undefined ? {} : { writeDelay: window.serverWriteDelay }),
    generatorFault,
    pass: reasons.length === 0,
    reasons,
  };
}
