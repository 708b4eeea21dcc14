/**
 * CPU time and resident memory of a process, read from Linux `/proc/<pid>/stat` (utime + stime,
 * all threads) and `/proc/<pid>/status` (VmRSS), and the CPU % between two readings. The bench
 * uses it to put the load generator's cost beside the server's.
 *
 * It only reads `/proc`, never signals or changes a process, and fails with a typed error where
 * `/proc` is missing (not Linux) rather than returning made-up figures.
 *
 * @module
 */

import { SustenetError } from "../shared/errors.ts";

/** A process could not be measured (gone, or no `/proc` on this system). */
export class ProcessStatsError extends SustenetError {
  /**
   * @param pid The process.
   * @param cause What failed.
   */
  constructor(pid: number, cause: unknown) {
    super("process_stats_unavailable", `cannot read /proc/${pid}: ${String(cause)}`, { cause });
  }
}

/** One reading of a process. */
export interface ProcessSample {
  /** The process id. */
  readonly pid: number;
  /** `performance.timeOrigin + performance.now()` when read, in ms. */
  readonly atMs: number;
  /** User + system CPU time of all its threads so far, in ms. */
  readonly cpuMs: number;
  /** Resident set size, in bytes. */
  readonly rssBytes: number;
}

/** CPU % and memory of a process over an interval. */
export interface ProcessUsage {
  /** CPU time over wall time × 100 (may exceed 100 on several cores). */
  readonly cpuPercent: number;
  /** RSS at the end of the interval, in bytes. */
  readonly rssBytes: number;
}

let clockTicksPerSecond: number | undefined;

/** Reads `getconf CLK_TCK` once (100 on every usual Linux). */
function clockTicks(): number {
  if (clockTicksPerSecond !== undefined) return clockTicksPerSecond;
  clockTicksPerSecond = 100;
  try {
    const out = new Deno.Command("getconf", { args: ["CLK_TCK"], stderr: "null" }).outputSync();
    const value = Number(new TextDecoder().decode(out.stdout).trim());
    if (out.success && Number.isInteger(value) && value > 0) clockTicksPerSecond = value;
  } catch (error) {
    // No getconf: keep the Linux default, which is what the kernel uses on x86 and arm.
    console.error(`getconf CLK_TCK failed (${String(error)}); assuming 100`);
  }
  return clockTicksPerSecond;
}

/**
 * Parses the utime and stime fields (14 and 15, in clock ticks) of a `/proc/<pid>/stat` line.
 * The command name in parentheses may contain spaces, so fields are counted after its `)`.
 *
 * @param stat The content of `/proc/<pid>/stat`.
 * @returns utime + stime in clock ticks.
 * @throws {RangeError} If the line is not in the kernel's format.
 *
 * @example
 * ```ts
 * import { parseStatTicks } from "./process_stats.ts";
 * import assert from "node:assert/strict";
 *
 * const line = "42 (deno worker) S 1 42 42 0 -1 4194560 1 0 0 0 250 30 0 0 20 0 9 0 1 2 3";
 * assert.equal(parseStatTicks(line), 280);
 * ```
 */
export function parseStatTicks(stat: string): number {
  const close = stat.lastIndexOf(")");
  const fields = stat.slice(close + 2).split(" ");
  // After ")": state is field 3, so utime (14) and stime (15) are at offsets 11 and 12.
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (close < 0 || !Number.isFinite(utime) || !Number.isFinite(stime)) {
    throw new RangeError(`not a /proc/<pid>/stat line: ${stat.slice(0, 80)}`);
  }
  return utime + stime;
}

/**
 * Parses `VmRSS` of a `/proc/<pid>/status` text, in bytes (0 for a zombie without one).
 *
 * @param status The content of `/proc/<pid>/status`.
 *
 * @example
 * ```ts
 * import { parseRssBytes } from "./process_stats.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(parseRssBytes("Name:\tdeno\nVmRSS:\t   2048 kB\n"), 2048 * 1024);
 * ```
 */
export function parseRssBytes(status: string): number {
  const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  return match === null ? 0 : Number(match[1]) * 1024;
}

/**
 * Reads a process's CPU time and RSS now.
 *
 * @param pid The process id.
 * @throws {ProcessStatsError} If `/proc/<pid>` cannot be read.
 *
 * @example
 * ```ts
 * import { sampleProcess } from "./process_stats.ts";
 * import assert from "node:assert/strict";
 *
 * const sample = sampleProcess(Deno.pid);
 * assert.ok(sample.rssBytes > 0 && sample.cpuMs >= 0);
 * ```
 */
export function sampleProcess(pid: number): ProcessSample {
  let stat: string;
  let status: string;
  try {
    stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    status = Deno.readTextFileSync(`/proc/${pid}/status`);
  } catch (error) {
    throw new ProcessStatsError(pid, error);
  }
  return {
    pid,
    atMs: performance.timeOrigin + performance.now(),
    cpuMs: parseStatTicks(stat) * 1000 / clockTicks(),
    rssBytes: parseRssBytes(status),
  };
}

/**
 * CPU % between two samples of one process, and the later RSS.
 *
 * @param before The earlier sample.
 * @param after The later sample.
 * @throws {RangeError} If the samples are of different processes or out of order.
 *
 * @example
 * ```ts
 * import { usageBetween } from "./process_stats.ts";
 * import assert from "node:assert/strict";
 *
 * const usage = usageBetween(
 *   { pid: 1, atMs: 0, cpuMs: 100, rssBytes: 10 },
 *   { pid: 1, atMs: 1000, cpuMs: 600, rssBytes: 20 },
 * );
 * assert.deepEqual(usage, { cpuPercent: 50, rssBytes: 20 });
 * ```
 */
export function usageBetween(before: ProcessSample, after: ProcessSample): ProcessUsage {
  if (before.pid !== after.pid || after.atMs <= before.atMs) {
    throw new RangeError("samples must be of one process, the second one later");
  }
  return {
    cpuPercent: (after.cpuMs - before.cpuMs) * 100 / (after.atMs - before.atMs),
    rssBytes: after.rssBytes,
  };
}
