// This module is browser compatible.
/**
 * The supervision of one sandboxed plugin, without I/O: load and start deadlines, the
 * watchdog's pings and hang verdict, restart backoff and the restart budget, the roster
 * replayed to a fresh sandbox, and move verdicts that come too late. Time is passed in (`now`,
 * in ms of one monotonic clock) and every call returns the actions the adapter performs
 * (`worker_plugin_host.ts`: spawn a sandbox, post an event, kill, resolve a move, log); the
 * adapter calls {@linkcode PluginSupervisor.tick} at {@linkcode PluginSupervisor.nextDeadline}.
 *
 * Each sandbox the adapter spawns is one generation; events of an older generation (a sandbox
 * already killed) are ignored, so a late message of a dead sandbox can never act.
 *
 * It must never restart a plugin while the host stops, never restart more than `maxRestarts`
 * times in a row, and never leave a pending move without a verdict when its sandbox dies.
 *
 * @module
 */

import {
  type ClientId,
  type PlayerInfo,
  PlayerRoster,
  type PluginHookName,
} from "../shared/plugin.ts";
import type { LogLevelName } from "../shared/log_level_name.ts";
import { ReconnectBackoff } from "./backoff.ts";
import type { PluginHostState } from "./plugin_host.ts";
import type { WorkerPluginHostOptions } from "./worker_plugin_host.ts";
import { PLUGIN_FAILURES, type PluginFailure } from "./plugin_sandbox.ts";

/**
 * Where the current sandbox is: `loading` (its module), `starting` (`onStart` runs),
 * `running`, or `dead` (none runs).
 *
 * @example
 * ```ts
 * import { PluginSupervisor } from "./plugin_supervisor.ts";
 * import assert from "node:assert/strict";
 *
 * const supervisor = new PluginSupervisor({ name: "chat" });
 * supervisor.beginStart();
 * const generation = supervisor.spawned(0);
 * assert.equal(supervisor.phase(generation), "loading");
 * ```
 */
export type PluginPhase = "loading" | "starting" | "running" | "dead";

/**
 * What the adapter does for the supervisor, in order.
 *
 * - `spawn`: start a new sandbox and report it with {@linkcode PluginSupervisor.spawned} (or
 *   {@linkcode PluginSupervisor.spawnFailed}).
 * - `replay`: post `start`, then a `join` per player, to the sandbox that just loaded.
 * - `ping`: post a watchdog ping.
 * - `started`: the first sandbox ran `onStart`; a pending `start()` resolves.
 * - `kill`: end that generation's sandbox at once and release its waiters (a pending `start()`
 *   rejects with `reason`).
 * - `verdict`: resolve pending move `id`.
 * - `log`: write one line to the plugin's logger.
 *
 * @example
 * ```ts
 * import type { SupervisorAction } from "./plugin_supervisor.ts";
 * import assert from "node:assert/strict";
 *
 * const action: SupervisorAction = { kind: "verdict", id: 3, accept: true };
 * assert.equal(action.kind, "verdict");
 * ```
 */
export type SupervisorAction =
  | { readonly kind: "spawn" }
  | { readonly kind: "replay"; readonly players: readonly PlayerInfo[] }
  | { readonly kind: "ping"; readonly seq: number }
  | { readonly kind: "started" }
  | { readonly kind: "kill"; readonly generation: number; readonly reason: string }
  | { readonly kind: "verdict"; readonly id: number; readonly accept: boolean }
  | {
    readonly kind: "log";
    readonly level: LogLevelName;
    readonly message: string;
    readonly properties: Readonly<Record<string, unknown>>;
  };

/**
 * Options of {@linkcode PluginSupervisor}: those of `WorkerPluginHostOptions` it decides with
 * (same meaning, same defaults), and the plugin's name.
 *
 * @example
 * ```ts
 * import type { PluginSupervisorOptions } from "./plugin_supervisor.ts";
 * import assert from "node:assert/strict";
 *
 * const options: PluginSupervisorOptions = { name: "chat", maxRestarts: 2 };
 * assert.equal(options.maxRestarts, 2);
 * ```
 */
export interface PluginSupervisorOptions extends
  Pick<
    WorkerPluginHostOptions,
    | "watchdogMs"
    | "maxRestarts"
    | "restartBackoffMs"
    | "maxRestartBackoffMs"
    | "stableAfterMs"
    | "loadTimeoutMs"
    | "moveTimeoutMs"
  > {
  /** The plugin's name (log lines). */
  readonly name: string;
  /**
   * Uniform numbers in [0, 1) for the backoff's jitter (tests pass `() => 0`).
   * @default {Math.random}
   */
  readonly random?: () => number;
}

const NO_ACTIONS: readonly SupervisorAction[] = Object.freeze([]);
const NO_HOOKS: ReadonlySet<PluginHookName> = new Set();
const LOAD_ERROR_LINES = 8;

function positive(name: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) {
    throw new RangeError(`${name} must be a finite number > 0, got ${value}`);
  }
  return value;
}

/**
 * A trusted plugin's Worker can be granted only what the cluster's own process has: Deno's
 * "Can't escalate parent thread permissions" then gets a hint of what to change.
 *
 * @param reason Why a plugin failed to load.
 * @returns The reason, with the hint when it is that error.
 *
 * @example
 * ```ts
 * import { withEscalationHint } from "./plugin_supervisor.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(withEscalationHint("syntax error"), "syntax error");
 * assert.match(withEscalationHint("Can't escalate parent thread permissions"), /--allow-import/);
 * ```
 */
export function withEscalationHint(reason: string): string {
  if (!/escalate parent thread permissions/i.test(reason)) return reason;
  return `${reason} (a trusted plugin's Worker gets only permissions the cluster itself has: ` +
    "run the cluster with them too, e.g. --allow-import=<host> for an https:/http: plugin URL " +
    "or its imports; deno task cluster grants no --allow-import)";
}

/**
 * The supervision state machine of one plugin host.
 *
 * @example A hang: the watchdog kills the sandbox, and a restart follows after the backoff
 * ```ts
 * import { PluginSupervisor } from "./plugin_supervisor.ts";
 * import assert from "node:assert/strict";
 *
 * const s = new PluginSupervisor({ name: "chat", watchdogMs: 100, random: () => 0 });
 * s.beginStart();
 * const first = s.spawned(0);
 * s.ready(first, [], undefined);
 * s.started(first, 10);
 * assert.equal(s.state, "running");
 * // Pings at 60, then silence: at 160 the plugin has not answered for 150 ms.
 * assert.deepEqual(s.tick(60).map((a) => a.kind), ["ping"]);
 * const kinds = s.tick(160).map((a) => a.kind);
 * assert.deepEqual(kinds.filter((k) => k !== "log"), ["kill"]);
 * assert.equal(s.state, "restarting");
 * assert.equal(s.nextDeadline(), 160 + 500);
 * assert.deepEqual(s.tick(660).map((a) => a.kind), ["spawn"]);
 * ```
 */
export class PluginSupervisor {
  readonly #name: string;
  readonly #watchdogMs: number;
  readonly #pingEveryMs: number;
  readonly #maxRestarts: number;
  readonly #stableAfterMs: number;
  readonly #loadTimeoutMs: number;
  readonly #moveTimeoutMs: number;
  readonly #backoff: ReconnectBackoff;
  readonly #roster = new PlayerRoster();
  #state: PluginHostState = "idle";
  #generation = 0;
  #phase: PluginPhase = "dead";
  #hooks: ReadonlySet<PluginHookName> = NO_HOOKS;
  #commands: readonly number[] | "all" = "all";
  #loadDeadline = Infinity;
  #restartAt = Infinity;
  #startedAt = 0;
  #lastPongAt = 0;
  #nextPingAt = Infinity;
  #pingSeq = 0;
  // Pending move id → deadline; deadlines grow with insertion order (one timeout, monotonic now).
  readonly #moves = new Map<number, number>();
  // The first stderr lines of a sandbox that has not loaded yet: they say why a load failed.
  #loadErrors: string[] = [];
  #lastError: string | undefined;
  #restarts = 0;
  #moveTimeouts = 0;
  readonly #failures: Record<PluginFailure, number> = Object.fromEntries(
    PLUGIN_FAILURES.map((reason) => [reason, 0]),
  ) as Record<PluginFailure, number>;

  /**
   * Creates a supervisor with no sandbox yet (state `idle`).
   *
   * @param options Name, watchdog, restart and timeout settings.
   * @throws {RangeError} If an option is out of range.
   */
  constructor(options: PluginSupervisorOptions) {
    this.#name = options.name;
    this.#watchdogMs = positive("watchdogMs", options.watchdogMs ?? 2_000);
    this.#pingEveryMs = Math.max(1, this.#watchdogMs / 2);
    this.#loadTimeoutMs = positive("loadTimeoutMs", options.loadTimeoutMs ?? 10_000);
    this.#moveTimeoutMs = positive("moveTimeoutMs", options.moveTimeoutMs ?? 250);
    this.#stableAfterMs = positive("stableAfterMs", options.stableAfterMs ?? 60_000);
    this.#maxRestarts = options.maxRestarts ?? 5;
    if (!Number.isInteger(this.#maxRestarts) || this.#maxRestarts < 0) {
      throw new RangeError(`maxRestarts must be an integer >= 0, got ${this.#maxRestarts}`);
    }
    const restartBackoffMs = positive("restartBackoffMs", options.restartBackoffMs ?? 500);
    this.#backoff = new ReconnectBackoff({
      minMs: restartBackoffMs,
      maxMs: Math.max(restartBackoffMs, options.maxRestartBackoffMs ?? 30_000),
      random: options.random,
    });
  }

  /** The host's lifecycle state (`failed`: unloaded after too many restarts). */
  get state(): PluginHostState {
    return this.#state;
  }

  /** The current sandbox's generation (0 before the first). */
  get generation(): number {
    return this.#generation;
  }

  /** Where sandbox `generation` is; `dead` for any but the current one. */
  phase(generation: number): PluginPhase {
    return generation === this.#generation ? this.#phase : "dead";
  }

  /** Whether events go to the current sandbox: it loaded, and the host is not stopping. */
  get live(): boolean {
    return (this.#phase === "starting" || this.#phase === "running") &&
      this.#state !== "stopping" && this.#state !== "stopped";
  }

  /** A player joined: replayed to every later sandbox until it leaves. */
  join(player: PlayerInfo): void {
    this.#roster.add(player);
  }

  /** A player left. */
  leave(clientId: ClientId): void {
    this.#roster.remove(clientId);
  }

  /** How many players would be replayed now. */
  get players(): number {
    return this.#roster.size;
  }

  /** The hooks the current sandbox's plugin defines (empty while none is loaded). */
  get hooks(): ReadonlySet<PluginHookName> {
    return this.#hooks;
  }

  /**
   * Whether the plugin handles `command`: what its last loaded sandbox declared; every
   * command before one has loaded.
   */
  handles(command: number): boolean {
    const commands = this.#commands;
    return commands === "all" || commands.includes(command);
  }

  /** Why the latest sandbox ended abnormally (hang, crash, …), or undefined. */
  get lastError(): string | undefined {
    return this.#lastError;
  }

  /** Restarts after a hang or crash, and by an operator. */
  get restarts(): number {
    return this.#restarts;
  }

  /** Moves accepted because the verdict came too late. */
  get moveTimeouts(): number {
    return this.#moveTimeouts;
  }

  /** Sandboxes ended, by why (a copy). */
  get failures(): Readonly<Record<PluginFailure, number>> {
    return { ...this.#failures };
  }

  /** The earliest time {@linkcode tick} has something to do, or undefined when nothing waits. */
  nextDeadline(): number | undefined {
    let next = this.#restartAt;
    if (this.#phase === "loading" || this.#phase === "starting") {
      next = Math.min(next, this.#loadDeadline);
    }
    if (this.#phase === "running" && this.#watching()) next = Math.min(next, this.#nextPingAt);
    const firstMove = this.#moves.values().next();
    if (firstMove.done !== true) next = Math.min(next, firstMove.value);
    return next === Infinity ? undefined : next;
  }

  /** The host's `start()` began (state `starting`). */
  beginStart(): void {
    this.#state = "starting";
  }

  /** The first start failed before a sandbox loaded (state `failed` unless stopping). */
  startFailed(): void {
    if (this.#state === "starting") this.#state = "failed";
  }

  /**
   * The adapter started a sandbox at `now`; it is loading.
   *
   * @returns Its generation, passed back with each of its events.
   */
  spawned(now: number): number {
    this.#generation++;
    this.#phase = "loading";
    this.#hooks = NO_HOOKS;
    this.#loadDeadline = now + this.#loadTimeoutMs;
    this.#loadErrors = [];
    return this.#generation;
  }

  /** The adapter could not start a sandbox (`spawn` threw `error`). */
  spawnFailed(error: unknown, now: number): readonly SupervisorAction[] {
    if (this.#state === "starting") {
      this.#state = "failed";
      return NO_ACTIONS;
    }
    return [this.#couldNotRestart(error), ...this.#scheduleRestart(now)];
  }

  /**
   * One stderr line of sandbox `generation`, kept (the first few) while it loads.
   *
   * @returns Whether to log it (false once that sandbox is dead).
   */
  stderr(generation: number, line: string): boolean {
    const phase = this.phase(generation);
    if (phase === "dead") return false;
    if (phase === "loading" && this.#loadErrors.length < LOAD_ERROR_LINES) {
      this.#loadErrors.push(line.trim());
    }
    return true;
  }

  /** Sandbox `generation` loaded the plugin, which defines `hooks` (and `commands`). */
  ready(
    generation: number,
    hooks: readonly PluginHookName[],
    commands: readonly number[] | undefined,
  ): readonly SupervisorAction[] {
    if (this.phase(generation) !== "loading") return NO_ACTIONS;
    this.#phase = "starting";
    this.#hooks = new Set(hooks);
    this.#commands = !this.#hooks.has("onMessage") ? [] : commands ?? "all";
    return [{ kind: "replay", players: this.#roster.list() }];
  }

  /** Sandbox `generation` reports that the module failed to load. */
  loadFailed(generation: number, reason: string, now: number): readonly SupervisorAction[] {
    if (this.phase(generation) !== "loading") return NO_ACTIONS;
    return this.#loadFailed(reason, now);
  }

  /** Sandbox `generation` finished `onStart` at `now`: it runs. */
  started(generation: number, now: number): readonly SupervisorAction[] {
    if (this.phase(generation) !== "starting") return NO_ACTIONS;
    this.#phase = "running";
    this.#loadDeadline = Infinity;
    this.#startedAt = this.#lastPongAt = now;
    this.#nextPingAt = now + this.#pingEveryMs;
    if (this.#state === "starting") this.#state = "running";
    else if (this.#state === "restarting") {
      this.#state = "running";
      return [
        { kind: "started" },
        this.#line("info", "plugin {plugin} restarted with {players} player(s) replayed", {
          players: this.#roster.size,
        }),
      ];
    }
    return [{ kind: "started" }];
  }

  /** Sandbox `generation` answered a ping at `now`. */
  pong(generation: number, now: number): void {
    if (this.phase(generation) !== "dead") this.#lastPongAt = now;
  }

  /** Sandbox `generation` is gone or unusable (`failure`). */
  crashed(
    generation: number,
    failure: PluginFailure,
    message: string,
    now: number,
  ): readonly SupervisorAction[] {
    const phase = this.phase(generation);
    if (phase === "dead") return NO_ACTIONS;
    this.#failures[failure]++;
    if (phase === "loading" || phase === "starting") {
      const detail = this.#loadErrors.length === 0 ? "" : `: ${this.#loadErrors.join(" | ")}`;
      return this.#loadFailed(`${message}${detail}`, now);
    }
    return this.#recover(`${failure}: ${message}`, now);
  }

  /** Move `id` was posted at `now` to the current sandbox; it waits for a verdict. */
  moveSent(id: number, now: number): void {
    this.#moves.set(id, now + this.#moveTimeoutMs);
  }

  /** Sandbox `generation`'s verdict on move `id`. */
  moveResult(generation: number, id: number, accept: boolean): readonly SupervisorAction[] {
    if (this.phase(generation) === "dead" || !this.#moves.delete(id)) return NO_ACTIONS;
    return [{ kind: "verdict", id, accept }];
  }

  /**
   * Time passed: restarts due, load deadline, watchdog (ping or hang), late move verdicts.
   */
  tick(now: number): readonly SupervisorAction[] {
    const actions: SupervisorAction[] = [];
    if (now >= this.#restartAt) {
      this.#restartAt = Infinity;
      actions.push({ kind: "spawn" });
    }
    const phase = this.#phase;
    if ((phase === "loading" || phase === "starting") && now >= this.#loadDeadline) {
      actions.push(
        ...this.#loadFailed(`did not load and start within ${this.#loadTimeoutMs} ms`, now),
      );
    } else if (phase === "running" && this.#watching() && now >= this.#nextPingAt) {
      const silentMs = now - this.#lastPongAt;
      if (silentMs > this.#watchdogMs) {
        this.#failures.hang++;
        actions.push(
          ...this.#recover(
            `did not answer the watchdog for ${Math.round(silentMs)} ms (hung)`,
            now,
          ),
        );
      } else {
        this.#nextPingAt = now + this.#pingEveryMs;
        actions.push({ kind: "ping", seq: ++this.#pingSeq });
      }
    }
    let expired = 0;
    for (const [id, deadline] of this.#moves) {
      if (deadline > now) break;
      this.#moves.delete(id);
      actions.push({ kind: "verdict", id, accept: true });
      expired++;
    }
    if (expired > 0) {
      this.#moveTimeouts += expired;
      actions.push(this.#line("warning", "{count} move verdict(s) took over {ms} ms; accepted", {
        count: expired,
        ms: this.#moveTimeoutMs,
      }));
    }
    return actions;
  }

  /**
   * An operator asks for a fresh sandbox now: players are replayed as after a crash.
   *
   * @returns The actions, or null (nothing done) unless the plugin is running.
   */
  restart(): readonly SupervisorAction[] | null {
    if (this.#state !== "running" || this.#phase === "dead") return null;
    const actions = this.#kill("restarted by an operator");
    this.#backoff.reset();
    this.#restarts++;
    this.#state = "restarting";
    actions.push(
      this.#line("warning", "restarting plugin {plugin} at an operator's request", {}),
      { kind: "spawn" },
    );
    return actions;
  }

  /**
   * The host stops: no restart, no watchdog from now on.
   *
   * @returns Whether a running plugin should be asked to run `onStop` first.
   */
  stopping(): boolean {
    this.#state = "stopping";
    this.#restartAt = Infinity;
    return this.#phase === "running";
  }

  /** Ends the current sandbox (stop, or the host giving up on it). */
  terminate(reason: string): readonly SupervisorAction[] {
    return this.#kill(reason);
  }

  /** The host has stopped. */
  stopped(): void {
    this.#state = "stopped";
  }

  #watching(): boolean {
    return this.#state !== "stopping" && this.#state !== "stopped";
  }

  #line(
    level: LogLevelName,
    message: string,
    properties: Record<string, unknown>,
  ): SupervisorAction {
    return { kind: "log", level, message, properties: { plugin: this.#name, ...properties } };
  }

  #couldNotRestart(error: unknown): SupervisorAction {
    return this.#line("error", "plugin {plugin} could not restart: {error}", { error });
  }

  // The current sandbox did not load or start. The first one fails `start()`; a restarted
  // one is replaced again, within the restart budget.
  #loadFailed(reason: string, now: number): SupervisorAction[] {
    if (this.#phase === "dead") return [];
    const hinted = withEscalationHint(reason);
    const actions = this.#kill(hinted);
    if (this.#state === "starting") this.#state = "failed";
    else if (this.#state === "restarting") {
      actions.push(
        this.#couldNotRestart(`plugin "${this.#name}" failed to load: ${hinted}`),
        ...this.#scheduleRestart(now),
      );
    }
    return actions;
  }

  // A running plugin hung or crashed: replace it, unless it has failed too often in a row.
  #recover(reason: string, now: number): SupervisorAction[] {
    this.#lastError = reason;
    const ranMs = now - this.#startedAt;
    const actions = this.#kill(reason);
    actions.push(this.#line("error", "plugin {plugin} {reason}; terminated", { reason }));
    if (ranMs >= this.#stableAfterMs) this.#backoff.reset();
    actions.push(...this.#scheduleRestart(now));
    return actions;
  }

  #scheduleRestart(now: number): SupervisorAction[] {
    if (this.#state === "stopping" || this.#state === "stopped") return [];
    if (this.#backoff.attempts >= this.#maxRestarts) {
      this.#state = "failed";
      return [this.#line("error", "plugin {plugin} failed {count} times in a row; unloaded", {
        count: this.#backoff.attempts + 1,
      })];
    }
    const delayMs = this.#backoff.next();
    this.#restarts++;
    this.#state = "restarting";
    this.#restartAt = now + delayMs;
    return [this.#line("warning", "restarting plugin {plugin} in {delayMs} ms", { delayMs })];
  }

  // Ends the current sandbox for good; every pending move gets its verdict (accepted).
  #kill(reason: string): SupervisorAction[] {
    if (this.#phase === "dead") return [];
    this.#phase = "dead";
    this.#hooks = NO_HOOKS;
    this.#loadDeadline = Infinity;
    this.#nextPingAt = Infinity;
    const actions: SupervisorAction[] = [{ kind: "kill", generation: this.#generation, reason }];
    for (const id of this.#moves.keys()) actions.push({ kind: "verdict", id, accept: true });
    this.#moves.clear();
    return actions;
  }
}
