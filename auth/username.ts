// This module is browser compatible.
/**
 * Usernames as the account service compares them: Unicode NFKC, then case-folded (upper-cased
 * then lower-cased, so "Straße" and "STRASSE" meet), then NFKC again, so that "Ａlice", "ALICE"
 * and "alice" are one account. Only letters, digits and `_ . -` are allowed (no spaces, controls,
 * symbols, or look-alike separators), 3 to 32 characters, starting with a letter or digit.
 * Pure: never touches a store.
 *
 * @module
 */

import { AuthError } from "./auth_error.ts";

/** Fewest characters (code points) of a normalised username. */
export const MIN_USERNAME_LENGTH = 3;
/** Most characters (code points) of a normalised username. */
export const MAX_USERNAME_LENGTH = 32;

const ALLOWED = /^[\p{L}\p{Nd}][\p{L}\p{M}\p{Nd}_.-]*$/u;

/**
 * Normalises and validates a username.
 *
 * @param raw What the client sent.
 * @returns The canonical form stored and looked up.
 * @throws {AuthError} `invalid_username` (400) saying which rule failed.
 *
 * @example
 * ```ts
 * import { normalizeUsername } from "./username.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(normalizeUsername("Ａlice"), "alice"); // full-width A, upper case
 * assert.equal(normalizeUsername("ÉMILE"), "émile");
 * assert.throws(() => normalizeUsername("a b"), /letters, digits/);
 * assert.throws(() => normalizeUsername("x"), /3 to 32/);
 * ```
 */
export function normalizeUsername(raw: unknown): string {
  if (typeof raw !== "string") {
    throw new AuthError("invalid_username", "username must be a string");
  }
  if (raw.length > MAX_USERNAME_LENGTH * 4 || !raw.isWellFormed()) {
    throw new AuthError(
      "invalid_username",
      `username must be ${MIN_USERNAME_LENGTH} to ${MAX_USERNAME_LENGTH} characters`,
    );
  }
  // Upper then lower approximates Unicode full case folding (ß → ss, ﬀ → ff) that a plain
  // toLowerCase misses; NFKC around it folds compatibility forms (full-width, ligatures).
  const name = raw.normalize("NFKC").toUpperCase().toLowerCase().normalize("NFKC");
  const length = [...name].length;
  if (length < MIN_USERNAME_LENGTH || length > MAX_USERNAME_LENGTH) {
    throw new AuthError(
      "invalid_username",
      `username must be ${MIN_USERNAME_LENGTH} to ${MAX_USERNAME_LENGTH} characters`,
    );
  }
  if (!ALLOWED.test(name)) {
    throw new AuthError(
      "invalid_username",
      "username may hold only letters, digits, _ . - and must start with a letter or digit",
    );
  }
  return name;
}

/** Fewest characters of a password. */
export const MIN_PASSWORD_LENGTH = 8;
/** Most UTF-8 bytes of a password (bounds the work one request can ask of the KDF). */
export const MAX_PASSWORD_BYTES = 1024;

/**
 * Checks a new password's shape (length only; strength policy is the game's).
 *
 * @param raw What the client sent.
 * @returns The password.
 * @throws {AuthError} `invalid_password` (400).
 *
 * @example
 * ```ts
 * import { validatePassword } from "./username.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(validatePassword("correct horse"), "correct horse");
 * assert.throws(() => validatePassword("short"), /at least 8/);
 * ```
 */
export function validatePassword(raw: unknown): string {
  if (typeof raw !== "string" || !raw.isWellFormed()) {
    throw new AuthError("invalid_password", "password must be a string");
  }
  if ([...raw].length < MIN_PASSWORD_LENGTH) {
    throw new AuthError(
      "invalid_password",
      `password must be at least ${MIN_PASSWORD_LENGTH} characters`,
    );
  }
  if (new TextEncoder().encode(raw).length > MAX_PASSWORD_BYTES) {
    throw new AuthError("invalid_password", `password must be at most ${MAX_PASSWORD_BYTES} bytes`);
  }
  return raw;
}
