// This module is browser compatible.
/**
 * What a master-side state machine (client session, cluster link) asks its socket adapter to
 * do after a packet: send a packet, close (with an Error frame or quietly), or nothing. Types
 * and tiny constructors only; this module must never do I/O.
 *
 * @module
 */

import type { Packet } from "../shared/protocol/packets.ts";
import { ErrorCode } from "../shared/protocol/protocol_error.ts";

/** One action for the connection adapter. */
export type ConnectionAction =
  | {
    /** Queue `packet` on the connection. */
    readonly kind: "send";
    readonly packet: Packet;
  }
  | {
    /** Close the connection; with `code`, send `Error(code, message)` first. */
    readonly kind: "close";
    readonly code?: number;
    readonly message: string;
  }
  | {
    /** Nothing to do. */
    readonly kind: "none";
  };

/**
 * The action "close after sending Error(code, message)".
 *
 * @param code The error code.
 * @param message The reason sent to the peer (never secret).
 *
 * @example
 * ```ts
 * import { closeWith } from "./connection_action.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(closeWith(7, "unexpected"), { kind: "close", code: 7, message: "unexpected" });
 * ```
 */
export function closeWith(code: number, message: string): ConnectionAction {
  return { kind: "close", code, message };
}

/**
 * The action "send this packet".
 *
 * @param packet The packet to send.
 *
 * @example
 * ```ts
 * import { sendPacket } from "./connection_action.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(sendPacket({ kind: "Pong", value: 1 }), {
 *   kind: "send",
 *   packet: { kind: "Pong", value: 1 },
 * });
 * ```
 */
export function sendPacket(packet: Packet): ConnectionAction {
  return { kind: "send", packet };
}

/**
 * The action "nothing to do".
 *
 * @example
 * ```ts
 * import { NO_ACTION } from "./connection_action.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(NO_ACTION.kind, "none");
 * ```
 */
export const NO_ACTION: ConnectionAction = Object.freeze({ kind: "none" });

/**
 * The answer every state machine gives to Ping (Pong), to a peer's Error (close quietly) and to
 * anything else it does not expect (`Error(UnexpectedPacket)` and close).
 *
 * @param packet A packet the caller's state has no specific handling for.
 *
 * @example
 * ```ts
 * import { commonAction } from "./connection_action.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(commonAction({ kind: "Ping", value: 3 }), {
 *   kind: "send",
 *   packet: { kind: "Pong", value: 3 },
 * });
 * assert.equal(commonAction({ kind: "Move", state: { x: 0, y: 0, z: 0 } }).kind, "close");
 * ```
 */
export function commonAction(packet: Packet): ConnectionAction {
  switch (packet.kind) {
    case "Ping":
      return sendPacket({ kind: "Pong", value: packet.value });
    case "Pong":
      return NO_ACTION;
    case "Error":
      // The peer's Error is its last frame: close without answering.
      return { kind: "close", message: `peer sent Error ${packet.code}` };
    default:
      return closeWith(ErrorCode.UnexpectedPacket, `unexpected ${packet.kind}`);
  }
}
