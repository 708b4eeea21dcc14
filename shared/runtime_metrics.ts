/**
 * Process-level metrics every server exports on `/metrics`: build info, resident memory, heap,
 * CPU time, start time, event-loop lag (a histogram of timer lateness sampled every few ms), the
 * event loop's wait for a CPU core (Linux: lag with wait rising = too few cores, not own work) and
 * garbage-collection pauses (count and seconds by V8 GC type, read from `node:v8`'s
 * `GCProfiler`, which Deno 2.9 implements; `PerformanceObserver` "gc" entries are never
 * delivered by Deno, so they are not used).
 *
 * Server-only (uses `Deno.*` and `node:*`). The sampler's timer is unref'd: it never keeps a
 * process alive, and {@linkcode RuntimeMetrics.stop} ends it.
 *
 * @module
 */
import v8 from "node:v8";
import process from "node:process";
import denoJson from "../deno.json" with { type: "json" };
import { cpuWaitMs } from "./cpu_wait.ts";
import { EventLoopLagSampler } from "./event_loop_lag.ts";
import { Gauge, Histogram, type MetricFamily } from "./metrics.ts";

/** The package version, from deno.json. */
export const SUSTENET_VERSION: string = denoJson.version;

/** Upper bounds of the event-loop lag histogram, seconds. */
const LAG_BOUNDS = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/** How often the GC profiler is read (and restarted, so its record list stays short). */
const GC_READ_MS = 2000;

/** Options of {@linkcode RuntimeMetrics}. */
export interface RuntimeMetricsOptions {
  /** Role label of `sustenet_build_info`, e.g. `master`. */
  readonly role: string;
  /**
   * How often the event-loop lag is sampled, ms.
   * @default {5}
   */
  readonly lagIntervalMs?: number;
  /**
   * Record GC pauses with V8's `GCProfiler`. Off by default: it collects heap statistics at
   * every collection, and under relay load that cost the sealed cluster about 40 % of its
   * capacity (bench, same machine: 190 clients confirmed with it, 321-330 without). The
   * servers turn it on with the environment variable `SUSTENET_GC_METRICS=1`.
   * @default {false}
   */
  readonly gcMetrics?: boolean;
}

/**
 * Whether `SUSTENET_GC_METRICS=1` asks the servers for GC pause metrics (false without env
 * permission). Tested in `tests/runtime_metrics_test.ts`.
 */
export function gcMetricsRequested(): boolean {
  try {
    return Deno.env.get("SUSTENET_GC_METRICS") === "1";
  } catch {
    return false; // no env permission: the default, off
  }
}

/** The GC statistics V8 keeps per collection (the part read here). */
interface GcStatistic {
  readonly gcType: string;
  /** Nanoseconds (measured on Deno 2.9.6 against `--trace-gc`). */
  readonly cost: number;
}

/**
 * Build, process, event-loop and GC metrics of this process.
 *
 * @example
 * ```ts
 * import { RuntimeMetrics } from "./runtime_metrics.ts";
 * import { renderPrometheus } from "./metrics.ts";
 * import assert from "node:assert/strict";
 *
 * const runtime = new RuntimeMetrics({ role: "master" });
 * await new Promise((resolve) => setTimeout(resolve, 30));
 * const text = renderPrometheus(runtime.families());
 * runtime.stop();
 * assert.match(text, /^sustenet_build_info\{version="[^"]+",role="master",deno="[^"]+"\} 1$/m);
 * assert.match(text, /^sustenet_event_loop_lag_seconds_count [1-9]/m);
 * assert.match(text, /^process_resident_memory_bytes [1-9]/m);
 * ```
 */
export class RuntimeMetrics {
  /** Timer lateness, seconds: how much later than asked each sampling timer fired. */
  readonly lag: Histogram = new Histogram(
    "sustenet_event_loop_lag_seconds",
    "Event-loop lag: how late a timer fired, sampled every few ms",
    LAG_BOUNDS,
  );
  /** The longest lag seen so far, seconds. */
  maxLagSeconds = 0;
  readonly #role: string;
  readonly #lagSampler: EventLoopLagSampler;
  #gcTimer: ReturnType<typeof setInterval> | undefined;
  #gcProfiler: InstanceType<typeof v8.GCProfiler> | undefined;
  readonly #gcSeconds = new Map<string, number>();
  readonly #gcCount = new Map<string, number>();
  #stopped = false;

  /** @param options Role label and sampling interval. */
  constructor(options: RuntimeMetricsOptions) {
    this.#role = options.role;
    this.#lagSampler = new EventLoopLagSampler(options.lagIntervalMs ?? 5, (lateMs) => {
      const late = lateMs / 1000;
      this.lag.observe(late);
      if (late > this.maxLagSeconds) this.maxLagSeconds = late;
    });
    if (options.gcMetrics === true) this.#startGcProfiler();
  }

  #startGcProfiler(): void {
    try {
      this.#gcProfiler = new v8.GCProfiler();
      this.#gcProfiler.start();
    } catch (error) {
      // A runtime without GCProfiler: the GC families stay empty, everything else works.
      this.#gcProfiler = undefined;
      console.error(`sustenet: GC metrics unavailable: ${String(error)}`);
      return;
    }
    const timer = setInterval(() => this.#readGc(), GC_READ_MS);
    Deno.unrefTimer(timer);
    this.#gcTimer = timer;
  }

  /** Folds what the profiler recorded into the totals and starts a fresh one. */
  #readGc(): void {
    const profiler = this.#gcProfiler;
    if (profiler === undefined) return;
    const result = profiler.stop() as { statistics?: readonly GcStatistic[] } | undefined;
    for (const s of result?.statistics ?? []) {
      this.#gcSeconds.set(s.gcType, (this.#gcSeconds.get(s.gcType) ?? 0) + s.cost / 1e9);
      this.#gcCount.set(s.gcType, (this.#gcCount.get(s.gcType) ?? 0) + 1);
    }
    if (this.#stopped) return;
    this.#gcProfiler = new v8.GCProfiler();
    this.#gcProfiler.start();
  }

  /** GC pause seconds so far, summed over types (read now). */
  gcPauseSeconds(): number {
    this.#readGc();
    let total = 0;
    for (const v of this.#gcSeconds.values()) total += v;
    return total;
  }

  /** Stops sampling (idempotent). */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#lagSampler.stop();
    if (this.#gcTimer !== undefined) clearInterval(this.#gcTimer);
    this.#readGc();
    this.#gcProfiler = undefined;
  }

  /** Every family, for `/metrics`. */
  families(): MetricFamily[] {
    this.#readGc();
    const byType = (map: Map<string, number>) => () =>
      [...map].map(([type, value]) => ({ labels: { type }, value }));
    const memory = Deno.memoryUsage();
    const cpu = process.cpuUsage();
    return [
      new Gauge("sustenet_build_info", "Version of Sustenet and Deno running (always 1)", () => [
        {
          labels: { version: SUSTENET_VERSION, role: this.#role, deno: Deno.version.deno },
          value: 1,
        },
      ]),
      new Gauge("process_resident_memory_bytes", "Resident memory size in bytes", () => memory.rss),
      new Gauge("process_heap_bytes", "V8 heap used in bytes", () => memory.heapUsed),
      {
        name: "process_cpu_seconds_total",
        help: "User and system CPU time spent in seconds",
        kind: "counter",
        samples: () => [{ value: (cpu.user + cpu.system) / 1e6 }],
      },
      new Gauge(
        "process_start_time_seconds",
        "Start time of the process since the Unix epoch in seconds",
        () => Math.round((Date.now() - performance.now()) / 10) / 100,
      ),
      this.lag,
      new Gauge(
        "sustenet_event_loop_lag_max_seconds",
        "Longest event-loop lag seen since start",
        () => this.maxLagSeconds,
      ),
      {
        name: "sustenet_event_loop_cpu_wait_seconds_total",
        help: "Time the event loop's thread was ready to run but waited for a CPU core (Linux)",
        kind: "counter",
        samples: () => {
          const waitMs = cpuWaitMs();
          return waitMs === undefined ? [] : [{ value: waitMs / 1000 }];
        },
      },
      {
        name: "sustenet_gc_pause_seconds_total",
        help: "Time spent in V8 garbage collection, by GC type",
        kind: "counter",
        samples: byType(this.#gcSeconds),
      },
      {
        name: "sustenet_gc_pauses_total",
        help: "V8 garbage collections, by GC type",
        kind: "counter",
        samples: byType(this.#gcCount),
      },
    ];
  }
}
