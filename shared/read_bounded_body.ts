// This module is browser compatible.
/**
 * Reads a whole HTTP body (or any byte stream) that must stay small, for the JSON endpoints of
 * the consoles and the account service. It never buffers more than `maxBytes`: past that it
 * cancels the stream and says so, so a client cannot make a server hold a large body.
 *
 * @module
 */

/**
 * All the bytes of `body`, or `undefined` when it holds more than `maxBytes` (the stream is then
 * cancelled); a null body is empty.
 *
 * @param body The stream, e.g. `request.body`.
 * @param maxBytes The most bytes kept.
 * @returns The bytes, or `undefined` past the bound.
 *
 * @example
 * ```ts
 * import { readBoundedBody } from "./read_bounded_body.ts";
 * import assert from "node:assert/strict";
 *
 * const body = (text: string) => new Response(text).body;
 * assert.deepEqual(await readBoundedBody(body("abc"), 4), new TextEncoder().encode("abc"));
 * assert.equal(await readBoundedBody(body("abcde"), 4), undefined);
 * assert.equal((await readBoundedBody(null, 4))?.length, 0);
 * ```
 */
export async function readBoundedBody(
  body: ReadableStream<Uint8Array> | null,
  maxBytes: number,
): Promise<Uint8Array | undefined> {
  if (body === null) return new Uint8Array();
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  while (true) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel();
      return undefined;
    }
    chunks.push(value);
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.byteLength;
  }
  return out;
}
