// This module is browser compatible.
/**
 * The cluster's side of one client connection as a sans-I/O state machine (docs/PROTOCOL.md
 * "Client → cluster"): decoded packets in, {@linkcode SessionAction}s out. It answers the
 * Hello, serves the identity public key (RequestKey), runs the X25519 key exchange, checks the
 * join ticket and then turns game packets into actions for the cluster server.
 *
 * It must never touch a socket, never let any packet but Hello, RequestKey, KeyExchange and
 * SendPassword through before `Authenticate(20)`, never accept a packet while a key exchange or
 * ticket check is in flight (the peer must wait for the answer), and never put a key, ticket
 * or passphrase in an action's reason.
 *
 * @module
 */

import type { JoinTicketClaims, TicketVerifier } from "../shared/join_ticket.ts";
import { clientSessionKeysForCluster } from "../shared/key_derivation.ts";
import { encodePacket } from "../shared/protocol/codec.ts";
import type { MoveState } from "../shared/protocol/move_state.ts";
import {
  AuthStatus,
  type ClusterInfo,
  type Packet,
  PROTOCOL_VERSION,
  Role,
} from "../shared/protocol/packets.ts";
import { ErrorCode, errorCodeName, ProtocolError } from "../shared/protocol/protocol_error.ts";
import { KeyError } from "../shared/security.ts";

/** Bytes of the KeyExchangeOk server random. */
const SERVER_RANDOM_BYTES = 32;
/** Longest part of a peer's Error reason repeated in our log (it is untrusted text). */
const MAX_PEER_REASON_CHARS = 200;

/**
 * Where a session is: `hello` (waiting for Hello), `handshake` (RequestKey or KeyExchange),
 * `keying` (deriving session keys), `ticket` (sealed, waiting for SendPassword), `verifying`
 * (checking the ticket), `established` (authenticated player), `closed`.
 *
 * @example
 * ```ts
 * import type { ClientSessionState } from "./client_session.ts";
 * import assert from "node:assert/strict";
 *
 * const state: ClientSessionState = "hello";
 * assert.equal(state, "hello");
 * ```
 */
export type ClientSessionState =
  | "hello"
  | "handshake"
  | "keying"
  | "ticket"
  | "verifying"
  | "established"
  | "closed";

/**
 * The cluster's identity key pair as sessions need it.
 *
 * @example
 * ```ts
 * import type { ClusterIdentity } from "./client_session.ts";
 * import { generateIdentityKeyPair } from "../shared/identity_key.ts";
 * import assert from "node:assert/strict";
 *
 * const pair = await generateIdentityKeyPair();
 * const publicKey = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
 * const identity: ClusterIdentity = { privateKey: pair.privateKey, publicKey, version: 1 };
 * assert.equal(identity.publicKey.length, 32);
 * ```
 */
export interface ClusterIdentity {
  /** X25519 private key (for `deriveBits`). */
  readonly privateKey: CryptoKey;
  /** The raw 32-byte public key. */
  readonly publicKey: Uint8Array;
  /** Its u16 version (RequestKey / SendPubKey / VersionOfKey). */
  readonly version: number;
}

/**
 * The session keys a connection switches to, from the cluster's point of view (the shape of
 * the transport's `SealingKeys`).
 *
 * @example
 * ```ts
 * import type { SessionSealingKeys } from "./client_session.ts";
 * import assert from "node:assert/strict";
 *
 * const keys: SessionSealingKeys = { sendKey: new Uint8Array(32), receiveKey: new Uint8Array(32) };
 * assert.equal(keys.sendKey.length, 32);
 * ```
 */
export interface SessionSealingKeys {
  /** Seals what the cluster sends (cluster→client key). */
  readonly sendKey: Uint8Array;
  /** Opens what the client sends (client→cluster key). */
  readonly receiveKey: Uint8Array;
}

/**
 * How loudly the cluster server should log a close: a normal end (`debug`), a refusal or
 * timeout (`info`), a misbehaving peer (`warning`), a fault of ours (`error`).
 *
 * @example
 * ```ts
 * import type { CloseLogLevel } from "./client_session.ts";
 * import assert from "node:assert/strict";
 *
 * const level: CloseLogLevel = "warning";
 * assert.equal(level, "warning");
 * ```
 */
export type CloseLogLevel = "debug" | "info" | "warning" | "error";

/**
 * What the cluster server must do, in order, after a packet.
 *
 * - `send`: queue this encoded frame.
 * - `seal`: switch the connection to sealed records (right after the frames queued before).
 * - `authenticated`: a player joined under `clientId` (after its Authenticate(20) was queued).
 * - `refused`: a ticket was refused with `status` (for metrics; a `close` follows).
 * - `plugin`: a plugin command from the player (`payload` is a view: copy to keep it).
 * - `move`: a Move from the player.
 * - `close`: close the connection, first sending `Error(code, reason)` when `code` is given.
 *
 * @example
 * ```ts
 * import type { SessionAction } from "./client_session.ts";
 * import assert from "node:assert/strict";
 *
 * const action: SessionAction = { type: "close", reason: "left", level: "debug" };
 * assert.equal(action.type, "close");
 * ```
 */
export type SessionAction =
  | { readonly type: "send"; readonly frame: Uint8Array }
  | { readonly type: "seal"; readonly keys: SessionSealingKeys }
  | { readonly type: "authenticated"; readonly clientId: number; readonly playerId: string }
  | { readonly type: "refused"; readonly status: 40 | 44 | 50; readonly reason: string }
  | { readonly type: "plugin"; readonly command: number; readonly payload: Uint8Array }
  | { readonly type: "move"; readonly state: MoveState }
  | {
    readonly type: "close";
    readonly code?: ErrorCode;
    readonly reason: string;
    readonly level: CloseLogLevel;
  };

/**
 * What {@linkcode ClientSession.receive} returns: actions now, or once an async step ends.
 *
 * @example
 * ```ts
 * import type { SessionStep } from "./client_session.ts";
 * import assert from "node:assert/strict";
 *
 * const step: SessionStep = [];
 * assert.ok(!(step instanceof Promise));
 * ```
 */
export type SessionStep = readonly SessionAction[] | Promise<readonly SessionAction[]>;

/**
 * Options of {@linkcode ClientSession}; one object can serve every session of a cluster.
 *
 * @example
 * ```ts
 * import type { ClientSessionOptions } from "./client_session.ts";
 * import { generateIdentityKeyPair } from "../shared/identity_key.ts";
 * import assert from "node:assert/strict";
 *
 * const pair = await generateIdentityKeyPair();
 * const options: ClientSessionOptions = {
 *   serverName: "eu-1",
 *   identity: { privateKey: pair.privateKey, publicKey: new Uint8Array(32), version: 1 },
 *   tickets: () => undefined,
 *   admit: () => undefined,
 * };
 * assert.equal(options.serverName, "eu-1");
 * ```
 */
export interface ClientSessionOptions {
  /** Name sent in HelloOk (at most 255 UTF-8 bytes). */
  readonly serverName: string;
  /** The cluster's identity key pair. */
  readonly identity: ClusterIdentity;
  /**
   * The ticket verifier for the cluster id the master assigned, or undefined while the cluster
   * has never registered (every ticket then gets `Authenticate(50)`).
   */
  readonly tickets: () => TicketVerifier | undefined;
  /**
   * Admits a player whose ticket passed every check: returns its new client id, or undefined
   * when there is no room (`Authenticate(50)`). Called with no `await` after the check.
   */
  readonly admit: (claims: JoinTicketClaims) => number | undefined;
  /**
   * The answer to RequestClusters from an authenticated player.
   *
   * @default {() => []}
   */
  readonly clusters?: () => readonly ClusterInfo[];
  /**
   * Skip sealing after the key exchange (benchmarks on loopback only; the cluster server
   * enforces that).
   *
   * @default {false}
   */
  readonly plaintext?: boolean;
}

function close(code: ErrorCode | undefined, reason: string, level: CloseLogLevel): SessionAction {
  return code === undefined
    ? { type: "close", reason, level }
    : { type: "close", code, reason, level };
}

function send(packet: Packet): SessionAction {
  return { type: "send", frame: encodePacket(packet) };
}

/** Authenticate(status, 0), the refusal, and the close that must follow it. */
function refuse(status: 40 | 44 | 50, reason: string, level: CloseLogLevel): SessionAction[] {
  return [
    send({ kind: "Authenticate", status, clientId: 0 }),
    { type: "refused", status, reason },
    close(undefined, `ticket refused (${status}): ${reason}`, level),
  ];
}

/**
 * One client connection's protocol state, from Hello to LeaveCluster.
 *
 * Feed it every decoded frame (or the codec's {@linkcode ProtocolError}) with
 * {@linkcode receive}; apply the returned actions in order. The key exchange and the ticket
 * check are asynchronous: `receive` then returns a promise, and any packet that arrives before
 * it settles closes the session (`UnexpectedPacket`), since the peer must wait for the answer.
 * Tell it about a close that did not come from it with {@linkcode closed}.
 *
 * @example Hello, then a packet that is not allowed before authentication
 * ```ts
 * import { ClientSession } from "./client_session.ts";
 * import { generateIdentityKeyPair } from "../shared/identity_key.ts";
 * import assert from "node:assert/strict";
 *
 * const pair = await generateIdentityKeyPair();
 * const session = new ClientSession({
 *   serverName: "eu-1",
 *   identity: { privateKey: pair.privateKey, publicKey: new Uint8Array(32), version: 1 },
 *   tickets: () => undefined,
 *   admit: () => undefined,
 * });
 * const hello = await session.receive({ kind: "Hello", version: 3, role: 1 });
 * assert.equal(hello[0].type, "send");
 * assert.equal(session.state, "handshake");
 * const move = await session.receive({ kind: "Move", state: { x: 0, y: 0, z: 0 } });
 * assert.deepEqual(move, [{
 *   type: "close",
 *   code: 7,
 *   reason: "Move not allowed before authentication",
 *   level: "warning",
 * }]);
 * assert.equal(session.state, "closed");
 * ```
 */
export class ClientSession {
  readonly #options: ClientSessionOptions;
  #state: ClientSessionState = "hello";
  #clientPublicKey: Uint8Array | undefined;
  #clientId = 0;
  /** Set once {@linkcode closed} has reported the player's cleanup. */
  #cleanupReported = false;

  /**
   * Creates a session waiting for the client's Hello.
   *
   * @param options Server name, identity, ticket verifier and admission.
   */
  constructor(options: ClientSessionOptions) {
    this.#options = options;
  }

  /**
   * Where the session is.
   */
  get state(): ClientSessionState {
    return this.#state;
  }

  /**
   * The player's client id once authenticated, else 0.
   */
  get clientId(): number {
    return this.#clientId;
  }

  /**
   * Marks the session closed (whoever closed the connection); an async step still in flight
   * then yields no action. Call it once the connection has closed.
   *
   * @returns `true` exactly once for a session that admitted a player: its cleanup is due
   * (also when the session itself ended it, e.g. after LeaveCluster).
   *
   * @example
   * ```ts
   * import { ClientSession } from "./client_session.ts";
   * import assert from "node:assert/strict";
   *
   * const identity = { privateKey: {} as CryptoKey, publicKey: new Uint8Array(32), version: 1 };
   * const session = new ClientSession({
   *   serverName: "c",
   *   identity,
   *   tickets: () => undefined,
   *   admit: () => undefined,
   * });
   * assert.equal(session.closed(), false);
   * assert.equal(session.state, "closed");
   * ```
   */
  closed(): boolean {
    this.#state = "closed";
    const due = this.#clientId !== 0 && !this.#cleanupReported;
    this.#cleanupReported = true;
    return due;
  }

  /**
   * Handles one decoded packet (or decode error) and says what to do.
   *
   * @param packet The packet, or the codec's error for a malformed frame.
   * @returns The actions, synchronously except after KeyExchange and SendPassword.
   *
   * @example Serving the public key
   * ```ts
   * import { ClientSession } from "./client_session.ts";
   * import { decodePacket } from "../shared/protocol/codec.ts";
   * import assert from "node:assert/strict";
   *
   * const publicKey = new Uint8Array(32).fill(7);
   * const session = new ClientSession({
   *   serverName: "c",
   *   identity: { privateKey: {} as CryptoKey, publicKey, version: 3 },
   *   tickets: () => undefined,
   *   admit: () => undefined,
   * });
   * await session.receive({ kind: "Hello", version: 3, role: 1 });
   * const [fresh] = await session.receive({ kind: "RequestKey", cachedVersion: 0 });
   * const [cached] = await session.receive({ kind: "RequestKey", cachedVersion: 3 });
   * assert.ok(fresh.type === "send" && cached.type === "send");
   * const frame = (bytes: Uint8Array) => ({ type: bytes[4], payload: bytes.subarray(5) });
   * assert.deepEqual(decodePacket(frame(fresh.frame)), { kind: "SendPubKey", version: 3, publicKey });
   * assert.deepEqual(decodePacket(frame(cached.frame)), { kind: "VersionOfKey", version: 3 });
   * ```
   */
  receive(packet: Packet | ProtocolError): SessionStep {
    if (this.#state === "closed") return [];
    if (packet instanceof ProtocolError) {
      // The first frame must be a Hello, whatever else it is.
      const code = this.#state === "hello" ? ErrorCode.BadHello : packet.errorCode;
      return this.#fail(code, packet.message, "warning");
    }
    if (packet.kind === "Error") {
      this.#state = "closed";
      const reason = packet.reason.slice(0, MAX_PEER_REASON_CHARS);
      return [
        close(undefined, `client sent Error ${errorCodeName(packet.code)}: ${reason}`, "info"),
      ];
    }
    switch (this.#state) {
      case "hello":
        return this.#onHello(packet);
      case "handshake":
        return this.#onHandshake(packet);
      case "ticket":
        return this.#onTicket(packet);
      case "established":
        return this.#onEstablished(packet);
      default:
        // keying / verifying: the client must wait for our answer.
        return this.#unexpected(`${packet.kind} while the ${this.#state} step is running`);
    }
  }

  #onHello(packet: Packet): SessionStep {
    if (packet.kind !== "Hello") {
      return this.#fail(ErrorCode.BadHello, `first frame was ${packet.kind}, not Hello`, "warning");
    }
    if (packet.version !== PROTOCOL_VERSION) {
      return this.#fail(
        ErrorCode.VersionMismatch,
        `protocol version ${packet.version} unsupported (this cluster speaks ${PROTOCOL_VERSION})`,
        "info",
      );
    }
    if (packet.role !== Role.Client) {
      return this.#fail(
        ErrorCode.UnexpectedPacket,
        `Hello with role ${packet.role}: a cluster accepts clients only`,
        "warning",
      );
    }
    this.#state = "handshake";
    return [send({
      kind: "HelloOk",
      version: PROTOCOL_VERSION,
      role: Role.Cluster,
      serverName: this.#options.serverName,
    })];
  }

  #onHandshake(packet: Packet): SessionStep {
    if (packet.kind === "RequestKey") {
      const { publicKey, version } = this.#options.identity;
      return [
        send(
          packet.cachedVersion === version
            ? { kind: "VersionOfKey", version }
            : { kind: "SendPubKey", version, publicKey },
        ),
      ];
    }
    if (packet.kind === "KeyExchange") {
      this.#state = "keying";
      this.#clientPublicKey = packet.clientPublicKey;
      return this.#keyExchange(packet.clientPublicKey, packet.clientRandom);
    }
    return this.#unexpected(`${packet.kind} not allowed before authentication`);
  }

  async #keyExchange(
    clientPublicKey: Uint8Array,
    clientRandom: Uint8Array,
  ): Promise<readonly SessionAction[]> {
    const serverRandom = crypto.getRandomValues(new Uint8Array(SERVER_RANDOM_BYTES));
    const answer = send({ kind: "KeyExchangeOk", serverRandom });
    if (this.#options.plaintext === true) {
      this.#state = "ticket";
      return [answer];
    }
    let keys;
    try {
      keys = await clientSessionKeysForCluster(
        this.#options.identity.privateKey,
        clientPublicKey,
        clientRandom,
        serverRandom,
      );
    } catch (error) {
      // A low-order or otherwise unusable public key: the peer's fault, not ours.
      if (!(error instanceof KeyError)) throw error;
      if (this.#state !== "keying") return [];
      return this.#fail(ErrorCode.BadPacket, "key exchange failed: unusable public key", "warning");
    }
    if (this.#state !== "keying") return [];
    this.#state = "ticket";
    return [answer, {
      type: "seal",
      keys: { sendKey: keys.clusterToClient, receiveKey: keys.clientToCluster },
    }];
  }

  #onTicket(packet: Packet): SessionStep {
    if (packet.kind === "SendPassword") {
      this.#state = "verifying";
      return this.#verify(packet.ticket);
    }
    if (packet.kind === "ClusterJoinCluster") return this.#useMaster();
    return this.#unexpected(`${packet.kind} not allowed before authentication`);
  }

  async #verify(ticket: Uint8Array): Promise<readonly SessionAction[]> {
    const verifier = this.#options.tickets();
    if (verifier === undefined) {
      this.#state = "closed";
      return refuse(AuthStatus.ServerError, "not registered with a master yet", "info");
    }
    let verdict;
    try {
      verdict = await verifier.verify(ticket, this.#clientPublicKey as Uint8Array);
    } catch (error) {
      if (this.#state !== "verifying") return [];
      this.#state = "closed";
      const message = error instanceof Error ? error.message : String(error);
      return refuse(AuthStatus.ServerError, `ticket check failed: ${message}`, "error");
    }
    if (this.#state !== "verifying") return [];
    if (!verdict.ok) {
      this.#state = "closed";
      return refuse(verdict.status, verdict.reason, "info");
    }
    const clientId = this.#options.admit(verdict.claims);
    if (clientId === undefined) {
      this.#state = "closed";
      return refuse(AuthStatus.ServerError, "cluster full", "info");
    }
    this.#state = "established";
    this.#clientId = clientId;
    return [
      send({ kind: "Authenticate", status: AuthStatus.Ok, clientId }),
      { type: "authenticated", clientId, playerId: verdict.claims.playerId },
    ];
  }

  #onEstablished(packet: Packet): SessionStep {
    switch (packet.kind) {
      case "Plugin":
        return [{ type: "plugin", command: packet.command, payload: packet.payload }];
      case "Move":
        return [{ type: "move", state: packet.state }];
      case "Ping":
        return [send({ kind: "Pong", value: packet.value })];
      case "Pong":
        return [];
      case "RequestClusters":
        return [send({ kind: "SendClusters", clusters: this.#options.clusters?.() ?? [] })];
      case "LeaveCluster":
        this.#state = "closed";
        return [send({ kind: "LeaveCluster" }), close(undefined, "player left", "debug")];
      case "ClusterJoinCluster":
        return this.#useMaster();
      default:
        return this.#unexpected(`${packet.kind} is not a client packet`);
    }
  }

  #useMaster(): SessionAction[] {
    return this.#fail(ErrorCode.UseMaster, "JoinCluster goes to the master", "info");
  }

  #unexpected(reason: string): SessionAction[] {
    return this.#fail(ErrorCode.UnexpectedPacket, reason, "warning");
  }

  #fail(code: ErrorCode, reason: string, level: CloseLogLevel): SessionAction[] {
    this.#state = "closed";
    return [close(code, reason, level)];
  }
}
