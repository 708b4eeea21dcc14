// This module is browser compatible.
/**
 * The bound on what a plugin host has sent its plugin and the plugin has not handled yet
 * (sans-I/O: the host calls {@linkcode PluginQueueBound.admit} per player message and
 * {@linkcode PluginQueueBound.handled} when the plugin acknowledges). Past the bound a new
 * player message is refused (the host drops it and counts it), so a plugin that is slow, or
 * flooded by one player, never makes the host's memory grow; and each player may hold only a
 * share of the queue, so one flooding player cannot take every other player's place.
 *
 * The plugin handles messages in the order they were sent, so acknowledgements pop the oldest
 * first: the bound knows exactly whose messages are still queued. It must never allocate per
 * message (one ring of `maxMessages` entries) and never refuse anything but player messages
 * (ticks, joins and leaves are not counted here).
 *
 * @module
 */

/**
 * Options of {@linkcode PluginQueueBound}.
 *
 * @example
 * ```ts
 * import type { PluginQueueBoundOptions } from "./plugin_queue_bound.ts";
 * import assert from "node:assert/strict";
 *
 * const options: PluginQueueBoundOptions = { maxMessages: 8192, maxBytes: 1 << 23 };
 * assert.equal(options.maxMessages, 8192);
 * ```
 */
export interface PluginQueueBoundOptions {
  /** Messages queued at most. */
  readonly maxMessages: number;
  /** Payload bytes queued at most. */
  readonly maxBytes: number;
  /**
   * Messages one player may have queued at most.
   * @default {max(64, maxMessages / 8)}
   */
  readonly maxPerPlayer?: number;
}

/**
 * Counts queued player messages, in total and per player, and says whether one more fits.
 *
 * @example One player's flood is refused; another player still gets in
 * ```ts
 * import { PluginQueueBound } from "./plugin_queue_bound.ts";
 * import assert from "node:assert/strict";
 *
 * const bound = new PluginQueueBound({ maxMessages: 8, maxBytes: 1024, maxPerPlayer: 2 });
 * assert.equal(bound.admit(1, 10), true);
 * assert.equal(bound.admit(1, 10), true);
 * assert.equal(bound.admit(1, 10), false); // player 1's share is full
 * assert.equal(bound.admit(2, 10), true);
 * bound.handled(1, 10); // the oldest (player 1's first) was handled
 * assert.equal(bound.admit(1, 10), true);
 * assert.equal(bound.queued, 3);
 * ```
 */
export class PluginQueueBound {
  readonly #maxMessages: number;
  readonly #maxBytes: number;
  readonly #maxPerPlayer: number;
  // A ring of the queued messages' senders, oldest at #head.
  readonly #ring: Uint32Array;
  #head = 0;
  #queued = 0;
  #bytes = 0;
  readonly #perPlayer = new Map<number, number>();

  /**
   * @param options The bounds.
   * @throws {RangeError} If a bound is not a positive integer.
   */
  constructor(options: PluginQueueBoundOptions) {
    const { maxMessages, maxBytes } = options;
    const maxPerPlayer = options.maxPerPlayer ?? Math.max(64, Math.floor(maxMessages / 8));
    for (
      const [name, value] of [["maxMessages", maxMessages], ["maxBytes", maxBytes], [
        "maxPerPlayer",
        maxPerPlayer,
      ]] as const
    ) {
      if (!Number.isInteger(value) || value <= 0) {
        throw new RangeError(`${name} must be a positive integer, got ${value}`);
      }
    }
    this.#maxMessages = maxMessages;
    this.#maxBytes = maxBytes;
    this.#maxPerPlayer = Math.min(maxPerPlayer, maxMessages);
    this.#ring = new Uint32Array(maxMessages);
  }

  /** Messages queued now. */
  get queued(): number {
    return this.#queued;
  }

  /** Payload bytes queued now. */
  get queuedBytes(): number {
    return this.#bytes;
  }

  /**
   * Counts one message of `client` if it fits.
   *
   * @param client The sender (u32).
   * @param bytes Its payload length.
   * @returns `true` if counted (send it), `false` if a bound is reached (drop it).
   */
  admit(client: number, bytes: number): boolean {
    if (this.#queued >= this.#maxMessages || this.#bytes + bytes > this.#maxBytes) return false;
    const mine = this.#perPlayer.get(client) ?? 0;
    if (mine >= this.#maxPerPlayer) return false;
    this.#perPlayer.set(client, mine + 1);
    this.#ring[(this.#head + this.#queued) % this.#maxMessages] = client;
    this.#queued++;
    this.#bytes += bytes;
    return true;
  }

  /**
   * The plugin handled its oldest `messages` (`bytes` of payload): they leave the queue. A
   * count above what is queued (a confused or lying plugin) empties it, nothing more.
   *
   * @param messages How many.
   * @param bytes Their payload bytes.
   */
  handled(messages: number, bytes: number): void {
    const n = Math.min(messages, this.#queued);
    for (let i = 0; i < n; i++) {
      const client = this.#ring[this.#head];
      this.#head = (this.#head + 1) % this.#maxMessages;
      const left = (this.#perPlayer.get(client) ?? 1) - 1;
      if (left === 0) this.#perPlayer.delete(client);
      else this.#perPlayer.set(client, left);
    }
    this.#queued -= n;
    this.#bytes = this.#queued === 0 ? 0 : Math.max(0, this.#bytes - bytes);
  }
}
