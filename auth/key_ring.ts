/**
 * The account service's Ed25519 signing keys on disk: one JSON file (mode 0600) holding the
 * current key first and the previous ones after it, each with its key id. Tokens are signed with
 * the current key; every key in the ring is published (JWK Set) so tokens signed before a
 * rotation keep verifying until they expire. Rotation adds a new current key and keeps
 * `keep` previous ones. Files are replaced atomically (write, then rename), and the private
 * half never leaves this module except as a non-extractable CryptoKey.
 *
 * @module
 */

import type { PublicJwk, SigningKey } from "./access_token.ts";

interface StoredKey {
  readonly kid: string;
  readonly created_at: string;
  readonly private: JsonWebKey;
  readonly public: PublicJwk;
}

/** A loaded key ring. */
export interface KeyRing {
  /** The key new tokens are signed with. */
  readonly current: SigningKey;
  /** Every public key of the ring (current first), as served at the well-known URL. */
  readonly jwks: { readonly keys: readonly PublicJwk[] };
}

async function newKey(): Promise<StoredKey> {
  const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, true, [
    "sign",
    "verify",
  ]) as CryptoKeyPair;
  const kid = crypto.getRandomValues(new Uint8Array(8)).toHex();
  const priv = await crypto.subtle.exportKey("jwk", pair.privateKey);
  const pub = await crypto.subtle.exportKey("jwk", pair.publicKey);
  return {
    kid,
    created_at: new Date().toISOString(),
    private: priv,
    public: { kty: "OKP", crv: "Ed25519", x: String(pub.x), kid, alg: "EdDSA", use: "sig" },
  };
}

async function writeAtomically(path: string, text: string, mode: number): Promise<void> {
  const slash = Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\"));
  if (slash > 0) await Deno.mkdir(path.slice(0, slash), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${crypto.randomUUID()}.tmp`;
  await Deno.writeTextFile(tmp, text, { mode });
  await Deno.chmod(tmp, mode).catch((error: unknown) => {
    if (!(error instanceof Deno.errors.NotSupported)) throw error; // Windows
  });
  await Deno.rename(tmp, path);
}

async function readStored(path: string): Promise<StoredKey[] | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
  const doc = JSON.parse(text) as { keys?: unknown };
  if (!Array.isArray(doc.keys) || doc.keys.length === 0) {
    throw new TypeError(`${path}: not a key ring ({"keys": [...]} with at least one key)`);
  }
  return doc.keys as StoredKey[];
}

async function toRing(keys: readonly StoredKey[]): Promise<KeyRing> {
  const first = keys[0];
  if (first === undefined) throw new TypeError("empty key ring");
  const privateKey = await crypto.subtle.importKey(
    "jwk",
    first.private,
    { name: "Ed25519" },
    false,
    ["sign"],
  );
  return {
    current: { kid: first.kid, privateKey },
    jwks: Object.freeze({ keys: Object.freeze(keys.map((k) => k.public)) }),
  };
}

/**
 * Loads the key ring at `path`, creating it with one new key when the file does not exist.
 *
 * @param path The ring file.
 * @returns The ring.
 * @throws {TypeError} For a file that is not a key ring.
 *
 * @example
 * ```ts
 * import { loadKeyRing, rotateKeyRing } from "./key_ring.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const first = await loadKeyRing(`${dir}/ring.json`);
 * const second = await rotateKeyRing(`${dir}/ring.json`, 1);
 * assert.notEqual(second.current.kid, first.current.kid);
 * assert.deepEqual(second.jwks.keys.map((k) => k.kid), [second.current.kid, first.current.kid]);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function loadKeyRing(path: string): Promise<KeyRing> {
  let keys = await readStored(path);
  if (keys === undefined) {
    keys = [await newKey()];
    await writeAtomically(path, JSON.stringify({ keys }, null, 2) + "\n", 0o600);
  }
  return await toRing(keys);
}

/**
 * Adds a new current key to the ring at `path` (creating it if missing) and drops all but
 * `keep` previous keys.
 *
 * @param path The ring file.
 * @param keep Previous keys kept (their tokens still verify).
 * @returns The new ring.
 */
export async function rotateKeyRing(path: string, keep: number): Promise<KeyRing> {
  const old = await readStored(path) ?? [];
  const keys = [await newKey(), ...old.slice(0, Math.max(0, keep))];
  await writeAtomically(path, JSON.stringify({ keys }, null, 2) + "\n", 0o600);
  return await toRing(keys);
}

/**
 * Writes a ring's public keys as a JWK Set file (mode 0644) that masters load.
 *
 * @param ring The ring.
 * @param path Where to write.
 */
export async function writePublicKeys(ring: KeyRing, path: string): Promise<void> {
  await writeAtomically(path, JSON.stringify(ring.jwks, null, 2) + "\n", 0o644);
}
