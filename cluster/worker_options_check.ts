/**
 * Whether this Deno process may give a Worker its own permissions (`new Worker(url, { deno:
 * { permissions } })`, what `trusted` plugins run with). Without `--unstable-worker-options`
 * (or `"unstable": ["worker-options"]` in the deno.json Deno used), Deno does not throw: it
 * prints a line and ends the whole process with exit code 70, so nothing can clean up. The
 * cluster checks first and refuses with a catchable error instead.
 *
 * Deno has no API for its unstable flags, so this reads the process's command line
 * (`/proc/self/cmdline`, Linux) and the config file Deno would use. It answers "missing" only
 * when sure: the flag is absent from the command line and the config is known (given by
 * `--config`, or `--no-config`, or the deno.json/deno.jsonc files from the working directory
 * up) and none enables it. Anything unreadable means "cannot tell", and the Worker is tried.
 *
 * @module
 */

/**
 * The config file Deno uses, as far as the command line tells: `{ noConfig: true }`, an
 * explicit `--config` path, or undefined (auto-discovery).
 */
type ConfigChoice = { readonly noConfig: true } | { readonly path: string } | undefined;

function configChoice(args: readonly string[]): ConfigChoice {
  // Only Deno's own flags: the script's arguments (a cluster's `--config Config.toml`) are not.
  args = denoFlags(args);
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--no-config") return { noConfig: true };
    if ((arg === "--config" || arg === "-c") && i + 1 < args.length) return { path: args[i + 1] };
    const inline = /^(?:--config|-c)=(.+)$/.exec(arg);
    if (inline !== null) return { path: inline[1] };
  }
  return undefined;
}

/**
 * Decides from a command line and the text of the config Deno uses (null: no config file,
 * undefined: unknown) whether worker options are surely off.
 *
 * @param args The process's arguments after the executable (`run`, flags, script, …).
 * @param configText The config file's text, `null` if there is none, `undefined` if unknown.
 *
 * @example
 * ```ts
 * import { workerOptionsSurelyMissing } from "./worker_options_check.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(workerOptionsSurelyMissing(["run", "-A", "main.ts"], null), true);
 * assert.equal(
 *   workerOptionsSurelyMissing(["run", "--unstable-worker-options", "main.ts"], null),
 *   false,
 * );
 * assert.equal(
 *   workerOptionsSurelyMissing(["run", "main.ts"], '{ "unstable": ["worker-options"] }'),
 *   false,
 * );
 * assert.equal(workerOptionsSurelyMissing(["run", "main.ts"], undefined), false); // cannot tell
 * ```
 */
export function workerOptionsSurelyMissing(
  args: readonly string[],
  configText: string | null | undefined,
): boolean {
  const flags = denoFlags(args);
  if (flags.some((arg) => arg === "--unstable-worker-options" || arg === "--unstable")) {
    return false;
  }
  if (configText === undefined) return false;
  if (configText === null) return true;
  return !/"worker-options"/.test(configText);
}

// Deno's flags come before the script; the script's own arguments could look like anything.
function denoFlags(args: readonly string[]): readonly string[] {
  const scriptAt = args.findIndex((arg, i) =>
    i > 0 && !arg.startsWith("-") && !isFlagValue(args, i)
  );
  return scriptAt < 0 ? args : args.slice(0, scriptAt);
}

// Values of the flags that take a separate one (`--config x`, `-c x`), not scripts.
function isFlagValue(args: readonly string[], i: number): boolean {
  return args[i - 1] === "--config" || args[i - 1] === "-c";
}

/**
 * Reads the process's command line and config and tells whether worker options are surely
 * off (see {@linkcode workerOptionsSurelyMissing}). Needs read access to `/proc/self` and the
 * config; without it, or off Linux, answers false (cannot tell).
 *
 * @example
 * ```ts
 * import { workerOptionsMissing } from "./worker_options_check.ts";
 * import assert from "node:assert/strict";
 *
 * // The repository's deno.json enables worker-options.
 * assert.equal(workerOptionsMissing(), false);
 * ```
 */
export function workerOptionsMissing(): boolean {
  let args: string[];
  try {
    args = Deno.readTextFileSync("/proc/self/cmdline").split("\0").filter((a) => a !== "");
  } catch {
    return false; // not Linux, or no read permission: cannot tell
  }
  args = args.slice(1);
  const choice = configChoice(args);
  let configText: string | null | undefined;
  if (choice === undefined) configText = discoverConfig(Deno.cwd());
  else if ("noConfig" in choice) configText = null;
  else configText = readOrUndefined(choice.path);
  return workerOptionsSurelyMissing(args, configText);
}

function readOrUndefined(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return undefined;
  }
}

// Every deno.json / deno.jsonc from `dir` up (a workspace member's and its root's), joined;
// null if there is none, undefined if a directory cannot be read.
function discoverConfig(dir: string): string | null | undefined {
  const found: string[] = [];
  let current = dir;
  while (true) {
    for (const name of ["deno.json", "deno.jsonc"]) {
      try {
        found.push(Deno.readTextFileSync(`${current === "" ? "" : current}/${name}`));
      } catch (error) {
        if (!(error instanceof Deno.errors.NotFound)) return undefined;
      }
    }
    if (current === "") break;
    current = current.replace(/\/[^/]*$/, "");
  }
  return found.length === 0 ? null : found.join("\n");
}
