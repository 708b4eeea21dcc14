// This module is browser compatible.
/**
 * The master's answer to a connection's first packet (docs/PROTOCOL.md "Connection
 * lifecycle"): a Hello of the current version from a client or a cluster gets HelloOk and decides how
 * the rest of the connection is handled; anything else is an Error and close. Pure function;
 * it must never accept a role it cannot serve.
 *
 * @module
 */

import { type Packet, PROTOCOL_VERSION, Role } from "../shared/protocol/packets.ts";
import { ErrorCode } from "../shared/protocol/protocol_error.ts";
import { closeWith, type ConnectionAction } from "./connection_action.ts";

/** The roles the master serves. */
export type PeerRole = "client" | "cluster";

/** The outcome of {@linkcode answerHello}. */
export type HelloOutcome =
  | {
    /** Accepted: send `reply`, then handle the connection as `role`. */
    readonly ok: true;
    readonly role: PeerRole;
    readonly reply: Packet;
  }
  | {
    /** Refused: apply `action` (an Error and close). */
    readonly ok: false;
    readonly action: ConnectionAction;
  };

/**
 * Checks a connection's first packet.
 *
 * @param packet The first decoded packet.
 * @param serverName The master's name, sent in HelloOk.
 *
 * @example
 * ```ts
 * import { answerHello } from "./hello.ts";
 * import assert from "node:assert/strict";
 *
 * const ok = answerHello({ kind: "Hello", version: 3, role: 2 }, "m");
 * assert.ok(ok.ok && ok.role === "cluster");
 * const old = answerHello({ kind: "Hello", version: 9, role: 1 }, "m");
 * assert.ok(!old.ok && old.action.kind === "close" && old.action.code === 2);
 * ```
 */
export function answerHello(packet: Packet, serverName: string): HelloOutcome {
  if (packet.kind !== "Hello") {
    return refuse(ErrorCode.BadHello, `first frame must be Hello, got ${packet.kind}`);
  }
  if (packet.version !== PROTOCOL_VERSION) {
    return refuse(
      ErrorCode.VersionMismatch,
      `version ${packet.version} unsupported (this master speaks ${PROTOCOL_VERSION})`,
    );
  }
  if (packet.role === Role.Master) {
    return refuse(ErrorCode.BadHello, "a master does not accept master connections");
  }
  return {
    ok: true,
    role: packet.role === Role.Client ? "client" : "cluster",
    reply: { kind: "HelloOk", version: PROTOCOL_VERSION, role: Role.Master, serverName },
  };
}

function refuse(code: number, message: string): HelloOutcome {
  return { ok: false, action: closeWith(code, message) };
}
