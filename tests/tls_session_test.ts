import assert from "node:assert/strict";
import { definePlugin } from "../shared/plugin.ts";
import { generateEphemeralKeyPair } from "../shared/key_derivation.ts";
import { type PacketOf, PROTOCOL_VERSION } from "../shared/protocol/packets.ts";
import { ErrorCode } from "../shared/protocol/protocol_error.ts";
import { tlsJoinCommitment } from "../shared/tls_join.ts";
import { makeTestCerts, type TestCerts } from "./_certs.ts";
import { playerJoins, RawClient, requestTicket, startWorld, type World } from "./_raw_client.ts";

const echo = definePlugin({
  onMessage: (ctx, from, command, payload) => ctx.send(from, command, payload),
});

async function tlsWorld(certs: TestCerts): Promise<World> {
  return await startWorld({
    tls: { port: 0, cert: certs.cert, key: certs.key },
    plugins: [echo],
  });
}

/** A TLS-mode ticket: the master sees only the commitment of a fresh secret. */
async function tlsTicket(
  world: World,
): Promise<{ secret: Uint8Array; ticket: PacketOf<"JoinTicket"> }> {
  const secret = crypto.getRandomValues(new Uint8Array(32));
  const commitment = await tlsJoinCommitment(secret);
  const master = await RawClient.connect(world.master.addr.port);
  try {
    master.send({ kind: "Hello", version: PROTOCOL_VERSION, role: 1 });
    await master.expect("HelloOk");
    master.send({
      kind: "JoinCluster",
      clusterId: 0,
      clientPublicKey: commitment,
      credential: new Uint8Array(),
    });
    const ticket = await master.expect("JoinTicket");
    // The ticket tells a TLS-only client where the cluster's TLS listener is.
    assert.deepEqual(ticket.endpoints, [
      { kind: "tls", port: world.cluster.tlsAddr!.port, path: "" },
    ]);
    return { secret, ticket };
  } finally {
    await master.close();
  }
}

/** Connects to the cluster's TLS port, says Hello and sends TlsJoin. */
async function tlsJoin(
  world: World,
  certs: TestCerts,
  secret: Uint8Array,
  ticket: Uint8Array,
): Promise<RawClient> {
  const port = world.cluster.tlsAddr!.port;
  const client = await RawClient.connectTls(port, certs.ca);
  client.send({ kind: "Hello", version: PROTOCOL_VERSION, role: 1 });
  await client.expect("HelloOk");
  client.send({ kind: "TlsJoin", bindingSecret: secret, ticket });
  return client;
}

Deno.test("TLS session mode: a client with only TLS joins, plays and leaves", async () => {
  await using certs = await makeTestCerts();
  await using world = await tlsWorld(certs);
  const { secret, ticket } = await tlsTicket(world);
  const client = await tlsJoin(world, certs, secret, ticket.ticket);
  const auth = await client.expect("Authenticate");
  assert.equal(auth.status, 20);
  assert.equal(world.cluster.players.size, 1);
  // Frames travel inside TLS only: no sealed records on this connection.
  client.send({ kind: "Plugin", command: 0x80, payload: new TextEncoder().encode("hi") });
  const back = await client.expect("Plugin");
  assert.equal(new TextDecoder().decode(back.payload), "hi");
  client.send({ kind: "Ping", value: 9 });
  assert.equal((await client.expect("Pong")).value, 9);
  client.send({ kind: "LeaveCluster" });
  await client.expect("LeaveCluster");
  await client.closed;
});

Deno.test("TLS session mode is refused on the plain port before the ticket is looked at", async () => {
  await using certs = await makeTestCerts();
  await using world = await tlsWorld(certs);
  const { secret, ticket } = await tlsTicket(world);
  const plain = await RawClient.connect(world.cluster.addr.port);
  plain.send({ kind: "Hello", version: PROTOCOL_VERSION, role: 1 });
  await plain.expect("HelloOk");
  plain.send({ kind: "TlsJoin", bindingSecret: secret, ticket: ticket.ticket });
  const error = await plain.expect("Error");
  assert.equal(error.code, ErrorCode.UnexpectedPacket);
  assert.match(error.reason, /not TLS/);
  await plain.closed;
  assert.equal(world.cluster.players.size, 0);
  // The ticket was never spent: the rightful client still joins over TLS with it.
  const client = await tlsJoin(world, certs, secret, ticket.ticket);
  assert.equal((await client.expect("Authenticate")).status, 20);
  await client.close();
});

Deno.test("a stolen TLS-mode ticket is refused without its secret (40)", async () => {
  await using certs = await makeTestCerts();
  await using world = await tlsWorld(certs);
  const { ticket } = await tlsTicket(world);
  const thief = await tlsJoin(
    world,
    certs,
    crypto.getRandomValues(new Uint8Array(32)),
    ticket.ticket,
  );
  assert.equal((await thief.expect("Authenticate")).status, 40);
  await thief.closed;
  assert.equal(world.cluster.players.size, 0);
});

Deno.test("a TLS-mode ticket is single use, even with its secret (44)", async () => {
  await using certs = await makeTestCerts();
  await using world = await tlsWorld(certs);
  const { secret, ticket } = await tlsTicket(world);
  const first = await tlsJoin(world, certs, secret, ticket.ticket);
  assert.equal((await first.expect("Authenticate")).status, 20);
  const replay = await tlsJoin(world, certs, secret, ticket.ticket);
  assert.equal((await replay.expect("Authenticate")).status, 44);
  await replay.closed;
  assert.equal(world.cluster.players.size, 1);
  await first.close();
});

Deno.test("a ticket bound to an X25519 key cannot be used in TLS session mode (40)", async () => {
  await using certs = await makeTestCerts();
  await using world = await tlsWorld(certs);
  const ephemeral = await generateEphemeralKeyPair();
  const grant = await requestTicket(world.master.addr.port, 0, ephemeral);
  assert.equal(grant.answer.kind, "JoinTicket");
  const ticket = (grant.answer as PacketOf<"JoinTicket">).ticket;
  // Whoever saw the JoinCluster knows the public key, but a secret must hash to it.
  for (const secret of [ephemeral.publicRaw, crypto.getRandomValues(new Uint8Array(32))]) {
    const client = await tlsJoin(world, certs, secret, ticket);
    assert.equal((await client.expect("Authenticate")).status, 40);
    await client.closed;
  }
});

Deno.test("the sealed-record path is unchanged on the plain port of a TLS cluster", async () => {
  await using certs = await makeTestCerts();
  await using world = await tlsWorld(certs);
  const plain = await playerJoins(world.master.addr.port, world.cluster.addr.port);
  assert.equal(plain.auth.status, 20);
  await plain.client.close();
});
