/**
 * {@linkcode startMaster}: runs a Sustenet master in this process — the TCP listener for
 * clients and clusters, the cluster registry, join tickets, and the status HTTP server — and
 * stops it gracefully. It wires the parts together and owns their lifetimes; it must never
 * leave a socket, timer or promise behind after `stop()` resolves.
 *
 * @module
 */

import { warnIfFfiUnavailable } from "../shared/create_record_cipher.ts";
import { type FrameListener, listenFrames } from "../shared/transport.ts";
import { listenTlsFrames } from "../shared/tls_listener.ts";
import { listenWebSocket, type WebSocketListener } from "../shared/websocket_listener.ts";
import { LogThrottle } from "../shared/log_throttle.ts";
import { ConnectionSlots } from "./connection_slots.ts";
import { roleLogger } from "../shared/logging.ts";
import { ErrorCode } from "../shared/protocol/protocol_error.ts";
import type { PluginSummary } from "../shared/protocol/packets.ts";
import { startStatusServer, type StatusServer } from "../shared/status_server.ts";
import { gcMetricsRequested, RuntimeMetrics } from "../shared/runtime_metrics.ts";
import { exportMetricFamilies } from "../shared/telemetry.ts";
import { AdminAuth, loadAdminToken } from "../shared/admin_auth.ts";
import { MasterConsole } from "./console/master_console.ts";
import { renderStatusPage } from "./status_page.ts";
import { ClusterAllocator } from "./allocation.ts";
import { JoinLimiter } from "./join_limiter.ts";
import { guestAuthenticate } from "./authenticate.ts";
import { keysDirKeySource, reportKeysDir } from "./cluster_keys.ts";
import { MasterConnection, type MasterContext } from "./master_connection.ts";
import { type MasterOptions, resolveMasterOptions } from "./master_options.ts";
import { MasterMetrics } from "./metrics.ts";
import { ClusterRegistry, type ClusterRegistryView } from "./registry.ts";
import { RedisRegistryStore } from "./redis_registry_store.ts";
import type { RegistryStore } from "./registry_store.ts";
import { RegistrySync, type RegistrySyncStatus } from "./registry_sync.ts";
import type { FrameTransport } from "../shared/frame_session.ts";

const logger = roleLogger("master");

/** How long `stop()` waits for in-flight requests (authentication hooks) to settle. */
const STOP_WAIT_MS = 2000;
/** At most one registration-failure warning per reason in this many ms (the rest counted). */
const REGISTRATION_LOG_INTERVAL_MS = 10_000;

/**
 * Per-request log lines (tickets, refusals) of one kind and address: at most
 * {@linkcode LOG_LINES_PER_INTERVAL} per this many ms, then one line with the count.
 */
const LOG_INTERVAL_MS = 10_000;
const LOG_LINES_PER_INTERVAL = 3;

/** A host and port. */
export interface MasterAddress {
  /** Bound IP address. */
  readonly hostname: string;
  /** Bound port (the real one when 0 was asked). */
  readonly port: number;
}

/** A running master. */
export interface MasterServer extends AsyncDisposable {
  /** Where clients and clusters connect. */
  readonly addr: MasterAddress;
  /** Where the status HTTP server listens, or `null` when it is disabled. */
  readonly statusAddr: MasterAddress | null;
  /** Where the TLS listener is, or null when there is none (`tls` option). */
  readonly tlsAddr: MasterAddress | null;
  /**
   * The WebSocket listener (`ws://hostname:port/path`), or `null` when it is disabled.
   */
  readonly webSocketAddr:
    | (MasterAddress & { readonly path: string; readonly scheme: "ws" | "wss" })
    | null;
  /** The live clusters (read-only). */
  readonly registry: ClusterRegistryView;
  /** The master's counters (also on `/metrics`). */
  readonly metrics: MasterMetrics;
  /** The shared registry's state, or `null` for a lone master (no store). */
  registryStatus(): RegistrySyncStatus | null;
  /**
   * Stops accepting, sends `Error(ShuttingDown)` to every connection, writes what is queued,
   * closes everything. Idempotent.
   */
  stop(): Promise<void>;
}

/**
 * Starts a master.
 *
 * @param options Address, keys, limits, timeouts, hook, status server; all optional.
 * @throws {Deno.errors.AddrInUse} (or another listen error) if the port cannot be bound.
 *
 * @example Start on a free port and stop
 * ```ts
 * import { startMaster } from "./start_master.ts";
 * import assert from "node:assert/strict";
 *
 * const keysDir = await Deno.makeTempDir();
 * const master = await startMaster({ port: 0, keysDir });
 * assert.ok(master.addr.port > 0);
 * assert.equal(master.registry.size, 0);
 * await master.stop();
 * await Deno.remove(keysDir);
 * ```
 */
export async function startMaster(options: MasterOptions = {}): Promise<MasterServer> {
  const startedAt = performance.now();
  const resolved = resolveMasterOptions(options);
  const { serverName, maxConnections, keysDir } = resolved;
  if (resolved.clusterKeys === undefined) await reportKeysDir(keysDir);

  const registry = new ClusterRegistry();
  const limits = resolved.joinLimits;
  const clusterKeys = resolved.clusterKeys ?? keysDirKeySource(keysDir);
  // Without a store the registry is this master's alone, exactly as a lone master has it.
  const store: RegistryStore | undefined = resolved.registryStore ??
    (resolved.redisUrl === "" ? undefined : new RedisRegistryStore({ url: resolved.redisUrl }));
  let sync: RegistrySync | undefined;
  const allocator = new ClusterAllocator({
    registry,
    ticketTtlMs: resolved.ticketTtlMs,
    reservationWindowMs: resolved.reservationWindowMs,
    reservationLimits: {
      perConnection: limits.reservationsPerConnection,
      perAddress: limits.reservationsPerAddress,
      perPlayer: limits.reservationsPerPlayer,
    },
    // Called on later joins and heartbeats, once `metrics` below exists.
    onReleasedUnused: (count) => metrics.reservationsReleasedUnused.inc(count),
    ...(store === undefined ? {} : {
      onReserve: (id) => sync?.reserved(id),
      keySource: clusterKeys,
      claimTicketId: (ticketId) => sync?.claimTicketId(ticketId) ?? Promise.resolve(true),
    }),
  });
  if (store !== undefined) {
    sync = new RegistrySync({
      registry,
      allocator,
      store,
      heartbeatTimeoutMs: resolved.heartbeatTimeoutMs,
      reservationWindowMs: resolved.reservationWindowMs,
      ticketTtlMs: resolved.ticketTtlMs,
    });
    // Throws RegistryStoreError (exit 2 from `deno task master`) naming the URL.
    await sync.start();
  }
  const logThrottle = new LogThrottle({
    intervalMs: LOG_INTERVAL_MS,
    linesPerInterval: LOG_LINES_PER_INTERVAL,
  });
  const active = new Set<FrameTransport>();
  const metrics = new MasterMetrics({
    clusters: () => registry.size,
    connections: () => active,
    pending: (): number => slots.pending,
  });
  const slots: ConnectionSlots = new ConnectionSlots({
    maxClients: maxConnections,
    maxClusters: resolved.maxClusters,
    maxPending: resolved.maxPendingConnections,
    maxPendingPerAddress: resolved.maxPendingPerAddress,
    preAuth: metrics.preAuth,
    onRefused: () => metrics.connectionsRefused.inc(),
    logger,
  });
  /** Each listed cluster's status page (ClusterPage), for the console's links. */
  const pageUrls = new Map<number, string>();
  /** Each listed cluster's last plugin summary (ClusterPlugins), for the console. */
  const pluginSummaries = new Map<number, readonly PluginSummary[]>();
  registry.onRemove((record, reason) => {
    pageUrls.delete(record.id);
    pluginSummaries.delete(record.id);
    metrics.clustersRemoved.inc(reason);
    logger.info("cluster {name} ({id}) removed: {reason}", {
      name: record.name,
      id: record.id,
      reason,
    });
  });

  const pending = new Set<Promise<unknown>>();
  const registrationLog = new LogThrottle({ intervalMs: REGISTRATION_LOG_INTERVAL_MS });
  const context: MasterContext = {
    serverName,
    onClusterPage: (id, url) => {
      if (registry.get(id) !== undefined) pageUrls.set(id, url);
    },
    onClusterPlugins: (id, plugins) => {
      if (registry.get(id) !== undefined) pluginSummaries.set(id, plugins);
    },
    registry,
    allocator,
    metrics,
    registrationLog,
    authenticate: resolved.authenticate ?? guestAuthenticate,
    clusterKeys,
    joinLimiter: new JoinLimiter(limits),
    logThrottle,
    maxFrameBytes: resolved.maxFrameBytes,
    slots,
    registrationTimeoutMs: resolved.registrationTimeoutMs,
    heartbeatTimeoutMs: resolved.heartbeatTimeoutMs,
    links: new Map(),
    track: (work) => {
      pending.add(work);
      // Tracked work ends in its own .catch that logs, so both branches only forget it.
      const forget = () => pending.delete(work);
      work.then(forget, forget);
    },
    now: Date.now,
  };

  const connectionOptions = {
    maxFrameBytes: resolved.maxFrameBytes,
    // Until a cluster registers; clients keep it (they only send small requests).
    pendingMaxFrameBytes: resolved.maxPendingFrameBytes,
    maxQueueBytes: resolved.maxQueueBytes,
    handshakeTimeoutMs: resolved.handshakeTimeoutMs,
    idleTimeoutMs: resolved.idleTimeoutMs,
    // Every transport's connections take the same slots, limits and protocol.
    onConnection: (connection: FrameTransport) => {
      // Pending until the Hello; then a client or (once registered) a cluster slot.
      if (!slots.accept(connection)) return;
      active.add(connection);
      connection.closed.then(() => active.delete(connection));
      MasterConnection.serve(connection, context);
    },
  };
  let listener: FrameListener;
  try {
    listener = listenFrames({
      hostname: resolved.hostname,
      port: resolved.port,
      ...connectionOptions,
    });
  } catch (error) {
    await sync?.stop();
    throw error;
  }
  // The same protocol inside TLS, for clients that have TLS but not X25519 / AES-GCM.
  let tlsListener: FrameListener | null = null;
  if (resolved.tls !== undefined) {
    try {
      tlsListener = listenTlsFrames({
        hostname: resolved.hostname,
        ...connectionOptions,
        ...resolved.tls,
      });
    } catch (error) {
      await listener.close();
      await sync?.stop();
      throw error;
    }
  }
  let webSocket: WebSocketListener | null = null;
  if (resolved.webSocket !== false) {
    try {
      webSocket = listenWebSocket({
        hostname: resolved.webSocket.hostname ?? resolved.hostname,
        port: resolved.webSocket.port,
        path: resolved.webSocket.path,
        allowedOrigins: resolved.webSocket.allowedOrigins,
        ...connectionOptions,
        // With a certificate, wss:// only: a browser on an https page cannot use ws:// anyway.
        ...(resolved.tls === undefined
          ? {}
          : { tls: { cert: resolved.tls.cert, key: resolved.tls.key } }),
      });
    } catch (error) {
      await listener.close();
      await tlsListener?.close();
      await sync?.stop();
      throw error;
    }
  }

  // After a flood stops, say how many lines were left out since the last one written.
  const logDrain = setInterval(() => {
    for (const [key, count] of logThrottle.drain(Date.now())) {
      logger.info("{count} more lines like '{key}' were not logged", { count, key });
    }
  }, LOG_INTERVAL_MS);

  let status: StatusServer | null = null;
  let runtime: RuntimeMetrics | null = null;
  let opsConsole: MasterConsole | null = null;
  if (resolved.status !== false) {
    try {
      const auth = await AdminAuth.create({
        token: await loadAdminToken(
          resolved.status.adminToken ?? null,
          resolved.status.adminTokenFile ?? null,
        ),
        consolePublic: resolved.status.consolePublic ?? true,
      });
      const processMetrics = new RuntimeMetrics({
        role: "master",
        gcMetrics: gcMetricsRequested(),
      });
      runtime = processMetrics;
      exportMetricFamilies(() => metrics.families());
      const sum = (values: Iterable<{ value: number }>) => {
        let total = 0;
        for (const s of values) total += s.value;
        return total;
      };
      opsConsole = new MasterConsole(
        {
          serverName,
          uptimeMs: () => performance.now() - startedAt,
          connections: () => active.size,
          clusters: () => {
            const now = Date.now();
            return registry.list().map((c) => ({
              id: c.id,
              name: c.name,
              host: c.host,
              port: c.port,
              load: c.load,
              maxConnections: c.maxConnections,
              heartbeatAgeMs: Math.max(0, now - c.lastHeartbeat),
              keyVersion: c.keyVersion,
              registeredForMs: Math.max(0, now - c.registeredAt),
              draining: allocator.isDraining(c.id),
              pageUrl: pageUrls.get(c.id) ?? null,
              plugins: pluginSummaries.get(c.id) ?? [],
            }));
          },
          counters: () => ({
            ticketsIssued: metrics.ticketsIssued.value,
            joinsRefused: sum(metrics.joinsRefused.samples()),
            registrationFailures: sum(metrics.authFailures.samples()),
            bytesIn: metrics.traffic("bytesIn"),
            bytesOut: metrics.traffic("bytesOut"),
          }),
          eventLoopLagMaxMs: () => processMetrics.maxLagSeconds * 1000,
          plainPage: () =>
            renderStatusPage({
              serverName,
              clusters: registry.list(),
              connections: active.size,
              uptimeS: (performance.now() - startedAt) / 1000,
              now: Date.now(),
            }),
          drain: (id, on) => {
            const record = registry.get(id);
            if (record === undefined) return false;
            allocator.setDraining(record.id, on);
            logger.warn("cluster {name} ({id}) {state}", {
              name: record.name,
              id,
              state: on ? "draining: no new tickets" : "no longer draining",
            });
            return true;
          },
        },
        auth,
        logger,
      );
      status = startStatusServer({
        hostname: resolved.status.hostname ?? "127.0.0.1",
        port: resolved.status.port,
        health: () => {
          const shared = sync?.status();
          return {
            // A failing store degrades the master: it keeps serving the clusters it knows.
            status: shared === undefined || shared.ok ? "ok" : "degraded",
            role: "master",
            clusters: registry.size,
            connections: active.size,
            uptimeS: Math.floor((performance.now() - startedAt) / 1000),
            ...(shared === undefined ? {} : { registry: shared }),
          };
        },
        metrics: () => [
          ...metrics.families(),
          ...processMetrics.families(),
          ...(sync?.metricFamilies() ?? []),
          ...resolved.metricFamilies(),
        ],
        routes: opsConsole.routes,
      });
    } catch (error) {
      clearInterval(logDrain);
      runtime?.stop();
      opsConsole?.close();
      await listener.close();
      await tlsListener?.close();
      await webSocket?.close();
      await sync?.stop();
      throw error;
    }
  }

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      logger.info("master stopping");
      clearInterval(logDrain);
      for (const record of registry.list()) registry.remove(record.id, "shutdown");
      const shuttingDown = { code: ErrorCode.ShuttingDown, message: "master shutting down" };
      await Promise.all([
        listener.close(shuttingDown),
        tlsListener?.close(shuttingDown),
        webSocket?.close(shuttingDown),
      ]);
      await settle(pending, STOP_WAIT_MS);
      slots.stop();
      await sync?.stop();
      opsConsole?.close();
      await status?.close();
      runtime?.stop();
      for (const [reason, count] of registrationLog.drain(Number.POSITIVE_INFINITY)) {
        logger.warn("{count} more cluster registrations refused: {reason}", { count, reason });
      }
      logger.info("master stopped");
    })();
    return stopping;
  };

  const addr = { hostname: listener.addr.hostname, port: listener.addr.port };
  warnIfFfiUnavailable(logger);
  logger.info("master {name} listening on {host}:{port}", {
    name: serverName,
    host: addr.hostname,
    port: addr.port,
  });
  if (webSocket !== null) {
    logger.info("master {name} WebSocket on {scheme}://{host}:{port}{path}", {
      name: serverName,
      scheme: webSocket.scheme,
      host: webSocket.addr.hostname,
      port: webSocket.addr.port,
      path: webSocket.path,
    });
  }
  return {
    addr,
    statusAddr: status === null ? null : status.addr,
    tlsAddr: tlsListener === null
      ? null
      : { hostname: tlsListener.addr.hostname, port: tlsListener.addr.port },
    webSocketAddr: webSocket === null ? null : {
      hostname: webSocket.addr.hostname,
      port: webSocket.addr.port,
      path: webSocket.path,
      scheme: webSocket.scheme,
    },
    registry: registry.view(),
    metrics,
    registryStatus: () => sync?.status() ?? null,
    stop,
    [Symbol.asyncDispose]: stop,
  };
}

/** Waits until every promise in `pending` settled, or `timeoutMs`, whichever comes first. */
async function settle(pending: Set<Promise<unknown>>, timeoutMs: number): Promise<void> {
  if (pending.size === 0) return;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, timeoutMs);
  });
  await Promise.race([Promise.allSettled([...pending]), timeout]);
  clearTimeout(timer);
}
