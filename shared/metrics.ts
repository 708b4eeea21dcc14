// This module is browser compatible.
/**
 * In-process game counters and gauges, rendered in the Prometheus text exposition format.
 * Counters are plain numbers bumped on the hot path (no allocation, no labels lookup per
 * increment); `/metrics` and, later, OpenTelemetry read the same objects.
 *
 * @module
 */

/** Kind of a metric, as written in the `# TYPE` line. */
export type MetricKind = "counter" | "gauge" | "histogram";

/** One metric family: a name, help text, kind and labelled values. */
export interface MetricFamily {
  /** Metric name, e.g. `sustenet_master_tickets_issued_total`. */
  readonly name: string;
  /** One-line description (the `# HELP` line). */
  readonly help: string;
  /** The `# TYPE` of the family. */
  readonly kind: MetricKind;
  /** Current samples; called at render time. */
  samples(): Iterable<MetricSample>;
}

/** One sample line: optional name suffix (`_bucket`, `_sum`, `_count`), labels and a value. */
export interface MetricSample {
  /** Appended to the family name, e.g. `_bucket` for a histogram's bucket lines. */
  readonly suffix?: string;
  /** Label names and values of this sample. */
  readonly labels?: Readonly<Record<string, string | number>>;
  /** The sample's value. */
  readonly value: number;
}

/**
 * A monotonically increasing counter without labels.
 *
 * @example
 * ```ts
 * import { Counter } from "./metrics.ts";
 * import assert from "node:assert/strict";
 *
 * const frames = new Counter("sustenet_frames_in_total", "Frames received");
 * frames.inc();
 * frames.inc(4);
 * assert.equal(frames.value, 5);
 * ```
 */
export class Counter implements MetricFamily {
  /** Always `"counter"`. */
  readonly kind = "counter";
  /** Current value. */
  value = 0;
  /**
   * Makes a new Counter.
   *
   * @param name Metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`).
   * @param help One-line description.
   */
  constructor(readonly name: string, readonly help: string) {
    assertMetricName(name);
  }
  /** Adds `n` (default 1); negative values are refused. */
  inc(n = 1): void {
    if (n < 0) throw new RangeError(`counter ${this.name} cannot decrease (got ${n})`);
    this.value += n;
  }
  /** The single sample. */
  samples(): Iterable<MetricSample> {
    return [{ value: this.value }];
  }
}

/**
 * A gauge whose value is read from a function at render time (e.g. the registry size).
 *
 * @example
 * ```ts
 * import { Gauge } from "./metrics.ts";
 * import assert from "node:assert/strict";
 *
 * const players = new Set([1, 2, 3]);
 * const g = new Gauge("sustenet_players", "Connected players", () => players.size);
 * assert.deepEqual([...g.samples()], [{ value: 3 }]);
 * ```
 */
export class Gauge implements MetricFamily {
  /** Always `"gauge"`. */
  readonly kind = "gauge";
  /**
   * Makes a new Gauge.
   *
   * @param name Metric name.
   * @param help One-line description.
   * @param read Returns the current value, or labelled samples.
   */
  constructor(
    readonly name: string,
    readonly help: string,
    readonly read: () => number | Iterable<MetricSample>,
  ) {
    assertMetricName(name);
  }
  /** Samples read now. */
  samples(): Iterable<MetricSample> {
    const v = this.read();
    return typeof v === "number" ? [{ value: v }] : v;
  }
}

/**
 * A histogram with fixed upper bounds (Prometheus `_bucket{le}`, `_sum`, `_count`). Observing
 * is a loop over the bounds and two additions into preallocated arrays: nothing is allocated
 * per observation, so it can sit on a hot path (a tick, a timer).
 *
 * @example
 * ```ts
 * import { Histogram, renderPrometheus } from "./metrics.ts";
 * import assert from "node:assert/strict";
 *
 * const h = new Histogram("demo_seconds", "Demo", [0.01, 0.1]);
 * h.observe(0.005);
 * h.observe(0.05);
 * h.observe(3);
 * assert.equal(h.count, 3);
 * const text = renderPrometheus([h]);
 * assert.match(text, /^demo_seconds_bucket\{le="0.01"\} 1$/m);
 * assert.match(text, /^demo_seconds_bucket\{le="0.1"\} 2$/m);
 * assert.match(text, /^demo_seconds_bucket\{le="\+Inf"\} 3$/m);
 * assert.match(text, /^demo_seconds_count 3$/m);
 * ```
 */
export class Histogram implements MetricFamily {
  /** Always a histogram. */
  readonly kind = "histogram";
  /** Upper bounds, ascending, without +Inf. */
  readonly bounds: readonly number[];
  readonly #counts: Float64Array;
  #sum = 0;
  #count = 0;

  /**
   * Makes a new Histogram.
   *
   * @param name Metric name (without `_bucket`).
   * @param help One-line description.
   * @param bounds Upper bounds, strictly ascending, finite.
   * @throws {RangeError} If the bounds are empty, not ascending or not finite.
   */
  constructor(readonly name: string, readonly help: string, bounds: readonly number[]) {
    assertMetricName(name);
    if (bounds.length === 0) throw new RangeError(`histogram ${name} needs at least one bound`);
    for (let i = 0; i < bounds.length; i++) {
      if (!Number.isFinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1])) {
        throw new RangeError(`histogram ${name}: bounds must be finite and strictly ascending`);
      }
    }
    this.bounds = Object.freeze([...bounds]);
    this.#counts = new Float64Array(bounds.length + 1);
  }

  /** Observations so far. */
  get count(): number {
    return this.#count;
  }

  /** Sum of the observed values. */
  get sum(): number {
    return this.#sum;
  }

  /** Records one value (the last bucket is +Inf). */
  observe(value: number): void {
    let i = 0;
    while (i < this.bounds.length && value > this.bounds[i]) i++;
    this.#counts[i]++;
    this.#sum += value;
    this.#count++;
  }

  /**
   * An estimate of quantile `q` from the buckets: the upper bound of the bucket where it falls
   * (the largest finite bound when it falls in +Inf; 0 when empty).
   *
   * @param q The quantile, in [0, 1].
   */
  quantile(q: number): number {
    if (this.#count === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.#count));
    let seen = 0;
    for (let i = 0; i < this.bounds.length; i++) {
      seen += this.#counts[i];
      if (seen >= rank) return this.bounds[i];
    }
    return this.bounds[this.bounds.length - 1];
  }

  /** Bucket lines (cumulative), then `_sum` and `_count`. */
  samples(): Iterable<MetricSample> {
    const out: MetricSample[] = [];
    let cumulative = 0;
    for (let i = 0; i < this.bounds.length; i++) {
      cumulative += this.#counts[i];
      out.push({ suffix: "_bucket", labels: { le: String(this.bounds[i]) }, value: cumulative });
    }
    out.push({ suffix: "_bucket", labels: { le: "+Inf" }, value: this.#count });
    out.push({ suffix: "_sum", value: this.#sum });
    out.push({ suffix: "_count", value: this.#count });
    return out;
  }
}

/** The traffic counters of one connection (a `FrameTransport` fits). */
export interface TrafficCounts {
  /** Frames received. */
  readonly framesIn: number;
  /** Frames written. */
  readonly framesOut: number;
  /** Bytes read. */
  readonly bytesIn: number;
  /** Bytes written. */
  readonly bytesOut: number;
}

/**
 * A counter with one label whose values are known up front (all rendered, zeros included).
 *
 * @example
 * ```ts
 * import { LabeledCounter } from "./metrics.ts";
 * import assert from "node:assert/strict";
 *
 * const refused = new LabeledCounter("x_total", "X", "reason", ["a", "b"] as const);
 * refused.inc("b");
 * assert.equal(refused.get("b"), 1);
 * assert.deepEqual([...refused.samples()], [
 *   { labels: { reason: "a" }, value: 0 },
 *   { labels: { reason: "b" }, value: 1 },
 * ]);
 * ```
 */
export class LabeledCounter<L extends string> implements MetricFamily {
  /** Always a counter. */
  readonly kind = "counter";
  readonly #values: Map<L, number>;

  /**
   * Makes a new LabeledCounter.
   *
   * @param name Metric name.
   * @param help One-line description.
   * @param label The label's name.
   * @param values Every label value.
   */
  constructor(
    readonly name: string,
    readonly help: string,
    readonly label: string,
    values: readonly L[],
  ) {
    assertMetricName(name);
    this.#values = new Map(values.map((v) => [v, 0]));
  }

  /** Adds one to `value`'s count. */
  inc(value: L): void {
    this.#values.set(value, (this.#values.get(value) ?? 0) + 1);
  }

  /** The count of `value`. */
  get(value: L): number {
    return this.#values.get(value) ?? 0;
  }

  /** One sample per label value. */
  samples(): Iterable<MetricSample> {
    return [...this.#values].map(([value, count]) => ({
      labels: { [this.label]: value },
      value: count,
    }));
  }
}

/**
 * Frames and bytes in and out summed over a server's connections: the closed ones' final
 * counts plus the live ones' current counts, read at render time (nothing per frame).
 *
 * @example
 * ```ts
 * import { renderPrometheus, TrafficTotals } from "./metrics.ts";
 * import assert from "node:assert/strict";
 *
 * const live = [{ framesIn: 1, framesOut: 2, bytesIn: 3, bytesOut: 4 }];
 * const traffic = new TrafficTotals("demo", () => live);
 * traffic.connectionClosed({ framesIn: 10, framesOut: 0, bytesIn: 0, bytesOut: 0 });
 * assert.equal(traffic.total("framesIn"), 11);
 * assert.match(renderPrometheus(traffic.families()), /^demo_bytes_out_total 4$/m);
 * ```
 */
export class TrafficTotals {
  readonly #closed = { framesIn: 0, framesOut: 0, bytesIn: 0, bytesOut: 0 };
  readonly #families: readonly MetricFamily[];

  /**
   * @param prefix Metric name prefix, e.g. `sustenet_master`.
   * @param live The open connections.
   * @param peers Who the traffic is with, for the help text (e.g. `clients`).
   */
  constructor(
    prefix: string,
    readonly live: () => Iterable<TrafficCounts>,
    peers?: string,
  ) {
    const scope = peers === undefined ? "" : ` (${peers})`;
    const family = (key: keyof TrafficCounts, name: string, help: string): MetricFamily => {
      assertMetricName(`${prefix}_${name}`);
      return {
        name: `${prefix}_${name}`,
        help: help + scope,
        kind: "counter",
        samples: () => [{ value: this.total(key) }],
      };
    };
    this.#families = [
      family("framesIn", "frames_in_total", "Frames received"),
      family("framesOut", "frames_out_total", "Frames sent"),
      family("bytesIn", "bytes_in_total", "Bytes received"),
      family("bytesOut", "bytes_out_total", "Bytes sent"),
    ];
  }

  /** Adds a closed connection's final counts. */
  connectionClosed(counts: TrafficCounts): void {
    this.#closed.framesIn += counts.framesIn;
    this.#closed.framesOut += counts.framesOut;
    this.#closed.bytesIn += counts.bytesIn;
    this.#closed.bytesOut += counts.bytesOut;
  }

  /** One counter over closed and open connections. */
  total(key: keyof TrafficCounts): number {
    let sum = this.#closed[key];
    for (const connection of this.live()) sum += connection[key];
    return sum;
  }

  /** The number of open connections. */
  open(): number {
    let n = 0;
    for (const _ of this.live()) n++;
    return n;
  }

  /** The four counter families. */
  families(): readonly MetricFamily[] {
    return this.#families;
  }
}

/**
 * Renders metric families in the Prometheus text format (version 0.0.4).
 *
 * @example
 * ```ts
 * import { Counter, renderPrometheus } from "./metrics.ts";
 * import assert from "node:assert/strict";
 *
 * const c = new Counter("sustenet_tickets_issued_total", "Join tickets issued");
 * c.inc(2);
 * assert.equal(
 *   renderPrometheus([c]),
 *   "# HELP sustenet_tickets_issued_total Join tickets issued\n" +
 *     "# TYPE sustenet_tickets_issued_total counter\n" +
 *     "sustenet_tickets_issued_total 2\n",
 * );
 * ```
 */
export function renderPrometheus(families: Iterable<MetricFamily>): string {
  let out = "";
  for (const f of families) {
    out += `# HELP ${f.name} ${f.help.replaceAll("\\", "\\\\").replaceAll("\n", "\\n")}\n`;
    out += `# TYPE ${f.name} ${f.kind}\n`;
    for (const s of f.samples()) {
      out += `${f.name}${s.suffix ?? ""}${renderLabels(s.labels)} ${formatValue(s.value)}\n`;
    }
  }
  return out;
}

/** Content type of {@linkcode renderPrometheus} output. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

function renderLabels(labels: MetricSample["labels"]): string {
  if (!labels) return "";
  const parts = Object.entries(labels).map(([k, v]) =>
    `${k}="${String(v).replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n")}"`
  );
  return parts.length ? `{${parts.join(",")}}` : "";
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

function assertMetricName(name: string): void {
  if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(name)) {
    throw new RangeError(`invalid metric name "${name}"`);
  }
}
