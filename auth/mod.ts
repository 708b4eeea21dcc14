/**
 * The account service of Sustenet: accounts in SQLite (embedded) or PostgreSQL, scrypt
 * password hashes, Ed25519 access tokens that masters verify offline, rotated refresh tokens.
 * Run it with `deno task auth`, or in-process with {@linkcode startAuth}.
 *
 * @example
 * ```ts
 * import { startAuth } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await using auth = await startAuth({
 *   port: 0,
 *   store: { kind: "sqlite", path: `${dir}/auth.sqlite` },
 *   signingKeys: `${dir}/ring.json`,
 *   scrypt: { logN: 10, r: 8, p: 1 },
 * });
 * assert.ok(auth.addr.port > 0);
 * ```
 *
 * @module
 */

// The public auth API, chosen (docs/EMBEDDING.md, "Public API"): run the service, plug in a
// store, verify its tokens in a game backend, rotate its keys. Schema migrations and helpers
// of the routes are internal.

// Start, options, config.
export {
  type AuthOptions,
  type AuthServer,
  type AuthStoreChoice,
  startAuth,
} from "./start_auth.ts";
export { authOptionsFromConfig } from "./auth_options.ts";
// The Config.toml types authOptionsFromConfig reads (loadConfig is in `/server`).
export type {
  AllSettings,
  AuthSettings,
  ClusterSettings,
  FragmentBounds,
  FragmentSettings,
  MasterSettings,
  PermissionGrant,
  PluginPermissions,
  PluginSettings,
  PluginSettingValue,
  SustenetConfig,
} from "../shared/config.ts";
export type { LogFormat, LogLevelName } from "../shared/logging.ts";
export { SustenetError } from "../shared/errors.ts";

// The service behind the HTTP routes, and its metrics.
export {
  AuthMetrics,
  type AuthOutcome,
  AuthService,
  type AuthServiceOptions,
} from "./auth_service.ts";
export {
  Counter,
  Gauge,
  Histogram,
  LabeledCounter,
  type MetricFamily,
  type MetricKind,
  type MetricSample,
  PROMETHEUS_CONTENT_TYPE,
  renderPrometheus,
} from "../shared/metrics.ts";

// Errors.
export { AuthError, type AuthErrorCode } from "./auth_error.ts";

// Account stores: SQLite (embedded), PostgreSQL, or your own.
export type {
  AccountRecord,
  AccountStore,
  RefreshTokenRecord,
  RotateResult,
} from "./account_store.ts";
export { SqliteAccountStore } from "./sqlite_account_store.ts";
export { PostgresAccountStore, type PostgresStoreOptions } from "./postgres_account_store.ts";

// Access tokens: what a game backend verifies offline.
export {
  type AccessClaims,
  MAX_TOKEN_BYTES,
  type PublicJwk,
  PublicKeySet,
  signAccessToken,
  type SigningKey,
  TOKEN_AUDIENCE,
  TOKEN_ISSUER,
  type TokenCheck,
  type TokenProblem,
  verifyAccessToken,
} from "./access_token.ts";

// The signing keys and their rotation.
export { type KeyRing, loadKeyRing, rotateKeyRing } from "./key_ring.ts";

// Password hashing and login limits.
export { PasswordHasher, type ScryptParams } from "./password_hasher.ts";
export { LoginLimiter, type LoginLimits, type LoginVerdict } from "./login_limiter.ts";

// The rules a sign-up form can check before sending.
export {
  MAX_PASSWORD_BYTES,
  MAX_USERNAME_LENGTH,
  MIN_PASSWORD_LENGTH,
  MIN_USERNAME_LENGTH,
} from "./username.ts";
