// This module is browser compatible.
/**
 * Opens the client's connections (to the master or a cluster) through a {@linkcode Connector}
 * (TCP in Deno, WebSocket in browsers) with a bounded connect time, turning failures into
 * `ClientError`s (`master_unreachable` / `cluster_unreachable` / `timeout`). Private to
 * `client/`.
 *
 * It must never leave a socket open after it gave up on it.
 *
 * @module
 */

import type { FrameSessionOptions, FrameTransport } from "../shared/frame_session.ts";
import { roleLogger } from "../shared/logging.ts";
import type { Connector, ConnectTarget } from "./connector.ts";
import { ClientError } from "./errors.ts";

const logger = roleLogger("client", "dial");

/**
 * Connects to `host:port` within `timeoutMs`; reading starts when the caller calls `start`.
 *
 * @param connect The runtime's connector.
 * @param target Which server, where (`what` also picks the error code).
 * @param options Connection options (no `onFrame`: the caller starts reading).
 * @param timeoutMs Longest wait for the connection.
 * @throws {ClientError} `master_unreachable` / `cluster_unreachable` if the connection fails,
 * `timeout` if it takes longer than `timeoutMs`.
 *
 * @example Dial a cluster from a join ticket
 * ```ts
 * import { dial } from "./_dial.ts";
 * import { connectTcp } from "./tcp_connector.ts";
 * import assert from "node:assert/strict";
 *
 * async function openCluster(host: string, port: number) {
 *   const conn = await dial(
 *     connectTcp,
 *     { what: "cluster", host, port, endpoints: [] },
 *     { maxFrameBytes: 65536 },
 *     5000,
 *   );
 *   conn.start((frame) => console.log(frame.type));
 *   return conn;
 * }
 * assert.equal(typeof openCluster, "function");
 * ```
 */
export async function dial(
  connect: Connector,
  target: ConnectTarget,
  options: FrameSessionOptions,
  timeoutMs: number,
): Promise<FrameTransport> {
  const { what, host, port } = target;
  const connecting = connect(target, options);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), timeoutMs);
  });
  try {
    const result = await Promise.race([connecting, timeout]);
    if (result === "timeout") {
      // Too late for the caller, but the socket may still open: close it when it does.
      connecting.then(
        (conn) => conn.close(),
        (error: unknown) => logger.debug("late connect to {what} failed: {error}", { what, error }),
      );
      throw new ClientError("timeout", `no connection to the ${what} ${host}:${port} in time`);
    }
    return result;
  } catch (cause) {
    if (cause instanceof ClientError) throw cause;
    const message = cause instanceof Error ? cause.message : String(cause);
    throw new ClientError(
      what === "master" ? "master_unreachable" : "cluster_unreachable",
      `cannot connect to the ${what} at ${host}:${port}: ${message}`,
      { cause },
    );
  } finally {
    clearTimeout(timer);
  }
}
