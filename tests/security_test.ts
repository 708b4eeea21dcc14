import assert from "node:assert/strict";
import fc from "fast-check";
import {
  asBufferSource,
  Base64Error,
  constantTimeEqual,
  decrypt,
  DecryptError,
  encrypt,
  fromBase64Url,
  generateAesKeyBytes,
  importAesKey,
  KeyError,
  randomPassphrase,
  sha256,
  toBase64Url,
} from "../shared/security.ts";

const text = (s: string) => new TextEncoder().encode(s);
const newKey = () => importAesKey(generateAesKeyBytes());

async function assertDecryptFails(promise: Promise<unknown>): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof DecryptError, `expected DecryptError, got ${String(err)}`);
    assert.equal(err.code, "decrypt_failed");
    return true;
  });
}

Deno.test("a sealed message opens with the same key, with and without AAD", async () => {
  const key = await newKey();
  const aad = text("context");
  for (
    const plain of [new Uint8Array(0), text("x"), crypto.getRandomValues(new Uint8Array(5000))]
  ) {
    const sealed = await encrypt(key, plain);
    assert.equal(sealed.length, 12 + plain.length + 16);
    assert.deepEqual(await decrypt(key, sealed), plain);
    assert.deepEqual(await decrypt(key, await encrypt(key, plain, aad), aad), plain);
  }
});

Deno.test("sealing the same plaintext twice uses different nonces", async () => {
  const key = await newKey();
  const a = await encrypt(key, text("same"));
  const b = await encrypt(key, text("same"));
  assert.notDeepEqual(a.subarray(0, 12), b.subarray(0, 12));
  assert.notDeepEqual(a, b);
});

Deno.test("sealed data shorter than nonce plus tag is a DecryptError", async () => {
  const key = await newKey();
  for (const length of [0, 1, 12, 27]) {
    await assertDecryptFails(decrypt(key, new Uint8Array(length)));
  }
});

Deno.test("any flipped bit in nonce, ciphertext or tag is a DecryptError", async () => {
  const key = await newKey();
  const sealed = await encrypt(key, text("attack at dawn"));
  for (let i = 0; i < sealed.length; i++) {
    const tampered = sealed.slice();
    tampered[i] ^= 1 << (i % 8);
    await assertDecryptFails(decrypt(key, tampered));
  }
});

Deno.test("a truncated or extended sealed message is a DecryptError", async () => {
  const key = await newKey();
  const sealed = await encrypt(key, text("attack at dawn"));
  await assertDecryptFails(decrypt(key, sealed.subarray(0, sealed.length - 1)));
  const longer = new Uint8Array(sealed.length + 1);
  longer.set(sealed);
  await assertDecryptFails(decrypt(key, longer));
});

Deno.test("the wrong key is a DecryptError", async () => {
  const sealed = await encrypt(await newKey(), text("secret"));
  await assertDecryptFails(decrypt(await newKey(), sealed));
});

Deno.test("wrong, missing or unexpected AAD is a DecryptError", async () => {
  const key = await newKey();
  const sealed = await encrypt(key, text("secret"), text("ticket"));
  await assertDecryptFails(decrypt(key, sealed, text("ticket2")));
  await assertDecryptFails(decrypt(key, sealed));
  await assertDecryptFails(decrypt(key, await encrypt(key, text("secret")), text("ticket")));
});

Deno.test("a key of another algorithm is a DecryptError, not a DOMException", async () => {
  const hmac = await crypto.subtle.generateKey({ name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
  ]);
  await assertDecryptFails(decrypt(hmac, new Uint8Array(64)));
});

Deno.test("an AES key of any length but 32 bytes is refused naming the length", async () => {
  for (const length of [0, 16, 24, 31, 33, 64]) {
    await assert.rejects(importAesKey(new Uint8Array(length)), (err: unknown) => {
      assert.ok(err instanceof KeyError);
      assert.equal(err.code, "key_invalid");
      assert.match(err.message, new RegExp(`got ${length}$`));
      return true;
    });
  }
  const key = await importAesKey(new Uint8Array(32));
  assert.equal(key.extractable, false);
  assert.deepEqual(key.usages.toSorted(), ["decrypt", "encrypt"]);
});

Deno.test("generated AES keys are 32 random bytes", () => {
  const a = generateAesKeyBytes();
  assert.equal(a.length, 32);
  assert.notDeepEqual(a, generateAesKeyBytes());
});

Deno.test("base64url matches RFC 4648 vectors without padding", () => {
  const vectors: [string, string][] = [
    ["", ""],
    ["f", "Zg"],
    ["fo", "Zm8"],
    ["foo", "Zm9v"],
    ["foob", "Zm9vYg"],
    ["fooba", "Zm9vYmE"],
    ["foobar", "Zm9vYmFy"],
  ];
  for (const [plain, encoded] of vectors) {
    assert.equal(toBase64Url(text(plain)), encoded);
    assert.deepEqual(fromBase64Url(encoded), text(plain));
  }
  assert.equal(toBase64Url(new Uint8Array([0xfb, 0xef, 0xff])), "--__");
});

Deno.test("base64url round-trips any bytes", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 100 }), (bytes) => {
      assert.deepEqual(fromBase64Url(toBase64Url(bytes)), bytes);
    }),
  );
});

Deno.test("non-canonical or foreign base64 text is a Base64Error", () => {
  const bad = [
    "Zg==", // padding
    "Zm8=",
    "Zm9v YmFy", // whitespace
    " Zg",
    "Zg\n",
    "+/8", // standard alphabet
    "ab/c",
    "Z", // a single trailing character cannot encode a byte
    "Zh", // non-zero trailing bits: only "Zg" encodes "f"
    "Zm9", // non-zero trailing bits
    "é",
    "Zg$",
  ];
  for (const input of bad) {
    assert.throws(() => fromBase64Url(input), (err: unknown) => {
      assert.ok(err instanceof Base64Error, `${JSON.stringify(input)} gave ${String(err)}`);
      assert.equal(err.code, "base64_invalid");
      return true;
    });
  }
});

Deno.test("random passphrases have the asked length and bad lengths are a RangeError", () => {
  assert.equal(randomPassphrase().length, 32);
  assert.equal(randomPassphrase(1).length, 1);
  assert.equal(randomPassphrase(65536).length, 65536);
  assert.notDeepEqual(randomPassphrase(), randomPassphrase());
  for (const bad of [0, -1, 1.5, 65537, Number.NaN, Infinity]) {
    assert.throws(() => randomPassphrase(bad), RangeError);
  }
});

Deno.test("constant-time comparison is equality of bytes and of lengths", () => {
  const a = new Uint8Array([1, 2, 3, 4]);
  assert.equal(constantTimeEqual(a, new Uint8Array([1, 2, 3, 4])), true);
  assert.equal(constantTimeEqual(new Uint8Array(0), new Uint8Array(0)), true);
  assert.equal(constantTimeEqual(a, new Uint8Array([0, 2, 3, 4])), false);
  assert.equal(constantTimeEqual(a, new Uint8Array([1, 2, 3, 5])), false);
  assert.equal(constantTimeEqual(a, new Uint8Array([1, 2, 3])), false);
  assert.equal(constantTimeEqual(a, new Uint8Array([1, 2, 3, 4, 0])), false);
  assert.equal(constantTimeEqual(new Uint8Array(0), new Uint8Array([0])), false);
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 40 }), fc.uint8Array({ maxLength: 40 }), (x, y) => {
      const same = x.length === y.length && x.every((v, i) => v === y[i]);
      assert.equal(constantTimeEqual(x, y), same);
    }),
  );
});

Deno.test("sha256 matches the FIPS 180-2 vectors", async () => {
  assert.equal(
    (await sha256(new Uint8Array(0))).toHex(),
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
  );
  assert.equal(
    (await sha256(text("abc"))).toHex(),
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  );
});

Deno.test("bytes over a SharedArrayBuffer are copied for WebCrypto, others are not", async () => {
  const shared = new Uint8Array(new SharedArrayBuffer(3));
  shared.set([1, 2, 3]);
  const copy = asBufferSource(shared);
  assert.ok(copy.buffer instanceof ArrayBuffer);
  assert.deepEqual([...copy], [1, 2, 3]);
  const plain = new Uint8Array([1, 2, 3]);
  assert.equal(asBufferSource(plain), plain);
  const key = await newKey();
  assert.deepEqual([...await decrypt(key, await encrypt(key, shared))], [1, 2, 3]);
});

Deno.test("errors never carry key or plaintext bytes in their messages", async () => {
  const secret = new Uint8Array(31).fill(0xab);
  const leaks = (message: string) =>
    message.includes("abab") || message.includes(toBase64Url(secret.subarray(0, 6)));
  await assert.rejects(importAesKey(secret), (err: Error) => !leaks(err.message));
  const key = await newKey();
  const messages = new Set<string>();
  for (const sealed of [secret, await encrypt(await newKey(), secret)]) {
    await assert.rejects(decrypt(key, sealed), (err: Error) => {
      messages.add(err.message);
      return !leaks(err.message);
    });
  }
  // Short input and a bad tag fail with the same message: nothing to tell them apart.
  assert.equal(messages.size, 1);
});
