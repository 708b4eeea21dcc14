/**
 * What `startCluster` can be told: the cluster's options and their defaults, and
 * {@linkcode clusterOptionsFromConfig}, which turns a validated `Config.toml` into them. Pure
 * data and validation: it must never open a socket or a file.
 *
 * @module
 */

import type { TlsListenOptions } from "../shared/tls_listener.ts";
import type { WebSocketServerOptions } from "../shared/websocket_listener.ts";
import { livePageOptionsFromConfig } from "../web/live_page.ts";
import {
  type FragmentBounds,
  isLoopbackIp,
  parseHostPort,
  resolvedMasterPort,
  resolvedPort,
  resolvedWsPort,
  type SustenetConfig,
} from "../shared/config.ts";
import { type StatusOptions, statusOptionsFromConfig } from "../shared/status_options.ts";
import { roleLogger } from "../shared/logging.ts";
import type { SustenetPlugin } from "../shared/plugin.ts";
import type { FragmentGridOptions } from "./fragment_grid.ts";
import { type PlayerRateLimits, playerRateLimitsOf } from "./player_rate_limit.ts";
import type { PluginSpec } from "./plugin_host.ts";
import type { WorkerPluginHostOptions } from "./worker_plugin_host.ts";

const logger = roleLogger("cluster");

/**
 * Where a cluster's master is.
 *
 * @example
 * ```ts
 * import { type ClusterMasterAddress, clusterOptionsFromConfig } from "./cluster_options.ts";
 * import { parseConfig } from "../shared/config_schema.ts";
 * import assert from "node:assert/strict";
 *
 * // Config.toml's master_ip and master_port become the cluster's `master`.
 * const config = parseConfig('[cluster]\nmaster_ip = "10.0.0.5"\nmaster_port = 7000');
 * const master: ClusterMasterAddress | null | undefined = clusterOptionsFromConfig(config).master;
 * assert.deepEqual(master, { hostname: "10.0.0.5", port: 7000 });
 * ```
 */
export interface ClusterMasterAddress {
  /** The master's host name or IP. */
  readonly hostname: string;
  /** The master's port. */
  readonly port: number;
}

/**
 * Where the status HTTP server listens.
 *
 * @example
 * ```ts
 * import type { ClusterStatusOptions } from "./cluster_options.ts";
 * import { startCluster } from "./cluster_server.ts";
 * import assert from "node:assert/strict";
 *
 * // A status server on a free port, for a load balancer's health check.
 * const status: ClusterStatusOptions = { port: 0 };
 * const keysDir = await Deno.makeTempDir();
 * const cluster = await startCluster({ port: 0, keysDir, master: null, status });
 * const health = await fetch(`http://127.0.0.1:${cluster.statusAddr?.port}/health`);
 * assert.equal(health.status, 200);
 * assert.equal((await health.json()).masterLink, "disabled");
 * await cluster.stop();
 * await Deno.remove(keysDir, { recursive: true });
 * ```
 */
export type ClusterStatusOptions = StatusOptions;

/**
 * A trusted plugin run in-process, with its name and settings.
 *
 * @example
 * ```ts
 * import type { InProcessPluginEntry } from "./cluster_options.ts";
 * import { definePlugin } from "../shared/plugin.ts";
 * import assert from "node:assert/strict";
 *
 * const entry: InProcessPluginEntry = { plugin: definePlugin({}), name: "rules", settings: {} };
 * assert.equal(entry.name, "rules");
 * ```
 */
export interface InProcessPluginEntry {
  /** The plugin object. */
  readonly plugin: SustenetPlugin;
  /**
   * Its name (logs, errors).
   *
   * @default {"plugin-<index>"}
   */
  readonly name?: string;
  /**
   * Its `ctx.settings`.
   *
   * @default {{}}
   */
  readonly settings?: Readonly<Record<string, unknown>>;
}

/**
 * Interest management settings: the fragment grid's options without its tick rate (that is
 * {@linkcode ClusterOptions.tickHz}). Stated here rather than as the grid's own options type,
 * which is internal; the check below keeps the two the same.
 *
 * @example Fragments of 64 units in a bounded world
 * ```ts
 * import { startCluster } from "./cluster_server.ts";
 * import type { ClusterFragmentOptions } from "./cluster_options.ts";
 * import assert from "node:assert/strict";
 *
 * const fragments: ClusterFragmentOptions = {
 *   size: 64,
 *   bounds: { minX: -1024, minZ: -1024, maxX: 1024, maxZ: 1024 },
 *   maxPlayersPerFragment: 500,
 *   crowdThreshold: 100,
 * };
 * const keysDir = await Deno.makeTempDir();
 * const cluster = await startCluster({ port: 0, keysDir, master: null, fragments });
 * assert.ok(cluster.addr.port > 0);
 * await cluster.stop();
 * await Deno.remove(keysDir, { recursive: true });
 * ```
 */
export interface ClusterFragmentOptions {
  /** Edge length of a square fragment, in world units (> 0). */
  readonly size: number;
  /**
   * World limits. Positions outside are clamped onto the edge.
   * @default unbounded: positions are kept as given; fragment coordinates saturate at ±2^25.
   */
  readonly bounds?: FragmentBounds;
  /**
   * How many fragments around its own a player sees (0 = own only, 1 = own + 8 neighbours).
   * @default 1
   */
  readonly viewDistance?: number;
  /** Hard cap on players in one fragment; an add or move into a full fragment is refused. */
  readonly maxPlayersPerFragment: number;
  /**
   * Population above which a fragment updates every other tick; above twice this, every
   * fourth tick.
   */
  readonly crowdThreshold: number;
  /**
   * How position updates are encoded: `"full"` as MoveBatch (0x2B) entries, `"quantized"` as
   * 11-byte PositionBatch (0x2F) entries (needs `bounds`; docs/PROTOCOL.md states the precision).
   * @default "full"
   */
  readonly positionFormat?: "full" | "quantized";
}

// The public options and the grid's own must stay the same (both directions assignable).
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const _sameAsGrid: Same<ClusterFragmentOptions, Omit<FragmentGridOptions, "tickHz">> = true;
void _sameAsGrid;

/**
 * Options of {@linkcode startCluster}. Every field has a default.
 *
 * @example
 * ```ts
 * import { type ClusterOptions, clusterOptionsFromConfig } from "./cluster_options.ts";
 * import { parseConfig } from "../shared/config_schema.ts";
 * import assert from "node:assert/strict";
 *
 * // From Config.toml, with a few options overridden in code.
 * const config = parseConfig('[all]\nserver_name = "eu-1"', { baseDir: "/srv/game" });
 * const options: ClusterOptions = { ...clusterOptionsFromConfig(config), port: 0, master: null };
 * assert.equal(options.serverName, "eu-1");
 * assert.equal(options.keysDir, "/srv/game/keys");
 * ```
 */
export interface ClusterOptions {
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
   * Address announced to the master for clients; by default `hostname`, or 127.0.0.1 (with a
   * warning) when `hostname` is 0.0.0.0 or ::.
   */
  readonly publicHost?: string;
  /**
   * Name sent in HelloOk and announced to the master.
   *
   * @default {"Sustenet"}
   */
  readonly serverName?: string;
  /**
   * Most authenticated players; 0 = no limit. Connections still authenticating never count:
   * they have their own pool (`maxPendingConnections`).
   *
   * @default {0}
   */
  readonly maxConnections?: number;
  /**
   * Most connections not authenticated yet; a new one past it evicts the oldest pending one.
   *
   * @default {1024}
   */
  readonly maxPendingConnections?: number;
  /**
   * Most connections not authenticated yet from one IPv4 address or IPv6 /64; one more is
   * refused.
   *
   * @default {64}
   */
  readonly maxPendingPerAddress?: number;
  /**
   * Largest frame (and sealed record of one frame) read before Authenticate(20); capped at
   * `maxFrameBytes`, which applies from then on.
   *
   * @default {4096}
   */
  readonly maxPendingFrameBytes?: number;
  /**
   * Directory of the key files.
   *
   * @default {"keys"}
   */
  readonly keysDir?: string;
  /**
   * Name of the AES key shared with the master (generated, with a warning, when missing).
   *
   * @default {"cluster_key"}
   */
  readonly keyName?: string;
  /**
   * Name of the X25519 identity key pair (`<name>.identity` and `<name>.pub`).
   *
   * @default {"cluster_identity"}
   */
  readonly identityKeyName?: string;
  /**
   * The master to register with; `null` runs without one (every ticket then gets 50).
   *
   * @default {{ hostname: "127.0.0.1", port: 6256 }}
   */
  readonly master?: ClusterMasterAddress | null;
  /**
   * Several masters sharing one registry, in order: the cluster registers with the first that
   * answers and fails over to the next when its link dies. Overrides `master` when not empty.
   *
   * @default {[]}
   */
  readonly masters?: readonly ClusterMasterAddress[];
  /**
   * Time between heartbeats to the master, in ms.
   *
   * @default {1000}
   */
  readonly heartbeatIntervalMs?: number;
  /**
   * First reconnect delay after losing the master, in ms.
   *
   * @default {500}
   */
  readonly reconnectMinMs?: number;
  /**
   * Largest reconnect delay, in ms (the config's `reconnect_max_ms` default too: a returning
   * master's list is whole again within ~3 s).
   *
   * @default {2000}
   */
  readonly reconnectMaxMs?: number;
  /**
   * Largest frame accepted or sent.
   *
   * @default {65536}
   */
  readonly maxFrameBytes?: number;
  /**
   * Outgoing bytes queued per connection before it is dropped (≥ maxFrameBytes + 4).
   *
   * @default {1048576}
   */
  readonly maxQueueBytes?: number;
  /**
   * Time a client has from connecting to being authenticated, in ms.
   *
   * @default {5000}
   */
  readonly handshakeTimeoutMs?: number;
  /**
   * A connection that sends nothing for this long is closed, in ms (0 = never).
   *
   * @default {30000}
   */
  readonly idleTimeoutMs?: number;
  /**
   * Status HTTP server (`/health`, `/metrics`); `false` = none.
   *
   * @default {false}
   */
  readonly status?: ClusterStatusOptions | false;
  /**
   * A second client listener speaking the same protocol inside TLS, on `hostname`; it allows
   * the TLS session mode (TlsJoin) and is announced as a `tls` endpoint (issue 17).
   *
   * @default {undefined} (none)
   */
  readonly tls?: TlsListenOptions;
  /**
   * WebSocket listener (the same protocol over `ws://`), announced to the master as a `ws`
   * endpoint so clients find it in SendClusters and JoinTicket; `false` = none. With `tls` too
   * it serves `wss://` (same certificate), announced as a `wss` endpoint, and no plain `ws://`.
   *
   * @default {false}
   */
  readonly webSocket?: WebSocketServerOptions | false;
  /** Trusted plugins run in-process, in order: plugin objects, or entries with a name. */
  readonly plugins?: readonly (SustenetPlugin | InProcessPluginEntry)[];
  /**
   * Plugins loaded by URL, after the in-process ones: each untrusted one in its own `deno run`
   * subprocess, each `trusted` one in a Worker.
   */
  readonly pluginSpecs?: readonly PluginSpec[];
  /**
   * A URL plugin that does not answer for this long is killed and restarted, in ms.
   *
   * @default {2000}
   */
  readonly pluginWatchdogMs?: number;
  /**
   * Supervision settings of every URL plugin's host (restart backoff, queue bound, log rate,
   * memory check); `pluginWatchdogMs` wins over its `watchdogMs`. For embedders and tests.
   *
   * @default {{}}
   */
  readonly pluginHostOptions?: WorkerPluginHostOptions;
  /**
   * The longest a broadcast to every player waits to share one write per player with the
   * others made meanwhile, in ms: the wait is 20 µs per player up to this (1 ms at 50 players,
   * 10 ms from 500), so small rooms stay prompt and crowded ones write less; 0 writes at the end
   * of every event-loop turn. See `BroadcastGroupOptions`.
   *
   * @default {10}
   */
  readonly broadcastFlushMs?: number;
  /**
   * What each authenticated player may send (plugin commands, their bytes, moves and other
   * packets) before its frames are dropped, and how long it may stay over before it is kicked;
   * missing limits take `DEFAULT_PLAYER_RATE_LIMITS` (cluster/player_rate_limit.ts).
   *
   * @default {DEFAULT_PLAYER_RATE_LIMITS}
   */
  readonly playerRateLimits?: Partial<PlayerRateLimits>;
  /**
   * Interest management; `false` = off (moves go to plugins only).
   *
   * @default {false}
   */
  readonly fragments?: ClusterFragmentOptions | false;
  /**
   * Ticks per second: plugins' `onTick` and, with fragments on, position updates.
   *
   * @default {20}
   */
  readonly tickHz?: number;
  /**
   * Unsealed client traffic, for benchmarks; refused unless `hostname` is a loopback address.
   *
   * @default {false}
   */
  readonly plaintext?: boolean;
  /** URL where clients fetch the identity public key (logged at start; informational). */
  readonly domainPubKey?: string | null;
  /**
   * URL of this cluster's status page, sent to the master (ClusterPage) so its console links
   * to it; null/absent = not sent.
   */
  readonly statusPageUrl?: string | null;
}

/**
 * The {@linkcode ClusterOptions} a validated config describes (ports resolved: 0 in the file
 * means 6257 / 6256 / 6281).
 *
 * @param config A config from `loadConfig` / `configFromArgs`.
 *
 * @example
 * ```ts
 * import { clusterOptionsFromConfig } from "./cluster_options.ts";
 * import { parseConfig } from "../shared/config.ts";
 * import assert from "node:assert/strict";
 *
 * const options = clusterOptionsFromConfig(parseConfig('[all]\nserver_name = "eu-1"'));
 * assert.equal(options.port, 6257);
 * assert.deepEqual(options.master, { hostname: "127.0.0.1", port: 6256 });
 * assert.deepEqual(options.status, {
 *   hostname: "127.0.0.1",
 *   port: 6281,
 *   adminToken: null,
 *   adminTokenFile: null,
 *   consolePublic: true,
 * });
 * assert.equal(options.fragments, false);
 * ```
 */
export function clusterOptionsFromConfig(config: SustenetConfig): ClusterOptions {
  const { all, cluster } = config;
  const fragments = cluster.fragments;
  return {
    hostname: all.bindIp,
    port: resolvedPort(config, "cluster"),
    // Left out when unset, so startCluster derives it from bind_ip (and warns on 0.0.0.0).
    ...(cluster.publicIp === "" ? {} : { publicHost: cluster.publicIp }),
    serverName: all.serverName,
    maxConnections: all.maxConnections,
    maxPendingConnections: all.maxPendingConnections,
    maxPendingPerAddress: all.maxPendingPerAddress,
    maxPendingFrameBytes: all.maxPendingFrameBytes,
    keysDir: all.keysDir,
    keyName: cluster.keyName,
    identityKeyName: cluster.identityKeyName,
    master: { hostname: cluster.masterIp, port: resolvedMasterPort(config) },
    masters: cluster.masterAddresses.map((text) => {
      const address = parseHostPort(text);
      if (address === undefined) throw new RangeError(`bad master address ${text}`);
      return address;
    }),
    heartbeatIntervalMs: cluster.heartbeatIntervalMs,
    reconnectMinMs: cluster.reconnectMinMs,
    reconnectMaxMs: cluster.reconnectMaxMs,
    maxFrameBytes: all.maxFrameBytes,
    maxQueueBytes: all.maxQueueBytes,
    handshakeTimeoutMs: all.handshakeTimeoutMs,
    idleTimeoutMs: all.idleTimeoutMs,
    status: statusOptionsFromConfig(config, "cluster"),
    webSocket: all.wsEnabled
      ? {
        port: resolvedWsPort(config, "cluster"),
        path: all.wsPath,
        allowedOrigins: all.wsAllowedOrigins,
        ...(cluster.wsPage ? { page: livePageOptionsFromConfig(config) } : {}),
      }
      : false,
    pluginSpecs: cluster.plugins.map((p) => ({
      url: p.url,
      name: p.name,
      settings: p.settings,
      permissions: p.permissions,
      trusted: p.trusted,
      maxMemoryMb: p.maxMemoryMb,
    })),
    pluginWatchdogMs: cluster.pluginWatchdogMs,
    broadcastFlushMs: cluster.broadcastFlushMs,
    playerRateLimits: {
      commandsPerS: cluster.playerCommandsPerS,
      commandsBurst: cluster.playerCommandsBurst,
      commandBytesPerS: cluster.playerCommandBytesPerS,
      commandBytesBurst: cluster.playerCommandBytesBurst,
      movesPerS: cluster.playerMovesPerS,
      movesBurst: cluster.playerMovesBurst,
      floodKickMs: cluster.playerFloodKickMs,
    },
    fragments: fragments.enabled
      ? {
        size: fragments.size,
        ...(fragments.bounds === null ? {} : { bounds: fragments.bounds }),
        viewDistance: fragments.viewDistance,
        maxPlayersPerFragment: fragments.maxPlayers,
        crowdThreshold: fragments.crowdThreshold,
        positionFormat: fragments.positionFormat,
      }
      : false,
    tickHz: fragments.tickHz,
    plaintext: cluster.plaintext,
    domainPubKey: cluster.domainPubKey,
    statusPageUrl: cluster.statusPageUrl,
  };
}

/** The settings every part of the runtime reads, with defaults applied. */
export interface Settings {
  readonly hostname: string;
  readonly port: number;
  readonly publicHost: string;
  readonly serverName: string;
  readonly maxConnections: number;
  readonly maxPendingConnections: number;
  readonly maxPendingPerAddress: number;
  /** The pending frame bound, already capped at `maxFrameBytes`. */
  readonly maxPendingFrameBytes: number;
  readonly keysDir: string;
  readonly keyName: string;
  readonly identityKeyName: string;
  readonly maxFrameBytes: number;
  readonly maxQueueBytes: number;
  readonly tickHz: number;
  readonly broadcastFlushMs: number;
  readonly playerRateLimits: PlayerRateLimits;
}

export function settingsOf(options: ClusterOptions): Settings {
  const hostname = options.hostname ?? "127.0.0.1";
  const maxFrameBytes = options.maxFrameBytes ?? 65_536;
  const maxQueueBytes = options.maxQueueBytes ?? 1_048_576;
  const maxConnections = options.maxConnections ?? 0;
  const tickHz = options.tickHz ?? 20;
  const broadcastFlushMs = options.broadcastFlushMs ?? 10;
  if (!Number.isInteger(maxFrameBytes) || maxFrameBytes < 64) {
    throw new RangeError(`maxFrameBytes must be an integer >= 64, got ${maxFrameBytes}`);
  }
  if (!Number.isInteger(maxQueueBytes) || maxQueueBytes < maxFrameBytes + 4) {
    throw new RangeError(
      `maxQueueBytes must be an integer >= maxFrameBytes + 4 (${maxFrameBytes + 4}), ` +
        `got ${maxQueueBytes}`,
    );
  }
  if (!Number.isInteger(maxConnections) || maxConnections < 0) {
    throw new RangeError(`maxConnections must be an integer >= 0, got ${maxConnections}`);
  }
  const maxPendingConnections = options.maxPendingConnections ?? 1024;
  const maxPendingPerAddress = options.maxPendingPerAddress ?? 64;
  const maxPendingFrameBytes = options.maxPendingFrameBytes ?? 4096;
  for (
    const [name, value, min] of [
      ["maxPendingConnections", maxPendingConnections, 1],
      ["maxPendingPerAddress", maxPendingPerAddress, 1],
      ["maxPendingFrameBytes", maxPendingFrameBytes, 64],
    ] as const
  ) {
    if (!Number.isSafeInteger(value) || value < min) {
      throw new RangeError(`${name} must be an integer >= ${min}, got ${value}`);
    }
  }
  if (!Number.isFinite(tickHz) || tickHz <= 0 || tickHz > 1000) {
    throw new RangeError(`tickHz must be within (0, 1000], got ${tickHz}`);
  }
  if (!Number.isFinite(broadcastFlushMs) || broadcastFlushMs < 0 || broadcastFlushMs > 1000) {
    throw new RangeError(`broadcastFlushMs must be within [0, 1000], got ${broadcastFlushMs}`);
  }
  if (options.plaintext === true && !isLoopbackIp(hostname)) {
    throw new RangeError(
      `plaintext mode needs a loopback hostname (it sends game traffic unencrypted), got ${hostname}`,
    );
  }
  let publicHost = options.publicHost;
  if (publicHost === undefined || publicHost === "") {
    const unspecified = hostname === "0.0.0.0" || hostname === "::";
    publicHost = unspecified ? "127.0.0.1" : hostname;
    if (unspecified) {
      logger.warn(
        "listening on {hostname} without a public address: announcing 127.0.0.1, which only " +
          "local clients can reach; set cluster.public_ip",
        { hostname },
      );
    }
  }
  const serverName = options.serverName ?? "Sustenet";
  // Both travel as str8 (HelloOk, AnswerCluster): refuse here rather than fail per connection.
  for (const [field, value] of [["serverName", serverName], ["publicHost", publicHost]]) {
    const bytes = new TextEncoder().encode(value).length;
    if (bytes === 0 || bytes > 255 || !value.isWellFormed()) {
      throw new RangeError(`${field} must be 1..255 bytes of valid UTF-8, got ${bytes} bytes`);
    }
  }
  return {
    hostname,
    port: options.port ?? 0,
    publicHost,
    serverName,
    maxConnections,
    maxPendingConnections,
    maxPendingPerAddress,
    maxPendingFrameBytes: Math.min(maxPendingFrameBytes, maxFrameBytes),
    keysDir: options.keysDir ?? "keys",
    keyName: options.keyName ?? "cluster_key",
    identityKeyName: options.identityKeyName ?? "cluster_identity",
    maxFrameBytes,
    maxQueueBytes,
    tickHz,
    broadcastFlushMs,
    playerRateLimits: playerRateLimitsOf(options.playerRateLimits),
  };
}

/** Tells a `{ plugin, name, settings }` entry from a bare plugin object. */
export function isPluginEntry(
  value: SustenetPlugin | InProcessPluginEntry,
): value is InProcessPluginEntry {
  return "plugin" in value && typeof value.plugin === "object" && value.plugin !== null;
}
