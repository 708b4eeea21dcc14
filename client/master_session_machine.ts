// This module is browser compatible.
/**
 * The client side of a master connection as a sans-I/O state machine (docs/PROTOCOL.md,
 * "Client → master"): it makes the frames to send (Hello, RequestClusters, JoinCluster, Ping)
 * and turns each frame received into one {@linkcode MasterSessionEvent} that a socket adapter
 * acts on. Answers are matched to requests in order, because the master answers in order.
 *
 * It must never do I/O or keep time (the adapter owns sockets and timers), and never hold a
 * credential or ticket longer than the call that passes it.
 *
 * @module
 */

import type { Frame } from "../shared/protocol/frame.ts";
import { decodePacket, encodePacket } from "../shared/protocol/codec.ts";
import {
  type ClusterInfo,
  type JoinTicketPacket,
  PROTOCOL_VERSION,
  Role,
} from "../shared/protocol/packets.ts";
import { ErrorCode, ProtocolError } from "../shared/protocol/protocol_error.ts";
import {
  checkHelloOk,
  type SessionCloseReason,
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
 * What one frame from the master means; the adapter acts on it.
 *
 * - `ready`: HelloOk arrived, requests may be sent.
 * - `clusters` / `ticket`: the answer to request `request`.
 * - `refused`: the master refused join `request` (codes 11–14, 19); the connection stays open.
 * - `reply`: send `frame` (a Pong to the master's Ping).
 * - `pong`: the answer to one of our Pings.
 * - `unhandled`: a frame this library does not handle here; offer it to client plugins and, if
 *   none takes it, fail with `error` (closing with `closeWith`).
 * - `failed`: the session is over; close the connection (sending `closeWith` first, if any).
 */
export type MasterSessionEvent =
  | { readonly kind: "ready"; readonly serverName: string }
  | {
    readonly kind: "clusters";
    readonly request: number;
    readonly clusters: readonly ClusterInfo[];
  }
  | { readonly kind: "ticket"; readonly request: number; readonly ticket: JoinTicketPacket }
  | { readonly kind: "refused"; readonly request: number; readonly error: ClientError }
  | { readonly kind: "reply"; readonly frame: Uint8Array }
  | { readonly kind: "pong"; readonly value: number }
  | UnhandledFrameEvent
  | {
    readonly kind: "failed";
    readonly error: ClientError;
    readonly closeWith?: SessionCloseReason;
  };

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
 * @example A join that the master refuses, then one it accepts
 * ```ts
 * import { MasterSessionMachine } from "./master_session_machine.ts";
 * import { encodePacket } from "../shared/protocol/codec.ts";
 * import { FrameDecoder } from "../shared/protocol/frame.ts";
 * import assert from "node:assert/strict";
 *
 * const frame = (bytes: Uint8Array) => {
 *   const decoder = new FrameDecoder();
 *   decoder.push(bytes);
 *   const f = decoder.next();
 *   if (f === undefined || f instanceof Error) throw new Error("no frame");
 *   return f;
 * };
 * const session = new MasterSessionMachine();
 * assert.equal(session.hello().toHex(), "000000080153555354000301");
 * const ready = session.receive(
 *   frame(encodePacket({ kind: "HelloOk", version: 3, role: 3, serverName: "m" })),
 * );
 * assert.deepEqual(ready, { kind: "ready", serverName: "m" });
 *
 * const first = session.joinCluster(0, new Uint8Array(32), new Uint8Array());
 * const refused = session.receive(
 *   frame(encodePacket({ kind: "Error", code: 13, reason: "none" })),
 * );
 * assert.ok(refused.kind === "refused" && refused.request === first.request);
 * assert.equal(refused.error.code, "no_cluster");
 * assert.equal(session.state, "ready");
 * ```
 */
export class MasterSessionMachine {
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
   * Handles one frame from the master.
   *
   * @param frame A frame as delivered by the transport; the event may hold views of it, valid
   * only until the frame handler returns.
   *
   * @example An Error before HelloOk ends the session
   * ```ts
   * import { MasterSessionMachine } from "./master_session_machine.ts";
   * import assert from "node:assert/strict";
   *
   * const session = new MasterSessionMachine();
   * // Error(ServerFull, "")
   * const event = session.receive({ type: 0x03, payload: Uint8Array.fromHex("00080000") });
   * assert.ok(event.kind === "failed");
   * assert.equal(event.error.code, "server_full");
   * assert.equal(session.state, "failed");
   * ```
   */
  receive(frame: Frame): MasterSessionEvent {
    const packet = decodePacket(frame);
    if (this.#state === "failed") {
      return { kind: "failed", error: new ClientError("disconnected", "master session ended") };
    }
    if (packet instanceof ProtocolError) {
      return unhandledFrame(frame, packet, "master", this.#state);
    }
    if (packet.kind === "Error") return this.#onError(packet.code, packet.reason);
    if (this.#state === "hello") {
      if (packet.kind !== "HelloOk") return unhandledFrame(frame, packet, "master", "hello");
      const bad = checkHelloOk(packet, Role.Master);
      if (bad !== undefined) {
        return this.#fail(new ClientError("protocol_error", bad.message), bad);
      }
      this.#state = "ready";
      this.#serverName = packet.serverName;
      return { kind: "ready", serverName: packet.serverName };
    }
    switch (packet.kind) {
      case "SendClusters": {
        const request = this.#answer("list");
        if (request === undefined) return unhandledFrame(frame, packet, "master", "ready");
        return { kind: "clusters", request, clusters: packet.clusters };
      }
      case "JoinTicket": {
        const request = this.#answer("join");
        if (request === undefined) return unhandledFrame(frame, packet, "master", "ready");
        return { kind: "ticket", request, ticket: packet };
      }
      case "Ping":
        return { kind: "reply", frame: encodePacket({ kind: "Pong", value: packet.value }) };
      case "Pong":
        return { kind: "pong", value: packet.value };
      default:
        return unhandledFrame(frame, packet, "master", "ready");
    }
  }

  /**
   * Marks the session failed (the adapter saw the connection end or gave up waiting).
   *
   * @param error Why.
   * @returns The `failed` event to act on.
   *
   * @example
   * ```ts
   * import { MasterSessionMachine } from "./master_session_machine.ts";
   * import { ClientError } from "./errors.ts";
   * import assert from "node:assert/strict";
   *
   * const session = new MasterSessionMachine();
   * session.fail(new ClientError("timeout", "no HelloOk"));
   * assert.equal(session.state, "failed");
   * ```
   */
  fail(error: ClientError): MasterSessionEvent {
    return this.#fail(error);
  }

  #onError(code: number, reason: string): MasterSessionEvent {
    const error = errorFromWire(code, reason, "master");
    if (this.#state === "ready" && JOIN_REFUSALS.has(code)) {
      const request = this.#answer("join");
      if (request !== undefined) return { kind: "refused", request, error };
    }
    // Any other Error is the master's last frame: it closes after it.
    return this.#fail(error);
  }

  #fail(error: ClientError, closeWith?: SessionCloseReason): MasterSessionEvent {
    this.#state = "failed";
    this.#pending.length = 0;
    return closeWith === undefined
      ? { kind: "failed", error }
      : { kind: "failed", error, closeWith };
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
