/**
 * The accept side every listener shares (TCP frames, the TLS relay, WebSocket): an accept
 * loop that lives through transient accept errors, and the hand-over of each new connection
 * to the server's `onConnection`, where a throwing callback closes that one connection with
 * `Internal` and the listener carries on.
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import type { FrameTransport } from "./frame_session.ts";
import { ErrorCode } from "./protocol/protocol_error.ts";

/** How {@linkcode acceptLoop} runs. */
export interface AcceptLoopOptions<C> {
  /** Where accept errors are logged. */
  readonly logger: Logger;
  /** Names the listener in the log line, e.g. `TLS`. */
  readonly label: string;
  /** True once the listener is closing: the loop ends, a socket accepted now is closed. */
  readonly closing: () => boolean;
  /** Takes each accepted socket (synchronously; start async work without awaiting it). */
  readonly onConn: (conn: C) => void;
}

/**
 * Accepts until the listener closes. An accept error while open (e.g. out of descriptors) is
 * logged and retried after 100 ms, so a persistent failure neither ends the loop nor spins.
 *
 * @param listener The listening socket.
 * @param options Logging, the closing flag and the socket callback.
 * @returns Once the listener is closed.
 *
 * @example
 * ```ts
 * import { acceptLoop } from "./accept_loop.ts";
 * import { getLogger } from "@logtape/logtape";
 * import assert from "node:assert/strict";
 *
 * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * let closing = false;
 * const got = Promise.withResolvers<Deno.Conn>();
 * const loop = acceptLoop(listener, {
 *   logger: getLogger(["example"]),
 *   label: "example",
 *   closing: () => closing,
 *   onConn: (conn) => got.resolve(conn),
 * });
 * const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
 * const accepted = await got.promise;
 * assert.equal(accepted.remoteAddr.transport, "tcp");
 * closing = true;
 * listener.close();
 * await loop;
 * accepted.close();
 * client.close();
 * ```
 */
export async function acceptLoop<C extends Deno.Conn>(
  listener: Deno.Listener<C>,
  options: AcceptLoopOptions<C>,
): Promise<void> {
  while (!options.closing()) {
    let conn: C;
    try {
      conn = await listener.accept();
    } catch (error) {
      if (options.closing() || error instanceof Deno.errors.BadResource) return;
      options.logger.warn("{label} accept failed: {error}", { label: options.label, error });
      await new Promise((resolve) => setTimeout(resolve, 100));
      continue;
    }
    if (options.closing()) {
      conn.close();
      return;
    }
    options.onConn(conn);
  }
}

/**
 * Tracks a new connection in `connections` until it closes and hands it to `onConnection`;
 * if that throws, logs it and closes this connection with `Internal`.
 *
 * @param connection The new connection.
 * @param connections The listener's open connections.
 * @param onConnection The server's callback, if any.
 * @param logger Where a throwing callback is logged.
 *
 * @example
 * ```ts
 * import { handOver } from "./accept_loop.ts";
 * import { listenFrames, connectFrames, type FrameConnection } from "./transport.ts";
 * import { getLogger } from "@logtape/logtape";
 * import assert from "node:assert/strict";
 *
 * const server = listenFrames({ port: 0, onFrame: () => {} });
 * const client = await connectFrames({ port: server.addr.port, onFrame: () => {} });
 * const mine = new Set<FrameConnection>();
 * handOver(client, mine, () => {
 *   throw new Error("boom");
 * }, getLogger(["example"]));
 * assert.equal((await client.closed).by, "local"); // closed with Internal
 * assert.equal(mine.size, 0);
 * await server.close();
 * ```
 */
export function handOver<C extends FrameTransport>(
  connection: C,
  connections: Set<C>,
  onConnection: ((connection: C) => void) | undefined,
  logger: Logger,
): void {
  connections.add(connection);
  connection.closed.then(() => connections.delete(connection));
  try {
    onConnection?.(connection);
  } catch (error) {
    const { hostname, port } = connection.remoteAddr;
    logger.error("onConnection failed for {remote}: {error}", {
      remote: `${hostname}:${port}`,
      error,
    });
    connection.close({ code: ErrorCode.Internal, message: "internal error" });
  }
}
