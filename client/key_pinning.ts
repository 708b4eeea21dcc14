// This module is browser compatible.
/**
 * Which cluster identity key a client expects before it joins (docs/SECURITY.md, "pinned
 * keys"). In order: a key pinned in the options for the cluster's name, or `"*"` (given as
 * bytes, a `.pub` file read once, or a `domain_pub_key` URL fetched once);
 * then, with `requestKey` on, the key the cluster sent on first use (RequestKey / SendPubKey,
 * confirmed later by VersionOfKey); and when nothing is pinned, the key the master sent in
 * JoinTicket (trust-on-master: the master is the party that issues tickets anyway).
 *
 * Whatever the source, a pinned or cached key that differs from the master's is a
 * `key_mismatch` before anything is sent to the cluster. The handshake then proves that the
 * cluster holds the private half of the expected key.
 *
 * Pins are keyed by a stable identity — the cluster's name — never by the `host:port` the
 * master passes on: an address is what a man in the middle (or a compromised listing) would
 * change, and a pin looked up by the changed address would silently not apply. A pin keyed
 * like `host:port` is therefore refused when the pinning is made.
 *
 * It must never accept a key it cannot parse as 32 raw bytes, never refetch a key it already
 * loaded, and never log key bytes. Fetches URLs, and reads files through the `readTextFile`
 * it is given (Deno's client gives one; a browser has no files); nothing else.
 *
 * @module
 */

import { parsePublicKeyFile, X25519_PUBLIC_KEY_BYTES } from "../shared/identity_key.ts";
import { readBoundedBody } from "../shared/read_bounded_body.ts";
import { KeyError } from "../shared/security.ts";
import { ClientError } from "./errors.ts";

/** Largest `.pub` file or `domain_pub_key` response accepted, in bytes. */
const MAX_KEY_TEXT_BYTES = 1024;

/**
 * Where a pinned key comes from: the raw 32 bytes, a `.pub` file (base64url text, read once),
 * or a `domain_pub_key` URL (`https:`, `http:` or `file:`, fetched once).
 */
export type PinnedKeySource =
  | Uint8Array
  | { readonly file: string }
  | { readonly url: string | URL };

/** A cluster key remembered from SendPubKey (trust on first use). */
export interface CachedClusterKey {
  /** Version of the key (u16, never 0). */
  readonly version: number;
  /** The raw 32-byte public key. */
  readonly publicKey: Uint8Array;
}

/** Options of {@linkcode KeyPinning}. */
export interface KeyPinningOptions {
  /**
   * Pinned keys by cluster name, or `"*"` (every cluster). A `"host:port"` key is refused
   * (RangeError): addresses come from the master and are not an identity.
   */
  readonly pins?: Readonly<Record<string, PinnedKeySource>>;
  /**
   * Ask each cluster for its key (RequestKey with the cached version) and remember the first
   * one seen per `host:port`; later joins expect that key.
   *
   * @default {false}
   */
  readonly requestKey?: boolean;
  /** Keys remembered by an earlier run (from {@linkcode KeyPinning.cachedKeys}). */
  readonly cache?: Readonly<Record<string, CachedClusterKey>>;
  /**
   * Time allowed to fetch a `domain_pub_key` URL.
   *
   * @default {5000}
   */
  readonly fetchTimeoutMs?: number;
  /**
   * Reads a `{ file }` pin's text (the Deno client passes `readKeyFile` of
   * `tcp_connector.ts`). Without it, file pins fail with `key_unavailable` when used.
   */
  readonly readTextFile?: (path: string) => Promise<string>;
}

/** The cluster a key is decided for. */
export interface ClusterTarget {
  /** Host from JoinTicket. */
  readonly host: string;
  /** Port from JoinTicket. */
  readonly port: number;
  /** The cluster's name from SendClusters, if known. */
  readonly name?: string;
}

/** Which key the handshake with a cluster must prove, and whether to send RequestKey. */
export interface KeyDecision {
  /** The raw 32-byte key expected. */
  readonly publicKey: Uint8Array;
  /** Where it came from. */
  readonly source: "pinned" | "cache" | "master";
  /** Present when RequestKey is on: the version to send (0 = no usable cached key). */
  readonly requestKey?: { readonly cachedVersion: number };
}

/**
 * Whether a pin key looks like an address (`host:port`, `[v6]:port`) rather than a cluster
 * name; such pins are refused, since addresses come from the master.
 *
 * @param where The pin key.
 *
 * @example
 * ```ts
 * import { looksLikeAddress } from "./key_pinning.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(looksLikeAddress("127.0.0.1:6257"), true);
 * assert.equal(looksLikeAddress("[::1]:6257"), true);
 * assert.equal(looksLikeAddress("eu-1"), false);
 * assert.equal(looksLikeAddress("*"), false);
 * ```
 */
export function looksLikeAddress(where: string): boolean {
  return /^(\[[^\]]*\]|[^\s:]*|[0-9a-fA-F:.]*):\d{1,5}$/.test(where);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function describe(source: PinnedKeySource): string {
  if (source instanceof Uint8Array) return "pinned bytes";
  return "file" in source ? `file ${source.file}` : `URL ${String(source.url)}`;
}

/** Reads a response body of at most {@linkcode MAX_KEY_TEXT_BYTES}, never buffering more. */
async function readSmallBody(response: Response, url: string): Promise<string> {
  const bytes = await readBoundedBody(response.body, MAX_KEY_TEXT_BYTES);
  if (bytes === undefined) {
    throw new ClientError("key_unavailable", `${url} is not a small key file`);
  }
  return new TextDecoder().decode(bytes);
}

/**
 * Decides the cluster key a join expects, from pins, the first-use cache or the master.
 *
 * @example A pin that the master's key must match
 * ```ts
 * import { KeyPinning } from "./key_pinning.ts";
 * import assert from "node:assert/strict";
 *
 * const key = new Uint8Array(32).fill(7);
 * const pinning = new KeyPinning({ pins: { "eu-1": key } });
 * const target = { host: "127.0.0.1", port: 6257, name: "eu-1" };
 * assert.equal((await pinning.decide(target, key)).source, "pinned");
 * // Whatever address the master gives for eu-1, its key must be the pinned one.
 * const moved = { host: "10.6.6.6", port: 1, name: "eu-1" };
 * await assert.rejects(pinning.decide(moved, new Uint8Array(32)), (e: Error & { code?: string }) =>
 *   e.code === "key_mismatch"
 * );
 * // Nothing pinned for another cluster: trust the master's key.
 * assert.equal((await pinning.decide({ host: "10.0.0.2", port: 1, name: "us-1" }, key)).source, "master");
 * ```
 */
export class KeyPinning {
  readonly #pins: ReadonlyMap<string, PinnedKeySource>;
  readonly #loaded = new Map<string, Promise<Uint8Array>>();
  readonly #cache = new Map<string, CachedClusterKey>();
  readonly #requestKey: boolean;
  readonly #fetchTimeoutMs: number;
  readonly #readTextFile: ((path: string) => Promise<string>) | undefined;

  /**
   * @param options Pins, the first-use cache and the fetch timeout.
   * @throws {RangeError} If a pinned byte key is not 32 bytes or a cached entry is malformed.
   */
  constructor(options: KeyPinningOptions = {}) {
    const pins = new Map<string, PinnedKeySource>();
    for (const [where, source] of Object.entries(options.pins ?? {})) {
      if (looksLikeAddress(where)) {
        throw new RangeError(
          `pin ${JSON.stringify(where)} looks like host:port: pin a cluster by its name ` +
            `(or "*"), since the address is whatever the master passes on`,
        );
      }
      if (where.length === 0) throw new RangeError('a pin needs a cluster name or "*"');
      if (source instanceof Uint8Array && source.length !== X25519_PUBLIC_KEY_BYTES) {
        throw new RangeError(
          `pinned key for ${where} must be ${X25519_PUBLIC_KEY_BYTES} bytes, got ${source.length}`,
        );
      }
      pins.set(where, source);
    }
    this.#pins = pins;
    for (const [where, entry] of Object.entries(options.cache ?? {})) {
      if (
        entry.publicKey.length !== X25519_PUBLIC_KEY_BYTES || !Number.isInteger(entry.version) ||
        entry.version < 1 || entry.version > 0xffff
      ) {
        throw new RangeError(`cached key for ${where} needs 32 bytes and a version 1..65535`);
      }
      this.#cache.set(where, entry);
    }
    this.#requestKey = options.requestKey ?? false;
    this.#fetchTimeoutMs = options.fetchTimeoutMs ?? 5000;
    this.#readTextFile = options.readTextFile;
  }

  /**
   * `true` if some key is pinned by cluster name (the client then needs the names from
   * SendClusters before it can decide); with only `"*"` it is `false`.
   *
   * @example
   * ```ts
   * import { KeyPinning } from "./key_pinning.ts";
   * import assert from "node:assert/strict";
   *
   * assert.equal(new KeyPinning({ pins: { "eu-1": new Uint8Array(32) } }).pinsByName, true);
   * assert.equal(new KeyPinning({ pins: { "*": new Uint8Array(32) } }).pinsByName, false);
   * assert.throws(() => new KeyPinning({ pins: { "127.0.0.1:6257": new Uint8Array(32) } }), RangeError);
   * ```
   */
  get pinsByName(): boolean {
    for (const where of this.#pins.keys()) if (where !== "*") return true;
    return false;
  }

  /**
   * The key pinned for a cluster (by name, then `"*"`), loading a file or URL source the first
   * time it is needed. The address is never consulted.
   *
   * @param target The cluster.
   * @returns The raw key, or `undefined` if nothing is pinned for it.
   * @throws {ClientError} `key_unavailable` if the source cannot be read or is not a key.
   *
   * @example
   * ```ts
   * import { KeyPinning } from "./key_pinning.ts";
   * import assert from "node:assert/strict";
   *
   * const key = new Uint8Array(32).fill(1);
   * const pinning = new KeyPinning({ pins: { "*": key } });
   * assert.deepEqual(await pinning.pinnedKey({ host: "h", port: 1 }), key);
   * ```
   */
  async pinnedKey(target: ClusterTarget): Promise<Uint8Array | undefined> {
    for (const where of [target.name, "*"]) {
      if (where === undefined) continue;
      const source = this.#pins.get(where);
      if (source !== undefined) return await this.#load(where, source);
    }
    return undefined;
  }

  /**
   * Decides the key a join to `target` must prove, given the key the master sent.
   *
   * @param target The cluster (host and port from JoinTicket, name if known).
   * @param masterKey The `clusterPublicKey` of JoinTicket.
   * @throws {ClientError} `key_mismatch` if a pinned or cached key differs from the master's;
   * `key_unavailable` if a pinned source cannot be loaded.
   *
   * @example First use with RequestKey on
   * ```ts
   * import { KeyPinning } from "./key_pinning.ts";
   * import assert from "node:assert/strict";
   *
   * const key = new Uint8Array(32).fill(3);
   * const pinning = new KeyPinning({ requestKey: true });
   * const target = { host: "127.0.0.1", port: 7000 };
   * assert.deepEqual(await pinning.decide(target, key), {
   *   publicKey: key,
   *   source: "master",
   *   requestKey: { cachedVersion: 0 },
   * });
   * pinning.remember(target, 9, key); // the cluster sent SendPubKey(9, key)
   * const again = await pinning.decide(target, key);
   * assert.equal(again.source, "cache");
   * assert.deepEqual(again.requestKey, { cachedVersion: 9 });
   * ```
   */
  async decide(target: ClusterTarget, masterKey: Uint8Array): Promise<KeyDecision> {
    const where = `${target.host}:${target.port}`;
    const pinned = await this.pinnedKey(target);
    const cached = this.#requestKey ? this.#cache.get(where) : undefined;
    let publicKey: Uint8Array;
    let source: KeyDecision["source"];
    if (pinned !== undefined) {
      publicKey = pinned;
      source = "pinned";
    } else if (cached !== undefined) {
      publicKey = cached.publicKey;
      source = "cache";
    } else {
      publicKey = masterKey;
      source = "master";
    }
    if (!sameBytes(publicKey, masterKey)) {
      throw new ClientError(
        "key_mismatch",
        `the master's key for cluster ${target.name ?? where} is not the ${source} key`,
      );
    }
    if (!this.#requestKey) return { publicKey, source };
    // A cached version is only worth confirming if it is the key expected now.
    const cachedVersion = cached !== undefined && sameBytes(cached.publicKey, publicKey)
      ? cached.version
      : 0;
    return { publicKey, source, requestKey: { cachedVersion } };
  }

  /**
   * Remembers the key a cluster sent in SendPubKey (after the handshake checked it).
   *
   * @param target The cluster.
   * @param version The key's version.
   * @param publicKey The raw key.
   *
   * @example
   * ```ts
   * import { KeyPinning } from "./key_pinning.ts";
   * import assert from "node:assert/strict";
   *
   * const pinning = new KeyPinning({ requestKey: true });
   * pinning.remember({ host: "h", port: 1 }, 5, new Uint8Array(32));
   * assert.deepEqual(Object.keys(pinning.cachedKeys()), ["h:1"]);
   * ```
   */
  remember(target: ClusterTarget, version: number, publicKey: Uint8Array): void {
    if (version < 1 || publicKey.length !== X25519_PUBLIC_KEY_BYTES) return;
    this.#cache.set(`${target.host}:${target.port}`, { version, publicKey: publicKey.slice() });
  }

  /**
   * The first-use cache, to persist and pass back as `cache` next run.
   *
   * @example
   * ```ts
   * import { KeyPinning } from "./key_pinning.ts";
   * import assert from "node:assert/strict";
   *
   * assert.deepEqual(new KeyPinning().cachedKeys(), {});
   * ```
   */
  cachedKeys(): Record<string, CachedClusterKey> {
    return Object.fromEntries(this.#cache);
  }

  #load(where: string, source: PinnedKeySource): Promise<Uint8Array> {
    if (source instanceof Uint8Array) return Promise.resolve(source);
    let loading = this.#loaded.get(where);
    if (loading === undefined) {
      loading = this.#read(source).catch((cause: unknown) => {
        // A failed load is not remembered: the next join tries again.
        this.#loaded.delete(where);
        if (cause instanceof ClientError) throw cause;
        throw new ClientError(
          "key_unavailable",
          `pinned key for ${where} (${describe(source)}) cannot be loaded: ${
            cause instanceof Error ? cause.message : String(cause)
          }`,
          { cause },
        );
      });
      this.#loaded.set(where, loading);
    }
    return loading;
  }

  async #read(source: { readonly file: string } | { readonly url: string | URL }): Promise<
    Uint8Array
  > {
    let text: string;
    if ("file" in source) {
      if (this.#readTextFile === undefined) {
        throw new ClientError(
          "key_unavailable",
          `${source.file}: this client cannot read files; pin the key as bytes or a URL`,
        );
      }
      text = await this.#readTextFile(source.file);
    } else {
      const response = await fetch(source.url, {
        signal: AbortSignal.timeout(this.#fetchTimeoutMs),
      });
      if (!response.ok) {
        await response.body?.cancel();
        throw new ClientError(
          "key_unavailable",
          `${String(source.url)} answered HTTP ${response.status}`,
        );
      }
      text = await readSmallBody(response, String(source.url));
    }
    try {
      return parsePublicKeyFile(text);
    } catch (cause) {
      if (!(cause instanceof KeyError)) throw cause;
      throw new ClientError("key_unavailable", `${describe(source)} is not a public key`, {
        cause,
      });
    }
  }
}
