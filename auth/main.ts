/**
 * Entry point of `deno task auth`: reads the config (`--config <path>` and per-key flags, as
 * the other roles), sets up logging, starts the account service, prints the ready line
 * `auth listening on <host>:<port> status http://<host>:<port>/`, and stops gracefully on
 * SIGINT/SIGTERM. `deno task auth rotate-key [--config PATH]` instead adds a new signing key
 * (keeping `keys_kept` old ones), rewrites the public keys file and exits. A bad config exits 2
 * naming the field; a port or database that cannot be opened exits 1. Library code never
 * imports this module.
 *
 * @module
 */

import { configFromArgs, exitOnConfigError } from "../shared/config.ts";
import { runServerMain } from "../shared/server_main.ts";
import { authOptionsFromConfig } from "./auth_options.ts";
import { rotateKeyRing, writePublicKeys } from "./key_ring.ts";
import { startAuth } from "./start_auth.ts";

if (Deno.args[0] === "rotate-key") {
  let config;
  try {
    config = await configFromArgs(Deno.args.slice(1), "auth");
  } catch (error) {
    exitOnConfigError(error);
  }
  const ring = await rotateKeyRing(config.auth.signingKeys, config.auth.keysKept);
  await writePublicKeys(ring, config.auth.publicKeysOut);
  console.log(
    `new signing key ${ring.current.kid}; published ${ring.jwks.keys.length} key(s) in ` +
      `${config.auth.publicKeysOut}; restart the auth service to sign with it`,
  );
} else {
  await runServerMain("auth", Deno.args, (config) => {
    const options = authOptionsFromConfig(config);
    return {
      name: "auth",
      where: `${options.hostname}:${options.port}`,
      start: () => startAuth(options),
    };
  });
}
