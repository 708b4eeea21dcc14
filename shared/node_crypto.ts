// This module is browser compatible.
/**
 * The synchronous `node:crypto` of a server runtime (Deno, Node, Bun), found at run time with
 * `process.getBuiltinModule`, or `undefined` in a browser. The join path's hashes, ticket
 * sealing, HKDF and X25519 use it where it exists: per operation it costs a fraction of
 * WebCrypto's (each WebCrypto call is an async op, several µs of dispatch and a promise) and
 * it produces the same bytes (tests/node_crypto_test.ts proves it for each use).
 *
 * No static import of `node:*`, so browser bundles never see it. Only the few functions the
 * join path calls are typed here; it must never be used for anything a browser client needs
 * and cannot do with WebCrypto.
 *
 * @module
 */

/** A `node:crypto` `KeyObject` (opaque here). */
export interface NodeKeyObject {
  /** `"secret"`, `"public"` or `"private"`. */
  readonly type: string;
  /** `"x25519"` for the keys of the join path. */
  readonly asymmetricKeyType?: string;
  /** Exports the key (the join path only asks for JWK). */
  export(options: { format: "jwk" }): { readonly x?: string };
  /** The same key as a WebCrypto key (absent in older Node). */
  toCryptoKey?(algorithm: "X25519", extractable: boolean, usages: KeyUsage[]): CryptoKey;
}

/** The state of one `createCipheriv` / `createDecipheriv` call. */
export interface NodeAeadCipher {
  /** Sets the additional authenticated data. */
  setAAD(aad: Uint8Array): NodeAeadCipher;
  /** Sets the tag to check (decipher only). */
  setAuthTag(tag: Uint8Array): NodeAeadCipher;
  /** Encrypts or decrypts a chunk. */
  update(data: Uint8Array): Uint8Array;
  /** Finishes; a decipher throws here for a bad tag. */
  final(): Uint8Array;
  /** The tag after `final` (cipher only). */
  getAuthTag(): Uint8Array;
}

/** The part of `node:crypto` the join path uses. */
export interface NodeCrypto {
  /** HKDF, synchronous. */
  hkdfSync(
    digest: "sha256",
    ikm: Uint8Array | NodeKeyObject,
    salt: Uint8Array,
    info: Uint8Array,
    keylen: number,
  ): ArrayBuffer;
  /** X25519 shared secret. */
  diffieHellman(options: { privateKey: NodeKeyObject; publicKey: NodeKeyObject }): Uint8Array;
  /** A hash. */
  createHash(algorithm: "sha256"): {
    update(data: Uint8Array): { digest(): Uint8Array };
  };
  /** AES-256-GCM sealing. */
  createCipheriv(algorithm: "aes-256-gcm", key: NodeKeyObject, iv: Uint8Array): NodeAeadCipher;
  /** AES-256-GCM opening. */
  createDecipheriv(algorithm: "aes-256-gcm", key: NodeKeyObject, iv: Uint8Array): NodeAeadCipher;
  /** A secret key object. */
  createSecretKey(key: Uint8Array): NodeKeyObject;
  /** A public key object (the join path passes a JWK). */
  createPublicKey(
    options: { key: { kty: "OKP"; crv: "X25519"; x: string }; format: "jwk" },
  ): NodeKeyObject;
  /** A fresh key pair. */
  generateKeyPairSync(type: "x25519"): { publicKey: NodeKeyObject; privateKey: NodeKeyObject };
  /** `KeyObject.from(cryptoKey)`. */
  readonly KeyObject: { from(key: CryptoKey): NodeKeyObject };
}

interface ProcessWithBuiltins {
  getBuiltinModule?: (id: string) => unknown;
}

let found: NodeCrypto | undefined | null = null;

/**
 * Returns the runtime's synchronous `node:crypto`, or `undefined` where there is none (a
 * browser; or `SUSTENET_WEBCRYPTO_ONLY=1`, which the tests use to run the WebCrypto backend).
 * Looked up once.
 *
 * @example
 * ```ts
 * import { nodeCrypto } from "./node_crypto.ts";
 * import assert from "node:assert/strict";
 *
 * // Deno has it; a browser would get undefined.
 * const node = nodeCrypto();
 * const hash = node?.createHash("sha256").update(new Uint8Array(0)).digest();
 * assert.equal(hash === undefined || hash.length === 32, true);
 * ```
 */
export function nodeCrypto(): NodeCrypto | undefined {
  if (found !== null) return found;
  const process = (globalThis as { process?: ProcessWithBuiltins }).process;
  found = webCryptoOnly() ? undefined : process?.getBuiltinModule?.("node:crypto") as
    | NodeCrypto
    | undefined;
  return found;
}

/** The environment variable that turns the `node:crypto` backend off (tests). */
const WEBCRYPTO_ONLY = "SUSTENET_WEBCRYPTO_ONLY";

interface DenoEnvironment {
  readonly permissions?: {
    querySync?(descriptor: { name: "env"; variable: string }): { readonly state: string };
  };
  readonly env: { get(name: string): string | undefined };
}

/**
 * The test switch. Read only where env access is already granted, so a client run without
 * `--allow-env` is never prompted for it.
 */
function webCryptoOnly(): boolean {
  const deno = (globalThis as { Deno?: DenoEnvironment }).Deno;
  const state = deno?.permissions?.querySync?.({ name: "env", variable: WEBCRYPTO_ONLY }).state;
  return state === "granted" && deno?.env.get(WEBCRYPTO_ONLY) === "1";
}
