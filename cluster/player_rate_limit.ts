// This module is browser compatible.
/**
 * What one authenticated player may send the cluster, sans-I/O (time passed in): token buckets
 * for plugin commands (messages and bytes) and for every other packet (Move, Ping, …), and the
 * policy that turns a player who keeps exceeding them into a kick. The cluster asks it about
 * each frame before decoding it, so a flood is dropped before any plugin sees it: one player's
 * flood never reaches a plugin's queue, never costs the other players a broadcast, and never
 * costs more memory than the frames the transport already bounds.
 *
 * The policy, precisely:
 * - A plugin command (type 0x80–0xFF) passes when the player holds one command token and as
 *   many byte tokens as the frame's length field (type byte + payload); otherwise it is dropped
 *   and spends nothing. Any other packet passes when the player holds one move token.
 *   LeaveCluster and Error always pass (they end the session).
 * - A drop starts a throttle episode (verdict `throttle`, the cluster logs it once) unless one
 *   is running; an episode ends once {@linkcode FLOOD_QUIET_MS} pass without a drop.
 * - A drop at least `floodKickMs` after its episode started gives `kick` (once): the player kept
 *   exceeding its limits (at least one drop every second) for that long.
 * - The cluster also stops reading a player's socket after each drop (TCP backpressure) for
 *   {@linkcode PlayerRateLimit.pauseMs}: {@linkcode THROTTLE_PAUSE_MS} in the episode's first
 *   second, {@linkcode FLOOD_PAUSE_MS} after, so the excess mostly stays in the kernel.
 *
 * It must never read a clock, never allocate per frame, and never let a dropped frame spend
 * tokens (a throttled player recovers at the configured rate).
 *
 * @module
 */

import { TokenBucket } from "../shared/token_bucket.ts";

/** LeaveCluster and Error: never dropped, they end the session. */
const LEAVE_CLUSTER = 0x28;
const ERROR = 0x03;
/** The first plugin command type. */
const FIRST_PLUGIN_COMMAND = 0x80;

/**
 * A throttle episode ends once this long passes without a drop, in ms.
 *
 * @example
 * ```ts
 * import { FLOOD_QUIET_MS, PlayerRateLimit } from "./player_rate_limit.ts";
 * import assert from "node:assert/strict";
 *
 * const limit = new PlayerRateLimit({ movesPerS: 0.1, movesBurst: 1 });
 * limit.admit(0x2a, 25, 0);
 * limit.admit(0x2a, 25, 0); // dropped: an episode starts
 * assert.equal(limit.throttledSince(FLOOD_QUIET_MS - 1), 0);
 * assert.equal(limit.throttledSince(FLOOD_QUIET_MS), undefined); // quiet long enough: over
 * ```
 */
export const FLOOD_QUIET_MS = 1000;

/**
 * How long the cluster stops reading a player's socket after dropping one of its frames, in
 * the first second of its throttling, in ms: the rest of a flood waits in the kernel and TCP
 * slows the sender, so throttling costs the cluster at most one read (64 KiB) or one sealed
 * record (≤ 1 MiB + 16 by default) per pause, and the other players keep their event-loop
 * turns. An honest client never drops a frame, so never pauses.
 *
 * @example
 * ```ts
 * import { PlayerRateLimit, THROTTLE_PAUSE_MS } from "./player_rate_limit.ts";
 * import assert from "node:assert/strict";
 *
 * const limit = new PlayerRateLimit({ movesPerS: 0.1, movesBurst: 1 });
 * limit.admit(0x2a, 25, 0);
 * assert.equal(limit.admit(0x2a, 25, 0), "throttle");
 * assert.equal(limit.pauseMs(0), THROTTLE_PAUSE_MS); // the first second of throttling
 * ```
 */
export const THROTTLE_PAUSE_MS = 100;

/**
 * The read pause after a drop once a player's throttling has lasted a second, in ms (below
 * {@linkcode FLOOD_QUIET_MS}, so a flood resumed after a pause is still the same episode).
 *
 * @example
 * ```ts
 * import { FLOOD_PAUSE_MS, PlayerRateLimit } from "./player_rate_limit.ts";
 * import assert from "node:assert/strict";
 *
 * // A player still flooding after a second of throttling is paused longer.
 * const limit = new PlayerRateLimit({ movesPerS: 0.1, movesBurst: 1 });
 * for (const t of [0, 0, 600, 1200]) limit.admit(0x2a, 25, t);
 * assert.equal(limit.pauseMs(1200), FLOOD_PAUSE_MS);
 * ```
 */
export const FLOOD_PAUSE_MS = 500;

/**
 * The reason a player kicked for flooding gets in DisconnectCluster (plugins' `onLeave` hears
 * `kicked: ` and this).
 *
 * @example
 * ```ts
 * import { FLOOD_KICK_REASON } from "./player_rate_limit.ts";
 * import { definePlugin } from "../shared/plugin.ts";
 * import assert from "node:assert/strict";
 *
 * // A plugin that counts flood kicks among the players who leave.
 * let floodKicks = 0;
 * const watch = definePlugin({
 *   onLeave(_ctx, _player, reason) {
 *     if (reason === `kicked: ${FLOOD_KICK_REASON}`) floodKicks++;
 *   },
 * });
 * assert.ok(watch.onLeave);
 * assert.equal(floodKicks, 0);
 * ```
 */
export const FLOOD_KICK_REASON = "rate limit exceeded";

/**
 * Limits of one player's inbound traffic (`[cluster]` keys `player_*`).
 *
 * @example
 * ```ts
 * import { type PlayerRateLimits, playerRateLimitsOf } from "./player_rate_limit.ts";
 * import assert from "node:assert/strict";
 *
 * // A slower game: fewer commands; the limits not given keep their defaults.
 * const limits: PlayerRateLimits = playerRateLimitsOf({ commandsPerS: 50 });
 * assert.equal(limits.commandsPerS, 50);
 * assert.throws(() => playerRateLimitsOf({ movesPerS: 0 }), RangeError);
 * ```
 */
export interface PlayerRateLimits {
  /** Plugin commands per second (`player_commands_per_s`). */
  readonly commandsPerS: number;
  /** Plugin commands in one burst (`player_commands_burst`). */
  readonly commandsBurst: number;
  /** Plugin command bytes (frame length: type + payload) per second. */
  readonly commandBytesPerS: number;
  /** Plugin command bytes in one burst; a larger frame is always dropped. */
  readonly commandBytesBurst: number;
  /** Move, Ping and every other non-plugin packet, per second (`player_moves_per_s`). */
  readonly movesPerS: number;
  /** Those packets in one burst (`player_moves_burst`). */
  readonly movesBurst: number;
  /** A player still over its limits this long after its throttling began is kicked, in ms. */
  readonly floodKickMs: number;
}

/**
 * The defaults, chosen to never touch an honest client: a 60 Hz game sending a Move per frame
 * and a Ping a second uses 61 of 120 packets/s; three plugin commands of up to 300 bytes per
 * frame use 180 of 200 commands/s and 54 of 64 KiB/s. The moves of a 4-second stall (and one
 * command per frame) fit the bursts. 64 KiB/s of commands is 8× a 64 kbit/s voice stream.
 *
 * @example
 * ```ts
 * import { DEFAULT_PLAYER_RATE_LIMITS, playerRateLimitsOf } from "./player_rate_limit.ts";
 * import assert from "node:assert/strict";
 *
 * // Start from the defaults and tighten one (e.g. for `startCluster({ playerRateLimits })`).
 * const strict = { ...DEFAULT_PLAYER_RATE_LIMITS, movesPerS: 30 };
 * assert.deepEqual(playerRateLimitsOf(strict), strict);
 * assert.deepEqual(playerRateLimitsOf({}), DEFAULT_PLAYER_RATE_LIMITS);
 * ```
 */
export const DEFAULT_PLAYER_RATE_LIMITS: PlayerRateLimits = Object.freeze({
  commandsPerS: 200,
  commandsBurst: 400,
  commandBytesPerS: 65_536,
  commandBytesBurst: 131_072,
  movesPerS: 120,
  movesBurst: 240,
  floodKickMs: 3000,
});

/**
 * The limits with defaults filled in and each checked.
 *
 * @param limits Any subset of the limits.
 * @returns Complete, frozen limits.
 * @throws {RangeError} Naming the first limit that is not a finite number > 0.
 *
 * @example
 * ```ts
 * import { playerRateLimitsOf } from "./player_rate_limit.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(playerRateLimitsOf({ movesPerS: 30 }).movesPerS, 30);
 * assert.throws(() => playerRateLimitsOf({ commandsBurst: 0 }), RangeError);
 * ```
 */
export function playerRateLimitsOf(limits: Partial<PlayerRateLimits> = {}): PlayerRateLimits {
  const out = { ...DEFAULT_PLAYER_RATE_LIMITS, ...limits };
  for (const [name, value] of Object.entries(out)) {
    if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
      throw new RangeError(`player rate limit ${name} must be a finite number > 0, got ${value}`);
    }
  }
  return Object.freeze(out);
}

/**
 * What to do with one frame: deliver it (`pass`), drop it (`drop`), drop it and log that this
 * player's throttling began (`throttle`), or drop it and kick the player (`kick`, given once).
 *
 * @example
 * ```ts
 * import { PlayerRateLimit, type RateVerdict } from "./player_rate_limit.ts";
 * import assert from "node:assert/strict";
 *
 * // A Move flood: one passes, the next starts throttling, the rest are dropped quietly.
 * const limit = new PlayerRateLimit({ movesPerS: 0.1, movesBurst: 1 });
 * const verdicts: RateVerdict[] = [0, 0, 0].map((t) => limit.admit(0x2a, 25, t));
 * assert.deepEqual(verdicts, ["pass", "throttle", "drop"]);
 * ```
 */
export type RateVerdict = "pass" | "drop" | "throttle" | "kick";

/**
 * One player's buckets and throttle state.
 *
 * @example A flood: throttled at once, kicked once it has lasted `floodKickMs`
 * ```ts
 * import { PlayerRateLimit } from "./player_rate_limit.ts";
 * import assert from "node:assert/strict";
 *
 * const limit = new PlayerRateLimit({ commandsPerS: 10, commandsBurst: 2, floodKickMs: 500 });
 * const verdicts = [];
 * for (let t = 0; t <= 600; t += 50) verdicts.push(limit.admit(0x80, 10, t), limit.admit(0x80, 10, t));
 * assert.deepEqual(verdicts.slice(0, 4), ["pass", "pass", "throttle", "drop"]);
 * assert.equal(verdicts.filter((v) => v === "kick").length, 1);
 * assert.ok(limit.dropped > 10);
 * ```
 */
export class PlayerRateLimit {
  readonly #commands: TokenBucket;
  readonly #commandBytes: TokenBucket;
  readonly #moves: TokenBucket;
  readonly #floodKickMs: number;
  #episodeStartMs: number | undefined;
  #lastDropMs = 0;
  #kicked = false;
  #dropped = 0;
  #droppedBytes = 0;

  /**
   * Creates full buckets.
   *
   * @param limits The limits; missing ones take {@linkcode DEFAULT_PLAYER_RATE_LIMITS}.
   * @throws {RangeError} If a limit is not a finite number > 0.
   */
  constructor(limits: Partial<PlayerRateLimits> = {}) {
    const l = playerRateLimitsOf(limits);
    this.#commands = new TokenBucket({ ratePerS: l.commandsPerS, burst: l.commandsBurst });
    this.#commandBytes = new TokenBucket({
      ratePerS: l.commandBytesPerS,
      burst: l.commandBytesBurst,
    });
    this.#moves = new TokenBucket({ ratePerS: l.movesPerS, burst: l.movesBurst });
    this.#floodKickMs = l.floodKickMs;
  }

  /** Frames dropped so far. */
  get dropped(): number {
    return this.#dropped;
  }

  /** Bytes (frame lengths) dropped so far. */
  get droppedBytes(): number {
    return this.#droppedBytes;
  }

  /**
   * When the running throttle episode began, or undefined when none is running at `nowMs`.
   *
   * @param nowMs The current time in ms.
   */
  throttledSince(nowMs: number): number | undefined {
    if (this.#episodeStartMs !== undefined && nowMs - this.#lastDropMs >= FLOOD_QUIET_MS) {
      this.#episodeStartMs = undefined;
    }
    return this.#episodeStartMs;
  }

  /**
   * How long to stop reading this player after a drop at `nowMs`, in ms: 100 in the first
   * second of its throttling, 500 after (0 when it is not throttled).
   *
   * @param nowMs The current time in ms.
   * @returns The pause in ms.
   *
   * @example
   * ```ts
   * import { PlayerRateLimit } from "./player_rate_limit.ts";
   * import assert from "node:assert/strict";
   *
   * const limit = new PlayerRateLimit({ movesPerS: 0.5, movesBurst: 1 });
   * assert.equal(limit.pauseMs(0), 0);
   * assert.equal(limit.admit(0x2a, 25, 0), "pass");
   * assert.equal(limit.admit(0x2a, 25, 0), "throttle");
   * assert.equal(limit.pauseMs(0), 100);
   * assert.equal(limit.admit(0x2a, 25, 900), "drop");
   * assert.equal(limit.admit(0x2a, 25, 1500), "drop");
   * assert.equal(limit.pauseMs(1500), 500);
   * ```
   */
  pauseMs(nowMs: number): number {
    const since = this.throttledSince(nowMs);
    if (since === undefined) return 0;
    return nowMs - since >= FLOOD_QUIET_MS ? FLOOD_PAUSE_MS : THROTTLE_PAUSE_MS;
  }

  /**
   * Decides one frame's fate and spends its tokens if it passes.
   *
   * @param type The frame's packet type byte.
   * @param frameBytes The frame's length field (type byte + payload).
   * @param nowMs The current time in ms (monotonic).
   * @returns The verdict.
   *
   * @example Plugin commands and moves have separate buckets; leaving always passes
   * ```ts
   * import { PlayerRateLimit } from "./player_rate_limit.ts";
   * import assert from "node:assert/strict";
   *
   * const limit = new PlayerRateLimit({ movesPerS: 1, movesBurst: 1, commandBytesBurst: 100 });
   * assert.equal(limit.admit(0x2a, 25, 0), "pass"); // Move
   * assert.equal(limit.admit(0x04, 5, 0), "throttle"); // Ping: the move bucket is empty
   * assert.equal(limit.admit(0x80, 100, 0), "pass"); // a command, its own buckets
   * assert.equal(limit.admit(0x80, 1, 0), "drop"); // no byte left
   * assert.equal(limit.admit(0x28, 1, 0), "pass"); // LeaveCluster
   * assert.equal(limit.admit(0x2a, 25, 1000), "pass"); // refilled
   * assert.deepEqual([limit.dropped, limit.droppedBytes], [2, 6]);
   * ```
   */
  admit(type: number, frameBytes: number, nowMs: number): RateVerdict {
    if (type >= FIRST_PLUGIN_COMMAND) {
      // Both buckets must hold enough before either is spent: a drop spends nothing.
      if (
        this.#commands.tokens(nowMs) >= 1 && this.#commandBytes.tokens(nowMs) >= frameBytes
      ) {
        this.#commands.take(1, nowMs);
        this.#commandBytes.take(frameBytes, nowMs);
        return "pass";
      }
    } else if (type === LEAVE_CLUSTER || type === ERROR || this.#moves.take(1, nowMs)) {
      return "pass";
    }
    return this.#drop(frameBytes, nowMs);
  }

  #drop(frameBytes: number, nowMs: number): RateVerdict {
    this.#dropped++;
    this.#droppedBytes += frameBytes;
    const since = this.throttledSince(nowMs);
    this.#lastDropMs = nowMs;
    if (since === undefined) {
      this.#episodeStartMs = nowMs;
      return "throttle";
    }
    if (!this.#kicked && nowMs - since >= this.#floodKickMs) {
      this.#kicked = true;
      return "kick";
    }
    return "drop";
  }
}
