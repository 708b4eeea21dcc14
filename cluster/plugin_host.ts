// This module is browser compatible.
/**
 * The seam between the cluster and its plugins: {@linkcode PluginHost} is what the cluster
 * calls (lifecycle, player events, messages, moves, ticks), {@linkcode PluginActions} is what
 * the cluster implements for plugins to act through. Two hosts implement it: in-process
 * (trusted code, direct calls) and Worker (sandboxed, message batches).
 *
 * Besides the types: the load error, the argument checks every host applies to the cluster's
 * calls, and the two log formats (plugin lines, hook failures) both hosts share. It must never
 * import a host implementation, so the cluster depends on this interface, not on how a plugin
 * is run.
 *
 * @module
 */

import type { Logger } from "@logtape/logtape";
import { SustenetError } from "../shared/errors.ts";
import type { PluginPermissions } from "../shared/config_schema.ts";
import {
  type BroadcastOptions,
  type ClientId,
  isClientId,
  isPlayerInfo,
  isPluginCommand,
  isPluginMove,
  type PlayerInfo,
  type PluginMove,
} from "../shared/plugin.ts";
import type { LogLevelName } from "../shared/log_level_name.ts";
import type { PluginStateName } from "../shared/protocol/packets.ts";

/**
 * What plugins do to the cluster, already checked (command in 0x80..0xFF, valid client ids).
 * Payloads are only valid during the call: copy or encode them before returning.
 *
 * @example A recording implementation, as tests use
 * ```ts
 * import type { PluginActions } from "./plugin_host.ts";
 * import assert from "node:assert/strict";
 *
 * const log: string[] = [];
 * const actions: PluginActions = {
 *   send: (to, command, payload) => log.push(`send ${to} ${command} ${payload.length}`),
 *   broadcast: (command, payload) => log.push(`broadcast ${command} ${payload.length}`),
 *   kick: (client, reason) => log.push(`kick ${client} ${reason}`),
 * };
 * actions.kick(1 as never, "cheating");
 * assert.deepEqual(log, ["kick 1 cheating"]);
 * ```
 */
export interface PluginActions {
  /** Sends plugin command `command` with `payload` to one player. */
  send(to: ClientId, command: number, payload: Uint8Array): void;
  /** Sends plugin command `command` to everyone, all but `except`, or one fragment's audience. */
  broadcast(command: number, payload: Uint8Array, options: BroadcastOptions): void;
  /** Disconnects a player with DisconnectCluster(reason). */
  kick(client: ClientId, reason: string): void;
}

/**
 * Lifecycle state of a plugin host (the states ClusterPlugins reports, but `unknown`): `failed`
 * means unloaded after too many restarts.
 *
 * @example
 * ```ts
 * import type { PluginHostState } from "./plugin_host.ts";
 * import { InProcessPluginHost } from "./in_process_plugin_host.ts";
 * import echo from "../plugins/echo.ts";
 * import assert from "node:assert/strict";
 *
 * const host = new InProcessPluginHost(echo, { send() {}, broadcast() {}, kick() {} }, {
 *   name: "echo",
 * });
 * const seen: PluginHostState[] = [host.state];
 * await host.start();
 * seen.push(host.state);
 * await host.stop();
 * seen.push(host.state);
 * assert.deepEqual(seen, ["idle", "running", "stopped"]);
 * ```
 */
export type PluginHostState = Exclude<PluginStateName, "unknown">;

/**
 * A loaded plugin as the cluster sees it. Calls never throw because of the plugin: a hook
 * that fails is logged and the plugin carries on; only misuse by the caller (a command outside
 * 0x80..0xFF, a bad client id) throws.
 *
 * @example
 * ```ts
 * import { InProcessPluginHost } from "./in_process_plugin_host.ts";
 * import type { PluginHost } from "./plugin_host.ts";
 * import { asClientId, definePlugin } from "../shared/plugin.ts";
 * import assert from "node:assert/strict";
 *
 * const kicked: number[] = [];
 * const host: PluginHost = new InProcessPluginHost(
 *   definePlugin({ onJoin: (ctx, p) => ctx.kick(p.clientId, "full") }),
 *   { send() {}, broadcast() {}, kick: (client) => kicked.push(client) },
 *   { name: "bouncer" },
 * );
 * await host.start();
 * host.join({ clientId: asClientId(5), playerId: "guest-5" });
 * await host.stop();
 * assert.deepEqual(kicked, [5]);
 * ```
 */
export interface PluginHost {
  /** The plugin's name (log category, errors). */
  readonly name: string;
  /** The host's lifecycle state. */
  readonly state: PluginHostState;
  /**
   * Loads the plugin and runs `onStart`.
   *
   * @throws {PluginLoadError} If the plugin cannot be loaded (bad URL, syntax error, missing
   * permission, no plugin default export) or does not start in time.
   */
  start(): Promise<void>;
  /** A player joined (also recorded for `ctx.players()`). */
  join(player: PlayerInfo): void;
  /** A player left. */
  leave(player: PlayerInfo, reason: string): void;
  /**
   * Whether the plugin handles plugin command `command` (its `commands`, or every command when
   * it declares none and has `onMessage`); the cluster gives `message` only such commands and
   * answers one no host handles with `Error(Unhandled)`. While a plugin restarts, the last
   * loaded incarnation's answer.
   */
  handles(command: number): boolean;
  /** A player sent plugin command `command` (0x80..0xFF). The payload is only read here. */
  message(from: ClientId, command: number, payload: Uint8Array): void;
  /** A player moves; resolves `false` if the plugin rejects it (timeouts accept). */
  move(client: ClientId, move: PluginMove): boolean | Promise<boolean>;
  /** A cluster tick. */
  tick(dtMs: number): void;
  /** Resolves once every event given so far was handled and its actions delivered. */
  flush(): Promise<void>;
  /** Runs `onStop` (bounded) and unloads the plugin. Idempotent. */
  stop(): Promise<void>;
}

/**
 * A plugin to load in a Worker: the shape of one `[[cluster.plugins]]` entry of Config.toml.
 *
 * @example
 * ```ts
 * import type { PluginSpec } from "./plugin_host.ts";
 * import { NO_PLUGIN_PERMISSIONS } from "./plugin_permissions.ts";
 * import assert from "node:assert/strict";
 *
 * const spec: PluginSpec = {
 *   url: new URL("../plugins/chat.ts", import.meta.url),
 *   name: "chat",
 *   settings: { maxLength: 120 },
 *   permissions: NO_PLUGIN_PERMISSIONS,
 * };
 * assert.equal(spec.permissions.net, false);
 * ```
 */
export interface PluginSpec {
  /** Module URL (`file:`, `https:`, `jsr:`, `npm:`); its default export is the plugin. */
  readonly url: string | URL;
  /** Unique plugin name. */
  readonly name: string;
  /** The plugin's own settings (structured-cloneable values). */
  readonly settings: Readonly<Record<string, unknown>>;
  /** The sandbox's Deno permissions: every key present, `false` unless granted. */
  readonly permissions: PluginPermissions;
  /**
   * FULL TRUST: the plugin may be granted `ffi`/`run` and runs in a Worker of the cluster's
   * process, where it can do anything the cluster can. Untrusted plugins run in a subprocess.
   * @default {false}
   */
  readonly trusted?: boolean;
  /**
   * The subprocess's V8 heap cap in MiB (its resident memory may exceed it by the runtime's
   * overhead); ignored for trusted plugins.
   * @default {128}
   */
  readonly maxMemoryMb?: number;
}

/**
 * A plugin could not be loaded or started; names the plugin, and the cause when there is one.
 *
 * @example
 * ```ts
 * import { PluginLoadError } from "./plugin_host.ts";
 * import assert from "node:assert/strict";
 *
 * const err = new PluginLoadError("chat", "module not found");
 * assert.equal(err.code, "plugin_load_failed");
 * assert.equal(err.plugin, "chat");
 * assert.match(err.message, /plugin "chat"/);
 * ```
 */
export class PluginLoadError extends SustenetError {
  /** The plugin's name. */
  readonly plugin: string;

  /**
   * Makes a new PluginLoadError.
   *
   * @param plugin The plugin's name.
   * @param reason What went wrong.
   * @param options Standard error options (`cause`).
   */
  constructor(plugin: string, reason: string, options?: ErrorOptions) {
    super("plugin_load_failed", `plugin "${plugin}" failed to load: ${reason}`, options);
    this.plugin = plugin;
  }
}

/**
 * Checks the player a cluster passes to `join`/`leave`.
 *
 * @param player The value to check.
 * @throws {TypeError} If it is not `{ clientId: u32, playerId: string }`.
 *
 * @example
 * ```ts
 * import { assertPlayer } from "./plugin_host.ts";
 * import assert from "node:assert/strict";
 *
 * assertPlayer({ clientId: 1, playerId: "guest-1" });
 * assert.throws(() => assertPlayer({ clientId: "1" }), TypeError);
 * ```
 */
export function assertPlayer(player: unknown): asserts player is PlayerInfo {
  if (!isPlayerInfo(player)) {
    throw new TypeError("player must be { clientId: u32, playerId: string }");
  }
}

/**
 * Checks the arguments a cluster passes to `message`.
 *
 * @param from The sender's client id.
 * @param command The plugin command.
 * @param payload The payload.
 * @throws {RangeError} If `from` is not a client id or `command` is outside 0x80..0xFF.
 * @throws {TypeError} If `payload` is not a Uint8Array.
 *
 * @example
 * ```ts
 * import { assertMessage } from "./plugin_host.ts";
 * import assert from "node:assert/strict";
 *
 * assertMessage(1, 0x80, new Uint8Array());
 * assert.throws(() => assertMessage(1, 0x2a, new Uint8Array()), RangeError);
 * ```
 */
export function assertMessage(
  from: unknown,
  command: unknown,
  payload: unknown,
): asserts payload is Uint8Array {
  if (!isClientId(from)) throw new RangeError(`message sender must be a u32 client id`);
  if (!isPluginCommand(command)) {
    throw new RangeError(`message command must be an integer in 0x80..0xff, got ${command}`);
  }
  if (!(payload instanceof Uint8Array)) throw new TypeError("message payload must be a Uint8Array");
}

/**
 * Checks the arguments a cluster passes to `move`.
 *
 * @param client The mover's client id.
 * @param move The move.
 * @throws {RangeError} If `client` is not a client id.
 * @throws {TypeError} If `move` has a missing or non-finite coordinate.
 *
 * @example
 * ```ts
 * import { assertMove } from "./plugin_host.ts";
 * import assert from "node:assert/strict";
 *
 * assertMove(1, { x: 0, y: 0, z: 0 });
 * assert.throws(() => assertMove(1, { x: 0, y: Infinity, z: 0 }), TypeError);
 * ```
 */
export function assertMove(client: unknown, move: unknown): asserts move is PluginMove {
  if (!isClientId(client)) throw new RangeError(`move client must be a u32 client id`);
  if (!isPluginMove(move)) throw new TypeError("move must have finite x, y, z (yaw, vx, vy, vz)");
}

/**
 * Checks the time step a cluster passes to `tick`.
 *
 * @param dtMs Milliseconds since the last tick.
 * @throws {RangeError} If it is not a finite number ≥ 0.
 *
 * @example
 * ```ts
 * import { assertTick } from "./plugin_host.ts";
 * import assert from "node:assert/strict";
 *
 * assertTick(50);
 * assert.throws(() => assertTick(-1), RangeError);
 * ```
 */
export function assertTick(dtMs: unknown): asserts dtMs is number {
  if (typeof dtMs !== "number" || !Number.isFinite(dtMs) || dtMs < 0) {
    throw new RangeError(`tick dtMs must be a finite number >= 0, got ${dtMs}`);
  }
}

/**
 * Writes one line of a plugin's `ctx.log` to its logger; the text is a property, never a
 * template, so braces in it print as they are.
 *
 * @param logger The plugin's logger (`["sustenet", "plugin", name]`).
 * @param level The plugin's level.
 * @param message The plugin's text.
 *
 * @example
 * ```ts
 * import { logPluginLine } from "./plugin_host.ts";
 * import { roleLogger } from "../shared/logging.ts";
 *
 * logPluginLine(roleLogger("plugin", "chat"), "info", "ready {not a placeholder}");
 * ```
 */
export function logPluginLine(logger: Logger, level: LogLevelName, message: string): void {
  const props = { pluginMessage: message };
  if (level === "debug") logger.debug("{pluginMessage}", props);
  else if (level === "info") logger.info("{pluginMessage}", props);
  else if (level === "warning") logger.warn("{pluginMessage}", props);
  else logger.error("{pluginMessage}", props);
}

/**
 * Logs a failed hook call (thrown, rejected, or uncaught inside a Worker) at error level, with
 * properties `hook`, `errorName` and `errorMessage`.
 *
 * @param logger The plugin's logger.
 * @param hook The hook, or `"uncaught"` for an error outside any hook call.
 * @param errorName The error's name (`TypeError`, `NotCapable`, …).
 * @param errorMessage The error's message.
 *
 * @example
 * ```ts
 * import { logHookError } from "./plugin_host.ts";
 * import { roleLogger } from "../shared/logging.ts";
 *
 * logHookError(roleLogger("plugin", "chat"), "onMessage", "TypeError", "x is undefined");
 * ```
 */
export function logHookError(
  logger: Logger,
  hook: string,
  errorName: string,
  errorMessage: string,
): void {
  logger.error("{hook} threw {errorName}: {errorMessage}; the plugin keeps running", {
    hook,
    errorName,
    errorMessage,
  });
}
