/**
 * {@linkcode startAuth}: runs the account service in this process — opens the store (applying
 * migrations), loads or creates the signing key ring, writes the public keys for masters,
 * serves the HTTP JSON API on `Deno.serve`, and a status server (`/health`, `/metrics`) like the
 * other roles. `stop()` finishes in-flight requests, then closes the store; nothing is left
 * open after it resolves.
 *
 * @module
 */

import { roleLogger } from "../shared/logging.ts";
import { startStatusServer, type StatusServer } from "../shared/status_server.ts";
import type { AccountStore } from "./account_store.ts";
import { AuthService } from "./auth_service.ts";
import { type KeyRing, loadKeyRing, writePublicKeys } from "./key_ring.ts";
import type { LoginLimits } from "./login_limiter.ts";
import { PasswordHasher, type ScryptParams } from "./password_hasher.ts";
import { PostgresAccountStore } from "./postgres_account_store.ts";
import { SqliteAccountStore } from "./sqlite_account_store.ts";

const logger = roleLogger("auth");

/** Which store {@linkcode startAuth} opens, or an open one. */
export type AuthStoreChoice =
  | { readonly kind: "sqlite"; readonly path: string }
  | { readonly kind: "postgres"; readonly url: string }
  | { readonly kind: "open"; readonly store: AccountStore };

/** Options of {@linkcode startAuth}. */
export interface AuthOptions {
  /** Address to bind. @default {"127.0.0.1"} */
  readonly hostname?: string;
  /** Port; 0 lets the OS choose. @default {6258} */
  readonly port?: number;
  /** The store. */
  readonly store: AuthStoreChoice;
  /** The signing key ring file (created if missing), or a loaded ring. */
  readonly signingKeys: string | KeyRing;
  /** Where to write the public keys (JWK Set) for masters; null = don't. @default {null} */
  readonly publicKeysOut?: string | null;
  /** Access token lifetime, in seconds. @default {900} */
  readonly accessTokenTtlS?: number;
  /** Refresh token lifetime, in seconds. @default {2592000} */
  readonly refreshTokenTtlS?: number;
  /** Password KDF cost. @default {{ logN: 15, r: 8, p: 1 }} */
  readonly scrypt?: ScryptParams;
  /** Log-in limits. @default {0.1/s burst 5 per account, 1/s burst 20 per address} */
  readonly limits?: LoginLimits;
  /** Largest request body. @default {8192} */
  readonly maxBodyBytes?: number;
  /** Most password hashes pending at once (then `503 busy`). @default {64} */
  readonly maxPendingHashes?: number;
  /** Status server (`/health`, `/metrics`), or false. @default {false} */
  readonly status?: { readonly hostname?: string; readonly port: number } | false;
}

/** A running account service. */
export interface AuthServer extends AsyncDisposable {
  /** The API's bound address. */
  readonly addr: { readonly hostname: string; readonly port: number };
  /** The status server's bound address, or null. */
  readonly statusAddr: { readonly hostname: string; readonly port: number } | null;
  /** The request handler (metrics, store). */
  readonly service: AuthService;
  /** The signing keys in use. */
  readonly keyRing: KeyRing;
  /** Stops serving, then closes the store. */
  stop(): Promise<void>;
}

async function openStore(choice: AuthStoreChoice): Promise<AccountStore> {
  switch (choice.kind) {
    case "sqlite":
      return SqliteAccountStore.open(choice.path);
    case "postgres":
      return await PostgresAccountStore.connect(choice.url);
    case "open":
      return choice.store;
  }
}

/**
 * Starts the account service.
 *
 * @param options Store, keys, lifetimes, KDF cost and limits.
 *
 * @example
 * ```ts
 * import { startAuth } from "./start_auth.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const auth = await startAuth({
 *   port: 0,
 *   store: { kind: "sqlite", path: `${dir}/auth.sqlite` },
 *   signingKeys: `${dir}/ring.json`,
 *   scrypt: { logN: 10, r: 8, p: 1 },
 * });
 * const res = await fetch(`http://127.0.0.1:${auth.addr.port}/health`);
 * assert.equal((await res.json()).status, "ok");
 * await auth.stop();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function startAuth(options: AuthOptions): Promise<AuthServer> {
  const keyRing = typeof options.signingKeys === "string"
    ? await loadKeyRing(options.signingKeys)
    : options.signingKeys;
  if (options.publicKeysOut) await writePublicKeys(keyRing, options.publicKeysOut);
  const store = await openStore(options.store);
  const service = new AuthService({
    store,
    hasher: new PasswordHasher(options.scrypt ?? { logN: 15, r: 8, p: 1 }),
    keyRing,
    accessTokenTtlS: options.accessTokenTtlS ?? 900,
    refreshTokenTtlS: options.refreshTokenTtlS ?? 2_592_000,
    limits: options.limits ?? {
      accountRatePerS: 0.1,
      accountBurst: 5,
      addressRatePerS: 1,
      addressBurst: 20,
    },
    ...(options.maxBodyBytes === undefined ? {} : { maxBodyBytes: options.maxBodyBytes }),
    ...(options.maxPendingHashes === undefined
      ? {}
      : { maxPendingHashes: options.maxPendingHashes }),
  });
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve({
      hostname: options.hostname ?? "127.0.0.1",
      port: options.port ?? 6258,
      onListen: () => {},
      onError: (error) => {
        logger.error("request failed: {error}", {
          error: error instanceof Error ? error.message : String(error),
        });
        return Response.json({ error: "internal", message: "internal error" }, { status: 500 });
      },
    }, (request, info) => service.handle(request, info.remoteAddr.hostname));
  } catch (error) {
    await store.close();
    throw error;
  }
  let status: StatusServer | null = null;
  if (options.status) {
    try {
      status = startStatusServer({
        hostname: options.status.hostname ?? "127.0.0.1",
        port: options.status.port,
        health: () => ({ status: "ok", role: "auth", store: store.engine }),
        metrics: () => service.metrics.families(),
      });
    } catch (error) {
      await server.shutdown();
      await store.close();
      throw error;
    }
  }
  logger.info("account service on {host}:{port}, store {engine}, signing key {kid}", {
    host: server.addr.hostname,
    port: server.addr.port,
    engine: store.engine,
    kid: keyRing.current.kid,
  });
  let stopping: Promise<void> | undefined;
  const stop = () =>
    stopping ??= (async () => {
      await Promise.all([server.shutdown(), status?.close()]);
      await service.close();
    })();
  return {
    addr: { hostname: server.addr.hostname, port: server.addr.port },
    statusAddr: status?.addr ?? null,
    service,
    keyRing,
    stop,
    [Symbol.asyncDispose]: stop,
  };
}
