import assert from "node:assert/strict";
import {
  exportIdentity,
  formatPublicKeyFile,
  generateIdentityKeyPair,
  identityKeyVersion,
  importIdentity,
  importX25519PublicKey,
  parsePublicKeyFile,
} from "../shared/identity_key.ts";
import { KeyError, sha256, toBase64Url } from "../shared/security.ts";

/** RFC 7748 §6.1: Alice's private scalar and public key. */
const ALICE_PRIVATE = Uint8Array.fromHex(
  "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
);
const ALICE_PUBLIC = Uint8Array.fromHex(
  "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a",
);
/** The fixed PKCS#8 header of an X25519 private key (RFC 8410). */
const X25519_PKCS8_PREFIX = Uint8Array.fromHex("302e020100300506032b656e04220420");

function pkcs8Of(scalar: Uint8Array): Uint8Array {
  const out = new Uint8Array(X25519_PKCS8_PREFIX.length + scalar.length);
  out.set(X25519_PKCS8_PREFIX);
  out.set(scalar, X25519_PKCS8_PREFIX.length);
  return out;
}

function isKeyInvalid(err: unknown): boolean {
  assert.ok(err instanceof KeyError, `expected KeyError, got ${String(err)}`);
  assert.equal(err.code, "key_invalid");
  return true;
}

Deno.test("an identity pair exports and imports back to the same public key", async () => {
  const pair = await generateIdentityKeyPair();
  const exported = await exportIdentity(pair);
  assert.equal(exported.publicRaw.length, 32);
  assert.equal(exported.privatePkcs8.length, 48);
  const identity = await importIdentity(exported.privatePkcs8, exported.publicRaw);
  assert.deepEqual(identity.publicRaw, exported.publicRaw);
  assert.equal(identity.privateKey.extractable, false);
  assert.deepEqual(identity.privateKey.usages, ["deriveBits"]);
  assert.notDeepEqual(
    (await exportIdentity(await generateIdentityKeyPair())).publicRaw,
    exported.publicRaw,
  );
});

Deno.test("importing RFC 7748 Alice's private key recovers her public key", async () => {
  const identity = await importIdentity(pkcs8Of(ALICE_PRIVATE));
  assert.deepEqual(identity.publicRaw, ALICE_PUBLIC);
});

Deno.test("a private key that does not match the expected public key is refused", async () => {
  const other = await exportIdentity(await generateIdentityKeyPair());
  await assert.rejects(importIdentity(pkcs8Of(ALICE_PRIVATE), other.publicRaw), isKeyInvalid);
  await assert.rejects(
    importIdentity(pkcs8Of(ALICE_PRIVATE), ALICE_PUBLIC.subarray(1)),
    isKeyInvalid,
  );
});

Deno.test("bytes that are not an X25519 PKCS#8 key are a KeyError", async () => {
  const p256 = await crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, true, [
    "deriveBits",
  ]);
  const p256Pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", p256.privateKey));
  const good = pkcs8Of(ALICE_PRIVATE);
  for (const bad of [new Uint8Array(0), new Uint8Array(48), good.subarray(0, 47), p256Pkcs8]) {
    await assert.rejects(importIdentity(bad), isKeyInvalid);
  }
});

Deno.test("exporting a pair that is not extractable X25519 is a KeyError", async () => {
  const p256 = await crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, true, [
    "deriveBits",
  ]);
  await assert.rejects(exportIdentity(p256), isKeyInvalid);
  const locked = await crypto.subtle.generateKey({ name: "X25519" }, false, [
    "deriveBits",
  ]) as CryptoKeyPair;
  await assert.rejects(exportIdentity(locked), isKeyInvalid);
});

Deno.test("a public key of any length but 32 bytes is refused naming the length", async () => {
  for (const length of [0, 1, 31, 33, 65]) {
    await assert.rejects(importX25519PublicKey(new Uint8Array(length)), (err: unknown) => {
      isKeyInvalid(err);
      assert.match((err as Error).message, new RegExp(`got ${length}$`));
      return true;
    });
  }
  const key = await importX25519PublicKey(ALICE_PUBLIC);
  assert.equal(key.algorithm.name, "X25519");
});

Deno.test("the key version is the first two bytes of SHA-256, never 0", async () => {
  const exported = await exportIdentity(await generateIdentityKeyPair());
  const digest = await sha256(exported.publicRaw);
  const expected = (digest[0] << 8) | digest[1];
  assert.equal(await identityKeyVersion(exported.publicRaw), expected === 0 ? 1 : expected);
  // Found offline: SHA-256 of this input starts with 0x0000, so its version would be 0.
  const zeroPrefix = Uint8Array.fromHex(
    "0000000000000000000000000000000000000000000000000000000000017bf5",
  );
  assert.deepEqual([...(await sha256(zeroPrefix)).subarray(0, 2)], [0, 0]);
  assert.equal(await identityKeyVersion(zeroPrefix), 1);
});

Deno.test("a .pub file is base64url and a newline, and parses back", () => {
  const text = formatPublicKeyFile(ALICE_PUBLIC);
  assert.equal(text, `${toBase64Url(ALICE_PUBLIC)}\n`);
  assert.deepEqual(parsePublicKeyFile(text), ALICE_PUBLIC);
  assert.deepEqual(parsePublicKeyFile(`  ${text.trim()}\r\n`), ALICE_PUBLIC);
});

Deno.test("a .pub file that is not base64url of 32 bytes is a KeyError", () => {
  const encoded = toBase64Url(ALICE_PUBLIC);
  const bad = [
    "",
    "\n",
    `${encoded}=`,
    toBase64Url(ALICE_PUBLIC.subarray(1)),
    toBase64Url(new Uint8Array(33)),
    `+${encoded.slice(1)}`, // standard alphabet
    `/${encoded.slice(1)}`,
    `${encoded.slice(0, 20)} ${encoded.slice(20)}`,
    "-----BEGIN PUBLIC KEY-----",
  ];
  for (const text of bad) {
    assert.throws(() => parsePublicKeyFile(text), isKeyInvalid, JSON.stringify(text));
  }
  assert.throws(() => formatPublicKeyFile(new Uint8Array(31)), isKeyInvalid);
});
