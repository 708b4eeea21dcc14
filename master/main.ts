/**
 * Entry point of `deno task master`: reads the config (`--config <path>` and per-key flags),
 * sets up logging, starts the master, prints the ready line
 * `master listening on <host>:<port> status http://<host>:<port>/`, and stops gracefully on
 * SIGINT/SIGTERM. A bad config exits 2 naming the field; a port that cannot be bound exits 1.
 * Library code never imports this module.
 *
 * @module
 */

import { configFromArgs, exitOnConfigError, type SustenetConfig } from "../shared/config.ts";
import { setupLogging } from "../shared/logging.ts";
import { onShutdownSignal } from "../shared/shutdown_signals.ts";
import { masterOptionsFromConfig } from "./master_options.ts";
import { type MasterServer, startMaster } from "./start_master.ts";

let config: SustenetConfig;
try {
  config = await configFromArgs(Deno.args, "master");
} catch (error) {
  exitOnConfigError(error);
}

await setupLogging({ level: config.all.logLevel, role: "master" });

const options = masterOptionsFromConfig(config);
let master: MasterServer;
try {
  master = await startMaster(options);
} catch (error) {
  const where = `${options.hostname}:${options.port}`;
  console.error(
    `error: cannot start the master on ${where}: ${
      error instanceof Error ? error.message : String(error)
    }`,
  );
  Deno.exit(1);
}

onShutdownSignal(() => master.stop());
const { addr, statusAddr } = master;
const statusPart = statusAddr === null
  ? ""
  : ` status http://${statusAddr.hostname}:${statusAddr.port}/`;
console.log(`master listening on ${addr.hostname}:${addr.port}${statusPart}`);
