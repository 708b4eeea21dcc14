// This module is browser compatible.
/**
 * {@linkcode ClusterSession}: a joined cluster, as the application sees it. It runs the
 * sans-I/O {@linkcode ClusterSessionMachine} with `driveMachine` over the connection its
 * client's connector opens (sealed after the key exchange), sends plugin commands and moves,
 * delivers the cluster's traffic as typed events, keeps the connection alive with Ping, and —
 * when `reconnect` is on — rejoins with a fresh ticket from the master, with backoff, when the
 * cluster drops.
 *
 * It must never throw out of a frame handler (failures close the connection with a logged
 * reason), never reconnect after `leave()` or `close()`, and never log a ticket or key.
 *
 * @module
 */

import { ReconnectBackoff } from "../cluster/backoff.ts";
import { driveMachine, type MachineDriver } from "../shared/drive_machine.ts";
import type { EphemeralKeyPair } from "../shared/key_derivation.ts";
import { roleLogger } from "../shared/logging.ts";
import type { MoveState } from "../shared/protocol/move_state.ts";
import type { JoinTicketPacket, MoveEntry } from "../shared/protocol/packets.ts";
import type { CloseInfo, FrameTransport } from "../shared/frame_session.ts";
import { dial } from "./_dial.ts";
import type { Connector } from "./connector.ts";
import { type ClientPlugin, offerToPlugins } from "./client_plugin.ts";
import {
  type ClusterSessionDerived,
  type ClusterSessionEvent,
  ClusterSessionMachine,
} from "./cluster_session_machine.ts";
import { ClientError } from "./errors.ts";
import type { KeyDecision } from "./key_pinning.ts";
import { TypedEvents } from "./typed_events.ts";

const logger = roleLogger("client", "cluster");

/** Everything needed to connect to a cluster once: the master's ticket and the key to expect. */
export interface JoinGrant {
  /** The master's JoinTicket (cluster id, address, key, sealed ticket). */
  readonly ticket: JoinTicketPacket;
  /** The ephemeral key pair whose public half the ticket is bound to. */
  readonly ephemeral: EphemeralKeyPair;
  /** The key the handshake must prove, and whether to send RequestKey. */
  readonly key: KeyDecision;
  /** The cluster's name, if the client knows it from SendClusters. */
  readonly name?: string;
}

/** Where a session was joined, as passed to a rejoin. */
export interface JoinedCluster {
  /** The master's id of the cluster. */
  readonly clusterId: number;
  /** Its host. */
  readonly host: string;
  /** Its port. */
  readonly port: number;
}

/** Reconnect settings, resolved. */
export interface ReconnectSettings {
  /** Rejoin when the cluster drops. */
  readonly enabled: boolean;
  /** First delay before a rejoin, in ms. */
  readonly minMs: number;
  /** Largest delay between attempts, in ms. */
  readonly maxMs: number;
  /** Attempts before giving up (Infinity = until `close()`). */
  readonly maxAttempts: number;
}

/** How {@linkcode ClusterSession.open} connects; made by `SustenetClient.join`. */
export interface ClusterSessionInit {
  /** The first join's grant. */
  readonly grant: JoinGrant;
  /** Gets a new grant from the master for a rejoin. */
  readonly rejoin: (previous: JoinedCluster) => Promise<JoinGrant>;
  /** Called with the key a cluster sent in SendPubKey (after it matched). */
  readonly onLearnedKey: (cluster: JoinedCluster, version: number, publicKey: Uint8Array) => void;
  /** Opens the cluster connection. */
  readonly connect: Connector;
  /** Hooks for frames the library does not handle. */
  readonly plugins: readonly ClientPlugin[];
  /** Ping period in ms; 0 = no keepalive. */
  readonly keepaliveMs: number;
  /** Time allowed to connect and complete the handshake, and to leave, in ms. */
  readonly timeoutMs: number;
  /** Largest frame accepted or sent. */
  readonly maxFrameBytes: number;
  /** Rejoin settings. */
  readonly reconnect: ReconnectSettings;
}

/** Detail of each {@linkcode ClusterSession} event. */
export interface ClusterSessionEvents {
  /** A plugin command from the cluster (`payload` is a copy the listener may keep). */
  readonly message: { readonly command: number; readonly payload: Uint8Array };
  /**
   * No plugin of the cluster handles a command this client sent (`Error(Unhandled)`; the
   * session goes on). `command` is undefined if the reason does not name it.
   */
  readonly unhandled: { readonly command: number | undefined; readonly reason: string };
  /** Positions of nearby players (MoveBatch). */
  readonly moves: { readonly entries: readonly MoveEntry[] };
  /** A player came into view. */
  readonly spawn: {
    readonly clientId: number;
    readonly playerId: string;
    readonly state: MoveState;
  };
  /** A player left the view. */
  readonly despawn: { readonly clientId: number };
  /** The connection ended without `leave()` / `close()`; `reconnecting` says what comes next. */
  readonly disconnect: {
    readonly reason: string;
    readonly error: ClientError;
    readonly reconnecting: boolean;
  };
  /** A rejoin succeeded. */
  readonly reconnect: { readonly clusterId: number; readonly clientId: number };
  /** A rejoin attempt failed (another follows unless attempts ran out: then `disconnect`). */
  readonly error: { readonly error: ClientError };
}

/** The phase of a {@linkcode ClusterSession}. */
export type ClusterSessionStatus = "joined" | "reconnecting" | "leaving" | "closed";

/** One connection of a session (a session has a new one after each rejoin). */
interface Link {
  readonly machine: ClusterSessionMachine;
  readonly conn: FrameTransport;
  /** Applies the machine's actions of the adapter's own calls (an unhandled frame). */
  readonly driver: MachineDriver<ClusterSessionDerived, ClusterSessionEvent>;
  readonly grant: JoinGrant;
  readonly joined: PromiseWithResolvers<void>;
  failure: ClientError | undefined;
  authenticated: boolean;
  left: boolean;
  /** The key the cluster sent in SendPubKey during the handshake, if it sent one. */
  learnedKey: { readonly version: number; readonly publicKey: Uint8Array } | undefined;
}

/** An event held back until the application had a chance to add listeners. */
type HeldEvent = {
  [K in keyof ClusterSessionEvents]: readonly [K, ClusterSessionEvents[K]];
}[keyof ClusterSessionEvents];

function asClientError(error: unknown, what: string): ClientError {
  if (error instanceof ClientError) return error;
  return new ClientError("protocol_error", `${what}: ${String(error)}`, { cause: error });
}

/**
 * A joined cluster: send plugin commands and moves, receive events, leave.
 *
 * @example Listening to a session (the join itself needs a master and a cluster)
 * ```ts
 * import type { ClusterSession } from "./cluster_session.ts";
 * import assert from "node:assert/strict";
 *
 * function chat(session: ClusterSession, text: string): void {
 *   session.on("message", ({ command, payload }) => {
 *     if (command === 0x81) console.log(new TextDecoder().decode(payload.subarray(4)));
 *   });
 *   session.send(0x81, new TextEncoder().encode(text));
 * }
 * assert.equal(typeof chat, "function");
 * ```
 */
export class ClusterSession {
  /** Resolves once the session has ended for good (after leave, close, or a final drop). */
  readonly closed: Promise<ClientError>;

  readonly #events = new TypedEvents<ClusterSessionEvents>();
  readonly #init: ClusterSessionInit;
  readonly #resolveClosed: (error: ClientError) => void;
  #status: ClusterSessionStatus = "joined";
  #link: Link | undefined;
  #joined: JoinedCluster = { clusterId: 0, host: "", port: 0 };
  #name: string | undefined;
  /** Events of the first join, until `open()` has returned and listeners could be added. */
  #held: HeldEvent[] | undefined = [];
  #keepalive: ReturnType<typeof setInterval> | undefined;
  #pingValue = 0;
  #sleepTimer: ReturnType<typeof setTimeout> | undefined;
  #wake: (() => void) | undefined;

  private constructor(init: ClusterSessionInit) {
    this.#init = init;
    const { promise, resolve } = Promise.withResolvers<ClientError>();
    this.closed = promise;
    this.#resolveClosed = resolve;
  }

  /**
   * Connects to the cluster of `init.grant` and completes the handshake; used by
   * `SustenetClient.join`. Events that arrive with or right after the authentication (a
   * greeting, spawns) are delivered on the next task, so listeners added right after
   * `await` of this call (or of `join`) see them.
   *
   * @param init The grant and the session settings.
   * @throws {ClientError} `cluster_unreachable`, `server_full`, `key_mismatch`,
   * `ticket_refused`, `cluster_full`, `timeout`, `disconnected` or `protocol_error`.
   */
  static async open(init: ClusterSessionInit): Promise<ClusterSession> {
    const session = new ClusterSession(init);
    const link = await connectLink(init, init.grant, (l, event) => session.#onEvent(l, event));
    session.#adopt(link);
    setTimeout(() => session.#release(), 0);
    return session;
  }

  /** The master's id of the cluster (it can change after a rejoin). */
  get clusterId(): number {
    return this.#joined.clusterId;
  }

  /** This player's id on the cluster (changes after a rejoin). */
  get clientId(): number {
    return this.#link?.machine.clientId ?? 0;
  }

  /** The cluster's server name from HelloOk. */
  get serverName(): string {
    return this.#link?.machine.serverName ?? "";
  }

  /** The cluster's name from SendClusters, if the client knew it. */
  get name(): string | undefined {
    return this.#name;
  }

  /** `host:port` of the cluster. */
  get address(): string {
    return `${this.#joined.host}:${this.#joined.port}`;
  }

  /** The current phase. */
  get status(): ClusterSessionStatus {
    return this.#status;
  }

  /**
   * Adds an event listener; a listener that throws is logged and the session carries on.
   *
   * @param type The event name.
   * @param listener Called with the event's detail.
   * @returns A function that removes the listener.
   */
  on<K extends keyof ClusterSessionEvents>(
    type: K,
    listener: (detail: ClusterSessionEvents[K]) => void,
  ): () => void {
    return this.#events.on(type, listener);
  }

  /**
   * Sends a plugin command to the cluster.
   *
   * @param command 0x80..0xFF.
   * @param payload Opaque bytes for the cluster's plugins (copied into the frame).
   * @returns `false` if not sent because the session is reconnecting.
   * @throws {ClientError} `invalid_state` after `leave()` / `close()` or a final drop.
   * @throws {RangeError} If the command is outside 0x80..0xFF or the frame exceeds the bound.
   */
  send(command: number, payload: Uint8Array): boolean {
    const link = this.#usableLink();
    if (link === undefined) return false;
    if (payload.length + 1 > this.#init.maxFrameBytes) {
      throw new RangeError(
        `plugin payload of ${payload.length} bytes above the frame bound ${this.#init.maxFrameBytes}`,
      );
    }
    return link.conn.send(link.machine.send(command, payload));
  }

  /**
   * Sends this player's movement.
   *
   * @param state Position, optional yaw and velocity.
   * @returns `false` if not sent because the session is reconnecting.
   * @throws {ClientError} `invalid_state` after `leave()` / `close()` or a final drop.
   */
  move(state: MoveState): boolean {
    const link = this.#usableLink();
    if (link === undefined) return false;
    return link.conn.send(link.machine.move(state));
  }

  /**
   * Leaves the cluster (LeaveCluster), waits for its acknowledgement or the close (bounded by
   * the timeout), and ends the session without reconnecting.
   */
  async leave(): Promise<void> {
    if (this.#status === "closed" || this.#status === "leaving") {
      await this.closed;
      return;
    }
    const link = this.#link;
    this.#status = "leaving";
    this.#stopKeepalive();
    this.#cancelSleep();
    if (link === undefined || link.machine.state !== "established") {
      await this.#closeLink(link);
      return;
    }
    link.conn.send(link.machine.leave());
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.#init.timeoutMs);
    });
    await Promise.race([link.conn.closed, timeout]);
    clearTimeout(timer);
    await this.#closeLink(link);
  }

  /** Closes the connection at once (no LeaveCluster) and ends the session. */
  async close(): Promise<void> {
    if (this.#status === "closed") {
      await this.closed;
      return;
    }
    this.#status = "leaving";
    this.#stopKeepalive();
    this.#cancelSleep();
    await this.#closeLink(this.#link);
  }

  /** Leaves the cluster; for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.leave();
  }

  /** Closes a link (if any) and waits until the session has ended. */
  async #closeLink(link: Link | undefined): Promise<void> {
    // The link's own end handler runs first and ends the session with its reason; a link that
    // had already ended (while reconnecting) leaves that to this call.
    if (link !== undefined) await link.conn.close();
    this.#finish(new ClientError("disconnected", "session closed by the application"));
    await this.closed;
  }

  /** Delivers the events held during the first join, then delivers events as they come. */
  #release(): void {
    const held = this.#held;
    this.#held = undefined;
    for (const [type, detail] of held ?? []) {
      this.#events.emit(type, detail as never);
    }
  }

  #emit<K extends keyof ClusterSessionEvents>(type: K, detail: ClusterSessionEvents[K]): void {
    if (this.#held !== undefined) this.#held.push([type, detail] as HeldEvent);
    else this.#events.emit(type, detail);
  }

  /** Makes `link` the session's connection: keepalive and end handling. */
  #adopt(link: Link): void {
    this.#link = link;
    this.#joined = joinedOf(link.grant);
    if (link.grant.name !== undefined) this.#name = link.grant.name;
    const learned = link.learnedKey;
    if (learned !== undefined) {
      this.#init.onLearnedKey(this.#joined, learned.version, learned.publicKey);
    }
    link.conn.closed.then(
      (info) => this.#onClosed(link, info),
      (error: unknown) => logger.error("cluster link close failed: {error}", { error }),
    );
    this.#startKeepalive(link);
  }

  #usableLink(): Link | undefined {
    if (this.#status === "reconnecting") return undefined;
    const link = this.#link;
    if (this.#status !== "joined" || link === undefined) {
      throw new ClientError("invalid_state", `cluster session is ${this.#status}`);
    }
    return link;
  }

  /** Acts on an event of an authenticated link (`driveMachine` sends, seals and closes). */
  #onEvent(link: Link, event: ClusterSessionEvent): void {
    switch (event.type) {
      case "packet": {
        const packet = event.packet;
        switch (packet.kind) {
          case "Plugin":
            if (this.#held !== undefined || this.#events.has("message")) {
              // The payload is a view of the read buffer: listeners get a copy they may keep.
              this.#emit("message", { command: packet.command, payload: packet.payload.slice() });
            }
            return;
          case "MoveBatch":
            this.#emit("moves", { entries: packet.entries });
            return;
          case "Spawn":
            this.#emit("spawn", packet);
            return;
          case "Despawn":
            this.#emit("despawn", packet);
            return;
          case "Pong":
            return;
        }
        return;
      }
      case "command_unhandled":
        this.#emit("unhandled", { command: event.command, reason: event.reason });
        return;
      case "left":
        // A `close` action follows.
        link.left = true;
        return;
      case "disconnected":
        link.failure ??= new ClientError("disconnected", `cluster disconnected: ${event.reason}`);
        return;
      default:
        // Handshake steps cannot follow Authenticate(20); the machine never returns them here.
        link.failure ??= new ClientError("protocol_error", `unexpected ${event.type} after join`);
        link.conn.close();
    }
  }

  #onClosed(link: Link, info: CloseInfo): void {
    const error = link.failure ?? link.machine.ended(info);
    if (this.#link === link) this.#stopKeepalive();
    if (this.#status === "leaving" || this.#status === "closed" || link.left) {
      this.#finish(error);
      return;
    }
    if (this.#link !== link) return; // an old link of a session that already moved on
    const reconnecting = this.#init.reconnect.enabled;
    logger.warn("cluster {address} dropped: {reason}", {
      address: this.address,
      reason: error.message,
    });
    this.#emit("disconnect", { reason: error.message, error, reconnecting });
    if (!reconnecting) {
      this.#finish(error);
      return;
    }
    this.#status = "reconnecting";
    this.#rejoinLoop(error).catch((failure: unknown) => {
      logger.error("rejoin loop failed: {error}", { error: failure });
      this.#finish(asClientError(failure, "rejoin failed"));
    });
  }

  async #rejoinLoop(lastError: ClientError): Promise<void> {
    const { minMs, maxMs, maxAttempts } = this.#init.reconnect;
    const backoff = new ReconnectBackoff({ minMs, maxMs });
    let error = lastError;
    for (let attempt = 1; attempt <= maxAttempts; attempt++) {
      await this.#sleep(backoff.next());
      if (this.#status !== "reconnecting") return;
      let link: Link;
      try {
        const grant = await this.#init.rejoin(this.#joined);
        if (this.#status !== "reconnecting") return;
        link = await connectLink(this.#init, grant, (l, event) => this.#onEvent(l, event));
      } catch (failure) {
        error = asClientError(failure, "rejoin failed");
        logger.info("rejoin attempt {attempt} failed: {reason}", {
          attempt,
          reason: error.message,
        });
        this.#emit("error", { error });
        continue;
      }
      if (this.#status !== "reconnecting") {
        await link.conn.close();
        return;
      }
      this.#status = "joined";
      this.#adopt(link);
      logger.info("rejoined cluster {address} as client {clientId}", {
        address: this.address,
        clientId: link.machine.clientId,
      });
      this.#emit("reconnect", {
        clusterId: this.#joined.clusterId,
        clientId: link.machine.clientId,
      });
      return;
    }
    this.#emit("disconnect", { reason: error.message, error, reconnecting: false });
    this.#finish(error);
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.#wake = resolve;
      this.#sleepTimer = setTimeout(resolve, ms);
    });
  }

  #cancelSleep(): void {
    clearTimeout(this.#sleepTimer);
    this.#sleepTimer = undefined;
    this.#wake?.();
    this.#wake = undefined;
  }

  #startKeepalive(link: Link): void {
    this.#stopKeepalive();
    if (this.#init.keepaliveMs <= 0) return;
    this.#keepalive = setInterval(() => {
      if (link.machine.state === "established") {
        link.conn.send(link.machine.ping(this.#pingValue++));
      }
    }, this.#init.keepaliveMs);
  }

  #stopKeepalive(): void {
    clearInterval(this.#keepalive);
    this.#keepalive = undefined;
  }

  #finish(error: ClientError): void {
    if (this.#status === "closed") return;
    this.#status = "closed";
    this.#stopKeepalive();
    this.#cancelSleep();
    this.#resolveClosed(error);
  }
}

function joinedOf(grant: JoinGrant): JoinedCluster {
  return { clusterId: grant.ticket.clusterId, host: grant.ticket.host, port: grant.ticket.port };
}

/**
 * Acts on the events every phase of a link shares (a failure, a frame for the client plugins)
 * and on the handshake's; hands the rest of an authenticated link to `onEstablished`.
 */
function onLinkEvent(
  init: ClusterSessionInit,
  link: Link,
  event: ClusterSessionEvent,
  onEstablished: (link: Link, event: ClusterSessionEvent) => void,
): void {
  switch (event.type) {
    case "failed":
      // A `close` action follows.
      link.failure ??= event.error;
      return;
    case "unhandled":
      if (
        event.frame !== undefined &&
        offerToPlugins(init.plugins, "cluster", event.frame, event.packet)
      ) {
        return;
      }
      link.driver.apply(link.machine.fail(event.error, event.closeWith));
      return;
  }
  if (link.authenticated) {
    onEstablished(link, event);
    return;
  }
  switch (event.type) {
    case "learned_key":
      link.learnedKey = event.key;
      return;
    case "authenticated":
      link.authenticated = true;
      link.conn.markEstablished();
      link.joined.resolve();
      return;
    default:
      link.failure ??= new ClientError("protocol_error", `unexpected ${event.type} in handshake`);
      link.conn.close();
  }
}

/** Connects and runs the handshake of one link; resolves once authenticated. */
async function connectLink(
  init: ClusterSessionInit,
  grant: JoinGrant,
  onEstablished: (link: Link, event: ClusterSessionEvent) => void,
): Promise<Link> {
  const machine = new ClusterSessionMachine({
    ephemeral: grant.ephemeral,
    ticket: grant.ticket.ticket,
    clusterPublicKey: grant.key.publicKey,
    requestKey: grant.key.requestKey,
  });
  const { host, port, endpoints = [] } = grant.ticket;
  const idleTimeoutMs = init.keepaliveMs > 0 ? Math.max(init.keepaliveMs * 3, init.timeoutMs) : 0;
  const conn = await dial(init.connect, { what: "cluster", host, port, endpoints }, {
    handshakeTimeoutMs: init.timeoutMs,
    idleTimeoutMs,
    maxFrameBytes: init.maxFrameBytes,
  }, init.timeoutMs);
  const link: Link = {
    machine,
    conn,
    // The transport reads asynchronously: `link` exists before the first event.
    driver: driveMachine(conn, machine, {
      onEvent: (event) => onLinkEvent(init, link, event, onEstablished),
      onDeriveError: (error) => {
        // A bug (an unusable key is a result): the driver closes with Internal.
        link.failure ??= asClientError(error, "key exchange failed");
      },
    }),
    grant,
    joined: Promise.withResolvers<void>(),
    failure: undefined,
    authenticated: false,
    left: false,
    learnedKey: undefined,
  };
  const onClosedEarly = (info: CloseInfo): void => {
    if (!link.authenticated) link.joined.reject(link.failure ?? machine.ended(info));
  };
  conn.closed.then(
    onClosedEarly,
    (error: unknown) => logger.error("cluster link close failed: {error}", { error }),
  );
  conn.send(machine.hello());
  await link.joined.promise;
  return link;
}
