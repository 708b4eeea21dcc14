import assert from "node:assert/strict";
import { KeyPinning } from "../client/key_pinning.ts";
import { readKeyFile } from "../client/tcp_connector.ts";
import { formatPublicKeyFile } from "../shared/identity_key.ts";
import { hasCode } from "./_has_code.ts";

const KEY_A = new Uint8Array(32).fill(0xa1);
const KEY_B = new Uint8Array(32).fill(0xb2);
const TARGET = { host: "127.0.0.1", port: 7001, name: "eu-1" };

/** Serves `body` with `status` on a free port, counting requests. */
function serveKey(body: string, status = 200) {
  let requests = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, () => {
    requests++;
    return new Response(body, { status });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}/cluster.pub`,
    requests: () => requests,
    close: () => server.shutdown(),
  };
}

Deno.test("a pin by name wins over the wildcard, and the address never matters", async () => {
  const pinning = new KeyPinning({ pins: { "*": KEY_B, "eu-1": KEY_A } });
  assert.deepEqual(await pinning.pinnedKey(TARGET), KEY_A);
  // The same name at any address the master passes on is the same pin.
  assert.deepEqual(await pinning.pinnedKey({ ...TARGET, host: "10.6.6.6", port: 6666 }), KEY_A);
  assert.deepEqual(await pinning.pinnedKey({ host: "10.0.0.1", port: 1, name: "us-1" }), KEY_B);
  assert.deepEqual(await pinning.pinnedKey({ host: "10.0.0.1", port: 1 }), KEY_B);
  assert.equal(await new KeyPinning().pinnedKey(TARGET), undefined);
});

Deno.test("pins by host:port are refused: an address is not an identity", () => {
  for (const where of ["127.0.0.1:7001", "h:1", "[::1]:6257", "cluster.example:6257"]) {
    assert.throws(() => new KeyPinning({ pins: { [where]: KEY_A } }), RangeError, where);
  }
  assert.throws(() => new KeyPinning({ pins: { "": KEY_A } }), RangeError);
});

Deno.test("pins by name are told apart from the wildcard", () => {
  assert.equal(new KeyPinning({ pins: { "eu-1": KEY_A } }).pinsByName, true);
  assert.equal(new KeyPinning({ pins: { "*": KEY_B } }).pinsByName, false);
});

Deno.test("a pinned name whose key from the master differs is refused, whatever the address", async () => {
  const pinning = new KeyPinning({ pins: { "eu-1": KEY_A } });
  // What a rewritten listing looks like: the right name, the attacker's address and key.
  const rewritten = { host: "127.0.0.1", port: 6666, name: "eu-1" };
  await assert.rejects(pinning.decide(rewritten, KEY_B), hasCode("key_mismatch"));
  assert.equal((await pinning.decide(rewritten, KEY_A)).source, "pinned");
});

Deno.test("a .pub file is read once and used as the pin", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/eu-1.pub`;
    await Deno.writeTextFile(file, formatPublicKeyFile(KEY_A));
    const pinning = new KeyPinning({ pins: { "eu-1": { file } }, readTextFile: readKeyFile });
    assert.equal((await pinning.decide(TARGET, KEY_A)).source, "pinned");
    await Deno.remove(file);
    // Already loaded: the file is not read again.
    assert.deepEqual(await pinning.pinnedKey(TARGET), KEY_A);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a missing, oversized or malformed .pub file is key_unavailable, retried next time", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/eu-1.pub`;
    const pinning = new KeyPinning({ pins: { "eu-1": { file } }, readTextFile: readKeyFile });
    await assert.rejects(pinning.pinnedKey(TARGET), hasCode("key_unavailable"));
    await Deno.writeTextFile(file, "not base64url!");
    await assert.rejects(pinning.pinnedKey(TARGET), hasCode("key_unavailable"));
    await Deno.writeTextFile(file, "A".repeat(5000));
    await assert.rejects(pinning.pinnedKey(TARGET), hasCode("key_unavailable"));
    await Deno.writeTextFile(file, formatPublicKeyFile(KEY_A));
    assert.deepEqual(await pinning.pinnedKey(TARGET), KEY_A);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a domain_pub_key URL is fetched once", async () => {
  const server = serveKey(formatPublicKeyFile(KEY_A));
  try {
    const pinning = new KeyPinning({ pins: { "*": { url: server.url } } });
    await Promise.all([pinning.pinnedKey(TARGET), pinning.pinnedKey(TARGET)]);
    assert.deepEqual(await pinning.pinnedKey({ host: "x", port: 2 }), KEY_A);
    assert.equal(server.requests(), 1);
  } finally {
    await server.close();
  }
});

Deno.test("a URL answering an error or a non-key is key_unavailable", async () => {
  const missing = serveKey("nope", 404);
  const garbage = serveKey("%%%");
  const huge = serveKey("A".repeat(100_000));
  try {
    for (const server of [missing, garbage, huge]) {
      const pinning = new KeyPinning({ pins: { "*": { url: server.url } } });
      await assert.rejects(pinning.decide(TARGET, KEY_A), hasCode("key_unavailable"));
    }
  } finally {
    await Promise.all([missing.close(), garbage.close(), huge.close()]);
  }
});

Deno.test("a file: URL works as a domain_pub_key", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/id.pub`;
    await Deno.writeTextFile(file, formatPublicKeyFile(KEY_B));
    const pinning = new KeyPinning({ pins: { "eu-1": { url: new URL(`file://${file}`) } } });
    assert.deepEqual(await pinning.pinnedKey(TARGET), KEY_B);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a pinned key that differs from the master's is a key_mismatch", async () => {
  const pinning = new KeyPinning({ pins: { "eu-1": KEY_A } });
  await assert.rejects(pinning.decide(TARGET, KEY_B), hasCode("key_mismatch"));
});

Deno.test("without pins the master's key is trusted", async () => {
  const decision = await new KeyPinning().decide(TARGET, KEY_B);
  assert.deepEqual(decision, { publicKey: KEY_B, source: "master" });
});

Deno.test("RequestKey: the first key seen is cached and later keys must match it", async () => {
  const pinning = new KeyPinning({ requestKey: true });
  assert.deepEqual((await pinning.decide(TARGET, KEY_A)).requestKey, { cachedVersion: 0 });
  pinning.remember(TARGET, 0, KEY_A); // version 0 means "none": ignored
  assert.deepEqual(pinning.cachedKeys(), {});
  pinning.remember(TARGET, 11, KEY_A);
  const again = await pinning.decide(TARGET, KEY_A);
  assert.equal(again.source, "cache");
  assert.deepEqual(again.requestKey, { cachedVersion: 11 });
  await assert.rejects(pinning.decide(TARGET, KEY_B), hasCode("key_mismatch"));
  // A cache from an earlier run behaves the same.
  const restored = new KeyPinning({ requestKey: true, cache: pinning.cachedKeys() });
  await assert.rejects(restored.decide(TARGET, KEY_B), hasCode("key_mismatch"));
});

Deno.test("a pin overrides a stale cache entry, which is then not confirmed", async () => {
  const pinning = new KeyPinning({
    requestKey: true,
    pins: { "eu-1": KEY_B },
    cache: { "127.0.0.1:7001": { version: 4, publicKey: KEY_A } },
  });
  const decision = await pinning.decide(TARGET, KEY_B);
  assert.equal(decision.source, "pinned");
  assert.deepEqual(decision.requestKey, { cachedVersion: 0 });
});

Deno.test("the cache is ignored unless RequestKey is on", async () => {
  const pinning = new KeyPinning({ cache: { "127.0.0.1:7001": { version: 4, publicKey: KEY_A } } });
  assert.equal((await pinning.decide(TARGET, KEY_B)).source, "master");
});

Deno.test("malformed pins and cache entries are refused at construction", () => {
  assert.throws(() => new KeyPinning({ pins: { "*": new Uint8Array(31) } }), RangeError);
  assert.throws(
    () => new KeyPinning({ cache: { "h:1": { version: 0, publicKey: KEY_A } } }),
    RangeError,
  );
  assert.throws(
    () => new KeyPinning({ cache: { "h:1": { version: 1, publicKey: new Uint8Array(3) } } }),
    RangeError,
  );
});
