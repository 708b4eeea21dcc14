/**
 * Whether a file or folder exists, for the command-line tools that create files only when they
 * are missing (the dev certificates, the bench's Colyseus install). Only "not found" means
 * false: any other failure (permissions, I/O) is thrown, never read as "absent".
 *
 * @module
 */

/**
 * Whether `path` exists (a file, a folder or anything `Deno.stat` follows to).
 *
 * @param path The path to look at.
 * @returns `true` when it exists, `false` when `Deno.stat` says NotFound.
 * @throws Every other error of `Deno.stat` (e.g. `PermissionDenied`).
 *
 * @example
 * ```ts
 * import { pathExists } from "./path_exists.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * assert.equal(await pathExists(dir), true);
 * assert.equal(await pathExists(`${dir}/missing`), false);
 * await Deno.remove(dir);
 * ```
 */
export async function pathExists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}
