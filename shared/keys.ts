/**
 * Key files on disk. Cluster keys are 32 raw bytes in `<keysDir>/<name>` (mode 0600, directory
 * 0700); a cluster's identity key pair is `<name>.identity` (PKCS#8, 0600) beside
 * `<name>.pub` (base64url of the raw public key and a newline, 0644).
 *
 * This module must never write a key file readable by anyone but its owner, never resolve a
 * key name outside the keys directory (names are checked against
 * {@linkcode KEY_NAME_PATTERN}, so a name from the wire is safe), never overwrite a key unless
 * asked, and never put key bytes in an error message.
 *
 * @module
 */

import {
  exportIdentity,
  formatPublicKeyFile,
  generateIdentityKeyPair,
  identityKeyVersion,
  importIdentity,
  parsePublicKeyFile,
} from "./identity_key.ts";
import { AES_KEY_BYTES, generateAesKeyBytes, KeyError } from "./security.ts";
import { isKeyName, KEY_NAME_PATTERN, KEY_NAME_RULE } from "./key_name.ts";

export { KEY_NAME_PATTERN } from "./key_name.ts";

/** Upper bound on an identity or .pub file's size (a PKCS#8 X25519 key is 48 bytes). */
const MAX_KEY_FILE_BYTES = 4096;

/**
 * Checks that `name` is a safe key file name and returns it.
 *
 * @param name A key name, possibly from the network or the command line.
 * @throws {KeyError} `"key_name_invalid"` for anything but 1-64 of `A-Z a-z 0-9 _ . -`, a
 * leading `.` (hidden files, `.` and `..`), or a `.identity` / `.pub` suffix.
 *
 * @example
 * ```ts
 * import { validateKeyName } from "./keys.ts";
 * import { KeyError } from "./security.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(validateKeyName("eu-1"), "eu-1");
 * assert.throws(() => validateKeyName(".."), KeyError);
 * assert.throws(() => validateKeyName("a/b"), KeyError);
 * ```
 */
export function validateKeyName(name: string): string {
  if (!isKeyName(name)) {
    throw new KeyError(
      "key_name_invalid",
      `invalid key name ${JSON.stringify(name.slice(0, 80))}: use ${KEY_NAME_RULE}`,
    );
  }
  return name;
}

/**
 * Returns the path of key `name` in `dir` (after validating the name).
 *
 * @example
 * ```ts
 * import { keyPath } from "./keys.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(keyPath("keys", "eu-1"), "keys/eu-1");
 * assert.equal(keyPath("keys/", "eu-1"), "keys/eu-1");
 * ```
 */
export function keyPath(dir: string, name: string): string {
  return join(dir, validateKeyName(name));
}

function join(dir: string, file: string): string {
  return dir.endsWith("/") || dir.endsWith("\\") ? `${dir}${file}` : `${dir}/${file}`;
}

/**
 * Options of {@linkcode saveKey} and {@linkcode generateKey}.
 *
 * @example
 * ```ts
 * import { generateKey, loadKey, saveKey, type SaveKeyOptions } from "./keys.ts";
 * import assert from "node:assert/strict";
 *
 * // Rotating a key: replace the file on purpose.
 * const dir = await Deno.makeTempDir();
 * await generateKey(dir, "cluster_key");
 * const next = crypto.getRandomValues(new Uint8Array(32));
 * const options: SaveKeyOptions = { overwrite: true };
 * await saveKey(dir, "cluster_key", next, options);
 * assert.deepEqual(await loadKey(dir, "cluster_key"), next);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export interface SaveKeyOptions {
  /**
   * Replace an existing key file (atomically, by rename).
   * @default {false}
   */
  readonly overwrite?: boolean;
}

async function ensureKeysDir(dir: string): Promise<void> {
  // `mode` applies only to directories this call creates; an existing one is left as it is.
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
}

/** Writes `data` to `path` atomically via a hidden temp file and rename (replaces). */
async function replaceFile(
  dir: string,
  path: string,
  data: Uint8Array,
  mode: number,
): Promise<void> {
  const suffix = crypto.getRandomValues(new Uint8Array(6)).toHex();
  const temp = join(dir, `.keytmp-${suffix}`);
  await Deno.writeFile(temp, data, { createNew: true, mode });
  try {
    await Deno.rename(temp, path);
  } catch (renameError) {
    try {
      await Deno.remove(temp);
    } catch (removeError) {
      throw new AggregateError([renameError, removeError], `could not replace ${path}`);
    }
    throw renameError;
  }
}

/**
 * Saves a 32-byte cluster key as `<dir>/<name>` with mode 0600, creating `dir` (0700) if
 * needed.
 *
 * @param dir The keys directory.
 * @param name The key name (see {@linkcode validateKeyName}).
 * @param bytes Exactly 32 bytes.
 * @param options `overwrite: true` to replace an existing file.
 * @returns The path written.
 * @throws {KeyError} `"key_name_invalid"`, `"key_invalid"` (not 32 bytes) or `"key_exists"`.
 *
 * @example
 * ```ts
 * import { loadKey, saveKey } from "./keys.ts";
 * import { generateAesKeyBytes, KeyError } from "./security.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const key = generateAesKeyBytes();
 * await saveKey(dir, "eu-1", key);
 * assert.deepEqual(await loadKey(dir, "eu-1"), key);
 * await assert.rejects(saveKey(dir, "eu-1", key), KeyError); // no silent overwrite
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function saveKey(
  dir: string,
  name: string,
  bytes: Uint8Array,
  options: SaveKeyOptions = {},
): Promise<string> {
  const path = keyPath(dir, name);
  if (bytes.length !== AES_KEY_BYTES) {
    throw new KeyError(
      "key_invalid",
      `cluster key must be ${AES_KEY_BYTES} bytes, got ${bytes.length}`,
    );
  }
  await ensureKeysDir(dir);
  if (options.overwrite === true) {
    await replaceFile(dir, path, bytes, 0o600);
    return path;
  }
  try {
    // createNew makes the existence check and the creation one atomic step.
    await Deno.writeFile(path, bytes, { createNew: true, mode: 0o600 });
  } catch (cause) {
    if (cause instanceof Deno.errors.AlreadyExists) {
      throw new KeyError("key_exists", `${path} already exists; refusing to overwrite it`, {
        cause,
      });
    }
    throw cause;
  }
  return path;
}

/**
 * Generates a random 32-byte cluster key and saves it as `<dir>/<name>` (mode 0600).
 *
 * @returns The path written.
 * @throws {KeyError} As {@linkcode saveKey}.
 *
 * @example
 * ```ts
 * import { generateKey } from "./keys.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const path = await generateKey(dir, "eu-1");
 * assert.equal((await Deno.stat(path)).size, 32);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function generateKey(
  dir: string,
  name: string,
  options: SaveKeyOptions = {},
): Promise<string> {
  return await saveKey(dir, name, generateAesKeyBytes(), options);
}

/**
 * Loads the 32-byte cluster key `<dir>/<name>`.
 *
 * @param dir The keys directory.
 * @param name The key name; safe to take from the network (validated first).
 * @throws {KeyError} `"key_name_invalid"`, `"key_missing"` (no such file) or `"key_invalid"`
 * (not a file, or not 32 bytes: the length is named).
 *
 * @example A missing key
 * ```ts
 * import { loadKey } from "./keys.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await assert.rejects(loadKey(dir, "nope"), (e: Error & { code?: string }) => {
 *   return e.code === "key_missing";
 * });
 * await Deno.remove(dir);
 * ```
 */
export async function loadKey(dir: string, name: string): Promise<Uint8Array<ArrayBuffer>> {
  const path = keyPath(dir, name);
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (cause) {
    if (cause instanceof Deno.errors.NotFound) {
      throw new KeyError("key_missing", `no key file ${path}`, { cause });
    }
    throw cause;
  }
  // Checking the size first means a huge file is never read into memory.
  if (!info.isFile) throw new KeyError("key_invalid", `${path} is not a file`);
  if (info.size !== AES_KEY_BYTES) {
    throw new KeyError(
      "key_invalid",
      `${path} must hold ${AES_KEY_BYTES} bytes, got ${info.size}`,
    );
  }
  const bytes = await Deno.readFile(path);
  if (bytes.length !== AES_KEY_BYTES) {
    throw new KeyError(
      "key_invalid",
      `${path} must hold ${AES_KEY_BYTES} bytes, got ${bytes.length}`,
    );
  }
  return bytes;
}

/**
 * A file in a keys directory that {@linkcode loadAllKeys} did not load as-is: `skipped` (not
 * a cluster key, e.g. an identity file), `invalid` (looks like a key but is not usable) or
 * `insecure` (loaded, but readable by group or others).
 *
 * @example
 * ```ts
 * import type { KeyFileProblem } from "./keys.ts";
 * import assert from "node:assert/strict";
 *
 * const problem: KeyFileProblem = { file: "eu-1", kind: "invalid", reason: "got 31 bytes" };
 * assert.equal(problem.kind, "invalid");
 * ```
 */
export interface KeyFileProblem {
  /** The file name inside the directory (or the directory itself when it is missing). */
  readonly file: string;
  /** How serious: skipped and insecure are informational, invalid means a key was refused. */
  readonly kind: "skipped" | "invalid" | "insecure";
  /** Why, for the log (never key bytes). */
  readonly reason: string;
}

/**
 * The result of {@linkcode loadAllKeys}.
 *
 * @example
 * ```ts
 * import { type LoadedKeys, loadAllKeys } from "./keys.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const loaded: LoadedKeys = await loadAllKeys(dir);
 * assert.equal(loaded.keys.size, 0);
 * await Deno.remove(dir);
 * ```
 */
export interface LoadedKeys {
  /** Every valid cluster key by name. */
  readonly keys: ReadonlyMap<string, Uint8Array<ArrayBuffer>>;
  /** Files not loaded (or loaded with a warning), in file name order. */
  readonly problems: readonly KeyFileProblem[];
}

/**
 * Loads every valid 32-byte cluster key in `dir`. Never throws for a bad file: identity
 * files, hidden files, directories, bad names and wrong lengths are reported in `problems`.
 * A missing directory gives no keys and one problem.
 *
 * @param dir The keys directory.
 *
 * @example
 * ```ts
 * import { generateKey, loadAllKeys } from "./keys.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await generateKey(dir, "eu-1");
 * await Deno.writeTextFile(`${dir}/eu-1.pub`, "not a cluster key\n");
 * const { keys, problems } = await loadAllKeys(dir);
 * assert.deepEqual([...keys.keys()], ["eu-1"]);
 * assert.equal(problems[0].kind, "skipped");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function loadAllKeys(dir: string): Promise<LoadedKeys> {
  const keys = new Map<string, Uint8Array<ArrayBuffer>>();
  const problems: KeyFileProblem[] = [];
  const names: string[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) names.push(entry.name);
  } catch (cause) {
    if (!(cause instanceof Deno.errors.NotFound)) throw cause;
    problems.push({ file: dir, kind: "invalid", reason: "keys directory does not exist" });
    return { keys, problems };
  }
  names.sort();
  for (const name of names) {
    if (name.startsWith(".")) {
      problems.push({ file: name, kind: "skipped", reason: "hidden file" });
    } else if (name.endsWith(".identity")) {
      problems.push({ file: name, kind: "skipped", reason: "identity private key" });
    } else if (name.endsWith(".pub")) {
      problems.push({ file: name, kind: "skipped", reason: "identity public key" });
    } else if (!KEY_NAME_PATTERN.test(name)) {
      problems.push({ file: name, kind: "invalid", reason: "not a valid key name" });
    } else {
      await loadOneKey(dir, name, keys, problems);
    }
  }
  return { keys, problems };
}

async function loadOneKey(
  dir: string,
  name: string,
  keys: Map<string, Uint8Array<ArrayBuffer>>,
  problems: KeyFileProblem[],
): Promise<void> {
  const path = join(dir, name);
  try {
    const info = await Deno.stat(path);
    if (!info.isFile) {
      problems.push({ file: name, kind: "skipped", reason: "not a file" });
      return;
    }
    if (info.size !== AES_KEY_BYTES) {
      problems.push({
        file: name,
        kind: "invalid",
        reason: `must hold ${AES_KEY_BYTES} bytes, got ${info.size}`,
      });
      return;
    }
    const bytes = await Deno.readFile(path);
    if (bytes.length !== AES_KEY_BYTES) {
      problems.push({
        file: name,
        kind: "invalid",
        reason: `must hold ${AES_KEY_BYTES} bytes, got ${bytes.length}`,
      });
      return;
    }
    keys.set(name, bytes);
    if (info.mode !== null && (info.mode & 0o077) !== 0) {
      const mode = (info.mode & 0o777).toString(8).padStart(4, "0");
      problems.push({ file: name, kind: "insecure", reason: `mode ${mode}, should be 0600` });
    }
  } catch (cause) {
    // A file that vanished or that the OS will not let us read is one bad file, not a failed
    // load; Deno permission errors (NotCapable) are a misconfigured process and propagate.
    if (cause instanceof Deno.errors.NotFound || cause instanceof Deno.errors.PermissionDenied) {
      const reason = cause instanceof Deno.errors.NotFound
        ? "vanished while loading"
        : "unreadable";
      problems.push({ file: name, kind: "invalid", reason });
      return;
    }
    throw cause;
  }
}

/**
 * A cluster identity loaded (or created) by {@linkcode loadOrCreateIdentity}.
 *
 * @example
 * ```ts
 * import { type LoadedIdentity, loadOrCreateIdentity } from "./keys.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const identity: LoadedIdentity = await loadOrCreateIdentity(dir, "cluster_identity");
 * assert.equal(identity.created, true);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export interface LoadedIdentity {
  /** X25519 private key, non-extractable, usable only for `deriveBits`. */
  readonly privateKey: CryptoKey;
  /** The raw 32-byte public key. */
  readonly publicKey: Uint8Array<ArrayBuffer>;
  /** u16 key version (1..65535) from {@linkcode identityKeyVersion}. */
  readonly version: number;
  /** True when this call generated the pair. */
  readonly created: boolean;
  /** True when `<name>.pub` was missing or did not match the private key and was rewritten. */
  readonly publicFileRewritten: boolean;
}

/**
 * Loads the identity key pair `<dir>/<name>.identity` + `<name>.pub`, or creates both when
 * neither exists. The private key is the source of truth: a missing or mismatched `.pub` is
 * rewritten from it. A `.pub` without its `.identity` is refused, because clients may have
 * pinned that public key and silently replacing it would lock them out.
 *
 * @param dir The keys directory (created 0700 if needed).
 * @param name The identity's base name (see {@linkcode validateKeyName}).
 * @throws {KeyError} `"key_name_invalid"`, `"key_invalid"` (unreadable identity file) or
 * `"key_missing"` (a `.pub` without its `.identity`).
 *
 * @example Created once, then loaded
 * ```ts
 * import { loadOrCreateIdentity } from "./keys.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const first = await loadOrCreateIdentity(dir, "cluster_identity");
 * const again = await loadOrCreateIdentity(dir, "cluster_identity");
 * assert.equal(again.created, false);
 * assert.deepEqual(again.publicKey, first.publicKey);
 * assert.equal(again.version, first.version);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function loadOrCreateIdentity(dir: string, name: string): Promise<LoadedIdentity> {
  validateKeyName(name);
  const privatePath = join(dir, `${name}.identity`);
  const publicPath = join(dir, `${name}.pub`);
  let pkcs8 = await readIdentityFile(privatePath);
  let created = false;
  if (pkcs8 === undefined) {
    if (await readPublicFile(publicPath) !== undefined) {
      throw new KeyError(
        "key_missing",
        `${publicPath} exists but ${privatePath} does not; clients may have pinned that key, ` +
          `so restore the private key (or delete the .pub to start a new identity)`,
      );
    }
    const exported = await exportIdentity(await generateIdentityKeyPair());
    await ensureKeysDir(dir);
    try {
      await Deno.writeFile(privatePath, exported.privatePkcs8, { createNew: true, mode: 0o600 });
      pkcs8 = exported.privatePkcs8;
      created = true;
    } catch (cause) {
      if (!(cause instanceof Deno.errors.AlreadyExists)) throw cause;
      // Another process created it first: use theirs so both agree on one identity.
      pkcs8 = await readIdentityFile(privatePath);
      if (pkcs8 === undefined) throw cause;
    }
  }
  let identity;
  try {
    identity = await importIdentity(pkcs8);
  } catch (cause) {
    if (!(cause instanceof KeyError)) throw cause;
    throw new KeyError("key_invalid", `${privatePath} is not an X25519 PKCS#8 key`, { cause });
  }
  const publicText = formatPublicKeyFile(identity.publicRaw);
  const currentText = await readPublicFile(publicPath);
  const publicFileRewritten = currentText === undefined || !samePublicKey(currentText, publicText);
  if (publicFileRewritten) {
    await replaceFile(dir, publicPath, new TextEncoder().encode(publicText), 0o644);
  }
  return {
    privateKey: identity.privateKey,
    publicKey: identity.publicRaw,
    version: await identityKeyVersion(identity.publicRaw),
    created,
    publicFileRewritten: publicFileRewritten && !created,
  };
}

function samePublicKey(fileText: string, expectedText: string): boolean {
  try {
    return formatPublicKeyFile(parsePublicKeyFile(fileText)) === expectedText;
  } catch (cause) {
    // An unparsable .pub is simply not the right key; it gets rewritten.
    if (cause instanceof KeyError) return false;
    throw cause;
  }
}

/** Reads a small file, or undefined when it does not exist; never reads more than `maxBytes`. */
async function readBoundedFile(path: string, maxBytes: number): Promise<Uint8Array | undefined> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (cause) {
    if (cause instanceof Deno.errors.NotFound) return undefined;
    throw cause;
  }
  if (!info.isFile || info.size > maxBytes) {
    throw new KeyError("key_invalid", `${path} is not a file of at most ${maxBytes} bytes`);
  }
  return await Deno.readFile(path);
}

async function readIdentityFile(path: string): Promise<Uint8Array | undefined> {
  return await readBoundedFile(path, MAX_KEY_FILE_BYTES);
}

async function readPublicFile(path: string): Promise<string | undefined> {
  const bytes = await readBoundedFile(path, MAX_KEY_FILE_BYTES);
  // Invalid UTF-8 becomes U+FFFD, which then fails base64url parsing: a mismatch, rewritten.
  return bytes === undefined ? undefined : new TextDecoder().decode(bytes);
}
