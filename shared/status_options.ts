// This module is browser compatible.
/**
 * Where a game server's status HTTP server (`/health`, `/metrics`, the console) listens and who
 * may act on its console: one options shape for the master and the cluster, and the one reading
 * of it from Config.toml. Pure: it starts nothing (`startStatusServer` does).
 *
 * @module
 */
import { resolvedStatusPort } from "./config_schema.ts";
import type { GameServerRole, SustenetConfig } from "./config_types.ts";

/**
 * Where the status HTTP server listens, and its console's access.
 *
 * @example
 * ```ts
 * import type { StatusOptions } from "./status_options.ts";
 * import { startCluster } from "../cluster/cluster_server.ts";
 * import assert from "node:assert/strict";
 *
 * // A status server on a free port, for a load balancer's health check.
 * const status: StatusOptions = { port: 0 };
 * const keysDir = await Deno.makeTempDir();
 * const cluster = await startCluster({ port: 0, keysDir, master: null, status });
 * const health = await fetch(`http://127.0.0.1:${cluster.statusAddr?.port}/health`);
 * assert.equal(health.status, 200);
 * await cluster.stop();
 * await Deno.remove(keysDir, { recursive: true });
 * ```
 */
export interface StatusOptions {
  /**
   * Address to bind.
   *
   * @default {"127.0.0.1"}
   */
  readonly hostname?: string;
  /** Port; 0 lets the OS choose. */
  readonly port: number;
  /** Operator token for the console's actions (null/absent: actions answer 403). */
  readonly adminToken?: string | null;
  /** File whose first line is the operator token; read at start, wins over `adminToken`. */
  readonly adminTokenFile?: string | null;
  /**
   * Whether the read-only console is open without the token.
   *
   * @default {true}
   */
  readonly consolePublic?: boolean;
}

/**
 * The status options of `role` in a parsed config: `false` when `status_enabled` is off.
 *
 * @param config A parsed config.
 * @param role Whose status port to use (its default when `status_port` is 0).
 * @returns The options, or `false` for no status server.
 *
 * @example
 * ```ts
 * import { statusOptionsFromConfig } from "./status_options.ts";
 * import { parseConfig } from "./config_schema.ts";
 * import assert from "node:assert/strict";
 *
 * const config = parseConfig('[all]\nstatus_port = 7001\nconsole_public = false');
 * const status = statusOptionsFromConfig(config, "master");
 * assert.equal(status !== false && status.port, 7001);
 * assert.equal(status !== false && status.consolePublic, false);
 * ```
 */
export function statusOptionsFromConfig(
  config: SustenetConfig,
  role: GameServerRole,
): StatusOptions | false {
  const { all } = config;
  if (!all.statusEnabled) return false;
  return {
    hostname: all.statusIp,
    port: resolvedStatusPort(config, role),
    adminToken: all.adminToken,
    adminTokenFile: all.adminTokenFile,
    consolePublic: all.consolePublic,
  };
}
