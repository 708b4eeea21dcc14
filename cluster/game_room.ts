/**
 * The cluster's game core, without sockets: players' plugin commands and moves go to the plugin
 * hosts and (with fragments on) the {@linkcode FragmentGrid}; each tick's interest changes and
 * position updates come out as Spawn / Despawn / MoveBatch frames; plugins' `send`, `broadcast`
 * (to all, a fragment, or `near` a player) and `kick` arrive here as {@linkcode PluginActions}.
 * Players are addressed by {@linkcode ClientId}; every byte leaves through a
 * {@linkcode RoomOutbox}, and time is passed in.
 *
 * It must never touch a connection (the outbox does), never let a plugin's failing move check
 * leave a promise without a handler, and never send a plugin frame above `maxFrameBytes`.
 *
 * @module
 */

import { roleLogger } from "../shared/logging.ts";
import { assertPluginCommand, encodePacket, encodePluginFrame } from "../shared/protocol/codec.ts";
import type { MoveState } from "../shared/protocol/move_state.ts";
import { ErrorCode } from "../shared/protocol/protocol_error.ts";
import {
  type BroadcastOptions,
  type ClientId,
  isPluginMove,
  type PlayerInfo,
} from "../shared/plugin.ts";
import { recordSpan } from "../shared/telemetry.ts";
import {
  FragmentGrid,
  type FragmentGridOptions,
  type FragmentStats,
  type TickResult,
} from "./fragment_grid.ts";
import type { FragmentId } from "./fragment_id.ts";
import { PositionSender } from "./position_sender.ts";
import type { ClusterMetrics } from "./metrics.ts";
import type { PlayerView } from "./players.ts";
import type { PluginActions, PluginHost } from "./plugin_host.ts";

const logger = roleLogger("cluster");

/**
 * Where a {@linkcode GameRoom}'s bytes go: the cluster server implements it over the players'
 * connections. Every method drops what is addressed to a client that is not connected.
 *
 * @example A recording outbox, as tests use
 * ```ts
 * import type { RoomOutbox } from "./game_room.ts";
 * import assert from "node:assert/strict";
 *
 * const sent: string[] = [];
 * const outbox: RoomOutbox = {
 *   send: (client, frame) => sent.push(`${client}: ${frame.length} bytes`),
 *   sendFrame: (client, type) => sent.push(`${client}: type ${type}`),
 *   broadcastFrame: (type) => sent.push(`all: type ${type}`),
 *   sendToEach: (clients, frame) => sent.push(`${[...clients]}: ${frame.length} bytes`),
 *   kick: (client, reason) => sent.push(`${client} kicked: ${reason}`),
 * };
 * outbox.kick(3 as never, "cheating");
 * assert.deepEqual(sent, ["3 kicked: cheating"]);
 * ```
 */
export interface RoomOutbox {
  /** Queues whole encoded frames for one player; the bytes are shared, never modified. */
  send(client: ClientId, frameBytes: Uint8Array): void;
  /** Queues one frame given as type and payload for one player (the payload is copied). */
  sendFrame(client: ClientId, type: number, payload: Uint8Array): void;
  /** Queues one frame, type and payload, for every player but `except` (payload copied). */
  broadcastFrame(type: number, payload: Uint8Array, except?: ClientId): void;
  /** Queues the same encoded frame for each of `clients` but `except`. */
  sendToEach(clients: Iterable<ClientId>, frameBytes: Uint8Array, except?: ClientId): void;
  /**
   * Sends DisconnectCluster(reason) and closes the player's connection (the room has checked
   * that the player is here, counted and logged the kick).
   */
  kick(client: ClientId, reason: string): void;
  /**
   * Bytes waiting in a player's send queue (`undefined` if it is gone). Position batches skip a
   * player that lags and send it one snapshot once drained; without it, nobody ever lags.
   */
  queuedBytes?(client: ClientId): number | undefined;
}

/**
 * The counters a {@linkcode GameRoom} keeps (those of {@linkcode ClusterMetrics}).
 *
 * @example
 * ```ts
 * import type { GameRoomMetrics } from "./game_room.ts";
 * import { ClusterMetrics } from "./metrics.ts";
 * import assert from "node:assert/strict";
 *
 * const metrics: GameRoomMetrics = new ClusterMetrics({
 *   players: () => 0,
 *   connections: () => [],
 *   masterLinkState: () => "disabled",
 *   fragments: () => undefined,
 * });
 * metrics.kicks.inc();
 * assert.equal(metrics.kicks.value, 1);
 * ```
 */
export type GameRoomMetrics = Pick<
  ClusterMetrics,
  "pluginMessages" | "pluginUnhandled" | "movesAccepted" | "movesRejected" | "kicks"
>;

/**
 * Options of {@linkcode GameRoom}.
 *
 * @example
 * ```ts
 * import type { GameRoomOptions } from "./game_room.ts";
 * import assert from "node:assert/strict";
 *
 * const fragments: GameRoomOptions["fragments"] = {
 *   size: 64,
 *   tickHz: 20,
 *   maxPlayersPerFragment: 100,
 *   crowdThreshold: 50,
 * };
 * assert.equal(fragments?.size, 64);
 * ```
 */
export interface GameRoomOptions {
  /** Who is connected (the room reads player ids and presence, never changes the table). */
  readonly players: Pick<PlayerView, "get">;
  /** Where frames and kicks go. */
  readonly outbox: RoomOutbox;
  /** The counters to keep. */
  readonly metrics: GameRoomMetrics;
  /** Largest frame (type byte + payload) a plugin may send; bigger ones are dropped, logged. */
  readonly maxFrameBytes: number;
  /** The fragment grid's options, or undefined for no fragments (moves are only checked). */
  readonly fragments?: FragmentGridOptions;
  /**
   * Monotonic time in ms, read when a plugin's asynchronous move check settles (synchronous
   * calls take their time as an argument).
   */
  readonly clock: () => number;
}

/**
 * The game core: plugin hosts, the fragment grid and the plugin actions, addressed by client id
 * and writing to a {@linkcode RoomOutbox}.
 *
 * @example An unhandled command is answered, a kick reaches the outbox
 * ```ts
 * import { GameRoom, type RoomOutbox } from "./game_room.ts";
 * import { ClusterMetrics } from "./metrics.ts";
 * import { PlayerTable } from "./players.ts";
 * import assert from "node:assert/strict";
 *
 * const players = new PlayerTable<null>();
 * const alice = players.add("alice", null)!.clientId;
 * const sent: Uint8Array[] = [];
 * const kicked: string[] = [];
 * const outbox: RoomOutbox = {
 *   send: (_client, frame) => sent.push(frame),
 *   sendFrame() {},
 *   broadcastFrame() {},
 *   sendToEach() {},
 *   kick: (_client, reason) => kicked.push(reason),
 * };
 * const metrics = new ClusterMetrics({
 *   players: () => players.size,
 *   connections: () => [],
 *   masterLinkState: () => "disabled",
 *   fragments: () => undefined,
 * });
 * const room = new GameRoom({ players, outbox, metrics, maxFrameBytes: 1024, clock: () => 0 });
 * room.message(alice, 0x80, new Uint8Array([1]));
 * assert.equal(metrics.pluginUnhandled.value, 1);
 * assert.equal(sent.length, 1); // Error(Unhandled)
 * room.kick(alice, "afk");
 * assert.deepEqual(kicked, ["afk"]);
 * ```
 */
export class GameRoom implements PluginActions {
  readonly #players: Pick<PlayerView, "get">;
  readonly #outbox: RoomOutbox;
  readonly #metrics: GameRoomMetrics;
  readonly #maxFrameBytes: number;
  readonly #clock: () => number;
  readonly #grid: FragmentGrid | undefined;
  readonly #positions = new PositionSender();
  readonly #hosts: PluginHost[] = [];

  /**
   * Creates an empty room (no plugins; add them with {@linkcode GameRoom.addPlugin}).
   *
   * @param options Players, outbox, counters, frame bound, fragments and clock.
   */
  constructor(options: GameRoomOptions) {
    this.#players = options.players;
    this.#outbox = options.outbox;
    this.#metrics = options.metrics;
    this.#maxFrameBytes = options.maxFrameBytes;
    this.#clock = options.clock;
    this.#grid = options.fragments === undefined ? undefined : new FragmentGrid(options.fragments);
  }

  /** The plugin hosts, in the order they were added (and are called). */
  get plugins(): readonly PluginHost[] {
    return this.#hosts;
  }

  /** Whether the room has a fragment grid. */
  get hasFragments(): boolean {
    return this.#grid !== undefined;
  }

  /**
   * Adds a plugin host; it should have been made with this room as its {@linkcode PluginActions}.
   *
   * @param host The host (started by the caller).
   */
  addPlugin(host: PluginHost): void {
    this.#hosts.push(host);
  }

  /** Stops every plugin, in order (a failure is logged and the next one still stops). */
  async stopPlugins(): Promise<void> {
    for (const host of this.#hosts) {
      try {
        await host.stop();
      } catch (error) {
        logger.error("plugin {name} failed to stop: {error}", { name: host.name, error });
      }
    }
  }

  /** Each populated fragment's stats, or undefined when fragments are off. */
  fragmentStats(): Iterable<FragmentStats> | undefined {
    return this.#grid?.fragmentStats();
  }

  /**
   * Where a player is in the grid.
   *
   * @param client The player.
   * @returns Its fragment's coordinates, or undefined (fragments off, or not placed yet).
   */
  fragmentCoordsOf(client: ClientId): { readonly fx: number; readonly fz: number } | undefined {
    return this.#grid?.fragmentCoordsOf(client);
  }

  // ---------------------------------------------------------------- players

  /**
   * A player joined: every plugin is told.
   *
   * @param player The player, as the player table holds it.
   */
  join(player: PlayerInfo): void {
    for (const host of this.#hosts) {
      const started = Date.now();
      host.join(player);
      recordSpan("sustenet.plugin.join", {
        "sustenet.plugin.name": host.name,
        "sustenet.client.id": player.clientId,
        "sustenet.player.id": player.playerId,
      }, started);
    }
  }

  /**
   * A player left: out of the grid (others see a Despawn next tick), and every plugin is told.
   *
   * @param player The player, as the player table held it.
   * @param reason Why it left.
   */
  leave(player: PlayerInfo, reason: string): void {
    this.#grid?.remove(player.clientId);
    for (const host of this.#hosts) {
      const started = Date.now();
      host.leave(player, reason);
      recordSpan("sustenet.plugin.leave", {
        "sustenet.plugin.name": host.name,
        "sustenet.client.id": player.clientId,
        "sustenet.player.id": player.playerId,
        "sustenet.leave.reason": reason,
      }, started);
    }
  }

  // ---------------------------------------------------------------- game traffic

  /**
   * A player sent plugin command `command`: to every plugin that handles it, or answered with
   * Error(Unhandled) when none does.
   *
   * @param from The sender.
   * @param command A plugin command (0x80..0xFF).
   * @param payload Its payload (read during the call only).
   */
  message(from: ClientId, command: number, payload: Uint8Array): void {
    this.#metrics.pluginMessages.inc();
    let handled = false;
    for (const host of this.#hosts) {
      if (!host.handles(command)) continue;
      handled = true;
      host.message(from, command, payload);
    }
    if (handled) return;
    // Answered, not dropped in silence: the sender learns that nothing here reads it. Not
    // fatal, and bounded by the player's command rate limit like the command itself.
    this.#metrics.pluginUnhandled.inc();
    this.#outbox.send(from, unhandledFrame(command));
  }

  /**
   * A player moves: every plugin checks it (some asynchronously), then the grid places it. A
   * rejected or clamped move is answered with the player's stored state (a MoveBatch entry with
   * its own id).
   *
   * @param client The player.
   * @param state Where it says it is.
   * @param nowMs The time now (monotonic ms).
   */
  move(client: ClientId, state: MoveState, nowMs: number): void {
    // NaN and infinities decode fine (f32) but are never a position.
    if (!isPluginMove(state)) {
      this.#reject(client);
      return;
    }
    let pending: Promise<boolean>[] | undefined;
    for (const host of this.#hosts) {
      const verdict = host.move(client, state);
      if (verdict === false) {
        this.#reject(client);
        return;
      }
      if (verdict !== true) (pending ??= []).push(verdict);
    }
    if (pending === undefined) {
      this.#place(client, state, nowMs);
      return;
    }
    Promise.all(pending).then(
      (verdicts) => {
        if (verdicts.includes(false)) this.#reject(client);
        else this.#place(client, state, this.#clock());
      },
      (error: unknown) => logger.error("a plugin's move check failed: {error}", { error }),
    );
  }

  #reject(client: ClientId): void {
    this.#metrics.movesRejected.inc();
    this.#correct(client);
  }

  /** Puts an accepted move into the fragment grid (when on). */
  #place(client: ClientId, state: MoveState, nowMs: number): void {
    const grid = this.#grid;
    if (grid === undefined) {
      this.#metrics.movesAccepted.inc();
      return;
    }
    if (this.#players.get(client) === undefined) return; // left while plugins decided
    const outcome = grid.fragmentOf(client) === undefined
      ? grid.add(client, state, nowMs)
      : grid.move(client, state, nowMs);
    if (outcome === "accepted" || outcome === "unchanged") {
      this.#metrics.movesAccepted.inc();
    } else if (outcome === "clamped") {
      this.#metrics.movesAccepted.inc();
      this.#correct(client);
    } else {
      this.#reject(client);
    }
  }

  /** Sends a player its own stored state back (a MoveBatch entry with its own id). */
  #correct(client: ClientId): void {
    const state = this.#grid?.stateOf(client);
    if (state === undefined || this.#players.get(client) === undefined) return;
    this.#outbox.send(
      client,
      encodePacket({ kind: "MoveBatch", entries: [{ clientId: client, state }] }),
    );
  }

  /**
   * A cluster tick: plugins' `onTick`, then (with fragments on) the grid's tick, whose interest
   * changes and updates go out as Spawn / Despawn / MoveBatch.
   *
   * @param nowMs The time now (monotonic ms).
   * @param dtMs Time since the previous tick.
   */
  tick(nowMs: number, dtMs: number): void {
    for (const host of this.#hosts) host.tick(dtMs);
    if (this.#grid !== undefined) this.#writeFragmentTick(this.#grid.tick(nowMs));
  }

  /**
   * The one place a grid tick's output is written, viewer by viewer through the outbox: a
   * writer with shared per-fragment buffers replaces this method alone.
   */
  #writeFragmentTick(result: TickResult): void {
    if (result.interest.size > 0) {
      // Each Spawn / Despawn is encoded once per tick, whoever receives it.
      const spawns = new Map<number, Uint8Array>();
      const despawns = new Map<number, Uint8Array>();
      for (const [viewer, change] of result.interest) {
        const client = viewer as ClientId;
        if (this.#players.get(client) === undefined) continue;
        for (const id of change.left) {
          let frame = despawns.get(id);
          if (frame === undefined) {
            frame = encodePacket({ kind: "Despawn", clientId: id });
            despawns.set(id, frame);
          }
          this.#outbox.send(client, frame);
        }
        for (const entity of change.entered) {
          let frame = spawns.get(entity.id);
          if (frame === undefined) {
            frame = encodePacket({
              kind: "Spawn",
              clientId: entity.id,
              playerId: this.#players.get(entity.id)?.playerId ?? "",
              state: entity.state,
            });
            spawns.set(entity.id, frame);
          }
          this.#outbox.send(client, frame);
        }
      }
    }
    // Whole frames built fragment by fragment from the shared blocks (no re-encode, one
    // allocation per fragment); a player whose socket lags skips batches, then gets a snapshot.
    const outbox = this.#outbox;
    const queued = outbox.queuedBytes === undefined
      ? () => 0
      : (viewer: number) => outbox.queuedBytes!(viewer as ClientId);
    this.#positions.send(
      result,
      queued,
      (viewer, frame) => outbox.send(viewer as ClientId, frame),
      this.#maxFrameBytes - 1,
    );
  }

  // ---------------------------------------------------------------- PluginActions

  /** Sends a plugin command to one player (dropped if it left). */
  send(to: ClientId, command: number, payload: Uint8Array): void {
    if (this.#players.get(to) === undefined) return;
    // One receiver: the frame is encoded straight into its queue, no frame array in between.
    if (this.#pluginFrameFits(command, payload)) this.#outbox.sendFrame(to, command, payload);
  }

  /**
   * Sends one encoded frame to everyone, all but one, or one fragment's audience (named by id,
   * or by a player in it: `near`, which is everyone when the grid has no place for that player).
   */
  broadcast(command: number, payload: Uint8Array, options: BroadcastOptions): void {
    const except = options.except;
    const fragment = options.near === undefined
      ? options.fragment
      : this.#grid?.fragmentOf(options.near);
    if (fragment === undefined) {
      // To everyone: copied once into the players' turn buffer, no frame array.
      if (this.#pluginFrameFits(command, payload)) {
        this.#outbox.broadcastFrame(command, payload, except);
      }
      return;
    }
    if (!this.#pluginFrameFits(command, payload)) return;
    const frame = encodePluginFrame(command, payload);
    if (this.#grid === undefined) {
      logger.debug("broadcast to fragment {fragment} dropped: fragments are off", { fragment });
    } else {
      const audience = this.#grid.playersInterestedIn(fragment as FragmentId) as ClientId[];
      this.#outbox.sendToEach(audience, frame, except);
    }
  }

  /** Disconnects a player with DisconnectCluster(reason). */
  kick(client: ClientId, reason: string): void {
    const player = this.#players.get(client);
    if (player === undefined) return;
    this.#metrics.kicks.inc();
    logger.info("kicking player {playerId} (client {clientId}): {reason}", {
      playerId: player.playerId,
      clientId: client,
      reason,
    });
    this.#outbox.kick(client, reason);
  }

  /**
   * Whether a plugin frame may be sent: `false` (logged) if above `max_frame_bytes`.
   *
   * @throws {RangeError} If `command` is not a plugin command.
   */
  #pluginFrameFits(command: number, payload: Uint8Array): boolean {
    if (payload.length + 1 > this.#maxFrameBytes) {
      logger.warn("plugin command {command} of {bytes} bytes is above max_frame_bytes; dropped", {
        command,
        bytes: payload.length + 1,
      });
      return false;
    }
    assertPluginCommand(command);
    return true;
  }
}

// Error(Unhandled) frames, one per plugin command, made on first use.
const unhandledFrames = new Map<number, Uint8Array>();

function unhandledFrame(command: number): Uint8Array {
  let frame = unhandledFrames.get(command);
  if (frame === undefined) {
    const reason = `no plugin handles command 0x${command.toString(16).padStart(2, "0")}`;
    frame = encodePacket({ kind: "Error", code: ErrorCode.Unhandled, reason });
    unhandledFrames.set(command, frame);
  }
  return frame;
}
