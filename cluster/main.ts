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

import { resolvedTlsPort } from "../shared/config_schema.ts";
import { runServerMain } from "../shared/server_main.ts";
import { clusterOptionsFromConfig } from "./cluster_options.ts";
import { startCluster } from "./cluster_server.ts";

await runServerMain("cluster", Deno.args, (config, tls) => {
  const port = resolvedTlsPort(config, "cluster");
  const options = {
    ...clusterOptionsFromConfig(config),
    ...(tls === null || port === null ? {} : { tls: { port, cert: tls.cert, key: tls.key } }),
  };
  return {
    name: `cluster ${options.serverName}`,
    where: `${options.hostname}:${options.port}`,
    start: () => startCluster(options),
  };
});
