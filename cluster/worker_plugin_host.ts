/**
 * Runs a plugin loaded by URL in a sandbox whose Deno permissions are exactly the config's
 * grants (default: none), and keeps it alive: a watchdog pings it, and a plugin that stops
 * answering, crashes, exits or runs out of memory is killed and restarted with backoff, then
 * replayed `onStart` and an `onJoin` per current player so its state rebuilds. Players stay
 * connected throughout; events that arrive while no sandbox runs are dropped (moves are
 * accepted).
 *
 * The sandbox is an adapter (`plugin_sandbox.ts`): a `deno run` subprocess for every
 * untrusted plugin (the default; `process_plugin_sandbox.ts`), a module Worker only for a
 * plugin marked `trusted` (`worker_plugin_sandbox.ts`). The supervision is the same for both
 * and has no I/O: {@linkcode PluginSupervisor} (`plugin_supervisor.ts`) decides load deadlines,
 * pings, hang verdicts, restarts and move timeouts from the time this host passes in; this host
 * creates sandboxes, carries batches, keeps one timer for the supervisor's next deadline and
 * performs the actions it returns.
 *
 * Bounds it keeps against a hostile or flooded plugin: player messages sent to the plugin and
 * not yet handled (`handled` acks) are capped (`maxQueuedMessages`, `maxQueuedBytes`): past
 * the cap new player messages are dropped and counted, never the plugin killed while it still
 * answers pings; ticks, joins and leaves are never dropped. Its log lines (`ctx.log`, console,
 * stderr) are rate-limited by a token bucket, with one summary line per second of what was
 * dropped.
 *
 * It must never give a sandbox an incomplete permission set, never act on a message that
 * `parseWorkerEvent` rejected, and never let a plugin failure throw into the cluster: only the
 * initial {@linkcode WorkerPluginHost.start} rejects, with a {@linkcode PluginLoadError}, and
 * always within `loadTimeoutMs`.
 *
 * Deno 2.9.6 caveat for trusted (Worker) plugins: `worker.terminate()` cannot interrupt
 * JavaScript that never yields (`for (;;) {}`): its thread keeps one core busy until the
 * process exits (upstream: denoland/deno#35657). A subprocess has no such caveat: SIGKILL.
 *
 * @module
 */

import type { Logger } from "@logtape/logtape";
import { roleLogger } from "../shared/logging.ts";
import type { ClientId, PlayerInfo, PluginHookName, PluginMove } from "../shared/plugin.ts";
import type { LogLevelName } from "../shared/log_level_name.ts";
import {
  PluginSupervisor,
  type SupervisorAction,
  withEscalationHint,
} from "./plugin_supervisor.ts";
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
  type PluginSpec,
} from "./plugin_host.ts";
import {
  checkSendRecord,
  type HostEvent,
  isMessageBatch,
  type MessageBatch,
  MessageBatcher,
  parseWorkerEvent,
  payloadOf,
  RECORD_FIELDS,
  type WorkerEvent,
} from "./plugin_messages.ts";
import {
  buildPermissionFlags,
  buildWorkerPermissions,
  type WorkerPermissionDescriptor,
} from "./plugin_permissions.ts";
import { LogThrottle } from "../shared/log_throttle.ts";
import { TokenBucket } from "../shared/token_bucket.ts";
import type { PluginFailure, PluginSandbox, PluginSandboxListener } from "./plugin_sandbox.ts";
import { ProcessPluginSandbox } from "./process_plugin_sandbox.ts";
import { WorkerPluginSandbox } from "./worker_plugin_sandbox.ts";
import { PluginQueueBound } from "./plugin_queue_bound.ts";

/**
 * Where a plugin's code runs: `process` (a `deno run` subprocess, the only choice for
 * untrusted code) or `worker` (a module Worker in the cluster's process: full trust).
 *
 * @example
 * ```ts
 * import { type PluginIsolation, WorkerPluginHost } from "./worker_plugin_host.ts";
 * import { NO_PLUGIN_PERMISSIONS } from "./plugin_permissions.ts";
 * import assert from "node:assert/strict";
 *
 * // The isolation follows the spec's trust unless forced (hosts are not started here).
 * function isolationOf(trusted: boolean): PluginIsolation {
 *   const host = new WorkerPluginHost({
 *     url: new URL("../plugins/echo.ts", import.meta.url),
 *     name: "echo",
 *     settings: {},
 *     permissions: NO_PLUGIN_PERMISSIONS,
 *     trusted,
 *   }, { send() {}, broadcast() {}, kick() {} });
 *   return host.isolation;
 * }
 * assert.equal(isolationOf(false), "process");
 * assert.equal(isolationOf(true), "worker");
 * ```
 */
export type PluginIsolation = "process" | "worker";

/**
 * Options of {@linkcode WorkerPluginHost}.
 *
 * @example
 * ```ts
 * import { WorkerPluginHost, type WorkerPluginHostOptions } from "./worker_plugin_host.ts";
 * import { NO_PLUGIN_PERMISSIONS } from "./plugin_permissions.ts";
 * import { asClientId } from "../shared/plugin.ts";
 * import assert from "node:assert/strict";
 *
 * // A Worker instead of a subprocess, a tighter watchdog, and fewer restarts before unloading.
 * const options: WorkerPluginHostOptions = { isolation: "worker", watchdogMs: 1000, maxRestarts: 3 };
 * const sent: number[][] = [];
 * const host = new WorkerPluginHost({
 *   url: new URL("../plugins/echo.ts", import.meta.url),
 *   name: "echo",
 *   settings: {},
 *   permissions: NO_PLUGIN_PERMISSIONS,
 * }, { send: (_to, _command, payload) => sent.push([...payload]), broadcast() {}, kick() {} }, options);
 * assert.equal(host.isolation, "worker");
 * await host.start();
 * host.message(asClientId(1), 0x80, new Uint8Array([7]));
 * await host.flush();
 * await host.stop();
 * assert.deepEqual(sent, [[7]]);
 * ```
 */
export interface WorkerPluginHostOptions {
  /**
   * A Worker that does not answer a ping for this long is restarted; pings go every half.
   * @default {2000}
   */
  readonly watchdogMs?: number;
  /**
   * Restarts in a row (without `stableAfterMs` of good health between) before the plugin is
   * unloaded (state `failed`).
   * @default {5}
   */
  readonly maxRestarts?: number;
  /**
   * First restart delay; it doubles per restart in a row, up to `maxRestartBackoffMs`.
   * @default {500}
   */
  readonly restartBackoffMs?: number;
  /**
   * Longest restart delay.
   * @default {30000}
   */
  readonly maxRestartBackoffMs?: number;
  /**
   * A Worker that ran this long before failing resets the restart count and backoff.
   * @default {60000}
   */
  readonly stableAfterMs?: number;
  /**
   * Longest time to load the module and finish `onStart`.
   * @default {10000}
   */
  readonly loadTimeoutMs?: number;
  /**
   * Longest wait for `onMove`'s verdict; a late verdict counts as accept.
   * @default {250}
   */
  readonly moveTimeoutMs?: number;
  /**
   * Longest wait for `onStop` before the Worker is terminated anyway.
   * @default {2000}
   */
  readonly stopTimeoutMs?: number;
  /**
   * Where the plugin runs. Leave it to the spec: `worker` for a `trusted` plugin, else
   * `process`. Forcing `worker` on untrusted code gives up the process boundary.
   * @default {spec.trusted ? "worker" : "process"}
   */
  readonly isolation?: PluginIsolation;
  /**
   * How often a subprocess's resident memory is checked against its cap, in ms.
   * @default {100}
   */
  readonly memoryCheckMs?: number;
  /**
   * Player messages sent to the plugin and not yet handled, past which new ones are dropped.
   * @default {8192}
   */
  readonly maxQueuedMessages?: number;
  /**
   * Payload bytes of those messages (and a subprocess's unread input), past which new player
   * messages are dropped.
   * @default {8388608}
   */
  readonly maxQueuedBytes?: number;
  /**
   * Of those, messages one player may have queued, past which that player's new messages are
   * dropped (so one flooding player cannot take every other player's place).
   * @default {max(64, maxQueuedMessages / 8)}
   */
  readonly maxQueuedPerPlayer?: number;
  /**
   * Log lines per second the plugin may write (ctx.log, console, stderr); the rest are
   * dropped and counted.
   * @default {100}
   */
  readonly logLinesPerS?: number;
  /**
   * Log lines the plugin may write in one burst.
   * @default {500}
   */
  readonly logBurst?: number;
}

/**
 * Counters of a {@linkcode WorkerPluginHost} since it was made.
 *
 * @example
 * ```ts
 * import { WorkerPluginHost, type WorkerPluginHostStats } from "./worker_plugin_host.ts";
 * import { NO_PLUGIN_PERMISSIONS } from "./plugin_permissions.ts";
 * import { asClientId } from "../shared/plugin.ts";
 * import assert from "node:assert/strict";
 *
 * // A health line as an operator's dashboard would show it.
 * function health(stats: WorkerPluginHostStats): string {
 *   const dropped = stats.droppedEvents + stats.droppedMessages + stats.invalidEvents;
 *   return `restarts=${stats.restarts} dropped=${dropped} hookErrors=${stats.hookErrors}`;
 * }
 *
 * const host = new WorkerPluginHost({
 *   url: new URL("../plugins/echo.ts", import.meta.url),
 *   name: "echo",
 *   settings: {},
 *   permissions: NO_PLUGIN_PERMISSIONS,
 * }, { send() {}, broadcast() {}, kick() {} }, { isolation: "worker" });
 * await host.start();
 * host.message(asClientId(1), 0x80, new Uint8Array([1]));
 * await host.flush();
 * await host.stop();
 * assert.ok(host.stats.eventsToWorker >= 1);
 * assert.equal(health(host.stats), "restarts=0 dropped=0 hookErrors=0");
 * ```
 */
export interface WorkerPluginHostStats {
  /** `postMessage` calls to Workers (one per batch). */
  readonly postsToWorker: number;
  /** Events sent to Workers. */
  readonly eventsToWorker: number;
  /** Batches received from Workers (one `postMessage` each). */
  readonly batchesFromWorker: number;
  /** Valid events received from Workers. */
  readonly eventsFromWorker: number;
  /** Worker messages or events dropped because they were malformed or forged. */
  readonly invalidEvents: number;
  /** Events dropped because no Worker was running (restart in progress, failed). */
  readonly droppedEvents: number;
  /** Hook calls that threw or rejected, plus uncaught errors inside the Worker. */
  readonly hookErrors: number;
  /** Moves accepted because the verdict came too late. */
  readonly moveTimeouts: number;
  /** Restarts after a hang or crash. */
  readonly restarts: number;
  /** Sandboxes ended, by why (`hang`, `crash`, `memory`, `exit`, `malformed`). */
  readonly failures: Readonly<Record<PluginFailure, number>>;
  /** Player messages dropped because the plugin's queue was full. */
  readonly droppedMessages: number;
  /** Log lines dropped by the plugin's rate limit. */
  readonly droppedLogLines: number;
}

type WorkerEventOf<K extends WorkerEvent["kind"]> = Extract<WorkerEvent, { readonly kind: K }>;

// One sandbox and what lives and dies with it; its phase is the supervisor's (by generation).
class Incarnation {
  generation = 0;
  sandbox: PluginSandbox | null = null;
  readonly batcher: MessageBatcher<HostEvent>;
  onStopped: (() => void) | null = null;
  readonly barriers = new Map<number, () => void>();
  // Player messages posted and not yet acknowledged as handled.
  readonly bound: PluginQueueBound;

  constructor(batcher: MessageBatcher<HostEvent>, bound: PluginQueueBound) {
    this.batcher = batcher;
    this.bound = bound;
  }
}

function resolvePluginUrl(url: string | URL): URL {
  if (url instanceof URL) return url;
  // A scheme of two letters or more (one letter is a Windows drive, not a scheme).
  if (/^[A-Za-z][A-Za-z0-9+.-]+:/.test(url)) return new URL(url);
  const cwd = new URL("file:///");
  cwd.pathname = Deno.cwd().replace(/\/?$/, "/");
  return new URL(url, cwd);
}

const ENTRY_URL = new URL("./plugin_worker_entry.ts", import.meta.url);
const PROCESS_ENTRY_URL = new URL("./plugin_process_entry.ts", import.meta.url);
const LOCKDOWN_URL = new URL("./plugin_lockdown.ts", import.meta.url);

// The sandbox's main module: static imports load without read permission (see the entry's
// module doc), so the plugin needs no access to its own files. In a subprocess the lockdown
// is imported first, so it runs before the plugin's first line.
function bootstrapUrl(pluginUrl: URL, isolation: PluginIsolation): string {
  const plugin = JSON.stringify(pluginUrl.href);
  const source = isolation === "worker"
    ? `import * as plugin from ${plugin};\n` +
      `import { runPluginWorker } from ${JSON.stringify(ENTRY_URL.href)};\n` +
      `runPluginWorker(plugin, self);\n`
    : `import ${JSON.stringify(LOCKDOWN_URL.href)};\n` +
      `import * as plugin from ${plugin};\n` +
      `import { runPluginProcess } from ${JSON.stringify(PROCESS_ENTRY_URL.href)};\n` +
      `runPluginProcess(plugin);\n`;
  return `data:application/javascript,${encodeURIComponent(source)}`;
}

const LOG_SUMMARY_MS = 1000;

function remoteHost(url: URL): string[] {
  return url.protocol === "https:" || url.protocol === "http:" ? [url.host] : [];
}

function positive(name: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) {
    throw new RangeError(`${name} must be a finite number > 0, got ${value}`);
  }
  return value;
}

/**
 * A {@linkcode PluginHost} that loads a plugin module by URL into a sandboxed module Worker.
 *
 * @example Echo through a Worker with no permissions
 * ```ts
 * import { WorkerPluginHost } from "./worker_plugin_host.ts";
 * import { NO_PLUGIN_PERMISSIONS } from "./plugin_permissions.ts";
 * import { asClientId } from "../shared/plugin.ts";
 * import assert from "node:assert/strict";
 *
 * const sent: number[][] = [];
 * const host = new WorkerPluginHost({
 *   url: new URL("../plugins/echo.ts", import.meta.url),
 *   name: "echo",
 *   settings: {},
 *   permissions: NO_PLUGIN_PERMISSIONS,
 * }, { send: (_to, _command, payload) => sent.push([...payload]), broadcast() {}, kick() {} });
 * await host.start();
 * host.message(asClientId(1), 0x80, new Uint8Array([4, 2]));
 * await host.flush();
 * await host.stop();
 * assert.deepEqual(sent, [[4, 2]]);
 * ```
 */
export class WorkerPluginHost implements PluginHost {
  readonly #name: string;
  readonly #actions: PluginActions;
  readonly #log: Logger;
  readonly #settings: Readonly<Record<string, unknown>>;
  readonly #url: URL;
  readonly #bootstrapUrl: string;
  readonly #permissions: WorkerPermissionDescriptor;
  readonly #permissionFlags: readonly string[];
  readonly #isolation: PluginIsolation;
  readonly #maxMemoryMb: number;
  readonly #memoryCheckMs: number;
  readonly #maxQueuedMessages: number;
  readonly #maxQueuedBytes: number;
  readonly #maxQueuedPerPlayer: number | undefined;
  readonly #logBucket: TokenBucket;
  readonly #logThrottle = new LogThrottle({ intervalMs: LOG_SUMMARY_MS });
  readonly #supervisor: PluginSupervisor;
  readonly #stopTimeoutMs: number;
  #current: Incarnation | null = null;
  // The one timer: set for the supervisor's next deadline (a tick that comes early is harmless).
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAt = Infinity;
  // The first start() in progress, until its sandbox runs or dies.
  #startWaiter: PromiseWithResolvers<void> | null = null;
  // Pending move id → its resolver; the supervisor owns the deadlines and verdicts.
  readonly #moveWaiters = new Map<number, (accept: boolean) => void>();
  #starting: Promise<void> | null = null;
  #stopping: Promise<void> | null = null;
  #nextId = 1;
  #postsToWorker = 0;
  #eventsToWorker = 0;
  #batchesFromWorker = 0;
  #eventsFromWorker = 0;
  #invalidEvents = 0;
  #droppedEvents = 0;
  #hookErrors = 0;
  #droppedMessages = 0;
  #droppedLogLines = 0;
  #logLinesToReport = 0; // dropped since the last summary line
  #messagesToReport = 0;

  /**
   * Prepares the host; nothing is loaded until {@linkcode WorkerPluginHost.start}.
   *
   * @param spec URL, name, settings and permissions (a `[[cluster.plugins]]` entry).
   * @param actions Where the plugin's sends, broadcasts and kicks go.
   * @param options Watchdog, restart and timeout settings.
   * @throws {TypeError} If the permissions are invalid or the settings cannot be cloned.
   * @throws {RangeError} If an option is out of range.
   */
  constructor(spec: PluginSpec, actions: PluginActions, options: WorkerPluginHostOptions = {}) {
    this.#name = spec.name;
    this.#actions = actions;
    this.#log = roleLogger("plugin", spec.name);
    this.#supervisor = new PluginSupervisor({ ...options, name: spec.name });
    this.#stopTimeoutMs = positive("stopTimeoutMs", options.stopTimeoutMs ?? 2_000);
    try {
      this.#settings = structuredClone(spec.settings);
    } catch (err) {
      throw new TypeError(`settings of plugin "${spec.name}" must be plain data`, { cause: err });
    }
    this.#isolation = options.isolation ?? (spec.trusted === true ? "worker" : "process");
    this.#maxMemoryMb = positive("maxMemoryMb", spec.maxMemoryMb ?? 128);
    this.#memoryCheckMs = positive("memoryCheckMs", options.memoryCheckMs ?? 100);
    this.#maxQueuedMessages = positive("maxQueuedMessages", options.maxQueuedMessages ?? 8192);
    this.#maxQueuedBytes = positive("maxQueuedBytes", options.maxQueuedBytes ?? 8 * 1024 * 1024);
    this.#maxQueuedPerPlayer = options.maxQueuedPerPlayer;
    this.#logBucket = new TokenBucket({
      ratePerS: positive("logLinesPerS", options.logLinesPerS ?? 100),
      burst: positive("logBurst", options.logBurst ?? 500),
    });
    if (spec.trusted !== true) {
      for (const key of ["ffi", "run"] as const) {
        const grant = spec.permissions[key];
        if (grant !== undefined && grant !== false) {
          throw new TypeError(
            `plugin "${spec.name}" is granted ${key} but is not trusted (FULL TRUST needed)`,
          );
        }
      }
    }
    const url = resolvePluginUrl(spec.url);
    this.#url = url;
    const importHosts = [...remoteHost(url), ...remoteHost(ENTRY_URL)];
    this.#permissions = buildWorkerPermissions(spec.permissions, { importHosts });
    this.#permissionFlags = buildPermissionFlags(spec.permissions, { importHosts });
    this.#bootstrapUrl = bootstrapUrl(url, this.#isolation);
  }

  /** Where the plugin runs: `process` or `worker`. */
  get isolation(): PluginIsolation {
    return this.#isolation;
  }

  /** The running subprocess's id (`null` in a Worker or while none runs). */
  get pid(): number | null {
    return this.#current?.sandbox?.pid ?? null;
  }

  /** The plugin's name. */
  get name(): string {
    return this.#name;
  }

  /** The host's lifecycle state (`failed`: unloaded after too many restarts). */
  get state(): PluginHostState {
    return this.#supervisor.state;
  }

  /**
   * Whether the plugin handles `command`: what its last loaded incarnation declared (see
   * `pluginCommands`); every command before one has loaded.
   */
  handles(command: number): boolean {
    return this.#supervisor.handles(command);
  }

  /** The hooks the running plugin defines (empty while none is loaded). */
  get hooks(): readonly PluginHookName[] {
    return [...this.#supervisor.hooks];
  }

  /** A copy of the Worker permission descriptor this host passes (complete, from the grants). */
  get permissions(): WorkerPermissionDescriptor {
    return structuredClone(this.#permissions);
  }

  /** A snapshot of the host's counters. */
  get stats(): WorkerPluginHostStats {
    return {
      postsToWorker: this.#postsToWorker,
      eventsToWorker: this.#eventsToWorker,
      batchesFromWorker: this.#batchesFromWorker,
      eventsFromWorker: this.#eventsFromWorker,
      invalidEvents: this.#invalidEvents,
      droppedEvents: this.#droppedEvents,
      hookErrors: this.#hookErrors,
      moveTimeouts: this.#supervisor.moveTimeouts,
      restarts: this.#supervisor.restarts,
      failures: this.#supervisor.failures,
      droppedMessages: this.#droppedMessages,
      droppedLogLines: this.#droppedLogLines,
    };
  }

  /**
   * Starts the Worker, loads the plugin and runs `onStart`.
   *
   * @throws {PluginLoadError} If the module cannot be loaded (bad URL, syntax error, missing
   * permission, no plugin default export), or loading and `onStart` take over `loadTimeoutMs`.
   */
  start(): Promise<void> {
    const state = this.#supervisor.state;
    if (state === "stopping" || state === "stopped") {
      return Promise.reject(new PluginLoadError(this.#name, "the host was stopped"));
    }
    this.#starting ??= this.#start();
    return this.#starting;
  }

  async #start(): Promise<void> {
    this.#supervisor.beginStart();
    try {
      await this.#checkFileExists();
      // stop() may have run while the file was checked: never spawn after it.
      if (this.#supervisor.state !== "starting") {
        throw new PluginLoadError(this.#name, "the host was stopped");
      }
      const started = this.#startWaiter = Promise.withResolvers<void>();
      this.#spawn();
      await started.promise;
    } catch (err) {
      this.#startWaiter = null;
      this.#supervisor.startFailed();
      throw err;
    }
  }

  // A missing local module gets a plain "module not found" at once, rather than whatever the
  // Worker's loader says (under `deno test` it is a type-check failure with the detail only on
  // stderr).
  async #checkFileExists(): Promise<void> {
    if (this.#url.protocol !== "file:") return;
    let isFile: boolean;
    try {
      isFile = (await Deno.stat(this.#url)).isFile;
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) {
        throw new PluginLoadError(this.#name, `module not found: ${this.#url.href}`, {
          cause: err,
        });
      }
      // The cluster may not be allowed to look (no read permission): the Worker's own load
      // will report what is wrong.
      this.#log.debug("cannot check {url} before loading it: {error}", {
        url: this.#url.href,
        error: err,
      });
      return;
    }
    if (!isFile) {
      throw new PluginLoadError(this.#name, `module is not a file: ${this.#url.href}`);
    }
  }

  /** A player joined. */
  join(player: PlayerInfo): void {
    assertPlayer(player);
    this.#supervisor.join(player);
    this.#send({ kind: "join", player });
  }

  /** A player left. */
  leave(player: PlayerInfo, reason: string): void {
    assertPlayer(player);
    this.#supervisor.leave(player.clientId);
    this.#send({ kind: "leave", player, reason: String(reason) });
  }

  /**
   * A player sent a plugin command; the payload is copied into the next batch. Dropped (and
   * counted) while the plugin's queue is full.
   */
  message(from: ClientId, command: number, payload: Uint8Array): void {
    assertMessage(from, command, payload);
    const inc = this.#live();
    if (inc === null) {
      this.#droppedEvents++;
      return;
    }
    if (
      (inc.sandbox?.backlogBytes ?? 0) >= this.#maxQueuedBytes ||
      !inc.bound.admit(from, payload.length)
    ) {
      this.#droppedMessages++;
      this.#messagesToReport++;
      this.#reportDrops(performance.now());
      return;
    }
    inc.batcher.pushRecord(from, command, payload);
  }

  /**
   * A player moves. Resolves at once (`true`) when the plugin has no `onMove` or is not
   * running; otherwise asks the Worker and accepts if no verdict comes in `moveTimeoutMs`.
   */
  move(client: ClientId, move: PluginMove): boolean | Promise<boolean> {
    assertMove(client, move);
    const inc = this.#live();
    if (inc === null || !this.#supervisor.hooks.has("onMove")) return true;
    const id = this.#nextId++;
    inc.batcher.push({ kind: "move", id, client, move });
    return new Promise<boolean>((resolve) => {
      this.#moveWaiters.set(id, resolve);
      this.#supervisor.moveSent(id, performance.now());
      this.#arm();
    });
  }

  /** A cluster tick. */
  tick(dtMs: number): void {
    assertTick(dtMs);
    this.#send({ kind: "tick", dtMs });
  }

  /**
   * Resolves once the Worker has handled every event sent so far and its resulting actions
   * were delivered (or at once when no Worker runs; early if the Worker dies).
   */
  flush(): Promise<void> {
    const inc = this.#live();
    if (inc === null) return Promise.resolve();
    const id = this.#nextId++;
    inc.batcher.push({ kind: "barrier", id });
    return new Promise<void>((resolve) => inc.barriers.set(id, resolve));
  }

  /** Runs `onStop` (up to `stopTimeoutMs`) and terminates the Worker. Idempotent. */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    // No restart and no watchdog from here on.
    const askStop = this.#supervisor.stopping();
    this.#arm();
    const inc = this.#current;
    if (inc !== null) {
      if (askStop) {
        const stopped = Promise.withResolvers<boolean>();
        inc.onStopped = () => stopped.resolve(true);
        inc.batcher.push({ kind: "stop" });
        const timer = setTimeout(() => stopped.resolve(false), this.#stopTimeoutMs);
        const clean = await stopped.promise;
        clearTimeout(timer);
        if (!clean) {
          this.#log.warn("onStop did not finish within {ms} ms; terminated anyway", {
            ms: this.#stopTimeoutMs,
          });
        }
      }
      this.#apply(this.#supervisor.terminate("the host was stopped"));
      // Wait for the subprocess to be reaped (SIGKILL: at once), never for longer.
      const reaped = inc.sandbox?.closed ?? Promise.resolve();
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([reaped, new Promise((r) => timer = setTimeout(r, this.#stopTimeoutMs))]);
      clearTimeout(timer);
    }
    this.#supervisor.stopped();
  }

  // The Worker to send events to, if one is loaded and the host is not stopping.
  #live(): Incarnation | null {
    return this.#supervisor.live ? this.#current : null;
  }

  #dead(inc: Incarnation): boolean {
    return this.#supervisor.phase(inc.generation) === "dead";
  }

  #send(event: HostEvent): void {
    const inc = this.#live();
    if (inc === null) this.#droppedEvents++;
    else inc.batcher.push(event);
  }

  // Starts a sandbox and reports it to the supervisor.
  // Throws PluginLoadError if the sandbox cannot even be created.
  #spawn(): void {
    const batcher = new MessageBatcher<HostEvent>((batch, transfer) => {
      // A flush scheduled before the sandbox was killed finds nothing to post to.
      if (this.#dead(inc) || inc.sandbox === null) return;
      this.#postsToWorker++;
      this.#eventsToWorker += batch.events.length;
      inc.sandbox.post(batch, transfer);
    }, { run: (count) => ({ kind: "messages", count }) });
    const inc = new Incarnation(
      batcher,
      new PluginQueueBound({
        maxMessages: this.#maxQueuedMessages,
        maxBytes: this.#maxQueuedBytes,
        maxPerPlayer: this.#maxQueuedPerPlayer,
      }),
    );
    const listener: PluginSandboxListener = {
      batch: (data) => this.#receive(inc, data),
      invalid: (reason) => this.#invalid(reason),
      failed: (reason, message) =>
        this.#apply(
          this.#supervisor.crashed(inc.generation, reason, message, performance.now()),
        ),
      stderr: (line) => {
        if (this.#supervisor.stderr(inc.generation, line)) {
          this.#pluginLog("warning", `stderr: ${line}`);
        }
      },
    };
    try {
      inc.sandbox = this.#isolation === "worker"
        ? new WorkerPluginSandbox(this.#bootstrapUrl, this.#name, this.#permissions, listener)
        : new ProcessPluginSandbox({
          bootstrapUrl: this.#bootstrapUrl,
          permissionFlags: this.#permissionFlags,
          maxMemoryMb: this.#maxMemoryMb,
          memoryCheckMs: this.#memoryCheckMs,
        }, listener);
    } catch (err) {
      const reason = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
      throw new PluginLoadError(this.#name, withEscalationHint(reason), { cause: err });
    }
    inc.generation = this.#supervisor.spawned(performance.now());
    this.#current = inc;
    this.#arm();
  }

  // A restart the supervisor asked for; a sandbox that cannot be created counts as a failure.
  #respawn(): void {
    try {
      this.#spawn();
    } catch (err) {
      this.#apply(this.#supervisor.spawnFailed(err, performance.now()));
    }
  }

  // Performs what the supervisor decided, then sets the timer for its next deadline.
  #apply(actions: readonly SupervisorAction[]): void {
    for (const action of actions) {
      switch (action.kind) {
        case "spawn":
          this.#respawn();
          break;
        case "replay":
          this.#replay(action.players);
          break;
        case "ping":
          this.#current?.batcher.push({ kind: "ping", seq: action.seq });
          break;
        case "started":
          this.#startWaiter?.resolve();
          this.#startWaiter = null;
          break;
        case "kill":
          this.#kill(action.generation, action.reason);
          break;
        case "verdict":
          this.#moveWaiters.get(action.id)?.(action.accept);
          this.#moveWaiters.delete(action.id);
          break;
        case "log":
          this.#supervisorLog(action.level, action.message, action.properties);
          break;
      }
    }
    this.#arm();
  }

  #arm(): void {
    const next = this.#supervisor.nextDeadline();
    if (next === undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#timerAt = Infinity;
      return;
    }
    if (this.#timer !== undefined && this.#timerAt <= next) return;
    clearTimeout(this.#timer);
    this.#timerAt = next;
    this.#timer = setTimeout(this.#onTimer, Math.max(0, next - performance.now()));
  }

  readonly #onTimer = (): void => {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    const now = performance.now();
    this.#reportDrops(now);
    this.#apply(this.#supervisor.tick(now));
  };

  #supervisorLog(
    level: LogLevelName,
    message: string,
    properties: Readonly<Record<string, unknown>>,
  ): void {
    if (level === "debug") this.#log.debug(message, properties);
    else if (level === "info") this.#log.info(message, properties);
    else if (level === "warning") this.#log.warn(message, properties);
    else this.#log.error(message, properties);
  }

  #receive(inc: Incarnation, data: unknown): void {
    if (this.#dead(inc)) return;
    if (!isMessageBatch(data)) {
      this.#invalid("a Worker message that is not an event batch");
      return;
    }
    this.#batchesFromWorker++;
    const batch = data as MessageBatch<unknown>;
    let record = 0; // the next compact record's offset in batch.records
    for (const raw of batch.events) {
      const event = parseWorkerEvent(raw, batch.bytes.length);
      if (typeof event === "string") {
        this.#invalid(event);
        continue;
      }
      if (event.kind === "sends") {
        record = this.#sends(inc, batch, record, event.count);
        continue;
      }
      this.#eventsFromWorker++;
      this.#handle(inc, event, batch.bytes);
      // #handle may have killed this Worker (a load failure): drop the rest of its batch.
      if (this.#dead(inc)) return;
    }
  }

  // A run of `count` compact send records from `record` on; returns the offset after it.
  #sends(inc: Incarnation, batch: MessageBatch<unknown>, record: number, count: number): number {
    const { bytes, records } = batch;
    for (let i = 0; i < count; i++, record += RECORD_FIELDS) {
      const wrong = checkSendRecord(records, record, bytes.length);
      if (wrong !== null) {
        this.#invalid(wrong);
        // Past the end, every later record of the run is missing too.
        if (records === undefined || record >= records.length) return record;
        continue;
      }
      if (this.#supervisor.phase(inc.generation) === "loading") {
        this.#invalid("send before the plugin was loaded");
        continue;
      }
      this.#eventsFromWorker++;
      const r = records as Uint32Array;
      const payload = payloadOf(bytes, r[record + 2], r[record + 3]);
      const to = r[record] as ClientId;
      const command = r[record + 1];
      // #act's closure inlined: this loop runs once per echoed message.
      try {
        this.#actions.send(to, command, payload);
      } catch (err) {
        this.#log.error("cluster action {what} failed: {error}", { what: "send", error: err });
      }
    }
    return record;
  }

  #invalid(reason: string): void {
    this.#invalidEvents++;
    // A hostile plugin could post garbage in a loop: log the first ones, then every 1000th.
    if (this.#invalidEvents <= 10 || this.#invalidEvents % 1000 === 0) {
      this.#log.warn("dropped an invalid Worker event ({reason}); {count} so far", {
        reason,
        count: this.#invalidEvents,
      });
    }
  }

  #handle(inc: Incarnation, event: WorkerEvent, bytes: Uint8Array): void {
    // Before `ready`, only the plugin module's own top-level code has run: anything it posts
    // besides the entry's load result is forged.
    if (
      this.#supervisor.phase(inc.generation) === "loading" && event.kind !== "ready" &&
      event.kind !== "loadFailed"
    ) {
      this.#invalid(`${event.kind} before the plugin was loaded`);
      return;
    }
    switch (event.kind) {
      case "ready":
        return this.#onReady(inc, event);
      case "loadFailed":
        return this.#onLoadFailed(inc, event);
      case "started":
        return this.#onStarted(inc);
      case "sends": // runs are read in #receive
        return;
      case "send":
        return this.#onSend(event, bytes);
      case "broadcast":
        return this.#onBroadcast(event, bytes);
      case "kick":
        return this.#onKick(event);
      case "log":
        return this.#pluginLog(event.level, event.message);
      case "handled":
        return inc.bound.handled(event.messages, event.bytes);
      case "hookError":
        return this.#onHookError(event);
      case "moveResult":
        return this.#onMoveResult(inc, event);
      case "pong":
        return this.#supervisor.pong(inc.generation, performance.now());
      case "barrierDone":
        return this.#onBarrierDone(inc, event);
      case "stopped":
        return inc.onStopped?.();
    }
  }

  #onReady(inc: Incarnation, event: WorkerEventOf<"ready">): void {
    this.#apply(this.#supervisor.ready(inc.generation, event.hooks, event.commands));
  }

  #onLoadFailed(inc: Incarnation, event: WorkerEventOf<"loadFailed">): void {
    this.#apply(this.#supervisor.loadFailed(inc.generation, event.reason, performance.now()));
  }

  #onStarted(inc: Incarnation): void {
    this.#apply(this.#supervisor.started(inc.generation, performance.now()));
  }

  #onSend(event: WorkerEventOf<"send">, bytes: Uint8Array): void {
    this.#act(
      "send",
      () => this.#actions.send(event.to, event.command, payloadOf(bytes, event.at, event.length)),
    );
  }

  #onBroadcast(event: WorkerEventOf<"broadcast">, bytes: Uint8Array): void {
    this.#act("broadcast", () =>
      this.#actions.broadcast(
        event.command,
        payloadOf(bytes, event.at, event.length),
        event.options,
      ));
  }

  #onKick(event: WorkerEventOf<"kick">): void {
    this.#act("kick", () => this.#actions.kick(event.client, event.reason));
  }

  #onHookError(event: WorkerEventOf<"hookError">): void {
    this.#hookErrors++;
    logHookError(this.#log, event.hook, event.errorName, event.errorMessage);
  }

  #onMoveResult(inc: Incarnation, event: WorkerEventOf<"moveResult">): void {
    this.#apply(this.#supervisor.moveResult(inc.generation, event.id, event.accept));
  }

  #onBarrierDone(inc: Incarnation, event: WorkerEventOf<"barrierDone">): void {
    const resolve = inc.barriers.get(event.id);
    inc.barriers.delete(event.id);
    resolve?.();
  }

  // The sandbox loaded: `onStart`, then an `onJoin` per current player, so its state rebuilds.
  #replay(players: readonly PlayerInfo[]): void {
    const inc = this.#current;
    if (inc === null) return;
    inc.batcher.push({ kind: "start", name: this.#name, settings: this.#settings });
    for (const player of players) inc.batcher.push({ kind: "join", player });
  }

  // One line of the plugin's log, if its bucket allows; drops are summed into one line a
  // second, so a flooding plugin costs the cluster's log at most that.
  #pluginLog(level: LogLevelName, message: string): void {
    const now = performance.now();
    if (this.#logBucket.take(1, now)) {
      logPluginLine(this.#log, level, message);
      return;
    }
    this.#droppedLogLines++;
    this.#logLinesToReport++;
    this.#reportDrops(now);
  }

  #reportDrops(now: number): void {
    if (this.#logLinesToReport > 0 && this.#logThrottle.admit("log", now) !== null) {
      this.#log.warn("dropped {count} log line(s) of plugin {plugin} over its rate limit", {
        count: this.#logLinesToReport,
        plugin: this.#name,
      });
      this.#logLinesToReport = 0;
    }
    if (this.#messagesToReport > 0 && this.#logThrottle.admit("queue", now) !== null) {
      this.#log.warn(
        "dropped {count} player message(s) to plugin {plugin}: its queue is full",
        { count: this.#messagesToReport, plugin: this.#name },
      );
      this.#messagesToReport = 0;
    }
  }

  // A cluster action that throws is the cluster's bug, not the plugin's: log it and go on
  // with the rest of the batch.
  #act(what: string, run: () => void): void {
    try {
      run();
    } catch (err) {
      this.#log.error("cluster action {what} failed: {error}", { what, error: err });
    }
  }

  /** Why the latest sandbox ended abnormally (hang, crash, …), or undefined. */
  get lastError(): string | undefined {
    return this.#supervisor.lastError;
  }

  /**
   * Replaces the running Worker by a fresh one now (an operator's action): players are
   * replayed to it as after a crash. Returns false (nothing done) unless the plugin is running.
   */
  restart(): boolean {
    const actions = this.#supervisor.restart();
    if (actions === null) return false;
    this.#apply(actions);
    return true;
  }

  // Ends one sandbox for good: terminated, every waiter released (flushes and stop resolved,
  // a pending first start rejected); the supervisor has its moves' verdicts.
  #kill(generation: number, reason: string): void {
    const inc = this.#current;
    if (inc === null || inc.generation !== generation) return;
    this.#current = null;
    inc.sandbox?.terminate();
    for (const resolve of inc.barriers.values()) resolve();
    inc.barriers.clear();
    inc.onStopped?.();
    if (this.#startWaiter !== null) {
      this.#startWaiter.reject(new PluginLoadError(this.#name, reason));
      this.#startWaiter = null;
    }
  }
}
