// This module is browser compatible.
/**
 * Builds the permission descriptor of a plugin Worker (`new Worker(url, { deno: { permissions
 * } })`) from the grants in Config.toml: every permission present, `false` unless granted.
 *
 * Why complete: a Worker's permissions default to **inherit** from the parent, key by key, so a
 * descriptor that leaves out `net` would hand the plugin the cluster's network access. This
 * module must never return a descriptor with a key missing, never pass `"inherit"` through,
 * and never accept a key it does not know (a typo must not silently grant nothing, or
 * everything).
 *
 * @module
 */

import type { PermissionGrant, PluginPermissions } from "../shared/config_schema.ts";

/**
 * The permission names a Worker descriptor has, in Deno's order of flags.
 *
 * @example
 * ```ts
 * import { PLUGIN_PERMISSION_NAMES } from "./plugin_permissions.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(PLUGIN_PERMISSION_NAMES.length, 8);
 * assert.ok(PLUGIN_PERMISSION_NAMES.includes("import"));
 * ```
 */
export const PLUGIN_PERMISSION_NAMES: readonly (keyof PluginPermissions)[] = Object.freeze([
  "read",
  "write",
  "net",
  "env",
  "run",
  "ffi",
  "sys",
  "import",
]);

/**
 * No permission at all: the default of every plugin.
 *
 * @example
 * ```ts
 * import { NO_PLUGIN_PERMISSIONS } from "./plugin_permissions.ts";
 * import assert from "node:assert/strict";
 *
 * assert.ok(Object.values(NO_PLUGIN_PERMISSIONS).every((grant) => grant === false));
 * ```
 */
export const NO_PLUGIN_PERMISSIONS: PluginPermissions = Object.freeze({
  read: false,
  write: false,
  net: false,
  env: false,
  run: false,
  ffi: false,
  sys: false,
  import: false,
});

/**
 * A complete Worker permission descriptor: all eight keys, each `false`, `true` or a list.
 * Assignable to `Deno.PermissionOptionsObject`.
 *
 * @example
 * ```ts
 * import { buildWorkerPermissions, type WorkerPermissionDescriptor } from "./plugin_permissions.ts";
 * import assert from "node:assert/strict";
 *
 * const descriptor: WorkerPermissionDescriptor = buildWorkerPermissions({});
 * assert.equal(descriptor.env, false);
 * ```
 */
export type WorkerPermissionDescriptor = {
  -readonly [K in keyof PluginPermissions]: boolean | string[];
};

/**
 * Options of {@linkcode buildWorkerPermissions}.
 *
 * @example
 * ```ts
 * import {
 *   buildPermissionFlags,
 *   buildWorkerPermissions,
 *   type WorkerPermissionOptions,
 * } from "./plugin_permissions.ts";
 * import assert from "node:assert/strict";
 *
 * // A plugin served over https may import from its own host, and only from there.
 * const options: WorkerPermissionOptions = { importHosts: ["plugins.example.com"] };
 * assert.deepEqual(buildWorkerPermissions({}, options).import, ["plugins.example.com"]);
 * assert.deepEqual(buildPermissionFlags({}, options), ["--allow-import=plugins.example.com"]);
 * ```
 */
export interface WorkerPermissionOptions {
  /**
   * Hosts (`host[:port]`) added to the `import` grant, so a plugin served over https can load
   * its own module.
   * @default {[]}
   */
  readonly importHosts?: readonly string[];
}

function checkGrant(name: string, grant: unknown): PermissionGrant {
  if (grant === "inherit") {
    throw new TypeError(
      `plugin permission ${name} cannot be "inherit": a plugin never inherits the cluster's ` +
        `permissions; grant true or a list`,
    );
  }
  if (typeof grant === "boolean") return grant;
  if (Array.isArray(grant)) {
    for (const item of grant) {
      if (typeof item !== "string" || item === "" || item.includes("\0")) {
        throw new TypeError(
          `plugin permission ${name} must list non-empty strings, got ${JSON.stringify(item)}`,
        );
      }
    }
    return grant as readonly string[];
  }
  throw new TypeError(
    `plugin permission ${name} must be true, false or a list of strings, got ${typeof grant}`,
  );
}

function descriptorValue(grant: PermissionGrant): boolean | string[] {
  if (typeof grant === "boolean") return grant;
  // An empty list grants nothing; say so plainly rather than rely on how Deno reads [].
  return grant.length === 0 ? false : [...grant];
}

/**
 * Builds a complete Worker permission descriptor: `false` for everything not granted.
 *
 * @param grants The plugin's grants (missing keys are `false`).
 * @param options Extra hosts for `import`.
 * @returns A new descriptor with all eight keys.
 * @throws {TypeError} On an unknown key, `"inherit"`, or a value that is not a boolean or a
 * list of non-empty strings.
 *
 * @example
 * ```ts
 * import { buildWorkerPermissions } from "./plugin_permissions.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(buildWorkerPermissions({ read: ["/srv/game/motd"] }), {
 *   read: ["/srv/game/motd"],
 *   write: false,
 *   net: false,
 *   env: false,
 *   run: false,
 *   ffi: false,
 *   sys: false,
 *   import: false,
 * });
 * assert.throws(() => buildWorkerPermissions({ net: "inherit" } as never), TypeError);
 * assert.throws(() => buildWorkerPermissions({ reed: true } as never), TypeError);
 * ```
 */
export function buildWorkerPermissions(
  grants: Partial<PluginPermissions>,
  options: WorkerPermissionOptions = {},
): WorkerPermissionDescriptor {
  if (typeof grants !== "object" || grants === null || Array.isArray(grants)) {
    throw new TypeError("plugin permissions must be a table of grants");
  }
  for (const key of Object.keys(grants)) {
    if (!(PLUGIN_PERMISSION_NAMES as readonly string[]).includes(key)) {
      throw new TypeError(
        `unknown plugin permission ${JSON.stringify(key)}; known: ${
          PLUGIN_PERMISSION_NAMES.join(", ")
        }`,
      );
    }
  }
  const out = {} as WorkerPermissionDescriptor;
  for (const name of PLUGIN_PERMISSION_NAMES) {
    out[name] = descriptorValue(checkGrant(name, grants[name] ?? false));
  }
  const hosts = options.importHosts ?? [];
  if (hosts.length > 0 && out.import !== true) {
    const list = out.import === false ? [] : out.import;
    for (const host of hosts) {
      checkGrant("import", [host]);
      if (!list.includes(host)) list.push(host);
    }
    out.import = list;
  }
  return out;
}

/**
 * The `deno run` permission flags of a plugin subprocess: `--allow-<name>` (with its list) for
 * each grant, nothing for the rest (with `--no-prompt`, anything not granted is denied), and
 * `--deny-import` unless `import` is granted, since `deno run` otherwise allows imports from a
 * default list of hosts.
 *
 * @param grants The plugin's grants (missing keys are `false`).
 * @param options Extra hosts for `import` (where the plugin's own module is served).
 * @returns The flags.
 * @throws {TypeError} As {@linkcode buildWorkerPermissions}, or if a listed value holds a
 * comma (the flag's separator).
 *
 * @example
 * ```ts
 * import { buildPermissionFlags } from "./plugin_permissions.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(buildPermissionFlags({}), ["--deny-import"]);
 * assert.deepEqual(buildPermissionFlags({ read: ["/srv/motd"], net: true }), [
 *   "--allow-read=/srv/motd",
 *   "--allow-net",
 *   "--deny-import",
 * ]);
 * assert.deepEqual(buildPermissionFlags({}, { importHosts: ["example.com"] }), [
 *   "--allow-import=example.com",
 * ]);
 * ```
 */
export function buildPermissionFlags(
  grants: Partial<PluginPermissions>,
  options: WorkerPermissionOptions = {},
): string[] {
  const descriptor = buildWorkerPermissions(grants, options);
  const flags: string[] = [];
  for (const name of PLUGIN_PERMISSION_NAMES) {
    const value = descriptor[name];
    if (value === true) flags.push(`--allow-${name}`);
    else if (Array.isArray(value)) {
      for (const item of value) {
        if (item.includes(",")) {
          throw new TypeError(
            `plugin permission ${name} cannot list ${JSON.stringify(item)}: a comma separates ` +
              `values of a deno flag`,
          );
        }
      }
      flags.push(`--allow-${name}=${value.join(",")}`);
    } else if (name === "import") flags.push("--deny-import");
  }
  return flags;
}
