/**
 * CPU time and resident memory of a process, read from Linux `/proc/<pid>/stat` (utime + stime,
 * all threads) and `/proc/<pid>/status` (VmRSS), and the CPU % between two readings. The bench
 * uses it to put the load generator's cost beside the server's.
 *
 * It also reads how long the process's main thread (the JavaScript event loop) was runnable but
 * waiting for a core (`/proc/<pid>/task/<pid>/schedstat`, second field), and how busy the whole
 * machine was (`/proc/stat`): an event loop that is late because the kernel ran something else
 * shows up as run-queue wait, not as work of its own (issue 24's attribution).
 *
 * It only reads `/proc`, never signals or changes a process, and fails with a typed error where
 * `/proc` is missing (not Linux) rather than returning made-up figures.
 *
 * @module
 */

import { cpuWaitMs } from "../shared/cpu_wait.ts";
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
  /**
   * Time the main thread spent runnable but waiting for a core, ms since it started (0 where
   * the kernel keeps no scheduler statistics).
   */
  readonly mainWaitMs: number;
}

/** CPU % and memory of a process over an interval. */
export interface ProcessUsage {
  /** CPU time over wall time × 100 (may exceed 100 on several cores). */
  readonly cpuPercent: number;
  /** RSS at the end of the interval, in bytes. */
  readonly rssBytes: number;
  /** The main thread's run-queue wait over wall time × 100: late because it had no core. */
  readonly waitPercent: number;
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
    mainWaitMs: mainThreadWaitMs(pid),
  };
}

function mainThreadWaitMs(pid: number): number {
  try {
    // Kernels built without scheduler statistics have no such file: no wait is measured.
    return cpuWaitMs(pid) ?? 0;
  } catch (error) {
    throw new ProcessStatsError(pid, error);
  }
}

/** The machine's CPU time counters (`/proc/stat`, first line), in clock ticks. */
export interface MachineSample {
  /** Ticks not idle (everything but idle and iowait), all cores together. */
  readonly busyTicks: number;
  /** Ticks in all. */
  readonly totalTicks: number;
  /** Ticks stolen by the hypervisor. */
  readonly stealTicks: number;
}

/** How busy the machine's cores were over an interval. */
export interface MachineUsage {
  /** Busy share of all cores' time × 100 (100 = every core busy all the time). */
  readonly busyPercent: number;
  /** Share stolen by the hypervisor × 100. */
  readonly stealPercent: number;
}

/**
 * Parses the aggregate `cpu` line of `/proc/stat`.
 *
 * @param stat The file's contents.
 * @returns The counters.
 * @throws {RangeError} If there is no aggregate `cpu` line.
 *
 * @example
 * ```ts
 * import { parseMachineStat } from "./process_stats.ts";
 * import assert from "node:assert/strict";
 *
 * const sample = parseMachineStat("cpu  60 0 30 10 0 0 0 5 0 0\ncpu0 30 0 15 5 0 0 0 2 0 0\n");
 * assert.deepEqual(sample, { busyTicks: 95, totalTicks: 105, stealTicks: 5 });
 * ```
 */
export function parseMachineStat(stat: string): MachineSample {
  const line = stat.split("\n").find((l) => l.startsWith("cpu "));
  const fields = line?.trim().split(/\s+/).slice(1, 9).map(Number);
  if (fields === undefined || fields.length < 8 || !fields.every(Number.isFinite)) {
    throw new RangeError("no aggregate cpu line in /proc/stat");
  }
  const [user, nice, system, idle, iowait, irq, softirq, steal] = fields;
  const busy = user + nice + system + irq + softirq + steal;
  return { busyTicks: busy, totalTicks: busy + idle + iowait, stealTicks: steal };
}

/**
 * Reads the machine's CPU counters now.
 *
 * @throws {ProcessStatsError} If `/proc/stat` cannot be read.
 *
 * @example
 * ```ts
 * import { sampleMachine } from "./process_stats.ts";
 * import assert from "node:assert/strict";
 *
 * assert.ok(sampleMachine().totalTicks > 0);
 * ```
 */
export function sampleMachine(): MachineSample {
  try {
    return parseMachineStat(Deno.readTextFileSync("/proc/stat"));
  } catch (error) {
    if (error instanceof RangeError) throw error;
    throw new ProcessStatsError(0, error);
  }
}

/**
 * The machine's busy and stolen shares between two readings.
 *
 * @param before The earlier reading.
 * @param after The later reading.
 * @returns The shares (0 when no tick passed).
 *
 * @example
 * ```ts
 * import { machineUsageBetween } from "./process_stats.ts";
 * import assert from "node:assert/strict";
 *
 * const usage = machineUsageBetween(
 *   { busyTicks: 100, totalTicks: 200, stealTicks: 0 },
 *   { busyTicks: 280, totalTicks: 400, stealTicks: 2 },
 * );
 * assert.deepEqual(usage, { busyPercent: 90, stealPercent: 1 });
 * ```
 */
export function machineUsageBetween(before: MachineSample, after: MachineSample): MachineUsage {
  const total = after.totalTicks - before.totalTicks;
  if (total <= 0) return { busyPercent: 0, stealPercent: 0 };
  return {
    busyPercent: (after.busyTicks - before.busyTicks) * 100 / total,
    stealPercent: (after.stealTicks - before.stealTicks) * 100 / total,
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
 *   { pid: 1, atMs: 0, cpuMs: 100, rssBytes: 10, mainWaitMs: 5 },
 *   { pid: 1, atMs: 1000, cpuMs: 600, rssBytes: 20, mainWaitMs: 105 },
 * );
 * assert.deepEqual(usage, { cpuPercent: 50, rssBytes: 20, waitPercent: 10 });
 * ```
 */
export function usageBetween(before: ProcessSample, after: ProcessSample): ProcessUsage {
  if (before.pid !== after.pid || after.atMs <= before.atMs) {
    throw new RangeError("samples must be of one process, the second one later");
  }
  return {
    cpuPercent: (after.cpuMs - before.cpuMs) * 100 / (after.atMs - before.atMs),
    rssBytes: after.rssBytes,
    waitPercent: (after.mainWaitMs - before.mainWaitMs) * 100 / (after.atMs - before.atMs),
  };
}
