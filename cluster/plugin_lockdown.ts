/**
 * The first module a plugin subprocess evaluates (the generated bootstrap imports it before
 * the plugin, and ES modules evaluate in import order): it takes the host channel (the input
 * connection, stdout, exit) for the entry, and takes away from the plugin what its Deno permissions do not
 * cover.
 *
 * - `caches`, `localStorage`, `sessionStorage` write under Deno's directory without any
 *   `write` permission: removed. `Worker` is removed too, since a new Worker would have them
 *   back.
 * - `console.*` would write raw lines into the stream the host reads (stdout is the protocol):
 *   every console method becomes a `ctx.log`-style log event, escaped and rate-limited by the
 *   host like any other.
 * - `Deno.stdin` / `Deno.stdout` carry the protocol and `Deno.exit` is the entry's: a plugin
 *   touching them gets an error. `Deno.cwd()` (the process's cwd is `/` anyway) and
 *   `Deno.execPath()` work without permissions: they throw instead.
 *
 * - SIGINT, SIGTERM and SIGHUP are ignored: a signal to the cluster's process group (Ctrl-C,
 *   systemd) must not end the plugin before the cluster has drained and run its `onStop`; the
 *   host ends it by closing its input, or with SIGKILL.
 * - The host's batches come over a loopback socket, not stdin: the channel's first read takes
 *   `<port> <secret>` from stdin and connects to `127.0.0.1:<port>` (the process's only net
 *   grant beyond the plugin's), proving the connection with the secret; the host accepts no
 *   other, so the plugin gains no reachable address but its own host's.
 *
 * What it cannot take: `Deno.kill(Deno.pid, …)` needs no permission and still works, but it
 * now only ends this subprocess (the host restarts it); signalling any other process, the
 * cluster included, needs `run`. Deno.stderr stays: the host reads it line by line, escaped
 * and rate-limited. It must never import the plugin, and the channel is handed out once.
 *
 * @module
 */

/** A log level a console method maps to. */
type ConsoleLevel = "debug" | "info" | "warning" | "error";

/**
 * What the entry takes from the lockdown: the protocol streams, the real `Deno.exit`, and a
 * way to receive console output as log events.
 *
 * @example
 * ```ts
 * import type { HostChannel } from "./plugin_lockdown.ts";
 * import assert from "node:assert/strict";
 *
 * const keys: (keyof HostChannel)[] = ["read", "write", "writeSync", "exit", "setConsoleSink"];
 * assert.equal(keys.length, 5);
 * ```
 */
export interface HostChannel {
  /**
   * Reads the host's batches (the loopback connection proven with the secret from stdin): bytes
   * read, or `null` at its end.
   */
  readonly read: (into: Uint8Array) => Promise<number | null>;
  /** Writes batches to the host (the process's stdout); may write part: the count is returned. */
  readonly write: (bytes: Uint8Array) => Promise<number>;
  /**
   * Writes to the host at once (blocks this process while the pipe is full); may write part:
   * the count is returned.
   */
  readonly writeSync: (bytes: Uint8Array) => number;
  /** Ends the process. */
  readonly exit: (code: number) => never;
  /** Where console output goes from now on (lines printed before are replayed, up to 100). */
  readonly setConsoleSink: (sink: (level: ConsoleLevel, message: string) => void) => void;
}

const EARLY_LINES = 100;

let channel: HostChannel | null = null;

const HELLO_MAX_BYTES = 128;

// The host's batches come over a loopback TCP connection, not stdin: Deno reads a process's
// stdin on a blocking thread (a thread hand-off, two more wake-ups, per read), a socket from
// its event loop. The host writes `<port> <secret>\n` on stdin at spawn; the entry's first read
// takes it (not this module at import: a test importing it must not block on its own stdin),
// connects and proves the connection with the secret: the host accepts no other. The secret
// guards against other local processes, not the plugin: the plugin is this process already.
function connectToHost(stdin: typeof Deno.stdin): (into: Uint8Array) => Promise<number | null> {
  let connection: Promise<Deno.TcpConn> | null = null;
  let conn: Deno.TcpConn | null = null;
  return async (into) => {
    connection ??= connect(readHello(stdin));
    conn ??= await connection;
    return await conn.read(into);
  };
}

// `<port> <32 hex digits>\n` from the host, read synchronously (the host wrote it at spawn).
function readHello(stdin: typeof Deno.stdin): { port: number; secret: string } {
  const hello = new Uint8Array(HELLO_MAX_BYTES);
  let used = 0;
  while (!hello.subarray(0, used).includes(0x0a)) {
    if (used === hello.length) throw new Error("the host's hello is too long");
    const n = stdin.readSync(hello.subarray(used));
    if (n === null) throw new Error("stdin ended before the host's hello");
    used += n;
  }
  const line = new TextDecoder().decode(hello.subarray(0, hello.indexOf(0x0a)));
  const [portText, secret] = line.split(" ");
  const port = Number(portText);
  if (!Number.isInteger(port) || port <= 0 || port > 65535 || !/^[0-9a-f]{32}$/.test(secret)) {
    throw new Error("a malformed hello from the host");
  }
  return { port, secret };
}

async function connect({ port, secret }: { port: number; secret: string }): Promise<Deno.TcpConn> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  conn.setNoDelay(true);
  const proof = new TextEncoder().encode(secret);
  for (let at = 0; at < proof.length;) at += await conn.write(proof.subarray(at));
  return conn;
}

function lock(): void {
  const exit = Deno.exit.bind(Deno);
  const read = connectToHost(Deno.stdin);
  const stdout = Deno.stdout;
  const write = (bytes: Uint8Array) => stdout.write(bytes);
  const writeSync = (bytes: Uint8Array) => stdout.writeSync(bytes);
  const inspect = Deno.inspect.bind(Deno);
  let sink: ((level: ConsoleLevel, message: string) => void) | null = null;
  const early: [ConsoleLevel, string][] = [];
  const emit = (level: ConsoleLevel, args: unknown[]) => {
    const message = args.map((a) => typeof a === "string" ? a : inspect(a)).join(" ");
    if (sink !== null) sink(level, message);
    else if (early.length < EARLY_LINES) early.push([level, message]);
  };
  const levels: Record<string, ConsoleLevel> = {
    debug: "debug",
    log: "info",
    info: "info",
    dir: "info",
    dirxml: "info",
    table: "info",
    warn: "warning",
    error: "error",
    trace: "error",
  };
  for (const [method, level] of Object.entries(levels)) {
    Object.defineProperty(console, method, {
      value: (...args: unknown[]) => emit(level, args),
      writable: false,
      configurable: false,
    });
  }
  Object.defineProperty(console, "assert", {
    value: (ok: unknown, ...args: unknown[]) => {
      if (!ok) emit("error", ["Assertion failed", ...args]);
    },
    writable: false,
    configurable: false,
  });

  for (const name of ["caches", "localStorage", "sessionStorage", "Worker"]) {
    if (!Reflect.deleteProperty(globalThis, name)) {
      throw new Error(`plugin lockdown: cannot remove globalThis.${name}`);
    }
  }
  const refuse = (what: string) => () => {
    throw new Deno.errors.NotCapable(`${what} is not available to a plugin`);
  };
  for (const name of ["cwd", "execPath", "exit"]) {
    Object.defineProperty(Deno, name, {
      value: refuse(`Deno.${name}()`),
      writable: false,
      configurable: false,
    });
  }
  for (const name of ["stdin", "stdout"]) {
    Object.defineProperty(Deno, name, {
      get: refuse(`Deno.${name} (it carries the host protocol; use ctx.log)`),
      configurable: false,
    });
  }

  // The plugin shares its cluster's process group: Ctrl-C in a terminal or systemd's SIGTERM
  // to the group reaches it too. Only the supervisor ends a plugin (its input's end, or SIGKILL),
  // so the cluster can drain first and still run the plugin's onStop.
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    Deno.addSignalListener(signal, () => {});
  }

  channel = {
    read,
    write,
    writeSync,
    exit,
    setConsoleSink(next) {
      sink = next;
      for (const [level, message] of early.splice(0)) next(level, message);
    },
  };
}

lock();

/**
 * Hands the host channel out, once: the entry takes it after the plugin module evaluated, so a
 * plugin that took it first makes its own load fail (the entry finds nothing and exits).
 *
 * @returns The channel, or `null` if it was taken already.
 *
 * @example
 * ```ts ignore
 * import { takeHostChannel } from "./plugin_lockdown.ts";
 * // Only inside a plugin subprocess: importing this module locks the process down.
 * const channel = takeHostChannel();
 * ```
 */
export function takeHostChannel(): HostChannel | null {
  const taken = channel;
  channel = null;
  return taken;
}
