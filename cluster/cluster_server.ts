/**
 * The cluster server: {@linkcode startCluster} loads the cluster's keys, starts its plugins,
 * listens for clients ({@linkcode ClientListeners}), keeps its listing at the master
 * ({@linkcode MasterListing}) and serves `/health`, `/metrics` and the console
 * ({@linkcode ClusterStatus}). It accepts connections and drives their handshake: each client
 * connection runs a {@linkcode ClientSession}, authenticated players live in a
 * {@linkcode PlayerTable}, their frames are weighed against their {@linkcode PlayerRateLimit}
 * before anything decodes them ({@linkcode FloodResponse} handles the rest), and their plugin
 * commands and moves go to the {@linkcode GameRoom} (plugins, fragments, plugin actions), which
 * writes back through the {@linkcode PlayerOutbox}.
 *
 * It must never let one connection's bad input or one plugin's failure reach another player
 * (each bad input closes only its connection, with a logged reason), never leave a promise
 * without a handler, never close a player because the master went away, and never log a key,
 * ticket or session key.
 *
 * @module
 */

import { warnIfFfiUnavailable } from "../shared/create_record_cipher.ts";
import { logSuccess, roleLogger } from "../shared/logging.ts";
import type { Frame } from "../shared/protocol/frame.ts";
import { ErrorCode } from "../shared/protocol/protocol_error.ts";
import type { ClientId } from "../shared/plugin.ts";
import { importAesKey } from "../shared/security.ts";
import { recordSpan } from "../shared/telemetry.ts";
import { PendingGate } from "../shared/pending_gate.ts";
import { broadcast, type CloseInfo, type FrameTransport } from "../shared/transport.ts";
import { peerLabel } from "../shared/peer_label.ts";
import { ClientSession, type ClientSessionOptions, type SessionEvent } from "./client_session.ts";
import { type ClusterOptions, type Settings, settingsOf } from "./cluster_options.ts";
import { loadClusterKey } from "./cluster_key.ts";
import { loadClusterIdentity } from "./cluster_identity.ts";
import { pluginHostsOf, startPluginHosts } from "./plugin_hosts.ts";
import { ClientListeners, type ClusterAddress } from "./client_listeners.ts";
import { ClusterStatus, NOTICE_COMMAND } from "./cluster_status.ts";
import { GameRoom } from "./game_room.ts";
import { MasterListing } from "./master_listing.ts";
import type { MasterLinkState } from "./master_link.ts";
import { driveMachine } from "../shared/drive_machine.ts";
import type { CloseAction } from "../shared/machine_action.ts";
import { ClusterMetrics } from "./metrics.ts";
import { FloodResponse } from "./flood_response.ts";
import { PlayerRateLimit } from "./player_rate_limit.ts";
import { PlayerOutbox } from "./player_outbox.ts";
import { PlayerTable, type PlayerView } from "./players.ts";
import { disconnectFrame } from "./disconnect_frame.ts";
import { WorkerPluginHost } from "./worker_plugin_host.ts";

const logger = roleLogger("cluster");

/**
 * How a broadcast's wait grows with the players it goes to, in ms per player, up to
 * `broadcast_flush_ms`: 1 ms at 50 players, 10 ms from 500. Batching saves one write per player
 * per hand-out, so this keeps a cluster's broadcast writes near 50 000 a second whatever its size,
 * and a small room's broadcasts nearly as prompt as with no batching.
 */
const BROADCAST_FLUSH_MS_PER_PLAYER = 0.02;

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

/** What the cluster keeps per accepted client connection. */
interface ConnectionRecord {
  readonly session: ClientSession;
  /** When it connected (Unix ms), for the console's "connected for". */
  readonly acceptedAt: number;
  /** Why the player is leaving, when the cluster decided it (kick, shutdown, protocol). */
  leaveReason: string | undefined;
  /** Settles once the close was cleaned up (player removed, plugins told). */
  cleanedUp: Promise<void> | undefined;
  /** The player's inbound limits, from its authentication on. */
  limit: PlayerRateLimit | undefined;
}

/** The running cluster's state and wiring (one instance per startCluster). */
class ClusterRuntime {
  readonly #options: ClusterOptions;
  readonly #settings: Settings;
  readonly #startedAt = performance.now();
  #turnTime = -1;
  readonly #endTurn = () => this.#turnTime = -1;
  readonly #players: PlayerTable<FrameTransport>;
  /** The players' connections as the game room writes to them. */
  readonly #outbox: PlayerOutbox;
  /** Plugins, fragments and the plugin actions. */
  readonly #room: GameRoom;
  readonly #connections = new Map<FrameTransport, ConnectionRecord>();
  /** Connections not authenticated yet: their own pool, so they never take a player's slot. */
  readonly #pending: PendingGate;
  readonly metrics: ClusterMetrics;
  /** What happens to the frames players' rate limits drop. */
  readonly #flood: FloodResponse;
  #clusterAesKey: CryptoKey | undefined;
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
      broadcast: {
        flushIntervalMs: this.#settings.broadcastFlushMs,
        flushMsPerMember: BROADCAST_FLUSH_MS_PER_PLAYER,
      },
      kicking: (connection, reason) => {
        const record = this.#connections.get(connection);
        if (record !== undefined) record.leaveReason = `kicked: ${reason}`;
      },
    });
    const fragments = options.fragments;
    this.metrics = new ClusterMetrics({
      players: () => this.#players.size,
      connections: () => this.#connections.keys(),
      masterLinkState: () => this.#link.state,
      fragments: () => this.#room.fragmentStats(),
      pending: () => this.#pending.size,
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
      onConnection: (connection, tls) => this.#accept(connection, tls),
    });
    this.#status = new ClusterStatus(options.status, {
      name: this.#settings.serverName,
      capacity: this.#settings.maxConnections,
      startedAt: this.#startedAt,
      players: this.#players,
      room: this.#room,
      metrics: this.metrics,
      connections: () => this.#connections.size,
      acceptedAt: (connection) => this.#connections.get(connection)?.acceptedAt,
      clusterId: () => this.#link.clusterId ?? null,
      masterLink: () => this.#link.state,
      stopping: () => this.#closing,
      draining: () => this.#draining,
      setDraining: (on) => this.#draining = on,
    });
    this.#flood = new FloodResponse({ metrics: this.metrics, players: this.#players });
    this.#pending = new PendingGate({
      maxPending: this.#settings.maxPendingConnections,
      maxPerAddress: this.#settings.maxPendingPerAddress,
      metrics: this.metrics.preAuth,
      logger,
    });
  }

  async start(): Promise<void> {
    const s = this.#settings;
    const clusterKey = await loadClusterKey(s.keysDir, s.keyName);
    this.#clusterAesKey = await importAesKey(clusterKey);
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
    this.#startLink(clusterKey);
    if (this.#room.plugins.length > 0 || this.#room.hasFragments) {
      this.#lastTick = performance.now();
      this.#tickTimer = setInterval(this.#tick, 1000 / s.tickHz);
    }
    const addr = this.#listeners.addr;
    warnIfFfiUnavailable(logger);
    logSuccess(logger, "cluster {name} listening on {host}:{port}", {
      name: s.serverName,
      host: addr.hostname,
      port: addr.port,
    });
    const ws = this.#listeners.webSocketAddr;
    if (ws !== null) {
      logger.info("cluster {name} WebSocket on {scheme}://{host}:{port}{path}", {
        name: s.serverName,
        scheme: ws.scheme,
        host: ws.hostname,
        port: ws.port,
        path: ws.path,
      });
    }
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

  #startLink(clusterKey: Uint8Array): void {
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
      clusterAesKey: this.#clusterAesKey!,
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

  // ---------------------------------------------------------------- client connections

  #accept(connection: FrameTransport, tls: boolean): void {
    if (this.#closing || this.#draining) {
      this.metrics.connectionsRefused.inc();
      connection.close({
        code: ErrorCode.ShuttingDown,
        message: this.#closing ? "cluster shutting down" : "cluster draining: no new players",
      });
      return;
    }
    // max_connections counts players, checked when a ticket is accepted (PlayerTable); a new
    // connection only needs a pending slot.
    if (!this.#pending.accept(connection)) return;
    this.metrics.connectionsAccepted.inc();
    const session = new ClientSession({
      ...this.#sessionOptions!,
      tls,
      admit: (claims) => {
        const player = this.#players.add(claims.playerId, connection);
        if (player !== undefined) this.#outbox.join(connection);
        return player?.clientId;
      },
    });
    const record: ConnectionRecord = {
      session,
      acceptedAt: Date.now(),
      leaveReason: undefined,
      cleanedUp: undefined,
      limit: undefined,
    };
    this.#connections.set(connection, record);
    record.cleanedUp = connection.closed.then((info) => this.#closed(connection, record, info))
      .catch((error: unknown) => {
        logger.error("cleaning up after {remote} failed: {error}", {
          remote: peerLabel(connection.remoteAddr),
          error,
        });
      });
    driveMachine(connection, session, {
      now: this.#turnNow,
      admit: (frame) => this.#admitFrame(frame, connection, record),
      onEvent: (event) => this.#sessionEvent(event, connection, record),
      onClose: (action) => this.#sessionClose(action, connection, record),
      onDeriveError: (error) => {
        logger.error("handshake step failed for {remote}: {error}", {
          remote: peerLabel(connection.remoteAddr),
          error,
        });
      },
    });
  }

  // The time of this turn of the event loop, read once per turn rather than once per frame (a
  // clock read per frame was 4-7 % of the cluster's CPU under echo load); a rate limit is
  // none the worse for a clock that is a turn old.
  readonly #turnNow = (): number => {
    if (this.#turnTime < 0) {
      this.#turnTime = performance.now();
      queueMicrotask(this.#endTurn);
    }
    return this.#turnTime;
  };

  /**
   * Weighs an authenticated player's frame before it is even decoded: a flood is dropped here,
   * before any plugin, fragment or broadcast sees it.
   */
  #admitFrame(frame: Frame, connection: FrameTransport, record: ConnectionRecord): boolean {
    const limit = record.limit;
    if (limit === undefined) return true;
    const bytes = frame.payload.length + 1;
    const now = this.#turnNow();
    const verdict = limit.admit(frame.type, bytes, now);
    if (verdict === "pass") return true;
    this.#flood.dropped(verdict, bytes, now, connection, record, limit);
    return false;
  }

  #sessionEvent(event: SessionEvent, connection: FrameTransport, record: ConnectionRecord): void {
    switch (event.type) {
      case "authenticated":
        record.limit = new PlayerRateLimit(this.#settings.playerRateLimits);
        this.#joined(connection, event.clientId);
        recordSpan("sustenet.cluster.admission", {
          "sustenet.admission.status": 20,
          "sustenet.cluster.id": this.#link?.clusterId ?? 0,
          "sustenet.client.id": event.clientId,
          "sustenet.player.id": this.#players.get(event.clientId)?.playerId ?? "",
          "net.peer.address": peerLabel(connection.remoteAddr),
        }, record.acceptedAt);
        return;
      case "refused":
        this.metrics.authResult(event.status);
        recordSpan(
          "sustenet.cluster.admission",
          {
            "sustenet.admission.status": event.status,
            "sustenet.cluster.id": this.#link?.clusterId ?? 0,
            "net.peer.address": peerLabel(connection.remoteAddr),
          },
          record.acceptedAt,
          event.reason,
        );
        return;
      case "plugin":
        this.#room.message(record.session.clientId as ClientId, event.command, event.payload);
        return;
      case "move":
        this.#room.move(record.session.clientId as ClientId, event.state, performance.now());
        return;
    }
  }

  #sessionClose(action: CloseAction, connection: FrameTransport, record: ConnectionRecord): void {
    // Bad input before authentication is counted and logged rate-limited by the gate.
    if (this.#pending.isPending(connection) && isBadInput(action.code)) {
      logger.debug("closing {remote}: {reason}", {
        remote: peerLabel(connection.remoteAddr),
        reason: action.reason,
      });
    } else {
      logClose(connection, action);
    }
    record.leaveReason ??= action.reason;
  }

  #joined(connection: FrameTransport, clientId: number): void {
    connection.markEstablished();
    // Out of the pending pool, and full frame and record bounds from the next byte on.
    this.#pending.authenticated(connection);
    this.metrics.authResult(20);
    const player = this.#players.player(clientId);
    if (player === undefined) return;
    logger.info("player {playerId} joined as client {clientId} from {remote}", {
      playerId: player.playerId,
      clientId,
      remote: peerLabel(connection.remoteAddr),
    });
    this.#room.join(player.info);
  }

  #closed(connection: FrameTransport, record: ConnectionRecord, info: CloseInfo): void {
    this.#connections.delete(connection);
    this.metrics.connectionClosed(connection);
    if (info.code === ErrorCode.SlowConsumer) this.metrics.slowConsumers.inc();
    const clientId = record.session.clientId;
    if (!record.session.closed()) return;
    const player = this.#players.remove(clientId);
    if (player === undefined) return;
    this.#outbox.leave(connection);
    const reason = record.leaveReason ?? info.reason;
    logger.info("player {playerId} (client {clientId}) left: {reason}", {
      playerId: player.playerId,
      clientId,
      reason,
    });
    this.#room.leave(player.info, reason);
  }

  readonly #tick = (): void => {
    // A timer callback that throws would take the process down: contain it here.
    try {
      const now = performance.now();
      const dtMs = Math.max(0, now - this.#lastTick);
      this.#lastTick = now;
      this.#room.tick(now, dtMs);
      this.#flood.drainLog(now);
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
    const players = [...this.#players.players()];
    if (players.length > 0) {
      broadcast(this.#players.connections, disconnectFrame(reason));
      for (const player of players) {
        const record = this.#connections.get(player.connection);
        if (record !== undefined) record.leaveReason = reason;
        player.connection.close();
      }
    }
    const link = this.#link.stop(reason);
    const shuttingDown = { code: ErrorCode.ShuttingDown, message: reason };
    await this.#listeners.close(shuttingDown);
    await Promise.all([...this.#connections.values()].map((r) => r.cleanedUp));
    await link;
    await this.#room.stopPlugins();
    // Plugins may have broadcast while stopping: nobody is left to take it, but no timer stays.
    this.#outbox.flush();
    this.#flood.drainLog(Infinity);
    await this.#status.close();
    this.#pending.stop();
    logger.info("cluster {name} stopped", { name: this.#settings.serverName });
  }
}

/** Whether an Error code blames the peer's input (BadHello .. UnexpectedPacket). */
function isBadInput(code: number | undefined): boolean {
  return code !== undefined && code >= ErrorCode.BadHello && code <= ErrorCode.UnexpectedPacket;
}

/** The LogTape method of each close level. */
const LOG_METHOD = { debug: "debug", info: "info", warning: "warn", error: "error" } as const;

function logClose(connection: FrameTransport, action: CloseAction): void {
  logger[LOG_METHOD[action.level ?? "warning"]]("closing {remote}: {reason}", {
    remote: peerLabel(connection.remoteAddr),
    reason: action.reason,
  });
}
