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

// The public cluster API, chosen (docs/EMBEDDING.md, "Public API"): start and stop a cluster,
// its options and the config types they read, its link to the master, its players, plugin
// loading, per-player rate limits and metrics. Plugin hosts, the fragment grid, sessions and
// the rest of cluster/ are internal.

// Start, options, config.
export { type ClusterAddress, type ClusterServer, startCluster } from "./cluster_server.ts";
export {
  type ClusterFragmentOptions,
  type ClusterMasterAddress,
  type ClusterOptions,
  clusterOptionsFromConfig,
  type ClusterStatusOptions,
  type InProcessPluginEntry,
} from "./cluster_options.ts";
export type { TlsListenOptions } from "../shared/tls_listener.ts";
export type { WebSocketServerOptions } from "../shared/websocket_listener.ts";
// The Config.toml types clusterOptionsFromConfig reads (loadConfig is in `/server`).
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

// The plugin API types the options take (definePlugin itself is in the package root).
export type {
  BroadcastOptions,
  ClientId,
  PlayerInfo,
  PluginContext,
  PluginLog,
  PluginMove,
  SustenetPlugin,
  Vec3,
} from "../shared/plugin.ts";
export type { MoveState } from "../shared/protocol/move_state.ts";
export { SustenetError } from "../shared/errors.ts";

// The link to the master, and the players on this cluster.
export type { MasterLinkState, RegistrationDetails } from "./master_link.ts";
export type {
  AnswerClusterPacket,
  Endpoint,
  EndpointKind,
  PluginStateName,
  PluginSummary,
} from "../shared/protocol/packets.ts";
export type { Player, PlayerView } from "./players.ts";

// Plugins: what to load and how (the plugin API itself is in the package root).
export { PluginLoadError, type PluginSpec } from "./plugin_host.ts";
export { NO_PLUGIN_PERMISSIONS } from "./plugin_permissions.ts";
export type { PluginIsolation, WorkerPluginHostOptions } from "./worker_plugin_host.ts";

// What each player may send.
export { DEFAULT_PLAYER_RATE_LIMITS, type PlayerRateLimits } from "./player_rate_limit.ts";

// Metrics: `cluster.metrics` read in-process, as `/metrics` shows them.
export {
  type AuthLabel,
  AuthResults,
  ClusterMetrics,
  type ClusterMetricsSources,
  type PluginSupervisionCounts,
  type ReportedLinkState,
  TickDurations,
} from "./metrics.ts";
export type { PluginFailure } from "./plugin_sandbox.ts";
export type { FragmentStats } from "./fragment_grid.ts";
export type { FragmentId } from "./fragment_id.ts";
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
  type TrafficCounts,
} from "../shared/metrics.ts";
export { PreAuthMetrics, type PreAuthRefusal } from "../shared/pre_auth_metrics.ts";
