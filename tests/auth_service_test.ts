/**
 * The account service over real HTTP on 127.0.0.1 (port 0), with the embedded SQLite store:
 * the register / log-in / refresh / log-out / password / who-am-i flow, every kind of bad
 * input answered with a clear 4xx JSON error that changes nothing, log-in rate limits per
 * account and per address (429), no user enumeration by message or timing, one account per
 * name under a concurrent storm, and injection strings in every field.
 */
import assert from "node:assert/strict";
import { type AuthServer, type LoginLimits, signAccessToken, startAuth } from "../auth/mod.ts";
import type { AuthOptions } from "../auth/start_auth.ts";
import { INJECTIONS } from "./_injections.ts";

const GENEROUS: LoginLimits = {
  accountRatePerS: 1000,
  accountBurst: 1000,
  addressRatePerS: 1000,
  addressBurst: 1000,
};

async function withAuth(
  body: (auth: AuthServer, base: string, dir: string) => Promise<void>,
  options: Partial<AuthOptions> | ((dir: string) => Partial<AuthOptions>) = {},
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "sustenet_auth_service_" });
  const auth = await startAuth({
    port: 0,
    store: { kind: "sqlite", path: `${dir}/auth.sqlite` },
    signingKeys: `${dir}/ring.json`,
    scrypt: { logN: 10, r: 8, p: 1 },
    limits: GENEROUS,
    maxBodyBytes: 1024,
    accessTokenTtlS: 60,
    ...(typeof options === "function" ? options(dir) : options),
  });
  try {
    await body(auth, `http://127.0.0.1:${auth.addr.port}`, dir);
  } finally {
    await auth.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

interface Answer {
  readonly status: number;
  readonly body: Record<string, unknown>;
  readonly headers: Headers;
}

async function call(
  base: string,
  path: string,
  init: { method?: string; body?: BodyInit | null; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const res = await fetch(`${base}${path}`, {
    method: init.method ?? "POST",
    headers: init.headers ?? { "content-type": "application/json" },
    body: init.body ?? null,
  });
  const text = await res.text();
  return {
    status: res.status,
    body: text === "" ? {} : JSON.parse(text) as Record<string, unknown>,
    headers: res.headers,
  };
}

/** Registers `username` with the password every test here uses. */
function register(base: string, username: unknown) {
  return post(base, "/v1/register", { username, password: "correct horse" });
}

function post(base: string, path: string, body: unknown, headers?: Record<string, string>) {
  return call(base, path, {
    body: JSON.stringify(body),
    headers: { "content-type": "application/json", ...headers },
  });
}

Deno.test("register, log in, who-am-i, refresh with rotation, replay revokes all, log out", async () => {
  await withAuth(async (_auth, base) => {
    const reg = await register(base, "Alice");
    assert.equal(reg.status, 201, JSON.stringify(reg.body));
    assert.equal(reg.body.username, "alice");
    assert.match(String(reg.body.account_id), /^[0-9a-f-]{36}$/);

    const login = await post(base, "/v1/login", { username: "ALICE", password: "correct horse" });
    assert.equal(login.status, 200);
    assert.equal(login.body.account_id, reg.body.account_id);

    const me = await call(base, "/v1/me", {
      method: "GET",
      headers: { authorization: `Bearer ${login.body.access_token}` },
    });
    assert.deepEqual({ id: me.body.account_id, name: me.body.username }, {
      id: reg.body.account_id,
      name: "alice",
    });

    const first = String(login.body.refresh_token);
    const rotated = await post(base, "/v1/refresh", { refresh_token: first });
    assert.equal(rotated.status, 200);
    assert.notEqual(rotated.body.refresh_token, first);
    // The used token again: refused, and the rotated one is revoked with it (theft signal).
    const replay = await post(base, "/v1/refresh", { refresh_token: first });
    assert.equal(replay.status, 401);
    assert.equal(replay.body.error, "invalid_token");
    const afterReplay = await post(base, "/v1/refresh", {
      refresh_token: rotated.body.refresh_token,
    });
    assert.equal(afterReplay.status, 401);

    const again = await post(base, "/v1/login", { username: "alice", password: "correct horse" });
    const out = await post(base, "/v1/logout", { refresh_token: again.body.refresh_token });
    assert.equal(out.status, 204);
    const revoked = await post(base, "/v1/refresh", { refresh_token: again.body.refresh_token });
    assert.equal(revoked.status, 401);
  });
});

Deno.test("changing the password revokes refresh tokens and the old password stops working", async () => {
  await withAuth(async (_auth, base) => {
    const reg = await post(base, "/v1/register", { username: "bob", password: "first password" });
    const bearer = { authorization: `Bearer ${reg.body.access_token}` };
    const wrong = await post(
      base,
      "/v1/password",
      { current_password: "not it at all", new_password: "second password" },
      bearer,
    );
    assert.equal(wrong.status, 401);
    const changed = await post(
      base,
      "/v1/password",
      { current_password: "first password", new_password: "second password" },
      bearer,
    );
    assert.equal(changed.status, 204);
    assert.equal(
      (await post(base, "/v1/login", { username: "bob", password: "first password" })).status,
      401,
    );
    assert.equal(
      (await post(base, "/v1/login", { username: "bob", password: "second password" })).status,
      200,
    );
    assert.equal(
      (await post(base, "/v1/refresh", { refresh_token: reg.body.refresh_token })).status,
      401,
    );
  });
});

Deno.test("bad input gets a clear 4xx JSON error and changes nothing", async () => {
  await withAuth(async (auth, base) => {
    await register(base, "existing");
    const other = await crypto.subtle.generateKey({ name: "Ed25519" }, false, [
      "sign",
      "verify",
    ]) as CryptoKeyPair;
    const now = Math.floor(Date.now() / 1000);
    const claims = { sub: "x", name: "x", iat: now, exp: now + 60, jti: "j" };
    const forged = await signAccessToken(
      { kid: auth.keyRing.current.kid, privateKey: other.privateKey },
      claims,
    );
    const unknownKid = await signAccessToken({ kid: "nope", privateKey: other.privateKey }, claims);
    const expired = await signAccessToken(auth.keyRing.current, {
      ...claims,
      iat: now - 120,
      exp: now - 60,
    });
    const json = { "content-type": "application/json" };
    const cases: [string, Promise<Answer>, number, string][] = [
      ["malformed JSON", call(base, "/v1/register", { body: "{nope" }), 400, "bad_request"],
      [
        "not UTF-8",
        call(base, "/v1/login", { body: new Uint8Array([0xff, 0xfe]) }),
        400,
        "bad_request",
      ],
      ["a JSON array", call(base, "/v1/login", { body: "[]" }), 400, "bad_request"],
      [
        "wrong content type",
        call(base, "/v1/register", {
          body: '{"username":"x1y","password":"correct horse"}',
          headers: { "content-type": "text/plain" },
        }),
        415,
        "unsupported_media_type",
      ],
      [
        "oversized body",
        call(base, "/v1/register", { body: JSON.stringify({ username: "a".repeat(5000) }) }),
        413,
        "payload_too_large",
      ],
      [
        "oversized streamed body",
        call(base, "/v1/register", {
          body: ReadableStream.from([new TextEncoder().encode(" ".repeat(2000))]),
          headers: json,
        }),
        413,
        "payload_too_large",
      ],
      ["missing password", post(base, "/v1/register", { username: "newbie" }), 400, "bad_request"],
      ["missing username", post(base, "/v1/login", { password: "x" }), 400, "bad_request"],
      [
        "over-long name",
        register(base, "n".repeat(33)),
        400,
        "invalid_username",
      ],
      [
        "name with a space",
        register(base, "a b c"),
        400,
        "invalid_username",
      ],
      [
        "name with a control character",
        register(base, "abc\u0007"),
        400,
        "invalid_username",
      ],
      [
        "name that is not a string",
        register(base, 12345),
        400,
        "invalid_username",
      ],
      [
        "short password",
        post(base, "/v1/register", { username: "shorty", password: "short" }),
        400,
        "invalid_password",
      ],
      [
        "name taken (after normalisation)",
        register(base, "ＥＸＩＳＴＩＮＧ"),
        409,
        "username_taken",
      ],
      [
        "GET on a POST endpoint",
        call(base, "/v1/register", { method: "GET" }),
        405,
        "method_not_allowed",
      ],
      ["unknown endpoint", post(base, "/v1/nothing", {}), 404, "not_found"],
      ["who-am-i without a token", call(base, "/v1/me", { method: "GET" }), 401, "invalid_token"],
      ...[["forged", forged], ["unknown key id", unknownKid], ["expired", expired], [
        "garbage",
        "a.b.c",
      ]].map(([what, token]): [string, Promise<Answer>, number, string] => [
        `who-am-i with a ${what} token`,
        call(base, "/v1/me", { method: "GET", headers: { authorization: `Bearer ${token}` } }),
        401,
        "invalid_token",
      ]),
      [
        "unknown refresh token",
        post(base, "/v1/refresh", { refresh_token: "x".repeat(43) }),
        401,
        "invalid_token",
      ],
      [
        "refresh token not a string",
        post(base, "/v1/refresh", { refresh_token: 7 }),
        400,
        "bad_request",
      ],
      [
        "log out an unknown token",
        post(base, "/v1/logout", { refresh_token: "nope" }),
        401,
        "invalid_token",
      ],
      [
        "password change with an expired token",
        post(
          base,
          "/v1/password",
          { current_password: "correct horse", new_password: "whatever1" },
          {
            authorization: `Bearer ${expired}`,
          },
        ),
        401,
        "invalid_token",
      ],
    ];
    for (const [what, pending, status, code] of cases) {
      const answer = await pending;
      assert.equal(answer.status, status, `${what}: ${JSON.stringify(answer.body)}`);
      assert.equal(answer.body.error, code, what);
      assert.equal(typeof answer.body.message, "string", what);
      assert.match(answer.headers.get("content-type") ?? "", /^application\/json/, what);
    }
    assert.equal(await auth.service.store.countAccounts(), 1);
    assert.equal(auth.service.metrics.registrations.get("ok"), 1);
    assert.equal(
      (await post(base, "/v1/login", { username: "existing", password: "correct horse" })).status,
      200,
    );
  });
});

Deno.test("log-in attempts are limited per account (429 with Retry-After), others carry on", async () => {
  await withAuth(async (_auth, base) => {
    await register(base, "target");
    await register(base, "bystander");
    for (let i = 0; i < 3; i++) {
      const miss = await post(base, "/v1/login", { username: "target", password: `guess ${i}xx` });
      assert.equal(miss.status, 401);
    }
    const limited = await post(base, "/v1/login", {
      username: "TARGET",
      password: "correct horse",
    });
    assert.equal(limited.status, 429);
    assert.equal(limited.body.error, "rate_limited");
    assert.match(String(limited.body.message), /account/);
    assert.ok(Number(limited.headers.get("retry-after")) >= 1);
    const other = await post(base, "/v1/login", {
      username: "bystander",
      password: "correct horse",
    });
    assert.equal(other.status, 200);
  }, {
    limits: { accountRatePerS: 0.01, accountBurst: 3, addressRatePerS: 1000, addressBurst: 1000 },
  });
});

Deno.test("log-in and registration attempts are limited per address (429)", async () => {
  await withAuth(async (_auth, base) => {
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) {
      statuses.push(
        (await post(base, "/v1/login", { username: `user${i}`, password: "guess guess" })).status,
      );
    }
    assert.deepEqual(statuses, [401, 401, 401, 401, 401, 429, 429]);
    const register = await post(base, "/v1/register", {
      username: "late",
      password: "correct horse",
    });
    assert.equal(register.status, 429);
    assert.match(String(register.body.message), /address/);
  }, {
    limits: { accountRatePerS: 1000, accountBurst: 1000, addressRatePerS: 0.01, addressBurst: 5 },
  });
});

Deno.test("no enumeration: an unknown user and a wrong password read the same and cost alike", async () => {
  // A cost where the KDF dominates a request (~tens of ms), so timing would show a shortcut.
  await withAuth(async (_auth, base) => {
    await register(base, "realuser");
    const time = async (username: string) => {
      const started = performance.now();
      const answer = await post(base, "/v1/login", { username, password: "wrong password" });
      return { ms: performance.now() - started, answer };
    };
    const unknown: number[] = [];
    const known: number[] = [];
    for (let i = 0; i < 6; i++) {
      const a = await time(`ghost${i}`);
      const b = await time("realuser");
      assert.deepEqual(a.answer.body, b.answer.body);
      assert.equal(a.answer.status, 401);
      assert.equal(b.answer.status, 401);
      unknown.push(a.ms);
      known.push(b.ms);
    }
    const median = (xs: number[]) => xs.sort((x, y) => x - y)[Math.floor(xs.length / 2)] ?? 0;
    // Without the dummy hash an unknown name answers in well under a millisecond.
    assert.ok(
      median(unknown) > 0.5 * median(known),
      `unknown ${median(unknown).toFixed(1)} ms vs known ${median(known).toFixed(1)} ms`,
    );
  }, { scrypt: { logN: 14, r: 8, p: 1 } });
});

Deno.test("a storm of concurrent registrations of one name makes exactly one account", async () => {
  await withAuth(async (auth, base) => {
    const answers = await Promise.all(
      Array.from(
        { length: 25 },
        (_, i) =>
          post(base, "/v1/register", {
            username: i % 2 === 0 ? "Storm" : "storm",
            password: `password ${i}`,
          }),
      ),
    );
    assert.equal(answers.filter((a) => a.status === 201).length, 1);
    assert.equal(answers.filter((a) => a.status === 409).length, 24);
    assert.equal(await auth.service.store.countAccounts(), 1);
  });
});

Deno.test("injection strings in every field are refused or stored as plain data", async () => {
  await withAuth(async (auth, base) => {
    await register(base, "victim");
    for (const evil of INJECTIONS) {
      const asName = await post(base, "/v1/register", {
        username: evil,
        password: "correct horse",
      });
      assert.equal(asName.status, 400, evil);
      const loginName = await post(base, "/v1/login", { username: evil, password: evil });
      assert.ok(loginName.status === 401 || loginName.status === 400, evil);
      const refresh = await post(base, "/v1/refresh", { refresh_token: evil });
      assert.equal(refresh.status, 401, evil);
      const me = await call(base, "/v1/me", {
        method: "GET",
        headers: { authorization: `Bearer ${evil.replace(/[^\x20-\x7e]/g, "")}` },
      });
      assert.equal(me.status, 401, evil);
    }
    // As a password, an injection string is just a password.
    for (const [i, evil] of INJECTIONS.entries()) {
      const password = `${evil}-padding`;
      const reg = await post(base, "/v1/register", { username: `evil${i}`, password });
      assert.equal(reg.status, 201, evil);
      const login = await post(base, "/v1/login", { username: `evil${i}`, password });
      assert.equal(login.status, 200, evil);
    }
    assert.equal(await auth.service.store.countAccounts(), 1 + INJECTIONS.length);
    const victim = await post(base, "/v1/login", { username: "victim", password: "correct horse" });
    assert.equal(victim.status, 200);
  });
});

Deno.test("/health, /metrics on the status port and the public keys at the well-known URL", async () => {
  await withAuth(async (auth, _base, dir) => {
    const status = `http://127.0.0.1:${auth.statusAddr?.port}`;
    const health = await (await fetch(`${status}/health`)).json();
    assert.deepEqual(health, { status: "ok", role: "auth", store: "sqlite" });
    const metrics = await (await fetch(`${status}/metrics`)).text();
    assert.match(metrics, /^sustenet_auth_logins_total\{outcome="ok"\} 0$/m);
    const jwks = await (await fetch(`http://127.0.0.1:${auth.addr.port}/.well-known/jwks.json`))
      .json();
    assert.deepEqual(jwks, JSON.parse(await Deno.readTextFile(`${dir}/public.json`)));
    assert.equal(jwks.keys[0].kid, auth.keyRing.current.kid);
    assert.equal(jwks.keys[0].d, undefined); // no private part
  }, (dir) => ({ publicKeysOut: `${dir}/public.json`, status: { port: 0 } }));
});

Deno.test("past max_pending_hashes a log-in is answered 503 busy at once, not queued", async () => {
  await withAuth(async (auth, base) => {
    const answers = await Promise.all(
      Array.from(
        { length: 8 },
        (_, i) => post(base, "/v1/login", { username: `nobody${i}`, password: "some password" }),
      ),
    );
    const busy = answers.filter((a) => a.status === 503);
    assert.ok(busy.length >= 1, answers.map((a) => a.status).join(","));
    assert.ok(answers.some((a) => a.status === 401));
    for (const a of busy) {
      assert.equal(a.body.error, "busy");
      assert.equal(a.headers.get("retry-after"), "1");
    }
    assert.equal(auth.service.metrics.busy.value, busy.length);
  }, { scrypt: { logN: 14, r: 8, p: 1 }, maxPendingHashes: 1 });
});

Deno.test("a device logs in without a name, keeps its account, and later links a username", async () => {
  await withAuth(async (auth, base) => {
    const deviceId = crypto.randomUUID().replaceAll("-", "");
    const first = await post(base, "/v1/device", { device_id: deviceId });
    assert.equal(first.status, 201, JSON.stringify(first.body));
    const again = await post(base, "/v1/device", { device_id: deviceId });
    assert.equal(again.status, 200);
    assert.equal(again.body.account_id, first.body.account_id);
    assert.match(String(first.body.username), /^device:[0-9a-f]{24}$/);
    // A device account has no password: its generated name is not a name one can log in with.
    const byName = await post(base, "/v1/login", { username: first.body.username, password: "x" });
    assert.equal(byName.status, 401);

    const bearer = { authorization: `Bearer ${again.body.access_token}` };
    await register(base, "taken");
    const clash = await post(base, "/v1/device/link", {
      username: "TAKEN",
      password: "correct horse",
    }, bearer);
    assert.equal(clash.status, 409);
    const linked = await post(base, "/v1/device/link", {
      username: "Dora",
      password: "correct horse",
    }, bearer);
    assert.equal(linked.status, 204);
    const login = await post(base, "/v1/login", { username: "dora", password: "correct horse" });
    assert.equal(login.status, 200);
    assert.equal(login.body.account_id, first.body.account_id);
    const twice = await post(base, "/v1/device/link", {
      username: "dora2",
      password: "correct horse",
    }, bearer);
    assert.equal(twice.status, 400);
    const stillDevice = await post(base, "/v1/device", { device_id: deviceId });
    assert.equal(stillDevice.body.account_id, first.body.account_id);
    assert.equal(stillDevice.body.username, "dora");

    for (const bad of ["short", "x".repeat(257), "a b".repeat(20), 42, ...INJECTIONS]) {
      const refused = await post(base, "/v1/device", { device_id: bad });
      assert.equal(refused.status, 400, String(bad));
    }
    const unlinked = await post(base, "/v1/device/link", {
      username: "eve",
      password: "correct horse",
    });
    assert.equal(unlinked.status, 401);
    assert.equal(await auth.service.store.countAccounts(), 2);
  });
});
