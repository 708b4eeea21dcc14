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

export { type MasterAddress, type MasterServer, startMaster } from "./start_master.ts";
export {
  type MasterJoinLimits,
  type MasterOptions,
  masterOptionsFromConfig,
  type MasterStatusOptions,
} from "./master_options.ts";
export {
  type AuthenticatedPlayer,
  type AuthenticateHook,
  type AuthenticateInfo,
  guestAuthenticate,
  type RemoteAddress,
} from "./authenticate.ts";
export type {
  ClusterAnnouncement,
  ClusterId,
  ClusterRecord,
  ClusterRegistryView,
  ClusterRemovalReason,
} from "./registry.ts";
export { type ClusterKeySource, keysDirKeySource } from "./cluster_keys.ts";
export { MasterMetrics } from "./metrics.ts";
export type { JoinRefusalReason } from "./allocation.ts";
export type { JoinLimits, JoinLimitScope } from "./join_limiter.ts";
export {
  newMasterId,
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
export {
  redactRedisUrl,
  RedisRegistryStore,
  type RedisRegistryStoreOptions,
} from "./redis_registry_store.ts";
export type { RegistrySyncStatus } from "./registry_sync.ts";
