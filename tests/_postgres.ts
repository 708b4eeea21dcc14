/**
 * A real PostgreSQL server for one test: `initdb` into a temp directory, `postgres` on a free
 * 127.0.0.1 port (Unix socket in the data directory), trust authentication for the local
 * `postgres` role, and a full stop and cleanup at dispose. PostgreSQL refuses to run as root,
 * so under root (CI) every server command runs as the `postgres` user through `runuser`, with
 * the data directory owned by it. Missing binaries are an error, never a skip.
 */

import postgres from "postgres";
import { freePort } from "./_process.ts";

/** A running throwaway PostgreSQL. */
export interface TestPostgres extends AsyncDisposable {
  /** `postgres://postgres@127.0.0.1:<port>/postgres`. */
  readonly url: string;
  /** Creates a fresh database and returns its URL. */
  createDatabase(name: string): Promise<string>;
  /** Stops the server and removes its directory. */
  stop(): Promise<void>;
}

async function binDir(): Promise<string> {
  const versions: number[] = [];
  try {
    for await (const entry of Deno.readDir("/usr/lib/postgresql")) {
      if (/^\d+$/.test(entry.name)) versions.push(Number(entry.name));
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  const newest = versions.sort((a, b) => b - a)[0];
  if (newest === undefined) {
    throw new Error(
      "PostgreSQL server binaries not found under /usr/lib/postgresql/<version>/bin: " +
        "install Debian's postgresql package (.ci/run does) — this test does not skip",
    );
  }
  return `/usr/lib/postgresql/${newest}/bin`;
}

function asPostgres(command: string, args: string[]): { cmd: string; args: string[] } {
  return Deno.uid() === 0
    ? { cmd: "runuser", args: ["-u", "postgres", "--", command, ...args] }
    : { cmd: command, args };
}

async function run(command: string, args: string[]): Promise<void> {
  const wrapped = asPostgres(command, args);
  const out = await new Deno.Command(wrapped.cmd, {
    args: wrapped.args,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(
      `${command} ${args.join(" ")} failed (${out.code}): ${new TextDecoder().decode(out.stderr)}`,
    );
  }
}

async function ownedByPostgres(path: string): Promise<void> {
  if (Deno.uid() !== 0) return;
  const out = await new Deno.Command("id", { args: ["-u", "postgres"], stdout: "piped" }).output();
  const gid = await new Deno.Command("id", { args: ["-g", "postgres"], stdout: "piped" }).output();
  if (!out.success) throw new Error("running as root but there is no postgres user to run as");
  const decoder = new TextDecoder();
  await Deno.chown(path, Number(decoder.decode(out.stdout)), Number(decoder.decode(gid.stdout)));
}

/** Starts a throwaway PostgreSQL and waits until it accepts connections. */
export async function startPostgres(): Promise<TestPostgres> {
  const bin = await binDir();
  // Under root the server runs as `postgres`, which must reach the directory: /tmp, not $TMPDIR.
  const dir = await Deno.makeTempDir({
    prefix: "sustenet_pg_",
    ...(Deno.uid() === 0 ? { dir: "/tmp" } : {}),
  });
  await ownedByPostgres(dir);
  const data = `${dir}/data`;
  try {
    await run(`${bin}/initdb`, [
      "-D",
      data,
      "-A",
      "trust",
      "-U",
      "postgres",
      "--no-sync",
      "-E",
      "UTF8",
    ]);
  } catch (error) {
    await Deno.remove(dir, { recursive: true });
    throw error;
  }
  const port = await freePort();
  const server = asPostgres(`${bin}/postgres`, [
    "-D",
    data,
    "-p",
    String(port),
    "-k",
    dir,
    "-c",
    "listen_addresses=127.0.0.1",
    "-c",
    "max_connections=60",
  ]);
  const child = new Deno.Command(server.cmd, {
    args: server.args,
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let log = "";
  const logPump = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of child.stderr) log += decoder.decode(chunk, { stream: true });
  })();
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const stop = async () => {
    try {
      await run(`${bin}/pg_ctl`, ["stop", "-D", data, "-m", "fast", "-w"]);
    } catch (error) {
      if (!(error instanceof Error)) throw error;
      child.kill("SIGKILL");
    }
    await child.status;
    await logPump;
    await Deno.remove(dir, { recursive: true });
  };
  // Ready when a TCP connect succeeds and pg_isready agrees (bounded: 60 s).
  const started = performance.now();
  for (;;) {
    const ready = await new Deno.Command(`${bin}/pg_isready`, {
      args: ["-h", "127.0.0.1", "-p", String(port), "-U", "postgres"],
      stdout: "null",
      stderr: "null",
    }).output();
    if (ready.success) break;
    if (performance.now() - started > 60_000) {
      await stop();
      throw new Error(`PostgreSQL did not start within 60 s:\n${log}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    url,
    async createDatabase(name: string) {
      if (!/^[a-z_][a-z0-9_]{0,40}$/.test(name)) throw new RangeError(`bad database name ${name}`);
      const sql = postgres(url, { max: 1, onnotice: () => {} });
      try {
        await sql.unsafe(`CREATE DATABASE ${name}`); // checked identifier above
      } finally {
        await sql.end({ timeout: 5 });
      }
      return `postgres://postgres@127.0.0.1:${port}/${name}`;
    },
    stop,
    [Symbol.asyncDispose]: stop,
  };
}
