/**
 * Entry point of `deno task cluster`: reads the config (`--config <path>` and per-key flags),
 * sets up logging, starts the cluster, prints the ready line
 * `cluster <name> listening on <host>:<port> status http://<host>:<port>/`, and stops
 * gracefully on SIGINT/SIGTERM. A bad config exits 2 naming the field; a plugin that cannot be
 * loaded, an unusable key or a port that cannot be bound exits 1 with the reason. Library code
 * never imports this module.
 *
 * @module
 */

import { configFromArgs, exitOnConfigError, type SustenetConfig } from "../shared/config.ts";
import { setupLogging } from "../shared/logging.ts";
import { onShutdownSignal } from "../shared/shutdown_signals.ts";
import { clusterOptionsFromConfig, type ClusterServer, startCluster } from "./cluster_server.ts";

let config: SustenetConfig;
try {
  config = await configFromArgs(Deno.args, "cluster");
} catch (error) {
  exitOnConfigError(error);
}

await setupLogging({ level: config.all.logLevel, role: "cluster" });

const options = clusterOptionsFromConfig(config);
let cluster: ClusterServer;
try {
  cluster = await startCluster(options);
} catch (error) {
  const where = `${options.hostname}:${options.port}`;
  console.error(
    `error: cannot start cluster ${options.serverName} on ${where}: ${
      error instanceof Error ? error.message : String(error)
    }`,
  );
  Deno.exit(1);
}

onShutdownSignal(() => cluster.stop());
const { addr, statusAddr } = cluster;
const statusPart = statusAddr === null
  ? ""
  : ` status http://${statusAddr.hostname}:${statusAddr.port}/`;
console.log(
  `cluster ${options.serverName} listening on ${addr.hostname}:${addr.port}${statusPart}`,
);
