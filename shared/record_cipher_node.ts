/**
 * The server-side record ciphers: AES-256-GCM on `node:crypto`, synchronous, so sealing or
 * opening a record costs no promise ({@linkcode NodeRecordCipher}), and
 * {@linkcode HybridRecordCipher}, which uses it for small records and WebCrypto for large ones.
 * Both produce exactly the bytes of `WebCryptoRecordCipher` for the same key, counter and
 * plaintext (a test proves it), which is what makes mixing them per record safe.
 *
 * This module must never keep a counter, never log or expose key bytes, and is the only
 * record-cipher module allowed to import `node:crypto` (portable code uses
 * `record_cipher.ts`).
 *
 * @module
 */

import { createCipheriv, createDecipheriv, createSecretKey, type KeyObject } from "node:crypto";
import {
  assertRecordKey,
  RECORD_NONCE_BYTES,
  RECORD_TAG_BYTES,
  type RecordCipher,
  type RecordCounter,
  RecordError,
  type SyncRecordCipher,
  WebCryptoRecordCipher,
  writeRecordNonce,
} from "./record_cipher.ts";

/**
 * AES-256-GCM record cipher on `node:crypto` (Deno, Node). Synchronous.
 *
 * @example Seal and open one record
 * ```ts
 * import { NodeRecordCipher } from "./record_cipher_node.ts";
 * import assert from "node:assert/strict";
 *
 * const cipher = new NodeRecordCipher(new Uint8Array(32).fill(7));
 * const sealed = cipher.seal(0, new TextEncoder().encode("hi"));
 * assert.equal(sealed.length, 2 + 16);
 * assert.equal(new TextDecoder().decode(cipher.open(0, sealed)), "hi");
 * assert.throws(() => cipher.open(1, sealed), { code: "record_auth_failed" });
 * ```
 */
export class NodeRecordCipher implements SyncRecordCipher {
  /** Always `true`: operations return values, not promises. */
  readonly sync = true as const;
  readonly #key: KeyObject;
  /** Reused nonce buffer: node:crypto copies the IV when a cipher is created. */
  readonly #iv = new Uint8Array(RECORD_NONCE_BYTES);

  /**
   * @param key The 32-byte AES-256 key of one direction (copied into a KeyObject).
   * @throws {RangeError} If the key is not 32 bytes.
   */
  constructor(key: Uint8Array) {
    assertRecordKey(key);
    this.#key = createSecretKey(key);
  }

  /**
   * Encrypts one record under the nonce `counter`.
   *
   * @returns `ciphertext ‖ tag`, a new array of `plaintext.length + 16` bytes.
   */
  seal(counter: RecordCounter, plaintext: Uint8Array): Uint8Array {
    const cipher = createCipheriv("aes-256-gcm", this.#key, writeRecordNonce(counter, this.#iv));
    const out = new Uint8Array(plaintext.length + RECORD_TAG_BYTES);
    const body = cipher.update(plaintext);
    out.set(body, 0);
    // GCM is a stream mode: final() emits nothing, but it is what computes the tag.
    const tail = cipher.final();
    out.set(tail, body.length);
    out.set(cipher.getAuthTag(), plaintext.length);
    return out;
  }

  /**
   * Decrypts `ciphertext ‖ tag` sealed under the nonce `counter`.
   *
   * @throws {RecordError} `record_auth_failed` if the tag does not verify; `record_too_small`
   * if `sealed` is shorter than a tag.
   */
  open(counter: RecordCounter, sealed: Uint8Array): Uint8Array {
    if (sealed.length < RECORD_TAG_BYTES) {
      throw new RecordError(
        "record_too_small",
        `record of ${sealed.length} bytes is shorter than its ${RECORD_TAG_BYTES}-byte tag`,
      );
    }
    const textLength = sealed.length - RECORD_TAG_BYTES;
    const decipher = createDecipheriv(
      "aes-256-gcm",
      this.#key,
      writeRecordNonce(counter, this.#iv),
    );
    decipher.setAuthTag(sealed.subarray(textLength));
    const out = new Uint8Array(textLength);
    const body = decipher.update(sealed.subarray(0, textLength));
    out.set(body, 0);
    try {
      out.set(decipher.final(), body.length);
    } catch (cause) {
      // node:crypto throws a plain Error on a bad tag; wipe the unauthenticated plaintext.
      out.fill(0);
      throw new RecordError("record_auth_failed", `record ${counter} failed authentication`, {
        cause,
      });
    }
    return out;
  }
}

/**
 * Default size from which {@linkcode HybridRecordCipher} uses WebCrypto: `bench/seal_bench.ts`
 * measured the two about even near 1 KiB, `node:crypto` ahead below, WebCrypto ahead above.
 *
 * @example
 * ```ts
 * import { HYBRID_WEBCRYPTO_FROM_BYTES, HybridRecordCipher } from "./record_cipher_node.ts";
 * import assert from "node:assert/strict";
 *
 * // With the default threshold, a record just below it is sealed synchronously, one at it not.
 * const cipher = await HybridRecordCipher.create(new Uint8Array(32).fill(1));
 * assert.ok(cipher.seal(0, new Uint8Array(HYBRID_WEBCRYPTO_FROM_BYTES - 1)) instanceof Uint8Array);
 * const sealed = cipher.seal(1, new Uint8Array(HYBRID_WEBCRYPTO_FROM_BYTES));
 * assert.ok(sealed instanceof Promise);
 * await sealed;
 * ```
 */
export const HYBRID_WEBCRYPTO_FROM_BYTES = 1024;

/**
 * The server default: seals and opens records smaller than a threshold synchronously with
 * `node:crypto` (no promise) and larger ones with WebCrypto, whichever measured faster for that
 * size. Both give identical bytes, so the peer cannot tell and may use any implementation.
 *
 * @example Small records are synchronous, large ones are not
 * ```ts
 * import { HybridRecordCipher } from "./record_cipher_node.ts";
 * import assert from "node:assert/strict";
 *
 * const cipher = await HybridRecordCipher.create(new Uint8Array(32).fill(3));
 * const small = cipher.seal(0, new Uint8Array(10));
 * assert.ok(small instanceof Uint8Array);
 * const large = cipher.seal(1, new Uint8Array(4096));
 * assert.ok(large instanceof Promise);
 * assert.equal((await cipher.open(1, await large)).length, 4096);
 * assert.equal((cipher.open(0, small) as Uint8Array).length, 10);
 * ```
 */
export class HybridRecordCipher implements RecordCipher {
  /** `false`: large records return promises. */
  readonly sync = false as const;
  readonly #node: NodeRecordCipher;
  readonly #web: WebCryptoRecordCipher;
  readonly #webFromBytes: number;

  private constructor(node: NodeRecordCipher, web: WebCryptoRecordCipher, webFromBytes: number) {
    this.#node = node;
    this.#web = web;
    this.#webFromBytes = webFromBytes;
  }

  /**
   * Creates both halves for one key.
   *
   * @param key The 32-byte AES-256 key of one direction.
   * @param webCryptoFromBytes Plaintext size from which WebCrypto is used.
   * @throws {RangeError} If the key is not 32 bytes or the threshold is negative.
   */
  static async create(
    key: Uint8Array,
    webCryptoFromBytes: number = HYBRID_WEBCRYPTO_FROM_BYTES,
  ): Promise<HybridRecordCipher> {
    if (!Number.isInteger(webCryptoFromBytes) || webCryptoFromBytes < 0) {
      throw new RangeError(
        `webCryptoFromBytes must be a non-negative integer, got ${webCryptoFromBytes}`,
      );
    }
    const node = new NodeRecordCipher(key);
    return new HybridRecordCipher(
      node,
      await WebCryptoRecordCipher.create(key),
      webCryptoFromBytes,
    );
  }

  /** Encrypts one record, synchronously if it is small. */
  seal(counter: RecordCounter, plaintext: Uint8Array): Uint8Array | Promise<Uint8Array> {
    return plaintext.length < this.#webFromBytes
      ? this.#node.seal(counter, plaintext)
      : this.#web.seal(counter, plaintext);
  }

  /** Decrypts one record, synchronously if it is small. */
  open(counter: RecordCounter, sealed: Uint8Array): Uint8Array | Promise<Uint8Array> {
    return sealed.length - RECORD_TAG_BYTES < this.#webFromBytes
      ? this.#node.open(counter, sealed)
      : this.#web.open(counter, sealed);
  }
}
