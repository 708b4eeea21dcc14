// This module is browser compatible.
/**
 * Big-endian reading of the protocol's field types from one packet payload. Every read checks
 * the remaining bytes before touching them (a length prefix is checked against what is left
 * before slicing) and fails with a {@linkcode ProtocolError} naming the packet and field.
 * Strings must be valid UTF-8. It must never read past the payload or trust a length field.
 *
 * @module
 */

import { type MoveState, readMoveState } from "./move_state.ts";
import { type ErrorCode, ProtocolError } from "./protocol_error.ts";

// fatal: invalid UTF-8 is a protocol error, not U+FFFD. ignoreBOM: a leading U+FEFF is part of
// the string (the default would strip it, and the string would not round-trip).
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Sequential reader over one payload. Reads throw {@linkcode ProtocolError}; the codec turns
 * that into its return value, so `decodePacket` itself never throws.
 *
 * @example
 * ```ts
 * import { ByteReader } from "./byte_reader.ts";
 * import { ErrorCode, ProtocolError } from "./protocol_error.ts";
 * import assert from "node:assert/strict";
 *
 * const r = new ByteReader(Uint8Array.fromHex("1870026869"), "Example", ErrorCode.BadPacket);
 * assert.equal(r.u16("port"), 6256);
 * assert.equal(r.str8("name"), "hi");
 * r.end();
 * assert.throws(() => r.u8("more"), ProtocolError);
 * ```
 */
export class ByteReader {
  #bytes: Uint8Array;
  #view: DataView | undefined;
  #pos = 0;
  #packet: string;
  #errorCode: ErrorCode;

  /**
   * Makes a reader positioned at the start of `bytes`.
   *
   * @param bytes The payload.
   * @param packet Packet name for error messages.
   * @param errorCode The code a malformed payload fails with (`BadPacket`; `BadHello` for Hello).
   */
  constructor(bytes: Uint8Array, packet: string, errorCode: ErrorCode) {
    this.#bytes = bytes;
    this.#packet = packet;
    this.#errorCode = errorCode;
  }

  /** Bytes not read yet. */
  get remaining(): number {
    return this.#bytes.length - this.#pos;
  }

  /** Makes the error for a malformed payload. */
  fail(reason: string, cause?: unknown): ProtocolError {
    return new ProtocolError(
      this.#errorCode,
      `${this.#packet}: ${reason}`,
      cause === undefined ? undefined : { cause },
    );
  }

  #need(bytes: number, field: string): number {
    const at = this.#pos;
    if (bytes > this.#bytes.length - at) {
      throw this.fail(`truncated at ${field} (needs ${bytes} bytes, ${this.remaining} left)`);
    }
    this.#pos = at + bytes;
    return at;
  }

  /** Reads a u8. */
  u8(field: string): number {
    return this.#bytes[this.#need(1, field)];
  }

  /** Reads a big-endian u16. */
  u16(field: string): number {
    const b = this.#bytes;
    const at = this.#need(2, field);
    return (b[at] << 8) | b[at + 1];
  }

  /** Reads a big-endian u32. */
  u32(field: string): number {
    const b = this.#bytes;
    const at = this.#need(4, field);
    return b[at] * 0x100_0000 + ((b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]);
  }

  /** Returns a view of the next `length` bytes (no copy). */
  view(length: number, field: string): Uint8Array {
    const at = this.#need(length, field);
    return this.#bytes.subarray(at, at + length);
  }

  /** Reads `u8 length | bytes` into a copy. */
  bytes8(field: string): Uint8Array {
    return this.view(this.u8(field), field).slice();
  }

  /** Reads `u16 length | bytes` into a copy. */
  bytes16(field: string): Uint8Array {
    return this.view(this.u16(field), field).slice();
  }

  /** Reads a `bytes8` that must be exactly `size` bytes long, into a copy. */
  fixed8(size: number, field: string): Uint8Array {
    const length = this.u8(field);
    if (length !== size) throw this.fail(`${field} must be ${size} bytes, got ${length}`);
    return this.view(length, field).slice();
  }

  /** Reads `u8 length | UTF-8`. */
  str8(field: string): string {
    return this.#utf8(this.view(this.u8(field), field), field);
  }

  /** Reads `u16 length | UTF-8`. */
  str16(field: string): string {
    return this.#utf8(this.view(this.u16(field), field), field);
  }

  #utf8(bytes: Uint8Array, field: string): string {
    try {
      return decoder.decode(bytes);
    } catch (err) {
      if (err instanceof TypeError) throw this.fail(`${field} is not valid UTF-8`, err);
      throw err;
    }
  }

  /** Reads a MoveState (see `move_state.ts`). */
  moveState(field: string): MoveState {
    const b = this.#bytes;
    this.#view ??= new DataView(b.buffer, b.byteOffset, b.byteLength);
    const read = readMoveState(this.#view, this.#pos);
    if (read === undefined) throw this.fail(`${field} is truncated or has unknown flag bits`);
    this.#pos = read.offset;
    return read.state;
  }

  /** Checks the payload is fully consumed: trailing bytes are a malformed packet. */
  end(): void {
    if (this.#pos !== this.#bytes.length) {
      throw this.fail(`${this.remaining} trailing bytes`);
    }
  }
}
