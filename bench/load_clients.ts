/**
 * Connects the simulated clients of a load job: plain connections to the raw relay, or full
 * Sustenet joins (ticket from the master, cluster handshake) spread over a few pipelined master
 * connections, always with bounded concurrency so a large R does not open thousands of
 * handshakes at once.
 *
 * It must never leave connections behind on failure: if one client cannot connect, every
 * connection made so far is closed before the error propagates.
 *
 * @module
 */

import type { LoadTarget } from "./load_job.ts";
import { BenchConnection } from "./bench_connection.ts";
import { joinViaMaster, MasterTicketSource } from "./sustenet_join.ts";

/** Options of {@linkcode connectClients}. */
export interface ConnectClientsOptions {
  /**
   * Handshakes in flight at once.
   *
   * @default {32}
   */
  readonly concurrency?: number;
  /**
   * Read buffer of each connection, bytes.
   *
   * @default {32768}
   */
  readonly readBufferBytes?: number;
}

/** What {@linkcode mapConcurrent} gives: every result in order, or the first error. */
export type ConcurrentOutcome<T> =
  | { readonly ok: true; readonly values: T[] }
  | {
    readonly ok: false;
    readonly error: unknown;
    /** Results of the tasks that completed, so the caller can release them. */
    readonly completed: T[];
  };

/**
 * Runs `task(i)` for i in 0..count-1 with at most `concurrency` running. After the first
 * failure no new task starts; the running ones are awaited.
 *
 * @param count Number of tasks.
 * @param concurrency Most tasks at once.
 * @param task The task.
 *
 * @example
 * ```ts
 * import { mapConcurrent } from "./load_clients.ts";
 * import assert from "node:assert/strict";
 *
 * let running = 0;
 * let most = 0;
 * const out = await mapConcurrent(6, 2, async (i) => {
 *   most = Math.max(most, ++running);
 *   await new Promise((r) => setTimeout(r, 1));
 *   running--;
 *   return i * 10;
 * });
 * assert.deepEqual(out, { ok: true, values: [0, 10, 20, 30, 40, 50] });
 * assert.equal(most, 2);
 * ```
 */
export async function mapConcurrent<T>(
  count: number,
  concurrency: number,
  task: (index: number) => Promise<T>,
): Promise<ConcurrentOutcome<T>> {
  const values: T[] = new Array(count);
  const completed: T[] = [];
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (next < count && failure === undefined) {
      const index = next++;
      try {
        const value = await task(index);
        values[index] = value;
        completed.push(value);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return failure === undefined
    ? { ok: true, values }
    : { ok: false, error: failure.error, completed };
}

/**
 * Connects `count` clients to the target and returns their connections (reading with a no-op
 * visitor until the caller sets its own).
 *
 * @param target The raw relay or a Sustenet master.
 * @param count Number of clients.
 * @param options Concurrency and buffer size.
 * @throws The first connect or join error, after closing everything opened.
 */
export async function connectClients(
  target: LoadTarget,
  count: number,
  options: ConnectClientsOptions = {},
): Promise<BenchConnection[]> {
  const concurrency = options.concurrency ?? 32;
  const readBufferBytes = options.readBufferBytes ?? 32 * 1024;
  const sources: MasterTicketSource[] = [];
  try {
    let outcome: ConcurrentOutcome<BenchConnection>;
    if (target.kind === "raw") {
      outcome = await mapConcurrent(count, concurrency, async () => {
        const conn = await BenchConnection.connect(target.host, target.port, { readBufferBytes });
        conn.startReading(() => {});
        return conn;
      });
    } else {
      // A few master connections, each pipelining JoinCluster requests.
      const sourceCount = Math.max(1, Math.min(4, Math.ceil(count / 100)));
      for (let i = 0; i < sourceCount; i++) {
        sources.push(await MasterTicketSource.open(target.masterHost, target.masterPort));
      }
      outcome = await mapConcurrent(count, concurrency, async (i) => {
        const options = {
          sealed: target.sealed,
          webSocket: target.webSocket === true,
          readBufferBytes,
        };
        return (await joinViaMaster(sources[i % sources.length], options)).conn;
      });
    }
    if (outcome.ok) return outcome.values;
    await closeAll(outcome.completed);
    throw outcome.error;
  } finally {
    for (const source of sources) source.close();
    await Promise.all(sources.map((source) => source.closed));
  }
}

/**
 * Closes connections and waits until every one has ended.
 *
 * @param conns The connections.
 */
export async function closeAll(conns: readonly BenchConnection[]): Promise<void> {
  for (const conn of conns) conn.close();
  await Promise.all(conns.map((conn) => conn.closed));
}
