/**
 * Entry point of `deno task keygen <name> [--keys-dir keys] [--force]`: writes a new random
 * 32-byte cluster key as `<keys-dir>/<name>` with mode 0600, to be copied to the master's keys
 * directory and the cluster's.
 *
 * This command must never print key bytes, never overwrite an existing key without `--force`,
 * and never write outside the keys directory.
 *
 * @module
 */

import { type CommandOutput, consoleOutput, runCommandLine, UsageError } from "./command_line.ts";
import { generateKey } from "./keys.ts";
import { KeyError } from "./security.ts";

const USAGE = `usage: deno task keygen <name> [--keys-dir DIR] [--force]

Writes 32 random bytes (an AES-256 key shared by the master and its clusters) to DIR/<name>,
mode 0600. <name>: 1-64 of A-Z a-z 0-9 _ . - (the clusters' key_name, default cluster_key).

  --keys-dir DIR   directory of key files (default keys)
  --force          replace an existing key (default: refuse, exit 2)
  -h, --help       this text`;

/** Where {@linkcode runKeygen} writes its lines: normal output and errors. */
export type KeygenOutput = CommandOutput;

/**
 * Runs the keygen command line and returns its exit code: 0 written (or help), 2 usage error,
 * bad name or existing key without `--force`, 1 any other failure (e.g. no write permission).
 *
 * @param args Command-line arguments, e.g. `Deno.args`.
 * @param output Where lines go (default: the console).
 *
 * @example
 * ```ts
 * import { runKeygen } from "./keygen.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const lines: string[] = [];
 * const output = { out: (l: string) => lines.push(l), err: (l: string) => lines.push(l) };
 * assert.equal(await runKeygen(["eu-1", "--keys-dir", dir], output), 0);
 * assert.equal((await Deno.stat(`${dir}/eu-1`)).size, 32);
 * assert.equal(await runKeygen(["eu-1", "--keys-dir", dir], output), 2); // exists
 * assert.equal(await runKeygen(["../x", "--keys-dir", dir], output), 2); // bad name
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function runKeygen(
  args: readonly string[],
  output: KeygenOutput = consoleOutput,
): Promise<number> {
  return runCommandLine(
    {
      name: "keygen",
      usage: USAGE,
      options: {
        "keys-dir": { type: "string", default: "keys" },
        force: { type: "boolean", default: false },
      },
      allowPositionals: true,
      run: ({ values, positionals }) =>
        writeKey(values["keys-dir"], positionals, values.force, output),
    },
    args,
    output,
  );
}

/** The keygen command once its flags are parsed. */
async function writeKey(
  keysDir: string,
  positionals: readonly string[],
  force: boolean,
  output: KeygenOutput,
): Promise<number> {
  if (positionals.length !== 1) {
    throw new UsageError(`expected exactly one key name, got ${positionals.length}`);
  }
  if (keysDir === "") {
    output.err("keygen: --keys-dir must not be empty");
    return 2;
  }
  try {
    const path = await generateKey(keysDir, positionals[0], { overwrite: force });
    output.out(
      `wrote ${path} (32 bytes, mode 0600) — copy it to the master's keys directory`,
    );
    return 0;
  } catch (cause) {
    if (cause instanceof KeyError && cause.code === "key_name_invalid") {
      output.err(`keygen: ${cause.message}`);
      return 2;
    }
    if (cause instanceof KeyError && cause.code === "key_exists") {
      output.err(`keygen: ${cause.message}; pass --force to replace it`);
      return 2;
    }
    // Anything else (permissions, disk) is reported with its own message, never key bytes.
    output.err(`keygen: ${cause instanceof Error ? cause.message : String(cause)}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await runKeygen(Deno.args));
