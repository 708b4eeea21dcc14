import assert from "node:assert/strict";
import {
  clientKeyHash,
  clusterKeyHash,
  type JoinTicketClaims,
  newTicketId,
  openJoinTicket,
  sealJoinTicket,
  TicketError,
  TicketVerifier,
} from "../shared/join_ticket.ts";
import { decrypt, encrypt, importAesKey, KeyError } from "../shared/security.ts";

const AAD = new TextEncoder().encode("sustenet-ticket-v2");
const NOW = 1_700_000_000_000;
/** The identity public key of the cluster these tickets are for. */
const IDENTITY = crypto.getRandomValues(new Uint8Array(32));
const IDENTITY_HASH = await clusterKeyHash(IDENTITY);

async function fixture(overrides: Partial<JoinTicketClaims> = {}) {
  const clusterKey = crypto.getRandomValues(new Uint8Array(32));
  const clientPublic = crypto.getRandomValues(new Uint8Array(32));
  const claims: JoinTicketClaims = {
    clusterId: 7,
    clusterKeyHash: IDENTITY_HASH,
    playerId: "guest-00ff",
    expiresAtMs: NOW + 30_000,
    clientKeyHash: await clientKeyHash(clientPublic),
    ticketId: newTicketId(),
    ...overrides,
  };
  return { clusterKey, clientPublic, claims };
}

/** Builds a plaintext by hand, following the PROTOCOL.md layout, so bad ones can be sealed. */
function plaintext(
  parts: { version?: number; player?: Uint8Array; expires?: bigint; tail?: Uint8Array } = {},
): Uint8Array {
  const player = parts.player ?? new TextEncoder().encode("p");
  const out = new Uint8Array(1 + 4 + 32 + 1 + player.length + 8 + 32 + 16);
  const view = new DataView(out.buffer);
  view.setUint8(0, parts.version ?? 2);
  view.setUint32(1, 7);
  out.set(IDENTITY_HASH, 5);
  view.setUint8(37, player.length);
  out.set(player, 38);
  view.setBigUint64(38 + player.length, parts.expires ?? BigInt(NOW + 30_000));
  if (parts.tail === undefined) return out;
  const longer = new Uint8Array(out.length + parts.tail.length);
  longer.set(out);
  longer.set(parts.tail, out.length);
  return longer;
}

function isTicketInvalid(err: unknown): boolean {
  assert.ok(err instanceof TicketError, `expected TicketError, got ${String(err)}`);
  assert.equal(err.code, "ticket_invalid");
  return true;
}

/** The verifier of cluster 7 (identity {@linkcode IDENTITY}) at {@linkcode NOW}. */
function verifierFor(clusterKey: Uint8Array): TicketVerifier {
  return new TicketVerifier({
    identityPublicKey: IDENTITY,
    clusterKey,
    clusterId: 7,
    now: () => NOW,
  });
}

Deno.test("a sealed ticket opens to the same claims", async () => {
  for (const playerId of ["guest-1", "", "プレイヤー🎮", "x".repeat(255)]) {
    const { clusterKey, claims } = await fixture({ playerId });
    const sealed = await sealJoinTicket(clusterKey, claims);
    assert.deepEqual(await openJoinTicket(clusterKey, sealed), claims);
  }
  const { clusterKey, claims } = await fixture({ clusterId: 0xffff_ffff, expiresAtMs: 0 });
  const key = await importAesKey(clusterKey);
  assert.deepEqual(await openJoinTicket(key, await sealJoinTicket(key, claims)), claims);
});

Deno.test("the ticket plaintext follows the PROTOCOL.md layout under its AAD", async () => {
  const { clusterKey, claims } = await fixture({ clusterId: 0x01020304, playerId: "ab" });
  const sealed = await sealJoinTicket(clusterKey, claims);
  const plain = await decrypt(await importAesKey(clusterKey), sealed, AAD);
  assert.equal(sealed.length, 12 + plain.length + 16);
  assert.equal(plain.length, 1 + 4 + 32 + 1 + 2 + 8 + 32 + 16);
  assert.deepEqual([...plain.subarray(0, 5)], [2, 1, 2, 3, 4]);
  assert.deepEqual(plain.subarray(5, 37), claims.clusterKeyHash);
  assert.deepEqual([...plain.subarray(37, 40)], [2, 0x61, 0x62]);
  const view = new DataView(plain.buffer);
  assert.equal(view.getBigUint64(40), BigInt(claims.expiresAtMs));
  assert.deepEqual(plain.subarray(48, 80), claims.clientKeyHash);
  assert.deepEqual(plain.subarray(80, 96), claims.ticketId);
});

Deno.test("claims out of range are refused when sealing", async () => {
  const { clusterKey, claims } = await fixture();
  const bad: [Partial<JoinTicketClaims>, ErrorConstructor | RangeErrorConstructor][] = [
    [{ clusterId: -1 }, RangeError],
    [{ clusterId: 2 ** 32 }, RangeError],
    [{ clusterId: 1.5 }, RangeError],
    [{ playerId: "x".repeat(256) }, RangeError],
    [{ playerId: "é".repeat(128) }, RangeError], // 256 UTF-8 bytes
    [{ playerId: "bad\ud800" }, TypeError],
    [{ expiresAtMs: -1 }, RangeError],
    [{ expiresAtMs: 2 ** 53 }, RangeError],
    [{ expiresAtMs: Number.NaN }, RangeError],
    [{ clientKeyHash: new Uint8Array(31) }, RangeError],
    [{ clusterKeyHash: new Uint8Array(31) }, RangeError],
    [{ ticketId: new Uint8Array(17) }, RangeError],
  ];
  for (const [override, type] of bad) {
    await assert.rejects(sealJoinTicket(clusterKey, { ...claims, ...override }), type);
  }
  await assert.rejects(sealJoinTicket(new Uint8Array(31), claims), KeyError);
});

Deno.test("a ticket that cannot be opened is a TicketError", async () => {
  const { clusterKey, claims } = await fixture();
  const sealed = await sealJoinTicket(clusterKey, claims);
  const otherKey = crypto.getRandomValues(new Uint8Array(32));
  await assert.rejects(openJoinTicket(otherKey, sealed), isTicketInvalid);
  for (const length of [0, 27, 28, sealed.length - 1]) {
    await assert.rejects(openJoinTicket(clusterKey, sealed.subarray(0, length)), isTicketInvalid);
  }
  for (const at of [0, 12, 40, sealed.length - 1]) {
    const flipped = sealed.slice();
    flipped[at] ^= 0x80;
    await assert.rejects(openJoinTicket(clusterKey, flipped), isTicketInvalid);
  }
  // The right plaintext sealed without the ticket AAD is not a ticket.
  const key = await importAesKey(clusterKey);
  await assert.rejects(openJoinTicket(key, await encrypt(key, plaintext())), isTicketInvalid);
  await assert.rejects(openJoinTicket(new Uint8Array(16), sealed), KeyError);
});

Deno.test("an authentic but malformed ticket is a TicketError", async () => {
  const key = await importAesKey(crypto.getRandomValues(new Uint8Array(32)));
  assert.equal((await openJoinTicket(key, await encrypt(key, plaintext(), AAD))).clusterId, 7);
  const malformed = [
    plaintext({ version: 0 }),
    plaintext({ version: 1 }), // the layout without clusterKeyHash
    plaintext({ version: 3 }),
    plaintext({ tail: new Uint8Array(1) }), // trailing byte
    plaintext().subarray(0, 93), // truncated
    new Uint8Array(0),
    plaintext({ player: new Uint8Array([0xc3, 0x28]) }), // invalid UTF-8
    plaintext({ player: new Uint8Array([0xff]) }),
    plaintext({ expires: BigInt(Number.MAX_SAFE_INTEGER) + 1n }),
    plaintext({ expires: 0xffff_ffff_ffff_ffffn }),
  ];
  // A playerId length byte that points past the end.
  const lying = plaintext();
  lying[37] = 200;
  malformed.push(lying);
  for (const plain of malformed) {
    await assert.rejects(openJoinTicket(key, await encrypt(key, plain, AAD)), isTicketInvalid);
  }
});

Deno.test("a valid ticket is accepted once, then refused as reused (44)", async () => {
  const { clusterKey, clientPublic, claims } = await fixture();
  const verifier = verifierFor(clusterKey);
  const sealed = await sealJoinTicket(clusterKey, claims);
  assert.deepEqual(await verifier.verify(sealed, clientPublic), { ok: true, claims });
  assert.deepEqual(await verifier.verify(sealed, clientPublic), {
    ok: false,
    status: 44,
    reason: "reused",
  });
  // Resealing the same claims (new nonce, same ticket id) is still a reuse.
  assert.deepEqual(await verifier.verify(await sealJoinTicket(clusterKey, claims), clientPublic), {
    ok: false,
    status: 44,
    reason: "reused",
  });
});

Deno.test("concurrent presentations of one ticket let exactly one through", async () => {
  const { clusterKey, clientPublic, claims } = await fixture();
  const verifier = verifierFor(clusterKey);
  const sealed = await sealJoinTicket(clusterKey, claims);
  const verdicts = await Promise.all(
    Array.from({ length: 10 }, () => verifier.verify(sealed, clientPublic)),
  );
  assert.equal(verdicts.filter((v) => v.ok).length, 1);
  assert.equal(verdicts.filter((v) => !v.ok && v.reason === "reused").length, 9);
});

Deno.test("an expired ticket is refused (44) and not remembered", async () => {
  const { clusterKey, clientPublic, claims } = await fixture();
  const sealed = await sealJoinTicket(clusterKey, claims);
  for (const now of [claims.expiresAtMs, claims.expiresAtMs + 1, claims.expiresAtMs + 3_600_000]) {
    const verifier = new TicketVerifier({
      identityPublicKey: IDENTITY,
      clusterKey,
      clusterId: 7,
      now: () => now,
    });
    assert.deepEqual(await verifier.verify(sealed, clientPublic), {
      ok: false,
      status: 44,
      reason: "expired",
    });
    assert.equal(verifier.usedTicketCount, 0);
  }
  const justInTime = new TicketVerifier({
    identityPublicKey: IDENTITY,
    clusterKey,
    clusterId: 7,
    now: () => claims.expiresAtMs - 1,
  });
  assert.equal((await justInTime.verify(sealed, clientPublic)).ok, true);
});

Deno.test("a ticket for another cluster is refused (40)", async () => {
  const { clusterKey, clientPublic, claims } = await fixture({ clusterId: 8 });
  const verifier = verifierFor(clusterKey);
  assert.deepEqual(await verifier.verify(await sealJoinTicket(clusterKey, claims), clientPublic), {
    ok: false,
    status: 40,
    reason: "wrong_cluster",
  });
});

Deno.test("a ticket for another cluster's identity is refused (40) even with the same id and AES key", async () => {
  // Two clusters sharing one AES key, and (after a master restart) the same id 7.
  const { clusterKey, clientPublic, claims } = await fixture();
  const sealed = await sealJoinTicket(clusterKey, claims);
  const other = new TicketVerifier({
    identityPublicKey: crypto.getRandomValues(new Uint8Array(32)),
    clusterKey,
    clusterId: 7,
    now: () => NOW,
  });
  assert.deepEqual(await other.verify(sealed, clientPublic), {
    ok: false,
    status: 40,
    reason: "wrong_cluster",
  });
  // Refused without being burnt: the cluster it was issued to still takes it.
  const own = verifierFor(clusterKey);
  assert.equal((await own.verify(sealed, clientPublic)).ok, true);
});

Deno.test("a ticket sealed with another cluster's key or garbage is refused (40)", async () => {
  const { clusterKey, clientPublic, claims } = await fixture();
  const verifier = verifierFor(clusterKey);
  const foreign = await sealJoinTicket(crypto.getRandomValues(new Uint8Array(32)), claims);
  const invalid = { ok: false, status: 40, reason: "invalid" };
  assert.deepEqual(await verifier.verify(foreign, clientPublic), invalid);
  assert.deepEqual(await verifier.verify(new Uint8Array(0), clientPublic), invalid);
  assert.deepEqual(await verifier.verify(new Uint8Array(200), clientPublic), invalid);
  const sealed = await sealJoinTicket(clusterKey, claims);
  sealed[20] ^= 1;
  assert.deepEqual(await verifier.verify(sealed, clientPublic), invalid);
});

Deno.test("a stolen ticket presented with another key is refused (40) and not burned", async () => {
  const { clusterKey, clientPublic, claims } = await fixture();
  const verifier = verifierFor(clusterKey);
  const sealed = await sealJoinTicket(clusterKey, claims);
  const thief = crypto.getRandomValues(new Uint8Array(32));
  const wrongKey = { ok: false, status: 40, reason: "wrong_key" };
  assert.deepEqual(await verifier.verify(sealed, thief), wrongKey);
  assert.deepEqual(await verifier.verify(sealed, clientPublic.subarray(0, 31)), wrongKey);
  assert.deepEqual(await verifier.verify(sealed, new Uint8Array(0)), wrongKey);
  assert.equal(verifier.usedTicketCount, 0);
  assert.equal((await verifier.verify(sealed, clientPublic)).ok, true);
});

Deno.test("used ticket ids are bounded: oldest evicted past maxUsedTickets", async () => {
  const clusterKey = crypto.getRandomValues(new Uint8Array(32));
  const clientPublic = crypto.getRandomValues(new Uint8Array(32));
  const hash = await clientKeyHash(clientPublic);
  const verifier = new TicketVerifier({
    identityPublicKey: IDENTITY,
    clusterKey,
    clusterId: 1,
    now: () => NOW,
    maxUsedTickets: 3,
  });
  const tickets: Uint8Array[] = [];
  for (let i = 0; i < 10; i++) {
    const sealed = await sealJoinTicket(clusterKey, {
      clusterId: 1,
      clusterKeyHash: IDENTITY_HASH,
      playerId: `p${i}`,
      expiresAtMs: NOW + 60_000,
      clientKeyHash: hash,
      ticketId: newTicketId(),
    });
    tickets.push(sealed);
    assert.equal((await verifier.verify(sealed, clientPublic)).ok, true);
    assert.ok(verifier.usedTicketCount <= 3);
  }
  assert.equal(verifier.usedTicketCount, 3);
  // The newest ids are remembered...
  const last = await verifier.verify(tickets[9], clientPublic);
  assert.equal(!last.ok && last.reason, "reused");
  // ...the oldest was forgotten: the documented price of bounded memory.
  assert.equal((await verifier.verify(tickets[0], clientPublic)).ok, true);
  assert.equal(verifier.usedTicketCount, 3);
});

Deno.test("used ticket ids are forgotten once their tickets expire", async () => {
  const clusterKey = crypto.getRandomValues(new Uint8Array(32));
  const clientPublic = crypto.getRandomValues(new Uint8Array(32));
  const hash = await clientKeyHash(clientPublic);
  let now = NOW;
  const verifier = new TicketVerifier({
    identityPublicKey: IDENTITY,
    clusterKey,
    clusterId: 1,
    now: () => now,
  });
  const seal = (expiresAtMs: number) =>
    sealJoinTicket(clusterKey, {
      clusterId: 1,
      clusterKeyHash: IDENTITY_HASH,
      playerId: "p",
      expiresAtMs,
      clientKeyHash: hash,
      ticketId: newTicketId(),
    });
  for (let i = 0; i < 5; i++) {
    assert.equal((await verifier.verify(await seal(NOW + 1_000), clientPublic)).ok, true);
  }
  assert.equal(verifier.usedTicketCount, 5);
  now = NOW + 1_000;
  assert.equal((await verifier.verify(await seal(NOW + 60_000), clientPublic)).ok, true);
  assert.equal(verifier.usedTicketCount, 1);
});

Deno.test("a verifier accepts an imported key and refuses bad options", async () => {
  const { clusterKey, clientPublic, claims } = await fixture();
  const key = await importAesKey(clusterKey);
  const verifier = new TicketVerifier({
    identityPublicKey: IDENTITY,
    clusterKey: key,
    clusterId: 7,
    now: () => NOW,
  });
  assert.equal((await verifier.verify(await sealJoinTicket(key, claims), clientPublic)).ok, true);
  assert.throws(
    () =>
      new TicketVerifier({
        identityPublicKey: IDENTITY,
        clusterKey: new Uint8Array(31),
        clusterId: 7,
      }),
    KeyError,
  );
  for (const clusterId of [-1, 2 ** 32, 0.5]) {
    assert.throws(
      () => new TicketVerifier({ identityPublicKey: IDENTITY, clusterKey, clusterId }),
      RangeError,
    );
  }
  for (const maxUsedTickets of [0, -5, 1.5]) {
    assert.throws(
      () =>
        new TicketVerifier({
          identityPublicKey: IDENTITY,
          clusterKey,
          clusterId: 7,
          maxUsedTickets,
        }),
      RangeError,
    );
  }
});
