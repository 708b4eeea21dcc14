// This module is browser compatible.
/**
 * The typed error of the account service and its stores: a stable `code` and the HTTP status
 * it answers with. Messages are safe to show a client: they never hold a password, a token or
 * whether a given account exists (log-in failures all read the same).
 *
 * @module
 */

import { SustenetError } from "../shared/errors.ts";

/** Every code an {@linkcode AuthError} can carry. */
export type AuthErrorCode =
  | "bad_request"
  | "unsupported_media_type"
  | "payload_too_large"
  | "invalid_username"
  | "invalid_password"
  | "invalid_credentials"
  | "username_taken"
  | "invalid_token"
  | "rate_limited"
  | "not_found"
  | "method_not_allowed"
  | "store_unavailable"
  | "busy";

const STATUS: Readonly<Record<AuthErrorCode, number>> = {
  bad_request: 400,
  unsupported_media_type: 415,
  payload_too_large: 413,
  invalid_username: 400,
  invalid_password: 400,
  invalid_credentials: 401,
  username_taken: 409,
  invalid_token: 401,
  rate_limited: 429,
  not_found: 404,
  method_not_allowed: 405,
  store_unavailable: 503,
  busy: 503,
};

/**
 * A refused request (or a store failure), with the HTTP status of its answer.
 *
 * @example
 * ```ts
 * import { AuthError } from "./auth_error.ts";
 * import assert from "node:assert/strict";
 *
 * const err = new AuthError("username_taken", "that username is taken");
 * assert.equal(err.status, 409);
 * assert.equal(err.code, "username_taken");
 * ```
 */
export class AuthError extends SustenetError {
  /** HTTP status of the answer. */
  readonly status: number;
  /** Seconds to wait before retrying (429 only). */
  readonly retryAfterS: number | undefined;

  /**
   * Makes a new AuthError.
   *
   * @param code Stable code, also the `error` field of the JSON answer.
   * @param message What went wrong, safe to show the client.
   * @param options `retryAfterS` for 429 answers; `cause`.
   */
  constructor(
    code: AuthErrorCode,
    message: string,
    options: { readonly retryAfterS?: number; readonly cause?: unknown } = {},
  ) {
    super(code, message, options.cause === undefined ? undefined : { cause: options.cause });
    this.status = STATUS[code];
    this.retryAfterS = options.retryAfterS;
  }
}
