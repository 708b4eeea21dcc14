// This module is browser compatible.
/**
 * The master's counters and gauges, rendered on `/metrics`: live clusters and connections,
 * frames and bytes in and out (closed connections plus open ones), cluster registration
 * failures, tickets issued, joins refused by reason, tickets refused by a rate limit and
 * reservations refused by the per-requester cap (by scope), reservations released unused,
 * connections closed for join abuse, clusters removed by reason. Plain numbers
 * bumped in place; this module must never do I/O or hold connection objects itself.
 *
 * @module
 */

import {
  Counter,
  Gauge,
  Histogram,
  LabeledCounter,
  type MetricFamily,
  type TrafficCounts,
  TrafficTotals,
} from "../shared/metrics.ts";
import { PreAuthMetrics } from "../shared/pre_auth_metrics.ts";
import type { JoinRefusalReason } from "./allocation.ts";
import { REGISTRATION_FAILURES, type RegistrationFailure } from "./cluster_registration.ts";
import { JOIN_LIMIT_SCOPES, type JoinLimitScope } from "./join_limiter.ts";
import type { ClusterRemovalReason } from "./registry.ts";

/** Where {@linkcode MasterMetrics} reads its gauges and live traffic. */
export interface MasterMetricsSources {
  /** Live clusters. */
  readonly clusters: () => number;
  /** Open connections (their traffic so far is added to the closed ones'). */
  readonly connections: () => Iterable<TrafficCounts>;
  /** Connections pending now (before their Hello, or registering); 0 if absent. */
  readonly pending?: () => number;
}

const JOIN_REFUSAL_REASONS: readonly JoinRefusalReason[] = [
  "unknown_cluster",
  "cluster_full",
  "no_cluster",
  "unauthorized",
  "rate_limited",
  "reservation_cap",
];
const REMOVAL_REASONS: readonly ClusterRemovalReason[] = [
  "deregistered",
  "heartbeat_timeout",
  "disconnected",
  "replaced",
  "shutdown",
];

/**
 * The master's metrics.
 *
 * @example
 * ```ts
 * import { MasterMetrics } from "./metrics.ts";
 * import { renderPrometheus } from "../shared/metrics.ts";
 * import assert from "node:assert/strict";
 *
 * const metrics = new MasterMetrics({ clusters: () => 2, connections: () => [] });
 * metrics.ticketsIssued.inc();
 * metrics.connectionClosed({ framesIn: 3, framesOut: 4, bytesIn: 50, bytesOut: 60 });
 * const text = renderPrometheus(metrics.families());
 * assert.match(text, /^sustenet_master_clusters 2$/m);
 * assert.match(text, /^sustenet_master_tickets_issued_total 1$/m);
 * assert.match(text, /^sustenet_master_frames_in_total 3$/m);
 * ```
 */
export class MasterMetrics {
  /** Join tickets issued. */
  readonly ticketsIssued: Counter = new Counter(
    "sustenet_master_tickets_issued_total",
    "Join tickets issued",
  );
  /**
   * Cluster registrations that failed, by reason (unknown key, wrong key, wrong proof, invalid
   * announcement, timeout, abandoned, out of order).
   */
  readonly authFailures: LabeledCounter<RegistrationFailure> = new LabeledCounter(
    "sustenet_master_auth_failures_total",
    "Cluster registrations that failed, by reason",
    "reason",
    REGISTRATION_FAILURES,
  );
  /** Clusters registered. */
  readonly clustersRegistered: Counter = new Counter(
    "sustenet_master_clusters_registered_total",
    "Clusters registered",
  );
  /** Connections refused a client slot (max_connections) or a cluster slot (max_clusters). */
  readonly connectionsRefused: Counter = new Counter(
    "sustenet_master_connections_refused_total",
    "Connections refused with ServerFull: client or cluster slots full",
  );
  /** Connections before their Hello and registering clusters: refusals, timeouts, bad input. */
  readonly preAuth: PreAuthMetrics;
  /** JoinCluster requests refused, by reason. */
  readonly joinsRefused: LabeledCounter<JoinRefusalReason> = new LabeledCounter(
    "sustenet_master_joins_refused_total",
    "JoinCluster requests refused",
    "reason",
    JOIN_REFUSAL_REASONS,
  );
  /** JoinCluster requests refused by a ticket rate limit, by the limit's scope. */
  readonly ticketsRateLimited: LabeledCounter<JoinLimitScope> = new LabeledCounter(
    "sustenet_master_tickets_rate_limited_total",
    "JoinCluster requests refused by a ticket rate limit",
    "scope",
    JOIN_LIMIT_SCOPES,
  );
  /** JoinCluster requests refused because the requester holds its most reservations. */
  readonly reservationsCapped: LabeledCounter<JoinLimitScope> = new LabeledCounter(
    "sustenet_master_reservations_capped_total",
    "JoinCluster requests refused by the per-requester reservation cap",
    "scope",
    JOIN_LIMIT_SCOPES,
  );
  /** Reservations released without the cluster's reported load growing to match. */
  readonly reservationsReleasedUnused: Counter = new Counter(
    "sustenet_master_reservations_released_unused_total",
    "Reserved slots released without the cluster reporting the player (unused tickets)",
  );
  /** Client connections closed for asking tickets while refused. */
  readonly joinAbuseClosed: Counter = new Counter(
    "sustenet_master_join_abuse_closed_total",
    "Client connections closed for asking join tickets while refused",
  );
  /** Time from a client's request (list, join) arriving to its answer, auth hook included. */
  readonly requestSeconds: Histogram = new Histogram(
    "sustenet_master_client_request_seconds",
    "Time from a client request (cluster list, join) to its answer, authentication included",
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
  );
  /** Clusters removed from the registry, by reason. */
  readonly clustersRemoved: LabeledCounter<ClusterRemovalReason> = new LabeledCounter(
    "sustenet_master_clusters_removed_total",
    "Clusters removed from the registry",
    "reason",
    REMOVAL_REASONS,
  );

  readonly #sources: MasterMetricsSources;
  readonly #traffic: TrafficTotals;

  /**
   * Makes a new MasterMetrics.
   *
   * @param sources Where gauges and live traffic are read.
   */
  constructor(sources: MasterMetricsSources) {
    this.#sources = sources;
    this.#traffic = new TrafficTotals("sustenet_master", sources.connections);
    this.preAuth = new PreAuthMetrics("sustenet_master", sources.pending ?? (() => 0));
  }

  /** Adds a closed connection's final traffic to the totals. */
  connectionClosed(counts: TrafficCounts): void {
    this.#traffic.connectionClosed(counts);
  }

  /** Total of one traffic counter over closed and open connections. */
  traffic(key: keyof TrafficCounts): number {
    return this.#traffic.total(key);
  }

  /** Every metric family, for `/metrics`. */
  families(): MetricFamily[] {
    const connections = this.#traffic.open();
    return [
      new Gauge("sustenet_master_clusters", "Live clusters", this.#sources.clusters),
      new Gauge("sustenet_master_connections", "Open connections", () => connections),
      ...this.#traffic.families(),
      this.authFailures,
      this.ticketsIssued,
      this.requestSeconds,
      this.joinsRefused,
      this.ticketsRateLimited,
      this.reservationsCapped,
      this.reservationsReleasedUnused,
      this.joinAbuseClosed,
      this.clustersRegistered,
      this.clustersRemoved,
      this.connectionsRefused,
      ...this.preAuth.families(),
    ];
  }
}
