// This module is browser compatible.
/**
 * What the runner asks a load generator process to do ({@linkcode LoadJob}, passed as JSON on
 * its command line) and what it answers ({@linkcode LoadResult}, one JSON line on stdout). Both
 * generators (the Deno one and the Node one for Colyseus) speak this format.
 *
 * {@linkcode parseLoadJob} checks every field and bound, so a generator never starts an
 * unbounded run (clients, durations and rates all have ceilings).
 *
 * @module
 */

import { SustenetError } from "../shared/errors.ts";
import type { ServerLagFigures, WriteDelayFigures } from "./server_lag.ts";
import type { MachineUsage } from "./process_stats.ts";
import type { BacklogFigures } from "./receive_backlog.ts";

/** Where the clients connect. */
export type LoadTarget =
  | {
    /** The raw relay: frames only, no handshake. */
    readonly kind: "raw";
    readonly host: string;
    readonly port: number;
  }
  | {
    /** A Sustenet master and its cluster: tickets, key exchange, SendPassword. */
    readonly kind: "sustenet";
    readonly masterHost: string;
    readonly masterPort: number;
    /** `false` when the cluster runs with `plaintext = true`. */
    readonly sealed: boolean;
    /** Clients join the cluster over its WebSocket endpoint (from the ticket). */
    readonly webSocket?: boolean;
  };

/** Fields of every relay-like measurement: a warm-up, then measured windows. */
export interface WindowedRun {
  /** Time sending before measuring, in ms. */
  readonly warmupMs: number;
  /** Length of one measured window, in ms. */
  readonly windowMs: number;
  /** Number of consecutive windows measured. */
  readonly windows: number;
}

/** The scenario a job runs. */
export type LoadScenario =
  | ({
    /** R clients each sending a 32-byte payload at `hz`, fanned out to all but the sender. */
    readonly kind: "relay";
    readonly clients: number;
    readonly hz: number;
  } & WindowedRun)
  | ({
    /** Clients each keeping `inflight` echo requests outstanding. */
    readonly kind: "echo";
    readonly clients: number;
    readonly inflight: number;
  } & WindowedRun)
  | {
    /** `joins` full joins (master list + ticket, cluster handshake) with bounded concurrency. */
    readonly kind: "join";
    readonly joins: number;
    readonly concurrency: number;
  }
  | {
    /** `clients` authenticated clients held idle while the server's RSS is read. */
    readonly kind: "idle";
    readonly clients: number;
    /** Time to let the server settle before reading its RSS, in ms. */
    readonly settleMs: number;
  };

/** A job for one load generator process. */
export interface LoadJob {
  /** Where to connect. */
  readonly target: LoadTarget;
  /** What to do. */
  readonly scenario: LoadScenario;
  /** Server processes to measure (CPU %, RSS) over each window. */
  readonly serverPids: readonly number[];
  /** The whole job must end within this many ms, or the generator gives up. */
  readonly deadlineMs: number;
  /**
   * Relay and echo: once connected, print {@linkcode CONNECTED_LINE} and wait for
   * {@linkcode START_LINE} on stdin before sending, so several generator processes sharing one
   * load start together.
   */
  readonly waitForStart?: boolean;
  /**
   * The measured server's `/metrics` URL (loopback): read before and after each window for
   * its event-loop lag ({@linkcode WindowResult.serverLag}).
   */
  readonly serverMetricsUrl?: string;
}

/** What a generator asked to wait prints once its clients are connected. */
export const CONNECTED_LINE = "CONNECTED";

/** The stdin line that lets a waiting generator start sending. */
export const START_LINE = "START";

/** CPU and memory of one process over a window. */
export interface ProcessFigures {
  /** The process id. */
  readonly pid: number;
  /** CPU time over wall time × 100. */
  readonly cpuPercent: number;
  /** Resident memory at the end of the window, bytes. */
  readonly rssBytes: number;
  /**
   * The main thread's run-queue wait over wall time × 100: the share of the window its event
   * loop was ready to run but had no core (Linux scheduler statistics; absent where unknown).
   */
  readonly waitPercent?: number;
}

/** One measured window of a relay or echo run. */
export interface WindowResult {
  /** Window length actually measured, ms. */
  readonly durationMs: number;
  /** Frames sent by all clients during the window. */
  readonly sent: number;
  /** Sends skipped because the generator lagged a whole period. */
  readonly skipped: number;
  /** Frames received by all clients during the window. */
  readonly received: number;
  /** Received frames per second. */
  readonly receivedPerSecond: number;
  /** Latency (one-way for relay, round trip for echo) percentiles, ms. */
  readonly p50Ms: number;
  /** 99th percentile, ms. */
  readonly p99Ms: number;
  /** Largest, ms. */
  readonly maxMs: number;
  /** Non-empty latency buckets `[bucket, count]` (see latency_histogram.ts). */
  readonly latencyBuckets: readonly (readonly [number, number])[];
  /** Clients still connected at the end of the window. */
  readonly openClients: number;
  /** The generator process itself. */
  readonly generator: ProcessFigures;
  /** Each server process. */
  readonly servers: readonly ProcessFigures[];
  /** The generator's own event-loop lag over the window, ms (Deno generator). */
  readonly generatorLag?: LoopLagFigures;
  /**
   * The generator's loop stalled over `STALL_MS` (bench/server_lag.ts) in this window: its tail may be the
   * generator's, so the window is re-run and left out of the verdict.
   */
  readonly generatorFault?: boolean;
  /** How busy the machine's cores were over the window (all processes, the kernel included). */
  readonly machine?: MachineUsage;
  /** Bytes left unread in the generator's sockets and in the server's ends, sampled. */
  readonly receiveBacklog?: BacklogFigures;
  /** The server's event-loop lag over the window, from its `/metrics` (Sustenet servers). */
  readonly serverLag?: ServerLagFigures;
  /** The cluster's write delays (queued to written) over the window, from its `/metrics`. */
  readonly serverWriteDelay?: WriteDelayFigures;
}

/** One process's event-loop lag over a window, ms. */
export interface LoopLagFigures {
  /** 99th percentile lateness of the sampling timer. */
  readonly p99Ms: number;
  /** Largest lateness. */
  readonly maxMs: number;
}

/** What a generator prints when done. */
export type LoadResult =
  | {
    readonly kind: "relay" | "echo";
    readonly ok: true;
    /** Clients connected (and authenticated) before sending started. */
    readonly clients: number;
    /** Time to connect them all, ms. */
    readonly connectMs: number;
    readonly windows: readonly WindowResult[];
  }
  | {
    readonly kind: "join";
    readonly ok: true;
    readonly joins: number;
    readonly failures: number;
    readonly durationMs: number;
    readonly joinsPerSecond: number;
    readonly p50Ms: number;
    readonly p99Ms: number;
    /**
     * CPU per join, µs: this generator's own (it shares the machine, so it counts), then each
     * of the job's `serverPids` in order (the bench passes the cluster, then the master);
     * absent where `/proc` cannot be read.
     */
    readonly cpuUsPerJoin?: {
      readonly generator: number;
      readonly servers: readonly number[];
    };
    /** First failure message, if any. */
    readonly firstError?: string;
  }
  | {
    readonly kind: "idle";
    readonly ok: true;
    readonly clients: number;
    readonly connectMs: number;
    /** Server RSS before connecting, bytes (first server pid). */
    readonly rssBeforeBytes: number;
    /** Server RSS with every client connected and settled, bytes. */
    readonly rssAfterBytes: number;
    /** (after − before) / clients. */
    readonly rssPerClientBytes: number;
  }
  | {
    /** The job failed as a whole (could not connect, deadline). */
    readonly kind: LoadScenario["kind"];
    readonly ok: false;
    readonly error: string;
  };

/** A job that does not pass {@linkcode parseLoadJob}. */
export class LoadJobError extends SustenetError {
  /** @param message What is wrong, naming the field. */
  constructor(message: string) {
    super("load_job_invalid", message);
  }
}

/** Ceiling on simulated clients per generator. */
export const MAX_CLIENTS = 20_000;
/** Ceiling on any duration in a job, ms. */
export const MAX_DURATION_MS = 10 * 60 * 1000;

type Json = Record<string, unknown>;

function object(value: unknown, field: string): Json {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new LoadJobError(`${field} must be an object`);
  }
  return value as Json;
}

function integer(json: Json, key: string, min: number, max: number, field: string): number {
  const value = json[key];
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw new LoadJobError(`${field}.${key} must be an integer ${min}..${max}, got ${value}`);
  }
  return value;
}

function text(json: Json, key: string, field: string): string {
  const value = json[key];
  if (typeof value !== "string" || value.length === 0 || value.length > 255) {
    throw new LoadJobError(`${field}.${key} must be a non-empty string`);
  }
  return value;
}

function windowed(json: Json): WindowedRun {
  return {
    warmupMs: integer(json, "warmupMs", 0, MAX_DURATION_MS, "scenario"),
    windowMs: integer(json, "windowMs", 100, MAX_DURATION_MS, "scenario"),
    windows: integer(json, "windows", 1, 100, "scenario"),
  };
}

function parseTarget(value: unknown): LoadTarget {
  const json = object(value, "target");
  if (json.kind === "raw") {
    return {
      kind: "raw",
      host: text(json, "host", "target"),
      port: integer(json, "port", 1, 65535, "target"),
    };
  }
  if (json.kind === "sustenet") {
    if (typeof json.sealed !== "boolean") throw new LoadJobError("target.sealed must be boolean");
    if (json.webSocket !== undefined && typeof json.webSocket !== "boolean") {
      throw new LoadJobError("target.webSocket must be boolean");
    }
    return {
      kind: "sustenet",
      masterHost: text(json, "masterHost", "target"),
      masterPort: integer(json, "masterPort", 1, 65535, "target"),
      sealed: json.sealed,
      ...(json.webSocket === true ? { webSocket: true } : {}),
    };
  }
  throw new LoadJobError(`target.kind must be "raw" or "sustenet", got ${String(json.kind)}`);
}

function parseScenario(value: unknown): LoadScenario {
  const json = object(value, "scenario");
  switch (json.kind) {
    case "relay":
      return {
        kind: "relay",
        clients: integer(json, "clients", 2, MAX_CLIENTS, "scenario"),
        hz: integer(json, "hz", 1, 1000, "scenario"),
        ...windowed(json),
      };
    case "echo":
      return {
        kind: "echo",
        clients: integer(json, "clients", 1, MAX_CLIENTS, "scenario"),
        inflight: integer(json, "inflight", 1, 10_000, "scenario"),
        ...windowed(json),
      };
    case "join":
      return {
        kind: "join",
        joins: integer(json, "joins", 1, 1_000_000, "scenario"),
        concurrency: integer(json, "concurrency", 1, 10_000, "scenario"),
      };
    case "idle":
      return {
        kind: "idle",
        clients: integer(json, "clients", 1, MAX_CLIENTS, "scenario"),
        settleMs: integer(json, "settleMs", 0, MAX_DURATION_MS, "scenario"),
      };
  }
  throw new LoadJobError(`scenario.kind must be relay, echo, join or idle, got ${json.kind}`);
}

/**
 * Parses and checks a job from its JSON text.
 *
 * @param jsonText The job as JSON.
 * @throws {LoadJobError} Naming the first bad field.
 *
 * @example
 * ```ts
 * import { parseLoadJob } from "./load_job.ts";
 * import assert from "node:assert/strict";
 *
 * const job = parseLoadJob(JSON.stringify({
 *   target: { kind: "raw", host: "127.0.0.1", port: 7000 },
 *   scenario: { kind: "relay", clients: 10, hz: 20, warmupMs: 0, windowMs: 1000, windows: 1 },
 *   serverPids: [],
 *   deadlineMs: 10000,
 * }));
 * assert.equal(job.scenario.kind, "relay");
 * assert.throws(() => parseLoadJob("{}"), /target must be an object/);
 * ```
 */
export function parseLoadJob(jsonText: string): LoadJob {
  let raw: unknown;
  try {
    raw = JSON.parse(jsonText);
  } catch (cause) {
    throw new LoadJobError(`job is not JSON: ${String(cause)}`);
  }
  const json = object(raw, "job");
  const target = parseTarget(json.target);
  const scenario = parseScenario(json.scenario);
  const pids = json.serverPids;
  if (
    !Array.isArray(pids) ||
    !pids.every((pid) => typeof pid === "number" && Number.isInteger(pid) && pid > 0)
  ) {
    throw new LoadJobError("serverPids must be an array of process ids");
  }
  const waitForStart = json.waitForStart;
  if (waitForStart !== undefined && typeof waitForStart !== "boolean") {
    throw new LoadJobError("waitForStart must be a boolean");
  }
  const metricsUrl = json.serverMetricsUrl;
  if (
    metricsUrl !== undefined &&
    (typeof metricsUrl !== "string" || !/^http:\/\/127\.0\.0\.1:\d+\/metrics$/.test(metricsUrl))
  ) {
    throw new LoadJobError("serverMetricsUrl must be http://127.0.0.1:<port>/metrics");
  }
  return {
    target,
    scenario,
    serverPids: pids as number[],
    deadlineMs: integer(json, "deadlineMs", 1, MAX_DURATION_MS, "job"),
    ...(waitForStart === true ? { waitForStart } : {}),
    ...(typeof metricsUrl === "string" ? { serverMetricsUrl: metricsUrl } : {}),
  };
}
