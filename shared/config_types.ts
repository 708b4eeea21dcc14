// This module is browser compatible.
/**
 * The shapes of a validated configuration: {@linkcode SustenetConfig} and its sections, the
 * {@linkcode ConfigError} every bad value becomes, and the roles' default ports. Types and
 * constants only; `config_schema.ts` fills them from TOML and flags.
 *
 * @module
 */

import { SustenetError } from "./errors.ts";
import type { LogFormat, LogLevelName } from "./logging.ts";

/**
 * A server role that reads Config.toml (a section and a default port each); not the role a peer
 * announces in Hello on the wire, which is `Role` in `protocol/packets.ts`.
 *
 * @example The default port of each role
 * ```ts
 * import { DEFAULT_PORTS, type ServerRole } from "./config_types.ts";
 * import assert from "node:assert/strict";
 *
 * const roles: ServerRole[] = ["master", "cluster", "auth"];
 * assert.deepEqual(roles.map((role) => DEFAULT_PORTS[role]), [6256, 6257, 6258]);
 * ```
 */
export type ServerRole = "master" | "cluster" | "auth";

/** The roles that speak the game protocol (and so have TLS and WebSocket listeners). */
export type GameServerRole = Exclude<ServerRole, "auth">;

/**
 * Thrown for a config that cannot be read (`config_unreadable`) or fails a check
 * (`config_invalid`). The message names the file or flag and the field.
 *
 * @example
 * ```ts
 * import { ConfigError, parseConfig } from "./config_schema.ts";
 * import assert from "node:assert/strict";
 *
 * assert.throws(() => parseConfig("[all]\nport = 70000", { file: "Config.toml" }), (err) => {
 *   assert.ok(err instanceof ConfigError);
 *   assert.equal(err.code, "config_invalid");
 *   assert.equal(err.field, "all.port");
 *   assert.equal(err.message, "Config.toml: all.port must be an integer 0..65535, got 70000");
 *   return true;
 * });
 * ```
 */
export class ConfigError extends SustenetError {
  /** The config file, or null for defaults and flags only. */
  readonly file: string | null;
  /** Dotted field path, e.g. `cluster.fragments.tick_hz`, `cluster.plugins[1].url`; "" for the whole file. */
  readonly field: string;
  /** The command-line flag the bad value came from (e.g. `--port`), or null. */
  readonly flag: string | null;

  /**
   * Makes a config error.
   *
   * @param code `"config_invalid"` or `"config_unreadable"`.
   * @param message Full message, starting with the file or flag.
   * @param details Where the error is.
   */
  constructor(
    code: "config_invalid" | "config_unreadable",
    message: string,
    details: {
      readonly file: string | null;
      readonly field: string;
      readonly flag?: string | null;
      readonly cause?: unknown;
    },
  ) {
    super(code, message, details.cause === undefined ? undefined : { cause: details.cause });
    this.file = details.file;
    this.field = details.field;
    this.flag = details.flag ?? null;
  }
}

/**
 * Settings of section `[all]`, shared by every role.
 *
 * @example
 * ```ts
 * import { defaultConfig } from "./config_schema.ts";
 * import assert from "node:assert/strict";
 *
 * const all = defaultConfig().all;
 * assert.equal(all.maxFrameBytes, 65536);
 * assert.equal(all.logLevel, "info");
 * ```
 */
export interface AllSettings {
  /** Server name shown to clients and the master (≤ 255 UTF-8 bytes). */
  readonly serverName: string;
  /** Most simultaneous connections; 0 = no limit. */
  readonly maxConnections: number;
  /** Listening port; 0 = role default (see {@linkcode resolvedPort}). */
  readonly port: number;
  /** IP address to listen on. */
  readonly bindIp: string;
  /** Directory of key files, resolved against the config file's directory. */
  readonly keysDir: string;
  /** Largest frame accepted or sent, in bytes. */
  readonly maxFrameBytes: number;
  /** Bound of each connection's outgoing queue, in bytes (≥ maxFrameBytes). */
  readonly maxQueueBytes: number;
  /**
   * Time a new connection has to authenticate, in ms: on a cluster from connecting to
   * Authenticate(20) (Hello, key exchange and ticket), on the master until its Hello.
   */
  readonly handshakeTimeoutMs: number;
  /** A connection that sends nothing for this long is closed, in ms. */
  readonly idleTimeoutMs: number;
  /** Most connections not authenticated yet; a new one past it evicts the oldest. */
  readonly maxPendingConnections: number;
  /** Most connections not authenticated yet from one address (IPv4, or IPv6 /64). */
  readonly maxPendingPerAddress: number;
  /**
   * Largest frame (and, sealed, one-frame record) read before authentication, and from a
   * master's clients; capped at `maxFrameBytes`.
   */
  readonly maxPendingFrameBytes: number;
  /** Status HTTP port; 0 = role default (see {@linkcode resolvedStatusPort}). */
  readonly statusPort: number;
  /** IP address of the status HTTP server. */
  readonly statusIp: string;
  /** Whether the status HTTP server runs. */
  readonly statusEnabled: boolean;
  /** Lowest log level written. */
  readonly logLevel: LogLevelName;
  /** TLS certificate chain (PEM path), or "" for no TLS listener. */
  readonly tlsCert: string;
  /** TLS private key (PEM path), or "" (set with `tlsCert`). */
  readonly tlsKey: string;
  /** TLS listening port; 0 = role default (see {@linkcode resolvedTlsPort}). */
  readonly tlsPort: number;
  /** Whether the WebSocket listener runs (same protocol over `ws://`). */
  readonly wsEnabled: boolean;
  /** WebSocket listener port; 0 = role default (see {@linkcode DEFAULT_WS_PORTS}). */
  readonly wsPort: number;
  /** HTTP path upgraded to the protocol, e.g. `/sustenet`. */
  readonly wsPath: string;
  /**
   * Browser origins allowed to open a WebSocket (`scheme://host[:port]`, or `"*"`); requests
   * without an Origin header (non-browser clients) are always allowed.
   */
  readonly wsAllowedOrigins: readonly string[];
  /** Log line format on stderr: `text` or `json` (one object per line). */
  readonly logFormat: LogFormat;
  /**
   * Operator token for the console's actions (kick, notice, drain, restart a plugin), or null.
   * Never logged; prefer `adminTokenFile`.
   */
  readonly adminToken: string | null;
  /** File holding the operator token (first line, trimmed), or null. */
  readonly adminTokenFile: string | null;
  /** Whether the read-only console (pages, `/api/*`, live updates) is open without the token. */
  readonly consolePublic: boolean;
}

/**
 * Settings of section `[master]`.
 *
 * @example
 * ```ts
 * import { defaultConfig } from "./config_schema.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(defaultConfig().master.ticketTtlMs, 30000);
 * ```
 */
export interface MasterSettings {
  /** A cluster silent for this long is dropped, in ms. */
  readonly heartbeatTimeoutMs: number;
  /** Lifetime of a join ticket, in ms. */
  readonly ticketTtlMs: number;
  /** Time a cluster has to finish registering, in ms. */
  readonly registrationTimeoutMs: number;
  /** Join tickets per second one client connection may ask for. */
  readonly ticketRatePerConn: number;
  /** Join tickets one client connection may ask for at once. */
  readonly ticketBurstPerConn: number;
  /** Join tickets per second all connections of one IP address may ask for. */
  readonly ticketRatePerAddr: number;
  /** Join tickets all connections of one IP address may ask for at once. */
  readonly ticketBurstPerAddr: number;
  /** Join tickets per second one player id may ask for. */
  readonly ticketRatePerPlayer: number;
  /** Join tickets one player id may ask for at once. */
  readonly ticketBurstPerPlayer: number;
  /** Refusals (one forgiven per second) before a client connection is closed. */
  readonly ticketMaxRefusals: number;
  /** Unused reservations one client connection may hold. */
  readonly reservationsPerConn: number;
  /** Unused reservations all connections of one IP address may hold. */
  readonly reservationsPerAddr: number;
  /** Unused reservations one player id may hold. */
  readonly reservationsPerPlayer: number;
  /** Most registered clusters; 0 = no limit. */
  readonly maxClusters: number;
  /**
   * The account service's public keys (JWK Set): a file path or an http(s) URL; null = no
   * accounts (every player is a guest).
   */
  readonly authPublicKeys: string | null;
  /** Whether players without an access token still join as guests. */
  readonly allowGuests: boolean;
  /** Redis URL of a registry shared by several masters; `""` = this master's own, in memory. */
  readonly redisUrl: string;
}

/**
 * Bounds of the fragment grid in world units.
 *
 * @example
 * ```ts
 * import { parseConfig } from "./config_schema.ts";
 * import assert from "node:assert/strict";
 *
 * const config = parseConfig("[cluster.fragments]\nbounds = [-100, -100, 100, 100]");
 * assert.deepEqual(config.cluster.fragments.bounds, { minX: -100, minZ: -100, maxX: 100, maxZ: 100 });
 * ```
 */
export interface FragmentBounds {
  /** Smallest x. */
  readonly minX: number;
  /** Smallest z. */
  readonly minZ: number;
  /** Largest x (> minX). */
  readonly maxX: number;
  /** Largest z (> minZ). */
  readonly maxZ: number;
}

/**
 * Settings of section `[cluster.fragments]` (interest management).
 *
 * @example
 * ```ts
 * import { defaultConfig } from "./config_schema.ts";
 * import assert from "node:assert/strict";
 *
 * const fragments = defaultConfig().cluster.fragments;
 * assert.equal(fragments.enabled, false);
 * assert.equal(fragments.bounds, null);
 * ```
 */
export interface FragmentSettings {
  /** Whether the world is split into fragments. */
  readonly enabled: boolean;
  /** Side length of a square fragment in world units (> 0). */
  readonly size: number;
  /** Grid bounds, or null for an unbounded grid. */
  readonly bounds: FragmentBounds | null;
  /** Fragments around a player's own that it sees (0 = own only). */
  readonly viewDistance: number;
  /** Position updates per second. */
  readonly tickHz: number;
  /** Most players in one fragment. */
  readonly maxPlayers: number;
  /** Above this many players a fragment's update rate halves. */
  readonly crowdThreshold: number;
  /**
   * Position updates as MoveBatch (`"full"`, f32) or PositionBatch (`"quantized"`, 11-byte
   * entries; needs `bounds`).
   */
  readonly positionFormat: "full" | "quantized";
}

/**
 * One Deno permission grant of a plugin Worker: none, all, or a list (paths, hosts, names).
 *
 * @example
 * ```ts
 * import type { PermissionGrant } from "./config_schema.ts";
 * import assert from "node:assert/strict";
 *
 * const grant: PermissionGrant = ["api.example.com:443"];
 * assert.ok(Array.isArray(grant));
 * ```
 */
export type PermissionGrant = boolean | readonly string[];

/**
 * A plugin Worker's complete permission descriptor: every key present, default `false`.
 *
 * @example
 * ```ts
 * import { parseConfig } from "./config_schema.ts";
 * import assert from "node:assert/strict";
 *
 * const config = parseConfig('[[cluster.plugins]]\nurl = "jsr:@game/chat"\npermissions = { net = true }');
 * const permissions = config.cluster.plugins[0].permissions;
 * assert.equal(permissions.net, true);
 * assert.equal(permissions.read, false);
 * ```
 */
export interface PluginPermissions {
  /** File reads. */
  readonly read: PermissionGrant;
  /** File writes. */
  readonly write: PermissionGrant;
  /** Network access. */
  readonly net: PermissionGrant;
  /** Environment variables. */
  readonly env: PermissionGrant;
  /** Subprocesses. */
  readonly run: PermissionGrant;
  /** Native libraries. */
  readonly ffi: PermissionGrant;
  /** System information. */
  readonly sys: PermissionGrant;
  /** Dynamic imports from hosts. */
  readonly import: PermissionGrant;
}

/**
 * A JSON-like value of a plugin's `settings` table (TOML dates become ISO strings).
 *
 * @example
 * ```ts
 * import { parseConfig, type PluginSettingValue } from "./config_schema.ts";
 * import assert from "node:assert/strict";
 *
 * // A plugin's table in Config.toml, as the plugin reads it from ctx.settings.
 * const config = parseConfig(
 *   '[[cluster.plugins]]\nurl = "./echo.ts"\n[cluster.plugins.settings]\nlimits = [1, 2]\n',
 *   { baseDir: "/srv/game" },
 * );
 * const limits: PluginSettingValue | undefined = config.cluster.plugins[0].settings.limits;
 * assert.deepEqual(limits, [1, 2]);
 * ```
 */
export type PluginSettingValue =
  | string
  | number
  | boolean
  | readonly PluginSettingValue[]
  | { readonly [key: string]: PluginSettingValue };

/**
 * One `[[cluster.plugins]]` entry.
 *
 * @example
 * ```ts
 * import { parseConfig } from "./config_schema.ts";
 * import assert from "node:assert/strict";
 *
 * const config = parseConfig('[[cluster.plugins]]\nurl = "./plugins/echo.ts"', { baseDir: "/srv/game" });
 * const plugin = config.cluster.plugins[0];
 * assert.equal(plugin.url, "file:///srv/game/plugins/echo.ts");
 * assert.equal(plugin.name, "echo");
 * assert.deepEqual(plugin.settings, {});
 * ```
 */
export interface PluginSettings {
  /** Module URL: `file:` (relative paths resolved against the config file), `https:`, `http:`, `jsr:`, `npm:`. */
  readonly url: string;
  /** Unique plugin name (default: the url's base name without extension). */
  readonly name: string;
  /** The plugin's own settings, passed to it as is. */
  readonly settings: { readonly [key: string]: PluginSettingValue };
  /** Deno permissions of the plugin's sandbox (`ffi` and `run` only with `trusted`). */
  readonly permissions: PluginPermissions;
  /**
   * FULL TRUST: the plugin can do anything the cluster can. Only a trusted plugin may be
   * granted `ffi` or `run`; it runs in a Worker of the cluster's process. Untrusted plugins
   * (the default) run in their own `deno run` subprocess.
   */
  readonly trusted: boolean;
  /** Heap cap of an untrusted plugin's subprocess in MiB (16..65536, default 128). */
  readonly maxMemoryMb: number;
}

/**
 * Settings of section `[cluster]`, with its sub-tables.
 *
 * @example
 * ```ts
 * import { defaultConfig } from "./config_schema.ts";
 * import assert from "node:assert/strict";
 *
 * const cluster = defaultConfig().cluster;
 * assert.equal(cluster.keyName, "cluster_key");
 * assert.equal(cluster.domainPubKey, null);
 * assert.deepEqual(cluster.plugins, []);
 * ```
 */
export interface ClusterSettings {
  /** Name of the shared AES key file in keysDir used to register with the master. */
  readonly keyName: string;
  /** Master address (IP or host name). */
  readonly masterIp: string;
  /** Master port; 0 = 6256 (see {@linkcode resolvedMasterPort}). */
  readonly masterPort: number;
  /**
   * Masters to register with, in order (`"host:port"`); the cluster fails over to the next
   * when its link dies. Empty = the one at `masterIp`:`masterPort`.
   */
  readonly masterAddresses: readonly string[];
  /** URL where clients fetch the identity public key, or null to send it in-band. */
  readonly domainPubKey: string | null;
  /** URL of this cluster's status page the master console links to, or null. */
  readonly statusPageUrl: string | null;
  /** Serve the live browser page on the WebSocket listener's port (needs `ws_enabled`). */
  readonly wsPage: boolean;
  /**
   * The master's WebSocket URL the live page joins through, or null for
   * `ws://<master_ip>:6290<ws_path>` (`wss://` when the cluster has `tls_cert`).
   */
  readonly wsPageMasterUrl: string | null;
  /** Address announced to clients; "" = bindIp (see {@linkcode resolvedPublicIp}). */
  readonly publicIp: string;
  /** Name of the identity key pair file in keysDir. */
  readonly identityKeyName: string;
  /** Heartbeat period towards the master, in ms. */
  readonly heartbeatIntervalMs: number;
  /** First reconnect delay after losing the master, in ms. */
  readonly reconnectMinMs: number;
  /** Largest reconnect delay, in ms. */
  readonly reconnectMaxMs: number;
  /** A plugin that does not answer for this long is restarted, in ms. */
  readonly pluginWatchdogMs: number;
  /** Longest wait of a broadcast to every player to share writes, in ms (0 = every turn). */
  readonly broadcastFlushMs: number;
  /** Plugin commands one player may send per second. */
  readonly playerCommandsPerS: number;
  /** Plugin commands one player may send in one burst. */
  readonly playerCommandsBurst: number;
  /** Plugin command bytes (type + payload) one player may send per second. */
  readonly playerCommandBytesPerS: number;
  /** Plugin command bytes one player may send in one burst (≥ max_frame_bytes). */
  readonly playerCommandBytesBurst: number;
  /** Move, Ping and other non-plugin packets one player may send per second. */
  readonly playerMovesPerS: number;
  /** Those packets in one burst. */
  readonly playerMovesBurst: number;
  /** A player still over its limits this long after its throttling began is kicked, in ms. */
  readonly playerFloodKickMs: number;
  /** Unsealed client traffic (benchmarks, loopback only). */
  readonly plaintext: boolean;
  /** Interest management. */
  readonly fragments: FragmentSettings;
  /** Plugins loaded in Workers, in order. */
  readonly plugins: readonly PluginSettings[];
}

/**
 * A complete, validated, frozen configuration.
 *
 * @example
 * ```ts
 * import { parseConfig } from "./config_schema.ts";
 * import assert from "node:assert/strict";
 *
 * const config = parseConfig('[all]\nserver_name = "EU 1"\n[cluster]\nmaster_port = 7000');
 * assert.equal(config.file, null);
 * assert.equal(config.all.serverName, "EU 1");
 * assert.equal(config.cluster.masterPort, 7000);
 * assert.ok(Object.isFrozen(config.cluster));
 * ```
 */
export interface SustenetConfig {
  /** The file it was read from, or null. */
  readonly file: string | null;
  /** Section `[all]`. */
  readonly all: AllSettings;
  /** Section `[master]`. */
  readonly master: MasterSettings;
  /** Section `[cluster]`. */
  readonly cluster: ClusterSettings;
  /** Section `[auth]`. */
  readonly auth: AuthSettings;
}

/**
 * Settings of section `[auth]`, the account service (`deno task auth`).
 *
 * @example
 * ```ts
 * import { defaultConfig } from "./config_schema.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(defaultConfig().auth.store, "sqlite");
 * assert.equal(defaultConfig().auth.scryptLogN, 15);
 * ```
 */
export interface AuthSettings {
  /** Which database: the embedded SQLite file or PostgreSQL. */
  readonly store: "sqlite" | "postgres";
  /** The SQLite database file. */
  readonly sqlitePath: string;
  /** The PostgreSQL connection URL ("" unless `store` is postgres). */
  readonly postgresUrl: string;
  /** The signing key ring file (private keys, mode 0600). */
  readonly signingKeys: string;
  /** Where the public keys (JWK Set) are written for masters. */
  readonly publicKeysOut: string;
  /** Previous signing keys kept (and published) at a rotation. */
  readonly keysKept: number;
  /** Access token lifetime, in seconds. */
  readonly accessTokenTtlS: number;
  /** Refresh token lifetime, in seconds. */
  readonly refreshTokenTtlS: number;
  /** scrypt cost: log2 N. */
  readonly scryptLogN: number;
  /** scrypt block size r. */
  readonly scryptR: number;
  /** scrypt parallelism p. */
  readonly scryptP: number;
  /** Log-in attempts per second refilled per account. */
  readonly loginRatePerAccount: number;
  /** Log-in attempts per account in a burst. */
  readonly loginBurstPerAccount: number;
  /** Log-in and registration attempts per second refilled per address. */
  readonly loginRatePerAddr: number;
  /** Log-in and registration attempts per address in a burst. */
  readonly loginBurstPerAddr: number;
  /** Largest request body, in bytes. */
  readonly maxBodyBytes: number;
  /** Most password hashes running or waiting at once (then 503 busy). */
  readonly maxPendingHashes: number;
}

/**
 * Default listening ports per role (used when `port = 0`), as in the Rust crate.
 *
 * @example
 * ```ts
 * import { DEFAULT_PORTS, defaultConfig, resolvedPort } from "./config_schema.ts";
 * import assert from "node:assert/strict";
 *
 * // port = 0 in Config.toml listens on the role's default port.
 * assert.equal(resolvedPort(defaultConfig(), "master"), DEFAULT_PORTS.master);
 * ```
 */
export const DEFAULT_PORTS: Readonly<Record<ServerRole, number>> = Object.freeze({
  master: 6256,
  cluster: 6257,
  auth: 6258,
});

/**
 * Default status HTTP ports per role (used when `status_port = 0`).
 *
 * @example
 * ```ts
 * import { DEFAULT_STATUS_PORTS, parseConfig, resolvedStatusPort } from "./config_schema.ts";
 * import assert from "node:assert/strict";
 *
 * // status_port = 0 serves /health and /metrics on the role's default status port.
 * const config = parseConfig("[all]\nstatus_port = 0");
 * assert.equal(resolvedStatusPort(config, "cluster"), DEFAULT_STATUS_PORTS.cluster);
 * ```
 */
export const DEFAULT_STATUS_PORTS: Readonly<Record<ServerRole, number>> = Object.freeze({
  master: 6280,
  cluster: 6281,
  auth: 6282,
});

/**
 * Default TLS ports per role (used when `tls_port = 0` and TLS is on).
 *
 * @example
 * ```ts
 * import { DEFAULT_TLS_PORTS, parseConfig, resolvedTlsPort } from "./config_schema.ts";
 * import assert from "node:assert/strict";
 *
 * // tls_port = 0 (with a certificate) listens on the role's default TLS port.
 * const config = parseConfig('[all]\ntls_cert = "c.pem"\ntls_key = "k.pem"\ntls_port = 0', {
 *   baseDir: "/srv/game",
 * });
 * assert.equal(resolvedTlsPort(config, "cluster"), DEFAULT_TLS_PORTS.cluster);
 * ```
 */
export const DEFAULT_TLS_PORTS: Readonly<Record<GameServerRole, number>> = Object.freeze({
  master: 6266,
  cluster: 6267,
});

/**
 * Default WebSocket listener ports per role (used when `ws_port = 0`).
 *
 * @example
 * ```ts
 * import { DEFAULT_WS_PORTS, parseConfig, resolvedWsPort } from "./config_schema.ts";
 * import assert from "node:assert/strict";
 *
 * // ws_port = 0 listens on the role's default WebSocket port.
 * const config = parseConfig("[all]\nws_port = 0");
 * assert.equal(resolvedWsPort(config, "master"), DEFAULT_WS_PORTS.master);
 * ```
 */
export const DEFAULT_WS_PORTS: Readonly<Record<GameServerRole, number>> = Object.freeze({
  master: 6290,
  cluster: 6291,
});
