/**
 * Entry point of `deno task master`: reads the config (`--config <path>` and per-key flags),
 * sets up logging, starts the master, prints the ready line
 * `master listening on <host>:<port> status http://<host>:<port>/` (plus ` ws ws://…` when
 * `ws_enabled`), and stops gracefully on
 * SIGINT/SIGTERM. A bad config exits 2 naming the field; a port that cannot be bound exits 1.
 * Library code never imports this module.
 *
 * @module
 */

import { resolvedTlsPort } from "../shared/config_schema.ts";
import { runServerMain } from "../shared/server_main.ts";
import { accountAuthenticate, loadPublicKeySet } from "./account_authenticate.ts";
import { masterOptionsFromConfig } from "./master_options.ts";
import { startMaster } from "./start_master.ts";

await runServerMain("master", Deno.args, (config, tls) => {
  const port = resolvedTlsPort(config, "master");
  const options = {
    ...masterOptionsFromConfig(config),
    ...(tls === null || port === null ? {} : { tls: { port, cert: tls.cert, key: tls.key } }),
  };
  return {
    name: "master",
    where: `${options.hostname}:${options.port}`,
    start: async () => {
      // Accounts: [master] auth_public_keys names the account service's public keys.
      const source = config.master.authPublicKeys;
      if (source === null) return await startMaster(options);
      const accounts = await accountAuthenticate({
        loadKeys: () => loadPublicKeySet(source),
        allowGuests: config.master.allowGuests,
      });
      return await startMaster({
        ...options,
        authenticate: accounts.authenticate,
        metricFamilies: () => [accounts.metrics],
      });
    },
  };
});
