/**
 * The cluster's link to its master (docs/PROTOCOL.md "Cluster → master"): registration,
 * sealed heartbeats, Deregister on the way out, and reconnection with exponential backoff plus
 * jitter whenever the master goes away.
 *
 * {@linkcode MasterLink} is the thin adapter: it dials the master with `shared/transport.ts`,
 * runs a {@linkcode MasterLinkSession} (cluster/master_link_session.ts, the sans-I/O protocol)
 * on each connection with `driveMachine`, heartbeats once registered, and retries. Players
 * never depend on this link: losing the master must never close a player connection. It must
 * never log the cluster key, the passphrase or the derived link keys, and never let a failure
 * escape as an unhandled rejection.
 *
 * @module
 */

import { driveMachine } from "../shared/drive_machine.ts";
import { logSuccess, roleLogger } from "../shared/logging.ts";
import { encodePacket } from "../shared/protocol/codec.ts";
import {
  MAX_PLUGIN_SUMMARIES,
  PacketType,
  type PluginSummary,
} from "../shared/protocol/packets.ts";
import { connectFrames, type FrameTransport } from "../shared/transport.ts";
import { ReconnectBackoff } from "./backoff.ts";
import { MasterLinkSession, type MasterLinkSessionOptions } from "./master_link_session.ts";

export type { RegistrationDetails } from "./master_link_session.ts";

const logger = roleLogger("cluster", "master_link");

/**
 * How a master that does not know ClusterPlugins answers it, as the link logs it: its codec has
 * no type 0x1B (27), or (a codec that has it without the link handling it) an unexpected packet.
 */
const PLUGINS_REFUSED: readonly string[] = [
  `master sent Error UnknownPacket: unknown packet type ${PacketType.ClusterPlugins}`,
  "master sent Error UnexpectedPacket: unexpected ClusterPlugins",
];

/**
 * The link's overall state: `connecting` (dialling), `registering` (connected, challenge in
 * progress), `registered`, `waiting` (backing off before the next attempt), `stopped`.
 *
 * @example
 * ```ts
 * import { MasterLink, type MasterLinkState } from "./master_link.ts";
 * import assert from "node:assert/strict";
 *
 * // A readiness probe: the cluster takes players only while the master knows it.
 * function ready(state: MasterLinkState): boolean {
 *   return state === "registered";
 * }
 *
 * const link = new MasterLink({
 *   hostname: "127.0.0.1",
 *   port: 6256,
 *   keyName: "cluster_key",
 *   clusterKey: new Uint8Array(32),
 *   announcement: {
 *     name: "eu-1",
 *     host: "127.0.0.1",
 *     port: 6257,
 *     maxConnections: 0,
 *     keyVersion: 1,
 *     publicKey: new Uint8Array(32),
 *   },
 *   load: () => 0,
 * });
 * assert.equal(link.state, "connecting"); // not started yet
 * assert.equal(ready(link.state), false);
 * await link.stop();
 * assert.equal(link.state, "stopped");
 * ```
 */
export type MasterLinkState = "connecting" | "registering" | "registered" | "waiting" | "stopped";

/**
 * Options of {@linkcode MasterLink}.
 *
 * @example
 * ```ts
 * import type { MasterLinkOptions } from "./master_link.ts";
 * import assert from "node:assert/strict";
 *
 * const options: MasterLinkOptions = {
 *   hostname: "127.0.0.1",
 *   port: 6256,
 *   keyName: "cluster_key",
 *   clusterKey: new Uint8Array(32),
 *   announcement: {
 *     name: "eu-1",
 *     host: "127.0.0.1",
 *     port: 6257,
 *     maxConnections: 0,
 *     keyVersion: 1,
 *     publicKey: new Uint8Array(32),
 *   },
 *   load: () => 0,
 * };
 * assert.equal(options.port, 6256);
 * ```
 */
export interface MasterLinkOptions extends MasterLinkSessionOptions {
  /** The master's host. */
  readonly hostname: string;
  /** The master's port. */
  readonly port: number;
  /**
   * Every master to register with, in order of preference, when several share a registry:
   * each failed attempt moves to the next, and a lost link is retried at once on the next.
   *
   * @default {[{ hostname, port }]}
   */
  readonly masters?: readonly { readonly hostname: string; readonly port: number }[];
  /** Players connected now, reported in each heartbeat. */
  readonly load: () => number;
  /**
   * Time between heartbeats, in ms.
   *
   * @default {1000}
   */
  readonly heartbeatIntervalMs?: number;
  /**
   * First reconnect delay, in ms.
   *
   * @default {500}
   */
  readonly reconnectMinMs?: number;
  /**
   * Largest reconnect delay, in ms (the config's `reconnect_max_ms` default too: a returning
   * master's list is whole again within ~3 s).
   *
   * @default {2000}
   */
  readonly reconnectMaxMs?: number;
  /**
   * Time a connection has to complete the registration, in ms.
   *
   * @default {5000}
   */
  readonly handshakeTimeoutMs?: number;
  /**
   * Largest frame accepted from the master.
   *
   * @default {65536}
   */
  readonly maxFrameBytes?: number;
  /** Called each time the master confirms the registration. */
  readonly onRegistered?: (clusterId: number) => void;
  /** The cluster's status page URL, sent (ClusterPage) after each registration; absent = not. */
  readonly pageUrl?: string;
  /**
   * The cluster's plugins, sent (ClusterPlugins, first 32) after each registration and at a
   * heartbeat when they changed; absent or empty = not sent.
   */
  readonly plugins?: () => readonly PluginSummary[];
  /** Called when a registered link is lost (not when it is stopped). */
  readonly onLost?: (reason: string) => void;
}

/**
 * Keeps the cluster registered with its master: connects, registers, heartbeats, and when the
 * connection ends for any reason, waits (exponential backoff with jitter) and starts again,
 * until {@linkcode stop}. The last cluster id stays known while reconnecting.
 *
 * @example A link to a master that is not there keeps trying until stopped
 * ```ts
 * import { MasterLink } from "./master_link.ts";
 * import assert from "node:assert/strict";
 *
 * const free = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const port = free.addr.port;
 * free.close(); // nothing listens there now
 * const link = new MasterLink({
 *   hostname: "127.0.0.1",
 *   port,
 *   keyName: "cluster_key",
 *   clusterKey: new Uint8Array(32),
 *   announcement: {
 *     name: "eu-1",
 *     host: "127.0.0.1",
 *     port: 6257,
 *     maxConnections: 0,
 *     keyVersion: 1,
 *     publicKey: new Uint8Array(32),
 *   },
 *   load: () => 0,
 *   reconnectMinMs: 10,
 *   reconnectMaxMs: 20,
 * });
 * link.start();
 * await new Promise((resolve) => setTimeout(resolve, 50));
 * assert.equal(link.clusterId, undefined);
 * await link.stop();
 * assert.equal(link.state, "stopped");
 * ```
 */
export class MasterLink {
  readonly #options: MasterLinkOptions;
  readonly #backoff: ReconnectBackoff;
  readonly #heartbeatIntervalMs: number;
  #state: MasterLinkState = "connecting";
  #clusterId: number | undefined;
  #registrations = 0;
  /** Set once a master refused ClusterPlugins (one older than it): not sent again. */
  #pluginsRefused = false;
  #stopping = false;
  #run: Promise<void> | undefined;
  #connection: FrameTransport | undefined;
  #session: MasterLinkSession | undefined;
  #heartbeatTimer: ReturnType<typeof setInterval> | undefined;
  #waitTimer: ReturnType<typeof setTimeout> | undefined;
  #wake: (() => void) | undefined;
  readonly #masters: readonly { readonly hostname: string; readonly port: number }[];
  #masterIndex = 0;

  /**
   * Creates a link; nothing happens until {@linkcode start}.
   *
   * @param options Master address, key, announcement and timings.
   * @throws {RangeError} If a timing is out of range.
   */
  constructor(options: MasterLinkOptions) {
    this.#options = options;
    this.#backoff = new ReconnectBackoff({
      minMs: options.reconnectMinMs ?? 500,
      maxMs: options.reconnectMaxMs ?? 2000,
    });
    this.#heartbeatIntervalMs = options.heartbeatIntervalMs ?? 1000;
    this.#masters = options.masters !== undefined && options.masters.length > 0
      ? [...options.masters]
      : [{ hostname: options.hostname, port: options.port }];
    if (!Number.isFinite(this.#heartbeatIntervalMs) || this.#heartbeatIntervalMs <= 0) {
      throw new RangeError(`heartbeatIntervalMs must be > 0, got ${this.#heartbeatIntervalMs}`);
    }
  }

  /** Where the link is. */
  get state(): MasterLinkState {
    return this.#state;
  }

  /**
   * The id the master gave at the latest registration (kept while reconnecting), or undefined
   * if it never registered.
   */
  get clusterId(): number | undefined {
    return this.#clusterId;
  }

  /** The master the link uses now (or tries next). */
  get master(): { readonly hostname: string; readonly port: number } {
    return this.#masters[this.#masterIndex];
  }

  /** How many times the master has confirmed a registration. */
  get registrations(): number {
    return this.#registrations;
  }

  /** Starts connecting in the background (idempotent). */
  start(): void {
    if (this.#run !== undefined || this.#stopping) return;
    this.#run = this.#loop().catch((error: unknown) => {
      // #loop handles every expected failure; this is the last resort against a rejection.
      logger.error("master link stopped by an unexpected error: {error}", { error });
      this.#state = "stopped";
    });
  }

  /**
   * Stops for good: sends Deregister if registered, closes the link (flushing it) and waits
   * until the background loop has ended.
   *
   * @param reason The Deregister reason.
   */
  async stop(reason = "shutting down"): Promise<void> {
    this.#stopping = true;
    this.#stopHeartbeats();
    const connection = this.#connection;
    if (connection !== undefined) {
      if (this.#state === "registered" && this.#session !== undefined) {
        connection.send(this.#session.deregister(reason));
      }
      await connection.close();
    }
    this.#wakeUp();
    await this.#run;
    this.#state = "stopped";
  }

  async #loop(): Promise<void> {
    while (!this.#stopping) {
      this.#state = "connecting";
      const tried = this.master;
      const registeredBefore = this.#registrations;
      const failure = await this.#attempt();
      if (this.#stopping) break;
      // With several masters, the next one is tried; a link that was up fails over at once.
      const failover = this.#masters.length > 1 && this.#registrations > registeredBefore;
      this.#masterIndex = (this.#masterIndex + 1) % this.#masters.length;
      const delay = failover ? 0 : this.#backoff.next();
      logger.info("master {host}:{port} {failure}; trying {next} in {delay} ms", {
        host: tried.hostname,
        port: tried.port,
        failure,
        next: `${this.master.hostname}:${this.master.port}`,
        delay,
      });
      this.#state = "waiting";
      await this.#sleep(delay);
    }
    this.#state = "stopped";
  }

  /** One connection, from dialling to its close; returns why it ended. */
  async #attempt(): Promise<string> {
    const options = this.#options;
    let connection: FrameTransport;
    try {
      connection = await connectFrames({
        hostname: this.master.hostname,
        port: this.master.port,
        maxFrameBytes: options.maxFrameBytes,
        handshakeTimeoutMs: options.handshakeTimeoutMs ?? 5000,
        // The master sends nothing once registered: only our heartbeats flow.
        idleTimeoutMs: 0,
      });
    } catch (error) {
      return `unreachable (${error instanceof Error ? error.message : String(error)})`;
    }
    if (this.#stopping) {
      await connection.close();
      return "stopping";
    }
    const session = new MasterLinkSession(options);
    this.#connection = connection;
    this.#session = session;
    this.#state = "registering";
    driveMachine(connection, session, {
      onEvent: (event) => {
        // Right after the seal, inside the frame handler.
        if (!connection.isOpen) return;
        connection.markEstablished();
        this.#registered(connection, session, event.clusterId);
      },
      onClose: (action) => {
        if (!connection.isOpen) return;
        logger.warn("master link closing: {reason}", { reason: action.reason });
        if (PLUGINS_REFUSED.includes(action.reason) && !this.#pluginsRefused) {
          // A master older than ClusterPlugins drops the link for it; the next one goes
          // without, so the cluster stays listed (its console just shows no plugins).
          this.#pluginsRefused = true;
          logger.warn("the master does not know ClusterPlugins: plugin summaries are off");
        }
      },
      onDeriveError: (error) => logger.error("registration step failed: {error}", { error }),
    });
    connection.send(session.hello());
    const info = await connection.closed;
    this.#stopHeartbeats();
    this.#connection = undefined;
    this.#session = undefined;
    const wasRegistered = session.state === "registered";
    if (wasRegistered && !this.#stopping) {
      logger.warn("lost the master link ({reason}); players stay connected", {
        reason: info.reason,
      });
      try {
        options.onLost?.(info.reason);
      } catch (error) {
        logger.error("onLost callback failed: {error}", { error });
      }
    }
    return wasRegistered ? `link lost (${info.reason})` : `registration failed (${info.reason})`;
  }

  #registered(connection: FrameTransport, session: MasterLinkSession, clusterId: number): void {
    this.#state = "registered";
    this.#clusterId = clusterId;
    this.#registrations++;
    this.#backoff.reset();
    logSuccess(logger, "registered with master {host}:{port} as cluster {clusterId}", {
      host: this.master.hostname,
      port: this.master.port,
      clusterId,
    });
    let sentPlugins = "";
    const sendPlugins = () => {
      if (this.#pluginsRefused) return;
      const plugins = (this.#options.plugins?.() ?? []).slice(0, MAX_PLUGIN_SUMMARIES).map((p) => ({
        name: fitStr8(p.name),
        state: p.state,
        restarts: Math.min(p.restarts, 0xffff_ffff),
      }));
      if (plugins.length === 0) return;
      const packet = encodePacket({ kind: "ClusterPlugins", plugins });
      // Only a change is sent again (the summary is a few bytes: compare them whole).
      const key = packet.toHex();
      if (key === sentPlugins) return;
      sentPlugins = key;
      connection.send(packet);
    };
    const beat = () => {
      connection.send(session.heartbeat(this.#currentLoad()));
      sendPlugins();
    };
    const pageUrl = this.#options.pageUrl;
    connection.send(session.heartbeat(this.#currentLoad())); // the load at once, not in a second
    if (pageUrl !== undefined) connection.send(encodePacket({ kind: "ClusterPage", url: pageUrl }));
    sendPlugins();
    this.#heartbeatTimer = setInterval(beat, this.#heartbeatIntervalMs);
    try {
      this.#options.onRegistered?.(clusterId);
    } catch (error) {
      logger.error("onRegistered callback failed: {error}", { error });
    }
  }

  #currentLoad(): number {
    const load = this.#options.load();
    return Number.isInteger(load) && load >= 0 ? Math.min(load, 0xffff_ffff) : 0;
  }

  #stopHeartbeats(): void {
    if (this.#heartbeatTimer !== undefined) clearInterval(this.#heartbeatTimer);
    this.#heartbeatTimer = undefined;
  }

  #sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      this.#wake = resolve;
      this.#waitTimer = setTimeout(resolve, ms);
    }).then(() => {
      clearTimeout(this.#waitTimer);
      this.#waitTimer = undefined;
      this.#wake = undefined;
    });
  }

  #wakeUp(): void {
    this.#wake?.();
  }
}

/** `text` cut (at a code point) to the 255 UTF-8 bytes a str8 holds. */
function fitStr8(name: string): string {
  const text = name.toWellFormed();
  const encoder = new TextEncoder();
  if (encoder.encode(text).length <= 0xff) return text;
  let out = "";
  let bytes = 0;
  for (const char of text) {
    bytes += encoder.encode(char).length;
    if (bytes > 0xff) break;
    out += char;
  }
  return out;
}
