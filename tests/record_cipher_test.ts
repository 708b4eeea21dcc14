import assert from "node:assert/strict";
import fc from "fast-check";
import {
  assertRecordKey,
  type RecordCipher,
  RecordError,
  WebCryptoRecordCipher,
  writeRecordNonce,
} from "../shared/record_cipher.ts";
import { createRecordCipher } from "../shared/create_record_cipher.ts";
import { HybridRecordCipher, NodeRecordCipher } from "../shared/record_cipher_node.ts";
import { FfiRecordCipher } from "../shared/record_cipher_ffi.ts";

async function seal(cipher: RecordCipher, counter: bigint | number, plaintext: Uint8Array) {
  return await cipher.seal(counter, plaintext);
}

async function open(cipher: RecordCipher, counter: bigint | number, sealed: Uint8Array) {
  return await cipher.open(counter, sealed);
}

async function allCiphers(key: Uint8Array): Promise<Record<string, RecordCipher>> {
  return {
    node: new NodeRecordCipher(key),
    webcrypto: await WebCryptoRecordCipher.create(key),
    hybrid: await HybridRecordCipher.create(key, 100),
  };
}

Deno.test("both ciphers match the AES-256-GCM reference vectors (NIST test cases 13 and 14)", async () => {
  const key = new Uint8Array(32);
  for (const cipher of Object.values(await allCiphers(key))) {
    assert.equal(
      (await seal(cipher, 0, new Uint8Array(0))).toHex(),
      "530f8afbc74536b9a963b4f1c4cb738b",
    );
    assert.equal(
      (await seal(cipher, 0, new Uint8Array(16))).toHex(),
      "cea7403d4d606b6e074ec5d3baf39d18" + "d0d1c8a799996bf0265b98b5d48ab919",
    );
  }
});

Deno.test("node:crypto and WebCrypto produce identical bytes and open each other's records", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.uint8Array({ minLength: 32, maxLength: 32 }),
      fc.oneof(fc.nat(), fc.bigInt({ min: 0n, max: (1n << 96n) - 1n })),
      fc.uint8Array({ maxLength: 3000 }),
      async (key, counter, plaintext) => {
        const ciphers = Object.values(await allCiphers(key));
        const sealed = await Promise.all(ciphers.map((c) => seal(c, counter, plaintext)));
        for (const s of sealed) assert.deepEqual(s, sealed[0]);
        assert.equal(sealed[0].length, plaintext.length + 16);
        for (const c of ciphers) assert.deepEqual(await open(c, counter, sealed[0]), plaintext);
      },
    ),
    { numRuns: 60 },
  );
});

Deno.test("a tampered, misnumbered or foreign record fails authentication in every cipher", async () => {
  const key = new Uint8Array(32).fill(5);
  const other = await allCiphers(new Uint8Array(32).fill(6));
  for (const [name, cipher] of Object.entries(await allCiphers(key))) {
    for (const size of [0, 50, 500]) {
      const sealed = await seal(cipher, 7, new Uint8Array(size).fill(1));
      for (const bit of [0, sealed.length * 4, sealed.length * 8 - 1]) {
        const tampered = sealed.slice();
        tampered[bit >> 3] ^= 1 << (bit & 7);
        await assert.rejects(open(cipher, 7, tampered), { code: "record_auth_failed" }, name);
      }
      await assert.rejects(open(cipher, 8, sealed), RecordError);
      await assert.rejects(open(cipher, 6, sealed), { code: "record_auth_failed" });
      await assert.rejects(open(other[name], 7, sealed), { code: "record_auth_failed" });
      assert.deepEqual(await open(cipher, 7, sealed), new Uint8Array(size).fill(1));
    }
    await assert.rejects(open(cipher, 0, new Uint8Array(15)), { code: "record_too_small" });
  }
});

Deno.test("the node cipher is synchronous and the hybrid one only for small records", async () => {
  const key = new Uint8Array(32).fill(2);
  const node = new NodeRecordCipher(key);
  assert.equal(node.sync, true);
  assert.ok(node.seal(0, new Uint8Array(5000)) instanceof Uint8Array);
  assert.throws(() => node.open(0, new Uint8Array(16)), { code: "record_auth_failed" });
  const hybrid = await HybridRecordCipher.create(key, 1000);
  assert.equal(hybrid.sync, false);
  const small = hybrid.seal(1, new Uint8Array(999));
  assert.ok(small instanceof Uint8Array);
  assert.ok(hybrid.open(1, small) instanceof Uint8Array);
  const large = hybrid.seal(2, new Uint8Array(1000));
  assert.ok(large instanceof Promise);
  const opened = hybrid.open(2, await large);
  assert.ok(opened instanceof Promise);
  assert.equal((await opened).length, 1000);
  await assert.rejects(HybridRecordCipher.create(key, -1), RangeError);
  await assert.rejects(HybridRecordCipher.create(key, 1.5), RangeError);
});

Deno.test("createRecordCipher gives the implementation asked for, libcrypto by default when it loads", async () => {
  const key = new Uint8Array(32);
  assert.ok(await createRecordCipher(key, { prefer: "node" }) instanceof NodeRecordCipher);
  assert.ok(
    await createRecordCipher(key, { prefer: "webcrypto" }) instanceof WebCryptoRecordCipher,
  );
  assert.ok(await createRecordCipher(key, { prefer: "hybrid" }) instanceof HybridRecordCipher);
  const fallback = FfiRecordCipher.available() ? FfiRecordCipher : HybridRecordCipher;
  assert.ok(await createRecordCipher(key) instanceof fallback);
});

Deno.test("a key that is not 32 bytes is refused by every constructor", async () => {
  for (const bad of [new Uint8Array(0), new Uint8Array(16), new Uint8Array(33)]) {
    assert.throws(() => assertRecordKey(bad), RangeError);
    assert.throws(() => new NodeRecordCipher(bad), RangeError);
    await assert.rejects(WebCryptoRecordCipher.create(bad), RangeError);
    await assert.rejects(HybridRecordCipher.create(bad), RangeError);
    await assert.rejects(createRecordCipher(bad), RangeError);
  }
  const notBytes = [1, 2, 3] as unknown as Uint8Array;
  assert.throws(() => assertRecordKey(notBytes), TypeError);
});

Deno.test("the nonce is the counter as 12 big-endian bytes and bad counters are refused", async () => {
  const out = new Uint8Array(12);
  assert.equal(writeRecordNonce(0, out).toHex(), "000000000000000000000000");
  assert.equal(writeRecordNonce(1, out).toHex(), "000000000000000000000001");
  assert.equal(writeRecordNonce(2 ** 32, out).toHex(), "000000000000000100000000");
  assert.equal(
    writeRecordNonce(Number.MAX_SAFE_INTEGER, out).toHex(),
    "00000000001fffffffffffff",
  );
  assert.equal(writeRecordNonce((1n << 96n) - 1n, out).toHex(), "ffffffffffffffffffffffff");
  assert.equal(
    writeRecordNonce(0x0102030405060708090a0b0cn, out).toHex(),
    "0102030405060708090a0b0c",
  );
  for (const bad of [-1, 1.5, Number.NaN, 2 ** 53, Infinity]) {
    assert.throws(() => writeRecordNonce(bad, out), RangeError);
  }
  assert.throws(() => writeRecordNonce(-1n, out), RangeError);
  assert.throws(() => writeRecordNonce(1n << 96n, out), RangeError);
  const node = new NodeRecordCipher(new Uint8Array(32));
  assert.throws(() => node.seal(-1, new Uint8Array(1)), RangeError);
  const web = await WebCryptoRecordCipher.create(new Uint8Array(32));
  await assert.rejects(web.seal(1.5, new Uint8Array(1)), RangeError);
  // A number and a bigint with the same value are the same nonce.
  assert.deepEqual(node.seal(2 ** 40, new Uint8Array(3)), node.seal(1n << 40n, new Uint8Array(3)));
});
