// This module is browser compatible.
/**
 * The cluster's side of one client connection as a sans-I/O state machine (docs/PROTOCOL.md
 * "Client → cluster") on the one contract of shared/machine_action.ts: decoded packets in,
 * {@linkcode SessionAction}s out (the key exchange and the ticket check are `derive` steps). It
 * answers the
 * Hello, serves the identity public key (RequestKey), runs the X25519 key exchange, checks the
 * join ticket and then turns game packets into actions for the cluster server.
 *
 * It must never touch a socket, never let any packet but Hello, RequestKey, KeyExchange and
 * SendPassword (or, on a TLS connection only, TlsJoin) through before `Authenticate(20)`, never accept a packet while a key exchange or
 * ticket check is in flight (the peer must wait for the answer), and never put a key, ticket
 * or passphrase in an action's reason.
 *
 * @module
 */

import type { JoinTicketClaims, TicketVerdict, TicketVerifier } from "../shared/join_ticket.ts";
import { clientSessionKeysForCluster } from "../shared/key_derivation.ts";
import type { CloseLogLevel, MachineAction, ProtocolMachine } from "../shared/machine_action.ts";
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
import { tlsJoinCommitment } from "../shared/tls_join.ts";

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
 * import { ClientSession, type ClientSessionState } from "./client_session.ts";
 * import { stepMachine } from "../shared/drive_machine.ts";
 * import assert from "node:assert/strict";
 *
 * const session = new ClientSession({
 *   serverName: "eu-1",
 *   identity: { privateKey: {} as CryptoKey, publicKey: new Uint8Array(32), version: 1 },
 *   tickets: () => undefined,
 *   admit: () => undefined,
 * });
 * const seen: ClientSessionState[] = [session.state];
 * await stepMachine(session, { kind: "Hello", version: 3, role: 1 });
 * seen.push(session.state);
 * session.closed();
 * seen.push(session.state);
 * assert.deepEqual(seen, ["hello", "handshake", "closed"]);
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

export type { CloseLogLevel } from "../shared/machine_action.ts";

/**
 * The session's own events, besides the shared `send`, `seal`, `derive` and `close` actions.
 *
 * - `authenticated`: a player joined under `clientId` (after its Authenticate(20) was queued).
 * - `refused`: a ticket was refused with `status` (for metrics; a `close` follows).
 * - `plugin`: a plugin command from the player (`payload` is a view: copy to keep it).
 * - `move`: a Move from the player.
 *
 * @example
 * ```ts
 * import type { SessionEvent } from "./client_session.ts";
 * import assert from "node:assert/strict";
 *
 * const event: SessionEvent = { type: "authenticated", clientId: 7, playerId: "guest-1" };
 * assert.equal(event.type, "authenticated");
 * ```
 */
export type SessionEvent =
  | { readonly type: "authenticated"; readonly clientId: number; readonly playerId: string }
  | { readonly type: "refused"; readonly status: 40 | 44 | 50; readonly reason: string }
  | { readonly type: "plugin"; readonly command: number; readonly payload: Uint8Array }
  | { readonly type: "move"; readonly state: MoveState };

/**
 * What the session's `derive` steps yield: the session keys with the KeyExchangeOk frame
 * (`keys` undefined = the client's public key is unusable), or the ticket check's verdict (or
 * the message of its failure).
 *
 * @example
 * ```ts
 * import { ClientSession, type SessionDerived } from "./client_session.ts";
 * import assert from "node:assert/strict";
 *
 * const session = new ClientSession({
 *   serverName: "eu-1",
 *   identity: { privateKey: {} as CryptoKey, publicKey: new Uint8Array(32), version: 1 },
 *   tickets: () => undefined,
 *   admit: () => undefined,
 * });
 * // The connection closed while a ticket check was in flight: its late result does nothing.
 * session.closed();
 * const late: SessionDerived = { kind: "ticket_error", message: "key store offline" };
 * assert.deepEqual(session.derived(late, 0), []);
 * ```
 */
export type SessionDerived =
  | {
    readonly kind: "keys";
    readonly answer: Uint8Array;
    readonly keys: SessionSealingKeys | undefined;
  }
  | { readonly kind: "ticket"; readonly verdict: TicketVerdict }
  | { readonly kind: "ticket_error"; readonly message: string };

/**
 * What the cluster server must do, in order, after a packet (shared/machine_action.ts):
 *
 * - `send`: queue this encoded frame.
 * - `seal`: switch the connection to sealed records (right after the frames queued before).
 * - `derive`: run the key exchange or the ticket check; feed the result to
 *   {@linkcode ClientSession.derived}.
 * - `close`: close the connection, first sending `Error(code, reason)` when `code` is given.
 * - a {@linkcode SessionEvent}.
 *
 * @example
 * ```ts
 * import { ClientSession, type SessionAction } from "./client_session.ts";
 * import assert from "node:assert/strict";
 *
 * // What an adapter's log line says about each action.
 * function describe(action: SessionAction): string {
 *   switch (action.type) {
 *     case "send":
 *       return `send ${action.frame.length} bytes`;
 *     case "close":
 *       return `close (${action.level ?? "warning"}): ${action.reason}`;
 *     default:
 *       return action.type;
 *   }
 * }
 *
 * const session = new ClientSession({
 *   serverName: "eu-1",
 *   identity: { privateKey: {} as CryptoKey, publicKey: new Uint8Array(32), version: 1 },
 *   tickets: () => undefined,
 *   admit: () => undefined,
 * });
 * const hello = session.receive({ kind: "Hello", version: 3, role: 1 }, 0);
 * assert.match(hello.map(describe).join(), /^send \d+ bytes$/);
 * const move = session.receive({ kind: "Move", state: { x: 0, y: 0, z: 0 } }, 0);
 * assert.deepEqual(move.map(describe), [
 *   "close (warning): Move not allowed before authentication",
 * ]);
 * ```
 */
export type SessionAction = MachineAction<SessionDerived, SessionEvent>;

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
  /**
   * The connection is TLS (the cluster's TLS listener): the TLS session mode (TlsJoin) is
   * allowed. On any other connection TlsJoin is refused (`UnexpectedPacket`) and closed.
   *
   * @default {false}
   */
  readonly tls?: boolean;
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
function refuse(
  status: 40 | 44 | 50,
  reason: string,
  level: CloseLogLevel,
): readonly SessionAction[] {
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
 * {@linkcode receive}; apply the returned actions in order (`driveMachine` does). The key
 * exchange and the ticket check are `derive` steps whose results go to {@linkcode derived};
 * any packet that arrives before one ends closes the session (`UnexpectedPacket`), since the
 * peer must wait for the answer. Tell it about a close that did not come from it with
 * {@linkcode closed}.
 *
 * @example Hello, then a packet that is not allowed before authentication
 * ```ts
 * import { ClientSession } from "./client_session.ts";
 * import { generateIdentityKeyPair } from "../shared/identity_key.ts";
 * import { stepMachine } from "../shared/drive_machine.ts";
 * import assert from "node:assert/strict";
 *
 * const pair = await generateIdentityKeyPair();
 * const session = new ClientSession({
 *   serverName: "eu-1",
 *   identity: { privateKey: pair.privateKey, publicKey: new Uint8Array(32), version: 1 },
 *   tickets: () => undefined,
 *   admit: () => undefined,
 * });
 * const hello = await stepMachine(session, { kind: "Hello", version: 3, role: 1 });
 * assert.equal(hello[0].type, "send");
 * assert.equal(session.state, "handshake");
 * const move = await stepMachine(session, { kind: "Move", state: { x: 0, y: 0, z: 0 } });
 * assert.deepEqual(move, [{
 *   type: "close",
 *   code: 7,
 *   reason: "Move not allowed before authentication",
 *   level: "warning",
 * }]);
 * assert.equal(session.state, "closed");
 * ```
 */
export class ClientSession implements ProtocolMachine<SessionDerived, SessionEvent> {
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
   * @param _now When it arrived, in ms (unused: the cluster server keeps the deadlines).
   * @returns The actions (a `derive` step after KeyExchange, TlsJoin and SendPassword).
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
   * session.receive({ kind: "Hello", version: 3, role: 1 }, 0);
   * const [fresh] = session.receive({ kind: "RequestKey", cachedVersion: 0 }, 0);
   * const [cached] = session.receive({ kind: "RequestKey", cachedVersion: 3 }, 0);
   * assert.ok(fresh.type === "send" && cached.type === "send");
   * const frame = (bytes: Uint8Array) => ({ type: bytes[4], payload: bytes.subarray(5) });
   * assert.deepEqual(decodePacket(frame(fresh.frame)), { kind: "SendPubKey", version: 3, publicKey });
   * assert.deepEqual(decodePacket(frame(cached.frame)), { kind: "VersionOfKey", version: 3 });
   * ```
   */
  receive(packet: Packet | ProtocolError, _now: number): readonly SessionAction[] {
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

  #onHello(packet: Packet): readonly SessionAction[] {
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

  #onHandshake(packet: Packet): readonly SessionAction[] {
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
    if (packet.kind === "TlsJoin") {
      if (this.#options.tls !== true) {
        return this.#unexpected(
          "TlsJoin refused: this connection is not TLS (use the cluster's TLS port)",
        );
      }
      this.#state = "verifying";
      return this.#tlsJoin(packet.bindingSecret, packet.ticket);
    }
    if (packet.kind === "KeyExchange") {
      this.#state = "keying";
      this.#clientPublicKey = packet.clientPublicKey;
      return this.#keyExchange(packet.clientPublicKey, packet.clientRandom);
    }
    return this.#unexpected(`${packet.kind} not allowed before authentication`);
  }

  #keyExchange(clientPublicKey: Uint8Array, clientRandom: Uint8Array): readonly SessionAction[] {
    const serverRandom = crypto.getRandomValues(new Uint8Array(SERVER_RANDOM_BYTES));
    const answer = encodePacket({ kind: "KeyExchangeOk", serverRandom });
    if (this.#options.plaintext === true) {
      this.#state = "ticket";
      return [{ type: "send", frame: answer }];
    }
    const derive = async (): Promise<SessionDerived> => {
      try {
        const keys = await clientSessionKeysForCluster(
          this.#options.identity.privateKey,
          clientPublicKey,
          clientRandom,
          serverRandom,
        );
        return {
          kind: "keys",
          answer,
          keys: { sendKey: keys.clusterToClient, receiveKey: keys.clientToCluster },
        };
      } catch (error) {
        // A low-order or otherwise unusable public key: the peer's fault, not ours.
        if (!(error instanceof KeyError)) throw error;
        return { kind: "keys", answer, keys: undefined };
      }
    };
    return [{ type: "derive", derive }];
  }

  /** The TLS session mode: the ticket must be bound to this secret's commitment; no sealing. */
  #tlsJoin(bindingSecret: Uint8Array, ticket: Uint8Array): readonly SessionAction[] {
    return this.#verify(ticket, async () => {
      this.#clientPublicKey = await tlsJoinCommitment(bindingSecret);
      return this.#clientPublicKey;
    });
  }

  /**
   * Takes the result of a `derive` step: the key exchange's keys, or the ticket check's verdict
   * (the player is admitted here, with no `await` after the check).
   *
   * @param result What the step yielded.
   * @param _now When it ended, in ms.
   * @returns The actions (none once the session has closed meanwhile).
   *
   * @example An unusable client key ends the key exchange with BadPacket
   * ```ts
   * import { ClientSession } from "./client_session.ts";
   * import assert from "node:assert/strict";
   *
   * const session = new ClientSession({
   *   serverName: "c",
   *   identity: { privateKey: {} as CryptoKey, publicKey: new Uint8Array(32), version: 1 },
   *   tickets: () => undefined,
   *   admit: () => undefined,
   * });
   * session.receive({ kind: "Hello", version: 3, role: 1 }, 0);
   * const [step] = session.receive({
   *   kind: "KeyExchange",
   *   clientPublicKey: new Uint8Array(32),
   *   clientRandom: new Uint8Array(32),
   * }, 0);
   * assert.equal(step.type, "derive");
   * const actions = session.derived({ kind: "keys", answer: new Uint8Array(), keys: undefined }, 0);
   * assert.deepEqual(actions, [{
   *   type: "close",
   *   code: 5,
   *   reason: "key exchange failed: unusable public key",
   *   level: "warning",
   * }]);
   * ```
   */
  derived(result: SessionDerived, _now: number): readonly SessionAction[] {
    if (result.kind === "keys") {
      if (this.#state !== "keying") return [];
      if (result.keys === undefined) {
        return this.#fail(
          ErrorCode.BadPacket,
          "key exchange failed: unusable public key",
          "warning",
        );
      }
      this.#state = "ticket";
      return [{ type: "send", frame: result.answer }, { type: "seal", keys: result.keys }];
    }
    if (this.#state !== "verifying") return [];
    if (result.kind === "ticket_error") {
      this.#state = "closed";
      return refuse(AuthStatus.ServerError, `ticket check failed: ${result.message}`, "error");
    }
    const verdict = result.verdict;
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

  #onTicket(packet: Packet): readonly SessionAction[] {
    if (packet.kind === "SendPassword") {
      this.#state = "verifying";
      const clientPublicKey = this.#clientPublicKey as Uint8Array;
      return this.#verify(packet.ticket, () => Promise.resolve(clientPublicKey));
    }
    if (packet.kind === "ClusterJoinCluster") return this.#useMaster();
    return this.#unexpected(`${packet.kind} not allowed before authentication`);
  }

  /**
   * The ticket check as a `derive` step; `bindingKey` yields the key the ticket must be bound
   * to (the client's X25519 public key, or the TLS commitment).
   */
  #verify(ticket: Uint8Array, bindingKey: () => Promise<Uint8Array>): readonly SessionAction[] {
    const verifier = this.#options.tickets();
    if (verifier === undefined) {
      this.#state = "closed";
      return refuse(AuthStatus.ServerError, "not registered with a master yet", "info");
    }
    const derive = async (): Promise<SessionDerived> => {
      const key = await bindingKey();
      try {
        return { kind: "ticket", verdict: await verifier.verify(ticket, key) };
      } catch (error) {
        return {
          kind: "ticket_error",
          message: error instanceof Error ? error.message : String(error),
        };
      }
    };
    return [{ type: "derive", derive }];
  }

  #onEstablished(packet: Packet): readonly SessionAction[] {
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

  #useMaster(): readonly SessionAction[] {
    return this.#fail(ErrorCode.UseMaster, "JoinCluster goes to the master", "info");
  }

  #unexpected(reason: string): readonly SessionAction[] {
    return this.#fail(ErrorCode.UnexpectedPacket, reason, "warning");
  }

  #fail(code: ErrorCode, reason: string, level: CloseLogLevel): readonly SessionAction[] {
    this.#state = "closed";
    return [close(code, reason, level)];
  }
}
