/**
 * Child processes of the bench runner (servers, load generators, Node for Colyseus): spawned
 * with piped output read line by line, waited for a ready line with a deadline, and always
 * stopped (SIGTERM, then SIGKILL after a grace period) and awaited, pipes drained.
 * `tests/_process.ts` does this for the role mains in tests; the bench also runs its own
 * scripts and Node, so it has this small generic version.
 *
 * It must never leave a child running after {@linkcode BenchChild.stop} returns, and never wait
 * without a deadline.
 *
 * @module
 */

import { SustenetError } from "../shared/errors.ts";

/** A child did not print its ready line, or exited, or overran its time. */
export class ChildProcessError extends SustenetError {
  /**
   * @param code What went wrong.
   * @param message Details, with the child's recent output.
   */
  constructor(
    code: "child_not_ready" | "child_timeout" | "child_failed" | "child_stdin",
    message: string,
  ) {
    super(code, message);
  }
}

/** Options of {@linkcode BenchChild.spawn}. */
export interface BenchChildOptions {
  /** A short name for messages (`"cluster"`, `"colyseus server"`). */
  readonly name: string;
  /** The program: `Deno.execPath()`, `"node"`, … */
  readonly command: string;
  /** Its arguments. */
  readonly args: readonly string[];
  /** Working directory. */
  readonly cwd?: string;
  /** Extra environment variables. */
  readonly env?: Record<string, string>;
  /** Give it a stdin to write lines to ({@linkcode BenchChild.writeLine}); else none. */
  readonly stdin?: boolean;
  /**
   * Which side of a measurement it is: with {@linkcode placeChildren} on, servers run on the
   * first half of the cores and load generators on the other half.
   */
  readonly side?: "server" | "generator";
}

/** The cores each side of a measurement is held to, as `taskset -c` lists (`"0"`, `"2-3"`). */
export interface Placement {
  /** The servers' cores. */
  readonly server: string;
  /** The load generators' cores. */
  readonly generator: string;
}

let placement: Placement | undefined;

/**
 * Holds servers and load generators to separate cores from now on (`bench --pin`), as if they
 * ran on two machines: on a 2-core machine the two otherwise take cores from each other in
 * bursts, and a stall of either shows in the other's figures (docs/PERFORMANCE.md, issue 24).
 * Needs Linux's `taskset` and at least two cores.
 *
 * @param on Place children (`true`) or let them run anywhere again (`false`).
 * @returns The placement now in force, `undefined` if children run anywhere.
 *
 * @example
 * ```ts
 * import { placeChildren } from "./child_process.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(placeChildren(false), undefined);
 * ```
 */
export function placeChildren(on: boolean): Placement | undefined {
  placement = undefined;
  const cores = navigator.hardwareConcurrency;
  if (!on || cores < 2 || Deno.build.os !== "linux" || !hasTaskset()) return undefined;
  const half = Math.floor(cores / 2);
  const range = (from: number, to: number) => from === to ? `${from}` : `${from}-${to}`;
  placement = { server: range(0, half - 1), generator: range(half, cores - 1) };
  return placement;
}

function hasTaskset(): boolean {
  try {
    return new Deno.Command("taskset", { args: ["-V"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/** Someone waiting for a stdout line. */
interface LineWatcher {
  readonly pattern: RegExp;
  readonly resolve: (match: RegExpMatchArray) => void;
}

/** Keep at most this many lines of output per stream, for error messages. */
const KEEP_LINES = 200;

/** A spawned child with line-split output. */
export class BenchChild implements AsyncDisposable {
  /** The child's process id. */
  readonly pid: number;
  /** Its name, for messages. */
  readonly name: string;
  readonly #child: Deno.ChildProcess;
  readonly #stdout: string[] = [];
  readonly #stderr: string[] = [];
  readonly #done: Promise<Deno.CommandStatus>;
  readonly #watchers = new Set<LineWatcher>();
  readonly #exitWaiters = new Set<() => void>();
  #stdin: WritableStreamDefaultWriter<Uint8Array> | undefined;
  #exited = false;

  private constructor(options: BenchChildOptions) {
    this.name = options.name;
    // taskset execs the program: the pid stays the program's.
    const cores = options.side === undefined ? undefined : placement?.[options.side];
    this.#child = new Deno.Command(cores === undefined ? options.command : "taskset", {
      args: cores === undefined
        ? [...options.args]
        : ["-c", cores, options.command, ...options.args],
      cwd: options.cwd,
      env: { NO_COLOR: "1", ...options.env },
      stdin: options.stdin === true ? "piped" : "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.pid = this.#child.pid;
    if (options.stdin === true) this.#stdin = this.#child.stdin.getWriter();
    this.#done = Promise.all([
      this.#child.status,
      this.#pump(this.#child.stdout, this.#stdout, true),
      this.#pump(this.#child.stderr, this.#stderr, false),
    ]).then(([s]) => s);
    // "Exited" for line waiters means exited AND its output read to the end: the exit status can
    // arrive before the last stdout line is scanned. A pump failure surfaces through #done.
    const exited = () => {
      this.#exited = true;
      for (const wake of this.#exitWaiters) wake();
    };
    this.#done.then(exited, exited);
  }

  /**
   * Starts a child.
   *
   * @param options What to run.
   *
   * @example
   * ```ts
   * import { BenchChild } from "./child_process.ts";
   * import assert from "node:assert/strict";
   *
   * await using child = BenchChild.spawn({
   *   name: "echo",
   *   command: Deno.execPath(),
   *   args: ["eval", "console.log('ready 42')"],
   * });
   * const match = await child.waitForLine(/ready (\d+)/, 10_000);
   * assert.equal(match[1], "42");
   * assert.equal((await child.waitExit(10_000)).code, 0);
   * ```
   */
  static spawn(options: BenchChildOptions): BenchChild {
    return new BenchChild(options);
  }

  /** Stdout lines so far (the last 200). */
  get stdoutLines(): readonly string[] {
    return this.#stdout;
  }

  /** Stderr so far (the last 200 lines). */
  get stderrText(): string {
    return this.#stderr.join("\n");
  }

  /** `true` once the child has exited. */
  get exited(): boolean {
    return this.#exited;
  }

  async #pump(stream: ReadableStream<Uint8Array>, lines: string[], watch: boolean) {
    let partial = "";
    const add = (line: string): void => {
      lines.push(line);
      if (lines.length > KEEP_LINES) lines.shift();
      if (!watch) return;
      for (const watcher of this.#watchers) {
        const match = line.match(watcher.pattern);
        if (match !== null) watcher.resolve(match);
      }
    };
    for await (const text of stream.pipeThrough(new TextDecoderStream())) {
      partial += text;
      let newline: number;
      while ((newline = partial.indexOf("\n")) >= 0) {
        add(partial.slice(0, newline));
        partial = partial.slice(newline + 1);
      }
    }
    if (partial.length > 0) add(partial);
  }

  #describe(): string {
    return `--- ${this.name} stdout ---\n${this.#stdout.slice(-20).join("\n")}\n` +
      `--- ${this.name} stderr ---\n${this.#stderr.slice(-20).join("\n")}`;
  }

  /**
   * Waits for a stdout line matching `pattern` (the last 200 lines seen earlier count too).
   *
   * @param pattern What to wait for.
   * @param timeoutMs Deadline.
   * @throws {ChildProcessError} `child_not_ready` on timeout or if the child exits first.
   */
  async waitForLine(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
    for (const line of this.#stdout) {
      const match = line.match(pattern);
      if (match !== null) return match;
    }
    const found = Promise.withResolvers<RegExpMatchArray | "exited" | "timeout">();
    const watcher = { pattern, resolve: found.resolve };
    this.#watchers.add(watcher);
    const timer = setTimeout(() => found.resolve("timeout"), timeoutMs);
    this.#exitWaiters.add(() => found.resolve("exited"));
    if (this.#exited) found.resolve("exited");
    const result = await found.promise;
    clearTimeout(timer);
    this.#watchers.delete(watcher);
    if (typeof result !== "string") return result;
    const why = result === "exited" ? "exited" : `did not print it within ${timeoutMs} ms`;
    throw new ChildProcessError(
      "child_not_ready",
      `${this.name} ${why} waiting for ${pattern}\n${this.#describe()}`,
    );
  }

  /**
   * Waits for the child to exit by itself, killing it if it overruns.
   *
   * @param timeoutMs Deadline.
   * @throws {ChildProcessError} `child_timeout` if it had to be killed.
   */
  async waitExit(timeoutMs: number): Promise<Deno.CommandStatus> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = await Promise.race([
      this.#done.then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      await this.stop();
      throw new ChildProcessError(
        "child_timeout",
        `${this.name} ran over ${timeoutMs} ms and was killed\n${this.#describe()}`,
      );
    }
    return await this.#done;
  }

  /**
   * Stops the child: SIGTERM, then SIGKILL after `graceMs`; resolves once it has exited and its
   * pipes are drained. Safe to call more than once.
   *
   * @param graceMs Time between SIGTERM and SIGKILL.
   */
  /**
   * Writes one line to the child's stdin (spawned with `stdin: true`).
   *
   * @param line The text; a newline is added.
   * @throws {ChildProcessError} If the child has no stdin or its stdin is closed.
   */
  async writeLine(line: string): Promise<void> {
    if (this.#stdin === undefined) {
      throw new ChildProcessError("child_stdin", `${this.name} was started without a stdin`);
    }
    try {
      await this.#stdin.write(new TextEncoder().encode(`${line}\n`));
    } catch (error) {
      throw new ChildProcessError(
        "child_stdin",
        `${this.name}: cannot write to its stdin: ${String(error)}`,
      );
    }
  }

  async stop(graceMs = 5000): Promise<Deno.CommandStatus> {
    const stdin = this.#stdin;
    this.#stdin = undefined;
    // Closed first: a child waiting for a line sees the end of its input.
    await stdin?.close().catch((error: unknown) => {
      // A child that exited took its end of the pipe with it: nothing is left to close.
      if (!(error instanceof Deno.errors.BrokenPipe) && !(error instanceof TypeError)) throw error;
    });
    if (!this.#exited) {
      this.#signal("SIGTERM");
      let timer: ReturnType<typeof setTimeout> | undefined;
      const killed = await Promise.race([
        this.#child.status.then(() => false),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(true), graceMs);
        }),
      ]);
      clearTimeout(timer);
      if (killed) this.#signal("SIGKILL");
    }
    return await this.#done;
  }

  #signal(signal: Deno.Signal): void {
    try {
      this.#child.kill(signal);
    } catch (error) {
      // It exited between the check and the signal; anything else is a real failure.
      if (!(error instanceof TypeError) && !(error instanceof Deno.errors.NotFound)) throw error;
    }
  }

  /** Stops the child (for `await using`). */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}
