// This module is browser compatible.
/**
 * Session key derivations of docs/PROTOCOL.md "Key derivations": HKDF-SHA-256 for the
 * master↔cluster link (from the shared cluster key and the challenge) and for client↔cluster
 * sessions (from an ephemeral-static X25519 exchange). Each derivation yields one key per
 * direction, so record counters never reuse a nonce under one key.
 *
 * This module must never log, never reuse a derived key for both directions, and never let a
 * raw `DOMException` escape: bad key bytes are a {@linkcode KeyError} `"key_invalid"`.
 *
 * @module
 */

import { importX25519PublicKey, X25519_PUBLIC_KEY_BYTES } from "./identity_key.ts";
import { type NodeCrypto, nodeCrypto, type NodeKeyObject } from "./node_crypto.ts";
import { AES_KEY_BYTES, asBufferSource, fromBase64Url, KeyError, toBase64Url } from "./security.ts";

/** Bytes of the cluster nonce sent in BecomeCluster and of each handshake random. */
const RANDOM_BYTES = 32;
const MASTER_LINK_INFO = new TextEncoder().encode("sustenet master-link v1");
const ANNOUNCE_INFO = new TextEncoder().encode("sustenet announce v2");
const CLIENT_SESSION_INFO = new TextEncoder().encode("sustenet client-session v1");

/**
 * The keys of one master↔cluster registration: the two raw AES-256 record keys, one per
 * direction, and the HMAC key that authenticates the cluster's AnswerCluster.
 *
 * @example
 * ```ts
 * import { deriveMasterLinkKeys, type MasterLinkKeys } from "./key_derivation.ts";
 * import assert from "node:assert/strict";
 *
 * const keys: MasterLinkKeys = await deriveMasterLinkKeys(
 *   new Uint8Array(32),
 *   new Uint8Array(32),
 *   new Uint8Array(32),
 * );
 * assert.notDeepEqual(keys.clusterToMaster, keys.masterToCluster);
 * ```
 */
export interface MasterLinkKeys {
  /** Seals what the cluster sends to the master. */
  readonly clusterToMaster: Uint8Array<ArrayBuffer>;
  /** Seals what the master sends to the cluster. */
  readonly masterToCluster: Uint8Array<ArrayBuffer>;
  /** HMAC-SHA-256 key of the AnswerCluster proof (`shared/announce_proof.ts`). */
  readonly announceKey: Uint8Array<ArrayBuffer>;
}

/**
 * The two raw AES-256 keys of a client↔cluster session, one per direction.
 *
 * @example
 * ```ts
 * import {
 *   clientSessionKeysForClient,
 *   type ClientSessionKeys,
 *   generateEphemeralKeyPair,
 * } from "./key_derivation.ts";
 * import assert from "node:assert/strict";
 *
 * const client = await generateEphemeralKeyPair();
 * const cluster = await generateEphemeralKeyPair();
 * const keys: ClientSessionKeys = await clientSessionKeysForClient(
 *   client.privateKey,
 *   cluster.publicRaw,
 *   new Uint8Array(32),
 *   new Uint8Array(32),
 * );
 * assert.equal(keys.clientToCluster.length, 32);
 * ```
 */
export interface ClientSessionKeys {
  /** Seals what the client sends to the cluster. */
  readonly clientToCluster: Uint8Array<ArrayBuffer>;
  /** Seals what the cluster sends to the client. */
  readonly clusterToClient: Uint8Array<ArrayBuffer>;
}

/**
 * An ephemeral X25519 key pair: a non-extractable private key and the raw public key to send.
 *
 * @example
 * ```ts
 * import { type EphemeralKeyPair, generateEphemeralKeyPair } from "./key_derivation.ts";
 * import assert from "node:assert/strict";
 *
 * const pair: EphemeralKeyPair = await generateEphemeralKeyPair();
 * assert.equal(pair.privateKey.extractable, false);
 * ```
 */
export interface EphemeralKeyPair {
  /** Private key, usable only for `deriveBits`, never exportable. */
  readonly privateKey: CryptoKey;
  /** Raw 32-byte public key (KeyExchange / JoinCluster `clientPublicKey`). */
  readonly publicRaw: Uint8Array<ArrayBuffer>;
}

function requireLength(what: string, bytes: Uint8Array, expected: number): void {
  if (bytes.length !== expected) {
    throw new RangeError(`${what} must be ${expected} bytes, got ${bytes.length}`);
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/**
 * HKDF-SHA-256 to `bytes` bytes: `node:crypto`'s `hkdfSync` where the runtime has it (a third
 * of WebCrypto's CPU per join), WebCrypto otherwise; the same bytes either way.
 */
async function hkdf(
  ikm: Uint8Array,
  salt: Uint8Array<ArrayBuffer>,
  info: Uint8Array<ArrayBuffer>,
  bytes: number,
): Promise<Uint8Array<ArrayBuffer>> {
  const node = nodeCrypto();
  if (node !== undefined) return new Uint8Array(node.hkdfSync("sha256", ikm, salt, info, bytes));
  const base = await crypto.subtle.importKey("raw", asBufferSource(ikm), "HKDF", false, [
    "deriveBits",
  ]);
  const bits = await crypto.subtle.deriveBits(
    { name: "HKDF", hash: "SHA-256", salt, info },
    base,
    bytes * 8,
  );
  return new Uint8Array(bits);
}

/** HKDF-SHA-256 to 64 bytes, split into two 32-byte keys (first, last). */
async function hkdfPair(
  ikm: Uint8Array,
  salt: Uint8Array<ArrayBuffer>,
  info: Uint8Array<ArrayBuffer>,
): Promise<readonly [Uint8Array<ArrayBuffer>, Uint8Array<ArrayBuffer>]> {
  const okm = await hkdf(ikm, salt, info, AES_KEY_BYTES * 2);
  return [okm.slice(0, AES_KEY_BYTES), okm.slice(AES_KEY_BYTES)];
}

/** `node:crypto` views of private CryptoKeys, made once per key (the cluster's identity). */
const nodePrivateKeys = new WeakMap<CryptoKey, NodeKeyObject>();

/**
 * X25519 with `node:crypto`: no key import through WebCrypto, no async op. An all-zero
 * secret (a low-order peer key) is refused as WebCrypto refuses it.
 */
function nodeX25519(
  node: NodeCrypto,
  privateKey: CryptoKey,
  peerPublicRaw: Uint8Array,
): Uint8Array {
  if (peerPublicRaw.length !== X25519_PUBLIC_KEY_BYTES) {
    throw new KeyError(
      "key_invalid",
      `X25519 public key must be ${X25519_PUBLIC_KEY_BYTES} bytes, got ${peerPublicRaw.length}`,
    );
  }
  let shared: Uint8Array;
  try {
    let own = nodePrivateKeys.get(privateKey);
    if (own === undefined) {
      own = node.KeyObject.from(privateKey);
      nodePrivateKeys.set(privateKey, own);
    }
    const peer = node.createPublicKey({
      key: { kty: "OKP", crv: "X25519", x: toBase64Url(peerPublicRaw) },
      format: "jwk",
    });
    shared = node.diffieHellman({ privateKey: own, publicKey: peer });
  } catch (cause) {
    throw new KeyError("key_invalid", "X25519 key agreement failed for these keys", { cause });
  }
  if (shared.every((byte) => byte === 0)) {
    throw new KeyError("key_invalid", "X25519 key agreement failed for these keys");
  }
  return shared;
}

async function x25519(privateKey: CryptoKey, peerPublicRaw: Uint8Array): Promise<Uint8Array> {
  const node = nodeCrypto();
  if (node !== undefined) return nodeX25519(node, privateKey, peerPublicRaw);
  const peer = await importX25519PublicKey(peerPublicRaw);
  try {
    return new Uint8Array(
      await crypto.subtle.deriveBits(
        { name: "X25519", public: peer },
        privateKey,
        X25519_PUBLIC_KEY_BYTES * 8,
      ),
    );
  } catch (cause) {
    // A low-order peer key (all-zero shared secret) or a private key that is not X25519.
    throw new KeyError("key_invalid", "X25519 key agreement failed for these keys", { cause });
  }
}

/**
 * Derives the master↔cluster link keys: HKDF-SHA-256 with IKM = cluster key,
 * salt = clusterNonce ‖ passphrase, info = "sustenet master-link v1" (64 bytes: the two record
 * keys), and with the same IKM and salt, info = "sustenet announce v2" (32 bytes: the HMAC key
 * of the AnswerCluster proof). Only holders of the cluster key who saw this challenge's
 * passphrase can compute any of them.
 *
 * @param clusterKey The shared 32-byte cluster key.
 * @param clusterNonce The 32-byte nonce the cluster sent in BecomeCluster.
 * @param passphrase The challenge passphrase (at least 1 byte).
 * @throws {KeyError} `"key_invalid"` when the cluster key is not 32 bytes.
 * @throws {RangeError} When the nonce is not 32 bytes or the passphrase is empty.
 *
 * @example Both sides derive the same keys
 * ```ts
 * import { deriveMasterLinkKeys } from "./key_derivation.ts";
 * import assert from "node:assert/strict";
 *
 * const key = crypto.getRandomValues(new Uint8Array(32));
 * const nonce = crypto.getRandomValues(new Uint8Array(32));
 * const passphrase = crypto.getRandomValues(new Uint8Array(32));
 * const master = await deriveMasterLinkKeys(key, nonce, passphrase);
 * const cluster = await deriveMasterLinkKeys(key, nonce, passphrase);
 * assert.deepEqual(master, cluster);
 * ```
 */
export async function deriveMasterLinkKeys(
  clusterKey: Uint8Array,
  clusterNonce: Uint8Array,
  passphrase: Uint8Array,
): Promise<MasterLinkKeys> {
  if (clusterKey.length !== AES_KEY_BYTES) {
    throw new KeyError(
      "key_invalid",
      `cluster key must be ${AES_KEY_BYTES} bytes, got ${clusterKey.length}`,
    );
  }
  requireLength("cluster nonce", clusterNonce, RANDOM_BYTES);
  if (passphrase.length === 0) throw new RangeError("passphrase must be at least 1 byte, got 0");
  const salt = concat(clusterNonce, passphrase);
  const [[clusterToMaster, masterToCluster], announceKey] = await Promise.all([
    hkdfPair(clusterKey, salt, MASTER_LINK_INFO),
    hkdf(clusterKey, salt, ANNOUNCE_INFO, AES_KEY_BYTES),
  ]);
  return { clusterToMaster, masterToCluster, announceKey };
}

/**
 * Generates an ephemeral X25519 key pair for one join (JoinCluster, KeyExchange).
 *
 * @example
 * ```ts
 * import { generateEphemeralKeyPair } from "./key_derivation.ts";
 * import assert from "node:assert/strict";
 *
 * const pair = await generateEphemeralKeyPair();
 * assert.equal(pair.publicRaw.length, 32);
 * ```
 */
export async function generateEphemeralKeyPair(): Promise<EphemeralKeyPair> {
  const node = nodeCrypto();
  if (node !== undefined) {
    // A fifth of WebCrypto's CPU (its raw export alone costs more than this whole path); the
    // node:crypto view of the private key is kept for the exchange that follows.
    const pair = node.generateKeyPairSync("x25519");
    // `toCryptoKey` is recent in Node (Deno has it); without it, WebCrypto as before.
    const privateKey = pair.privateKey.toCryptoKey?.("X25519", false, ["deriveBits"]);
    const x = pair.publicKey.export({ format: "jwk" }).x;
    if (privateKey !== undefined && x !== undefined) {
      nodePrivateKeys.set(privateKey, pair.privateKey);
      return { privateKey, publicRaw: fromBase64Url(x) };
    }
  }
  const pair = await crypto.subtle.generateKey({ name: "X25519" }, false, [
    "deriveBits",
  ]) as CryptoKeyPair;
  const publicRaw = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
  return { privateKey: pair.privateKey, publicRaw };
}

async function clientSessionKeys(
  privateKey: CryptoKey,
  peerPublicRaw: Uint8Array,
  clientRandom: Uint8Array,
  serverRandom: Uint8Array,
): Promise<ClientSessionKeys> {
  requireLength("client random", clientRandom, RANDOM_BYTES);
  requireLength("server random", serverRandom, RANDOM_BYTES);
  const shared = await x25519(privateKey, peerPublicRaw);
  const [clientToCluster, clusterToClient] = await hkdfPair(
    shared,
    concat(clientRandom, serverRandom),
    CLIENT_SESSION_INFO,
  );
  shared.fill(0); // the shared secret is not needed again
  return { clientToCluster, clusterToClient };
}

/**
 * Derives the client↔cluster session keys on the client: X25519(client ephemeral, cluster
 * static public key), then HKDF-SHA-256 with salt = clientRandom ‖ serverRandom,
 * info = "sustenet client-session v1".
 *
 * @param clientPrivate The client's ephemeral private key.
 * @param clusterPublicRaw The cluster's pinned raw 32-byte public key.
 * @param clientRandom The 32 bytes the client sent in KeyExchange.
 * @param serverRandom The 32 bytes the cluster sent in KeyExchangeOk.
 * @throws {KeyError} `"key_invalid"` for unusable public key bytes.
 * @throws {RangeError} When a random is not 32 bytes.
 *
 * @example Client and cluster agree
 * ```ts
 * import {
 *   clientSessionKeysForClient,
 *   clientSessionKeysForCluster,
 *   generateEphemeralKeyPair,
 * } from "./key_derivation.ts";
 * import assert from "node:assert/strict";
 *
 * const client = await generateEphemeralKeyPair();
 * const cluster = await generateEphemeralKeyPair(); // stands in for the identity key
 * const clientRandom = crypto.getRandomValues(new Uint8Array(32));
 * const serverRandom = crypto.getRandomValues(new Uint8Array(32));
 * assert.deepEqual(
 *   await clientSessionKeysForClient(client.privateKey, cluster.publicRaw, clientRandom, serverRandom),
 *   await clientSessionKeysForCluster(cluster.privateKey, client.publicRaw, clientRandom, serverRandom),
 * );
 * ```
 */
export async function clientSessionKeysForClient(
  clientPrivate: CryptoKey,
  clusterPublicRaw: Uint8Array,
  clientRandom: Uint8Array,
  serverRandom: Uint8Array,
): Promise<ClientSessionKeys> {
  return await clientSessionKeys(clientPrivate, clusterPublicRaw, clientRandom, serverRandom);
}

/**
 * Derives the client↔cluster session keys on the cluster: X25519(cluster static private key,
 * client ephemeral public key), then the same HKDF as {@linkcode clientSessionKeysForClient}.
 *
 * @param clusterPrivate The cluster's identity private key.
 * @param clientPublicRaw The client's raw 32-byte ephemeral public key from KeyExchange.
 * @param clientRandom The 32 bytes the client sent in KeyExchange.
 * @param serverRandom The 32 bytes the cluster sent in KeyExchangeOk.
 * @throws {KeyError} `"key_invalid"` for unusable public key bytes (e.g. a low-order point).
 * @throws {RangeError} When a random is not 32 bytes.
 *
 * @example A bad client key is a KeyError
 * ```ts
 * import { clientSessionKeysForCluster, generateEphemeralKeyPair } from "./key_derivation.ts";
 * import { KeyError } from "./security.ts";
 * import assert from "node:assert/strict";
 *
 * const cluster = await generateEphemeralKeyPair();
 * const random = new Uint8Array(32);
 * await assert.rejects(
 *   clientSessionKeysForCluster(cluster.privateKey, new Uint8Array(32), random, random),
 *   KeyError,
 * );
 * ```
 */
export async function clientSessionKeysForCluster(
  clusterPrivate: CryptoKey,
  clientPublicRaw: Uint8Array,
  clientRandom: Uint8Array,
  serverRandom: Uint8Array,
): Promise<ClientSessionKeys> {
  return await clientSessionKeys(clusterPrivate, clientPublicRaw, clientRandom, serverRandom);
}
