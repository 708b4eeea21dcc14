/**
 * How long a thread was ready to run but waited for a CPU core, from Linux's scheduler
 * statistics (`/proc/<pid>/task/<tid>/schedstat`: time on a core, time waiting on a run queue,
 * times run). An event loop that is late while its thread waited for a core was starved by the
 * machine (other processes, too few cores), not slowed by its own work: the servers export the
 * wait beside their event-loop lag, and the bench reads it per window.
 *
 * Linux only; elsewhere (or without scheduler statistics) the readings are `undefined`.
 *
 * @module
 */

/**
 * Parses a `schedstat` line: time on a core and time runnable but waiting for one (both ns in
 * the file), and the number of times it ran.
 *
 * @param line The file's contents.
 * @returns The two times, in ms.
 * @throws {RangeError} If the line is not three numbers.
 *
 * @example
 * ```ts
 * import { parseSchedstat } from "./cpu_wait.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(parseSchedstat("3705647 7339499 2\n"), { runMs: 3.705647, waitMs: 7.339499 });
 * ```
 */
export function parseSchedstat(line: string): { runMs: number; waitMs: number } {
  const fields = line.trim().split(" ").map(Number);
  if (fields.length !== 3 || !fields.every(Number.isFinite)) {
    throw new RangeError(`not a schedstat line: ${line.slice(0, 80)}`);
  }
  return { runMs: fields[0] / 1e6, waitMs: fields[1] / 1e6 };
}

/**
 * The run-queue wait of a process's JavaScript thread so far, in ms: for this process the
 * calling thread (`deno test` runs tests on another thread than the first), for another
 * process its first thread (where `deno run` runs JavaScript).
 *
 * @param pid The process; this process by default.
 * @returns The wait in ms, or `undefined` where the kernel keeps no scheduler statistics or the
 *   file cannot be read (not Linux, no `--allow-read` for `/proc`).
 * @throws {Error} Any other failure to read (a bug, not an unsupported system).
 *
 * @example
 * ```ts
 * import { cpuWaitMs } from "./cpu_wait.ts";
 * import assert from "node:assert/strict";
 *
 * const wait = cpuWaitMs();
 * assert.ok(wait === undefined || wait >= 0);
 * ```
 */
export function cpuWaitMs(pid: number = Deno.pid): number | undefined {
  const path = pid === Deno.pid
    ? "/proc/thread-self/schedstat"
    : `/proc/${pid}/task/${pid}/schedstat`;
  let line: string;
  try {
    line = Deno.readTextFileSync(path);
  } catch (error) {
    if (
      error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotCapable ||
      error instanceof Deno.errors.PermissionDenied
    ) {
      return undefined;
    }
    throw error;
  }
  return parseSchedstat(line).waitMs;
}
