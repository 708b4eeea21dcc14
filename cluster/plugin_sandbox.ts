/**
 * The seam between a plugin host's supervision (watchdog, restarts, roster replay, queue
 * bound, logs) and where the plugin's code runs: a {@linkcode PluginSandbox} carries batches
 * both ways and reports that it failed; it knows nothing of plugins, events or players. Two
 * adapters implement it: `worker_plugin_sandbox.ts` (a module Worker: trusted plugins) and
 * `process_plugin_sandbox.ts` (a `deno run` subprocess: every untrusted plugin).
 *
 * It must never act on what the sandbox sends: it hands the raw value to the host, which checks
 * it (`isMessageBatch`, `parseWorkerEvent`).
 *
 * @module
 */

import type { HostEvent, MessageBatch } from "./plugin_messages.ts";

/**
 * Why a sandbox ended, as counted in `/metrics`: `hang` (the watchdog or a stuck input pipe),
 * `crash` (an uncaught error in a Worker, a signal), `memory` (heap limit or RSS cap), `exit`
 * (the process exited by itself), `malformed` (an unreadable stream).
 *
 * @example
 * ```ts
 * import type { PluginFailure } from "./plugin_sandbox.ts";
 * import assert from "node:assert/strict";
 *
 * // An operator's alert rule: memory and crashes page someone, hangs only count.
 * const pages = (reason: PluginFailure) => reason === "memory" || reason === "crash";
 * assert.equal(pages("memory"), true);
 * assert.equal(pages("hang"), false);
 * ```
 */
export type PluginFailure = "hang" | "crash" | "memory" | "exit" | "malformed";

/**
 * Every {@linkcode PluginFailure}, in `/metrics` order.
 *
 * @example
 * ```ts
 * import { PLUGIN_FAILURES } from "./plugin_sandbox.ts";
 * import assert from "node:assert/strict";
 *
 * assert.ok(PLUGIN_FAILURES.includes("hang"));
 * ```
 */
export const PLUGIN_FAILURES: readonly PluginFailure[] = Object.freeze([
  "hang",
  "crash",
  "memory",
  "exit",
  "malformed",
]);

/**
 * What a sandbox reports to its host. Calls come from the sandbox's own callbacks, never
 * after `terminate()`.
 *
 * @example
 * ```ts
 * import type { PluginSandboxListener } from "./plugin_sandbox.ts";
 * import assert from "node:assert/strict";
 *
 * const seen: string[] = [];
 * const listener: PluginSandboxListener = {
 *   batch: () => seen.push("batch"),
 *   invalid: (reason) => seen.push(reason),
 *   failed: (reason) => seen.push(reason),
 *   stderr: (line) => seen.push(line),
 * };
 * listener.failed("hang", "no pong");
 * assert.deepEqual(seen, ["hang"]);
 * ```
 */
export interface PluginSandboxListener {
  /** One received batch, unchecked. */
  batch(data: unknown): void;
  /** Something received was dropped (it could not be decoded); the sandbox carries on. */
  invalid(reason: string): void;
  /** The sandbox is gone or unusable; the host terminates it. */
  failed(reason: PluginFailure, message: string): void;
  /** One line the sandbox wrote to stderr (raw: the host escapes and rate-limits it). */
  stderr(line: string): void;
}

/**
 * One running plugin sandbox.
 *
 * @example A stand-in, as the host's tests could use
 * ```ts
 * import type { PluginSandbox } from "./plugin_sandbox.ts";
 * import assert from "node:assert/strict";
 *
 * let posts = 0;
 * const sandbox: PluginSandbox = {
 *   pid: null,
 *   backlogBytes: 0,
 *   closed: Promise.resolve(),
 *   post: () => void posts++,
 *   terminate() {},
 * };
 * sandbox.post({ events: [], bytes: new Uint8Array() }, []);
 * assert.equal(posts, 1);
 * ```
 */
export interface PluginSandbox {
  /** The subprocess's id, or `null` for a Worker. */
  readonly pid: number | null;
  /** Bytes posted that the sandbox has not taken yet (a subprocess's unread pipe). */
  readonly backlogBytes: number;
  /** Settles once the sandbox is fully gone (process reaped) after `terminate()`. */
  readonly closed: Promise<void>;
  /** Sends one batch (the transfer list moves its buffers where the sandbox can). */
  post(batch: MessageBatch<HostEvent>, transfer: Transferable[]): void;
  /** Ends the sandbox at once (SIGKILL for a subprocess); idempotent, never throws. */
  terminate(): void;
}
