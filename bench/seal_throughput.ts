/**
 * The sealing scenario: how many bytes per second (and records per second) the record ciphers
 * seal, for the small records of a 20 Hz game and for 16 KiB records — libcrypto through FFI
 * (the server default where allowed), `node:crypto` and WebCrypto, one record at a time
 * (into a reused buffer with `sealInto` where the cipher offers it, as the transport seals) —
 * beside `openssl speed -evp aes-256-gcm` on the same CPU (the hardware's ceiling, when
 * openssl is installed). `bench/seal_bench.ts` is the `deno bench`
 * micro-benchmark behind the cipher choice; this gives the figures the report prints.
 *
 * It runs each measurement for a bounded time and never asserts on speed.
 *
 * @module
 */

import {
  RECORD_TAG_BYTES,
  type RecordCipher,
  type RecordCipherKind,
} from "../shared/record_cipher.ts";
import { createRecordCipher } from "../shared/create_record_cipher.ts";

/** One sealing measurement. */
export interface SealFigure {
  /** The cipher class measured (`FfiRecordCipher`, `NodeRecordCipher`, …) or `openssl`. */
  readonly implementation: string;
  /** Plaintext bytes per record. */
  readonly recordBytes: number;
  /** Records sealed per second. */
  readonly recordsPerSecond: number;
  /** Plaintext megabytes (10^6) sealed per second. */
  readonly megabytesPerSecond: number;
}

/** Seals records back to back for about `durationMs`. */
async function measure(
  implementation: string,
  cipher: RecordCipher,
  recordBytes: number,
  durationMs: number,
): Promise<SealFigure> {
  const plaintext = new Uint8Array(recordBytes).fill(7);
  // Into one reused buffer where the cipher can, as the transport seals (`reuseOutput`).
  const out = new Uint8Array(recordBytes + RECORD_TAG_BYTES);
  const sealInto = cipher.sync ? cipher.sealInto?.bind(cipher) : undefined;
  let counter = 0;
  const start = performance.now();
  let elapsed = 0;
  while (elapsed < durationMs) {
    // Batches of 64 between clock reads, so the clock costs nothing measurable.
    for (let i = 0; i < 64; i++) {
      if (sealInto !== undefined) {
        sealInto(counter++, plaintext, out);
        continue;
      }
      const sealed = cipher.seal(counter++, plaintext);
      if (!(sealed instanceof Uint8Array)) await sealed;
    }
    elapsed = performance.now() - start;
  }
  const perSecond = counter * 1000 / elapsed;
  return {
    implementation,
    recordBytes,
    recordsPerSecond: Math.round(perSecond),
    megabytesPerSecond: Math.round(perSecond * recordBytes / 1e4) / 100,
  };
}

/**
 * Parses the result line of `openssl speed -evp aes-256-gcm -bytes N` (`AES-256-GCM  1234.56k`,
 * thousands of bytes per second).
 *
 * @param output The command's stdout.
 * @returns Bytes per second, or `undefined` if no result line is found.
 *
 * @example
 * ```ts
 * import { parseOpensslSpeed } from "./seal_throughput.ts";
 * import assert from "node:assert/strict";
 *
 * const out = "type             16384 bytes\nAES-256-GCM    4012345.67k\n";
 * assert.equal(parseOpensslSpeed(out), 4012345670);
 * ```
 */
export function parseOpensslSpeed(output: string): number | undefined {
  const match = /^aes-256-gcm\s+([\d.]+)k\s*$/im.exec(output);
  return match === null ? undefined : Math.round(Number(match[1]) * 1000);
}

/** Runs `openssl speed` for one record size; `undefined` if openssl is missing or fails. */
async function opensslFigure(recordBytes: number): Promise<SealFigure | undefined> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command("openssl", {
      args: ["speed", "-evp", "aes-256-gcm", "-bytes", String(recordBytes), "-seconds", "1"],
      stdout: "piped",
      stderr: "null",
    }).output();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
  const bytesPerSecond = out.success
    ? parseOpensslSpeed(new TextDecoder().decode(out.stdout))
    : undefined;
  if (bytesPerSecond === undefined) return undefined;
  return {
    implementation: "openssl",
    recordBytes,
    recordsPerSecond: Math.round(bytesPerSecond / recordBytes),
    megabytesPerSecond: Math.round(bytesPerSecond / 1e4) / 100,
  };
}

/**
 * Measures sealing throughput.
 *
 * @param durationMs Time per measurement.
 * @param recordSizes Plaintext sizes to measure.
 * @param withOpenssl Also run `openssl speed` (when installed).
 *
 * @example
 * ```ts
 * import { measureSealing } from "./seal_throughput.ts";
 * import assert from "node:assert/strict";
 *
 * const figures = await measureSealing(20, [64], false);
 * assert.ok(figures.some((f) => f.implementation === "WebCryptoRecordCipher"));
 * assert.ok(figures.every((f) => f.recordsPerSecond > 0));
 * ```
 */
export async function measureSealing(
  durationMs: number,
  recordSizes: readonly number[] = [64, 16 * 1024],
  withOpenssl = true,
): Promise<SealFigure[]> {
  const key = new Uint8Array(32).fill(0x42);
  // Each kind as createRecordCipher makes it; a kind that falls back (no FFI) is measured once.
  const ciphers = new Map<string, RecordCipher>();
  for (const prefer of ["ffi", "node", "webcrypto"] satisfies RecordCipherKind[]) {
    const cipher = await createRecordCipher(key, { prefer });
    if (!ciphers.has(cipher.constructor.name)) ciphers.set(cipher.constructor.name, cipher);
  }
  const figures: SealFigure[] = [];
  for (const size of recordSizes) {
    for (const [name, cipher] of ciphers) {
      figures.push(await measure(name, cipher, size, durationMs));
    }
    if (withOpenssl) {
      const openssl = await opensslFigure(size);
      if (openssl !== undefined) figures.push(openssl);
    }
  }
  return figures;
}
