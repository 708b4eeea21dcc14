// This module is browser compatible.
/**
 * The cluster's in-process counters and gauges, rendered on its `/metrics` (Prometheus text)
 * and summarised on `/health`: players, connections, frames and bytes in and out, ticket
 * checks by Authenticate status, plugin messages, moves, per-player throttling (frames and bytes
 * dropped, flood kicks), the master link's state, tick
 * duration quantiles and, with fragments on, each populated fragment's players, update rate
 * and bytes sent.
 *
 * It only counts: it never touches a socket, and never labels a sample with anything a client
 * chose (player ids, names), so a client cannot grow the metric set.
 *
 * @module
 */

import type { FragmentStats } from "./fragment_grid.ts";
import {
  Counter,
  Gauge,
  Histogram,
  type MetricFamily,
  type MetricSample,
  type TrafficCounts,
  TrafficTotals,
} from "../shared/metrics.ts";
import type { MasterLinkState } from "./master_link.ts";
import { PreAuthMetrics } from "../shared/pre_auth_metrics.ts";
import { PLUGIN_FAILURES, type PluginFailure } from "./plugin_sandbox.ts";

/** The Authenticate statuses counted, as label values. */
/** An Authenticate status as a metric label: 20 ok, 40 invalid ticket, 44 expired or used, 50 unavailable. */
export type AuthLabel = "20" | "40" | "44" | "50";
const AUTH_REASONS: Readonly<Record<AuthLabel, string>> = {
  "20": "ok",
  "40": "invalid_ticket",
  "44": "expired_or_used",
  "50": "unavailable",
};

/**
 * Ticket checks by Authenticate status; each sample carries `status` and `reason` (its name).
 *
 * @example
 * ```ts
 * import { AuthResults } from "./metrics.ts";
 * import { renderPrometheus } from "../shared/metrics.ts";
 * import assert from "node:assert/strict";
 *
 * const results = new AuthResults();
 * results.inc("44");
 * assert.equal(results.get("44"), 1);
 * assert.match(
 *   renderPrometheus([results]),
 *   /^sustenet_cluster_auth_results_total\{status="44",reason="expired_or_used"\} 1$/m,
 * );
 * ```
 */
export class AuthResults implements MetricFamily {
  /** Always a counter. */
  readonly kind = "counter";
  /** The family name. */
  readonly name = "sustenet_cluster_auth_results_total";
  /** The help text. */
  readonly help = "Ticket checks by Authenticate status and reason";
  readonly #counts: Record<AuthLabel, number> = { "20": 0, "40": 0, "44": 0, "50": 0 };

  /** Counts one result. */
  inc(status: AuthLabel): void {
    this.#counts[status]++;
  }

  /** The count of one status. */
  get(status: AuthLabel): number {
    return this.#counts[status];
  }

  /** One sample per status. */
  samples(): Iterable<MetricSample> {
    return (Object.keys(AUTH_REASONS) as AuthLabel[]).map((status) => ({
      labels: { status, reason: AUTH_REASONS[status] },
      value: this.#counts[status],
    }));
  }
}

/**
 * The master link states reported, plus `disabled` for a cluster started without a master.
 *
 * @example
 * ```ts
 * import { ClusterMetrics, type ReportedLinkState } from "./metrics.ts";
 * import { renderPrometheus } from "../shared/metrics.ts";
 * import assert from "node:assert/strict";
 *
 * // A cluster started without a master shows its link as disabled on /metrics.
 * const state: ReportedLinkState = "disabled";
 * const metrics = new ClusterMetrics({
 *   players: () => 0,
 *   connections: () => [],
 *   masterLinkState: () => state,
 *   fragments: () => undefined,
 * });
 * const text = renderPrometheus(metrics.families());
 * assert.match(text, /^sustenet_cluster_master_link\{state="disabled"\} 1$/m);
 * ```
 */
export type ReportedLinkState = MasterLinkState | "disabled";
const LINK_STATES: readonly ReportedLinkState[] = [
  "connecting",
  "registering",
  "registered",
  "waiting",
  "stopped",
  "disabled",
];

/**
 * Where {@linkcode ClusterMetrics} reads its gauges and live traffic.
 *
 * @example
 * ```ts
 * import type { ClusterMetricsSources } from "./metrics.ts";
 * import assert from "node:assert/strict";
 *
 * const sources: ClusterMetricsSources = {
 *   players: () => 0,
 *   connections: () => [],
 *   masterLinkState: () => "disabled",
 *   fragments: () => undefined,
 * };
 * assert.equal(sources.players(), 0);
 * ```
 */
export interface ClusterMetricsSources {
  /** Authenticated players now. */
  readonly players: () => number;
  /** Open client connections (their traffic so far is added to the closed ones'). */
  readonly connections: () => Iterable<TrafficCounts>;
  /** The master link's state now. */
  readonly masterLinkState: () => ReportedLinkState;
  /** Per-fragment stats, or undefined when fragments are off. */
  readonly fragments: () => Iterable<FragmentStats> | undefined;
  /** Connections not authenticated yet; 0 if absent. */
  readonly pending?: () => number;
  /** The supervision counters of each URL plugin (summed on `/metrics`). */
  readonly plugins?: () => Iterable<PluginSupervisionCounts>;
}

/**
 * What a sandboxed plugin's host counts (a `WorkerPluginHost`'s stats fit).
 *
 * @example
 * ```ts
 * import { ClusterMetrics, type PluginSupervisionCounts } from "./metrics.ts";
 * import { renderPrometheus } from "../shared/metrics.ts";
 * import assert from "node:assert/strict";
 *
 * // A plugin that hung once and was restarted, as /metrics shows it.
 * const counts: PluginSupervisionCounts = {
 *   restarts: 1,
 *   failures: { hang: 1, crash: 0, memory: 0, exit: 0, malformed: 0 },
 *   droppedMessages: 0,
 *   droppedLogLines: 0,
 * };
 * const metrics = new ClusterMetrics({
 *   players: () => 0,
 *   connections: () => [],
 *   masterLinkState: () => "disabled",
 *   fragments: () => undefined,
 *   plugins: () => [counts],
 * });
 * const text = renderPrometheus(metrics.families());
 * assert.match(text, /^sustenet_cluster_plugin_kills_total\{reason="hang"\} 1$/m);
 * assert.match(text, /^sustenet_cluster_plugin_restarts_total 1$/m);
 * ```
 */
export interface PluginSupervisionCounts {
  /** Restarts scheduled. */
  readonly restarts: number;
  /** Sandboxes ended, by why. */
  readonly failures: Readonly<Record<PluginFailure, number>>;
  /** Player messages dropped because the plugin's queue was full. */
  readonly droppedMessages: number;
  /** Log lines dropped by the plugin's rate limit. */
  readonly droppedLogLines: number;
}

/** Ticks kept by a {@linkcode TickDurations} window (a minute at the default 20 Hz). */
const TICK_WINDOW = 1200;

/**
 * The durations of the latest ticks (a sliding window of {@linkcode TICK_WINDOW}), for the
 * p50 / p99 on `/metrics`. Recording is a store into a preallocated ring: no allocation per
 * tick; only a read sorts (a copy).
 *
 * @example
 * ```ts
 * import { TickDurations } from "./metrics.ts";
 * import assert from "node:assert/strict";
 *
 * const ticks = new TickDurations(4);
 * for (const s of [0.001, 0.002, 0.003, 0.004, 0.010]) ticks.record(s);
 * assert.equal(ticks.count, 4); // the oldest fell out of the window
 * assert.equal(ticks.quantile(0.5), 0.003);
 * assert.equal(ticks.quantile(0.99), 0.010);
 * ticks.reset();
 * assert.equal(ticks.quantile(0.99), 0);
 * ```
 */
export class TickDurations {
  readonly #ring: Float64Array;
  #next = 0;
  #count = 0;

  /**
   * Makes a new TickDurations.
   *
   * @param window How many of the latest ticks are kept.
   * @throws {RangeError} If `window` is not a positive integer.
   */
  constructor(window: number = TICK_WINDOW) {
    if (!Number.isInteger(window) || window < 1) {
      throw new RangeError(`tick window must be a positive integer, got ${window}`);
    }
    this.#ring = new Float64Array(window);
  }

  /** How many durations the window holds. */
  get count(): number {
    return this.#count;
  }

  /**
   * Adds one tick's duration.
   *
   * @param seconds How long the tick took.
   */
  record(seconds: number): void {
    this.#ring[this.#next] = seconds;
    this.#next = (this.#next + 1) % this.#ring.length;
    if (this.#count < this.#ring.length) this.#count++;
  }

  /**
   * The nearest-rank quantile of the window, in seconds (0 when empty).
   *
   * @param q The quantile, in [0, 1].
   */
  quantile(q: number): number {
    if (this.#count === 0) return 0;
    const sorted = this.#ring.slice(0, this.#count).sort();
    const rank = Math.min(this.#count, Math.max(1, Math.ceil(q * this.#count)));
    return sorted[rank - 1];
  }

  /** Empties the window (a benchmark starts its measurement). */
  reset(): void {
    this.#next = 0;
    this.#count = 0;
  }
}

/**
 * Every counter the cluster keeps, and the families `/metrics` renders.
 *
 * @example
 * ```ts
 * import { ClusterMetrics } from "./metrics.ts";
 * import { renderPrometheus } from "../shared/metrics.ts";
 * import assert from "node:assert/strict";
 *
 * const metrics = new ClusterMetrics({
 *   players: () => 2,
 *   connections: () => [{ framesIn: 3, framesOut: 4, bytesIn: 50, bytesOut: 60 }],
 *   masterLinkState: () => "registered",
 *   fragments: () => undefined,
 * });
 * metrics.authResult(20);
 * metrics.connectionClosed({ framesIn: 1, framesOut: 1, bytesIn: 10, bytesOut: 10 });
 * const text = renderPrometheus(metrics.families());
 * assert.match(text, /^sustenet_cluster_players 2$/m);
 * assert.match(text, /^sustenet_cluster_frames_in_total 4$/m);
 * assert.match(text, /^sustenet_cluster_auth_results_total\{status="20",reason="ok"\} 1$/m);
 * assert.match(text, /^sustenet_cluster_master_link\{state="registered"\} 1$/m);
 * ```
 */
export class ClusterMetrics {
  /** Client connections accepted. */
  readonly connectionsAccepted: Counter = new Counter(
    "sustenet_cluster_connections_accepted_total",
    "Client connections accepted",
  );
  /** Connections refused because the cluster was stopping (pending-slot refusals: preAuth). */
  readonly connectionsRefused: Counter = new Counter(
    "sustenet_cluster_connections_refused_total",
    "Client connections refused with ShuttingDown",
  );
  /** Connections not authenticated yet: pending-slot refusals, timeouts, bad input. */
  readonly preAuth: PreAuthMetrics;
  /**
   * Ticket checks by Authenticate status (20 ok, 40 invalid, 44 expired/used, 50 error/full),
   * rendered with the status's reason name as a second label.
   */
  readonly authResults: AuthResults = new AuthResults();
  /** Plugin commands received from players. */
  readonly pluginMessages: Counter = new Counter(
    "sustenet_cluster_plugin_messages_total",
    "Plugin commands received from players",
  );
  /** Plugin commands no plugin handles, answered with `Error(Unhandled)`. */
  readonly pluginUnhandled: Counter = new Counter(
    "sustenet_cluster_plugin_unhandled_total",
    "Plugin commands no plugin handles (answered with Error(Unhandled))",
  );
  /** Moves accepted (by the plugins, and by the fragment grid when it is on). */
  readonly movesAccepted: Counter = new Counter(
    "sustenet_cluster_moves_accepted_total",
    "Moves accepted",
  );
  /** Moves dropped by a plugin or refused by the fragment grid. */
  readonly movesRejected: Counter = new Counter(
    "sustenet_cluster_moves_rejected_total",
    "Moves rejected by a plugin or the fragment grid",
  );
  /** Players kicked by plugins. */
  readonly kicks: Counter = new Counter("sustenet_cluster_kicks_total", "Players kicked");
  /** Frames from players dropped by their rate limits (`player_*` keys) before any plugin. */
  readonly messagesThrottled: Counter = new Counter(
    "sustenet_cluster_messages_throttled_total",
    "Player frames dropped by per-player rate limits",
  );
  /** Bytes (frame lengths) of those frames. */
  readonly bytesThrottled: Counter = new Counter(
    "sustenet_cluster_bytes_throttled_total",
    "Bytes of player frames dropped by per-player rate limits",
  );
  /** Players kicked for staying over their rate limits for `player_flood_kick_ms`. */
  readonly floodKicks: Counter = new Counter(
    "sustenet_cluster_flood_kicks_total",
    "Players kicked for flooding (over their rate limits for player_flood_kick_ms)",
  );
  /** Registrations confirmed by a master. */
  readonly registrations: Counter = new Counter(
    "sustenet_cluster_master_registrations_total",
    "Registrations confirmed by the master",
  );

  /** Durations of the latest ticks (plugins' onTick, grid tick, encoding, queueing). */
  readonly tickSeconds: TickDurations = new TickDurations();
  /** Every tick's duration, for `/metrics` (a scraper computes its own quantiles). */
  readonly tickHistogram: Histogram = new Histogram(
    "sustenet_cluster_tick_seconds",
    "Tick duration (plugins' onTick plus fragment updates)",
    [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25],
  );
  /**
   * Each write to a client: how long its oldest bytes waited from queued to written (behind
   * the connection's previous write, then for the event loop to run it). A rising tail with a
   * calm event-loop lag is a congested write path, not a stalled loop (issue 24).
   */
  readonly writeDelay: Histogram = new Histogram(
    "sustenet_cluster_write_delay_seconds",
    "Time a client's bytes waited from queued to written by the socket",
    [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1],
  );
  /** Players dropped because they stopped reading (outgoing queue over its bound). */
  readonly slowConsumers: Counter = new Counter(
    "sustenet_cluster_slow_consumers_dropped_total",
    "Client connections closed because their outgoing queue passed max_queue_bytes",
  );

  /**
   * Records one tick's duration in the window and the histogram.
   *
   * @param seconds How long the tick took.
   *
   * @example
   * ```ts
   * import { ClusterMetrics } from "./metrics.ts";
   * import assert from "node:assert/strict";
   *
   * const metrics = new ClusterMetrics({
   *   players: () => 0,
   *   connections: () => [],
   *   masterLinkState: () => "disabled",
   *   fragments: () => undefined,
   * });
   * metrics.recordTick(0.003);
   * assert.equal(metrics.tickHistogram.count, 1);
   * assert.equal(metrics.tickSeconds.quantile(0.5), 0.003);
   * ```
   */
  recordTick(seconds: number): void {
    this.tickSeconds.record(seconds);
    this.tickHistogram.observe(seconds);
  }

  readonly #sources: ClusterMetricsSources;
  readonly #traffic: TrafficTotals;

  /**
   * Creates the counters, all at zero.
   *
   * @param sources Where gauges and live traffic are read.
   */
  constructor(sources: ClusterMetricsSources) {
    this.#sources = sources;
    this.#traffic = new TrafficTotals("sustenet_cluster", sources.connections, "clients");
    this.preAuth = new PreAuthMetrics("sustenet_cluster", sources.pending ?? (() => 0));
  }

  /**
   * Counts one ticket check's outcome.
   *
   * @param status The Authenticate status sent.
   *
   * @example
   * ```ts
   * import { ClusterMetrics } from "./metrics.ts";
   * import assert from "node:assert/strict";
   *
   * const metrics = new ClusterMetrics({
   *   players: () => 0,
   *   connections: () => [],
   *   masterLinkState: () => "disabled",
   *   fragments: () => undefined,
   * });
   * metrics.authResult(44);
   * assert.equal(metrics.authResults.get("44"), 1);
   * ```
   */
  authResult(status: 20 | 40 | 44 | 50): void {
    this.authResults.inc(String(status) as AuthLabel);
  }

  /**
   * Adds a closed connection's final traffic to the totals.
   *
   * @param counts Its counters at close.
   *
   * @example
   * ```ts
   * import { ClusterMetrics } from "./metrics.ts";
   * import assert from "node:assert/strict";
   *
   * const metrics = new ClusterMetrics({
   *   players: () => 0,
   *   connections: () => [],
   *   masterLinkState: () => "disabled",
   *   fragments: () => undefined,
   * });
   * metrics.connectionClosed({ framesIn: 2, framesOut: 0, bytesIn: 9, bytesOut: 0 });
   * assert.equal(metrics.total("bytesIn"), 9);
   * ```
   */
  connectionClosed(counts: TrafficCounts): void {
    this.#traffic.connectionClosed(counts);
  }

  /**
   * One traffic counter summed over closed and open connections.
   *
   * @param key Which counter.
   *
   * @example
   * ```ts
   * import { ClusterMetrics } from "./metrics.ts";
   * import assert from "node:assert/strict";
   *
   * const metrics = new ClusterMetrics({
   *   players: () => 0,
   *   connections: () => [{ framesIn: 1, framesOut: 2, bytesIn: 3, bytesOut: 4 }],
   *   masterLinkState: () => "disabled",
   *   fragments: () => undefined,
   * });
   * assert.equal(metrics.total("framesOut"), 2);
   * ```
   */
  total(key: keyof TrafficCounts): number {
    return this.#traffic.total(key);
  }

  /**
   * Every family, for `/metrics`.
   *
   * @example
   * ```ts
   * import { ClusterMetrics } from "./metrics.ts";
   * import assert from "node:assert/strict";
   *
   * const metrics = new ClusterMetrics({
   *   players: () => 0,
   *   connections: () => [],
   *   masterLinkState: () => "disabled",
   *   fragments: () => [{ id: 0 as never, fx: 1, fz: -2, players: 3, updateHz: 10, bytesOut: 99 }],
   * });
   * const names = metrics.families().map((f) => f.name);
   * assert.ok(names.includes("sustenet_cluster_fragment_players"));
   * ```
   */
  families(): MetricFamily[] {
    const sources = this.#sources;
    const families: MetricFamily[] = [
      new Gauge("sustenet_cluster_players", "Authenticated players", sources.players),
      new Gauge(
        "sustenet_cluster_connections",
        "Open client connections",
        () => this.#traffic.open(),
      ),
      ...this.#traffic.families(),
      this.connectionsAccepted,
      this.connectionsRefused,
      ...this.preAuth.families(),
      this.authResults,
      this.pluginMessages,
      this.pluginUnhandled,
      this.movesAccepted,
      this.movesRejected,
      this.kicks,
      this.messagesThrottled,
      this.bytesThrottled,
      this.floodKicks,
      this.registrations,
      this.tickHistogram,
      new Gauge(
        "sustenet_cluster_tick_p99_seconds",
        `p99 tick duration over the latest ${TICK_WINDOW} ticks (0 before any)`,
        () => this.tickSeconds.quantile(0.99),
      ),
      this.writeDelay,
      this.slowConsumers,
      new Gauge("sustenet_cluster_master_link", "Master link state (1 = current)", () => {
        const current = sources.masterLinkState();
        return LINK_STATES.map((state) => ({
          labels: { state },
          value: state === current ? 1 : 0,
        }));
      }),
    ];
    const plugins = sources.plugins;
    if (plugins !== undefined) {
      const sum = (pick: (c: PluginSupervisionCounts) => number) => {
        let total = 0;
        for (const counts of plugins()) total += pick(counts);
        return total;
      };
      const counter = (
        name: string,
        help: string,
        pick: (c: PluginSupervisionCounts) => number,
      ) => ({
        name,
        help,
        kind: "counter" as const,
        samples: () => [{ labels: {}, value: sum(pick) }],
      });
      families.push(
        {
          name: "sustenet_cluster_plugin_kills_total",
          help: "URL plugin sandboxes ended, by reason (hang, crash, memory, exit, malformed)",
          kind: "counter",
          samples: () =>
            PLUGIN_FAILURES.map((reason) => ({
              labels: { reason },
              value: sum((c) => c.failures[reason]),
            })),
        },
        counter(
          "sustenet_cluster_plugin_restarts_total",
          "URL plugin restarts",
          (c) => c.restarts,
        ),
        counter(
          "sustenet_cluster_plugin_dropped_messages_total",
          "Player messages dropped because a plugin's queue was full",
          (c) => c.droppedMessages,
        ),
        counter(
          "sustenet_cluster_plugin_dropped_log_lines_total",
          "Plugin log lines dropped by the per-plugin rate limit",
          (c) => c.droppedLogLines,
        ),
      );
    }
    const fragments = sources.fragments();
    if (fragments !== undefined) {
      const stats = [...fragments];
      const per = (pick: (s: FragmentStats) => number): MetricSample[] =>
        stats.map((s) => ({ labels: { fragment: `${s.fx},${s.fz}` }, value: pick(s) }));
      families.push(
        new Gauge(
          "sustenet_cluster_fragment_players",
          "Players per populated fragment",
          () => per((s) => s.players),
        ),
        new Gauge(
          "sustenet_cluster_fragment_update_hz",
          "Update rate per populated fragment",
          () => per((s) => s.updateHz),
        ),
        {
          name: "sustenet_cluster_fragment_bytes_out_total",
          help: "MoveBatch bytes encoded per populated fragment",
          kind: "counter",
          samples: () => per((s) => s.bytesOut),
        },
      );
    }
    return families;
  }
}
