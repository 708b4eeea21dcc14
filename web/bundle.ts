/**
 * Builds the browser bundle: one ES module of `browser.ts` (or another browser-compatible entry,
 * such as the demo page's script) with every dependency inlined, made by `deno bundle` for the
 * browser platform. `deno task bundle` writes `dist/sustenet.js`; the demo and the browser tests
 * bundle on the fly into a directory of their own.
 *
 * It must never bundle a module that is not browser compatible (tests/browser_graph_test.ts
 * checks the entries' graphs; `deno bundle --platform browser` fails on a `node:` import).
 *
 * @module
 */

import { type CommandOutput, consoleOutput, runCommandLine } from "../shared/command_line.ts";
import { fileURLToPath as fromFileUrl } from "node:url";

/** Options of {@linkcode bundleForBrowser}. */
export interface BundleOptions {
  /** The entry module (a path or file URL). @default {the package's browser.ts} */
  readonly entry?: string | URL;
  /** Minify the output. @default {true} */
  readonly minify?: boolean;
  /** Aborting it kills `deno bundle` (the call then throws). */
  readonly signal?: AbortSignal;
}

/** The package's browser entry point. */
export const BROWSER_ENTRY: URL = new URL("../browser.ts", import.meta.url);

/**
 * Bundles `entry` into the single ES module `outFile` with `deno bundle --platform browser`.
 *
 * @param outFile Where to write the bundle (its directory must exist).
 * @param options Which entry, whether to minify.
 * @throws {Error} If `deno bundle` fails; the message holds its output.
 *
 * @example
 * ```ts ignore
 * import { bundleForBrowser } from "./bundle.ts";
 *
 * await bundleForBrowser("/tmp/sustenet.js");
 * ```
 */
export async function bundleForBrowser(
  outFile: string,
  options: BundleOptions = {},
): Promise<void> {
  await runDenoBundle(["--output", outFile], options);
}

/**
 * Bundles `entry` as {@linkcode bundleForBrowser} does and returns the module's bytes, written
 * nowhere (a server that may not write files, such as `deno task cluster`, can serve them).
 *
 * @param options Which entry, whether to minify, a signal to stop it.
 * @returns The bundle.
 * @throws {Error} If `deno bundle` fails or is aborted; the message holds its output.
 *
 * @example
 * ```ts ignore
 * import { bundleBrowserModule } from "./bundle.ts";
 *
 * const bytes = await bundleBrowserModule();
 * console.log(`${bytes.length} bytes`);
 * ```
 */
export async function bundleBrowserModule(options: BundleOptions = {}): Promise<Uint8Array> {
  return await runDenoBundle([], options);
}

/** Runs `deno bundle` with `extraArgs` before the entry; returns its stdout. */
async function runDenoBundle(
  extraArgs: readonly string[],
  options: BundleOptions,
): Promise<Uint8Array> {
  const entry = options.entry ?? BROWSER_ENTRY;
  const entryPath = entry instanceof URL ? fromFileUrl(entry) : entry;
  const args = ["bundle", "--platform", "browser", "--format", "esm", "--quiet"];
  // Names kept: errors report their class name (`RecordError`), which minifying would mangle.
  if (options.minify ?? true) args.push("--minify", "--keep-names");
  args.push(...extraArgs, entryPath);
  const output = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: fromFileUrl(new URL("..", import.meta.url)),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    ...(options.signal === undefined ? {} : { signal: options.signal }),
  }).output();
  if (!output.success) {
    const text = new TextDecoder().decode(output.stderr) + new TextDecoder().decode(output.stdout);
    throw new Error(`deno bundle ${entryPath} failed (exit ${output.code}):\n${text}`);
  }
  return output.stdout;
}

const USAGE = "usage: deno task bundle [--no-minify]\n" +
  "  bundles the package's browser entry (browser.ts) into dist/sustenet.js, one ES module\n" +
  "  for web pages and HTML5 game exports\n" +
  "\n" +
  "  --no-minify   keep it readable (default minified, names kept)\n" +
  "  -h, --help    this text";

/**
 * Runs the bundle command line and returns its exit code: 0 written (or help), 2 usage error.
 *
 * @param args Command-line arguments, e.g. `Deno.args`.
 * @param output Where lines go (default: the console).
 *
 * @example Help writes nothing
 * ```ts
 * import { runBundle } from "./bundle.ts";
 * import assert from "node:assert/strict";
 *
 * const lines: string[] = [];
 * const output = { out: (l: string) => lines.push(l), err: (l: string) => lines.push(l) };
 * assert.equal(await runBundle(["--help"], output), 0);
 * assert.match(lines[0], /^usage: deno task bundle/);
 * assert.equal(await runBundle(["extra"], output), 2);
 * ```
 */
export function runBundle(
  args: readonly string[],
  output: CommandOutput = consoleOutput,
): Promise<number> {
  return runCommandLine(
    {
      name: "bundle",
      usage: USAGE,
      options: { "no-minify": { type: "boolean" } },
      run: async ({ values }) => {
        const out = new URL("../dist/sustenet.js", import.meta.url);
        await Deno.mkdir(new URL(".", out), { recursive: true });
        await bundleForBrowser(fromFileUrl(out), { minify: values["no-minify"] !== true });
        const { size } = await Deno.stat(out);
        output.out(`wrote ${fromFileUrl(out)} (${(size / 1024).toFixed(1)} KiB)`);
        return 0;
      },
    },
    args,
    output,
  );
}

if (import.meta.main) Deno.exit(await runBundle(Deno.args));
