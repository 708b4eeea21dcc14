// This module is browser compatible.
/**
 * The wire protocol's error codes (docs/PROTOCOL.md, "Error codes") and the typed error the
 * frame decoder and packet codec return for bad input. Protocol errors are values, not
 * exceptions: decoders return a {@linkcode ProtocolError} so one bad peer can never crash a
 * server. This module must never hold connection state or do I/O.
 *
 * @module
 */

import { SustenetError } from "../errors.ts";

/**
 * Error codes carried by the `Error` packet (`u16 code`), fixed by docs/PROTOCOL.md.
 *
 * @example Look up a code
 * ```ts
 * import { ErrorCode, errorCodeName, ProtocolError } from "./protocol_error.ts";
 * import assert from "node:assert/strict";
 *
 * // Branch on the code of an Error frame; log its name.
 * const error = new ProtocolError(ErrorCode.UseMaster, "joins go through the master");
 * assert.equal(error.errorCode === ErrorCode.UseMaster, true);
 * assert.equal(errorCodeName(error.errorCode), "UseMaster");
 * ```
 */
export const ErrorCode = {
  /** First frame was not a valid Hello. */
  BadHello: 1,
  /** Protocol version not supported. */
  VersionMismatch: 2,
  /** Frame length 0 or stream corrupt. */
  BadFrame: 3,
  /** Frame above max_frame_bytes. */
  FrameTooLarge: 4,
  /** Payload does not match the packet layout. */
  BadPacket: 5,
  /** Type not defined and not a plugin command. */
  UnknownPacket: 6,
  /** Packet not valid in this connection state. */
  UnexpectedPacket: 7,
  /** max_connections reached. */
  ServerFull: 8,
  /** Handshake or idle timeout. */
  Timeout: 9,
  /** Cluster registration failed (same reason whatever went wrong). */
  AuthFailed: 10,
  /** JoinCluster for a cluster id that is not registered. */
  UnknownCluster: 11,
  /** The cluster has no free slot. */
  ClusterFull: 12,
  /** Auto-join found no cluster with room. */
  NoCluster: 13,
  /** The authentication hook refused the credential. */
  Unauthorized: 14,
  /** The server is stopping. */
  ShuttingDown: 15,
  /** The peer did not read and its queue bound was reached. */
  SlowConsumer: 16,
  /** Ask the master (JoinCluster sent to a cluster). */
  UseMaster: 17,
  /** Unexpected server error. */
  Internal: 18,
  /** Too many requests (e.g. JoinCluster over the master's ticket limits); wait, then retry. */
  RateLimited: 19,
  /**
   * Cluster → client: no plugin of the cluster handles the plugin command just sent. Not fatal:
   * the connection stays open. The reason is `no plugin handles command 0xNN`.
   */
  Unhandled: 20,
} as const;

/** One of the {@linkcode ErrorCode} numbers. */
export type ErrorCode = typeof ErrorCode[keyof typeof ErrorCode];

/** Name of each code, indexed by code number (index 0 unused). */
const NAMES: readonly string[] = (() => {
  const names: string[] = [];
  for (const [name, code] of Object.entries(ErrorCode)) names[code] = name;
  return names;
})();

/** snake_case id of each code, indexed by code number, for {@linkcode SustenetError.code}. */
const IDS: readonly string[] = NAMES.map((name) =>
  name.replace(/[A-Z]/g, (c, i: number) => (i === 0 ? "" : "_") + c.toLowerCase())
);

/**
 * Tells whether a number is one of the {@linkcode ErrorCode} values of this protocol version.
 *
 * @param code Any number, e.g. read from an `Error` packet.
 *
 * @example
 * ```ts
 * import { isErrorCode } from "./protocol_error.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(isErrorCode(4), true);
 * assert.equal(isErrorCode(99), false);
 * ```
 */
export function isErrorCode(code: number): code is ErrorCode {
  return Number.isInteger(code) && code >= 1 && code < NAMES.length;
}

/**
 * Returns the PROTOCOL.md name of an error code, or `"Unknown(<code>)"` for a code this version
 * does not define (a newer peer may send one).
 *
 * @param code The error code.
 *
 * @example
 * ```ts
 * import { errorCodeName } from "./protocol_error.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(errorCodeName(4), "FrameTooLarge");
 * assert.equal(errorCodeName(99), "Unknown(99)");
 * ```
 */
export function errorCodeName(code: number): string {
  return isErrorCode(code) ? NAMES[code] : `Unknown(${code})`;
}

/**
 * A protocol violation found while decoding or handling a peer's bytes; the connection that
 * sent them is answered with an `Error(errorCode)` packet and closed.
 *
 * @example Made by the decoders, branched on by code
 * ```ts
 * import { ErrorCode, ProtocolError } from "./protocol_error.ts";
 * import assert from "node:assert/strict";
 *
 * const err = new ProtocolError(ErrorCode.FrameTooLarge, "frame of 70000 bytes above 65536");
 * assert.equal(err.errorCode, 4);
 * assert.equal(err.code, "frame_too_large");
 * assert.equal(err.name, "ProtocolError");
 * ```
 */
export class ProtocolError extends SustenetError {
  /** The wire error code to send back to the peer. */
  readonly errorCode: ErrorCode;

  /**
   * Makes an error carrying a wire error code.
   *
   * @param errorCode The wire error code.
   * @param message Human-readable reason; never contains key material or payload bytes.
   * @param options Standard error options (`cause`).
   */
  constructor(errorCode: ErrorCode, message: string, options?: ErrorOptions) {
    super(IDS[errorCode], message, options);
    this.errorCode = errorCode;
  }
}
