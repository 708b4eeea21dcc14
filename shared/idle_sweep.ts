// This module is browser compatible.

/**
 * {@linkcode IdleSweep}: one interval timer shared by many connections. It tells each that saw
 * no traffic for a whole period to give back the memory it can rebuild (write buffers, cipher
 * contexts), and checks their idle timeouts: a timer per connection would cost an idle player
 * more than its session does.
 *
 * It never calls a member more than once per period, holds a member only until it leaves or is
 * removed, and runs its timer only while it has members, so an idle process (or a test) has no
 * timer left behind.
 *
 * @module
 */

/** What an {@linkcode IdleSweep} calls. */
export interface IdleSweepMember {
  /**
   * Called once per period with the time (`performance.now()`, read once per period). Returns
   * `true` to leave the sweep (e.g. a connection that trimmed itself, and adds itself back on
   * its next traffic), `false` to stay.
   */
  sweep(now: number): boolean;
}

/**
 * Calls `sweep()` on each member once per period, dropping those that answer `true`.
 *
 * @example
 * ```ts
 * import { IdleSweep } from "./idle_sweep.ts";
 * import assert from "node:assert/strict";
 *
 * const sweep = new IdleSweep(10);
 * const trimmed = Promise.withResolvers<void>();
 * let calls = 0;
 * sweep.add({
 *   sweep: () => {
 *     if (++calls < 2) return false; // busy in the first period
 *     trimmed.resolve();
 *     return true;
 *   },
 * });
 * await trimmed.promise;
 * assert.equal(sweep.size, 0); // and its timer has stopped
 * ```
 */
export class IdleSweep {
  /** The period, ms. */
  readonly periodMs: number;
  readonly #members = new Set<IdleSweepMember>();
  #timer: ReturnType<typeof setInterval> | undefined;

  /**
   * @param periodMs Time between two calls of a member, ms (a positive integer).
   * @throws {RangeError} If `periodMs` is not a positive integer.
   */
  constructor(periodMs: number) {
    if (!Number.isSafeInteger(periodMs) || periodMs < 1) {
      throw new RangeError(`periodMs must be a positive integer, got ${periodMs}`);
    }
    this.periodMs = periodMs;
  }

  /** Members waiting for their next call. */
  get size(): number {
    return this.#members.size;
  }

  /** Adds a member (again); its first call comes within one or two periods. */
  add(member: IdleSweepMember): void {
    this.#members.add(member);
    this.#timer ??= setInterval(this.#tick, this.periodMs);
  }

  /** Removes a member (a closed connection); stops the timer once none is left. */
  delete(member: IdleSweepMember): void {
    if (this.#members.delete(member) && this.#members.size === 0) this.#stop();
  }

  readonly #tick = (): void => {
    const now = performance.now();
    for (const member of this.#members) {
      if (member.sweep(now)) this.#members.delete(member);
    }
    if (this.#members.size === 0) this.#stop();
  };

  #stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

const shared = new Map<number, IdleSweep>();

/**
 * The process-wide sweep of a period: connections with the same setting share one timer.
 *
 * @param periodMs The period, ms (a positive integer).
 * @returns The one {@linkcode IdleSweep} of that period in this process.
 *
 * @example
 * ```ts
 * import { sharedIdleSweep } from "./idle_sweep.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(sharedIdleSweep(1000), sharedIdleSweep(1000));
 * assert.equal(sharedIdleSweep(1000).periodMs, 1000);
 * ```
 */
export function sharedIdleSweep(periodMs: number): IdleSweep {
  let sweep = shared.get(periodMs);
  if (sweep === undefined) {
    sweep = new IdleSweep(periodMs);
    shared.set(periodMs, sweep);
  }
  return sweep;
}
