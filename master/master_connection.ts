/**
 * The socket adapter for one connection to the master: runs a
 * {@linkcode MasterConnectionMachine} (master/master_connection_machine.ts: Hello, then a
 * client's requests or a cluster's registration and link) on a `FrameTransport` with
 * `driveMachine`, and does the server's part of its events: connection slots, the registry,
 * the client sessions' requests (kept in order), metrics, logs, spans, and the deadlines as
 * timers. All protocol decisions live in the machines; this file only wires them to the
 * socket and cleans up when the connection ends.
 *
 * Bad input closes only this connection, with a logged reason; no promise started here is
 * left without a handler, and no key, passphrase, credential or ticket is logged.
 *
 * @module
 */

import { driveMachine, type MachineDriver } from "../shared/drive_machine.ts";
import type { FrameTransport } from "../shared/frame_session.ts";
import type { CloseAction } from "../shared/machine_action.ts";
import type { Packet, PluginSummary } from "../shared/protocol/packets.ts";
import type { LogThrottle } from "../shared/log_throttle.ts";
import { logSuccess, roleLogger } from "../shared/logging.ts";
import type { ClusterAllocator } from "./allocation.ts";
import type { AuthenticateHook } from "./authenticate.ts";
import { inSpan, recordSpan } from "../shared/telemetry.ts";
import {
  type ClientSessionResult,
  type JoinOutcome,
  MasterClientSession,
} from "./master_client_session.ts";
import type { ClusterKeySource } from "./cluster_keys.ts";
import { ClusterLink } from "./cluster_link.ts";
import type { RegistrationFailure, RegistrationStep } from "./cluster_registration.ts";
import type { ConnectionSlots } from "./connection_slots.ts";
import type { JoinLimiter } from "./join_limiter.ts";
import { addressKey } from "../shared/ip_address.ts";
import type { MasterMetrics } from "./metrics.ts";
import type { ClusterId, ClusterRegistry } from "./registry.ts";
import {
  type MasterConnectionDerived,
  type MasterConnectionEvent,
  MasterConnectionMachine,
} from "./master_connection_machine.ts";

const logger = roleLogger("master", "connection");

/** What every connection of one master shares. */
export interface MasterContext {
  /** Name sent in HelloOk. */
  readonly serverName: string;
  /** Told each cluster's status page URL (ClusterPage), for the console's links. */
  readonly onClusterPage?: (id: ClusterId, url: string) => void;
  /** Told each cluster's plugins and their state (ClusterPlugins), for the console. */
  readonly onClusterPlugins?: (id: ClusterId, plugins: readonly PluginSummary[]) => void;
  /** Live clusters. */
  readonly registry: ClusterRegistry;
  /** Cluster choice and tickets. */
  readonly allocator: ClusterAllocator;
  /** Counters. */
  readonly metrics: MasterMetrics;
  /**
   * Bounds the registration-failure warnings, keyed by reason: a flood of failed
   * registrations is one line per reason and interval, with the count left out.
   */
  readonly registrationLog: LogThrottle;
  /** Player identity hook. */
  readonly authenticate: AuthenticateHook;
  /** Cluster key lookup. */
  readonly clusterKeys: ClusterKeySource;
  /** Ticket rate limits of client connections. */
  readonly joinLimiter: JoinLimiter;
  /**
   * Throttle of per-request log lines (tickets, refusals), keyed by what happened and the
   * client's address: a flood is one line per interval with a count.
   */
  readonly logThrottle: LogThrottle;
  /** Frame bound of clients (cluster lists are cut to fit). */
  readonly maxFrameBytes: number;
  /** Time a cluster has from connecting to registered, in ms. */
  readonly registrationTimeoutMs: number;
  /** A cluster silent this long is dropped, in ms. */
  readonly heartbeatTimeoutMs: number;
  /** The pending, client and cluster pools (slots taken at the Hello and at registration). */
  readonly slots: ConnectionSlots;
  /** The connection of each registered cluster (to close a replaced one). */
  readonly links: Map<ClusterId, FrameTransport>;
  /** Registers background work so `stop()` can wait for it. */
  readonly track: (work: Promise<unknown>) => void;
  /** Clock in Unix ms. */
  readonly now: () => number;
}

function describe(connection: FrameTransport): string {
  const addr = connection.remoteAddr;
  return addr.transport === "tcp" ? `${addr.hostname}:${addr.port}` : addr.transport;
}

/**
 * Serves one accepted connection until it closes.
 *
 * @example Started for each accepted connection
 * ```ts
 * import { MasterConnection } from "./master_connection.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(typeof MasterConnection.serve, "function");
 * ```
 */
export class MasterConnection {
  static #nextId = 0;
  readonly #connection: FrameTransport;
  readonly #context: MasterContext;
  readonly #remote: string;
  readonly #acceptedAt: number;
  readonly #machine: MasterConnectionMachine;
  readonly #driver: MachineDriver<MasterConnectionDerived, MasterConnectionEvent>;
  #client: MasterClientSession | undefined;
  #link: ClusterLink | undefined;
  #closed = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #requests: Promise<unknown> = Promise.resolve();

  /**
   * Starts serving `connection` (reading begins at once).
   *
   * @param connection An accepted connection without a frame handler yet.
   * @param context What the master's connections share.
   */
  static serve(connection: FrameTransport, context: MasterContext): MasterConnection {
    return new MasterConnection(connection, context);
  }

  private constructor(connection: FrameTransport, context: MasterContext) {
    this.#connection = connection;
    this.#context = context;
    this.#remote = describe(connection);
    this.#acceptedAt = context.now();
    this.#machine = new MasterConnectionMachine({
      serverName: context.serverName,
      admitRole: (role) => context.slots.hello(connection, role),
      request: (packet) => this.#request(packet),
      clusterKeys: context.clusterKeys,
      registrationDeadline: this.#acceptedAt + context.registrationTimeoutMs,
    });
    connection.closed.then((info) => this.#onClosed(info.reason)).catch((error: unknown) => {
      logger.error("cleanup after {remote} failed: {error}", { remote: this.#remote, error });
    });
    this.#driver = driveMachine(connection, this.#machine, {
      now: context.now,
      onEvent: (event) => this.#onEvent(event),
      onClose: (action) => this.#onClose(action),
      onDeriveError: (error) => {
        const what = this.#client === undefined ? "cluster registration step" : "request";
        logger.error("{what} from {remote} failed: {error}", { what, remote: this.#remote, error });
      },
      track: context.track,
    });
  }

  #onEvent(event: MasterConnectionEvent): void {
    switch (event.type) {
      case "greeted":
        this.#connection.markEstablished();
        if (event.role === "client") {
          this.#client = this.#newClientSession();
          return;
        }
        this.#setTimer(
          this.#acceptedAt + this.#context.registrationTimeoutMs - this.#context.now(),
          () => this.#driver.apply(this.#machine.expire()),
        );
        return;
      case "answered":
        if (event.result.join !== undefined) this.#reportJoin(event.result.join);
        return;
      case "refused":
        this.#registrationRefused(event.reason, event.keyName);
        return;
      case "registered":
        this.#registered(event.step);
        return;
    }
  }

  #onClose(action: CloseAction): void {
    if (!this.#connection.isOpen) return;
    if (action.level === "error") {
      logger.error("closing {remote}: {reason}", { remote: this.#remote, reason: action.reason });
      return;
    }
    logger.debug("closing {remote}: {message}", {
      remote: this.#remote,
      message: action.reason,
    });
  }

  // ---------------------------------------------------------------- clients

  #newClientSession(): MasterClientSession {
    const context = this.#context;
    const addr = this.#connection.remoteAddr;
    return new MasterClientSession({
      allocator: context.allocator,
      authenticate: context.authenticate,
      remoteAddr: { hostname: addr.hostname, port: addr.port },
      maxFrameBytes: context.maxFrameBytes,
      joinLimiter: context.joinLimiter,
      connectionKey: String(++MasterConnection.#nextId),
      logThrottle: context.logThrottle,
      now: context.now,
    });
  }

  /** One client request, answered after those before it (whatever each one awaits). */
  #request(packet: Packet): Promise<ClientSessionResult | undefined> {
    const session = this.#client as MasterClientSession;
    const queuedAt = performance.now();
    const work = this.#requests.then(async () => {
      if (this.#closed) return undefined;
      const result = packet.kind === "JoinCluster"
        ? await inSpan("sustenet.master.join", {
          "sustenet.cluster.requested": packet.clusterId,
          "net.peer.address": this.#remote,
        }, async (span) => {
          const answer = await session.handle(packet);
          const join = answer.join;
          if (join?.issued === true) {
            span.setAttributes({
              "sustenet.join.issued": true,
              "sustenet.cluster.id": join.clusterId,
              "sustenet.player.id": join.playerId,
            });
          } else if (join !== undefined) {
            span.setAttributes({
              "sustenet.join.issued": false,
              "sustenet.join.refusal": join.reason,
            });
          }
          return answer;
        })
        : await session.handle(packet);
      this.#context.metrics.requestSeconds.observe((performance.now() - queuedAt) / 1000);
      return result;
    });
    // The next request waits for this one, failed or not.
    this.#requests = work.catch(() => {});
    return work;
  }

  /** Counts a join outcome and logs it, at most a few lines per address per interval. */
  #reportJoin(join: JoinOutcome): void {
    const metrics = this.#context.metrics;
    const address = this.#address();
    if (join.issued) {
      metrics.ticketsIssued.inc();
      const more = this.#admitLog(`ticket ${address}`);
      if (more === null) return;
      logger.info("ticket for {playerId} to cluster {clusterId} issued to {remote}{more}", {
        playerId: join.playerId,
        clusterId: join.clusterId,
        remote: this.#remote,
        more,
      });
      return;
    }
    metrics.joinsRefused.inc(join.reason);
    if (join.scope !== undefined) {
      if (join.reason === "reservation_cap") metrics.reservationsCapped.inc(join.scope);
      else metrics.ticketsRateLimited.inc(join.scope);
    }
    if (join.closed === true) {
      metrics.joinAbuseClosed.inc();
      const more = this.#admitLog(`join abuse ${address}`);
      if (more === null) return;
      logger.warn(
        "client {remote} closed: kept asking for join tickets while refused ({reason}, " +
          "{scope} limit){more}",
        { remote: this.#remote, reason: join.reason, scope: join.scope, more },
      );
      return;
    }
    const scope = join.scope === undefined ? "" : ` ${join.scope}`;
    const more = this.#admitLog(`join refused ${join.reason}${scope} ${address}`);
    if (more === null) return;
    logger.info("join from {remote} refused: {reason}{scope}{more}", {
      remote: this.#remote,
      reason: join.reason,
      scope: join.scope === undefined ? "" : ` (${join.scope} limit)`,
      more,
    });
  }

  /**
   * Asks the log throttle for a line about `key`: `null` to leave it out, else the text to
   * append (how many like it were left out).
   */
  #admitLog(key: string): string | null {
    const suppressed = this.#context.logThrottle.admit(key, this.#context.now());
    if (suppressed === null) return null;
    return suppressed === 0 ? "" : ` (${suppressed} more like it not logged)`;
  }

  #address(): string {
    const addr = this.#connection.remoteAddr;
    return addr.transport === "tcp" ? addressKey(addr.hostname) : addr.transport;
  }

  // ---------------------------------------------------------------- clusters

  /** Counts and warns about a failed registration, once per connection, never a secret. */
  #registrationRefused(reason: RegistrationFailure, keyName: string | undefined): void {
    const context = this.#context;
    context.metrics.authFailures.inc(reason);
    recordSpan(
      "sustenet.master.cluster_registration",
      {
        "sustenet.registration.ok": false,
        "sustenet.registration.failure": reason,
        "net.peer.address": this.#remote,
      },
      this.#acceptedAt,
      reason,
    );
    // Keyed by reason, not address: a flood from many addresses stays one line per interval.
    const leftOut = context.registrationLog.admit(reason, context.now());
    if (leftOut === null) return;
    logger.warn("cluster registration from {remote} refused: {reason}{key}{more}", {
      remote: this.#remote,
      reason,
      key: keyName === undefined ? "" : ` (key name ${JSON.stringify(keyName)})`,
      more: leftOut > 0 ? `; ${leftOut} more refused for this reason since the last line` : "",
    });
  }

  #registered(step: Extract<RegistrationStep, { kind: "registered" }>): void {
    const context = this.#context;
    this.#clearTimer();
    const refusal = context.slots.registered(this.#connection);
    if (refusal !== undefined) {
      this.#driver.apply(this.#machine.act(refusal));
      return;
    }
    const { record, replaced } = context.registry.register(step.announcement, context.now());
    if (replaced !== undefined) {
      logger.warn(
        "cluster {name} ({id}) at {host}:{port} replaced by a newer registration; closing it",
        { name: replaced.name, id: replaced.id, host: replaced.host, port: replaced.port },
      );
      context.links.get(replaced.id)?.close();
      context.links.delete(replaced.id);
    }
    context.allocator.setClusterKey(record.id, step.clusterKey);
    context.links.set(record.id, this.#connection);
    const link = new ClusterLink({
      id: record.id,
      registry: context.registry,
      heartbeatTimeoutMs: context.heartbeatTimeoutMs,
      ...(context.onClusterPage === undefined ? {} : { onPage: context.onClusterPage }),
      ...(context.onClusterPlugins === undefined ? {} : { onPlugins: context.onClusterPlugins }),
    });
    this.#link = link;
    // CreateCluster, then sealed records both ways.
    this.#driver.apply(this.#machine.linked(link));
    context.metrics.clustersRegistered.inc();
    recordSpan("sustenet.master.cluster_registration", {
      "sustenet.registration.ok": true,
      "sustenet.cluster.id": record.id,
      "sustenet.cluster.name": record.name,
      "sustenet.cluster.address": `${record.host}:${record.port}`,
      "sustenet.cluster.key_version": record.keyVersion,
      "net.peer.address": this.#remote,
    }, this.#acceptedAt);
    logSuccess(logger, "cluster {name} ({id}) registered from {remote}: {host}:{port}", {
      name: record.name,
      id: record.id,
      remote: this.#remote,
      host: record.host,
      port: record.port,
    });
    this.#scheduleHeartbeatCheck(link, context.heartbeatTimeoutMs);
  }

  #scheduleHeartbeatCheck(link: ClusterLink, delayMs: number): void {
    this.#setTimer(delayMs, () => {
      const check = link.checkHeartbeat(this.#context.now());
      if (!check.expired) {
        this.#scheduleHeartbeatCheck(link, check.nextCheckMs);
        return;
      }
      logger.warn("cluster {id} missed its heartbeats; dropped", { id: link.id });
      this.#driver.apply(this.#machine.act(check.action));
    });
  }

  // ---------------------------------------------------------------- plumbing

  #setTimer(delayMs: number, run: () => void): void {
    this.#clearTimer();
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (!this.#closed) run();
    }, Math.max(0, delayMs));
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #onClosed(reason: string): void {
    this.#closed = true;
    this.#clearTimer();
    const context = this.#context;
    context.metrics.connectionClosed(this.#connection);
    for (const action of this.#machine.closed()) {
      if (action.type === "refused") this.#registrationRefused(action.reason, action.keyName);
    }
    const link = this.#link;
    if (link !== undefined) {
      const id = link.id;
      if (context.links.get(id) === this.#connection) context.links.delete(id);
      if (context.registry.get(id) !== undefined) {
        logger.info("cluster {id} disconnected: {reason}", { id, reason });
        link.disconnected();
      }
    }
  }
}
