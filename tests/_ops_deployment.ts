/**
 * A master process and cluster processes (echo plugin, status servers on free ports, an admin
 * token file) plus in-process bots that joined them: the setup of the observability tests
 * (promtool, console in a browser). Never used by library code.
 *
 * @module
 */
import { Deployment, freePort, REPO_ROOT, type RoleProcess, waitForClusters } from "./_process.ts";
import { SustenetClient } from "../client/mod.ts";
import type { ClusterSession } from "../client/mod.ts";

/** The operator token every process of an {@linkcode OpsDeployment} reads from its file. */
export const ADMIN_TOKEN = "test-admin-token-0123456789";

/** One running cluster process. */
export interface OpsCluster {
  readonly name: string;
  readonly process: RoleProcess;
  readonly port: number;
  readonly statusUrl: string;
}

/** A bot that joined a cluster. */
export interface OpsBot {
  readonly client: SustenetClient;
  readonly session: ClusterSession;
}

/** Master + clusters + bots; disposing closes the bots and stops the processes. */
export class OpsDeployment implements AsyncDisposable {
  readonly bots: OpsBot[] = [];
  readonly clusters: OpsCluster[] = [];
  masterPort = 0;
  masterStatusUrl = "";

  private constructor(readonly deployment: Deployment) {}

  /**
   * Starts a master and one cluster per name (clusters' `max_connections` = `capacity`).
   * `extraAll` is appended to every `[all]` section.
   */
  static async start(
    clusterNames: readonly string[],
    options: {
      capacity?: number;
      extraAll?: string;
      env?: Record<string, string>;
      logLevel?: string;
    } = {},
  ): Promise<OpsDeployment> {
    const deployment = await Deployment.create("sustenet_ops_", options.env);
    const ops = new OpsDeployment(deployment);
    try {
      await Deno.writeTextFile(`${deployment.dir}/admin_token`, `${ADMIN_TOKEN}\n`, {
        mode: 0o600,
      });
      ops.masterPort = await freePort();
      const masterStatus = await freePort();
      const common = `keys_dir = "keys"\nadmin_token_file = "admin_token"\n` +
        `log_level = "${options.logLevel ?? "warning"}"\n${options.extraAll ?? ""}`;
      await deployment.start(
        "master",
        "master",
        `[all]\nport = ${ops.masterPort}\nstatus_port = ${masterStatus}\n${common}` +
          `[master]\nheartbeat_timeout_ms = 3000\n` +
          // Every bot joins from 127.0.0.1: the per-address join limits are for real networks
          // (with the defaults, 9 quick joins can meet reservations_per_addr = 8).
          `ticket_rate_per_addr = 1000\nticket_burst_per_addr = 1000\nreservations_per_addr = 1000\n`,
        /^master listening on /,
      );
      ops.masterStatusUrl = `http://127.0.0.1:${masterStatus}`;
      for (const [i, name] of clusterNames.entries()) {
        const port = await freePort();
        const status = await freePort();
        const process = await deployment.start(
          "cluster",
          `cluster${i}`,
          `[all]\nserver_name = ${JSON.stringify(name)}\nport = ${port}\n` +
            `status_port = ${status}\nmax_connections = ${options.capacity ?? 0}\n${common}` +
            `[cluster]\nmaster_port = ${ops.masterPort}\nheartbeat_interval_ms = 200\n` +
            `status_page_url = "http://127.0.0.1:${status}/"\n` +
            `[[cluster.plugins]]\nurl = "${REPO_ROOT}plugins/echo.ts"\n`,
          /^cluster .* listening on /,
        );
        ops.clusters.push({ name, process, port, statusUrl: `http://127.0.0.1:${status}` });
      }
      await ops.waitRegistered(clusterNames.length);
    } catch (error) {
      await deployment[Symbol.asyncDispose]();
      throw error;
    }
    return ops;
  }

  /** Waits (60 s at most) until the master lists `count` clusters. */
  async waitRegistered(count: number): Promise<void> {
    await waitForClusters(this.masterPort, count);
  }

  /** Joins `count` bots to cluster `clusterIndex` (through the master, as a game would). */
  async joinBots(count: number, clusterIndex: number): Promise<OpsBot[]> {
    const observer = await SustenetClient.connect({ port: this.masterPort });
    const listed = await observer.listClusters();
    await observer.close();
    const target = listed.find((c) => c.port === this.clusters[clusterIndex].port);
    if (target === undefined) throw new Error(`cluster ${clusterIndex} is not listed`);
    const joined: OpsBot[] = [];
    for (let i = 0; i < count; i++) {
      const client = await SustenetClient.connect({
        port: this.masterPort,
        reconnect: { enabled: false },
      });
      const session = await client.join(target.id);
      const bot = { client, session };
      this.bots.push(bot);
      joined.push(bot);
    }
    return joined;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    for (const bot of this.bots) {
      await bot.session.close().catch(() => {});
      await bot.client.close().catch(() => {});
    }
    await this.deployment[Symbol.asyncDispose]();
  }
}

/** Fetches a status server's `/metrics` text. */
export async function scrape(statusUrl: string): Promise<string> {
  const response = await fetch(`${statusUrl}/metrics`);
  if (response.status !== 200) throw new Error(`/metrics answered ${response.status}`);
  return await response.text();
}

/** Runs `promtool check metrics` on a `/metrics` text: its exit code and output. */
export async function promtool(text: string): Promise<{ code: number; output: string }> {
  const child = new Deno.Command("promtool", {
    args: ["check", "metrics"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(text));
  await writer.close();
  const out = await child.output();
  const decoder = new TextDecoder();
  return { code: out.code, output: decoder.decode(out.stdout) + decoder.decode(out.stderr) };
}

/** The value of one sample line (`name{labels} value`), or undefined. */
export function sampleValue(text: string, series: string): number | undefined {
  for (const line of text.split("\n")) {
    if (line.startsWith(series + " ")) return Number(line.slice(series.length + 1));
  }
  return undefined;
}
