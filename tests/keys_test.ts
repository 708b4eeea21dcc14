import assert from "node:assert/strict";
import {
  generateKey,
  keyPath,
  loadAllKeys,
  loadKey,
  loadOrCreateIdentity,
  saveKey,
  validateKeyName,
} from "../shared/keys.ts";
import { identityKeyVersion, parsePublicKeyFile } from "../shared/identity_key.ts";
import {
  clientSessionKeysForClient,
  clientSessionKeysForCluster,
  generateEphemeralKeyPair,
} from "../shared/key_derivation.ts";
import { generateAesKeyBytes, KeyError } from "../shared/security.ts";
import { runDeno, withTempDir } from "./_process.ts";
import { hasCode } from "./_has_code.ts";

const IS_WINDOWS = Deno.build.os === "windows";
const KEYGEN = new URL("../shared/keygen.ts", import.meta.url).pathname;

async function modeOf(path: string): Promise<number | null> {
  const { mode } = await Deno.stat(path);
  return mode === null ? null : mode & 0o777;
}

const BAD_NAMES = [
  "",
  ".",
  "..",
  "../x",
  "a/b",
  "/etc/passwd",
  "a\\b",
  "a b",
  "a\0b",
  "é",
  "x".repeat(65),
  ".hidden",
  "cluster.pub",
  "cluster.identity",
];

Deno.test("a saved key loads back, mode 0600 in a new directory of mode 0700", async () => {
  await withTempDir("sustenet_keys_", async (root) => {
    const dir = `${root}/nested/keys`;
    const key = generateAesKeyBytes();
    const path = await saveKey(dir, "eu-1", key);
    assert.equal(path, `${dir}/eu-1`);
    assert.deepEqual(await loadKey(dir, "eu-1"), key);
    if (!IS_WINDOWS) {
      assert.equal(await modeOf(path), 0o600);
      assert.equal(await modeOf(dir), 0o700);
    }
  });
});

Deno.test("an existing key is never overwritten unless asked", async () => {
  await withTempDir("sustenet_keys_", async (dir) => {
    const first = generateAesKeyBytes();
    await saveKey(dir, "eu-1", first);
    await assert.rejects(
      saveKey(dir, "eu-1", generateAesKeyBytes()),
      hasCode("key_exists", KeyError),
    );
    await assert.rejects(generateKey(dir, "eu-1"), hasCode("key_exists", KeyError));
    assert.deepEqual(await loadKey(dir, "eu-1"), first);
    if (!IS_WINDOWS) await Deno.chmod(`${dir}/eu-1`, 0o644);
    const second = generateAesKeyBytes();
    await saveKey(dir, "eu-1", second, { overwrite: true });
    assert.deepEqual(await loadKey(dir, "eu-1"), second);
    if (!IS_WINDOWS) assert.equal(await modeOf(`${dir}/eu-1`), 0o600);
    // The atomic replace leaves no temp file behind.
    const names = [];
    for await (const entry of Deno.readDir(dir)) names.push(entry.name);
    assert.deepEqual(names, ["eu-1"]);
  });
});

Deno.test("a key that is not 32 bytes is refused when saving, naming the length", async () => {
  await withTempDir("sustenet_keys_", async (dir) => {
    for (const length of [0, 16, 31, 33]) {
      await assert.rejects(saveKey(dir, "k", new Uint8Array(length)), (err: unknown) => {
        hasCode("key_invalid", KeyError)(err);
        assert.match((err as Error).message, new RegExp(`got ${length}$`));
        return true;
      });
    }
    await assert.rejects(Deno.stat(`${dir}/k`), Deno.errors.NotFound);
  });
});

Deno.test("unsafe key names are refused before touching the disk", async () => {
  await withTempDir("sustenet_keys_", async (root) => {
    const dir = `${root}/keys`;
    await Deno.mkdir(dir);
    // A file outside the keys directory that a traversal would reach.
    await Deno.writeFile(`${root}/x`, new Uint8Array(32));
    for (const name of BAD_NAMES) {
      assert.throws(
        () => validateKeyName(name),
        hasCode("key_name_invalid", KeyError),
        JSON.stringify(name),
      );
      assert.throws(() => keyPath(dir, name), hasCode("key_name_invalid", KeyError));
      await assert.rejects(
        saveKey(dir, name, generateAesKeyBytes()),
        hasCode("key_name_invalid", KeyError),
      );
      await assert.rejects(loadKey(dir, name), hasCode("key_name_invalid", KeyError));
      await assert.rejects(loadOrCreateIdentity(dir, name), hasCode("key_name_invalid", KeyError));
    }
    const left = [];
    for await (const entry of Deno.readDir(dir)) left.push(entry.name);
    assert.deepEqual(left, []);
    for (const good of ["a", "A-Z_0.9", "x".repeat(64), "cluster_key"]) {
      assert.equal(validateKeyName(good), good);
    }
  });
});

Deno.test("loading a missing key is key_missing, a wrong-size one key_invalid", async () => {
  await withTempDir("sustenet_keys_", async (dir) => {
    await assert.rejects(loadKey(dir, "nope"), hasCode("key_missing", KeyError));
    await assert.rejects(loadKey(`${dir}/no-such-dir`, "nope"), hasCode("key_missing", KeyError));
    for (const length of [0, 31, 33, 4096]) {
      await Deno.writeFile(`${dir}/k${length}`, new Uint8Array(length));
      await assert.rejects(loadKey(dir, `k${length}`), (err: unknown) => {
        hasCode("key_invalid", KeyError)(err);
        assert.match((err as Error).message, new RegExp(`got ${length}$`));
        return true;
      });
    }
    await Deno.mkdir(`${dir}/adir`);
    await assert.rejects(loadKey(dir, "adir"), hasCode("key_invalid", KeyError));
  });
});

Deno.test("key file errors name the path and length, never the bytes", async () => {
  await withTempDir("sustenet_keys_", async (dir) => {
    await Deno.writeFile(`${dir}/k`, new Uint8Array(33).fill(0xcd));
    await assert.rejects(loadKey(dir, "k"), (err: Error) => {
      assert.ok(err.message.includes(`${dir}/k`));
      assert.ok(!err.message.toLowerCase().includes("cdcd") && !err.message.includes("zc3N"));
      return true;
    });
  });
});

Deno.test("generated keys are 32 random bytes with mode 0600", async () => {
  await withTempDir("sustenet_keys_", async (dir) => {
    const a = await generateKey(dir, "a");
    const b = await generateKey(dir, "b");
    assert.equal(a, `${dir}/a`);
    assert.equal((await Deno.readFile(a)).length, 32);
    assert.notDeepEqual(await Deno.readFile(a), await Deno.readFile(b));
    if (!IS_WINDOWS) assert.equal(await modeOf(a), 0o600);
  });
});

Deno.test("loading all keys skips and reports everything that is not a key", async () => {
  await withTempDir("sustenet_keys_", async (dir) => {
    const a = generateAesKeyBytes();
    const b = generateAesKeyBytes();
    await saveKey(dir, "a", a);
    await saveKey(dir, "b", b);
    await Deno.writeFile(`${dir}/.gitkeep`, new Uint8Array(0));
    await Deno.writeFile(`${dir}/short`, new Uint8Array(31));
    await Deno.writeFile(`${dir}/bad name`, new Uint8Array(32));
    await Deno.mkdir(`${dir}/sub`);
    await loadOrCreateIdentity(dir, "ident");
    const loose = generateAesKeyBytes();
    await Deno.writeFile(`${dir}/loose`, loose, { mode: 0o644 });
    if (!IS_WINDOWS) await Deno.chmod(`${dir}/loose`, 0o644);

    const { keys, problems } = await loadAllKeys(dir);
    assert.deepEqual([...keys.keys()].sort(), ["a", "b", "loose"]);
    assert.deepEqual(keys.get("a"), a);
    assert.deepEqual(keys.get("b"), b);
    assert.deepEqual(keys.get("loose"), loose);
    const byFile = new Map(problems.map((p) => [p.file, p]));
    assert.equal(byFile.get(".gitkeep")?.kind, "skipped");
    assert.equal(byFile.get("ident.identity")?.kind, "skipped");
    assert.equal(byFile.get("ident.pub")?.kind, "skipped");
    assert.equal(byFile.get("sub")?.kind, "skipped");
    assert.equal(byFile.get("short")?.kind, "invalid");
    assert.match(byFile.get("short")?.reason ?? "", /got 31$/);
    assert.equal(byFile.get("bad name")?.kind, "invalid");
    if (!IS_WINDOWS) {
      assert.deepEqual(byFile.get("loose"), {
        file: "loose",
        kind: "insecure",
        reason: "mode 0644, should be 0600",
      });
    }
    assert.equal(byFile.has("a"), false);
  });
});

Deno.test("loading all keys from a missing directory reports it, without throwing", async () => {
  await withTempDir("sustenet_keys_", async (root) => {
    const { keys, problems } = await loadAllKeys(`${root}/none`);
    assert.equal(keys.size, 0);
    assert.deepEqual(problems, [{
      file: `${root}/none`,
      kind: "invalid",
      reason: "keys directory does not exist",
    }]);
  });
});

Deno.test("an identity is created once (0600 private, 0644 public) then loaded", async () => {
  await withTempDir("sustenet_keys_", async (root) => {
    const dir = `${root}/keys`;
    const created = await loadOrCreateIdentity(dir, "cluster_identity");
    assert.equal(created.created, true);
    assert.equal(created.publicFileRewritten, false);
    assert.equal(created.publicKey.length, 32);
    assert.equal(created.privateKey.extractable, false);
    assert.equal(created.version, await identityKeyVersion(created.publicKey));
    assert.ok(created.version >= 1 && created.version <= 0xffff);
    const privatePath = `${dir}/cluster_identity.identity`;
    const publicPath = `${dir}/cluster_identity.pub`;
    assert.equal((await Deno.readFile(privatePath)).length, 48);
    const publicText = await Deno.readTextFile(publicPath);
    assert.ok(publicText.endsWith("\n"));
    assert.deepEqual(parsePublicKeyFile(publicText), created.publicKey);
    if (!IS_WINDOWS) {
      assert.equal(await modeOf(privatePath), 0o600);
      assert.equal(await modeOf(publicPath), 0o644);
      assert.equal(await modeOf(dir), 0o700);
    }

    const loaded = await loadOrCreateIdentity(dir, "cluster_identity");
    assert.equal(loaded.created, false);
    assert.equal(loaded.publicFileRewritten, false);
    assert.deepEqual(loaded.publicKey, created.publicKey);
    assert.equal(loaded.version, created.version);

    // The loaded private key is the one the public key belongs to.
    const client = await generateEphemeralKeyPair();
    const r1 = crypto.getRandomValues(new Uint8Array(32));
    const r2 = crypto.getRandomValues(new Uint8Array(32));
    assert.deepEqual(
      await clientSessionKeysForClient(client.privateKey, loaded.publicKey, r1, r2),
      await clientSessionKeysForCluster(loaded.privateKey, client.publicRaw, r1, r2),
    );
  });
});

Deno.test("a missing or wrong .pub is rewritten from the private key", async () => {
  await withTempDir("sustenet_keys_", async (dir) => {
    const first = await loadOrCreateIdentity(dir, "id");
    const publicPath = `${dir}/id.pub`;
    await Deno.remove(publicPath);
    const restored = await loadOrCreateIdentity(dir, "id");
    assert.equal(restored.publicFileRewritten, true);
    assert.deepEqual(parsePublicKeyFile(await Deno.readTextFile(publicPath)), first.publicKey);
    for (const wrong of ["garbage\n", "AAAA\n", `${"A".repeat(43)}\n`]) {
      await Deno.writeTextFile(publicPath, wrong);
      const again = await loadOrCreateIdentity(dir, "id");
      assert.equal(again.publicFileRewritten, true);
      assert.deepEqual(again.publicKey, first.publicKey);
      assert.deepEqual(parsePublicKeyFile(await Deno.readTextFile(publicPath)), first.publicKey);
    }
  });
});

Deno.test("a .pub without its .identity is refused rather than replaced", async () => {
  await withTempDir("sustenet_keys_", async (dir) => {
    await loadOrCreateIdentity(dir, "id");
    const pinned = await Deno.readTextFile(`${dir}/id.pub`);
    await Deno.remove(`${dir}/id.identity`);
    await assert.rejects(loadOrCreateIdentity(dir, "id"), hasCode("key_missing", KeyError));
    assert.equal(await Deno.readTextFile(`${dir}/id.pub`), pinned);
    await assert.rejects(Deno.stat(`${dir}/id.identity`), Deno.errors.NotFound);
  });
});

Deno.test("a corrupt or oversized .identity file is key_invalid", async () => {
  await withTempDir("sustenet_keys_", async (dir) => {
    for (const bytes of [new Uint8Array(0), new Uint8Array(48), new Uint8Array(5000)]) {
      await Deno.writeFile(`${dir}/id.identity`, bytes);
      await assert.rejects(loadOrCreateIdentity(dir, "id"), hasCode("key_invalid", KeyError));
    }
    await Deno.remove(`${dir}/id.identity`);
    await Deno.mkdir(`${dir}/id.identity`);
    await assert.rejects(loadOrCreateIdentity(dir, "id"), hasCode("key_invalid", KeyError));
  });
});

function keygen(cwd: string, ...args: string[]) {
  return runDeno(
    ["run", "--no-config", "--allow-read", `--allow-write=${cwd}`, KEYGEN, ...args],
    { cwd },
  );
}

Deno.test("keygen writes keys/<name> mode 0600 and says where to copy it", async () => {
  await withTempDir("sustenet_keys_", async (cwd) => {
    const made = await keygen(cwd, "eu-1");
    assert.equal(made.code, 0, made.stderr);
    assert.equal(
      made.stdout,
      "wrote keys/eu-1 (32 bytes, mode 0600) — copy it to the master's keys directory\n",
    );
    assert.equal((await loadKey(`${cwd}/keys`, "eu-1")).length, 32);
    if (!IS_WINDOWS) assert.equal(await modeOf(`${cwd}/keys/eu-1`), 0o600);

    const other = await keygen(cwd, "eu-2", "--keys-dir", "secrets");
    assert.equal(other.code, 0, other.stderr);
    assert.match(other.stdout, /^wrote secrets\/eu-2 \(32 bytes, mode 0600\)/);
  });
});

Deno.test("keygen exits 2 on an existing key unless --force, and on bad arguments", async () => {
  await withTempDir("sustenet_keys_", async (cwd) => {
    assert.equal((await keygen(cwd, "eu-1")).code, 0);
    const before = await Deno.readFile(`${cwd}/keys/eu-1`);
    const exists = await keygen(cwd, "eu-1");
    assert.equal(exists.code, 2);
    assert.match(exists.stderr, /already exists.*--force/);
    assert.deepEqual(await Deno.readFile(`${cwd}/keys/eu-1`), before);

    const forced = await keygen(cwd, "eu-1", "--force");
    assert.equal(forced.code, 0, forced.stderr);
    assert.notDeepEqual(await Deno.readFile(`${cwd}/keys/eu-1`), before);

    for (const args of [["../escape"], [], ["a", "b"], ["--bogus", "a"], ["a", "--keys-dir"]]) {
      const result = await keygen(cwd, ...args);
      assert.equal(result.code, 2, `${JSON.stringify(args)}: ${result.stderr}`);
      assert.match(result.stderr, /^keygen: /);
      assert.equal(result.stdout, "");
    }
    await assert.rejects(Deno.stat(`${cwd}/escape`), Deno.errors.NotFound);
  });
});
