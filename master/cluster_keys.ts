/**
 * Where the master finds the shared cluster keys: {@linkcode keysDirKeySource} reads
 * `<keysDir>/<keyName>` afresh on every BecomeCluster, so adding a key file needs no restart
 * (and removing one takes effect at the next registration). Uses `Deno.readFile` through
 * shared/keys.ts. It must never throw for a name a peer sent, never read outside the keys
 * directory, and never log key bytes.
 *
 * @module
 */

import { loadAllKeys, loadKey } from "../shared/keys.ts";
import { roleLogger } from "../shared/logging.ts";
import { KeyError } from "../shared/security.ts";

const logger = roleLogger("master", "keys");

/**
 * Looks up a cluster key by name: its 32 bytes, or `undefined` when there is no usable key
 * of that name.
 */
export type ClusterKeySource = (keyName: string) => Promise<Uint8Array | undefined>;

/**
 * A key source reading `<dir>/<keyName>` on each call. Bad names, missing files and files of
 * the wrong size give `undefined` (a bad file is logged as a warning).
 *
 * @param dir The keys directory.
 *
 * @example
 * ```ts
 * import { keysDirKeySource } from "./cluster_keys.ts";
 * import { generateKey } from "../shared/keys.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const source = keysDirKeySource(dir);
 * assert.equal(await source("eu-1"), undefined);
 * await generateKey(dir, "eu-1"); // added while running: seen at once
 * assert.equal((await source("eu-1"))?.length, 32);
 * assert.equal(await source("../etc/passwd"), undefined);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function keysDirKeySource(dir: string): ClusterKeySource {
  return async (keyName) => {
    try {
      return await loadKey(dir, keyName);
    } catch (error) {
      if (!(error instanceof KeyError)) throw error;
      if (error.code === "key_invalid") {
        logger.warn("cluster key {keyName} is unusable: {message}", {
          keyName,
          message: error.message,
        });
      }
      // key_missing and key_name_invalid: an unknown name, answered like any other.
      return undefined;
    }
  };
}

/**
 * Logs what the keys directory holds at startup (names only) and any file that is not a
 * usable key, so an operator sees a missing or misplaced key before the first cluster fails.
 *
 * @param dir The keys directory.
 * @returns The number of usable keys.
 *
 * @example
 * ```ts
 * import { reportKeysDir } from "./cluster_keys.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * assert.equal(await reportKeysDir(dir), 0);
 * await Deno.remove(dir);
 * ```
 */
export async function reportKeysDir(dir: string): Promise<number> {
  const { keys, problems } = await loadAllKeys(dir);
  for (const problem of problems) {
    if (problem.kind === "skipped") continue;
    if (problem.file === dir) logger.warn("keys dir {dir}: {reason}", { dir, ...problem });
    else logger.warn("keys dir {dir}: {file}: {reason}", { dir, ...problem });
  }
  if (keys.size === 0) {
    logger.warn(
      "no cluster key in {dir}: clusters cannot register until one is added " +
        "(deno task keygen <name>)",
      { dir },
    );
  } else {
    logger.info("cluster keys in {dir}: {names}", { dir, names: [...keys.keys()].join(", ") });
  }
  return keys.size;
}
