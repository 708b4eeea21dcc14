// This module is browser compatible.
/**
 * The options of `startMaster()`, their defaults, and {@linkcode masterOptionsFromConfig}
 * which maps a validated Config.toml to them (port 0 in the file means the role default 6256;
 * port 0 here means "the OS chooses"). This module must never read files or start anything.
 *
 * @module
 */

import { resolvedPort, resolvedWsPort, type SustenetConfig } from "../shared/config_schema.ts";
import { type StatusOptions, statusOptionsFromConfig } from "../shared/status_options.ts";
import type { MetricFamily } from "../shared/metrics.ts";
import type { TlsListenOptions } from "../shared/tls_listener.ts";
import type { WebSocketServerOptions } from "../shared/websocket_listener.ts";
import type { AuthenticateHook } from "./authenticate.ts";
import type { JoinLimits } from "./join_limiter.ts";
import type { RegistryStore } from "./registry_store.ts";

/**
 * Ticket rate limits and per-requester reservation caps of `startMaster()`: the
 * {@linkcode JoinLimits} of join_limiter.ts plus how many reservations one requester holds.
 * The defaults never bother an honest client (it asks one ticket per join); a flooder is
 * refused within a few requests and closed after `refusalsBeforeClose` more.
 */
export interface MasterJoinLimits extends JoinLimits {
  /**
   * Reservations (issued, not yet reported tickets) one client connection may hold.
   * @default {3}
   */
  readonly reservationsPerConnection?: number;
  /**
   * Reservations all connections of one IP address may hold.
   * @default {8}
   */
  readonly reservationsPerAddress?: number;
  /**
   * Reservations one player id may hold.
   * @default {3}
   */
  readonly reservationsPerPlayer?: number;
}

/** {@linkcode MasterJoinLimits} with every default filled in. */
export type ResolvedJoinLimits = { readonly [K in keyof MasterJoinLimits]-?: number };

const JOIN_LIMIT_DEFAULTS: ResolvedJoinLimits = {
  connectionRatePerS: 2,
  connectionBurst: 4,
  addressRatePerS: 10,
  addressBurst: 20,
  playerRatePerS: 2,
  playerBurst: 4,
  refusalsBeforeClose: 10,
  maxTrackedKeys: 4096,
  reservationsPerConnection: 3,
  reservationsPerAddress: 8,
  reservationsPerPlayer: 3,
};

/** Where the status HTTP server listens. */
export type MasterStatusOptions = StatusOptions;

/** Options of `startMaster()`. Every field has a default. */
export interface MasterOptions {
  /**
   * Address to listen on.
   *
   * @default {"127.0.0.1"}
   */
  readonly hostname?: string;
  /**
   * Port to listen on; 0 lets the OS choose (read it back from `addr`).
   *
   * @default {0}
   */
  readonly port?: number;
  /**
   * Name sent in HelloOk and shown on the status page.
   *
   * @default {"Sustenet"}
   */
  readonly serverName?: string;
  /**
   * Directory of the shared cluster keys, read on every BecomeCluster. Ignored when
   * `clusterKeys` is given.
   *
   * @default {"keys"}
   */
  readonly keysDir?: string;
  /** Custom cluster key lookup (by key name) instead of `keysDir`. */
  readonly clusterKeys?: (keyName: string) => Promise<Uint8Array | undefined>;
  /**
   * Decides each player's id from the JoinCluster credential.
   *
   * @default {guestAuthenticate (anonymous `guest-<hex>` ids)}
   */
  readonly authenticate?: AuthenticateHook;
  /**
   * More metric families for the status server's `/metrics`, read at each scrape (e.g. the
   * account hook's verdicts, `AccountAuthenticator.metrics`).
   *
   * @default {() => []}
   */
  readonly metricFamilies?: () => Iterable<MetricFamily>;
  /**
   * Most simultaneous client connections (counted from their Hello); 0 = no limit. Clusters
   * have their own limit, `maxClusters`, and connections before their Hello are pending.
   *
   * @default {0}
   */
  readonly maxConnections?: number;
  /**
   * Most registered clusters (counted once registered, apart from clients); 0 = no limit.
   *
   * @default {1024}
   */
  readonly maxClusters?: number;
  /**
   * Most pending connections: before their Hello, and clusters until registered. A new one past
   * it evicts the oldest pending one.
   *
   * @default {1024}
   */
  readonly maxPendingConnections?: number;
  /**
   * Most pending connections from one IPv4 address or IPv6 /64; one more is refused.
   *
   * @default {64}
   */
  readonly maxPendingPerAddress?: number;
  /**
   * Largest frame read from a connection before its Hello, from a registering cluster and from
   * every client connection (clients only send small requests); capped at `maxFrameBytes`.
   * A registered cluster's link gets `maxFrameBytes`.
   *
   * @default {4096}
   */
  readonly maxPendingFrameBytes?: number;
  /**
   * Largest frame accepted or sent.
   *
   * @default {65536}
   */
  readonly maxFrameBytes?: number;
  /**
   * Outgoing bytes queued per connection before it is dropped.
   *
   * @default {1048576}
   */
  readonly maxQueueBytes?: number;
  /**
   * Time a new connection has to send its Hello, in ms.
   *
   * @default {5000}
   */
  readonly handshakeTimeoutMs?: number;
  /**
   * A connection that sends nothing for this long is closed, in ms.
   *
   * @default {30000}
   */
  readonly idleTimeoutMs?: number;
  /**
   * A cluster without a Heartbeat for this long is dropped, in ms.
   *
   * @default {3000}
   */
  readonly heartbeatTimeoutMs?: number;
  /**
   * Lifetime of a join ticket, in ms.
   *
   * @default {30000}
   */
  readonly ticketTtlMs?: number;
  /**
   * Time a cluster has, from connecting, to finish registering, in ms.
   *
   * @default {5000}
   */
  readonly registrationTimeoutMs?: number;
  /**
   * How long an issued ticket counts as reserved load on its cluster, in ms.
   *
   * @default {5000}
   */
  readonly reservationWindowMs?: number;
  /** Ticket rate limits and reservation caps (each field has its default). */
  readonly joinLimits?: MasterJoinLimits;
  /**
   * Redis URL of a registry shared with other masters (`redis://host:6379`); `""` = none
   * (this master's registry is its own, in memory). Ignored when `registryStore` is given.
   *
   * @default {""}
   */
  readonly redisUrl?: string;
  /** A registry store shared with other masters (e.g. a `MemoryRegistryStore` in tests). */
  readonly registryStore?: RegistryStore;
  /**
   * Status HTTP server (`/health`, `/metrics`, `/`); `false` = none.
   *
   * @default {false}
   */
  readonly status?: MasterStatusOptions | false;
  /**
   * A second listener speaking the same protocol inside TLS, on `hostname` (issue 17).
   *
   * @default {undefined} (none)
   */
  readonly tls?: TlsListenOptions;
  /**
   * WebSocket listener (the same protocol over `ws://`); `false` = none. With `tls` too it
   * serves `wss://` (same certificate), and no plain `ws://`.
   *
   * @default {false}
   */
  readonly webSocket?: WebSocketServerOptions | false;
}

/**
 * Maps a validated config to {@linkcode MasterOptions}: `[all]` and `[master]` settings, port
 * 0 resolved to 6256 and status port 0 to 6280.
 *
 * @param config A config from `loadConfig` / `configFromArgs`.
 *
 * @example
 * ```ts
 * import { masterOptionsFromConfig } from "./master_options.ts";
 * import { parseConfig } from "../shared/config_schema.ts";
 * import assert from "node:assert/strict";
 *
 * const options = masterOptionsFromConfig(parseConfig("[master]\nticket_ttl_ms = 5000\n"));
 * assert.equal(options.port, 6256);
 * assert.equal(options.ticketTtlMs, 5000);
 * assert.deepEqual(options.status, {
 *   hostname: "127.0.0.1",
 *   port: 6280,
 *   adminToken: null,
 *   adminTokenFile: null,
 *   consolePublic: true,
 * });
 * ```
 */
export function masterOptionsFromConfig(config: SustenetConfig): MasterOptions {
  const { all, master } = config;
  return {
    hostname: all.bindIp,
    port: resolvedPort(config, "master"),
    serverName: all.serverName,
    keysDir: all.keysDir,
    maxConnections: all.maxConnections,
    maxClusters: master.maxClusters,
    maxPendingConnections: all.maxPendingConnections,
    maxPendingPerAddress: all.maxPendingPerAddress,
    maxPendingFrameBytes: all.maxPendingFrameBytes,
    maxFrameBytes: all.maxFrameBytes,
    maxQueueBytes: all.maxQueueBytes,
    handshakeTimeoutMs: all.handshakeTimeoutMs,
    idleTimeoutMs: all.idleTimeoutMs,
    heartbeatTimeoutMs: master.heartbeatTimeoutMs,
    ticketTtlMs: master.ticketTtlMs,
    registrationTimeoutMs: master.registrationTimeoutMs,
    joinLimits: {
      connectionRatePerS: master.ticketRatePerConn,
      connectionBurst: master.ticketBurstPerConn,
      addressRatePerS: master.ticketRatePerAddr,
      addressBurst: master.ticketBurstPerAddr,
      playerRatePerS: master.ticketRatePerPlayer,
      playerBurst: master.ticketBurstPerPlayer,
      refusalsBeforeClose: master.ticketMaxRefusals,
      reservationsPerConnection: master.reservationsPerConn,
      reservationsPerAddress: master.reservationsPerAddr,
      reservationsPerPlayer: master.reservationsPerPlayer,
    },
    redisUrl: master.redisUrl,
    status: statusOptionsFromConfig(config, "master"),
    webSocket: all.wsEnabled
      ? {
        port: resolvedWsPort(config, "master"),
        path: all.wsPath,
        allowedOrigins: all.wsAllowedOrigins,
      }
      : false,
  };
}

/** {@linkcode MasterOptions} with every default filled in and every value checked. */
export interface ResolvedMasterOptions {
  /** Address to listen on. */
  readonly hostname: string;
  /** Port to listen on (0 = the OS chooses). */
  readonly port: number;
  /** Name sent in HelloOk. */
  readonly serverName: string;
  /** Keys directory (unused when `clusterKeys` is set). */
  readonly keysDir: string;
  /** Custom cluster key lookup, if any. */
  readonly clusterKeys: ((keyName: string) => Promise<Uint8Array | undefined>) | undefined;
  /** Identity hook, if any (else guest ids). */
  readonly authenticate: AuthenticateHook | undefined;
  /** More metric families for `/metrics`. */
  readonly metricFamilies: () => Iterable<MetricFamily>;
  /** Client connection limit (0 = none). */
  readonly maxConnections: number;
  /** Registered cluster limit (0 = none). */
  readonly maxClusters: number;
  /** Pending connection limit. */
  readonly maxPendingConnections: number;
  /** Pending connection limit per address. */
  readonly maxPendingPerAddress: number;
  /** Frame bound before the Hello, while registering and for clients (≤ maxFrameBytes). */
  readonly maxPendingFrameBytes: number;
  /** Frame bound. */
  readonly maxFrameBytes: number;
  /** Outgoing queue bound per connection. */
  readonly maxQueueBytes: number;
  /** Hello deadline, in ms (0 = none). */
  readonly handshakeTimeoutMs: number;
  /** Idle limit, in ms (0 = none). */
  readonly idleTimeoutMs: number;
  /** Heartbeat timeout, in ms. */
  readonly heartbeatTimeoutMs: number;
  /** Ticket lifetime, in ms. */
  readonly ticketTtlMs: number;
  /** Registration deadline from connecting, in ms. */
  readonly registrationTimeoutMs: number;
  /** Reserved-load window, in ms. */
  readonly reservationWindowMs: number;
  /** Ticket limits and reservation caps. */
  readonly joinLimits: ResolvedJoinLimits;
  /** Redis URL of the shared registry, or `""`. */
  readonly redisUrl: string;
  /** A shared registry store given by the embedder, if any. */
  readonly registryStore: RegistryStore | undefined;
  /** Status server, or `false`. */
  readonly status: MasterStatusOptions | false;
  /** The TLS listener, if any. */
  readonly tls: TlsListenOptions | undefined;
  /** WebSocket listener, or `false`. */
  readonly webSocket: WebSocketServerOptions | false;
}

function integerIn(name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${name} must be an integer ${min}..${max}, got ${value}`);
  }
  return value;
}

const MAX_MS = 2 ** 31 - 1; // the largest setTimeout delay

/**
 * Fills in the defaults of {@linkcode MasterOptions} and checks every value, so a bad option
 * fails `startMaster()` at once instead of the first connection.
 *
 * @param options The caller's options.
 * @throws {RangeError} Naming the first option out of range.
 *
 * @example
 * ```ts
 * import { resolveMasterOptions } from "./master_options.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(resolveMasterOptions({}).heartbeatTimeoutMs, 3000);
 * assert.throws(() => resolveMasterOptions({ ticketTtlMs: 0 }), /ticketTtlMs/);
 * assert.throws(() => resolveMasterOptions({ serverName: "x".repeat(256) }), /serverName/);
 * assert.equal(resolveMasterOptions({}).joinLimits.connectionRatePerS, 2);
 * assert.throws(
 *   () => resolveMasterOptions({ joinLimits: { addressBurst: 0 } }),
 *   /joinLimits\.addressBurst/,
 * );
 * ```
 */
export function resolveMasterOptions(options: MasterOptions): ResolvedMasterOptions {
  const serverName = options.serverName ?? "Sustenet";
  if (!serverName.isWellFormed() || new TextEncoder().encode(serverName).length > 255) {
    throw new RangeError("serverName must be well-formed and at most 255 UTF-8 bytes");
  }
  const maxFrameBytes = integerIn("maxFrameBytes", options.maxFrameBytes ?? 65536, 64, 2 ** 24);
  const status = options.status ?? false;
  if (status !== false) integerIn("status.port", status.port, 0, 65535);
  const webSocket = options.webSocket ?? false;
  if (webSocket !== false) integerIn("webSocket.port", webSocket.port, 0, 65535);
  return {
    hostname: options.hostname ?? "127.0.0.1",
    port: integerIn("port", options.port ?? 0, 0, 65535),
    serverName,
    keysDir: options.keysDir ?? "keys",
    clusterKeys: options.clusterKeys,
    authenticate: options.authenticate,
    metricFamilies: options.metricFamilies ?? (() => []),
    maxConnections: integerIn("maxConnections", options.maxConnections ?? 0, 0, 2 ** 32 - 1),
    maxClusters: integerIn("maxClusters", options.maxClusters ?? 1024, 0, 2 ** 32 - 1),
    maxPendingConnections: integerIn(
      "maxPendingConnections",
      options.maxPendingConnections ?? 1024,
      1,
      1_000_000,
    ),
    maxPendingPerAddress: integerIn(
      "maxPendingPerAddress",
      options.maxPendingPerAddress ?? 64,
      1,
      1_000_000,
    ),
    maxPendingFrameBytes: Math.min(
      maxFrameBytes,
      integerIn("maxPendingFrameBytes", options.maxPendingFrameBytes ?? 4096, 64, 2 ** 24),
    ),
    maxFrameBytes,
    maxQueueBytes: integerIn(
      "maxQueueBytes",
      options.maxQueueBytes ?? 1024 * 1024,
      maxFrameBytes,
      2 ** 31,
    ),
    handshakeTimeoutMs: integerIn(
      "handshakeTimeoutMs",
      options.handshakeTimeoutMs ?? 5000,
      0,
      MAX_MS,
    ),
    idleTimeoutMs: integerIn("idleTimeoutMs", options.idleTimeoutMs ?? 30_000, 0, MAX_MS),
    heartbeatTimeoutMs: integerIn(
      "heartbeatTimeoutMs",
      options.heartbeatTimeoutMs ?? 3000,
      1,
      MAX_MS,
    ),
    ticketTtlMs: integerIn("ticketTtlMs", options.ticketTtlMs ?? 30_000, 1, MAX_MS),
    registrationTimeoutMs: integerIn(
      "registrationTimeoutMs",
      options.registrationTimeoutMs ?? 5000,
      1,
      MAX_MS,
    ),
    redisUrl: checkRedisUrl(options.redisUrl ?? ""),
    registryStore: options.registryStore,
    reservationWindowMs: integerIn(
      "reservationWindowMs",
      options.reservationWindowMs ?? 5000,
      1,
      MAX_MS,
    ),
    joinLimits: resolveJoinLimits(options.joinLimits ?? {}),
    status,
    tls: options.tls,
    webSocket,
  };
}

function checkRedisUrl(url: string): string {
  if (url === "") return url;
  if (!URL.canParse(url) || !["redis:", "rediss:"].includes(new URL(url).protocol)) {
    throw new RangeError('redisUrl must be a redis:// or rediss:// URL, or ""');
  }
  return url;
}

const MAX_LIMIT = 1_000_000;

function resolveJoinLimits(limits: MasterJoinLimits): ResolvedJoinLimits {
  const out: Record<string, number> = {};
  for (const [name, fallback] of Object.entries(JOIN_LIMIT_DEFAULTS)) {
    const value = (limits as Record<string, number | undefined>)[name] ?? fallback;
    out[name] = integerIn(`joinLimits.${name}`, value, 1, MAX_LIMIT);
  }
  return out as ResolvedJoinLimits;
}
