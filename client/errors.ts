// This module is browser compatible.
/**
 * The typed errors of the client library: one {@linkcode ClientError} class whose `code` says
 * what went wrong (master unreachable, cluster full, ticket refused, key mismatch, …), so an
 * application branches on `err.code`, never on message text, and {@linkcode errorFromWire},
 * which turns an `Error` packet or an `Authenticate` status into one.
 *
 * This module must never put a ticket, key or credential into a message.
 *
 * @module
 */

import { SustenetError } from "../shared/errors.ts";
import { AuthStatus } from "../shared/protocol/packets.ts";
import { ErrorCode, errorCodeName } from "../shared/protocol/protocol_error.ts";

/** What a {@linkcode ClientError} is about. */
export type ClientErrorCode =
  /** The master could not be reached (connection refused, DNS, network). */
  | "master_unreachable"
  /** The cluster named in a join ticket could not be reached. */
  | "cluster_unreachable"
  /** A server answered `Error(ServerFull)`: no free connection slot. */
  | "server_full"
  /** The master answered `Error(ClusterFull)`, or the cluster `Authenticate(50)`. */
  | "cluster_full"
  /** Auto-join found no cluster with room (`Error(NoCluster)`). */
  | "no_cluster"
  /** JoinCluster named a cluster the master does not know (`Error(UnknownCluster)`). */
  | "unknown_cluster"
  /** The master's authentication hook refused the credential (`Error(Unauthorized)`). */
  | "unauthorized"
  /** The master refused a JoinCluster over its ticket limits (`Error(RateLimited)`): wait, retry. */
  | "rate_limited"
  /** The cluster refused the join ticket (`Authenticate(40)` invalid or `(44)` expired/used). */
  | "ticket_refused"
  /** The cluster's key is not the pinned one, or the sealed handshake failed to open. */
  | "key_mismatch"
  /** A pinned key could not be loaded (unreadable file, failed fetch, not a key). */
  | "key_unavailable"
  /** A handshake or request got no answer in time (or the server reported `Timeout`). */
  | "timeout"
  /** The connection ended (peer closed, `DisconnectCluster`, shutdown, close()). */
  | "disconnected"
  /** The peer broke the protocol, or answered with an error this library has no code for. */
  | "protocol_error"
  /** The call makes no sense in this state (e.g. `send` after `leave`), or bad arguments. */
  | "invalid_state";

/** Optional details of a {@linkcode ClientError}. */
export interface ClientErrorDetails {
  /** The wire `Error` code the peer sent, if the error came from one. */
  readonly errorCode?: number;
  /** The `Authenticate` status the cluster sent, if the error came from one. */
  readonly status?: number;
  /** The underlying error. */
  readonly cause?: unknown;
}

/**
 * Every failure the client library reports on purpose.
 *
 * @example Branch on the code
 * ```ts
 * import { ClientError } from "./errors.ts";
 * import assert from "node:assert/strict";
 *
 * const err = new ClientError("ticket_refused", "ticket expired or used", { status: 44 });
 * assert.equal(err.code, "ticket_refused");
 * assert.equal(err.status, 44);
 * assert.equal(err.name, "ClientError");
 * ```
 */
export class ClientError extends SustenetError {
  /** What went wrong. */
  declare readonly code: ClientErrorCode;
  /** The wire `Error` code the peer sent, if any. */
  readonly errorCode: number | undefined;
  /** The `Authenticate` status the cluster sent, if any. */
  readonly status: number | undefined;

  /**
   * Makes a new ClientError.
   *
   * @param code What went wrong.
   * @param message Human-readable reason; never contains key, ticket or credential bytes.
   * @param details The wire code or status it came from, and the cause.
   */
  constructor(code: ClientErrorCode, message: string, details: ClientErrorDetails = {}) {
    super(code, message, details.cause === undefined ? undefined : { cause: details.cause });
    this.errorCode = details.errorCode;
    this.status = details.status;
  }
}

/** Client error code of each wire error code that has a more specific one than protocol_error. */
const CODE_OF_WIRE: Readonly<Record<number, ClientErrorCode>> = {
  [ErrorCode.ServerFull]: "server_full",
  [ErrorCode.Timeout]: "timeout",
  [ErrorCode.UnknownCluster]: "unknown_cluster",
  [ErrorCode.ClusterFull]: "cluster_full",
  [ErrorCode.NoCluster]: "no_cluster",
  [ErrorCode.Unauthorized]: "unauthorized",
  [ErrorCode.RateLimited]: "rate_limited",
  [ErrorCode.ShuttingDown]: "disconnected",
  [ErrorCode.SlowConsumer]: "disconnected",
};

/**
 * Turns an `Error` packet from a master or cluster into a {@linkcode ClientError}.
 *
 * @param code The packet's error code (any u16; unknown codes become `protocol_error`).
 * @param reason The packet's readable reason.
 * @param from Which server sent it, for the message.
 *
 * @example
 * ```ts
 * import { errorFromWire } from "./errors.ts";
 * import assert from "node:assert/strict";
 *
 * const err = errorFromWire(13, "no cluster with room", "master");
 * assert.equal(err.code, "no_cluster");
 * assert.equal(err.errorCode, 13);
 * assert.equal(errorFromWire(99, "?", "cluster").code, "protocol_error");
 * ```
 */
export function errorFromWire(
  code: number,
  reason: string,
  from: "master" | "cluster",
): ClientError {
  return new ClientError(
    CODE_OF_WIRE[code] ?? "protocol_error",
    `${from} sent Error(${errorCodeName(code)}): ${reason}`,
    { errorCode: code },
  );
}

/**
 * Turns a refusing `Authenticate` status (40, 44 or 50) into a {@linkcode ClientError}.
 *
 * @param status The status the cluster sent.
 *
 * @example
 * ```ts
 * import { errorFromAuthStatus } from "./errors.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(errorFromAuthStatus(40).code, "ticket_refused");
 * assert.equal(errorFromAuthStatus(44).code, "ticket_refused");
 * assert.equal(errorFromAuthStatus(50).code, "cluster_full");
 * ```
 */
export function errorFromAuthStatus(status: number): ClientError {
  switch (status) {
    case AuthStatus.TicketInvalid:
      return new ClientError("ticket_refused", "cluster refused the ticket as invalid", {
        status,
      });
    case AuthStatus.TicketExpired:
      return new ClientError("ticket_refused", "cluster refused the ticket as expired or used", {
        status,
      });
    default:
      return new ClientError(
        "cluster_full",
        `cluster refused the join with status ${status} (server error or full)`,
        { status },
      );
  }
}
