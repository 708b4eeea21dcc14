/**
 * A cluster's client connections from accept to cleanup: {@linkcode ClientAdmission} refuses
 * new ones while the cluster drains or stops, holds the unauthenticated ones in their own
 * {@linkcode PendingGate} pool, drives each one's {@linkcode ClientSession} handshake, weighs an
 * authenticated player's frames against its {@linkcode PlayerRateLimit} before anything decodes
 * them ({@linkcode FloodResponse} handles the rest), hands plugin commands and moves to the game
 * room, and removes the player once its connection has closed. It was split out of the cluster
 * server (issue 22) so that the server keeps only start, stop and wiring.
 *
 * It must never let one connection's bad input reach another (each closes only its own
 * connection, with a logged reason; before authentication the gate counts and rate-limits the
 * lines), never leave a close's cleanup without a handler, and never allocate per frame: the
 * per-connection callbacks are made once at accept and the clock is read once per turn.
 *
 * @module
 */

import { roleLogger } from "../shared/logging.ts";
import { PendingGate } from "../shared/pending_gate.ts";
import { peerLabel } from "../shared/peer_label.ts";
import type { ClientId } from "../shared/plugin.ts";
import type { Frame } from "../shared/protocol/frame.ts";
import { ErrorCode } from "../shared/protocol/protocol_error.ts";
import { recordSpan } from "../shared/telemetry.ts";
import { broadcast, type CloseInfo, type FrameTransport } from "../shared/transport.ts";
import { driveMachine } from "../shared/drive_machine.ts";
import type { CloseAction } from "../shared/machine_action.ts";
import { ClientSession, type ClientSessionOptions, type SessionEvent } from "./client_session.ts";
import type { Settings } from "./cluster_options.ts";
import { disconnectFrame } from "./disconnect_frame.ts";
import { FloodResponse } from "./flood_response.ts";
import type { GameRoom } from "./game_room.ts";
import type { ClusterMetrics } from "./metrics.ts";
import type { PlayerOutbox } from "./player_outbox.ts";
import { PlayerRateLimit } from "./player_rate_limit.ts";
import type { PlayerTable } from "./players.ts";

const logger = roleLogger("cluster");

/**
 * What {@linkcode ClientAdmission} works with: the running cluster's pieces, and getters for
 * what is known only once it has started or changes while it runs.
 *
 * @example
 * ```ts
 * import type { ClientAdmissionOptions } from "./client_admission.ts";
 * import assert from "node:assert/strict";
 *
 * let draining = false;
 * const isDraining: ClientAdmissionOptions["draining"] = () => draining;
 * draining = true;
 * assert.equal(isDraining(), true);
 * ```
 */
export interface ClientAdmissionOptions {
  /** The authenticated players (a ticket's player is added here, and removed on close). */
  readonly players: PlayerTable<FrameTransport>;
  /** Where players join and leave the broadcasts to everyone. */
  readonly outbox: Pick<PlayerOutbox, "join" | "leave">;
  /** Where players' joins, leaves, plugin commands and moves go. */
  readonly room: Pick<GameRoom, "join" | "leave" | "message" | "move">;
  /** Where accepts, refusals, auth results, closes and throttling are counted. */
  readonly metrics: ClusterMetrics;
  /** The pending pool's bounds and the players' rate limits. */
  readonly settings: Pick<
    Settings,
    "maxPendingConnections" | "maxPendingPerAddress" | "playerRateLimits"
  >;
  /** Each new session's options (read at each accept: they exist once the keys are loaded). */
  readonly sessionOptions: () => Omit<ClientSessionOptions, "admit" | "tls">;
  /** Whether the cluster is stopping (new connections are refused). */
  readonly closing: () => boolean;
  /** Whether an operator drains the cluster (new connections are refused, players stay). */
  readonly draining: () => boolean;
  /** The cluster id of the latest registration, for the admission spans. */
  readonly clusterId: () => number | undefined;
}

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

/**
 * Accepts, drives and cleans up a cluster's client connections.
 *
 * @example A draining cluster refuses a new connection and counts it
 * ```ts
 * import { ClientAdmission } from "./client_admission.ts";
 * import { settingsOf } from "./cluster_options.ts";
 * import { GameRoom } from "./game_room.ts";
 * import { ClusterMetrics } from "./metrics.ts";
 * import { PlayerOutbox } from "./player_outbox.ts";
 * import { PlayerTable } from "./players.ts";
 * import type { CloseReason, FrameTransport } from "../shared/transport.ts";
 * import assert from "node:assert/strict";
 *
 * const players = new PlayerTable<FrameTransport>();
 * const outbox = new PlayerOutbox({ players, kicking() {} });
 * const metrics = new ClusterMetrics({
 *   players: () => players.size,
 *   connections: () => [],
 *   masterLinkState: () => "disabled",
 *   fragments: () => undefined,
 * });
 * const admission = new ClientAdmission({
 *   players,
 *   outbox,
 *   room: new GameRoom({ players, outbox, metrics, maxFrameBytes: 65536, clock: () => 0 }),
 *   metrics,
 *   settings: settingsOf({}),
 *   sessionOptions: () => {
 *     throw new Error("a refused connection gets no session");
 *   },
 *   closing: () => false,
 *   draining: () => true,
 *   clusterId: () => undefined,
 * });
 * const closes: (CloseReason | undefined)[] = [];
 * const connection = { close: (reason?: CloseReason) => void closes.push(reason) };
 * admission.accept(connection as unknown as FrameTransport, false);
 * assert.equal(metrics.connectionsRefused.value, 1);
 * assert.equal(closes[0]?.message, "cluster draining: no new players");
 * assert.equal(admission.size, 0);
 * admission.stop();
 * ```
 */
export class ClientAdmission {
  readonly #players: PlayerTable<FrameTransport>;
  readonly #outbox: Pick<PlayerOutbox, "join" | "leave">;
  readonly #room: Pick<GameRoom, "join" | "leave" | "message" | "move">;
  readonly #metrics: ClusterMetrics;
  readonly #options: ClientAdmissionOptions;
  readonly #connections = new Map<FrameTransport, ConnectionRecord>();
  /** Connections not authenticated yet: their own pool, so they never take a player's slot. */
  readonly #pending: PendingGate;
  /** What happens to the frames players' rate limits drop. */
  readonly #flood: FloodResponse;
  #turnTime = -1;
  readonly #endTurn = () => this.#turnTime = -1;

  /**
   * Creates the admission, with its pending pool and flood response.
   *
   * @param options The cluster's pieces and getters.
   * @throws {RangeError} If a pending-pool bound is not an integer ≥ 1.
   */
  constructor(options: ClientAdmissionOptions) {
    this.#options = options;
    this.#players = options.players;
    this.#outbox = options.outbox;
    this.#room = options.room;
    this.#metrics = options.metrics;
    this.#flood = new FloodResponse({ metrics: options.metrics, players: options.players });
    this.#pending = new PendingGate({
      maxPending: options.settings.maxPendingConnections,
      maxPerAddress: options.settings.maxPendingPerAddress,
      metrics: options.metrics.preAuth,
      logger,
    });
  }

  /** Connections open now, authenticated or not. */
  get size(): number {
    return this.#connections.size;
  }

  /** Connections not authenticated yet. */
  get pendingSize(): number {
    return this.#pending.size;
  }

  /** The connections open now (for the traffic counters). */
  connections(): IterableIterator<FrameTransport> {
    return this.#connections.keys();
  }

  /**
   * When a connection was accepted (Unix ms), or undefined for one that is not open.
   *
   * @param connection The connection.
   */
  acceptedAt(connection: FrameTransport): number | undefined {
    return this.#connections.get(connection)?.acceptedAt;
  }

  /**
   * Notes why a player is leaving (logged and given to plugins once its connection closes).
   *
   * @param connection The player's connection (others are ignored).
   * @param reason Why it leaves.
   */
  leaving(connection: FrameTransport, reason: string): void {
    const record = this.#connections.get(connection);
    if (record !== undefined) record.leaveReason = reason;
  }

  /**
   * Takes a new connection: refuses it while the cluster stops or drains, else puts it in the
   * pending pool and drives its handshake.
   *
   * @param connection A just-accepted connection.
   * @param tls Whether it came through the TLS listener (the TLS session mode is allowed).
   */
  accept(connection: FrameTransport, tls: boolean): void {
    const closing = this.#options.closing();
    if (closing || this.#options.draining()) {
      this.#metrics.connectionsRefused.inc();
      connection.close({
        code: ErrorCode.ShuttingDown,
        message: closing ? "cluster shutting down" : "cluster draining: no new players",
      });
      return;
    }
    // max_connections counts players, checked when a ticket is accepted (PlayerTable); a new
    // connection only needs a pending slot.
    if (!this.#pending.accept(connection)) return;
    this.#metrics.connectionsAccepted.inc();
    const session = new ClientSession({
      ...this.#options.sessionOptions(),
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

  /**
   * Tells every player why the cluster closes (DisconnectCluster) and closes their
   * connections; their queues drain as the sockets close.
   *
   * @param reason Why (the players' leave reason too).
   */
  disconnectPlayers(reason: string): void {
    const players = [...this.#players.players()];
    if (players.length === 0) return;
    broadcast(this.#players.connections, disconnectFrame(reason));
    for (const player of players) {
      this.leaving(player.connection, reason);
      player.connection.close();
    }
  }

  /** Settles once every connection open now has closed and been cleaned up. */
  async cleanedUp(): Promise<void> {
    await Promise.all([...this.#connections.values()].map((r) => r.cleanedUp));
  }

  /**
   * Writes the counts of flood log lines left out once their window closed.
   *
   * @param now The time now (monotonic ms; `Infinity`: all of them).
   */
  drainLog(now: number): void {
    this.#flood.drainLog(now);
  }

  /** Writes every count still held back and stops the pending pool's timer. */
  stop(): void {
    this.#flood.drainLog(Infinity);
    this.#pending.stop();
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
        record.limit = new PlayerRateLimit(this.#options.settings.playerRateLimits);
        this.#joined(connection, event.clientId);
        recordSpan("sustenet.cluster.admission", {
          "sustenet.admission.status": 20,
          "sustenet.cluster.id": this.#options.clusterId() ?? 0,
          "sustenet.client.id": event.clientId,
          "sustenet.player.id": this.#players.get(event.clientId)?.playerId ?? "",
          "net.peer.address": peerLabel(connection.remoteAddr),
        }, record.acceptedAt);
        return;
      case "refused":
        this.#metrics.authResult(event.status);
        recordSpan(
          "sustenet.cluster.admission",
          {
            "sustenet.admission.status": event.status,
            "sustenet.cluster.id": this.#options.clusterId() ?? 0,
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
    this.#metrics.authResult(20);
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
    this.#metrics.connectionClosed(connection);
    if (info.code === ErrorCode.SlowConsumer) this.#metrics.slowConsumers.inc();
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
