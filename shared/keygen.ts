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

import { parseArgs } from "node:util";
import { generateKey } from "./keys.ts";
import { KeyError } from "./security.ts";

const USAGE = `usage: deno task keygen <name> [--keys-dir DIR] [--force]

Writes 32 random bytes (an AES-256 key shared by the master and its clusters) to DIR/<name>,
mode 0600. <name>: 1-64 of A-Z a-z 0-9 _ . - (the clusters' key_name, default cluster_key).

  --keys-dir DIR   directory of key files (default keys)
  --force          replace an existing key (default: refuse, exit 2)
  -h, --help       this text`;

/**
 * Where {@linkcode runKeygen} writes its lines: normal output and errors.
 *
 * @example
 * ```ts
 * import type { KeygenOutput } from "./keygen.ts";
 * import assert from "node:assert/strict";
 *
 * const lines: string[] = [];
 * const output: KeygenOutput = { out: (l) => lines.push(l), err: (l) => lines.push(l) };
 * output.out("hi");
 * assert.deepEqual(lines, ["hi"]);
 * ```
 */
export interface KeygenOutput {
  /** Receives normal output lines. */
  readonly out: (line: string) => void;
  /** Receives error lines. */
  readonly err: (line: string) => void;
}

const consoleOutput: KeygenOutput = {
  out: (line) => console.log(line),
  err: (line) => console.error(line),
};

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
export async function runKeygen(
  args: readonly string[],
  output: KeygenOutput = consoleOutput,
): Promise<number> {
  let values: { "keys-dir": string; force: boolean; help: boolean };
  let positionals: string[];
  try {
    const parsed = parseArgs({
      args: [...args],
      allowPositionals: true,
      strict: true,
      options: {
        "keys-dir": { type: "string", default: "keys" },
        force: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    });
    values = parsed.values;
    positionals = parsed.positionals;
  } catch (cause) {
    // parseArgs throws a TypeError for unknown options or a missing option value.
    if (!(cause instanceof TypeError)) throw cause;
    output.err(`keygen: ${cause.message}`);
    output.err(USAGE);
    return 2;
  }
  if (values.help) {
    output.out(USAGE);
    return 0;
  }
  if (positionals.length !== 1) {
    output.err(`keygen: expected exactly one key name, got ${positionals.length}`);
    output.err(USAGE);
    return 2;
  }
  const keysDir = values["keys-dir"];
  if (keysDir === "") {
    output.err("keygen: --keys-dir must not be empty");
    return 2;
  }
  try {
    const path = await generateKey(keysDir, positionals[0], { overwrite: values.force });
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
