// This module is browser compatible.
/**
 * The ticket binding of the TLS session mode (docs/PROTOCOL.md "TLS session mode"): a client
 * that has TLS but no X25519 draws a 32-byte binding secret, sends the master its commitment
 * in JoinCluster where the X25519 public key would go, and later shows the cluster the secret
 * itself, inside TLS, in TlsJoin. The master's ticket binds the commitment exactly as it binds
 * a public key (`clientKeyHash = SHA-256(commitment)`), so tickets are unchanged.
 *
 * It must never be used to accept a TlsJoin on a connection that is not TLS: the secret is
 * what makes a stolen ticket useless, and only TLS keeps it from an observer.
 *
 * @module
 */

/** Domain label of the commitment: the ASCII text, then a zero byte. */
export const TLS_JOIN_LABEL: Uint8Array = new TextEncoder().encode("sustenet tls-join v1\0");

/** Bytes of a binding secret. */
export const TLS_JOIN_SECRET_BYTES = 32;

/**
 * The commitment a TLS-mode client sends in JoinCluster's `clientPublicKey`:
 * `SHA-256("sustenet tls-join v1\0" ‖ bindingSecret)`.
 *
 * @param bindingSecret The client's 32 random bytes for this join.
 * @returns The 32-byte commitment.
 * @throws {RangeError} If the secret is not 32 bytes.
 *
 * @example
 * ```ts
 * import { tlsJoinCommitment } from "./tls_join.ts";
 * import assert from "node:assert/strict";
 *
 * const commitment = await tlsJoinCommitment(new Uint8Array(32));
 * assert.equal(commitment.length, 32);
 * ```
 */
export async function tlsJoinCommitment(bindingSecret: Uint8Array): Promise<Uint8Array> {
  if (bindingSecret.length !== TLS_JOIN_SECRET_BYTES) {
    throw new RangeError(
      `bindingSecret must be ${TLS_JOIN_SECRET_BYTES} bytes, got ${bindingSecret.length}`,
    );
  }
  const input = new Uint8Array(TLS_JOIN_LABEL.length + TLS_JOIN_SECRET_BYTES);
  input.set(TLS_JOIN_LABEL);
  input.set(bindingSecret, TLS_JOIN_LABEL.length);
  return new Uint8Array(await crypto.subtle.digest("SHA-256", input));
}
