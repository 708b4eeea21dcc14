/**
 * OpenTelemetry through Deno's built-in support (`OTEL_DENO=true`; exporter by the standard
 * `OTEL_*` variables, e.g. `OTEL_EXPORTER_OTLP_PROTOCOL=console`): the tracer and meter
 * Sustenet's spans and game metrics use, and a bridge that exports every `/metrics` counter and
 * gauge as an OTel observable instrument (same names, labels as attributes), so both read the
 * same in-process numbers. Without `OTEL_DENO` the API is a no-op: spans cost an object, the
 * observable callbacks never run.
 *
 * Spans are only made per join, per registration and per plugin lifecycle call, never per
 * frame or tick.
 *
 * @module
 */
import { type Attributes, metrics, type Span, SpanStatusCode, trace } from "@opentelemetry/api";
import type { MetricFamily } from "./metrics.ts";
import { SUSTENET_VERSION } from "./runtime_metrics.ts";

export type { Span } from "@opentelemetry/api";

/** Sustenet's tracer (scope `sustenet`). */
export const tracer = trace.getTracer("sustenet", SUSTENET_VERSION);

/**
 * Runs `fn` inside a span named `name`; the span ends when `fn` settles, with an error status
 * (and the exception recorded) if it throws.
 *
 * @param name Span name, e.g. `sustenet.master.join`.
 * @param attributes Initial attributes.
 * @param fn The work; gets the span to add attributes.
 *
 * @example
 * ```ts
 * import { inSpan } from "./telemetry.ts";
 * import assert from "node:assert/strict";
 *
 * const value = await inSpan("demo", { "demo.attr": 1 }, (span) => {
 *   span.setAttribute("demo.more", "x");
 *   return Promise.resolve(42);
 * });
 * assert.equal(value, 42);
 * ```
 */
export async function inSpan<T>(
  name: string,
  attributes: Attributes,
  fn: (span: Span) => Promise<T> | T,
): Promise<T> {
  return await tracer.startActiveSpan(name, { attributes }, async (span) => {
    try {
      return await fn(span);
    } catch (error) {
      span.recordException(error instanceof Error ? error : String(error));
      span.setStatus({ code: SpanStatusCode.ERROR });
      throw error;
    } finally {
      span.end();
    }
  });
}

/**
 * A span that is already over: for events whose start and end the caller measured itself
 * (a ticket check, a registration step).
 *
 * @param name Span name.
 * @param attributes Its attributes.
 * @param startEpochMs When it started, Unix ms (`Date.now()` then).
 * @param error Set for a failed outcome: the span's status is ERROR with this message.
 *
 * @example
 * ```ts
 * import { recordSpan } from "./telemetry.ts";
 *
 * const start = Date.now();
 * recordSpan("demo.done", { "demo.ok": true }, start);
 * ```
 */
export function recordSpan(
  name: string,
  attributes: Attributes,
  startEpochMs: number,
  error?: string,
): void {
  const span = tracer.startSpan(name, { attributes, startTime: startEpochMs });
  if (error !== undefined) span.setStatus({ code: SpanStatusCode.ERROR, message: error });
  span.end();
}

/**
 * Exports metric families as OTel observable instruments (counters as observable counters,
 * gauges as observable gauges; histograms are left to `/metrics`). Call once per server; the
 * families are read at each OTel collection.
 *
 * @param families Returns the families (the same objects `/metrics` renders).
 * @param names The family names to export (read once, at registration).
 *
 * @example
 * ```ts
 * import { exportMetricFamilies } from "./telemetry.ts";
 * import { Counter } from "./metrics.ts";
 *
 * const joins = new Counter("sustenet_demo_joins_total", "Joins");
 * exportMetricFamilies(() => [joins]);
 * ```
 */
export function exportMetricFamilies(
  families: () => Iterable<MetricFamily>,
  names: Iterable<string> = [...families()].map((f) => f.name),
): void {
  const meter = metrics.getMeter("sustenet", SUSTENET_VERSION);
  const kinds = new Map<string, MetricFamily["kind"]>();
  for (const family of families()) kinds.set(family.name, family.kind);
  for (const name of names) {
    const kind = kinds.get(name);
    if (kind === undefined || kind === "histogram") continue;
    const family = () => {
      for (const f of families()) if (f.name === name) return f;
      return undefined;
    };
    const help = [...families()].find((f) => f.name === name)?.help ?? name;
    const instrument = kind === "counter"
      ? meter.createObservableCounter(name, { description: help })
      : meter.createObservableGauge(name, { description: help });
    instrument.addCallback((result) => {
      for (const sample of family()?.samples() ?? []) {
        result.observe(sample.value, sample.labels as Attributes | undefined);
      }
    });
  }
}
