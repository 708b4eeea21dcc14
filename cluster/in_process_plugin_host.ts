// This module is browser compatible.
/**
 * Runs a trusted plugin object in the cluster's own thread: hooks are plain function calls and
 * actions go straight to the cluster, so it costs nothing per event. It is also the quickest
 * way to test a plugin.
 *
 * It must never let a plugin's exception escape into the cluster: every hook is called inside
 * a try/catch (and a rejected promise is caught too), logged under
 * `["sustenet", "plugin", name]`, and the plugin keeps running. It is no sandbox: the plugin
 * has the cluster's permissions and can block its event loop; use the Worker host for code you
 * do not trust.
 *
 * @module
 */

import type { Logger } from "@logtape/logtape";
import { roleLogger } from "../shared/logging.ts";
import {
  type ClientId,
  createPluginContext,
  definePlugin,
  type PlayerInfo,
  PlayerRoster,
  pluginCommands,
  type PluginContext,
  type PluginHookName,
  type PluginMove,
  type SustenetPlugin,
} from "../shared/plugin.ts";
import type { LogLevelName } from "../shared/log_level_name.ts";
import {
  assertMessage,
  assertMove,
  assertPlayer,
  assertTick,
  logHookError,
  logPluginLine,
  type PluginActions,
  type PluginHost,
  type PluginHostState,
  PluginLoadError,
} from "./plugin_host.ts";

/**
 * Options of {@linkcode InProcessPluginHost}.
 *
 * @example
 * ```ts
 * import { InProcessPluginHost, type InProcessPluginHostOptions } from "./in_process_plugin_host.ts";
 * import chat, { CHAT_COMMAND, CHAT_REFUSED_COMMAND } from "../plugins/chat.ts";
 * import { asClientId } from "../shared/plugin.ts";
 * import assert from "node:assert/strict";
 *
 * // The plugin reads its settings from here: chat with a 4-byte line limit.
 * const options: InProcessPluginHostOptions = { name: "chat", settings: { maxLength: 4 } };
 * const sent: number[] = [];
 * const host = new InProcessPluginHost(chat, {
 *   send: (_to, command) => sent.push(command),
 *   broadcast() {},
 *   kick() {},
 * }, options);
 * await host.start();
 * host.message(asClientId(1), CHAT_COMMAND, new TextEncoder().encode("hello"));
 * await host.stop();
 * assert.deepEqual(sent, [CHAT_REFUSED_COMMAND]);
 * ```
 */
export interface InProcessPluginHostOptions {
  /** The plugin's name (log category, errors). */
  readonly name: string;
  /**
   * The plugin's settings, as `ctx.settings`.
   * @default {{}}
   */
  readonly settings?: Readonly<Record<string, unknown>>;
  /**
   * Longest wait for an async `onStop`, in ms.
   * @default {2000}
   */
  readonly stopTimeoutMs?: number;
}

/**
 * A {@linkcode PluginHost} that calls a plugin object directly, in the cluster's thread.
 *
 * @example Echo a command back to its sender
 * ```ts
 * import { InProcessPluginHost } from "./in_process_plugin_host.ts";
 * import { asClientId } from "../shared/plugin.ts";
 * import echo from "../plugins/echo.ts";
 * import assert from "node:assert/strict";
 *
 * const sent: [number, number, number[]][] = [];
 * const host = new InProcessPluginHost(echo, {
 *   send: (to, command, payload) => sent.push([to, command, [...payload]]),
 *   broadcast() {},
 *   kick() {},
 * }, { name: "echo" });
 * await host.start();
 * host.message(asClientId(9), 0x80, new Uint8Array([1, 2]));
 * await host.stop();
 * assert.deepEqual(sent, [[9, 0x80, [1, 2]]]);
 * ```
 */
export class InProcessPluginHost implements PluginHost {
  readonly #plugin: SustenetPlugin;
  readonly #commands: readonly number[] | "all";
  readonly #name: string;
  readonly #ctx: PluginContext;
  readonly #log: Logger;
  readonly #roster = new PlayerRoster();
  readonly #stopTimeoutMs: number;
  #state: PluginHostState = "idle";
  #starting: Promise<void> | null = null;
  #stopping: Promise<void> | null = null;
  #hookErrors = 0;

  /**
   * Wraps a plugin; nothing runs until {@linkcode InProcessPluginHost.start}.
   *
   * @param plugin The plugin object (checked with `definePlugin`).
   * @param actions Where the plugin's sends, broadcasts and kicks go.
   * @param options Name and settings.
   * @throws {TypeError} If `plugin` is not a valid plugin.
   * @throws {RangeError} If `stopTimeoutMs` is not a positive number.
   */
  constructor(
    plugin: SustenetPlugin,
    actions: PluginActions,
    options: InProcessPluginHostOptions,
  ) {
    this.#plugin = definePlugin(plugin);
    this.#commands = pluginCommands(this.#plugin);
    this.#name = options.name;
    this.#stopTimeoutMs = options.stopTimeoutMs ?? 2_000;
    if (!(this.#stopTimeoutMs > 0)) {
      throw new RangeError(`stopTimeoutMs must be > 0, got ${this.#stopTimeoutMs}`);
    }
    this.#log = roleLogger("plugin", options.name);
    this.#ctx = createPluginContext({
      name: options.name,
      settings: options.settings ?? {},
      players: () => this.#roster.list(),
      sink: {
        send: (to, command, payload) => actions.send(to, command, payload),
        broadcast: (command, payload, opts) => actions.broadcast(command, payload, opts),
        kick: (client, reason) => actions.kick(client, reason),
        log: (level: LogLevelName, message: string) => logPluginLine(this.#log, level, message),
      },
    });
  }

  /** The plugin's name. */
  get name(): string {
    return this.#name;
  }

  /** The host's lifecycle state. */
  get state(): PluginHostState {
    return this.#state;
  }

  /** How many hook calls threw (or rejected) so far. */
  get hookErrors(): number {
    return this.#hookErrors;
  }

  /**
   * Runs `onStart` (awaiting its promise); a throwing `onStart` is logged, not fatal.
   *
   * @throws {PluginLoadError} If the host was already stopped.
   */
  start(): Promise<void> {
    if (this.#state === "stopping" || this.#state === "stopped") {
      return Promise.reject(new PluginLoadError(this.#name, "the host was stopped"));
    }
    this.#starting ??= this.#start();
    return this.#starting;
  }

  async #start(): Promise<void> {
    this.#state = "starting";
    await this.#call("onStart", () => this.#plugin.onStart?.(this.#ctx));
    if (this.#state === "starting") this.#state = "running";
  }

  /** A player joined. */
  join(player: PlayerInfo): void {
    assertPlayer(player);
    this.#roster.add(player);
    if (this.#live()) this.#call("onJoin", () => this.#plugin.onJoin?.(this.#ctx, player));
  }

  /** A player left. */
  leave(player: PlayerInfo, reason: string): void {
    assertPlayer(player);
    this.#roster.remove(player.clientId);
    if (this.#live()) {
      this.#call("onLeave", () => this.#plugin.onLeave?.(this.#ctx, player, String(reason)));
    }
  }

  /** Whether the plugin handles `command` (see `pluginCommands`). */
  handles(command: number): boolean {
    const commands = this.#commands;
    return commands === "all" || commands.includes(command);
  }

  /** A player sent a plugin command. */
  message(from: ClientId, command: number, payload: Uint8Array): void {
    assertMessage(from, command, payload);
    if (this.#live()) {
      this.#call("onMessage", () => this.#plugin.onMessage?.(this.#ctx, from, command, payload));
    }
  }

  /** A player moves; `false` only if `onMove` returned `false`. */
  move(client: ClientId, move: PluginMove): boolean {
    assertMove(client, move);
    if (!this.#live() || this.#plugin.onMove === undefined) return true;
    return this.#call("onMove", () => this.#plugin.onMove?.(this.#ctx, client, move)) !== false;
  }

  /** A cluster tick. */
  tick(dtMs: number): void {
    assertTick(dtMs);
    if (this.#live()) this.#call("onTick", () => this.#plugin.onTick?.(this.#ctx, dtMs));
  }

  /** Resolves at once: in-process hooks have run by the time their call returns. */
  flush(): Promise<void> {
    return Promise.resolve();
  }

  /** Runs `onStop` (bounded by `stopTimeoutMs`); later events are ignored. */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    const wasLive = this.#live();
    this.#state = "stopping";
    if (wasLive && this.#plugin.onStop !== undefined) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<"timeout">((resolve) => {
        timer = setTimeout(() => resolve("timeout"), this.#stopTimeoutMs);
      });
      const stopped = Promise.resolve(this.#call("onStop", () => this.#plugin.onStop?.(this.#ctx)))
        .then(() => "stopped" as const);
      const outcome = await Promise.race([stopped, timeout]);
      clearTimeout(timer);
      if (outcome === "timeout") {
        this.#log.warn("onStop did not finish within {ms} ms; stopped anyway", {
          ms: this.#stopTimeoutMs,
        });
      }
    }
    this.#state = "stopped";
  }

  #live(): boolean {
    return this.#state === "starting" || this.#state === "running";
  }

  // Calls one hook; whatever it throws or rejects with is logged and counted, never rethrown,
  // because one plugin's bug must not reach the cluster. A returned promise resolves to
  // undefined when it rejects.
  #call(hook: PluginHookName, run: () => unknown): unknown {
    try {
      const result = run();
      if (result instanceof Promise) {
        return result.catch((err: unknown) => this.#failed(hook, err));
      }
      return result;
    } catch (err) {
      this.#failed(hook, err);
      return undefined;
    }
  }

  #failed(hook: PluginHookName, err: unknown): undefined {
    this.#hookErrors++;
    const name = err instanceof Error ? err.name : typeof err;
    const message = err instanceof Error ? err.message : String(err);
    logHookError(this.#log, hook, name, message);
    return undefined;
  }
}
