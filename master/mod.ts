/**
 * The Sustenet master server: coordinates clusters (registration by AES-256-GCM challenge,
 * heartbeats, load) and sends clients to them with sealed join tickets. Start one with
 * {@linkcode startMaster}, or from a Config.toml with
 * `startMaster(masterOptionsFromConfig(config))`. Re-exports only.
 *
 * @example Start a master on a free port and stop it
 * ```ts
 * import { startMaster } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const keysDir = await Deno.makeTempDir();
 * const master = await startMaster({ port: 0, keysDir });
 * assert.equal(master.registry.list().length, 0);
 * await master.stop();
 * await Deno.remove(keysDir);
 * ```
 *
 * @module
 */

// The public master API, chosen (docs/EMBEDDING.md, "Public API"): start and stop a master,
// its options, the authentication hook, what it tells about its clusters, registry stores for
// several masters, and its metrics. Everything else under master/ is internal.

// Start, options, config.
export { type MasterAddress, type MasterServer, startMaster } from "./start_master.ts";
export {
  type MasterJoinLimits,
  type MasterOptions,
  masterOptionsFromConfig,
  type MasterStatusOptions,
} from "./master_options.ts";
export type { JoinLimits, JoinLimitScope } from "./join_limiter.ts";
export type { TlsListenOptions } from "../shared/tls_listener.ts";
export type { WebSocketServerOptions } from "../shared/websocket_listener.ts";
// The Config.toml types masterOptionsFromConfig reads (loadConfig is in `/server`).
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

// Who a player is: the hook that turns a client's credential into a player id.
export {
  type AuthenticatedPlayer,
  type AuthenticateHook,
  type AuthenticateInfo,
  guestAuthenticate,
  type RemoteAddress,
} from "./authenticate.ts";

// The clusters the master knows, and where their keys come from.
export type {
  ClusterAnnouncement,
  ClusterId,
  ClusterRecord,
  ClusterRegistryView,
  ClusterRemovalReason,
} from "./registry.ts";
export type { JoinRefusalReason } from "./allocation.ts";
export type {
  AnswerClusterPacket,
  Endpoint,
  EndpointKind,
  PluginStateName,
  PluginSummary,
} from "../shared/protocol/packets.ts";
export { type ClusterKeySource, keysDirKeySource } from "./cluster_keys.ts";

// Several masters sharing one registry (in memory for tests, Redis in production).
export {
  type RegistrySnapshot,
  type RegistryStore,
  RegistryStoreError,
  type RegistryStoreErrorCode,
  type RegistryStoreEvent,
  type RegistryStoreHealth,
  type StoredCluster,
} from "./registry_store.ts";
export {
  MemoryRegistrySpace,
  MemoryRegistryStore,
  type MemoryRegistryStoreOptions,
} from "./memory_registry_store.ts";
export { RedisRegistryStore, type RedisRegistryStoreOptions } from "./redis_registry_store.ts";
export type { RegistrySyncStatus } from "./registry_sync.ts";

// Metrics: `master.metrics` read in-process, as `/metrics` shows them.
export { MasterMetrics } from "./metrics.ts";
export type { RegistrationFailure } from "./cluster_registration.ts";
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
