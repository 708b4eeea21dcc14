// This module is browser compatible.
/**
 * The headline search: the largest client count R a server sustains at 20 Hz. A run passes
 * when its p99 one-way latency is at most 50 ms and at least 97 % of the expected
 * R·(R−1)·hz frames per second arrive ({@linkcode judgeRelay}); {@linkcode MaxClientsSearch}
 * proposes the next R to try from the verdicts so far: geometric growth until a failure,
 * then bisection down to a resolution, within a fixed number of probes. Sans-I/O: the runner
 * runs the probes.
 *
 * It never proposes an R outside `[min, max]`, never more than `maxProbes` probes, and never
 * the same R twice.
 *
 * @module
 */

/** The sustained-load criterion of issue 9. */
export interface SustainCriterion {
  /**
   * Largest acceptable p99 one-way latency, ms.
   *
   * @default {50}
   */
  readonly maxP99Ms?: number;
  /**
   * Smallest acceptable share of the expected frames per second.
   *
   * @default {0.97}
   */
  readonly minDeliveredRatio?: number;
}

/** The figures of one run (or the median of several) that the verdict needs. */
export interface RelayFigures {
  /** Clients. */
  readonly clients: number;
  /** Sends per client per second. */
  readonly hz: number;
  /** Frames received per second, all clients together. */
  readonly receivedPerSecond: number;
  /** 99th percentile one-way latency, ms. */
  readonly p99Ms: number;
}

/** A verdict with its reasons. */
export interface RelayVerdict {
  /** `true` if both conditions hold. */
  readonly pass: boolean;
  /** R·(R−1)·hz. */
  readonly expectedPerSecond: number;
  /** received / expected. */
  readonly deliveredRatio: number;
  /** Why it failed (empty when it passed). */
  readonly reasons: readonly string[];
}

/**
 * Judges one relay run against the criterion.
 *
 * @param figures The run's figures.
 * @param criterion Bounds (issue 9's by default).
 *
 * @example
 * ```ts
 * import { judgeRelay } from "./max_clients_search.ts";
 * import assert from "node:assert/strict";
 *
 * const ok = judgeRelay({ clients: 11, hz: 20, receivedPerSecond: 2180, p99Ms: 12 });
 * assert.equal(ok.pass, true);
 * assert.equal(ok.expectedPerSecond, 2200);
 * const slow = judgeRelay({ clients: 11, hz: 20, receivedPerSecond: 2200, p99Ms: 80 });
 * assert.deepEqual(slow.reasons, ["p99 80 ms > 50 ms"]);
 * ```
 */
export function judgeRelay(figures: RelayFigures, criterion: SustainCriterion = {}): RelayVerdict {
  const maxP99 = criterion.maxP99Ms ?? 50;
  const minRatio = criterion.minDeliveredRatio ?? 0.97;
  const expected = figures.clients * (figures.clients - 1) * figures.hz;
  const ratio = expected === 0 ? 0 : figures.receivedPerSecond / expected;
  const reasons: string[] = [];
  if (figures.p99Ms > maxP99) reasons.push(`p99 ${figures.p99Ms} ms > ${maxP99} ms`);
  if (ratio < minRatio) {
    reasons.push(`delivered ${(ratio * 100).toFixed(1)} % < ${(minRatio * 100).toFixed(0)} %`);
  }
  return {
    pass: reasons.length === 0,
    expectedPerSecond: expected,
    deliveredRatio: ratio,
    reasons,
  };
}

/**
 * The median of some numbers (the mean of the middle two for an even count).
 *
 * @param values At least one number.
 * @throws {RangeError} If `values` is empty.
 *
 * @example
 * ```ts
 * import { median } from "./max_clients_search.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(median([3, 1, 2]), 2);
 * assert.equal(median([4, 1, 2, 3]), 2.5);
 * ```
 */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError("median of no values");
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Options of {@linkcode MaxClientsSearch}. */
export interface MaxClientsSearchOptions {
  /** First R to try. */
  readonly start: number;
  /** Smallest R worth trying (≥ 2). */
  readonly min: number;
  /** Largest R allowed. */
  readonly max: number;
  /**
   * Growth factor before the first failure.
   *
   * @default {1.3}
   */
  readonly growth?: number;
  /**
   * Stop bisecting when the bracket is within this share of the passing R (or 2 clients).
   *
   * @default {0.05}
   */
  readonly resolution?: number;
  /**
   * Most probes.
   *
   * @default {8}
   */
  readonly maxProbes?: number;
}

/**
 * Proposes client counts to probe, from pass/fail verdicts.
 *
 * @example A server that sustains up to 130 clients
 * ```ts
 * import { MaxClientsSearch } from "./max_clients_search.ts";
 * import assert from "node:assert/strict";
 *
 * const search = new MaxClientsSearch({ start: 100, min: 2, max: 1000 });
 * const tried: number[] = [];
 * for (let r = search.next(); r !== undefined; r = search.next()) {
 *   tried.push(r);
 *   search.record(r, r <= 130);
 * }
 * assert.deepEqual(tried, [100, 130, 169, 150, 140, 135]);
 * assert.equal(search.best, 130);
 * ```
 */
export class MaxClientsSearch {
  readonly #min: number;
  readonly #max: number;
  readonly #growth: number;
  readonly #resolution: number;
  readonly #maxProbes: number;
  #next: number | undefined;
  #pass: number | undefined;
  #fail: number | undefined;
  #probes = 0;
  readonly #tried = new Set<number>();

  /**
   * @param options Range, growth, resolution and probe budget.
   * @throws {RangeError} If the range is empty or a factor is out of range.
   */
  constructor(options: MaxClientsSearchOptions) {
    if (!(options.min >= 2 && options.min <= options.max)) {
      throw new RangeError(`need 2 <= min <= max, got ${options.min}..${options.max}`);
    }
    const growth = options.growth ?? 1.3;
    if (!(growth > 1)) throw new RangeError(`growth must be > 1, got ${growth}`);
    this.#min = Math.ceil(options.min);
    this.#max = Math.floor(options.max);
    this.#growth = growth;
    this.#resolution = options.resolution ?? 0.05;
    this.#maxProbes = options.maxProbes ?? 8;
    this.#next = this.#clamp(options.start);
  }

  /** The largest R that passed so far. */
  get best(): number | undefined {
    return this.#pass;
  }

  /** The smallest R that failed so far. */
  get firstFailure(): number | undefined {
    return this.#fail;
  }

  /** The next R to probe, or `undefined` when the search is done. */
  next(): number | undefined {
    if (this.#probes >= this.#maxProbes) return undefined;
    const r = this.#next;
    return r === undefined || this.#tried.has(r) ? undefined : r;
  }

  /**
   * Records a probe's verdict and plans the next one.
   *
   * @param clients The R probed.
   * @param pass Its verdict.
   */
  record(clients: number, pass: boolean): void {
    this.#probes++;
    this.#tried.add(clients);
    if (pass) this.#pass = Math.max(this.#pass ?? 0, clients);
    else this.#fail = Math.min(this.#fail ?? Infinity, clients);
    this.#next = this.#plan();
  }

  #plan(): number | undefined {
    const pass = this.#pass;
    const fail = this.#fail;
    if (fail === undefined) {
      // Only passes so far: grow.
      if (pass === undefined || pass >= this.#max) return undefined;
      return this.#clamp(Math.max(pass + 1, Math.round(pass * this.#growth)));
    }
    if (pass === undefined) {
      // Only failures: shrink fast.
      if (fail <= this.#min) return undefined;
      return this.#clamp(Math.min(fail - 1, Math.round(fail / 2)));
    }
    const gap = fail - pass;
    if (gap <= Math.max(2, pass * this.#resolution)) return undefined;
    return this.#clamp(Math.round((pass + fail) / 2));
  }

  #clamp(r: number): number {
    return Math.min(this.#max, Math.max(this.#min, Math.round(r)));
  }
}

/**
 * Factors of the steps down after failed confirmations: 5 %, then 10 %, then 15 % (down to 0.73
 * of the best probe in four runs). The first step is the search's own resolution, so a best probe
 * that a long run finds just over the edge costs one step of that size, not 10 %.
 */
const CONFIRM_STEPS = [0.95, 0.9, 0.85] as const;

/**
 * The client counts to confirm, in order, until one holds: the best probe, then each step down
 * ({@linkcode CONFIRM_STEPS}) while it stays at or above `min`.
 *
 * @param best The best count the probes passed.
 * @param min The smallest count worth confirming.
 * @returns At most four counts, decreasing.
 *
 * @example
 * ```ts
 * import { confirmationCandidates } from "./max_clients_search.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(confirmationCandidates(700, 2), [700, 665, 599, 509]);
 * assert.deepEqual(confirmationCandidates(700, 600), [700, 665]);
 * ```
 */
export function confirmationCandidates(best: number, min: number): number[] {
  const out = [best];
  for (const factor of CONFIRM_STEPS) {
    const last = out[out.length - 1];
    const next = Math.round(last * factor);
    if (next < min || next >= last) break;
    out.push(next);
  }
  return out;
}
