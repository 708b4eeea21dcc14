/**
 * The relay and echo scenarios over connected clients. Relay: every client sends a probe frame
 * at `hz` (paced by {@linkcode SendSchedule}), the server fans each out to all other clients,
 * and every arrival is counted with its one-way latency. Echo: every client keeps `inflight`
 * probes outstanding through the echo plugin and sends a new one for each answer (round-trip
 * latency). Both warm up, then measure consecutive windows with {@linkcode WindowMeter}.
 *
 * Sender and receivers live in this one process, so one-way latency compares two readings of
 * one clock. It must never stop by itself before its windows are done, and never leave its
 * timer running.
 *
 * @module
 */

import type { BenchConnection } from "./bench_connection.ts";
import type { WindowedRun, WindowResult } from "./load_job.ts";
import {
  ECHO_COMMAND,
  probeFrame,
  probeNowMs,
  readProbeSentMs,
  RELAY_COMMAND,
} from "./probe_frame.ts";
import { SendSchedule } from "./send_schedule.ts";
import { FRAME_HEADER_BYTES } from "../shared/protocol/frame.ts";
import { WindowMeter } from "./window_meter.ts";
import {
  lagBetween,
  parseLagBuckets,
  scrapeMetrics,
  WRITE_DELAY_METRIC,
  writeDelayBetween,
} from "./server_lag.ts";

/** Sender tick, ms: a tenth of a 20 Hz period, so sends are spread over 10 slots. */
const TICK_MS = 5;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function openCount(conns: readonly BenchConnection[]): number {
  let open = 0;
  for (const conn of conns) if (conn.isOpen) open++;
  return open;
}

/** Where a load's windows are measured, and how. */
export interface MeasureOptions {
  /** Server processes to measure (CPU %, RSS). */
  readonly serverPids: readonly number[];
  /** The server's `/metrics`, for its event-loop lag per window. */
  readonly serverMetricsUrl?: string;
  /**
   * Measure a window again when the generator stalled in it. Off for one of several generator
   * processes sharing a load: their windows must stay aligned.
   *
   * @default {true}
   */
  readonly rerunStalled?: boolean;
}

/**
 * Runs the warm-up, then each window, and returns every window's result. A window in which the
 * generator itself stalled is kept (marked) and measured again, at most `run.windows` extra
 * times, so the verdict rests on windows that measured the server. With a metrics URL, the
 * server's own lag is read just before and after each window.
 */

/** A window with the server's lag and, for a cluster, its write delays, from two scrapes. */
function withServerFigures(window: WindowResult, before: string, after: string): WindowResult {
  const writesBefore = parseLagBuckets(before, WRITE_DELAY_METRIC);
  const writesAfter = parseLagBuckets(after, WRITE_DELAY_METRIC);
  return {
    ...window,
    serverLag: lagBetween(parseLagBuckets(before), parseLagBuckets(after)),
    ...(writesAfter.size === 0
      ? {}
      : { serverWriteDelay: writeDelayBetween(writesBefore, writesAfter) }),
  };
}

async function measureWindows(
  run: WindowedRun,
  meter: WindowMeter,
  conns: readonly BenchConnection[],
  options: MeasureOptions,
): Promise<WindowResult[]> {
  const serverMetricsUrl = options.serverMetricsUrl;
  const maxReruns = options.rerunStalled === false ? 0 : run.windows;
  await sleep(run.warmupMs);
  const results: WindowResult[] = [];
  let clean = 0;
  let reruns = 0;
  try {
    while (clean < run.windows) {
      const before = serverMetricsUrl === undefined
        ? undefined
        : await scrapeMetrics(serverMetricsUrl);
      meter.start();
      await sleep(run.windowMs);
      const window = meter.finish(openCount(conns));
      const result = before === undefined || serverMetricsUrl === undefined
        ? window
        : withServerFigures(window, before, await scrapeMetrics(serverMetricsUrl));
      results.push(result);
      if (result.generatorFault === true && reruns < maxReruns) {
        reruns++;
        console.error(
          `window ${results.length}: generator stalled ${result.generatorLag?.maxMs} ms; re-run`,
        );
      } else clean++;
    }
  } finally {
    meter.stop();
  }
  return results;
}

/**
 * Runs the relay scenario on connected clients.
 *
 * @param conns The clients (index = sender id).
 * @param scenario Rate and windows.
 * @param measure Server processes and metrics, re-run policy.
 * @returns One result per window, re-run windows included (marked `generatorFault`).
 */
export async function runRelay(
  conns: readonly BenchConnection[],
  scenario: WindowedRun & { readonly hz: number },
  measure: MeasureOptions,
): Promise<WindowResult[]> {
  const meter = new WindowMeter(measure.serverPids);
  const histogram = meter.histogram;
  // One visitor for every connection (told which by its context): the scanner's call site
  // stays monomorphic, which per-connection closures would not let it be.
  // A run per read, walked here with the read time and the count in locals: at millions of
  // frames per second the generator must cost far less per frame than the server.
  const visitRun = (view: DataView, start: number, end: number, conn: BenchConnection) => {
    if (!meter.measuring) return;
    const readMs = conn.lastReadMs;
    let received = 0;
    for (let pos = start; pos < end; pos += FRAME_HEADER_BYTES + view.getUint32(pos)) {
      const type = pos + FRAME_HEADER_BYTES;
      if (view.getUint8(type) !== RELAY_COMMAND) continue;
      histogram.recordMicros((readMs - readProbeSentMs(view, type)) * 1000);
      received++;
    }
    meter.received += received;
  };
  for (const conn of conns) conn.startReadingRuns(visitRun);
  const schedule = new SendSchedule({ clients: conns.length, hz: scenario.hz });
  const sequence = new Uint32Array(conns.length);
  const start = performance.now();
  let skippedBefore = 0;
  const send = (client: number): void => {
    const frame = probeFrame(RELAY_COMMAND, probeNowMs(), client, sequence[client]++);
    if (conns[client].send(frame) && meter.measuring) meter.sent++;
  };
  const timer = setInterval(() => {
    schedule.due(performance.now() - start, send);
    if (schedule.skipped !== skippedBefore) {
      if (meter.measuring) meter.skipped += schedule.skipped - skippedBefore;
      skippedBefore = schedule.skipped;
    }
  }, TICK_MS);
  try {
    return await measureWindows(scenario, meter, conns, measure);
  } finally {
    clearInterval(timer);
  }
}

/**
 * Runs the echo scenario on connected clients: each keeps `inflight` probes outstanding.
 *
 * @param conns The clients.
 * @param scenario Requests in flight per client and windows.
 * @param measure Server processes and metrics, re-run policy.
 * @returns One result per window (`received` = answers, latency = round trip).
 */
export async function runEcho(
  conns: readonly BenchConnection[],
  scenario: WindowedRun & { readonly inflight: number },
  measure: MeasureOptions,
): Promise<WindowResult[]> {
  const meter = new WindowMeter(measure.serverPids);
  const histogram = meter.histogram;
  conns.forEach((conn, client) => {
    let sequence = 0;
    conn.startReading((view, offset) => {
      if (view.getUint8(offset) !== ECHO_COMMAND) return;
      if (meter.measuring) {
        meter.received++;
        histogram.recordMicros((conn.lastReadMs - readProbeSentMs(view, offset)) * 1000);
      }
      // Answer received: the next request goes out in the same turn's batch.
      if (conn.send(probeFrame(ECHO_COMMAND, conn.lastReadMs, client, sequence++))) {
        if (meter.measuring) meter.sent++;
      }
    });
    for (let i = 0; i < scenario.inflight; i++) {
      conn.send(probeFrame(ECHO_COMMAND, probeNowMs(), client, sequence++));
    }
  });
  return await measureWindows(scenario, meter, conns, measure);
}
