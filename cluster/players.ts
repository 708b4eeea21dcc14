// This module is browser compatible.
/**
 * The cluster's table of authenticated players: allocates each one a client id (u32, never 0),
 * keeps who is connected through which connection, and gives plugins a read-only snapshot.
 * Sans-I/O: the connection type is a parameter, the table never touches it.
 *
 * It must never hand out an id that is in use, never reuse a freed id before the counter has
 * gone round the whole u32 range (so a plugin holding a stale id cannot reach a newcomer), and
 * never hold more players than its bound.
 *
 * @module
 */

import { type ClientId, type PlayerInfo, PlayerRoster } from "../shared/plugin.ts";

/** Largest client id (u32). */
const MAX_CLIENT_ID = 0xffff_ffff;

/**
 * One authenticated player.
 *
 * @example
 * ```ts
 * import { PlayerTable } from "./players.ts";
 * import assert from "node:assert/strict";
 *
 * const table = new PlayerTable<string>();
 * const player = table.add("guest-1", "connection A");
 * assert.ok(player !== undefined);
 * assert.equal(player.connection, "connection A");
 * ```
 */
export interface Player<C> {
  /** The id this cluster gave it (Authenticate's clientId). */
  readonly clientId: ClientId;
  /** The player identity from its join ticket. */
  readonly playerId: string;
  /** Its connection. */
  readonly connection: C;
  /** The same `{ clientId, playerId }` object every time, for plugins. */
  readonly info: PlayerInfo;
}

/**
 * Options of {@linkcode PlayerTable}.
 *
 * @example
 * ```ts
 * import { PlayerTable, type PlayerTableOptions } from "./players.ts";
 * import assert from "node:assert/strict";
 *
 * // A cluster of two seats: the third join finds it full.
 * const options: PlayerTableOptions = { maxPlayers: 2 };
 * const table = new PlayerTable<string>(options);
 * table.add("guest-1", "conn-1");
 * table.add("guest-2", "conn-2");
 * assert.equal(table.full, true);
 * assert.equal(table.add("guest-3", "conn-3"), undefined);
 * ```
 */
export interface PlayerTableOptions {
  /**
   * Most players at once; 0 = no limit.
   *
   * @default {0}
   */
  readonly maxPlayers?: number;
  /**
   * The first id handed out (tests use it to reach the wrap-around).
   *
   * @default {1}
   */
  readonly firstId?: number;
}

/**
 * A read-only view of a {@linkcode PlayerTable}, for callers outside the cluster server.
 *
 * @example
 * ```ts
 * import { type PlayerView, PlayerTable } from "./players.ts";
 * import assert from "node:assert/strict";
 *
 * const view: PlayerView = new PlayerTable<number>();
 * assert.equal(view.size, 0);
 * ```
 */
export interface PlayerView {
  /** Players connected now. */
  readonly size: number;
  /** A player's info, or undefined. */
  get(clientId: number): PlayerInfo | undefined;
  /** Every player's info, in join order (the same array until the table changes). */
  list(): readonly PlayerInfo[];
}

/**
 * Players by client id, with id allocation and a bound.
 *
 * @example Ids go up and are not reused at once
 * ```ts
 * import { PlayerTable } from "./players.ts";
 * import assert from "node:assert/strict";
 *
 * const table = new PlayerTable<string>({ maxPlayers: 2 });
 * const a = table.add("alice", "A");
 * const b = table.add("bob", "B");
 * assert.equal(table.add("carol", "C"), undefined); // full
 * assert.equal(table.remove(a!.clientId)?.playerId, "alice");
 * const c = table.add("carol", "C");
 * assert.deepEqual([a!.clientId, b!.clientId, c!.clientId], [1, 2, 3]);
 * assert.deepEqual(table.list().map((p) => p.playerId), ["bob", "carol"]);
 * ```
 */
export class PlayerTable<C> implements PlayerView {
  readonly #byId = new Map<number, Player<C>>();
  readonly #connections = new Set<C>();
  readonly #roster = new PlayerRoster();
  readonly #maxPlayers: number;
  #nextId: number;

  /**
   * Creates an empty table.
   *
   * @param options Bound and first id.
   * @throws {RangeError} If `maxPlayers` is not an integer ≥ 0 or `firstId` not a u32 ≥ 1.
   */
  constructor(options: PlayerTableOptions = {}) {
    const { maxPlayers = 0, firstId = 1 } = options;
    if (!Number.isSafeInteger(maxPlayers) || maxPlayers < 0) {
      throw new RangeError(`maxPlayers must be an integer >= 0, got ${maxPlayers}`);
    }
    if (!Number.isInteger(firstId) || firstId < 1 || firstId > MAX_CLIENT_ID) {
      throw new RangeError(`firstId must be an integer 1..${MAX_CLIENT_ID}, got ${firstId}`);
    }
    this.#maxPlayers = maxPlayers;
    this.#nextId = firstId;
  }

  /**
   * Players connected now.
   *
   * @example
   * ```ts
   * import { PlayerTable } from "./players.ts";
   * import assert from "node:assert/strict";
   *
   * const table = new PlayerTable<string>();
   * table.add("p", "conn");
   * assert.equal(table.size, 1);
   * ```
   */
  get size(): number {
    return this.#byId.size;
  }

  /**
   * Whether another player fits.
   *
   * @example
   * ```ts
   * import { PlayerTable } from "./players.ts";
   * import assert from "node:assert/strict";
   *
   * const table = new PlayerTable<string>({ maxPlayers: 1 });
   * table.add("p", "conn");
   * assert.equal(table.full, true);
   * ```
   */
  get full(): boolean {
    return this.#maxPlayers > 0 && this.#byId.size >= this.#maxPlayers;
  }

  /**
   * The connections of every player, for broadcasting (live: do not modify it while iterating
   * over it).
   *
   * @example
   * ```ts
   * import { PlayerTable } from "./players.ts";
   * import assert from "node:assert/strict";
   *
   * const table = new PlayerTable<string>();
   * table.add("p", "conn");
   * assert.deepEqual([...table.connections], ["conn"]);
   * ```
   */
  get connections(): ReadonlySet<C> {
    return this.#connections;
  }

  /**
   * A read-only view of the table for callers outside the cluster (they cannot reach the
   * table, so they cannot add or remove players); live, frozen.
   *
   * @example
   * ```ts
   * import { PlayerTable } from "./players.ts";
   * import assert from "node:assert/strict";
   *
   * const table = new PlayerTable<string>();
   * const view = table.view();
   * table.add("p", "conn");
   * assert.equal(view.size, 1);
   * assert.equal(view.list()[0].playerId, "p");
   * assert.ok(Object.isFrozen(view));
   * ```
   */
  view(): PlayerView {
    // deno-lint-ignore no-this-alias
    const table = this;
    return Object.freeze({
      get size() {
        return table.size;
      },
      get: (clientId: number) => table.get(clientId),
      list: () => table.list(),
    });
  }

  /**
   * Adds a player under a fresh client id.
   *
   * @param playerId The identity from its ticket.
   * @param connection Its connection.
   * @returns The player, or undefined when the table is full.
   *
   * @example
   * ```ts
   * import { PlayerTable } from "./players.ts";
   * import assert from "node:assert/strict";
   *
   * const table = new PlayerTable<string>({ firstId: 0xffff_ffff });
   * assert.equal(table.add("a", "A")?.clientId, 0xffff_ffff);
   * assert.equal(table.add("b", "B")?.clientId, 1); // wraps round, skipping 0
   * ```
   */
  add(playerId: string, connection: C): Player<C> | undefined {
    if (this.full || this.#byId.size >= MAX_CLIENT_ID) return undefined;
    const clientId = this.#allocateId();
    const info: PlayerInfo = Object.freeze({ clientId, playerId });
    const player: Player<C> = Object.freeze({ clientId, playerId, connection, info });
    this.#byId.set(clientId, player);
    this.#connections.add(connection);
    this.#roster.add(info);
    return player;
  }

  /**
   * Removes a player.
   *
   * @param clientId Its client id.
   * @returns The removed player, or undefined if there was none.
   *
   * @example
   * ```ts
   * import { PlayerTable } from "./players.ts";
   * import assert from "node:assert/strict";
   *
   * const table = new PlayerTable<string>();
   * assert.equal(table.remove(7), undefined);
   * ```
   */
  remove(clientId: number): Player<C> | undefined {
    const player = this.#byId.get(clientId);
    if (player === undefined) return undefined;
    this.#byId.delete(clientId);
    this.#connections.delete(player.connection);
    this.#roster.remove(player.clientId);
    return player;
  }

  /**
   * The player with this id.
   *
   * @param clientId A client id.
   *
   * @example
   * ```ts
   * import { PlayerTable } from "./players.ts";
   * import assert from "node:assert/strict";
   *
   * const table = new PlayerTable<string>();
   * const p = table.add("p", "conn")!;
   * assert.equal(table.player(p.clientId), p);
   * ```
   */
  player(clientId: number): Player<C> | undefined {
    return this.#byId.get(clientId);
  }

  /**
   * A player's info, or undefined.
   *
   * @param clientId A client id.
   *
   * @example
   * ```ts
   * import { PlayerTable } from "./players.ts";
   * import assert from "node:assert/strict";
   *
   * const table = new PlayerTable<string>();
   * const p = table.add("p", "conn")!;
   * assert.deepEqual(table.get(p.clientId), { clientId: p.clientId, playerId: "p" });
   * ```
   */
  get(clientId: number): PlayerInfo | undefined {
    return this.#byId.get(clientId)?.info;
  }

  /**
   * Every player's info in join order; the same frozen array until the table changes.
   *
   * @example
   * ```ts
   * import { PlayerTable } from "./players.ts";
   * import assert from "node:assert/strict";
   *
   * const table = new PlayerTable<string>();
   * table.add("p", "conn");
   * assert.equal(table.list(), table.list());
   * ```
   */
  list(): readonly PlayerInfo[] {
    return this.#roster.list();
  }

  /**
   * Every player, in join order.
   *
   * @example
   * ```ts
   * import { PlayerTable } from "./players.ts";
   * import assert from "node:assert/strict";
   *
   * const table = new PlayerTable<string>();
   * table.add("p", "conn");
   * assert.deepEqual([...table.players()].map((p) => p.playerId), ["p"]);
   * ```
   */
  players(): IterableIterator<Player<C>> {
    return this.#byId.values();
  }

  #allocateId(): ClientId {
    // Terminates: the caller checked there is at least one free id.
    let id = this.#nextId;
    while (this.#byId.has(id)) id = id === MAX_CLIENT_ID ? 1 : id + 1;
    this.#nextId = id === MAX_CLIENT_ID ? 1 : id + 1;
    return id as ClientId;
  }
}
