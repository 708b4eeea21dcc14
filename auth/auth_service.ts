/**
 * The account service's HTTP JSON API as one request handler, independent of the listener
 * (`start_auth.ts` puts it on `Deno.serve`). Routes:
 *
 * | Method and path | Body | Answer |
 * | --- | --- | --- |
 * | `POST /v1/register` | `{username, password}` | 201 tokens |
 * | `POST /v1/login` | `{username, password}` | 200 tokens |
 * | `POST /v1/refresh` | `{refresh_token}` | 200 tokens (the old refresh token is revoked) |
 * | `POST /v1/logout` | `{refresh_token}` | 204 |
 * | `POST /v1/password` | `{current_password, new_password}` + `Authorization: Bearer` | 204 |
 * | `GET /v1/me` | `Authorization: Bearer` | 200 `{account_id, username, created_at}` |
 * | `POST /v1/device` | `{device_id}` | 201 tokens of a new device account, 200 of its existing one |
 * | `POST /v1/device/link` | `{username, password}` + `Authorization: Bearer` | 204 |
 * | `GET /.well-known/jwks.json` | | the public keys (JWK Set) |
 * | `GET /health`, `GET /metrics` | | status JSON, Prometheus text |
 *
 * Every refusal is a JSON `{"error": code, "message": text}` with a 4xx status, and changes
 * nothing. Log-in failures read the same whether the account exists or not, and an unknown
 * user costs one dummy hash, so neither message nor timing enumerates accounts. It must never
 * log a password, a token or a hash.
 *
 * @module
 */

import { roleLogger } from "../shared/logging.ts";
import { readBoundedBody } from "../shared/read_bounded_body.ts";
import {
  Counter,
  LabeledCounter,
  type MetricFamily,
  PROMETHEUS_CONTENT_TYPE,
  renderPrometheus,
} from "../shared/metrics.ts";
import {
  type AccessClaims,
  PublicKeySet,
  signAccessToken,
  verifyAccessToken,
} from "./access_token.ts";
import type { AccountRecord, AccountStore } from "./account_store.ts";
import { AuthError } from "./auth_error.ts";
import type { KeyRing } from "./key_ring.ts";
import { LoginLimiter, type LoginLimits } from "./login_limiter.ts";
import type { PasswordHasher } from "./password_hasher.ts";
import { normalizeUsername, validatePassword } from "./username.ts";

const logger = roleLogger("auth");

/** Options of {@linkcode AuthService}. */
export interface AuthServiceOptions {
  /** Where accounts live. */
  readonly store: AccountStore;
  /** Password KDF. */
  readonly hasher: PasswordHasher;
  /** Signing keys. */
  readonly keyRing: KeyRing;
  /** Access token lifetime, in seconds. */
  readonly accessTokenTtlS: number;
  /** Refresh token lifetime, in seconds. */
  readonly refreshTokenTtlS: number;
  /** Log-in attempt limits. */
  readonly limits: LoginLimits;
  /** Largest request body, in bytes. @default {8192} */
  readonly maxBodyBytes?: number;
  /**
   * Most password hashes running or waiting at once; past it a request is answered `503 busy`
   * at once instead of queueing (a flood from many addresses cannot pile up work). @default {64}
   */
  readonly maxPendingHashes?: number;
  /** Wall clock, Unix ms. @default {Date.now} */
  readonly now?: () => number;
}

/** How a registration or a login ended, as a metric label. */
export type AuthOutcome = "ok" | "refused" | "limited";

/** The service's counters, on `/metrics`. */
export class AuthMetrics {
  /** Registrations by outcome. */
  readonly registrations: LabeledCounter<AuthOutcome> = new LabeledCounter<AuthOutcome>(
    "sustenet_auth_registrations_total",
    "Registration requests: ok, refused (invalid or taken), limited (429)",
    "outcome",
    ["ok", "refused", "limited"],
  );
  /** Log-ins by outcome. */
  readonly logins: LabeledCounter<AuthOutcome> = new LabeledCounter<AuthOutcome>(
    "sustenet_auth_logins_total",
    "Log-in requests: ok, refused (wrong credentials or invalid input), limited (429)",
    "outcome",
    ["ok", "refused", "limited"],
  );
  /** Refresh token rotations by outcome. */
  readonly refreshes: LabeledCounter<"ok" | "invalid" | "reused"> = new LabeledCounter<
    "ok" | "invalid" | "reused"
  >(
    "sustenet_auth_refreshes_total",
    "Refresh requests: ok, invalid (unknown/expired), reused (a revoked token: all revoked)",
    "outcome",
    ["ok", "invalid", "reused"],
  );
  /** Answers with a 4xx status. */
  readonly clientErrors: Counter = new Counter(
    "sustenet_auth_client_errors_total",
    "Requests answered with a 4xx status",
  );
  /** Requests refused because too many hashes were pending. */
  readonly busy: Counter = new Counter(
    "sustenet_auth_busy_total",
    "Requests answered 503 busy: max_pending_hashes password hashes were already pending",
  );
  /** Answers with a 5xx status. */
  readonly serverErrors: Counter = new Counter(
    "sustenet_auth_server_errors_total",
    "Requests answered with a 5xx status",
  );

  /** Every family. */
  families(): MetricFamily[] {
    return [
      this.registrations,
      this.logins,
      this.refreshes,
      this.busy,
      this.clientErrors,
      this.serverErrors,
    ];
  }
}

/** A device's id: a random secret it generates once and keeps. */
const DEVICE_ID = /^[A-Za-z0-9_-]{32,256}$/;
/** Username prefix of device accounts until linked (never a valid registered name). */
const DEVICE_PREFIX = "device:";
/** The password hash of device accounts: not a scrypt string, so nothing ever matches it. */
const NO_PASSWORD = "!device";

const JSON_HEADERS = { "content-type": "application/json", "cache-control": "no-store" };

function json(body: unknown, status = 200, extra: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { ...JSON_HEADERS, ...extra } });
}

function errorResponse(error: AuthError): Response {
  const extra: Record<string, string> = error.retryAfterS === undefined
    ? {}
    : { "retry-after": String(error.retryAfterS) };
  if (error.code === "method_not_allowed") extra.allow = "GET, POST";
  return json({ error: error.code, message: error.message }, error.status, extra);
}

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return new Uint8Array(digest).toHex();
}

function field(body: Record<string, unknown>, name: string): unknown {
  if (!(name in body)) throw new AuthError("bad_request", `missing field ${name}`);
  return body[name];
}

function tokenField(body: Record<string, unknown>, name: string): string {
  const value = field(body, name);
  if (typeof value !== "string" || value.length === 0 || value.length > 256) {
    throw new AuthError(
      "bad_request",
      `${name} must be a non-empty string of at most 256 characters`,
    );
  }
  return value;
}

/**
 * The account service's request handler.
 *
 * @example Register and read back who-am-i, without a socket
 * ```ts
 * import { AuthService } from "./auth_service.ts";
 * import { SqliteAccountStore } from "./sqlite_account_store.ts";
 * import { PasswordHasher } from "./password_hasher.ts";
 * import { loadKeyRing } from "./key_ring.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const service = new AuthService({
 *   store: SqliteAccountStore.open(":memory:"),
 *   hasher: new PasswordHasher({ logN: 10, r: 8, p: 1 }),
 *   keyRing: await loadKeyRing(`${dir}/ring.json`),
 *   accessTokenTtlS: 900, refreshTokenTtlS: 86400,
 *   limits: { accountRatePerS: 1, accountBurst: 5, addressRatePerS: 1, addressBurst: 20 },
 * });
 * const res = await service.handle(new Request("http://auth/v1/register", {
 *   method: "POST", headers: { "content-type": "application/json" },
 *   body: JSON.stringify({ username: "Alice", password: "correct horse" }),
 * }), "127.0.0.1");
 * assert.equal(res.status, 201);
 * const { access_token } = await res.json();
 * const me = await service.handle(new Request("http://auth/v1/me", {
 *   headers: { authorization: `Bearer ${access_token}` },
 * }), "127.0.0.1");
 * assert.equal((await me.json()).username, "alice");
 * await service.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class AuthService {
  /** Counters. */
  readonly metrics: AuthMetrics = new AuthMetrics();
  readonly #options: AuthServiceOptions;
  readonly #limiter: LoginLimiter;
  readonly #publicKeys: Promise<PublicKeySet>;
  readonly #maxBodyBytes: number;
  readonly #now: () => number;
  readonly #maxPendingHashes: number;
  #pendingHashes = 0;

  /**
   * Makes a new AuthService.
   *
   * @param options Store, KDF, keys, lifetimes and limits.
   */
  constructor(options: AuthServiceOptions) {
    this.#options = options;
    this.#limiter = new LoginLimiter(options.limits);
    this.#publicKeys = PublicKeySet.fromJwks(options.keyRing.jwks);
    this.#maxBodyBytes = options.maxBodyBytes ?? 8192;
    this.#now = options.now ?? Date.now;
    this.#maxPendingHashes = options.maxPendingHashes ?? 64;
  }

  /** The store (its engine for `/health`). */
  get store(): AccountStore {
    return this.#options.store;
  }

  /**
   * Answers one request.
   *
   * @param request The HTTP request.
   * @param remoteAddress The client's IP address (rate limits).
   */
  async handle(request: Request, remoteAddress: string): Promise<Response> {
    let response: Response;
    try {
      response = await this.#route(request, remoteAddress);
    } catch (error) {
      if (error instanceof AuthError) {
        response = errorResponse(error);
      } else {
        logger.error("request {path} failed: {error}", {
          path: new URL(request.url).pathname,
          error: error instanceof Error ? error.message : String(error),
        });
        response = errorResponse(new AuthError("store_unavailable", "internal error; try again"));
      }
    }
    if (response.status >= 500) this.metrics.serverErrors.inc();
    else if (response.status >= 400) this.metrics.clientErrors.inc();
    return response;
  }

  /** Closes the store. */
  async close(): Promise<void> {
    await this.#options.store.close();
  }

  async #route(request: Request, address: string): Promise<Response> {
    const path = new URL(request.url).pathname;
    const get = request.method === "GET" || request.method === "HEAD";
    switch (path) {
      case "/health":
        this.#method(get);
        return json({
          status: "ok",
          store: this.#options.store.engine,
          key_id: this.#options.keyRing.current.kid,
        });
      case "/metrics":
        this.#method(get);
        return new Response(renderPrometheus(this.metrics.families()), {
          headers: { "content-type": PROMETHEUS_CONTENT_TYPE, "cache-control": "no-store" },
        });
      case "/.well-known/jwks.json":
        this.#method(get);
        return json(this.#options.keyRing.jwks, 200, { "cache-control": "max-age=60" });
      case "/v1/me":
        this.#method(get);
        return await this.#me(request);
      case "/v1/register":
        this.#method(request.method === "POST");
        return await this.#register(await this.#body(request), address);
      case "/v1/login":
        this.#method(request.method === "POST");
        return await this.#login(await this.#body(request), address);
      case "/v1/refresh":
        this.#method(request.method === "POST");
        return await this.#refresh(await this.#body(request));
      case "/v1/logout":
        this.#method(request.method === "POST");
        return await this.#logout(await this.#body(request));
      case "/v1/password":
        this.#method(request.method === "POST");
        return await this.#password(request, address);
      case "/v1/device":
        this.#method(request.method === "POST");
        return await this.#device(await this.#body(request), address);
      case "/v1/device/link":
        this.#method(request.method === "POST");
        return await this.#link(request, address);
    }
    throw new AuthError("not_found", `no such endpoint: ${path.slice(0, 100)}`);
  }

  /** Runs one password hash, or refuses at once when too many are pending. */
  async #kdf<T>(work: (hasher: PasswordHasher) => Promise<T>): Promise<T> {
    if (this.#pendingHashes >= this.#maxPendingHashes) {
      this.metrics.busy.inc();
      throw new AuthError("busy", "too many log-ins in progress; retry in a second", {
        retryAfterS: 1,
      });
    }
    this.#pendingHashes++;
    try {
      return await work(this.#options.hasher);
    } finally {
      this.#pendingHashes--;
    }
  }

  #method(ok: boolean): void {
    if (!ok) throw new AuthError("method_not_allowed", "method not allowed on this endpoint");
  }

  async #body(request: Request): Promise<Record<string, unknown>> {
    const type = request.headers.get("content-type") ?? "";
    if (!/^application\/json\s*(;|$)/i.test(type)) {
      throw new AuthError("unsupported_media_type", "content-type must be application/json");
    }
    const declared = Number(request.headers.get("content-length") ?? "0");
    if (declared > this.#maxBodyBytes) {
      throw new AuthError("payload_too_large", `body must be at most ${this.#maxBodyBytes} bytes`);
    }
    const bytes = await this.#readBounded(request);
    let value: unknown;
    try {
      value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
    } catch (error) {
      if (!(error instanceof SyntaxError || error instanceof TypeError)) throw error;
      throw new AuthError("bad_request", "body must be valid UTF-8 JSON");
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw new AuthError("bad_request", "body must be a JSON object");
    }
    return value as Record<string, unknown>;
  }

  async #readBounded(request: Request): Promise<Uint8Array> {
    const bytes = await readBoundedBody(request.body, this.#maxBodyBytes);
    if (bytes === undefined) {
      throw new AuthError("payload_too_large", `body must be at most ${this.#maxBodyBytes} bytes`);
    }
    return bytes;
  }

  #limit(account: string | null, address: string, counter: LabeledCounter<AuthOutcome>): void {
    const verdict = this.#limiter.attempt(account, address, performance.now());
    if (verdict.allowed) return;
    counter.inc("limited");
    throw new AuthError(
      "rate_limited",
      `too many attempts for this ${verdict.scope}; retry in ${verdict.retryAfterS} s`,
      { retryAfterS: verdict.retryAfterS },
    );
  }

  async #register(body: Record<string, unknown>, address: string): Promise<Response> {
    this.#limit(null, address, this.metrics.registrations);
    let username: string;
    let password: string;
    try {
      username = normalizeUsername(field(body, "username"));
      password = validatePassword(field(body, "password"));
    } catch (error) {
      this.metrics.registrations.inc("refused");
      throw error;
    }
    const account: AccountRecord = {
      id: crypto.randomUUID(),
      username,
      passwordHash: await this.#kdf((h) => h.hash(password)),
      createdAt: this.#now(),
    };
    if (await this.#options.store.createAccount(account) === "taken") {
      this.metrics.registrations.inc("refused");
      throw new AuthError("username_taken", "that username is taken");
    }
    this.metrics.registrations.inc("ok");
    logger.info("account {id} registered", { id: account.id });
    return json(await this.#issue(account), 201);
  }

  async #login(body: Record<string, unknown>, address: string): Promise<Response> {
    const rawName = field(body, "username");
    const password = field(body, "password");
    // Limit before any work, keyed by the canonical name when there is one.
    let username: string | null = null;
    try {
      username = normalizeUsername(rawName);
    } catch (error) {
      if (!(error instanceof AuthError)) throw error;
    }
    this.#limit(username, address, this.metrics.logins);
    if (typeof password !== "string" || password.length === 0 || password.length > 1024) {
      this.metrics.logins.inc("refused");
      throw new AuthError("bad_request", "password must be a non-empty string");
    }
    const account = username === null
      ? undefined
      : await this.#options.store.findByUsername(username);
    const ok = await this.#kdf((h) =>
      account === undefined ? h.verifyDummy(password) : h.verify(password, account.passwordHash)
    );
    if (!ok || account === undefined) {
      this.metrics.logins.inc("refused");
      throw new AuthError("invalid_credentials", "invalid username or password");
    }
    this.metrics.logins.inc("ok");
    return json(await this.#issue(account));
  }

  async #refresh(body: Record<string, unknown>): Promise<Response> {
    const oldHash = await sha256Hex(tokenField(body, "refresh_token"));
    const now = this.#now();
    const next = this.#newRefreshToken();
    const result = await this.#options.store.rotateRefreshToken(
      oldHash,
      {
        tokenHash: await sha256Hex(next),
        accountId: "",
        expiresAt: now + this.#options.refreshTokenTtlS * 1000,
        createdAt: now,
      },
      now,
    );
    if (result.kind === "reused") {
      // A revoked token came back: whoever holds the live one may be a thief. Revoke them all.
      await this.#options.store.revokeAllRefreshTokens(result.accountId, now);
      this.metrics.refreshes.inc("reused");
      logger.warn("account {id}: a revoked refresh token was reused; all revoked", {
        id: result.accountId,
      });
      throw new AuthError("invalid_token", "refresh token is invalid, expired or revoked");
    }
    if (result.kind === "invalid") {
      this.metrics.refreshes.inc("invalid");
      throw new AuthError("invalid_token", "refresh token is invalid, expired or revoked");
    }
    const account = await this.#options.store.findById(result.accountId);
    if (account === undefined) throw new AuthError("invalid_token", "account no longer exists");
    this.metrics.refreshes.inc("ok");
    return json(await this.#tokens(account, next));
  }

  async #logout(body: Record<string, unknown>): Promise<Response> {
    const hash = await sha256Hex(tokenField(body, "refresh_token"));
    if (await this.#options.store.revokeRefreshToken(hash, this.#now()) === undefined) {
      throw new AuthError("invalid_token", "refresh token is invalid, expired or revoked");
    }
    return new Response(null, { status: 204 });
  }

  async #password(request: Request, address: string): Promise<Response> {
    const claims = await this.#bearer(request);
    const body = await this.#body(request);
    const current = field(body, "current_password");
    const replacement = validatePassword(field(body, "new_password"));
    this.#limit(claims.name, address, this.metrics.logins);
    const account = await this.#options.store.findById(claims.sub);
    if (
      account === undefined || typeof current !== "string" ||
      !await this.#kdf((h) => h.verify(current, account.passwordHash))
    ) {
      throw new AuthError("invalid_credentials", "current password is wrong");
    }
    await this.#options.store.setPasswordHash(
      account.id,
      await this.#kdf((h) => h.hash(replacement)),
      this.#now(),
    );
    logger.info("account {id} changed its password; refresh tokens revoked", { id: account.id });
    return new Response(null, { status: 204 });
  }

  async #device(body: Record<string, unknown>, address: string): Promise<Response> {
    const deviceId = field(body, "device_id");
    if (typeof deviceId !== "string" || !DEVICE_ID.test(deviceId)) {
      throw new AuthError(
        "bad_request",
        "device_id must be 32 to 256 characters of A-Z a-z 0-9 _ - (a random secret the device keeps)",
      );
    }
    this.#limit(null, address, this.metrics.logins);
    const deviceHash = await sha256Hex(deviceId);
    const existing = await this.#options.store.findByDevice(deviceHash);
    if (existing !== undefined) {
      this.metrics.logins.inc("ok");
      return json(await this.#issue(existing));
    }
    const account: AccountRecord = {
      id: crypto.randomUUID(),
      // ":" is never valid in a registered name, so the two kinds cannot collide.
      username: `${DEVICE_PREFIX}${deviceHash.slice(0, 24)}`,
      passwordHash: NO_PASSWORD,
      createdAt: this.#now(),
    };
    if (await this.#options.store.createDeviceAccount(account, deviceHash) === "taken") {
      const raced = await this.#options.store.findByDevice(deviceHash);
      if (raced === undefined) throw new AuthError("store_unavailable", "try again");
      return json(await this.#issue(raced));
    }
    this.metrics.registrations.inc("ok");
    logger.info("device account {id} created", { id: account.id });
    return json(await this.#issue(account), 201);
  }

  async #link(request: Request, address: string): Promise<Response> {
    const claims = await this.#bearer(request);
    const body = await this.#body(request);
    this.#limit(null, address, this.metrics.registrations);
    const username = normalizeUsername(field(body, "username"));
    const password = validatePassword(field(body, "password"));
    const account = await this.#options.store.findById(claims.sub);
    if (account === undefined) throw new AuthError("invalid_token", "account no longer exists");
    if (!account.username.startsWith(DEVICE_PREFIX)) {
      throw new AuthError("bad_request", "this account already has a username");
    }
    const hash = await this.#kdf((h) => h.hash(password));
    if (await this.#options.store.setCredentials(account.id, username, hash) === "taken") {
      throw new AuthError("username_taken", "that username is taken");
    }
    logger.info("device account {id} linked to a username", { id: account.id });
    return new Response(null, { status: 204 });
  }

  async #me(request: Request): Promise<Response> {
    const claims = await this.#bearer(request);
    const account = await this.#options.store.findById(claims.sub);
    if (account === undefined) throw new AuthError("invalid_token", "account no longer exists");
    return json({
      account_id: account.id,
      username: account.username,
      created_at: new Date(account.createdAt).toISOString(),
    });
  }

  async #bearer(request: Request): Promise<AccessClaims> {
    const header = request.headers.get("authorization") ?? "";
    const match = /^Bearer ([A-Za-z0-9_.-]{1,4096})$/.exec(header);
    if (match === null) {
      throw new AuthError(
        "invalid_token",
        "an Authorization: Bearer <access token> header is required",
      );
    }
    const check = await verifyAccessToken(
      match[1] as string,
      await this.#publicKeys,
      Math.floor(this.#now() / 1000),
    );
    if (!check.ok) throw new AuthError("invalid_token", `access token refused: ${check.problem}`);
    return check.claims;
  }

  #newRefreshToken(): string {
    return crypto.getRandomValues(new Uint8Array(32)).toBase64({
      alphabet: "base64url",
      omitPadding: true,
    });
  }

  async #issue(account: AccountRecord): Promise<Record<string, unknown>> {
    const refresh = this.#newRefreshToken();
    const now = this.#now();
    await this.#options.store.addRefreshToken({
      tokenHash: await sha256Hex(refresh),
      accountId: account.id,
      expiresAt: now + this.#options.refreshTokenTtlS * 1000,
      createdAt: now,
    });
    return await this.#tokens(account, refresh);
  }

  async #tokens(account: AccountRecord, refresh: string): Promise<Record<string, unknown>> {
    const iat = Math.floor(this.#now() / 1000);
    const access = await signAccessToken(this.#options.keyRing.current, {
      sub: account.id,
      name: account.username,
      iat,
      exp: iat + this.#options.accessTokenTtlS,
      jti: crypto.randomUUID(),
    });
    return {
      account_id: account.id,
      username: account.username,
      token_type: "Bearer",
      access_token: access,
      expires_in: this.#options.accessTokenTtlS,
      refresh_token: refresh,
      refresh_expires_in: this.#options.refreshTokenTtlS,
    };
  }
}
