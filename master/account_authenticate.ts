/**
 * The master's account hook: an {@linkcode AuthenticateHook} that reads JoinCluster's
 * credential as an access token of the account service (`auth/`), verifies it offline against
 * the service's public keys (Ed25519, by key id) and makes the account id the player id. An
 * empty credential is a guest when guests are allowed; anything else that is not a valid,
 * unexpired token signed by a known key is refused (`Error(Unauthorized)`, no ticket). A token
 * naming an unknown key id reloads the keys (at most once per `reloadMinMs`), so a rotation
 * reaches running masters without a restart and forged key ids cannot make it fetch in a loop.
 * It never logs a credential. Its verdicts are a counter family for the master's `/metrics`
 * (`sustenet_master_account_tokens_total{reason}`).
 *
 * @module
 */

import { PublicKeySet, type TokenProblem, verifyAccessToken } from "../auth/access_token.ts";
import { LogThrottle } from "../shared/log_throttle.ts";
import type { MetricFamily } from "../shared/metrics.ts";
import { roleLogger } from "../shared/logging.ts";
import { type AuthenticateHook, guestAuthenticate } from "./authenticate.ts";

const logger = roleLogger("master", "accounts");

/** Options of {@linkcode accountAuthenticate}. */
export interface AccountAuthenticateOptions {
  /** Loads the trusted public keys (called at start and on an unknown key id). */
  readonly loadKeys: () => Promise<PublicKeySet>;
  /** Whether an empty credential joins as a guest. */
  readonly allowGuests: boolean;
  /** Least time between two reloads of the keys, in ms. @default {10000} */
  readonly reloadMinMs?: number;
  /** Wall clock, Unix ms. @default {Date.now} */
  readonly now?: () => number;
}

/** What the account hook decided about one credential: accepted, or refused and why. */
export type AccountVerdict = TokenProblem | "ok" | "guest" | "guest_refused";

/** An account hook with its counters. */
export interface AccountAuthenticator {
  /** The hook to pass as `startMaster({ authenticate })`. */
  readonly authenticate: AuthenticateHook;
  /** Verdicts so far: `ok`, `guest`, or the refusal's problem. */
  readonly counts: Readonly<Record<AccountVerdict, number>>;
  /**
   * The verdicts as a Prometheus counter, `sustenet_master_account_tokens_total{reason}`
   * (`reason` is a verdict: `ok` and `guest` are accepted, the rest refused); pass it as
   * `startMaster({ metricFamilies })`.
   */
  readonly metrics: MetricFamily;
}

/**
 * Reads a JWK Set from a file path or an http(s) URL.
 *
 * @param source A path or URL.
 * @throws {TypeError} When it is not a JWK Set of Ed25519 keys; the read's own error otherwise.
 *
 * @example
 * ```ts
 * import { loadPublicKeySet } from "./account_authenticate.ts";
 * import assert from "node:assert/strict";
 *
 * const file = await Deno.makeTempFile();
 * await Deno.writeTextFile(file, '{"keys": []}');
 * assert.equal((await loadPublicKeySet(file)).size, 0);
 * await Deno.remove(file);
 * ```
 */
export async function loadPublicKeySet(source: string): Promise<PublicKeySet> {
  let text: string;
  if (/^https?:/i.test(source)) {
    const response = await fetch(source, { signal: AbortSignal.timeout(10_000) });
    if (!response.ok) {
      await response.body?.cancel();
      throw new TypeError(`${source}: HTTP ${response.status}`);
    }
    text = await response.text();
  } else {
    text = await Deno.readTextFile(source);
  }
  return await PublicKeySet.fromJwks(JSON.parse(text));
}

/**
 * Builds the account hook, loading the keys once now (a failure here is thrown: a master
 * configured for accounts does not start without keys).
 *
 * @param options Key loader, guest policy.
 *
 * @example
 * ```ts
 * import { accountAuthenticate } from "./account_authenticate.ts";
 * import { PublicKeySet } from "../auth/access_token.ts";
 * import assert from "node:assert/strict";
 *
 * const { authenticate } = await accountAuthenticate({
 *   loadKeys: () => Promise.resolve(new PublicKeySet([])),
 *   allowGuests: false,
 * });
 * const info = { remoteAddr: { hostname: "127.0.0.1", port: 5000 } };
 * assert.equal(await authenticate(new Uint8Array(), info), null);
 * assert.equal(await authenticate(new TextEncoder().encode("not.a.token"), info), null);
 * ```
 */
export async function accountAuthenticate(
  options: AccountAuthenticateOptions,
): Promise<AccountAuthenticator> {
  const now = options.now ?? Date.now;
  const reloadMinMs = options.reloadMinMs ?? 10_000;
  let keys = await options.loadKeys();
  let lastLoad = now();
  let reloading: Promise<void> | undefined;
  const throttle = new LogThrottle();
  const counts: Record<AccountVerdict, number> = {
    ok: 0,
    guest: 0,
    guest_refused: 0,
    malformed: 0,
    unknown_key: 0,
    bad_signature: 0,
    expired: 0,
    wrong_audience: 0,
  };
  const decoder = new TextDecoder("utf-8", { fatal: true });

  const reload = () =>
    reloading ??= (async () => {
      lastLoad = now();
      try {
        keys = await options.loadKeys();
        logger.info("account keys reloaded: {count} key(s)", { count: keys.size });
      } catch (error) {
        logger.warn("account keys could not be reloaded, keeping the old ones: {error}", {
          error: error instanceof Error ? error.message : String(error),
        });
      } finally {
        reloading = undefined;
      }
    })();

  const refuse = (problem: TokenProblem, remote: string) => {
    counts[problem]++;
    const suppressed = throttle.admit(`${problem} ${remote}`, now());
    if (suppressed !== null) {
      logger.info("access token from {remote} refused: {problem} ({suppressed} more not logged)", {
        remote,
        problem,
        suppressed,
      });
    }
    return null;
  };

  const authenticate: AuthenticateHook = async (credential, info) => {
    if (credential.length === 0) {
      if (!options.allowGuests) {
        counts.guest_refused++;
        return null;
      }
      counts.guest++;
      return await guestAuthenticate(credential, info);
    }
    let token: string;
    try {
      token = decoder.decode(credential);
    } catch (error) {
      if (!(error instanceof TypeError)) throw error;
      return refuse("malformed", info.remoteAddr.hostname);
    }
    let check = await verifyAccessToken(token, keys, Math.floor(now() / 1000));
    if (!check.ok && check.problem === "unknown_key" && now() - lastLoad >= reloadMinMs) {
      await reload();
      check = await verifyAccessToken(token, keys, Math.floor(now() / 1000));
    }
    if (!check.ok) return refuse(check.problem, info.remoteAddr.hostname);
    counts.ok++;
    return { playerId: check.claims.sub };
  };
  const metrics: MetricFamily = {
    name: "sustenet_master_account_tokens_total",
    help:
      "JoinCluster credentials checked by the account hook, by verdict (ok, guest, or why refused)",
    kind: "counter",
    samples: () => Object.entries(counts).map(([reason, value]) => ({ labels: { reason }, value })),
  };
  return { authenticate, counts, metrics };
}
