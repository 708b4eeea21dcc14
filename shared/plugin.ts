// This module is browser compatible.
/**
 * The plugin API: what a game plugin is ({@linkcode SustenetPlugin}, made with
 * {@linkcode definePlugin}), what it gets to act with ({@linkcode PluginContext}), and the one
 * context factory both plugin hosts (in-process and Worker) use, so a plugin behaves the same
 * whichever way it is run.
 *
 * It must never touch a socket, a file or a Deno API: plugins are loaded in sandboxed Workers
 * with no permissions, and this module is part of what they import. Every argument a plugin
 * passes to its context is checked here, before it reaches the cluster.
 *
 * @module
 */
import { PLUGIN_COMMAND_MAX, PLUGIN_COMMAND_MIN } from "./protocol/packets.ts";
import type { MoveState } from "./protocol/move_state.ts";
import type { LogLevelName } from "./log_level_name.ts";

/**
 * The id a cluster gives a connected player (u32, unique on that cluster).
 *
 * @example
 * ```ts
 * import { asClientId, type ClientId } from "./plugin.ts";
 * import assert from "node:assert/strict";
 *
 * const id: ClientId = asClientId(7);
 * assert.equal(id, 7);
 * ```
 */
export type ClientId = number & { readonly __brand: "ClientId" };

/**
 * Checks that a number is a valid client id (an integer in 0..2³²−1) and brands it.
 *
 * @param value The number to check.
 * @returns The same number as a {@linkcode ClientId}.
 * @throws {RangeError} If `value` is not an integer in 0..4294967295.
 *
 * @example
 * ```ts
 * import { asClientId } from "./plugin.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(asClientId(42), 42);
 * assert.throws(() => asClientId(-1), RangeError);
 * assert.throws(() => asClientId(1.5), RangeError);
 * ```
 */
export function asClientId(value: number): ClientId {
  if (!isClientId(value)) {
    throw new RangeError(`client id must be an integer in 0..4294967295, got ${String(value)}`);
  }
  return value;
}

/**
 * Tells whether a value is a valid client id (an integer in 0..2³²−1).
 *
 * @param value Any value.
 *
 * @example
 * ```ts
 * import { isClientId } from "./plugin.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(isClientId(3), true);
 * assert.equal(isClientId(2 ** 32), false);
 * assert.equal(isClientId("3"), false);
 * ```
 */
export function isClientId(value: unknown): value is ClientId {
  return typeof value === "number" && Number.isInteger(value) && value >= 0 &&
    value <= 0xffff_ffff;
}

/**
 * A player as plugins see it: its cluster client id and its player identity from the ticket.
 *
 * @example
 * ```ts
 * import { asClientId, type PlayerInfo } from "./plugin.ts";
 * import assert from "node:assert/strict";
 *
 * const player: PlayerInfo = { clientId: asClientId(1), playerId: "guest-1" };
 * assert.equal(player.playerId, "guest-1");
 * ```
 */
export interface PlayerInfo {
  /** The id the cluster gave the player's connection. */
  readonly clientId: ClientId;
  /** The player identity the master put in the join ticket. */
  readonly playerId: string;
}

/**
 * A point in the world.
 *
 * @example
 * ```ts
 * import { definePlugin, type Vec3 } from "./plugin.ts";
 * import assert from "node:assert/strict";
 *
 * // An arena plugin: moves more than 50 units from the spawn point are refused.
 * const SPAWN: Vec3 = { x: 0, y: 10, z: 0 };
 * const distance = (a: Vec3, b: Vec3) => Math.hypot(a.x - b.x, a.y - b.y, a.z - b.z);
 * const arena = definePlugin({ onMove: (_ctx, _client, move) => distance(move, SPAWN) <= 50 });
 * assert.equal(distance({ x: 30, y: 10, z: 40 }, SPAWN), 50);
 * assert.ok(arena.onMove);
 * ```
 */
export interface Vec3 {
  /** East-west. */
  x: number;
  /** Up-down. */
  y: number;
  /** North-south. */
  z: number;
}

/**
 * A move a player asks for: its new position, and its yaw and velocity when it sent them.
 *
 * @example
 * ```ts
 * import { definePlugin, type PluginMove } from "./plugin.ts";
 * import assert from "node:assert/strict";
 *
 * // Refuse moves below the ground (a plugin's onMove returns false to refuse).
 * const aboveGround = (move: PluginMove) => move.y >= 0;
 * const ground = definePlugin({ onMove: (_ctx, _from, move) => aboveGround(move) });
 * assert.equal(aboveGround({ x: 1, y: -3, z: 2 }), false);
 * assert.ok(ground.onMove);
 * ```
 */
// A move is the wire's MoveState: one type, so plugin and protocol never drift apart.
export type PluginMove = MoveState;

/**
 * Where a broadcast goes: everyone, everyone but one player, and/or the audience of one
 * fragment, named by id (`fragment`) or by a player standing in it (`near`).
 *
 * @example Chat heard around the speaker, not by the speaker
 * ```ts
 * import { asClientId, type BroadcastOptions } from "./plugin.ts";
 * import assert from "node:assert/strict";
 *
 * const speaker = asClientId(3);
 * const options: BroadcastOptions = { near: speaker, except: speaker };
 * assert.equal(options.fragment, undefined);
 * ```
 */
export interface BroadcastOptions {
  /** A player left out (usually the sender). */
  readonly except?: ClientId;
  /** Only the players who see this fragment (its players and its neighbours'). */
  readonly fragment?: number;
  /**
   * Only the players who see this player's fragment (those whose interest area includes it).
   * With fragments off, or before the player's first accepted move, it goes to everyone.
   * Exclusive with `fragment`.
   */
  readonly near?: ClientId;
}

/**
 * A plugin's log: lines go to the cluster's log under category `["sustenet", "plugin", name]`.
 *
 * @example
 * ```ts
 * import type { PluginLog } from "./plugin.ts";
 * import assert from "node:assert/strict";
 *
 * const lines: string[] = [];
 * const log: PluginLog = {
 *   debug: (m) => lines.push(m),
 *   info: (m) => lines.push(m),
 *   warning: (m) => lines.push(m),
 *   error: (m) => lines.push(m),
 * };
 * log.info("ready");
 * assert.deepEqual(lines, ["ready"]);
 * ```
 */
export interface PluginLog {
  /** Detail for debugging. */
  debug(message: string): void;
  /** Normal operation. */
  info(message: string): void;
  /** Something odd that the plugin handled. */
  warning(message: string): void;
  /** Something failed. */
  error(message: string): void;
}

/**
 * What a plugin acts with: it sends plugin commands to players, broadcasts, kicks, logs and
 * lists the players. Commands are 0x80..0xFF (the protocol's plugin range).
 *
 * @example Hooks receive the context first
 * ```ts
 * import { definePlugin, type PluginContext } from "./plugin.ts";
 * import assert from "node:assert/strict";
 *
 * const plugin = definePlugin({
 *   onJoin(ctx: PluginContext, player) {
 *     ctx.send(player.clientId, 0x90, new TextEncoder().encode(`hi ${player.playerId}`));
 *   },
 * });
 * assert.equal(typeof plugin.onJoin, "function");
 * ```
 */
export interface PluginContext {
  /** The plugin's name from the config. */
  readonly name: string;
  /** The plugin's own settings table from the config (read-only). */
  readonly settings: Readonly<Record<string, unknown>>;
  /**
   * Sends a plugin command to one player. The payload is copied before this returns.
   *
   * @throws {RangeError} If `command` is outside 0x80..0xFF or `to` is not a client id.
   * @throws {TypeError} If `payload` is not a Uint8Array.
   */
  send(to: ClientId, command: number, payload: Uint8Array): void;
  /**
   * Sends a plugin command to every player, or to all but `except`, or to the audience of a
   * fragment (`fragment`) or of a player's fragment (`near`).
   *
   * @throws {RangeError} If `command` is outside 0x80..0xFF or an option is out of range.
   * @throws {TypeError} If `payload` is not a Uint8Array, or both `fragment` and `near` are set.
   */
  broadcast(command: number, payload: Uint8Array, options?: BroadcastOptions): void;
  /**
   * Disconnects a player, telling it why.
   *
   * @throws {RangeError} If `client` is not a client id.
   * @throws {TypeError} If `reason` is not a string.
   */
  kick(client: ClientId, reason: string): void;
  /** The plugin's log. */
  readonly log: PluginLog;
  /** The players on the cluster now, in join order. */
  players(): readonly PlayerInfo[];
}

/**
 * A game plugin: optional hooks the cluster calls. A hook that throws is logged and the plugin
 * keeps running. Payloads given to hooks may be views of reused buffers: copy
 * (`payload.slice()`) to keep one beyond the call.
 *
 * @example
 * ```ts
 * import { definePlugin, type SustenetPlugin } from "./plugin.ts";
 * import assert from "node:assert/strict";
 *
 * const plugin: SustenetPlugin = definePlugin({
 *   onMove(_ctx, _client, move) {
 *     return move.y >= 0; // nobody walks below the floor
 *   },
 * });
 * assert.equal(typeof plugin.onMove, "function");
 * ```
 */
export interface SustenetPlugin {
  /**
   * The plugin commands (0x80..0xFF) this plugin handles: `onMessage` gets only these, and a
   * command no plugin of the cluster handles is answered with `Error(Unhandled)` instead of
   * vanishing. Absent: a plugin with `onMessage` handles every command (it filters itself).
   */
  readonly commands?: readonly number[];
  /** Once when the plugin starts (again after a restart). The host waits for its promise. */
  onStart?(ctx: PluginContext): void | Promise<void>;
  /** A player joined the cluster (after a restart: once per player already there). */
  onJoin?(ctx: PluginContext, player: PlayerInfo): void;
  /** A player left; `reason` says why. */
  onLeave?(ctx: PluginContext, player: PlayerInfo, reason: string): void;
  /** A player sent a plugin command (0x80..0xFF). */
  onMessage?(ctx: PluginContext, from: ClientId, command: number, payload: Uint8Array): void;
  /** A player moves; return `false` to reject the move (server authority). */
  onMove?(ctx: PluginContext, client: ClientId, move: PluginMove): boolean | void;
  /** Every cluster tick; `dtMs` is the time since the last one. */
  onTick?(ctx: PluginContext, dtMs: number): void;
  /** Once when the plugin stops. The host waits for its promise (bounded). */
  onStop?(ctx: PluginContext): void | Promise<void>;
}

/**
 * The name of one {@linkcode SustenetPlugin} hook.
 *
 * @example
 * ```ts
 * import { definePlugin, type PluginHookName, pluginHooks } from "./plugin.ts";
 * import assert from "node:assert/strict";
 *
 * // A host skips the tick timer for a plugin that has no onTick.
 * function needsTicks(hooks: readonly PluginHookName[]): boolean {
 *   return hooks.includes("onTick");
 * }
 * assert.equal(needsTicks(pluginHooks(definePlugin({ onJoin() {} }))), false);
 * assert.equal(needsTicks(pluginHooks(definePlugin({ onTick() {} }))), true);
 * ```
 */
export type PluginHookName = Exclude<keyof SustenetPlugin, "commands">;

/**
 * Every hook name a plugin may define.
 *
 * @example
 * ```ts
 * import { PLUGIN_HOOKS } from "./plugin.ts";
 * import assert from "node:assert/strict";
 *
 * assert.ok(PLUGIN_HOOKS.includes("onMessage"));
 * assert.equal(PLUGIN_HOOKS.length, 7);
 * ```
 */
export const PLUGIN_HOOKS: readonly PluginHookName[] = Object.freeze([
  "onStart",
  "onJoin",
  "onLeave",
  "onMessage",
  "onMove",
  "onTick",
  "onStop",
]);

// The command range is the protocol's; one definition, re-exported for plugin authors.
export { PLUGIN_COMMAND_MAX, PLUGIN_COMMAND_MIN };

/**
 * Tells whether a value is a plugin command: an integer in 0x80..0xFF.
 *
 * @param value Any value.
 *
 * @example
 * ```ts
 * import { isPluginCommand } from "./plugin.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(isPluginCommand(0x80), true);
 * assert.equal(isPluginCommand(0x2a), false); // Move is the protocol's, not a plugin's
 * ```
 */
export function isPluginCommand(value: unknown): value is number {
  return typeof value === "number" && Number.isInteger(value) &&
    value >= PLUGIN_COMMAND_MIN && value <= PLUGIN_COMMAND_MAX;
}

/**
 * Returns the plugin unchanged after checking its shape; a plugin module's default export is
 * `definePlugin({...})`.
 *
 * @param plugin The hooks.
 * @returns The same object.
 * @throws {TypeError} If `plugin` is not an object, a hook is not a function, `commands` is not
 * an array of plugin commands, or a key looks like a misspelt hook (`on` + capital letter, not one of {@linkcode PLUGIN_HOOKS}).
 *
 * @example
 * ```ts
 * import { definePlugin } from "./plugin.ts";
 * import assert from "node:assert/strict";
 *
 * const echo = definePlugin({
 *   onMessage(ctx, from, command, payload) {
 *     if (command === 0x80) ctx.send(from, 0x80, payload);
 *   },
 * });
 * assert.equal(typeof echo.onMessage, "function");
 * // A typo is caught at load time, not silently never called.
 * assert.throws(() => definePlugin({ onJion() {} } as never), TypeError);
 * ```
 */
export function definePlugin<P extends SustenetPlugin>(plugin: P): P {
  if (typeof plugin !== "object" || plugin === null || Array.isArray(plugin)) {
    throw new TypeError(
      `a plugin must be an object of hooks, got ${plugin === null ? "null" : typeof plugin}`,
    );
  }
  const record = plugin as Record<string, unknown>;
  const commands = record.commands;
  if (
    commands !== undefined && (!Array.isArray(commands) || !commands.every(isPluginCommand))
  ) {
    throw new TypeError("plugin commands must be an array of plugin commands 0x80..0xFF");
  }
  for (const key of Object.keys(record)) {
    const isHook = (PLUGIN_HOOKS as readonly string[]).includes(key);
    if (isHook && record[key] !== undefined && typeof record[key] !== "function") {
      throw new TypeError(`plugin hook ${key} must be a function, got ${typeof record[key]}`);
    }
    if (!isHook && /^on[A-Z]/.test(key)) {
      throw new TypeError(`plugin has unknown hook ${key}; hooks are ${PLUGIN_HOOKS.join(", ")}`);
    }
  }
  return plugin;
}

/**
 * Lists the hooks a plugin defines, so a host can skip work for the others (a Worker host
 * answers moves itself when the plugin has no `onMove`).
 *
 * @param plugin A plugin.
 *
 * @example
 * ```ts
 * import { definePlugin, pluginHooks } from "./plugin.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(pluginHooks(definePlugin({ onTick() {}, onJoin() {} })), ["onJoin", "onTick"]);
 * ```
 */
export function pluginHooks(plugin: SustenetPlugin): PluginHookName[] {
  return PLUGIN_HOOKS.filter((hook) => typeof plugin[hook] === "function");
}

/**
 * Where a context's checked actions go: a plugin host implements it (directly to the cluster
 * in-process, or into the message batch of a Worker).
 *
 * @example
 * ```ts
 * import type { PluginContextSink } from "./plugin.ts";
 * import assert from "node:assert/strict";
 *
 * const calls: string[] = [];
 * const sink: PluginContextSink = {
 *   send: (to, command) => calls.push(`send ${to} ${command}`),
 *   broadcast: (command) => calls.push(`broadcast ${command}`),
 *   kick: (client, reason) => calls.push(`kick ${client} ${reason}`),
 *   log: (level, message) => calls.push(`${level} ${message}`),
 * };
 * assert.equal(typeof sink.send, "function");
 * ```
 */
export interface PluginContextSink {
  /** A checked send. The payload is only valid during the call. */
  send(to: ClientId, command: number, payload: Uint8Array): void;
  /** A checked broadcast. The payload is only valid during the call. */
  broadcast(command: number, payload: Uint8Array, options: BroadcastOptions): void;
  /** A checked kick. */
  kick(client: ClientId, reason: string): void;
  /** A log line. */
  log(level: LogLevelName, message: string): void;
}

/**
 * Options of {@linkcode createPluginContext}.
 *
 * @example
 * ```ts
 * import type { PluginContextOptions } from "./plugin.ts";
 * import assert from "node:assert/strict";
 *
 * const options: Pick<PluginContextOptions, "name" | "settings"> = { name: "chat", settings: {} };
 * assert.equal(options.name, "chat");
 * ```
 */
export interface PluginContextOptions {
  /** The plugin's name. */
  readonly name: string;
  /** The plugin's settings; the context exposes a frozen deep copy. */
  readonly settings: Readonly<Record<string, unknown>>;
  /** Where checked actions go. */
  readonly sink: PluginContextSink;
  /** The current players (called on every `ctx.players()`). */
  readonly players: () => readonly PlayerInfo[];
}

function checkPayload(payload: unknown): asserts payload is Uint8Array {
  if (!(payload instanceof Uint8Array)) {
    throw new TypeError(`plugin payload must be a Uint8Array, got ${describe(payload)}`);
  }
}

function checkCommand(command: unknown): asserts command is number {
  if (!isPluginCommand(command)) {
    throw new RangeError(
      `plugin command must be an integer in 0x80..0xff, got ${describe(command)}`,
    );
  }
}

function checkClient(client: unknown, what: string): asserts client is ClientId {
  if (!isClientId(client)) {
    throw new RangeError(`${what} must be a client id (u32), got ${describe(client)}`);
  }
}

function describe(value: unknown): string {
  if (typeof value === "number") {
    return Number.isInteger(value) && value >= 0 ? `0x${value.toString(16)}` : String(value);
  }
  if (value === null) return "null";
  if (typeof value === "object") return value.constructor?.name ?? "object";
  return typeof value;
}

const NO_BROADCAST_OPTIONS: BroadcastOptions = Object.freeze({});

/**
 * Checks a broadcast's options and returns them with only the keys that are set, so every
 * host (in-process, Worker, the Worker message parser) sees the same object shape.
 *
 * @param options Any value a plugin passed as options.
 * @returns The options, or a string saying what is wrong (the caller picks the error).
 *
 * @example
 * ```ts
 * import { checkBroadcastOptions } from "./plugin.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(checkBroadcastOptions({ near: 4, except: undefined }), { near: 4 });
 * assert.equal(typeof checkBroadcastOptions({ near: -1 }), "string");
 * assert.equal(typeof checkBroadcastOptions({ near: 1, fragment: 2 }), "string");
 * ```
 */
export function checkBroadcastOptions(options: unknown): BroadcastOptions | string {
  if (typeof options !== "object" || options === null) {
    return `broadcast options must be an object, got ${describe(options)}`;
  }
  const { except, fragment, near } = options as Record<string, unknown>;
  if (except !== undefined && !isClientId(except)) {
    return `broadcast except must be a client id (u32), got ${describe(except)}`;
  }
  if (near !== undefined && !isClientId(near)) {
    return `broadcast near must be a client id (u32), got ${describe(near)}`;
  }
  // Fragment ids are packed coordinates: any non-negative safe integer.
  if (
    fragment !== undefined &&
    !(typeof fragment === "number" && Number.isSafeInteger(fragment) && fragment >= 0)
  ) {
    return `broadcast fragment must be a fragment id (a non-negative safe integer), got ${
      describe(fragment)
    }`;
  }
  if (fragment !== undefined && near !== undefined) {
    return "broadcast takes fragment or near, not both";
  }
  if (except === undefined && fragment === undefined && near === undefined) {
    return NO_BROADCAST_OPTIONS;
  }
  return {
    ...(except === undefined ? {} : { except: except as ClientId }),
    ...(fragment === undefined ? {} : { fragment: fragment as number }),
    ...(near === undefined ? {} : { near: near as ClientId }),
  };
}

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const inner of Object.values(value)) deepFreeze(inner);
  }
  return value;
}

/**
 * Builds the {@linkcode PluginContext} a host hands to a plugin: every action is checked
 * (command range, client ids, payload type) and then given to the sink, so a bad call throws
 * in the plugin, where the bug is, and never reaches the cluster.
 *
 * @param options Name, settings, sink and player list.
 * @throws {TypeError} If the settings are not structured-cloneable data.
 *
 * @example
 * ```ts
 * import { asClientId, createPluginContext } from "./plugin.ts";
 * import assert from "node:assert/strict";
 *
 * const sent: number[] = [];
 * const ctx = createPluginContext({
 *   name: "demo",
 *   settings: { greeting: "hi" },
 *   players: () => [],
 *   sink: {
 *     send: (_to, command) => sent.push(command),
 *     broadcast: () => {},
 *     kick: () => {},
 *     log: () => {},
 *   },
 * });
 * ctx.send(asClientId(1), 0x80, new Uint8Array([1]));
 * assert.deepEqual(sent, [0x80]);
 * assert.throws(() => ctx.send(asClientId(1), 0x10, new Uint8Array()), RangeError);
 * assert.equal(ctx.settings.greeting, "hi");
 * assert.ok(Object.isFrozen(ctx.settings));
 * ```
 */
export function createPluginContext(options: PluginContextOptions): PluginContext {
  const { name, sink, players } = options;
  // A copy, so a plugin that mutates its settings cannot change the host's config.
  let copy: Record<string, unknown>;
  try {
    copy = structuredClone(options.settings);
  } catch (err) {
    throw new TypeError(`settings of plugin "${name}" must be plain data`, { cause: err });
  }
  const settings: Readonly<Record<string, unknown>> = deepFreeze(copy);
  const log = Object.freeze({
    debug: (message: string) => sink.log("debug", String(message)),
    info: (message: string) => sink.log("info", String(message)),
    warning: (message: string) => sink.log("warning", String(message)),
    error: (message: string) => sink.log("error", String(message)),
  });
  return Object.freeze({
    name,
    settings,
    log,
    players,
    send(to: ClientId, command: number, payload: Uint8Array): void {
      checkClient(to, "send target");
      checkCommand(command);
      checkPayload(payload);
      sink.send(to, command, payload);
    },
    broadcast(command: number, payload: Uint8Array, opts: BroadcastOptions = {}): void {
      checkCommand(command);
      checkPayload(payload);
      const checked = checkBroadcastOptions(opts);
      if (typeof checked === "string") {
        const shapeError = typeof opts !== "object" || opts === null ||
          (opts.fragment !== undefined && opts.near !== undefined);
        throw shapeError ? new TypeError(checked) : new RangeError(checked);
      }
      sink.broadcast(command, payload, checked);
    },
    kick(client: ClientId, reason: string): void {
      checkClient(client, "kick target");
      if (typeof reason !== "string") {
        throw new TypeError(`kick reason must be a string, got ${describe(reason)}`);
      }
      sink.kick(client, reason);
    },
  });
}

/**
 * Tells whether a value is a {@linkcode PlayerInfo}: a client id and a string player id.
 *
 * @param value Any value.
 *
 * @example
 * ```ts
 * import { isPlayerInfo } from "./plugin.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(isPlayerInfo({ clientId: 1, playerId: "guest-1" }), true);
 * assert.equal(isPlayerInfo({ clientId: -1, playerId: "guest-1" }), false);
 * ```
 */
export function isPlayerInfo(value: unknown): value is PlayerInfo {
  if (typeof value !== "object" || value === null) return false;
  const { clientId, playerId } = value as Record<string, unknown>;
  return isClientId(clientId) && typeof playerId === "string";
}

function isFiniteOrAbsent(value: unknown): boolean {
  return value === undefined || (typeof value === "number" && Number.isFinite(value));
}

/**
 * Tells whether a value is a {@linkcode PluginMove}: finite x, y, z, and finite optional yaw
 * and velocity.
 *
 * @param value Any value.
 *
 * @example
 * ```ts
 * import { isPluginMove } from "./plugin.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(isPluginMove({ x: 1, y: 2, z: 3, yaw: 0.5 }), true);
 * assert.equal(isPluginMove({ x: NaN, y: 2, z: 3 }), false);
 * ```
 */
export function isPluginMove(value: unknown): value is PluginMove {
  if (typeof value !== "object" || value === null) return false;
  const { x, y, z, yaw, vx, vy, vz } = value as Record<string, unknown>;
  return typeof x === "number" && Number.isFinite(x) && typeof y === "number" &&
    Number.isFinite(y) && typeof z === "number" && Number.isFinite(z) &&
    isFiniteOrAbsent(yaw) && isFiniteOrAbsent(vx) && isFiniteOrAbsent(vy) &&
    isFiniteOrAbsent(vz);
}

/**
 * The players a plugin host knows of, in join order, behind `ctx.players()`: the list is
 * built once per change, not once per call.
 *
 * @example
 * ```ts
 * import { asClientId, PlayerRoster } from "./plugin.ts";
 * import assert from "node:assert/strict";
 *
 * const roster = new PlayerRoster();
 * roster.add({ clientId: asClientId(1), playerId: "a" });
 * roster.add({ clientId: asClientId(2), playerId: "b" });
 * roster.remove(asClientId(1));
 * assert.deepEqual(roster.list(), [{ clientId: 2, playerId: "b" }]);
 * assert.equal(roster.list(), roster.list()); // same frozen array until the next change
 * ```
 */
export class PlayerRoster {
  readonly #players = new Map<ClientId, PlayerInfo>();
  #list: readonly PlayerInfo[] | null = null;

  /** How many players are listed. */
  get size(): number {
    return this.#players.size;
  }

  /**
   * Adds a player, or replaces the one with the same client id.
   *
   * @param player The player.
   */
  add(player: PlayerInfo): void {
    this.#players.set(player.clientId, player);
    this.#list = null;
  }

  /**
   * Removes a player by client id.
   *
   * @param clientId The player's client id.
   * @returns The removed player, or undefined if it was not listed.
   */
  remove(clientId: ClientId): PlayerInfo | undefined {
    const player = this.#players.get(clientId);
    if (player !== undefined) {
      this.#players.delete(clientId);
      this.#list = null;
    }
    return player;
  }

  /** The players, in join order, as a frozen array. */
  list(): readonly PlayerInfo[] {
    this.#list ??= Object.freeze([...this.#players.values()]);
    return this.#list;
  }
}

/**
 * The plugin commands a plugin handles: `"all"` when it has `onMessage` and declares no
 * `commands`, none (an empty list) without `onMessage`, else its `commands`. The cluster
 * answers a command no plugin handles with `Error(Unhandled)`.
 *
 * @param plugin A plugin.
 *
 * @example
 * ```ts
 * import { definePlugin, pluginCommands } from "./plugin.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(pluginCommands(definePlugin({ commands: [0x80], onMessage() {} })), [0x80]);
 * assert.equal(pluginCommands(definePlugin({ onMessage() {} })), "all");
 * assert.deepEqual(pluginCommands(definePlugin({ onTick() {} })), []);
 * ```
 */
export function pluginCommands(plugin: SustenetPlugin): readonly number[] | "all" {
  if (typeof plugin.onMessage !== "function") return [];
  return plugin.commands === undefined ? "all" : [...plugin.commands];
}
