/**
 * The cluster under test: `deno run -A bench/cluster_server.ts --config <Config.toml> [flags]`
 * runs the real cluster exactly as `cluster/main.ts` does (`runServerMain` with
 * `startCluster(clusterOptionsFromConfig(config))`), plus two trusted in-process plugins: the
 * bench's relay (`bench/relay_plugin.ts`) and the example echo (`plugins/echo.ts`). Same ready
 * line, same graceful stop on SIGINT/SIGTERM.
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
    const plugins = [
      ...(options.plugins ?? []),
      { plugin: relay, name: "bench-relay" },
      { plugin: echo, name: "echo" },
    ];
    return {
      name: `cluster ${options.serverName}`,
      where: `${options.hostname}:${options.port}`,
      start: () => startCluster({ ...options, plugins }),
    };
  });
}
