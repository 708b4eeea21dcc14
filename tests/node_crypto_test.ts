import assert from "node:assert/strict";
import { nodeCrypto } from "../shared/node_crypto.ts";
import {
  clientSessionKeysForClient,
  clientSessionKeysForCluster,
  generateEphemeralKeyPair,
} from "../shared/key_derivation.ts";
import { KeyError } from "../shared/security.ts";

const CRYPTO_TESTS = [
  "tests/protocol_crypto_vectors_test.ts",
  "tests/join_ticket_test.ts",
  "tests/key_derivation_test.ts",
];

Deno.test("Deno has the node:crypto backend, so these tests run the join path on it", () => {
  assert.notEqual(nodeCrypto(), undefined);
});

Deno.test("the join path's vectors and tests also pass on the WebCrypto backend alone", async () => {
  // The browser's path: the same files in a process where nodeCrypto() is undefined.
  const root = new URL("../", import.meta.url).pathname;
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["test", "-A", "--quiet", ...CRYPTO_TESTS],
    cwd: root,
    env: { SUSTENET_WEBCRYPTO_ONLY: "1", NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
  assert.equal(code, 0, text);
  assert.match(text, /ok \| \d+ passed \| 0 failed/);
});

Deno.test("keys from the node:crypto key pair agree with plain WebCrypto X25519 + HKDF", async () => {
  const client = await generateEphemeralKeyPair();
  const cluster = await generateEphemeralKeyPair();
  const clientRandom = crypto.getRandomValues(new Uint8Array(32));
  const serverRandom = crypto.getRandomValues(new Uint8Array(32));
  const keys = await clientSessionKeysForClient(
    client.privateKey,
    cluster.publicRaw,
    clientRandom,
    serverRandom,
  );
  // The same derivation done by hand with WebCrypto only.
  const peer = await crypto.subtle.importKey("raw", client.publicRaw, "X25519", true, []);
  const shared = await crypto.subtle.deriveBits(
    { name: "X25519", public: peer },
    cluster.privateKey,
    256,
  );
  const base = await crypto.subtle.importKey("raw", shared, "HKDF", false, ["deriveBits"]);
  const salt = new Uint8Array(64);
  salt.set(clientRandom, 0);
  salt.set(serverRandom, 32);
  const okm = new Uint8Array(
    await crypto.subtle.deriveBits(
      {
        name: "HKDF",
        hash: "SHA-256",
        salt,
        info: new TextEncoder().encode("sustenet client-session v1"),
      },
      base,
      512,
    ),
  );
  assert.deepEqual(keys.clientToCluster, okm.slice(0, 32));
  assert.deepEqual(keys.clusterToClient, okm.slice(32));
});

Deno.test("a low-order client key is a KeyError on the node:crypto backend too", async () => {
  const cluster = await generateEphemeralKeyPair();
  const random = new Uint8Array(32);
  // 0 and 1 are low-order points: the shared secret would be all zeros.
  for (const point of [new Uint8Array(32), new Uint8Array(32).fill(0).with(0, 1)]) {
    await assert.rejects(
      clientSessionKeysForCluster(cluster.privateKey, point, random, random),
      KeyError,
    );
  }
  await assert.rejects(
    clientSessionKeysForCluster(cluster.privateKey, new Uint8Array(31), random, random),
    KeyError,
  );
});
