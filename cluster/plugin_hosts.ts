/**
 * A cluster's plugin hosts from its options: trusted plugin objects run in-process, plugin
 * specs (Config.toml's `[[cluster.plugins]]`) in a sandbox; then started one by one, in order.
 *
 * It must never start a later plugin once one failed to start (the first failure is the one
 * reported), and never give a host anything but the actions it is made with.
 *
 * @module
 */

import { roleLogger } from "../shared/logging.ts";
import { inSpan } from "../shared/telemetry.ts";
import { type ClusterOptions, isPluginEntry } from "./cluster_options.ts";
import { InProcessPluginHost } from "./in_process_plugin_host.ts";
import type { PluginActions, PluginHost } from "./plugin_host.ts";
import { WorkerPluginHost } from "./worker_plugin_host.ts";

const logger = roleLogger("cluster");

/**
 * Makes the hosts of every configured plugin (not started): in-process ones first, in order,
 * then sandboxed ones.
 *
 * @param options The cluster's plugin options.
 * @param actions What the plugins act through (the game room).
 * @returns The hosts, in the order they are called.
 *
 * @example
 * ```ts
 * import { pluginHostsOf } from "./plugin_hosts.ts";
 * import { definePlugin } from "../shared/plugin.ts";
 * import assert from "node:assert/strict";
 *
 * const hosts = pluginHostsOf(
 *   { plugins: [definePlugin({}), { plugin: definePlugin({}), name: "chat" }] },
 *   { send() {}, broadcast() {}, kick() {} },
 * );
 * assert.deepEqual(hosts.map((h) => h.name), ["plugin-1", "chat"]);
 * ```
 */
export function pluginHostsOf(
  options: Pick<
    ClusterOptions,
    "plugins" | "pluginSpecs" | "pluginHostOptions" | "pluginWatchdogMs"
  >,
  actions: PluginActions,
): PluginHost[] {
  const hosts: PluginHost[] = (options.plugins ?? []).map((entry, index) => {
    const { plugin, name, settings } = isPluginEntry(entry)
      ? entry
      : { plugin: entry, name: undefined, settings: undefined };
    return new InProcessPluginHost(plugin, actions, {
      name: name ?? `plugin-${index + 1}`,
      ...(settings === undefined ? {} : { settings }),
    });
  });
  for (const spec of options.pluginSpecs ?? []) {
    hosts.push(
      new WorkerPluginHost(spec, actions, {
        ...options.pluginHostOptions,
        watchdogMs: options.pluginWatchdogMs ?? options.pluginHostOptions?.watchdogMs ?? 2000,
      }),
    );
  }
  return hosts;
}

/**
 * Starts hosts one after the other, each in a `sustenet.plugin.start` span.
 *
 * @param hosts The hosts, in order.
 * @throws {PluginLoadError} The first host that fails (later ones are not started).
 *
 * @example
 * ```ts
 * import { pluginHostsOf, startPluginHosts } from "./plugin_hosts.ts";
 * import { definePlugin } from "../shared/plugin.ts";
 * import assert from "node:assert/strict";
 *
 * const hosts = pluginHostsOf({ plugins: [definePlugin({})] }, {
 *   send() {},
 *   broadcast() {},
 *   kick() {},
 * });
 * await startPluginHosts(hosts);
 * assert.equal(hosts[0].state, "running");
 * await hosts[0].stop();
 * ```
 */
export async function startPluginHosts(hosts: readonly PluginHost[]): Promise<void> {
  // Sequential, so the first failure is the one reported and later plugins are not loaded.
  for (const host of hosts) {
    await inSpan("sustenet.plugin.start", {
      "sustenet.plugin.name": host.name,
      "sustenet.plugin.sandboxed": host instanceof WorkerPluginHost,
    }, () => host.start());
    logger.info("plugin {name} started", { name: host.name });
  }
}
