// This module is browser compatible.
/**
 * When each simulated client sends: every client sends `hz` times per second, spread evenly
 * over the period in `slots` groups (client `i` is in group `i % slots`), so a generator of
 * hundreds of clients sends a steady trickle instead of one burst per period. Sans-I/O: the
 * caller passes the time and a send callback.
 *
 * It never sends a client more than once per slot, and never tries to catch up more than one
 * period of lag (older sends are counted as skipped, so a stalled generator shows up in the
 * results instead of bursting).
 *
 * @module
 */

/** Options of {@linkcode SendSchedule}. */
export interface SendScheduleOptions {
  /** Number of clients (indices 0..clients-1). */
  readonly clients: number;
  /** Sends per client per second. */
  readonly hz: number;
  /**
   * Groups per period.
   *
   * @default {10}
   */
  readonly slots?: number;
}

/**
 * Paces the sends of many clients.
 *
 * @example 4 clients at 10 Hz in 2 slots: 2 clients every 50 ms
 * ```ts
 * import { SendSchedule } from "./send_schedule.ts";
 * import assert from "node:assert/strict";
 *
 * const schedule = new SendSchedule({ clients: 4, hz: 10, slots: 2 });
 * const sent: number[] = [];
 * schedule.due(0, (i) => sent.push(i));
 * assert.deepEqual(sent, [0, 2]);
 * schedule.due(49, (i) => sent.push(i));
 * assert.deepEqual(sent, [0, 2]);
 * schedule.due(50, (i) => sent.push(i));
 * assert.deepEqual(sent, [0, 2, 1, 3]);
 * assert.equal(schedule.sent, 4);
 * ```
 */
export class SendSchedule {
  readonly #clients: number;
  readonly #slots: number;
  readonly #slotMs: number;
  readonly #periodMs: number;
  #next = 0;
  #sent = 0;
  #skipped = 0;

  /**
   * @param options Clients, rate and groups.
   * @throws {RangeError} If a count is not a positive integer or `hz` is not positive.
   */
  constructor(options: SendScheduleOptions) {
    const slots = options.slots ?? 10;
    if (!Number.isSafeInteger(options.clients) || options.clients < 0) {
      throw new RangeError(`clients must be an integer >= 0, got ${options.clients}`);
    }
    if (!Number.isSafeInteger(slots) || slots < 1) {
      throw new RangeError(`slots must be a positive integer, got ${slots}`);
    }
    if (!(options.hz > 0 && Number.isFinite(options.hz))) {
      throw new RangeError(`hz must be a positive number, got ${options.hz}`);
    }
    this.#clients = options.clients;
    this.#slots = slots;
    this.#periodMs = 1000 / options.hz;
    this.#slotMs = this.#periodMs / slots;
  }

  /** Sends made so far. */
  get sent(): number {
    return this.#sent;
  }

  /** Sends dropped because the caller lagged more than one period. */
  get skipped(): number {
    return this.#skipped;
  }

  /** Milliseconds from the schedule's start until the next slot is due. */
  get nextDueMs(): number {
    return this.#next * this.#slotMs;
  }

  /**
   * Calls `send` for every client whose slot is due at `nowMs`.
   *
   * @param nowMs Time since the schedule started, in ms.
   * @param send Called with each client index due.
   * @returns How many sends were made.
   */
  due(nowMs: number, send: (client: number) => void): number {
    const oldest = Math.ceil((nowMs - this.#periodMs) / this.#slotMs);
    if (this.#next < oldest) {
      // More than one period behind: drop the oldest slots rather than bursting.
      for (let slot = this.#next; slot < oldest; slot++) this.#skipped += this.#groupSize(slot);
      this.#next = oldest;
    }
    let made = 0;
    while (this.#next * this.#slotMs <= nowMs) {
      const group = this.#next % this.#slots;
      for (let client = group; client < this.#clients; client += this.#slots) {
        send(client);
        made++;
      }
      this.#next++;
    }
    this.#sent += made;
    return made;
  }

  #groupSize(slot: number): number {
    const group = slot % this.#slots;
    return group < this.#clients ? Math.ceil((this.#clients - group) / this.#slots) : 0;
  }
}
