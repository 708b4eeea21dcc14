/**
 * The socket adapter for one connection to the master: decodes frames, answers the Hello,
 * then drives a {@linkcode MasterClientSession} (clients) or a {@linkcode ClusterRegistration}
 * followed by a {@linkcode ClusterLink} (clusters), turning their actions into frames on a
 * `FrameTransport` and their deadlines into timers. All protocol decisions live in those
 * state machines; this file only wires them to the socket, keeps per-connection work in
 * order and bounded, and cleans up when the connection ends.
 *
 * Bad input closes only this connection, with a logged reason; no promise started here is
 * left without a handler, and no key, passphrase, credential or ticket is logged.
 *
 * @module
 */

import type { FrameTransport } from "../shared/frame_session.ts";
import type { Frame } from "../shared/protocol/frame.ts";
import { decodePacket, encodePacket } from "../shared/protocol/codec.ts";
import type { Packet, PluginSummary } from "../shared/protocol/packets.ts";
import { ErrorCode, ProtocolError } from "../shared/protocol/protocol_error.ts";
import type { LogThrottle } from "../shared/log_throttle.ts";
import { logSuccess, roleLogger } from "../shared/logging.ts";
import type { ClusterAllocator } from "./allocation.ts";
import type { AuthenticateHook } from "./authenticate.ts";
import { inSpan, recordSpan } from "../shared/telemetry.ts";
import { type JoinOutcome, MasterClientSession } from "./master_client_session.ts";
import type { ClusterKeySource } from "./cluster_keys.ts";
import { ClusterLink } from "./cluster_link.ts";
import {
  ClusterRegistration,
  REGISTRATION_FAILED,
  type RegistrationFailure,
  type RegistrationStep,
} from "./cluster_registration.ts";
import { closeWith, type ConnectionAction } from "./connection_action.ts";
import type { ConnectionSlots } from "./connection_slots.ts";
import { answerHello } from "./hello.ts";
import type { JoinLimiter } from "./join_limiter.ts";
import { addressKey } from "../shared/ip_address.ts";
import type { MasterMetrics } from "./metrics.ts";
import type { ClusterId, ClusterRegistry } from "./registry.ts";

const logger = roleLogger("master", "connection");

/** Most client requests in flight on one connection before it is dropped. */
const MAX_PENDING_REQUESTS = 32;

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

type Phase =
  | { readonly kind: "hello" }
  | { readonly kind: "client"; readonly session: MasterClientSession }
  | { readonly kind: "registering"; readonly registration: ClusterRegistration }
  | { readonly kind: "linked"; readonly link: ClusterLink }
  | { readonly kind: "closed" };

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
  #phase: Phase = { kind: "hello" };
  #timer: ReturnType<typeof setTimeout> | undefined;
  #requests: Promise<void> = Promise.resolve();
  #pendingRequests = 0;
  /** Set once a failed registration has been counted and logged (it ends only once). */
  #registrationOver = false;

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
    connection.closed.then((info) => this.#onClosed(info.reason)).catch((error: unknown) => {
      logger.error("cleanup after {remote} failed: {error}", { remote: this.#remote, error });
    });
    connection.start(this.#onFrame);
  }

  readonly #onFrame = (frame: Frame): void => {
    const packet = decodePacket(frame);
    if (packet instanceof ProtocolError) {
      // A malformed frame mid-registration (e.g. a proof of the wrong length) ends it too.
      if (this.#phase.kind === "registering") {
        const registration = this.#phase.registration;
        const step = registration.unexpected();
        if (step?.kind === "refused") this.#registrationRefused(registration, step.reason);
      }
      // The first frame must be a Hello, whatever else it is (as on a cluster): an unknown
      // type or a payload that does not decode is BadHello there, not its decode error.
      const code = this.#phase.kind === "hello" ? ErrorCode.BadHello : packet.errorCode;
      this.#apply(closeWith(code, packet.message));
      return;
    }
    const phase = this.#phase;
    switch (phase.kind) {
      case "hello":
        this.#onHello(packet);
        return;
      case "client":
        this.#queueClientRequest(phase.session, packet);
        return;
      case "registering":
        this.#onRegistrationPacket(phase.registration, packet);
        return;
      case "linked":
        this.#apply(phase.link.handle(packet, this.#context.now()));
        return;
      case "closed":
        return;
    }
  };

  #onHello(packet: Packet): void {
    const outcome = answerHello(packet, this.#context.serverName);
    if (!outcome.ok) {
      this.#apply(outcome.action);
      return;
    }
    const refusal = this.#context.slots.hello(this.#connection, outcome.role);
    if (refusal !== undefined) {
      this.#phase = { kind: "closed" };
      this.#apply(refusal);
      return;
    }
    this.#send(outcome.reply);
    this.#connection.markEstablished();
    const context = this.#context;
    if (outcome.role === "client") {
      const addr = this.#connection.remoteAddr;
      this.#phase = {
        kind: "client",
        session: new MasterClientSession({
          allocator: context.allocator,
          authenticate: context.authenticate,
          remoteAddr: { hostname: addr.hostname, port: addr.port },
          maxFrameBytes: context.maxFrameBytes,
          joinLimiter: context.joinLimiter,
          connectionKey: String(++MasterConnection.#nextId),
          logThrottle: context.logThrottle,
          now: context.now,
        }),
      };
      return;
    }
    // The deadline counts from connecting: Hello time is part of the registration.
    const registration = new ClusterRegistration({
      deadline: this.#acceptedAt + context.registrationTimeoutMs,
    });
    this.#phase = { kind: "registering", registration };
    this.#setTimer(registration.deadline - context.now(), () => {
      const step = registration.expire();
      if (step !== undefined) this.#onRegistrationStep(registration, step);
    });
  }

  // ---------------------------------------------------------------- clients

  #queueClientRequest(session: MasterClientSession, packet: Packet): void {
    if (this.#pendingRequests >= MAX_PENDING_REQUESTS) {
      this.#apply(closeWith(ErrorCode.SlowConsumer, "too many requests in flight"));
      return;
    }
    this.#pendingRequests++;
    const queuedAt = performance.now();
    // Chained so answers leave in the order the requests came, whatever each one awaits.
    const work = this.#requests.then(async () => {
      if (this.#phase.kind === "closed") return;
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
      this.#pendingRequests--;
      const join = result.join;
      if (join !== undefined) this.#reportJoin(join);
      this.#apply(result.action);
    }).catch((error: unknown) => {
      logger.error("request from {remote} failed: {error}", { remote: this.#remote, error });
      this.#apply(closeWith(ErrorCode.Internal, "internal error"));
    });
    this.#requests = work;
    this.#context.track(work);
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

  #onRegistrationPacket(registration: ClusterRegistration, packet: Packet): void {
    const context = this.#context;
    switch (packet.kind) {
      case "BecomeCluster": {
        const work = (async () => {
          const key = registration.state === "awaiting_become"
            ? await context.clusterKeys(packet.keyName)
            : undefined;
          const step = await registration.challenge(packet, key, context.now());
          this.#onRegistrationStep(registration, step);
        })().catch((error: unknown) => {
          logger.error("cluster challenge for {remote} failed: {error}", {
            remote: this.#remote,
            error,
          });
          this.#apply(closeWith(ErrorCode.Internal, "internal error"));
        });
        context.track(work);
        return;
      }
      case "AnswerCluster": {
        // The cluster sends nothing more until it reads CreateCluster, so sealing can start
        // when the proof is checked (see #registered); any frame meanwhile fails it.
        const work = registration.answer(packet, context.now()).then(
          (step) => this.#onRegistrationStep(registration, step),
        ).catch((error: unknown) => {
          logger.error("cluster answer from {remote} failed: {error}", {
            remote: this.#remote,
            error,
          });
          this.#apply(closeWith(ErrorCode.Internal, "internal error"));
        });
        context.track(work);
        return;
      }
      case "Error": {
        // A cluster that cannot open the challenge says so before it leaves.
        const step = registration.peerLeft(true);
        if (step !== undefined) this.#onRegistrationStep(registration, step);
        return;
      }
      default: {
        const step = registration.unexpected();
        if (step?.kind === "refused") this.#registrationRefused(registration, step.reason);
        this.#apply(closeWith(ErrorCode.UnexpectedPacket, `unexpected ${packet.kind}`));
      }
    }
  }

  #onRegistrationStep(registration: ClusterRegistration, step: RegistrationStep): void {
    if (this.#phase.kind !== "registering") return;
    switch (step.kind) {
      case "challenge":
        this.#send(step.packet);
        return;
      case "refused":
        this.#registrationRefused(registration, step.reason);
        this.#apply({ kind: "close", ...REGISTRATION_FAILED });
        return;
      case "registered":
        this.#registered(step);
        return;
    }
  }

  /** Counts and warns about a failed registration, once per connection, never a secret. */
  #registrationRefused(registration: ClusterRegistration, reason: RegistrationFailure): void {
    if (this.#registrationOver) return;
    this.#registrationOver = true;
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
      key: registration.keyName === undefined
        ? ""
        : ` (key name ${JSON.stringify(registration.keyName)})`,
      more: leftOut > 0 ? `; ${leftOut} more refused for this reason since the last line` : "",
    });
  }

  #registered(step: Extract<RegistrationStep, { kind: "registered" }>): void {
    const context = this.#context;
    this.#clearTimer();
    const refusal = context.slots.registered(this.#connection);
    if (refusal !== undefined) {
      this.#phase = { kind: "closed" };
      this.#apply(refusal);
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
    // CreateCluster is the last plaintext frame; everything after it is sealed both ways. The
    // cluster sends its first record only after reading CreateCluster, so the reader switches
    // before any record can arrive.
    this.#send({ kind: "CreateCluster", clusterId: record.id });
    this.#connection.startSealing({
      sendKey: step.linkKeys.masterToCluster,
      receiveKey: step.linkKeys.clusterToMaster,
    });
    const link = new ClusterLink({
      id: record.id,
      registry: context.registry,
      heartbeatTimeoutMs: context.heartbeatTimeoutMs,
      ...(context.onClusterPage === undefined ? {} : { onPage: context.onClusterPage }),
      ...(context.onClusterPlugins === undefined ? {} : { onPlugins: context.onClusterPlugins }),
    });
    this.#phase = { kind: "linked", link };
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
      this.#apply(check.action);
    });
  }

  // ---------------------------------------------------------------- plumbing

  #send(packet: Packet): void {
    this.#connection.send(encodePacket(packet));
  }

  #apply(action: ConnectionAction): void {
    switch (action.kind) {
      case "none":
        return;
      case "send":
        try {
          this.#send(action.packet);
        } catch (error) {
          // A field out of range for the wire (a bug, not the peer's fault).
          logger.error("cannot encode {kind} for {remote}: {error}", {
            kind: action.packet.kind,
            remote: this.#remote,
            error,
          });
          this.#apply(closeWith(ErrorCode.Internal, "internal error"));
        }
        return;
      case "close":
        if (!this.#connection.isOpen) return;
        logger.debug("closing {remote}: {message}", {
          remote: this.#remote,
          message: action.message,
        });
        this.#connection.close(
          action.code === undefined ? undefined : { code: action.code, message: action.message },
        );
        return;
    }
  }

  #setTimer(delayMs: number, run: () => void): void {
    this.#clearTimer();
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (this.#phase.kind !== "closed") run();
    }, Math.max(0, delayMs));
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #onClosed(reason: string): void {
    const phase = this.#phase;
    this.#phase = { kind: "closed" };
    this.#clearTimer();
    const context = this.#context;
    context.metrics.connectionClosed(this.#connection);
    if (phase.kind === "registering") {
      const step = phase.registration.peerLeft(false);
      if (step?.kind === "refused") this.#registrationRefused(phase.registration, step.reason);
    }
    if (phase.kind === "linked") {
      const id = phase.link.id;
      if (context.links.get(id) === this.#connection) context.links.delete(id);
      if (context.registry.get(id) !== undefined) {
        logger.info("cluster {id} disconnected: {reason}", { id, reason });
        phase.link.disconnected();
      }
    }
  }
}
