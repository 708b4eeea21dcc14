/**
 * A {@linkcode PluginSandbox} in a module Worker of the cluster's own process, whose Deno
 * permissions are exactly a complete descriptor. Fast (`postMessage` with transferred
 * buffers), but a Worker is a permission boundary only: it shares the process's memory, its
 * thread cannot be stopped while it loops, and `Deno.kill(Deno.pid)` reaches the cluster.
 * So only plugins marked `trusted` run here.
 *
 * It must never let a Worker error reach the cluster's global scope (an unhandled Worker
 * error ends the process).
 *
 * @module
 */

import type { HostEvent, MessageBatch } from "./plugin_messages.ts";
import type { WorkerPermissionDescriptor } from "./plugin_permissions.ts";
import type { PluginSandbox, PluginSandboxListener } from "./plugin_sandbox.ts";
import { workerOptionsMissing } from "./worker_options_check.ts";

// Deno colours its Worker error text with ANSI escapes.
// deno-lint-ignore no-control-regex
const ANSI_ESCAPES = /\x1b\[[0-9;]*m/g;
const BOOTSTRAP_FRAME = /^\s*at .*data:application\/javascript.*$/;

// Deno's Worker error text, without colours and without stack lines that point into the
// generated bootstrap (they are noise to whoever reads the log).
function cleanErrorText(message: string): string {
  return message.replace(ANSI_ESCAPES, "")
    .split("\n")
    .filter((line) => !BOOTSTRAP_FRAME.test(line))
    .join("\n")
    .trim();
}

/**
 * Runs a generated bootstrap module in a Worker.
 *
 * @example
 * ```ts
 * import { WorkerPluginSandbox } from "./worker_plugin_sandbox.ts";
 * import { buildWorkerPermissions } from "./plugin_permissions.ts";
 * import assert from "node:assert/strict";
 *
 * const got = Promise.withResolvers<unknown>();
 * const source = "self.postMessage({ events: [], bytes: new Uint8Array() });";
 * const sandbox = new WorkerPluginSandbox(
 *   `data:application/javascript,${encodeURIComponent(source)}`,
 *   "demo",
 *   buildWorkerPermissions({}),
 *   { batch: got.resolve, invalid() {}, failed() {}, stderr() {} },
 * );
 * assert.deepEqual(await got.promise, { events: [], bytes: new Uint8Array() });
 * sandbox.terminate();
 * ```
 */
export class WorkerPluginSandbox implements PluginSandbox {
  readonly #worker: Worker;
  #terminated = false;

  /**
   * @param bootstrapUrl The Worker's main module.
   * @param name The plugin's name (the Worker's name is `plugin:<name>`).
   * @param permissions The complete permission descriptor.
   * @param listener Where batches and failures go.
   * @throws {Error} If the Worker cannot be created, or worker options are surely off in
   * this process (see cluster/worker_options_check.ts).
   */
  constructor(
    bootstrapUrl: string,
    name: string,
    permissions: WorkerPermissionDescriptor,
    listener: PluginSandboxListener,
  ) {
    if (workerOptionsMissing()) {
      // Deno would print a line and end the whole process (exit 70): refuse, catchably.
      throw new Error(
        "a trusted plugin runs in a Worker with its own permissions, which needs Deno's " +
          '--unstable-worker-options flag (or "unstable": ["worker-options"] in deno.json); ' +
          "run with it, or drop trusted = true to run the plugin in a subprocess",
      );
    }
    const worker = new Worker(bootstrapUrl, {
      type: "module",
      name: `plugin:${name}`,
      deno: { permissions },
    });
    this.#worker = worker;
    worker.onmessage = (event: MessageEvent) => listener.batch(event.data);
    worker.onerror = (event: ErrorEvent) => {
      // Without preventDefault an error in a Worker is rethrown in this thread and ends the
      // cluster; here it ends (and restarts) only the plugin.
      event.preventDefault();
      listener.failed("crash", cleanErrorText(event.message));
    };
    worker.onmessageerror = () => listener.invalid("a Worker message that cannot be deserialized");
  }

  /** Always `null`: a Worker has no process of its own. */
  get pid(): null {
    return null;
  }

  /** Always 0: `postMessage` queues without a bound (the host's queue bound limits it). */
  get backlogBytes(): number {
    return 0;
  }

  /** Resolved: a terminated Worker is gone at once (see the Deno caveat in the host). */
  get closed(): Promise<void> {
    return Promise.resolve();
  }

  /** Posts one batch, transferring its buffers. */
  post(batch: MessageBatch<HostEvent>, transfer: Transferable[]): void {
    if (!this.#terminated) this.#worker.postMessage(batch, transfer);
  }

  /** Terminates the Worker; a late error event is still kept from the cluster. */
  terminate(): void {
    if (this.#terminated) return;
    this.#terminated = true;
    const worker = this.#worker;
    worker.onmessage = null;
    worker.onmessageerror = null;
    worker.onerror = (event: ErrorEvent) => event.preventDefault();
    worker.terminate();
  }
}
