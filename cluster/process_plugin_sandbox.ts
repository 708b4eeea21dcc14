/**
 * A {@linkcode PluginSandbox} in its own `deno run` subprocess: the isolation unit of every
 * untrusted plugin. The child gets exactly the plugin's grants as `--allow-*` flags (none by
 * default) plus `--allow-net` for the host's input listener only (`plugin_input_listener.ts`),
 * `--no-prompt`, a V8 heap cap (`--max-old-space-size`), cwd `/`. Frames (`plugin_stream.ts`)
 * go to it over that loopback socket (its stdin carries only the listener's port and secret: a
 * socket is read on the child's event loop, stdin on a blocking thread) and come back on its
 * stdout. Its stderr is read line by line and
 * handed to the host raw (the host escapes and rate-limits it into the plugin's log).
 *
 * What the process boundary buys over a Worker: `Deno.kill(Deno.pid)` ends only the child;
 * heap exhaustion aborts only the child; a busy loop is ended by SIGKILL and its CPU is
 * reclaimed. What the heap cap does not cover (ArrayBuffers live outside the V8 heap) the RSS
 * check does: every `memoryCheckMs` the child's resident size is read from `/proc` (Linux) and
 * a child above `maxMemoryMb + RUNTIME_OVERHEAD_MB` is killed.
 *
 * It must never block the cluster on the child: reads are chunks of the pipe, every frame is
 * bounded (`MAX_PLUGIN_FRAME_BYTES`), a child that stops reading its input past
 * `MAX_INPUT_BACKLOG_BYTES` is killed, and `terminate()` is SIGKILL.
 *
 * @module
 */

import type { HostEvent, MessageBatch } from "./plugin_messages.ts";
import type { PluginFailure, PluginSandbox, PluginSandboxListener } from "./plugin_sandbox.ts";
import { encodePluginFrame, PluginFrameReader, PluginFrameWriter } from "./plugin_stream.ts";
import { PluginInputListener } from "./plugin_input_listener.ts";

/**
 * Resident memory a plugin subprocess may use beyond its `max_memory_mb` heap: the Deno
 * runtime itself (35-65 MiB measured for plugins/echo.ts under load).
 *
 * @example
 * ```ts
 * import { RUNTIME_OVERHEAD_MB } from "./process_plugin_sandbox.ts";
 * import assert from "node:assert/strict";
 *
 * // Sizing a host: how many plugin processes with `max_memory_mb = 128` fit in 2 GiB.
 * function pluginsThatFit(budgetMb: number, maxMemoryMb: number): number {
 *   return Math.floor(budgetMb / (maxMemoryMb + RUNTIME_OVERHEAD_MB));
 * }
 * const fit = pluginsThatFit(2048, 128);
 * assert.ok(fit * (128 + RUNTIME_OVERHEAD_MB) <= 2048);
 * assert.ok((fit + 1) * (128 + RUNTIME_OVERHEAD_MB) > 2048);
 * ```
 */
export const RUNTIME_OVERHEAD_MB = 96;

/**
 * Bytes the host may have written to a child that the child has not read yet; past this it is
 * killed as hung (the host's queue bound drops player messages long before an honest plugin
 * gets here).
 *
 * @example
 * ```ts
 * import { MAX_INPUT_BACKLOG_BYTES, ProcessPluginSandbox } from "./process_plugin_sandbox.ts";
 * import assert from "node:assert/strict";
 *
 * // A child that never reads its input: one batch past the bound ends it as hung.
 * const failed = Promise.withResolvers<string>();
 * const sandbox = new ProcessPluginSandbox(
 *   {
 *     bootstrapUrl: "data:application/javascript,setInterval(() => {}, 1000);",
 *     permissionFlags: [],
 *     maxMemoryMb: 64,
 *   },
 *   { batch() {}, invalid() {}, failed: (reason) => failed.resolve(reason), stderr() {} },
 * );
 * sandbox.post({ events: [], bytes: new Uint8Array(MAX_INPUT_BACKLOG_BYTES + 1) });
 * assert.equal(await failed.promise, "hang");
 * sandbox.terminate();
 * await sandbox.closed;
 * ```
 */
export const MAX_INPUT_BACKLOG_BYTES = 32 * 1024 * 1024;

const MAX_STDERR_LINE = 1024;
const READ_CHUNK_BYTES = 64 * 1024;
const YIELD_AFTER_BYTES = 256 * 1024;

/**
 * Options of {@linkcode ProcessPluginSandbox}.
 *
 * @example
 * ```ts
 * import {
 *   ProcessPluginSandbox,
 *   type ProcessPluginSandboxOptions,
 * } from "./process_plugin_sandbox.ts";
 * import assert from "node:assert/strict";
 *
 * // A child that writes one stderr line and exits at once.
 * const options: ProcessPluginSandboxOptions = {
 *   bootstrapUrl: `data:application/javascript,${encodeURIComponent('console.error("up")')}`,
 *   permissionFlags: ["--deny-import"],
 *   maxMemoryMb: 128,
 * };
 * const lines: string[] = [];
 * const sandbox = new ProcessPluginSandbox(options, {
 *   batch() {},
 *   invalid() {},
 *   failed() {},
 *   stderr: (line) => lines.push(line),
 * });
 * await sandbox.closed;
 * assert.deepEqual(lines, ["up"]);
 * ```
 */
export interface ProcessPluginSandboxOptions {
  /** The child's main module. */
  readonly bootstrapUrl: string;
  /** `--allow-*` / `--deny-import` flags (from `buildPermissionFlags`). */
  readonly permissionFlags: readonly string[];
  /** V8 old-space cap in MiB; the RSS cap adds {@linkcode RUNTIME_OVERHEAD_MB}. */
  readonly maxMemoryMb: number;
  /**
   * How often the child's RSS is checked, in ms.
   * @default {100}
   */
  readonly memoryCheckMs?: number;
  /**
   * The `deno` binary.
   * @default {Deno.execPath()}
   */
  readonly denoPath?: string;
}

// The plugin's flags plus net access to `address` (the input listener). Deno takes the last
// `--allow-net` it is given, a list narrowing a bare `--allow-net` (measured on 2.9.6): a grant
// of all net stays as it is, a list gets the address appended, else the flag is added.
function withNetGrant(flags: readonly string[], address: string): string[] {
  if (flags.includes("--allow-net")) return [...flags];
  const list = flags.findIndex((flag) => flag.startsWith("--allow-net="));
  if (list < 0) return [...flags, `--allow-net=${address}`];
  return flags.map((flag, i) => i === list ? `${flag},${address}` : flag);
}

// Resident bytes of a process from /proc (Linux); null where it cannot be read.
function residentBytes(pid: number): number | null {
  try {
    const statm = Deno.readTextFileSync(`/proc/${pid}/statm`);
    return Number(statm.split(" ")[1]) * 4096;
  } catch {
    return null; // not Linux, no read permission, or the process is gone: the heap cap remains
  }
}

/**
 * Runs a generated bootstrap module in a `deno run` subprocess.
 *
 * @example A child that sends one batch
 * ```ts
 * import { ProcessPluginSandbox } from "./process_plugin_sandbox.ts";
 * import assert from "node:assert/strict";
 *
 * const source = `import { encodePluginFrame } from ${
 *   JSON.stringify(new URL("./plugin_stream.ts", import.meta.url).href)
 * };
 * await Deno.stdout.write(encodePluginFrame({ events: [{ kind: "started" }], bytes: new Uint8Array() }));`;
 * const got = Promise.withResolvers<unknown>();
 * const sandbox = new ProcessPluginSandbox(
 *   { bootstrapUrl: `data:application/javascript,${encodeURIComponent(source)}`, permissionFlags: [], maxMemoryMb: 64 },
 *   { batch: got.resolve, invalid() {}, failed() {}, stderr() {} },
 * );
 * assert.deepEqual(await got.promise, { events: [{ kind: "started" }], bytes: new Uint8Array() });
 * sandbox.terminate();
 * await sandbox.closed;
 * ```
 */
export class ProcessPluginSandbox implements PluginSandbox {
  readonly #child: Deno.ChildProcess;
  readonly #listener: PluginSandboxListener;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #frames: PluginFrameWriter;
  readonly #rssLimit: number;
  readonly #memoryTimer: ReturnType<typeof setInterval>;
  readonly #closed: Promise<void>;
  readonly #input: PluginInputListener;
  #backlog = 0;
  #terminated = false;
  #outOfMemory = false;

  /**
   * Spawns the child.
   *
   * @param options Bootstrap, flags, memory cap.
   * @param listener Where batches, stderr lines and failures go.
   * @throws {Error} If the process cannot be spawned (e.g. the cluster lacks `--allow-run`).
   */
  constructor(options: ProcessPluginSandboxOptions, listener: PluginSandboxListener) {
    this.#listener = listener;
    const heapMb = Math.max(1, Math.floor(options.maxMemoryMb));
    this.#rssLimit = (heapMb + RUNTIME_OVERHEAD_MB) * 1024 * 1024;
    this.#input = new PluginInputListener();
    const command = new Deno.Command(options.denoPath ?? Deno.execPath(), {
      args: [
        "run",
        "--quiet",
        "--no-prompt",
        "--no-config",
        `--v8-flags=--max-old-space-size=${heapMb}`,
        ...withNetGrant(options.permissionFlags, `127.0.0.1:${this.#input.port}`),
        options.bootstrapUrl,
      ],
      cwd: "/",
      env: { NO_COLOR: "1" },
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    });
    this.#child = command.spawn();
    this.#writer = this.#child.stdin.getWriter();
    // The child reads this line before its plugin's first one; stdin carries nothing more.
    this.#writer.write(new TextEncoder().encode(this.#input.hello)).catch(() => {});
    // One write in flight; frames posted meanwhile are joined into the next one (one copy, one
    // syscall, one wake-up of the child instead of a stream write per batch).
    this.#frames = new PluginFrameWriter(async (bytes) => {
      try {
        const conn = this.#input.connection ?? await this.#input.channel;
        for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
      } finally {
        this.#backlog -= bytes.length;
      }
    });
    this.#readOutput();
    // The exit is reported after the last stderr line was read: it says why a load failed.
    const errorsRead = this.#readErrors();
    this.#closed = Promise.all([this.#child.status, errorsRead]).then(([status]) =>
      this.#exited(status)
    );
    this.#memoryTimer = setInterval(() => this.#checkMemory(), options.memoryCheckMs ?? 100);
  }

  /** The child's process id. */
  get pid(): number {
    return this.#child.pid;
  }

  /** Bytes written to the child's stdin that it has not read yet. */
  get backlogBytes(): number {
    return this.#backlog;
  }

  /** Settles once the child has exited and been reaped. */
  get closed(): Promise<void> {
    return this.#closed;
  }

  /** Frames one batch and queues it on the child's stdin. */
  post(batch: MessageBatch<HostEvent>): void {
    if (this.#terminated) return;
    const frame = encodePluginFrame(batch);
    this.#backlog += frame.length;
    if (this.#backlog > MAX_INPUT_BACKLOG_BYTES) {
      this.#fail("hang", `stopped reading its input (${this.#backlog} bytes waiting)`);
      return;
    }
    this.#frames.push(frame); // a failed write means the child is gone: #exited reports it
  }

  /** SIGKILLs the child (idempotent); `closed` settles once it is reaped. */
  terminate(): void {
    if (this.#terminated) return;
    this.#terminated = true;
    clearInterval(this.#memoryTimer);
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // Already exited: nothing to kill.
    }
    this.#writer.abort().catch(() => {});
    this.#input.close();
  }

  #fail(reason: PluginFailure, message: string): void {
    if (this.#terminated) return;
    this.terminate();
    this.#listener.failed(reason, message);
  }

  #checkMemory(): void {
    const rss = residentBytes(this.#child.pid);
    if (rss !== null && rss > this.#rssLimit) {
      this.#fail(
        "memory",
        `resident memory ${Math.round(rss / 1048576)} MiB is over its cap of ${
          Math.round(this.#rssLimit / 1048576)
        } MiB`,
      );
    }
  }

  #exited(status: Deno.CommandStatus): void {
    clearInterval(this.#memoryTimer);
    if (this.#terminated) return;
    // V8's fatal "out of memory" ends the process with SIGTRAP (exit 133).
    if (this.#outOfMemory || status.code === 133) {
      this.#fail("memory", "ran out of its heap (max_memory_mb) and was ended");
    } else if (status.signal !== null) {
      this.#fail("crash", `ended by ${status.signal}`);
    } else {
      this.#fail("exit", `exited with code ${status.code}`);
    }
  }

  async #readOutput(): Promise<void> {
    const frames = new PluginFrameReader();
    try {
      // One pipe chunk per turn: the cluster's other work runs between chunks, and an unread
      // pipe makes a flooding child wait.
      // A BYOB reader fills one reused buffer (the frame reader copies what it keeps).
      const reader = this.#child.stdout.getReader({ mode: "byob" });
      let buffer = new Uint8Array(READ_CHUNK_BYTES);
      let sinceYield = 0;
      for (;;) {
        // A read of a pipe that always has data can resolve without the event loop turning:
        // after every YIELD_AFTER_BYTES the cluster's sockets and timers get a turn. The turn
        // is setImmediate's (a few µs), not setTimeout(0)'s (measured 2.2 ms on Deno 2.9.6: a
        // pause of the plugin's whole round trip every 256 KiB).
        if (sinceYield >= YIELD_AFTER_BYTES) {
          sinceYield = 0;
          await new Promise((resolve) => setImmediate(resolve));
        }
        const { value, done } = await reader.read(buffer);
        if (done || value === undefined || this.#terminated) break;
        sinceYield += value.length;
        for (const batch of frames.push(value)) {
          if (this.#terminated) break;
          this.#listener.batch(batch);
        }
        if (frames.error !== null) {
          this.#fail("malformed", `sent ${frames.error}`);
          break;
        }
        buffer = new Uint8Array(value.buffer, 0, READ_CHUNK_BYTES);
      }
    } catch {
      // The pipe broke because the child died: #exited reports it.
    }
  }

  async #readErrors(): Promise<void> {
    let partial = "";
    try {
      for await (const text of this.#child.stderr.pipeThrough(new TextDecoderStream())) {
        if (this.#terminated) continue; // drain, so a dying child never blocks on stderr
        const lines = (partial + text).split("\n");
        partial = lines.pop() ?? "";
        if (partial.length > MAX_STDERR_LINE) {
          lines.push(partial);
          partial = "";
        }
        for (const line of lines) {
          if (/out of memory|heap limit/i.test(line)) this.#outOfMemory = true;
          if (line.trim() !== "") this.#listener.stderr(line.slice(0, MAX_STDERR_LINE));
        }
      }
      if (!this.#terminated && partial.trim() !== "") this.#listener.stderr(partial);
    } catch {
      // The pipe broke because the child died: #exited reports it.
    }
  }
}
