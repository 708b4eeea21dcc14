// This module is browser compatible.
/**
 * The Config.toml schema: typed, validated, frozen settings for every role, parsed from TOML
 * text and command-line overrides. Pure: no file, network or process access (see
 * `config.ts` for reading files and argv).
 *
 * Every key is checked for type, range and allowed values, an unknown key or section is an
 * error, and the first error found is thrown as a {@linkcode ConfigError} naming the file (or
 * flag) and the dotted field. This module must never return a config that failed a check,
 * and never guesses: a wrong type is an error, not a conversion.
 *
 * @module
 */

import { parse, type TomlTable, type TomlValue } from "smol-toml";
import { isKeyName, KEY_NAME_RULE } from "./key_name.ts";
import { LOG_FORMATS, LOG_LEVEL_NAMES, type LogFormat, type LogLevelName } from "./logging.ts";
import { dirnameOf, isAbsolutePath, pathToFileHref, resolvePath } from "./file_paths.ts";
import { isHostName, isIp, isLoopbackIp, isUnspecifiedIp } from "./ip_address.ts";
import { LIVE_PAGE_PATHS } from "../web/live_page_paths.ts";

import {
  type AllSettings,
  type AuthSettings,
  type ClusterSettings,
  ConfigError,
  DEFAULT_PORTS,
  DEFAULT_STATUS_PORTS,
  DEFAULT_TLS_PORTS,
  DEFAULT_WS_PORTS,
  type FragmentBounds,
  type FragmentSettings,
  type GameServerRole,
  type MasterSettings,
  type PermissionGrant,
  type PluginPermissions,
  type PluginSettings,
  type PluginSettingValue,
  type ServerRole,
  type SustenetConfig,
} from "./config_types.ts";

export * from "./config_types.ts";
// Part of the config API since the first release; they live with their concepts now.
export { dirnameOf, isLoopbackIp };

// ---------------------------------------------------------------------------------------------
// Value kinds: how one key is read from TOML, from a flag's text, and written back.

/** Where a value is being read: decides path resolution. */
interface ReadContext {
  /** Directory relative paths from the file resolve against; null = leave them as given. */
  readonly baseDir: string | null;
}

interface Kind<T> {
  /** Completes "must be …": e.g. "an integer 0..65535". */
  readonly expect: string;
  /** How the flag is declared, or null when the key has no flag (lists). */
  readonly flag: "string" | "boolean" | null;
  /** The value, or undefined when `raw` is not acceptable. */
  read(raw: TomlValue, ctx: ReadContext): T | undefined;
  /** Converts a flag's text to the TOML value it stands for (the text itself if it cannot). */
  fromText(text: string): TomlValue;
  /** The TOML value of a setting, or undefined to leave the key out. */
  toToml(value: T): TomlValue | undefined;
}

const MAX_TIMER_MS = 2_147_483_647; // setTimeout's limit; larger delays fire immediately

function intKind(min: number, max: number, unit = ""): Kind<number> {
  const lo = BigInt(min);
  const hi = BigInt(max);
  return {
    expect: `an integer ${min}..${max}${unit}`,
    flag: "string",
    read: (raw) => typeof raw === "bigint" && raw >= lo && raw <= hi ? Number(raw) : undefined,
    fromText: (text) => /^[+-]?\d+$/.test(text) ? BigInt(text) : text,
    toToml: (value) => BigInt(value),
  };
}

const msKind = intKind(1, MAX_TIMER_MS, " (milliseconds)");
/** Rates (per second), bursts and caps of the master's join limits. */
const limitKind = intKind(1, 1_000_000);
const portKind = intKind(0, 65535);

const positiveFloatKind: Kind<number> = {
  expect: "a number > 0",
  flag: "string",
  read: (raw) => {
    const n = typeof raw === "bigint" ? Number(raw) : raw;
    return typeof n === "number" && Number.isFinite(n) && n > 0 ? n : undefined;
  },
  fromText: (text) => /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/.test(text) ? Number(text) : text,
  toToml: (value) => value,
};

const boolKind: Kind<boolean> = {
  expect: "true or false",
  flag: "boolean",
  read: (raw) => typeof raw === "boolean" ? raw : undefined,
  fromText: (text) => text === "true" ? true : text === "false" ? false : text,
  toToml: (value) => value,
};

function stringKind(expect: string, accept: (text: string) => boolean): Kind<string> {
  return {
    expect,
    flag: "string",
    read: (raw) => typeof raw === "string" && accept(raw) ? raw : undefined,
    fromText: (text) => text,
    toToml: (value) => value,
  };
}

const encoder = new TextEncoder();

function utf8Length(text: string): number {
  return encoder.encode(text).byteLength;
}

const serverNameKind = stringKind(
  "a non-empty string of at most 255 UTF-8 bytes",
  (text) => text.length > 0 && utf8Length(text) <= 255, // str8 on the wire
);

// Key names become file names in keys_dir: the one rule of key_name.ts.
const keyNameKind = stringKind(`a key file name (${KEY_NAME_RULE})`, isKeyName);

const ipKind = stringKind("an IPv4 or IPv6 address", isIp);
const hostKind = stringKind("an IP address or host name", (t) => isIp(t) || isHostName(t));
const publicHostKind = stringKind(
  'an IP address or host name other than 0.0.0.0 / ::, or "" for the default',
  (t) => t === "" || ((isIp(t) && !isUnspecifiedIp(t)) || isHostName(t)),
);

const redisUrlKind = stringKind(
  'a redis:// or rediss:// URL, or "" for none',
  (t) => t === "" || (URL.canParse(t) && ["redis:", "rediss:"].includes(new URL(t).protocol)),
);

/**
 * Splits `"host:port"` (IPv6 in brackets: `"[::1]:6256"`); `undefined` unless the host is an
 * IP or host name and the port 1..65535.
 *
 * @example
 * ```ts
 * import { parseHostPort } from "./config_schema.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(parseHostPort("10.0.0.1:6256"), { hostname: "10.0.0.1", port: 6256 });
 * assert.deepEqual(parseHostPort("[::1]:7000"), { hostname: "::1", port: 7000 });
 * assert.equal(parseHostPort("10.0.0.1"), undefined);
 * ```
 */
export function parseHostPort(text: string): { hostname: string; port: number } | undefined {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:\[\]]+)):(\d{1,5})$/.exec(text);
  if (match === null) return undefined;
  const hostname = match[1] ?? match[2];
  const port = Number(match[3]);
  if (port < 1 || port > 65535) return undefined;
  if (!(isIp(hostname) || (match[1] === undefined && isHostName(hostname)))) return undefined;
  return { hostname, port };
}

const hostPortListKind: Kind<readonly string[]> = {
  expect: 'an array of 0-16 "host:port" strings',
  flag: "string",
  read: (raw) => {
    if (!Array.isArray(raw) || raw.length > 16) return undefined;
    if (!raw.every((v) => typeof v === "string" && parseHostPort(v) !== undefined)) {
      return undefined;
    }
    return Object.freeze([...raw as string[]]);
  },
  // The flag takes "h1:6256,h2:6256".
  fromText: (text) => text === "" ? [] : text.split(",").map((part) => part.trim()),
  toToml: (value) => [...value],
};

const domainPubKeyKind: Kind<string | null> = {
  expect: 'an https:, http: or file: URL, or "" for none',
  flag: "string",
  read: (raw) => {
    if (raw === "") return null;
    if (typeof raw !== "string" || !URL.canParse(raw)) return undefined;
    const protocol = new URL(raw).protocol;
    return protocol === "https:" || protocol === "http:" || protocol === "file:" ? raw : undefined;
  },
  fromText: (text) => text,
  toToml: (value) => value ?? "",
};

const logLevelKind: Kind<LogLevelName> = {
  expect: `one of ${LOG_LEVEL_NAMES.map((l) => `"${l}"`).join(", ")}`,
  flag: "string",
  read: (raw) => LOG_LEVEL_NAMES.find((level) => level === raw),
  fromText: (text) => text,
  toToml: (value) => value,
};

const pageUrlKind: Kind<string | null> = {
  expect: 'an http: or https: URL of at most 512 characters, or "" for none',
  flag: "string",
  read: (raw) => {
    if (raw === "") return null;
    if (typeof raw !== "string" || raw.length > 512 || !URL.canParse(raw)) return undefined;
    const protocol = new URL(raw).protocol;
    return protocol === "https:" || protocol === "http:" ? raw : undefined;
  },
  fromText: (text) => text,
  toToml: (value) => value ?? "",
};

const wsUrlKind: Kind<string | null> = {
  expect: 'a ws: or wss: URL of at most 512 characters, or "" for the derived one',
  flag: "string",
  read: (raw) => {
    if (raw === "") return null;
    if (typeof raw !== "string" || raw.length > 512 || !URL.canParse(raw)) return undefined;
    const protocol = new URL(raw).protocol;
    return protocol === "ws:" || protocol === "wss:" ? raw : undefined;
  },
  fromText: (text) => text,
  toToml: (value) => value ?? "",
};

const logFormatKind: Kind<LogFormat> = {
  expect: `one of ${LOG_FORMATS.map((f) => `"${f}"`).join(", ")}`,
  flag: "string",
  read: (raw) => LOG_FORMATS.find((format) => format === raw),
  fromText: (text) => text,
  toToml: (value) => value,
};

// No flag: a token on the command line is visible to every local user in the process list.
const adminTokenKind: Kind<string | null> = {
  expect: 'a token of 16-512 printable ASCII characters, or "" for none',
  flag: null,
  read: (raw) => {
    if (raw === "") return null;
    return typeof raw === "string" && /^[\x21-\x7e]{16,512}$/.test(raw) ? raw : undefined;
  },
  fromText: (text) => text,
  toToml: (value) => value ?? "",
};

const pathKind: Kind<string> = {
  expect: "a non-empty path",
  flag: "string",
  read: (raw, ctx) => {
    if (typeof raw !== "string" || raw === "" || raw.includes("\0")) return undefined;
    return ctx.baseDir === null ? raw : resolvePath(ctx.baseDir, raw);
  },
  fromText: (text) => text,
  toToml: (value) => value,
};

/** A path, or "" for none read as null (the admin token file). */
const nullablePathKind: Kind<string | null> = {
  expect: 'a path, or "" for none',
  flag: "string",
  read: (raw, ctx) => raw === "" ? null : pathKind.read(raw, ctx),
  fromText: (text) => text,
  toToml: (value) => value ?? "",
};

/** A path, or "" for none (TLS files: TLS is off until both are set). */
const optionalPathKind: Kind<string> = {
  expect: 'a path, or "" for none',
  flag: "string",
  read: (raw, ctx) => {
    if (raw === "") return "";
    return pathKind.read(raw, ctx);
  },
  fromText: (text) => text,
  toToml: (value) => value,
};

const wsPathKind: Kind<string> = stringKind(
  'an HTTP path starting with "/" (at most 255 bytes, no spaces, "?" or "#")',
  (text) =>
    text.startsWith("/") && new TextEncoder().encode(text).length <= 255 && !/[\s?#]/.test(text),
);

/** `*` or `scheme://host[:port]` as browsers send it in Origin. */
const ORIGIN = /^(\*|[a-z][a-z0-9+.-]*:\/\/[^\s/?#]+)$/i;

const originsKind: Kind<readonly string[]> = {
  expect: 'an array of origins ("https://game.example", "http://localhost:8000") or "*"',
  flag: "string",
  read: (raw) =>
    Array.isArray(raw) && raw.every((o) => typeof o === "string" && ORIGIN.test(o))
      ? Object.freeze([...raw as string[]])
      : undefined,
  // The flag takes a comma-separated list; an empty text is the empty list.
  fromText: (text) => text.trim() === "" ? [] : text.split(",").map((o) => o.trim()),
  toToml: (value) => [...value],
};

const NUMBER_TEXT = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

const boundsKind: Kind<FragmentBounds | null> = {
  expect: "an array of 4 numbers [minX, minZ, maxX, maxZ] with minX < maxX and minZ < maxZ",
  flag: "string",
  read: (raw) => {
    if (!Array.isArray(raw) || raw.length !== 4) return undefined;
    const n = raw.map((v) => typeof v === "bigint" ? Number(v) : v);
    if (!n.every((v): v is number => typeof v === "number" && Number.isFinite(v))) {
      return undefined;
    }
    const [minX, minZ, maxX, maxZ] = n as [number, number, number, number];
    return minX < maxX && minZ < maxZ ? Object.freeze({ minX, minZ, maxX, maxZ }) : undefined;
  },
  // The flag takes "minX,minZ,maxX,maxZ"; anything else stays text, so the error shows it.
  fromText: (text) => {
    const parts = text.split(",").map((part) => part.trim());
    return parts.length === 4 && parts.every((part) => NUMBER_TEXT.test(part))
      ? parts.map(Number)
      : text;
  },
  toToml: (value) => value === null ? undefined : [value.minX, value.minZ, value.maxX, value.maxZ],
};

/** Where a master reads the account service's public keys: a path or an http(s) URL. */
const keySetSourceKind: Kind<string | null> = {
  expect: 'a file path or an https:/http: URL of a JWK Set, or "" for none',
  flag: "string",
  read: (raw, ctx) => {
    if (raw === "") return null;
    if (typeof raw !== "string" || raw.includes("\0")) return undefined;
    if (/^https?:/i.test(raw)) return URL.canParse(raw) ? raw : undefined;
    return ctx.baseDir === null ? raw : resolvePath(ctx.baseDir, raw);
  },
  fromText: (text) => text,
  toToml: (value) => value ?? "",
};

const authStoreKind: Kind<"sqlite" | "postgres"> = {
  expect: '"sqlite" or "postgres"',
  flag: "string",
  read: (raw) => raw === "sqlite" || raw === "postgres" ? raw : undefined,
  fromText: (text) => text,
  toToml: (value) => value,
};

const positionFormatKind: Kind<"full" | "quantized"> = {
  expect: '"full" or "quantized"',
  flag: "string",
  read: (raw) => raw === "full" || raw === "quantized" ? raw : undefined,
  fromText: (text) => text,
  toToml: (value) => value,
};

// A connection URL may hold a password: a bad one is never echoed back (see `show`).
const postgresUrlKind = stringKind(
  'a postgres:// or postgresql:// URL, or ""',
  (text) => text === "" || (/^postgres(ql)?:\/\//.test(text) && URL.canParse(text)),
);

// ---------------------------------------------------------------------------------------------
// The schema tables: one row per key. Flags are the key in kebab-case, prefixed "fragments-"
// for [cluster.fragments] so `--fragments-size` cannot be mistaken for something else.

interface Field<T> {
  readonly key: string;
  readonly kind: Kind<T>;
  readonly fallback: T;
}

type Fields<T> = { readonly [P in keyof T]-?: Field<T[P]> };

type ClusterScalars = Omit<ClusterSettings, "fragments" | "plugins">;

function field<T>(key: string, kind: Kind<T>, fallback: T): Field<T> {
  return { key, kind, fallback };
}

const ALL_FIELDS: Fields<AllSettings> = {
  serverName: field("server_name", serverNameKind, "Sustenet"),
  maxConnections: field("max_connections", intKind(0, 4_294_967_295), 0), // u32 on the wire
  port: field("port", portKind, 0),
  bindIp: field("bind_ip", ipKind, "127.0.0.1"),
  keysDir: field("keys_dir", pathKind, "keys"),
  maxFrameBytes: field("max_frame_bytes", intKind(64, 16_777_216), 65_536),
  maxQueueBytes: field("max_queue_bytes", intKind(64, 1_073_741_824), 1_048_576),
  handshakeTimeoutMs: field("handshake_timeout_ms", msKind, 5_000),
  idleTimeoutMs: field("idle_timeout_ms", msKind, 30_000),
  maxPendingConnections: field("max_pending_connections", intKind(1, 1_000_000), 1_024),
  maxPendingPerAddress: field("max_pending_per_address", intKind(1, 1_000_000), 64),
  maxPendingFrameBytes: field("max_pending_frame_bytes", intKind(64, 16_777_216), 4_096),
  statusPort: field("status_port", portKind, 0),
  statusIp: field("status_ip", ipKind, "127.0.0.1"),
  statusEnabled: field("status_enabled", boolKind, true),
  logLevel: field("log_level", logLevelKind, "info"),
  // TLS listener (issue 17): on when tls_cert and tls_key are both set.
  tlsCert: field("tls_cert", optionalPathKind, ""),
  tlsKey: field("tls_key", optionalPathKind, ""),
  tlsPort: field("tls_port", portKind, 0),
  wsEnabled: field("ws_enabled", boolKind, false),
  wsPort: field("ws_port", portKind, 0),
  wsPath: field("ws_path", wsPathKind, "/sustenet"),
  wsAllowedOrigins: field(
    "ws_allowed_origins",
    originsKind,
    Object.freeze([]) as readonly string[],
  ),
  logFormat: field("log_format", logFormatKind, "text"),
  adminToken: field("admin_token", adminTokenKind, null),
  adminTokenFile: field("admin_token_file", nullablePathKind, null),
  consolePublic: field("console_public", boolKind, true),
};

const MASTER_FIELDS: Fields<MasterSettings> = {
  heartbeatTimeoutMs: field("heartbeat_timeout_ms", msKind, 3_000),
  ticketTtlMs: field("ticket_ttl_ms", msKind, 30_000),
  registrationTimeoutMs: field("registration_timeout_ms", msKind, 5_000),
  ticketRatePerConn: field("ticket_rate_per_conn", limitKind, 2),
  ticketBurstPerConn: field("ticket_burst_per_conn", limitKind, 4),
  ticketRatePerAddr: field("ticket_rate_per_addr", limitKind, 10),
  ticketBurstPerAddr: field("ticket_burst_per_addr", limitKind, 20),
  ticketRatePerPlayer: field("ticket_rate_per_player", limitKind, 2),
  ticketBurstPerPlayer: field("ticket_burst_per_player", limitKind, 4),
  ticketMaxRefusals: field("ticket_max_refusals", limitKind, 10),
  reservationsPerConn: field("reservations_per_conn", limitKind, 3),
  reservationsPerAddr: field("reservations_per_addr", limitKind, 8),
  reservationsPerPlayer: field("reservations_per_player", limitKind, 3),
  maxClusters: field("max_clusters", intKind(0, 4_294_967_295), 1_024),
  authPublicKeys: field("auth_public_keys", keySetSourceKind, null),
  allowGuests: field("allow_guests", boolKind, true),
  redisUrl: field("redis_url", redisUrlKind, ""),
};

const CLUSTER_FIELDS: Fields<ClusterScalars> = {
  keyName: field("key_name", keyNameKind, "cluster_key"),
  masterIp: field("master_ip", hostKind, "127.0.0.1"),
  masterPort: field("master_port", portKind, 0),
  masterAddresses: field("master_addresses", hostPortListKind, []),
  domainPubKey: field("domain_pub_key", domainPubKeyKind, null),
  statusPageUrl: field("status_page_url", pageUrlKind, null),
  wsPage: field("ws_page", boolKind, false),
  wsPageMasterUrl: field("ws_page_master_url", wsUrlKind, null),
  publicIp: field("public_ip", publicHostKind, ""),
  identityKeyName: field("identity_key_name", keyNameKind, "cluster_identity"),
  heartbeatIntervalMs: field("heartbeat_interval_ms", msKind, 1_000),
  reconnectMinMs: field("reconnect_min_ms", msKind, 500),
  reconnectMaxMs: field("reconnect_max_ms", msKind, 2_000),
  pluginWatchdogMs: field("plugin_watchdog_ms", msKind, 2_000),
  broadcastFlushMs: field("broadcast_flush_ms", intKind(0, 1_000, " (milliseconds)"), 10),
  // Per-player inbound limits (cluster/player_rate_limit.ts explains the defaults).
  playerCommandsPerS: field("player_commands_per_s", intKind(1, 1_000_000), 200),
  playerCommandsBurst: field("player_commands_burst", intKind(1, 1_000_000), 400),
  playerCommandBytesPerS: field("player_command_bytes_per_s", intKind(1, 1_073_741_824), 65_536),
  playerCommandBytesBurst: field(
    "player_command_bytes_burst",
    intKind(1, 1_073_741_824),
    131_072,
  ),
  playerMovesPerS: field("player_moves_per_s", intKind(1, 1_000_000), 120),
  playerMovesBurst: field("player_moves_burst", intKind(1, 1_000_000), 240),
  playerFloodKickMs: field("player_flood_kick_ms", msKind, 3_000),
  plaintext: field("plaintext", boolKind, false),
};

const FRAGMENT_FIELDS: Fields<FragmentSettings> = {
  enabled: field("enabled", boolKind, false),
  size: field("size", positiveFloatKind, 64),
  bounds: field("bounds", boundsKind, null),
  // (2v+1)² fragments are visited per player per tick, so the view distance is capped.
  viewDistance: field("view_distance", intKind(0, 100), 1),
  tickHz: field("tick_hz", intKind(1, 120), 20),
  maxPlayers: field("max_players", intKind(1, 2_147_483_647), 500),
  crowdThreshold: field("crowd_threshold", intKind(1, 2_147_483_647), 100),
  positionFormat: field("position_format", positionFormatKind, "full"),
};

const AUTH_FIELDS: Fields<AuthSettings> = {
  store: field("store", authStoreKind, "sqlite"),
  sqlitePath: field("sqlite_path", pathKind, "auth.sqlite"),
  postgresUrl: field("postgres_url", postgresUrlKind, ""),
  signingKeys: field("signing_keys", pathKind, "keys/auth_signing.json"),
  publicKeysOut: field("public_keys_out", pathKind, "keys/auth_public.json"),
  keysKept: field("keys_kept", intKind(0, 16), 1),
  accessTokenTtlS: field("access_token_ttl_s", intKind(10, 86_400, " (seconds)"), 900),
  refreshTokenTtlS: field("refresh_token_ttl_s", intKind(60, 31_536_000, " (seconds)"), 2_592_000),
  // 2^15 × 8 × 128 B = 32 MiB per hash (OWASP's scrypt floor is 2^17 with r 8, p 1 at 128 MiB;
  // 2^15 keeps a 2-core machine answering tens of log-ins per second; raise it where you can).
  scryptLogN: field("scrypt_log_n", intKind(10, 20), 15),
  scryptR: field("scrypt_r", intKind(1, 32), 8),
  scryptP: field("scrypt_p", intKind(1, 16), 1),
  loginRatePerAccount: field("login_rate_per_account", positiveFloatKind, 0.1),
  loginBurstPerAccount: field("login_burst_per_account", intKind(1, 1_000_000), 5),
  loginRatePerAddr: field("login_rate_per_addr", positiveFloatKind, 1),
  loginBurstPerAddr: field("login_burst_per_addr", intKind(1, 1_000_000), 20),
  maxBodyBytes: field("max_body_bytes", intKind(256, 1_048_576), 8_192),
  maxPendingHashes: field("max_pending_hashes", intKind(1, 100_000), 64),
};

type SectionName = "all" | "master" | "cluster" | "cluster.fragments" | "auth";

interface FlagRow {
  readonly flag: string;
  readonly section: SectionName;
  readonly key: string;
  readonly kind: Kind<unknown>;
  readonly role: ServerRole | null;
}

function flagRows<T>(section: SectionName, fields: Fields<T>, role: ServerRole | null): FlagRow[] {
  const prefix = section === "cluster.fragments" ? "fragments-" : "";
  const rows: FlagRow[] = [];
  for (const f of Object.values<Field<unknown>>(fields)) {
    if (f.kind.flag === null) continue;
    rows.push({
      flag: prefix + f.key.replaceAll("_", "-"),
      section,
      key: f.key,
      kind: f.kind,
      role,
    });
  }
  return rows;
}

const FLAGS: ReadonlyMap<string, FlagRow> = new Map(
  [
    ...flagRows("all", ALL_FIELDS, null),
    ...flagRows("master", MASTER_FIELDS, "master"),
    ...flagRows("cluster", CLUSTER_FIELDS, "cluster"),
    ...flagRows("cluster.fragments", FRAGMENT_FIELDS, "cluster"),
    ...flagRows("auth", AUTH_FIELDS, "auth"),
  ].map((row) => [row.flag, row]),
);

/**
 * One configurable key, for help text and docs.
 *
 * @example
 * ```ts
 * import { CONFIG_KEYS, type ConfigKeyInfo } from "./config_schema.ts";
 * import assert from "node:assert/strict";
 *
 * const port: ConfigKeyInfo | undefined = CONFIG_KEYS.find((k) => k.field === "all.port");
 * assert.equal(port?.flag, "--port");
 * ```
 */
export interface ConfigKeyInfo {
  /** Dotted path, e.g. `cluster.master_port`. */
  readonly field: string;
  /** Its command-line flag, or null (lists and tables have none). */
  readonly flag: string | null;
  /** `"string"` flags take a value; `"boolean"` flags also have a `--no-` form. */
  readonly flagType: "string" | "boolean" | null;
  /** What a valid value is, e.g. "an integer 0..65535". */
  readonly expect: string;
  /** The role that reads it; null = both. */
  readonly role: ServerRole | null;
  /** The default as written in Config.toml (`6256`, `"keys"`, `true`), or `""` if none. */
  readonly defaultText: string;
}

// A setting's value as Config.toml writes it, for help text.
function tomlText(value: TomlValue | undefined): string {
  if (value === undefined) return "";
  if (typeof value === "string") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map((v) => tomlText(v)).join(", ")}]`;
  if (typeof value === "object" && !(value instanceof Date)) return "{…}";
  return String(value);
}

function keyInfos<T>(section: SectionName, fields: Fields<T>, role: ServerRole | null) {
  const prefix = section === "cluster.fragments" ? "--fragments-" : "--";
  return Object.values<Field<unknown>>(fields).map((f): ConfigKeyInfo => ({
    field: `${section}.${f.key}`,
    flag: f.kind.flag === null ? null : prefix + f.key.replaceAll("_", "-"),
    flagType: f.kind.flag,
    expect: f.kind.expect,
    role,
    defaultText: tomlText(f.kind.toToml(f.fallback)),
  }));
}

/**
 * Every scalar key of Config.toml with its flag (plugins are tables, not listed).
 *
 * @example
 * ```ts
 * import { CONFIG_KEYS } from "./config_schema.ts";
 * import assert from "node:assert/strict";
 *
 * const flags = CONFIG_KEYS.map((k) => k.flag);
 * assert.ok(flags.includes("--master-port"));
 * assert.ok(flags.includes("--fragments-tick-hz"));
 * ```
 */
export const CONFIG_KEYS: readonly ConfigKeyInfo[] = Object.freeze([
  ...keyInfos("all", ALL_FIELDS, null),
  ...keyInfos("master", MASTER_FIELDS, "master"),
  ...keyInfos("cluster", CLUSTER_FIELDS, "cluster"),
  ...keyInfos("cluster.fragments", FRAGMENT_FIELDS, "cluster"),
  ...keyInfos("auth", AUTH_FIELDS, "auth"),
]);

// ---------------------------------------------------------------------------------------------
// Validation.

interface Validation {
  readonly file: string | null;
  readonly baseDir: string | null;
  /** Fields whose value came from a flag → the flag, for messages. */
  readonly flags: ReadonlyMap<string, string>;
}

function show(value: TomlValue | undefined): string {
  if (value === undefined) return "nothing";
  if (typeof value === "string") {
    const text = JSON.stringify(value);
    return text.length > 60 ? `${text.slice(0, 57)}..."` : text;
  }
  if (typeof value === "bigint" || typeof value === "number" || typeof value === "boolean") {
    return String(value);
  }
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (isTable(value)) return "a table";
  return `a date (${value instanceof Date ? value.toISOString() : String(value)})`;
}

function isTable(value: TomlValue | undefined): value is TomlTable {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === null || proto === Object.prototype;
}

function where(v: Validation, path: string): string {
  const flag = v.flags.get(path);
  return flag === undefined ? `${v.file ?? "config"}: ${path}` : `--${flag}`;
}

function fail(v: Validation, path: string, text: string, cause?: unknown): never {
  throw new ConfigError("config_invalid", `${where(v, path)} ${text}`, {
    file: v.file,
    field: path,
    flag: v.flags.has(path) ? `--${v.flags.get(path)}` : null,
    cause,
  });
}

/**
 * Reports a rule between two fields against the one the user just set: the second field when
 * only it came from a flag, else the first.
 */
function conflict(
  v: Validation,
  first: readonly [string, string],
  second: readonly [string, string],
): never {
  const [path, text] = v.flags.has(second[0]) && !v.flags.has(first[0]) ? second : first;
  return fail(v, path, text);
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row.push(Math.min((prev[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost));
    }
    prev = row;
  }
  return prev[b.length] ?? 0;
}

function unknownKey(v: Validation, path: string, key: string, known: readonly string[]): never {
  const near = known.find((k) => editDistance(k, key) <= 2);
  const hint = near === undefined ? "" : ` (did you mean ${near}?)`;
  throw new ConfigError("config_invalid", `${v.file ?? "config"}: unknown key ${path}${hint}`, {
    file: v.file,
    field: path,
  });
}

function tableAt(v: Validation, raw: TomlValue | undefined, path: string): TomlTable {
  if (raw === undefined) return {};
  if (!isTable(raw)) fail(v, path, `must be a table ([${path}]), got ${show(raw)}`);
  return raw;
}

function readSection<T>(
  v: Validation,
  table: TomlTable,
  section: string,
  fields: Fields<T>,
  subTables: readonly string[] = [],
): T {
  const known = [...Object.values<Field<unknown>>(fields).map((f) => f.key), ...subTables];
  for (const key of Object.keys(table)) {
    if (!known.includes(key)) unknownKey(v, `${section}.${key}`, key, known);
  }
  const out: Partial<T> = {};
  for (const prop of Object.keys(fields) as (keyof T)[]) {
    assignField(v, out, prop, fields[prop], table, section);
  }
  return Object.freeze(out) as T;
}

function assignField<T, K extends keyof T>(
  v: Validation,
  out: Partial<T>,
  prop: K,
  f: Field<T[K]>,
  table: TomlTable,
  section: string,
): void {
  const path = `${section}.${f.key}`;
  const raw = table[f.key] ?? f.kind.toToml(f.fallback);
  if (raw === undefined) {
    out[prop] = f.fallback; // an optional key left out (e.g. bounds)
    return;
  }
  // Values from flags are relative to the working directory, not the config file.
  const ctx = { baseDir: v.flags.has(path) ? null : v.baseDir };
  const value = f.kind.read(raw, ctx);
  if (value === undefined) {
    // A connection URL may hold a password and a near-miss token is still a secret: neither is
    // echoed.
    const shown = f.kind === postgresUrlKind
      ? "something else (not shown)"
      : f.kind === adminTokenKind
      ? "[redacted]"
      : show(raw);
    fail(v, path, `must be ${f.kind.expect}, got ${shown}`);
  }
  out[prop] = value;
}

const PERMISSION_KEYS = ["read", "write", "net", "env", "run", "ffi", "sys", "import"] as const;
const PLUGIN_KEYS = ["url", "name", "settings", "permissions", "trusted", "max_memory_mb"];
const PLUGIN_MEMORY_MB = { min: 16, max: 65536, fallback: 128 };
// Grants that hand a plugin the cluster's whole process: refused unless it is trusted.
const FULL_TRUST_GRANTS = ["ffi", "run"] as const;
const PLUGIN_SCHEMES = ["file", "https", "http", "jsr", "npm"];
const PLUGIN_NAME = /^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}$/;

function readPlugins(v: Validation, raw: TomlValue | undefined): readonly PluginSettings[] {
  if (raw === undefined) return Object.freeze([]);
  if (!Array.isArray(raw)) {
    fail(
      v,
      "cluster.plugins",
      `must be an array of tables ([[cluster.plugins]]), got ${show(raw)}`,
    );
  }
  const names = new Set<string>();
  const plugins = raw.map((entry, i) => {
    const path = `cluster.plugins[${i}]`;
    if (!isTable(entry)) fail(v, path, `must be a table, got ${show(entry)}`);
    for (const key of Object.keys(entry)) {
      if (!PLUGIN_KEYS.includes(key)) unknownKey(v, `${path}.${key}`, key, PLUGIN_KEYS);
    }
    const url = readPluginUrl(v, entry.url, `${path}.url`);
    const name = entry.name ?? defaultPluginName(typeof entry.url === "string" ? entry.url : "");
    if (typeof name !== "string" || !PLUGIN_NAME.test(name)) {
      const derived = entry.name === undefined ? " (derived from url; set name)" : "";
      fail(
        v,
        `${path}.name`,
        `must be 1-64 of A-Z a-z 0-9 _ . - not starting with .${derived}, got ${show(name)}`,
      );
    }
    if (names.has(name)) fail(v, `${path}.name`, `must be unique, ${show(name)} is used twice`);
    names.add(name);
    const settings = readSettingsTable(v, tableAt(v, entry.settings, `${path}.settings`), path);
    const permissions = readPermissions(v, entry.permissions, `${path}.permissions`);
    const trusted = entry.trusted ?? false;
    if (typeof trusted !== "boolean") {
      fail(v, `${path}.trusted`, `must be true or false, got ${show(trusted)}`);
    }
    for (const key of FULL_TRUST_GRANTS) {
      if (!trusted && permissions[key] !== false) {
        fail(
          v,
          `${path}.permissions.${key}`,
          `needs trusted = true on the plugin (FULL TRUST: ${key} gives the plugin everything ` +
            `the cluster can do)`,
        );
      }
    }
    const memory = entry.max_memory_mb ?? PLUGIN_MEMORY_MB.fallback;
    const maxMemoryMb = typeof memory === "bigint" ? Number(memory) : memory;
    if (
      typeof maxMemoryMb !== "number" || !Number.isInteger(maxMemoryMb) ||
      maxMemoryMb < PLUGIN_MEMORY_MB.min || maxMemoryMb > PLUGIN_MEMORY_MB.max
    ) {
      fail(
        v,
        `${path}.max_memory_mb`,
        `must be an integer in ${PLUGIN_MEMORY_MB.min}..${PLUGIN_MEMORY_MB.max}, got ${
          show(memory)
        }`,
      );
    }
    return Object.freeze({ url, name, settings, permissions, trusted, maxMemoryMb });
  });
  return Object.freeze(plugins);
}

function readPluginUrl(v: Validation, raw: TomlValue | undefined, path: string): string {
  const expect = "must be a file path or a file:, https:, http:, jsr: or npm: URL";
  if (raw === undefined) fail(v, path, "is required");
  if (typeof raw !== "string" || raw === "" || raw.includes("\0")) {
    fail(v, path, `${expect}, got ${show(raw)}`);
  }
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(raw)?.[1];
  if (scheme !== undefined && scheme.length > 1) { // one letter is a Windows drive, not a scheme
    const known = PLUGIN_SCHEMES.includes(scheme.toLowerCase());
    if (!known || !URL.canParse(raw)) fail(v, path, `${expect}, got ${show(raw)}`);
    return raw;
  }
  if (isAbsolutePath(raw)) return pathToFileHref(resolvePath("/", raw));
  if (v.baseDir === null || !isAbsolutePath(v.baseDir)) {
    fail(v, path, `is a relative path but the config has no absolute directory, got ${show(raw)}`);
  }
  return pathToFileHref(resolvePath(v.baseDir, raw));
}

function defaultPluginName(url: string): string {
  const bare = url.replace(/[?#].*$/, "");
  const last = bare.split(/[\\/:]/).filter((s) => s !== "").at(-1) ?? "";
  const unversioned = last.replace(/(?<=.)@.*$/, ""); // "chat@1.2.0" → "chat"
  const dot = unversioned.lastIndexOf(".");
  return dot > 0 ? unversioned.slice(0, dot) : unversioned;
}

function readSettingsTable(
  v: Validation,
  table: TomlTable,
  path: string,
): { readonly [key: string]: PluginSettingValue } {
  const out: { [key: string]: PluginSettingValue } = {};
  for (const [key, value] of Object.entries(table)) {
    out[key] = readSettingValue(v, value, `${path}.settings.${key}`);
  }
  return Object.freeze(out);
}

function readSettingValue(v: Validation, raw: TomlValue, path: string): PluginSettingValue {
  if (typeof raw === "string" || typeof raw === "number" || typeof raw === "boolean") return raw;
  if (typeof raw === "bigint") {
    const n = Number(raw);
    if (!Number.isSafeInteger(n)) fail(v, path, `must be a safe integer, got ${raw}`);
    return n;
  }
  if (Array.isArray(raw)) {
    return Object.freeze(raw.map((item, i) => readSettingValue(v, item, `${path}[${i}]`)));
  }
  if (isTable(raw)) {
    const out: { [key: string]: PluginSettingValue } = {};
    for (const [key, value] of Object.entries(raw)) {
      out[key] = readSettingValue(v, value, `${path}.${key}`);
    }
    return Object.freeze(out);
  }
  // A TOML date or time: TomlDate.toISOString gives its TOML form (local dates stay local).
  return raw instanceof Date ? raw.toISOString() : String(raw);
}

function readPermissions(v: Validation, raw: TomlValue | undefined, path: string) {
  const table = tableAt(v, raw, path);
  for (const key of Object.keys(table)) {
    if (!(PERMISSION_KEYS as readonly string[]).includes(key)) {
      unknownKey(v, `${path}.${key}`, key, PERMISSION_KEYS);
    }
  }
  const grant = (key: typeof PERMISSION_KEYS[number]): PermissionGrant => {
    const value = table[key];
    if (value === undefined) return false;
    if (typeof value === "boolean") return value;
    if (
      Array.isArray(value) &&
      value.every((item) => typeof item === "string" && item !== "" && !item.includes("\0"))
    ) {
      // Relative paths mean the config's directory, like `url` (the process's cwd is arbitrary).
      const isPath = key === "read" || key === "write";
      return Object.freeze(
        value.map((item) =>
          isPath && v.baseDir !== null ? resolvePath(v.baseDir, String(item)) : String(item)
        ),
      );
    }
    return fail(
      v,
      `${path}.${key}`,
      `must be true, false or an array of non-empty strings, got ${show(value)}`,
    );
  };
  const permissions: PluginPermissions = {
    read: grant("read"),
    write: grant("write"),
    net: grant("net"),
    env: grant("env"),
    run: grant("run"),
    ffi: grant("ffi"),
    sys: grant("sys"),
    import: grant("import"),
  };
  return Object.freeze(permissions);
}

function validate(doc: TomlTable, v: Validation): SustenetConfig {
  const sections = ["all", "master", "cluster", "auth"];
  for (const key of Object.keys(doc)) {
    if (!sections.includes(key)) {
      const what = isTable(doc[key]) ? `section [${key}]` : `key ${key} (outside any section)`;
      throw new ConfigError("config_invalid", `${v.file ?? "config"}: unknown ${what}`, {
        file: v.file,
        field: key,
      });
    }
  }
  const all = readSection(v, tableAt(v, doc.all, "all"), "all", ALL_FIELDS);
  const master = readSection(v, tableAt(v, doc.master, "master"), "master", MASTER_FIELDS);
  const clusterTable = tableAt(v, doc.cluster, "cluster");
  const scalars = readSection(v, clusterTable, "cluster", CLUSTER_FIELDS, [
    "fragments",
    "plugins",
  ]);
  const fragments = readSection(
    v,
    tableAt(v, clusterTable.fragments, "cluster.fragments"),
    "cluster.fragments",
    FRAGMENT_FIELDS,
  );
  const plugins = readPlugins(v, clusterTable.plugins);
  const auth = readSection(v, tableAt(v, doc.auth, "auth"), "auth", AUTH_FIELDS);
  if (!master.allowGuests && master.authPublicKeys === null) {
    conflict(v, [
      "master.allow_guests",
      "= false needs master.auth_public_keys (else no player could join)",
    ], ["master.auth_public_keys", "must be set while master.allow_guests = false"]);
  }
  if (fragments.positionFormat === "quantized" && fragments.bounds === null) {
    conflict(v, [
      "cluster.fragments.position_format",
      '= "quantized" needs cluster.fragments.bounds (x/z are quantized over them)',
    ], ["cluster.fragments.bounds", 'must be set when position_format = "quantized"']);
  }
  if (auth.store === "postgres" && auth.postgresUrl === "") {
    conflict(v, [
      "auth.postgres_url",
      'must be set when auth.store = "postgres"',
    ], ["auth.store", '= "postgres" needs auth.postgres_url']);
  }

  if (all.maxQueueBytes < all.maxFrameBytes) {
    conflict(v, [
      "all.max_queue_bytes",
      `must be at least all.max_frame_bytes (${all.maxFrameBytes}), got ${all.maxQueueBytes}`,
    ], [
      "all.max_frame_bytes",
      `must be at most all.max_queue_bytes (${all.maxQueueBytes}), got ${all.maxFrameBytes}`,
    ]);
  }
  if (scalars.reconnectMinMs > scalars.reconnectMaxMs) {
    conflict(v, [
      "cluster.reconnect_min_ms",
      `must be at most cluster.reconnect_max_ms (${scalars.reconnectMaxMs}), got ${scalars.reconnectMinMs}`,
    ], [
      "cluster.reconnect_max_ms",
      `must be at least cluster.reconnect_min_ms (${scalars.reconnectMinMs}), got ${scalars.reconnectMaxMs}`,
    ]);
  }
  if (scalars.playerCommandBytesBurst < all.maxFrameBytes) {
    conflict(v, [
      "cluster.player_command_bytes_burst",
      `must be at least all.max_frame_bytes (${all.maxFrameBytes}) so a largest command can ` +
      `pass, got ${scalars.playerCommandBytesBurst}`,
    ], [
      "all.max_frame_bytes",
      `must be at most cluster.player_command_bytes_burst (${scalars.playerCommandBytesBurst}), ` +
      `got ${all.maxFrameBytes}`,
    ]);
  }
  if (scalars.plaintext && !isLoopbackIp(all.bindIp)) {
    conflict(v, [
      "cluster.plaintext",
      `= true is refused because all.bind_ip (${all.bindIp}) is not a loopback address: ` +
      "plaintext mode sends game traffic unencrypted and is only for benchmarks on 127.0.0.1",
    ], [
      "all.bind_ip",
      `must be a loopback address while cluster.plaintext = true (plaintext mode sends game ` +
      `traffic unencrypted), got ${show(all.bindIp)}`,
    ]);
  }
  if (scalars.wsPage && !all.wsEnabled) {
    conflict(v, [
      "cluster.ws_page",
      "= true needs all.ws_enabled = true: the page is served on the WebSocket listener's port",
    ], [
      "all.ws_enabled",
      "must be true while cluster.ws_page = true (the page is served on its port)",
    ]);
  }
  if (scalars.wsPage && LIVE_PAGE_PATHS.includes(all.wsPath)) {
    conflict(v, [
      "all.ws_path",
      `must not be one of the live page's paths (${LIVE_PAGE_PATHS.join(", ")}) while ` +
      `cluster.ws_page = true, got ${show(all.wsPath)}`,
    ], [
      "cluster.ws_page",
      `= true is refused while all.ws_path (${all.wsPath}) is one of the live page's paths`,
    ]);
  }
  if ((all.tlsCert === "") !== (all.tlsKey === "")) {
    conflict(v, [
      "all.tls_key",
      `must be set together with all.tls_cert (both or neither), got ${show(all.tlsKey)}`,
    ], [
      "all.tls_cert",
      `must be set together with all.tls_key (both or neither), got ${show(all.tlsCert)}`,
    ]);
  }
  const cluster: ClusterSettings = Object.freeze({ ...scalars, fragments, plugins });
  return Object.freeze({ file: v.file, all, master, cluster, auth });
}

// ---------------------------------------------------------------------------------------------
// Public API.

/**
 * Options of {@linkcode parseConfig}.
 *
 * @example
 * ```ts
 * import { ConfigError, parseConfig, type ParseConfigOptions } from "./config_schema.ts";
 * import assert from "node:assert/strict";
 *
 * // Errors name the file; relative paths resolve against `baseDir`.
 * const options: ParseConfigOptions = { file: "Config.toml", baseDir: "/srv/game" };
 * assert.equal(parseConfig('[all]\nkeys_dir = "keys"', options).all.keysDir, "/srv/game/keys");
 * assert.throws(
 *   () => parseConfig("[all]\nport = -1", options),
 *   (e) => e instanceof ConfigError && e.file === "Config.toml",
 * );
 * ```
 */
export interface ParseConfigOptions {
  /** The file name used in messages and stored in `config.file`. */
  readonly file?: string;
  /**
   * Directory that relative `keys_dir` and plugin paths resolve against; plugin paths need an
   * absolute one.
   * @default {the directory of `file`, or none (relative paths kept as given)}
   */
  readonly baseDir?: string;
}

/**
 * Parses and validates Config.toml text (pure, no I/O). Absent keys take their defaults.
 *
 * @param text TOML text.
 * @param options File name for messages and the base directory for relative paths.
 * @throws {ConfigError} `config_unreadable` for invalid TOML, `config_invalid` for a bad value,
 * an unknown key or section, or a refused combination.
 *
 * @example
 * ```ts
 * import { parseConfig } from "./config_schema.ts";
 * import assert from "node:assert/strict";
 *
 * const config = parseConfig('[all]\nkeys_dir = "secrets"', { file: "/srv/game/Config.toml" });
 * assert.equal(config.all.keysDir, "/srv/game/secrets");
 * assert.equal(config.all.port, 0);
 * assert.throws(() => parseConfig("[all]\nprot = 1"), /unknown key all.prot \(did you mean port\?\)/);
 * ```
 */
export function parseConfig(text: string, options: ParseConfigOptions = {}): SustenetConfig {
  const file = options.file ?? null;
  let doc: TomlTable;
  try {
    doc = parse(text, { integersAsBigInt: true, unsafeKeyBehaviour: "throw", maxDepth: 32 });
  } catch (err) {
    const detail = err instanceof Error ? err.message.split("\n")[0] : String(err);
    const at = err instanceof Error && "line" in err && "column" in err
      ? ` at line ${err.line}, column ${err.column}`
      : "";
    throw new ConfigError(
      "config_unreadable",
      `${file ?? "config"}: invalid TOML${at}: ${detail}`,
      { file, field: "", cause: err },
    );
  }
  const baseDir = options.baseDir ?? (file === null ? null : dirnameOf(file));
  return validate(doc, { file, baseDir, flags: new Map() });
}

let defaults: SustenetConfig | undefined;

/**
 * The configuration with every key at its default (what an empty Config.toml gives).
 *
 * @example
 * ```ts
 * import { defaultConfig } from "./config_schema.ts";
 * import assert from "node:assert/strict";
 *
 * const config = defaultConfig();
 * assert.equal(config.all.serverName, "Sustenet");
 * assert.equal(config.all.bindIp, "127.0.0.1");
 * assert.equal(config.cluster.fragments.tickHz, 20);
 * ```
 */
export function defaultConfig(): SustenetConfig {
  defaults ??= parseConfig("");
  return defaults;
}

function sectionToToml<T>(values: T, fields: Fields<T>): TomlTable {
  const out: TomlTable = {};
  for (const prop of Object.keys(fields) as (keyof T)[]) {
    const f = fields[prop];
    const raw = f.kind.toToml(values[prop]);
    if (raw !== undefined) out[f.key] = raw;
  }
  return out;
}

function pluginToToml(plugin: PluginSettings): TomlTable {
  const permissions: TomlTable = {};
  for (const key of PERMISSION_KEYS) {
    const grant = plugin.permissions[key];
    permissions[key] = typeof grant === "boolean" ? grant : [...grant];
  }
  return {
    url: plugin.url,
    name: plugin.name,
    settings: structuredClone(plugin.settings) as TomlTable,
    permissions,
    trusted: plugin.trusted,
    max_memory_mb: plugin.maxMemoryMb,
  };
}

function configToToml(config: SustenetConfig): TomlTable {
  const { fragments, plugins, ...scalars } = config.cluster;
  return {
    all: sectionToToml(config.all, ALL_FIELDS),
    master: sectionToToml(config.master, MASTER_FIELDS),
    cluster: {
      ...sectionToToml(scalars, CLUSTER_FIELDS),
      fragments: sectionToToml(fragments, FRAGMENT_FIELDS),
      plugins: plugins.map(pluginToToml),
    },
    auth: sectionToToml(config.auth, AUTH_FIELDS),
  };
}

/**
 * Returns a new config with keys overridden by command-line flags, validated exactly like
 * file values; errors name the flag. Keys are flag names without `--` (`"port"`,
 * `"server-name"`, `"fragments-tick-hz"`); values are the flag's text, or a boolean for
 * switches. Relative paths given by flags stay relative to the working directory.
 *
 * @param config The config to start from (not modified).
 * @param overrides Flag name → value.
 * @throws {ConfigError} For an unknown flag, a bad value, or a refused combination.
 *
 * @example
 * ```ts
 * import { applyOverrides, defaultConfig } from "./config_schema.ts";
 * import assert from "node:assert/strict";
 *
 * const config = applyOverrides(defaultConfig(), { port: "7000", "status-enabled": false });
 * assert.equal(config.all.port, 7000);
 * assert.equal(config.all.statusEnabled, false);
 * assert.throws(
 *   () => applyOverrides(defaultConfig(), { port: "x" }),
 *   { message: '--port must be an integer 0..65535, got "x"' },
 * );
 * ```
 */
export function applyOverrides(
  config: SustenetConfig,
  overrides: Readonly<Record<string, string | boolean>>,
): SustenetConfig {
  const doc = configToToml(config);
  const flags = new Map<string, string>();
  for (const [name, value] of Object.entries(overrides)) {
    const row = FLAGS.get(name);
    if (row === undefined) {
      throw new ConfigError("config_invalid", `unknown flag --${name}`, {
        file: config.file,
        field: "",
        flag: `--${name}`,
      });
    }
    const path = `${row.section}.${row.key}`;
    if (typeof value === "boolean" && row.kind.flag !== "boolean") {
      throw new ConfigError("config_invalid", `--${name} needs a value`, {
        file: config.file,
        field: path,
        flag: `--${name}`,
      });
    }
    const section = row.section === "cluster.fragments"
      ? (doc.cluster as TomlTable).fragments as TomlTable
      : doc[row.section] as TomlTable;
    section[row.key] = typeof value === "boolean" ? value : row.kind.fromText(value);
    flags.set(path, name);
  }
  // Paths in `config` are already resolved, so nothing is re-resolved (baseDir null).
  return validate(doc, { file: config.file, baseDir: null, flags });
}

/**
 * The role of the section a flag belongs to (`null` for `[all]` flags), or undefined when
 * there is no such flag.
 *
 * @param flag Flag name without `--`.
 *
 * @example
 * ```ts
 * import { flagRole } from "./config_schema.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(flagRole("port"), null);
 * assert.equal(flagRole("key-name"), "cluster");
 * assert.equal(flagRole("nope"), undefined);
 * ```
 */
export function flagRole(flag: string): ServerRole | null | undefined {
  return FLAGS.get(flag)?.role;
}

/**
 * The port a role listens on: `all.port`, or 6256 (master) / 6257 (cluster) when it is 0.
 *
 * @param config The config.
 * @param role The role asking.
 *
 * @example
 * ```ts
 * import { defaultConfig, resolvedPort } from "./config_schema.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(resolvedPort(defaultConfig(), "master"), 6256);
 * assert.equal(resolvedPort(defaultConfig(), "cluster"), 6257);
 * ```
 */
export function resolvedPort(config: SustenetConfig, role: ServerRole): number {
  return config.all.port === 0 ? DEFAULT_PORTS[role] : config.all.port;
}

/**
 * The status HTTP port of a role: `all.status_port`, or 6280 / 6281 when it is 0.
 *
 * @param config The config.
 * @param role The role asking.
 *
 * @example
 * ```ts
 * import { defaultConfig, resolvedStatusPort } from "./config_schema.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(resolvedStatusPort(defaultConfig(), "cluster"), 6281);
 * ```
 */
export function resolvedStatusPort(config: SustenetConfig, role: ServerRole): number {
  return config.all.statusPort === 0 ? DEFAULT_STATUS_PORTS[role] : config.all.statusPort;
}

/**
 * The WebSocket listener port of a role: `all.ws_port`, or 6290 / 6291 when it is 0.
 *
 * @param config The config.
 * @param role The role asking.
 *
 * @example
 * ```ts
 * import { defaultConfig, resolvedWsPort } from "./config_schema.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(resolvedWsPort(defaultConfig(), "master"), 6290);
 * ```
 */
export function resolvedWsPort(config: SustenetConfig, role: GameServerRole): number {
  return config.all.wsPort === 0 ? DEFAULT_WS_PORTS[role] : config.all.wsPort;
}

/**
 * The TLS port of a role, or null when TLS is off (`all.tls_cert` unset): `all.tls_port`, or
 * 6266 / 6267 when it is 0.
 *
 * @param config The config.
 * @param role The role asking.
 *
 * @example
 * ```ts
 * import { defaultConfig, parseConfig, resolvedTlsPort } from "./config_schema.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(resolvedTlsPort(defaultConfig(), "master"), null);
 * const tls = parseConfig('[all]\ntls_cert = "/c.pem"\ntls_key = "/k.pem"');
 * assert.equal(resolvedTlsPort(tls, "cluster"), 6267);
 * ```
 */
export function resolvedTlsPort(config: SustenetConfig, role: GameServerRole): number | null {
  if (config.all.tlsCert === "") return null;
  return config.all.tlsPort === 0 ? DEFAULT_TLS_PORTS[role] : config.all.tlsPort;
}

/**
 * The master port a cluster connects to: `cluster.master_port`, or 6256 when it is 0.
 *
 * @param config The config.
 *
 * @example
 * ```ts
 * import { defaultConfig, resolvedMasterPort } from "./config_schema.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(resolvedMasterPort(defaultConfig()), 6256);
 * ```
 */
export function resolvedMasterPort(config: SustenetConfig): number {
  return config.cluster.masterPort === 0 ? DEFAULT_PORTS.master : config.cluster.masterPort;
}

/**
 * The address a cluster announces to clients: `cluster.public_ip`, else `all.bind_ip`, except
 * that an unspecified bind address (0.0.0.0 / ::) announces 127.0.0.1.
 *
 * @param config The config.
 *
 * @example
 * ```ts
 * import { parseConfig, resolvedPublicIp } from "./config_schema.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(resolvedPublicIp(parseConfig('[all]\nbind_ip = "10.0.0.5"')), "10.0.0.5");
 * assert.equal(resolvedPublicIp(parseConfig('[all]\nbind_ip = "0.0.0.0"')), "127.0.0.1");
 * ```
 */
export function resolvedPublicIp(config: SustenetConfig): string {
  if (config.cluster.publicIp !== "") return config.cluster.publicIp;
  return isUnspecifiedIp(config.all.bindIp) ? "127.0.0.1" : config.all.bindIp;
}

/**
 * The warning a cluster should log when it announces 127.0.0.1 only because it binds every
 * interface without a `public_ip`, or null.
 *
 * @param config The config.
 *
 * @example
 * ```ts
 * import { defaultConfig, parseConfig, publicIpWarning } from "./config_schema.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(publicIpWarning(defaultConfig()), null);
 * assert.match(publicIpWarning(parseConfig('[all]\nbind_ip = "0.0.0.0"')) ?? "", /public_ip/);
 * ```
 */
export function publicIpWarning(config: SustenetConfig): string | null {
  if (config.cluster.publicIp !== "" || !isUnspecifiedIp(config.all.bindIp)) return null;
  return `all.bind_ip is ${config.all.bindIp} and cluster.public_ip is not set: announcing ` +
    "127.0.0.1, which only local clients can reach; set cluster.public_ip";
}
