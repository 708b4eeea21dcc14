/**
 * What machine a bench ran on, for the results file and docs/PERFORMANCE.md: CPU count and
 * model (from `/proc/cpuinfo`, with whether AES-NI is present), memory, kernel, load average
 * at the start, and the Deno (V8, TypeScript) and Node versions.
 *
 * It only reads system information; where something is unavailable it says `"unknown"` rather
 * than failing the bench.
 *
 * @module
 */

/** The machine and runtimes of a bench run. */
export interface MachineInfo {
  /** Logical CPUs. */
  readonly nproc: number;
  /** CPU model name. */
  readonly cpuModel: string;
  /** Whether the CPU advertises AES-NI (`aes` flag). */
  readonly aesNi: boolean;
  /** Total memory, bytes (0 if unknown). */
  readonly memTotalBytes: number;
  /** `os release` of the kernel. */
  readonly kernel: string;
  /** 1, 5 and 15 minute load averages when the bench started. */
  readonly loadAverage: readonly number[];
  /** Deno, V8 and TypeScript versions. */
  readonly deno: string;
  /** V8 version. */
  readonly v8: string;
  /** `node --version`, or "unknown". */
  readonly node: string;
  /**
   * Whether a DAMON monitor (`kdamond`) runs: proactive memory reclaim some hosts enable, the
   * leading candidate for the stalls of long runs (docs/PERFORMANCE.md). Absent where the
   * kernel has no DAMON admin interface.
   */
  readonly damon?: "on" | "off";
}

/** Where the kernel lists its DAMON monitors. */
const DAMON_KDAMONDS = "/sys/kernel/mm/damon/admin/kdamonds";

/** `"on"` if any DAMON monitor runs, `"off"` if none does, `undefined` without DAMON. */
async function damonState(): Promise<"on" | "off" | undefined> {
  const text = await readOr(`${DAMON_KDAMONDS}/nr_kdamonds`);
  const count = Number(text.trim());
  if (text === "" || !Number.isInteger(count)) return undefined;
  for (let i = 0; i < count; i++) {
    if ((await readOr(`${DAMON_KDAMONDS}/${i}/state`)).trim() === "on") return "on";
  }
  return "off";
}

/**
 * Parses the model name and AES flag out of `/proc/cpuinfo` text.
 *
 * @param cpuinfo The file's content.
 *
 * @example
 * ```ts
 * import { parseCpuInfo } from "./machine_info.ts";
 * import assert from "node:assert/strict";
 *
 * const info = parseCpuInfo("model name\t: Xeon\nflags\t\t: fpu sse2 aes avx\n");
 * assert.deepEqual(info, { cpuModel: "Xeon", aesNi: true });
 * ```
 */
export function parseCpuInfo(cpuinfo: string): { cpuModel: string; aesNi: boolean } {
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo);
  const flags = /^flags\s*:\s*(.+)$/m.exec(cpuinfo);
  return {
    cpuModel: model === null ? "unknown" : model[1].trim(),
    aesNi: flags !== null && flags[1].split(/\s+/).includes("aes"),
  };
}

async function readOr(path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.PermissionDenied) {
      return "";
    }
    throw error;
  }
}

async function nodeVersion(): Promise<string> {
  try {
    const out = await new Deno.Command("node", { args: ["--version"], stderr: "null" }).output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : "unknown";
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return "unknown";
    throw error;
  }
}

/**
 * Describes this machine.
 *
 * @example
 * ```ts
 * import { machineInfo } from "./machine_info.ts";
 * import assert from "node:assert/strict";
 *
 * const info = await machineInfo();
 * assert.ok(info.nproc >= 1);
 * assert.equal(info.deno, Deno.version.deno);
 * ```
 */
export async function machineInfo(): Promise<MachineInfo> {
  const cpu = parseCpuInfo(await readOr("/proc/cpuinfo"));
  const damon = await damonState();
  const mem = /^MemTotal:\s+(\d+)\s+kB/m.exec(await readOr("/proc/meminfo"));
  return {
    nproc: navigator.hardwareConcurrency,
    ...cpu,
    memTotalBytes: mem === null ? 0 : Number(mem[1]) * 1024,
    kernel: Deno.osRelease(),
    loadAverage: Deno.loadavg(),
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    node: await nodeVersion(),
    ...(damon === undefined ? {} : { damon }),
  };
}
