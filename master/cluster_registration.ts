// This module is browser compatible.
/**
 * The master's side of cluster registration as a sans-I/O state machine
 * (docs/PROTOCOL.md "Cluster → master"): BecomeCluster → VerifyCluster (a random passphrase
 * sealed with the named key) → AnswerCluster (the announced fields and an HMAC proof over
 * them, keyed by an HKDF of the cluster key, the cluster's nonce and the passphrase) →
 * registered, with the master-link keys ready so the caller can switch to sealed records
 * right as it writes CreateCluster (the cluster sends nothing more until it reads it).
 *
 * The proof binds every announced field (name, host, port, capacity, key version, identity
 * key) to this challenge: a rewritten field fails exactly like a wrong key. One try per
 * connection, a deadline, a constant-time check, and one generic failure
 * ({@linkcode REGISTRATION_FAILED}) whatever went wrong; the precise reason is only for the
 * master's log and metrics. An unknown key name still gets a VerifyCluster of the same length,
 * sealed with a throwaway key, so key names cannot be probed. This module must never read
 * files, touch sockets, or put a key or passphrase into a result's reason.
 *
 * @module
 */

import type {
  AnswerClusterPacket,
  BecomeClusterPacket,
  VerifyClusterPacket,
} from "../shared/protocol/packets.ts";
import { ErrorCode } from "../shared/protocol/protocol_error.ts";
import { deriveMasterLinkKeys, type MasterLinkKeys } from "../shared/key_derivation.ts";
import { verifyAnnounce } from "../shared/announce_proof.ts";
import {
  encrypt,
  generateAesKeyBytes,
  importAesKey,
  randomPassphrase,
} from "../shared/security.ts";
import { X25519_PUBLIC_KEY_BYTES } from "../shared/identity_key.ts";
import type { ClusterAnnouncement } from "./registry.ts";

/** Bytes of the challenge passphrase. */
const PASSPHRASE_BYTES = 32;

/**
 * The one Error every failed registration gets, whatever went wrong.
 *
 * @example
 * ```ts
 * import { REGISTRATION_FAILED } from "./cluster_registration.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(REGISTRATION_FAILED, { code: 10, message: "cluster registration failed" });
 * ```
 */
export const REGISTRATION_FAILED: { readonly code: number; readonly message: string } = Object
  .freeze({ code: ErrorCode.AuthFailed, message: "cluster registration failed" });

/**
 * Why a registration failed (for the master's log and metrics only, never sent):
 *
 * - `unknown_key`: no key file of the name the cluster asked for;
 * - `wrong_key`: the cluster could not open the challenge (it said so with an Error): it holds
 *   another key under that name;
 * - `wrong_proof`: the AnswerCluster proof does not match — a wrong key, or fields rewritten on
 *   the way (a man in the middle);
 * - `invalid_announcement`: a proven announce with an empty name or host, port 0 or a public
 *   key that is not 32 bytes;
 * - `timeout`: the deadline passed;
 * - `abandoned`: the cluster left before answering;
 * - `out_of_order`: a packet the registration did not expect.
 *
 * @example
 * ```ts
 * import { REGISTRATION_FAILURES } from "./cluster_registration.ts";
 * import assert from "node:assert/strict";
 *
 * assert.ok(REGISTRATION_FAILURES.includes("wrong_proof"));
 * ```
 */
export type RegistrationFailure =
  | "unknown_key"
  | "wrong_key"
  | "wrong_proof"
  | "invalid_announcement"
  | "timeout"
  | "abandoned"
  | "out_of_order";

/**
 * Every {@linkcode RegistrationFailure}, in the order `/metrics` lists them
 * (`sustenet_master_auth_failures_total{reason}`).
 *
 * @example
 * ```ts
 * import { REGISTRATION_FAILURES } from "./cluster_registration.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(REGISTRATION_FAILURES.length, 7);
 * assert.ok(Object.isFrozen(REGISTRATION_FAILURES));
 * ```
 */
export const REGISTRATION_FAILURES: readonly RegistrationFailure[] = Object.freeze([
  "unknown_key",
  "wrong_key",
  "wrong_proof",
  "invalid_announcement",
  "timeout",
  "abandoned",
  "out_of_order",
]);

/** Where a registration stands. */
export type RegistrationState =
  | "awaiting_become"
  | "challenging"
  | "awaiting_answer"
  | "verifying"
  | "registered"
  | "failed";

/** What the caller does next. */
export type RegistrationStep =
  | {
    /** Send `packet` (VerifyCluster) and wait for AnswerCluster. */
    readonly kind: "challenge";
    readonly packet: VerifyClusterPacket;
  }
  | {
    /** Register the cluster, send CreateCluster, then seal with `linkKeys` (master's view). */
    readonly kind: "registered";
    readonly announcement: ClusterAnnouncement;
    /** The shared cluster key (seals join tickets for this cluster). */
    readonly clusterKey: Uint8Array;
    /** Both directions' record keys. */
    readonly linkKeys: MasterLinkKeys;
  }
  | {
    /** Send {@linkcode REGISTRATION_FAILED} and close. */
    readonly kind: "refused";
    readonly reason: RegistrationFailure;
  };

/** Options of {@linkcode ClusterRegistration}. */
export interface ClusterRegistrationOptions {
  /** Unix ms after which the registration can no longer succeed. */
  readonly deadline: number;
}

/** What is remembered between the challenge and the answer. */
interface Challenge {
  readonly keyName: string;
  /** `undefined` for an unknown key name: no answer can match. */
  readonly clusterKey: Uint8Array | undefined;
  readonly linkKeys: MasterLinkKeys;
}

/**
 * One cluster connection's registration, from BecomeCluster to registered or failed.
 *
 * @example A cluster that knows the key registers; a rewritten host does not
 * ```ts
 * import { ClusterRegistration } from "./cluster_registration.ts";
 * import { proveAnnounce } from "../shared/announce_proof.ts";
 * import { deriveMasterLinkKeys } from "../shared/key_derivation.ts";
 * import { decrypt, importAesKey } from "../shared/security.ts";
 * import assert from "node:assert/strict";
 *
 * const key = crypto.getRandomValues(new Uint8Array(32));
 * const clusterNonce = crypto.getRandomValues(new Uint8Array(32));
 * const fields = {
 *   name: "eu-1",
 *   host: "127.0.0.1",
 *   port: 6257,
 *   maxConnections: 100,
 *   keyVersion: 1,
 *   publicKey: new Uint8Array(32).fill(7),
 * };
 * const become = { kind: "BecomeCluster" as const, keyName: "k", clusterNonce };
 * const answerFor = async (registration: ClusterRegistration) => {
 *   const step = await registration.challenge(become, key, 1_000);
 *   if (step.kind !== "challenge") throw new Error("no challenge");
 *   const passphrase = await decrypt(await importAesKey(key), step.packet.sealedPassphrase);
 *   const { announceKey } = await deriveMasterLinkKeys(key, clusterNonce, passphrase);
 *   return { kind: "AnswerCluster" as const, ...fields, proof: await proveAnnounce(announceKey, fields) };
 * };
 * const honest = new ClusterRegistration({ deadline: 10_000 });
 * const done = await honest.answer(await answerFor(honest), 2_000);
 * assert.equal(done.kind, "registered");
 *
 * const attacked = new ClusterRegistration({ deadline: 10_000 });
 * const rewritten = { ...(await answerFor(attacked)), host: "10.6.6.6" };
 * assert.deepEqual(await attacked.answer(rewritten, 2_000), { kind: "refused", reason: "wrong_proof" });
 * ```
 */
export class ClusterRegistration {
  readonly #deadline: number;
  #state: RegistrationState = "awaiting_become";
  #challenge: Challenge | undefined;
  #keyName: string | undefined;

  /** @param options The deadline. */
  constructor(options: ClusterRegistrationOptions) {
    this.#deadline = options.deadline;
  }

  /** Where the registration stands. */
  get state(): RegistrationState {
    return this.#state;
  }

  /** The key name the cluster asked for (peer-supplied, for logs), once BecomeCluster came. */
  get keyName(): string | undefined {
    return this.#keyName;
  }

  /** Unix ms after which it fails. */
  get deadline(): number {
    return this.#deadline;
  }

  /**
   * Handles BecomeCluster: makes the sealed passphrase and the link and announce keys.
   *
   * @param packet The BecomeCluster packet.
   * @param clusterKey The 32-byte key named by `packet.keyName`, or `undefined` if there is
   * no such key (the cluster still gets a challenge of the same length).
   * @param now Current Unix ms.
   */
  async challenge(
    packet: BecomeClusterPacket,
    clusterKey: Uint8Array | undefined,
    now: number,
  ): Promise<RegistrationStep> {
    if (this.#state !== "awaiting_become") return this.#fail("out_of_order");
    this.#keyName = packet.keyName;
    if (now > this.#deadline) return this.#fail("timeout");
    this.#state = "challenging";
    const passphrase = randomPassphrase(PASSPHRASE_BYTES);
    // An unknown name costs the same work under a throwaway key, so timing and length match.
    const sealingKey = clusterKey ?? generateAesKeyBytes();
    const [sealedPassphrase, linkKeys] = await Promise.all([
      importAesKey(sealingKey).then((key) => encrypt(key, passphrase)),
      deriveMasterLinkKeys(sealingKey, packet.clusterNonce, passphrase),
    ]);
    // The deadline may have passed (and expire() been called) while sealing.
    if (this.#state !== "challenging") return { kind: "refused", reason: "timeout" };
    this.#challenge = { keyName: packet.keyName, clusterKey: clusterKey?.slice(), linkKeys };
    this.#state = "awaiting_answer";
    return { kind: "challenge", packet: { kind: "VerifyCluster", sealedPassphrase } };
  }

  /**
   * Handles AnswerCluster: checks the proof over every announced field. Until the promise
   * settles the state is `verifying`, and any other packet fails the registration; the cluster
   * sends nothing more until it reads CreateCluster, so the caller switches to sealed records
   * as it writes CreateCluster.
   *
   * @param packet The AnswerCluster packet.
   * @param now Current Unix ms.
   */
  async answer(packet: AnswerClusterPacket, now: number): Promise<RegistrationStep> {
    const challenge = this.#challenge;
    if (this.#state !== "awaiting_answer" || challenge === undefined) {
      return this.#fail("out_of_order");
    }
    if (now > this.#deadline) return this.#fail("timeout");
    this.#state = "verifying";
    // Verify first, whatever the key (an unknown key verifies under its throwaway keys), so an
    // unknown key name does not answer faster.
    const proven = await verifyAnnounce(challenge.linkKeys.announceKey, packet, packet.proof);
    // The deadline may have passed (and expire() been called) while verifying.
    if (this.#state !== "verifying") return { kind: "refused", reason: "timeout" };
    if (challenge.clusterKey === undefined) return this.#fail("unknown_key");
    if (!proven) return this.#fail("wrong_proof");
    if (!isValidAnnouncement(packet)) return this.#fail("invalid_announcement");
    this.#state = "registered";
    this.#challenge = undefined;
    return {
      kind: "registered",
      clusterKey: challenge.clusterKey,
      linkKeys: challenge.linkKeys,
      announcement: {
        name: packet.name,
        host: packet.host,
        port: packet.port,
        maxConnections: packet.maxConnections,
        keyVersion: packet.keyVersion,
        publicKey: packet.publicKey.slice(),
        keyName: challenge.keyName,
        ...(packet.endpoints === undefined ? {} : { endpoints: packet.endpoints }),
      },
    };
  }

  /**
   * Ends the registration because the cluster sent a packet it has no business sending now
   * (anything but BecomeCluster, AnswerCluster or Error while registering).
   *
   * @returns `refused` with reason `out_of_order`, or `undefined` if it had already ended.
   *
   * @example
   * ```ts
   * import { ClusterRegistration } from "./cluster_registration.ts";
   * import assert from "node:assert/strict";
   *
   * const registration = new ClusterRegistration({ deadline: 10_000 });
   * assert.deepEqual(registration.unexpected(), { kind: "refused", reason: "out_of_order" });
   * assert.equal(registration.unexpected(), undefined);
   * ```
   */
  unexpected(): RegistrationStep | undefined {
    if (this.#state === "registered" || this.#state === "failed") return undefined;
    return this.#fail("out_of_order");
  }

  /**
   * Ends the registration because the cluster left or sent an Error before it was over: after
   * a challenge under an unknown key name that is `unknown_key`; after an Error under a known
   * one, `wrong_key` (the cluster could not open the challenge); otherwise `abandoned`.
   *
   * @param sentError Whether the cluster sent an Error (rather than just closing).
   * @returns `refused` with the reason, or `undefined` if the registration had already ended.
   *
   * @example A cluster that cannot open the challenge says so and leaves
   * ```ts
   * import { ClusterRegistration } from "./cluster_registration.ts";
   * import assert from "node:assert/strict";
   *
   * const registration = new ClusterRegistration({ deadline: 10_000 });
   * const become = { kind: "BecomeCluster" as const, keyName: "k", clusterNonce: new Uint8Array(32) };
   * await registration.challenge(become, new Uint8Array(32), 0);
   * assert.deepEqual(registration.peerLeft(true), { kind: "refused", reason: "wrong_key" });
   * assert.equal(registration.peerLeft(true), undefined);
   * ```
   */
  peerLeft(sentError: boolean): RegistrationStep | undefined {
    if (this.#state === "registered" || this.#state === "failed") return undefined;
    const challenge = this.#challenge;
    if (this.#state === "awaiting_answer" && challenge !== undefined) {
      if (challenge.clusterKey === undefined) return this.#fail("unknown_key");
      if (sentError) return this.#fail("wrong_key");
    }
    return this.#fail("abandoned");
  }

  /**
   * Ends the registration because its deadline passed (the caller's timer), unless it is
   * already over.
   *
   * @returns `refused` with reason `timeout`, or `undefined` if it had already ended.
   */
  expire(): RegistrationStep | undefined {
    if (this.#state === "registered" || this.#state === "failed") return undefined;
    return this.#fail("timeout");
  }

  #fail(reason: RegistrationFailure): RegistrationStep {
    this.#state = "failed";
    this.#challenge = undefined;
    return { kind: "refused", reason };
  }
}

function isValidAnnouncement(packet: AnswerClusterPacket): boolean {
  return packet.name.length > 0 && packet.host.length > 0 && packet.port > 0 &&
    packet.publicKey.length === X25519_PUBLIC_KEY_BYTES &&
    (packet.endpoints ?? []).every((e) =>
      e.port > 0 && (e.kind === "ws" || e.kind === "wss" ? e.path.startsWith("/") : e.path === "")
    );
}
