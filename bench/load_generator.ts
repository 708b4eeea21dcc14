/**
 * The load generator process: `deno run -A bench/load_generator.ts --job '<LoadJob JSON>'`.
 * It connects the job's clients (raw relay or Sustenet joins), runs its scenario, and prints
 * exactly one line `LOAD_RESULT <LoadResult JSON>` on stdout, then exits. Progress and errors go
 * to stderr. It always runs as a separate process from the servers it measures.
 *
 * It must never outlive its job's `deadlineMs` (it reports a failure and exits), and never
 * connect anywhere but the job's loopback target.
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  CONNECTED_LINE,
  type LoadJob,
  LoadJobError,
  type LoadResult,
  parseLoadJob,
  START_LINE,
} from "./load_job.ts";
import { closeAll, connectClients } from "./load_clients.ts";
import { runEcho, runRelay } from "./relay_load.ts";
import { runIdle, runJoinStorm } from "./join_load.ts";

/** Prefix of the result line on stdout. */
export const RESULT_PREFIX = "LOAD_RESULT ";

/**
 * Runs one job to its result (failures become `ok: false` results, never exceptions).
 *
 * @param job The parsed job.
 */
export async function runJob(job: LoadJob): Promise<LoadResult> {
  const scenario = job.scenario;
  try {
    switch (scenario.kind) {
      case "relay":
      case "echo": {
        const started = performance.now();
        const conns = await connectClients(job.target, scenario.clients);
        const connectMs = Math.round(performance.now() - started);
        console.error(`connected ${conns.length} clients in ${connectMs} ms`);
        try {
          if (job.waitForStart === true) {
            console.log(CONNECTED_LINE);
            await waitForLine(START_LINE);
          }
          const measure = {
            serverPids: job.serverPids,
            serverMetricsUrl: job.serverMetricsUrl,
            rerunStalled: job.waitForStart !== true,
          };
          const windows = scenario.kind === "relay"
            ? await runRelay(conns, scenario, measure)
            : await runEcho(conns, scenario, measure);
          return { kind: scenario.kind, ok: true, clients: conns.length, connectMs, windows };
        } finally {
          await closeAll(conns);
        }
      }
      case "join":
      case "idle": {
        const target = job.target;
        if (target.kind !== "sustenet") {
          return { kind: scenario.kind, ok: false, error: "needs a Sustenet target" };
        }
        if (scenario.kind === "join") {
          return await runJoinStorm(target, scenario.joins, scenario.concurrency, job.serverPids);
        }
        const pid = job.serverPids[0];
        if (pid === undefined) return { kind: "idle", ok: false, error: "needs a server pid" };
        return await runIdle(target, scenario.clients, scenario.settleMs, pid);
      }
    }
  } catch (error) {
    const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    return { kind: scenario.kind, ok: false, error: message };
  }
}

/** Reads stdin until a line equal to `expected`; fails if stdin ends first. */
async function waitForLine(expected: string): Promise<void> {
  let text = "";
  for await (const chunk of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
    text += chunk;
    if (text.split("\n").slice(0, -1).includes(expected)) return;
  }
  throw new LoadJobError(`stdin ended before "${expected}"`);
}

if (import.meta.main) {
  const { values } = parseArgs({ args: Deno.args, options: { job: { type: "string" } } });
  if (values.job === undefined) {
    console.error("usage: load_generator.ts --job '<LoadJob JSON>'");
    Deno.exit(2);
  }
  let job: LoadJob;
  try {
    job = parseLoadJob(values.job);
  } catch (error) {
    console.error(String(error));
    Deno.exit(2);
  }
  const deadline = setTimeout(() => {
    const result: LoadResult = {
      kind: job.scenario.kind,
      ok: false,
      error: `deadline of ${job.deadlineMs} ms passed`,
    };
    console.log(RESULT_PREFIX + JSON.stringify(result));
    // The job is stuck (a peer stopped answering): leaving is the only bounded way out.
    Deno.exit(3);
  }, job.deadlineMs);
  const result = await runJob(job);
  clearTimeout(deadline);
  console.log(RESULT_PREFIX + JSON.stringify(result));
}
