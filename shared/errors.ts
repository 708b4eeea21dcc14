// This module is browser compatible.
/**
 * The base error class of Sustenet. Every error this package throws on purpose is a
 * {@linkcode SustenetError} subclass with a stable machine-readable `code`, so callers branch
 * on `err.code`, never on message text. Messages never contain secrets.
 *
 * @module
 */

/**
 * Base class of every typed Sustenet error.
 *
 * @example Branch on the code
 * ```ts
 * import { SustenetError } from "./errors.ts";
 * import assert from "node:assert/strict";
 *
 * class PortError extends SustenetError {}
 * const err = new PortError("port_in_use", "port 6256 is in use");
 * assert.equal(err.code, "port_in_use");
 * assert.equal(err.name, "PortError");
 * assert.ok(err instanceof SustenetError);
 * ```
 */
export class SustenetError extends Error {
  /** Stable machine-readable code, e.g. `"config_invalid"`, `"decrypt_failed"`. */
  readonly code: string;

  /**
   * Creates an error with a stable code.
   *
   * @param code Stable machine-readable code.
   * @param message Human-readable message; must never contain key material.
   * @param options Standard error options (`cause`).
   */
  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}
