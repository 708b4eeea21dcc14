/**
 * Log capture for tests: Sustenet's logging set up to print nothing and keep every record in an
 * array the test reads. The caller resets logging (`reset` from LogTape) when done.
 */
import { type LogRecord, reset } from "@logtape/logtape";
import { type LogLevelName, setupLogging } from "../shared/logging.ts";

/** A console that prints nothing, for tests that read records instead. */
export const QUIET_CONSOLE = { debug() {}, info() {}, warn() {}, error() {} };

/**
 * Sets up logging at `level` into an array, console silent.
 *
 * @param level Lowest level kept.
 * @returns The array the records go into.
 */
export async function captureLogs(level: LogLevelName = "debug"): Promise<LogRecord[]> {
  const records: LogRecord[] = [];
  await setupLogging({
    level,
    console: QUIET_CONSOLE,
    sinks: { memory: (record) => records.push(record) },
  });
  return records;
}

/**
 * Captures every record (debug and up, console silent) while `run` runs, then resets logging.
 *
 * @param run Gets the array the records go into.
 * @returns What `run` returns.
 */
export async function withLogs<T>(run: (records: LogRecord[]) => Promise<T>): Promise<T> {
  const records = await captureLogs();
  try {
    return await run(records);
  } finally {
    await reset();
  }
}
