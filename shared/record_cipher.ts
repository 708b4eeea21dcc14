// This module is browser compatible.
/**
 * The AES-256-GCM cipher that seals and opens the records of a sealed link (docs/PROTOCOL.md,
 * "Sealed records"): the {@linkcode RecordCipher} interface and its portable WebCrypto
 * implementation. The faster server implementations (`node:crypto`, libcrypto through FFI) and
 * `createRecordCipher`, which picks among them, live in server-only modules
 * (`create_record_cipher.ts`), so a browser loading this one never loads them. The nonce of a
 * record is its counter as a 12-byte big-endian integer.
 *
 * This module must never keep a counter (the record layer owns counters, so a nonce is never
 * reused), never log or expose key bytes, and never import a runtime API, statically or
 * dynamically.
 *
 * @module
 */

import { SustenetError } from "./errors.ts";

/** Bytes of an AES-256 key. */
export const RECORD_KEY_BYTES = 32;

/** Bytes of the AES-GCM nonce (the record counter, big-endian). */
export const RECORD_NONCE_BYTES = 12;

/** Bytes of the AES-GCM authentication tag appended to each ciphertext. */
export const RECORD_TAG_BYTES = 16;

/** A record counter: a non-negative integer below 2^96 (numbers up to 2^53 - 1). */
export type RecordCounter = bigint | number;

/** Machine-readable codes of {@linkcode RecordError}. */
export type RecordErrorCode =
  | "record_auth_failed"
  | "record_too_large"
  | "record_too_small"
  | "record_counter_exhausted";

/**
 * A sealed record could not be opened or framed: wrong tag (tampered, replayed, dropped or
 * reordered record, wrong key), a length outside the bounds, or a counter that ran out.
 * Every such failure is final for the link.
 *
 * @example
 * ```ts
 * import { RecordError } from "./record_cipher.ts";
 * import assert from "node:assert/strict";
 *
 * const err = new RecordError("record_auth_failed", "record 3 failed authentication");
 * assert.equal(err.code, "record_auth_failed");
 * assert.equal(err.name, "RecordError");
 * ```
 */
export class RecordError extends SustenetError {
  /** Which failure this is. */
  declare readonly code: RecordErrorCode;

  /**
   * Makes a record error.
   *
   * @param code Which failure this is.
   * @param message Human-readable reason; never contains key or plaintext bytes.
   * @param options Standard error options (`cause`).
   */
  constructor(code: RecordErrorCode, message: string, options?: ErrorOptions) {
    super(code, message, options);
  }
}

/**
 * An AES-256-GCM record cipher bound to one key (one direction of a link).
 *
 * An operation returns a value when it completed synchronously and a promise otherwise, so a
 * synchronous implementation costs no promise per record: callers branch on
 * `result instanceof Uint8Array`. Whatever it returns, an implementation must have read all of
 * its input before returning (WebCrypto copies its input when called), so the caller may reuse
 * its buffers at once. Implementations keep no counter: the record layer owns it.
 */
export interface RecordCipher {
  /** `true` if {@linkcode seal} and {@linkcode open} never return a promise. */
  readonly sync: boolean;
  /**
   * Encrypts one record's plaintext under the nonce `counter`.
   *
   * @returns `ciphertext ‖ tag`, a new array of `plaintext.length + 16` bytes (or its promise).
   */
  seal(counter: RecordCounter, plaintext: Uint8Array): Uint8Array | Promise<Uint8Array>;
  /**
   * Optional, synchronous only (a cipher whose `sync` is `false` may offer it, but the record
   * layer then uses {@linkcode seal}): encrypts one record under the nonce `counter` into a
   * buffer the caller owns, so a record layer can seal a batch without a copy per record.
   * Writes `ciphertext ‖ tag` into the first `plaintext.length + 16` bytes of `out`.
   *
   * In place is allowed only at the same offset: `plaintext` may be `out.subarray(0, n)`
   * (same buffer, same start); any other overlap of `plaintext` and `out` is refused with a
   * RangeError, as is an `out` shorter than `plaintext.length + 16`.
   *
   * @returns The number of bytes written, always `plaintext.length + 16`.
   */
  sealInto?(counter: RecordCounter, plaintext: Uint8Array, out: Uint8Array): number;
  /**
   * Decrypts `ciphertext ‖ tag` sealed under the nonce `counter`.
   *
   * Throws (or rejects with) {@linkcode RecordError} `record_auth_failed` if the tag does not
   * verify, `record_too_small` if `sealed` is shorter than a tag.
   */
  open(counter: RecordCounter, sealed: Uint8Array): Uint8Array | Promise<Uint8Array>;
  /**
   * Optional, synchronous only, like {@linkcode sealInto}: decrypts `ciphertext ‖ tag` into the
   * first `sealed.length - 16` bytes of `out`, in place allowed at the same offset; throws as
   * {@linkcode open} does (zeroing those bytes of `out` on a bad tag).
   *
   * @returns The number of plaintext bytes written.
   */
  openInto?(counter: RecordCounter, sealed: Uint8Array, out: Uint8Array): number;
  /**
   * Optional: frees what the cipher can rebuild on its next operation (native contexts), for a
   * link that has been idle for a while. Operations after it work as before.
   */
  trim?(): void;
}

/** A {@linkcode RecordCipher} whose operations always complete synchronously (`node:crypto`). */
export interface SyncRecordCipher extends RecordCipher {
  /** Always `true`. */
  readonly sync: true;
  /** Encrypts one record; see {@linkcode RecordCipher.seal}. */
  seal(counter: RecordCounter, plaintext: Uint8Array): Uint8Array;
  /** Decrypts one record; see {@linkcode RecordCipher.open}. */
  open(counter: RecordCounter, sealed: Uint8Array): Uint8Array;
}

/** Which implementation `createRecordCipher` (`create_record_cipher.ts`) should use. */
export type RecordCipherKind = "ffi" | "node" | "webcrypto" | "hybrid";

/** Options of `createRecordCipher` (`create_record_cipher.ts`, server-only). */
export interface RecordCipherOptions {
  /**
   * The implementation to use: `"ffi"` (libcrypto through Deno FFI, synchronous, the fastest;
   * needs `--allow-ffi`; see `FfiRecordCipher`), `"node"` (`node:crypto`, synchronous),
   * `"webcrypto"` (portable, asynchronous) or `"hybrid"` (`node:crypto` for small records,
   * WebCrypto for large ones; see `HybridRecordCipher`). Each falls back to the next available
   * one: `"ffi"` to `"hybrid"` where FFI is not allowed or libcrypto is missing.
   * `bench/seal_bench.ts` measured libcrypto through FFI several times faster than the others
   * at every record size, so servers default to `"ffi"`, which in practice means `"hybrid"`
   * without `--allow-ffi` and on Node. Browsers have only WebCrypto
   * (`WebCryptoRecordCipher.create`).
   *
   * @default {"ffi"}
   */
  readonly prefer?: RecordCipherKind;
}

/**
 * Writes `counter` as the 12-byte big-endian nonce into `out` (which must be 12 bytes).
 *
 * @param counter The record counter.
 * @param out The nonce buffer to fill; reused by callers to avoid an allocation per record.
 * @returns `out`.
 * @throws {RangeError} If the counter is negative, not an integer, or not below 2^96.
 *
 * @example
 * ```ts
 * import { writeRecordNonce } from "./record_cipher.ts";
 * import assert from "node:assert/strict";
 *
 * const nonce = writeRecordNonce(0x0102030405n, new Uint8Array(12));
 * assert.equal(nonce.toHex(), "000000000000000102030405");
 * assert.equal(writeRecordNonce(2 ** 40, nonce).toHex(), "000000000000010000000000");
 * ```
 */
export function writeRecordNonce(counter: RecordCounter, out: Uint8Array): Uint8Array {
  let high = 0;
  let mid: number;
  let low: number;
  if (typeof counter === "number") {
    if (!Number.isSafeInteger(counter) || counter < 0) {
      throw new RangeError(`record counter must be a safe non-negative integer, got ${counter}`);
    }
    mid = Math.floor(counter / 0x1_0000_0000);
    low = counter >>> 0;
  } else {
    if (counter < 0n || counter >= 1n << 96n) {
      throw new RangeError(`record counter must be in 0..2^96-1, got ${counter}`);
    }
    high = Number(counter >> 64n);
    mid = Number((counter >> 32n) & 0xffff_ffffn);
    low = Number(counter & 0xffff_ffffn);
  }
  writeU32(out, 0, high);
  writeU32(out, 4, mid);
  writeU32(out, 8, low);
  return out;
}

/**
 * Checks that `key` is a raw AES-256 key.
 *
 * @param key Candidate key bytes.
 * @throws {TypeError} If `key` is not a Uint8Array.
 * @throws {RangeError} If it is not 32 bytes long.
 *
 * @example
 * ```ts
 * import { assertRecordKey } from "./record_cipher.ts";
 * import assert from "node:assert/strict";
 *
 * assertRecordKey(new Uint8Array(32));
 * assert.throws(() => assertRecordKey(new Uint8Array(16)), RangeError);
 * ```
 */
export function assertRecordKey(key: Uint8Array): void {
  if (!(key instanceof Uint8Array)) throw new TypeError("record key must be a Uint8Array");
  if (key.length !== RECORD_KEY_BYTES) {
    throw new RangeError(`record key must be ${RECORD_KEY_BYTES} bytes, got ${key.length}`);
  }
}

/**
 * Portable AES-256-GCM record cipher on WebCrypto (browsers, edge runtimes, Deno). Asynchronous:
 * each operation is one promise. Create it with {@linkcode WebCryptoRecordCipher.create}, which
 * imports the key once as non-extractable.
 *
 * @example Seal and open one record
 * ```ts
 * import { WebCryptoRecordCipher } from "./record_cipher.ts";
 * import assert from "node:assert/strict";
 *
 * const cipher = await WebCryptoRecordCipher.create(new Uint8Array(32).fill(7));
 * const sealed = await cipher.seal(0, new TextEncoder().encode("hi"));
 * assert.equal(sealed.length, 2 + 16);
 * assert.equal(new TextDecoder().decode(await cipher.open(0, sealed)), "hi");
 * await assert.rejects(cipher.open(1, sealed), { code: "record_auth_failed" });
 * ```
 */
export class WebCryptoRecordCipher implements RecordCipher {
  /** Always `false`: WebCrypto operations return promises. */
  readonly sync = false as const;
  readonly #key: CryptoKey;

  private constructor(key: CryptoKey) {
    this.#key = key;
  }

  /**
   * Imports a raw 32-byte key (the bytes are copied, the CryptoKey is not extractable).
   *
   * @param key The 32-byte AES-256 key of one direction.
   * @throws {RangeError} If the key is not 32 bytes.
   */
  static async create(key: Uint8Array): Promise<WebCryptoRecordCipher> {
    assertRecordKey(key);
    const cryptoKey = await crypto.subtle.importKey(
      "raw",
      key.slice(),
      { name: "AES-GCM" },
      false,
      ["encrypt", "decrypt"],
    );
    return new WebCryptoRecordCipher(cryptoKey);
  }

  /** Encrypts one record; resolves to `ciphertext ‖ tag`. */
  async seal(counter: RecordCounter, plaintext: Uint8Array): Promise<Uint8Array> {
    // A fresh nonce per call: WebCrypto copies it, but concurrent calls must not share one.
    const iv = new Uint8Array(RECORD_NONCE_BYTES);
    writeRecordNonce(counter, iv);
    const sealed = await crypto.subtle.encrypt(
      { name: "AES-GCM", iv },
      this.#key,
      asArrayView(plaintext),
    );
    return new Uint8Array(sealed);
  }

  /** Decrypts one record; rejects with `record_auth_failed` if its tag does not verify. */
  async open(counter: RecordCounter, sealed: Uint8Array): Promise<Uint8Array> {
    const iv = new Uint8Array(RECORD_NONCE_BYTES);
    writeRecordNonce(counter, iv);
    if (sealed.length < RECORD_TAG_BYTES) {
      throw new RecordError(
        "record_too_small",
        `record of ${sealed.length} bytes is shorter than its ${RECORD_TAG_BYTES}-byte tag`,
      );
    }
    let plaintext: ArrayBuffer;
    try {
      plaintext = await crypto.subtle.decrypt(
        { name: "AES-GCM", iv },
        this.#key,
        asArrayView(sealed),
      );
    } catch (cause) {
      // WebCrypto reports a bad tag as an OperationError; nothing else can fail here.
      throw new RecordError("record_auth_failed", `record ${counter} failed authentication`, {
        cause,
      });
    }
    return new Uint8Array(plaintext);
  }
}

/** Returns a view WebCrypto accepts (backed by an ArrayBuffer, as its types require). */
function asArrayView(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return bytes.buffer instanceof ArrayBuffer
    ? bytes as Uint8Array<ArrayBuffer>
    : new Uint8Array(bytes) as Uint8Array<ArrayBuffer>;
}

function writeU32(out: Uint8Array, offset: number, value: number): void {
  out[offset] = value >>> 24;
  out[offset + 1] = value >>> 16;
  out[offset + 2] = value >>> 8;
  out[offset + 3] = value;
}
