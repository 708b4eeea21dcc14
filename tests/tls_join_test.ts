/**
 * The TLS session mode without sockets: the cluster's ClientSession accepts TlsJoin only when
 * told its connection is TLS, binds the ticket to the secret's commitment and never seals; the
 * frame decoder names a TLS handshake read on a plain port.
 */
import assert from "node:assert/strict";
import { stepMachine } from "../shared/drive_machine.ts";
import { ClientSession, type SessionAction } from "../cluster/client_session.ts";
import { exportIdentity, generateIdentityKeyPair } from "../shared/identity_key.ts";
import {
  clientKeyHash,
  clusterKeyHash,
  newTicketId,
  sealJoinTicket,
  TicketVerifier,
} from "../shared/join_ticket.ts";
import { decodePacket } from "../shared/protocol/codec.ts";
import { FrameDecoder } from "../shared/protocol/frame.ts";
import { PROTOCOL_VERSION } from "../shared/protocol/packets.ts";
import { ErrorCode, ProtocolError } from "../shared/protocol/protocol_error.ts";
import { tlsJoinCommitment } from "../shared/tls_join.ts";

const CLUSTER_ID = 9;
const NOW = 5_000_000;

async function setup(tls: boolean) {
  const pair = await generateIdentityKeyPair();
  const { publicRaw } = await exportIdentity(pair);
  const clusterKey = crypto.getRandomValues(new Uint8Array(32));
  const verifier = new TicketVerifier({
    clusterKey,
    clusterId: CLUSTER_ID,
    identityPublicKey: publicRaw,
    now: () => NOW,
  });
  let ticketsAsked = 0;
  const session = new ClientSession({
    serverName: "eu-1",
    identity: { privateKey: pair.privateKey, publicKey: publicRaw, version: 1 },
    tickets: () => {
      ticketsAsked++;
      return verifier;
    },
    admit: () => 3,
    tls,
  });
  const secret = crypto.getRandomValues(new Uint8Array(32));
  const ticket = await sealJoinTicket(clusterKey, {
    clusterId: CLUSTER_ID,
    clusterKeyHash: await clusterKeyHash(publicRaw),
    playerId: "guest-3",
    expiresAtMs: NOW + 30_000,
    clientKeyHash: await clientKeyHash(await tlsJoinCommitment(secret)),
    ticketId: newTicketId(),
  });
  await stepMachine(session, { kind: "Hello", version: PROTOCOL_VERSION, role: 1 });
  return { session, secret, ticket, ticketsAsked: () => ticketsAsked };
}

function sent(actions: readonly SessionAction[]) {
  return actions.flatMap((a) => {
    if (a.type !== "send") return [];
    const packet = decodePacket({ type: a.frame[4], payload: a.frame.subarray(5) });
    assert.ok(!(packet instanceof ProtocolError));
    return [packet];
  });
}

Deno.test("on a TLS connection TlsJoin authenticates with no sealing", async () => {
  const s = await setup(true);
  const actions = await stepMachine(s.session, {
    kind: "TlsJoin",
    bindingSecret: s.secret,
    ticket: s.ticket,
  });
  assert.deepEqual(sent(actions), [{ kind: "Authenticate", status: 20, clientId: 3 }]);
  assert.ok(!actions.some((a) => a.type === "seal"));
  assert.equal(s.session.state, "established");
});

Deno.test("on a plain connection TlsJoin closes before any ticket check", async () => {
  const s = await setup(false);
  const actions = await stepMachine(s.session, {
    kind: "TlsJoin",
    bindingSecret: s.secret,
    ticket: s.ticket,
  });
  assert.equal(actions.length, 1);
  const [close] = actions;
  assert.ok(close.type === "close");
  assert.equal(close.code, ErrorCode.UnexpectedPacket);
  assert.match(close.reason, /not TLS/);
  assert.equal(s.ticketsAsked(), 0);
  assert.equal(s.session.state, "closed");
});

Deno.test("TlsJoin with another secret is refused with 40", async () => {
  const s = await setup(true);
  const actions = await stepMachine(s.session, {
    kind: "TlsJoin",
    bindingSecret: crypto.getRandomValues(new Uint8Array(32)),
    ticket: s.ticket,
  });
  assert.deepEqual(sent(actions), [{ kind: "Authenticate", status: 40, clientId: 0 }]);
  assert.equal(s.session.state, "closed");
});

Deno.test("a TLS ClientHello read as a frame header is FrameTooLarge with a TLS hint", () => {
  const decoder = new FrameDecoder({ maxFrameBytes: 4096 });
  decoder.push(Uint8Array.fromHex("160301020001"));
  const error = decoder.next();
  assert.ok(error instanceof ProtocolError);
  assert.equal(error.errorCode, ErrorCode.FrameTooLarge);
  assert.match(error.message, /a TLS handshake on a plain port/);
});
