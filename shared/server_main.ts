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
  serverHelp,
  type ServerRole,
  type SustenetConfig,
} from "./config.ts";
import { ConfigError } from "./config_types.ts";
import { setupLogging } from "./logging.ts";
import { loadTlsCredentials, type TlsCredentials, TlsCredentialsError } from "./tls_credentials.ts";
import { onShutdownSignal } from "./shutdown_signals.ts";

/** What a started server exposes to its entry point. */
export interface RunningServer {
  /** The bound game port. */
  readonly addr: { readonly hostname: string; readonly port: number };
  /** The bound status HTTP port, or null when status is off. */
  readonly statusAddr: { readonly hostname: string; readonly port: number } | null;
  /** The bound TLS port, or null / absent when TLS is off. */
  readonly tlsAddr?: { readonly hostname: string; readonly port: number } | null;
  /** The WebSocket listener, or null when it is off. */
  readonly webSocketAddr?: {
    readonly hostname: string;
    readonly port: number;
    readonly path: string;
    /** `"wss"` when it speaks TLS; absent = `"ws"`. */
    readonly scheme?: "ws" | "wss";
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
  role: ServerRole,
  args: readonly string[],
  launch: (config: SustenetConfig, tls: TlsCredentials | null) => ServerLaunch<S>,
): Promise<S> {
  if (args.includes("--help") || args.includes("-h")) {
    console.log(serverHelp(role));
    Deno.exit(0);
  }
  let config: SustenetConfig;
  let tls: TlsCredentials | null = null;
  try {
    config = await configFromArgs([...args], role);
    if (config.all.tlsCert !== "") {
      // Checked before anything listens: an unusable certificate is a config error (exit 2).
      tls = await loadTlsCredentials(config.all.tlsCert, config.all.tlsKey).catch((error) => {
        if (!(error instanceof TlsCredentialsError)) throw error;
        throw new ConfigError("config_invalid", error.message, {
          file: config.file,
          field: error.field,
          cause: error,
        });
      });
    }
  } catch (error) {
    exitOnConfigError(error);
  }
  await setupLogging({ level: config.all.logLevel, role, format: config.all.logFormat });
  const plan = launch(config, tls);
  let server: S;
  try {
    server = await plan.start();
  } catch (error) {
    console.error(
      `error: cannot start ${plan.name} on ${plan.where}: ${
        error instanceof Error ? error.message : String(error)
      }`,
    );
    // A start failure that is the configuration's fault (e.g. an unreachable redis_url)
    // carries exitCode 2, like a bad config value.
    const exitCode = (error as { exitCode?: unknown } | null)?.exitCode;
    Deno.exit(exitCode === 2 ? 2 : 1);
  }
  onShutdownSignal(() => server.stop());
  const { addr, statusAddr, tlsAddr } = server;
  const statusPart = statusAddr === null
    ? ""
    : ` status http://${statusAddr.hostname}:${statusAddr.port}/`;
  const tlsPart = tlsAddr === undefined || tlsAddr === null
    ? ""
    : ` tls ${tlsAddr.hostname}:${tlsAddr.port}`;
  const ws = server.webSocketAddr;
  // Appended only when enabled, so the line stays the same for TCP-only servers.
  const wsPart = ws === undefined || ws === null
    ? ""
    : ` ws ${ws.scheme ?? "ws"}://${ws.hostname}:${ws.port}${ws.path}`;
  // A cluster's live page (`ws_page`), on the WebSocket port: the URL to open.
  const pagePart = ws === undefined || ws === null || role !== "cluster" || !config.cluster.wsPage
    ? ""
    : ` page ${ws.scheme === "wss" ? "https" : "http"}://${ws.hostname}:${ws.port}/`;
  console.log(
    `${plan.name} listening on ${addr.hostname}:${addr.port}${statusPart}${tlsPart}${wsPart}` +
      pagePart,
  );
  return server;
}
