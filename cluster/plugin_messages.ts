// This module is browser compatible.
/**
 * The messages between a Worker plugin host and its Worker, and their batching: each side
 * queues events and posts them once per event-loop turn as one {@linkcode MessageBatch}
 * (an array of events plus one byte buffer holding every payload, transferred, not cloned).
 *
 * The Worker runs untrusted plugin code that can post anything to the host, so the host side
 * must never act on a Worker event that {@linkcode parseWorkerEvent} has not accepted: commands
 * in 0x80..0xFF, client ids u32, payload ranges inside the batch, strings bounded. Events the
 * host sends are trusted by the Worker.
 *
 * @module
 */

import {
  type BroadcastOptions,
  checkBroadcastOptions,
  type ClientId,
  isClientId,
  isPluginCommand,
  type PlayerInfo,
  PLUGIN_HOOKS,
  type PluginHookName,
  type PluginMove,
} from "../shared/plugin.ts";
import { LOG_LEVEL_NAMES, type LogLevelName } from "../shared/log_level_name.ts";

/**
 * An event the host sends to its Worker. `message` payloads are `bytes[at, at + length)` of
 * the batch.
 *
 * @example
 * ```ts
 * import type { HostEvent } from "./plugin_messages.ts";
 * import assert from "node:assert/strict";
 *
 * const event: HostEvent = { kind: "tick", dtMs: 50 };
 * assert.equal(event.kind, "tick");
 * ```
 */
export type HostEvent =
  | {
    readonly kind: "start";
    readonly name: string;
    readonly settings: Readonly<Record<string, unknown>>;
  }
  | { readonly kind: "join"; readonly player: PlayerInfo }
  | { readonly kind: "leave"; readonly player: PlayerInfo; readonly reason: string }
  | {
    readonly kind: "message";
    readonly from: ClientId;
    readonly command: number;
    readonly at: number;
    readonly length: number;
  }
  | { readonly kind: "messages"; readonly count: number }
  | {
    readonly kind: "move";
    readonly id: number;
    readonly client: ClientId;
    readonly move: PluginMove;
  }
  | { readonly kind: "tick"; readonly dtMs: number }
  | { readonly kind: "ping"; readonly seq: number }
  | { readonly kind: "barrier"; readonly id: number }
  | { readonly kind: "stop" };

/**
 * An event a Worker sends to its host. `send`/`broadcast` payloads are `bytes[at, at + length)`
 * of the batch.
 *
 * @example
 * ```ts
 * import type { WorkerEvent } from "./plugin_messages.ts";
 * import assert from "node:assert/strict";
 *
 * const event: WorkerEvent = { kind: "pong", seq: 3 };
 * assert.equal(event.kind, "pong");
 * ```
 */
export type WorkerEvent =
  | {
    readonly kind: "ready";
    readonly hooks: readonly PluginHookName[];
    /** The plugin commands it handles (`pluginCommands`); absent = all. */
    readonly commands?: readonly number[];
  }
  | { readonly kind: "loadFailed"; readonly reason: string }
  | { readonly kind: "started" }
  | {
    readonly kind: "send";
    readonly to: ClientId;
    readonly command: number;
    readonly at: number;
    readonly length: number;
  }
  | {
    readonly kind: "broadcast";
    readonly command: number;
    readonly at: number;
    readonly length: number;
    readonly options: BroadcastOptions;
  }
  | { readonly kind: "sends"; readonly count: number }
  | { readonly kind: "kick"; readonly client: ClientId; readonly reason: string }
  | { readonly kind: "log"; readonly level: LogLevelName; readonly message: string }
  | {
    readonly kind: "hookError";
    readonly hook: PluginHookName | "uncaught";
    readonly errorName: string;
    readonly errorMessage: string;
  }
  | { readonly kind: "moveResult"; readonly id: number; readonly accept: boolean }
  | { readonly kind: "pong"; readonly seq: number }
  | { readonly kind: "barrierDone"; readonly id: number }
  | { readonly kind: "handled"; readonly messages: number; readonly bytes: number }
  | { readonly kind: "stopped" };

/**
 * What one `postMessage` carries: the events of one event-loop turn, in order, and the bytes
 * of all their payloads.
 *
 * @example
 * ```ts
 * import type { MessageBatch, WorkerEvent } from "./plugin_messages.ts";
 * import assert from "node:assert/strict";
 *
 * const batch: MessageBatch<WorkerEvent> = { events: [{ kind: "started" }], bytes: new Uint8Array() };
 * assert.equal(batch.events.length, 1);
 * ```
 */
export interface MessageBatch<E> {
  /** The events, in the order they were pushed. */
  readonly events: readonly E[];
  /** Every payload of the batch, back to back. */
  readonly bytes: Uint8Array;
  /**
   * The batch's compact records, {@linkcode RECORD_FIELDS} u32 each (`client, command, at,
   * length`), read in order by its `messages`/`sends` run events; absent when there are none.
   */
  readonly records?: Uint32Array;
}

/**
 * u32 fields per compact record in a batch's `records`: client id, command, payload offset,
 * payload length.
 *
 * @example
 * ```ts
 * import { checkSendRecord, payloadOf, RECORD_FIELDS } from "./plugin_messages.ts";
 * import assert from "node:assert/strict";
 *
 * // Two sends packed as records, their payloads side by side in one byte buffer.
 * const bytes = new Uint8Array([1, 2, 3]);
 * const records = new Uint32Array([7, 0x80, 0, 2, 9, 0x81, 2, 1]);
 * const sends: [number, number, number[]][] = [];
 * for (let at = 0; at < records.length; at += RECORD_FIELDS) {
 *   assert.equal(checkSendRecord(records, at, bytes.length), null);
 *   const [to, command, offset, length] = records.subarray(at, at + RECORD_FIELDS);
 *   sends.push([to, command, [...payloadOf(bytes, offset, length)]]);
 * }
 * assert.deepEqual(sends, [[7, 0x80, [1, 2]], [9, 0x81, [3]]]);
 * ```
 */
export const RECORD_FIELDS = 4;

/**
 * Options of {@linkcode MessageBatcher}.
 *
 * @example
 * ```ts
 * import {
 *   MessageBatcher,
 *   type MessageBatcherOptions,
 *   type WorkerEvent,
 * } from "./plugin_messages.ts";
 * import assert from "node:assert/strict";
 *
 * // A caller-driven flush (e.g. once per game tick) instead of one per event-loop turn.
 * let flushDue: (() => void) | undefined;
 * const options: MessageBatcherOptions<WorkerEvent> = {
 *   initialBytes: 1024,
 *   schedule: (flush) => void (flushDue = flush),
 * };
 * const posts: number[] = [];
 * const batcher = new MessageBatcher<WorkerEvent>((batch) => posts.push(batch.events.length), options);
 * batcher.push({ kind: "pong", seq: 1 });
 * batcher.push({ kind: "pong", seq: 2 });
 * assert.deepEqual(posts, []);
 * flushDue?.();
 * assert.deepEqual(posts, [2]);
 * ```
 */
export interface MessageBatcherOptions<E = unknown> {
  /**
   * Starting size of the payload buffer (it doubles as needed, and shrinks back after a batch
   * above 1 MiB).
   * @default {4096}
   */
  readonly initialBytes?: number;
  /**
   * Runs `flush` at the end of the current turn.
   * @default {queueMicrotask}
   */
  readonly schedule?: (flush: () => void) => void;
  /**
   * Makes the run event that stands for `count` consecutive compact records (`messages` on the
   * host side, `sends` in the Worker); {@linkcode MessageBatcher.pushRecord} needs it.
   */
  readonly run?: (count: number) => E;
  /**
   * Payload bytes after which the batch is posted at once, within the turn (a flood then
   * makes several bounded batches instead of one huge one).
   * @default {Infinity}
   */
  readonly maxBatchBytes?: number;
  /**
   * Events after which the batch is posted at once, within the turn.
   * @default {Infinity}
   */
  readonly maxBatchEvents?: number;
}

const SHRINK_ABOVE_BYTES = 1 << 20;
const EMPTY_BYTES = new Uint8Array(0);

/**
 * Queues events and posts them as one {@linkcode MessageBatch} per event-loop turn. Payloads
 * are copied into one growing buffer when packed (the caller may reuse its own buffer at
 * once); at flush that buffer's used part is copied once more into an exactly-sized buffer
 * that is transferred with the batch, so the receiver gets views, not clones.
 *
 * @example 1000 events in one turn make one post
 * ```ts
 * import { MessageBatcher, payloadOf, type WorkerEvent } from "./plugin_messages.ts";
 * import assert from "node:assert/strict";
 *
 * const posts: { events: readonly WorkerEvent[]; bytes: Uint8Array }[] = [];
 * const batcher = new MessageBatcher<WorkerEvent>((batch) => posts.push(batch));
 * for (let i = 0; i < 1000; i++) {
 *   const at = batcher.pack(new Uint8Array([i & 0xff]));
 *   batcher.push({ kind: "send", to: 1 as never, command: 0x80, at, length: 1 });
 * }
 * await Promise.resolve(); // the end of the turn
 * assert.equal(posts.length, 1);
 * assert.equal(posts[0].events.length, 1000);
 * const last = posts[0].events[999];
 * assert.ok(last.kind === "send");
 * assert.deepEqual([...payloadOf(posts[0].bytes, last.at, last.length)], [999 & 0xff]);
 * ```
 */
export class MessageBatcher<E> {
  readonly #post: (batch: MessageBatch<E>, transfer: Transferable[]) => void;
  readonly #schedule: (flush: () => void) => void;
  readonly #initialBytes: number;
  readonly #flush = () => this.flush();
  readonly #run: ((count: number) => E) | undefined;
  readonly #maxBatchBytes: number;
  readonly #maxBatchEvents: number;
  #events: E[] = [];
  #bytes: Uint8Array;
  #used = 0;
  #records: Uint32Array;
  #recordsUsed = 0;
  // The open run of records: its slot in #events (filled in when it closes) and its length.
  #runSlot = -1;
  #runCount = 0;
  #runEvents = 0; // run events in #events (pending counts their records instead)
  #scheduled = false;
  #posts = 0;
  #eventsPosted = 0;

  /**
   * @param post Sends one batch (`worker.postMessage(batch, transfer)`).
   * @param options Buffer size and scheduling.
   * @throws {RangeError} If `initialBytes` is not a positive integer.
   */
  constructor(
    post: (batch: MessageBatch<E>, transfer: Transferable[]) => void,
    options: MessageBatcherOptions<E> = {},
  ) {
    const initialBytes = options.initialBytes ?? 4096;
    if (!Number.isInteger(initialBytes) || initialBytes <= 0) {
      throw new RangeError(`initialBytes must be a positive integer, got ${initialBytes}`);
    }
    this.#post = post;
    // Wrapped: some runtimes refuse a queueMicrotask called with another `this`.
    this.#schedule = options.schedule ?? ((flush) => queueMicrotask(flush));
    this.#initialBytes = initialBytes;
    this.#bytes = new Uint8Array(initialBytes);
    this.#run = options.run;
    this.#maxBatchBytes = options.maxBatchBytes ?? Infinity;
    this.#maxBatchEvents = options.maxBatchEvents ?? Infinity;
    this.#records = new Uint32Array(options.run === undefined ? 0 : 256 * RECORD_FIELDS);
  }

  /** How many batches were posted so far (one `postMessage` each). */
  get posts(): number {
    return this.#posts;
  }

  /** How many events were posted so far. */
  get eventsPosted(): number {
    return this.#eventsPosted;
  }

  /** Events waiting for the next flush (each compact record counts as one). */
  get pending(): number {
    return this.#events.length - this.#runEvents + this.#recordsUsed / RECORD_FIELDS;
  }

  /**
   * Copies a payload into the pending batch.
   *
   * @param payload The bytes.
   * @returns Their offset in the batch's `bytes` (length is `payload.length`).
   */
  pack(payload: Uint8Array): number {
    const at = this.#used;
    const need = at + payload.length;
    if (need > this.#bytes.length) {
      let size = this.#bytes.length * 2;
      while (size < need) size *= 2;
      const grown = new Uint8Array(size);
      grown.set(this.#bytes.subarray(0, at));
      this.#bytes = grown;
    }
    this.#bytes.set(payload, at);
    this.#used = need;
    return at;
  }

  /**
   * Queues an event; the batch is posted at the end of the current turn.
   *
   * @param event The event.
   */
  push(event: E): void {
    if (this.#runSlot >= 0) this.#closeRun();
    this.#events.push(event);
    this.#arm();
  }

  /**
   * Queues one compact record (a message or send: client, command, payload) without an event
   * object: consecutive records share one run event, so a burst costs one structured-clone
   * object instead of one per message. Order with {@linkcode MessageBatcher.push} is kept.
   *
   * @param client The client id (u32).
   * @param command The command (u8).
   * @param payload The bytes, copied at once (as {@linkcode MessageBatcher.pack}).
   * @throws {TypeError} If the batcher was made without a `run` option.
   *
   * @example Three sends, one run event, one records array
   * ```ts
   * import { MessageBatcher, type MessageBatch, type WorkerEvent } from "./plugin_messages.ts";
   * import assert from "node:assert/strict";
   *
   * const posts: MessageBatch<WorkerEvent>[] = [];
   * const batcher = new MessageBatcher<WorkerEvent>((batch) => posts.push(batch), {
   *   run: (count) => ({ kind: "sends", count }),
   * });
   * for (const to of [1, 2, 3]) batcher.pushRecord(to, 0x80, new Uint8Array([to]));
   * batcher.push({ kind: "started" });
   * batcher.flush();
   * assert.deepEqual(posts[0].events, [{ kind: "sends", count: 3 }, { kind: "started" }]);
   * assert.deepEqual([...posts[0].records!.subarray(4, 8)], [2, 0x80, 1, 1]);
   * assert.equal(batcher.eventsPosted, 4);
   * ```
   */
  pushRecord(client: number, command: number, payload: Uint8Array): void {
    const run = this.#run;
    if (run === undefined) throw new TypeError("pushRecord needs the batcher's run option");
    const at = this.pack(payload);
    let used = this.#recordsUsed;
    if (used + RECORD_FIELDS > this.#records.length) {
      const grown = new Uint32Array(Math.max(256 * RECORD_FIELDS, this.#records.length * 2));
      grown.set(this.#records.subarray(0, used));
      this.#records = grown;
    }
    const records = this.#records;
    records[used++] = client;
    records[used++] = command;
    records[used++] = at;
    records[used++] = payload.length;
    this.#recordsUsed = used;
    if (this.#runSlot < 0) {
      this.#runSlot = this.#events.length;
      this.#events.push(run(0)); // a placeholder, replaced when the run closes
      this.#runEvents++;
    }
    this.#runCount++;
    this.#arm();
  }

  #closeRun(): void {
    this.#events[this.#runSlot] = (this.#run as (count: number) => E)(this.#runCount);
    this.#runSlot = -1;
    this.#runCount = 0;
  }

  #arm(): void {
    if (this.#used >= this.#maxBatchBytes || this.pending >= this.#maxBatchEvents) {
      this.flush();
      return;
    }
    if (!this.#scheduled) {
      this.#scheduled = true;
      this.#schedule(this.#flush);
    }
  }

  /** Posts the pending events now (nothing happens if there are none). */
  flush(): void {
    // A flush scheduled earlier in the turn still runs (and finds nothing) after a size flush.
    this.#scheduled = false;
    if (this.#events.length === 0) return;
    const count = this.pending;
    if (this.#runSlot >= 0) this.#closeRun();
    const events = this.#events;
    const bytes = this.#used === 0 ? EMPTY_BYTES : this.#bytes.slice(0, this.#used);
    this.#events = [];
    this.#runEvents = 0;
    this.#used = 0;
    if (this.#bytes.length > SHRINK_ABOVE_BYTES) this.#bytes = new Uint8Array(this.#initialBytes);
    this.#posts++;
    this.#eventsPosted += count;
    const transfer: Transferable[] = bytes === EMPTY_BYTES ? [] : [bytes.buffer];
    if (this.#recordsUsed === 0) {
      this.#post({ events, bytes }, transfer);
      return;
    }
    const records = this.#records.slice(0, this.#recordsUsed);
    this.#recordsUsed = 0;
    transfer.push(records.buffer);
    this.#post({ events, bytes, records }, transfer);
  }
}

/**
 * The payload of an event: a view of the batch's bytes (no copy).
 *
 * @param bytes The batch's `bytes`.
 * @param at The event's offset.
 * @param length The event's length.
 *
 * @example
 * ```ts
 * import { payloadOf } from "./plugin_messages.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual([...payloadOf(new Uint8Array([1, 2, 3, 4]), 1, 2)], [2, 3]);
 * ```
 */
export function payloadOf(bytes: Uint8Array, at: number, length: number): Uint8Array {
  return bytes.subarray(at, at + length);
}

/**
 * Checks the compact send record at `offset` of a Worker batch's `records` (posted by plugin
 * code, so untrusted): inside the array, command in 0x80..0xFF, payload inside the batch.
 *
 * @param records The batch's `records` (absent if the Worker sent none).
 * @param offset The record's first index (a multiple of {@linkcode RECORD_FIELDS}).
 * @param byteLength The batch's `bytes.length`.
 * @returns `null` if the record is good, else what is wrong.
 *
 * @example
 * ```ts
 * import { checkSendRecord } from "./plugin_messages.ts";
 * import assert from "node:assert/strict";
 *
 * const records = new Uint32Array([7, 0x80, 0, 2, 7, 0x2a, 0, 2]);
 * assert.equal(checkSendRecord(records, 0, 2), null);
 * assert.equal(typeof checkSendRecord(records, 4, 2), "string"); // a forged Move (0x2a)
 * assert.equal(typeof checkSendRecord(records, 8, 2), "string"); // past the end
 * ```
 */
export function checkSendRecord(
  records: Uint32Array | undefined,
  offset: number,
  byteLength: number,
): string | null {
  if (records === undefined || offset + RECORD_FIELDS > records.length) {
    return "sends: run past the records";
  }
  if (!isPluginCommand(records[offset + 1])) return "sends: command outside 0x80..0xff";
  if (records[offset + 2] + records[offset + 3] > byteLength) return "sends: payload out of range";
  return null;
}

/**
 * Tells whether a posted value has the shape of a {@linkcode MessageBatch} (events array and
 * bytes); its events still need {@linkcode parseWorkerEvent} one by one.
 *
 * @param data A `MessageEvent`'s data.
 *
 * @example
 * ```ts
 * import { isMessageBatch } from "./plugin_messages.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(isMessageBatch({ events: [], bytes: new Uint8Array() }), true);
 * assert.equal(isMessageBatch("hello"), false);
 * ```
 */
export function isMessageBatch(data: unknown): data is MessageBatch<unknown> {
  if (typeof data !== "object" || data === null) return false;
  const { events, bytes, records } = data as Record<string, unknown>;
  return Array.isArray(events) && bytes instanceof Uint8Array &&
    (records === undefined || records instanceof Uint32Array);
}

/**
 * Longest log line kept from a plugin, in UTF-16 units; longer ones are cut.
 *
 * @example
 * ```ts
 * import { MAX_PLUGIN_LOG_CHARS, parseWorkerEvent } from "./plugin_messages.ts";
 * import assert from "node:assert/strict";
 *
 * const long = "x".repeat(MAX_PLUGIN_LOG_CHARS + 100);
 * const event = parseWorkerEvent({ kind: "log", level: "info", message: long }, 0);
 * assert.ok(typeof event === "object" && event.kind === "log");
 * assert.equal(event.message, `${"x".repeat(MAX_PLUGIN_LOG_CHARS)}…`); // cut, and marked so
 * ```
 */
export const MAX_PLUGIN_LOG_CHARS = 8192;
/**
 * Longest kick reason or error text kept from a plugin, in UTF-16 units.
 *
 * @example
 * ```ts
 * import { MAX_PLUGIN_REASON_CHARS, parseWorkerEvent } from "./plugin_messages.ts";
 * import assert from "node:assert/strict";
 *
 * const reason = "cheating ".repeat(MAX_PLUGIN_REASON_CHARS);
 * const event = parseWorkerEvent({ kind: "kick", client: 4, reason }, 0);
 * assert.ok(typeof event === "object" && event.kind === "kick");
 * assert.equal(event.reason, `${reason.slice(0, MAX_PLUGIN_REASON_CHARS)}…`); // cut, and marked so
 * ```
 */
export const MAX_PLUGIN_REASON_CHARS = 1024;

function bounded(value: string, max: number): string {
  return value.length <= max ? value : `${value.slice(0, max)}…`;
}

function isCount(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

// The payload range [at, at + length) of an event, if it lies inside the batch's bytes.
function payloadRange(
  e: Record<string, unknown>,
  byteLength: number,
): { at: number; length: number } | null {
  const { at, length } = e;
  if (!isCount(at) || !isCount(length) || at + length > byteLength) return null;
  return { at, length };
}

/**
 * Checks one event a Worker posted and returns a clean copy, or a reason to drop it. Plugin
 * code can post anything, so this is the host's boundary: nothing else reaches the cluster.
 *
 * @param event One element of a batch's `events`.
 * @param byteLength The batch's `bytes.length` (payload ranges must fit).
 * @returns The checked event, or a string saying what was wrong.
 *
 * @example
 * ```ts
 * import { parseWorkerEvent } from "./plugin_messages.ts";
 * import assert from "node:assert/strict";
 *
 * const ok = parseWorkerEvent({ kind: "send", to: 4, command: 0x80, at: 0, length: 2 }, 2);
 * assert.deepEqual(ok, { kind: "send", to: 4, command: 0x80, at: 0, length: 2 });
 * // A forged Move (0x2a) from plugin code never reaches the cluster.
 * const bad = parseWorkerEvent({ kind: "send", to: 4, command: 0x2a, at: 0, length: 2 }, 2);
 * assert.equal(typeof bad, "string");
 * ```
 */
export function parseWorkerEvent(event: unknown, byteLength: number): WorkerEvent | string {
  if (typeof event !== "object" || event === null) return "not an object";
  const e = event as Record<string, unknown>;
  switch (e.kind) {
    case "send": {
      if (!isClientId(e.to)) return "send: bad client id";
      if (!isPluginCommand(e.command)) return "send: command outside 0x80..0xff";
      const range = payloadRange(e, byteLength);
      if (range === null) return "send: payload out of range";
      return { kind: "send", to: e.to, command: e.command, at: range.at, length: range.length };
    }
    case "broadcast": {
      if (!isPluginCommand(e.command)) return "broadcast: command outside 0x80..0xff";
      const range = payloadRange(e, byteLength);
      if (range === null) return "broadcast: payload out of range";
      const options = parseBroadcastOptions(e.options);
      if (options === null) return "broadcast: bad options";
      return { kind: "broadcast", command: e.command, ...range, options };
    }
    case "sends":
      // The records themselves are checked one by one where they are read (the host).
      if (!isCount(e.count) || e.count === 0) return "sends: bad count";
      return { kind: "sends", count: e.count };
    case "kick":
      if (!isClientId(e.client)) return "kick: bad client id";
      if (typeof e.reason !== "string") return "kick: reason is not a string";
      return { kind: "kick", client: e.client, reason: bounded(e.reason, MAX_PLUGIN_REASON_CHARS) };
    case "log":
      if (!(LOG_LEVEL_NAMES as readonly unknown[]).includes(e.level)) return "log: bad level";
      if (typeof e.message !== "string") return "log: message is not a string";
      return {
        kind: "log",
        level: e.level as LogLevelName,
        message: bounded(e.message, MAX_PLUGIN_LOG_CHARS),
      };
    case "hookError":
      if (e.hook !== "uncaught" && !(PLUGIN_HOOKS as readonly unknown[]).includes(e.hook)) {
        return "hookError: bad hook";
      }
      if (typeof e.errorName !== "string" || typeof e.errorMessage !== "string") {
        return "hookError: bad error text";
      }
      return {
        kind: "hookError",
        hook: e.hook as PluginHookName | "uncaught",
        errorName: bounded(e.errorName, MAX_PLUGIN_REASON_CHARS),
        errorMessage: bounded(e.errorMessage, MAX_PLUGIN_REASON_CHARS),
      };
    case "moveResult":
      if (!isCount(e.id) || typeof e.accept !== "boolean") return "moveResult: bad fields";
      return { kind: "moveResult", id: e.id, accept: e.accept };
    case "pong":
      if (!isCount(e.seq)) return "pong: bad seq";
      return { kind: "pong", seq: e.seq };
    case "barrierDone":
      if (!isCount(e.id)) return "barrierDone: bad id";
      return { kind: "barrierDone", id: e.id };
    case "handled":
      if (!isCount(e.messages) || !isCount(e.bytes)) return "handled: bad counts";
      return { kind: "handled", messages: e.messages, bytes: e.bytes };
    case "ready": {
      if (!Array.isArray(e.hooks)) return "ready: hooks is not an array";
      const hooks = PLUGIN_HOOKS.filter((hook) => (e.hooks as unknown[]).includes(hook));
      if (e.commands === undefined) return { kind: "ready", hooks };
      if (!Array.isArray(e.commands) || !e.commands.every(isPluginCommand)) {
        return "ready: commands is not a list of plugin commands";
      }
      return { kind: "ready", hooks, commands: [...new Set(e.commands as number[])] };
    }
    case "loadFailed":
      if (typeof e.reason !== "string") return "loadFailed: reason is not a string";
      return { kind: "loadFailed", reason: bounded(e.reason, MAX_PLUGIN_REASON_CHARS) };
    case "started":
      return { kind: "started" };
    case "stopped":
      return { kind: "stopped" };
    default:
      return "unknown kind";
  }
}

function parseBroadcastOptions(value: unknown): BroadcastOptions | null {
  const options = checkBroadcastOptions(value);
  return typeof options === "string" ? null : options;
}
