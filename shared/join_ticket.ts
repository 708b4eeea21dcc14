// This module is browser compatible.
/**
 * Join tickets (docs/PROTOCOL.md "Join ticket"): the master seals who may join which cluster
 * (its id and the SHA-256 of its identity public key), until when and with which ephemeral
 * key, under that cluster's AES key; the cluster checks it offline with
 * {@linkcode TicketVerifier}. Sans-I/O: bytes in, verdicts out.
 *
 * This module must never log, never accept a remembered ticket id again, never mark a ticket
 * used before every other check has passed (so a thief holding a stolen ticket but not the
 * client's private key cannot burn it), and never keep more than `maxUsedTickets` ids.
 *
 * @module
 */

import { SustenetError } from "./errors.ts";
import { type NodeCrypto, nodeCrypto, type NodeKeyObject } from "./node_crypto.ts";
import {
  AES_KEY_BYTES,
  constantTimeEqual,
  decrypt,
  DecryptError,
  encrypt,
  importAesKey,
  KeyError,
  sha256,
} from "./security.ts";

/**
 * Plaintext layout version byte. 2: the ticket carries the SHA-256 of the cluster's identity
 * public key, so a ticket is good at one cluster only, even among clusters sharing an AES key
 * and whatever id they were given.
 */
const TICKET_VERSION = 2;
/** Additional authenticated data of every ticket. */
const TICKET_AAD = new TextEncoder().encode("sustenet-ticket-v2");
const CLIENT_KEY_HASH_BYTES = 32;
const CLUSTER_KEY_HASH_BYTES = 32;
const TICKET_ID_BYTES = 16;
/** version + clusterId + clusterKeyHash + playerId length + expiresAtMs + clientKeyHash + ticketId. */
const FIXED_PLAINTEXT_BYTES = 1 + 4 + CLUSTER_KEY_HASH_BYTES + 1 + 8 + CLIENT_KEY_HASH_BYTES +
  TICKET_ID_BYTES;
const MAX_PLAYER_ID_BYTES = 255;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * What a join ticket says: who may join which cluster, until when, bound to which key.
 *
 * @example
 * ```ts
 * import { type JoinTicketClaims, newTicketId } from "./join_ticket.ts";
 * import assert from "node:assert/strict";
 *
 * const claims: JoinTicketClaims = {
 *   clusterId: 1,
 *   clusterKeyHash: new Uint8Array(32),
 *   playerId: "guest-1",
 *   expiresAtMs: Date.now() + 30_000,
 *   clientKeyHash: new Uint8Array(32),
 *   ticketId: newTicketId(),
 * };
 * assert.equal(claims.ticketId.length, 16);
 * ```
 */
export interface JoinTicketClaims {
  /** The cluster the ticket is for (u32). */
  readonly clusterId: number;
  /** SHA-256 of that cluster's raw X25519 identity public key (32 bytes). */
  readonly clusterKeyHash: Uint8Array;
  /** The player identity the master's authentication hook decided (at most 255 UTF-8 bytes). */
  readonly playerId: string;
  /** Unix time in ms after which the ticket is refused. */
  readonly expiresAtMs: number;
  /** SHA-256 of the client's raw X25519 ephemeral public key (32 bytes). */
  readonly clientKeyHash: Uint8Array;
  /** Random single-use id (16 bytes). */
  readonly ticketId: Uint8Array;
}

/**
 * Thrown by {@linkcode openJoinTicket} for a ticket that cannot be decrypted, is malformed or
 * has an unknown version (code `"ticket_invalid"`).
 *
 * @example
 * ```ts
 * import { TicketError } from "./join_ticket.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(new TicketError("ticket cannot be opened").code, "ticket_invalid");
 * ```
 */
export class TicketError extends SustenetError {
  /**
   * Creates the error with code `"ticket_invalid"`.
   *
   * @param message What was wrong, never the ticket's contents.
   * @param options Standard error options (`cause`).
   */
  constructor(message: string, options?: ErrorOptions) {
    super("ticket_invalid", message, options);
  }
}

/**
 * Returns a fresh random 16-byte ticket id.
 *
 * @example
 * ```ts
 * import { newTicketId } from "./join_ticket.ts";
 * import assert from "node:assert/strict";
 *
 * assert.notDeepEqual(newTicketId(), newTicketId());
 * ```
 */
export function newTicketId(): Uint8Array<ArrayBuffer> {
  return crypto.getRandomValues(new Uint8Array(TICKET_ID_BYTES));
}

/**
 * Returns the `clientKeyHash` for a client's raw ephemeral public key: its SHA-256.
 *
 * @example
 * ```ts
 * import { clientKeyHash } from "./join_ticket.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal((await clientKeyHash(new Uint8Array(32))).length, 32);
 * ```
 */
export async function clientKeyHash(clientPublicRaw: Uint8Array): Promise<Uint8Array<ArrayBuffer>> {
  return await hash(clientPublicRaw);
}

/** SHA-256: synchronous `node:crypto` where the runtime has it (no async op), else WebCrypto. */
async function hash(bytes: Uint8Array): Promise<Uint8Array<ArrayBuffer>> {
  const node = nodeCrypto();
  if (node === undefined) return await sha256(bytes);
  return new Uint8Array(node.createHash("sha256").update(bytes).digest());
}

/**
 * Returns the `clusterKeyHash` for a cluster's raw identity public key: its SHA-256.
 *
 * @example
 * ```ts
 * import { clusterKeyHash } from "./join_ticket.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal((await clusterKeyHash(new Uint8Array(32))).length, 32);
 * ```
 */
export async function clusterKeyHash(
  clusterPublicRaw: Uint8Array,
): Promise<Uint8Array<ArrayBuffer>> {
  return await hash(clusterPublicRaw);
}

/** A cluster key ready for sealing: a `node:crypto` key where the runtime has it. */
type TicketKey = { readonly node: NodeKeyObject; readonly crypto: NodeCrypto } | CryptoKey;

/** `node:crypto` views of CryptoKeys (immutable, so safe to remember), made once per key. */
const nodeKeys = new WeakMap<CryptoKey, NodeKeyObject>();

async function toKey(clusterKey: Uint8Array | CryptoKey): Promise<TicketKey> {
  const node = nodeCrypto();
  if (clusterKey instanceof Uint8Array) {
    if (node === undefined) return await importAesKey(clusterKey);
    if (clusterKey.length !== AES_KEY_BYTES) {
      throw new KeyError(
        "key_invalid",
        `AES-256 key must be ${AES_KEY_BYTES} bytes, got ${clusterKey.length}`,
      );
    }
    // Raw bytes may change under us, so they are not remembered; a secret key object is cheap.
    return { node: node.createSecretKey(clusterKey.slice()), crypto: node };
  }
  if (node === undefined) return clusterKey;
  let key = nodeKeys.get(clusterKey);
  if (key === undefined) {
    key = node.KeyObject.from(clusterKey);
    nodeKeys.set(clusterKey, key);
  }
  return { node: key, crypto: node };
}

/** AES-256-GCM seal, `nonce[12] ‖ ciphertext ‖ tag[16]`, as `security.ts` `encrypt` makes it. */
async function seal(key: TicketKey, plain: Uint8Array): Promise<Uint8Array<ArrayBuffer>> {
  if (key instanceof CryptoKey) return await encrypt(key, plain, TICKET_AAD);
  const nonce = crypto.getRandomValues(new Uint8Array(NONCE_BYTES));
  const cipher = key.crypto.createCipheriv("aes-256-gcm", key.node, nonce).setAAD(TICKET_AAD);
  const body = cipher.update(plain);
  const rest = cipher.final();
  const out = new Uint8Array(NONCE_BYTES + body.length + rest.length + TAG_BYTES);
  out.set(nonce, 0);
  out.set(body, NONCE_BYTES);
  out.set(rest, NONCE_BYTES + body.length);
  out.set(cipher.getAuthTag(), NONCE_BYTES + body.length + rest.length);
  return out;
}

/** Opens what {@linkcode seal} made; any failure is a DecryptError, as `decrypt` reports it. */
async function open(key: TicketKey, sealed: Uint8Array): Promise<Uint8Array<ArrayBuffer>> {
  if (key instanceof CryptoKey) return await decrypt(key, sealed, TICKET_AAD);
  if (sealed.length < NONCE_BYTES + TAG_BYTES) throw new DecryptError();
  try {
    const decipher = key.crypto.createDecipheriv(
      "aes-256-gcm",
      key.node,
      sealed.subarray(0, NONCE_BYTES),
    ).setAAD(TICKET_AAD).setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
    const body = decipher.update(sealed.subarray(NONCE_BYTES, sealed.length - TAG_BYTES));
    const rest = decipher.final();
    const out = new Uint8Array(body.length + rest.length);
    out.set(body, 0);
    out.set(rest, body.length);
    return out;
  } catch (cause) {
    throw new DecryptError({ cause });
  }
}

function encodeClaims(claims: JoinTicketClaims): Uint8Array<ArrayBuffer> {
  const { clusterId, playerId, expiresAtMs } = claims;
  if (!Number.isInteger(clusterId) || clusterId < 0 || clusterId > 0xffff_ffff) {
    throw new RangeError(`ticket clusterId must be a u32, got ${clusterId}`);
  }
  if (!playerId.isWellFormed()) throw new TypeError("ticket playerId is not well-formed UTF-16");
  const player = new TextEncoder().encode(playerId);
  if (player.length > MAX_PLAYER_ID_BYTES) {
    throw new RangeError(
      `ticket playerId must be at most ${MAX_PLAYER_ID_BYTES} UTF-8 bytes, got ${player.length}`,
    );
  }
  if (!Number.isSafeInteger(expiresAtMs) || expiresAtMs < 0) {
    throw new RangeError(`ticket expiresAtMs must be a non-negative safe integer`);
  }
  if (claims.clusterKeyHash.length !== CLUSTER_KEY_HASH_BYTES) {
    throw new RangeError(
      `ticket clusterKeyHash must be ${CLUSTER_KEY_HASH_BYTES} bytes, got ${claims.clusterKeyHash.length}`,
    );
  }
  if (claims.clientKeyHash.length !== CLIENT_KEY_HASH_BYTES) {
    throw new RangeError(
      `ticket clientKeyHash must be ${CLIENT_KEY_HASH_BYTES} bytes, got ${claims.clientKeyHash.length}`,
    );
  }
  if (claims.ticketId.length !== TICKET_ID_BYTES) {
    throw new RangeError(
      `ticket ticketId must be ${TICKET_ID_BYTES} bytes, got ${claims.ticketId.length}`,
    );
  }
  const out = new Uint8Array(FIXED_PLAINTEXT_BYTES + player.length);
  const view = new DataView(out.buffer);
  let at = 0;
  view.setUint8(at, TICKET_VERSION);
  at += 1;
  view.setUint32(at, clusterId);
  at += 4;
  out.set(claims.clusterKeyHash, at);
  at += CLUSTER_KEY_HASH_BYTES;
  view.setUint8(at, player.length);
  at += 1;
  out.set(player, at);
  at += player.length;
  view.setBigUint64(at, BigInt(expiresAtMs));
  at += 8;
  out.set(claims.clientKeyHash, at);
  at += CLIENT_KEY_HASH_BYTES;
  out.set(claims.ticketId, at);
  return out;
}

function decodeClaims(plain: Uint8Array<ArrayBuffer>): JoinTicketClaims {
  if (plain.length < FIXED_PLAINTEXT_BYTES) throw new TicketError("ticket is truncated");
  const view = new DataView(plain.buffer, plain.byteOffset, plain.byteLength);
  let at = 0;
  const version = view.getUint8(at);
  at += 1;
  if (version !== TICKET_VERSION) throw new TicketError(`ticket version ${version} is unknown`);
  const clusterId = view.getUint32(at);
  at += 4;
  const clusterKeyHash = plain.slice(at, at + CLUSTER_KEY_HASH_BYTES);
  at += CLUSTER_KEY_HASH_BYTES;
  const playerLength = view.getUint8(at);
  at += 1;
  if (plain.length !== FIXED_PLAINTEXT_BYTES + playerLength) {
    throw new TicketError("ticket length does not match its layout");
  }
  let playerId: string;
  try {
    playerId = strictUtf8.decode(plain.subarray(at, at + playerLength));
  } catch (cause) {
    throw new TicketError("ticket playerId is not UTF-8", { cause });
  }
  at += playerLength;
  const expires = view.getBigUint64(at);
  at += 8;
  if (expires > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new TicketError("ticket expiry is out of range");
  }
  const clientKeyHash = plain.slice(at, at + CLIENT_KEY_HASH_BYTES);
  at += CLIENT_KEY_HASH_BYTES;
  const ticketId = plain.slice(at, at + TICKET_ID_BYTES);
  return {
    clusterId,
    clusterKeyHash,
    playerId,
    expiresAtMs: Number(expires),
    clientKeyHash,
    ticketId,
  };
}

/**
 * Seals join ticket claims with the cluster's AES-256-GCM key (AAD "sustenet-ticket-v2").
 *
 * @param clusterKey The cluster's 32-byte key, or that key already imported.
 * @param claims What the ticket says.
 * @returns `nonce[12] ‖ ciphertext ‖ tag[16]`, opaque to the client.
 * @throws {KeyError} `"key_invalid"` for a key that is not 32 bytes.
 * @throws {RangeError} For a field out of range (named in the message).
 * @throws {TypeError} For a playerId with lone surrogates.
 *
 * @example Seal and open
 * ```ts
 * import { clientKeyHash, newTicketId, openJoinTicket, sealJoinTicket } from "./join_ticket.ts";
 * import assert from "node:assert/strict";
 *
 * const key = crypto.getRandomValues(new Uint8Array(32));
 * const claims = {
 *   clusterId: 7,
 *   clusterKeyHash: new Uint8Array(32).fill(1),
 *   playerId: "guest-1",
 *   expiresAtMs: Date.now() + 30_000,
 *   clientKeyHash: await clientKeyHash(new Uint8Array(32).fill(9)),
 *   ticketId: newTicketId(),
 * };
 * const sealed = await sealJoinTicket(key, claims);
 * assert.deepEqual(await openJoinTicket(key, sealed), claims);
 * ```
 */
export async function sealJoinTicket(
  clusterKey: Uint8Array | CryptoKey,
  claims: JoinTicketClaims,
): Promise<Uint8Array<ArrayBuffer>> {
  const plain = encodeClaims(claims);
  return await seal(await toKey(clusterKey), plain);
}

/**
 * Opens a sealed join ticket and parses its claims. It checks only that the ticket is
 * authentic and well formed; cluster id, expiry, key binding and reuse are
 * {@linkcode TicketVerifier}'s job.
 *
 * @param clusterKey The cluster's 32-byte key, or that key already imported.
 * @param sealed The ticket bytes from SendPassword.
 * @throws {TicketError} `"ticket_invalid"` when it cannot be decrypted, is malformed or has
 * an unknown version.
 * @throws {KeyError} `"key_invalid"` for a key that is not 32 bytes.
 *
 * @example Garbage is refused
 * ```ts
 * import { openJoinTicket, TicketError } from "./join_ticket.ts";
 * import assert from "node:assert/strict";
 *
 * const key = crypto.getRandomValues(new Uint8Array(32));
 * await assert.rejects(openJoinTicket(key, new Uint8Array(80)), TicketError);
 * ```
 */
export async function openJoinTicket(
  clusterKey: Uint8Array | CryptoKey,
  sealed: Uint8Array,
): Promise<JoinTicketClaims> {
  return await openWith(await toKey(clusterKey), sealed);
}

async function openWith(key: TicketKey, sealed: Uint8Array): Promise<JoinTicketClaims> {
  let plain: Uint8Array<ArrayBuffer>;
  try {
    plain = await open(key, sealed);
  } catch (cause) {
    if (!(cause instanceof DecryptError)) throw cause;
    throw new TicketError("ticket cannot be opened", { cause });
  }
  return decodeClaims(plain);
}

/**
 * Why a ticket was refused.
 *
 * @example
 * ```ts
 * import { type TicketRejection, TicketVerifier } from "./join_ticket.ts";
 * import assert from "node:assert/strict";
 *
 * // Refusals counted by reason, as a metric would label them.
 * const refused = new Map<TicketRejection, number>();
 * const verifier = new TicketVerifier({
 *   clusterKey: new Uint8Array(32),
 *   clusterId: 1,
 *   identityPublicKey: new Uint8Array(32),
 * });
 * const verdict = await verifier.verify(new Uint8Array(10), new Uint8Array(32));
 * if (!verdict.ok) refused.set(verdict.reason, (refused.get(verdict.reason) ?? 0) + 1);
 * assert.deepEqual([...refused], [["invalid", 1]]);
 * ```
 */
export type TicketRejection = "invalid" | "wrong_cluster" | "wrong_key" | "expired" | "reused";

/**
 * The outcome of {@linkcode TicketVerifier.verify}: the claims, or the Authenticate status
 * (40 invalid, 44 expired or used) and the reason for the log.
 *
 * @example
 * ```ts
 * import type { TicketVerdict } from "./join_ticket.ts";
 * import assert from "node:assert/strict";
 *
 * const verdict: TicketVerdict = { ok: false, status: 44, reason: "expired" };
 * assert.equal(verdict.ok ? 20 : verdict.status, 44);
 * ```
 */
export type TicketVerdict =
  | { readonly ok: true; readonly claims: JoinTicketClaims }
  | {
    readonly ok: false;
    readonly status: 40 | 44;
    readonly reason: TicketRejection;
  };

/**
 * Options of {@linkcode TicketVerifier}.
 *
 * @example
 * ```ts
 * import type { TicketVerifierOptions } from "./join_ticket.ts";
 * import assert from "node:assert/strict";
 *
 * const options: TicketVerifierOptions = {
 *   clusterKey: new Uint8Array(32),
 *   clusterId: 1,
 *   identityPublicKey: new Uint8Array(32),
 *   maxUsedTickets: 1000,
 * };
 * assert.equal(options.clusterId, 1);
 * ```
 */
export interface TicketVerifierOptions {
  /** This cluster's 32-byte AES key (the one the master seals its tickets with). */
  readonly clusterKey: Uint8Array | CryptoKey;
  /** The cluster id the master assigned in CreateCluster. */
  readonly clusterId: number;
  /** This cluster's raw X25519 identity public key (the one it announced to the master). */
  readonly identityPublicKey: Uint8Array;
  /**
   * Clock in Unix ms, for tests.
   * @default {Date.now}
   */
  readonly now?: () => number;
  /**
   * Most used ticket ids remembered; beyond it the oldest is forgotten.
   * @default {65536}
   */
  readonly maxUsedTickets?: number;
}

/**
 * Checks join tickets on a cluster, offline: own key, cluster id and identity key hash, client
 * key binding, expiry and single use, in that order. A ticket is remembered as used only once every other check has
 * passed, and the check-and-remember step has no `await` in it, so two concurrent
 * presentations of one ticket cannot both succeed.
 *
 * Memory is bounded: used ids are kept until their ticket expires, at most `maxUsedTickets` of
 * them; past that the oldest is forgotten (a forgotten ticket could be replayed until it
 * expires, but only by someone holding the client's ephemeral private key).
 *
 * @example Single use
 * ```ts
 * import {
 *   clientKeyHash,
 *   clusterKeyHash,
 *   newTicketId,
 *   sealJoinTicket,
 *   TicketVerifier,
 * } from "./join_ticket.ts";
 * import assert from "node:assert/strict";
 *
 * const clusterKey = crypto.getRandomValues(new Uint8Array(32));
 * const clientPublic = crypto.getRandomValues(new Uint8Array(32));
 * const identity = new Uint8Array(32).fill(5);
 * const ticket = await sealJoinTicket(clusterKey, {
 *   clusterId: 3,
 *   clusterKeyHash: await clusterKeyHash(identity),
 *   playerId: "guest-1",
 *   expiresAtMs: 2_000,
 *   clientKeyHash: await clientKeyHash(clientPublic),
 *   ticketId: newTicketId(),
 * });
 * const verifier = new TicketVerifier({
 *   clusterKey,
 *   clusterId: 3,
 *   identityPublicKey: identity,
 *   now: () => 1_000,
 * });
 * const first = await verifier.verify(ticket, clientPublic);
 * assert.equal(first.ok, true);
 * assert.deepEqual(await verifier.verify(ticket, clientPublic), {
 *   ok: false,
 *   status: 44,
 *   reason: "reused",
 * });
 * ```
 */
export class TicketVerifier {
  readonly #clusterId: number;
  readonly #identityPublicKey: Uint8Array;
  #identityHash: Promise<Uint8Array> | undefined;
  readonly #now: () => number;
  readonly #maxUsed: number;
  readonly #rawKey: Uint8Array | CryptoKey;
  /** The key made once, on first use. */
  #key: Promise<TicketKey> | undefined;
  /** Used ticket id (hex) → its expiry; insertion order is the eviction order. */
  readonly #used = new Map<string, number>();

  /**
   * Creates a verifier for one cluster; the key is imported on first use.
   *
   * @param options Key, cluster id, identity key, clock and memory bound.
   * @throws {KeyError} `"key_invalid"` for a key that is not 32 bytes.
   * @throws {RangeError} For a cluster id that is not a u32 or a bound below 1.
   */
  constructor(options: TicketVerifierOptions) {
    const { clusterKey, clusterId, now = Date.now, maxUsedTickets = 65_536 } = options;
    if (clusterKey instanceof Uint8Array && clusterKey.length !== AES_KEY_BYTES) {
      throw new KeyError(
        "key_invalid",
        `cluster key must be ${AES_KEY_BYTES} bytes, got ${clusterKey.length}`,
      );
    }
    if (!Number.isInteger(clusterId) || clusterId < 0 || clusterId > 0xffff_ffff) {
      throw new RangeError(`clusterId must be a u32, got ${clusterId}`);
    }
    if (!Number.isInteger(maxUsedTickets) || maxUsedTickets < 1) {
      throw new RangeError(`maxUsedTickets must be an integer ≥ 1, got ${maxUsedTickets}`);
    }
    this.#rawKey = clusterKey;
    this.#clusterId = clusterId;
    this.#identityPublicKey = options.identityPublicKey.slice();
    this.#now = now;
    this.#maxUsed = maxUsedTickets;
  }

  /**
   * How many used ticket ids are remembered right now (bounded by `maxUsedTickets`).
   *
   * @example
   * ```ts
   * import { TicketVerifier } from "./join_ticket.ts";
   * import assert from "node:assert/strict";
   *
   * const verifier = new TicketVerifier({
   *   clusterKey: new Uint8Array(32),
   *   clusterId: 1,
   *   identityPublicKey: new Uint8Array(32),
   * });
   * assert.equal(verifier.usedTicketCount, 0);
   * ```
   */
  get usedTicketCount(): number {
    return this.#used.size;
  }

  /**
   * Verifies a ticket presented in SendPassword on a connection whose KeyExchange carried
   * `clientPublicRaw`.
   *
   * @param sealed The ticket bytes.
   * @param clientPublicRaw The client's raw ephemeral public key from KeyExchange.
   * @returns The claims, or status 40 (`invalid`, `wrong_cluster` for another id or another
   * identity key, `wrong_key`) or 44
   * (`expired`, `reused`). Never throws for bad ticket bytes.
   *
   * @example A ticket for another cluster
   * ```ts
   * import {
   *   clientKeyHash,
   *   clusterKeyHash,
   *   newTicketId,
   *   sealJoinTicket,
   *   TicketVerifier,
   * } from "./join_ticket.ts";
   * import assert from "node:assert/strict";
   *
   * const clusterKey = crypto.getRandomValues(new Uint8Array(32));
   * const identity = new Uint8Array(32).fill(2);
   * const clientPublic = new Uint8Array(32).fill(1);
   * const ticket = await sealJoinTicket(clusterKey, {
   *   clusterId: 2,
   *   clusterKeyHash: await clusterKeyHash(identity),
   *   playerId: "p",
   *   expiresAtMs: Date.now() + 30_000,
   *   clientKeyHash: await clientKeyHash(clientPublic),
   *   ticketId: newTicketId(),
   * });
   * const verifier = new TicketVerifier({ clusterKey, clusterId: 1, identityPublicKey: identity });
   * const verdict = await verifier.verify(ticket, clientPublic);
   * assert.deepEqual(verdict, { ok: false, status: 40, reason: "wrong_cluster" });
   * // Same id, same AES key, another cluster's identity: refused too.
   * const other = new TicketVerifier({
   *   clusterKey,
   *   clusterId: 2,
   *   identityPublicKey: new Uint8Array(32).fill(3),
   * });
   * assert.deepEqual(await other.verify(ticket, clientPublic), {
   *   ok: false,
   *   status: 40,
   *   reason: "wrong_cluster",
   * });
   * ```
   */
  async verify(sealed: Uint8Array, clientPublicRaw: Uint8Array): Promise<TicketVerdict> {
    this.#key ??= toKey(this.#rawKey);
    let claims: JoinTicketClaims;
    try {
      claims = await openWith(await this.#key, sealed);
    } catch (cause) {
      if (cause instanceof TicketError) return reject("invalid");
      throw cause;
    }
    if (claims.clusterId !== this.#clusterId) return reject("wrong_cluster");
    // Ids are per master run; the identity key is the cluster's own, so a ticket issued for
    // another cluster sharing this AES key (or an earlier holder of this id) fails here.
    this.#identityHash ??= clusterKeyHash(this.#identityPublicKey);
    if (!constantTimeEqual(await this.#identityHash, claims.clusterKeyHash)) {
      return reject("wrong_cluster");
    }
    const presentedHash = await clientKeyHash(clientPublicRaw);
    if (!constantTimeEqual(presentedHash, claims.clientKeyHash)) return reject("wrong_key");

    // From here to the end there is no await: check-and-remember is atomic.
    const now = this.#now();
    if (now >= claims.expiresAtMs) return reject("expired");
    this.#purge(now);
    const id = claims.ticketId.toHex();
    if (this.#used.has(id)) return reject("reused");
    while (this.#used.size >= this.#maxUsed) {
      const oldest = this.#used.keys().next();
      if (oldest.done === true) break;
      this.#used.delete(oldest.value);
    }
    this.#used.set(id, claims.expiresAtMs);
    return { ok: true, claims };
  }

  /** Forgets expired ids from the front; O(1) amortised since tickets mostly expire in order. */
  #purge(now: number): void {
    for (const [id, expiresAtMs] of this.#used) {
      if (expiresAtMs > now) return;
      this.#used.delete(id);
    }
  }
}

function reject(reason: TicketRejection): TicketVerdict {
  const status = reason === "expired" || reason === "reused" ? 44 : 40;
  return { ok: false, status, reason };
}
