/**
 * Loads and checks a server's TLS certificate chain and private key (PEM files) before any
 * listener starts: readable, parseable, the key matching the certificate, the certificate
 * valid now. Server-only (reads files, uses `node:crypto`'s X.509 parser).
 *
 * It must never start a server on material that would fail at the first handshake, and never
 * put key bytes in an error message: errors name the config key and the file, nothing more.
 *
 * @module
 */

import { createPrivateKey, type KeyObject, X509Certificate } from "node:crypto";
import { SustenetError } from "./errors.ts";

/**
 * Codes of {@linkcode TlsCredentialsError}.
 *
 * @example
 * ```ts
 * import {
 *   loadTlsCredentials,
 *   TlsCredentialsError,
 *   type TlsCredentialsErrorCode,
 * } from "./tls_credentials.ts";
 * import assert from "node:assert/strict";
 *
 * // What an operator is told to fix, by code.
 * function hint(code: TlsCredentialsErrorCode): string {
 *   return code === "tls_file_unreadable" ? "check the path and its permissions" : "replace the files";
 * }
 * const cert = await Deno.makeTempFile();
 * await Deno.writeTextFile(cert, "not a certificate");
 * const error = await loadTlsCredentials(cert, cert).catch((e) => e);
 * assert.ok(error instanceof TlsCredentialsError);
 * assert.equal(error.code, "tls_cert_invalid");
 * assert.equal(hint(error.code), "replace the files");
 * await Deno.remove(cert);
 * ```
 */
export type TlsCredentialsErrorCode =
  | "tls_file_unreadable"
  | "tls_cert_invalid"
  | "tls_key_invalid"
  | "tls_key_mismatch"
  | "tls_cert_expired"
  | "tls_cert_not_yet_valid";

/**
 * The certificate or key cannot serve TLS; `field` is the config key (`all.tls_cert` or
 * `all.tls_key`) and `file` the path it named.
 *
 * @example
 * ```ts
 * import { TlsCredentialsError } from "./tls_credentials.ts";
 * import assert from "node:assert/strict";
 *
 * const error = new TlsCredentialsError("tls_cert_expired", "all.tls_cert", "c.pem", "expired");
 * assert.equal(error.field, "all.tls_cert");
 * assert.match(error.message, /^all\.tls_cert \(c\.pem\): expired$/);
 * ```
 */
export class TlsCredentialsError extends SustenetError {
  /** The config key whose file is at fault. */
  readonly field: "all.tls_cert" | "all.tls_key";
  /** The file it named. */
  readonly file: string;

  /**
   * @param code What is wrong.
   * @param field The config key.
   * @param file The file.
   * @param detail What is wrong, for people (never key material).
   * @param options Standard error options (`cause`).
   */
  constructor(
    code: TlsCredentialsErrorCode,
    field: "all.tls_cert" | "all.tls_key",
    file: string,
    detail: string,
    options?: ErrorOptions,
  ) {
    super(code, `${field} (${file}): ${detail}`, options);
    this.field = field;
    this.file = file;
  }
}

/**
 * A checked certificate chain and key, ready for `Deno.listenTls`.
 *
 * @example
 * ```ts
 * import type { TlsCredentials } from "./tls_credentials.ts";
 * import assert from "node:assert/strict";
 *
 * const creds: TlsCredentials = { cert: "", key: "", notAfter: new Date(0), subject: "CN=x" };
 * assert.equal(creds.subject, "CN=x");
 * ```
 */
export interface TlsCredentials {
  /** The certificate chain, PEM (leaf first). */
  readonly cert: string;
  /** The private key, PEM. */
  readonly key: string;
  /** When the leaf certificate expires. */
  readonly notAfter: Date;
  /** The leaf's subject, for the log. */
  readonly subject: string;
}

async function readText(
  file: string,
  field: "all.tls_cert" | "all.tls_key",
): Promise<string> {
  try {
    return await Deno.readTextFile(file);
  } catch (error) {
    const why = error instanceof Deno.errors.NotFound ? "file not found" : "cannot be read";
    throw new TlsCredentialsError("tls_file_unreadable", field, file, why, { cause: error });
  }
}

/**
 * Reads and checks the PEM certificate chain and private key of a TLS listener.
 *
 * @param certFile Path of the certificate chain (leaf first), `all.tls_cert`.
 * @param keyFile Path of the leaf's private key (PKCS#8, SEC1 or PKCS#1), `all.tls_key`.
 * @param now The time the validity period is checked against.
 * @returns The PEM texts and what the log shows.
 * @throws {TlsCredentialsError} Naming the key and the file: unreadable, not a certificate or
 * key, a key that does not match the certificate, a certificate expired or not yet valid.
 *
 * @example A missing file is named
 * ```ts
 * import { loadTlsCredentials, TlsCredentialsError } from "./tls_credentials.ts";
 * import assert from "node:assert/strict";
 *
 * await assert.rejects(
 *   loadTlsCredentials("/nonexistent/cert.pem", "/nonexistent/key.pem"),
 *   (e) => e instanceof TlsCredentialsError && e.field === "all.tls_cert" &&
 *     e.message === "all.tls_cert (/nonexistent/cert.pem): file not found",
 * );
 * ```
 */
export async function loadTlsCredentials(
  certFile: string,
  keyFile: string,
  now: Date = new Date(),
): Promise<TlsCredentials> {
  const cert = await readText(certFile, "all.tls_cert");
  const key = await readText(keyFile, "all.tls_key");
  let leaf: X509Certificate;
  try {
    // The first certificate of the chain is the leaf the key belongs to.
    const first = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(cert);
    if (first === null) throw new TypeError("no PEM CERTIFICATE block");
    leaf = new X509Certificate(first[0]);
  } catch (error) {
    throw new TlsCredentialsError(
      "tls_cert_invalid",
      "all.tls_cert",
      certFile,
      "not a PEM certificate",
      { cause: error },
    );
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch (error) {
    throw new TlsCredentialsError(
      "tls_key_invalid",
      "all.tls_key",
      keyFile,
      "not a PEM private key (unencrypted PKCS#8, SEC1 or PKCS#1)",
      { cause: error },
    );
  }
  let matches = false;
  try {
    matches = leaf.checkPrivateKey(privateKey);
  } catch {
    matches = false; // another key type than the certificate's: a mismatch
  }
  if (!matches) {
    throw new TlsCredentialsError(
      "tls_key_mismatch",
      "all.tls_key",
      keyFile,
      `the private key does not match the certificate in ${certFile}`,
    );
  }
  const notBefore = new Date(leaf.validFrom);
  const notAfter = new Date(leaf.validTo);
  if (now.getTime() > notAfter.getTime()) {
    throw new TlsCredentialsError(
      "tls_cert_expired",
      "all.tls_cert",
      certFile,
      `the certificate expired on ${notAfter.toISOString()}`,
    );
  }
  if (now.getTime() < notBefore.getTime()) {
    throw new TlsCredentialsError(
      "tls_cert_not_yet_valid",
      "all.tls_cert",
      certFile,
      `the certificate is not valid before ${notBefore.toISOString()}`,
    );
  }
  return { cert, key, notAfter, subject: leaf.subject.replaceAll("\n", ", ") };
}
