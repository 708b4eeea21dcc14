/**
 * The client's Deno adapters: {@linkcode connectTcp} opens its connections over TCP
 * (`shared/transport.ts`) and {@linkcode readKeyFile} reads a pinned key's `.pub` file. The
 * Deno `SustenetClient` (`deno_sustenet_client.ts`) uses both by default; browsers use
 * WebSocket and have no files.
 *
 * @module
 */

import { connectFrames } from "../shared/transport.ts";
import type { ConnectTarget } from "./connector.ts";
import type { FrameSessionOptions, FrameTransport } from "../shared/frame_session.ts";
import { ClientError } from "./errors.ts";

/** Largest `.pub` file read: a key file is one line of base64url. */
const MAX_KEY_FILE_BYTES = 1024;

/**
 * Connects over TCP (no-delay on) to the target's host and port.
 *
 * @example
 * ```ts
 * import { connectTcp } from "./tcp_connector.ts";
 * import { listenFrames } from "../shared/transport.ts";
 * import assert from "node:assert/strict";
 *
 * const server = listenFrames({ port: 0, onFrame: () => {} });
 * const target = { what: "master", host: "127.0.0.1", port: server.addr.port, endpoints: [] } as const;
 * const conn = await connectTcp(target, {});
 * assert.equal(conn.isOpen, true);
 * await conn.close();
 * await server.close();
 * ```
 */
export function connectTcp(
  target: ConnectTarget,
  options: FrameSessionOptions,
): Promise<FrameTransport> {
  return connectFrames({ ...options, hostname: target.host, port: target.port });
}

/**
 * Reads the text of a small `.pub` key file.
 *
 * @param path The file.
 * @throws {ClientError} `key_unavailable` if it is not a regular file of at most 1 KiB.
 *
 * @example
 * ```ts
 * import { readKeyFile } from "./tcp_connector.ts";
 * import assert from "node:assert/strict";
 *
 * const path = await Deno.makeTempFile({ suffix: ".pub" });
 * await Deno.writeTextFile(path, "AAAA\n");
 * assert.equal(await readKeyFile(path), "AAAA\n");
 * await Deno.remove(path);
 * ```
 */
export async function readKeyFile(path: string): Promise<string> {
  const info = await Deno.stat(path);
  if (!info.isFile || info.size > MAX_KEY_FILE_BYTES) {
    throw new ClientError("key_unavailable", `${path} is not a small .pub file`);
  }
  return await Deno.readTextFile(path);
}
