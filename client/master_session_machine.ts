// This module is browser compatible.
/**
 * The client side of a master connection as a sans-I/O machine on the one contract of
 * shared/machine_action.ts (docs/PROTOCOL.md, "Client → master"): decoded packets in, actions
 * out (`send` bytes, `close`, and the {@linkcode MasterSessionEvent}s the adapter acts on). It
 * makes the frames the adapter sends on its own (Hello, RequestClusters, JoinCluster, Ping).
 * Answers are matched to requests in order, because the master answers in order.
 * `client/sustenet_client.ts` drives it with `driveMachine`.
 *
 * It must never do I/O or keep time (the adapter owns sockets and timers), and never hold a
 * credential or ticket longer than the call that passes it.
 *
 * @module
 */

import type { MachineAction, ProtocolMachine } from "../shared/machine_action.ts";
import { encodePacket } from "../shared/protocol/codec.ts";
import type { Frame } from "../shared/protocol/frame.ts";
import {
  type ClusterInfo,
  type JoinTicketPacket,
  type Packet,
  PROTOCOL_VERSION,
  Role,
} from "../shared/protocol/packets.ts";
import { ErrorCode, ProtocolError } from "../shared/protocol/protocol_error.ts";
import {
  checkHelloOk,
  failure,
  type SessionCloseReason,
  type SessionFailedEvent,
  unhandledFrame,
  type UnhandledFrameEvent,
} from "./_session_common.ts";
import { ClientError, errorFromWire } from "./errors.ts";

/** A request waiting for the master's answer, identified by a number unique per session. */
export interface MasterRequest {
  /** Matches the `request` of the event that answers it. */
  readonly request: number;
  /** The frame to send. */
  readonly frame: Uint8Array;
}

/**
 * The machine's own events (besides the shared `send` and `close` actions); the adapter acts
 * on them.
 *
 * - `ready`: HelloOk arrived, requests may be sent.
 * - `clusters` / `ticket`: the answer to request `request` (the ticket's byte fields are views
 *   of the frame: copy what outlives the frame handler).
 * - `refused`: the master refused join `request` (codes 11–14, 19); the connection stays open.
 * - `pong`: the answer to one of our Pings.
 * - `unhandled`: a frame this library does not handle here; offer it to client plugins and, if
 *   none takes it, apply {@linkcode MasterSessionMachine.fail}`(error, closeWith)`.
 * - `failed`: the session is over; a `close` follows.
 */
export type MasterSessionEvent =
  | { readonly type: "ready"; readonly serverName: string }
  | {
    readonly type: "clusters";
    readonly request: number;
    readonly clusters: readonly ClusterInfo[];
  }
  | { readonly type: "ticket"; readonly request: number; readonly ticket: JoinTicketPacket }
  | { readonly type: "refused"; readonly request: number; readonly error: ClientError }
  | { readonly type: "pong"; readonly value: number }
  | UnhandledFrameEvent
  | SessionFailedEvent;

/**
 * What the adapter must do, in order, after a packet from the master: `send` this frame (a
 * Pong), `close` (first sending `Error(code, message)` when `code` is given), or a
 * {@linkcode MasterSessionEvent}. The machine has no `derive` step.
 */
export type MasterSessionAction = MachineAction<never, MasterSessionEvent>;

/** The phase of a {@linkcode MasterSessionMachine}. */
export type MasterSessionState = "hello" | "ready" | "failed";

/** Error codes that answer a JoinCluster without closing the master connection. */
const JOIN_REFUSALS: ReadonlySet<number> = new Set([
  ErrorCode.UnknownCluster,
  ErrorCode.ClusterFull,
  ErrorCode.NoCluster,
  ErrorCode.Unauthorized,
  ErrorCode.RateLimited,
]);

/**
 * The client's master-connection protocol: Hello → HelloOk, then any number of
 * RequestClusters / JoinCluster requests whose answers come back in order, Ping / Pong, and
 * the master's refusals (codes 11–14 and 19), which keep the connection open.
 *
 * Send {@linkcode hello} first; feed every decoded frame from the master to
 * {@linkcode receive} (with the frame itself, for the `unhandled` event) and apply the actions
 * in order (`driveMachine` does).
 *
 * @example A join that the master refuses, then one it accepts
 * ```ts
 * import { MasterSessionMachine } from "./master_session_machine.ts";
 * import assert from "node:assert/strict";
 *
 * const session = new MasterSessionMachine();
 * assert.equal(session.hello().toHex(), "000000080153555354000301");
 * const ready = session.receive({ kind: "HelloOk", version: 3, role: 3, serverName: "m" }, 0);
 * assert.deepEqual(ready, [{ type: "ready", serverName: "m" }]);
 *
 * const first = session.joinCluster(0, new Uint8Array(32), new Uint8Array());
 * const [refused] = session.receive({ kind: "Error", code: 13, reason: "none" }, 0);
 * assert.ok(refused.type === "refused" && refused.request === first.request);
 * assert.equal(refused.error.code, "no_cluster");
 * assert.equal(session.state, "ready");
 * ```
 */
export class MasterSessionMachine implements ProtocolMachine<never, MasterSessionEvent> {
  #state: MasterSessionState = "hello";
  #nextRequest = 1;
  /** Requests in the order they were sent; the master answers in that order. */
  readonly #pending: { readonly request: number; readonly kind: "list" | "join" }[] = [];
  #serverName = "";

  /** The current phase. */
  get state(): MasterSessionState {
    return this.#state;
  }

  /** The master's name from HelloOk ("" before). */
  get serverName(): string {
    return this.#serverName;
  }

  /** Requests sent and not yet answered. */
  get pendingCount(): number {
    return this.#pending.length;
  }

  /**
   * The first frame to send: Hello(version 1, role client).
   *
   * @example
   * ```ts
   * import { MasterSessionMachine } from "./master_session_machine.ts";
   * import assert from "node:assert/strict";
   *
   * assert.equal(new MasterSessionMachine().hello().length, 12);
   * ```
   */
  hello(): Uint8Array {
    return encodePacket({ kind: "Hello", version: PROTOCOL_VERSION, role: Role.Client });
  }

  /**
   * Makes a RequestClusters; its answer is a `clusters` event with the same `request`.
   *
   * @throws {ClientError} `invalid_state` before `ready` or after a failure.
   *
   * @example
   * ```ts
   * import { MasterSessionMachine } from "./master_session_machine.ts";
   * import assert from "node:assert/strict";
   *
   * assert.throws(() => new MasterSessionMachine().requestClusters(), /before HelloOk/);
   * ```
   */
  requestClusters(): MasterRequest {
    return this.#request("list", encodePacket({ kind: "RequestClusters" }));
  }

  /**
   * Makes a JoinCluster; its answer is a `ticket` or `refused` event with the same `request`.
   *
   * @param clusterId The cluster to join, 0 = any with room.
   * @param clientPublicKey The raw 32-byte ephemeral X25519 public key for that cluster.
   * @param credential Opaque credential for the master's authentication hook (≤ 65535 bytes).
   * @throws {ClientError} `invalid_state` before `ready` or after a failure.
   * @throws {RangeError} If an argument does not fit its field.
   *
   * @example
   * ```ts
   * import { MasterSessionMachine } from "./master_session_machine.ts";
   * import assert from "node:assert/strict";
   *
   * assert.throws(
   *   () => new MasterSessionMachine().joinCluster(0, new Uint8Array(32), new Uint8Array()),
   *   (e: Error & { code?: string }) => e.code === "invalid_state",
   * );
   * ```
   */
  joinCluster(
    clusterId: number,
    clientPublicKey: Uint8Array,
    credential: Uint8Array,
  ): MasterRequest {
    this.#assertReady();
    const frame = encodePacket({ kind: "JoinCluster", clusterId, clientPublicKey, credential });
    return this.#request("join", frame);
  }

  /**
   * Makes a Ping (valid once `ready`).
   *
   * @param value Echoed by the master's Pong.
   *
   * @example
   * ```ts
   * import { MasterSessionMachine } from "./master_session_machine.ts";
   * import assert from "node:assert/strict";
   *
   * assert.throws(() => new MasterSessionMachine().ping(1), /before HelloOk/);
   * ```
   */
  ping(value: number): Uint8Array {
    this.#assertReady();
    return encodePacket({ kind: "Ping", value: value >>> 0 });
  }

  /**
   * Handles one decoded packet from the master (or the codec's error).
   *
   * @param packet The packet, or the codec's error for a malformed frame.
   * @param _now When it arrived, in ms (unused: the adapter keeps the deadlines).
   * @param frame The frame it came from, handed on in an `unhandled` event (a view valid
   * only until the frame handler returns).
   * @returns The actions (none once the session has failed).
   *
   * @example An Error before HelloOk ends the session
   * ```ts
   * import { MasterSessionMachine } from "./master_session_machine.ts";
   * import assert from "node:assert/strict";
   *
   * const session = new MasterSessionMachine();
   * const [failed, close] = session.receive({ kind: "Error", code: 8, reason: "" }, 0);
   * assert.ok(failed.type === "failed");
   * assert.equal(failed.error.code, "server_full");
   * assert.equal(close.type, "close");
   * assert.equal(session.state, "failed");
   * ```
   */
  receive(
    packet: Packet | ProtocolError,
    _now: number,
    frame?: Frame,
  ): readonly MasterSessionAction[] {
    if (this.#state === "failed") return [];
    if (packet instanceof ProtocolError) {
      return [unhandledFrame(frame, packet, "master", this.#state)];
    }
    if (packet.kind === "Error") return this.#onError(packet.code, packet.reason);
    if (this.#state === "hello") {
      if (packet.kind !== "HelloOk") return [unhandledFrame(frame, packet, "master", "hello")];
      const bad = checkHelloOk(packet, Role.Master);
      if (bad !== undefined) return this.fail(new ClientError("protocol_error", bad.message), bad);
      this.#state = "ready";
      this.#serverName = packet.serverName;
      return [{ type: "ready", serverName: packet.serverName }];
    }
    switch (packet.kind) {
      case "SendClusters": {
        const request = this.#answer("list");
        if (request === undefined) return [unhandledFrame(frame, packet, "master", "ready")];
        return [{ type: "clusters", request, clusters: packet.clusters }];
      }
      case "JoinTicket": {
        const request = this.#answer("join");
        if (request === undefined) return [unhandledFrame(frame, packet, "master", "ready")];
        return [{ type: "ticket", request, ticket: packet }];
      }
      case "Ping":
        return [{ type: "send", frame: encodePacket({ kind: "Pong", value: packet.value }) }];
      case "Pong":
        return [{ type: "pong", value: packet.value }];
      default:
        return [unhandledFrame(frame, packet, "master", "ready")];
    }
  }

  /**
   * Never called: the machine has no `derive` step (the contract's method).
   *
   * @returns No action.
   */
  derived(): readonly MasterSessionAction[] {
    return [];
  }

  /**
   * Ends the session (the adapter gave up waiting, or no client plugin took an `unhandled`
   * frame): the `failed` event and the `close`, or nothing if it had already ended.
   *
   * @param error Why.
   * @param closeWith The Error frame to send before closing, if any.
   * @returns The actions to apply.
   *
   * @example
   * ```ts
   * import { MasterSessionMachine } from "./master_session_machine.ts";
   * import { ClientError } from "./errors.ts";
   * import assert from "node:assert/strict";
   *
   * const session = new MasterSessionMachine();
   * const actions = session.fail(new ClientError("timeout", "no HelloOk"));
   * assert.deepEqual(actions.map((a) => a.type), ["failed", "close"]);
   * assert.equal(session.state, "failed");
   * assert.deepEqual(session.fail(new ClientError("timeout", "again")), []);
   * ```
   */
  fail(error: ClientError, closeWith?: SessionCloseReason): readonly MasterSessionAction[] {
    if (this.#state === "failed") return [];
    this.#state = "failed";
    this.#pending.length = 0;
    return failure(error, closeWith);
  }

  #onError(code: number, reason: string): readonly MasterSessionAction[] {
    const error = errorFromWire(code, reason, "master");
    if (this.#state === "ready" && JOIN_REFUSALS.has(code)) {
      const request = this.#answer("join");
      if (request !== undefined) return [{ type: "refused", request, error }];
    }
    // Any other Error is the master's last frame: it closes after it.
    return this.fail(error);
  }

  /** Pops the oldest pending request if it is of `kind`, else `undefined` (out of order). */
  #answer(kind: "list" | "join"): number | undefined {
    const first = this.#pending[0];
    if (first === undefined || first.kind !== kind) return undefined;
    this.#pending.shift();
    return first.request;
  }

  #request(kind: "list" | "join", frame: Uint8Array): MasterRequest {
    this.#assertReady();
    const request = this.#nextRequest++;
    this.#pending.push({ request, kind });
    return { request, frame };
  }

  #assertReady(): void {
    if (this.#state === "hello") {
      throw new ClientError("invalid_state", "master session: no request before HelloOk");
    }
    if (this.#state === "failed") {
      throw new ClientError("invalid_state", "master session has ended");
    }
  }
}
