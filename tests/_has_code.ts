/**
 * Checking a typed error in tests: one validator for `assert.rejects` / `assert.throws` that
 * passes only for the expected error class carrying the expected `code`, and otherwise fails
 * saying what came instead (a bare `false` would only say "validation failed").
 */

import assert from "node:assert/strict";
import { ClientError } from "../client/errors.ts";
import type { SustenetError } from "../shared/errors.ts";

/**
 * A validator: the error is a `type` (a {@linkcode ClientError} unless said) whose code is `code`.
 *
 * @param code The expected `code`, e.g. `"key_mismatch"`.
 * @param type The expected error class.
 */
export function hasCode(
  code: string,
  type: abstract new (...args: never[]) => SustenetError = ClientError,
): (e: unknown) => true {
  return (e: unknown) => {
    assert.ok(e instanceof type, `expected a ${type.name}, got ${e}`);
    assert.equal(e.code, code, e.message);
    return true;
  };
}
