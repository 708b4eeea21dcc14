/**
 * Byte helpers shared by the tests: joining arrays, reading exact byte counts from a raw socket,
 * and the code of an Error frame.
 *
 * @module
 */

import assert from "node:assert/strict";
import { PacketType } from "../shared/protocol/packets.ts";
import { ProtocolError } from "../shared/protocol/protocol_error.ts";

/** Concatenates byte arrays into a new one. */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/**
 * The error code of an Error frame (its first two payload bytes, big-endian); `undefined` for
 * anything else (another frame, a decode error, nothing), so `assert.equal(errorCodeOf(f), code)`
 * fails on a frame that is not an Error.
 */
export function errorCodeOf(
  frame: { readonly type: number; readonly payload: Uint8Array } | ProtocolError | undefined,
): number | undefined {
  if (frame === undefined || frame instanceof ProtocolError || frame.type !== PacketType.Error) {
    return;
  }
  return (frame.payload[0] << 8) | frame.payload[1];
}

/** Reads exactly `length` bytes from a raw socket; fails if the peer closes first or after `timeoutMs`. */
export async function readExactly(
  conn: Deno.Conn,
  length: number,
  timeoutMs = 60_000,
): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  let offset = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`timed out after ${offset} of ${length} bytes`)),
      timeoutMs,
    );
  });
  try {
    while (offset < length) {
      const n = await Promise.race([conn.read(out.subarray(offset)), timeout]);
      assert.notEqual(n, null, `peer closed after ${offset} of ${length} bytes`);
      offset += n ?? 0;
    }
  } finally {
    clearTimeout(timer);
  }
  return out;
}
