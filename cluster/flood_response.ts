/**
 * What the cluster does with a player's frame its {@linkcode PlayerRateLimit} did not pass:
 * counts it, pauses reading that connection (the rest of the flood waits in the kernel, and TCP
 * slows the sender), logs a throttle's start and kicks a lasting flood with DisconnectCluster.
 *
 * It must never log more than a few lines per 10 s however many players flood (the rest are
 * counted and reported once their window closes), and never touch another player's connection.
 *
 * @module
 */

import { LogThrottle } from "../shared/log_throttle.ts";
import { roleLogger } from "../shared/logging.ts";
import { peerLabel } from "../shared/peer_label.ts";
import type { FrameTransport } from "../shared/transport.ts";
import { disconnectFrame } from "./disconnect_frame.ts";
import type { ClusterMetrics } from "./metrics.ts";
import { FLOOD_KICK_REASON, type PlayerRateLimit, type RateVerdict } from "./player_rate_limit.ts";
import type { PlayerView } from "./players.ts";

const logger = roleLogger("cluster");

/** Throttle and flood-kick log lines: at most this many of each per 10 s, the rest counted. */
const FLOOD_LOG_LINES = 5;

/**
 * The player's side of a dropped frame: who it is, and where the cluster notes why it leaves.
 *
 * @example
 * ```ts
 * import type { FloodedPlayer } from "./flood_response.ts";
 * import assert from "node:assert/strict";
 *
 * const player: FloodedPlayer = { session: { clientId: 4 }, leaveReason: undefined };
 * assert.equal(player.session.clientId, 4);
 * ```
 */
export interface FloodedPlayer {
  /** Its session (for the client id). */
  readonly session: { readonly clientId: number };
  /** Set to `kicked: <reason>` when the flood kick closes it. */
  leaveReason: string | undefined;
}

/**
 * Counts, pauses, logs and kicks for the frames players' rate limits drop.
 *
 * @example A dropped frame is counted and the connection paused
 * ```ts
 * import { FloodResponse } from "./flood_response.ts";
 * import { ClusterMetrics } from "./metrics.ts";
 * import { PlayerRateLimit } from "./player_rate_limit.ts";
 * import { PlayerTable } from "./players.ts";
 * import type { FrameTransport } from "../shared/transport.ts";
 * import assert from "node:assert/strict";
 *
 * const metrics = new ClusterMetrics({
 *   players: () => 0,
 *   connections: () => [],
 *   masterLinkState: () => "disabled",
 *   fragments: () => undefined,
 * });
 * const flood = new FloodResponse({ metrics, players: new PlayerTable<FrameTransport>() });
 * const paused: number[] = [];
 * const connection = { pauseReading: (ms: number) => paused.push(ms) } as unknown as FrameTransport;
 * const player = { session: { clientId: 1 }, leaveReason: undefined };
 * flood.dropped("drop", 10, 0, connection, player, new PlayerRateLimit());
 * assert.equal(metrics.messagesThrottled.value, 1);
 * assert.equal(metrics.bytesThrottled.value, 10);
 * assert.equal(paused.length, 1);
 * ```
 */
export class FloodResponse {
  readonly #metrics: Pick<ClusterMetrics, "messagesThrottled" | "bytesThrottled" | "floodKicks">;
  readonly #players: Pick<PlayerView, "get">;
  /** Throttling and flood kicks are logged a few lines per 10 s, with a count of the rest. */
  readonly #log = new LogThrottle({ linesPerInterval: FLOOD_LOG_LINES, maxKeys: 8 });

  /**
   * Creates the response, with its own log throttle.
   *
   * @param options The counters to keep and the players (for their ids in log lines).
   */
  constructor(options: {
    readonly metrics: Pick<ClusterMetrics, "messagesThrottled" | "bytesThrottled" | "floodKicks">;
    readonly players: Pick<PlayerView, "get">;
  }) {
    this.#metrics = options.metrics;
    this.#players = options.players;
  }

  /**
   * Counts a dropped frame; logs a throttle's start (rate-limited); kicks a lasting flood.
   *
   * @param verdict The rate limit's verdict on the frame.
   * @param bytes The frame's size.
   * @param now The time now (monotonic ms).
   * @param connection The player's connection.
   * @param player The player's record.
   * @param limit The player's rate limit.
   */
  dropped(
    verdict: Exclude<RateVerdict, "pass">,
    bytes: number,
    now: number,
    connection: FrameTransport,
    player: FloodedPlayer,
    limit: PlayerRateLimit,
  ): void {
    this.#metrics.messagesThrottled.inc();
    this.#metrics.bytesThrottled.inc(bytes);
    // The rest of the flood waits in the kernel: TCP slows the sender, not us.
    connection.pauseReading(limit.pauseMs(now));
    if (verdict === "drop") return;
    const clientId = player.session.clientId;
    const playerId = this.#players.get(clientId)?.playerId ?? "?";
    if (verdict === "throttle") {
      const left = this.#log.admit("throttle", now);
      if (left === null) return;
      logger.warn(
        "throttling player {playerId} (client {clientId}) from {remote}: over its rate limits, " +
          "excess frames dropped ({left} more such lines left out)",
        { playerId, clientId, remote: peerLabel(connection.remoteAddr), left },
      );
      return;
    }
    this.#metrics.floodKicks.inc();
    player.leaveReason = `kicked: ${FLOOD_KICK_REASON}`;
    const left = this.#log.admit("flood kick", now);
    if (left !== null) {
      logger.warn(
        "kicking player {playerId} (client {clientId}) from {remote}: {reason} for " +
          "{ms} ms, {dropped} frames ({droppedBytes} bytes) dropped ({left} more such lines left out)",
        {
          playerId,
          clientId,
          remote: peerLabel(connection.remoteAddr),
          reason: FLOOD_KICK_REASON,
          ms: Math.round(now - (limit.throttledSince(now) ?? now)),
          dropped: limit.dropped,
          droppedBytes: limit.droppedBytes,
          left,
        },
      );
    }
    connection.send(disconnectFrame(FLOOD_KICK_REASON));
    connection.close();
  }

  /**
   * Writes the counts of lines left out once their window closed (`Infinity`: all of them).
   *
   * @param now The time now (monotonic ms).
   */
  drainLog(now: number): void {
    for (const [what, left] of this.#log.drain(now)) {
      logger.warn("{left} more {what} lines were left out", { left, what });
    }
  }
}
