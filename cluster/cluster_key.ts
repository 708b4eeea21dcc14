/**
 * The key a cluster shares with its master (it seals join tickets and the registration), loaded
 * from the keys directory and generated, with a warning, the first time.
 *
 * It must never overwrite a key another process made meanwhile, and never log the key.
 *
 * @module
 */

import { generateKey, keyPath, loadKey } from "../shared/keys.ts";
import { roleLogger } from "../shared/logging.ts";
import { KeyError } from "../shared/security.ts";

const logger = roleLogger("cluster");

/**
 * Loads the master-shared key, generating it (with a warning to copy it to the master) the
 * first time.
 *
 * @param keysDir The keys directory.
 * @param keyName The key's name (also its file name in `keysDir`).
 * @returns The key bytes.
 * @throws {KeyError} If the key file is unusable.
 *
 * @example
 * ```ts
 * import { loadClusterKey } from "./cluster_key.ts";
 * import assert from "node:assert/strict";
 *
 * const keysDir = await Deno.makeTempDir();
 * const made = await loadClusterKey(keysDir, "cluster");
 * assert.deepEqual(await loadClusterKey(keysDir, "cluster"), made);
 * await Deno.remove(keysDir, { recursive: true });
 * ```
 */
export async function loadClusterKey(keysDir: string, keyName: string): Promise<Uint8Array> {
  try {
    return await loadKey(keysDir, keyName);
  } catch (error) {
    if (!(error instanceof KeyError) || error.code !== "key_missing") throw error;
  }
  try {
    await generateKey(keysDir, keyName);
    logger.warn(
      "no cluster key {path}: generated a new one; the master needs this same key, so copy " +
        "the file into the master's keys directory",
      { path: keyPath(keysDir, keyName) },
    );
  } catch (error) {
    // Another process made it between our two steps: use theirs.
    if (!(error instanceof KeyError) || error.code !== "key_exists") throw error;
  }
  return await loadKey(keysDir, keyName);
}
