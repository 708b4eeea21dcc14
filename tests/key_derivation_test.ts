import assert from "node:assert/strict";
import {
  clientSessionKeysForClient,
  clientSessionKeysForCluster,
  deriveMasterLinkKeys,
  generateEphemeralKeyPair,
} from "../shared/key_derivation.ts";
import { exportIdentity, generateIdentityKeyPair, importIdentity } from "../shared/identity_key.ts";
import { KeyError } from "../shared/security.ts";

const range = (start: number, length: number) =>
  Uint8Array.from({ length }, (_, i) => (start + i) & 0xff);
const random32 = () => crypto.getRandomValues(new Uint8Array(32));
const utf8 = (s: string) => new TextEncoder().encode(s);

/** RFC 7748 §6.1 key pairs and their shared secret. */
const ALICE_PRIVATE_PKCS8 = Uint8Array.fromHex(
  "302e020100300506032b656e04220420" +
    "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
);
const BOB_PRIVATE_PKCS8 = Uint8Array.fromHex(
  "302e020100300506032b656e04220420" +
    "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb",
);
const RFC_SHARED = Uint8Array.fromHex(
  "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742",
);

/** HKDF-SHA-256 written out from RFC 5869 with HMAC only, to check the HKDF path independently. */
async function referenceHkdf64(
  ikm: Uint8Array<ArrayBuffer>,
  salt: Uint8Array<ArrayBuffer>,
  info: Uint8Array<ArrayBuffer>,
): Promise<Uint8Array> {
  const hmac = async (key: Uint8Array<ArrayBuffer>, data: Uint8Array<ArrayBuffer>) => {
    const k = await crypto.subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, [
      "sign",
    ]);
    return new Uint8Array(await crypto.subtle.sign("HMAC", k, data));
  };
  const prk = await hmac(salt, ikm);
  const t1 = await hmac(prk, new Uint8Array([...info, 1]));
  const t2 = await hmac(prk, new Uint8Array([...t1, ...info, 2]));
  return new Uint8Array([...t1, ...t2]);
}

function isKeyInvalid(err: unknown): boolean {
  assert.ok(err instanceof KeyError, `expected KeyError, got ${String(err)}`);
  assert.equal(err.code, "key_invalid");
  return true;
}

Deno.test("master link keys match the pinned vector and an independent HKDF", async () => {
  const key = range(0x00, 32);
  const nonce = range(0x20, 32);
  const passphrase = range(0x40, 32);
  const keys = await deriveMasterLinkKeys(key, nonce, passphrase);
  // Computed with Python's hmac/hashlib, independently of WebCrypto.
  assert.equal(
    keys.clusterToMaster.toHex(),
    "c58a6deb7ee71b3c7d51dc1aa3e3d00c01b2c3533d88da416f20e4ac867c71b5",
  );
  assert.equal(
    keys.masterToCluster.toHex(),
    "734188f40943336f89a64493004e048aa06531453921e3e357f2eafbad21e9b6",
  );
  const reference = await referenceHkdf64(
    key,
    new Uint8Array([...nonce, ...passphrase]),
    utf8("sustenet master-link v1"),
  );
  assert.deepEqual(new Uint8Array([...keys.clusterToMaster, ...keys.masterToCluster]), reference);
});

Deno.test("master and cluster derive equal link keys, different per challenge", async () => {
  const key = random32();
  const nonce = random32();
  const passphrase = random32();
  const master = await deriveMasterLinkKeys(key, nonce, passphrase);
  const cluster = await deriveMasterLinkKeys(key.slice(), nonce.slice(), passphrase.slice());
  assert.deepEqual(master, cluster);
  assert.notDeepEqual(master.clusterToMaster, master.masterToCluster);
  const otherNonce = await deriveMasterLinkKeys(key, random32(), passphrase);
  const otherPassphrase = await deriveMasterLinkKeys(key, nonce, random32());
  const otherKey = await deriveMasterLinkKeys(random32(), nonce, passphrase);
  for (const other of [otherNonce, otherPassphrase, otherKey]) {
    assert.notDeepEqual(other.clusterToMaster, master.clusterToMaster);
    assert.notDeepEqual(other.masterToCluster, master.masterToCluster);
  }
});

Deno.test("master link derivation refuses bad lengths with typed errors", async () => {
  for (const length of [0, 16, 31, 33]) {
    await assert.rejects(
      deriveMasterLinkKeys(new Uint8Array(length), random32(), random32()),
      isKeyInvalid,
    );
  }
  for (const length of [0, 31, 33]) {
    await assert.rejects(
      deriveMasterLinkKeys(random32(), new Uint8Array(length), random32()),
      RangeError,
    );
  }
  await assert.rejects(deriveMasterLinkKeys(random32(), random32(), new Uint8Array(0)), RangeError);
});

Deno.test("client and cluster derive equal session keys", async () => {
  const identity = await exportIdentity(await generateIdentityKeyPair());
  const cluster = await importIdentity(identity.privatePkcs8);
  const client = await generateEphemeralKeyPair();
  const clientRandom = random32();
  const serverRandom = random32();
  const onClient = await clientSessionKeysForClient(
    client.privateKey,
    cluster.publicRaw,
    clientRandom,
    serverRandom,
  );
  const onCluster = await clientSessionKeysForCluster(
    cluster.privateKey,
    client.publicRaw,
    clientRandom,
    serverRandom,
  );
  assert.deepEqual(onClient, onCluster);
  assert.equal(onClient.clientToCluster.length, 32);
  assert.equal(onClient.clusterToClient.length, 32);
  assert.notDeepEqual(onClient.clientToCluster, onClient.clusterToClient);
});

Deno.test("different randoms or keys give different session keys", async () => {
  const cluster = await generateEphemeralKeyPair();
  const client = await generateEphemeralKeyPair();
  const clientRandom = random32();
  const serverRandom = random32();
  const base = await clientSessionKeysForClient(
    client.privateKey,
    cluster.publicRaw,
    clientRandom,
    serverRandom,
  );
  const variants = [
    await clientSessionKeysForClient(
      client.privateKey,
      cluster.publicRaw,
      random32(),
      serverRandom,
    ),
    await clientSessionKeysForClient(
      client.privateKey,
      cluster.publicRaw,
      clientRandom,
      random32(),
    ),
    // Swapping the randoms must not give the same keys either.
    await clientSessionKeysForClient(
      client.privateKey,
      cluster.publicRaw,
      serverRandom,
      clientRandom,
    ),
    // A fake cluster (another key pair) ends up with other keys.
    await clientSessionKeysForClient(
      client.privateKey,
      (await generateEphemeralKeyPair()).publicRaw,
      clientRandom,
      serverRandom,
    ),
  ];
  for (const keys of variants) {
    assert.notDeepEqual(keys.clientToCluster, base.clientToCluster);
    assert.notDeepEqual(keys.clusterToClient, base.clusterToClient);
  }
});

Deno.test("session keys from the RFC 7748 exchange match the pinned vector", async () => {
  const alice = await importIdentity(ALICE_PRIVATE_PKCS8);
  const bob = await importIdentity(BOB_PRIVATE_PKCS8);
  const clientRandom = new Uint8Array(32).fill(0xaa);
  const serverRandom = new Uint8Array(32).fill(0xbb);
  const keys = await clientSessionKeysForClient(
    alice.privateKey,
    bob.publicRaw,
    clientRandom,
    serverRandom,
  );
  // Computed with Python's hmac/hashlib from the RFC's shared secret.
  assert.equal(
    keys.clientToCluster.toHex(),
    "ce7ed8fbe590bd84e1a4d3057143e18958a00e2979192468cf83d38bcd03c6a8",
  );
  assert.equal(
    keys.clusterToClient.toHex(),
    "f9949e20c44e06875b08f0ecd610a7de1381cef57d0296040d8a3330c8743bd8",
  );
  const reference = await referenceHkdf64(
    RFC_SHARED,
    new Uint8Array([...clientRandom, ...serverRandom]),
    utf8("sustenet client-session v1"),
  );
  assert.deepEqual(new Uint8Array([...keys.clientToCluster, ...keys.clusterToClient]), reference);
  assert.deepEqual(
    await clientSessionKeysForCluster(bob.privateKey, alice.publicRaw, clientRandom, serverRandom),
    keys,
  );
});

Deno.test("invalid public key bytes are a KeyError, never a DOMException", async () => {
  const ours = await generateEphemeralKeyPair();
  const r = random32();
  for (const length of [0, 31, 33, 64]) {
    await assert.rejects(
      clientSessionKeysForClient(ours.privateKey, new Uint8Array(length), r, r),
      isKeyInvalid,
    );
    await assert.rejects(
      clientSessionKeysForCluster(ours.privateKey, new Uint8Array(length), r, r),
      isKeyInvalid,
    );
  }
  // Low-order points give an all-zero shared secret; WebCrypto refuses them.
  const lowOrder = [
    new Uint8Array(32),
    Uint8Array.from({ length: 32 }, (_, i) => (i === 0 ? 1 : 0)),
  ];
  for (const point of lowOrder) {
    await assert.rejects(clientSessionKeysForCluster(ours.privateKey, point, r, r), isKeyInvalid);
  }
});

Deno.test("a private key of another algorithm is a KeyError", async () => {
  const p256 = await crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, false, [
    "deriveBits",
  ]);
  const peer = await generateEphemeralKeyPair();
  const r = random32();
  await assert.rejects(
    clientSessionKeysForClient(p256.privateKey, peer.publicRaw, r, r),
    isKeyInvalid,
  );
});

Deno.test("handshake randoms of the wrong length are a RangeError", async () => {
  const ours = await generateEphemeralKeyPair();
  const peer = await generateEphemeralKeyPair();
  for (const length of [0, 16, 31, 33]) {
    const bad = new Uint8Array(length);
    await assert.rejects(
      clientSessionKeysForClient(ours.privateKey, peer.publicRaw, bad, random32()),
      RangeError,
    );
    await assert.rejects(
      clientSessionKeysForCluster(ours.privateKey, peer.publicRaw, random32(), bad),
      RangeError,
    );
  }
});

Deno.test("ephemeral key pairs are fresh and their private keys never leave", async () => {
  const a = await generateEphemeralKeyPair();
  const b = await generateEphemeralKeyPair();
  assert.equal(a.publicRaw.length, 32);
  assert.notDeepEqual(a.publicRaw, b.publicRaw);
  assert.equal(a.privateKey.extractable, false);
  await assert.rejects(crypto.subtle.exportKey("pkcs8", a.privateKey));
});
