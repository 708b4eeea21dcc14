// This module is browser compatible.
/**
 * Big-endian writing of the protocol's field types (docs/PROTOCOL.md "Conventions") into a
 * buffer the caller sized beforehand, plus {@linkcode utf8Length} for that sizing. Every write
 * checks its value and names the field in the `RangeError` it throws. It must never allocate
 * or grow a buffer: the codec sizes each frame exactly and allocates it once.
 *
 * @module
 */

import { type MoveState, writeMoveState } from "./move_state.ts";

/**
 * Bytes of the UTF-8 encoding of `text`, as `TextEncoder` would produce it.
 *
 * @param text A well-formed string.
 * @param field Field name for the error message.
 * @throws {TypeError} If `text` has a lone surrogate (it could not round-trip).
 *
 * @example
 * ```ts
 * import { utf8Length } from "./byte_writer.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(utf8Length("abc", "name"), 3);
 * assert.equal(utf8Length("é€😀", "name"), 2 + 3 + 4);
 * assert.throws(() => utf8Length("\ud800", "name"), TypeError);
 * ```
 */
export function utf8Length(text: string, field: string): number {
  let bytes = text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) {
      bytes += 1;
    } else if (c >= 0xd800 && c <= 0xdfff) {
      const next = text.charCodeAt(i + 1);
      if (c > 0xdbff || !(next >= 0xdc00 && next <= 0xdfff)) {
        throw new TypeError(`${field}: string has a lone surrogate at index ${i}`);
      }
      bytes += 2; // two UTF-16 units become four bytes
      i++;
    } else {
      bytes += 2;
    }
  }
  return bytes;
}

const encoder = new TextEncoder();

/**
 * Writes protocol fields sequentially into a caller-provided array.
 *
 * @example
 * ```ts
 * import { ByteWriter } from "./byte_writer.ts";
 * import assert from "node:assert/strict";
 *
 * const out = new Uint8Array(9);
 * const w = new ByteWriter(out);
 * w.u16(6256, "port");
 * w.str8("héllo", "name");
 * assert.equal(w.offset, 9);
 * assert.equal(out.toHex(), "18700668c3a96c6c6f");
 * assert.throws(() => w.u8(1, "flags"), RangeError);
 * ```
 */
export class ByteWriter {
  #out: Uint8Array;
  #view: DataView | undefined;
  #pos: number;

  /**
   * Makes a writer positioned at `offset` of `out`.
   *
   * @param out The destination, already sized.
   * @param offset Where writing starts.
   */
  constructor(out: Uint8Array, offset = 0) {
    this.#out = out;
    this.#pos = offset;
  }

  /** The offset of the next write. */
  get offset(): number {
    return this.#pos;
  }

  /** Moves the write position, e.g. past a frame header written separately. */
  set offset(offset: number) {
    this.#pos = offset;
  }

  #room(bytes: number, field: string): void {
    if (this.#pos + bytes > this.#out.length) {
      throw new RangeError(`${field}: ${bytes} bytes do not fit at offset ${this.#pos}`);
    }
  }

  /** Writes a u8. @throws {RangeError} If `value` is not an integer 0..255. */
  u8(value: number, field: string): void {
    checkUint(value, 0xff, field);
    this.#room(1, field);
    this.#out[this.#pos++] = value;
  }

  /** Writes a big-endian u16. @throws {RangeError} If `value` is not an integer 0..65535. */
  u16(value: number, field: string): void {
    checkUint(value, 0xffff, field);
    this.#room(2, field);
    const out = this.#out;
    out[this.#pos++] = value >>> 8;
    out[this.#pos++] = value;
  }

  /** Writes a big-endian u32. @throws {RangeError} If `value` is not an integer 0..2^32-1. */
  u32(value: number, field: string): void {
    checkUint(value, 0xffff_ffff, field);
    this.#room(4, field);
    const out = this.#out;
    out[this.#pos++] = value >>> 24;
    out[this.#pos++] = value >>> 16;
    out[this.#pos++] = value >>> 8;
    out[this.#pos++] = value;
  }

  /** Writes raw bytes with no prefix. */
  raw(bytes: Uint8Array, field: string): void {
    this.#room(bytes.length, field);
    this.#out.set(bytes, this.#pos);
    this.#pos += bytes.length;
  }

  /** Writes `u8 length | bytes`. @throws {RangeError} Above 255 bytes. */
  bytes8(bytes: Uint8Array, field: string): void {
    this.u8(checkLength(bytes.length, 0xff, field), field);
    this.raw(bytes, field);
  }

  /** Writes `u16 length | bytes`. @throws {RangeError} Above 65535 bytes. */
  bytes16(bytes: Uint8Array, field: string): void {
    this.u16(checkLength(bytes.length, 0xffff, field), field);
    this.raw(bytes, field);
  }

  /** Writes `u8 length | UTF-8`. @throws {RangeError} Above 255 bytes. */
  str8(text: string, field: string): void {
    this.#str(text, 1, 0xff, field);
  }

  /** Writes `u16 length | UTF-8`. @throws {RangeError} Above 65535 bytes. */
  str16(text: string, field: string): void {
    this.#str(text, 2, 0xffff, field);
  }

  #str(text: string, prefix: 1 | 2, max: number, field: string): void {
    const out = this.#out;
    const start = this.#pos + prefix;
    let pos = start;
    let i = 0;
    // Fast path: ASCII is written byte by byte, no encoder call or subarray.
    for (; i < text.length && pos < out.length; i++) {
      const c = text.charCodeAt(i);
      if (c >= 0x80) break;
      out[pos++] = c;
    }
    if (i < text.length) {
      const bytes = utf8Length(text.slice(i), field);
      if (pos + bytes > out.length) {
        throw new RangeError(`${field}: ${bytes} bytes do not fit at offset ${pos}`);
      }
      pos += encoder.encodeInto(text.slice(i), out.subarray(pos, pos + bytes)).written;
    }
    const length = checkLength(pos - start, max, field);
    if (prefix === 1) {
      out[this.#pos] = length;
    } else {
      out[this.#pos] = length >>> 8;
      out[this.#pos + 1] = length;
    }
    this.#pos = pos;
  }

  /** Writes a MoveState (see `move_state.ts`). */
  moveState(state: MoveState): void {
    this.#view ??= new DataView(this.#out.buffer, this.#out.byteOffset, this.#out.byteLength);
    this.#pos = writeMoveState(this.#view, this.#pos, state);
  }
}

function checkUint(value: number, max: number, field: string): void {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new RangeError(`${field} must be an integer 0..${max}, got ${value}`);
  }
}

function checkLength(length: number, max: number, field: string): number {
  if (length > max) {
    throw new RangeError(`${field} is ${length} bytes, above its length prefix's ${max}`);
  }
  return length;
}
