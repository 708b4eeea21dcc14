// This module is browser compatible.
/**
 * Symmetric security primitives of Sustenet: AES-256-GCM sealing with a random nonce
 * (`nonce[12] ‖ ciphertext ‖ tag[16]`), AES key import, random bytes, base64url, SHA-256 and
 * constant-time comparison. Everything goes through WebCrypto so it runs in Deno, browsers
 * and edge runtimes alike.
 *
 * This module must never log, never put key material or plaintext in an error message, and
 * never let a raw `DOMException` escape {@linkcode decrypt}: callers branch on
 * {@linkcode DecryptError} only, so a wrong key, a flipped bit and a short input look alike.
 *
 * @module
 */

import { SustenetError } from "./errors.ts";

/**
 * Bytes of an AES-256 key.
 *
 * @example
 * ```ts
 * import { AES_KEY_BYTES, generateAesKeyBytes } from "./security.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(generateAesKeyBytes().length, AES_KEY_BYTES);
 * ```
 */
export const AES_KEY_BYTES = 32;

/**
 * Bytes of the random AES-GCM nonce that {@linkcode encrypt} prepends.
 *
 * @example
 * ```ts
 * import { encrypt, generateAesKeyBytes, importAesKey, NONCE_BYTES, TAG_BYTES } from "./security.ts";
 * import assert from "node:assert/strict";
 *
 * // The overhead of every sealed message.
 * const key = await importAesKey(generateAesKeyBytes());
 * const sealed = await encrypt(key, new Uint8Array(5));
 * assert.equal(sealed.length, NONCE_BYTES + 5 + TAG_BYTES);
 * ```
 */
export const NONCE_BYTES = 12;

/**
 * Bytes of the AES-GCM authentication tag that ends every sealed message.
 *
 * @example
 * ```ts
 * import { encrypt, generateAesKeyBytes, importAesKey, NONCE_BYTES, TAG_BYTES } from "./security.ts";
 * import assert from "node:assert/strict";
 *
 * const key = await importAesKey(generateAesKeyBytes());
 * const sealed = await encrypt(key, new Uint8Array(0));
 * assert.equal(sealed.length - NONCE_BYTES, TAG_BYTES); // an empty message is all tag
 * ```
 */
export const TAG_BYTES = 16;

/**
 * Thrown when sealed data cannot be opened: too short, tampered, wrong key or wrong AAD.
 * The message is the same whatever went wrong, so it leaks nothing to a prober.
 *
 * @example Branch on the code
 * ```ts
 * import { DecryptError } from "./security.ts";
 * import assert from "node:assert/strict";
 *
 * const err = new DecryptError();
 * assert.equal(err.code, "decrypt_failed");
 * ```
 */
export class DecryptError extends SustenetError {
  /**
   * Creates the error; its message is fixed so it tells a prober nothing.
   *
   * @param options Standard error options (`cause`, for debugging only).
   */
  constructor(options?: ErrorOptions) {
    super("decrypt_failed", "sealed data could not be opened", options);
  }
}

/**
 * Thrown for key material that is missing, of the wrong size or unusable. Codes:
 * `"key_invalid"` (wrong length or bytes), `"key_missing"` (no such key file),
 * `"key_exists"` (refused to overwrite), `"key_name_invalid"` (unsafe key name).
 *
 * @example Branch on the code
 * ```ts
 * import { KeyError } from "./security.ts";
 * import assert from "node:assert/strict";
 *
 * const err = new KeyError("key_invalid", "AES-256 key must be 32 bytes, got 31");
 * assert.equal(err.code, "key_invalid");
 * assert.equal(err.name, "KeyError");
 * ```
 */
export class KeyError extends SustenetError {}

/**
 * Thrown by {@linkcode fromBase64Url} for text that is not canonical unpadded base64url.
 *
 * @example Branch on the code
 * ```ts
 * import { Base64Error, fromBase64Url } from "./security.ts";
 * import assert from "node:assert/strict";
 *
 * assert.throws(() => fromBase64Url("a+b"), (e) => e instanceof Base64Error);
 * assert.equal(new Base64Error("bad").code, "base64_invalid");
 * ```
 */
export class Base64Error extends SustenetError {
  /**
   * Creates the error with code `"base64_invalid"`.
   *
   * @param message What was wrong with the text (never the text itself).
   * @param options Standard error options (`cause`).
   */
  constructor(message: string, options?: ErrorOptions) {
    super("base64_invalid", message, options);
  }
}

/**
 * Returns bytes whose backing store is a plain `ArrayBuffer`, as WebCrypto's `BufferSource`
 * requires; copies only when the input is backed by a `SharedArrayBuffer`.
 *
 * @param bytes Any byte view.
 * @returns The same view when possible, else a copy.
 *
 * @example Pass any Uint8Array to WebCrypto
 * ```ts
 * import { asBufferSource } from "./security.ts";
 * import assert from "node:assert/strict";
 *
 * const bytes = new Uint8Array([1, 2, 3]);
 * assert.equal(asBufferSource(bytes), bytes);
 * const digest = await crypto.subtle.digest("SHA-256", asBufferSource(bytes));
 * assert.equal(digest.byteLength, 32);
 * ```
 */
export function asBufferSource(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return bytes.buffer instanceof ArrayBuffer
    ? (bytes as Uint8Array<ArrayBuffer>)
    : new Uint8Array(bytes);
}

/**
 * Imports 32 raw bytes as a non-extractable AES-256-GCM key for encrypt and decrypt.
 *
 * @param raw Exactly 32 bytes.
 * @throws {KeyError} `"key_invalid"` naming the length when it is not 32.
 *
 * @example Import a fresh key
 * ```ts
 * import { generateAesKeyBytes, importAesKey, KeyError } from "./security.ts";
 * import assert from "node:assert/strict";
 *
 * const key = await importAesKey(generateAesKeyBytes());
 * assert.equal(key.extractable, false);
 * await assert.rejects(importAesKey(new Uint8Array(16)), KeyError);
 * ```
 */
export async function importAesKey(raw: Uint8Array): Promise<CryptoKey> {
  if (raw.length !== AES_KEY_BYTES) {
    throw new KeyError(
      "key_invalid",
      `AES-256 key must be ${AES_KEY_BYTES} bytes, got ${raw.length}`,
    );
  }
  return await crypto.subtle.importKey("raw", asBufferSource(raw), { name: "AES-GCM" }, false, [
    "encrypt",
    "decrypt",
  ]);
}

/**
 * Returns 32 fresh random bytes suitable as an AES-256 key.
 *
 * @example
 * ```ts
 * import { generateAesKeyBytes } from "./security.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(generateAesKeyBytes().length, 32);
 * ```
 */
export function generateAesKeyBytes(): Uint8Array<ArrayBuffer> {
  return crypto.getRandomValues(new Uint8Array(AES_KEY_BYTES));
}

/**
 * Seals `plaintext` with AES-256-GCM under a fresh random nonce.
 *
 * @param key An AES-GCM key from {@linkcode importAesKey}.
 * @param plaintext Bytes to seal (may be empty).
 * @param aad Optional additional authenticated data; {@linkcode decrypt} needs the same bytes.
 * @returns `nonce[12] ‖ ciphertext ‖ tag[16]`.
 *
 * @example Seal and open
 * ```ts
 * import { decrypt, encrypt, generateAesKeyBytes, importAesKey } from "./security.ts";
 * import assert from "node:assert/strict";
 *
 * const key = await importAesKey(generateAesKeyBytes());
 * const text = new TextEncoder().encode("hello");
 * const sealed = await encrypt(key, text);
 * assert.equal(sealed.length, 12 + text.length + 16);
 * assert.deepEqual(await decrypt(key, sealed), text);
 * ```
 */
export async function encrypt(
  key: CryptoKey,
  plaintext: Uint8Array,
  aad?: Uint8Array,
): Promise<Uint8Array<ArrayBuffer>> {
  const nonce = crypto.getRandomValues(new Uint8Array(NONCE_BYTES));
  const params: AesGcmParams = aad === undefined
    ? { name: "AES-GCM", iv: nonce }
    : { name: "AES-GCM", iv: nonce, additionalData: asBufferSource(aad) };
  const body = await crypto.subtle.encrypt(params, key, asBufferSource(plaintext));
  const sealed = new Uint8Array(NONCE_BYTES + body.byteLength);
  sealed.set(nonce, 0);
  sealed.set(new Uint8Array(body), NONCE_BYTES);
  return sealed;
}

/**
 * Opens `nonce[12] ‖ ciphertext ‖ tag[16]` made by {@linkcode encrypt}.
 *
 * @param key The AES-GCM key it was sealed with.
 * @param sealed The sealed bytes.
 * @param aad The additional data it was sealed with, if any.
 * @returns The plaintext.
 * @throws {DecryptError} For short input, a bad tag, the wrong key or the wrong AAD — never
 * any other error type.
 *
 * @example A flipped bit is refused
 * ```ts
 * import { decrypt, DecryptError, encrypt, generateAesKeyBytes, importAesKey } from "./security.ts";
 * import assert from "node:assert/strict";
 *
 * const key = await importAesKey(generateAesKeyBytes());
 * const sealed = await encrypt(key, new Uint8Array([1, 2, 3]));
 * sealed[sealed.length - 1] ^= 1;
 * await assert.rejects(decrypt(key, sealed), DecryptError);
 * ```
 */
export async function decrypt(
  key: CryptoKey,
  sealed: Uint8Array,
  aad?: Uint8Array,
): Promise<Uint8Array<ArrayBuffer>> {
  if (sealed.length < NONCE_BYTES + TAG_BYTES) throw new DecryptError();
  const source = asBufferSource(sealed);
  const nonce = source.subarray(0, NONCE_BYTES);
  const body = source.subarray(NONCE_BYTES);
  const params: AesGcmParams = aad === undefined
    ? { name: "AES-GCM", iv: nonce }
    : { name: "AES-GCM", iv: nonce, additionalData: asBufferSource(aad) };
  try {
    return new Uint8Array(await crypto.subtle.decrypt(params, key, body));
  } catch (cause) {
    // WebCrypto reports a bad tag, a wrong key and a non-AES key with different DOMExceptions;
    // callers must not be able to tell them apart, so all become one DecryptError.
    throw new DecryptError({ cause });
  }
}

/**
 * Encodes bytes as base64url without padding (RFC 4648 §5).
 *
 * @example
 * ```ts
 * import { toBase64Url } from "./security.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(toBase64Url(new Uint8Array([0xfb, 0xff])), "-_8");
 * ```
 */
export function toBase64Url(bytes: Uint8Array): string {
  return bytes.toBase64({ alphabet: "base64url", omitPadding: true });
}

/**
 * Decodes canonical base64url without padding: no `=`, no whitespace, no `+` or `/`, and no
 * stray bits in the last character, so every byte string has exactly one accepted text.
 *
 * @param text The encoded text.
 * @throws {Base64Error} For any other input.
 *
 * @example
 * ```ts
 * import { Base64Error, fromBase64Url } from "./security.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(fromBase64Url("-_8"), new Uint8Array([0xfb, 0xff]));
 * assert.throws(() => fromBase64Url("-_8="), Base64Error);
 * ```
 */
export function fromBase64Url(text: string): Uint8Array<ArrayBuffer> {
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = Uint8Array.fromBase64(text, { alphabet: "base64url", lastChunkHandling: "loose" });
  } catch (cause) {
    throw new Base64Error("text is not base64url", { cause });
  }
  // The native decoder accepts padding, whitespace and non-zero trailing bits; requiring the
  // re-encoding to match rejects all three at once.
  if (bytes.toBase64({ alphabet: "base64url", omitPadding: true }) !== text) {
    throw new Base64Error("text is not canonical unpadded base64url");
  }
  return bytes;
}

/**
 * Returns `bytes` cryptographically random bytes, e.g. the master's challenge passphrase.
 *
 * @param bytes How many bytes, 1 to 65536 (default 32).
 * @throws {RangeError} When `bytes` is not an integer in 1..65536.
 *
 * @example
 * ```ts
 * import { randomPassphrase } from "./security.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(randomPassphrase().length, 32);
 * assert.equal(randomPassphrase(16).length, 16);
 * ```
 */
export function randomPassphrase(bytes = 32): Uint8Array<ArrayBuffer> {
  // 65536 is the most getRandomValues fills in one call.
  if (!Number.isInteger(bytes) || bytes < 1 || bytes > 65536) {
    throw new RangeError(`passphrase length must be an integer in 1..65536, got ${bytes}`);
  }
  return crypto.getRandomValues(new Uint8Array(bytes));
}

/**
 * Compares two byte strings in time that depends only on their lengths, never on where they
 * differ. Different lengths compare unequal after the same full loop.
 *
 * @example
 * ```ts
 * import { constantTimeEqual } from "./security.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(constantTimeEqual(new Uint8Array([1, 2]), new Uint8Array([1, 2])), true);
 * assert.equal(constantTimeEqual(new Uint8Array([1, 2]), new Uint8Array([1, 3])), false);
 * assert.equal(constantTimeEqual(new Uint8Array([1, 2]), new Uint8Array([1, 2, 0])), false);
 * ```
 */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  const length = Math.max(a.length, b.length);
  let diff = a.length ^ b.length;
  for (let i = 0; i < length; i++) {
    // An index past the end reads undefined, and `undefined | 0` is 0: no branch on content.
    diff |= (a[i] | 0) ^ (b[i] | 0);
  }
  return diff === 0;
}

/**
 * Returns the SHA-256 digest of `bytes`.
 *
 * @example
 * ```ts
 * import { sha256 } from "./security.ts";
 * import assert from "node:assert/strict";
 *
 * const digest = await sha256(new TextEncoder().encode("abc"));
 * assert.equal(
 *   digest.toHex(),
 *   "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
 * );
 * ```
 */
export async function sha256(bytes: Uint8Array): Promise<Uint8Array<ArrayBuffer>> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", asBufferSource(bytes)));
}
