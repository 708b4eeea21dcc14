/**
 * The cluster server: {@linkcode startCluster} loads the cluster's keys, starts its plugins,
 * listens for clients ({@linkcode ClientListeners}), keeps its listing at the master
 * ({@linkcode MasterListing}) and serves `/health`, `/metrics` and the console
 * ({@linkcode ClusterStatus}). This file is the wiring, the tick and the stop: each client
 * connection is taken from accept to cleanup by {@linkcode ClientAdmission} (pending pool,
 * handshake, rate limits, joins and leaves), authenticated players live in a
 * {@linkcode PlayerTable}, and their plugin commands and moves go to the {@linkcode GameRoom}
 * (plugins, fragments, plugin actions), which writes back through the {@linkcode PlayerOutbox}.
 *
 * It must never let one connection's bad input or one plugin's failure reach another player
 * (each bad input closes only its connection, with a logged reason), never leave a promise
 * without a handler, never close a player because the master went away, and never log a key,
 * ticket or session key.
 *
 * @module
 */

import { warnIfFfiUnavailable } from "../shared/create_record_cipher.ts";
import { roleLogger } from "../shared/logging.ts";
import { ErrorCode } from "../shared/protocol/protocol_error.ts";
import { importAesKey } from "../shared/security.ts";
import type { FrameTransport } from "../shared/transport.ts";
import { ClientAdmission } from "./client_admission.ts";
import type { ClientSessionOptions } from "./client_session.ts";
import { type ClusterOptions, type Settings, settingsOf } from "./cluster_options.ts";
import { loadClusterKey } from "./cluster_key.ts";
import { loadClusterIdentity } from "./cluster_identity.ts";
import { pluginHostsOf, startPluginHosts } from "./plugin_hosts.ts";
import { ClientListeners, type ClusterAddress } from "./client_listeners.ts";
import { ClusterStatus, NOTICE_COMMAND } from "./cluster_status.ts";
import { GameRoom } from "./game_room.ts";
import { MasterListing } from "./master_listing.ts";
import type { MasterLinkState } from "./master_link.ts";
import { ClusterMetrics } from "./metrics.ts";
import { PlayerOutbox } from "./player_outbox.ts";
import { PlayerTable, type PlayerView } from "./players.ts";
import { WorkerPluginHost } from "./worker_plugin_host.ts";

const logger = roleLogger("cluster");

export type { ClusterAddress };

/**
 * A running cluster, as {@linkcode startCluster} returns it.
 *
 * @example
 * ```ts
 * import { type ClusterServer, startCluster } from "./cluster_server.ts";
 * import assert from "node:assert/strict";
 *
 * const keysDir = await Deno.makeTempDir();
 * const cluster: ClusterServer = await startCluster({ port: 0, keysDir, master: null });
 * assert.equal(cluster.masterLinkState, "disabled");
 * await cluster.stop();
 * await Deno.remove(keysDir, { recursive: true });
 * ```
 */
export interface ClusterServer extends AsyncDisposable {
  /** Where clients connect. */
  readonly addr: ClusterAddress;
  /** Where the status HTTP server listens, or null when it is disabled. */
  readonly statusAddr: ClusterAddress | null;
  /** Where the TLS client listener is, or null when there is none (`tls` option). */
  readonly tlsAddr: ClusterAddress | null;
  /** The WebSocket listener (`ws://hostname:port/path`), or null when it is disabled. */
  readonly webSocketAddr:
    | (ClusterAddress & { readonly path: string; readonly scheme: "ws" | "wss" })
    | null;
  /** The id the master gave at the latest registration, or undefined before the first. */
  readonly clusterId: number | undefined;
  /** The authenticated players (read-only). */
  readonly players: PlayerView;
  /** The master link's state (`disabled` without a master). */
  readonly masterLinkState: MasterLinkState | "disabled";
  /**
   * Resolves with the cluster id once the master has accepted the first registration (clients
   * can be sent here from then on). Rejects with a `SustenetError` `not_registered` if the
   * cluster runs without a master (`master: null`) or stops before registering. Later
   * re-registrations (after the master comes back) do not change it: watch `clusterId`.
   *
   * @example
   * ```ts
   * import { startCluster } from "./cluster_server.ts";
   * import assert from "node:assert/strict";
   *
   * const keysDir = await Deno.makeTempDir();
   * const cluster = await startCluster({ port: 0, keysDir, master: null });
   * await assert.rejects(cluster.registered, /no master/);
   * await cluster.stop();
   * await Deno.remove(keysDir, { recursive: true });
   * ```
   */
  readonly registered: Promise<number>;
  /** The identity public key clients pin, and its version. */
  readonly identity: { readonly publicKey: Uint8Array; readonly version: number };
  /** The cluster's counters (also on `/metrics`). */
  readonly metrics: ClusterMetrics;
  /**
   * Stops: refuses new connections, sends DisconnectCluster(reason) to every player,
   * deregisters from the master, writes what is queued, stops the plugins. Idempotent.
   */
  stop(reason?: string): Promise<void>;
}

/**
 * Starts a cluster: keys, plugins, client listener, master link, status server.
 *
 * @param options Address, keys, master, limits, plugins, fragments; all optional.
 * @returns The running cluster.
 * @throws {PluginLoadError} If a plugin cannot be loaded (naming it); nothing is left running.
 * @throws {KeyError} If a key file is unusable.
 * @throws {RangeError} If an option is out of range (`plaintext` off loopback, a queue bound
 * below the frame bound, …).
 * @throws {Deno.errors.AddrInUse} (or another listen error) if the port cannot be bound.
 *
 * @example A standalone cluster with an in-process plugin
 * ```ts
 * import { startCluster } from "./cluster_server.ts";
 * import { definePlugin } from "../shared/plugin.ts";
 * import assert from "node:assert/strict";
 *
 * const keysDir = await Deno.makeTempDir();
 * const cluster = await startCluster({
 *   port: 0,
 *   keysDir,
 *   master: null,
 *   plugins: [definePlugin({ onMessage: (ctx, from, command, payload) => ctx.send(from, command, payload) })],
 * });
 * assert.ok(cluster.addr.port > 0);
 * assert.equal(cluster.players.size, 0);
 * assert.equal(cluster.identity.publicKey.length, 32);
 * await cluster.stop();
 * await Deno.remove(keysDir, { recursive: true });
 * ```
 */
export async function startCluster(options: ClusterOptions = {}): Promise<ClusterServer> {
  const runtime = new ClusterRuntime(options);
  await runtime.start();
  return runtime.server();
}

export { NOTICE_COMMAND };

/** The running cluster's state and wiring (one instance per startCluster). */
class ClusterRuntime {
  readonly #options: ClusterOptions;
  readonly #settings: Settings;
  readonly #startedAt = performance.now();
  readonly #players: PlayerTable<FrameTransport>;
  /** The players' connections as the game room writes to them. */
  readonly #outbox: PlayerOutbox;
  /** Plugins, fragments and the plugin actions. */
  readonly #room: GameRoom;
  /** The client connections, from accept to cleanup. */
  readonly #admission: ClientAdmission;
  readonly metrics: ClusterMetrics;
  #identity: { privateKey: CryptoKey; publicKey: Uint8Array; version: number } | undefined;
  #sessionOptions: Omit<ClientSessionOptions, "admit"> | undefined;
  readonly #listeners: ClientListeners;
  /** `/health`, `/metrics` and the operator console (when `status` is on). */
  readonly #status: ClusterStatus;
  /** An operator's drain: new connections are refused, players stay. */
  #draining = false;
  /** The registration with the master, and the ticket verifiers that follow from it. */
  readonly #link: MasterListing;
  #tickTimer: ReturnType<typeof setInterval> | undefined;
  #lastTick = 0;
  #stopping: Promise<void> | undefined;
  #closing = false;

  constructor(options: ClusterOptions) {
    this.#options = options;
    this.#settings = settingsOf(options);
    this.#players = new PlayerTable<FrameTransport>({
      maxPlayers: this.#settings.maxConnections,
    });
    this.#outbox = new PlayerOutbox({
      players: this.#players,
      broadcastFlushMs: this.#settings.broadcastFlushMs,
      kicking: (connection, reason) => this.#admission.leaving(connection, `kicked: ${reason}`),
    });
    const fragments = options.fragments;
    this.metrics = new ClusterMetrics({
      players: () => this.#players.size,
      connections: () => this.#admission.connections(),
      masterLinkState: () => this.#link.state,
      fragments: () => this.#room.fragmentStats(),
      pending: () => this.#admission.pendingSize,
      plugins: () =>
        this.#room.plugins.flatMap((host) => host instanceof WorkerPluginHost ? [host.stats] : []),
    });
    this.#link = new MasterListing({ noMaster: options.master === null, metrics: this.metrics });
    this.#room = new GameRoom({
      players: this.#players,
      outbox: this.#outbox,
      metrics: this.metrics,
      maxFrameBytes: this.#settings.maxFrameBytes,
      clock: () => performance.now(),
      ...(fragments === undefined || fragments === false
        ? {}
        : { fragments: { ...fragments, tickHz: this.#settings.tickHz } }),
    });
    this.#listeners = new ClientListeners({
      hostname: this.#settings.hostname,
      port: this.#settings.port,
      maxFrameBytes: this.#settings.maxFrameBytes,
      pendingMaxFrameBytes: this.#settings.maxPendingFrameBytes,
      maxQueueBytes: this.#settings.maxQueueBytes,
      handshakeTimeoutMs: options.handshakeTimeoutMs ?? 5000,
      idleTimeoutMs: options.idleTimeoutMs ?? 30_000,
      ...(options.tls === undefined ? {} : { tls: options.tls }),
      ...(options.webSocket === undefined ? {} : { webSocket: options.webSocket }),
      onConnection: (connection, tls) => this.#admission.accept(connection, tls),
      onWritten: (waitedMs) => this.metrics.writeDelay.observe(waitedMs / 1000),
    });
    this.#status = new ClusterStatus(options.status, {
      name: this.#settings.serverName,
      capacity: this.#settings.maxConnections,
      startedAt: this.#startedAt,
      players: this.#players,
      room: this.#room,
      metrics: this.metrics,
      connections: () => this.#admission.size,
      acceptedAt: (connection) => this.#admission.acceptedAt(connection),
      clusterId: () => this.#link.clusterId ?? null,
      masterLink: () => this.#link.state,
      stopping: () => this.#closing,
      draining: () => this.#draining,
      setDraining: (on) => this.#draining = on,
    });
    this.#admission = new ClientAdmission({
      players: this.#players,
      outbox: this.#outbox,
      room: this.#room,
      metrics: this.metrics,
      settings: this.#settings,
      sessionOptions: () => this.#sessionOptions!,
      closing: () => this.#closing,
      draining: () => this.#draining,
      clusterId: () => this.#link.clusterId,
    });
  }

  async start(): Promise<void> {
    const s = this.#settings;
    const clusterKey = await loadClusterKey(s.keysDir, s.keyName);
    const clusterAesKey = await importAesKey(clusterKey);
    const identity = await loadClusterIdentity(
      s.keysDir,
      s.identityKeyName,
      this.#options.domainPubKey ?? undefined,
    );
    this.#identity = identity;
    this.#sessionOptions = {
      serverName: s.serverName,
      identity,
      tickets: () => this.#link.verifier(),
      clusters: () => this.#link.selfInfo(this.#players.size, this.#players.full),
      plaintext: this.#options.plaintext === true,
    };
    await this.#status.loadAuth();
    try {
      for (const host of pluginHostsOf(this.#options, this.#room)) this.#room.addPlugin(host);
      await startPluginHosts(this.#room.plugins);
      this.#listeners.listen();
      this.#status.start();
    } catch (error) {
      await this.#teardown("start failed");
      throw error;
    }
    this.#startLink(clusterKey, clusterAesKey);
    if (this.#room.plugins.length > 0 || this.#room.hasFragments) {
      this.#lastTick = performance.now();
      this.#tickTimer = setInterval(this.#tick, 1000 / s.tickHz);
    }
    warnIfFfiUnavailable(logger);
    this.#listeners.logListening(s.serverName);
  }

  server(): ClusterServer {
    const identity = this.#identity!;
    // deno-lint-ignore no-this-alias
    const runtime = this;
    const stop = (reason?: string) => this.stop(reason);
    return {
      addr: this.#listeners.addr,
      statusAddr: this.#status.addr,
      tlsAddr: this.#listeners.tlsAddr,
      webSocketAddr: this.#listeners.webSocketAddr,
      get clusterId() {
        return runtime.#link.clusterId;
      },
      players: this.#players.view(),
      get masterLinkState() {
        return runtime.#link.state;
      },
      registered: this.#link.registered,
      identity: { publicKey: identity.publicKey, version: identity.version },
      metrics: this.metrics,
      stop,
      [Symbol.asyncDispose]: () => stop(),
    };
  }

  // ---------------------------------------------------------------- startup pieces

  #startLink(clusterKey: Uint8Array, clusterAesKey: CryptoKey): void {
    const s = this.#settings;
    const o = this.#options;
    const identity = this.#identity!;
    const endpoints = this.#listeners.endpoints;
    this.#link.start({
      master: o.master,
      ...(o.masters === undefined ? {} : { masters: o.masters }),
      name: s.serverName,
      keyName: s.keyName,
      clusterKey,
      clusterAesKey,
      identityPublicKey: identity.publicKey,
      announcement: {
        name: s.serverName,
        host: s.publicHost,
        port: this.#listeners.addr.port,
        maxConnections: s.maxConnections,
        keyVersion: identity.version,
        publicKey: identity.publicKey,
        ...(endpoints === undefined ? {} : { endpoints }),
      },
      load: () => this.#players.size,
      heartbeatIntervalMs: o.heartbeatIntervalMs ?? 1000,
      reconnectMinMs: o.reconnectMinMs ?? 500,
      reconnectMaxMs: o.reconnectMaxMs ?? 2000,
      handshakeTimeoutMs: o.handshakeTimeoutMs ?? 5000,
      maxFrameBytes: s.maxFrameBytes,
      plugins: () =>
        this.#room.plugins.map((host) => ({
          name: host.name,
          state: host.state,
          restarts: host instanceof WorkerPluginHost ? host.stats.restarts : 0,
        })),
      ...(o.statusPageUrl === undefined || o.statusPageUrl === null
        ? {}
        : { pageUrl: o.statusPageUrl }),
    });
  }

  readonly #tick = (): void => {
    // A timer callback that throws would take the process down: contain it here.
    try {
      const now = performance.now();
      const dtMs = Math.max(0, now - this.#lastTick);
      this.#lastTick = now;
      this.#room.tick(now, dtMs);
      this.#admission.drainLog(now);
      // Grid work, encoding and queueing; the socket writes themselves happen after.
      this.metrics.recordTick((performance.now() - now) / 1000);
    } catch (error) {
      logger.error("tick failed: {error}", { error });
    }
  };

  // ---------------------------------------------------------------- stopping

  stop(reason = "cluster shutting down"): Promise<void> {
    this.#stopping ??= this.#teardown(reason);
    return this.#stopping;
  }

  async #teardown(reason: string): Promise<void> {
    this.#closing = true;
    if (this.#tickTimer !== undefined) clearInterval(this.#tickTimer);
    this.#tickTimer = undefined;
    // Players first: they are told why, then their queues drain as the sockets close.
    this.#admission.disconnectPlayers(reason);
    const link = this.#link.stop(reason);
    const shuttingDown = { code: ErrorCode.ShuttingDown, message: reason };
    await this.#listeners.close(shuttingDown);
    await this.#admission.cleanedUp();
    await link;
    await this.#room.stopPlugins();
    // Plugins may have broadcast while stopping: nobody is left to take it, but no timer stays.
    this.#outbox.flush();
    this.#admission.stop();
    await this.#status.close();
    logger.info("cluster {name} stopped", { name: this.#settings.serverName });
  }
}
