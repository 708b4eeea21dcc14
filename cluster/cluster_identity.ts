/**
 * The cluster's identity key pair (clients pin its public key): loaded from the keys directory,
 * created the first time, with log lines that tell the operator where the public key is and
 * where to publish it.
 *
 * It must never log the private key.
 *
 * @module
 */

import { type LoadedIdentity, loadOrCreateIdentity } from "../shared/keys.ts";
import { roleLogger } from "../shared/logging.ts";

const logger = roleLogger("cluster");

/**
 * Loads (or creates) the identity key pair and says so in the log.
 *
 * @param keysDir The keys directory.
 * @param name The key pair's name (`<name>.pub` holds the public key).
 * @param domainPubKey Where clients fetch the public key, if it is published (logged).
 * @returns The identity.
 * @throws {KeyError} If the key files are unusable.
 *
 * @example
 * ```ts
 * import { loadClusterIdentity } from "./cluster_identity.ts";
 * import assert from "node:assert/strict";
 *
 * const keysDir = await Deno.makeTempDir();
 * const made = await loadClusterIdentity(keysDir, "identity");
 * assert.equal(made.created, true);
 * const again = await loadClusterIdentity(keysDir, "identity");
 * assert.deepEqual(again.publicKey, made.publicKey);
 * await Deno.remove(keysDir, { recursive: true });
 * ```
 */
export async function loadClusterIdentity(
  keysDir: string,
  name: string,
  domainPubKey?: string,
): Promise<LoadedIdentity> {
  const identity = await loadOrCreateIdentity(keysDir, name);
  const publicFile = `${keysDir.replace(/[\\/]+$/, "")}/${name}.pub`;
  if (identity.created) {
    logger.info("created the identity key pair {name}; its public key is in {file}", {
      name,
      file: publicFile,
    });
  } else if (identity.publicFileRewritten) {
    logger.info("rewrote {file} from the identity private key", { file: publicFile });
  }
  if (domainPubKey) {
    logger.info("clients fetch the identity public key from {url}: publish {file} there", {
      url: domainPubKey,
      file: publicFile,
    });
  }
  return identity;
}
