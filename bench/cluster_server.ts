/**
 * The cluster under test: `deno run -A bench/cluster_server.ts --config <Config.toml> [flags]`
 * runs the real cluster exactly as `cluster/main.ts` does (`runServerMain` with
 * `startCluster(clusterOptionsFromConfig(config))`), plus two trusted in-process plugins: the
 * bench's relay (`bench/relay_plugin.ts`) and the example echo (`plugins/echo.ts`). Same ready
 * line, same graceful stop on SIGINT/SIGTERM.
 *
 * When the config already loads a plugin named `echo` by URL (`[[cluster.plugins]]`, a Worker
 * sandbox), the in-process echo is left out, so the bench measures the sandboxed echo and no
 * echo request is ever answered twice.
 *
 * It exists only so the benchmark measures the zero-overhead in-process plugin path; it must
 * never differ from `cluster/main.ts` in anything else.
 *
 * @module
 */

import { runServerMain } from "../shared/server_main.ts";
import { clusterOptionsFromConfig, startCluster } from "../cluster/mod.ts";
import relay from "./relay_plugin.ts";
import echo from "../plugins/echo.ts";

if (import.meta.main) {
  await runServerMain("cluster", Deno.args, (config) => {
    const options = clusterOptionsFromConfig(config);
    const sandboxedEcho = (options.pluginSpecs ?? []).some((spec) => spec.name === "echo");
    const plugins = [
      ...(options.plugins ?? []),
      { plugin: relay, name: "bench-relay" },
      ...(sandboxedEcho ? [] : [{ plugin: echo, name: "echo" }]),
    ];
    return {
      name: `cluster ${options.serverName}`,
      where: `${options.hostname}:${options.port}`,
      start: () => startCluster({ ...options, plugins }),
    };
  });
}
