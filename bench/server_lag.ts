/**
 * A server's event-loop lag over one measured window, from its `/metrics`: the generator reads
 * the cumulative `sustenet_event_loop_lag_seconds` histogram just before and just after each
 * window, and the difference says how often the server's loop was late and by about how much
 * (to the histogram's bucket bounds). With the generator's own lag beside it, a window's tail
 * is attributed to the side that stalled.
 *
 * Parsing and subtraction are pure; {@linkcode scrapeLagBuckets} is the one fetch.
 *
 * @module
 */

/** The lag histogram's name on `/metrics`. */
const LAG_METRIC = "sustenet_event_loop_lag_seconds_bucket";

/** The cluster's write-delay histogram (queued to written, per write) on `/metrics`. */
export const WRITE_DELAY_METRIC = "sustenet_cluster_write_delay_seconds_bucket";

/** Lag above this is a stall, ms (issue 24's steadiness bound). */
export const STALL_MS = 20;

/** Cumulative bucket counts by upper bound in seconds (`Infinity` for `+Inf`). */
export type LagBuckets = ReadonlyMap<number, number>;

/** What a server's loop did over one window. */
export interface ServerLagFigures {
  /** Lag samples taken in the window. */
  readonly samples: number;
  /** Samples later than {@linkcode STALL_MS}. */
  readonly stalls: number;
  /**
   * Upper bound of the highest bucket that gained a sample, ms: the window's worst lag was at
   * most this; `null` when it is the unbounded bucket (over the largest bound).
   */
  readonly maxBoundMs: number | null;
}

/**
 * Reads a histogram's cumulative buckets out of Prometheus text: the event-loop lag's, or
 * another one named by `metric`.
 *
 * @param text A `/metrics` body.
 * @param metric The `…_bucket` series to read.
 * @returns The buckets (empty if the server exports no such histogram).
 *
 * @example
 * ```ts
 * import { parseLagBuckets } from "./server_lag.ts";
 * import assert from "node:assert/strict";
 *
 * const text = 'sustenet_event_loop_lag_seconds_bucket{le="0.02"} 7\n' +
 *   'sustenet_event_loop_lag_seconds_bucket{le="+Inf"} 9\n';
 * assert.deepEqual([...parseLagBuckets(text)], [[0.02, 7], [Infinity, 9]]);
 * ```
 */
export function parseLagBuckets(text: string, metric: string = LAG_METRIC): LagBuckets {
  const buckets = new Map<number, number>();
  const line = new RegExp(`^${metric}\\{le="([^"]+)"\\} (\\d+)$`, "gm");
  for (const [, le, count] of text.matchAll(line)) {
    buckets.set(le === "+Inf" ? Infinity : Number(le), Number(count));
  }
  return buckets;
}

/**
 * The lag of the window between two scrapes.
 *
 * @param before Buckets read at the window's start.
 * @param after Buckets read at its end.
 * @returns Samples, stalls over {@linkcode STALL_MS} and the worst lag's bound.
 *
 * @example One sample between 20 and 50 ms in the window
 * ```ts
 * import { lagBetween } from "./server_lag.ts";
 * import assert from "node:assert/strict";
 *
 * const before = new Map([[0.005, 100], [0.02, 100], [0.05, 100], [Infinity, 100]]);
 * const after = new Map([[0.005, 300], [0.02, 300], [0.05, 301], [Infinity, 301]]);
 * assert.deepEqual(lagBetween(before, after), { samples: 201, stalls: 1, maxBoundMs: 50 });
 * ```
 */
export function lagBetween(before: LagBuckets, after: LagBuckets): ServerLagFigures {
  const window = bucketWindow(before, after);
  if (window.count <= 0) return { samples: 0, stalls: 0, maxBoundMs: 0 };
  const stallBound = window.bounds.find((b) => b * 1000 >= STALL_MS);
  const stalls = stallBound === undefined ? 0 : window.count - window.gained(stallBound);
  return { samples: window.count, stalls, maxBoundMs: window.boundMs(1) };
}

/** What a cumulative histogram gained between two scrapes. */
interface BucketWindow {
  /** Upper bounds, ascending (`Infinity` last). */
  readonly bounds: readonly number[];
  /** Observations at or under `bound` in the window. */
  readonly gained: (bound: number) => number;
  /** Observations in the window. */
  readonly count: number;
  /**
   * The bound, ms, of the lowest bucket holding `share` of the window's observations (1: the
   * worst one's); `null` when that is the unbounded bucket.
   */
  readonly boundMs: (share: number) => number | null;
}

function bucketWindow(before: LagBuckets, after: LagBuckets): BucketWindow {
  const bounds = [...after.keys()].sort((a, b) => a - b);
  const gained = (bound: number) => (after.get(bound) ?? 0) - (before.get(bound) ?? 0);
  const count = gained(Infinity);
  const boundMs = (share: number): number | null => {
    const bound = bounds.find((b) => gained(b) >= share * count);
    return bound === undefined || bound === Infinity ? null : Math.round(bound * 1e6) / 1000;
  };
  return { bounds, gained, count, boundMs };
}

/** What a cluster's write path did over one window (`sustenet_cluster_write_delay_seconds`). */
export interface WriteDelayFigures {
  /** Writes to clients in the window. */
  readonly writes: number;
  /** Upper bound of the bucket holding the 99th-percentile write, ms (`null`: over the largest). */
  readonly p99BoundMs: number | null;
  /** Upper bound of the highest bucket that gained a write, ms (`null`: over the largest). */
  readonly maxBoundMs: number | null;
}

/**
 * The window's write delays from two scrapes of the cluster's write-delay buckets.
 *
 * @example
 * ```ts
 * import { writeDelayBetween } from "./server_lag.ts";
 * import assert from "node:assert/strict";
 *
 * const before = new Map([[0.005, 10], [0.05, 10], [Infinity, 10]]);
 * const after = new Map([[0.005, 1000], [0.05, 1009], [Infinity, 1010]]);
 * assert.deepEqual(writeDelayBetween(before, after), { writes: 1000, p99BoundMs: 5, maxBoundMs: null });
 * ```
 */
export function writeDelayBetween(before: LagBuckets, after: LagBuckets): WriteDelayFigures {
  const window = bucketWindow(before, after);
  if (window.count <= 0) return { writes: 0, p99BoundMs: 0, maxBoundMs: 0 };
  return { writes: window.count, p99BoundMs: window.boundMs(0.99), maxBoundMs: window.boundMs(1) };
}

/**
 * Reads a server's `/metrics` text (loopback only).
 *
 * @param url The server's metrics URL, e.g. `http://127.0.0.1:6281/metrics`.
 * @throws {Error} If the server does not answer 200.
 */
export async function scrapeMetrics(url: string): Promise<string> {
  const response = await fetch(url);
  const text = await response.text();
  if (!response.ok) throw new Error(`GET ${url}: ${response.status}`);
  return text;
}
