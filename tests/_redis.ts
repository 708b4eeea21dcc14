/**
 * A real `redis-server` for tests (Debian's, on PATH): started on a given or free port with no
 * persistence, waited for until it answers PING, stopped (or killed) by the test. Optionally
 * run inside a network namespace (`ip netns exec <ns>`), bound to that namespace's address.
 * Test helper; never used by library code.
 *
 * @module
 */

import { freePort } from "./_process.ts";

/** A running redis-server. */
export interface RedisServer extends AsyncDisposable {
  /** `redis://host:port`. */
  readonly url: string;
  /** Its port. */
  readonly port: number;
  /** Sends a signal (e.g. SIGSTOP / SIGCONT to freeze it). */
  signal(signal: Deno.Signal): void;
  /** Stops it with SIGKILL (a crash) or SIGTERM, and waits for the exit. */
  stop(signal?: Deno.Signal): Promise<void>;
}

/** Options of {@linkcode startRedis}. */
export interface StartRedisOptions {
  /** Address to bind. @default "127.0.0.1" */
  readonly host?: string;
  /** Port. @default a free one on 127.0.0.1 */
  readonly port?: number;
  /** Network namespace to run in (the test must be root). */
  readonly netns?: string;
  /** Called to check it answers (default: PING over TCP from here). */
  readonly ready?: () => Promise<boolean>;
}

/** Sends PING to host:port and reports whether `+PONG` came back. */
export async function redisPing(host: string, port: number): Promise<boolean> {
  let conn: Deno.TcpConn | undefined;
  try {
    conn = await Deno.connect({ hostname: host, port });
    await conn.write(new TextEncoder().encode("PING\r\n"));
    const buffer = new Uint8Array(64);
    const read = await conn.read(buffer);
    return read !== null && new TextDecoder().decode(buffer.subarray(0, read)).startsWith("+PONG");
  } catch {
    return false;
  } finally {
    conn?.close();
  }
}

/** Starts redis-server and waits (at most 10 s) until it answers. */
export async function startRedis(options: StartRedisOptions = {}): Promise<RedisServer> {
  const host = options.host ?? "127.0.0.1";
  const port = options.port ?? await freePort();
  const redisArgs = [
    "--port",
    String(port),
    "--bind",
    host,
    "--save",
    "",
    "--appendonly",
    "no",
    "--protected-mode",
    "no",
  ];
  const command = options.netns === undefined
    ? new Deno.Command("redis-server", { args: redisArgs, stdout: "null", stderr: "piped" })
    : new Deno.Command("ip", {
      args: ["netns", "exec", options.netns, "redis-server", ...redisArgs],
      stdout: "null",
      stderr: "piped",
    });
  const child = command.spawn();
  const status = child.status;
  let exited = false;
  status.then(() => (exited = true));
  const ready = options.ready ?? (() => redisPing(host, port));
  for (let attempt = 0; attempt < 200 && !exited; attempt++) {
    if (await ready()) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  if (exited || !(await ready())) {
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
    const stderr = new TextDecoder().decode((await child.output().catch(() => null))?.stderr);
    throw new Error(`redis-server on ${host}:${port} did not start: ${stderr}`);
  }
  let stopped: Promise<void> | undefined;
  const stop = (signal: Deno.Signal = "SIGTERM"): Promise<void> => {
    stopped ??= (async () => {
      try {
        child.kill(signal);
      } catch {
        // already gone
      }
      await status;
      await child.stderr.cancel().catch(() => {});
    })();
    return stopped;
  };
  return {
    url: `redis://${host}:${port}`,
    port,
    signal: (signal) => child.kill(signal),
    stop,
    [Symbol.asyncDispose]: () => stop("SIGKILL"),
  };
}
