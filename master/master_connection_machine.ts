// This module is browser compatible.
/**
 * One connection to the master as a sans-I/O machine on the one contract of
 * shared/machine_action.ts: decoded packets in with the time, actions out. It answers the
 * Hello, then runs the client phase (each request is a `derive` step, answered in order) or
 * the cluster phase: a {@linkcode ClusterRegistration} (key lookup, challenge and proof check
 * are `derive` steps) followed by a {@linkcode ClusterLink} once the adapter has listed the
 * cluster ({@linkcode MasterConnectionMachine.linked}). Every frame leaves as bytes.
 *
 * The adapter (master/master_connection.ts) keeps what is the server's: slots, the registry,
 * metrics, logs, spans and the two timers (registration deadline, heartbeat check).
 *
 * @module
 */

import type { MachineAction, ProtocolMachine } from "../shared/machine_action.ts";
import { encodePacket } from "../shared/protocol/codec.ts";
import type { BecomeClusterPacket, Packet } from "../shared/protocol/packets.ts";
import { ErrorCode, ProtocolError } from "../shared/protocol/protocol_error.ts";
import type { ClusterLink } from "./cluster_link.ts";
import {
  ClusterRegistration,
  REGISTRATION_FAILED,
  type RegistrationFailure,
  type RegistrationStep,
} from "./cluster_registration.ts";
import type { ConnectionAction } from "./connection_action.ts";
import { answerHello, type PeerRole } from "./hello.ts";
import type { ClientSessionResult } from "./master_client_session.ts";

/** Most client requests in flight on one connection before it is dropped. */
const MAX_PENDING_REQUESTS = 32;

/**
 * The machine's own events, for the adapter.
 *
 * - `greeted`: HelloOk was queued for a `role` peer (the handshake period is over).
 * - `answered`: a client request was answered (`result.join` set for JoinCluster).
 * - `refused`: a cluster registration failed for `reason` (once per connection; a `close`
 *   follows when the connection is still open).
 * - `registered`: the proof checked out: the adapter lists the cluster and calls
 *   {@linkcode MasterConnectionMachine.linked} (or closes).
 *
 * @example
 * ```ts
 * import type { MasterConnectionEvent } from "./master_connection_machine.ts";
 *
 * const event: MasterConnectionEvent = { type: "greeted", role: "client" };
 * console.log(event.role);
 * ```
 */
export type MasterConnectionEvent =
  | { readonly type: "greeted"; readonly role: PeerRole }
  | { readonly type: "answered"; readonly result: ClientSessionResult }
  | {
    readonly type: "refused";
    readonly reason: RegistrationFailure;
    readonly keyName: string | undefined;
  }
  | {
    readonly type: "registered";
    readonly step: Extract<RegistrationStep, { kind: "registered" }>;
  };

/**
 * What the machine's `derive` steps yield: a client request's answer (undefined when the
 * connection closed first), or a registration step.
 *
 * @example
 * ```ts
 * import type { MasterConnectionDerived } from "./master_connection_machine.ts";
 *
 * const derived: MasterConnectionDerived = { kind: "request", result: undefined };
 * console.log(derived.kind);
 * ```
 */
export type MasterConnectionDerived =
  | { readonly kind: "request"; readonly result: ClientSessionResult | undefined }
  | { readonly kind: "registration"; readonly step: RegistrationStep };

/**
 * What the adapter must do, in order (shared/machine_action.ts), plus
 * {@linkcode MasterConnectionEvent}s.
 *
 * @example
 * ```ts
 * import type { MasterConnectionAction } from "./master_connection_machine.ts";
 *
 * const action: MasterConnectionAction = { type: "close", reason: "cluster deregistered" };
 * console.log(action.type);
 * ```
 */
export type MasterConnectionAction = MachineAction<
  MasterConnectionDerived,
  MasterConnectionEvent
>;

/**
 * Options of {@linkcode MasterConnectionMachine}: the server's answers it needs.
 *
 * @example
 * ```ts
 * import type { MasterConnectionMachineOptions } from "./master_connection_machine.ts";
 *
 * const options: MasterConnectionMachineOptions = {
 *   serverName: "master",
 *   admitRole: () => undefined,
 *   request: () => Promise.resolve(undefined),
 *   clusterKeys: () => Promise.resolve(undefined),
 *   registrationDeadline: Date.now() + 5000,
 * };
 * console.log(options.serverName);
 * ```
 */
export interface MasterConnectionMachineOptions {
  /** Name sent in HelloOk. */
  readonly serverName: string;
  /** Takes a slot for a peer of `role`, or returns the refusal to close with. */
  readonly admitRole: (role: PeerRole) => ConnectionAction | undefined;
  /**
   * Answers one client request; answers must resolve in the order of the calls (undefined =
   * the connection closed before it was handled).
   */
  readonly request: (packet: Packet) => Promise<ClientSessionResult | undefined>;
  /** Looks up a cluster key by name (undefined = no such key). */
  readonly clusterKeys: (keyName: string) => Promise<Uint8Array | undefined>;
  /** When a cluster's registration times out (the clock of `now`, Unix ms). */
  readonly registrationDeadline: number;
}

type Phase =
  | { readonly kind: "hello" }
  | { readonly kind: "client" }
  | { readonly kind: "registering"; readonly registration: ClusterRegistration }
  | {
    readonly kind: "listing";
    readonly registration: ClusterRegistration;
    readonly step: Extract<RegistrationStep, { kind: "registered" }>;
  }
  | { readonly kind: "linked"; readonly link: ClusterLink }
  | { readonly kind: "closed" };

/**
 * The protocol of one connection to the master.
 *
 * @example A client's Hello, then a Ping
 * ```ts
 * import { MasterConnectionMachine } from "./master_connection_machine.ts";
 * import assert from "node:assert/strict";
 *
 * const machine = new MasterConnectionMachine({
 *   serverName: "master",
 *   admitRole: () => undefined,
 *   request: () => Promise.resolve(undefined),
 *   clusterKeys: () => Promise.resolve(undefined),
 *   registrationDeadline: 5000,
 * });
 * const hello = machine.receive({ kind: "Hello", version: 3, role: 1 }, 0);
 * assert.deepEqual(hello.map((a) => a.type), ["send", "greeted"]);
 * assert.equal(machine.phase, "client");
 * ```
 */
export class MasterConnectionMachine
  implements ProtocolMachine<MasterConnectionDerived, MasterConnectionEvent> {
  readonly #options: MasterConnectionMachineOptions;
  #phase: Phase = { kind: "hello" };
  #pendingRequests = 0;
  /** Set once a failed registration was reported (it ends only once). */
  #registrationOver = false;

  /**
   * Creates the machine of one accepted connection, waiting for its Hello.
   *
   * @param options The server's answers.
   */
  constructor(options: MasterConnectionMachineOptions) {
    this.#options = options;
  }

  /** Where the connection is. */
  get phase(): Phase["kind"] {
    return this.#phase.kind;
  }

  /** The registration of a cluster connection (for the deadline timer), else undefined. */
  get registration(): ClusterRegistration | undefined {
    const phase = this.#phase;
    return phase.kind === "registering" || phase.kind === "listing"
      ? phase.registration
      : undefined;
  }

  /**
   * Handles one decoded packet (or the codec's error for a malformed frame).
   *
   * @param packet The packet or decode error.
   * @param now When it arrived (Unix ms).
   * @returns The actions.
   */
  receive(packet: Packet | ProtocolError, now: number): readonly MasterConnectionAction[] {
    const phase = this.#phase;
    if (packet instanceof ProtocolError) {
      // A malformed frame mid-registration (e.g. a proof of the wrong length) ends it too.
      const refused = phase.kind === "registering"
        ? this.#refusedOf(phase.registration, phase.registration.unexpected())
        : [];
      // The first frame must be a Hello, whatever else it is (as on a cluster): an unknown
      // type or a payload that does not decode is BadHello there, not its decode error.
      const code = phase.kind === "hello" ? ErrorCode.BadHello : packet.errorCode;
      return [...refused, { type: "close", code, reason: packet.message }];
    }
    switch (phase.kind) {
      case "hello":
        return this.#onHello(packet);
      case "client":
        return this.#onClientRequest(packet);
      case "registering":
        return this.#onRegistrationPacket(phase.registration, packet, now);
      case "listing":
        // The cluster sends nothing until it reads CreateCluster.
        return [{ type: "close", code: ErrorCode.UnexpectedPacket, reason: "unexpected packet" }];
      case "linked":
        return actionsOf(phase.link.handle(packet, now));
      case "closed":
        return [];
    }
  }

  /**
   * Takes the result of a `derive` step.
   *
   * @param result A request's answer or a registration step.
   * @param _now When it ended (Unix ms).
   * @returns The actions.
   */
  derived(result: MasterConnectionDerived, _now: number): readonly MasterConnectionAction[] {
    if (result.kind === "request") {
      this.#pendingRequests--;
      // Answered even after a close: the join still counts (its sends go nowhere).
      if (result.result === undefined) return [];
      return [{ type: "answered", result: result.result }, ...actionsOf(result.result.action)];
    }
    const phase = this.#phase;
    if (phase.kind !== "registering") return [];
    return this.#onRegistrationStep(phase.registration, result.step);
  }

  /**
   * The adapter listed the registered cluster: CreateCluster goes out and both directions
   * switch to sealed records (the cluster sends its first record only after reading it).
   *
   * @param link The cluster's link (its id is the cluster id).
   * @returns The actions.
   */
  linked(link: ClusterLink): readonly MasterConnectionAction[] {
    const phase = this.#phase;
    if (phase.kind !== "listing") return [];
    this.#phase = { kind: "linked", link };
    return [
      ...actionsOf({ kind: "send", packet: { kind: "CreateCluster", clusterId: link.id } }),
      {
        type: "seal",
        keys: {
          sendKey: phase.step.linkKeys.masterToCluster,
          receiveKey: phase.step.linkKeys.clusterToMaster,
        },
      },
    ];
  }

  /**
   * The registration deadline passed.
   *
   * @returns The actions (none once registered or failed).
   */
  expire(): readonly MasterConnectionAction[] {
    const phase = this.#phase;
    if (phase.kind !== "registering") return [];
    const step = phase.registration.expire();
    return step === undefined ? [] : this.#onRegistrationStep(phase.registration, step);
  }

  /**
   * Applies adapter-made {@linkcode ConnectionAction}s (e.g. a refused slot) the same way.
   *
   * @param action The action.
   * @returns The machine actions.
   */
  act(action: ConnectionAction): readonly MasterConnectionAction[] {
    if (action.kind === "close") this.#phase = { kind: "closed" };
    return actionsOf(action);
  }

  /**
   * The connection closed (whoever closed it).
   *
   * @returns The events still due: a registration that ends here is `refused`.
   */
  closed(): readonly MasterConnectionAction[] {
    const phase = this.#phase;
    this.#phase = { kind: "closed" };
    if (phase.kind !== "registering") return [];
    return this.#refusedOf(phase.registration, phase.registration.peerLeft(false));
  }

  #onHello(packet: Packet): readonly MasterConnectionAction[] {
    const outcome = answerHello(packet, this.#options.serverName);
    if (!outcome.ok) return actionsOf(outcome.action);
    const refusal = this.#options.admitRole(outcome.role);
    if (refusal !== undefined) return this.act(refusal);
    if (outcome.role === "client") {
      this.#phase = { kind: "client" };
    } else {
      // The deadline counts from connecting: Hello time is part of the registration.
      const deadline = this.#options.registrationDeadline;
      this.#phase = { kind: "registering", registration: new ClusterRegistration({ deadline }) };
    }
    return [
      ...actionsOf({ kind: "send", packet: outcome.reply }),
      { type: "greeted", role: outcome.role },
    ];
  }

  #onClientRequest(packet: Packet): readonly MasterConnectionAction[] {
    if (this.#pendingRequests >= MAX_PENDING_REQUESTS) {
      return this.act({
        kind: "close",
        code: ErrorCode.SlowConsumer,
        message: "too many requests in flight",
      });
    }
    this.#pendingRequests++;
    const request = this.#options.request;
    return [{
      type: "derive",
      derive: async () => ({ kind: "request", result: await request(packet) }),
    }];
  }

  #onRegistrationPacket(
    registration: ClusterRegistration,
    packet: Packet,
    now: number,
  ): readonly MasterConnectionAction[] {
    switch (packet.kind) {
      case "BecomeCluster":
        return [{ type: "derive", derive: () => this.#challenge(registration, packet, now) }];
      case "AnswerCluster":
        // The cluster sends nothing more until it reads CreateCluster, so sealing can start
        // when the proof is checked (see linked); any frame meanwhile fails it.
        return [{
          type: "derive",
          derive: async () => ({
            kind: "registration",
            step: await registration.answer(packet, now),
          }),
        }];
      case "Error": {
        // A cluster that cannot open the challenge says so before it leaves.
        const step = registration.peerLeft(true);
        return step === undefined ? [] : this.#onRegistrationStep(registration, step);
      }
      default:
        return [
          ...this.#refusedOf(registration, registration.unexpected()),
          { type: "close", code: ErrorCode.UnexpectedPacket, reason: `unexpected ${packet.kind}` },
        ];
    }
  }

  async #challenge(
    registration: ClusterRegistration,
    packet: BecomeClusterPacket,
    now: number,
  ): Promise<MasterConnectionDerived> {
    const key = registration.state === "awaiting_become"
      ? await this.#options.clusterKeys(packet.keyName)
      : undefined;
    return { kind: "registration", step: await registration.challenge(packet, key, now) };
  }

  #onRegistrationStep(
    registration: ClusterRegistration,
    step: RegistrationStep,
  ): readonly MasterConnectionAction[] {
    switch (step.kind) {
      case "challenge":
        return actionsOf({ kind: "send", packet: step.packet });
      case "refused":
        return [
          ...this.#refusedOf(registration, step),
          ...this.act({ kind: "close", ...REGISTRATION_FAILED }),
        ];
      case "registered":
        this.#phase = { kind: "listing", registration, step };
        return [{ type: "registered", step }];
    }
  }

  /** The `refused` event of a failed registration, once per connection. */
  #refusedOf(
    registration: ClusterRegistration,
    step: RegistrationStep | undefined,
  ): readonly MasterConnectionAction[] {
    if (step?.kind !== "refused" || this.#registrationOver) return [];
    this.#registrationOver = true;
    return [{ type: "refused", reason: step.reason, keyName: registration.keyName }];
  }
}

/** A sub-machine's {@linkcode ConnectionAction} as machine actions (packets leave encoded). */
function actionsOf(action: ConnectionAction): readonly MasterConnectionAction[] {
  switch (action.kind) {
    case "none":
      return [];
    case "send":
      try {
        return [{ type: "send", frame: encodePacket(action.packet) }];
      } catch (error) {
        // A field out of range for the wire (a bug, not the peer's fault).
        return [{
          type: "close",
          code: ErrorCode.Internal,
          reason: `cannot encode ${action.packet.kind}: ${
            error instanceof Error ? error.message : String(error)
          }`,
          message: "internal error",
          level: "error",
        }];
      }
    case "close":
      return [
        action.code === undefined ? { type: "close", reason: action.message, level: "debug" } : {
          type: "close",
          code: action.code as ErrorCode,
          reason: action.message,
          level: "debug",
        },
      ];
  }
}
