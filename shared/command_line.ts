/**
 * The shape every small command (`deno task certs`, `keygen`, `bundle`) shares: parse the
 * arguments strictly, answer `-h`/`--help` with the usage text (exit 0), and turn a bad
 * command line — an unknown flag, a missing value, or a {@linkcode UsageError} the command
 * throws — into `<name>: <what is wrong>` and the usage text on stderr, exit 2.
 *
 * @module
 */
import { parseArgs, type ParseArgsConfig } from "node:util";

/** The flags of a command, as `node:util` `parseArgs` takes them. */
export type CommandOptions = NonNullable<ParseArgsConfig["options"]>;

/** Where a command writes its lines: normal output and errors. */
export interface CommandOutput {
  /** Receives normal output lines. */
  readonly out: (line: string) => void;
  /** Receives error lines. */
  readonly err: (line: string) => void;
}

/**
 * The console as a {@linkcode CommandOutput}.
 *
 * @example
 * ```ts
 * import { consoleOutput } from "./command_line.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(typeof consoleOutput.err, "function");
 * ```
 */
export const consoleOutput: CommandOutput = {
  out: (line) => console.log(line),
  err: (line) => console.error(line),
};

/** A bad command line found by the command itself; the message says what is wrong. */
export class UsageError extends Error {
  /** Always `usage`: the caller exits 2 with the usage text. */
  readonly code = "usage" as const;

  /** @param message What is wrong with the command line. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** What the parsed command line holds (`help` is handled before `run` sees it). */
type Parsed<O extends CommandOptions> = ReturnType<
  typeof parseArgs<{
    args: string[];
    options: O & { help: { type: "boolean"; short: "h" } };
    strict: true;
    allowPositionals: true;
  }>
>;

/** One command: its name, usage text, flags, and what it does. */
export interface CommandLine<O extends CommandOptions> {
  /** Starts each error line, e.g. `certs`. */
  readonly name: string;
  /** The `--help` text, also printed after a usage error. */
  readonly usage: string;
  /** Its flags (`-h`/`--help` is added). */
  readonly options: O;
  /** Whether arguments other than flags are taken; default false. */
  readonly allowPositionals?: boolean;
  /**
   * Does the command and returns its exit code; may throw {@linkcode UsageError} (exit 2
   * with the usage text).
   */
  run(parsed: Parsed<O>, output: CommandOutput): Promise<number> | number;
}

/**
 * Runs a command line and returns its exit code: what `run` returns, 0 for help, 2 for a
 * usage error.
 *
 * @param command The command.
 * @param args Command-line arguments, e.g. `Deno.args`.
 * @param output Where lines go (default: the console).
 *
 * @example
 * ```ts
 * import { runCommandLine, UsageError } from "./command_line.ts";
 * import assert from "node:assert/strict";
 *
 * const lines: string[] = [];
 * const output = { out: (l: string) => lines.push(l), err: (l: string) => lines.push(l) };
 * const greet = {
 *   name: "greet",
 *   usage: "usage: greet [--loud] NAME",
 *   options: { loud: { type: "boolean" } } as const,
 *   allowPositionals: true,
 *   run: ({ values, positionals }: { values: { loud?: boolean }; positionals: string[] }) => {
 *     if (positionals.length !== 1) throw new UsageError("one name, please");
 *     lines.push(`hello ${positionals[0]}${values.loud ? "!" : ""}`);
 *     return 0;
 *   },
 * };
 * assert.equal(await runCommandLine(greet, ["--loud", "ada"], output), 0);
 * assert.equal(await runCommandLine(greet, ["--quiet"], output), 2);
 * assert.equal(await runCommandLine(greet, [], output), 2);
 * assert.equal(await runCommandLine(greet, ["-h"], output), 0);
 * assert.equal(lines[0], "hello ada!");
 * assert.match(lines[1], /^greet: Unknown option '--quiet'/);
 * assert.deepEqual(lines.slice(2), [
 *   "usage: greet [--loud] NAME",
 *   "greet: one name, please",
 *   "usage: greet [--loud] NAME",
 *   "usage: greet [--loud] NAME",
 * ]);
 * ```
 */
export async function runCommandLine<O extends CommandOptions>(
  command: CommandLine<O>,
  args: readonly string[],
  output: CommandOutput = consoleOutput,
): Promise<number> {
  const usageError = (message: string): number => {
    output.err(`${command.name}: ${message}`);
    output.err(command.usage);
    return 2;
  };
  let parsed: Parsed<O>;
  try {
    parsed = parseArgs({
      args: [...args],
      options: { ...command.options, help: { type: "boolean", short: "h" } },
      strict: true,
      allowPositionals: command.allowPositionals ?? false,
    }) as Parsed<O>;
  } catch (cause) {
    // parseArgs throws a TypeError for unknown options, a missing value or a positional.
    if (!(cause instanceof TypeError)) throw cause;
    return usageError(cause.message);
  }
  if ((parsed.values as { readonly help?: boolean }).help === true) {
    output.out(command.usage);
    return 0;
  }
  try {
    return await command.run(parsed, output);
  } catch (cause) {
    if (!(cause instanceof UsageError)) throw cause;
    return usageError(cause.message);
  }
}
