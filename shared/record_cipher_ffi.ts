/**
 * AES-256-GCM record cipher on the system's libcrypto (OpenSSL 3) through Deno FFI: the
 * server's fastest sealing path. `node:crypto` redoes the key setup and allocates several
 * objects per record; here each direction keeps one `EVP_CIPHER_CTX` keyed once, and a record
 * costs four FFI calls (set the IV, encrypt, finish, read the tag) writing straight into the
 * caller's buffer. Produces exactly the bytes of `WebCryptoRecordCipher` and `NodeRecordCipher`
 * (a test proves it). Needs `--allow-ffi`; without it (or without libcrypto)
 * {@linkcode FfiRecordCipher.available} is `false` and `createRecordCipher` falls back.
 *
 * This module must never keep a counter, never log or expose key bytes, never pass libcrypto a
 * length larger than the buffer it goes with, never use a context after it was freed, and never
 * prompt for a permission (it only queries).
 *
 * @module
 */

import { SustenetError } from "./errors.ts";
import {
  assertRecordKey,
  RECORD_NONCE_BYTES,
  RECORD_TAG_BYTES,
  type RecordCounter,
  RecordError,
  type SyncRecordCipher,
  writeRecordNonce,
} from "./record_cipher.ts";

/** File names tried, in order, to load libcrypto (Linux, then macOS Homebrew's OpenSSL 3). */
const LIBCRYPTO_NAMES = ["libcrypto.so.3", "libcrypto.so", "libcrypto.3.dylib"] as const;

/** `EVP_CTRL_GCM_GET_TAG` / `EVP_CTRL_GCM_SET_TAG` of `<openssl/evp.h>`. */
const EVP_CTRL_GCM_GET_TAG = 0x10;
const EVP_CTRL_GCM_SET_TAG = 0x11;

/** libcrypto takes lengths as C `int`: no input above INT_MAX is passed. */
const MAX_FFI_INPUT_BYTES = 0x7fff_ffff;

/** `EVP_{Encrypt,Decrypt}Init_ex(ctx, cipher, engine, key, iv)`. */
const INIT = {
  parameters: ["pointer", "pointer", "pointer", "buffer", "buffer"],
  result: "i32",
  nonblocking: false,
} as const;
/** `EVP_{Encrypt,Decrypt}Update(ctx, out, &outLength, in, inLength)`. */
const UPDATE = {
  parameters: ["pointer", "buffer", "buffer", "buffer", "i32"],
  result: "i32",
  nonblocking: false,
} as const;
/** `EVP_{Encrypt,Decrypt}Final_ex(ctx, out, &outLength)`. */
const FINAL = {
  parameters: ["pointer", "buffer", "buffer"],
  result: "i32",
  nonblocking: false,
} as const;

/** The libcrypto functions used. All synchronous: each call is a few hundred ns at most. */
const SYMBOLS = {
  EVP_aes_256_gcm: { parameters: [], result: "pointer", nonblocking: false },
  EVP_CIPHER_CTX_new: { parameters: [], result: "pointer", nonblocking: false },
  EVP_CIPHER_CTX_free: { parameters: ["pointer"], result: "void", nonblocking: false },
  EVP_CIPHER_CTX_ctrl: {
    parameters: ["pointer", "i32", "i32", "buffer"],
    result: "i32",
    nonblocking: false,
  },
  EVP_EncryptInit_ex: INIT,
  EVP_EncryptUpdate: UPDATE,
  EVP_EncryptFinal_ex: FINAL,
  EVP_DecryptInit_ex: INIT,
  EVP_DecryptUpdate: UPDATE,
  EVP_DecryptFinal_ex: FINAL,
  ERR_clear_error: { parameters: [], result: "void", nonblocking: false },
} as const satisfies Deno.ForeignLibraryInterface;

type Libcrypto = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/** The loaded library and its AES-256-GCM cipher description (a static object, never freed). */
interface LoadedLibcrypto {
  readonly lib: Libcrypto;
  readonly aes256gcm: Deno.PointerObject;
}

/** Machine-readable codes of {@linkcode FfiCipherError}. */
export type FfiCipherErrorCode = "ffi_unavailable" | "ffi_cipher_failed" | "ffi_cipher_closed";

/**
 * The libcrypto cipher could not be used: FFI or libcrypto is not available, a libcrypto call
 * reported failure, or the cipher was already closed. (A record that fails authentication is a
 * `RecordError`, not this.)
 *
 * @example
 * ```ts
 * import { FfiCipherError } from "./record_cipher_ffi.ts";
 * import assert from "node:assert/strict";
 *
 * const err = new FfiCipherError("ffi_cipher_closed", "record cipher is closed");
 * assert.equal(err.code, "ffi_cipher_closed");
 * assert.equal(err.name, "FfiCipherError");
 * ```
 */
export class FfiCipherError extends SustenetError {
  /** Which failure this is. */
  declare readonly code: FfiCipherErrorCode;

  /**
   * @param code Which failure this is.
   * @param message Human-readable reason; never contains key or plaintext bytes.
   * @param options Standard error options (`cause`).
   */
  constructor(code: FfiCipherErrorCode, message: string, options?: ErrorOptions) {
    super(code, message, options);
  }
}

/** The library once loaded and self-tested; `undefined` until then. */
let loaded: LoadedLibcrypto | undefined;
/** Why loading failed for good (no library, failed self-test); permission is re-queried. */
let loadFailure: string | undefined;

/** Tells whether this isolate may use FFI, without ever prompting. */
function ffiPermissionReason(): string | undefined {
  const deno = (globalThis as { Deno?: typeof Deno }).Deno;
  if (deno?.dlopen === undefined || deno.permissions?.querySync === undefined) {
    return "not running on Deno";
  }
  const state = deno.permissions.querySync({ name: "ffi" }).state;
  return state === "granted" ? undefined : `ffi permission is ${state} (run with --allow-ffi)`;
}

/** Loads libcrypto once, or gives the reason it cannot be used. */
function loadLibcrypto(): LoadedLibcrypto | string {
  if (loaded !== undefined) return loaded;
  if (loadFailure !== undefined) return loadFailure;
  let reason: string | undefined;
  try {
    reason = ffiPermissionReason();
  } catch (error) {
    // A runtime without the permissions API, or a sandbox refusing the query: no FFI.
    return `ffi permission query failed: ${error instanceof Error ? error.message : error}`;
  }
  if (reason !== undefined) return reason;
  const failures: string[] = [];
  for (const name of LIBCRYPTO_NAMES) {
    let library: Deno.DynamicLibrary<typeof SYMBOLS>;
    try {
      library = Deno.dlopen(name, SYMBOLS);
    } catch (error) {
      // Not installed under this name (or not allowed): try the next one.
      failures.push(`${name}: ${error instanceof Error ? error.message : error}`);
      continue;
    }
    const aes256gcm = library.symbols.EVP_aes_256_gcm();
    if (aes256gcm === null) {
      failures.push(`${name}: EVP_aes_256_gcm() returned NULL`);
      library.close();
      continue;
    }
    const candidate: LoadedLibcrypto = { lib: library.symbols, aes256gcm };
    const selfTest = knownAnswerFailure(candidate);
    if (selfTest !== undefined) {
      failures.push(`${name}: ${selfTest}`);
      library.close();
      continue;
    }
    // The library stays open for the life of the process: contexts may outlive any one user.
    loaded = candidate;
    return loaded;
  }
  loadFailure = `libcrypto not usable: ${failures.join("; ")}`;
  return loadFailure;
}

/**
 * Seals and opens NIST GCM test case 14 (zero key and IV, 16 zero bytes) with a fresh context,
 * so a libcrypto with a different ABI or behaviour is refused before it seals anything.
 */
function knownAnswerFailure(candidate: LoadedLibcrypto): string | undefined {
  const cipher = constructCipher(candidate, new Uint8Array(32));
  try {
    const sealed = cipher.seal(0, new Uint8Array(16));
    const expected = "cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919";
    if (sealed.toHex() !== expected) return "known-answer test gave the wrong bytes";
    if (cipher.open(0, sealed).some((byte) => byte !== 0)) return "known-answer open failed";
    return undefined;
  } catch (error) {
    return `known-answer test failed: ${error instanceof Error ? error.message : error}`;
  } finally {
    cipher.close();
  }
}

/**
 * The native state of one cipher: its contexts (each created on first use, `null` before) and
 * what the finalizer needs to free them if `close()` was never called. Holds no reference to
 * the cipher object, or the finalizer would never run.
 */
interface CipherContexts {
  encrypt: Deno.PointerObject | null;
  decrypt: Deno.PointerObject | null;
  readonly lib: Libcrypto;
}

/** Frees the contexts of `contexts` that exist. */
function freeContexts(contexts: CipherContexts): void {
  if (contexts.encrypt !== null) contexts.lib.EVP_CIPHER_CTX_free(contexts.encrypt);
  if (contexts.decrypt !== null) contexts.lib.EVP_CIPHER_CTX_free(contexts.decrypt);
  contexts.encrypt = null;
  contexts.decrypt = null;
}

/**
 * Scratch buffers shared by every cipher of this isolate (operations are synchronous, so no two
 * use them at once), which keeps an idle cipher small: the nonce (libcrypto copies the IV when
 * it is set), the C `int` libcrypto writes output lengths to, and the output of the Final
 * calls, which GCM never writes to but which must be a valid buffer.
 */
const scratchIv = new Uint8Array(RECORD_NONCE_BYTES);
const scratchOutLength = new Int32Array(1);
const scratchFinalOut = new Uint8Array(16);

/** The cipher's private constructor, for the self-test; set by the class's static block. */
let constructCipher: (libcrypto: LoadedLibcrypto, key: Uint8Array) => FfiRecordCipher;

/** Frees contexts whose cipher was garbage collected without `close()`. */
const finalizer = new FinalizationRegistry<CipherContexts>(freeContexts);

/** True if `a` and `b` share memory but do not start at the same byte (unsafe for libcrypto). */
function overlapsUnaligned(a: Uint8Array, b: Uint8Array): boolean {
  if (a.buffer !== b.buffer || a.length === 0 || b.length === 0) return false;
  if (a.byteOffset === b.byteOffset) return false;
  return a.byteOffset < b.byteOffset + b.length && b.byteOffset < a.byteOffset + a.length;
}

/**
 * AES-256-GCM record cipher on libcrypto through Deno FFI. Synchronous, and the fastest on a
 * server: about ten times `node:crypto` for small records and about thirty times for 16 KiB
 * (`bench/seal_bench.ts`). Create it with {@linkcode FfiRecordCipher.create} after checking
 * {@linkcode FfiRecordCipher.available}; free it with {@linkcode close} (or `using`), else a
 * finalizer frees it when it is garbage collected.
 *
 * Besides {@linkcode seal} and {@linkcode open} (which allocate their result) it offers
 * {@linkcode sealInto} and {@linkcode openInto}, which write into a buffer the caller owns and
 * may work in place, so a record layer can seal without copying.
 *
 * @example Seal and open one record (needs --allow-ffi)
 * ```ts
 * import { FfiRecordCipher } from "./record_cipher_ffi.ts";
 * import assert from "node:assert/strict";
 *
 * if (FfiRecordCipher.available()) {
 *   using cipher = FfiRecordCipher.create(new Uint8Array(32).fill(7));
 *   const sealed = cipher.seal(0, new TextEncoder().encode("hi"));
 *   assert.equal(sealed.length, 2 + 16);
 *   assert.equal(new TextDecoder().decode(cipher.open(0, sealed)), "hi");
 *   assert.throws(() => cipher.open(1, sealed), { code: "record_auth_failed" });
 * }
 * ```
 */
export class FfiRecordCipher implements SyncRecordCipher, Disposable {
  /** Always `true`: operations return values, not promises. */
  readonly sync = true as const;
  readonly #libcrypto: LoadedLibcrypto;
  readonly #lib: Libcrypto;
  /** `undefined` once closed: a freed context must never reach libcrypto. */
  #contexts: CipherContexts | undefined;
  /**
   * A copy of the key until both contexts exist (then wiped): a link uses each cipher in one
   * direction only, so creating the other context lazily halves the native memory per cipher.
   */
  #key: Uint8Array | undefined;

  static {
    constructCipher = (libcrypto, key) => new FfiRecordCipher(libcrypto, key);
  }

  /** Use {@linkcode FfiRecordCipher.create}. */
  private constructor(libcrypto: LoadedLibcrypto, key: Uint8Array) {
    this.#libcrypto = libcrypto;
    this.#lib = libcrypto.lib;
    this.#key = key.slice();
    this.#contexts = { encrypt: null, decrypt: null, lib: libcrypto.lib };
    finalizer.register(this, this.#contexts, this);
  }

  /**
   * Tells whether libcrypto can be used: Deno with the ffi permission granted (only queried,
   * never prompted for) and a libcrypto that loads and passes a known-answer test. Never
   * throws.
   *
   * @example
   * ```ts
   * import { FfiRecordCipher } from "./record_cipher_ffi.ts";
   * import assert from "node:assert/strict";
   *
   * assert.equal(typeof FfiRecordCipher.available(), "boolean");
   * ```
   */
  static available(): boolean {
    try {
      return typeof loadLibcrypto() !== "string";
    } catch (error) {
      // Anything unexpected from the runtime means "not available", never a crash.
      loadFailure = `libcrypto load failed: ${error instanceof Error ? error.message : error}`;
      return false;
    }
  }

  /**
   * Why {@linkcode available} is `false` (for a log line), or `undefined` when it is `true`.
   *
   * @example
   * ```ts
   * import { FfiRecordCipher } from "./record_cipher_ffi.ts";
   * import assert from "node:assert/strict";
   *
   * assert.equal(FfiRecordCipher.unavailableReason() === undefined, FfiRecordCipher.available());
   * ```
   */
  static unavailableReason(): string | undefined {
    if (FfiRecordCipher.available()) return undefined;
    const result = loadFailure ?? loadLibcrypto();
    return typeof result === "string" ? result : undefined;
  }

  /**
   * Creates the cipher of one direction: one encryption and one decryption context, keyed once.
   *
   * @param key The 32-byte AES-256 key (copied; the caller's array is not kept).
   * @throws {RangeError} If the key is not 32 bytes.
   * @throws {FfiCipherError} `ffi_unavailable` if {@linkcode available} is `false`.
   */
  static create(key: Uint8Array): FfiRecordCipher {
    assertRecordKey(key);
    const libcrypto = loadLibcrypto();
    if (typeof libcrypto === "string") throw new FfiCipherError("ffi_unavailable", libcrypto);
    return new FfiRecordCipher(libcrypto, key);
  }

  /** `true` once {@linkcode close} ran; every operation then throws `ffi_cipher_closed`. */
  get closed(): boolean {
    return this.#contexts === undefined;
  }

  /**
   * Encrypts one record under the nonce `counter`.
   *
   * @returns `ciphertext ‖ tag`, a new array of `plaintext.length + 16` bytes.
   * @throws {RangeError} If the counter is invalid.
   * @throws {FfiCipherError} If the cipher is closed or libcrypto fails.
   */
  seal(counter: RecordCounter, plaintext: Uint8Array): Uint8Array {
    const out = new Uint8Array(plaintext.length + RECORD_TAG_BYTES);
    this.sealInto(counter, plaintext, out);
    return out;
  }

  /**
   * Encrypts one record into `out`: `ciphertext ‖ tag` in its first `plaintext.length + 16`
   * bytes. In place works: `plaintext` may be `out.subarray(0, n)` (same start); any other
   * overlap is refused.
   *
   * @param counter The record counter (nonce).
   * @param plaintext The record's plaintext.
   * @param out Where to write; at least `plaintext.length + 16` bytes.
   * @returns The number of bytes written, `plaintext.length + 16`.
   * @throws {RangeError} If `out` is too short, overlaps `plaintext` at another offset, the
   * plaintext is 2 GiB or more, or the counter is invalid.
   * @throws {FfiCipherError} If the cipher is closed or libcrypto fails.
   *
   * @example Seal in place after a 4-byte header
   * ```ts
   * import { FfiRecordCipher } from "./record_cipher_ffi.ts";
   * import assert from "node:assert/strict";
   *
   * if (FfiRecordCipher.available()) {
   *   using cipher = FfiRecordCipher.create(new Uint8Array(32));
   *   const record = new Uint8Array(4 + 3 + 16);
   *   record.set([1, 2, 3], 4);
   *   const n = cipher.sealInto(9, record.subarray(4, 7), record.subarray(4));
   *   assert.equal(n, 19);
   *   assert.deepEqual(record.subarray(4), cipher.seal(9, new Uint8Array([1, 2, 3])));
   * }
   * ```
   */
  sealInto(counter: RecordCounter, plaintext: Uint8Array, out: Uint8Array): number {
    const ctx = this.#context("encrypt");
    const length = plaintext.length;
    checkBuffers(plaintext, out, length + RECORD_TAG_BYTES);
    this.#ivAndUpdate("encrypt", ctx, counter, plaintext, length, out);
    const lib = this.#lib;
    const outLength = scratchOutLength;
    outLength[0] = -1;
    if (lib.EVP_EncryptFinal_ex(ctx, scratchFinalOut, outLength) !== 1 || outLength[0] !== 0) {
      this.#failed("EVP_EncryptFinal_ex");
    }
    const tag = out.subarray(length, length + RECORD_TAG_BYTES);
    if (lib.EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, RECORD_TAG_BYTES, tag) !== 1) {
      this.#failed("EVP_CTRL_GCM_GET_TAG");
    }
    return length + RECORD_TAG_BYTES;
  }

  /**
   * Decrypts `ciphertext ‖ tag` sealed under the nonce `counter`.
   *
   * @returns The plaintext, a new array of `sealed.length - 16` bytes.
   * @throws {RecordError} `record_auth_failed` if the tag does not verify; `record_too_small`
   * if `sealed` is shorter than a tag.
   * @throws {FfiCipherError} If the cipher is closed or libcrypto fails.
   */
  open(counter: RecordCounter, sealed: Uint8Array): Uint8Array {
    const out = new Uint8Array(Math.max(0, sealed.length - RECORD_TAG_BYTES));
    this.openInto(counter, sealed, out);
    return out;
  }

  /**
   * Decrypts `ciphertext ‖ tag` into the first `sealed.length - 16` bytes of `out`. In place
   * works (`out` starting where `sealed` starts). On a bad tag those bytes of `out` are zeroed
   * before the error is thrown, so unauthenticated plaintext never stays behind.
   *
   * @param counter The record counter (nonce).
   * @param sealed `ciphertext ‖ tag`.
   * @param out Where to write; at least `sealed.length - 16` bytes.
   * @returns The number of plaintext bytes written.
   * @throws {RecordError} `record_auth_failed` or `record_too_small` as {@linkcode open}.
   * @throws {RangeError} If `out` is too short or overlaps `sealed` at another offset.
   * @throws {FfiCipherError} If the cipher is closed or libcrypto fails.
   *
   * @example Open in place
   * ```ts
   * import { FfiRecordCipher } from "./record_cipher_ffi.ts";
   * import assert from "node:assert/strict";
   *
   * if (FfiRecordCipher.available()) {
   *   using cipher = FfiRecordCipher.create(new Uint8Array(32));
   *   const sealed = cipher.seal(3, new Uint8Array([5, 6]));
   *   assert.equal(cipher.openInto(3, sealed, sealed), 2);
   *   assert.deepEqual(sealed.subarray(0, 2), new Uint8Array([5, 6]));
   * }
   * ```
   */
  openInto(counter: RecordCounter, sealed: Uint8Array, out: Uint8Array): number {
    const ctx = this.#context("decrypt");
    if (sealed.length < RECORD_TAG_BYTES) {
      throw new RecordError(
        "record_too_small",
        `record of ${sealed.length} bytes is shorter than its ${RECORD_TAG_BYTES}-byte tag`,
      );
    }
    const length = sealed.length - RECORD_TAG_BYTES;
    checkBuffers(sealed, out, length);
    this.#ivAndUpdate("decrypt", ctx, counter, sealed, length, out);
    const lib = this.#lib;
    const outLength = scratchOutLength;
    // The tag follows the ciphertext, which decrypting (even in place) leaves untouched.
    const tag = sealed.subarray(length);
    if (lib.EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, RECORD_TAG_BYTES, tag) !== 1) {
      this.#failed("EVP_CTRL_GCM_SET_TAG");
    }
    outLength[0] = -1;
    if (lib.EVP_DecryptFinal_ex(ctx, scratchFinalOut, outLength) !== 1 || outLength[0] !== 0) {
      out.fill(0, 0, length);
      lib.ERR_clear_error();
      throw new RecordError("record_auth_failed", `record ${counter} failed authentication`);
    }
    return length;
  }

  /**
   * Frees the libcrypto contexts (wiping their key schedules) and the key copy. Idempotent;
   * every later operation throws `ffi_cipher_closed`.
   */
  close(): void {
    const contexts = this.#contexts;
    if (contexts === undefined) return;
    this.#contexts = undefined;
    this.#key?.fill(0);
    this.#key = undefined;
    finalizer.unregister(this);
    freeContexts(contexts);
  }

  /**
   * Frees the libcrypto contexts of an idle cipher; the next operation makes and keys its
   * context again (about a microsecond). A link's cipher serves one direction, so it keeps its
   * key copy for that; once both directions were used the key is wiped and this does nothing.
   *
   * @example
   * ```ts
   * import { FfiRecordCipher } from "./record_cipher_ffi.ts";
   * import assert from "node:assert/strict";
   *
   * if (FfiRecordCipher.available()) {
   *   using cipher = FfiRecordCipher.create(new Uint8Array(32));
   *   const first = cipher.seal(1, new Uint8Array([7]));
   *   cipher.trim();
   *   assert.deepEqual(cipher.seal(1, new Uint8Array([7])), first);
   * }
   * ```
   */
  trim(): void {
    const contexts = this.#contexts;
    if (contexts === undefined || this.#key === undefined) return;
    freeContexts(contexts);
  }

  /** Same as {@linkcode close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  /**
   * The context of one direction, created and keyed on first use; throws if closed.
   *
   * @throws {FfiCipherError} `ffi_cipher_closed`, or `ffi_cipher_failed` if libcrypto cannot
   * create or key the context.
   */
  #context(direction: "encrypt" | "decrypt"): Deno.PointerObject {
    const contexts = this.#contexts;
    if (contexts === undefined) {
      throw new FfiCipherError("ffi_cipher_closed", "record cipher is closed");
    }
    const existing = contexts[direction];
    if (existing !== null) return existing;
    const key = this.#key;
    if (key === undefined) throw new FfiCipherError("ffi_cipher_failed", "record key is gone");
    const lib = this.#lib;
    const ctx = lib.EVP_CIPHER_CTX_new();
    if (ctx === null) this.#failed("EVP_CIPHER_CTX_new");
    // The key schedule is computed here once; per record only the IV changes. libcrypto copies
    // the key. The IV length stays the default 12 bytes, which is the record nonce size.
    const init = direction === "encrypt" ? lib.EVP_EncryptInit_ex : lib.EVP_DecryptInit_ex;
    if (init(ctx, this.#libcrypto.aes256gcm, null, key, null) !== 1) {
      lib.EVP_CIPHER_CTX_free(ctx);
      this.#failed(`${direction} key setup`);
    }
    contexts[direction] = ctx;
    if (contexts.encrypt !== null && contexts.decrypt !== null) {
      key.fill(0);
      this.#key = undefined;
    }
    return ctx;
  }

  /**
   * Sets the record's IV on `ctx`, then runs the first `length` bytes of `input` through it
   * into `out` (both already checked to hold that many).
   */
  #ivAndUpdate(
    direction: "encrypt" | "decrypt",
    ctx: Deno.PointerObject,
    counter: RecordCounter,
    input: Uint8Array,
    length: number,
    out: Uint8Array,
  ): void {
    writeRecordNonce(counter, scratchIv);
    const lib = this.#lib;
    // One call site per libcrypto function (not a shared variable), so each stays a fast call.
    const encrypt = direction === "encrypt";
    const ivSet = encrypt
      ? lib.EVP_EncryptInit_ex(ctx, null, null, null, scratchIv)
      : lib.EVP_DecryptInit_ex(ctx, null, null, null, scratchIv);
    if (ivSet !== 1) this.#failed(`${direction} IV setup`);
    if (length === 0) return;
    scratchOutLength[0] = -1;
    const updated = encrypt
      ? lib.EVP_EncryptUpdate(ctx, out, scratchOutLength, input, length)
      : lib.EVP_DecryptUpdate(ctx, out, scratchOutLength, input, length);
    // GCM is a stream mode: all of the input comes out at once, never more.
    if (updated !== 1 || scratchOutLength[0] !== length) this.#failed(`${direction} update`);
  }

  #failed(call: string): never {
    this.#lib.ERR_clear_error();
    throw new FfiCipherError("ffi_cipher_failed", `libcrypto ${call} failed`);
  }
}

/**
 * Checks the sizes and aliasing of one operation before any pointer reaches libcrypto: the
 * whole `input` is read, the first `written` bytes of `out` are written.
 */
function checkBuffers(input: Uint8Array, out: Uint8Array, written: number): void {
  if (input.length > MAX_FFI_INPUT_BYTES) {
    throw new RangeError(`input of ${input.length} bytes above the ${MAX_FFI_INPUT_BYTES} limit`);
  }
  if (out.length < written) {
    throw new RangeError(`output of ${out.length} bytes is shorter than the ${written} needed`);
  }
  if (overlapsUnaligned(input, out.subarray(0, written))) {
    throw new RangeError("input and output overlap at different offsets");
  }
}
