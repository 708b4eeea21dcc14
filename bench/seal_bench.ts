/**
 * Micro-benchmark of the record ciphers: one seal plus one open per iteration, for record
 * plaintexts of 64 B, 256 B, 1 KiB, 4 KiB and 16 KiB, with libcrypto through FFI, `node:crypto`,
 * WebCrypto and the hybrid of the last two. Run with `deno bench --allow-ffi
 * bench/seal_bench.ts` (without `--allow-ffi` the "ffi" row measures its fallback); the result
 * decides the server's default cipher (`createRecordCipher`'s `prefer`). Synchronous ciphers
 * are measured with a synchronous function, so no promise per iteration blurs them. Never part
 * of a test run, never asserts on speed.
 *
 * @module
 */

import type { RecordCipher, RecordCipherKind } from "../shared/record_cipher.ts";
import { createRecordCipher } from "../shared/create_record_cipher.ts";

const key = new Uint8Array(32).fill(0x42);
const kinds: readonly RecordCipherKind[] = ["ffi", "node", "webcrypto", "hybrid"];
const ciphers = new Map<RecordCipherKind, RecordCipher>();
for (const kind of kinds) ciphers.set(kind, await createRecordCipher(key, { prefer: kind }));

for (const size of [64, 256, 1024, 4 * 1024, 16 * 1024]) {
  const plaintext = new Uint8Array(size).fill(7);
  const label = size < 1024 ? `${size} B` : `${size / 1024} KiB`;
  for (const [kind, cipher] of ciphers) {
    let counter = 0;
    Deno.bench({
      name: `seal+open ${label} ${kind}`,
      group: `seal+open ${label}`,
      baseline: kind === "node",
      fn: cipher.sync
        ? () => {
          const n = counter++;
          cipher.open(n, cipher.seal(n, plaintext) as Uint8Array);
        }
        : async () => {
          const n = counter++;
          const sealed = cipher.seal(n, plaintext);
          const opened = cipher.open(n, sealed instanceof Uint8Array ? sealed : await sealed);
          if (!(opened instanceof Uint8Array)) await opened;
        },
    });
  }
}
