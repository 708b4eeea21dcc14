import assert from "node:assert/strict";
import {
  formatPublicKeyFile,
  identityKeyVersion,
  importIdentity,
  parsePublicKeyFile,
} from "../shared/identity_key.ts";
import { announceMessage, proveAnnounce, verifyAnnounce } from "../shared/announce_proof.ts";
import { clientKeyHash, openJoinTicket, sealJoinTicket } from "../shared/join_ticket.ts";
import { TLS_JOIN_LABEL, tlsJoinCommitment } from "../shared/tls_join.ts";
import {
  clientSessionKeysForClient,
  clientSessionKeysForCluster,
  deriveMasterLinkKeys,
} from "../shared/key_derivation.ts";
import { type RecordCipher, WebCryptoRecordCipher } from "../shared/record_cipher.ts";
import { NodeRecordCipher } from "../shared/record_cipher_node.ts";
import { SealedRecordReader, SealedRecordWriter } from "../shared/sealed_record.ts";
import { type CryptoVector, parseCryptoVectors } from "./_crypto_vectors.ts";

const markdown = await Deno.readTextFile(new URL("../docs/PROTOCOL.md", import.meta.url));
const vectors = parseCryptoVectors(markdown);

function vector(label: string): CryptoVector {
  const found = vectors.find((v) => v.label === label);
  assert.ok(found !== undefined, `PROTOCOL.md has the crypto vector "${label}"`);
  return found;
}

function raw(v: CryptoVector, name: string): string {
  const value = v.values.get(name);
  assert.ok(value !== undefined, `"${v.label}" has ${name}`);
  return value;
}

function hex(v: CryptoVector, name: string): Uint8Array<ArrayBuffer> {
  const compact = raw(v, name).replace(/\s+/g, "");
  assert.match(compact, /^([0-9a-f]{2})+$/, `${name} of "${v.label}" is lowercase hex bytes`);
  return Uint8Array.fromHex(compact);
}

function text(v: CryptoVector, name: string): string {
  const value = raw(v, name);
  assert.match(value, /^".*"$/, `${name} of "${v.label}" is a quoted string`);
  return JSON.parse(value);
}

/** `u16 6257`: a decimal integer after its wire width, which it must fit. */
function integer(v: CryptoVector, name: string): number {
  const value = raw(v, name);
  const match = /^u(8|16|32|64) (\d+)$/.exec(value);
  assert.ok(match !== null, `${name} of "${v.label}" is "u<bits> <decimal>", got ${value}`);
  const number = Number(match[2]);
  assert.ok(Number.isSafeInteger(number) && number < 2 ** Number(match[1]), `${name} fits`);
  return number;
}

const utf8 = (s: string) => new TextEncoder().encode(s);

/** PKCS#8 wrapping of a raw X25519 private key (RFC 8410), for WebCrypto's import. */
const X25519_PKCS8_PREFIX = Uint8Array.fromHex("302e020100300506032b656e04220420");

function pkcs8Of(privateRaw: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(X25519_PKCS8_PREFIX.length + privateRaw.length);
  out.set(X25519_PKCS8_PREFIX);
  out.set(privateRaw, X25519_PKCS8_PREFIX.length);
  return out;
}

/** HKDF-SHA-256 to 64 bytes with plain WebCrypto, independently of shared/key_derivation.ts. */
async function webCryptoHkdf64(
  ikm: Uint8Array<ArrayBuffer>,
  salt: Uint8Array<ArrayBuffer>,
  info: string,
): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey("raw", ikm, "HKDF", false, ["deriveBits"]);
  const bits = await crypto.subtle.deriveBits(
    { name: "HKDF", hash: "SHA-256", salt, info: utf8(info) },
    key,
    512,
  );
  return new Uint8Array(bits);
}

async function aesKey(raw: Uint8Array<ArrayBuffer>): Promise<CryptoKey> {
  return await crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["encrypt", "decrypt"]);
}

/** The parts back to back (small inputs only: it goes through an array of numbers). */
const join = (...parts: readonly Uint8Array[]): Uint8Array<ArrayBuffer> =>
  new Uint8Array(parts.flatMap((p) => [...p]));

Deno.test("PROTOCOL.md has exactly the crypto vectors the test checks", () => {
  assert.deepEqual(vectors.map((v) => v.label).sort(), [
    "TLS join binding",
    "announce proof",
    "client session keys",
    "join ticket",
    "key version",
    "master-link keys",
    "sealed records",
  ]);
});

Deno.test("the TLS join binding vector: commitment and the ticket's clientKeyHash", async () => {
  const v = vector("TLS join binding");
  const label = hex(v, "label");
  assert.deepEqual(label, TLS_JOIN_LABEL);
  assert.equal(new TextDecoder().decode(label), "sustenet tls-join v1\0");
  const secret = hex(v, "bindingSecret");
  const commitment = await tlsJoinCommitment(secret);
  assert.deepEqual(commitment, hex(v, "commitment"));
  // Plain WebCrypto, independently of shared/tls_join.ts.
  const plain = new Uint8Array(await crypto.subtle.digest("SHA-256", join(label, secret)));
  assert.deepEqual(plain, commitment);
  assert.deepEqual(await clientKeyHash(commitment), hex(v, "clientKeyHash"));
});

Deno.test("the master-link key vector matches the implementation and plain HKDF", async () => {
  const v = vector("master-link keys");
  const clusterKey = hex(v, "clusterKey");
  const clusterNonce = hex(v, "clusterNonce");
  const passphrase = hex(v, "passphrase");
  const keys = await deriveMasterLinkKeys(clusterKey, clusterNonce, passphrase);
  assert.equal(keys.clusterToMaster.toHex(), hex(v, "clusterToMaster").toHex());
  assert.equal(keys.masterToCluster.toHex(), hex(v, "masterToCluster").toHex());
  const okm = await webCryptoHkdf64(
    clusterKey,
    join(clusterNonce, passphrase),
    "sustenet master-link v1",
  );
  assert.equal(okm.toHex(), join(hex(v, "clusterToMaster"), hex(v, "masterToCluster")).toHex());
});

Deno.test("the client session key vector matches both sides and plain X25519 + HKDF", async () => {
  const v = vector("client session keys");
  const client = await importIdentity(pkcs8Of(hex(v, "clientPrivate")));
  const cluster = await importIdentity(pkcs8Of(hex(v, "clusterPrivate")));
  assert.equal(client.publicRaw.toHex(), hex(v, "clientPublic").toHex());
  assert.equal(cluster.publicRaw.toHex(), hex(v, "clusterPublic").toHex());
  const clusterPublic = await crypto.subtle.importKey(
    "raw",
    hex(v, "clusterPublic"),
    { name: "X25519" },
    false,
    [],
  );
  const shared = new Uint8Array(
    await crypto.subtle.deriveBits(
      { name: "X25519", public: clusterPublic },
      client.privateKey,
      256,
    ),
  );
  assert.equal(shared.toHex(), hex(v, "sharedSecret").toHex());

  const clientRandom = hex(v, "clientRandom");
  const serverRandom = hex(v, "serverRandom");
  const expected = {
    clientToCluster: hex(v, "clientToCluster"),
    clusterToClient: hex(v, "clusterToClient"),
  };
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
  assert.deepEqual(onClient, expected);
  assert.deepEqual(onCluster, expected);
  const okm = await webCryptoHkdf64(
    hex(v, "sharedSecret"),
    join(clientRandom, serverRandom),
    "sustenet client-session v1",
  );
  assert.equal(okm.toHex(), join(expected.clientToCluster, expected.clusterToClient).toHex());
});

Deno.test("the sealed record vector matches every cipher, the reader and plain AES-GCM", async () => {
  const v = vector("sealed records");
  const key = hex(v, "key");
  const frame = hex(v, "frame");
  const records = [hex(v, "record0"), hex(v, "record1")];
  const ciphers: RecordCipher[] = [
    new NodeRecordCipher(key),
    await WebCryptoRecordCipher.create(key),
  ];
  for (const cipher of ciphers) {
    const writer = new SealedRecordWriter(cipher);
    assert.equal((await writer.seal(frame)).toHex(), records[0].toHex());
    assert.equal((await writer.seal(frame)).toHex(), records[1].toHex());
    const reader = new SealedRecordReader(cipher);
    reader.push(join(...records));
    assert.deepEqual(await reader.next(), frame);
    assert.deepEqual(await reader.next(), frame);
    assert.equal(reader.next(), undefined);
  }
  // Independently: u32 length, then AES-256-GCM under the 12-byte big-endian counter, no AAD.
  const aes = await aesKey(key);
  for (const [counter, record] of records.entries()) {
    const iv = new Uint8Array(12);
    new DataView(iv.buffer).setUint32(8, counter);
    const sealed = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv }, aes, frame));
    const length = new Uint8Array(4);
    new DataView(length.buffer).setUint32(0, sealed.length);
    assert.equal(join(length, sealed).toHex(), record.toHex(), `record ${counter}`);
  }
});

Deno.test("the announce proof vector: HKDF announce key, message layout, HMAC", async () => {
  const v = vector("announce proof");
  const clusterKey = hex(v, "clusterKey");
  const clusterNonce = hex(v, "clusterNonce");
  const passphrase = hex(v, "passphrase");
  const fields = {
    name: text(v, "name"),
    host: text(v, "host"),
    port: integer(v, "port"),
    maxConnections: integer(v, "maxConnections"),
    keyVersion: integer(v, "keyVersion"),
    publicKey: hex(v, "publicKey"),
  };
  const announceKey = hex(v, "announceKey");
  const message = hex(v, "message");
  const proof = hex(v, "proof");

  // The implementation.
  const keys = await deriveMasterLinkKeys(clusterKey, clusterNonce, passphrase);
  assert.equal(keys.announceKey.toHex(), announceKey.toHex());
  assert.equal(announceMessage(fields).toHex(), message.toHex());
  assert.equal((await proveAnnounce(announceKey, fields)).toHex(), proof.toHex());
  assert.equal(await verifyAnnounce(announceKey, fields, proof), true);

  // Independently: HKDF with plain WebCrypto (the first 32 bytes of a longer output are the
  // same), the message written out field by field, HMAC with plain WebCrypto.
  const okm = await webCryptoHkdf64(
    clusterKey,
    join(clusterNonce, passphrase),
    "sustenet announce v2",
  );
  assert.equal(okm.subarray(0, 32).toHex(), announceKey.toHex());
  const u16 = (n: number) => Uint8Array.of(n >> 8, n & 0xff);
  const u32 = (n: number) => Uint8Array.of(n >>> 24, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff);
  const str8 = (s: string) => join(Uint8Array.of(utf8(s).length), utf8(s));
  const written = join(
    utf8("sustenet announce v2"),
    Uint8Array.of(0),
    str8(fields.name),
    str8(fields.host),
    u16(fields.port),
    u32(fields.maxConnections),
    u16(fields.keyVersion),
    Uint8Array.of(fields.publicKey.length),
    fields.publicKey,
    Uint8Array.of(0), // no endpoints
  );
  assert.equal(written.toHex(), message.toHex());
  const hmac = await crypto.subtle.importKey(
    "raw",
    announceKey,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", hmac, message));
  assert.equal(mac.toHex(), proof.toHex());
});

Deno.test("the join ticket vector: plaintext layout, fixed-nonce sealing, opening", async () => {
  const v = vector("join ticket");
  const clusterKey = hex(v, "clusterKey");
  const claims = {
    clusterId: integer(v, "clusterId"),
    clusterKeyHash: hex(v, "clusterKeyHash"),
    playerId: text(v, "playerId"),
    expiresAtMs: integer(v, "expiresAtMs"),
    clientKeyHash: hex(v, "clientKeyHash"),
    ticketId: hex(v, "ticketId"),
  };
  const plaintext = hex(v, "plaintext");
  const nonce = hex(v, "nonce");
  const sealed = hex(v, "sealedTicket");

  // The hash binds the client key of the session vector.
  const clientPublic = hex(vector("client session keys"), "clientPublic");
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", clientPublic));
  assert.equal(hash.toHex(), claims.clientKeyHash.toHex());

  // The cluster hash binds the identity key of the session vector's cluster.
  const clusterPublic = hex(vector("client session keys"), "clusterPublic");
  const clusterHash = new Uint8Array(await crypto.subtle.digest("SHA-256", clusterPublic));
  assert.equal(clusterHash.toHex(), claims.clusterKeyHash.toHex());

  // The layout, written out field by field.
  const player = utf8(claims.playerId);
  const head = new Uint8Array(1 + 4);
  const header = new DataView(head.buffer);
  header.setUint8(0, 2);
  header.setUint32(1, claims.clusterId);
  const expires = new Uint8Array(8);
  new DataView(expires.buffer).setBigUint64(0, BigInt(claims.expiresAtMs));
  const layout = join(
    head,
    claims.clusterKeyHash,
    Uint8Array.of(player.length),
    player,
    expires,
    claims.clientKeyHash,
    claims.ticketId,
  );
  assert.equal(layout.toHex(), plaintext.toHex());

  // Sealing under the given nonce gives the sealed ticket, and it opens to the plaintext.
  const aes = await aesKey(clusterKey);
  const additionalData = utf8("sustenet-ticket-v2");
  const body = new Uint8Array(
    await crypto.subtle.encrypt({ name: "AES-GCM", iv: nonce, additionalData }, aes, plaintext),
  );
  assert.equal(join(nonce, body).toHex(), sealed.toHex());
  assert.deepEqual(await openJoinTicket(clusterKey, sealed), claims);

  // The implementation (random nonce) writes exactly this plaintext.
  const ours = await sealJoinTicket(clusterKey, claims);
  assert.equal(ours.length, sealed.length);
  const opened = new Uint8Array(
    await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: ours.subarray(0, 12), additionalData },
      aes,
      ours.subarray(12),
    ),
  );
  assert.equal(opened.toHex(), plaintext.toHex());
});

Deno.test("crypto vector: key version and .pub file, by the implementation and by plain WebCrypto", async () => {
  const v = vector("key version");
  const publicKey = hex(v, "publicKey");
  assert.deepEqual(
    new Uint8Array(await crypto.subtle.digest("SHA-256", publicKey)),
    hex(v, "sha256"),
  );
  assert.equal(await identityKeyVersion(publicKey), integer(v, "keyVersion"));
  assert.equal(formatPublicKeyFile(publicKey), text(v, "pubFile"));
  assert.deepEqual(parsePublicKeyFile(text(v, "pubFile")), publicKey);
  const zero = hex(v, "zeroKey");
  assert.deepEqual(
    new Uint8Array(await crypto.subtle.digest("SHA-256", zero)),
    hex(v, "zeroSha256"),
  );
  assert.equal(hex(v, "zeroSha256")[0] | hex(v, "zeroSha256")[1], 0);
  assert.equal(await identityKeyVersion(zero), integer(v, "zeroKeyVersion"));
});
