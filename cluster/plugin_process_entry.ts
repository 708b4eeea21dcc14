/**
 * The code a plugin subprocess runs around the plugin: the same event loop as a Worker's
 * ({@linkcode runPluginWorker}), its batches carried as frames (`plugin_stream.ts`) instead of
 * `postMessage`: from the host over the loopback socket the lockdown connects, to the host on
 * stdout.
 *
 * The process's main module is a bootstrap the host generates (a `data:` URL, so nothing is
 * written to disk) that statically imports, in this order, `plugin_lockdown.ts`, the plugin
 * and this module, then calls {@linkcode runPluginProcess}. Static imports load without read
 * permission; the lockdown runs before the plugin's first line.
 *
 * It must never let the plugin's output reach the host unframed (console output becomes log
 * events), never send an unbounded batch (it flushes every {@linkcode PROCESS_BATCH_BYTES} or
 * {@linkcode PROCESS_BATCH_EVENTS}), and it exits when the host closes its input.
 *
 * @module
 */

import { takeHostChannel } from "./plugin_lockdown.ts";
import type { HostEvent, MessageBatch } from "./plugin_messages.ts";
import { encodePluginFrame, PluginFrameReader } from "./plugin_stream.ts";
import { runPluginWorker } from "./plugin_worker_entry.ts";

/**
 * Payload bytes after which the subprocess flushes its batch within a turn.
 *
 * @example
 * ```ts
 * import { PROCESS_BATCH_BYTES, PROCESS_BATCH_EVENTS } from "./plugin_process_entry.ts";
 * import { MessageBatcher, type WorkerEvent } from "./plugin_messages.ts";
 * import assert from "node:assert/strict";
 *
 * // The subprocess's batcher: a flood of large payloads is posted in bounded batches.
 * const posts: number[] = [];
 * const batcher = new MessageBatcher<WorkerEvent>((batch) => posts.push(batch.bytes.length), {
 *   maxBatchBytes: PROCESS_BATCH_BYTES,
 *   maxBatchEvents: PROCESS_BATCH_EVENTS,
 * });
 * const payload = new Uint8Array(64 * 1024);
 * for (let i = 0; i < 8; i++) {
 *   const at = batcher.pack(payload);
 *   batcher.push({ kind: "broadcast", command: 0x80, at, length: payload.length, options: {} });
 * }
 * await Promise.resolve(); // the end of the turn
 * assert.deepEqual(posts, [PROCESS_BATCH_BYTES, PROCESS_BATCH_BYTES]);
 * ```
 */
export const PROCESS_BATCH_BYTES = 256 * 1024;

/**
 * Events after which the subprocess flushes its batch within a turn.
 *
 * @example
 * ```ts
 * import { PROCESS_BATCH_BYTES, PROCESS_BATCH_EVENTS } from "./plugin_process_entry.ts";
 * import { MessageBatcher, type WorkerEvent } from "./plugin_messages.ts";
 * import assert from "node:assert/strict";
 *
 * // The subprocess's batcher: many small events are posted in batches of at most this many.
 * const posts: number[] = [];
 * const batcher = new MessageBatcher<WorkerEvent>((batch) => posts.push(batch.events.length), {
 *   maxBatchBytes: PROCESS_BATCH_BYTES,
 *   maxBatchEvents: PROCESS_BATCH_EVENTS,
 * });
 * for (let seq = 0; seq < PROCESS_BATCH_EVENTS + 10; seq++) batcher.push({ kind: "pong", seq });
 * await Promise.resolve(); // the end of the turn
 * assert.deepEqual(posts, [PROCESS_BATCH_EVENTS, 10]);
 * ```
 */
export const PROCESS_BATCH_EVENTS = 4096;

/**
 * Runs a loaded plugin module in this subprocess, talking to the host over the lockdown's input
 * connection and stdout.
 *
 * @param module The plugin module's namespace (`import * as plugin from "…"`).
 *
 * @example
 * ```ts ignore
 * import "./plugin_lockdown.ts";
 * import * as plugin from "../plugins/echo.ts";
 * import { runPluginProcess } from "./plugin_process_entry.ts";
 * runPluginProcess(plugin);
 * ```
 */
export function runPluginProcess(module: unknown): void {
  const channel = takeHostChannel();
  if (channel === null) {
    // The plugin took the channel at load: nothing can be reported but the exit status.
    Deno.stderr.writeSync(new TextEncoder().encode("the plugin took the host channel\n"));
    throw new Error("the plugin took the host channel");
  }
  // Frames go out in order, straight to the stdout resource (no stream layer); a failed write
  // means the host is gone. The write is synchronous (an async one is a trip through the
  // runtime's thread pool: measured 20-25 µs of each round trip); it blocks only this process,
  // only while the host's pipe is full, and the host always reads.
  const write = (bytes: Uint8Array): void => {
    try {
      for (let at = 0; at < bytes.length;) at += channel.writeSync(bytes.subarray(at));
    } catch {
      channel.exit(0);
    }
  };
  // The entry's one message listener, called directly (an EventTarget dispatch per batch costs
  // more than the batch's own work when batches are small).
  const listeners: ((event: Event) => void)[] = [];
  const scope = {
    postMessage(batch: unknown): void {
      write(encodePluginFrame(batch as MessageBatch<unknown>));
    },
    addEventListener(type: string, listener: (event: Event) => void): void {
      if (type === "message") listeners.push(listener);
      else globalThis.addEventListener(type, listener);
    },
  };
  const log = runPluginWorker(module, scope, {
    maxBatchBytes: PROCESS_BATCH_BYTES,
    maxBatchEvents: PROCESS_BATCH_EVENTS,
    // The host's input is a socket: only a timer turn gets its reads (and pings) delivered.
    yieldTurn: () => new Promise((resolve) => setTimeout(resolve, 0)),
  });
  channel.setConsoleSink(log);
  const deliver = (batch: MessageBatch<HostEvent>) => {
    const event = { data: batch } as MessageEvent;
    for (const listener of listeners) listener(event);
  };
  readHost(channel.read, deliver).then(() => channel.exit(0), (err: unknown) => {
    // Why the input broke (e.g. the connect to the host failed) goes to the host's log.
    const reason = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    Deno.stderr.writeSync(new TextEncoder().encode(`the host's input failed: ${reason}\n`));
    channel.exit(1);
  });
}

// Reads the input connection straight from its resource (no stream layer: it cost a pipe round
// trip about a third of its time); the frame reader copies what it keeps, so one buffer is reused.
async function readHost(
  read: (into: Uint8Array) => Promise<number | null>,
  deliver: (batch: MessageBatch<HostEvent>) => void,
): Promise<void> {
  const reader = new PluginFrameReader();
  const buffer = new Uint8Array(64 * 1024);
  for (;;) {
    const n = await read(buffer);
    if (n === null) return;
    for (const batch of reader.push(buffer.subarray(0, n))) {
      deliver(batch as MessageBatch<HostEvent>);
    }
    if (reader.error !== null) throw new Error(reader.error);
  }
}
