/**
 * The {@linkcode RoomOutbox} over the players' real connections: a client id is looked up in the
 * {@linkcode PlayerTable}, broadcasts to everyone go through one {@linkcode BroadcastGroup}
 * (one copy per turn, whoever receives it), and a kick sends DisconnectCluster and closes.
 *
 * It must never queue bytes for a client that is not in the table, and never keep a player in
 * the broadcast group after it left (the cluster calls `leave`).
 *
 * @module
 */

import { BroadcastGroup } from "../shared/broadcast_group.ts";
import type { ClientId } from "../shared/plugin.ts";
import type { FrameTransport } from "../shared/transport.ts";
import { disconnectFrame } from "./disconnect_frame.ts";
import type { RoomOutbox } from "./game_room.ts";
import type { PlayerTable } from "./players.ts";

/**
 * How a broadcast's wait grows with the players it goes to, in ms per player, up to
 * `broadcastFlushMs`: 1 ms at 50 players, 10 ms from 500. Batching saves one write per player
 * per hand-out, so this keeps a cluster's broadcast writes near 50 000 a second whatever its size,
 * and a small room's broadcasts nearly as prompt as with no batching.
 */
const BROADCAST_FLUSH_MS_PER_PLAYER = 0.02;

/**
 * Options of {@linkcode PlayerOutbox}.
 *
 * @example
 * ```ts
 * import type { PlayerOutboxOptions } from "./player_outbox.ts";
 * import { PlayerTable } from "./players.ts";
 * import type { FrameTransport } from "../shared/transport.ts";
 * import assert from "node:assert/strict";
 *
 * const kicks: string[] = [];
 * const options: PlayerOutboxOptions = {
 *   players: new PlayerTable<FrameTransport>(),
 *   kicking: (_connection, reason) => kicks.push(reason),
 * };
 * assert.equal(options.players.size, 0);
 * ```
 */
export interface PlayerOutboxOptions {
  /** The players and their connections. */
  readonly players: PlayerTable<FrameTransport>;
  /**
   * Longest wait of a broadcast to everyone before it is handed out (config
   * `broadcast_flush_ms`); a small room waits less, in proportion to its players.
   *
   * @default {0}
   */
  readonly broadcastFlushMs?: number;
  /** Called before a kicked player's connection is told and closed (to note why it leaves). */
  readonly kicking: (connection: FrameTransport, reason: string) => void;
}

/**
 * Writes a game room's frames to the players' connections.
 *
 * @example Nothing reaches a client that is not connected
 * ```ts
 * import { PlayerOutbox } from "./player_outbox.ts";
 * import { PlayerTable } from "./players.ts";
 * import type { FrameTransport } from "../shared/transport.ts";
 * import assert from "node:assert/strict";
 *
 * const outbox = new PlayerOutbox({ players: new PlayerTable<FrameTransport>(), kicking() {} });
 * outbox.send(7 as never, new Uint8Array([0, 0, 0, 1, 0x10]));
 * outbox.kick(7 as never, "gone already");
 * assert.equal(outbox.size, 0);
 * ```
 */
export class PlayerOutbox implements RoomOutbox {
  readonly #players: PlayerTable<FrameTransport>;
  /** Every player's connection: broadcasts to all are batched per turn, one copy per frame. */
  readonly #everyone: BroadcastGroup;
  readonly #kicking: (connection: FrameTransport, reason: string) => void;

  /**
   * Creates the outbox over a player table.
   *
   * @param options The players, broadcast batching and the kick hook.
   */
  constructor(options: PlayerOutboxOptions) {
    this.#players = options.players;
    this.#everyone = new BroadcastGroup({
      flushIntervalMs: options.broadcastFlushMs ?? 0,
      flushMsPerMember: BROADCAST_FLUSH_MS_PER_PLAYER,
    });
    this.#kicking = options.kicking;
  }

  /** Connections that receive broadcasts to everyone. */
  get size(): number {
    return this.#everyone.size;
  }

  /**
   * A player's connection joins the broadcasts to everyone.
   * @param connection The connection just admitted.
   */
  join(connection: FrameTransport): void {
    this.#everyone.add(connection);
  }

  /**
   * A connection leaves the broadcasts to everyone.
   * @param connection The connection that closed.
   */
  leave(connection: FrameTransport): void {
    this.#everyone.delete(connection);
  }

  /** Hands out this turn's broadcasts now (before stopping, so no timer stays). */
  flush(): void {
    this.#everyone.flush();
  }

  send(client: ClientId, frameBytes: Uint8Array): void {
    this.#players.player(client)?.connection.send(frameBytes);
  }

  queuedBytes(client: ClientId): number | undefined {
    return this.#players.player(client)?.connection.queuedBytes;
  }

  sendFrame(client: ClientId, type: number, payload: Uint8Array): void {
    this.#players.player(client)?.connection.sendFrame(type, payload);
  }

  broadcastFrame(type: number, payload: Uint8Array, except?: ClientId): void {
    this.#everyone.broadcastFrame(type, payload, this.#connectionOf(except));
  }

  sendToEach(clients: Iterable<ClientId>, frameBytes: Uint8Array, except?: ClientId): void {
    for (const client of clients) {
      if (client !== except) this.#players.player(client)?.connection.send(frameBytes);
    }
  }

  kick(client: ClientId, reason: string): void {
    const connection = this.#players.player(client)?.connection;
    if (connection === undefined) return;
    this.#kicking(connection, reason);
    connection.send(disconnectFrame(reason));
    connection.close();
  }

  #connectionOf(client: ClientId | undefined): FrameTransport | undefined {
    return client === undefined ? undefined : this.#players.player(client)?.connection;
  }
}
