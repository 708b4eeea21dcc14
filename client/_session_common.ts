// This module is browser compatible.
/**
 * Pieces shared by the two client session machines (`master_session_machine.ts`,
 * `cluster_session_machine.ts`, both on the contract of shared/machine_action.ts): the close
 * reason type, the failure actions, the handling of a frame that is not valid in the current
 * state, and the HelloOk check. Private to `client/`.
 *
 * It must never do I/O, and never decide for the adapter whether a client plugin takes a frame.
 *
 * @module
 */

import type { CloseAction } from "../shared/machine_action.ts";
import type { Frame } from "../shared/protocol/frame.ts";
import {
  type HelloOkPacket,
  type Packet,
  PROTOCOL_VERSION,
  type Role,
} from "../shared/protocol/packets.ts";
import { ErrorCode, ProtocolError } from "../shared/protocol/protocol_error.ts";
import { ClientError } from "./errors.ts";

/** An Error frame to send before closing: wire code and readable reason. */
export interface SessionCloseReason {
  /** Wire error code (docs/PROTOCOL.md "Error codes"). */
  readonly code: ErrorCode;
  /** Reason for the peer; never secret. */
  readonly message: string;
}

/**
 * A frame the session does not handle in its current state (see {@linkcode unhandledFrame}):
 * the adapter offers it to the client plugins, and if none takes it, ends the session with the
 * machine's `fail(error, closeWith)`.
 */
export interface UnhandledFrameEvent {
  /** Discriminant. */
  readonly type: "unhandled";
  /**
   * The frame as received (its payload is a view valid only during the frame handler), or
   * `undefined` when the machine was given the packet alone (a test stepping it).
   */
  readonly frame: Frame | undefined;
  /** The decoded packet, or `undefined` if the frame does not decode. */
  readonly packet: Packet | undefined;
  /** The failure to report if no client plugin takes the frame. */
  readonly error: ClientError;
  /** The Error frame to close with if no client plugin takes the frame. */
  readonly closeWith: SessionCloseReason;
}

/**
 * A session's failure: why (for the application) and the Error frame to close with, if any.
 */
export interface SessionFailedEvent {
  /** Discriminant. */
  readonly type: "failed";
  /** Why the session ended; a `close` action follows. */
  readonly error: ClientError;
}

/**
 * The actions that end a session: the `failed` event, then the `close` (sending
 * `Error(closeWith.code, closeWith.message)` first when `closeWith` is given).
 *
 * @param error Why.
 * @param closeWith The Error frame to send before closing.
 *
 * @example
 * ```ts
 * import { failure } from "./_session_common.ts";
 * import { ClientError } from "./errors.ts";
 * import assert from "node:assert/strict";
 *
 * const [failed, close] = failure(new ClientError("protocol_error", "bad"), {
 *   code: 7,
 *   message: "bad",
 * });
 * assert.equal(failed.error.code, "protocol_error");
 * assert.deepEqual(close, { type: "close", code: 7, reason: "bad", message: "bad" });
 * ```
 */
export function failure(
  error: ClientError,
  closeWith?: SessionCloseReason,
): readonly [SessionFailedEvent, CloseAction] {
  const close: CloseAction = closeWith === undefined
    ? { type: "close", reason: error.message }
    : { type: "close", code: closeWith.code, reason: error.message, message: closeWith.message };
  return [{ type: "failed", error }, close];
}

/**
 * Turns a frame that cannot be decoded into an `unhandled` event, or a decoded packet that is
 * not valid in this state into one. Shared by both client session machines.
 *
 * @param frame The frame as received, if the machine was given it.
 * @param packet The decoded packet, or the decode error.
 * @param from Which server sent it.
 * @param state The machine's state, for the message.
 *
 * @example
 * ```ts
 * import { unhandledFrame } from "./_session_common.ts";
 * import assert from "node:assert/strict";
 *
 * const event = unhandledFrame({ type: 0x2d, payload: new Uint8Array(4) }, {
 *   kind: "Despawn",
 *   clientId: 0,
 * }, "master", "ready");
 * assert.equal(event.error.code, "protocol_error");
 * assert.equal(event.closeWith.code, 7);
 * ```
 */
export function unhandledFrame(
  frame: Frame | undefined,
  packet: Packet | ProtocolError,
  from: "master" | "cluster",
  state: string,
): UnhandledFrameEvent {
  if (packet instanceof ProtocolError) {
    return {
      type: "unhandled",
      frame,
      packet: undefined,
      error: new ClientError("protocol_error", `${from} sent a bad frame: ${packet.message}`, {
        cause: packet,
      }),
      closeWith: { code: packet.errorCode, message: packet.message },
    };
  }
  const message = `${packet.kind} not expected from the ${from} in state ${state}`;
  return {
    type: "unhandled",
    frame,
    packet,
    error: new ClientError("protocol_error", message),
    closeWith: { code: ErrorCode.UnexpectedPacket, message },
  };
}

/**
 * Checks a HelloOk: the version this code speaks and the expected role, else a failure.
 *
 * @param packet The HelloOk.
 * @param role The role the server must announce.
 * @returns `undefined` if it is fine, else the reason to close with.
 *
 * @example
 * ```ts
 * import { checkHelloOk } from "./_session_common.ts";
 * import assert from "node:assert/strict";
 *
 * const master = { kind: "HelloOk", version: 3, role: 3, serverName: "m" } as const;
 * assert.equal(checkHelloOk(master, 3), undefined);
 * assert.equal(checkHelloOk({ ...master, role: 2 }, 3)?.code, 7);
 * assert.equal(checkHelloOk({ ...master, version: 1 }, 3)?.code, 2);
 * ```
 */
export function checkHelloOk(
  packet: HelloOkPacket,
  role: Role,
): SessionCloseReason | undefined {
  if (packet.version !== PROTOCOL_VERSION) {
    return {
      code: ErrorCode.VersionMismatch,
      message: `server speaks version ${packet.version}, expected ${PROTOCOL_VERSION}`,
    };
  }
  if (packet.role !== role) {
    return {
      code: ErrorCode.UnexpectedPacket,
      message: `server announced role ${packet.role}, expected ${role}`,
    };
  }
  return undefined;
}
