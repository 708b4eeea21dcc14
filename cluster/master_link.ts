/**
 * The cluster's link to its master (docs/PROTOCOL.md "Cluster → master"): registration by the
 * AES-256-GCM challenge, sealed heartbeats, Deregister on the way out, and reconnection with
 * exponential backoff plus jitter whenever the master goes away.
 *
 * {@linkcode MasterLinkSession} is the sans-I/O protocol of one connection (packets in, actions
 * out); {@linkcode MasterLink} is the thin adapter that dials the master with
 * `shared/transport.ts`, runs a session on each connection and retries. Players never depend
 * on this link: losing the master must never close a player connection. It must never log the
 * cluster key, the passphrase or the derived link keys, and never let a failure escape as an
 * unhandled rejection.
 *
 * @module
 */

import { proveAnnounce } from "../shared/announce_proof.ts";
import { deriveMasterLinkKeys } from "../shared/key_derivation.ts";
import { logSuccess, roleLogger } from "../shared/logging.ts";
import { decodePacket, encodePacket } from "../shared/protocol/codec.ts";
import {
  type AnswerClusterPacket,
  MAX_PLUGIN_SUMMARIES,
  type Packet,
  PacketType,
  type PluginSummary,
  PROTOCOL_VERSION,
  Role,
} from "../shared/protocol/packets.ts";
import { ErrorCode, errorCodeName, ProtocolError } from "../shared/protocol/protocol_error.ts";
import { decrypt, DecryptError, importAesKey } from "../shared/security.ts";
import { connectFrames, type FrameTransport } from "../shared/transport.ts";
import { ReconnectBackoff } from "./backoff.ts";

const logger = roleLogger("cluster", "master_link");

/** Bytes of the BecomeCluster nonce. */
const CLUSTER_NONCE_BYTES = 32;
/** Longest passphrase a bytes8 field can carry back in AnswerCluster. */
const MAX_PASSPHRASE_BYTES = 255;
/**
 * How a master that does not know ClusterPlugins answers it, as the link logs it: its codec has
 * no type 0x1B (27), or (a codec that has it without the link handling it) an unexpected packet.
 */
const PLUGINS_REFUSED: readonly string[] = [
  `master sent Error UnknownPacket: unknown packet type ${PacketType.ClusterPlugins}`,
  "master sent Error UnexpectedPacket: unexpected ClusterPlugins",
];

/** Longest part of the master's Error reason repeated in our log. */
const MAX_PEER_REASON_CHARS = 200;
/** Longest Deregister reason sent, in characters (str16 holds 65 535 bytes). */
const MAX_REASON_CHARS = 1000;

/**
 * What the cluster tells the master about itself in AnswerCluster: its name, the address
 * clients connect to, its capacity (0 = no limit) and its identity public key with version —
 * all covered by the answer's proof, so nobody on the way can change them.
 *
 * @example
 * ```ts
 * import type { RegistrationDetails } from "./master_link.ts";
 * import assert from "node:assert/strict";
 *
 * const announcement: RegistrationDetails = {
 *   name: "eu-1",
 *   host: "127.0.0.1",
 *   port: 6257,
 *   maxConnections: 0,
 *   keyVersion: 1,
 *   publicKey: new Uint8Array(32),
 * };
 * assert.equal(announcement.port, 6257);
 * ```
 */
export type RegistrationDetails = Omit<AnswerClusterPacket, "kind" | "proof">;

/**
 * Where a {@linkcode MasterLinkSession} is: `hello` (Hello sent), `challenge` (BecomeCluster
 * sent), `answering` (opening the challenge), `answered` (AnswerCluster sent), `registered`
 * (sealed, heartbeating), `failed`.
 *
 * @example
 * ```ts
 * import type { MasterLinkSessionState } from "./master_link.ts";
 * import assert from "node:assert/strict";
 *
 * const state: MasterLinkSessionState = "registered";
 * assert.equal(state, "registered");
 * ```
 */
export type MasterLinkSessionState =
  | "hello"
  | "challenge"
  | "answering"
  | "answered"
  | "registered"
  | "failed";

/**
 * What the adapter must do, in order, after a packet from the master.
 *
 * - `send`: queue this encoded frame.
 * - `registered`: CreateCluster arrived: switch to sealed records with `keys` at once (before
 *   reading any further byte), then heartbeat.
 * - `failed`: close the link, first sending `Error(code)` when `code` is given.
 *
 * @example
 * ```ts
 * import type { MasterLinkAction } from "./master_link.ts";
 * import assert from "node:assert/strict";
 *
 * const action: MasterLinkAction = { type: "failed", reason: "master closed" };
 * assert.equal(action.type, "failed");
 * ```
 */
export type MasterLinkAction =
  | { readonly type: "send"; readonly frame: Uint8Array }
  | {
    readonly type: "registered";
    readonly clusterId: number;
    readonly keys: { readonly sendKey: Uint8Array; readonly receiveKey: Uint8Array };
  }
  | { readonly type: "failed"; readonly code?: ErrorCode; readonly reason: string };

/**
 * What {@linkcode MasterLinkSession.receive} returns: actions now, or after the async step.
 *
 * @example
 * ```ts
 * import type { MasterLinkStep } from "./master_link.ts";
 * import assert from "node:assert/strict";
 *
 * const step: MasterLinkStep = Promise.resolve([]);
 * assert.deepEqual(await step, []);
 * ```
 */
export type MasterLinkStep = readonly MasterLinkAction[] | Promise<readonly MasterLinkAction[]>;

/**
 * Options of {@linkcode MasterLinkSession}.
 *
 * @example
 * ```ts
 * import type { MasterLinkSessionOptions } from "./master_link.ts";
 * import assert from "node:assert/strict";
 *
 * const options: MasterLinkSessionOptions = {
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
 * };
 * assert.equal(options.keyName, "cluster_key");
 * ```
 */
export interface MasterLinkSessionOptions {
  /** Name of the shared key, sent in BecomeCluster. */
  readonly keyName: string;
  /** The 32-byte shared AES key itself (never sent). */
  readonly clusterKey: Uint8Array;
  /** What AnswerCluster says about this cluster. */
  readonly announcement: RegistrationDetails;
}

function failed(reason: string, code?: ErrorCode): MasterLinkAction {
  return code === undefined ? { type: "failed", reason } : { type: "failed", code, reason };
}

/**
 * The protocol of one master connection, from Hello to the sealed heartbeat phase.
 *
 * Send {@linkcode hello} first; feed every decoded frame from the master to
 * {@linkcode receive} and apply the actions in order. Opening the challenge is asynchronous
 * (`receive` returns a promise for VerifyCluster); any packet before it settles fails the
 * link. The link keys and the announce key are derived before AnswerCluster is sent (its proof
 * is an HMAC over the announced fields under the announce key, never the passphrase), so the
 * `registered` action for CreateCluster is synchronous and the adapter can switch to sealed
 * records before reading on.
 *
 * @example A full registration against a hand-played master
 * ```ts
 * import { MasterLinkSession } from "./master_link.ts";
 * import { encrypt, importAesKey } from "../shared/security.ts";
 * import { decodePacket } from "../shared/protocol/codec.ts";
 * import type { Packet } from "../shared/protocol/packets.ts";
 * import { ProtocolError } from "../shared/protocol/protocol_error.ts";
 * import { verifyAnnounce } from "../shared/announce_proof.ts";
 * import { deriveMasterLinkKeys } from "../shared/key_derivation.ts";
 * import assert from "node:assert/strict";
 *
 * const clusterKey = crypto.getRandomValues(new Uint8Array(32));
 * const session = new MasterLinkSession({
 *   keyName: "cluster_key",
 *   clusterKey,
 *   announcement: {
 *     name: "eu-1",
 *     host: "127.0.0.1",
 *     port: 6257,
 *     maxConnections: 0,
 *     keyVersion: 1,
 *     publicKey: new Uint8Array(32),
 *   },
 * });
 * session.hello();
 * const [become] = await session.receive({
 *   kind: "HelloOk", version: 3, role: 3, serverName: "master",
 * });
 * assert.equal(session.state, "challenge");
 * if (become.type !== "send") throw new Error("expected BecomeCluster");
 * // One frame: u32 length, type byte, payload.
 * const unframe = (bytes: Uint8Array): Packet => {
 *   const packet = decodePacket({ type: bytes[4], payload: bytes.subarray(5) });
 *   if (packet instanceof ProtocolError) throw packet;
 *   return packet;
 * };
 * const becomePacket = unframe(become.frame);
 * if (becomePacket.kind !== "BecomeCluster") throw new Error("expected BecomeCluster");
 * const passphrase = crypto.getRandomValues(new Uint8Array(32));
 * const sealedPassphrase = await encrypt(await importAesKey(clusterKey), passphrase);
 * const [answer] = await session.receive({ kind: "VerifyCluster", sealedPassphrase });
 * if (answer.type !== "send") throw new Error("expected AnswerCluster");
 * const packet = unframe(answer.frame);
 * if (packet.kind !== "AnswerCluster") throw new Error("expected AnswerCluster");
 * // The master checks the proof with the key it derives from the same challenge.
 * const keys = await deriveMasterLinkKeys(clusterKey, becomePacket.clusterNonce, passphrase);
 * assert.equal(await verifyAnnounce(keys.announceKey, packet, packet.proof), true);
 * const [registered] = await session.receive({ kind: "CreateCluster", clusterId: 9 });
 * assert.ok(registered.type === "registered" && registered.clusterId === 9);
 * assert.equal(session.state, "registered");
 * ```
 */
export class MasterLinkSession {
  readonly #options: MasterLinkSessionOptions;
  readonly #nonce = crypto.getRandomValues(new Uint8Array(CLUSTER_NONCE_BYTES));
  #state: MasterLinkSessionState = "hello";
  #keys: { readonly sendKey: Uint8Array; readonly receiveKey: Uint8Array } | undefined;
  #clusterId = 0;

  /**
   * Creates the session of one new connection (with a fresh challenge nonce).
   *
   * @param options Key name, key and announcement.
   */
  constructor(options: MasterLinkSessionOptions) {
    this.#options = options;
  }

  /** Where the session is. */
  get state(): MasterLinkSessionState {
    return this.#state;
  }

  /** The id the master gave in CreateCluster, or 0 before. */
  get clusterId(): number {
    return this.#clusterId;
  }

  /** The Hello frame that opens the connection. */
  hello(): Uint8Array {
    return encodePacket({ kind: "Hello", version: PROTOCOL_VERSION, role: Role.Cluster });
  }

  /**
   * A sealed-phase Heartbeat frame.
   *
   * @param load Players connected now.
   *
   * @example
   * ```ts
   * import { MasterLinkSession } from "./master_link.ts";
   * import assert from "node:assert/strict";
   *
   * const session = new MasterLinkSession({
   *   keyName: "k",
   *   clusterKey: new Uint8Array(32),
   *   announcement: {
   *     name: "c",
   *     host: "127.0.0.1",
   *     port: 1,
   *     maxConnections: 500,
   *     keyVersion: 1,
   *     publicKey: new Uint8Array(32),
   *   },
   * });
   * assert.equal(session.heartbeat(12).toHex(), "00000009180000000c000001f4");
   * ```
   */
  heartbeat(load: number): Uint8Array {
    return encodePacket({
      kind: "Heartbeat",
      load,
      maxConnections: this.#options.announcement.maxConnections,
    });
  }

  /**
   * A Deregister frame, the last the cluster sends before leaving.
   *
   * @param reason Why (shown by the master).
   */
  deregister(reason: string): Uint8Array {
    // Bounded and well-formed whatever the caller passed: it must never fail to encode.
    return encodePacket({
      kind: "Deregister",
      reason: String(reason).slice(0, MAX_REASON_CHARS).toWellFormed(),
    });
  }

  /**
   * Handles one decoded packet from the master (or decode error).
   *
   * @param packet The packet, or the codec's error for a malformed frame.
   * @returns The actions, synchronously except for VerifyCluster.
   *
   * @example The master refuses the registration
   * ```ts
   * import { MasterLinkSession } from "./master_link.ts";
   * import assert from "node:assert/strict";
   *
   * const session = new MasterLinkSession({
   *   keyName: "k",
   *   clusterKey: new Uint8Array(32),
   *   announcement: {
   *     name: "c",
   *     host: "127.0.0.1",
   *     port: 1,
   *     maxConnections: 0,
   *     keyVersion: 1,
   *     publicKey: new Uint8Array(32),
   *   },
   * });
   * const step = await session.receive({ kind: "Error", code: 10, reason: "cluster registration failed" });
   * assert.deepEqual(step, [{
   *   type: "failed",
   *   reason: "master sent Error AuthFailed: cluster registration failed",
   * }]);
   * ```
   */
  receive(packet: Packet | ProtocolError): MasterLinkStep {
    if (this.#state === "failed") return [];
    if (packet instanceof ProtocolError) {
      return this.#fail(`bad frame from the master: ${packet.message}`, packet.errorCode);
    }
    if (packet.kind === "Error") {
      const reason = packet.reason.slice(0, MAX_PEER_REASON_CHARS);
      return this.#fail(`master sent Error ${errorCodeName(packet.code)}: ${reason}`);
    }
    switch (this.#state) {
      case "hello":
        return this.#onHelloOk(packet);
      case "challenge":
        if (packet.kind !== "VerifyCluster") break;
        this.#state = "answering";
        return this.#answer(packet.sealedPassphrase);
      case "answered":
        if (packet.kind !== "CreateCluster") break;
        this.#state = "registered";
        this.#clusterId = packet.clusterId;
        return [{
          type: "registered",
          clusterId: packet.clusterId,
          keys: this.#keys as { readonly sendKey: Uint8Array; readonly receiveKey: Uint8Array },
        }];
      case "registered":
        if (packet.kind === "Ping") return [{ type: "send", frame: encodePong(packet.value) }];
        if (packet.kind === "Pong") return [];
        break;
    }
    return this.#fail(
      `unexpected ${packet.kind} from the master in state ${this.#state}`,
      ErrorCode.UnexpectedPacket,
    );
  }

  #onHelloOk(packet: Packet): MasterLinkStep {
    if (packet.kind !== "HelloOk") {
      return this.#fail(`master answered Hello with ${packet.kind}`, ErrorCode.UnexpectedPacket);
    }
    if (packet.role !== Role.Master) {
      return this.#fail(
        `the peer is not a master (role ${packet.role})`,
        ErrorCode.UnexpectedPacket,
      );
    }
    if (packet.version !== PROTOCOL_VERSION) {
      return this.#fail(
        `master speaks protocol version ${packet.version}`,
        ErrorCode.VersionMismatch,
      );
    }
    this.#state = "challenge";
    return [{
      type: "send",
      frame: encodePacket({
        kind: "BecomeCluster",
        keyName: this.#options.keyName,
        clusterNonce: this.#nonce,
      }),
    }];
  }

  async #answer(sealedPassphrase: Uint8Array): Promise<readonly MasterLinkAction[]> {
    const { clusterKey, keyName, announcement } = this.#options;
    let passphrase: Uint8Array;
    try {
      passphrase = await decrypt(await importAesKey(clusterKey), sealedPassphrase);
    } catch (error) {
      if (!(error instanceof DecryptError)) throw error;
      if (this.#state !== "answering") return [];
      // An unknown key name gets random bytes from the master: this is the usual symptom.
      return this.#fail(
        `the master's challenge does not open with key "${keyName}": ` +
          "the master must hold the same key file",
        ErrorCode.AuthFailed,
      );
    }
    if (passphrase.length === 0 || passphrase.length > MAX_PASSPHRASE_BYTES) {
      if (this.#state !== "answering") return [];
      return this.#fail(
        `challenge passphrase of ${passphrase.length} bytes (1..${MAX_PASSPHRASE_BYTES} expected)`,
        ErrorCode.AuthFailed,
      );
    }
    const keys = await deriveMasterLinkKeys(clusterKey, this.#nonce, passphrase);
    // The proof binds every announced field to this challenge; the passphrase stays here.
    const proof = await proveAnnounce(keys.announceKey, announcement);
    if (this.#state !== "answering") return [];
    this.#keys = { sendKey: keys.clusterToMaster, receiveKey: keys.masterToCluster };
    this.#state = "answered";
    return [{
      type: "send",
      frame: encodePacket({ ...announcement, kind: "AnswerCluster", proof }),
    }];
  }

  #fail(reason: string, code?: ErrorCode): MasterLinkAction[] {
    this.#state = "failed";
    return [failed(reason, code)];
  }
}

function encodePong(value: number): Uint8Array {
  return encodePacket({ kind: "Pong", value });
}

/**
 * The link's overall state: `connecting` (dialling), `registering` (connected, challenge in
 * progress), `registered`, `waiting` (backing off before the next attempt), `stopped`.
 *
 * @example
 * ```ts
 * import type { MasterLinkState } from "./master_link.ts";
 * import assert from "node:assert/strict";
 *
 * const state: MasterLinkState = "waiting";
 * assert.equal(state, "waiting");
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
    connection.start((frame) => {
      const step = session.receive(decodePacket(frame));
      if (Array.isArray(step)) {
        this.#apply(connection, session, step as readonly MasterLinkAction[]);
      } else {
        (step as Promise<readonly MasterLinkAction[]>).then(
          (actions) => this.#apply(connection, session, actions),
          (error: unknown) => {
            logger.error("registration step failed: {error}", { error });
            connection.close({ code: ErrorCode.Internal, message: "internal error" });
          },
        );
      }
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

  #apply(
    connection: FrameTransport,
    session: MasterLinkSession,
    actions: readonly MasterLinkAction[],
  ): void {
    for (const action of actions) {
      if (!connection.isOpen) return;
      switch (action.type) {
        case "send":
          connection.send(action.frame);
          break;
        case "registered":
          // Synchronous, inside the frame handler: the next bytes read are already records.
          connection.startSealing(action.keys);
          connection.markEstablished();
          this.#registered(connection, session, action.clusterId);
          break;
        case "failed":
          logger.warn("master link closing: {reason}", { reason: action.reason });
          if (PLUGINS_REFUSED.includes(action.reason) && !this.#pluginsRefused) {
            // A master older than ClusterPlugins drops the link for it; the next one goes
            // without, so the cluster stays listed (its console just shows no plugins).
            this.#pluginsRefused = true;
            logger.warn("the master does not know ClusterPlugins: plugin summaries are off");
          }
          connection.close(
            action.code === undefined ? undefined : {
              code: action.code,
              message: action.code === ErrorCode.AuthFailed
                ? "cluster registration failed"
                : action.reason,
            },
          );
          return;
      }
    }
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
