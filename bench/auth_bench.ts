/**
 * The `auth` part of `deno task bench`: what accounts cost. In this process, on 127.0.0.1:
 * access token verifications per second at the master's account hook beside its guest hook;
 * joins per second through a real master and cluster with access tokens beside guest joins
 * (alternating phases in the same run, so load drifts hit both); and log-ins per second at the
 * default scrypt cost over HTTP. Every loop is bounded by a count; every server is stopped in
 * `finally`.
 *
 * @module
 */

import { signAccessToken, startAuth } from "../auth/mod.ts";
import { AuthClient, SustenetClient } from "../client/mod.ts";
import { startCluster } from "../cluster/mod.ts";
import { accountAuthenticate } from "../master/account_authenticate.ts";
import { startMaster } from "../master/mod.ts";
import { PublicKeySet } from "../auth/access_token.ts";
import { generateKey } from "../shared/keys.ts";

/** What the auth part measured. */
export interface AccountsFigures {
  /** Master hook calls per second: verifying an access token, and giving a guest id. */
  readonly hook: { readonly tokenPerS: number; readonly guestPerS: number; readonly calls: number };
  /** Complete joins (ticket + cluster handshake) per second, with tokens and as guests. */
  readonly joins: {
    readonly tokenPerS: number;
    readonly guestPerS: number;
    readonly joinsPerPhase: number;
    readonly concurrency: number;
  };
  /** Log-ins per second over HTTP at this scrypt cost. */
  readonly logins: {
    readonly perS: number;
    readonly count: number;
    readonly concurrency: number;
    readonly scrypt: { readonly logN: number; readonly r: number; readonly p: number };
  };
}

const SCRYPT = { logN: 15, r: 8, p: 1 } as const;

async function timed(count: number, concurrency: number, one: (i: number) => Promise<unknown>) {
  let next = 0;
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < count) await one(next++);
  }));
  return count / ((performance.now() - started) / 1000);
}

/**
 * Runs the auth part.
 *
 * @param quick Short counts (seconds) instead of the full ones.
 * @param log Progress lines.
 */
export async function measureAccounts(
  quick: boolean,
  log: (line: string) => void,
): Promise<AccountsFigures> {
  const dir = await Deno.makeTempDir({ prefix: "sustenet_bench_auth_" });
  try {
    await generateKey(dir, "cluster_key");
    const auth = await startAuth({
      port: 0,
      store: { kind: "sqlite", path: `${dir}/auth.sqlite` },
      signingKeys: `${dir}/ring.json`,
      scrypt: SCRYPT,
      limits: { accountRatePerS: 1e6, accountBurst: 1e6, addressRatePerS: 1e6, addressBurst: 1e6 },
    });
    try {
      const keys = await PublicKeySet.fromJwks(auth.keyRing.jwks);
      const accounts = await accountAuthenticate({
        loadKeys: () => Promise.resolve(keys),
        allowGuests: true,
      });
      const now = Math.floor(Date.now() / 1000);
      const mint = (i: number) =>
        signAccessToken(auth.keyRing.current, {
          sub: crypto.randomUUID(),
          name: `bench${i}`,
          iat: now,
          exp: now + 3600,
          jti: crypto.randomUUID(),
        });

      // 1. The hook alone.
      const calls = quick ? 1_000 : 20_000;
      const credential = new TextEncoder().encode(await mint(0));
      const empty = new Uint8Array();
      const info = { remoteAddr: { hostname: "127.0.0.1", port: 1 } };
      log(`auth: ${calls} hook calls with a token, then as guests …`);
      const tokenPerS = await timed(calls, 1, () => accounts.authenticate(credential, info));
      const guestPerS = await timed(calls, 1, () => accounts.authenticate(empty, info));

      // 2. Joins through a real master and cluster, alternating guest and token phases.
      const joinsPerPhase = quick ? 40 : 400;
      const concurrency = 16;
      const generous = 1_000_000;
      const master = await startMaster({
        port: 0,
        keysDir: dir,
        authenticate: accounts.authenticate,
        joinLimits: {
          connectionRatePerS: generous,
          connectionBurst: generous,
          addressRatePerS: generous,
          addressBurst: generous,
          playerRatePerS: generous,
          playerBurst: generous,
          refusalsBeforeClose: generous,
          reservationsPerConnection: generous,
          reservationsPerAddress: generous,
          reservationsPerPlayer: generous,
        },
      });
      const cluster = await startCluster({
        port: 0,
        keysDir: dir,
        serverName: "bench-auth",
        identityKeyName: "bench_identity",
        master: { hostname: "127.0.0.1", port: master.addr.port },
        heartbeatIntervalMs: 100,
      });
      const clients: SustenetClient[] = [];
      try {
        for (let wait = 0; master.registry.list().length === 0 && wait < 600; wait++) {
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        const tokens = await Promise.all(Array.from({ length: joinsPerPhase }, (_, i) => mint(i)));
        const phase = async (credentials: (i: number) => string) =>
          await timed(joinsPerPhase, concurrency, async (i) => {
            const client = await SustenetClient.connect({
              port: master.addr.port,
              credential: credentials(i),
            });
            clients.push(client);
            const session = await client.join("auto");
            await session.leave();
            await client.close();
          });
        // Warm-up (JIT, first connections), not measured: a few of each kind.
        const warm = Math.min(16, joinsPerPhase);
        await timed(warm, 4, async (i) => {
          const c = await SustenetClient.connect({
            port: master.addr.port,
            credential: i % 2 === 0 ? "" : tokens[i] ?? "",
          });
          clients.push(c);
          await (await c.join("auto")).leave();
          await c.close();
        });
        const rounds = quick ? 1 : 2;
        const guest: number[] = [];
        const token: number[] = [];
        for (let round = 0; round < rounds; round++) {
          log(`auth: ${joinsPerPhase} guest joins, then ${joinsPerPhase} token joins …`);
          guest.push(await phase(() => ""));
          token.push(await phase((i) => tokens[i] ?? ""));
        }
        const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

        // 3. Log-ins at the default KDF cost.
        const count = quick ? 8 : 80;
        const loginConcurrency = 4;
        const client = new AuthClient(`http://127.0.0.1:${auth.addr.port}`);
        await client.register("bench-user", "bench password 1");
        log(`auth: ${count} log-ins at scrypt N=2^${SCRYPT.logN} r=${SCRYPT.r} p=${SCRYPT.p} …`);
        const loginsPerS = await timed(
          count,
          loginConcurrency,
          () => client.login("bench-user", "bench password 1"),
        );
        return {
          hook: { tokenPerS, guestPerS, calls },
          joins: { tokenPerS: mean(token), guestPerS: mean(guest), joinsPerPhase, concurrency },
          logins: { perS: loginsPerS, count, concurrency: loginConcurrency, scrypt: SCRYPT },
        };
      } finally {
        for (const c of clients) await c.close();
        await cluster.stop();
        await master.stop();
      }
    } finally {
      await auth.stop();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * The report lines of the auth part.
 *
 * @param f The figures.
 *
 * @example
 * ```ts
 * import { formatAccounts } from "./auth_bench.ts";
 * import assert from "node:assert/strict";
 *
 * const lines = formatAccounts({
 *   hook: { tokenPerS: 9000, guestPerS: 900000, calls: 10 },
 *   joins: { tokenPerS: 300, guestPerS: 320, joinsPerPhase: 10, concurrency: 2 },
 *   logins: { perS: 20, count: 4, concurrency: 4, scrypt: { logN: 15, r: 8, p: 1 } },
 * });
 * assert.match(lines.join("\n"), /log-ins\/s at scrypt N=2\^15/);
 * ```
 */
export function formatAccounts(f: AccountsFigures): string[] {
  const r = (n: number) => n >= 1e4 ? `${(n / 1e3).toFixed(1)} k` : n.toFixed(n < 100 ? 1 : 0);
  return [
    "Accounts (auth part, in-process, 127.0.0.1)",
    `  master hook calls/s:   token ${r(f.hook.tokenPerS)}   guest ${r(f.hook.guestPerS)}` +
    `   (${f.hook.calls} sequential calls each)`,
    `  joins/s (ticket + cluster handshake): token ${r(f.joins.tokenPerS)}   guest ` +
    `${
      r(f.joins.guestPerS)
    }   (${f.joins.joinsPerPhase} per phase, ${f.joins.concurrency} at once)`,
    `  log-ins/s at scrypt N=2^${f.logins.scrypt.logN} r=${f.logins.scrypt.r} ` +
    `p=${f.logins.scrypt.p}: ${r(f.logins.perS)}   (${f.logins.count} over HTTP, ` +
    `${f.logins.concurrency} at once)`,
  ];
}
