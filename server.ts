/**
 * Sustenet's server-only shared code: the TCP frame transport and broadcast groups, the fast
 * record ciphers (`node:crypto`, libcrypto through FFI) and {@linkcode createRecordCipher},
 * which picks among them, key files on disk, config files, the pending-connection gate and the
 * status server. It needs Deno (or Node) and permissions; web pages use `./browser.ts` (or the
 * browser-compatible core, `./mod.ts`) instead.
 *
 * @example Pick the fastest record cipher this runtime allows
 * ```ts
 * import { createRecordCipher } from "./server.ts";
 * import assert from "node:assert/strict";
 *
 * const cipher = await createRecordCipher(new Uint8Array(32).fill(1));
 * const sealed = await cipher.seal(0, new Uint8Array([1, 2, 3]));
 * assert.equal(sealed.length, 3 + 16);
 * ```
 *
 * @module
 */
export * from "./shared/mod.ts";
// Both the protocol and the config define a Role; the wire role is the one the package exports.
export { Role } from "./shared/mod.ts";
export * from "./shared/keys.ts";
export * from "./shared/config.ts";
export * from "./shared/status_server.ts";
export * from "./shared/create_record_cipher.ts";
export * from "./shared/record_cipher_node.ts";
export * from "./shared/record_cipher_ffi.ts";
export * from "./shared/transport.ts";
export * from "./shared/broadcast_group.ts";
export * from "./shared/pending_gate.ts";
