// This module is browser compatible.
/**
 * The AnswerCluster proof of protocol v2 (docs/PROTOCOL.md "Cluster → master"): an
 * HMAC-SHA-256, under the registration's announce key (HKDF of the cluster key, the cluster's
 * nonce and the master's passphrase, `shared/key_derivation.ts`), over a domain label and the
 * announced fields exactly as they are encoded on the wire. A man-in-the-middle who rewrites
 * the name, host, port, capacity, key version or identity key cannot make a matching proof
 * without the cluster key, and the passphrase itself never travels in plaintext.
 *
 * WebCrypto only (HMAC is verified by `crypto.subtle.verify`, constant time). This module must
 * never log, never accept a proof that is not exactly 32 bytes, and never throw for a proof
 * that does not match (that is `false`).
 *
 * @module
 */

import { ByteWriter } from "./protocol/byte_writer.ts";
import {
  type AnnouncedFields,
  announcedFieldsSize,
  writeAnnouncedFields,
} from "./protocol/packet_layouts.ts";
import { asBufferSource } from "./security.ts";

/**
 * Bytes of an announce proof (HMAC-SHA-256).
 *
 * @example
 * ```ts
 * import { ANNOUNCE_PROOF_BYTES, proveAnnounce, verifyAnnounce } from "./announce_proof.ts";
 * import assert from "node:assert/strict";
 *
 * const key = crypto.getRandomValues(new Uint8Array(32));
 * const fields = {
 *   name: "eu-1", host: "127.0.0.1", port: 6257, maxConnections: 0, keyVersion: 1,
 *   publicKey: new Uint8Array(32),
 * };
 * const proof = await proveAnnounce(key, fields);
 * assert.equal(proof.length, ANNOUNCE_PROOF_BYTES); // the size AnswerCluster's proof field has
 * // A proof cut short never verifies.
 * assert.equal(await verifyAnnounce(key, fields, proof.subarray(0, ANNOUNCE_PROOF_BYTES - 1)), false);
 * ```
 */
export const ANNOUNCE_PROOF_BYTES = 32;

/** Domain label in front of every proven message, so no other HMAC can be replayed as one. */
const LABEL = new TextEncoder().encode("sustenet announce v2\0");

/** What a cluster announces in AnswerCluster (every field but the proof). */
export type { AnnouncedFields };

/**
 * The bytes the proof covers: `"sustenet announce v2\0" ‖ str8 name ‖ str8 host ‖ u16 port ‖
 * u32 maxConnections ‖ u16 keyVersion ‖ bytes8 publicKey` — the AnswerCluster payload up to
 * its proof, behind the label.
 *
 * @param fields The announced fields.
 * @throws {RangeError} For a field that cannot be encoded (named in the message).
 *
 * @example
 * ```ts
 * import { announceMessage } from "./announce_proof.ts";
 * import assert from "node:assert/strict";
 *
 * const message = announceMessage({
 *   name: "a", host: "h", port: 1, maxConnections: 2, keyVersion: 3, publicKey: new Uint8Array(32),
 * });
 * // name, host, port, maxConnections, keyVersion, key32 publicKey, no endpoints
 * assert.equal(
 *   message.subarray(21).toHex(),
 *   "0161" + "0168" + "0001" + "00000002" + "0003" + "20" + "00".repeat(32) + "00",
 * );
 * ```
 */
export function announceMessage(fields: AnnouncedFields): Uint8Array<ArrayBuffer> {
  // The same encoding AnswerCluster carries (one layout), behind the label.
  const out = new Uint8Array(LABEL.length + announcedFieldsSize(fields));
  const w = new ByteWriter(out);
  w.raw(LABEL, "label");
  writeAnnouncedFields(w, fields);
  return out;
}

function importHmacKey(announceKey: Uint8Array, usage: "sign" | "verify"): Promise<CryptoKey> {
  return crypto.subtle.importKey(
    "raw",
    asBufferSource(announceKey),
    { name: "HMAC", hash: "SHA-256" },
    false,
    [usage],
  );
}

/**
 * Computes the proof a cluster puts in AnswerCluster.
 *
 * @param announceKey The registration's `announceKey` (from `deriveMasterLinkKeys`).
 * @param fields What the cluster announces.
 * @returns The 32-byte HMAC-SHA-256.
 * @throws {RangeError} For a field that cannot be encoded.
 *
 * @example A proof holds for its fields only
 * ```ts
 * import { proveAnnounce, verifyAnnounce } from "./announce_proof.ts";
 * import assert from "node:assert/strict";
 *
 * const key = crypto.getRandomValues(new Uint8Array(32));
 * const fields = {
 *   name: "eu-1", host: "127.0.0.1", port: 6257, maxConnections: 0, keyVersion: 1,
 *   publicKey: new Uint8Array(32).fill(7),
 * };
 * const proof = await proveAnnounce(key, fields);
 * assert.equal(await verifyAnnounce(key, fields, proof), true);
 * assert.equal(await verifyAnnounce(key, { ...fields, host: "10.6.6.6" }, proof), false);
 * ```
 */
export async function proveAnnounce(
  announceKey: Uint8Array,
  fields: AnnouncedFields,
): Promise<Uint8Array<ArrayBuffer>> {
  const key = await importHmacKey(announceKey, "sign");
  return new Uint8Array(await crypto.subtle.sign("HMAC", key, announceMessage(fields)));
}

/**
 * Checks an AnswerCluster proof (constant time, by WebCrypto).
 *
 * @param announceKey The registration's `announceKey`.
 * @param fields The announced fields as received.
 * @param proof The received proof.
 * @returns `true` only if `proof` is the 32-byte HMAC of exactly these fields under this key;
 * `false` for anything else, including fields that cannot be encoded.
 *
 * @example
 * ```ts
 * import { verifyAnnounce } from "./announce_proof.ts";
 * import assert from "node:assert/strict";
 *
 * const fields = {
 *   name: "c", host: "h", port: 1, maxConnections: 0, keyVersion: 1, publicKey: new Uint8Array(32),
 * };
 * assert.equal(await verifyAnnounce(new Uint8Array(32), fields, new Uint8Array(31)), false);
 * ```
 */
export async function verifyAnnounce(
  announceKey: Uint8Array,
  fields: AnnouncedFields,
  proof: Uint8Array,
): Promise<boolean> {
  if (proof.length !== ANNOUNCE_PROOF_BYTES) return false;
  let message: Uint8Array<ArrayBuffer>;
  try {
    message = announceMessage(fields);
  } catch (error) {
    if (error instanceof RangeError) return false;
    throw error;
  }
  const key = await importHmacKey(announceKey, "verify");
  return await crypto.subtle.verify("HMAC", key, asBufferSource(proof), message);
}
