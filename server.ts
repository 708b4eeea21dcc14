/**
 * What an operator's own script needs besides the role entry points: Config.toml loading and
 * validation ({@linkcode loadConfig}, whose result `masterOptionsFromConfig` and
 * `clusterOptionsFromConfig` take), and the key files (the AES key master and clusters share,
 * a cluster's X25519 identity). It needs Deno and file permissions; it re-exports the core
 * (`@sustenet/sustenet`) too. Web pages use `./browser.ts` instead.
 *
 * @example A key and a config file, as a deployment script makes them
 * ```ts
 * import { generateKey, loadConfig, loadKey } from "./server.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await generateKey(`${dir}/keys`, "cluster_key");
 * await Deno.writeTextFile(`${dir}/Config.toml`, '[all]\nserver_name = "EU 1"\n');
 * const config = await loadConfig(`${dir}/Config.toml`);
 * assert.equal(config.all.serverName, "EU 1");
 * // keys_dir defaults to "keys", next to the config file.
 * const key = await loadKey(config.all.keysDir, config.cluster.keyName);
 * assert.equal(key.length, 32);
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @module
 */
export * from "./shared/mod.ts";

// Config.toml: load, validate, and the typed result the roles' *OptionsFromConfig take.
export {
  type AllSettings,
  type AuthSettings,
  type ClusterSettings,
  ConfigError,
  defaultConfig,
  type FragmentBounds,
  type FragmentSettings,
  loadConfig,
  type LoadConfigOptions,
  type MasterSettings,
  parseConfig,
  type ParseConfigOptions,
  type PermissionGrant,
  type PluginPermissions,
  type PluginSettings,
  type PluginSettingValue,
  type SustenetConfig,
} from "./shared/config.ts";

// Key files: the shared AES key (`deno task keygen`) and a cluster's identity key pair.
export {
  generateKey,
  type LoadedIdentity,
  loadKey,
  loadOrCreateIdentity,
  saveKey,
  type SaveKeyOptions,
} from "./shared/keys.ts";
export { KeyError } from "./shared/security.ts";
