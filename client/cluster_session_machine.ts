// This module is browser compatible.
/**
 * The client side of a cluster connection as a sans-I/O machine on the one contract of
 * shared/machine_action.ts (docs/PROTOCOL.md, "Client → cluster"): Hello → HelloOk, optional
 * RequestKey → VersionOfKey | SendPubKey, KeyExchange → KeyExchangeOk (then the session keys
 * are derived from X25519(ephemeral, pinned cluster key) in an explicit `derive` step, and both
 * directions switch to sealed records with a `seal` action), SendPassword(ticket) →
 * Authenticate, then the established game traffic. Decoded packets in, actions out (`send`
 * bytes, `seal`, `derive`, `close`, and the {@linkcode ClusterSessionEvent}s the adapter acts
 * on); `client/cluster_session.ts` drives it with `driveMachine`.
 *
 * It must never do I/O or keep time, never complete a handshake with a key other than the one
 * it was given to expect, and never expose the ticket or the session keys except in the `seal`
 * action for the adapter that seals the connection.
 *
 * @module
 */

import type { MachineAction, ProtocolMachine } from "../shared/machine_action.ts";
import type { Frame } from "../shared/protocol/frame.ts";
import { encodePacket, encodePluginFrame } from "../shared/protocol/codec.ts";
import type { MoveState } from "../shared/protocol/move_state.ts";
import {
  AuthStatus,
  type DespawnPacket,
  KEY_MATERIAL_BYTES,
  type MoveBatchPacket,
  type Packet,
  type PluginPacket,
  type PongPacket,
  PROTOCOL_VERSION,
  Role,
  type SpawnPacket,
} from "../shared/protocol/packets.ts";
import { ErrorCode, ProtocolError } from "../shared/protocol/protocol_error.ts";
import { clientSessionKeysForClient, type EphemeralKeyPair } from "../shared/key_derivation.ts";
import { KeyError } from "../shared/security.ts";
import {
  checkHelloOk,
  failure,
  type SessionCloseReason,
  type SessionFailedEvent,
  unhandledFrame,
  type UnhandledFrameEvent,
} from "./_session_common.ts";
import { ClientError, errorFromAuthStatus, errorFromWire } from "./errors.ts";

/** Options of {@linkcode ClusterSessionMachine}. */
export interface ClusterSessionOptions {
  /** The ephemeral key pair whose public half was sent to the master in JoinCluster. */
  readonly ephemeral: EphemeralKeyPair;
  /** The sealed ticket from JoinTicket, sent unchanged in SendPassword. */
  readonly ticket: Uint8Array;
  /**
   * The cluster's raw 32-byte X25519 public key the handshake must prove (pinned, cached or
   * the master's); a cluster without its private key cannot complete the handshake.
   */
  readonly clusterPublicKey: Uint8Array;
  /**
   * Ask the cluster for its key first (RequestKey with the cached version, 0 = none); the key
   * it sends must be `clusterPublicKey`. Absent: skip RequestKey (the key is pinned).
   */
  readonly requestKey?: { readonly cachedVersion: number };
  /**
   * The 32 random bytes of KeyExchange, for tests.
   *
   * @default {32 bytes from crypto.getRandomValues}
   */
  readonly clientRandom?: Uint8Array;
}

/** The keys that seal a client↔cluster connection, from the client's point of view. */
export interface ClientSealingKeys {
  /** Seals what the client sends (client→cluster key). */
  readonly sendKey: Uint8Array;
  /** Opens what the cluster sends (cluster→client key). */
  readonly receiveKey: Uint8Array;
}

/**
 * What the key-derivation `derive` step yields: the session keys, or why the cluster's key is
 * unusable (`key_mismatch`).
 */
export type ClusterSessionDerived =
  | { readonly ok: true; readonly keys: ClientSealingKeys }
  | { readonly ok: false; readonly error: ClientError };

/** The cluster's identity key as it sent it in SendPubKey (for the RequestKey cache). */
export interface LearnedClusterKey {
  /** Version of the key (u16). */
  readonly version: number;
  /** The raw 32-byte public key. */
  readonly publicKey: Uint8Array;
}

/**
 * The machine's own events (besides the shared `send`, `seal`, `derive` and `close` actions);
 * the adapter acts on them.
 *
 * - `learned_key`: the cluster sent its key (SendPubKey) and it matched; for the key cache.
 * - `authenticated`: Authenticate(20); game traffic may flow.
 * - `packet`: a Plugin, MoveBatch, Spawn, Despawn or Pong packet, as decoded. A Plugin payload
 *   is a view valid only until the frame handler returns.
 * - `command_unhandled`: see {@linkcode CommandUnhandledEvent}.
 * - `left`: the cluster acknowledged LeaveCluster; a `close` follows.
 * - `disconnected`: DisconnectCluster(reason); a `close` follows.
 * - `unhandled`: offer to client plugins, else apply
 *   {@linkcode ClusterSessionMachine.fail}`(error, closeWith)`.
 * - `failed`: the session is over; a `close` follows.
 */
export type ClusterSessionEvent =
  | { readonly type: "learned_key"; readonly key: LearnedClusterKey }
  | { readonly type: "authenticated"; readonly clientId: number }
  | {
    readonly type: "packet";
    readonly packet: PluginPacket | MoveBatchPacket | SpawnPacket | DespawnPacket | PongPacket;
  }
  | CommandUnhandledEvent
  | { readonly type: "left" }
  | { readonly type: "disconnected"; readonly reason: string }
  | UnhandledFrameEvent
  | SessionFailedEvent;

/**
 * What the adapter must do, in order, after a packet from the cluster (shared/machine_action.ts):
 * `send` this frame, `derive` the session keys (feed the result to
 * {@linkcode ClusterSessionMachine.derived}), `seal` the connection, `close` (first sending
 * `Error(code, message)` when `code` is given), or a {@linkcode ClusterSessionEvent}.
 */
export type ClusterSessionAction = MachineAction<ClusterSessionDerived, ClusterSessionEvent>;

/**
 * `Error(Unhandled)` after the join: no plugin of the cluster handles a command this client
 * sent. Not fatal; `command` is read from the reason (`no plugin handles command 0xNN`).
 */
export interface CommandUnhandledEvent {
  /** Discriminant. */
  readonly type: "command_unhandled";
  /** The plugin command nobody handles, if the reason names one. */
  readonly command: number | undefined;
  /** The cluster's reason text. */
  readonly reason: string;
}

/**
 * Reads the command out of an `Error(Unhandled)` reason.
 *
 * @param reason The reason, `no plugin handles command 0xNN`.
 *
 * @example
 * ```ts
 * import { unhandledCommandOf } from "./cluster_session_machine.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(unhandledCommandOf("no plugin handles command 0x81"), 0x81);
 * assert.equal(unhandledCommandOf("something else"), undefined);
 * ```
 */
export function unhandledCommandOf(reason: string): number | undefined {
  const match = /\b0x([89a-f][0-9a-f])\b/i.exec(reason);
  return match === null ? undefined : parseInt(match[1], 16);
}

/** The phase of a {@linkcode ClusterSessionMachine}. */
export type ClusterSessionState =
  | "hello"
  | "key"
  | "exchange"
  | "deriving"
  | "authenticating"
  | "established"
  | "leaving"
  | "ended";

/** How a connection ended, as the transport reports it (`CloseInfo` of shared/transport.ts). */
export interface ConnectionEnd {
  /** Readable reason. */
  readonly reason: string;
  /** The Error code this side sent when closing, if any. */
  readonly code?: number;
  /** Who ended it. */
  readonly by: "local" | "remote" | "error";
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * The client's cluster-connection protocol, from Hello to LeaveCluster.
 *
 * Send {@linkcode hello} first; feed every decoded frame from the cluster to
 * {@linkcode receive} (with the frame itself, for the `unhandled` event) and apply the actions
 * in order (`driveMachine` does). KeyExchangeOk yields a `derive` step (the X25519 key
 * derivation) whose result goes to {@linkcode derived}: then `seal` and the SendPassword frame,
 * sealed. Tell it how the connection ended with {@linkcode ended}.
 *
 * @example The handshake up to the sealed SendPassword
 * ```ts
 * import { ClusterSessionMachine } from "./cluster_session_machine.ts";
 * import { stepMachine } from "../shared/drive_machine.ts";
 * import { generateEphemeralKeyPair } from "../shared/key_derivation.ts";
 * import assert from "node:assert/strict";
 *
 * const cluster = await generateEphemeralKeyPair(); // stands in for the cluster identity
 * const session = new ClusterSessionMachine({
 *   ephemeral: await generateEphemeralKeyPair(),
 *   ticket: new Uint8Array(80),
 *   clusterPublicKey: cluster.publicRaw,
 * });
 * session.hello();
 * const [exchange] = await stepMachine(session, {
 *   kind: "HelloOk", version: 3, role: 2, serverName: "eu-1",
 * });
 * assert.ok(exchange.type === "send" && exchange.frame[4] === 0x23); // KeyExchange
 * const [seal, password] = await stepMachine(session, {
 *   kind: "KeyExchangeOk",
 *   serverRandom: new Uint8Array(32),
 * });
 * assert.ok(seal.type === "seal" && seal.keys.sendKey instanceof Uint8Array);
 * assert.equal(seal.keys.sendKey.length, 32);
 * assert.ok(password.type === "send" && password.frame[4] === 0x25); // SendPassword, sealed
 * assert.equal(session.state, "authenticating");
 * ```
 */
export class ClusterSessionMachine
  implements ProtocolMachine<ClusterSessionDerived, ClusterSessionEvent> {
  readonly #ephemeral: EphemeralKeyPair;
  readonly #ticket: Uint8Array;
  readonly #clusterPublicKey: Uint8Array;
  readonly #requestKey: { readonly cachedVersion: number } | undefined;
  readonly #clientRandom: Uint8Array;
  #state: ClusterSessionState = "hello";
  #serverName = "";
  #clientId = 0;

  /**
   * @param options The ephemeral key pair, the ticket and the key to expect.
   * @throws {RangeError} If the expected key or the client random is not 32 bytes.
   */
  constructor(options: ClusterSessionOptions) {
    if (options.clusterPublicKey.length !== KEY_MATERIAL_BYTES) {
      throw new RangeError(
        `clusterPublicKey must be ${KEY_MATERIAL_BYTES} bytes, got ${options.clusterPublicKey.length}`,
      );
    }
    const random = options.clientRandom ??
      crypto.getRandomValues(new Uint8Array(KEY_MATERIAL_BYTES));
    if (random.length !== KEY_MATERIAL_BYTES) {
      throw new RangeError(
        `clientRandom must be ${KEY_MATERIAL_BYTES} bytes, got ${random.length}`,
      );
    }
    this.#ephemeral = options.ephemeral;
    this.#ticket = options.ticket;
    this.#clusterPublicKey = options.clusterPublicKey;
    this.#requestKey = options.requestKey;
    this.#clientRandom = random;
  }

  /** The current phase. */
  get state(): ClusterSessionState {
    return this.#state;
  }

  /** The cluster's name from HelloOk ("" before). */
  get serverName(): string {
    return this.#serverName;
  }

  /** This player's id on the cluster, from Authenticate(20) (0 before). */
  get clientId(): number {
    return this.#clientId;
  }

  /**
   * The first frame to send: Hello(version 1, role client).
   *
   * @example
   * ```ts
   * import { ClusterSessionMachine } from "./cluster_session_machine.ts";
   * import { generateEphemeralKeyPair } from "../shared/key_derivation.ts";
   * import assert from "node:assert/strict";
   *
   * const pair = await generateEphemeralKeyPair();
   * const session = new ClusterSessionMachine({
   *   ephemeral: pair,
   *   ticket: new Uint8Array(1),
   *   clusterPublicKey: pair.publicRaw,
   * });
   * assert.equal(session.hello().toHex(), "000000080153555354000301");
   * ```
   */
  hello(): Uint8Array {
    return encodePacket({ kind: "Hello", version: PROTOCOL_VERSION, role: Role.Client });
  }

  /**
   * Handles one decoded packet from the cluster (or the codec's error).
   *
   * @param packet The packet, or the codec's error for a malformed frame; an event may hold
   * views of it, valid only until the frame handler returns.
   * @param _now When it arrived, in ms (unused: the adapter keeps the deadlines).
   * @param frame The frame it came from, handed on in an `unhandled` event.
   * @returns The actions (none once the session has ended).
   *
   * @example A refused ticket
   * ```ts
   * import { ClusterSessionMachine } from "./cluster_session_machine.ts";
   * import { generateEphemeralKeyPair } from "../shared/key_derivation.ts";
   * import assert from "node:assert/strict";
   *
   * const pair = await generateEphemeralKeyPair();
   * const session = new ClusterSessionMachine({
   *   ephemeral: pair,
   *   ticket: new Uint8Array(1),
   *   clusterPublicKey: pair.publicRaw,
   * });
   * const [failed, close] = session.receive({ kind: "Error", code: 8, reason: "" }, 0);
   * assert.ok(failed.type === "failed" && failed.error.code === "server_full");
   * assert.equal(close.type, "close");
   * ```
   */
  receive(
    packet: Packet | ProtocolError,
    _now: number,
    frame?: Frame,
  ): readonly ClusterSessionAction[] {
    if (this.#state === "ended") return [];
    if (packet instanceof ProtocolError) {
      return [unhandledFrame(frame, packet, "cluster", this.#state)];
    }
    if (packet.kind === "Error") {
      if (
        packet.code === ErrorCode.Unhandled &&
        (this.#state === "established" || this.#state === "leaving")
      ) {
        const command = unhandledCommandOf(packet.reason);
        return [{ type: "command_unhandled", command, reason: packet.reason }];
      }
      return this.fail(errorFromWire(packet.code, packet.reason, "cluster"));
    }
    switch (this.#state) {
      case "hello": {
        if (packet.kind !== "HelloOk") break;
        const bad = checkHelloOk(packet, Role.Cluster);
        if (bad !== undefined) {
          return this.fail(new ClientError("protocol_error", bad.message), bad);
        }
        this.#serverName = packet.serverName;
        if (this.#requestKey !== undefined) {
          this.#state = "key";
          const cachedVersion = this.#requestKey.cachedVersion;
          return [{ type: "send", frame: encodePacket({ kind: "RequestKey", cachedVersion }) }];
        }
        return this.#keyExchange();
      }
      case "key": {
        if (packet.kind === "VersionOfKey") {
          if (this.#requestKey?.cachedVersion !== packet.version || packet.version === 0) {
            const message = `VersionOfKey(${packet.version}) does not confirm the cached version`;
            return this.fail(new ClientError("protocol_error", message), {
              code: ErrorCode.BadPacket,
              message,
            });
          }
          return this.#keyExchange();
        }
        if (packet.kind === "SendPubKey") {
          if (!sameBytes(packet.publicKey, this.#clusterPublicKey)) {
            return this.fail(
              new ClientError(
                "key_mismatch",
                "the cluster sent an identity key other than the expected one",
              ),
            );
          }
          return [
            { type: "learned_key", key: { version: packet.version, publicKey: packet.publicKey } },
            ...this.#keyExchange(),
          ];
        }
        break;
      }
      case "exchange": {
        if (packet.kind !== "KeyExchangeOk") break;
        const serverRandom = packet.serverRandom;
        this.#state = "deriving";
        return [{ type: "derive", derive: () => this.#deriveKeys(serverRandom) }];
      }
      case "authenticating":
        if (packet.kind !== "Authenticate") break;
        if (packet.status !== AuthStatus.Ok) return this.fail(errorFromAuthStatus(packet.status));
        this.#state = "established";
        this.#clientId = packet.clientId;
        return [{ type: "authenticated", clientId: packet.clientId }];
      case "established":
      case "leaving":
        switch (packet.kind) {
          case "Plugin":
          case "MoveBatch":
          case "Spawn":
          case "Despawn":
          case "Pong":
            return [{ type: "packet", packet }];
          case "Ping":
            return [{ type: "send", frame: encodePacket({ kind: "Pong", value: packet.value }) }];
          case "DisconnectCluster":
            this.#state = "ended";
            return [
              { type: "disconnected", reason: packet.reason },
              { type: "close", reason: "the cluster disconnected this client" },
            ];
          case "LeaveCluster":
            this.#state = "ended";
            return [{ type: "left" }, { type: "close", reason: "left the cluster" }];
        }
        break;
    }
    return [unhandledFrame(frame, packet, "cluster", this.#state)];
  }

  /** The `derive` step: the session keys, or `key_mismatch` for an unusable cluster key. */
  async #deriveKeys(serverRandom: Uint8Array): Promise<ClusterSessionDerived> {
    try {
      const keys = await clientSessionKeysForClient(
        this.#ephemeral.privateKey,
        this.#clusterPublicKey,
        this.#clientRandom,
        serverRandom,
      );
      return {
        ok: true,
        keys: { sendKey: keys.clientToCluster, receiveKey: keys.clusterToClient },
      };
    } catch (cause) {
      // Any other failure is a bug: the driver logs it and closes.
      if (!(cause instanceof KeyError)) throw cause;
      return {
        ok: false,
        error: new ClientError("key_mismatch", "the cluster key is not a usable X25519 key", {
          cause,
        }),
      };
    }
  }

  /**
   * Takes the session keys after KeyExchangeOk: `seal`, then the SendPassword frame (sent
   * sealed); or the session fails (`key_mismatch`).
   *
   * @param result What the `derive` step yielded.
   * @param _now When it ended, in ms.
   * @returns The actions (none unless the machine was waiting for the keys).
   *
   * @example Only after KeyExchangeOk
   * ```ts
   * import { ClusterSessionMachine } from "./cluster_session_machine.ts";
   * import { generateEphemeralKeyPair } from "../shared/key_derivation.ts";
   * import assert from "node:assert/strict";
   *
   * const pair = await generateEphemeralKeyPair();
   * const session = new ClusterSessionMachine({
   *   ephemeral: pair,
   *   ticket: new Uint8Array(1),
   *   clusterPublicKey: pair.publicRaw,
   * });
   * const keys = { sendKey: new Uint8Array(32), receiveKey: new Uint8Array(32) };
   * assert.deepEqual(session.derived({ ok: true, keys }, 0), []);
   * assert.equal(session.state, "hello");
   * ```
   */
  derived(result: ClusterSessionDerived, _now: number): readonly ClusterSessionAction[] {
    // Ended meanwhile (the connection closed during the derivation): nothing to do.
    if (this.#state !== "deriving") return [];
    if (!result.ok) return this.fail(result.error);
    this.#state = "authenticating";
    // The cluster sends nothing between KeyExchangeOk and our SendPassword, so sealing after
    // the (async) derivation still switches the reader at the right byte.
    return [
      { type: "seal", keys: result.keys },
      { type: "send", frame: encodePacket({ kind: "SendPassword", ticket: this.#ticket }) },
    ];
  }

  /**
   * Ends the session (no client plugin took an `unhandled` frame): the `failed` event and the
   * `close`, or nothing if it had already ended.
   *
   * @param error Why.
   * @param closeWith The Error frame to send before closing, if any.
   * @returns The actions to apply.
   *
   * @example
   * ```ts
   * import { ClusterSessionMachine } from "./cluster_session_machine.ts";
   * import { generateEphemeralKeyPair } from "../shared/key_derivation.ts";
   * import { ClientError } from "./errors.ts";
   * import assert from "node:assert/strict";
   *
   * const pair = await generateEphemeralKeyPair();
   * const session = new ClusterSessionMachine({
   *   ephemeral: pair,
   *   ticket: new Uint8Array(1),
   *   clusterPublicKey: pair.publicRaw,
   * });
   * const actions = session.fail(new ClientError("protocol_error", "odd frame"), {
   *   code: 7,
   *   message: "odd frame",
   * });
   * assert.deepEqual(actions.map((a) => a.type), ["failed", "close"]);
   * assert.equal(session.state, "ended");
   * ```
   */
  fail(error: ClientError, closeWith?: SessionCloseReason): readonly ClusterSessionAction[] {
    if (this.#state === "ended") return [];
    this.#state = "ended";
    return failure(error, closeWith);
  }

  /**
   * Makes a plugin command frame (hot path: no packet object).
   *
   * @param command 0x80..0xFF.
   * @param payload Opaque bytes for the cluster's plugins.
   * @throws {ClientError} `invalid_state` unless authenticated.
   * @throws {RangeError} If the command is outside 0x80..0xFF.
   *
   * @example
   * ```ts
   * import { ClusterSessionMachine } from "./cluster_session_machine.ts";
   * import { generateEphemeralKeyPair } from "../shared/key_derivation.ts";
   * import assert from "node:assert/strict";
   *
   * const pair = await generateEphemeralKeyPair();
   * const session = new ClusterSessionMachine({
   *   ephemeral: pair,
   *   ticket: new Uint8Array(1),
   *   clusterPublicKey: pair.publicRaw,
   * });
   * assert.throws(() => session.send(0x80, new Uint8Array()), /not authenticated/);
   * ```
   */
  send(command: number, payload: Uint8Array): Uint8Array {
    this.#assertEstablished();
    return encodePluginFrame(command, payload);
  }

  /**
   * Makes a Move frame.
   *
   * @param state The player's position (and optional yaw / velocity).
   * @throws {ClientError} `invalid_state` unless authenticated.
   *
   * @example
   * ```ts
   * import { ClusterSessionMachine } from "./cluster_session_machine.ts";
   * import { generateEphemeralKeyPair } from "../shared/key_derivation.ts";
   * import assert from "node:assert/strict";
   *
   * const pair = await generateEphemeralKeyPair();
   * const session = new ClusterSessionMachine({
   *   ephemeral: pair,
   *   ticket: new Uint8Array(1),
   *   clusterPublicKey: pair.publicRaw,
   * });
   * assert.throws(() => session.move({ x: 0, y: 0, z: 0 }), /not authenticated/);
   * ```
   */
  move(state: MoveState): Uint8Array {
    this.#assertEstablished();
    return encodePacket({ kind: "Move", state });
  }

  /**
   * Makes a Ping frame (once authenticated).
   *
   * @param value Echoed by the cluster's Pong.
   *
   * @example
   * ```ts
   * import { ClusterSessionMachine } from "./cluster_session_machine.ts";
   * import { generateEphemeralKeyPair } from "../shared/key_derivation.ts";
   * import assert from "node:assert/strict";
   *
   * const pair = await generateEphemeralKeyPair();
   * const session = new ClusterSessionMachine({
   *   ephemeral: pair,
   *   ticket: new Uint8Array(1),
   *   clusterPublicKey: pair.publicRaw,
   * });
   * assert.throws(() => session.ping(1), /not authenticated/);
   * ```
   */
  ping(value: number): Uint8Array {
    this.#assertEstablished();
    return encodePacket({ kind: "Ping", value: value >>> 0 });
  }

  /**
   * Makes the LeaveCluster frame; the cluster's acknowledgement is a `left` event.
   *
   * @throws {ClientError} `invalid_state` unless authenticated.
   *
   * @example
   * ```ts
   * import { ClusterSessionMachine } from "./cluster_session_machine.ts";
   * import { generateEphemeralKeyPair } from "../shared/key_derivation.ts";
   * import assert from "node:assert/strict";
   *
   * const pair = await generateEphemeralKeyPair();
   * const session = new ClusterSessionMachine({
   *   ephemeral: pair,
   *   ticket: new Uint8Array(1),
   *   clusterPublicKey: pair.publicRaw,
   * });
   * assert.throws(() => session.leave(), /not authenticated/);
   * ```
   */
  leave(): Uint8Array {
    this.#assertEstablished();
    this.#state = "leaving";
    return encodePacket({ kind: "LeaveCluster" });
  }

  /**
   * Says what the end of the connection means in the current phase, and ends the session. A
   * connection that this side closed for a bad record while waiting for Authenticate means the
   * cluster does not hold the expected key (`key_mismatch`).
   *
   * @param end How the connection ended.
   *
   * @example
   * ```ts
   * import { ClusterSessionMachine } from "./cluster_session_machine.ts";
   * import { generateEphemeralKeyPair } from "../shared/key_derivation.ts";
   * import assert from "node:assert/strict";
   *
   * const pair = await generateEphemeralKeyPair();
   * const session = new ClusterSessionMachine({
   *   ephemeral: pair,
   *   ticket: new Uint8Array(1),
   *   clusterPublicKey: pair.publicRaw,
   * });
   * const error = session.ended({ reason: "connection closed by peer", by: "remote" });
   * assert.equal(error.code, "disconnected");
   * assert.equal(session.state, "ended");
   * ```
   */
  ended(end: ConnectionEnd): ClientError {
    const state = this.#state;
    this.#state = "ended";
    if (end.by === "error" && end.code === ErrorCode.Timeout) {
      return new ClientError("timeout", `cluster connection timed out (${state}): ${end.reason}`);
    }
    if (state === "authenticating" && end.by === "error" && end.code === ErrorCode.BadFrame) {
      return new ClientError(
        "key_mismatch",
        "the cluster's first sealed record did not open: it does not hold the expected key",
      );
    }
    const during = state === "established" || state === "leaving" || state === "ended"
      ? ""
      : ` during the handshake (${state})`;
    return new ClientError("disconnected", `cluster connection ended${during}: ${end.reason}`);
  }

  #keyExchange(): readonly ClusterSessionAction[] {
    this.#state = "exchange";
    const frame = encodePacket({
      kind: "KeyExchange",
      clientPublicKey: this.#ephemeral.publicRaw,
      clientRandom: this.#clientRandom,
    });
    return [{ type: "send", frame }];
  }

  #assertEstablished(): void {
    if (this.#state !== "established") {
      throw new ClientError("invalid_state", `cluster session not authenticated (${this.#state})`);
    }
  }
}
