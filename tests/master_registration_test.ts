/** The master's cluster registration state machine, driven without sockets. */

import assert from "node:assert/strict";
import {
  ClusterRegistration,
  REGISTRATION_FAILED,
  type RegistrationStep,
} from "../master/cluster_registration.ts";
import { proveAnnounce } from "../shared/announce_proof.ts";
import { deriveMasterLinkKeys } from "../shared/key_derivation.ts";
import type { AnswerClusterPacket, BecomeClusterPacket } from "../shared/protocol/packets.ts";
import { decrypt, DecryptError, importAesKey } from "../shared/security.ts";

const KEY = crypto.getRandomValues(new Uint8Array(32));
const NONCE = crypto.getRandomValues(new Uint8Array(32));
const BECOME: BecomeClusterPacket = { kind: "BecomeCluster", keyName: "k", clusterNonce: NONCE };

const ANNOUNCED = {
  name: "eu-1",
  host: "127.0.0.1",
  port: 6257,
  maxConnections: 100,
  keyVersion: 2,
  publicKey: new Uint8Array(32).fill(5),
};

/** The AnswerCluster an honest cluster that opened `passphrase` sends for these fields. */
async function answer(
  passphrase: Uint8Array,
  extra: Partial<AnswerClusterPacket> = {},
  key: Uint8Array = KEY,
): Promise<AnswerClusterPacket> {
  const fields = { ...ANNOUNCED, ...extra };
  const { announceKey } = await deriveMasterLinkKeys(key, NONCE, passphrase);
  return { kind: "AnswerCluster", ...fields, proof: await proveAnnounce(announceKey, fields) };
}

function sealedOf(step: RegistrationStep): Uint8Array {
  assert.equal(step.kind, "challenge");
  if (step.kind !== "challenge") throw new Error("unreachable");
  return step.packet.sealedPassphrase;
}

async function challenged(
  key: Uint8Array | undefined = KEY,
): Promise<{ registration: ClusterRegistration; passphrase: Uint8Array; sealed: Uint8Array }> {
  const registration = new ClusterRegistration({ deadline: 10_000 });
  const sealed = sealedOf(await registration.challenge(BECOME, key, 1_000));
  const passphrase = key === undefined
    ? new Uint8Array(32)
    : await decrypt(await importAesKey(key), sealed);
  return { registration, passphrase, sealed };
}

Deno.test("the right answer registers with the announced fields and the link keys", async () => {
  const { registration, passphrase } = await challenged();
  assert.equal(registration.state, "awaiting_answer");
  assert.equal(passphrase.length, 32);
  const step = await registration.answer(await answer(passphrase), 2_000);
  assert.equal(step.kind, "registered");
  if (step.kind !== "registered") return;
  assert.deepEqual(step.announcement, { ...ANNOUNCED, keyName: "k" });
  assert.deepEqual(step.clusterKey, KEY);
  // The cluster derives the same keys from what it knows.
  assert.deepEqual(step.linkKeys, await deriveMasterLinkKeys(KEY, NONCE, passphrase));
  assert.equal(registration.state, "registered");
  assert.equal(registration.expire(), undefined);
});

Deno.test("every challenge has a fresh passphrase and nonce", async () => {
  const a = await challenged();
  const b = await challenged();
  assert.notDeepEqual(a.passphrase, b.passphrase);
  assert.notDeepEqual(a.sealed.subarray(0, 12), b.sealed.subarray(0, 12));
});

Deno.test("a proof made from a wrong passphrase is refused and the registration is over", async () => {
  const { registration, passphrase } = await challenged();
  const wrong = passphrase.slice();
  wrong[31] ^= 1;
  assert.deepEqual(await registration.answer(await answer(wrong), 2_000), {
    kind: "refused",
    reason: "wrong_proof",
  });
  assert.equal(registration.state, "failed");
  // One try: the right answer afterwards is refused too.
  assert.equal((await registration.answer(await answer(passphrase), 2_000)).kind, "refused");
});

Deno.test("every announced field is bound by the proof: any rewritten field is wrong_proof", async () => {
  const rewrites: Partial<AnswerClusterPacket>[] = [
    { name: "evil" },
    { host: "10.6.6.6" },
    { port: 6666 },
    { maxConnections: 7 },
    { keyVersion: 9 },
    { publicKey: new Uint8Array(32).fill(6) },
  ];
  for (const rewrite of rewrites) {
    const { registration, passphrase } = await challenged();
    const honest = await answer(passphrase);
    assert.deepEqual(await registration.answer({ ...honest, ...rewrite }, 2_000), {
      kind: "refused",
      reason: "wrong_proof",
    }, JSON.stringify(Object.keys(rewrite)));
  }
});

Deno.test("a proof under another cluster key is refused", async () => {
  const { registration, passphrase } = await challenged();
  const other = crypto.getRandomValues(new Uint8Array(32));
  assert.deepEqual(await registration.answer(await answer(passphrase, {}, other), 2_000), {
    kind: "refused",
    reason: "wrong_proof",
  });
});

Deno.test("a proof of another length is refused", async () => {
  const { registration, passphrase } = await challenged();
  const honest = await answer(passphrase);
  const step = await registration.answer({ ...honest, proof: honest.proof.subarray(0, 31) }, 2_000);
  assert.deepEqual(step, { kind: "refused", reason: "wrong_proof" });
});

Deno.test("a cluster that leaves after the challenge is wrong_key if it said so, else abandoned", async () => {
  const told = await challenged();
  assert.deepEqual(told.registration.peerLeft(true), { kind: "refused", reason: "wrong_key" });
  const silent = await challenged();
  assert.deepEqual(silent.registration.peerLeft(false), { kind: "refused", reason: "abandoned" });
  const unknown = new ClusterRegistration({ deadline: 10_000 });
  await unknown.challenge(BECOME, undefined, 1_000);
  assert.deepEqual(unknown.peerLeft(true), { kind: "refused", reason: "unknown_key" });
  const early = new ClusterRegistration({ deadline: 10_000 });
  assert.deepEqual(early.peerLeft(false), { kind: "refused", reason: "abandoned" });
  assert.equal(early.peerLeft(false), undefined);
});

Deno.test("an unknown key gets a same-length challenge nobody can open", async () => {
  const known = await challenged();
  const registration = new ClusterRegistration({ deadline: 10_000 });
  const sealed = sealedOf(await registration.challenge(BECOME, undefined, 1_000));
  assert.equal(sealed.length, known.sealed.length);
  await assert.rejects(decrypt(await importAesKey(KEY), sealed), DecryptError);
  assert.deepEqual(await registration.answer(await answer(known.passphrase), 2_000), {
    kind: "refused",
    reason: "unknown_key",
  });
});

Deno.test("an answer after the deadline is refused even if right", async () => {
  const registration = new ClusterRegistration({ deadline: 5_000 });
  const sealed = sealedOf(await registration.challenge(BECOME, KEY, 1_000));
  const passphrase = await decrypt(await importAesKey(KEY), sealed);
  assert.deepEqual(await registration.answer(await answer(passphrase), 5_001), {
    kind: "refused",
    reason: "timeout",
  });
});

Deno.test("a BecomeCluster after the deadline is refused", async () => {
  const registration = new ClusterRegistration({ deadline: 5_000 });
  assert.deepEqual(await registration.challenge(BECOME, KEY, 6_000), {
    kind: "refused",
    reason: "timeout",
  });
});

Deno.test("expire() fails a pending registration, also while the challenge is being sealed", async () => {
  const waiting = new ClusterRegistration({ deadline: 5_000 });
  assert.deepEqual(waiting.expire(), { kind: "refused", reason: "timeout" });
  assert.equal(waiting.state, "failed");
  assert.equal(waiting.expire(), undefined);

  const sealing = new ClusterRegistration({ deadline: 5_000 });
  const pending = sealing.challenge(BECOME, KEY, 1_000);
  assert.equal(sealing.state, "challenging");
  sealing.expire();
  assert.deepEqual(await pending, { kind: "refused", reason: "timeout" });
});

Deno.test("out-of-order packets are refused: answer first, or a second BecomeCluster", async () => {
  const early = new ClusterRegistration({ deadline: 5_000 });
  assert.deepEqual(await early.answer(await answer(new Uint8Array(32)), 1_000), {
    kind: "refused",
    reason: "out_of_order",
  });
  const { registration } = await challenged();
  assert.deepEqual(await registration.challenge(BECOME, KEY, 1_000), {
    kind: "refused",
    reason: "out_of_order",
  });
});

Deno.test("a proven answer with an unusable announcement is refused", async () => {
  const bad: Partial<AnswerClusterPacket>[] = [
    { publicKey: new Uint8Array(31) },
    { port: 0 },
    { host: "" },
    { name: "" },
  ];
  for (const extra of bad) {
    const { registration, passphrase } = await challenged();
    assert.deepEqual(await registration.answer(await answer(passphrase, extra), 2_000), {
      kind: "refused",
      reason: "invalid_announcement",
    }, JSON.stringify(Object.keys(extra)));
  }
});

Deno.test("every failure is sent as the same Error(AuthFailed)", () => {
  assert.equal(REGISTRATION_FAILED.code, 10);
  assert.equal(REGISTRATION_FAILED.message, "cluster registration failed");
  assert.ok(Object.isFrozen(REGISTRATION_FAILED));
});

Deno.test("the endpoint list is announced, kept, and bound by the proof", async () => {
  const endpoints = [{ kind: "ws", port: 6259, path: "/sustenet" }] as const;
  const { registration, passphrase } = await challenged();
  const step = await registration.answer(await answer(passphrase, { endpoints }), 2_000);
  assert.equal(step.kind, "registered");
  if (step.kind !== "registered") throw new Error("unreachable");
  assert.deepEqual(step.announcement.endpoints, endpoints);

  // A man in the middle adding, dropping or redirecting an endpoint breaks the proof.
  const rewrites = [
    [...endpoints, { kind: "ws", port: 6666, path: "/evil" }],
    [],
    [{ kind: "ws", port: 6666, path: "/sustenet" }],
  ] as const;
  for (const rewrite of rewrites) {
    const again = await challenged();
    const honest = await answer(again.passphrase, { endpoints });
    assert.deepEqual(await again.registration.answer({ ...honest, endpoints: rewrite }, 2_000), {
      kind: "refused",
      reason: "wrong_proof",
    });
  }

  // A proven but unusable endpoint (ws without a path) is refused.
  const bad = await challenged();
  const unusable = await answer(bad.passphrase, { endpoints: [{ kind: "ws", port: 1, path: "" }] });
  assert.deepEqual(await bad.registration.answer(unusable, 2_000), {
    kind: "refused",
    reason: "invalid_announcement",
  });
});
