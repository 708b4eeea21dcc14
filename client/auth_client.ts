// This module is browser compatible.
/**
 * The client side of the account service (`deno task auth`): register, log in, refresh, log
 * out, who-am-i and change password over its HTTP JSON API with `fetch`. The access token it
 * returns is what {@linkcode SustenetClient} sends as JoinCluster's credential. It must never
 * log a password or a token; errors carry the service's code and message only.
 *
 * @module
 */

import { SustenetError } from "../shared/errors.ts";

/** Tokens from a register, log-in or refresh. */
export interface AuthTokens {
  /** The account id (the player id clusters see). */
  readonly accountId: string;
  /** The normalised username. */
  readonly username: string;
  /** Short-lived Ed25519-signed access token: the JoinCluster credential. */
  readonly accessToken: string;
  /** When the access token expires, Unix ms (by this machine's clock). */
  readonly accessExpiresAt: number;
  /** Long-lived refresh token (single use: each refresh returns a new one). */
  readonly refreshToken: string;
}

/**
 * A refused or failed request: `code` is the service's error code (`invalid_credentials`,
 * `username_taken`, `rate_limited`, …) or `unreachable` / `bad_response`.
 *
 * @example
 * ```ts
 * import { AuthRequestError } from "./auth_client.ts";
 * import assert from "node:assert/strict";
 *
 * const err = new AuthRequestError("rate_limited", "too many attempts", 429, 10);
 * assert.equal(err.retryAfterS, 10);
 * ```
 */
export class AuthRequestError extends SustenetError {
  /** HTTP status, or 0 when there was no answer. */
  readonly status: number;
  /** Seconds to wait (429), if the service said. */
  readonly retryAfterS: number | undefined;

  /**
   * Makes a new AuthRequestError.
   *
   * @param code The service's error code, or `unreachable` / `bad_response`.
   * @param message What went wrong.
   * @param status HTTP status (0 = none).
   * @param retryAfterS `Retry-After`, if any.
   * @param cause The underlying error.
   */
  constructor(
    code: string,
    message: string,
    status: number,
    retryAfterS?: number,
    cause?: unknown,
  ) {
    super(code, message, cause === undefined ? undefined : { cause });
    this.status = status;
    this.retryAfterS = retryAfterS;
  }
}

/** Options of {@linkcode AuthClient}. */
export interface AuthClientOptions {
  /** Request timeout, in ms. @default {10000} */
  readonly timeoutMs?: number;
  /** Clock, Unix ms. @default {Date.now} */
  readonly now?: () => number;
}

/**
 * Talks to one account service.
 *
 * @example Against a running service (see README, Accounts)
 * ```ts
 * import { AuthClient } from "./auth_client.ts";
 * import assert from "node:assert/strict";
 *
 * const auth = new AuthClient("http://127.0.0.1:6258");
 * assert.equal(auth.baseUrl, "http://127.0.0.1:6258/");
 * ```
 */
export class AuthClient {
  /** The service's base URL. */
  readonly baseUrl: string;
  readonly #timeoutMs: number;
  readonly #now: () => number;

  /**
   * Makes a new AuthClient.
   *
   * @param baseUrl The service, e.g. `http://127.0.0.1:6258`.
   * @param options Timeout and clock.
   */
  constructor(baseUrl: string | URL, options: AuthClientOptions = {}) {
    this.baseUrl = new URL(baseUrl).href.replace(/\/?$/, "/");
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#now = options.now ?? Date.now;
  }

  /** Creates an account and logs in. */
  async register(username: string, password: string): Promise<AuthTokens> {
    return this.#tokens(await this.#request("POST", "v1/register", { username, password }));
  }

  /** Logs in. */
  async login(username: string, password: string): Promise<AuthTokens> {
    return this.#tokens(await this.#request("POST", "v1/login", { username, password }));
  }

  /**
   * Logs in as a device: the first call with a `deviceId` creates an account for it, later
   * calls return the same account. `deviceId` is a random secret the device generates once
   * (32-256 of `A-Z a-z 0-9 _ -`) and keeps, e.g. `crypto.randomUUID().replaceAll("-", "")`.
   */
  async device(deviceId: string): Promise<AuthTokens> {
    return this.#tokens(await this.#request("POST", "v1/device", { device_id: deviceId }));
  }

  /** Gives the device account of `accessToken` a username and password; its id stays. */
  async linkDevice(accessToken: string, username: string, password: string): Promise<void> {
    await this.#request("POST", "v1/device/link", { username, password }, accessToken);
  }

  /** Trades a refresh token for new tokens (the old refresh token stops working). */
  async refresh(refreshToken: string): Promise<AuthTokens> {
    return this.#tokens(
      await this.#request("POST", "v1/refresh", { refresh_token: refreshToken }),
    );
  }

  /** Revokes a refresh token. */
  async logout(refreshToken: string): Promise<void> {
    await this.#request("POST", "v1/logout", { refresh_token: refreshToken });
  }

  /** Who the access token belongs to. */
  async me(
    accessToken: string,
  ): Promise<{ readonly accountId: string; readonly username: string }> {
    const body = await this.#request("GET", "v1/me", undefined, accessToken);
    if (typeof body.account_id !== "string" || typeof body.username !== "string") {
      throw new AuthRequestError("bad_response", "who-am-i answer is incomplete", 200);
    }
    return { accountId: body.account_id, username: body.username };
  }

  /** Changes the password; every refresh token of the account is revoked. */
  async changePassword(accessToken: string, current: string, next: string): Promise<void> {
    await this.#request(
      "POST",
      "v1/password",
      { current_password: current, new_password: next },
      accessToken,
    );
  }

  #tokens(body: Record<string, unknown>): AuthTokens {
    const { account_id, username, access_token, refresh_token, expires_in } = body;
    if (
      typeof account_id !== "string" || typeof username !== "string" ||
      typeof access_token !== "string" || typeof refresh_token !== "string" ||
      typeof expires_in !== "number"
    ) {
      throw new AuthRequestError("bad_response", "token answer is incomplete", 200);
    }
    return {
      accountId: account_id,
      username,
      accessToken: access_token,
      accessExpiresAt: this.#now() + expires_in * 1000,
      refreshToken: refresh_token,
    };
  }

  async #request(
    method: "GET" | "POST",
    path: string,
    body: Record<string, unknown> | undefined,
    bearer?: string,
  ): Promise<Record<string, unknown>> {
    const headers: Record<string, string> = {};
    if (body !== undefined) headers["content-type"] = "application/json";
    if (bearer !== undefined) headers.authorization = `Bearer ${bearer}`;
    let response: Response;
    try {
      response = await fetch(new URL(path, this.baseUrl), {
        method,
        headers,
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
    } catch (error) {
      throw new AuthRequestError(
        "unreachable",
        `account service ${this.baseUrl} unreachable: ${
          error instanceof Error ? error.message : String(error)
        }`,
        0,
        undefined,
        error,
      );
    }
    if (response.status === 204) return {};
    let parsed: unknown;
    try {
      parsed = await response.json();
    } catch (error) {
      throw new AuthRequestError(
        "bad_response",
        `account service answered ${response.status} without JSON`,
        response.status,
        undefined,
        error,
      );
    }
    const value = (typeof parsed === "object" && parsed !== null ? parsed : {}) as Record<
      string,
      unknown
    >;
    if (!response.ok) {
      const retry = Number(response.headers.get("retry-after") ?? Number.NaN);
      throw new AuthRequestError(
        typeof value.error === "string" ? value.error : "bad_response",
        typeof value.message === "string" ? value.message : `HTTP ${response.status}`,
        response.status,
        Number.isFinite(retry) ? retry : undefined,
      );
    }
    return value;
  }
}
