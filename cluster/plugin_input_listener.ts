/**
 * The host's end of a plugin subprocess's input: a loopback TCP listener the child connects
 * back to, instead of the child's stdin. Why: Deno reads a process's stdin on a blocking thread
 * (a hand-off and two more thread wake-ups per read, measured: the child's CPU per echo
 * 0.70–1.09 µs over stdin against 0.45–0.49 µs over the socket), and a socket from its event
 * loop.
 *
 * The child is told `<port> <secret>` on its stdin and may reach exactly
 * `127.0.0.1:<port>` (`--allow-net`); the first connection that sends the secret is the
 * channel and every other one is closed unread. Once it is found nothing more is accepted, but
 * the listener stays open until {@linkcode PluginInputListener.close}, so the one address the
 * plugin may reach stays the host's, never another process's. It must never hand out a
 * connection that did not prove the secret, and never let a connection that sends nothing hold
 * up the child's own (each is checked on its own; past
 * {@linkcode MAX_PENDING_PLUGIN_CONNECTIONS} at a time the oldest is closed).
 *
 * @module
 */

/**
 * Unproven connections checked at once; a new one past this closes the oldest (only a hostile
 * plugin, or another local process, holds connections open without the secret).
 *
 * @example
 * ```ts
 * import { MAX_PENDING_PLUGIN_CONNECTIONS, PluginInputListener } from "./plugin_input_listener.ts";
 * import assert from "node:assert/strict";
 *
 * // Connections that send nothing: one past the limit closes the oldest.
 * const input = new PluginInputListener();
 * input.channel.catch(() => {}); // never found here
 * const silent = await Promise.all(
 *   Array.from({ length: MAX_PENDING_PLUGIN_CONNECTIONS + 1 }, () =>
 *     Deno.connect({ hostname: "127.0.0.1", port: input.port })),
 * );
 * const ended = await Promise.race(silent.map((conn) => conn.read(new Uint8Array(1))));
 * assert.equal(ended, null); // the oldest was closed unread; the others wait for their secret
 * for (const conn of silent) conn.close();
 * input.close();
 * ```
 */
export const MAX_PENDING_PLUGIN_CONNECTIONS = 4;

const encoder = new TextEncoder();

function randomSecret(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Listens on an ephemeral loopback port for the one connection that proves the secret.
 *
 * @example The child's side, done by hand
 * ```ts
 * import { PluginInputListener } from "./plugin_input_listener.ts";
 * import assert from "node:assert/strict";
 *
 * const input = new PluginInputListener();
 * const [port, secret] = input.hello.trim().split(" ");
 * const wrong = await Deno.connect({ hostname: "127.0.0.1", port: Number(port) });
 * await wrong.write(new TextEncoder().encode("0".repeat(32)));
 * assert.equal(await wrong.read(new Uint8Array(1)), null); // closed by the host
 * wrong.close();
 * const child = await Deno.connect({ hostname: "127.0.0.1", port: Number(port) });
 * await child.write(new TextEncoder().encode(secret));
 * const host = await input.channel;
 * await host.write(new Uint8Array([42]));
 * const got = new Uint8Array(1);
 * assert.equal(await child.read(got), 1);
 * assert.equal(got[0], 42);
 * child.close();
 * input.close();
 * ```
 */
export class PluginInputListener {
  readonly #server: Deno.TcpListener;
  readonly #secret: Uint8Array;
  readonly #found = Promise.withResolvers<Deno.TcpConn>();
  readonly #pending = new Set<Deno.TcpConn>();
  #conn: Deno.TcpConn | null = null;
  #closed = false;

  /**
   * Opens the listener on `127.0.0.1`, an ephemeral port.
   *
   * @throws {Deno.errors.NotCapable} If the cluster may not listen on loopback (`--allow-net`).
   */
  constructor() {
    this.#server = Deno.listen({ hostname: "127.0.0.1", port: 0, transport: "tcp" });
    const secret = randomSecret();
    this.hello = `${this.#server.addr.port} ${secret}\n`;
    this.#secret = encoder.encode(secret);
    // Rejected only by close() before the child connected: whoever waits sees why; no one
    // waiting is not an unhandled rejection.
    this.#found.promise.catch(() => {});
    this.#acceptLoop();
  }

  /** The line to write to the child's stdin: `<port> <32 hex digits>\n`. */
  readonly hello: string;

  /** The port the child may connect to (its only `--allow-net` address). */
  get port(): number {
    return this.#server.addr.port;
  }

  /** The proven connection, or `null` until it came. */
  get connection(): Deno.TcpConn | null {
    return this.#conn;
  }

  /** Settles with the proven connection; rejects if closed before it came. */
  get channel(): Promise<Deno.TcpConn> {
    return this.#found.promise;
  }

  /** Closes the listener, the channel and any unproven connection (idempotent). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#found.reject(new Error("the plugin's input closed before the child connected"));
    for (const conn of [this.#server, this.#conn, ...this.#pending]) {
      try {
        conn?.close();
      } catch {
        // Closed already (by the peer's end or a failed read).
      }
    }
    this.#pending.clear();
  }

  async #acceptLoop(): Promise<void> {
    while (this.#conn === null && !this.#closed) {
      let conn: Deno.TcpConn;
      try {
        conn = await this.#server.accept();
      } catch {
        return; // closed: close() settled the channel
      }
      if (this.#closed || this.#conn !== null) {
        conn.close();
        return;
      }
      if (this.#pending.size >= MAX_PENDING_PLUGIN_CONNECTIONS) {
        // The oldest goes, not the newest: connections held open without a secret cannot keep
        // the child's own (which sends its secret at once) from being checked.
        const oldest = this.#pending.values().next().value as Deno.TcpConn;
        this.#pending.delete(oldest);
        oldest.close();
      }
      this.#pending.add(conn);
      this.#check(conn);
    }
  }

  async #check(conn: Deno.TcpConn): Promise<void> {
    const proof = new Uint8Array(this.#secret.length);
    let used = 0;
    try {
      while (used < proof.length) {
        const n = await conn.read(proof.subarray(used));
        if (n === null) break;
        used += n;
      }
    } catch {
      used = -1; // reset, or closed by close()
    }
    this.#pending.delete(conn);
    let diff = used === proof.length ? 0 : 1;
    for (let i = 0; i < proof.length; i++) diff |= proof[i] ^ this.#secret[i];
    if (diff !== 0 || this.#closed || this.#conn !== null) {
      try {
        conn.close();
      } catch {
        // Closed already.
      }
      return;
    }
    conn.setNoDelay(true);
    this.#conn = conn;
    for (const other of this.#pending) other.close();
    this.#pending.clear();
    this.#found.resolve(conn);
  }
}
