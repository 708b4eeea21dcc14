/**
 * Password hashing with scrypt (`node:crypto`, memory-hard: 128·N·r bytes per hash, run on
 * libuv's thread pool so the event loop stays free). A stored hash names its own parameters
 * (`$scrypt$ln=15,r=8,p=1$salt$hash`), so raising the cost later keeps old hashes valid.
 * Comparisons are constant-time, and {@linkcode PasswordHasher.verifyDummy} spends the same work
 * on an unknown user, so timing does not tell whether an account exists. Never logs or keeps a
 * password.
 *
 * @module
 */

import { scrypt, timingSafeEqual } from "node:crypto";

/** scrypt cost parameters. */
export interface ScryptParams {
  /** log2 of N, the CPU/memory cost (15 → N = 32768, 32 MiB with r = 8). */
  readonly logN: number;
  /** Block size r. */
  readonly r: number;
  /** Parallelism p. */
  readonly p: number;
}

const SALT_BYTES = 16;
const HASH_BYTES = 32;
const FORMAT =
  /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,3}),p=(\d{1,3})\$([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2})$/;

function derive(password: string, salt: Uint8Array, params: ScryptParams): Promise<Uint8Array> {
  const N = 2 ** params.logN;
  return new Promise((resolve, reject) => {
    scrypt(
      password.normalize("NFC"),
      salt,
      HASH_BYTES,
      { N, r: params.r, p: params.p, maxmem: 256 * N * params.r * params.p + 1024 * 1024 },
      (err, key) => err === null ? resolve(new Uint8Array(key)) : reject(err),
    );
  });
}

/**
 * Hashes and checks passwords at one cost.
 *
 * @example
 * ```ts
 * import { PasswordHasher } from "./password_hasher.ts";
 * import assert from "node:assert/strict";
 *
 * const hasher = new PasswordHasher({ logN: 10, r: 8, p: 1 });
 * const stored = await hasher.hash("correct horse");
 * assert.match(stored, /^\$scrypt\$ln=10,r=8,p=1\$/);
 * assert.equal(await hasher.verify("correct horse", stored), true);
 * assert.equal(await hasher.verify("wrong horse", stored), false);
 * ```
 */
export class PasswordHasher {
  /** The cost new hashes get. */
  readonly params: ScryptParams;
  #dummy: Promise<string> | undefined;

  /**
   * Makes a new PasswordHasher.
   *
   * @param params Cost of new hashes.
   * @throws {RangeError} For parameters outside logN 10..20, r 1..32, p 1..16.
   */
  constructor(params: ScryptParams) {
    const { logN, r, p } = params;
    if (!Number.isInteger(logN) || logN < 10 || logN > 20) {
      throw new RangeError(`scrypt logN must be an integer 10..20, got ${logN}`);
    }
    if (!Number.isInteger(r) || r < 1 || r > 32) {
      throw new RangeError(`scrypt r must be an integer 1..32, got ${r}`);
    }
    if (!Number.isInteger(p) || p < 1 || p > 16) {
      throw new RangeError(`scrypt p must be an integer 1..16, got ${p}`);
    }
    this.params = Object.freeze({ logN, r, p });
  }

  /**
   * Hashes a password with a fresh random salt.
   *
   * @param password The password.
   * @returns The self-describing hash string.
   */
  async hash(password: string): Promise<string> {
    const salt = crypto.getRandomValues(new Uint8Array(SALT_BYTES));
    const key = await derive(password, salt, this.params);
    const { logN, r, p } = this.params;
    return `$scrypt$ln=${logN},r=${r},p=${p}$${salt.toBase64()}$${key.toBase64()}`;
  }

  /**
   * Checks a password against a stored hash, in constant time once derived.
   *
   * @param password The password to check.
   * @param stored A hash from {@linkcode PasswordHasher.hash} (any cost).
   * @returns Whether it matches; false for a malformed hash.
   */
  async verify(password: string, stored: string): Promise<boolean> {
    const match = FORMAT.exec(stored);
    if (match === null) return false;
    const params = { logN: Number(match[1]), r: Number(match[2]), p: Number(match[3]) };
    if (params.logN < 10 || params.logN > 20 || params.r > 32 || params.p > 16) return false;
    const expected = Uint8Array.fromBase64(match[5]);
    const key = await derive(password, Uint8Array.fromBase64(match[4]), params);
    return key.length === expected.length && timingSafeEqual(key, expected);
  }

  /**
   * Spends the work of one verification and answers false: what a log-in for an unknown user
   * does, so its timing matches a wrong password.
   *
   * @param password The password sent.
   */
  async verifyDummy(password: string): Promise<false> {
    this.#dummy ??= this.hash("dummy password, never matches");
    await this.verify(password, await this.#dummy);
    return false;
  }
}
