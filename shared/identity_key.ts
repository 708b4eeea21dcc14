// This module is browser compatible.
/**
 * A cluster's identity key pair: static X25519 via WebCrypto. The public half is pinned by
 * clients (from a `.pub` file, the `domain_pub_key` URL or SendPubKey, cached by its
 * {@linkcode identityKeyVersion}); the private half completes the client-session ECDH.
 *
 * This module must never touch files (that is `keys.ts`), never log, and never hand out an
 * extractable private key except from {@linkcode generateIdentityKeyPair}, whose pair exists
 * only to be saved.
 *
 * @module
 */

import {
  asBufferSource,
  Base64Error,
  fromBase64Url,
  KeyError,
  sha256,
  toBase64Url,
} from "./security.ts";

/**
 * Bytes of a raw X25519 public key.
 *
 * @example
 * ```ts
 * import { exportIdentity, generateIdentityKeyPair, X25519_PUBLIC_KEY_BYTES } from "./identity_key.ts";
 * import assert from "node:assert/strict";
 *
 * const identity = await exportIdentity(await generateIdentityKeyPair());
 * assert.equal(identity.publicRaw.length, X25519_PUBLIC_KEY_BYTES);
 * ```
 */
export const X25519_PUBLIC_KEY_BYTES = 32;

/**
 * The two halves of an identity key pair as bytes, ready to be written to disk.
 *
 * @example
 * ```ts
 * import { type ExportedIdentity, exportIdentity, generateIdentityKeyPair } from "./identity_key.ts";
 * import assert from "node:assert/strict";
 *
 * const exported: ExportedIdentity = await exportIdentity(await generateIdentityKeyPair());
 * assert.equal(exported.publicRaw.length, 32);
 * ```
 */
export interface ExportedIdentity {
  /** The private key, PKCS#8 DER (48 bytes for X25519). Secret. */
  readonly privatePkcs8: Uint8Array<ArrayBuffer>;
  /** The raw 32-byte public key. */
  readonly publicRaw: Uint8Array<ArrayBuffer>;
}

/**
 * An identity key ready for use: a non-extractable private key and its raw public key.
 *
 * @example
 * ```ts
 * import {
 *   exportIdentity,
 *   generateIdentityKeyPair,
 *   type IdentityKey,
 *   importIdentity,
 * } from "./identity_key.ts";
 * import assert from "node:assert/strict";
 *
 * const exported = await exportIdentity(await generateIdentityKeyPair());
 * const identity: IdentityKey = await importIdentity(exported.privatePkcs8);
 * assert.deepEqual(identity.publicRaw, exported.publicRaw);
 * ```
 */
export interface IdentityKey {
  /** X25519 private key, usable only for `deriveBits`. */
  readonly privateKey: CryptoKey;
  /** The matching raw 32-byte public key. */
  readonly publicRaw: Uint8Array<ArrayBuffer>;
}

const X25519 = { name: "X25519" } as const;

/**
 * Generates a new X25519 identity key pair. The private key is extractable so that
 * {@linkcode exportIdentity} can save it; load it back with {@linkcode importIdentity} for use.
 *
 * @example
 * ```ts
 * import { generateIdentityKeyPair } from "./identity_key.ts";
 * import assert from "node:assert/strict";
 *
 * const pair = await generateIdentityKeyPair();
 * assert.equal(pair.privateKey.algorithm.name, "X25519");
 * ```
 */
export async function generateIdentityKeyPair(): Promise<CryptoKeyPair> {
  return await crypto.subtle.generateKey(X25519, true, ["deriveBits"]) as CryptoKeyPair;
}

/**
 * Exports an identity key pair as PKCS#8 private key bytes and the raw public key.
 *
 * @param pair A pair from {@linkcode generateIdentityKeyPair}.
 * @throws {KeyError} `"key_invalid"` when the pair is not an extractable X25519 pair.
 *
 * @example
 * ```ts
 * import { exportIdentity, generateIdentityKeyPair } from "./identity_key.ts";
 * import assert from "node:assert/strict";
 *
 * const exported = await exportIdentity(await generateIdentityKeyPair());
 * assert.equal(exported.publicRaw.length, 32);
 * assert.equal(exported.privatePkcs8.length, 48);
 * ```
 */
export async function exportIdentity(pair: CryptoKeyPair): Promise<ExportedIdentity> {
  if (pair.privateKey.algorithm.name !== "X25519" || pair.publicKey.algorithm.name !== "X25519") {
    throw new KeyError("key_invalid", "identity key pair must be X25519");
  }
  try {
    const privatePkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", pair.privateKey));
    const publicRaw = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
    return { privatePkcs8, publicRaw };
  } catch (cause) {
    throw new KeyError("key_invalid", "identity key pair cannot be exported", { cause });
  }
}

/**
 * Imports a PKCS#8 X25519 private key and recovers its public key, so a public key stored
 * beside it can be checked (or rebuilt) rather than trusted.
 *
 * @param privatePkcs8 PKCS#8 DER bytes from {@linkcode exportIdentity}.
 * @param expectedPublicRaw When given, the public key the private key must match.
 * @returns A non-extractable private key and its raw public key.
 * @throws {KeyError} `"key_invalid"` for bytes that are not an X25519 PKCS#8 key, or a public
 * key that does not match.
 *
 * @example Round trip
 * ```ts
 * import { exportIdentity, generateIdentityKeyPair, importIdentity } from "./identity_key.ts";
 * import assert from "node:assert/strict";
 *
 * const exported = await exportIdentity(await generateIdentityKeyPair());
 * const identity = await importIdentity(exported.privatePkcs8, exported.publicRaw);
 * assert.deepEqual(identity.publicRaw, exported.publicRaw);
 * assert.equal(identity.privateKey.extractable, false);
 * ```
 */
export async function importIdentity(
  privatePkcs8: Uint8Array,
  expectedPublicRaw?: Uint8Array,
): Promise<IdentityKey> {
  const pkcs8 = asBufferSource(privatePkcs8);
  let publicRaw: Uint8Array<ArrayBuffer>;
  let privateKey: CryptoKey;
  try {
    // WebCrypto cannot derive a public key directly; an extractable import exported as JWK
    // carries it in `x`. The key used afterwards is a second, non-extractable import.
    const extractable = await crypto.subtle.importKey("pkcs8", pkcs8, X25519, true, [
      "deriveBits",
    ]);
    const jwk = await crypto.subtle.exportKey("jwk", extractable);
    if (typeof jwk.x !== "string") throw new TypeError("JWK export has no public key");
    publicRaw = fromBase64Url(jwk.x);
    privateKey = await crypto.subtle.importKey("pkcs8", pkcs8, X25519, false, ["deriveBits"]);
  } catch (cause) {
    throw new KeyError("key_invalid", "identity private key is not an X25519 PKCS#8 key", {
      cause,
    });
  }
  if (expectedPublicRaw !== undefined) {
    // Both values are public, so an ordinary comparison is fine here.
    const same = expectedPublicRaw.length === publicRaw.length &&
      expectedPublicRaw.every((byte, i) => byte === publicRaw[i]);
    if (!same) {
      throw new KeyError("key_invalid", "identity public key does not match its private key");
    }
  }
  return { privateKey, publicRaw };
}

/**
 * Imports a peer's raw X25519 public key for `deriveBits`.
 *
 * @param raw Exactly 32 bytes.
 * @throws {KeyError} `"key_invalid"` naming the length, never a raw `DOMException`.
 *
 * @example
 * ```ts
 * import { importX25519PublicKey } from "./identity_key.ts";
 * import { KeyError } from "./security.ts";
 * import assert from "node:assert/strict";
 *
 * const key = await importX25519PublicKey(new Uint8Array(32).fill(9));
 * assert.equal(key.type, "public");
 * await assert.rejects(importX25519PublicKey(new Uint8Array(31)), KeyError);
 * ```
 */
export async function importX25519PublicKey(raw: Uint8Array): Promise<CryptoKey> {
  if (raw.length !== X25519_PUBLIC_KEY_BYTES) {
    throw new KeyError(
      "key_invalid",
      `X25519 public key must be ${X25519_PUBLIC_KEY_BYTES} bytes, got ${raw.length}`,
    );
  }
  try {
    return await crypto.subtle.importKey("raw", asBufferSource(raw), X25519, true, []);
  } catch (cause) {
    throw new KeyError("key_invalid", "X25519 public key bytes are not usable", { cause });
  }
}

/**
 * Returns the u16 version of a public key: the first two bytes of its SHA-256, big-endian,
 * with 0 mapped to 1 because 0 means "no cached key" in RequestKey.
 *
 * @param publicRaw The raw public key.
 * @returns A number in 1..65535, the same for the same key everywhere.
 *
 * @example
 * ```ts
 * import { identityKeyVersion } from "./identity_key.ts";
 * import assert from "node:assert/strict";
 *
 * const version = await identityKeyVersion(new Uint8Array(32));
 * assert.ok(version >= 1 && version <= 0xffff);
 * assert.equal(await identityKeyVersion(new Uint8Array(32)), version);
 * ```
 */
export async function identityKeyVersion(publicRaw: Uint8Array): Promise<number> {
  const digest = await sha256(publicRaw);
  const version = (digest[0] << 8) | digest[1];
  return version === 0 ? 1 : version;
}

/**
 * Formats a raw public key as the text of a `.pub` file: base64url without padding and a
 * newline.
 *
 * @example
 * ```ts
 * import { formatPublicKeyFile, parsePublicKeyFile } from "./identity_key.ts";
 * import assert from "node:assert/strict";
 *
 * const text = formatPublicKeyFile(new Uint8Array(32));
 * assert.ok(text.endsWith("\n"));
 * assert.deepEqual(parsePublicKeyFile(text), new Uint8Array(32));
 * ```
 */
export function formatPublicKeyFile(publicRaw: Uint8Array): string {
  if (publicRaw.length !== X25519_PUBLIC_KEY_BYTES) {
    throw new KeyError(
      "key_invalid",
      `X25519 public key must be ${X25519_PUBLIC_KEY_BYTES} bytes, got ${publicRaw.length}`,
    );
  }
  return `${toBase64Url(publicRaw)}\n`;
}

/**
 * Parses the text of a `.pub` file (or a `domain_pub_key` response): base64url of a raw
 * 32-byte X25519 public key, surrounding whitespace ignored.
 *
 * @param text The file's text.
 * @returns The raw public key.
 * @throws {KeyError} `"key_invalid"` when the text is not base64url or not 32 bytes.
 *
 * @example
 * ```ts
 * import { parsePublicKeyFile } from "./identity_key.ts";
 * import { KeyError } from "./security.ts";
 * import assert from "node:assert/strict";
 *
 * assert.throws(() => parsePublicKeyFile("not a key!"), KeyError);
 * assert.throws(() => parsePublicKeyFile("AAAA\n"), KeyError);
 * ```
 */
export function parsePublicKeyFile(text: string): Uint8Array<ArrayBuffer> {
  let raw: Uint8Array<ArrayBuffer>;
  try {
    raw = fromBase64Url(text.trim());
  } catch (cause) {
    if (!(cause instanceof Base64Error)) throw cause;
    throw new KeyError("key_invalid", "public key file is not base64url", { cause });
  }
  if (raw.length !== X25519_PUBLIC_KEY_BYTES) {
    throw new KeyError(
      "key_invalid",
      `public key file must hold ${X25519_PUBLIC_KEY_BYTES} bytes, got ${raw.length}`,
    );
  }
  return raw;
}
