// This module is browser compatible.
/**
 * A fixed-size ring of the latest samples (the console's charts): pushing past the size
 * overwrites the oldest; memory never grows.
 *
 * @module
 */

/**
 * The latest `size` samples, oldest first on read.
 *
 * @example
 * ```ts
 * import { SampleRing } from "./sample_ring.ts";
 * import assert from "node:assert/strict";
 *
 * const ring = new SampleRing<number>(2);
 * ring.push(1);
 * ring.push(2);
 * ring.push(3);
 * assert.deepEqual(ring.toArray(), [2, 3]);
 * ```
 */
export class SampleRing<T> {
  readonly #items: (T | undefined)[];
  #next = 0;
  #count = 0;

  /**
   * @param size How many samples are kept.
   * @throws {RangeError} If `size` is not a positive integer.
   */
  constructor(readonly size: number) {
    if (!Number.isInteger(size) || size < 1) {
      throw new RangeError(`sample ring size must be a positive integer, got ${size}`);
    }
    this.#items = new Array(size);
  }

  /** Adds a sample, dropping the oldest when full. */
  push(item: T): void {
    this.#items[this.#next] = item;
    this.#next = (this.#next + 1) % this.size;
    if (this.#count < this.size) this.#count++;
  }

  /** The samples, oldest first. */
  toArray(): T[] {
    const out: T[] = [];
    const start = (this.#next - this.#count + this.size) % this.size;
    for (let i = 0; i < this.#count; i++) out.push(this.#items[(start + i) % this.size] as T);
    return out;
  }
}
