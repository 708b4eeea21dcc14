import assert from "node:assert/strict";
import fc from "fast-check";
import { type RecordCipher, RecordError, WebCryptoRecordCipher } from "../shared/record_cipher.ts";
import { createRecordCipher } from "../shared/create_record_cipher.ts";
import { FfiCipherError, FfiRecordCipher } from "../shared/record_cipher_ffi.ts";
import { HybridRecordCipher, NodeRecordCipher } from "../shared/record_cipher_node.ts";
import { REPO_ROOT, runDeno } from "./_process.ts";

const ffi = FfiRecordCipher.available();
const ignore = !ffi;
const ROOT = new URL("../", import.meta.url);

async function allCiphers(key: Uint8Array): Promise<Record<string, RecordCipher>> {
  return {
    ffi: FfiRecordCipher.create(key),
    node: new NodeRecordCipher(key),
    webcrypto: await WebCryptoRecordCipher.create(key),
  };
}

function closeAll(ciphers: Record<string, RecordCipher>): void {
  for (const cipher of Object.values(ciphers)) {
    if (cipher instanceof FfiRecordCipher) cipher.close();
  }
}

Deno.test({
  name: "the ffi cipher matches the AES-256-GCM reference vectors (NIST test cases 13 and 14)",
  ignore,
  fn() {
    using cipher = FfiRecordCipher.create(new Uint8Array(32));
    assert.equal(cipher.seal(0, new Uint8Array(0)).toHex(), "530f8afbc74536b9a963b4f1c4cb738b");
    assert.equal(
      cipher.seal(0, new Uint8Array(16)).toHex(),
      "cea7403d4d606b6e074ec5d3baf39d18" + "d0d1c8a799996bf0265b98b5d48ab919",
    );
    assert.equal(cipher.open(0, Uint8Array.fromHex("530f8afbc74536b9a963b4f1c4cb738b")).length, 0);
    const sealed = Uint8Array.fromHex(
      "cea7403d4d606b6e074ec5d3baf39d18" + "d0d1c8a799996bf0265b98b5d48ab919",
    );
    assert.deepEqual(cipher.open(0, sealed), new Uint8Array(16));
  },
});

Deno.test({
  name: "ffi, node:crypto and WebCrypto seal identical bytes and open each other's records",
  ignore,
  async fn() {
    const plaintexts = fc.oneof(
      { weight: 4, arbitrary: fc.uint8Array({ maxLength: 3000 }) },
      { weight: 1, arbitrary: fc.constant(new Uint8Array(0)) },
      {
        weight: 1,
        arbitrary: fc.integer({ min: 0, max: 255 }).map((seed) => {
          const big = new Uint8Array(64 * 1024);
          for (let i = 0; i < big.length; i++) big[i] = (i * 31 + seed) & 0xff;
          return big;
        }),
      },
    );
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.oneof(fc.nat(), fc.bigInt({ min: 0n, max: (1n << 96n) - 1n })),
        plaintexts,
        fc.nat({ max: 7 }),
        async (key, counter, plaintext, offset) => {
          // The plaintext as a view at an offset, as the record layer passes it.
          const backing = new Uint8Array(offset + plaintext.length + 3);
          backing.set(plaintext, offset);
          const view = backing.subarray(offset, offset + plaintext.length);
          const ciphers = await allCiphers(key);
          try {
            const sealed: Uint8Array[] = [];
            for (const cipher of Object.values(ciphers)) {
              sealed.push(await cipher.seal(counter, view));
            }
            for (const s of sealed) assert.deepEqual(s, sealed[0]);
            assert.equal(sealed[0].length, plaintext.length + 16);
            for (const s of sealed) {
              for (const cipher of Object.values(ciphers)) {
                assert.deepEqual(await cipher.open(counter, s), plaintext);
              }
            }
          } finally {
            closeAll(ciphers);
          }
        },
      ),
      { numRuns: 60 },
    );
  },
});

Deno.test({
  name: "a tampered, misnumbered or foreign record fails authentication in the ffi cipher",
  ignore,
  async fn() {
    using cipher = FfiRecordCipher.create(new Uint8Array(32).fill(5));
    using other = FfiRecordCipher.create(new Uint8Array(32).fill(6));
    const node = new NodeRecordCipher(new Uint8Array(32).fill(5));
    for (const size of [0, 1, 50, 500, 64 * 1024]) {
      const plaintext = new Uint8Array(size).fill(1);
      const sealed = cipher.seal(7n, plaintext);
      for (const bit of [0, sealed.length * 4, sealed.length * 8 - 1]) {
        const tampered = sealed.slice();
        tampered[bit >> 3] ^= 1 << (bit & 7);
        assert.throws(() => cipher.open(7, tampered), { code: "record_auth_failed" });
        assert.throws(() => node.open(7, tampered), { code: "record_auth_failed" });
      }
      assert.throws(() => cipher.open(8, sealed), RecordError);
      assert.throws(() => cipher.open(6, sealed), { code: "record_auth_failed" });
      assert.throws(() => other.open(7, sealed), { code: "record_auth_failed" });
      await assert.rejects(
        (await WebCryptoRecordCipher.create(new Uint8Array(32).fill(6))).open(7, sealed),
        { code: "record_auth_failed" },
      );
      // A failure leaves the cipher usable for the next record.
      assert.deepEqual(cipher.open(7, sealed), plaintext);
    }
    assert.throws(() => cipher.open(0, new Uint8Array(15)), { code: "record_too_small" });
    assert.throws(() => cipher.open(0, new Uint8Array(0)), { code: "record_too_small" });
  },
});

Deno.test({
  name: "a failed open zeroes the plaintext it wrote into the caller's buffer",
  ignore,
  fn() {
    using cipher = FfiRecordCipher.create(new Uint8Array(32).fill(8));
    const sealed = cipher.seal(1, new Uint8Array(40).fill(0xaa));
    sealed[sealed.length - 1] ^= 1;
    const out = new Uint8Array(40).fill(0x55);
    assert.throws(() => cipher.openInto(1, sealed, out), { code: "record_auth_failed" });
    assert.deepEqual(out, new Uint8Array(40));
  },
});

Deno.test({
  name: "sealInto and openInto work in place and into larger buffers",
  ignore,
  fn() {
    using cipher = FfiRecordCipher.create(new Uint8Array(32).fill(3));
    const plaintext = new Uint8Array(100).map((_, i) => i);
    const expected = cipher.seal(42, plaintext);

    // In place, after a 4-byte header, as a record layer would.
    const record = new Uint8Array(4 + 100 + 16 + 8).fill(0xee);
    record.set(plaintext, 4);
    assert.equal(cipher.sealInto(42, record.subarray(4, 104), record.subarray(4)), 116);
    assert.deepEqual(record.subarray(4, 120), expected);
    assert.deepEqual(record.subarray(0, 4), new Uint8Array(4).fill(0xee));
    assert.deepEqual(record.subarray(120), new Uint8Array(8).fill(0xee));

    // Opened in place: the plaintext lands where the ciphertext was; the tag is left alone.
    assert.equal(cipher.openInto(42, record.subarray(4, 120), record.subarray(4)), 100);
    assert.deepEqual(record.subarray(4, 104), plaintext);

    // Into a separate, larger buffer: bytes past the result are untouched.
    const out = new Uint8Array(200).fill(9);
    assert.equal(cipher.sealInto(42, plaintext, out), 116);
    assert.deepEqual(out.subarray(0, 116), expected);
    assert.deepEqual(out.subarray(116), new Uint8Array(84).fill(9));
    const opened = new Uint8Array(150).fill(9);
    assert.equal(cipher.openInto(42, expected, opened), 100);
    assert.deepEqual(opened.subarray(0, 100), plaintext);
    assert.deepEqual(opened.subarray(100), new Uint8Array(50).fill(9));

    // Empty records.
    const empty = new Uint8Array(16);
    assert.equal(cipher.sealInto(0, new Uint8Array(0), empty), 16);
    assert.equal(cipher.openInto(0, empty, new Uint8Array(0)), 0);
  },
});

Deno.test({
  name: "buffers too short or overlapping at another offset are refused before libcrypto runs",
  ignore,
  fn() {
    using cipher = FfiRecordCipher.create(new Uint8Array(32).fill(4));
    const plaintext = new Uint8Array(10);
    assert.throws(() => cipher.sealInto(0, plaintext, new Uint8Array(25)), RangeError);
    const sealed = cipher.seal(0, plaintext);
    assert.throws(() => cipher.openInto(0, sealed, new Uint8Array(9)), RangeError);

    const shared = new Uint8Array(64);
    assert.throws(
      () => cipher.sealInto(0, shared.subarray(0, 10), shared.subarray(1)),
      /overlap/,
    );
    assert.throws(
      () => cipher.sealInto(0, shared.subarray(8, 18), shared.subarray(0, 26)),
      /overlap/,
    );
    // Disjoint parts of one buffer are fine.
    assert.equal(cipher.sealInto(0, shared.subarray(0, 10), shared.subarray(10)), 26);
    shared.set(sealed, 30);
    assert.throws(
      () => cipher.openInto(0, shared.subarray(30, 56), shared.subarray(25)),
      /overlap/,
    );
    assert.equal(cipher.openInto(0, shared.subarray(30, 56), shared.subarray(0, 10)), 10);
    assert.deepEqual(shared.subarray(0, 10), plaintext);
  },
});

Deno.test({
  name: "bad keys and counters are refused and a closed cipher refuses every operation",
  ignore,
  fn() {
    for (const bad of [new Uint8Array(0), new Uint8Array(16), new Uint8Array(33)]) {
      assert.throws(() => FfiRecordCipher.create(bad), RangeError);
    }
    const cipher = FfiRecordCipher.create(new Uint8Array(32));
    for (const counter of [-1, 1.5, 2 ** 53, -1n, 1n << 96n]) {
      assert.throws(() => cipher.seal(counter, new Uint8Array(1)), RangeError);
    }
    assert.deepEqual(
      cipher.seal(2 ** 40, new Uint8Array(3)),
      cipher.seal(1n << 40n, new Uint8Array(3)),
    );
    const sealed = cipher.seal(0, new Uint8Array(3));
    assert.equal(cipher.closed, false);
    cipher.close();
    assert.equal(cipher.closed, true);
    cipher.close(); // idempotent
    cipher[Symbol.dispose]();
    assert.throws(() => cipher.seal(0, new Uint8Array(3)), { code: "ffi_cipher_closed" });
    assert.throws(() => cipher.open(0, sealed), FfiCipherError);
    assert.throws(() => cipher.sealInto(0, new Uint8Array(0), new Uint8Array(16)), {
      code: "ffi_cipher_closed",
    });
    assert.throws(() => cipher.openInto(0, sealed, new Uint8Array(3)), {
      code: "ffi_cipher_closed",
    });
  },
});

Deno.test({
  name: "createRecordCipher picks the ffi cipher by default and when asked, others when asked",
  ignore,
  async fn() {
    const key = new Uint8Array(32).fill(1);
    const byDefault = await createRecordCipher(key);
    const asked = await createRecordCipher(key, { prefer: "ffi" });
    assert.ok(byDefault instanceof FfiRecordCipher);
    assert.ok(asked instanceof FfiRecordCipher);
    assert.equal(byDefault.sync, true);
    assert.ok(await createRecordCipher(key, { prefer: "node" }) instanceof NodeRecordCipher);
    assert.ok(await createRecordCipher(key, { prefer: "hybrid" }) instanceof HybridRecordCipher);
    assert.ok(
      await createRecordCipher(key, { prefer: "webcrypto" }) instanceof WebCryptoRecordCipher,
    );
    byDefault.close();
    asked.close();
    assert.equal(FfiRecordCipher.unavailableReason(), undefined);
  },
});

Deno.test("without --allow-ffi the default cipher falls back to the hybrid one and still seals", async () => {
  const script = await Deno.makeTempFile({ suffix: ".ts" });
  try {
    const cipherModule = new URL("shared/record_cipher.ts", ROOT).href;
    const createModule = new URL("shared/create_record_cipher.ts", ROOT).href;
    const ffiModule = new URL("shared/record_cipher_ffi.ts", ROOT).href;
    await Deno.writeTextFile(
      script,
      `import { WebCryptoRecordCipher } from "${cipherModule}";
import { createRecordCipher } from "${createModule}";
import { FfiRecordCipher } from "${ffiModule}";
const key = new Uint8Array(32).fill(1);
const cipher = await createRecordCipher(key);
const asked = await createRecordCipher(key, { prefer: "ffi" });
const sealed = await cipher.seal(5, new Uint8Array([1, 2, 3]));
const web = await WebCryptoRecordCipher.create(key);
const same = (await web.seal(5, new Uint8Array([1, 2, 3]))).toHex() === sealed.toHex();
console.log(JSON.stringify({
  kind: cipher.constructor.name,
  askedKind: asked.constructor.name,
  available: FfiRecordCipher.available(),
  reason: FfiRecordCipher.unavailableReason(),
  same,
  opened: Array.from(await cipher.open(5, sealed)),
}));
`,
    );
    const run = await runDeno(["run", "--allow-read", script], { cwd: REPO_ROOT });
    assert.equal(run.code, 0, run.stderr);
    const result = JSON.parse(run.stdout);
    assert.equal(result.available, false);
    assert.match(result.reason, /ffi permission/);
    assert.notEqual(result.kind, "FfiRecordCipher");
    assert.equal(result.kind, "HybridRecordCipher");
    assert.equal(result.askedKind, "HybridRecordCipher");
    assert.equal(result.same, true);
    assert.deepEqual(result.opened, [1, 2, 3]);
  } finally {
    await Deno.remove(script);
  }
});
