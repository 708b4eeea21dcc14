import assert from "node:assert/strict";
import { reset as resetLogging } from "@logtape/logtape";
import { SustenetClient } from "../client/mod.ts";
import {
  clientSessionKeysForClient,
  deriveMasterLinkKeys,
  generateEphemeralKeyPair,
} from "../shared/key_derivation.ts";
import { loadKey } from "../shared/keys.ts";
import { formatLogRecord, type LogRecord, setupLogging } from "../shared/logging.ts";
import { definePlugin } from "../shared/plugin.ts";
import type { PacketOf } from "../shared/protocol/packets.ts";
import { decrypt, importAesKey } from "../shared/security.ts";
import { answerOf, challengeOf } from "./_master_peer.ts";
import { RawClient, requestTicket, startWorld } from "./_raw_client.ts";

const echoOrKick = definePlugin({
  onMessage(ctx, from, command, payload) {
    if (command === 0x80) ctx.send(from, 0x80, payload);
    if (command === 0x81) ctx.kick(from, "kicked for the log test");
  },
});

/** Every textual form a secret could take in a log line. */
function formsOf(secret: Uint8Array): string[] {
  const forms = [
    secret.toHex(),
    secret.toHex().toUpperCase(),
    secret.toBase64(),
    secret.toBase64({ omitPadding: true }),
    secret.toBase64({ alphabet: "base64url", omitPadding: true }),
    [...secret].join(","),
  ];
  const text = new TextDecoder("utf-8", { fatal: false }).decode(secret).trim();
  if (/^[\x20-\x7e]+$/.test(text)) forms.push(text);
  return forms.filter((form) => form.length >= 12);
}

/** Turns a record's properties into text, bytes as hex, so hidden bytes are found too. */
function propertiesText(record: LogRecord): string {
  return JSON.stringify(record.properties, (_key, value: unknown) => {
    if (value instanceof Uint8Array) return `bytes:${value.toHex()}`;
    if (value instanceof Error) return `${value.name}: ${value.message} ${String(value.cause)}`;
    return value;
  });
}

Deno.test("a full register, join, play, kick and shutdown run logs no secret at debug level", async () => {
  const records: LogRecord[] = [];
  const lines: string[] = [];
  const capture = {
    debug: (line: string) => lines.push(line),
    info: (line: string) => lines.push(line),
    warn: (line: string) => lines.push(line),
    error: (line: string) => lines.push(line),
  };
  await setupLogging({
    level: "debug",
    color: false,
    console: capture,
    sinks: { memory: (record) => records.push(record) },
  });
  const secrets: Uint8Array[] = [];
  const credential = "correct-horse-battery-staple-credential";
  try {
    const w = await startWorld({ plugins: [echoOrKick] });
    try {
      const key = await loadKey(w.keysDir, "cluster_key");
      secrets.push(key, await Deno.readFile(`${w.keysDir}/cluster_identity.identity`));
      const masterPort = w.master.addr.port;

      // A cluster registration whose passphrase and link keys this test knows.
      const challenge = await challengeOf(masterPort, "cluster_key");
      const passphrase = await decrypt(await importAesKey(key), challenge.sealedPassphrase);
      const link = await deriveMasterLinkKeys(key, challenge.clusterNonce, passphrase);
      secrets.push(passphrase, link.clusterToMaster, link.masterToCluster);
      challenge.peer.sealOn("CreateCluster", {
        sendKey: link.clusterToMaster,
        receiveKey: link.masterToCluster,
      });
      challenge.peer.send(
        await answerOf(
          { keyName: "cluster_key", key, port: 1 },
          passphrase,
          challenge.clusterNonce,
        ),
      );
      await challenge.peer.expect("CreateCluster");
      await challenge.peer.close();

      // A raw player whose ticket and session keys this test knows.
      const clusterId = w.master.registry.list().find((c) => c.name === "eu-1")!.id;
      const grant = await requestTicket(masterPort, clusterId);
      const ticket = grant.answer as PacketOf<"JoinTicket">;
      secrets.push(ticket.ticket);
      const raw = await RawClient.connect(ticket.port);
      try {
        raw.send({ kind: "Hello", version: 3, role: 1 });
        await raw.expect("HelloOk");
        const clientRandom = crypto.getRandomValues(new Uint8Array(32));
        raw.send({
          kind: "KeyExchange",
          clientPublicKey: grant.ephemeral.publicRaw,
          clientRandom,
        });
        const { serverRandom } = await raw.expect("KeyExchangeOk");
        const session = await clientSessionKeysForClient(
          grant.ephemeral.privateKey,
          ticket.clusterPublicKey,
          clientRandom,
          serverRandom,
        );
        secrets.push(session.clientToCluster, session.clusterToClient);
        await raw.seal(session.clientToCluster, session.clusterToClient);
        raw.send({ kind: "SendPassword", ticket: ticket.ticket });
        assert.equal((await raw.expect("Authenticate")).status, 20);
        raw.send({ kind: "Plugin", command: 0x80, payload: new Uint8Array([1, 2, 3]) });
        await raw.expect("Plugin");
        // The same ticket again, and a tampered record: refusals are logged too.
        const again = await RawClient.connect(ticket.port);
        again.send({ kind: "Hello", version: 3, role: 1 });
        await again.expect("HelloOk");
        const other = await generateEphemeralKeyPair();
        again.send({ kind: "KeyExchange", clientPublicKey: other.publicRaw, clientRandom });
        await again.expect("KeyExchangeOk");
        again.send({ kind: "SendPassword", ticket: ticket.ticket }); // not sealed: refused
        await again.closed;
        await again.close();
        raw.tamperNextRecord = true;
        raw.send({ kind: "Plugin", command: 0x80, payload: new Uint8Array([4]) });
        await raw.closed;
      } finally {
        await raw.close();
      }

      // The client library with a credential: join, play, get kicked, join again, leave.
      const client = await SustenetClient.connect({ port: masterPort, credential });
      try {
        const first = await client.join(clusterId);
        first.send(0x81, new Uint8Array());
        await first.closed;
        const second = await client.join("auto");
        second.send(0x80, new TextEncoder().encode("hello"));
        await second.leave();
      } finally {
        await client.close();
      }
    } finally {
      await w[Symbol.asyncDispose]();
    }
  } finally {
    await resetLogging();
  }

  secrets.push(new TextEncoder().encode(credential));
  const text = [
    ...lines,
    ...records.map((record) => formatLogRecord(record)),
    ...records.map(propertiesText),
  ].join("\n");
  // The run did log at debug level (so the check below means something).
  assert.ok(records.some((r) => r.level === "debug"), "no debug record at all");
  assert.match(text, /registered/);
  assert.match(text, /joined as client/);
  for (const [i, secret] of secrets.entries()) {
    for (const form of formsOf(secret)) {
      assert.ok(!text.includes(form), `secret #${i} reached a log record`);
    }
  }
});
