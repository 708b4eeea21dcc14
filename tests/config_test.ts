import assert from "node:assert/strict";
import fc from "fast-check";
import { stringify } from "smol-toml";
import {
  applyOverrides,
  CONFIG_KEYS,
  ConfigError,
  configFromArgs,
  defaultConfig,
  exitOnConfigError,
  isLoopbackIp,
  loadConfig,
  parseConfig,
  publicIpWarning,
  resolvedMasterPort,
  resolvedPort,
  resolvedPublicIp,
  resolvedStatusPort,
  type ServerRole,
  type SustenetConfig,
} from "../shared/config.ts";
import { runDeno, withTempDir } from "./_process.ts";

const ROOT = new URL("..", import.meta.url);
const ROOT_DIR = decodeURIComponent(ROOT.pathname).replace(/\/$/, "");

/** Asserts that `fn` throws a ConfigError for `field` whose message matches `message`. */
function assertConfigError(
  fn: () => unknown,
  field: string,
  message: string | RegExp,
  code: "config_invalid" | "config_unreadable" = "config_invalid",
): ConfigError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof ConfigError, `expected a ConfigError, got ${String(caught)}`);
  assert.equal(caught.code, code);
  assert.equal(caught.field, field);
  if (typeof message === "string") assert.equal(caught.message, message);
  else assert.match(caught.message, message);
  return caught;
}

function parseAt(text: string): SustenetConfig {
  return parseConfig(text, { file: "/srv/game/Config.toml" });
}

Deno.test("an empty config gives every documented default", () => {
  const config = parseConfig("");
  assert.deepEqual(config, {
    file: null,
    all: {
      serverName: "Sustenet",
      maxConnections: 0,
      port: 0,
      bindIp: "127.0.0.1",
      keysDir: "keys",
      maxFrameBytes: 65536,
      maxQueueBytes: 1048576,
      handshakeTimeoutMs: 5000,
      idleTimeoutMs: 30000,
      maxPendingConnections: 1024,
      maxPendingPerAddress: 64,
      maxPendingFrameBytes: 4096,
      statusPort: 0,
      statusIp: "127.0.0.1",
      statusEnabled: true,
      logLevel: "info",
      tlsCert: "",
      tlsKey: "",
      tlsPort: 0,
      wsEnabled: false,
      wsPort: 0,
      wsPath: "/sustenet",
      wsAllowedOrigins: [],
      logFormat: "text",
      adminToken: null,
      adminTokenFile: null,
      consolePublic: true,
    },
    master: {
      heartbeatTimeoutMs: 3000,
      ticketTtlMs: 30000,
      registrationTimeoutMs: 5000,
      ticketRatePerConn: 2,
      ticketBurstPerConn: 4,
      ticketRatePerAddr: 10,
      ticketBurstPerAddr: 20,
      ticketRatePerPlayer: 2,
      ticketBurstPerPlayer: 4,
      ticketMaxRefusals: 10,
      reservationsPerConn: 3,
      reservationsPerAddr: 8,
      reservationsPerPlayer: 3,
      maxClusters: 1024,
      authPublicKeys: null,
      allowGuests: true,
      redisUrl: "",
    },
    cluster: {
      keyName: "cluster_key",
      masterIp: "127.0.0.1",
      masterPort: 0,
      masterAddresses: [],
      domainPubKey: null,
      statusPageUrl: null,
      wsPage: false,
      wsPageMasterUrl: null,
      publicIp: "",
      identityKeyName: "cluster_identity",
      heartbeatIntervalMs: 1000,
      reconnectMinMs: 500,
      reconnectMaxMs: 2000,
      pluginWatchdogMs: 2000,
      broadcastFlushMs: 10,
      playerCommandsPerS: 200,
      playerCommandsBurst: 400,
      playerCommandBytesPerS: 65536,
      playerCommandBytesBurst: 131072,
      playerMovesPerS: 120,
      playerMovesBurst: 240,
      playerFloodKickMs: 3000,
      plaintext: false,
      fragments: {
        enabled: false,
        size: 64,
        bounds: null,
        viewDistance: 1,
        tickHz: 20,
        maxPlayers: 500,
        crowdThreshold: 100,
        positionFormat: "full",
      },
      plugins: [],
    },
    auth: {
      store: "sqlite",
      sqlitePath: "auth.sqlite",
      postgresUrl: "",
      signingKeys: "keys/auth_signing.json",
      publicKeysOut: "keys/auth_public.json",
      keysKept: 1,
      accessTokenTtlS: 900,
      refreshTokenTtlS: 2592000,
      scryptLogN: 15,
      scryptR: 8,
      scryptP: 1,
      loginRatePerAccount: 0.1,
      loginBurstPerAccount: 5,
      loginRatePerAddr: 1,
      loginBurstPerAddr: 20,
      maxBodyBytes: 8192,
      maxPendingHashes: 64,
    },
  });
  assert.deepEqual(defaultConfig(), config);
});

Deno.test("a config is frozen all the way down", () => {
  const config = parseConfig(
    '[[cluster.plugins]]\nurl = "jsr:@game/chat"\nsettings = { a = [1] }\npermissions = { read = ["x"] }',
  );
  const plugin = config.cluster.plugins[0];
  assert.ok(plugin);
  for (
    const part of [
      config,
      config.all,
      config.master,
      config.cluster,
      config.cluster.fragments,
      config.cluster.plugins,
      plugin,
      plugin.settings,
      plugin.settings.a,
      plugin.permissions,
      plugin.permissions.read,
    ]
  ) {
    assert.ok(Object.isFrozen(part));
  }
});

Deno.test("the repository's Config.toml holds every key at its default", async () => {
  const config = await loadConfig(`${ROOT_DIR}/Config.toml`);
  const defaults = defaultConfig();
  // The one departure from the defaults: it loads the example plugins the README uses.
  assert.deepEqual(
    {
      ...config,
      file: null,
      all: { ...config.all, keysDir: "keys" },
      cluster: { ...config.cluster, plugins: [] },
      auth: {
        ...config.auth,
        sqlitePath: "auth.sqlite",
        signingKeys: "keys/auth_signing.json",
        publicKeysOut: "keys/auth_public.json",
      },
    },
    defaults,
  );
  assert.deepEqual(config.cluster.plugins.map((p) => [p.name, p.url, p.settings]), [
    ["echo", new URL("plugins/echo.ts", ROOT).href, {}],
    ["chat", new URL("plugins/chat.ts", ROOT).href, { maxLength: 200 }],
  ]);
  assert.equal(config.all.keysDir, `${ROOT_DIR}/keys`);

  // Every scalar key is written out (bounds is the one optional key, shown commented).
  const text = await Deno.readTextFile(`${ROOT_DIR}/Config.toml`);
  for (const key of CONFIG_KEYS) {
    const name = key.field.split(".").at(-1) ?? "";
    const pattern = key.field === "cluster.fragments.bounds"
      ? new RegExp(`^# ${name} = `, "m")
      : new RegExp(`^${name} = `, "m");
    assert.match(text, pattern, `${key.field} missing from Config.toml`);
  }
});

Deno.test("the commented examples in Config.toml are valid when uncommented", async () => {
  const text = await Deno.readTextFile(`${ROOT_DIR}/Config.toml`);
  const uncommented = text.replace(/^# (bounds = )/gm, "$1");
  const config = parseConfig(uncommented, { file: `${ROOT_DIR}/Config.toml` });
  assert.deepEqual(config.cluster.fragments.bounds, {
    minX: -4096,
    minZ: -4096,
    maxX: 4096,
    maxZ: 4096,
  });
});

Deno.test("every key can be set to a non-default value", () => {
  const config = parseAt(`
[all]
server_name = "EU Núcleo 1"
max_connections = 4294967295
port = 7000
bind_ip = "::1"
keys_dir = "../secrets"
max_frame_bytes = 64
max_queue_bytes = 64
handshake_timeout_ms = 1
idle_timeout_ms = 2147483647
max_pending_connections = 1000000
max_pending_per_address = 1
max_pending_frame_bytes = 16777216
status_port = 65535
status_ip = "10.1.2.3"
status_enabled = false
log_level = "debug"
tls_cert = "certs/server.pem"
tls_key = "/etc/tls/server.key"
tls_port = 7443
ws_enabled = true
ws_port = 8080
ws_path = "/play/ws"
ws_allowed_origins = ["https://game.example", "http://localhost:8000"]
log_format = "json"
admin_token = "0123456789abcdef-token"
admin_token_file = "../secrets/admin_token"
console_public = false

[master]
heartbeat_timeout_ms = 4000
ticket_ttl_ms = 60000
registration_timeout_ms = 100
ticket_rate_per_conn = 1
ticket_burst_per_conn = 1
ticket_rate_per_addr = 1000000
ticket_burst_per_addr = 50
ticket_rate_per_player = 3
ticket_burst_per_player = 6
ticket_max_refusals = 1
reservations_per_conn = 1
reservations_per_addr = 64
reservations_per_player = 2
max_clusters = 0
auth_public_keys = "jwks.json"
allow_guests = false
redis_url = "redis://:secret@redis.example.com:6379/2"

[cluster]
key_name = "eu-1.key"
master_ip = "master.example.com"
master_port = 7100
master_addresses = ["m1.example.com:6256", "10.0.0.2:7000", "[::1]:6256"]
domain_pub_key = "https://cdn.example.com/pubkey.pub"
status_page_url = "https://ops.example.com/eu-1/"
ws_page = true
ws_page_master_url = "wss://game.example/play/ws"
public_ip = "game.example.com"
identity_key_name = "identity_2"
heartbeat_interval_ms = 250
reconnect_min_ms = 1000
reconnect_max_ms = 1000
plugin_watchdog_ms = 500
broadcast_flush_ms = 0
player_commands_per_s = 1
player_commands_burst = 1000000
player_command_bytes_per_s = 1073741824
player_command_bytes_burst = 64
player_moves_per_s = 60
player_moves_burst = 1
player_flood_kick_ms = 2147483647
plaintext = true

[cluster.fragments]
enabled = true
size = 12.5
bounds = [-10, -20.5, 10, 20.5]
view_distance = 0
tick_hz = 120
max_players = 1
crowd_threshold = 1
`);
  assert.deepEqual(config.all, {
    serverName: "EU Núcleo 1",
    maxConnections: 4294967295,
    port: 7000,
    bindIp: "::1",
    keysDir: "/srv/secrets",
    maxFrameBytes: 64,
    maxQueueBytes: 64,
    handshakeTimeoutMs: 1,
    idleTimeoutMs: 2147483647,
    maxPendingConnections: 1000000,
    maxPendingPerAddress: 1,
    maxPendingFrameBytes: 16777216,
    statusPort: 65535,
    statusIp: "10.1.2.3",
    statusEnabled: false,
    logLevel: "debug",
    tlsCert: "/srv/game/certs/server.pem",
    tlsKey: "/etc/tls/server.key",
    tlsPort: 7443,
    wsEnabled: true,
    wsPort: 8080,
    wsPath: "/play/ws",
    wsAllowedOrigins: ["https://game.example", "http://localhost:8000"],
    logFormat: "json",
    adminToken: "0123456789abcdef-token",
    adminTokenFile: "/srv/secrets/admin_token",
    consolePublic: false,
  });
  assert.deepEqual(config.master, {
    heartbeatTimeoutMs: 4000,
    ticketTtlMs: 60000,
    registrationTimeoutMs: 100,
    ticketRatePerConn: 1,
    ticketBurstPerConn: 1,
    ticketRatePerAddr: 1000000,
    ticketBurstPerAddr: 50,
    ticketRatePerPlayer: 3,
    ticketBurstPerPlayer: 6,
    ticketMaxRefusals: 1,
    reservationsPerConn: 1,
    reservationsPerAddr: 64,
    reservationsPerPlayer: 2,
    maxClusters: 0,
    authPublicKeys: "/srv/game/jwks.json",
    allowGuests: false,
    redisUrl: "redis://:secret@redis.example.com:6379/2",
  });
  assert.deepEqual(config.cluster, {
    keyName: "eu-1.key",
    masterIp: "master.example.com",
    masterPort: 7100,
    masterAddresses: ["m1.example.com:6256", "10.0.0.2:7000", "[::1]:6256"],
    domainPubKey: "https://cdn.example.com/pubkey.pub",
    statusPageUrl: "https://ops.example.com/eu-1/",
    wsPage: true,
    wsPageMasterUrl: "wss://game.example/play/ws",
    publicIp: "game.example.com",
    identityKeyName: "identity_2",
    heartbeatIntervalMs: 250,
    reconnectMinMs: 1000,
    reconnectMaxMs: 1000,
    pluginWatchdogMs: 500,
    broadcastFlushMs: 0,
    playerCommandsPerS: 1,
    playerCommandsBurst: 1000000,
    playerCommandBytesPerS: 1073741824,
    playerCommandBytesBurst: 64,
    playerMovesPerS: 60,
    playerMovesBurst: 1,
    playerFloodKickMs: 2147483647,
    plaintext: true,
    fragments: {
      enabled: true,
      size: 12.5,
      bounds: { minX: -10, minZ: -20.5, maxX: 10, maxZ: 20.5 },
      viewDistance: 0,
      tickHz: 120,
      maxPlayers: 1,
      crowdThreshold: 1,
      positionFormat: "full",
    },
    plugins: [],
  });
  assert.equal(config.file, "/srv/game/Config.toml");
});

// [section, key, bad TOML value, expected "must be …" text, shown value]
const BAD_VALUES: readonly [string, string, string, string, string][] = [
  ["all", "server_name", '""', "a non-empty string of at most 255 UTF-8 bytes", '""'],
  ["all", "server_name", `"${"é".repeat(128)}"`, "a non-empty string", '"éé'],
  ["all", "server_name", "5", "a non-empty string", "5"],
  ["all", "max_connections", "-1", "an integer 0..4294967295", "-1"],
  ["all", "max_connections", "4294967296", "an integer 0..4294967295", "4294967296"],
  ["all", "port", '"abc"', "an integer 0..65535", '"abc"'],
  ["all", "port", "65536", "an integer 0..65535", "65536"],
  ["all", "port", "7000.0", "an integer 0..65535", "7000"],
  ["all", "port", "true", "an integer 0..65535", "true"],
  ["all", "bind_ip", '"localhost"', "an IPv4 or IPv6 address", '"localhost"'],
  ["all", "bind_ip", '"1.2.3.256"', "an IPv4 or IPv6 address", '"1.2.3.256"'],
  ["all", "bind_ip", '"01.2.3.4"', "an IPv4 or IPv6 address", '"01.2.3.4"'],
  ["all", "bind_ip", '"::g"', "an IPv4 or IPv6 address", '"::g"'],
  ["all", "keys_dir", '""', "a non-empty path", '""'],
  ["all", "keys_dir", "[1]", "a non-empty path", "an array of 1"],
  ["all", "max_frame_bytes", "63", "an integer 64..16777216", "63"],
  ["all", "max_frame_bytes", "16777217", "an integer 64..16777216", "16777217"],
  ["all", "max_queue_bytes", "1073741825", "an integer 64..1073741824", "1073741825"],
  ["all", "handshake_timeout_ms", "0", "an integer 1..2147483647 (milliseconds)", "0"],
  ["all", "idle_timeout_ms", "2147483648", "an integer 1..2147483647", "2147483648"],
  ["all", "max_pending_connections", "0", "an integer 1..1000000", "0"],
  ["all", "max_pending_per_address", '"16"', "an integer 1..1000000", '"16"'],
  ["all", "max_pending_frame_bytes", "63", "an integer 64..16777216", "63"],
  ["all", "status_port", "-5", "an integer 0..65535", "-5"],
  ["all", "status_ip", '"0.0.0.0.0"', "an IPv4 or IPv6 address", '"0.0.0.0.0"'],
  ["all", "status_enabled", '"yes"', "true or false", '"yes"'],
  ["all", "log_level", '"verbose"', 'one of "debug", "info", "warning", "error"', '"verbose"'],
  ["all", "log_level", '"success"', 'one of "debug"', '"success"'],
  ["all", "tls_cert", "1", 'a path, or "" for none', "1"],
  ["all", "tls_key", "[1]", 'a path, or "" for none', "an array of 1"],
  ["all", "tls_port", "65536", "an integer 0..65535", "65536"],
  ["all", "ws_enabled", "1", "true or false", "1"],
  ["all", "ws_port", "65536", "an integer 0..65535", "65536"],
  ["all", "ws_path", '"sustenet"', 'an HTTP path starting with "/"', '"sustenet"'],
  ["all", "ws_allowed_origins", '["game.example"]', "an array of origins", "an array of 1"],
  ["all", "log_format", '"xml"', 'one of "text", "json"', '"xml"'],
  ["all", "admin_token", '"short"', "a token of 16-512 printable ASCII characters", "[redacted]"],
  ["all", "admin_token_file", "5", 'a path, or "" for none', "5"],
  ["all", "console_public", '"no"', "true or false", '"no"'],
  ["master", "heartbeat_timeout_ms", "0", "an integer 1..2147483647", "0"],
  ["master", "ticket_ttl_ms", "1.5", "an integer 1..2147483647", "1.5"],
  ["master", "registration_timeout_ms", '"5s"', "an integer 1..2147483647", '"5s"'],
  ["master", "ticket_rate_per_conn", "0", "an integer 1..1000000", "0"],
  ["master", "ticket_burst_per_conn", "2.5", "an integer 1..1000000", "2.5"],
  ["master", "ticket_rate_per_addr", "1000001", "an integer 1..1000000", "1000001"],
  ["master", "ticket_burst_per_addr", '"20"', "an integer 1..1000000", '"20"'],
  ["master", "ticket_rate_per_player", "-1", "an integer 1..1000000", "-1"],
  ["master", "ticket_burst_per_player", "0", "an integer 1..1000000", "0"],
  ["master", "ticket_max_refusals", "0", "an integer 1..1000000", "0"],
  ["master", "reservations_per_conn", "0", "an integer 1..1000000", "0"],
  ["master", "reservations_per_addr", "true", "an integer 1..1000000", "true"],
  ["master", "reservations_per_player", "0", "an integer 1..1000000", "0"],
  ["master", "max_clusters", "-1", "an integer 0..4294967295", "-1"],
  ["master", "redis_url", '"http://h:6379"', "a redis:// or rediss:// URL", '"http://h:6379"'],
  [
    "cluster",
    "master_addresses",
    '["h1"]',
    'an array of 0-16 "host:port" strings',
    "an array of 1",
  ],
  ["cluster", "master_addresses", '"h1:6256"', 'an array of 0-16 "host:port" strings', '"h1:6256"'],
  ["cluster", "key_name", '"../etc/passwd"', "a key file name", '"../etc/passwd"'],
  ["cluster", "key_name", '".."', "a key file name", '".."'],
  ["cluster", "key_name", '""', "a key file name", '""'],
  // The one key-name rule (shared/key_name.ts): key loading would refuse these names too.
  ["cluster", "key_name", '"eu.pub"', "a key file name", '"eu.pub"'],
  ["cluster", "identity_key_name", '"eu.identity"', "a key file name", '"eu.identity"'],
  ["cluster", "master_ip", '"bad host!"', "an IP address or host name", '"bad host!"'],
  ["cluster", "master_ip", '"-x.example"', "an IP address or host name", '"-x.example"'],
  ["cluster", "master_port", '"abc"', "an integer 0..65535", '"abc"'],
  ["cluster", "domain_pub_key", '"ftp://x/key"', "an https:, http: or file: URL", '"ftp://x'],
  ["cluster", "domain_pub_key", '"not a url"', "an https:, http: or file: URL", '"not a url"'],
  ["cluster", "status_page_url", '"javascript:alert(1)"', "an http: or https: URL", '"javascript'],
  ["cluster", "ws_page", '"yes"', "true or false", '"yes"'],
  ["cluster", "ws_page_master_url", '"http://m/ws"', "a ws: or wss: URL", '"http://m/ws"'],
  ["cluster", "public_ip", '"0.0.0.0"', "an IP address or host name other than", '"0.0.0.0"'],
  ["cluster", "public_ip", '"::"', "an IP address or host name other than", '"::"'],
  ["cluster", "identity_key_name", '"a/b"', "a key file name", '"a/b"'],
  ["cluster", "heartbeat_interval_ms", "0", "an integer 1..2147483647", "0"],
  ["cluster", "reconnect_min_ms", "-1", "an integer 1..2147483647", "-1"],
  ["cluster", "reconnect_max_ms", "0", "an integer 1..2147483647", "0"],
  ["cluster", "plugin_watchdog_ms", "0", "an integer 1..2147483647", "0"],
  ["cluster", "broadcast_flush_ms", "1001", "an integer 0..1000", "1001"],
  ["cluster", "player_commands_per_s", "0", "an integer 1..1000000", "0"],
  ["cluster", "player_commands_burst", "1.5", "an integer 1..1000000", "1.5"],
  ["cluster", "player_command_bytes_per_s", '"64k"', "an integer 1..1073741824", '"64k"'],
  ["cluster", "player_command_bytes_burst", "-1", "an integer 1..1073741824", "-1"],
  ["cluster", "player_moves_per_s", "1000001", "an integer 1..1000000", "1000001"],
  ["cluster", "player_moves_burst", "0", "an integer 1..1000000", "0"],
  ["cluster", "player_flood_kick_ms", "0", "an integer 1..2147483647", "0"],
  ["cluster", "plaintext", "1", "true or false", "1"],
  ["cluster.fragments", "enabled", '"true"', "true or false", '"true"'],
  ["cluster.fragments", "position_format", '"f16"', '"full" or "quantized"', '"f16"'],
  ["cluster.fragments", "size", "0", "a number > 0", "0"],
  ["cluster.fragments", "size", "-1.5", "a number > 0", "-1.5"],
  ["cluster.fragments", "size", "inf", "a number > 0", "Infinity"],
  ["cluster.fragments", "size", "nan", "a number > 0", "NaN"],
  ["cluster.fragments", "bounds", "[0, 0, 10]", "an array of 4 numbers", "an array of 3"],
  ["cluster.fragments", "bounds", "[10, 0, 0, 10]", "an array of 4 numbers", "an array of 4"],
  ["cluster.fragments", "bounds", "[0, 5, 10, 5]", "an array of 4 numbers", "an array of 4"],
  ["cluster.fragments", "bounds", '[0, 0, "10", 10]', "an array of 4 numbers", "an array of 4"],
  ["cluster.fragments", "bounds", "[0, 0, inf, 10]", "an array of 4 numbers", "an array of 4"],
  ["cluster.fragments", "bounds", "{ a = 1 }", "an array of 4 numbers", "a table"],
  ["cluster.fragments", "view_distance", "-1", "an integer 0..100", "-1"],
  ["cluster.fragments", "view_distance", "101", "an integer 0..100", "101"],
  ["cluster.fragments", "tick_hz", "0", "an integer 1..120", "0"],
  ["cluster.fragments", "tick_hz", "121", "an integer 1..120", "121"],
  ["cluster.fragments", "max_players", "0", "an integer 1..2147483647", "0"],
  ["cluster.fragments", "crowd_threshold", "0", "an integer 1..2147483647", "0"],
  ["cluster.fragments", "crowd_threshold", "1979-05-27", "an integer 1..2147483647", "a date"],
  ["master", "auth_public_keys", "5", "a file path or an https:/http: URL", "5"],
  ["master", "auth_public_keys", '"https://"', "a file path or an https:/http: URL", '"https://"'],
  ["master", "allow_guests", '"no"', "true or false", '"no"'],
  ["auth", "store", '"mysql"', '"sqlite" or "postgres"', '"mysql"'],
  ["auth", "sqlite_path", '""', "a non-empty path", '""'],
  [
    "auth",
    "postgres_url",
    '"mysql://u:secret@h/db"',
    "a postgres:// or postgresql:// URL",
    "something else (not shown)",
  ],
  ["auth", "signing_keys", "1", "a non-empty path", "1"],
  ["auth", "public_keys_out", '""', "a non-empty path", '""'],
  ["auth", "keys_kept", "17", "an integer 0..16", "17"],
  ["auth", "access_token_ttl_s", "5", "an integer 10..86400", "5"],
  ["auth", "refresh_token_ttl_s", "31536001", "an integer 60..31536000", "31536001"],
  ["auth", "scrypt_log_n", "21", "an integer 10..20", "21"],
  ["auth", "scrypt_r", "0", "an integer 1..32", "0"],
  ["auth", "scrypt_p", "17", "an integer 1..16", "17"],
  ["auth", "login_rate_per_account", "0", "a number > 0", "0"],
  ["auth", "login_burst_per_account", "0", "an integer 1..1000000", "0"],
  ["auth", "login_rate_per_addr", "-1", "a number > 0", "-1"],
  ["auth", "login_burst_per_addr", "1.5", "an integer 1..1000000", "1.5"],
  ["auth", "max_body_bytes", "100", "an integer 256..1048576", "100"],
  ["auth", "max_pending_hashes", "0", "an integer 1..100000", "0"],
];

Deno.test("every key rejects a wrong type or range, naming the file and the field", () => {
  for (const [section, key, value, expect, shown] of BAD_VALUES) {
    const field = `${section}.${key}`;
    const err = assertConfigError(
      () => parseConfig(`[${section}]\n${key} = ${value}\n`, { file: "Config.toml" }),
      field,
      new RegExp(
        `^Config\\.toml: ${field.replaceAll(".", "\\.")} must be ${RegExp.escape(expect)}`,
      ),
    );
    assert.equal(err.file, "Config.toml");
    assert.equal(err.flag, null);
    assert.ok(err.message.includes(`, got ${shown}`), `${err.message} should show ${shown}`);
  }
});

Deno.test("the brief's example message is produced word for word", () => {
  assertConfigError(
    () => parseConfig('[cluster]\nmaster_port = "abc"', { file: "Config.toml" }),
    "cluster.master_port",
    'Config.toml: cluster.master_port must be an integer 0..65535, got "abc"',
  );
});

Deno.test("tls_cert and tls_key are set together or not at all", () => {
  assertConfigError(
    () => parseConfig('[all]\ntls_cert = "c.pem"', { file: "Config.toml" }),
    "all.tls_key",
    'Config.toml: all.tls_key must be set together with all.tls_cert (both or neither), got ""',
  );
});

Deno.test("every schema key is covered by the bad-value table", () => {
  const covered = new Set(BAD_VALUES.map(([section, key]) => `${section}.${key}`));
  for (const key of CONFIG_KEYS) assert.ok(covered.has(key.field), `${key.field} untested`);
});

Deno.test("unknown keys and sections are errors, with a hint for near misses", () => {
  assertConfigError(
    () => parseConfig("[all]\nprot = 1", { file: "Config.toml" }),
    "all.prot",
    "Config.toml: unknown key all.prot (did you mean port?)",
  );
  assertConfigError(
    () => parseConfig("[master]\nwhatever = 1"),
    "master.whatever",
    "config: unknown key master.whatever",
  );
  assertConfigError(
    () => parseConfig("[cluster.fragments]\nsizes = 3"),
    "cluster.fragments.sizes",
    /unknown key cluster\.fragments\.sizes \(did you mean size\?\)/,
  );
  assertConfigError(
    () => parseConfig("[cluster.other]\nx = 1"),
    "cluster.other",
    /unknown key cluster\.other/,
  );
  assertConfigError(
    () => parseConfig("[client]\nx = 1"),
    "client",
    "config: unknown section [client]",
  );
  assertConfigError(
    () => parseConfig("port = 6256"),
    "port",
    "config: unknown key port (outside any section)",
  );
  assertConfigError(
    () => parseConfig("all = 5"),
    "all",
    "config: all must be a table ([all]), got 5",
  );
  assertConfigError(
    () => parseConfig("[cluster]\nfragments = 1"),
    "cluster.fragments",
    /cluster\.fragments must be a table/,
  );
});

Deno.test("text that is not TOML is config_unreadable with its position", () => {
  const err = assertConfigError(
    () => parseConfig("[all]\nport = \n", { file: "Config.toml" }),
    "",
    /^Config\.toml: invalid TOML at line 2, column \d+: /,
    "config_unreadable",
  );
  assert.ok(err.cause instanceof Error);
  assertConfigError(
    () => parseConfig("[all]\nport = 1\nport = 2\n"),
    "",
    /^config: invalid TOML/,
    "config_unreadable",
  );
  // Prototype-polluting keys are refused by the parser, not silently kept.
  assertConfigError(
    () => parseConfig("[all]\n__proto__ = 1\n"),
    "",
    /invalid TOML/,
    "config_unreadable",
  );
});

Deno.test("cross-field rules: queue ≥ frame, reconnect min ≤ max", () => {
  assertConfigError(
    () => parseConfig("[all]\nmax_frame_bytes = 4096\nmax_queue_bytes = 1000"),
    "all.max_queue_bytes",
    "config: all.max_queue_bytes must be at least all.max_frame_bytes (4096), got 1000",
  );
  assertConfigError(
    () => parseConfig("[cluster]\nreconnect_min_ms = 20000"),
    "cluster.reconnect_min_ms",
    /must be at most cluster\.reconnect_max_ms \(2000\), got 20000/,
  );
});

Deno.test("cross-field rule: a player's command byte burst holds a largest frame", () => {
  assertConfigError(
    () => parseConfig("[cluster]\nplayer_command_bytes_burst = 1000"),
    "cluster.player_command_bytes_burst",
    "config: cluster.player_command_bytes_burst must be at least all.max_frame_bytes (65536) " +
      "so a largest command can pass, got 1000",
  );
  assert.equal(
    parseConfig("[all]\nmax_frame_bytes = 1000\n[cluster]\nplayer_command_bytes_burst = 1000")
      .cluster.playerCommandBytesBurst,
    1000,
  );
});

Deno.test("plaintext is refused unless the cluster binds a loopback address", () => {
  const err = assertConfigError(
    () =>
      parseConfig('[all]\nbind_ip = "0.0.0.0"\n[cluster]\nplaintext = true', { file: "C.toml" }),
    "cluster.plaintext",
    /^C\.toml: cluster\.plaintext = true is refused because all\.bind_ip \(0\.0\.0\.0\) is not a loopback address/,
  );
  assert.match(err.message, /unencrypted/);
  assertConfigError(
    () => parseConfig('[all]\nbind_ip = "192.168.1.2"\n[cluster]\nplaintext = true'),
    "cluster.plaintext",
    /not a loopback address/,
  );
  for (const ip of ["127.0.0.1", "127.3.2.1", "::1", "::ffff:127.0.0.1"]) {
    const config = parseConfig(`[all]\nbind_ip = "${ip}"\n[cluster]\nplaintext = true`);
    assert.equal(config.cluster.plaintext, true, ip);
  }
});

Deno.test("loopback detection covers IPv4, IPv6 and mapped addresses", () => {
  assert.equal(isLoopbackIp("127.255.255.255"), true);
  assert.equal(isLoopbackIp("0:0:0:0:0:0:0:1"), true);
  assert.equal(isLoopbackIp("::ffff:7f00:1"), true);
  assert.equal(isLoopbackIp("128.0.0.1"), false);
  assert.equal(isLoopbackIp("::"), false);
  assert.equal(isLoopbackIp("::ffff:10.0.0.1"), false);
  assert.equal(isLoopbackIp("localhost"), false);
});

Deno.test("keys_dir resolves against the config file's directory", () => {
  assert.equal(parseAt('[all]\nkeys_dir = "keys"').all.keysDir, "/srv/game/keys");
  assert.equal(parseAt('[all]\nkeys_dir = "./k/../keys2"').all.keysDir, "/srv/game/keys2");
  assert.equal(parseAt('[all]\nkeys_dir = "/etc/sustenet"').all.keysDir, "/etc/sustenet");
  assert.equal(parseAt("").all.keysDir, "/srv/game/keys");
  assert.equal(
    parseConfig('[all]\nkeys_dir = "k"', { baseDir: "C:\\games\\sus" }).all.keysDir,
    "C:\\games\\sus\\k",
  );
  assert.equal(parseConfig('[all]\nkeys_dir = "k"', { file: "Config.toml" }).all.keysDir, "k");
  assert.equal(parseConfig('[all]\nkeys_dir = "k"').all.keysDir, "k");
});

Deno.test("ports, master port and public address resolve to role defaults", () => {
  const defaults = defaultConfig();
  assert.equal(resolvedPort(defaults, "master"), 6256);
  assert.equal(resolvedPort(defaults, "cluster"), 6257);
  assert.equal(resolvedStatusPort(defaults, "master"), 6280);
  assert.equal(resolvedStatusPort(defaults, "cluster"), 6281);
  assert.equal(resolvedMasterPort(defaults), 6256);
  const set = parseConfig("[all]\nport = 9000\nstatus_port = 9001\n[cluster]\nmaster_port = 9002");
  assert.equal(resolvedPort(set, "master"), 9000);
  assert.equal(resolvedPort(set, "cluster"), 9000);
  assert.equal(resolvedStatusPort(set, "cluster"), 9001);
  assert.equal(resolvedMasterPort(set), 9002);

  assert.equal(resolvedPublicIp(defaults), "127.0.0.1");
  assert.equal(publicIpWarning(defaults), null);
  const anyIf = parseConfig('[all]\nbind_ip = "0.0.0.0"');
  assert.equal(resolvedPublicIp(anyIf), "127.0.0.1");
  assert.match(publicIpWarning(anyIf) ?? "", /^all\.bind_ip is 0\.0\.0\.0 and cluster\.public_ip/);
  const anyIf6 = parseConfig('[all]\nbind_ip = "::"');
  assert.equal(resolvedPublicIp(anyIf6), "127.0.0.1");
  assert.notEqual(publicIpWarning(anyIf6), null);
  const announced = parseConfig('[all]\nbind_ip = "0.0.0.0"\n[cluster]\npublic_ip = "203.0.113.9"');
  assert.equal(resolvedPublicIp(announced), "203.0.113.9");
  assert.equal(publicIpWarning(announced), null);
  assert.equal(resolvedPublicIp(parseConfig('[all]\nbind_ip = "10.0.0.7"')), "10.0.0.7");
});

Deno.test('domain_pub_key: "" means none, http(s) and file URLs are kept', () => {
  assert.equal(parseConfig('[cluster]\ndomain_pub_key = ""').cluster.domainPubKey, null);
  for (const url of ["https://cdn.example.com/k.pub", "http://127.0.0.1:8000/k", "file:///k"]) {
    assert.equal(parseConfig(`[cluster]\ndomain_pub_key = "${url}"`).cluster.domainPubKey, url);
  }
});

Deno.test("plugin urls: relative paths become file: URLs, known schemes are kept", () => {
  const config = parseAt(`
[[cluster.plugins]]
url = "./plugins/echo.ts"
[[cluster.plugins]]
url = "../shared plugins/chat#1.ts"
[[cluster.plugins]]
url = "/opt/p/zone.js"
[[cluster.plugins]]
url = "https://example.com/plugins/loot.ts?v=2"
[[cluster.plugins]]
url = "jsr:@game/quests@1.2.0"
[[cluster.plugins]]
url = "npm:@game/economy"
[[cluster.plugins]]
url = "file:///opt/p/pvp.ts"
`);
  assert.deepEqual(config.cluster.plugins.map((p) => [p.name, p.url]), [
    ["echo", "file:///srv/game/plugins/echo.ts"],
    ["chat", "file:///srv/shared%20plugins/chat%231.ts"],
    ["zone", "file:///opt/p/zone.js"],
    ["loot", "https://example.com/plugins/loot.ts?v=2"],
    ["quests", "jsr:@game/quests@1.2.0"],
    ["economy", "npm:@game/economy"],
    ["pvp", "file:///opt/p/pvp.ts"],
  ]);
});

Deno.test("plugin entries are fully described: name, settings, permissions, trust and memory", () => {
  const config = parseAt(`
[[cluster.plugins]]
url = "./plugins/chat.ts"
name = "chat-eu"
permissions = { net = ["api.example.com:443"], read = true, import = false }
[cluster.plugins.settings]
max_length = 200
ratio = 0.5
motd = "hi"
words = ["a", "b"]
since = 2026-01-02
nested = { deep = { x = 1 } }
`);
  const plugin = config.cluster.plugins[0];
  assert.deepEqual(plugin, {
    url: "file:///srv/game/plugins/chat.ts",
    name: "chat-eu",
    settings: {
      max_length: 200,
      ratio: 0.5,
      motd: "hi",
      words: ["a", "b"],
      since: "2026-01-02",
      nested: { deep: { x: 1 } },
    },
    permissions: {
      read: true,
      write: false,
      net: ["api.example.com:443"],
      env: false,
      run: false,
      ffi: false,
      sys: false,
      import: false,
    },
    trusted: false,
    maxMemoryMb: 128,
  });
  // Plain numbers, not bigints, so settings can cross into a Worker and be JSON-encoded.
  assert.equal(typeof plugin?.settings.max_length, "number");
  assert.doesNotThrow(() => JSON.stringify(plugin?.settings));
});

Deno.test("relative read and write permission paths resolve against the config's directory", () => {
  const config = parseAt(`
[[cluster.plugins]]
url = "./plugins/motd.ts"
permissions = { read = ["./data/motd.txt", "../shared", "/etc/motd"], write = ["logs"], net = ["a.example:443"] }
`);
  const permissions = config.cluster.plugins[0]?.permissions;
  assert.deepEqual(permissions?.read, ["/srv/game/data/motd.txt", "/srv/shared", "/etc/motd"]);
  assert.deepEqual(permissions?.write, ["/srv/game/logs"]);
  // Hosts are not paths: left alone.
  assert.deepEqual(permissions?.net, ["a.example:443"]);
  // Already resolved, so flags re-validating the config leave them as they are.
  const again = applyOverrides(config, { "max-connections": "5" });
  assert.deepEqual(again.cluster.plugins[0]?.permissions.read, permissions?.read);
});

Deno.test("bad plugin entries name the entry and the field", () => {
  const cases: readonly [string, string, RegExp][] = [
    ["[cluster]\nplugins = 5", "cluster.plugins", /must be an array of tables/],
    ["[cluster]\nplugins = [1]", "cluster.plugins[0]", /must be a table, got 1/],
    ['[[cluster.plugins]]\nname = "x"', "cluster.plugins[0].url", /url is required/],
    ["[[cluster.plugins]]\nurl = 5", "cluster.plugins[0].url", /must be a file path or/],
    ['[[cluster.plugins]]\nurl = ""', "cluster.plugins[0].url", /must be a file path or/],
    ['[[cluster.plugins]]\nurl = "ftp://x/p.ts"', "cluster.plugins[0].url", /got "ftp:/],
    ['[[cluster.plugins]]\nurl = "data:text/javascript,1"', "cluster.plugins[0].url", /data:/],
    [
      '[[cluster.plugins]]\nurl = "jsr:a"\n[[cluster.plugins]]\nurl = "jsr:b"\nname = 7',
      "cluster.plugins[1].name",
      /must be 1-64 of .*got 7$/,
    ],
    [
      '[[cluster.plugins]]\nurl = "jsr:a"\nname = "../x"',
      "cluster.plugins[0].name",
      /got "\.\.\/x"/,
    ],
    [
      '[[cluster.plugins]]\nurl = "jsr:@game"',
      "cluster.plugins[0].name",
      /\(derived from url; set name\)/,
    ],
    [
      '[[cluster.plugins]]\nurl = "jsr:@a/echo"\n[[cluster.plugins]]\nurl = "./echo.ts"',
      "cluster.plugins[1].name",
      /must be unique, "echo" is used twice/,
    ],
    [
      '[[cluster.plugins]]\nurl = "jsr:a"\nsetting = {}',
      "cluster.plugins[0].setting",
      /did you mean settings/,
    ],
    [
      '[[cluster.plugins]]\nurl = "jsr:a"\nsettings = 1',
      "cluster.plugins[0].settings",
      /must be a table/,
    ],
    [
      '[[cluster.plugins]]\nurl = "jsr:a"\nsettings = { big = 9007199254740993 }',
      "cluster.plugins[0].settings.big",
      /must be a safe integer, got 9007199254740993/,
    ],
    [
      '[[cluster.plugins]]\nurl = "jsr:a"\nsettings = { l = [{ big = 9007199254740993 }] }',
      "cluster.plugins[0].settings.l[0].big",
      /safe integer/,
    ],
    [
      '[[cluster.plugins]]\nurl = "jsr:a"\npermissions = { net = "all" }',
      "cluster.plugins[0].permissions.net",
      /must be true, false or an array of non-empty strings, got "all"/,
    ],
    [
      '[[cluster.plugins]]\nurl = "jsr:a"\npermissions = { read = [""] }',
      "cluster.plugins[0].permissions.read",
      /non-empty strings/,
    ],
    [
      '[[cluster.plugins]]\nurl = "jsr:a"\npermissions = { read = [1] }',
      "cluster.plugins[0].permissions.read",
      /non-empty strings/,
    ],
    [
      '[[cluster.plugins]]\nurl = "jsr:a"\npermissions = { hrtime = true }',
      "cluster.plugins[0].permissions.hrtime",
      /unknown key/,
    ],
    [
      '[[cluster.plugins]]\nurl = "jsr:a"\npermissions = true',
      "cluster.plugins[0].permissions",
      /must be a table/,
    ],
  ];
  for (const [text, field, message] of cases) {
    assertConfigError(() => parseAt(text), field, message);
  }
});

Deno.test("a relative plugin path needs an absolute config directory", () => {
  assertConfigError(
    () => parseConfig('[[cluster.plugins]]\nurl = "./plugins/echo.ts"'),
    "cluster.plugins[0].url",
    /is a relative path but the config has no absolute directory/,
  );
  assertConfigError(
    () => parseConfig('[[cluster.plugins]]\nurl = "echo.ts"', { file: "Config.toml" }),
    "cluster.plugins[0].url",
    /relative path/,
  );
  const config = parseConfig('[[cluster.plugins]]\nurl = "echo.ts"', { baseDir: "/x" });
  assert.equal(config.cluster.plugins[0]?.url, "file:///x/echo.ts");
});

Deno.test("flags override keys and are validated like file values", () => {
  const base = parseAt('[all]\nserver_name = "file"\nport = 1000');
  const config = applyOverrides(base, {
    port: "7000",
    "server-name": "flag",
    "log-level": "warning",
    "keys-dir": "my/keys",
    "status-enabled": false,
    "heartbeat-timeout-ms": "+9000",
    "master-ip": "10.0.0.1",
    "domain-pub-key": "https://cdn.example.com/k",
    plaintext: "true",
    "fragments-size": "0.5e1",
    "fragments-enabled": true,
    "fragments-tick-hz": "30",
  });
  assert.equal(config.file, "/srv/game/Config.toml");
  assert.equal(config.all.port, 7000);
  assert.equal(config.all.serverName, "flag");
  assert.equal(config.all.logLevel, "warning");
  assert.equal(config.all.keysDir, "my/keys"); // relative to the working directory
  assert.equal(config.all.statusEnabled, false);
  assert.equal(config.master.heartbeatTimeoutMs, 9000);
  assert.equal(config.cluster.masterIp, "10.0.0.1");
  assert.equal(config.cluster.domainPubKey, "https://cdn.example.com/k");
  assert.equal(config.cluster.plaintext, true);
  assert.equal(config.cluster.fragments.size, 5);
  assert.equal(config.cluster.fragments.enabled, true);
  assert.equal(config.cluster.fragments.tickHz, 30);
  // The original is untouched; keys not overridden keep their file values.
  assert.equal(base.all.port, 1000);
  assert.equal(base.all.keysDir, "/srv/game/keys");
  assert.equal(applyOverrides(base, {}).all.keysDir, "/srv/game/keys");
  assert.deepEqual(applyOverrides(base, {}), base);
  assert.ok(Object.isFrozen(config.all));
});

Deno.test("flag errors name the flag", () => {
  const base = defaultConfig();
  const cases: readonly [Record<string, string | boolean>, string, string | RegExp][] = [
    [{ port: "x" }, "all.port", '--port must be an integer 0..65535, got "x"'],
    [{ port: "70000" }, "all.port", "--port must be an integer 0..65535, got 70000"],
    [{ port: "1.5" }, "all.port", '--port must be an integer 0..65535, got "1.5"'],
    [{ port: "" }, "all.port", '--port must be an integer 0..65535, got ""'],
    [{ port: true }, "all.port", "--port needs a value"],
    [{ plaintext: "maybe" }, "cluster.plaintext", '--plaintext must be true or false, got "maybe"'],
    [
      { "fragments-size": "-2" },
      "cluster.fragments.size",
      "--fragments-size must be a number > 0, got -2",
    ],
    [
      { "fragments-size": "big" },
      "cluster.fragments.size",
      '--fragments-size must be a number > 0, got "big"',
    ],
    [
      { "log-level": "loud" },
      "all.log_level",
      /^--log-level must be one of "debug", .*, got "loud"$/,
    ],
    [
      { "max-queue-bytes": "100" },
      "all.max_queue_bytes",
      /^--max-queue-bytes must be at least all\.max_frame_bytes \(65536\), got 100$/,
    ],
    [
      { "bind-ip": "0.0.0.0", plaintext: true },
      "cluster.plaintext",
      /^--plaintext = true is refused because all\.bind_ip \(0\.0\.0\.0\)/,
    ],
  ];
  for (const [overrides, field, message] of cases) {
    const err = assertConfigError(() => applyOverrides(base, overrides), field, message);
    assert.ok(err.flag?.startsWith("--"));
  }
  // A rule between a file value and a flag is reported against the flag.
  assertConfigError(
    () => applyOverrides(parseAt("[all]\nmax_queue_bytes = 65536"), { "max-frame-bytes": "70000" }),
    "all.max_frame_bytes",
    "--max-frame-bytes must be at most all.max_queue_bytes (65536), got 70000",
  );
  assertConfigError(
    () => applyOverrides(defaultConfig(), { "reconnect-max-ms": "1" }),
    "cluster.reconnect_max_ms",
    "--reconnect-max-ms must be at least cluster.reconnect_min_ms (500), got 1",
  );
  assertConfigError(
    () => applyOverrides(parseConfig("[cluster]\nplaintext = true"), { "bind-ip": "0.0.0.0" }),
    "all.bind_ip",
    /^--bind-ip must be a loopback address while cluster\.plaintext = true .*, got "0\.0\.0\.0"$/,
  );
  // Both from flags: the first field of the rule is named.
  assertConfigError(
    () => applyOverrides(defaultConfig(), { "reconnect-max-ms": "1", "reconnect-min-ms": "2" }),
    "cluster.reconnect_min_ms",
    "--reconnect-min-ms must be at most cluster.reconnect_max_ms (1), got 2",
  );
  assertConfigError(() => applyOverrides(base, { bounds: "1" }), "", "unknown flag --bounds");
  assertConfigError(() => applyOverrides(base, { nope: "1" }), "", "unknown flag --nope");
  assertConfigError(() => applyOverrides(base, { config: "x" }), "", "unknown flag --config");
});

Deno.test("--fragments-bounds takes minX,minZ,maxX,maxZ, validated like the file value", async () => {
  const config = applyOverrides(defaultConfig(), { "fragments-bounds": "-10, -20.5,10,2e1" });
  assert.deepEqual(config.cluster.fragments.bounds, { minX: -10, minZ: -20.5, maxX: 10, maxZ: 20 });
  // It replaces the file's bounds.
  const fromFile = parseConfig("[cluster.fragments]\nbounds = [0, 0, 1, 1]");
  assert.deepEqual(
    applyOverrides(fromFile, { "fragments-bounds": "1,2,3,4" }).cluster.fragments.bounds,
    { minX: 1, minZ: 2, maxX: 3, maxZ: 4 },
  );
  const expect = "an array of 4 numbers [minX, minZ, maxX, maxZ] with minX < maxX and minZ < maxZ";
  for (
    const [text, shown] of [
      ["1,2,3", '"1,2,3"'],
      ["1,2,3,4,5", '"1,2,3,4,5"'],
      ["a,b,c,d", '"a,b,c,d"'],
      ["0,0,inf,10", '"0,0,inf,10"'],
      ["", '""'],
      ["10,0,0,10", "an array of 4"],
      ["0,5,10,5", "an array of 4"],
    ]
  ) {
    const err = assertConfigError(
      () => applyOverrides(defaultConfig(), { "fragments-bounds": text }),
      "cluster.fragments.bounds",
      `--fragments-bounds must be ${expect}, got ${shown}`,
    );
    assert.equal(err.flag, "--fragments-bounds");
  }
  await withTempDir("sustenet_config_test_", async (dir) => {
    const parsed = await configFromArgs(["--fragments-bounds=-100,-50,100,50"], "cluster", {
      cwd: dir,
    });
    assert.deepEqual(parsed.cluster.fragments.bounds, {
      minX: -100,
      minZ: -50,
      maxX: 100,
      maxZ: 50,
    });
    await assert.rejects(
      configFromArgs(["--fragments-bounds", "0,0,0,0"], "cluster", { cwd: dir }),
      {
        message: `--fragments-bounds must be ${expect}, got an array of 4`,
      },
    );
    await assert.rejects(
      configFromArgs(["--fragments-bounds", "0,0,1,1"], "master", { cwd: dir }),
      { message: /^--fragments-bounds is a cluster setting/ },
    );
  });
});

Deno.test("every flag is unique and follows its key's name", () => {
  const flags = CONFIG_KEYS.flatMap((k) => k.flag === null ? [] : [k.flag]);
  assert.equal(new Set(flags).size, flags.length);
  for (const key of CONFIG_KEYS) {
    // A token on the command line is readable by every local user (ps): file only.
    if (key.field === "all.admin_token") {
      assert.equal(key.flag, null);
      continue;
    }
    assert.ok(key.flag !== null, `${key.field} has a flag`);
    const name = key.field.split(".").at(-1)?.replaceAll("_", "-");
    const prefix = key.field.startsWith("cluster.fragments.") ? "--fragments-" : "--";
    assert.equal(key.flag, `${prefix}${name}`);
  }
});

Deno.test("any text given to any flag yields a config or a ConfigError, never a crash", () => {
  const flags = CONFIG_KEYS.flatMap((k) => k.flag === null ? [] : [k.flag.slice(2)]);
  fc.assert(
    fc.property(fc.constantFrom(...flags), fc.string({ maxLength: 40 }), (flag, text) => {
      try {
        applyOverrides(defaultConfig(), { [flag]: text });
      } catch (err) {
        assert.ok(err instanceof ConfigError, String(err));
        assert.ok(err.message.startsWith(`--${flag} `), err.message);
      }
    }),
    { numRuns: 400 },
  );
});

Deno.test("any TOML document of known keys yields a config or a ConfigError, never a crash", () => {
  const sections = new Map<string, string[]>();
  for (const key of CONFIG_KEYS) {
    const parts = key.field.split(".");
    const section = parts.slice(0, -1).join(".");
    sections.set(section, [...(sections.get(section) ?? []), parts.at(-1) ?? ""]);
  }
  const value = fc.oneof(
    fc.string({ maxLength: 12 }),
    fc.integer({ min: -70000, max: 70000 }).map(BigInt),
    fc.double(),
    fc.boolean(),
    fc.array(fc.double({ noNaN: true }), { maxLength: 5 }),
  );
  const section = fc.constantFrom(...sections.keys()).chain((name) =>
    fc.tuple(
      fc.constant(name),
      fc.dictionary(fc.constantFrom(...(sections.get(name) ?? [])), value, { maxKeys: 4 }),
    )
  );
  fc.assert(
    fc.property(fc.array(section, { maxLength: 4 }), (parts) => {
      const doc: Record<string, Record<string, unknown>> = {};
      for (const [name, table] of parts) {
        const [top = "", sub] = name.split(".");
        doc[top] ??= {};
        const target = sub === undefined
          ? doc[top]
          : (doc[top][sub] ??= {}) as Record<string, unknown>;
        Object.assign(target, table);
      }
      const text = stringify(doc);
      try {
        parseConfig(text, { file: "Config.toml" });
      } catch (err) {
        assert.ok(err instanceof ConfigError, String(err));
        assert.match(err.message, /^Config\.toml: /);
        assert.notEqual(err.field, "");
      }
    }),
    { numRuns: 300 },
  );
});

Deno.test("a port flag accepts exactly the integers 0..65535", () => {
  fc.assert(
    fc.property(fc.integer({ min: -100000, max: 100000 }), (port) => {
      const ok = port >= 0 && port <= 65535;
      try {
        assert.equal(applyOverrides(defaultConfig(), { port: String(port) }).all.port, port);
        assert.ok(ok);
      } catch (err) {
        assert.ok(!ok && err instanceof ConfigError, String(err));
      }
    }),
    { numRuns: 300 },
  );
});

Deno.test("the README documents every key", async () => {
  const readme = await Deno.readTextFile(`${ROOT_DIR}/README.md`);
  const section = readme.split(/^## Configuration$/m)[1]?.split(/^## /m)[0] ?? "";
  for (const key of CONFIG_KEYS) {
    const [, ...rest] = key.field.split(".");
    const name = rest.at(-1) ?? "";
    assert.match(section, new RegExp(`\\| \`${name}\` +\\|`), `${key.field} missing from README`);
    if (key.flag !== null) assert.ok(section.includes(`\`${key.flag}\``), `${key.flag} missing`);
  }
  for (const key of ["url", "name", "settings", "permissions"]) {
    assert.match(section, new RegExp(`\\| \`${key}\` +\\|`), `plugins.${key} missing from README`);
  }
});

Deno.test("loadConfig reads a file and resolves paths against its directory", async () => {
  await withTempDir("sustenet_config_test_", async (dir) => {
    await Deno.mkdir(`${dir}/conf`);
    await Deno.writeTextFile(
      `${dir}/conf/server.toml`,
      '[all]\nport = 7777\n[[cluster.plugins]]\nurl = "../plugins/echo.ts"\n',
    );
    const config = await loadConfig(`${dir}/conf/server.toml`);
    assert.equal(config.file, `${dir}/conf/server.toml`);
    assert.equal(config.all.port, 7777);
    assert.equal(config.all.keysDir, `${dir}/conf/keys`);
    assert.equal(config.cluster.plugins[0]?.url, new URL(`file://${dir}/plugins/echo.ts`).href);

    // A relative path is relative to `cwd`, and messages show it as given.
    const relative = await loadConfig("conf/server.toml", { cwd: dir });
    assert.equal(relative.file, "conf/server.toml");
    assert.equal(relative.all.keysDir, `${dir}/conf/keys`);

    await Deno.writeTextFile(`${dir}/bad.toml`, "[all]\nport = -1\n");
    await assert.rejects(loadConfig("bad.toml", { cwd: dir }), (err) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.file, "bad.toml");
      assert.equal(err.message, "bad.toml: all.port must be an integer 0..65535, got -1");
      return true;
    });
  });
});

Deno.test("a missing, unreadable or non-TOML file is config_unreadable", async () => {
  await withTempDir("sustenet_config_test_", async (dir) => {
    await assert.rejects(loadConfig(`${dir}/missing.toml`), (err) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.code, "config_unreadable");
      assert.equal(err.file, `${dir}/missing.toml`);
      assert.equal(err.message, `${dir}/missing.toml: cannot read config file (not found)`);
      return true;
    });
    await assert.rejects(loadConfig(dir), (err) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.code, "config_unreadable");
      assert.match(err.message, /cannot read config file/);
      return true;
    });
    await Deno.writeTextFile(`${dir}/broken.toml`, "[all\n");
    await assert.rejects(loadConfig(`${dir}/broken.toml`), (err) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.code, "config_unreadable");
      assert.match(err.message, /broken\.toml: invalid TOML at line 1/);
      return true;
    });
  });
});

Deno.test("configFromArgs: --config file, then flags", async () => {
  await withTempDir("sustenet_config_test_", async (dir) => {
    await Deno.writeTextFile(`${dir}/a.toml`, '[all]\nserver_name = "A"\nport = 1\n');
    const config = await configFromArgs(
      ["--config", "a.toml", "--port=7000", "--no-status-enabled", "--plaintext"],
      "cluster",
      { cwd: dir },
    );
    assert.equal(config.file, "a.toml");
    assert.equal(config.all.serverName, "A");
    assert.equal(config.all.port, 7000);
    assert.equal(config.all.statusEnabled, false);
    assert.equal(config.cluster.plaintext, true);
    const master = await configFromArgs(
      [`--config=${dir}/a.toml`, "--ticket-ttl-ms", "1000", "--server-name", "M"],
      "master",
    );
    assert.equal(master.master.ticketTtlMs, 1000);
    assert.equal(master.all.serverName, "M");
  });
});

Deno.test("configFromArgs uses ./Config.toml when present, else the defaults", async () => {
  await withTempDir("sustenet_config_test_", async (dir) => {
    const none = await configFromArgs([], "master", { cwd: dir });
    assert.deepEqual(none, defaultConfig());
    await Deno.writeTextFile(`${dir}/Config.toml`, "[cluster]\nmaster_port = 7100\n");
    const found = await configFromArgs(["--key-name", "eu"], "cluster", { cwd: dir });
    assert.equal(found.file, "Config.toml");
    assert.equal(found.cluster.masterPort, 7100);
    assert.equal(found.cluster.keyName, "eu");
    assert.equal(found.all.keysDir, `${dir}/keys`);
    await Deno.writeTextFile(`${dir}/Config.toml`, "[cluster]\nmaster_port = 99999\n");
    await assert.rejects(configFromArgs([], "cluster", { cwd: dir }), {
      message: "Config.toml: cluster.master_port must be an integer 0..65535, got 99999",
    });
  });
});

Deno.test("configFromArgs rejects unknown flags, stray arguments and the other role's keys", async () => {
  await withTempDir("sustenet_config_test_", async (dir) => {
    const cases: readonly [string[], ServerRole, string | RegExp][] = [
      [["--prot", "1"], "master", "unknown flag --prot"],
      [["--bounds", "1"], "cluster", "unknown flag --bounds"],
      [["extra"], "master", /^Unexpected argument 'extra'/],
      [["--port"], "master", /^Option '--port <value>' argument missing/],
      [["--plaintext=yes"], "cluster", /^Option '--plaintext' does not take an argument/],
      [["--no-port"], "master", "unknown flag --no-port"],
      [["--port", "x"], "master", '--port must be an integer 0..65535, got "x"'],
      [
        ["--key-name", "k"],
        "master",
        "--key-name is a cluster setting; the master does not read it",
      ],
      [["--fragments-enabled"], "master", /^--fragments-enabled is a cluster setting/],
      [
        ["--ticket-ttl-ms", "5"],
        "cluster",
        "--ticket-ttl-ms is a master setting; the cluster does not read it",
      ],
      [
        ["--config", "missing.toml"],
        "master",
        /^missing\.toml: cannot read config file \(not found\)$/,
      ],
    ];
    for (const [args, role, message] of cases) {
      await assert.rejects(configFromArgs(args, role, { cwd: dir }), (err) => {
        assert.ok(err instanceof ConfigError, `${args.join(" ")}: ${String(err)}`);
        if (typeof message === "string") assert.equal(err.message, message);
        else assert.match(err.message, message);
        return true;
      });
    }
  });
});

Deno.test("exitOnConfigError prints the message and exits with status 2", async () => {
  const code = `
    import { ConfigError, exitOnConfigError } from ${
    JSON.stringify(new URL("shared/config.ts", ROOT).href)
  };
    try {
      throw new ConfigError("config_invalid", "Config.toml: all.port must be an integer 0..65535, got -1", { file: "Config.toml", field: "all.port" });
    } catch (err) {
      exitOnConfigError(err);
    }
  `;
  const out = await runDeno(["eval", "--no-check", "--config", `${ROOT_DIR}/deno.json`, code]);
  assert.equal(out.code, 2);
  assert.equal(
    out.stderr,
    "error: Config.toml: all.port must be an integer 0..65535, got -1\n",
  );
  assert.equal(out.stdout.length, 0);
});

Deno.test("exitOnConfigError rethrows anything that is not a ConfigError", () => {
  const err = new RangeError("not config");
  assert.throws(() => exitOnConfigError(err), err);
  assert.throws(() => exitOnConfigError("a string"), (thrown) => thrown === "a string");
});
