/**
 * A cluster's status HTTP server: `/health`, `/metrics` (the cluster's counters and the
 * process's runtime metrics) and the operator console (players, fragments, plugins; kick,
 * notice, drain, plugin restart), behind the admin token. It reads the running cluster through
 * a {@linkcode ClusterStatusSource} and acts through the game room.
 *
 * It must never serve an operator action without the admin token (`AdminAuth`), and never show
 * a key, ticket or token.
 *
 * @module
 */

import { AdminAuth, loadAdminToken } from "../shared/admin_auth.ts";
import { roleLogger } from "../shared/logging.ts";
import { peerLabel } from "../shared/peer_label.ts";
import type { ClientId } from "../shared/plugin.ts";
import { gcMetricsRequested, RuntimeMetrics } from "../shared/runtime_metrics.ts";
import { startStatusServer, type StatusServer } from "../shared/status_server.ts";
import { exportMetricFamilies, recordSpan } from "../shared/telemetry.ts";
import type { FrameTransport } from "../shared/transport.ts";
import type { ClusterAddress } from "./client_listeners.ts";
import {
  ClusterConsole,
  type ClusterConsoleSource,
  type ConsolePlayer,
  MAX_PLAYER_ROWS,
} from "./cluster_console.ts";
import type { ClusterStatusOptions } from "./cluster_options.ts";
import type { GameRoom } from "./game_room.ts";
import type { MasterLinkState } from "./master_link.ts";
import type { ClusterMetrics } from "./metrics.ts";
import type { PlayerTable } from "./players.ts";
import { WorkerPluginHost } from "./worker_plugin_host.ts";

const logger = roleLogger("cluster");

/**
 * The plugin command an operator's notice reaches players on (docs/PROTOCOL.md, "Operator
 * notice"): payload = the notice in UTF-8.
 */
export const NOTICE_COMMAND = 0xff;

/**
 * What the status pages read from the running cluster.
 *
 * @example
 * ```ts
 * import type { ClusterStatusSource } from "./cluster_status.ts";
 * import assert from "node:assert/strict";
 *
 * const masterLink: ClusterStatusSource["masterLink"] = () => "disabled";
 * assert.equal(masterLink(), "disabled");
 * ```
 */
export interface ClusterStatusSource {
  /** The cluster's name. */
  readonly name: string;
  /** Most players at once (`max_connections`). */
  readonly capacity: number;
  /** When the cluster started (`performance.now()` ms). */
  readonly startedAt: number;
  /** The players and their connections. */
  readonly players: PlayerTable<FrameTransport>;
  /** The game room (plugins, fragments; kicks and notices go through it). */
  readonly room: GameRoom;
  /** The cluster's counters. */
  readonly metrics: ClusterMetrics;
  /** Open client connections, players or not. */
  connections(): number;
  /** When a connection was accepted (Unix ms), if it is open. */
  acceptedAt(connection: FrameTransport): number | undefined;
  /** The id of the latest registration, or null. */
  clusterId(): number | null;
  /** The master link's state. */
  masterLink(): MasterLinkState | "disabled";
  /** Whether the cluster is stopping. */
  stopping(): boolean;
  /** Whether new connections are refused by the operator's drain. */
  draining(): boolean;
  /** Starts or stops the operator's drain. */
  setDraining(on: boolean): void;
}

/**
 * The status server and operator console of one cluster (nothing when `status` is off).
 *
 * @example Health and metrics on an OS-picked port
 * ```ts
 * import { startCluster } from "./cluster_server.ts";
 * import assert from "node:assert/strict";
 *
 * const keysDir = await Deno.makeTempDir();
 * const cluster = await startCluster({ port: 0, keysDir, master: null, status: { port: 0 } });
 * const health = await fetch(`http://127.0.0.1:${cluster.statusAddr!.port}/health`);
 * assert.equal((await health.json()).role, "cluster");
 * await cluster.stop();
 * await Deno.remove(keysDir, { recursive: true });
 * ```
 */
export class ClusterStatus {
  readonly #options: ClusterStatusOptions | undefined;
  readonly #source: ClusterStatusSource;
  #auth: AdminAuth | undefined;
  #server: StatusServer | undefined;
  #runtime: RuntimeMetrics | undefined;
  #console: ClusterConsole | undefined;

  /**
   * Prepares the status pages (nothing listens until `start`).
   *
   * @param options The `status` option (undefined or false: no status server).
   * @param source What the pages read.
   */
  constructor(options: ClusterStatusOptions | false | undefined, source: ClusterStatusSource) {
    this.#options = options === false ? undefined : options;
    this.#source = source;
  }

  /** Where the status server listens, or null when there is none. */
  get addr(): ClusterAddress | null {
    return this.#server?.addr ?? null;
  }

  /**
   * Loads the admin token (before anything else starts, so a bad one fails the start early).
   *
   * @throws {Error} If the token or its file is unusable.
   */
  async loadAuth(): Promise<void> {
    const o = this.#options;
    if (o === undefined) return;
    this.#auth = await AdminAuth.create({
      token: await loadAdminToken(o.adminToken ?? null, o.adminTokenFile ?? null),
      consolePublic: o.consolePublic ?? true,
    });
  }

  /**
   * Starts the status server (after {@linkcode ClusterStatus.loadAuth}).
   *
   * @throws {Deno.errors.AddrInUse} (or another listen error) if its port cannot be bound.
   */
  start(): void {
    const o = this.#options;
    const auth = this.#auth;
    if (o === undefined || auth === undefined) return;
    const metrics = this.#source.metrics;
    const runtime = new RuntimeMetrics({ role: "cluster", gcMetrics: gcMetricsRequested() });
    this.#runtime = runtime;
    exportMetricFamilies(() => metrics.families());
    const page = new ClusterConsole(this.#consoleSource(), auth, logger);
    this.#console = page;
    this.#server = startStatusServer({
      hostname: o.hostname ?? "127.0.0.1",
      port: o.port,
      health: () => this.#health(),
      metrics: () => [...metrics.families(), ...runtime.families()],
      routes: page.routes,
    });
  }

  /** Closes the console and the status server and stops the runtime metrics. */
  async close(): Promise<void> {
    this.#console?.close();
    await this.#server?.close();
    this.#runtime?.stop();
  }

  #health(): Record<string, unknown> {
    const s = this.#source;
    return {
      status: s.stopping() ? "stopping" : "ok",
      role: "cluster",
      name: s.name,
      clusterId: s.clusterId(),
      masterLink: s.masterLink(),
      players: s.players.size,
      connections: s.connections(),
      plugins: s.room.plugins.map((host) => ({ name: host.name, state: host.state })),
      fragments: s.room.hasFragments ? [...s.room.fragmentStats() ?? []].length : null,
      uptimeS: Math.round((performance.now() - s.startedAt) / 1000),
    };
  }

  #consoleSource(): ClusterConsoleSource {
    const s = this.#source;
    const hosts = s.room.plugins;
    return {
      snapshot: () => {
        const now = Date.now();
        const rows: ConsolePlayer[] = [];
        for (const player of s.players.players()) {
          if (rows.length >= MAX_PLAYER_ROWS) break;
          const acceptedAt = s.acceptedAt(player.connection);
          const coords = s.room.fragmentCoordsOf(player.clientId);
          rows.push({
            clientId: player.clientId,
            playerId: player.playerId,
            address: peerLabel(player.connection.remoteAddr),
            connectedMs: acceptedAt === undefined ? 0 : now - acceptedAt,
            queuedBytes: player.connection.queuedBytes,
            fragment: coords === undefined ? null : `${coords.fx},${coords.fz}`,
          });
        }
        const stats = s.room.fragmentStats();
        const fragments = stats === undefined ? null : [...stats].map((f) => ({
          fx: f.fx,
          fz: f.fz,
          players: f.players,
          updateHz: f.updateHz,
          bytesOut: f.bytesOut,
        }));
        return {
          name: s.name,
          clusterId: s.clusterId(),
          masterLink: s.masterLink(),
          uptimeMs: performance.now() - s.startedAt,
          draining: s.draining(),
          players: s.players.size,
          capacity: s.capacity,
          playerRows: rows,
          fragments,
          plugins: hosts.map((host) => {
            const worker = host instanceof WorkerPluginHost ? host : undefined;
            const stats = worker?.stats;
            return {
              name: host.name,
              state: host.state,
              restarts: stats?.restarts ?? 0,
              failures: stats === undefined
                ? 0
                : Object.values(stats.failures).reduce((a, b) => a + b, 0),
              lastError: worker?.lastError ?? null,
              sandboxed: worker !== undefined,
            };
          }),
          tick: {
            p50Ms: s.metrics.tickSeconds.quantile(0.5) * 1000,
            p99Ms: s.metrics.tickSeconds.quantile(0.99) * 1000,
          },
          traffic: {
            bytesIn: s.metrics.total("bytesIn"),
            bytesOut: s.metrics.total("bytesOut"),
            framesIn: s.metrics.total("framesIn"),
            framesOut: s.metrics.total("framesOut"),
          },
          eventLoopLagMaxMs: (this.#runtime?.maxLagSeconds ?? 0) * 1000,
        };
      },
      kick: (clientId, reason) => {
        if (s.players.player(clientId as ClientId) === undefined) return false;
        s.room.kick(clientId as ClientId, reason);
        return true;
      },
      notice: (text) => {
        const payload = new TextEncoder().encode(text);
        const players = s.players.size;
        s.room.broadcast(NOTICE_COMMAND, payload, {});
        logger.info("operator notice sent to {players} player(s)", { players });
        return players;
      },
      drain: (on) => {
        s.setDraining(on);
        logger.warn(on ? "draining: new players are refused" : "draining stopped");
      },
      restartPlugin: (name) => {
        const host = hosts.find((h) => h.name === name);
        if (host === undefined) return "unknown";
        if (!(host instanceof WorkerPluginHost)) return "not_restartable";
        const restarted = host.restart();
        recordSpan("sustenet.plugin.restart", {
          "sustenet.plugin.name": name,
          "sustenet.plugin.restarted": restarted,
        }, Date.now());
        return restarted ? "ok" : "not_restartable";
      },
    };
  }
}
