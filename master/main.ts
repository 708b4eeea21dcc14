/**
 * Entry point of `deno task master`: reads the config (`--config <path>` and per-key flags),
 * sets up logging, starts the master, prints the ready line
 * `master listening on <host>:<port> status http://<host>:<port>/` (plus ` ws ws://…` when
 * `ws_enabled`), and stops gracefully on
 * SIGINT/SIGTERM. A bad config exits 2 naming the field; a port that cannot be bound exits 1.
 * Library code never imports this module.
 *
 * @module
 */

import { runServerMain } from "../shared/server_main.ts";
import { masterOptionsFromConfig } from "./master_options.ts";
import { startMaster } from "./start_master.ts";

await runServerMain("master", Deno.args, (config) => {
  const options = masterOptionsFromConfig(config);
  return {
    name: "master",
    where: `${options.hostname}:${options.port}`,
    start: () => startMaster(options),
  };
});
