/**
 * An event-loop lag sampler: a timer every few ms that reports how much later than asked it
 * fired. A turn that blocks the loop (a long task, a GC pause, a starved process) shows up as
 * one late sample of about its length. The servers' `/metrics` histogram and the bench
 * generator's per-window stall check both read it, so "lag" means the same thing in both.
 *
 * Its timer is unref'd where the runtime allows (Deno): it never keeps a process alive.
 *
 * @module
 */

/**
 * Samples timer lateness.
 *
 * @example
 * ```ts
 * import { EventLoopLagSampler } from "./event_loop_lag.ts";
 * import assert from "node:assert/strict";
 *
 * const lateness: number[] = [];
 * const sampler = new EventLoopLagSampler(2, (lateMs) => lateness.push(lateMs));
 * const until = performance.now() + 30;
 * while (performance.now() < until) { /* block the loop for 30 ms *\/ }
 * await new Promise((resolve) => setTimeout(resolve, 10));
 * sampler.stop();
 * assert.ok(Math.max(...lateness) >= 20);
 * ```
 */
export class EventLoopLagSampler {
  readonly #intervalMs: number;
  readonly #onSample: (lateMs: number) => void;
  readonly #timer: ReturnType<typeof setInterval>;
  #expected: number;

  /**
   * Starts sampling.
   *
   * @param intervalMs How often to sample, ms.
   * @param onSample Called with each sample's lateness, ms (0 when on time).
   */
  constructor(intervalMs: number, onSample: (lateMs: number) => void) {
    this.#intervalMs = intervalMs;
    this.#onSample = onSample;
    this.#expected = performance.now() + intervalMs;
    const timer = setInterval(() => this.#sample(), intervalMs);
    if (typeof Deno !== "undefined") Deno.unrefTimer(timer);
    this.#timer = timer;
  }

  #sample(): void {
    const now = performance.now();
    this.#onSample(Math.max(0, now - this.#expected));
    this.#expected = now + this.#intervalMs;
  }

  /** Stops sampling (idempotent). */
  stop(): void {
    clearInterval(this.#timer);
  }
}
