// This module is browser compatible.
/**
 * The client side of a cluster connection as a sans-I/O state machine (docs/PROTOCOL.md,
 * "Client → cluster"): Hello → HelloOk, optional RequestKey → VersionOfKey | SendPubKey,
 * KeyExchange → KeyExchangeOk (then both directions are sealed with keys derived from
 * X25519(ephemeral, pinned cluster key)), SendPassword(ticket) → Authenticate, then the
 * established game traffic. It makes the frames to send and turns each frame received into one
 * {@linkcode ClusterSessionEvent}; a socket adapter acts on it.
 *
 * It must never do I/O or keep time, never complete a handshake with a key other than the one
 * it was given to expect, and never expose the ticket or the session keys except to the adapter
 * that seals the connection.
 *
 * @module
 */

import type { Frame } from "../shared/protocol/frame.ts";
import { decodePacket, encodePacket, encodePluginFrame } from "../shared/protocol/codec.ts";
import type { MoveState } from "../shared/protocol/move_state.ts";
import {
  AuthStatus,
  type DespawnPacket,
  KEY_MATERIAL_BYTES,
  type MoveBatchPacket,
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
  type SessionCloseReason,
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

/** What {@linkcode ClusterSessionMachine.deriveKeys} returns: seal with `keys`, then send `frame`. */
export interface SealStep {
  /** The session keys, for the transport's `startSealing`. */
  readonly keys: ClientSealingKeys;
  /** The SendPassword frame, to send once sealed. */
  readonly frame: Uint8Array;
}

/** The cluster's identity key as it sent it in SendPubKey (for the RequestKey cache). */
export interface LearnedClusterKey {
  /** Version of the key (u16). */
  readonly version: number;
  /** The raw 32-byte public key. */
  readonly publicKey: Uint8Array;
}

/**
 * What one frame from the cluster means; the adapter acts on it.
 *
 * - `send`: send `frame` (the next handshake step); `learnedKey` is set when the cluster sent
 *   its key (SendPubKey) and it matched.
 * - `derive_keys`: KeyExchangeOk arrived: call {@linkcode ClusterSessionMachine.deriveKeys},
 *   seal the connection with its keys, then send its frame.
 * - `authenticated`: Authenticate(20); game traffic may flow.
 * - `Plugin`, `MoveBatch`, `Spawn`, `Despawn`, `Pong`: the decoded packet itself (no wrapper
 *   per frame). A Plugin payload is a view valid only until the frame handler returns.
 * - `reply`: send `frame` (a Pong to the cluster's Ping).
 * - `left`: the cluster acknowledged LeaveCluster; it closes next.
 * - `disconnected`: DisconnectCluster(reason); the cluster closes next.
 * - `unhandled`: offer to client plugins, else fail with its `error`.
 * - `failed`: the session is over; close (sending `closeWith` first, if any).
 */
export type ClusterSessionEvent =
  | { readonly kind: "send"; readonly frame: Uint8Array; readonly learnedKey?: LearnedClusterKey }
  | { readonly kind: "derive_keys" }
  | { readonly kind: "authenticated"; readonly clientId: number }
  | PluginPacket
  | MoveBatchPacket
  | SpawnPacket
  | DespawnPacket
  | PongPacket
  | { readonly kind: "reply"; readonly frame: Uint8Array }
  | CommandUnhandledEvent
  | { readonly kind: "left" }
  | { readonly kind: "disconnected"; readonly reason: string }
  | UnhandledFrameEvent
  | {
    readonly kind: "failed";
    readonly error: ClientError;
    readonly closeWith?: SessionCloseReason;
  };

/**
 * `Error(Unhandled)` after the join: no plugin of the cluster handles a command this client
 * sent. Not fatal; `command` is read from the reason (`no plugin handles command 0xNN`).
 */
export interface CommandUnhandledEvent {
  /** Discriminant. */
  readonly kind: "command_unhandled";
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
 * @example The handshake up to the key derivation
 * ```ts
 * import { ClusterSessionMachine } from "./cluster_session_machine.ts";
 * import { generateEphemeralKeyPair } from "../shared/key_derivation.ts";
 * import { encodePacket } from "../shared/protocol/codec.ts";
 * import assert from "node:assert/strict";
 *
 * const toFrame = (bytes: Uint8Array) => ({ type: bytes[4], payload: bytes.subarray(5) });
 * const cluster = await generateEphemeralKeyPair(); // stands in for the cluster identity
 * const session = new ClusterSessionMachine({
 *   ephemeral: await generateEphemeralKeyPair(),
 *   ticket: new Uint8Array(80),
 *   clusterPublicKey: cluster.publicRaw,
 * });
 * session.hello();
 * const exchange = session.receive(
 *   toFrame(encodePacket({ kind: "HelloOk", version: 3, role: 2, serverName: "eu-1" })),
 * );
 * assert.ok(exchange.kind === "send" && exchange.frame[4] === 0x23); // KeyExchange
 * const ok = session.receive(
 *   toFrame(encodePacket({ kind: "KeyExchangeOk", serverRandom: new Uint8Array(32) })),
 * );
 * assert.equal(ok.kind, "derive_keys");
 * const step = await session.deriveKeys();
 * assert.equal(step.keys.sendKey.length, 32);
 * assert.equal(step.frame[4], 0x25); // SendPassword, to send sealed
 * assert.equal(session.state, "authenticating");
 * ```
 */
export class ClusterSessionMachine {
  readonly #ephemeral: EphemeralKeyPair;
  readonly #ticket: Uint8Array;
  readonly #clusterPublicKey: Uint8Array;
  readonly #requestKey: { readonly cachedVersion: number } | undefined;
  readonly #clientRandom: Uint8Array;
  #serverRandom: Uint8Array | undefined;
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
   * Handles one frame from the cluster.
   *
   * @param frame A frame as delivered by the transport; the event may hold views of it, valid
   * only until the frame handler returns.
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
   * // Error(ServerFull, "") before HelloOk
   * const event = session.receive({ type: 0x03, payload: Uint8Array.fromHex("00080000") });
   * assert.ok(event.kind === "failed" && event.error.code === "server_full");
   * ```
   */
  receive(frame: Frame): ClusterSessionEvent {
    const packet = decodePacket(frame);
    if (this.#state === "ended") {
      return { kind: "failed", error: new ClientError("disconnected", "cluster session ended") };
    }
    if (packet instanceof ProtocolError) {
      return unhandledFrame(frame, packet, "cluster", this.#state);
    }
    if (packet.kind === "Error") {
      if (
        packet.code === ErrorCode.Unhandled &&
        (this.#state === "established" || this.#state === "leaving")
      ) {
        const command = unhandledCommandOf(packet.reason);
        return { kind: "command_unhandled", command, reason: packet.reason };
      }
      return this.#fail(errorFromWire(packet.code, packet.reason, "cluster"));
    }
    switch (this.#state) {
      case "hello": {
        if (packet.kind !== "HelloOk") break;
        const bad = checkHelloOk(packet, Role.Cluster);
        if (bad !== undefined) {
          return this.#fail(new ClientError("protocol_error", bad.message), bad);
        }
        this.#serverName = packet.serverName;
        if (this.#requestKey !== undefined) {
          this.#state = "key";
          const cachedVersion = this.#requestKey.cachedVersion;
          return { kind: "send", frame: encodePacket({ kind: "RequestKey", cachedVersion }) };
        }
        return this.#keyExchange();
      }
      case "key": {
        if (packet.kind === "VersionOfKey") {
          if (this.#requestKey?.cachedVersion !== packet.version || packet.version === 0) {
            const message = `VersionOfKey(${packet.version}) does not confirm the cached version`;
            return this.#fail(new ClientError("protocol_error", message), {
              code: ErrorCode.BadPacket,
              message,
            });
          }
          return this.#keyExchange();
        }
        if (packet.kind === "SendPubKey") {
          if (!sameBytes(packet.publicKey, this.#clusterPublicKey)) {
            return this.#fail(
              new ClientError(
                "key_mismatch",
                "the cluster sent an identity key other than the expected one",
              ),
            );
          }
          return this.#keyExchange({ version: packet.version, publicKey: packet.publicKey });
        }
        break;
      }
      case "exchange":
        if (packet.kind !== "KeyExchangeOk") break;
        this.#serverRandom = packet.serverRandom;
        this.#state = "deriving";
        return { kind: "derive_keys" };
      case "authenticating":
        if (packet.kind !== "Authenticate") break;
        if (packet.status !== AuthStatus.Ok) return this.#fail(errorFromAuthStatus(packet.status));
        this.#state = "established";
        this.#clientId = packet.clientId;
        return { kind: "authenticated", clientId: packet.clientId };
      case "established":
      case "leaving":
        switch (packet.kind) {
          case "Plugin":
          case "MoveBatch":
          case "Spawn":
          case "Despawn":
          case "Pong":
            return packet;
          case "Ping":
            return { kind: "reply", frame: encodePacket({ kind: "Pong", value: packet.value }) };
          case "DisconnectCluster":
            this.#state = "ended";
            return { kind: "disconnected", reason: packet.reason };
          case "LeaveCluster":
            this.#state = "ended";
            return { kind: "left" };
        }
        break;
    }
    return unhandledFrame(frame, packet, "cluster", this.#state);
  }

  /**
   * Derives the session keys after KeyExchangeOk and makes the SendPassword frame.
   *
   * @returns The keys to seal the connection with and the frame to send once sealed.
   * @throws {ClientError} `invalid_state` unless a `derive_keys` event came first;
   * `key_mismatch` if the expected key is not a usable X25519 public key.
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
   * await assert.rejects(session.deriveKeys(), /KeyExchangeOk/);
   * ```
   */
  async deriveKeys(): Promise<SealStep> {
    const serverRandom = this.#serverRandom;
    if (this.#state !== "deriving" || serverRandom === undefined) {
      throw new ClientError("invalid_state", "session keys are derived after KeyExchangeOk only");
    }
    let keys;
    try {
      keys = await clientSessionKeysForClient(
        this.#ephemeral.privateKey,
        this.#clusterPublicKey,
        this.#clientRandom,
        serverRandom,
      );
    } catch (cause) {
      if (!(cause instanceof KeyError)) throw cause;
      this.#state = "ended";
      throw new ClientError("key_mismatch", "the cluster key is not a usable X25519 key", {
        cause,
      });
    }
    if (this.#state !== "deriving") {
      throw new ClientError("disconnected", "cluster session ended during the key exchange");
    }
    this.#state = "authenticating";
    return {
      keys: { sendKey: keys.clientToCluster, receiveKey: keys.clusterToClient },
      frame: encodePacket({ kind: "SendPassword", ticket: this.#ticket }),
    };
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

  #keyExchange(learnedKey?: LearnedClusterKey): ClusterSessionEvent {
    this.#state = "exchange";
    const frame = encodePacket({
      kind: "KeyExchange",
      clientPublicKey: this.#ephemeral.publicRaw,
      clientRandom: this.#clientRandom,
    });
    return learnedKey === undefined ? { kind: "send", frame } : { kind: "send", frame, learnedKey };
  }

  #fail(error: ClientError, closeWith?: SessionCloseReason): ClusterSessionEvent {
    this.#state = "ended";
    return closeWith === undefined
      ? { kind: "failed", error }
      : { kind: "failed", error, closeWith };
  }

  #assertEstablished(): void {
    if (this.#state !== "established") {
      throw new ClientError("invalid_state", `cluster session not authenticated (${this.#state})`);
    }
  }
}
