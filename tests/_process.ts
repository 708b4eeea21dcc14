/**
 * Helpers for tests that run a real role process (`master/main.ts`, `cluster/main.ts`,
 * `client/main.ts`) with `Deno.execPath()`: a free loopback port, a spawned child whose stdout
 * is read line by line, waiting for a line, temporary config files, a process's RSS, and a
 * deployment folder of configs and processes.
 *
 * Everything here is cleanup-safe: `kill()` ignores a child that already exited, `close()`
 * kills, awaits the exit and drains both pipes, so Deno's resource sanitizer stays quiet when a
 * test calls `await using proc = spawnRole(...)` or `proc.close()` in `finally`. Never used by
 * library code.
 *
 * @module
 */

import { DenoSustenetClient } from "../client/deno_sustenet_client.ts";
import { generateKey } from "../shared/keys.ts";
import { waitFor } from "./_wait.ts";

/** Absolute path of the repository root (the folder holding deno.json). */
export const REPO_ROOT: string = decodeURIComponent(new URL("../", import.meta.url).pathname);

/** The roles that have a `main.ts` to run, or the path of another script (`….ts`). */
export type Role = "master" | "cluster" | "client" | "auth" | `${string}.ts`;

/**
 * Returns a TCP port on 127.0.0.1 that is free now, taken from below the kernel's ephemeral
 * range: a port-0 bind or an outgoing connection (which draw from that range) cannot take it
 * between this check and the caller's bind, as happened to a `ws_port` under `--parallel`.
 * A port handed out once is not handed out again by this process; another process's random
 * pick colliding before the bind is left (1 in ~10,000 per pair).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { freePort } from "./_process.ts";
 * const [a, b] = [await freePort(), await freePort()];
 * assert.ok(a > 0 && a < 65536 && a !== b);
 * ```
 */
export function freePort(): Promise<number> {
  const [low, high] = FREE_PORT_RANGE;
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = low + Math.floor(Math.random() * (high - low));
    if (handedOut.has(port)) continue;
    try {
      Deno.listen({ hostname: "127.0.0.1", port }).close();
    } catch (error) {
      if (error instanceof Deno.errors.AddrInUse) continue;
      throw error;
    }
    handedOut.add(port);
    return Promise.resolve(port);
  }
  throw new Error(`no free port in ${low}–${high} after 200 tries`);
}

const handedOut = new Set<number>();

/** [first, end) of the ports {@link freePort} picks: up to 12,000 just below the ephemeral range. */
const FREE_PORT_RANGE: readonly [number, number] = (() => {
  let ephemeralLow = 32768;
  try {
    const text = Deno.readTextFileSync("/proc/sys/net/ipv4/ip_local_port_range");
    const first = Number(text.trim().split(/\s+/)[0]);
    if (Number.isInteger(first) && first > 2048) ephemeralLow = first;
  } catch (error) {
    // Not Linux (or no /proc), or a caller without --allow-all (`/proc` needs it, e.g. the
    // demo): Linux's default range starts at 32768 (the IANA one at 49152, above it).
    if (
      !(error instanceof Deno.errors.NotFound) && !(error instanceof Deno.errors.NotCapable) &&
      !(error instanceof Deno.errors.PermissionDenied)
    ) throw error;
  }
  return [Math.max(1024, ephemeralLow - 12_000), ephemeralLow];
})();

/** Options for {@link spawnRole}. */
export interface SpawnRoleOptions {
  /** Working directory of the child. @default the repository root */
  readonly cwd?: string;
  /** Extra environment variables for the child. */
  readonly env?: Record<string, string>;
  /** Deno flags placed before the script. @default ["-A"] */
  readonly denoFlags?: readonly string[];
  /**
   * Run the child in a new session and process group of its own (through `setsid`, which
   * keeps its pid), so a test can signal the whole group as a terminal or systemd would:
   * `Deno.kill(-child.pid, "SIGTERM")`.
   */
  readonly ownProcessGroup?: boolean;
  /**
   * A command the child runs under, e.g. `["ip", "netns", "exec", "ns1"]` (it must exec the
   * rest, so the child's pid stays deno's).
   */
  readonly wrapper?: readonly string[];
  /**
   * Run the role as a user does, through its task: `deno task <role> ...args` (deno.json's
   * flags; `denoFlags` is ignored). `deno task` stays the parent of the role's process.
   */
  readonly viaTask?: boolean;
}

/** A running role process whose stdout is split into lines and stderr is collected. */
export interface RoleProcess extends AsyncDisposable {
  /** The underlying child process. */
  readonly child: Deno.ChildProcess;
  /** Async iterator over stdout lines not yet consumed (shared by all callers). */
  lines(): AsyncIterableIterator<string>;
  /** Every stdout line read so far (consumed or not). */
  stdoutLines(): readonly string[];
  /** Everything the child wrote to stderr so far. */
  stderrText(): string;
  /** Settles when more stderr arrives or stderr ends. */
  stderrChanged(): Promise<void>;
  /** Sends a signal; does nothing if the child has already exited. */
  kill(signal?: Deno.Signal): void;
  /** Resolves with the exit status once the child ends and both pipes are drained. */
  waitExit(): Promise<Deno.CommandStatus>;
  /** Kills the child if it still runs (SIGKILL after `graceMs`), then awaits everything. */
  close(graceMs?: number): Promise<Deno.CommandStatus>;
}

/**
 * Starts `deno run -A <role>/main.ts ...args` from the repository root.
 *
 * @param role which role's main.ts to run
 * @param args arguments after the script, e.g. `["--config", path]`
 */
export function spawnRole(
  role: Role,
  args: readonly string[],
  opts: SpawnRoleOptions = {},
): RoleProcess {
  const script = role.endsWith(".ts")
    ? role
    : decodeURIComponent(new URL(`../${role}/main.ts`, import.meta.url).pathname);
  const denoArgs = opts.viaTask
    ? ["task", "--config", `${REPO_ROOT}deno.json`, role, ...args]
    : ["run", ...(opts.denoFlags ?? ["-A"]), script, ...args];
  const prefix = [...(opts.ownProcessGroup ? ["setsid"] : []), ...(opts.wrapper ?? [])];
  const child = new Deno.Command(prefix.length > 0 ? prefix[0] : Deno.execPath(), {
    args: prefix.length > 0 ? [...prefix.slice(1), Deno.execPath(), ...denoArgs] : denoArgs,
    cwd: opts.cwd ?? REPO_ROOT,
    env: { NO_COLOR: "1", ...opts.env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();

  const seen: string[] = [];
  const pending: string[] = [];
  let waiters: Array<() => void> = [];
  let stdoutDone = false;
  let stderr = "";
  let exited = false;

  const wake = (): void => {
    const ws = waiters;
    waiters = [];
    for (const w of ws) w();
  };

  const stdoutPump = (async () => {
    let buffered = "";
    const decoder = new TextDecoder();
    for await (const chunk of child.stdout) {
      buffered += decoder.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, nl).replace(/\r$/, "");
        buffered = buffered.slice(nl + 1);
        seen.push(line);
        pending.push(line);
      }
      wake();
    }
    buffered += decoder.decode();
    if (buffered.length > 0) {
      seen.push(buffered);
      pending.push(buffered);
    }
    stdoutDone = true;
    wake();
  })();

  let stderrWaiters: Array<() => void> = [];
  const wakeStderr = (): void => {
    const ws = stderrWaiters;
    stderrWaiters = [];
    for (const w of ws) w();
  };
  let stderrDone = false;
  const stderrPump = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of child.stderr) {
      stderr += decoder.decode(chunk, { stream: true });
      wakeStderr();
    }
    stderr += decoder.decode();
    stderrDone = true;
    wakeStderr();
  })();

  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  const finished = Promise.all([status, stdoutPump, stderrPump]).then(([s]) => s);

  async function* lineIterator(): AsyncIterableIterator<string> {
    while (true) {
      const next = pending.shift();
      if (next !== undefined) {
        yield next;
        continue;
      }
      if (stdoutDone) return;
      await new Promise<void>((resolve) => waiters.push(resolve));
    }
  }

  const kill = (signal: Deno.Signal = "SIGTERM"): void => {
    if (exited) return;
    try {
      child.kill(signal);
    } catch (err) {
      // The child can exit between the check and the kill; anything else is a real failure.
      if (!(err instanceof TypeError) && !(err instanceof Deno.errors.NotFound)) throw err;
    }
  };

  const close = async (graceMs = 3000): Promise<Deno.CommandStatus> => {
    if (!exited) {
      kill("SIGTERM");
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timedOut = await Promise.race([
        status.then(() => false),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(true), graceMs);
        }),
      ]);
      clearTimeout(timer);
      if (timedOut) kill("SIGKILL");
    }
    return await finished;
  };

  return {
    child,
    lines: lineIterator,
    stdoutLines: () => seen,
    stderrText: () => stderr,
    stderrChanged: () =>
      stderrDone ? Promise.resolve() : new Promise<void>((resolve) => stderrWaiters.push(resolve)),
    kill,
    waitExit: () => finished,
    close,
    [Symbol.asyncDispose]: async () => {
      await close();
    },
  };
}

/**
 * Waits until the child's stderr (where logs go; stdout has only the ready line) matches
 * `pattern`, with the child's output in the error when it ends first or `timeoutMs` passes.
 */
export async function waitForLog(
  proc: RoleProcess,
  pattern: RegExp,
  timeoutMs = 60_000,
): Promise<RegExpMatchArray> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), timeoutMs);
  });
  try {
    for (;;) {
      const match = proc.stderrText().match(pattern);
      if (match !== null) return match;
      const changed = proc.stderrChanged();
      const ended = proc.waitExit().then(() => "ended" as const);
      const next = await Promise.race([changed, timeout, ended]);
      if (next === "timeout" || next === "ended") {
        const match = proc.stderrText().match(pattern);
        if (match !== null) return match;
        throw new LineTimeoutError(
          `${next === "timeout" ? `timed out after ${timeoutMs} ms` : "the process ended"} ` +
            `waiting for ${pattern} in stderr\n--- stdout ---\n${
              proc.stdoutLines().join("\n")
            }\n--- stderr ---\n${proc.stderrText()}`,
        );
      }
    }
  } finally {
    clearTimeout(timer);
  }
}

/** Raised by {@link waitForLine} when no line matches in time or stdout ends first. */
export class LineTimeoutError extends Error {
  /** @param message what was awaited and what the child printed */
  constructor(message: string) {
    super(message);
    this.name = "LineTimeoutError";
  }
}

/**
 * Reads stdout lines of `proc` until one matches `pattern`, and returns the match.
 * Lines read before the match are consumed. Fails after `timeoutMs` or when stdout ends,
 * with the child's stdout and stderr in the message.
 */
export async function waitForLine(
  proc: RoleProcess,
  pattern: RegExp,
  timeoutMs = 60_000,
): Promise<RegExpMatchArray> {
  const it = proc.lines();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), timeoutMs);
  });
  const describe = (why: string): string =>
    `${why} waiting for ${pattern}\n--- stdout ---\n${proc.stdoutLines().join("\n")}\n` +
    `--- stderr ---\n${proc.stderrText()}`;
  try {
    while (true) {
      const next = await Promise.race([it.next(), timeout]);
      if (next === "timeout") {
        throw new LineTimeoutError(describe(`timed out after ${timeoutMs} ms`));
      }
      if (next.done) {
        // Give stderr a moment to be drained so the message says why the child ended.
        await Promise.race([proc.waitExit(), timeout]);
        throw new LineTimeoutError(describe("stdout ended"));
      }
      const match = next.value.match(pattern);
      if (match) return match;
    }
  } finally {
    clearTimeout(timer);
  }
}

/** A temporary file that deletes itself on dispose. */
export interface TempFile extends AsyncDisposable {
  /** Absolute path of the file. */
  readonly path: string;
  /** Removes the file (and its folder); safe to call twice. */
  remove(): Promise<void>;
}

/**
 * Writes `text` to `Config.toml` inside a fresh temporary directory and returns its path.
 * Relative paths in the config (e.g. `keys_dir`) resolve against that directory.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { writeTempConfig } from "./_process.ts";
 * await using file = await writeTempConfig("[all]\nport = 0\n");
 * assert.equal(await Deno.readTextFile(file.path), "[all]\nport = 0\n");
 * ```
 */
export async function writeTempConfig(text: string): Promise<TempFile> {
  const dir = await Deno.makeTempDir({ prefix: "sustenet_test_" });
  const path = `${dir}/Config.toml`;
  await Deno.writeTextFile(path, text);
  let removed = false;
  const remove = async (): Promise<void> => {
    if (removed) return;
    removed = true;
    await Deno.remove(dir, { recursive: true });
  };
  return { path, remove, [Symbol.asyncDispose]: remove };
}

/** The configs {@linkcode writeEchoDeployment} wrote; disposing removes them and the keys. */
export interface EchoDeployment extends AsyncDisposable {
  /** The master's game port. */
  readonly masterPort: number;
  /** The cluster's status HTTP port. */
  readonly statusPort: number;
  /** The master's config (no status server). */
  readonly masterConfig: string;
  /** The cluster's config: the echo plugin in a Worker, reconnecting after 100 ms. */
  readonly clusterConfig: string;
}

/**
 * Writes the configs of a master and one cluster named `name` running plugins/echo.ts, on free
 * ports and sharing a fresh `cluster_key`, for the tests that start them as real processes.
 *
 * @param name The cluster's `server_name`.
 * @param clusterAll More `[all]` lines of the cluster's config (e.g. its `log_level`).
 */
export async function writeEchoDeployment(name: string, clusterAll = ""): Promise<EchoDeployment> {
  const keysDir = await Deno.makeTempDir();
  await generateKey(keysDir, "cluster_key");
  const masterPort = await freePort();
  const master = await writeTempConfig(
    `[all]\nport = ${masterPort}\nkeys_dir = "${keysDir}"\nstatus_enabled = false\n`,
  );
  const statusPort = await freePort();
  const echo = new URL("../plugins/echo.ts", import.meta.url).href;
  const cluster = await writeTempConfig(
    `[all]\nserver_name = "${name}"\nport = ${await freePort()}\nkeys_dir = "${keysDir}"\n` +
      `status_port = ${statusPort}\n${clusterAll}` +
      `[cluster]\nmaster_port = ${masterPort}\nreconnect_min_ms = 100\n` +
      `[[cluster.plugins]]\nurl = "${echo}"\n`,
  );
  return {
    masterPort,
    statusPort,
    masterConfig: master.path,
    clusterConfig: cluster.path,
    async [Symbol.asyncDispose]() {
      await cluster.remove();
      await master.remove();
      await Deno.remove(keysDir, { recursive: true });
    },
  };
}

/**
 * Starts one child per core that spins for `ms`, and resolves once every one is spinning: a
 * thread of this process that then keeps busy too must wait for a core (the CPU-wait tests).
 *
 * @param ms How long each child spins.
 * @returns `exited`, which resolves when every child has ended.
 */
export async function spinEveryCore(ms = 4000): Promise<{ readonly exited: Promise<void> }> {
  const children = Array.from(
    { length: navigator.hardwareConcurrency },
    () =>
      new Deno.Command(Deno.execPath(), {
        args: [
          "eval",
          `console.log('busy'); const t = performance.now() + ${ms}; while (performance.now() < t);`,
        ],
        stdout: "piped",
        stderr: "null",
      }).spawn(),
  );
  // Each child is spinning once it has said so.
  await Promise.all(children.map(async (child) => {
    const reader = child.stdout.getReader();
    await reader.read();
    reader.releaseLock();
    await child.stdout.cancel();
  }));
  return { exited: Promise.all(children.map((child) => child.status)).then(() => {}) };
}

/**
 * Keeps this thread busy for `ms`, then yields once (a running thread's run-queue wait is brought
 * up to date when it is next scheduled).
 *
 * @returns The work done, so that it is not optimised away (always > 0).
 */
export async function spinThisThread(ms: number): Promise<number> {
  const until = performance.now() + ms;
  let x = 0;
  while (performance.now() < until) x += Math.sqrt(x + 1);
  await new Promise((resolve) => setTimeout(resolve, 1));
  return x;
}

/** Reads a process's resident set size in bytes from /proc (Linux), or `undefined`. */
export async function processRss(pid: number): Promise<number | undefined> {
  try {
    const status = await Deno.readTextFile(`/proc/${pid}/status`);
    const kb = status.match(/^VmRSS:\s+(\d+) kB$/m)?.[1];
    return kb === undefined ? undefined : Number(kb) * 1024;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

/**
 * A temporary folder with a shared `keys/cluster_key`, the role configs written into it, and
 * every role process started from them; disposing stops the processes and removes the folder.
 */
export class Deployment implements AsyncDisposable {
  /** The folder (configs use `keys_dir = "keys"`, relative to it). */
  readonly dir: string;
  /** Every process started, in order. */
  readonly processes: RoleProcess[] = [];
  /** Extra environment variables of every process started. */
  readonly env: Record<string, string>;

  protected constructor(dir: string, env: Record<string, string> = {}) {
    this.dir = dir;
    this.env = env;
  }

  /** A new folder with a fresh cluster key; `env` is added to every process's environment. */
  static async create(
    prefix = "sustenet_deployment_",
    env: Record<string, string> = {},
  ): Promise<Deployment> {
    return new Deployment(await Deployment.makeDir(prefix), env);
  }

  /** Makes the folder and its key (for subclasses' own `create`). */
  protected static async makeDir(prefix: string): Promise<string> {
    const dir = await Deno.makeTempDir({ prefix });
    await generateKey(`${dir}/keys`, "cluster_key");
    return dir;
  }

  /** Writes `toml` as `<name>.toml` in the folder, starts `role` with it, waits for `ready`. */
  async start(role: Role, name: string, toml: string, ready: RegExp): Promise<RoleProcess> {
    const config = `${this.dir}/${name}.toml`;
    await Deno.writeTextFile(config, toml);
    const proc = spawnRole(role, ["--config", config], { env: this.env });
    this.processes.push(proc);
    await waitForLine(proc, ready);
    return proc;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    for (const proc of this.processes) await proc.close(2000);
    await Deno.remove(this.dir, { recursive: true });
  }
}

/** What {@linkcode runDeno} returns: the exit code and both outputs as text. */
export interface DenoRun {
  readonly code: number;
  readonly success: boolean;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `deno <args>` to its end (stdin closed or given, `NO_COLOR=1`) and returns its exit code
 * and output.
 *
 * @param args The arguments after `deno`.
 * @param options `cwd`; `env` added to this process's; `stdin` text to write.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { runDeno } from "./_process.ts";
 * const run = await runDeno(["eval", "console.log(1 + 1)"]);
 * assert.equal(run.stdout, "2\n");
 * ```
 */
export async function runDeno(
  args: readonly string[],
  options: {
    readonly cwd?: string;
    readonly env?: Record<string, string>;
    readonly stdin?: string;
  } = {},
): Promise<DenoRun> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [...args],
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    env: { NO_COLOR: "1", ...options.env },
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (options.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(options.stdin));
    await writer.close();
  }
  const out = await child.output();
  const decoder = new TextDecoder();
  return {
    code: out.code,
    success: out.success,
    stdout: decoder.decode(out.stdout),
    stderr: decoder.decode(out.stderr),
  };
}

/**
 * Waits until the master on `masterPort` lists at least `count` clusters (60 s at most).
 *
 * @param masterPort The master's game port on 127.0.0.1.
 * @param count How many clusters.
 */
export async function waitForClusters(masterPort: number, count = 1): Promise<void> {
  const observer = await DenoSustenetClient.connect({ port: masterPort });
  try {
    const deadline = performance.now() + 60_000;
    while ((await observer.listClusters()).length < count) {
      if (performance.now() > deadline) throw new Error(`${count} cluster(s) never registered`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  } finally {
    await observer.close();
  }
}

/**
 * Runs `run` with a new temporary folder (its real path) and removes the folder afterwards.
 *
 * @param prefix The folder name's start, e.g. `sustenet_keys_`.
 * @param run Gets the folder.
 * @returns What `run` returns.
 */
export async function withTempDir<T>(
  prefix: string,
  run: (dir: string) => Promise<T>,
): Promise<T> {
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix }));
  try {
    return await run(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * Runs `run` with a temporary keys folder holding a new `cluster_key`, removed afterwards.
 *
 * @param run Gets the folder and the key's bytes.
 * @returns What `run` returns.
 */
export function withKeysDir<T>(run: (keysDir: string, key: Uint8Array) => Promise<T>): Promise<T> {
  return withTempDir("sustenet_keys_", async (keysDir) => {
    await generateKey(keysDir, "cluster_key");
    return await run(keysDir, await Deno.readFile(`${keysDir}/cluster_key`));
  });
}

/**
 * Starts `client/main.ts --master 127.0.0.1:<masterPort> join [joinArgs…]`, driven through its
 * stdin (see {@linkcode spawnInteractive}).
 *
 * @param masterPort The master's game port on 127.0.0.1.
 * @param joinArgs What follows `join` (e.g. `auto`).
 */
export function spawnJoiningClient(masterPort: number, ...joinArgs: string[]): InteractiveChild {
  return spawnInteractive([
    "run",
    "-A",
    `${REPO_ROOT}client/main.ts`,
    "--master",
    `127.0.0.1:${masterPort}`,
    "join",
    ...joinArgs,
  ]);
}

/** A child driven line by line through its stdin (see {@linkcode spawnInteractive}). */
export interface InteractiveChild {
  /** Everything read from its stdout so far. */
  readonly stdout: string;
  /** Everything read from its stderr so far. */
  readonly stderr: string;
  /** Writes `text` to its stdin. */
  write(text: string): Promise<void>;
  /** Reads its stdout until `pattern` matches all read so far; fails if stdout ends first. */
  readUntil(pattern: RegExp): Promise<void>;
  /** Waits until `pattern` matches its stderr so far (60 s at most). */
  stderrUntil(pattern: RegExp): Promise<void>;
  /** Ends its stdin, reads stdout to its end and returns its exit code. */
  finish(): Promise<number>;
}

/**
 * Spawns `deno <args>` (`NO_COLOR=1`) with piped stdin, its output read as it comes; killed
 * if it is still running 60 s after the start of `finish` or 120 s after its own start.
 *
 * @param args The arguments after `deno`.
 * @returns The child.
 */
export function spawnInteractive(args: readonly string[]): InteractiveChild {
  const child = new Deno.Command(Deno.execPath(), {
    args: [...args],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const bound = setTimeout(() => child.kill("SIGKILL"), 120_000);
  let stdout = "";
  let stderr = "";
  const stderrDone = (async () => {
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) stderr += chunk;
  })();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const writer = child.stdin.getWriter();
  return {
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    write: (text) => writer.write(new TextEncoder().encode(text)),
    async readUntil(pattern) {
      while (!pattern.test(stdout)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`stdout ended before ${pattern}:\n${stdout}\n${stderr}`);
        stdout += value;
      }
    },
    async stderrUntil(pattern) {
      const deadline = performance.now() + 60_000;
      while (!pattern.test(stderr)) {
        if (performance.now() > deadline) throw new Error(`no ${pattern} on stderr:\n${stderr}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
    async finish() {
      try {
        await writer.close();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          stdout += value;
        }
        const status = await child.status;
        await stderrDone;
        return status.code;
      } finally {
        clearTimeout(bound);
      }
    },
  };
}

/**
 * Waits until the cluster whose status server is on `statusPort` says in `/health` that it is
 * registered with its master (60 s at most): the master can then issue tickets for it.
 *
 * @param statusPort The cluster's status port on 127.0.0.1.
 */
export async function waitForRegistered(statusPort: number): Promise<void> {
  await waitFor(
    `cluster on status port ${statusPort} registered`,
    async () => {
      const health: { masterLink?: string } =
        await (await fetch(`http://127.0.0.1:${statusPort}/health`)).json();
      return health.masterLink === "registered";
    },
    60_000,
    50,
  );
}
