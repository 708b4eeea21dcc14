/**
 * The cluster server: {@linkcode startCluster} loads the cluster's keys, starts its plugins,
 * listens for clients, keeps the master link up and serves `/health` and `/metrics`. It is the
 * socket adapter around the sans-I/O pieces: each client connection runs a
 * {@linkcode ClientSession}, authenticated players live in a {@linkcode PlayerTable}, their
 * frames are weighed against their {@linkcode PlayerRateLimit} before anything decodes them, and
 * their game packets go to the plugin hosts and (with fragments on) the {@linkcode FragmentGrid},
 * whose tick results go back out as MoveBatch / Spawn / Despawn.
 *
 * It must never let one connection's bad input or one plugin's failure reach another player
 * (each bad input closes only its connection, with a logged reason), never leave a promise
 * without a handler, never close a player because the master went away, and never log a key,
 * ticket or session key.
 *
 * @module
 */

import { warnIfFfiUnavailable } from "../shared/create_record_cipher.ts";
import { TicketVerifier } from "../shared/join_ticket.ts";
import { generateKey, keyPath, loadKey, loadOrCreateIdentity } from "../shared/keys.ts";
import { logSuccess, roleLogger } from "../shared/logging.ts";
import {
  assertPluginCommand,
  decodePacket,
  encodePacket,
  encodePluginFrame,
} from "../shared/protocol/codec.ts";
import type { Frame } from "../shared/protocol/frame.ts";
import type { MoveState } from "../shared/protocol/move_state.ts";
import type { ClusterInfo, Endpoint } from "../shared/protocol/packets.ts";
import { listenWebSocket, type WebSocketListener } from "../shared/websocket_listener.ts";
import { ErrorCode } from "../shared/protocol/protocol_error.ts";
import { SustenetError } from "../shared/errors.ts";
import { type BroadcastOptions, type ClientId, isPluginMove } from "../shared/plugin.ts";
import { importAesKey, KeyError } from "../shared/security.ts";
import { startStatusServer, type StatusServer } from "../shared/status_server.ts";
import { gcMetricsRequested, RuntimeMetrics } from "../shared/runtime_metrics.ts";
import { exportMetricFamilies, inSpan, recordSpan } from "../shared/telemetry.ts";
import { AdminAuth, loadAdminToken } from "../shared/admin_auth.ts";
import {
  ClusterConsole,
  type ClusterConsoleSource,
  type ConsolePlayer,
  MAX_PLAYER_ROWS,
} from "./cluster_console.ts";
import { BroadcastGroup } from "../shared/broadcast_group.ts";
import { PendingGate } from "../shared/pending_gate.ts";
import { LogThrottle } from "../shared/log_throttle.ts";
import {
  broadcast,
  type CloseInfo,
  type FrameListener,
  type FrameTransport,
  listenFrames,
} from "../shared/transport.ts";
import { listenTlsFrames } from "../shared/tls_listener.ts";
import { ClientSession, type ClientSessionOptions, type SessionAction } from "./client_session.ts";
import {
  type ClusterOptions,
  isPluginEntry,
  type Settings,
  settingsOf,
} from "./cluster_options.ts";
import { FragmentGrid } from "./fragment_grid.ts";
import { PositionSender } from "./position_sender.ts";
import type { FragmentId } from "./fragment_id.ts";
import { InProcessPluginHost } from "./in_process_plugin_host.ts";
import { MasterLink, type MasterLinkState } from "./master_link.ts";
import { ClusterMetrics } from "./metrics.ts";
import { FLOOD_KICK_REASON, PlayerRateLimit, type RateVerdict } from "./player_rate_limit.ts";
import { PlayerTable, type PlayerView } from "./players.ts";
import type { PluginActions, PluginHost } from "./plugin_host.ts";
import { WorkerPluginHost } from "./worker_plugin_host.ts";

const logger = roleLogger("cluster");

/** Longest DisconnectCluster reason sent, in characters (str16 holds 65 535 bytes). */
const MAX_DISCONNECT_REASON_CHARS = 1000;
/** Ticket verifiers kept for earlier cluster ids (tickets issued before a re-registration). */
const MAX_OLD_VERIFIERS = 4;
/** Throttle and flood-kick log lines: at most this many of each per 10 s, the rest counted. */
const FLOOD_LOG_LINES = 5;

/**
 * How a broadcast's wait grows with the players it goes to, in ms per player, up to
 * `broadcast_flush_ms`: 1 ms at 50 players, 10 ms from 500. Batching saves one write per player
 * per hand-out, so this keeps a cluster's broadcast writes near 50 000 a second whatever its size,
 * and a small room's broadcasts nearly as prompt as with no batching.
 */
const BROADCAST_FLUSH_MS_PER_PLAYER = 0.02;

/**
 * A host and port.
 *
 * @example
 * ```ts
 * import type { ClusterAddress } from "./cluster_server.ts";
 * import assert from "node:assert/strict";
 *
 * const addr: ClusterAddress = { hostname: "127.0.0.1", port: 6257 };
 * assert.equal(addr.port, 6257);
 * ```
 */
export interface ClusterAddress {
  /** Bound IP address. */
  readonly hostname: string;
  /** Bound port (the real one when 0 was asked). */
  readonly port: number;
}

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

/**
 * The plugin command an operator's notice reaches players on (docs/PROTOCOL.md, "Operator
 * notice"): payload = the notice in UTF-8.
 */
export const NOTICE_COMMAND = 0xff;

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

/** Loads the master-shared key, generating it (with a warning) the first time. */
async function loadClusterKey(keysDir: string, keyName: string): Promise<Uint8Array> {
  try {
    return await loadKey(keysDir, keyName);
  } catch (error) {
    if (!(error instanceof KeyError) || error.code !== "key_missing") throw error;
  }
  try {
    await generateKey(keysDir, keyName);
    logger.warn(
      "no cluster key {path}: generated a new one; the master needs this same key, so copy " +
        "the file into the master's keys directory",
      { path: keyPath(keysDir, keyName) },
    );
  } catch (error) {
    // Another process made it between our two steps: use theirs.
    if (!(error instanceof KeyError) || error.code !== "key_exists") throw error;
  }
  return await loadKey(keysDir, keyName);
}

/** The running cluster's state and wiring (one instance per startCluster). */
class ClusterRuntime implements PluginActions {
  readonly #options: ClusterOptions;
  readonly #settings: Settings;
  readonly #startedAt = performance.now();
  #turnTime = -1;
  readonly #endTurn = () => this.#turnTime = -1;
  readonly #players: PlayerTable<FrameTransport>;
  /** Every player's connection: broadcasts to all are batched per turn, one copy per frame. */
  readonly #everyone: BroadcastGroup;
  readonly #connections = new Map<FrameTransport, ConnectionRecord>();
  /** Connections not authenticated yet: their own pool, so they never take a player's slot. */
  readonly #pending: PendingGate;
  readonly #verifiers = new Map<number, TicketVerifier>();
  readonly #hosts: PluginHost[] = [];
  readonly #grid: FragmentGrid | undefined;
  readonly #positions = new PositionSender();
  readonly metrics: ClusterMetrics;
  /** Throttling and flood kicks are logged a few lines per 10 s, with a count of the rest. */
  readonly #floodLog = new LogThrottle({ linesPerInterval: FLOOD_LOG_LINES, maxKeys: 8 });
  #clusterAesKey: CryptoKey | undefined;
  #identity: { privateKey: CryptoKey; publicKey: Uint8Array; version: number } | undefined;
  #sessionOptions: Omit<ClientSessionOptions, "admit"> | undefined;
  #listener: FrameListener | undefined;
  /** The TLS client listener (`tls` option), where the TLS session mode is allowed. */
  #tlsListener: FrameListener | undefined;
  #webSocket: WebSocketListener | undefined;
  #status: StatusServer | undefined;
  #runtime: RuntimeMetrics | undefined;
  #console: ClusterConsole | undefined;
  #auth: AdminAuth | undefined;
  /** An operator's drain: new connections are refused, players stay. */
  #draining = false;
  #link: MasterLink | undefined;
  #tickTimer: ReturnType<typeof setInterval> | undefined;
  #lastTick = 0;
  #stopping: Promise<void> | undefined;
  // Settled once: the first registration, or why there will be none.
  readonly #registeredOnce = Promise.withResolvers<number>();
  #closing = false;

  constructor(options: ClusterOptions) {
    this.#options = options;
    // Handled here so that an embedder who never looks at `registered` gets no unhandled
    // rejection; one who awaits it still sees the rejection.
    this.#registeredOnce.promise.catch(() => {});
    if (options.master === null) {
      this.#registeredOnce.reject(
        new SustenetError("not_registered", "the cluster runs with no master (master: null)"),
      );
    }
    this.#settings = settingsOf(options);
    this.#everyone = new BroadcastGroup({
      flushIntervalMs: this.#settings.broadcastFlushMs,
      flushMsPerMember: BROADCAST_FLUSH_MS_PER_PLAYER,
    });
    this.#players = new PlayerTable<FrameTransport>({
      maxPlayers: this.#settings.maxConnections,
    });
    const fragments = options.fragments;
    this.#grid = fragments === undefined || fragments === false
      ? undefined
      : new FragmentGrid({ ...fragments, tickHz: this.#settings.tickHz });
    this.metrics = new ClusterMetrics({
      players: () => this.#players.size,
      connections: () => this.#connections.keys(),
      masterLinkState: () => this.#linkState(),
      fragments: () => this.#grid?.fragmentStats(),
      pending: () => this.#pending.size,
      plugins: () =>
        this.#hosts.flatMap((host) => host instanceof WorkerPluginHost ? [host.stats] : []),
    });
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
    const identity = await loadOrCreateIdentity(s.keysDir, s.identityKeyName);
    this.#identity = identity;
    const publicFile = `${s.keysDir.replace(/[\\/]+$/, "")}/${s.identityKeyName}.pub`;
    if (identity.created) {
      logger.info("created the identity key pair {name}; its public key is in {file}", {
        name: s.identityKeyName,
        file: publicFile,
      });
    } else if (identity.publicFileRewritten) {
      logger.info("rewrote {file} from the identity private key", { file: publicFile });
    }
    if (this.#options.domainPubKey) {
      logger.info("clients fetch the identity public key from {url}: publish {file} there", {
        url: this.#options.domainPubKey,
        file: publicFile,
      });
    }
    this.#sessionOptions = {
      serverName: s.serverName,
      identity,
      tickets: () => this.#currentVerifier(),
      clusters: () => this.#selfInfo(),
      plaintext: this.#options.plaintext === true,
    };
    const statusOptions = this.#options.status;
    if (statusOptions !== undefined && statusOptions !== false) {
      this.#auth = await AdminAuth.create({
        token: await loadAdminToken(
          statusOptions.adminToken ?? null,
          statusOptions.adminTokenFile ?? null,
        ),
        consolePublic: statusOptions.consolePublic ?? true,
      });
    }
    try {
      await this.#startPlugins();
      this.#listen();
      this.#startStatus();
    } catch (error) {
      await this.#teardown("start failed");
      throw error;
    }
    this.#startLink(clusterKey);
    if (this.#hosts.length > 0 || this.#grid !== undefined) {
      this.#lastTick = performance.now();
      this.#tickTimer = setInterval(this.#tick, 1000 / s.tickHz);
    }
    const addr = this.#listener!.addr;
    warnIfFfiUnavailable(logger);
    logSuccess(logger, "cluster {name} listening on {host}:{port}", {
      name: s.serverName,
      host: addr.hostname,
      port: addr.port,
    });
    if (this.#webSocket !== undefined) {
      logger.info("cluster {name} WebSocket on {scheme}://{host}:{port}{path}", {
        name: s.serverName,
        scheme: this.#webSocket.scheme,
        host: this.#webSocket.addr.hostname,
        port: this.#webSocket.addr.port,
        path: this.#webSocket.path,
      });
    }
  }

  server(): ClusterServer {
    const listener = this.#listener!;
    const status = this.#status;
    const identity = this.#identity!;
    // deno-lint-ignore no-this-alias
    const runtime = this;
    const stop = (reason?: string) => this.stop(reason);
    const players = this.#players;
    return {
      addr: { hostname: listener.addr.hostname, port: listener.addr.port },
      statusAddr: status === undefined ? null : status.addr,
      tlsAddr: this.#tlsListener === undefined
        ? null
        : { hostname: this.#tlsListener.addr.hostname, port: this.#tlsListener.addr.port },
      webSocketAddr: this.#webSocket === undefined ? null : {
        hostname: this.#webSocket.addr.hostname,
        port: this.#webSocket.addr.port,
        path: this.#webSocket.path,
        scheme: this.#webSocket.scheme,
      },
      get clusterId() {
        return runtime.#link?.clusterId;
      },
      // A view, not the table: callers cannot add or remove players.
      players: Object.freeze({
        get size() {
          return players.size;
        },
        get: (clientId: number) => players.get(clientId),
        list: () => players.list(),
      }),
      get masterLinkState() {
        return runtime.#linkState();
      },
      registered: this.#registeredOnce.promise,
      identity: { publicKey: identity.publicKey, version: identity.version },
      metrics: this.metrics,
      stop,
      [Symbol.asyncDispose]: () => stop(),
    };
  }

  // ---------------------------------------------------------------- startup pieces

  async #startPlugins(): Promise<void> {
    const entries = this.#options.plugins ?? [];
    entries.forEach((entry, index) => {
      const { plugin, name, settings } = isPluginEntry(entry)
        ? entry
        : { plugin: entry, name: undefined, settings: undefined };
      this.#hosts.push(
        new InProcessPluginHost(plugin, this, {
          name: name ?? `plugin-${index + 1}`,
          ...(settings === undefined ? {} : { settings }),
        }),
      );
    });
    for (const spec of this.#options.pluginSpecs ?? []) {
      this.#hosts.push(
        new WorkerPluginHost(spec, this, {
          ...this.#options.pluginHostOptions,
          watchdogMs: this.#options.pluginWatchdogMs ??
            this.#options.pluginHostOptions?.watchdogMs ?? 2000,
        }),
      );
    }
    // Sequential, so the first failure is the one reported and later plugins are not loaded.
    for (const host of this.#hosts) {
      await inSpan("sustenet.plugin.start", {
        "sustenet.plugin.name": host.name,
        "sustenet.plugin.sandboxed": host instanceof WorkerPluginHost,
      }, () => host.start());
      logger.info("plugin {name} started", { name: host.name });
    }
  }

  #listen(): void {
    const s = this.#settings;
    // Every transport's connections take the same pending slots, limits and protocol.
    const connectionOptions = {
      maxFrameBytes: s.maxFrameBytes,
      // Until Authenticate(20): Hello, KeyExchange and SendPassword are all small.
      pendingMaxFrameBytes: s.maxPendingFrameBytes,
      maxQueueBytes: s.maxQueueBytes,
      // From connecting to Authenticate(20): the whole handshake, ticket included.
      handshakeTimeoutMs: this.#options.handshakeTimeoutMs ?? 5000,
      idleTimeoutMs: this.#options.idleTimeoutMs ?? 30_000,
      onConnection: (connection: FrameTransport) => this.#accept(connection, false),
    };
    this.#listener = listenFrames({ hostname: s.hostname, port: s.port, ...connectionOptions });
    const tls = this.#options.tls;
    if (tls !== undefined) {
      this.#tlsListener = listenTlsFrames({
        hostname: s.hostname,
        ...connectionOptions,
        ...tls,
        onConnection: (connection: FrameTransport) => this.#accept(connection, true),
      });
    }
    const ws = this.#options.webSocket;
    if (ws !== undefined && ws !== false) {
      this.#webSocket = listenWebSocket({
        hostname: ws.hostname ?? s.hostname,
        port: ws.port,
        path: ws.path,
        allowedOrigins: ws.allowedOrigins,
        ...connectionOptions,
        // With a certificate, wss:// only (announced as a wss endpoint).
        ...(tls === undefined ? {} : { tls: { cert: tls.cert, key: tls.key } }),
      });
    }
  }

  /** The extra listeners announced to the master (and listed to clients). */
  #endpoints(): readonly Endpoint[] | undefined {
    const endpoints: Endpoint[] = [];
    const ws = this.#webSocket;
    if (ws !== undefined) endpoints.push({ kind: ws.scheme, port: ws.addr.port, path: ws.path });
    const tls = this.#tlsListener;
    if (tls !== undefined) endpoints.push({ kind: "tls", port: tls.addr.port, path: "" });
    return endpoints.length === 0 ? undefined : endpoints;
  }

  #startStatus(): void {
    const status = this.#options.status;
    if (status === undefined || status === false) return;
    const runtime = new RuntimeMetrics({ role: "cluster", gcMetrics: gcMetricsRequested() });
    this.#runtime = runtime;
    exportMetricFamilies(() => this.metrics.families());
    const page = new ClusterConsole(this.#consoleSource(), this.#auth!, logger);
    this.#console = page;
    this.#status = startStatusServer({
      hostname: status.hostname ?? "127.0.0.1",
      port: status.port,
      health: () => this.#health(),
      metrics: () => [...this.metrics.families(), ...runtime.families()],
      routes: page.routes,
    });
  }

  #startLink(clusterKey: Uint8Array): void {
    const masters = this.#options.masters ?? [];
    const master = masters.length > 0
      ? masters[0]
      : this.#options.master === undefined
      ? { hostname: "127.0.0.1", port: 6256 }
      : this.#options.master;
    if (master === null) {
      logger.warn("no master configured: join tickets cannot be checked, every join is refused");
      return;
    }
    const s = this.#settings;
    const identity = this.#identity!;
    this.#link = new MasterLink({
      hostname: master.hostname,
      port: master.port,
      masters,
      keyName: s.keyName,
      clusterKey,
      announcement: {
        name: s.serverName,
        host: s.publicHost,
        port: this.#listener!.addr.port,
        maxConnections: s.maxConnections,
        keyVersion: identity.version,
        publicKey: identity.publicKey,
        ...(this.#endpoints() === undefined ? {} : { endpoints: this.#endpoints() }),
      },
      load: () => this.#players.size,
      heartbeatIntervalMs: this.#options.heartbeatIntervalMs ?? 1000,
      reconnectMinMs: this.#options.reconnectMinMs ?? 500,
      reconnectMaxMs: this.#options.reconnectMaxMs ?? 2000,
      handshakeTimeoutMs: this.#options.handshakeTimeoutMs ?? 5000,
      maxFrameBytes: s.maxFrameBytes,
      onRegistered: (clusterId) => this.#registered(clusterId),
      plugins: () =>
        this.#hosts.map((host) => ({
          name: host.name,
          state: host.state,
          restarts: host instanceof WorkerPluginHost ? host.stats.restarts : 0,
        })),
      ...(this.#options.statusPageUrl === undefined || this.#options.statusPageUrl === null
        ? {}
        : { pageUrl: this.#options.statusPageUrl }),
    });
    this.#link.start();
  }

  #registered(clusterId: number): void {
    this.metrics.registrations.inc();
    this.#registeredOnce.resolve(clusterId);
    recordSpan("sustenet.cluster.registered", {
      "sustenet.cluster.id": clusterId,
      "sustenet.cluster.name": this.#settings.serverName,
    }, Date.now());
    if (this.#verifiers.has(clusterId)) return;
    // One verifier per id, kept across re-registrations so a used ticket stays used.
    this.#verifiers.set(
      clusterId,
      new TicketVerifier({
        clusterKey: this.#clusterAesKey!,
        clusterId,
        identityPublicKey: this.#identity!.publicKey,
      }),
    );
    for (const id of this.#verifiers.keys()) {
      if (this.#verifiers.size <= MAX_OLD_VERIFIERS + 1) break;
      if (id !== clusterId) this.#verifiers.delete(id);
    }
  }

  #currentVerifier(): TicketVerifier | undefined {
    const id = this.#link?.clusterId;
    return id === undefined ? undefined : this.#verifiers.get(id);
  }

  #linkState(): MasterLinkState | "disabled" {
    return this.#link?.state ?? "disabled";
  }

  #selfInfo(): readonly ClusterInfo[] {
    const id = this.#link?.clusterId;
    if (id === undefined) return [];
    const s = this.#settings;
    return [{
      id,
      name: s.serverName,
      host: s.publicHost,
      port: this.#listener!.addr.port,
      load: this.#players.size,
      maxConnections: s.maxConnections,
      keyVersion: this.#identity!.version,
      full: this.#players.full,
      ...(this.#endpoints() === undefined ? {} : { endpoints: this.#endpoints() }),
    }];
  }

  #health(): Record<string, unknown> {
    return {
      status: this.#closing ? "stopping" : "ok",
      role: "cluster",
      name: this.#settings.serverName,
      clusterId: this.#link?.clusterId ?? null,
      masterLink: this.#linkState(),
      players: this.#players.size,
      connections: this.#connections.size,
      plugins: this.#hosts.map((host) => ({ name: host.name, state: host.state })),
      fragments: this.#grid === undefined ? null : [...this.#grid.fragmentStats()].length,
      uptimeS: Math.round((performance.now() - this.#startedAt) / 1000),
    };
  }

  // ---------------------------------------------------------------- operator console

  #consoleSource(): ClusterConsoleSource {
    const hosts = this.#hosts;
    return {
      snapshot: () => {
        const now = Date.now();
        const rows: ConsolePlayer[] = [];
        for (const player of this.#players.players()) {
          if (rows.length >= MAX_PLAYER_ROWS) break;
          const record = this.#connections.get(player.connection);
          const coords = this.#grid?.fragmentCoordsOf(player.clientId as never);
          rows.push({
            clientId: player.clientId,
            playerId: player.playerId,
            address: remoteOf(player.connection),
            connectedMs: record === undefined ? 0 : now - record.acceptedAt,
            queuedBytes: player.connection.queuedBytes,
            fragment: coords === undefined ? null : `${coords.fx},${coords.fz}`,
          });
        }
        const fragments = this.#grid === undefined
          ? null
          : [...this.#grid.fragmentStats()].map((f) => ({
            fx: f.fx,
            fz: f.fz,
            players: f.players,
            updateHz: f.updateHz,
            bytesOut: f.bytesOut,
          }));
        return {
          name: this.#settings.serverName,
          clusterId: this.#link?.clusterId ?? null,
          masterLink: this.#linkState(),
          uptimeMs: performance.now() - this.#startedAt,
          draining: this.#draining,
          players: this.#players.size,
          capacity: this.#settings.maxConnections,
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
            p50Ms: this.metrics.tickSeconds.quantile(0.5) * 1000,
            p99Ms: this.metrics.tickSeconds.quantile(0.99) * 1000,
          },
          traffic: {
            bytesIn: this.metrics.total("bytesIn"),
            bytesOut: this.metrics.total("bytesOut"),
            framesIn: this.metrics.total("framesIn"),
            framesOut: this.metrics.total("framesOut"),
          },
          eventLoopLagMaxMs: (this.#runtime?.maxLagSeconds ?? 0) * 1000,
        };
      },
      kick: (clientId, reason) => {
        if (this.#players.player(clientId as ClientId) === undefined) return false;
        this.kick(clientId as ClientId, reason);
        return true;
      },
      notice: (text) => {
        const payload = new TextEncoder().encode(text);
        const players = this.#players.size;
        this.broadcast(NOTICE_COMMAND, payload, {});
        logger.info("operator notice sent to {players} player(s)", { players });
        return players;
      },
      drain: (on) => {
        this.#draining = on;
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
        if (player !== undefined) this.#everyone.add(connection);
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
          remote: remoteOf(connection),
          error,
        });
      });
    connection.start((frame) => this.#frame(frame, connection, record));
  }

  // The time of this turn of the event loop, read once per turn rather than once per frame (a
  // clock read per frame was 4-7 % of the cluster's CPU under echo load); a rate limit is
  // none the worse for a clock that is a turn old.
  #turnNow(): number {
    if (this.#turnTime < 0) {
      this.#turnTime = performance.now();
      queueMicrotask(this.#endTurn);
    }
    return this.#turnTime;
  }

  #frame(frame: Frame, connection: FrameTransport, record: ConnectionRecord): void {
    // An authenticated player's frame is weighed before it is even decoded: a flood is dropped
    // here, before any plugin, fragment or broadcast sees it.
    const limit = record.limit;
    if (limit !== undefined) {
      const bytes = frame.payload.length + 1;
      const now = this.#turnNow();
      const verdict = limit.admit(frame.type, bytes, now);
      if (verdict !== "pass") {
        this.#throttled(verdict, bytes, now, connection, record, limit);
        return;
      }
    }
    const step = record.session.receive(decodePacket(frame));
    if (!(step instanceof Promise)) {
      this.#apply(step, connection, record);
      return;
    }
    step.then(
      (actions) => this.#apply(actions, connection, record),
      (error: unknown) => {
        logger.error("handshake step failed for {remote}: {error}", {
          remote: remoteOf(connection),
          error,
        });
        connection.close({ code: ErrorCode.Internal, message: "internal error" });
      },
    );
  }

  #apply(
    actions: readonly SessionAction[],
    connection: FrameTransport,
    record: ConnectionRecord,
  ): void {
    for (const action of actions) {
      switch (action.type) {
        case "send":
          connection.send(action.frame);
          break;
        case "seal":
          // Synchronous, before the next frame of this read: the client's next bytes are records.
          if (connection.isOpen) connection.startSealing(action.keys);
          break;
        case "authenticated":
          record.limit = new PlayerRateLimit(this.#settings.playerRateLimits);
          this.#joined(connection, action.clientId);
          recordSpan("sustenet.cluster.admission", {
            "sustenet.admission.status": 20,
            "sustenet.cluster.id": this.#link?.clusterId ?? 0,
            "sustenet.client.id": action.clientId,
            "sustenet.player.id": this.#players.get(action.clientId)?.playerId ?? "",
            "net.peer.address": remoteOf(connection),
          }, record.acceptedAt);
          break;
        case "refused":
          this.metrics.authResult(action.status);
          recordSpan(
            "sustenet.cluster.admission",
            {
              "sustenet.admission.status": action.status,
              "sustenet.cluster.id": this.#link?.clusterId ?? 0,
              "net.peer.address": remoteOf(connection),
            },
            record.acceptedAt,
            action.reason,
          );
          break;
        case "plugin":
          this.#message(record.session.clientId, action.command, action.payload);
          break;
        case "move":
          this.#move(record.session.clientId, action.state);
          break;
        case "close":
          // Bad input before authentication is counted and logged rate-limited by the gate.
          if (this.#pending.isPending(connection) && isBadInput(action.code)) {
            logger.debug("closing {remote}: {reason}", {
              remote: remoteOf(connection),
              reason: action.reason,
            });
          } else {
            logClose(connection, action);
          }
          record.leaveReason ??= action.reason;
          connection.close(
            action.code === undefined ? undefined : { code: action.code, message: action.reason },
          );
          return;
      }
    }
  }

  /** Counts a dropped frame; logs a throttle's start (rate-limited); kicks a lasting flood. */
  #throttled(
    verdict: Exclude<RateVerdict, "pass">,
    bytes: number,
    now: number,
    connection: FrameTransport,
    record: ConnectionRecord,
    limit: PlayerRateLimit,
  ): void {
    this.metrics.messagesThrottled.inc();
    this.metrics.bytesThrottled.inc(bytes);
    // The rest of the flood waits in the kernel: TCP slows the sender, not us.
    connection.pauseReading(limit.pauseMs(now));
    if (verdict === "drop") return;
    const clientId = record.session.clientId;
    const playerId = this.#players.get(clientId)?.playerId ?? "?";
    if (verdict === "throttle") {
      const left = this.#floodLog.admit("throttle", now);
      if (left === null) return;
      logger.warn(
        "throttling player {playerId} (client {clientId}) from {remote}: over its rate limits, " +
          "excess frames dropped ({left} more such lines left out)",
        { playerId, clientId, remote: remoteOf(connection), left },
      );
      return;
    }
    this.metrics.floodKicks.inc();
    record.leaveReason = `kicked: ${FLOOD_KICK_REASON}`;
    const left = this.#floodLog.admit("flood kick", now);
    if (left !== null) {
      logger.warn(
        "kicking player {playerId} (client {clientId}) from {remote}: {reason} for " +
          "{ms} ms, {dropped} frames ({droppedBytes} bytes) dropped ({left} more such lines left out)",
        {
          playerId,
          clientId,
          remote: remoteOf(connection),
          reason: FLOOD_KICK_REASON,
          ms: Math.round(now - (limit.throttledSince(now) ?? now)),
          dropped: limit.dropped,
          droppedBytes: limit.droppedBytes,
          left,
        },
      );
    }
    connection.send(disconnectFrame(FLOOD_KICK_REASON));
    connection.close();
  }

  /** Writes the counts of flood lines left out once their window closed. */
  #drainFloodLog(now: number): void {
    for (const [what, left] of this.#floodLog.drain(now)) {
      logger.warn("{left} more {what} lines were left out", { left, what });
    }
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
      remote: remoteOf(connection),
    });
    for (const host of this.#hosts) {
      const started = Date.now();
      host.join(player.info);
      recordSpan("sustenet.plugin.join", {
        "sustenet.plugin.name": host.name,
        "sustenet.client.id": player.clientId,
        "sustenet.player.id": player.playerId,
      }, started);
    }
  }

  #closed(connection: FrameTransport, record: ConnectionRecord, info: CloseInfo): void {
    this.#connections.delete(connection);
    this.metrics.connectionClosed(connection);
    if (info.code === ErrorCode.SlowConsumer) this.metrics.slowConsumers.inc();
    const clientId = record.session.clientId;
    if (!record.session.closed()) return;
    const player = this.#players.remove(clientId);
    if (player === undefined) return;
    this.#everyone.delete(connection);
    this.#grid?.remove(clientId);
    const reason = record.leaveReason ?? info.reason;
    logger.info("player {playerId} (client {clientId}) left: {reason}", {
      playerId: player.playerId,
      clientId,
      reason,
    });
    for (const host of this.#hosts) {
      const started = Date.now();
      host.leave(player.info, reason);
      recordSpan("sustenet.plugin.leave", {
        "sustenet.plugin.name": host.name,
        "sustenet.client.id": player.clientId,
        "sustenet.player.id": player.playerId,
        "sustenet.leave.reason": reason,
      }, started);
    }
  }

  // ---------------------------------------------------------------- game traffic

  #message(clientId: number, command: number, payload: Uint8Array): void {
    this.metrics.pluginMessages.inc();
    let handled = false;
    for (const host of this.#hosts) {
      if (!host.handles(command)) continue;
      handled = true;
      host.message(clientId as ClientId, command, payload);
    }
    if (handled) return;
    // Answered, not dropped in silence: the sender learns that nothing here reads it. Not
    // fatal, and bounded by the player's command rate limit like the command itself.
    this.metrics.pluginUnhandled.inc();
    this.#players.player(clientId)?.connection.send(unhandledFrame(command));
  }

  #move(clientId: number, state: MoveState): void {
    // NaN and infinities decode fine (f32) but are never a position.
    if (!isPluginMove(state)) {
      this.metrics.movesRejected.inc();
      this.#correct(clientId);
      return;
    }
    let pending: Promise<boolean>[] | undefined;
    for (const host of this.#hosts) {
      const verdict = host.move(clientId as ClientId, state);
      if (verdict === false) {
        this.metrics.movesRejected.inc();
        this.#correct(clientId);
        return;
      }
      if (verdict !== true) (pending ??= []).push(verdict);
    }
    if (pending === undefined) {
      this.#place(clientId, state);
      return;
    }
    Promise.all(pending).then(
      (verdicts) => {
        if (verdicts.includes(false)) {
          this.metrics.movesRejected.inc();
          this.#correct(clientId);
        } else {
          this.#place(clientId, state);
        }
      },
      (error: unknown) => logger.error("a plugin's move check failed: {error}", { error }),
    );
  }

  /** Puts an accepted move into the fragment grid (when on). */
  #place(clientId: number, state: MoveState): void {
    const grid = this.#grid;
    if (grid === undefined) {
      this.metrics.movesAccepted.inc();
      return;
    }
    if (this.#players.player(clientId) === undefined) return; // left while plugins decided
    const now = performance.now();
    const outcome = grid.fragmentOf(clientId) === undefined
      ? grid.add(clientId, state, now)
      : grid.move(clientId, state, now);
    if (outcome === "accepted" || outcome === "unchanged") {
      this.metrics.movesAccepted.inc();
    } else if (outcome === "clamped") {
      this.metrics.movesAccepted.inc();
      this.#correct(clientId);
    } else {
      this.metrics.movesRejected.inc();
      this.#correct(clientId);
    }
  }

  /** Sends a player its own stored state back (a MoveBatch entry with its own id). */
  #correct(clientId: number): void {
    const state = this.#grid?.stateOf(clientId);
    const player = this.#players.player(clientId);
    if (state === undefined || player === undefined) return;
    player.connection.send(encodePacket({ kind: "MoveBatch", entries: [{ clientId, state }] }));
  }

  readonly #tick = (): void => {
    // A timer callback that throws would take the process down: contain it here.
    try {
      const now = performance.now();
      const dtMs = Math.max(0, now - this.#lastTick);
      this.#lastTick = now;
      for (const host of this.#hosts) host.tick(dtMs);
      this.#drainFloodLog(now);
      if (this.#grid !== undefined) this.#fragmentTick(this.#grid, now);
      // Grid work, encoding and queueing; the socket writes themselves happen after.
      this.metrics.recordTick((performance.now() - now) / 1000);
    } catch (error) {
      logger.error("tick failed: {error}", { error });
    }
  };

  #fragmentTick(grid: FragmentGrid, now: number): void {
    const result = grid.tick(now);
    if (result.interest.size > 0) {
      // Each Spawn / Despawn is encoded once per tick, whoever receives it.
      const spawns = new Map<number, Uint8Array>();
      const despawns = new Map<number, Uint8Array>();
      for (const [viewer, change] of result.interest) {
        const connection = this.#players.player(viewer)?.connection;
        if (connection === undefined) continue;
        for (const id of change.left) {
          let frame = despawns.get(id);
          if (frame === undefined) {
            frame = encodePacket({ kind: "Despawn", clientId: id });
            despawns.set(id, frame);
          }
          connection.send(frame);
        }
        for (const entity of change.entered) {
          let frame = spawns.get(entity.id);
          if (frame === undefined) {
            frame = encodePacket({
              kind: "Spawn",
              clientId: entity.id,
              playerId: this.#players.get(entity.id)?.playerId ?? "",
              state: entity.state,
            });
            spawns.set(entity.id, frame);
          }
          connection.send(frame);
        }
      }
    }
    const maxPayload = this.#settings.maxFrameBytes - 1;
    // Whole frames built fragment by fragment from the shared blocks (no re-encode, one
    // allocation per fragment); a player whose socket lags skips batches, then gets a snapshot.
    const players = this.#players;
    this.#positions.send(
      result,
      (viewer) => players.player(viewer)?.connection.queuedBytes,
      (viewer, frame) => players.player(viewer)?.connection.send(frame),
      maxPayload,
    );
  }

  // ---------------------------------------------------------------- PluginActions

  /** Sends a plugin command to one player (dropped if it left). */
  send(to: ClientId, command: number, payload: Uint8Array): void {
    const player = this.#players.player(to);
    if (player === undefined) return;
    // One receiver: the frame is encoded straight into its queue, no frame array in between.
    if (this.#pluginFrameFits(command, payload)) player.connection.sendFrame(command, payload);
  }

  /**
   * Sends one encoded frame to everyone, all but one, or one fragment's audience (named by id,
   * or by a player in it: `near`, which is everyone when the grid has no place for that player).
   */
  broadcast(command: number, payload: Uint8Array, options: BroadcastOptions): void {
    const except = options.except === undefined
      ? undefined
      : this.#players.player(options.except)?.connection;
    const fragment = options.near === undefined
      ? options.fragment
      : this.#grid?.fragmentOf(options.near);
    if (fragment === undefined) {
      // To everyone: copied once into the group's turn buffer, no frame array.
      if (this.#pluginFrameFits(command, payload)) {
        this.#everyone.broadcastFrame(command, payload, except);
      }
      return;
    }
    const frame = this.#pluginFrame(command, payload);
    if (frame === undefined) return;
    if (this.#grid === undefined) {
      logger.debug("broadcast to fragment {fragment} dropped: fragments are off", { fragment });
    } else {
      broadcast(this.#audience(this.#grid, fragment), frame, except);
    }
  }

  /** Disconnects a player with DisconnectCluster(reason). */
  kick(client: ClientId, reason: string): void {
    const player = this.#players.player(client);
    if (player === undefined) return;
    const record = this.#connections.get(player.connection);
    if (record !== undefined) record.leaveReason = `kicked: ${reason}`;
    this.metrics.kicks.inc();
    logger.info("kicking player {playerId} (client {clientId}): {reason}", {
      playerId: player.playerId,
      clientId: client,
      reason,
    });
    player.connection.send(disconnectFrame(reason));
    player.connection.close();
  }

  *#audience(grid: FragmentGrid, fragment: number): Generator<FrameTransport> {
    for (const id of grid.playersInterestedIn(fragment as FragmentId)) {
      const connection = this.#players.player(id)?.connection;
      if (connection !== undefined) yield connection;
    }
  }

  #pluginFrame(command: number, payload: Uint8Array): Uint8Array | undefined {
    return this.#pluginFrameFits(command, payload)
      ? encodePluginFrame(command, payload)
      : undefined;
  }

  /**
   * Whether a plugin frame may be sent: `false` (logged) if above `max_frame_bytes`.
   *
   * @throws {RangeError} If `command` is not a plugin command.
   */
  #pluginFrameFits(command: number, payload: Uint8Array): boolean {
    if (payload.length + 1 > this.#settings.maxFrameBytes) {
      logger.warn("plugin command {command} of {bytes} bytes is above max_frame_bytes; dropped", {
        command,
        bytes: payload.length + 1,
      });
      return false;
    }
    assertPluginCommand(command);
    return true;
  }

  // ---------------------------------------------------------------- stopping

  stop(reason = "cluster shutting down"): Promise<void> {
    this.#stopping ??= this.#teardown(reason);
    return this.#stopping;
  }

  async #teardown(reason: string): Promise<void> {
    this.#closing = true;
    this.#registeredOnce.reject(
      new SustenetError("not_registered", "the cluster stopped before the master accepted it"),
    );
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
    const link = this.#link?.stop(reason);
    const shuttingDown = { code: ErrorCode.ShuttingDown, message: reason };
    await Promise.all([
      this.#listener?.close(shuttingDown),
      this.#tlsListener?.close(shuttingDown),
      this.#webSocket?.close(shuttingDown),
    ]);
    await Promise.all([...this.#connections.values()].map((r) => r.cleanedUp));
    await link;
    for (const host of this.#hosts) {
      try {
        await host.stop();
      } catch (error) {
        logger.error("plugin {name} failed to stop: {error}", { name: host.name, error });
      }
    }
    // Plugins may have broadcast while stopping: nobody is left to take it, but no timer stays.
    this.#everyone.flush();
    this.#drainFloodLog(Infinity);
    this.#console?.close();
    await this.#status?.close();
    this.#runtime?.stop();
    this.#pending.stop();
    logger.info("cluster {name} stopped", { name: this.#settings.serverName });
  }
}

function disconnectFrame(reason: string): Uint8Array {
  // Cut, then mend a surrogate pair the cut may have split: the encoder refuses lone ones.
  return encodePacket({
    kind: "DisconnectCluster",
    reason: String(reason).slice(0, MAX_DISCONNECT_REASON_CHARS).toWellFormed(),
  });
}

/** Whether an Error code blames the peer's input (BadHello .. UnexpectedPacket). */
function isBadInput(code: number | undefined): boolean {
  return code !== undefined && code >= ErrorCode.BadHello && code <= ErrorCode.UnexpectedPacket;
}

function remoteOf(connection: FrameTransport): string {
  const addr = connection.remoteAddr;
  return addr.transport === "tcp" ? `${addr.hostname}:${addr.port}` : addr.transport;
}

/** The LogTape method of each close level. */
const LOG_METHOD = { debug: "debug", info: "info", warning: "warn", error: "error" } as const;

function logClose(connection: FrameTransport, action: SessionAction & { type: "close" }): void {
  logger[LOG_METHOD[action.level]]("closing {remote}: {reason}", {
    remote: remoteOf(connection),
    reason: action.reason,
  });
}

// Error(Unhandled) frames, one per plugin command, made on first use.
const unhandledFrames = new Map<number, Uint8Array>();

function unhandledFrame(command: number): Uint8Array {
  let frame = unhandledFrames.get(command);
  if (frame === undefined) {
    const reason = `no plugin handles command 0x${command.toString(16).padStart(2, "0")}`;
    frame = encodePacket({ kind: "Error", code: ErrorCode.Unhandled, reason });
    unhandledFrames.set(command, frame);
  }
  return frame;
}
