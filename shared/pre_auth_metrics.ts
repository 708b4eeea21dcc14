// This module is browser compatible.
/**
 * The counters of connections that have not authenticated yet, shared by the master's and the
 * cluster's `/metrics`: pending connections now, pending slots refused by reason, deadlines
 * missed, and closes for bad input before authentication. It only counts; it never labels a
 * sample with anything a peer chose (no addresses), so a flood cannot grow the metric set.
 *
 * @module
 */

import { Counter, Gauge, LabeledCounter, type MetricFamily } from "./metrics.ts";

/**
 * Why a pending slot was refused: `pool_full` (the oldest pending connection was evicted to
 * make room for a new one), `per_address` (a new connection was over its address's limit).
 *
 * @example
 * ```ts
 * import { PreAuthMetrics, type PreAuthRefusal } from "./pre_auth_metrics.ts";
 * import { renderPrometheus } from "./metrics.ts";
 * import assert from "node:assert/strict";
 *
 * // Each refusal is counted under its reason.
 * const metrics = new PreAuthMetrics("sustenet_master", () => 0);
 * const reason: PreAuthRefusal = "per_address";
 * metrics.refused.inc(reason);
 * assert.match(
 *   renderPrometheus(metrics.families()),
 *   /^sustenet_master_preauth_refused_total\{reason="per_address"\} 1$/m,
 * );
 * ```
 */
export type PreAuthRefusal = "pool_full" | "per_address";

const REFUSALS: readonly PreAuthRefusal[] = ["pool_full", "per_address"];

/**
 * Pre-authentication counters of one server, named `<prefix>_preauth_*` and
 * `<prefix>_pending_connections`.
 *
 * @example
 * ```ts
 * import { PreAuthMetrics } from "./pre_auth_metrics.ts";
 * import { renderPrometheus } from "./metrics.ts";
 * import assert from "node:assert/strict";
 *
 * const metrics = new PreAuthMetrics("sustenet_cluster", () => 3);
 * metrics.refused.inc("per_address");
 * metrics.timeouts.inc();
 * const text = renderPrometheus(metrics.families());
 * assert.match(text, /^sustenet_cluster_pending_connections 3$/m);
 * assert.match(text, /^sustenet_cluster_preauth_refused_total\{reason="per_address"\} 1$/m);
 * assert.match(text, /^sustenet_cluster_preauth_timeouts_total 1$/m);
 * assert.match(text, /^sustenet_cluster_preauth_bad_input_total 0$/m);
 * ```
 */
export class PreAuthMetrics {
  /** Pending slots refused, by reason. */
  readonly refused: LabeledCounter<PreAuthRefusal>;
  /** Pending connections closed because they did not authenticate in time. */
  readonly timeouts: Counter;
  /** Pending connections closed for bad input (bad Hello, oversized or malformed frame, …). */
  readonly badInput: Counter;
  readonly #pending: Gauge;
  readonly #pendingNow: () => number;

  /**
   * Makes a new PreAuthMetrics.
   *
   * @param prefix Metric name prefix, e.g. `sustenet_master`.
   * @param pending Connections pending now.
   */
  constructor(prefix: string, pending: () => number) {
    this.refused = new LabeledCounter(
      `${prefix}_preauth_refused_total`,
      "Unauthenticated connections refused a pending slot: pool_full = oldest pending one " +
        "evicted for a new one, per_address = new one over its address's limit",
      "reason",
      REFUSALS,
    );
    this.timeouts = new Counter(
      `${prefix}_preauth_timeouts_total`,
      "Unauthenticated connections closed at their deadline",
    );
    this.badInput = new Counter(
      `${prefix}_preauth_bad_input_total`,
      "Unauthenticated connections closed for bad input (oversized or malformed frames)",
    );
    this.#pendingNow = pending;
    this.#pending = new Gauge(
      `${prefix}_pending_connections`,
      "Connections not authenticated yet",
      pending,
    );
  }

  /** Connections pending now. */
  get pending(): number {
    return this.#pendingNow();
  }

  /** The four families, for `/metrics`. */
  families(): MetricFamily[] {
    return [this.#pending, this.refused, this.timeouts, this.badInput];
  }
}
