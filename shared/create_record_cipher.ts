/**
 * Picks the record cipher of one direction of a sealed link on a server runtime (Deno, Node):
 * libcrypto through FFI where allowed, `node:crypto` otherwise, WebCrypto when asked. All of them
 * produce the same bytes (tests/record_cipher_test.ts proves it), so the choice is speed only.
 *
 * Server-only: it loads `node:crypto` and FFI. Browser code creates its cipher with
 * `WebCryptoRecordCipher.create` from `record_cipher.ts`, which never loads this module.
 *
 * @module
 */

import {
  assertRecordKey,
  type RecordCipher,
  type RecordCipherOptions,
  WebCryptoRecordCipher,
} from "./record_cipher.ts";
import { FfiRecordCipher } from "./record_cipher_ffi.ts";
import { HybridRecordCipher, NodeRecordCipher } from "./record_cipher_node.ts";

/** Where {@linkcode warnIfFfiUnavailable} writes (a LogTape `Logger` fits). */
export interface WarningSink {
  /** Logs a warning with properties. */
  warn(message: string, properties: Record<string, unknown>): void;
}

/**
 * Warns once per call when libcrypto through FFI is unavailable (no `--allow-ffi`, no
 * libcrypto), so a server that seals several times slower than it could says why instead of
 * slowing down in silence. The servers call it at start.
 *
 * @param logger Where the warning goes.
 * @returns Whether it warned.
 *
 * @example
 * ```ts
 * import { warnIfFfiUnavailable } from "./create_record_cipher.ts";
 * import { FfiRecordCipher } from "./record_cipher_ffi.ts";
 * import assert from "node:assert/strict";
 *
 * const lines: string[] = [];
 * const warned = warnIfFfiUnavailable({ warn: (message) => lines.push(message) });
 * assert.equal(warned, !FfiRecordCipher.available());
 * assert.equal(lines.length, warned ? 1 : 0);
 * ```
 */
export function warnIfFfiUnavailable(logger: WarningSink): boolean {
  if (FfiRecordCipher.available()) return false;
  logger.warn("libcrypto through FFI is unavailable ({reason}); sealing with node:crypto", {
    reason: FfiRecordCipher.unavailableReason() ?? "unknown",
  });
  return true;
}

/**
 * Creates a record cipher for one direction of a link.
 *
 * @param key The 32-byte AES-256 key of that direction.
 * @param options Which implementation to prefer.
 * @returns The cipher; rejects with a RangeError if the key is not 32 bytes.
 *
 * @example Both implementations produce the same bytes
 * ```ts
 * import { createRecordCipher } from "./create_record_cipher.ts";
 * import assert from "node:assert/strict";
 *
 * const key = new Uint8Array(32).fill(1);
 * const node = await createRecordCipher(key, { prefer: "node" });
 * const web = await createRecordCipher(key, { prefer: "webcrypto" });
 * assert.equal(node.sync, true);
 * assert.equal(web.sync, false);
 * const plaintext = new Uint8Array([1, 2, 3]);
 * assert.deepEqual(await node.seal(5, plaintext), await web.seal(5, plaintext));
 * ```
 */
export async function createRecordCipher(
  key: Uint8Array,
  options: RecordCipherOptions = {},
): Promise<RecordCipher> {
  assertRecordKey(key);
  const prefer = options.prefer ?? "ffi";
  if (prefer === "ffi" && FfiRecordCipher.available()) return FfiRecordCipher.create(key);
  if (prefer === "node") return new NodeRecordCipher(key);
  if (prefer === "webcrypto") return await WebCryptoRecordCipher.create(key);
  return await HybridRecordCipher.create(key);
}
