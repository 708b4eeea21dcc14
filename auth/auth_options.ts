/**
 * Turns the `[all]` and `[auth]` sections of a validated config into {@linkcode AuthOptions}.
 * Pure: opens nothing.
 *
 * @module
 */

import { resolvedPort, resolvedStatusPort, type SustenetConfig } from "../shared/config_schema.ts";
import type { AuthOptions } from "./start_auth.ts";

/**
 * The account service's options from a config.
 *
 * @param config A validated config.
 *
 * @example
 * ```ts
 * import { authOptionsFromConfig } from "./auth_options.ts";
 * import { defaultConfig } from "../shared/config_schema.ts";
 * import assert from "node:assert/strict";
 *
 * const options = authOptionsFromConfig(defaultConfig());
 * assert.equal(options.port, 6258);
 * assert.deepEqual(options.store, { kind: "sqlite", path: "auth.sqlite" });
 * ```
 */
export function authOptionsFromConfig(config: SustenetConfig): AuthOptions {
  const { all, auth } = config;
  return {
    hostname: all.bindIp,
    port: resolvedPort(config, "auth"),
    store: auth.store === "postgres"
      ? { kind: "postgres", url: auth.postgresUrl }
      : { kind: "sqlite", path: auth.sqlitePath },
    signingKeys: auth.signingKeys,
    publicKeysOut: auth.publicKeysOut,
    accessTokenTtlS: auth.accessTokenTtlS,
    refreshTokenTtlS: auth.refreshTokenTtlS,
    scrypt: { logN: auth.scryptLogN, r: auth.scryptR, p: auth.scryptP },
    limits: {
      accountRatePerS: auth.loginRatePerAccount,
      accountBurst: auth.loginBurstPerAccount,
      addressRatePerS: auth.loginRatePerAddr,
      addressBurst: auth.loginBurstPerAddr,
    },
    maxBodyBytes: auth.maxBodyBytes,
    maxPendingHashes: auth.maxPendingHashes,
    status: all.statusEnabled
      ? { hostname: all.statusIp, port: resolvedStatusPort(config, "auth") }
      : false,
  };
}
