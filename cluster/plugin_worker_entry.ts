// This module is browser compatible.
/**
 * The code a plugin Worker runs around the plugin: it checks the plugin module's default
 * export, tells the host which hooks exist, then turns the host's event batches into hook
 * calls and the plugin's actions into batches back (one `postMessage` per turn).
 *
 * The Worker's main module is a two-line bootstrap the host generates (see
 * `worker_plugin_host.ts`) that statically imports the plugin and this module and calls
 * {@linkcode runPluginWorker}. Static imports are part of the Worker's module graph and load
 * without read permission; a dynamic `import(url)` here would need read access to the plugin
 * file and every local module it imports, which would hand that access to the plugin too.
 *
 * It must never let a plugin exception end the Worker: every hook call is caught, uncaught
 * errors and rejections are caught on the global scope, and all are reported to the host as
 * `hookError` events. It must never use a Deno API: the Worker usually has no permissions.
 *
 * @module
 */

import {
  type ClientId,
  createPluginContext,
  definePlugin,
  PlayerRoster,
  pluginCommands,
  type PluginContext,
  type PluginHookName,
  pluginHooks,
  type SustenetPlugin,
} from "../shared/plugin.ts";
import type { LogLevelName } from "../shared/log_level_name.ts";
import {
  type HostEvent,
  type MessageBatch,
  MessageBatcher,
  payloadOf,
  RECORD_FIELDS,
  type WorkerEvent,
} from "./plugin_messages.ts";

/**
 * The parts of a Worker's global scope the entry uses (a real Worker's `self`, or a stand-in
 * in tests).
 *
 * @example
 * ```ts
 * import type { PluginWorkerScope } from "./plugin_worker_entry.ts";
 * import assert from "node:assert/strict";
 *
 * const scope: PluginWorkerScope = Object.assign(new EventTarget(), { postMessage() {} });
 * assert.equal(typeof scope.postMessage, "function");
 * ```
 */
export interface PluginWorkerScope {
  /** Posts to the host. */
  postMessage(message: unknown, transfer: Transferable[]): void;
  /** Listens for `message`, `error` and `unhandledrejection`. */
  addEventListener(type: string, listener: (event: Event) => void): void;
}

/**
 * Options of {@linkcode runPluginWorker}: bounds on one batch to the host.
 *
 * @example
 * ```ts
 * import type { PluginWorkerOptions } from "./plugin_worker_entry.ts";
 * import assert from "node:assert/strict";
 *
 * const options: PluginWorkerOptions = { maxBatchEvents: 4096 };
 * assert.equal(options.maxBatchEvents, 4096);
 * ```
 */
export interface PluginWorkerOptions {
  /**
   * Payload bytes after which a batch is sent within the turn.
   * @default {Infinity}
   */
  readonly maxBatchBytes?: number;
  /**
   * Events after which a batch is sent within the turn.
   * @default {Infinity}
   */
  readonly maxBatchEvents?: number;
  /**
   * How a long run of events lets the event loop turn (every 20 ms of work), so the host's
   * pings are read and answered. A subprocess passes `setTimeout(0)`: in Deno 2.9.6 a socket's
   * read is not delivered across `setImmediate` turns (measured: ~60 of them, 400 ms of work,
   * before a loopback read came), but is after one timer turn.
   * @default {setImmediate where there is one, else setTimeout(0)}
   */
  readonly yieldTurn?: () => Promise<void>;
}

function errorParts(err: unknown): { errorName: string; errorMessage: string } {
  if (err instanceof Error) return { errorName: err.name, errorMessage: err.message };
  return { errorName: typeof err, errorMessage: String(err) };
}

/**
 * Runs a loaded plugin module inside a Worker: posts `ready` (or `loadFailed` if the module's
 * default export is not a plugin) and then serves the host's events until `stop`.
 *
 * @param module The plugin module's namespace (`import * as plugin from "…"`).
 * @param scope The Worker's global scope.
 * @param options Batch bounds.
 * @returns A function that sends a log line to the host (for console output).
 *
 * @example Drive the entry with a stand-in scope
 * ```ts
 * import { runPluginWorker } from "./plugin_worker_entry.ts";
 * import { definePlugin } from "../shared/plugin.ts";
 * import assert from "node:assert/strict";
 *
 * const posted: { events: { kind: string }[] }[] = [];
 * const scope = Object.assign(new EventTarget(), {
 *   postMessage: (batch: { events: { kind: string }[] }) => posted.push(batch),
 * });
 * runPluginWorker({ default: definePlugin({ onTick() {} }) }, scope);
 * await Promise.resolve();
 * assert.deepEqual(posted[0].events, [{ kind: "ready", hooks: ["onTick"], commands: [] }]);
 *
 * const start = { kind: "start", name: "demo", settings: {} };
 * scope.dispatchEvent(new MessageEvent("message", {
 *   data: { events: [start, { kind: "ping", seq: 1 }], bytes: new Uint8Array() },
 * }));
 * await new Promise((resolve) => setTimeout(resolve, 0));
 * assert.deepEqual(posted.slice(1).flatMap((b) => b.events), [
 *   { kind: "pong", seq: 1 },
 *   { kind: "started" },
 * ]);
 * ```
 */
export function runPluginWorker(
  module: unknown,
  scope: PluginWorkerScope,
  options: PluginWorkerOptions = {},
): (level: LogLevelName, message: string) => void {
  const batcher = new MessageBatcher<WorkerEvent>(
    (batch, transfer) => scope.postMessage(batch, transfer),
    {
      run: (count) => ({ kind: "sends", count }),
      maxBatchBytes: options.maxBatchBytes,
      maxBatchEvents: options.maxBatchEvents,
    },
  );
  const log = (level: LogLevelName, message: string) =>
    batcher.push({ kind: "log", level, message });
  const report = (hook: PluginHookName | "uncaught", err: unknown) =>
    batcher.push({ kind: "hookError", hook, ...errorParts(err) });

  // Errors that escape hooks (a throw in a timer, a rejected promise nobody awaited) would end
  // the Worker; they are reported and the plugin keeps running.
  scope.addEventListener("error", (event) => {
    event.preventDefault();
    report("uncaught", (event as ErrorEvent).error ?? (event as ErrorEvent).message);
  });
  scope.addEventListener("unhandledrejection", (event) => {
    event.preventDefault();
    report("uncaught", (event as PromiseRejectionEvent).reason);
  });

  let plugin: SustenetPlugin;
  try {
    const exported = (module as { default?: unknown } | null)?.default;
    if (exported === undefined) {
      throw new TypeError("the module has no default export (export default definePlugin({...}))");
    }
    plugin = definePlugin(exported as SustenetPlugin);
  } catch (err) {
    const { errorName, errorMessage } = errorParts(err);
    batcher.push({ kind: "loadFailed", reason: `${errorName}: ${errorMessage}` });
    return log;
  }

  const roster = new PlayerRoster();
  const serve = new PluginEventLoop(
    plugin,
    batcher,
    roster,
    report,
    options.yieldTurn ?? yieldTurn,
  );
  scope.addEventListener("message", (event) => {
    const batch = (event as MessageEvent).data as MessageBatch<HostEvent>;
    serve.receive(batch);
  });
  const commands = pluginCommands(plugin);
  batcher.push({
    kind: "ready",
    hooks: pluginHooks(plugin),
    ...(commands === "all" ? {} : { commands }),
  });
  return log;
}

// Longest the plugin's event loop runs queued events before it yields to answer pings.
const DRAIN_SLICE_MS = 20;

// One turn of the event loop: setImmediate where there is one (Deno, a Deno Worker: a few µs),
// else setTimeout(0) (clamped to 1 ms or more; Deno 2.9.6 measured 2.2 ms).
const yieldTurn: () => Promise<void> = typeof globalThis.setImmediate === "function"
  ? () => new Promise((resolve) => setImmediate(resolve))
  : () => new Promise((resolve) => setTimeout(resolve, 0));

// Runs host events in order. Hooks are synchronous except onStart/onStop, whose promises are
// awaited before the next event, so a plugin never sees a join before its start finished.
class PluginEventLoop {
  readonly #plugin: SustenetPlugin;
  readonly #batcher: MessageBatcher<WorkerEvent>;
  readonly #roster: PlayerRoster;
  readonly #report: (hook: PluginHookName | "uncaught", err: unknown) => void;
  // Queued events and, side by side, the batch each came in (its payloads and records) and,
  // for a `messages` run, its first record's offset; parallel arrays rather than a wrapper
  // object per event.
  #queue: HostEvent[] = [];
  #queueBatch: MessageBatch<HostEvent>[] = [];
  #queueRecordAt: number[] = [];
  #head = 0;
  #draining = false;
  // Messages handled (and their payload bytes) since the last `handled` ack to the host.
  #handledMessages = 0;
  #handledBytes = 0;
  #ctx: PluginContext | null = null;
  #stopped = false;
  readonly #yieldTurn: () => Promise<void>;

  constructor(
    plugin: SustenetPlugin,
    batcher: MessageBatcher<WorkerEvent>,
    roster: PlayerRoster,
    report: (hook: PluginHookName | "uncaught", err: unknown) => void,
    yieldTurn: () => Promise<void>,
  ) {
    this.#plugin = plugin;
    this.#batcher = batcher;
    this.#roster = roster;
    this.#report = report;
    this.#yieldTurn = yieldTurn;
  }

  receive(batch: MessageBatch<HostEvent>): void {
    let record = 0;
    for (const event of batch.events) {
      // Pings are answered at once, not queued: the watchdog asks whether this thread's event
      // loop is alive, not whether a slow onStart has finished.
      if (event.kind === "ping") this.#batcher.push({ kind: "pong", seq: event.seq });
      else {
        this.#queue.push(event);
        this.#queueBatch.push(batch);
        this.#queueRecordAt.push(record);
        if (event.kind === "messages") record += event.count * RECORD_FIELDS;
      }
    }
    if (!this.#draining) {
      this.#drain().catch((err: unknown) => this.#report("uncaught", err));
    }
  }

  async #drain(): Promise<void> {
    this.#draining = true;
    try {
      let sliceEnd = performance.now() + DRAIN_SLICE_MS;
      while (this.#head < this.#queue.length) {
        const at = this.#head;
        const event = this.#queue[at];
        const ctx = this.#ctx;
        if (event.kind === "messages" && ctx !== null && !this.#stopped) {
          const done = this.#messages(
            ctx,
            this.#queueBatch[at],
            this.#queueRecordAt[at],
            event.count,
            sliceEnd,
          );
          if (done < event.count) {
            // Out of time: the rest of the run waits for the next slice.
            this.#queue[at] = { kind: "messages", count: event.count - done };
            this.#queueRecordAt[at] += done * RECORD_FIELDS;
          } else this.#head++;
        } else {
          this.#head++;
          const pending = this.#handle(event, this.#queueBatch[at]);
          if (pending !== undefined) await pending;
        }
        if (performance.now() >= sliceEnd) {
          // Let the event loop run (pings are answered as batches arrive) and tell the host
          // what is done so far, then go on.
          this.#ack();
          await this.#yieldTurn();
          sliceEnd = performance.now() + DRAIN_SLICE_MS;
        }
      }
      this.#queue.length = 0;
      this.#queueBatch.length = 0;
      this.#queueRecordAt.length = 0;
      this.#head = 0;
      this.#ack();
    } finally {
      this.#draining = false;
    }
  }

  #handle(event: HostEvent, batch: MessageBatch<HostEvent>): Promise<void> | undefined {
    if (this.#stopped) return undefined;
    if (event.kind === "start") return this.#start(event.name, event.settings);
    const ctx = this.#ctx;
    if (ctx === null) return undefined; // the host always sends start first
    const plugin = this.#plugin;
    switch (event.kind) {
      case "join":
        this.#roster.add(event.player);
        this.#call("onJoin", () => plugin.onJoin?.(ctx, event.player));
        return undefined;
      case "leave":
        this.#roster.remove(event.player.clientId);
        this.#call("onLeave", () => plugin.onLeave?.(ctx, event.player, event.reason));
        return undefined;
      case "message": {
        const payload = payloadOf(batch.bytes, event.at, event.length);
        this.#handledMessages++;
        this.#handledBytes += payload.length;
        this.#call("onMessage", () => plugin.onMessage?.(ctx, event.from, event.command, payload));
        return undefined;
      }
      case "messages": // handled by #drain, in slices
        return undefined;
      case "move": {
        const verdict = this.#call("onMove", () => plugin.onMove?.(ctx, event.client, event.move));
        this.#batcher.push({ kind: "moveResult", id: event.id, accept: verdict !== false });
        return undefined;
      }
      case "tick":
        this.#call("onTick", () => plugin.onTick?.(ctx, event.dtMs));
        return undefined;
      case "barrier":
        this.#batcher.push({ kind: "barrierDone", id: event.id });
        return undefined;
      case "stop":
        return this.#stop(ctx);
      default:
        return undefined;
    }
  }

  // A run of compact message records (trusted: the host wrote them).
  // Returns how many records it handled: all, unless `sliceEnd` passed first (checked every
  // 32 records, so a slow onMessage cannot keep the event loop from answering pings).
  #messages(
    ctx: PluginContext,
    batch: MessageBatch<HostEvent>,
    at: number,
    count: number,
    sliceEnd: number,
  ): number {
    const plugin = this.#plugin;
    const { bytes, records } = batch;
    if (records === undefined) return count;
    const end = at + count * RECORD_FIELDS;
    if (plugin.onMessage === undefined) {
      this.#handledMessages += count;
      for (let r = at; r < end; r += RECORD_FIELDS) this.#handledBytes += records[r + 3];
      return count;
    }
    let done = 0;
    for (let r = at; r < end; r += RECORD_FIELDS) {
      if ((++done & 31) === 0 && performance.now() >= sliceEnd) {
        done--;
        break;
      }
      this.#handledMessages++;
      this.#handledBytes += records[r + 3];
      // #call's closure inlined: this loop runs once per message.
      try {
        const payload = payloadOf(bytes, records[r + 2], records[r + 3]);
        const result: unknown = plugin.onMessage(
          ctx,
          records[r] as ClientId,
          records[r + 1],
          payload,
        );
        if (result instanceof Promise) {
          result.catch((err: unknown) => this.#report("onMessage", err));
        }
      } catch (err) {
        this.#report("onMessage", err);
      }
    }
    return done;
  }

  // Tells the host how much of what it sent is done, so its per-plugin queue bound counts
  // only what is really waiting here.
  #ack(): void {
    if (this.#handledMessages === 0) return;
    this.#batcher.push({
      kind: "handled",
      messages: this.#handledMessages,
      bytes: this.#handledBytes,
    });
    this.#handledMessages = 0;
    this.#handledBytes = 0;
  }

  async #start(name: string, settings: Readonly<Record<string, unknown>>): Promise<void> {
    const batcher = this.#batcher;
    const ctx = createPluginContext({
      name,
      settings,
      players: () => this.#roster.list(),
      sink: {
        send: (to, command, payload) => batcher.pushRecord(to, command, payload),
        broadcast(command, payload, options) {
          const at = batcher.pack(payload);
          batcher.push({ kind: "broadcast", command, at, length: payload.length, options });
        },
        kick: (client, reason) => batcher.push({ kind: "kick", client, reason }),
        log: (level, message) => batcher.push({ kind: "log", level, message }),
      },
    });
    this.#ctx = ctx;
    await this.#call("onStart", () => this.#plugin.onStart?.(ctx));
    batcher.push({ kind: "started" });
  }

  async #stop(ctx: PluginContext): Promise<void> {
    this.#stopped = true;
    await this.#call("onStop", () => this.#plugin.onStop?.(ctx));
    this.#batcher.push({ kind: "stopped" });
  }

  // Calls one hook; a throw or a rejected promise is reported, never rethrown.
  #call(hook: PluginHookName, run: () => unknown): unknown {
    try {
      const result = run();
      if (result instanceof Promise) {
        return result.catch((err: unknown) => this.#report(hook, err));
      }
      return result;
    } catch (err) {
      this.#report(hook, err);
      return undefined;
    }
  }
}
