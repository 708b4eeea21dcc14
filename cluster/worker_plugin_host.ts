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
 * plugin marked `trusted` (`worker_plugin_sandbox.ts`). The supervision here is the same for
 * both.
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
import {
  type ClientId,
  type PlayerInfo,
  PlayerRoster,
  type PluginHookName,
  type PluginMove,
} from "../shared/plugin.ts";
import type { LogLevelName } from "../shared/log_level_name.ts";
import { ReconnectBackoff } from "./backoff.ts";
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
import {
  PLUGIN_FAILURES,
  type PluginFailure,
  type PluginSandbox,
  type PluginSandboxListener,
} from "./plugin_sandbox.ts";
import { ProcessPluginSandbox } from "./process_plugin_sandbox.ts";
import { WorkerPluginSandbox } from "./worker_plugin_sandbox.ts";
import { PluginQueueBound } from "./plugin_queue_bound.ts";

/**
 * Where a plugin's code runs: `process` (a `deno run` subprocess, the only choice for
 * untrusted code) or `worker` (a module Worker in the cluster's process: full trust).
 *
 * @example
 * ```ts
 * import type { PluginIsolation } from "./worker_plugin_host.ts";
 * import assert from "node:assert/strict";
 *
 * const isolation: PluginIsolation = "process";
 * assert.equal(isolation, "process");
 * ```
 */
export type PluginIsolation = "process" | "worker";

/**
 * Options of {@linkcode WorkerPluginHost}.
 *
 * @example
 * ```ts
 * import type { WorkerPluginHostOptions } from "./worker_plugin_host.ts";
 * import assert from "node:assert/strict";
 *
 * const options: WorkerPluginHostOptions = { watchdogMs: 1000, maxRestarts: 3 };
 * assert.equal(options.maxRestarts, 3);
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
 * import type { WorkerPluginHostStats } from "./worker_plugin_host.ts";
 * import assert from "node:assert/strict";
 *
 * const stats: Pick<WorkerPluginHostStats, "restarts"> = { restarts: 0 };
 * assert.equal(stats.restarts, 0);
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

type Phase = "loading" | "starting" | "running" | "dead";

interface PendingMove {
  readonly resolve: (accept: boolean) => void;
  readonly deadline: number;
}

// One sandbox and everything that lives and dies with it.
class Incarnation {
  sandbox: PluginSandbox | null = null;
  readonly batcher: MessageBatcher<HostEvent>;
  readonly started = Promise.withResolvers<void>();
  phase: Phase = "loading";
  hooks: ReadonlySet<PluginHookName> = new Set();
  startedAt = 0;
  lastPongAt = 0;
  pingSeq = 0;
  settled = false;
  loadTimer: ReturnType<typeof setTimeout> | undefined;
  watchdogTimer: ReturnType<typeof setInterval> | undefined;
  moveTimer: ReturnType<typeof setTimeout> | undefined;
  onStopped: (() => void) | null = null;
  readonly moves = new Map<number, PendingMove>();
  readonly barriers = new Map<number, () => void>();
  // Player messages posted and not yet acknowledged as handled.
  readonly bound: PluginQueueBound;
  // The first stderr lines of a subprocess that has not loaded yet: they say why a load failed.
  readonly loadErrors: string[] = [];

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
const LOAD_ERROR_LINES = 8;

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
  readonly #roster = new PlayerRoster();
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
  readonly #backoff: ReconnectBackoff;
  readonly #watchdogMs: number;
  readonly #maxRestarts: number;
  readonly #stableAfterMs: number;
  readonly #loadTimeoutMs: number;
  readonly #moveTimeoutMs: number;
  readonly #stopTimeoutMs: number;
  #commands: readonly number[] | "all" = "all";
  #state: PluginHostState = "idle";
  #current: Incarnation | null = null;
  #lastError: string | undefined;
  #restartTimer: ReturnType<typeof setTimeout> | undefined;
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
  #moveTimeouts = 0;
  #restarts = 0;
  readonly #failures: Record<PluginFailure, number> = Object.fromEntries(
    PLUGIN_FAILURES.map((reason) => [reason, 0]),
  ) as Record<PluginFailure, number>;
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
    this.#watchdogMs = positive("watchdogMs", options.watchdogMs ?? 2_000);
    this.#loadTimeoutMs = positive("loadTimeoutMs", options.loadTimeoutMs ?? 10_000);
    this.#moveTimeoutMs = positive("moveTimeoutMs", options.moveTimeoutMs ?? 250);
    this.#stopTimeoutMs = positive("stopTimeoutMs", options.stopTimeoutMs ?? 2_000);
    this.#stableAfterMs = positive("stableAfterMs", options.stableAfterMs ?? 60_000);
    this.#maxRestarts = options.maxRestarts ?? 5;
    if (!Number.isInteger(this.#maxRestarts) || this.#maxRestarts < 0) {
      throw new RangeError(`maxRestarts must be an integer >= 0, got ${this.#maxRestarts}`);
    }
    const restartBackoffMs = positive("restartBackoffMs", options.restartBackoffMs ?? 500);
    this.#backoff = new ReconnectBackoff({
      minMs: restartBackoffMs,
      maxMs: Math.max(restartBackoffMs, options.maxRestartBackoffMs ?? 30_000),
    });
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
    return this.#state;
  }

  /**
   * Whether the plugin handles `command`: what its last loaded incarnation declared (see
   * `pluginCommands`); every command before one has loaded.
   */
  handles(command: number): boolean {
    const commands = this.#commands;
    return commands === "all" || commands.includes(command);
  }

  /** The hooks the running plugin defines (empty while none is loaded). */
  get hooks(): readonly PluginHookName[] {
    return [...(this.#current?.hooks ?? [])];
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
      moveTimeouts: this.#moveTimeouts,
      restarts: this.#restarts,
      failures: { ...this.#failures },
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
    if (this.#state === "stopping" || this.#state === "stopped") {
      return Promise.reject(new PluginLoadError(this.#name, "the host was stopped"));
    }
    this.#starting ??= this.#start();
    return this.#starting;
  }

  async #start(): Promise<void> {
    this.#state = "starting";
    try {
      await this.#checkFileExists();
      // stop() may have run while the file was checked: never spawn after it.
      if (this.#state !== "starting") throw new PluginLoadError(this.#name, "the host was stopped");
      const inc = this.#spawn();
      await inc.started.promise;
    } catch (err) {
      if (this.#state === "starting") this.#state = "failed";
      throw err;
    }
    if (this.#state === "starting") this.#state = "running";
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
    this.#roster.add(player);
    this.#send({ kind: "join", player });
  }

  /** A player left. */
  leave(player: PlayerInfo, reason: string): void {
    assertPlayer(player);
    this.#roster.remove(player.clientId);
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
    if (inc === null || !inc.hooks.has("onMove")) return true;
    const id = this.#nextId++;
    inc.batcher.push({ kind: "move", id, client, move });
    return new Promise<boolean>((resolve) => {
      inc.moves.set(id, { resolve, deadline: performance.now() + this.#moveTimeoutMs });
      this.#armMoveTimer(inc);
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
    this.#state = "stopping";
    clearTimeout(this.#restartTimer);
    this.#restartTimer = undefined;
    const inc = this.#current;
    if (inc !== null) {
      clearInterval(inc.watchdogTimer);
      if (inc.phase === "running") {
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
      this.#kill(inc, "the host was stopped");
      // Wait for the subprocess to be reaped (SIGKILL: at once), never for longer.
      const reaped = inc.sandbox?.closed ?? Promise.resolve();
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([reaped, new Promise((r) => timer = setTimeout(r, this.#stopTimeoutMs))]);
      clearTimeout(timer);
    }
    this.#state = "stopped";
  }

  // The Worker to send events to, if one is loaded and the host is not stopping.
  #live(): Incarnation | null {
    const inc = this.#current;
    if (inc === null || (inc.phase !== "starting" && inc.phase !== "running")) return null;
    if (this.#state === "stopping" || this.#state === "stopped") return null;
    return inc;
  }

  #send(event: HostEvent): void {
    const inc = this.#live();
    if (inc === null) this.#droppedEvents++;
    else inc.batcher.push(event);
  }

  #spawn(): Incarnation {
    const batcher = new MessageBatcher<HostEvent>((batch, transfer) => {
      // A flush scheduled before the sandbox was killed finds nothing to post to.
      if (inc.phase === "dead" || inc.sandbox === null) return;
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
      failed: (reason, message) => this.#crashed(inc, reason, message),
      stderr: (line) => {
        if (inc.phase === "dead") return;
        if (inc.phase === "loading" && inc.loadErrors.length < LOAD_ERROR_LINES) {
          inc.loadErrors.push(line.trim());
        }
        this.#pluginLog("warning", `stderr: ${line}`);
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
    this.#current = inc;
    inc.loadTimer = setTimeout(
      () => this.#loadFailed(inc, `did not load and start within ${this.#loadTimeoutMs} ms`),
      this.#loadTimeoutMs,
    );
    return inc;
  }

  #receive(inc: Incarnation, data: unknown): void {
    if (inc.phase === "dead") return;
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
      if ((inc.phase as Phase) === "dead") return;
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
      if (inc.phase === "loading") {
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
    if (inc.phase === "loading" && event.kind !== "ready" && event.kind !== "loadFailed") {
      this.#invalid(`${event.kind} before the plugin was loaded`);
      return;
    }
    switch (event.kind) {
      case "ready":
        if (inc.phase !== "loading") return;
        inc.phase = "starting";
        inc.hooks = new Set(event.hooks);
        this.#commands = !inc.hooks.has("onMessage") ? [] : event.commands ?? "all";
        inc.batcher.push({ kind: "start", name: this.#name, settings: this.#settings });
        for (const player of this.#roster.list()) inc.batcher.push({ kind: "join", player });
        return;
      case "loadFailed":
        if (inc.phase === "loading") this.#loadFailed(inc, event.reason);
        return;
      case "started":
        if (inc.phase === "starting") this.#running(inc);
        return;
      case "sends": // runs are read in #receive
        return;
      case "send":
        this.#act(
          "send",
          () =>
            this.#actions.send(event.to, event.command, payloadOf(bytes, event.at, event.length)),
        );
        return;
      case "broadcast":
        this.#act("broadcast", () =>
          this.#actions.broadcast(
            event.command,
            payloadOf(bytes, event.at, event.length),
            event.options,
          ));
        return;
      case "kick":
        this.#act("kick", () => this.#actions.kick(event.client, event.reason));
        return;
      case "log":
        this.#pluginLog(event.level, event.message);
        return;
      case "handled":
        inc.bound.handled(event.messages, event.bytes);
        return;
      case "hookError":
        this.#hookErrors++;
        logHookError(this.#log, event.hook, event.errorName, event.errorMessage);
        return;
      case "moveResult": {
        const pending = inc.moves.get(event.id);
        if (pending !== undefined) {
          inc.moves.delete(event.id);
          pending.resolve(event.accept);
        }
        return;
      }
      case "pong":
        inc.lastPongAt = performance.now();
        return;
      case "barrierDone": {
        const resolve = inc.barriers.get(event.id);
        inc.barriers.delete(event.id);
        resolve?.();
        return;
      }
      case "stopped":
        inc.onStopped?.();
        return;
    }
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

  #running(inc: Incarnation): void {
    inc.phase = "running";
    clearTimeout(inc.loadTimer);
    inc.startedAt = inc.lastPongAt = performance.now();
    inc.watchdogTimer = setInterval(() => this.#watch(inc), Math.max(1, this.#watchdogMs / 2));
    inc.settled = true;
    inc.started.resolve();
  }

  #watch(inc: Incarnation): void {
    const now = performance.now();
    this.#reportDrops(now);
    const silentMs = now - inc.lastPongAt;
    if (silentMs > this.#watchdogMs) {
      this.#failures.hang++;
      this.#recover(
        inc,
        "hang",
        `did not answer the watchdog for ${Math.round(silentMs)} ms (hung)`,
      );
      return;
    }
    inc.batcher.push({ kind: "ping", seq: ++inc.pingSeq });
  }

  #crashed(inc: Incarnation, reason: PluginFailure, message: string): void {
    if (inc.phase === "dead") return;
    this.#failures[reason]++;
    if (inc.phase === "loading" || inc.phase === "starting") {
      const detail = inc.loadErrors.length === 0 ? "" : `: ${inc.loadErrors.join(" | ")}`;
      this.#loadFailed(inc, `${message}${detail}`);
    } else if (inc.phase === "running") this.#recover(inc, reason, `${reason}: ${message}`);
  }

  #loadFailed(inc: Incarnation, reason: string): void {
    if (inc.phase === "dead") return;
    this.#kill(inc, withEscalationHint(reason));
  }

  /** Why the latest sandbox ended abnormally (hang, crash, …), or undefined. */
  get lastError(): string | undefined {
    return this.#lastError;
  }

  /**
   * Replaces the running Worker by a fresh one now (an operator's action): players are
   * replayed to it as after a crash. Returns false (nothing done) unless the plugin is running.
   */
  restart(): boolean {
    const inc = this.#current;
    if (this.#state !== "running" || inc === null) return false;
    this.#kill(inc, "restarted by an operator");
    this.#backoff.reset();
    this.#restarts++;
    this.#state = "restarting";
    this.#log.warn("restarting plugin {plugin} at an operator's request", { plugin: this.#name });
    this.#respawn();
    return true;
  }

  // A running plugin hung or crashed: replace it, unless it has failed too often in a row.
  #recover(inc: Incarnation, _failure: PluginFailure, reason: string): void {
    if (inc.phase === "dead") return;
    this.#lastError = reason;
    const ranMs = performance.now() - inc.startedAt;
    this.#kill(inc, reason);
    this.#log.error("plugin {plugin} {reason}; terminated", { plugin: this.#name, reason });
    if (ranMs >= this.#stableAfterMs) this.#backoff.reset();
    this.#scheduleRestart();
  }

  #scheduleRestart(): void {
    if (this.#state === "stopping" || this.#state === "stopped") return;
    if (this.#backoff.attempts >= this.#maxRestarts) {
      this.#state = "failed";
      this.#log.error("plugin {plugin} failed {count} times in a row; unloaded", {
        plugin: this.#name,
        count: this.#backoff.attempts + 1,
      });
      return;
    }
    const delayMs = this.#backoff.next();
    this.#restarts++;
    this.#state = "restarting";
    this.#log.warn("restarting plugin {plugin} in {delayMs} ms", { plugin: this.#name, delayMs });
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = undefined;
      this.#respawn();
    }, delayMs);
  }

  #respawn(): void {
    let inc: Incarnation;
    try {
      inc = this.#spawn();
    } catch (err) {
      this.#log.error("plugin {plugin} could not restart: {error}", {
        plugin: this.#name,
        error: err,
      });
      this.#scheduleRestart();
      return;
    }
    inc.started.promise.then(
      () => {
        if (this.#current !== inc || this.#state !== "restarting") return;
        this.#state = "running";
        this.#log.info("plugin {plugin} restarted with {players} player(s) replayed", {
          plugin: this.#name,
          players: this.#roster.size,
        });
      },
      (err: unknown) => {
        this.#log.error("plugin {plugin} could not restart: {error}", {
          plugin: this.#name,
          error: err,
        });
        this.#scheduleRestart();
      },
    );
  }

  // Ends one Worker for good: timers cleared, thread terminated, every waiter released (moves
  // accepted, flushes and stop resolved, a pending start rejected).
  #kill(inc: Incarnation, reason: string): void {
    if (inc.phase === "dead") return;
    inc.phase = "dead";
    clearTimeout(inc.loadTimer);
    clearInterval(inc.watchdogTimer);
    clearTimeout(inc.moveTimer);
    inc.sandbox?.terminate();
    if (this.#current === inc) this.#current = null;
    for (const pending of inc.moves.values()) pending.resolve(true);
    inc.moves.clear();
    for (const resolve of inc.barriers.values()) resolve();
    inc.barriers.clear();
    inc.onStopped?.();
    if (!inc.settled) {
      inc.settled = true;
      inc.started.reject(new PluginLoadError(this.#name, reason));
    }
  }

  #armMoveTimer(inc: Incarnation): void {
    if (inc.moveTimer !== undefined || inc.moves.size === 0) return;
    // Deadlines grow with insertion order, so the first pending move expires first.
    const first = inc.moves.values().next().value as PendingMove;
    inc.moveTimer = setTimeout(() => {
      inc.moveTimer = undefined;
      this.#expireMoves(inc);
    }, Math.max(0, first.deadline - performance.now()));
  }

  #expireMoves(inc: Incarnation): void {
    const now = performance.now();
    let expired = 0;
    for (const [id, pending] of inc.moves) {
      if (pending.deadline > now) break;
      inc.moves.delete(id);
      pending.resolve(true);
      expired++;
    }
    if (expired > 0) {
      this.#moveTimeouts += expired;
      this.#log.warn("{count} move verdict(s) took over {ms} ms; accepted", {
        count: expired,
        ms: this.#moveTimeoutMs,
      });
    }
    this.#armMoveTimer(inc);
  }
}

/**
 * A Worker can be granted only what the cluster's own process has: Deno's "Can't escalate
 * parent thread permissions" then says what to change.
 */
function withEscalationHint(reason: string): string {
  if (!/escalate parent thread permissions/i.test(reason)) return reason;
  return `${reason} (a trusted plugin's Worker gets only permissions the cluster itself has: ` +
    "run the cluster with them too, e.g. --allow-import=<host> for an https:/http: plugin URL " +
    "or its imports; deno task cluster grants no --allow-import)";
}
