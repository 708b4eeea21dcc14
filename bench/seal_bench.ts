/**
 * Micro-benchmark of the record ciphers: one seal plus one open per iteration, for record
 * plaintexts of 64 B, 1 KiB and 16 KiB, with `node:crypto`, WebCrypto and the hybrid of both.
 * Run with `deno bench bench/seal_bench.ts`; the result decides the server's default cipher
 * (`createRecordCipher`'s `prefer`). Never part of a test run, never asserts on speed.
 *
 * @module
 */

import {
  createRecordCipher,
  type RecordCipher,
  type RecordCipherKind,
} from "../shared/record_cipher.ts";

const key = new Uint8Array(32).fill(0x42);
const kinds: readonly RecordCipherKind[] = ["node", "webcrypto", "hybrid"];
const ciphers = new Map<RecordCipherKind, RecordCipher>();
for (const kind of kinds) ciphers.set(kind, await createRecordCipher(key, { prefer: kind }));

for (const size of [64, 1024, 16 * 1024]) {
  const plaintext = new Uint8Array(size).fill(7);
  const label = size < 1024 ? `${size} B` : `${size / 1024} KiB`;
  for (const [kind, cipher] of ciphers) {
    let counter = 0;
    Deno.bench({
      name: `seal+open ${label} ${kind}`,
      group: `seal+open ${label}`,
      baseline: kind === "node",
      async fn() {
        const n = counter++;
        const sealed = cipher.seal(n, plaintext);
        const opened = cipher.open(n, sealed instanceof Uint8Array ? sealed : await sealed);
        if (!(opened instanceof Uint8Array)) await opened;
      },
    });
  }
}
