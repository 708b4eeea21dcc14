/**
 * The master's connection slots: three pools that never take from each other. A new connection
 * is pending (a {@linkcode PendingGate}: bounded pool, per-address limit, small read bounds)
 * until its Hello. A client then takes a client slot (`max_connections`) and leaves the pending
 * pool, keeping the small read bounds (clients only send small requests). A cluster stays
 * pending while it registers (its deadline is `registration_timeout_ms`) and takes a cluster
 * slot (`max_clusters`) once registered, when its link gets the full frame bound. So idle
 * clients can never keep a cluster from registering, registering peers can never hold a
 * cluster slot, and neither can starve the other.
 *
 * It must never refuse a connection without an Error frame saying why, never count a
 * connection in two pools, and never write a log line per refusal (one per pool per 10 s, with
 * how many were left out).
 *
 * @module
 */

import type { Logger } from "@logtape/logtape";
import { LogThrottle } from "../shared/log_throttle.ts";
import { PendingGate } from "../shared/pending_gate.ts";
import type { PreAuthMetrics } from "../shared/pre_auth_metrics.ts";
import { ErrorCode } from "../shared/protocol/protocol_error.ts";
import type { FrameTransport } from "../shared/frame_session.ts";
import { closeWith, type ConnectionAction } from "./connection_action.ts";
import type { PeerRole } from "./hello.ts";

/**
 * Options of {@linkcode ConnectionSlots}.
 *
 * @example
 * ```ts
 * import type { ConnectionSlotsOptions } from "./connection_slots.ts";
 * import { PreAuthMetrics } from "../shared/pre_auth_metrics.ts";
 * import { getLogger } from "@logtape/logtape";
 * import assert from "node:assert/strict";
 *
 * const options: ConnectionSlotsOptions = {
 *   maxClients: 0,
 *   maxClusters: 1024,
 *   maxPending: 1024,
 *   maxPendingPerAddress: 64,
 *   preAuth: new PreAuthMetrics("demo", () => 0),
 *   onRefused: () => {},
 *   logger: getLogger(["demo"]),
 * };
 * assert.equal(options.maxClusters, 1024);
 * ```
 */
export interface ConnectionSlotsOptions {
  /** Most client connections (0 = no limit). */
  readonly maxClients: number;
  /** Most registered clusters (0 = no limit). */
  readonly maxClusters: number;
  /** Most pending connections. */
  readonly maxPending: number;
  /** Most pending connections from one address. */
  readonly maxPendingPerAddress: number;
  /** Pre-authentication counters. */
  readonly preAuth: PreAuthMetrics;
  /** Called when a client or cluster slot is refused (the pool is full). */
  readonly onRefused: (pool: "clients" | "clusters") => void;
  /** Where refusals are logged (pending ones rate-limited). */
  readonly logger: Logger;
}

/**
 * The master's pending, client and cluster pools.
 *
 * @example
 * ```ts
 * import { ConnectionSlots } from "./connection_slots.ts";
 * import { PreAuthMetrics } from "../shared/pre_auth_metrics.ts";
 * import { getLogger } from "@logtape/logtape";
 * import assert from "node:assert/strict";
 *
 * const slots = new ConnectionSlots({
 *   maxClients: 10,
 *   maxClusters: 2,
 *   maxPending: 100,
 *   maxPendingPerAddress: 10,
 *   preAuth: new PreAuthMetrics("demo", () => 0),
 *   onRefused: () => {},
 *   logger: getLogger(["demo"]),
 * });
 * assert.deepEqual([slots.pending, slots.clients, slots.clusters], [0, 0, 0]);
 * slots.stop();
 * ```
 */
export class ConnectionSlots {
  readonly #gate: PendingGate;
  readonly #clients = new Set<FrameTransport>();
  readonly #clusters = new Set<FrameTransport>();
  readonly #maxClients: number;
  readonly #maxClusters: number;
  readonly #onRefused: (pool: "clients" | "clusters") => void;
  readonly #logger: Logger;
  readonly #throttle = new LogThrottle({ intervalMs: 10_000, maxKeys: 2 });
  readonly #now: () => number = () => performance.now();

  /**
   * @param options The limits, counters and logger.
   * @throws {RangeError} If a pending bound is not an integer ≥ 1.
   */
  constructor(options: ConnectionSlotsOptions) {
    this.#gate = new PendingGate({
      maxPending: options.maxPending,
      maxPerAddress: options.maxPendingPerAddress,
      metrics: options.preAuth,
      logger: options.logger,
    });
    this.#maxClients = options.maxClients;
    this.#maxClusters = options.maxClusters;
    this.#onRefused = options.onRefused;
    this.#logger = options.logger;
  }

  /** Connections before their Hello, and clusters still registering. */
  get pending(): number {
    return this.#gate.size;
  }

  /** Client connections (after their Hello). */
  get clients(): number {
    return this.#clients.size;
  }

  /** Registered cluster links. */
  get clusters(): number {
    return this.#clusters.size;
  }

  /**
   * A new connection: pending, or refused (then it is being closed with `Error(ServerFull)`).
   *
   * @param connection The accepted connection.
   * @returns `true` if it may be served.
   */
  accept(connection: FrameTransport): boolean {
    if (!this.#gate.accept(connection)) return false;
    connection.closed.then(() => {
      this.#clients.delete(connection);
      this.#clusters.delete(connection);
    });
    return true;
  }

  /**
   * The connection's Hello was accepted as `role`: a client takes a client slot now; a cluster
   * stays pending until registered, unless every cluster slot is already taken.
   *
   * @param connection The connection.
   * @param role Its role.
   * @returns A close action if the slot is refused, else `undefined`.
   */
  hello(connection: FrameTransport, role: PeerRole): ConnectionAction | undefined {
    if (role === "cluster") return this.#clusterRoom();
    this.#gate.leave(connection);
    if (this.#maxClients > 0 && this.#clients.size >= this.#maxClients) {
      this.#onRefused("clients");
      const suppressed = this.#throttle.admit("clients", this.#now());
      if (suppressed !== null) {
        this.#logger.info(
          "client connection refused: {count} client connections is the limit{more}",
          { count: this.#maxClients, suppressed, more: more(suppressed) },
        );
      }
      return closeWith(ErrorCode.ServerFull, "server full");
    }
    this.#clients.add(connection);
    return undefined;
  }

  /**
   * The cluster on `connection` registered: it leaves the pending pool, its read bounds are
   * lifted, and it takes a cluster slot.
   *
   * @param connection The connection.
   * @returns A close action if every cluster slot is taken, else `undefined`.
   */
  registered(connection: FrameTransport): ConnectionAction | undefined {
    const refusal = this.#clusterRoom();
    if (refusal !== undefined) return refusal;
    this.#gate.authenticated(connection);
    this.#clusters.add(connection);
    return undefined;
  }

  /** Writes the counts of refusals still held back and stops the gate's timer. */
  stop(): void {
    this.#gate.stop();
    for (const [pool, count] of this.#throttle.drain(Number.POSITIVE_INFINITY)) {
      this.#logger.info("{count} more connections refused a {pool} slot", {
        count,
        pool: pool === "clients" ? "client" : "cluster",
      });
    }
  }

  #clusterRoom(): ConnectionAction | undefined {
    if (this.#maxClusters === 0 || this.#clusters.size < this.#maxClusters) return undefined;
    this.#onRefused("clusters");
    const suppressed = this.#throttle.admit("clusters", this.#now());
    if (suppressed !== null) {
      this.#logger.warn(
        "cluster refused: {count} registered clusters is the limit (max_clusters){more}",
        { count: this.#maxClusters, suppressed, more: more(suppressed) },
      );
    }
    return closeWith(ErrorCode.ServerFull, "master full: cluster limit reached");
  }
}

/** The "left out" suffix of a throttled line. */
function more(suppressed: number): string {
  return suppressed === 0 ? "" : ` (and ${suppressed} more since the last such line)`;
}
