// This module is browser compatible.
/**
 * Hands each fragment tick's position batches to the players, degrading by rate, never by
 * backlog: a player whose outgoing queue already holds more than {@linkcode BEHIND_BYTES} (its
 * socket is not keeping up) gets no batch that tick, and once its queue has drained it gets one
 * snapshot of everything in its view instead of the batches it missed. So a slow reader's
 * queue never grows with position updates, and it never stays stale.
 *
 * Sans-I/O: the caller says how many bytes each player has queued and takes the frames.
 *
 * @module
 */

import type { EntityId, TickResult } from "./fragment_grid.ts";

/**
 * Queued bytes above which a player skips a tick's batch: a few ticks of positions at 40
 * neighbours (about 500 bytes a tick), and small next to any queue bound.
 *
 * @example
 * ```ts
 * import { FragmentGrid } from "./fragment_grid.ts";
 * import { BEHIND_BYTES, PositionSender } from "./position_sender.ts";
 * import assert from "node:assert/strict";
 * const grid = new FragmentGrid({ size: 10, tickHz: 20, maxPlayersPerFragment: 8, crowdThreshold: 4 });
 * grid.add(1, { x: 1, y: 0, z: 1 }, 0);
 * grid.add(2, { x: 2, y: 0, z: 1 }, 0);
 * grid.tick(0);
 * const sender = new PositionSender();
 * // Player 1 has exactly BEHIND_BYTES queued: it still gets player 2's move.
 * grid.move(2, { x: 3, y: 0, z: 1 }, 50);
 * sender.send(grid.tick(50), (id) => (id === 1 ? BEHIND_BYTES : 0), () => {});
 * assert.equal(sender.isBehind(1), false);
 * // One byte more and it skips the batch until it has drained.
 * grid.move(2, { x: 4, y: 0, z: 1 }, 100);
 * sender.send(grid.tick(100), (id) => (id === 1 ? BEHIND_BYTES + 1 : 0), () => {});
 * assert.equal(sender.isBehind(1), true);
 * ```
 */
export const BEHIND_BYTES = 32 * 1024;

/**
 * Sends position batches to players, skipping those who are behind and resyncing them.
 *
 * @example
 * ```ts
 * import { FragmentGrid } from "./fragment_grid.ts";
 * import { PositionSender } from "./position_sender.ts";
 * import assert from "node:assert/strict";
 *
 * const grid = new FragmentGrid({ size: 10, tickHz: 20, maxPlayersPerFragment: 8, crowdThreshold: 4 });
 * grid.add(1, { x: 1, y: 0, z: 1 }, 0);
 * grid.add(2, { x: 2, y: 0, z: 1 }, 0);
 * grid.tick(0);
 * const sender = new PositionSender();
 * grid.move(2, { x: 3, y: 0, z: 1 }, 50);
 * const got: number[] = [];
 * // Player 1 is behind: no batch this tick.
 * sender.send(grid.tick(50), (id) => (id === 1 ? 100_000 : 0), (id) => got.push(id));
 * assert.equal(got.length, 0);
 * assert.equal(sender.behind, 1);
 * // Drained: one snapshot of its whole view.
 * sender.send(grid.tick(100), () => 0, (id) => got.push(id));
 * assert.deepEqual(got, [1]);
 * assert.equal(sender.behind, 0);
 * ```
 */
export class PositionSender {
  readonly #behind = new Set<EntityId>();
  readonly #synced = new Set<EntityId>();

  /** Players skipping batches now. */
  get behind(): number {
    return this.#behind.size;
  }

  /**
   * Whether a player is skipping batches (its view's states may be stale until its snapshot).
   *
   * @param player A player.
   */
  isBehind(player: EntityId): boolean {
    return this.#behind.has(player);
  }

  /**
   * Sends one tick's batches.
   *
   * @param result The tick's result (read before the grid changes again).
   * @param queuedBytes A player's queued outgoing bytes, or `undefined` if it is gone.
   * @param send Takes one whole frame for a player.
   * @param maxPayloadBytes Largest batch payload. @default 65535
   */
  send(
    result: TickResult,
    queuedBytes: (player: EntityId) => number | undefined,
    send: (player: EntityId, frame: Uint8Array) => void,
    maxPayloadBytes?: number,
  ): void {
    const synced = this.#synced;
    synced.clear();
    for (const player of this.#behind) {
      const queued = queuedBytes(player);
      if (queued === undefined) {
        this.#behind.delete(player);
      } else if (queued <= BEHIND_BYTES) {
        // Caught up: its whole view now, which includes this tick's updates.
        this.#behind.delete(player);
        synced.add(player);
        for (const frame of result.snapshotFramesFor(player, maxPayloadBytes)) send(player, frame);
      }
    }
    result.forEachBatchFrame((player, frame) => {
      if (synced.has(player) || this.#behind.has(player)) return;
      const queued = queuedBytes(player);
      if (queued === undefined) return;
      if (queued > BEHIND_BYTES) {
        this.#behind.add(player);
        return;
      }
      send(player, frame);
    }, maxPayloadBytes);
  }
}
