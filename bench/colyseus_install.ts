/**
 * Makes the Colyseus baseline runnable: checks that Node is installed and installs
 * `bench/colyseus/`'s pinned packages (`npm install --prefix bench/colyseus`, from the lockfile)
 * when its `node_modules` is missing — offline only in `--quick` mode, so CI never waits on the
 * registry.
 *
 * It never installs anywhere but `bench/colyseus/`, and reports why Colyseus is unavailable
 * instead of failing the bench.
 *
 * @module
 */

import { COLYSEUS_DIR } from "./bench_servers.ts";
import { pathExists } from "../shared/path_exists.ts";

/** Whether the Colyseus baseline can run, and why not. */
export type ColyseusAvailability = { readonly ok: true } | {
  readonly ok: false;
  readonly why: string;
};

async function run(command: string, args: string[]): Promise<Deno.CommandOutput | undefined> {
  try {
    return await new Deno.Command(command, { args, stdout: "piped", stderr: "piped" }).output();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

/**
 * Installs the Colyseus packages if needed.
 *
 * @param offline Install from npm's cache only (quick mode).
 */
export async function ensureColyseus(offline: boolean): Promise<ColyseusAvailability> {
  const node = await run("node", ["--version"]);
  if (node === undefined || !node.success) return { ok: false, why: "node is not installed" };
  if (await pathExists(`${COLYSEUS_DIR}/node_modules/@colyseus/core/package.json`)) {
    return { ok: true };
  }
  const args = ["install", "--prefix", COLYSEUS_DIR, "--no-audit", "--no-fund"];
  if (offline) args.push("--offline");
  const npm = await run("npm", args);
  if (npm === undefined) return { ok: false, why: "npm is not installed" };
  if (!npm.success) {
    const tail = new TextDecoder().decode(npm.stderr).trim().split("\n").slice(-3).join(" / ");
    return {
      ok: false,
      why: `npm install${offline ? " --offline" : ""} failed: ${tail}`,
    };
  }
  return { ok: true };
}
