/**
 * The account pieces without sockets: the access token format against the PROTOCOL.md vector
 * (RFC 8032 key, deterministic signature), the strictness of verification (no `alg: none`, no
 * header-supplied keys, audience, expiry, size), the master's account hook on that vector,
 * username normalisation, and scrypt hashes that carry their own cost.
 */
import assert from "node:assert/strict";
import { normalizeUsername } from "../auth/username.ts";
import {
  AuthError,
  PasswordHasher,
  PublicKeySet,
  signAccessToken,
  verifyAccessToken,
} from "../auth/mod.ts";
import { accountAuthenticate } from "../master/account_authenticate.ts";

const markdown = await Deno.readTextFile(new URL("../docs/PROTOCOL.md", import.meta.url));

function tokenVector(): Map<string, string> {
  const lines = markdown.split("\n");
  const at = lines.indexOf("Token vector: access token");
  assert.ok(at >= 0, "PROTOCOL.md has the token vector");
  const start = lines.indexOf("```text", at);
  const values = new Map<string, string>();
  let last = "";
  for (let i = start + 1; lines[i] !== "```"; i++) {
    const line = lines[i] ?? "";
    if (line.startsWith("  ")) {
      values.set(last, `${values.get(last)}${line.trim()}`);
      continue;
    }
    const m = /^(\w+)\s*=\s*(.+)$/.exec(line);
    assert.ok(m !== null, line);
    last = m[1] ?? "";
    const raw = (m[2] ?? "").trim();
    values.set(last, raw.startsWith('"') ? JSON.parse(raw) : raw);
  }
  return values;
}

const b64u = (bytes: Uint8Array) => bytes.toBase64({ alphabet: "base64url", omitPadding: true });

async function vectorKeys(v: Map<string, string>) {
  const d = Uint8Array.fromHex(v.get("privateKey") ?? "");
  const x = Uint8Array.fromHex(v.get("publicKey") ?? "");
  const privateKey = await crypto.subtle.importKey(
    "jwk",
    { kty: "OKP", crv: "Ed25519", d: b64u(d), x: b64u(x) },
    { name: "Ed25519" },
    false,
    ["sign"],
  );
  const keys = await PublicKeySet.fromJwks({
    keys: [{ kty: "OKP", crv: "Ed25519", x: b64u(x), kid: v.get("kid") }],
  });
  return { privateKey, keys };
}

Deno.test("the access token of PROTOCOL.md is what signing its claims gives, byte for byte", async () => {
  const v = tokenVector();
  const { privateKey, keys } = await vectorKeys(v);
  const token = await signAccessToken({ kid: v.get("kid") ?? "", privateKey }, {
    sub: v.get("sub") ?? "",
    name: v.get("name") ?? "",
    iat: Number(v.get("iat")),
    exp: Number(v.get("exp")),
    jti: v.get("jti") ?? "",
  });
  assert.equal(token, v.get("token"));
  assert.equal(new TextEncoder().encode(token).toHex(), v.get("credential"));
  const check = await verifyAccessToken(token, keys, Number(v.get("iat")) + 1);
  assert.ok(check.ok);
  assert.equal(check.claims.sub, v.get("sub"));
});

Deno.test("the master's account hook turns the vector's credential into the account id", async () => {
  const v = tokenVector();
  const { keys } = await vectorKeys(v);
  const info = { remoteAddr: { hostname: "127.0.0.1", port: 1 } };
  const credential = Uint8Array.fromHex(v.get("credential") ?? "");
  const inTime = await accountAuthenticate({
    loadKeys: () => Promise.resolve(keys),
    allowGuests: false,
    now: () => Number(v.get("iat")) * 1000,
  });
  assert.deepEqual(await inTime.authenticate(credential, info), { playerId: v.get("sub") });
  const late = await accountAuthenticate({
    loadKeys: () => Promise.resolve(keys),
    allowGuests: true,
    now: () => Number(v.get("exp")) * 1000,
  });
  assert.equal(await late.authenticate(credential, info), null);
  assert.equal(late.counts.expired, 1);
  // Not UTF-8 at all.
  assert.equal(await late.authenticate(new Uint8Array([0xff, 0xfe, 0xfd]), info), null);
});

Deno.test("verification refuses other algorithms, header keys, wrong audiences, bad sizes", async () => {
  const v = tokenVector();
  const { keys } = await vectorKeys(v);
  const token = v.get("token") ?? "";
  const [header, payload, signature] = token.split(".") as [string, string, string];
  const now = Number(v.get("iat")) + 1;
  const enc = (value: unknown) => b64u(new TextEncoder().encode(JSON.stringify(value)));
  const kid = v.get("kid");
  const cases: [string, string, string][] = [
    ["alg none", `${enc({ alg: "none", kid })}.${payload}.`, "malformed"],
    ["alg HS256", `${enc({ alg: "HS256", typ: "JWT", kid })}.${payload}.${signature}`, "malformed"],
    [
      "a key in the header",
      `${enc({ alg: "EdDSA", typ: "JWT", kid, jwk: { kty: "OKP" } })}.${payload}.${signature}`,
      "malformed",
    ],
    ["two parts", `${header}.${payload}`, "malformed"],
    ["short signature", `${header}.${payload}.${signature.slice(0, 20)}`, "malformed"],
    ["not base64url", `${header}.${payload}.${signature}!`, "malformed"],
    ["oversized", `${header}.${payload}.${"A".repeat(5000)}`, "malformed"],
    [
      "unknown kid",
      `${enc({ alg: "EdDSA", typ: "JWT", kid: "ffff" })}.${payload}.${signature}`,
      "unknown_key",
    ],
    [
      "payload edited",
      `${header}.${
        enc({ ...JSON.parse(atob(payload.replaceAll("-", "+").replaceAll("_", "/"))), sub: "x" })
      }.${signature}`,
      "bad_signature",
    ],
  ];
  for (const [what, candidate, problem] of cases) {
    const check = await verifyAccessToken(candidate, keys, now);
    assert.ok(!check.ok, what);
    assert.equal(check.problem, problem, what);
  }
  // Right key, wrong audience.
  const { privateKey } = await vectorKeys(v);
  const input = `${header}.${
    enc({
      iss: "sustenet-auth",
      aud: "other-game",
      sub: "s",
      name: "n",
      iat: 1,
      exp: now + 60,
      jti: "j",
    })
  }`;
  const sig = new Uint8Array(
    await crypto.subtle.sign("Ed25519", privateKey, new TextEncoder().encode(input)),
  );
  const wrongAud = await verifyAccessToken(`${input}.${b64u(sig)}`, keys, now);
  assert.deepEqual(wrongAud, { ok: false, problem: "wrong_audience" });
});

Deno.test("usernames are NFKC, case-folded and validated", () => {
  assert.equal(normalizeUsername("Alice"), "alice");
  assert.equal(normalizeUsername("ＡＬＩＣＥ"), "alice"); // full-width
  assert.equal(normalizeUsername("ﬁnn"), "finn"); // ligature
  assert.equal(normalizeUsername("Ｍüller_2"), "müller_2");
  assert.equal(normalizeUsername("Mu\u0308ller"), "müller"); // combining diaeresis composed
  assert.equal(normalizeUsername("Straße"), normalizeUsername("STRASSE")); // full case fold
  assert.equal(normalizeUsername("ΟΔΟΣ"), normalizeUsername("οδος"));
  for (
    const bad of [
      "",
      "ab",
      "x".repeat(33),
      "a b",
      "_lead",
      "tab\t",
      "zero\u200bwidth",
      "emoji😀",
      "a/b",
      "\ud800ab",
    ]
  ) {
    assert.throws(() => normalizeUsername(bad), AuthError, JSON.stringify(bad));
  }
  assert.throws(() => normalizeUsername(null), AuthError);
});

Deno.test("scrypt hashes carry their cost: old hashes verify after the cost is raised", async () => {
  const cheap = new PasswordHasher({ logN: 10, r: 8, p: 1 });
  const dearer = new PasswordHasher({ logN: 11, r: 8, p: 2 });
  const stored = await cheap.hash("correct horse");
  assert.equal(await dearer.verify("correct horse", stored), true);
  assert.equal(await dearer.verify("Correct horse", stored), false);
  assert.notEqual(await cheap.hash("correct horse"), stored); // fresh salt
  assert.equal(await cheap.verify("x", "$scrypt$ln=30,r=8,p=1$AAAA$AAAA"), false); // cost cap
  assert.equal(await cheap.verify("x", "not a hash"), false);
  assert.equal(await cheap.verifyDummy("anything"), false);
  assert.throws(() => new PasswordHasher({ logN: 9, r: 8, p: 1 }), RangeError);
});
