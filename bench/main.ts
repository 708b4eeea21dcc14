/**
 * `deno task bench`: the Sustenet benchmark (issue 9). Starts each server as its own process —
 * the raw Deno relay (the runtime's ceiling), the real Sustenet cluster behind a real master
 * (plaintext and sealed), and Colyseus 0.18 under Node — drives each with a load generator in a
 * separate process, prints the tables and writes `bench/results/<ISO date>.json`. See
 * `bench/bench_run.ts` for what runs and `--help` for the flags.
 *
 * Every run stops by itself and every child process is stopped in `finally`; it never binds
 * anything but 127.0.0.1. Exit code 2 for a bad command line.
 *
 * @module
 */

import { BENCH_USAGE, BenchUsageError, parseBenchArgs } from "./bench_options.ts";
import { REPO_ROOT } from "./bench_servers.ts";
import { runBench } from "./bench_run.ts";
import { formatReport, writeResults } from "./report.ts";

if (import.meta.main) {
  let options;
  try {
    options = parseBenchArgs(Deno.args, `${REPO_ROOT}bench/results`);
  } catch (error) {
    if (!(error instanceof BenchUsageError)) throw error;
    console.error(`${error.message}\n\n${BENCH_USAGE}`);
    Deno.exit(2);
  }
  if (options === "help") {
    console.log(BENCH_USAGE);
    Deno.exit(0);
  }
  const results = await runBench(options, (line) => console.log(line));
  console.log("\n" + formatReport(results));
  const path = await writeResults(results, options.resultsDir);
  console.log(`\nresults: ${path} (${results.durationS} s)`);
}
