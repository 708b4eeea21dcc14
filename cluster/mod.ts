/**
 * The Sustenet cluster server: registers with a master (AES-256-GCM challenge, sealed
 * heartbeats, reconnection with backoff), authenticates players by their master-issued join
 * tickets over an X25519 handshake, and runs the game's plugins (in-process, or sandboxed: each
 * untrusted plugin in its own `deno run` subprocess, trusted ones in Workers) with optional
 * fragment-based interest management. Start one with
 * {@linkcode startCluster}, or from a Config.toml with
 * `startCluster(clusterOptionsFromConfig(config))`. Re-exports only.
 *
 * @example Start a standalone cluster on a free port and stop it
 * ```ts
 * import { startCluster } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const keysDir = await Deno.makeTempDir();
 * const cluster = await startCluster({ port: 0, keysDir, master: null });
 * assert.equal(cluster.players.size, 0);
 * await cluster.stop();
 * await Deno.remove(keysDir, { recursive: true });
 * ```
 *
 * @module
 */

export { type ClusterAddress, type ClusterServer, startCluster } from "./cluster_server.ts";
export {
  type ClusterFragmentOptions,
  type ClusterMasterAddress,
  type ClusterOptions,
  clusterOptionsFromConfig,
  type ClusterStatusOptions,
  type InProcessPluginEntry,
} from "./cluster_options.ts";
export type { MasterLinkState, RegistrationDetails } from "./master_link.ts";
export type { Player, PlayerView } from "./players.ts";
export { ClusterMetrics, type ClusterMetricsSources, type ReportedLinkState } from "./metrics.ts";
export {
  type PluginActions,
  type PluginHost,
  type PluginHostState,
  PluginLoadError,
  type PluginSpec,
} from "./plugin_host.ts";
export { InProcessPluginHost, type InProcessPluginHostOptions } from "./in_process_plugin_host.ts";
export {
  type PluginIsolation,
  WorkerPluginHost,
  type WorkerPluginHostOptions,
  type WorkerPluginHostStats,
} from "./worker_plugin_host.ts";
export type { PluginFailure } from "./plugin_sandbox.ts";
export { NO_PLUGIN_PERMISSIONS } from "./plugin_permissions.ts";
export { TickDurations } from "./metrics.ts";
export {
  DEFAULT_PLAYER_RATE_LIMITS,
  FLOOD_KICK_REASON,
  FLOOD_PAUSE_MS,
  FLOOD_QUIET_MS,
  PlayerRateLimit,
  type PlayerRateLimits,
  playerRateLimitsOf,
  type RateVerdict,
  THROTTLE_PAUSE_MS,
} from "./player_rate_limit.ts";
export {
  type AddOutcome,
  type EntityId,
  type EntityState,
  FragmentGrid,
  FragmentGridError,
  type FragmentGridOptions,
  type FragmentStats,
  type InterestChange,
  type MoveOutcome,
  type TickResult,
} from "./fragment_grid.ts";
export {
  FRAGMENT_COORD_LIMIT,
  fragmentCoords,
  fragmentDistance,
  type FragmentId,
  fragmentId,
} from "./fragment_id.ts";
