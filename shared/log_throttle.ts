// This module is browser compatible.
/**
 * Bounds how often one kind of log line is written, sans-I/O (time passed in): a flood of
 * refusals, throttles or plugin lines becomes one line per interval that says how many were
 * left out, instead of thousands of lines per second that stall the event loop and bury
 * everything else.
 *
 * It must never hold more than `maxKeys` keys (an attacker choosing keys, e.g. by address,
 * cannot grow it without bound) and never lose a count silently: what was left out is
 * reported with the next admitted line of its key or by {@linkcode LogThrottle.drain}.
 *
 * @module
 */

/**
 * Options of {@linkcode LogThrottle}.
 *
 * @example
 * ```ts
 * import { LogThrottle, type LogThrottleOptions } from "./log_throttle.ts";
 * import assert from "node:assert/strict";
 *
 * // Two lines per key every 10 s; the next line after the window says how many were left out.
 * const options: LogThrottleOptions = { intervalMs: 10_000, linesPerInterval: 2 };
 * const throttle = new LogThrottle(options);
 * const key = "ticket flood 10.0.0.1";
 * const got = [0, 1, 2, 3].map((t) => throttle.admit(key, t));
 * assert.deepEqual(got, [0, 0, null, null]);
 * assert.equal(throttle.admit(key, 10_000), 2);
 * ```
 */
export interface LogThrottleOptions {
  /**
   * Length of one window in ms (> 0).
   * @default {10000}
   */
  readonly intervalMs?: number;
  /**
   * Lines of one key written per window; the rest are counted.
   * @default {1}
   */
  readonly linesPerInterval?: number;
  /**
   * Most keys tracked at once; past it the oldest key's window is forgotten (its left-out
   * count goes to {@linkcode LogThrottle.forgotten}).
   * @default {1024}
   */
  readonly maxKeys?: number;
}

interface Window {
  startMs: number;
  written: number;
  suppressed: number;
}

/**
 * Decides per key whether a log line is written now, and carries the count of lines left out.
 *
 * @example A flood of one line per ms, one written per second
 * ```ts
 * import { LogThrottle } from "./log_throttle.ts";
 * import assert from "node:assert/strict";
 *
 * const throttle = new LogThrottle({ intervalMs: 1000 });
 * const written: [number, number][] = [];
 * for (let t = 0; t < 2500; t++) {
 *   const suppressed = throttle.admit("refused 10.0.0.1", t);
 *   if (suppressed !== null) written.push([t, suppressed]);
 * }
 * // Each written line says how many were left out since the previous one.
 * assert.deepEqual(written, [[0, 0], [1000, 999], [2000, 999]]);
 * assert.deepEqual(throttle.drain(3000), [["refused 10.0.0.1", 499]]);
 * ```
 */
export class LogThrottle {
  readonly #intervalMs: number;
  readonly #lines: number;
  readonly #maxKeys: number;
  readonly #windows = new Map<string, Window>();
  #forgotten = 0;

  /**
   * Creates a throttle.
   *
   * @param options Window length, lines per window and the key bound.
   * @throws {RangeError} If an option is not a positive number (integers for counts).
   */
  constructor(options: LogThrottleOptions = {}) {
    this.#intervalMs = options.intervalMs ?? 10_000;
    this.#lines = options.linesPerInterval ?? 1;
    this.#maxKeys = options.maxKeys ?? 1024;
    if (!Number.isFinite(this.#intervalMs) || this.#intervalMs <= 0) {
      throw new RangeError(`intervalMs must be a finite number > 0, got ${this.#intervalMs}`);
    }
    if (!Number.isInteger(this.#lines) || this.#lines < 1) {
      throw new RangeError(`linesPerInterval must be an integer >= 1, got ${this.#lines}`);
    }
    if (!Number.isInteger(this.#maxKeys) || this.#maxKeys < 1) {
      throw new RangeError(`maxKeys must be an integer >= 1, got ${this.#maxKeys}`);
    }
  }

  /** Lines left out whose key was forgotten before they could be reported. */
  get forgotten(): number {
    return this.#forgotten;
  }

  /**
   * Whether to write a line of `key` at `nowMs`.
   *
   * @param key What the line is about (e.g. `"ticket flood 10.0.0.1"`).
   * @param nowMs The current time in ms.
   * @returns `null` to leave the line out (it is counted), or the number of lines of this key
   * left out before it (to write in the line).
   */
  admit(key: string, nowMs: number): number | null {
    let window = this.#windows.get(key);
    if (window !== undefined && nowMs - window.startMs >= this.#intervalMs) {
      const suppressed = window.suppressed;
      this.#windows.delete(key);
      window = { startMs: nowMs, written: 1, suppressed: 0 };
      this.#remember(key, window);
      return suppressed;
    }
    if (window === undefined) {
      this.#remember(key, { startMs: nowMs, written: 1, suppressed: 0 });
      return 0;
    }
    if (window.written < this.#lines) {
      window.written++;
      return 0;
    }
    window.suppressed++;
    return null;
  }

  /**
   * Ends every window that closed by `nowMs` and returns the counts nobody reported yet, so a
   * timer can write "… and N more" after a flood stops.
   *
   * @param nowMs The current time in ms.
   * @returns `[key, left out]` pairs with a count > 0.
   */
  drain(nowMs: number): [string, number][] {
    const out: [string, number][] = [];
    for (const [key, window] of this.#windows) {
      if (nowMs - window.startMs < this.#intervalMs) continue;
      this.#windows.delete(key);
      if (window.suppressed > 0) out.push([key, window.suppressed]);
    }
    return out;
  }

  #remember(key: string, window: Window): void {
    if (this.#windows.size >= this.#maxKeys) {
      const [oldest, old] = this.#windows.entries().next().value as [string, Window];
      this.#windows.delete(oldest);
      this.#forgotten += old.suppressed;
    }
    this.#windows.set(key, window);
  }
}
