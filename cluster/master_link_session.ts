/**
 * The protocol of one connection of the cluster to its master (docs/PROTOCOL.md "Cluster →
 * master") as a sans-I/O machine on the one contract of shared/machine_action.ts: decoded
 * packets in, actions out. Registration by the AES-256-GCM challenge (opening it and deriving
 * the link keys is an explicit `derive` step), the switch to sealed records (`seal`), then
 * Ping answers; the frames the adapter sends on its own (Hello, Heartbeat, Deregister) are
 * made here too. `cluster/master_link.ts` is the adapter that dials, drives it and retries.
 *
 * It must never put the cluster key, the passphrase or the derived link keys in a reason.
 *
 * @module
 */

import { proveAnnounce } from "../shared/announce_proof.ts";
import { deriveMasterLinkKeys } from "../shared/key_derivation.ts";
import type { SealingKeys } from "../shared/frame_session.ts";
import type { MachineAction, ProtocolMachine } from "../shared/machine_action.ts";
import { encodePacket } from "../shared/protocol/codec.ts";
import {
  type AnswerClusterPacket,
  type Packet,
  PROTOCOL_VERSION,
  Role,
} from "../shared/protocol/packets.ts";
import { ErrorCode, errorCodeName, ProtocolError } from "../shared/protocol/protocol_error.ts";
import { decrypt, DecryptError, importAesKey } from "../shared/security.ts";

/** Bytes of the BecomeCluster nonce. */
const CLUSTER_NONCE_BYTES = 32;
/** Longest passphrase a bytes8 field can carry back in AnswerCluster. */
const MAX_PASSPHRASE_BYTES = 255;
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
 * import type { RegistrationDetails } from "./master_link_session.ts";
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
 * import { MasterLinkSession, type MasterLinkSessionState } from "./master_link_session.ts";
 * import { PROTOCOL_VERSION, Role } from "../shared/protocol/packets.ts";
 * import assert from "node:assert/strict";
 *
 * const session = new MasterLinkSession({
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
 * });
 * const seen: MasterLinkSessionState[] = [session.state];
 * const hello = { kind: "HelloOk", version: PROTOCOL_VERSION, role: Role.Master, serverName: "m" } as const;
 * session.receive(hello, 0);
 * seen.push(session.state); // BecomeCluster sent, waiting for the challenge
 * session.receive({ kind: "Error", code: 10, reason: "unknown key" }, 0);
 * seen.push(session.state);
 * assert.deepEqual(seen, ["hello", "challenge", "failed"]);
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
 * The machine's own event: CreateCluster arrived, the master confirmed the registration as
 * cluster `clusterId` (the `seal` action comes just before it).
 *
 * @example
 * ```ts
 * import type { MasterLinkEvent } from "./master_link_session.ts";
 *
 * const event: MasterLinkEvent = { type: "registered", clusterId: 4 };
 * console.log(`registered as cluster ${event.clusterId}`);
 * ```
 */
export interface MasterLinkEvent {
  /** Discriminant. */
  readonly type: "registered";
  /** The id the master gave. */
  readonly clusterId: number;
}

/**
 * What the `derive` step of VerifyCluster yields: the AnswerCluster frame and the link keys, or
 * why the challenge was refused (never the passphrase).
 *
 * @example
 * ```ts
 * import type { ChallengeAnswer } from "./master_link_session.ts";
 *
 * const refused: ChallengeAnswer = { ok: false, reason: "challenge passphrase of 0 bytes" };
 * console.log(refused.ok);
 * ```
 */
export type ChallengeAnswer =
  | { readonly ok: true; readonly frame: Uint8Array; readonly keys: SealingKeys }
  | { readonly ok: false; readonly reason: string };

/**
 * What the adapter must do, in order, after a packet from the master (shared/machine_action.ts):
 *
 * - `send`: queue this encoded frame.
 * - `derive`: open the challenge and derive the link keys (VerifyCluster); feed the result to
 *   {@linkcode MasterLinkSession.derived}.
 * - `seal`: CreateCluster arrived: switch to sealed records at once (before reading any further
 *   byte); a `registered` event follows, then the adapter heartbeats.
 * - `close`: close the link, first sending `Error(code, message ?? reason)` when `code` is given.
 *
 * @example
 * ```ts
 * import { type MasterLinkAction, MasterLinkSession } from "./master_link_session.ts";
 * import { PROTOCOL_VERSION, Role } from "../shared/protocol/packets.ts";
 * import assert from "node:assert/strict";
 *
 * // What an adapter does with each action, as one line.
 * function describe(action: MasterLinkAction): string {
 *   switch (action.type) {
 *     case "send":
 *       return `send ${action.frame.length} bytes`;
 *     case "registered":
 *       return `registered as cluster ${action.clusterId}`;
 *     case "close":
 *       return `close: ${action.reason}`;
 *     default:
 *       return action.type;
 *   }
 * }
 *
 * const session = new MasterLinkSession({
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
 * });
 * const helloOk = session.receive({
 *   kind: "HelloOk",
 *   version: PROTOCOL_VERSION,
 *   role: Role.Master,
 *   serverName: "master",
 * }, 0);
 * assert.match(helloOk.map(describe).join(), /^send \d+ bytes$/);
 * const pong = session.receive({ kind: "Pong", value: 1 }, 0);
 * assert.deepEqual(pong.map(describe), [
 *   "close: unexpected Pong from the master in state challenge",
 * ]);
 * ```
 */
export type MasterLinkAction = MachineAction<ChallengeAnswer, MasterLinkEvent>;

/**
 * Options of {@linkcode MasterLinkSession}.
 *
 * @example
 * ```ts
 * import type { MasterLinkSessionOptions } from "./master_link_session.ts";
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
  if (code === undefined) return { type: "close", reason };
  // The master learns no more than that the registration failed.
  return code === ErrorCode.AuthFailed
    ? { type: "close", code, reason, message: "cluster registration failed" }
    : { type: "close", code, reason };
}

/**
 * The protocol of one master connection, from Hello to the sealed heartbeat phase.
 *
 * Send {@linkcode hello} first; feed every decoded frame from the master to
 * {@linkcode receive} and apply the actions in order (`driveMachine` does). Opening the
 * challenge is a `derive` step (for VerifyCluster) whose result goes to {@linkcode derived};
 * any packet before it ends fails the link. The link keys and the announce key are derived
 * before AnswerCluster is sent (its proof is an HMAC over the announced fields under the
 * announce key, never the passphrase), so the `seal` action for CreateCluster comes at once
 * and the adapter switches to sealed records before reading on.
 *
 * @example A full registration against a hand-played master
 * ```ts
 * import { MasterLinkSession } from "./master_link_session.ts";
 * import { stepMachine } from "../shared/drive_machine.ts";
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
 * const [become] = await stepMachine(session, {
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
 * const [answer] = await stepMachine(session, { kind: "VerifyCluster", sealedPassphrase });
 * if (answer.type !== "send") throw new Error("expected AnswerCluster");
 * const packet = unframe(answer.frame);
 * if (packet.kind !== "AnswerCluster") throw new Error("expected AnswerCluster");
 * // The master checks the proof with the key it derives from the same challenge.
 * const keys = await deriveMasterLinkKeys(clusterKey, becomePacket.clusterNonce, passphrase);
 * assert.equal(await verifyAnnounce(keys.announceKey, packet, packet.proof), true);
 * const [seal, registered] = await stepMachine(session, { kind: "CreateCluster", clusterId: 9 });
 * assert.ok(seal.type === "seal");
 * assert.ok(registered.type === "registered" && registered.clusterId === 9);
 * assert.equal(session.state, "registered");
 * ```
 */
export class MasterLinkSession implements ProtocolMachine<ChallengeAnswer, MasterLinkEvent> {
  readonly #options: MasterLinkSessionOptions;
  readonly #nonce = crypto.getRandomValues(new Uint8Array(CLUSTER_NONCE_BYTES));
  #state: MasterLinkSessionState = "hello";
  #keys: SealingKeys | undefined;
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
   * import { MasterLinkSession } from "./master_link_session.ts";
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
   * @param _now When it arrived, in ms (unused: the adapter keeps the deadlines).
   * @returns The actions (a `derive` step for VerifyCluster).
   *
   * @example The master refuses the registration
   * ```ts
   * import { MasterLinkSession } from "./master_link_session.ts";
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
   * const step = session.receive({ kind: "Error", code: 10, reason: "cluster registration failed" }, 0);
   * assert.deepEqual(step, [{
   *   type: "close",
   *   reason: "master sent Error AuthFailed: cluster registration failed",
   * }]);
   * ```
   */
  receive(packet: Packet | ProtocolError, _now: number): readonly MasterLinkAction[] {
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
        return [{ type: "derive", derive: () => this.#answer(packet.sealedPassphrase) }];
      case "answered":
        if (packet.kind !== "CreateCluster") break;
        this.#state = "registered";
        this.#clusterId = packet.clusterId;
        return [
          { type: "seal", keys: this.#keys as SealingKeys },
          { type: "registered", clusterId: packet.clusterId },
        ];
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

  #onHelloOk(packet: Packet): readonly MasterLinkAction[] {
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

  /**
   * Takes the result of opening the challenge: AnswerCluster goes out, or the link fails.
   *
   * @param result What the `derive` step yielded.
   * @param _now When it ended, in ms.
   * @returns The actions (none once the link has failed meanwhile).
   *
   * @example A refused challenge fails the link with AuthFailed
   * ```ts
   * import { MasterLinkSession } from "./master_link_session.ts";
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
   * session.receive({ kind: "HelloOk", version: 3, role: 3, serverName: "m" }, 0);
   * session.receive({ kind: "VerifyCluster", sealedPassphrase: new Uint8Array(60) }, 0);
   * const [close] = session.derived({ ok: false, reason: "does not open" }, 0);
   * assert.ok(close.type === "close" && close.code === 10);
   * ```
   */
  derived(result: ChallengeAnswer, _now: number): readonly MasterLinkAction[] {
    if (this.#state !== "answering") return [];
    if (!result.ok) return this.#fail(result.reason, ErrorCode.AuthFailed);
    this.#keys = result.keys;
    this.#state = "answered";
    return [{ type: "send", frame: result.frame }];
  }

  /** Opens the challenge, derives the link keys and proves the announcement. */
  async #answer(sealedPassphrase: Uint8Array): Promise<ChallengeAnswer> {
    const { clusterKey, keyName, announcement } = this.#options;
    let passphrase: Uint8Array;
    try {
      passphrase = await decrypt(await importAesKey(clusterKey), sealedPassphrase);
    } catch (error) {
      if (!(error instanceof DecryptError)) throw error;
      // An unknown key name gets random bytes from the master: this is the usual symptom.
      return {
        ok: false,
        reason: `the master's challenge does not open with key "${keyName}": ` +
          "the master must hold the same key file",
      };
    }
    if (passphrase.length === 0 || passphrase.length > MAX_PASSPHRASE_BYTES) {
      return {
        ok: false,
        reason:
          `challenge passphrase of ${passphrase.length} bytes (1..${MAX_PASSPHRASE_BYTES} expected)`,
      };
    }
    const keys = await deriveMasterLinkKeys(clusterKey, this.#nonce, passphrase);
    // The proof binds every announced field to this challenge; the passphrase stays here.
    const proof = await proveAnnounce(keys.announceKey, announcement);
    return {
      ok: true,
      frame: encodePacket({ ...announcement, kind: "AnswerCluster", proof }),
      keys: { sendKey: keys.clusterToMaster, receiveKey: keys.masterToCluster },
    };
  }

  #fail(reason: string, code?: ErrorCode): readonly MasterLinkAction[] {
    this.#state = "failed";
    return [failed(reason, code)];
  }
}

function encodePong(value: number): Uint8Array {
  return encodePacket({ kind: "Pong", value });
}
