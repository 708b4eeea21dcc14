/**
 * The admission gate of a server's unauthenticated connections: the socket adapter around
 * {@linkcode PendingConnections}. Each accepted `FrameTransport` goes through
 * {@linkcode PendingGate.accept}; the gate closes the ones refused a slot (and the oldest one
 * evicted for a new one) with `Error(ServerFull)`, counts pending-slot refusals, deadlines
 * missed and bad input in {@linkcode PreAuthMetrics}, and logs each kind rate-limited through
 * a {@linkcode LogThrottle}: one line per kind per 10 s, saying how many were left out.
 * {@linkcode PendingGate.authenticated} takes a connection out of the pool and lifts its read
 * bounds.
 *
 * It must never let a flood write a log line per connection, never keep a connection that
 * closed, and never leave its timer running after {@linkcode PendingGate.stop}.
 *
 * @module
 */

import type { Logger } from "@logtape/logtape";
import { LogThrottle } from "./log_throttle.ts";
import { PendingConnections } from "./pending_connections.ts";
import { addressKey } from "./ip_address.ts";
import type { PreAuthMetrics } from "./pre_auth_metrics.ts";
import { ErrorCode } from "./protocol/protocol_error.ts";
import type { CloseInfo, FrameTransport } from "./frame_session.ts";

/** One line per kind of pre-auth event per this many ms; the rest are counted in it. */
const LOG_INTERVAL_MS = 10_000;

/** Error frame reason for a connection over its address's pending limit. */
export const PER_ADDRESS_REASON = "too many unauthenticated connections from your address";

/** Error frame reason for the oldest pending connection when the pool is full. */
export const POOL_FULL_REASON = "too many unauthenticated connections; the oldest was dropped";

/** The kinds of pre-auth event logged, one throttle key each. */
type EventKind = "per_address" | "pool_full" | "timeout" | "bad_input";

const EVENT_TEXT: Readonly<Record<EventKind, string>> = {
  per_address: "refused an unauthenticated connection over its address's limit",
  pool_full: "dropped the oldest unauthenticated connection: the pending pool is full",
  timeout: "closed an unauthenticated connection at its deadline",
  bad_input: "closed an unauthenticated connection for bad input",
};

/**
 * Options of {@linkcode PendingGate}.
 *
 * @example
 * ```ts
 * import type { PendingGateOptions } from "./pending_gate.ts";
 * import { PreAuthMetrics } from "./pre_auth_metrics.ts";
 * import { getLogger } from "@logtape/logtape";
 * import assert from "node:assert/strict";
 *
 * const options: PendingGateOptions = {
 *   maxPending: 1024,
 *   maxPerAddress: 64,
 *   metrics: new PreAuthMetrics("demo", () => 0),
 *   logger: getLogger(["demo"]),
 * };
 * assert.equal(options.maxPerAddress, 64);
 * ```
 */
export interface PendingGateOptions {
  /** Most connections pending at once (config `max_pending_connections`). */
  readonly maxPending: number;
  /** Most pending connections from one address (config `max_pending_per_address`). */
  readonly maxPerAddress: number;
  /** Where refusals, timeouts and bad input are counted. */
  readonly metrics: PreAuthMetrics;
  /** Where the rate-limited lines go. */
  readonly logger: Logger;
  /**
   * The address key a connection is counted under.
   *
   * @default {addressKey of the peer's IP address}
   */
  readonly addressOf?: (connection: FrameTransport) => string;
  /**
   * Clock for the log throttle, in ms.
   *
   * @default {performance.now}
   */
  readonly now?: () => number;
}

/**
 * Admits, counts and releases one server's unauthenticated connections.
 *
 * @example A second pending connection from one address is refused
 * ```ts
 * import { PendingGate } from "./pending_gate.ts";
 * import { PreAuthMetrics } from "./pre_auth_metrics.ts";
 * import { connectFrames, type FrameTransport, listenFrames } from "./transport.ts";
 * import { getLogger } from "@logtape/logtape";
 * import assert from "node:assert/strict";
 *
 * const metrics: PreAuthMetrics = new PreAuthMetrics("demo", (): number => gate.size);
 * const gate: PendingGate = new PendingGate({ maxPending: 8, maxPerAddress: 1, metrics, logger: getLogger(["demo"]) });
 * const accepted: FrameTransport[] = [];
 * const server = listenFrames({
 *   port: 0,
 *   onConnection: (conn) => {
 *     conn.start(() => {});
 *     if (gate.accept(conn)) accepted.push(conn);
 *   },
 * });
 * const first = await connectFrames({ port: server.addr.port, onFrame: () => {} });
 * const second = await connectFrames({ port: server.addr.port, onFrame: () => {} });
 * await second.closed;
 * assert.equal(metrics.refused.get("per_address"), 1);
 * assert.equal(gate.size, 1);
 * gate.authenticated(accepted[0]);
 * assert.equal(gate.size, 0);
 * await first.close();
 * await server.close();
 * gate.stop();
 * ```
 */
export class PendingGate {
  readonly #pool: PendingConnections<FrameTransport>;
  readonly #metrics: PreAuthMetrics;
  readonly #logger: Logger;
  readonly #addressOf: (connection: FrameTransport) => string;
  readonly #now: () => number;
  readonly #throttle = new LogThrottle({ intervalMs: LOG_INTERVAL_MS, maxKeys: 8 });
  #drainTimer: ReturnType<typeof setTimeout> | undefined;

  /**
   * @param options Bounds, counters, logger.
   * @throws {RangeError} If a bound is not an integer ≥ 1.
   */
  constructor(options: PendingGateOptions) {
    this.#pool = new PendingConnections({
      maxPending: options.maxPending,
      maxPerAddress: options.maxPerAddress,
    });
    this.#metrics = options.metrics;
    this.#logger = options.logger;
    this.#addressOf = options.addressOf ?? defaultAddressOf;
    this.#now = options.now ?? (() => performance.now());
  }

  /** Connections pending now. */
  get size(): number {
    return this.#pool.size;
  }

  /**
   * Whether `connection` is still pending (accepted, not authenticated, not closed).
   *
   * @param connection The connection.
   */
  isPending(connection: FrameTransport): boolean {
    return this.#pool.has(connection);
  }

  /**
   * Takes a new connection into the pending pool, or refuses it.
   *
   * @param connection A just-accepted connection.
   * @returns `true` if it is pending now; `false` if it was refused (it is being closed with
   * `Error(ServerFull)`).
   */
  accept(connection: FrameTransport): boolean {
    const address = this.#addressOf(connection);
    const outcome = this.#pool.admit(connection, address);
    if (outcome.kind === "refused") {
      this.#metrics.refused.inc("per_address");
      this.#log("per_address", connection, `${this.#pool.maxPerAddress} pending is the limit`);
      connection.close({ code: ErrorCode.ServerFull, message: PER_ADDRESS_REASON });
      return false;
    }
    const evicted = outcome.evicted;
    if (evicted !== undefined) {
      this.#metrics.refused.inc("pool_full");
      this.#log("pool_full", evicted, `${this.#pool.maxPending} pending is the limit`);
      evicted.close({ code: ErrorCode.ServerFull, message: POOL_FULL_REASON });
    }
    connection.closed.then((info) => this.#closed(connection, info));
    return true;
  }

  /**
   * The connection authenticated: it leaves the pool and its read bounds are lifted to the
   * full ones.
   *
   * @param connection A pending connection (others are ignored).
   */
  authenticated(connection: FrameTransport): void {
    if (!this.#pool.release(connection)) return;
    connection.raiseReadLimits();
  }

  /**
   * The connection leaves the pool without its read bounds being lifted (a master's client
   * connection after its Hello: it is counted elsewhere but never needs large frames).
   *
   * @param connection A pending connection (others are ignored).
   */
  leave(connection: FrameTransport): void {
    this.#pool.release(connection);
  }

  /** Writes the counts still held back and stops the gate's timer. */
  stop(): void {
    if (this.#drainTimer !== undefined) clearTimeout(this.#drainTimer);
    this.#drainTimer = undefined;
    this.#drain(Number.POSITIVE_INFINITY);
  }

  #closed(connection: FrameTransport, info: CloseInfo): void {
    if (!this.#pool.release(connection)) return;
    const code = info.code;
    if (code === ErrorCode.Timeout) {
      this.#metrics.timeouts.inc();
      this.#log("timeout", connection, info.reason);
    } else if (
      code !== undefined && code >= ErrorCode.BadHello && code <= ErrorCode.UnexpectedPacket
    ) {
      this.#metrics.badInput.inc();
      this.#log("bad_input", connection, info.reason);
    }
  }

  #log(kind: EventKind, connection: FrameTransport, detail: string): void {
    const now = this.#now();
    const suppressed = this.#throttle.admit(kind, now);
    if (suppressed === null) {
      this.#drainTimer ??= setTimeout(() => {
        this.#drainTimer = undefined;
        this.#drain(this.#now());
      }, LOG_INTERVAL_MS);
      return;
    }
    const properties = {
      what: EVENT_TEXT[kind],
      remote: formatRemote(connection),
      detail,
      suppressed,
      more: suppressed === 0 ? "" : ` (and ${suppressed} more since the last such line)`,
    };
    if (kind === "timeout") this.#logger.info("{what}: {remote}, {detail}{more}", properties);
    else this.#logger.warn("{what}: {remote}, {detail}{more}", properties);
  }

  #drain(now: number): void {
    for (const [kind, count] of this.#throttle.drain(now)) {
      this.#logger.warn("{what}: {count} more in the last {seconds} s", {
        what: EVENT_TEXT[kind as EventKind],
        count,
        seconds: LOG_INTERVAL_MS / 1000,
      });
    }
  }
}

function defaultAddressOf(connection: FrameTransport): string {
  const addr = connection.remoteAddr;
  return addr.transport === "tcp" ? addressKey(addr.hostname) : addr.transport;
}

function formatRemote(connection: FrameTransport): string {
  const addr = connection.remoteAddr;
  return addr.transport === "tcp" ? `${addr.hostname}:${addr.port}` : addr.transport;
}
