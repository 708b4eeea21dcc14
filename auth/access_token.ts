// This module is browser compatible.
/**
 * Access tokens: compact JWS (RFC 7515/7519) signed with Ed25519 (`alg` `EdDSA`) through
 * WebCrypto, with a key id (`kid`) naming the signing key so keys can rotate. The claims are the
 * account id (`sub`, which becomes the player id in join tickets), the username (`name`),
 * `iss` `sustenet-auth`, `aud` `sustenet`, `iat`, `exp` (seconds) and `jti`.
 *
 * Verification is offline (a {@linkcode PublicKeySet} is all it needs) and strict: the header
 * must be exactly `EdDSA` with a known `kid`, the signature must verify, the audience must
 * match and the token must be unexpired; anything else is one {@linkcode TokenProblem}. It must
 * never accept `alg: none`, another algorithm, or a key the token itself names in its header.
 *
 * @module
 */

/** Most bytes of an access token (bounds parsing work on forged input). */
export const MAX_TOKEN_BYTES = 4096;
/** The `iss` claim. */
export const TOKEN_ISSUER = "sustenet-auth";
/** The `aud` claim. */
export const TOKEN_AUDIENCE = "sustenet";

/** The claims of an access token. */
export interface AccessClaims {
  /** Account id (the player id in tickets). */
  readonly sub: string;
  /** Normalised username. */
  readonly name: string;
  /** Issued at, Unix seconds. */
  readonly iat: number;
  /** Expires at, Unix seconds. */
  readonly exp: number;
  /** Unique token id. */
  readonly jti: string;
}

/** An Ed25519 key pair with its id. */
export interface SigningKey {
  /** Key id, written in the token header. */
  readonly kid: string;
  /** The private key (sign). */
  readonly privateKey: CryptoKey;
}

/** Why a token was refused. */
export type TokenProblem =
  | "malformed"
  | "unknown_key"
  | "bad_signature"
  | "expired"
  | "wrong_audience";

/** The result of {@linkcode verifyAccessToken}. */
export type TokenCheck =
  | { readonly ok: true; readonly claims: AccessClaims }
  | { readonly ok: false; readonly problem: TokenProblem; readonly kid?: string };

/** One public key as a JWK (RFC 8037 `OKP` / `Ed25519`). */
export interface PublicJwk {
  /** Key type: octet key pair. */
  readonly kty: "OKP";
  /** The curve. */
  readonly crv: "Ed25519";
  /** The public key, base64url. */
  readonly x: string;
  /** Key id, as tokens name it in their header. */
  readonly kid: string;
  /** The algorithm, when given. */
  readonly alg?: "EdDSA";
  /** The key's use (signatures), when given. */
  readonly use?: "sig";
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

function b64url(bytes: Uint8Array): string {
  return bytes.toBase64({ alphabet: "base64url", omitPadding: true });
}

function fromB64url(text: string): Uint8Array<ArrayBuffer> | undefined {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) return undefined;
  try {
    return Uint8Array.fromBase64(text, { alphabet: "base64url" });
  } catch (error) {
    if (error instanceof SyntaxError) return undefined;
    throw error;
  }
}

function jsonPart(text: string): Record<string, unknown> | undefined {
  const bytes = fromB64url(text);
  if (bytes === undefined) return undefined;
  try {
    const value: unknown = JSON.parse(decoder.decode(bytes));
    return typeof value === "object" && value !== null && !Array.isArray(value)
      ? value as Record<string, unknown>
      : undefined;
  } catch (error) {
    if (error instanceof SyntaxError || error instanceof TypeError) return undefined;
    throw error;
  }
}

/**
 * Signs an access token.
 *
 * @param key The signing key and its id.
 * @param claims The claims (`iss` and `aud` are added).
 * @returns The compact token `header.payload.signature`.
 *
 * @example
 * ```ts
 * import { PublicKeySet, signAccessToken, verifyAccessToken } from "./access_token.ts";
 * import assert from "node:assert/strict";
 *
 * const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, true, [
 *   "sign",
 *   "verify",
 * ]) as CryptoKeyPair;
 * const token = await signAccessToken({ kid: "k1", privateKey: pair.privateKey }, {
 *   sub: "acct-1", name: "alice", iat: 1000, exp: 1900, jti: "t1",
 * });
 * const keys = new PublicKeySet([{ kid: "k1", key: pair.publicKey }]);
 * const check = await verifyAccessToken(token, keys, 1500);
 * assert.ok(check.ok && check.claims.sub === "acct-1");
 * assert.deepEqual(await verifyAccessToken(token, keys, 1900), { ok: false, problem: "expired" });
 * ```
 */
export async function signAccessToken(key: SigningKey, claims: AccessClaims): Promise<string> {
  const header = { alg: "EdDSA", typ: "JWT", kid: key.kid };
  const payload = {
    iss: TOKEN_ISSUER,
    aud: TOKEN_AUDIENCE,
    sub: claims.sub,
    name: claims.name,
    iat: claims.iat,
    exp: claims.exp,
    jti: claims.jti,
  };
  const input = `${b64url(encoder.encode(JSON.stringify(header)))}.${
    b64url(encoder.encode(JSON.stringify(payload)))
  }`;
  const signature = await crypto.subtle.sign("Ed25519", key.privateKey, encoder.encode(input));
  return `${input}.${b64url(new Uint8Array(signature))}`;
}

/**
 * The public keys a verifier trusts, by key id.
 *
 * @example
 * ```ts
 * import { PublicKeySet } from "./access_token.ts";
 * import assert from "node:assert/strict";
 *
 * const set = await PublicKeySet.fromJwks({ keys: [] });
 * assert.equal(set.size, 0);
 * ```
 */
export class PublicKeySet {
  readonly #keys: ReadonlyMap<string, CryptoKey>;

  /**
   * Makes a new PublicKeySet.
   *
   * @param keys Key ids and their Ed25519 public keys.
   */
  constructor(keys: Iterable<{ readonly kid: string; readonly key: CryptoKey }>) {
    this.#keys = new Map([...keys].map(({ kid, key }) => [kid, key]));
  }

  /** How many keys. */
  get size(): number {
    return this.#keys.size;
  }

  /** The key ids. */
  kids(): string[] {
    return [...this.#keys.keys()];
  }

  /**
   * The key of `kid`, if trusted.
   *
   * @param kid A key id.
   */
  get(kid: string): CryptoKey | undefined {
    return this.#keys.get(kid);
  }

  /**
   * Imports a JWK Set (`{"keys": [...]}`) of Ed25519 public keys.
   *
   * @param jwks The parsed JSON.
   * @throws {TypeError} When it is not a set of Ed25519 public keys with key ids.
   */
  static async fromJwks(jwks: unknown): Promise<PublicKeySet> {
    const list = (jwks as { keys?: unknown })?.keys;
    if (!Array.isArray(list)) throw new TypeError('a JWK Set must be {"keys": [...]}');
    const keys = [];
    for (const [i, jwk] of list.entries()) {
      const { kty, crv, x, kid } = (jwk ?? {}) as Record<string, unknown>;
      if (kty !== "OKP" || crv !== "Ed25519" || typeof x !== "string" || typeof kid !== "string") {
        throw new TypeError(`keys[${i}] must be an Ed25519 public JWK with a kid`);
      }
      const key = await crypto.subtle.importKey(
        "jwk",
        { kty, crv, x },
        { name: "Ed25519" },
        false,
        ["verify"],
      );
      keys.push({ kid, key });
    }
    return new PublicKeySet(keys);
  }
}

/**
 * The key id a token's header names, without verifying anything (undefined if malformed).
 *
 * @param token A compact token.
 *
 * @example
 * ```ts
 * import { tokenKeyId } from "./access_token.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(tokenKeyId("nonsense"), undefined);
 * ```
 */
export function tokenKeyId(token: string): string | undefined {
  const header = jsonPart(token.split(".", 1)[0] ?? "");
  return typeof header?.kid === "string" ? header.kid : undefined;
}

/**
 * Verifies an access token offline.
 *
 * @param token The compact token.
 * @param keys The trusted public keys.
 * @param nowS The current time, Unix seconds.
 * @returns The claims, or why it is refused.
 */
export async function verifyAccessToken(
  token: string,
  keys: PublicKeySet,
  nowS: number,
): Promise<TokenCheck> {
  if (token.length > MAX_TOKEN_BYTES) return { ok: false, problem: "malformed" };
  const parts = token.split(".");
  if (parts.length !== 3) return { ok: false, problem: "malformed" };
  const [headerText, payloadText, signatureText] = parts as [string, string, string];
  const header = jsonPart(headerText);
  if (
    header === undefined || header.alg !== "EdDSA" || typeof header.kid !== "string" ||
    Object.keys(header).some((k) => k !== "alg" && k !== "typ" && k !== "kid")
  ) {
    return { ok: false, problem: "malformed" };
  }
  const key = keys.get(header.kid);
  if (key === undefined) return { ok: false, problem: "unknown_key", kid: header.kid };
  const signature = fromB64url(signatureText);
  if (signature === undefined || signature.length !== 64) {
    return { ok: false, problem: "malformed" };
  }
  const valid = await crypto.subtle.verify(
    "Ed25519",
    key,
    signature,
    encoder.encode(`${headerText}.${payloadText}`),
  );
  if (!valid) return { ok: false, problem: "bad_signature" };
  const p = jsonPart(payloadText);
  if (
    p === undefined || typeof p.sub !== "string" || p.sub === "" ||
    typeof p.name !== "string" || typeof p.jti !== "string" ||
    !Number.isSafeInteger(p.iat) || !Number.isSafeInteger(p.exp)
  ) {
    return { ok: false, problem: "malformed" };
  }
  if (p.aud !== TOKEN_AUDIENCE || p.iss !== TOKEN_ISSUER) {
    return { ok: false, problem: "wrong_audience" };
  }
  if (nowS >= (p.exp as number)) return { ok: false, problem: "expired" };
  return {
    ok: true,
    claims: {
      sub: p.sub,
      name: p.name,
      iat: p.iat as number,
      exp: p.exp as number,
      jti: p.jti,
    },
  };
}
