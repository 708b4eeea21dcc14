/**
 * The command line of `deno task bench` ({@linkcode parseBenchArgs}) and its usage text: quick
 * or full mode, a subset of parts, profiling, the results directory.
 *
 * Parsing only: it never starts anything, and an unknown part or flag is an error naming it.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { SustenetError } from "../shared/errors.ts";

/** The parts of a bench run, in the order they run. */
export const BENCH_PARTS = [
  "sealing",
  "raw",
  "plaintext",
  "sealed",
  "ws-sealed",
  "steady",
  "colyseus",
  "idle",
  "echo",
  "echo-sandboxed",
  "echo-subprocess",
  "join",
  "auth",
  "world",
] as const;

/** One part of a bench run. */
export type BenchPart = typeof BENCH_PARTS[number];

/** What to run. */
export interface BenchOptions {
  /** Quick mode (under a minute) instead of the full search. */
  readonly quick: boolean;
  /** The parts to run. */
  readonly parts: ReadonlySet<BenchPart>;
  /** Profile the sealed cluster under relay load. */
  readonly profile: boolean;
  /** Where results are written. */
  readonly resultsDir: string;
  /** Generator processes sharing each relay run's clients (every system alike). */
  readonly generators: number;
  /** Servers and generators on separate cores (`--pin`). */
  readonly pin: boolean;
}

/** A command line that cannot be run. */
export class BenchUsageError extends SustenetError {
  /** @param message What is wrong. */
  constructor(message: string) {
    super("bench_usage", message);
  }
}

/** The `--help` text. */
export const BENCH_USAGE =
  `usage: deno task bench [--quick] [--only PARTS] [--profile] [--generators N] [--pin] [--results DIR]

  --quick          under a minute: one fixed-size relay run per system (R = 50, Colyseus 20),
                   short echo / join / idle runs; Colyseus only if installable offline
  (default)        full: max sustained clients per system (probes, then 3 × 10 s
                   confirmation), echo, join storm, idle 1k and 10k, sealing, world; about 13 minutes
                   (echo runs the echo plugin in-process, echo-sandboxed the same load with
                   it loaded by URL into a Worker (trusted), echo-subprocess into its own
                   deno run subprocess (the untrusted default); ratios to in-process reported;
                   full mode alternates the three over five rounds and keeps each one's median)
  --only PARTS     comma-separated subset of: ${BENCH_PARTS.join(",")}
                   e.g. a sealed-only quick run: --quick --only sealed
                   (auth: token checks/s at the master, joins/s with tokens beside guests,
                   log-ins/s at the default scrypt cost)
  --profile        also profile the sealed cluster under relay load (--cpu-prof) and summarise
  --generators N   share each relay run's clients over N generator processes, for every system
                   (default 1: on 2 cores a second one costs more than it saves; 1..8)
  --pin            servers on the first half of the cores, load generators on the other half
                   (taskset; Linux), as if on two machines: neither takes the other's core
  --results DIR    where to write <ISO date>.json (default bench/results)
  -h, --help       this text`;

/**
 * Parses the bench's arguments.
 *
 * @param args The command line after the script.
 * @param defaultResultsDir The results directory when `--results` is absent.
 * @returns The options, or `"help"` for `--help`.
 * @throws {BenchUsageError} For an unknown flag or part.
 *
 * @example
 * ```ts
 * import { parseBenchArgs } from "./bench_options.ts";
 * import assert from "node:assert/strict";
 *
 * const options = parseBenchArgs(["--quick", "--only", "raw,sealed"], "/tmp/results");
 * assert.ok(options !== "help");
 * assert.equal(options.quick, true);
 * assert.deepEqual([...options.parts], ["raw", "sealed"]);
 * assert.equal(parseBenchArgs(["-h"], "/tmp"), "help");
 * assert.throws(() => parseBenchArgs(["--only", "udp"], "/tmp"), /unknown part "udp"/);
 * ```
 */
export function parseBenchArgs(
  args: readonly string[],
  defaultResultsDir: string,
): BenchOptions | "help" {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...args],
      options: {
        quick: { type: "boolean", default: false },
        only: { type: "string" },
        profile: { type: "boolean", default: false },
        results: { type: "string", default: defaultResultsDir },
        generators: { type: "string", default: "1" },
        pin: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    }));
  } catch (error) {
    throw new BenchUsageError(error instanceof Error ? error.message : String(error));
  }
  if (values.help) return "help";
  const names = values.only === undefined ? [...BENCH_PARTS] : values.only.split(",");
  const parts = new Set<BenchPart>();
  for (const name of names) {
    const part = BENCH_PARTS.find((p) => p === name);
    if (part === undefined) {
      throw new BenchUsageError(`unknown part "${name}"; parts: ${BENCH_PARTS.join(", ")}`);
    }
    parts.add(part);
  }
  const generators = Number(values.generators);
  if (!Number.isInteger(generators) || generators < 1 || generators > 8) {
    throw new BenchUsageError(`--generators must be an integer 1..8, got ${values.generators}`);
  }
  return {
    quick: values.quick,
    parts,
    profile: values.profile,
    resultsDir: values.results,
    generators,
    pin: values.pin,
  };
}
