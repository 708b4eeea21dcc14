/**
 * The shared body of the server entry points (`master/main.ts`, `cluster/main.ts`): read the
 * config from the command line (or print `--help`), set up logging, start the server, print the one ready line
 * tests and operators wait for, and stop gracefully on SIGINT/SIGTERM. A bad config exits 2
 * naming the field; a server that cannot start exits 1 with the reason. Library code never
 * imports this module (it installs signal handlers and may exit the process).
 *
 * @module
 */
import {
  configFromArgs,
  exitOnConfigError,
  type Role,
  serverHelp,
  type SustenetConfig,
} from "./config.ts";
import { setupLogging } from "./logging.ts";
import { onShutdownSignal } from "./shutdown_signals.ts";

/** What a started server exposes to its entry point. */
export interface RunningServer {
  /** The bound game port. */
  readonly addr: { readonly hostname: string; readonly port: number };
  /** The bound status HTTP port, or null when status is off. */
  readonly statusAddr: { readonly hostname: string; readonly port: number } | null;
  /** The WebSocket listener, or null when it is off. */
  readonly webSocketAddr?: {
    readonly hostname: string;
    readonly port: number;
    readonly path: string;
  } | null;
  /** Graceful stop. */
  stop(): Promise<void>;
}

/** How {@linkcode runServerMain} starts one role's server. */
export interface ServerLaunch<S extends RunningServer> {
  /** How the server is named in the ready and error lines, e.g. `master`, `cluster eu-1`. */
  readonly name: string;
  /** The address it will bind, for the error line. */
  readonly where: string;
  /** Starts it. */
  start(): Promise<S>;
}

/**
 * Runs a role's entry point and returns the started server.
 *
 * @param role Which config sections apply.
 * @param args The command line (`Deno.args`).
 * @param launch Builds the launch from the validated config.
 *
 * @example Type-only: entry points call it at top level
 * ```ts
 * import { runServerMain } from "./server_main.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(typeof runServerMain, "function");
 * ```
 */
export async function runServerMain<S extends RunningServer>(
  role: Role,
  args: readonly string[],
  launch: (config: SustenetConfig) => ServerLaunch<S>,
): Promise<S> {
  if (args.includes("--help") || args.includes("-h")) {
    console.log(serverHelp(role));
    Deno.exit(0);
  }
  let config: SustenetConfig;
  try {
    config = await configFromArgs([...args], role);
  } catch (error) {
    exitOnConfigError(error);
  }
  await setupLogging({ level: config.all.logLevel, role });
  const plan = launch(config);
  let server: S;
  try {
    server = await plan.start();
  } catch (error) {
    console.error(
      `error: cannot start ${plan.name} on ${plan.where}: ${
        error instanceof Error ? error.message : String(error)
      }`,
    );
    Deno.exit(1);
  }
  onShutdownSignal(() => server.stop());
  const { addr, statusAddr } = server;
  const statusPart = statusAddr === null
    ? ""
    : ` status http://${statusAddr.hostname}:${statusAddr.port}/`;
  const ws = server.webSocketAddr;
  // Appended only when enabled, so the line stays the same for TCP-only servers.
  const wsPart = ws === undefined || ws === null
    ? ""
    : ` ws ws://${ws.hostname}:${ws.port}${ws.path}`;
  console.log(`${plan.name} listening on ${addr.hostname}:${addr.port}${statusPart}${wsPart}`);
  return server;
}
