/**
 * The browser bundle (`deno bundle` of browser.ts, as `deno task bundle` makes it) loads in a
 * page in headless Chromium and computes what Deno computes: the PROTOCOL.md crypto vectors,
 * WebCrypto X25519 against a Deno-side key, sealed records both ways and packet bytes.
 */
import assert from "node:assert/strict";
import { bundleForBrowser } from "../web/bundle.ts";
import { createRecordCipher } from "../shared/create_record_cipher.ts";
import { SealedRecordReader, SealedRecordWriter } from "../shared/sealed_record.ts";
import { exportIdentity, generateIdentityKeyPair, importIdentity } from "../shared/identity_key.ts";
import { clientSessionKeysForCluster } from "../shared/key_derivation.ts";
import { encodePacket } from "../shared/protocol/codec.ts";
import { Role } from "../shared/protocol/packets.ts";
import { launchChromium, serveStatic } from "./_browser.ts";
import { protocolCryptoVectors, vectorHex } from "./_crypto_vectors.ts";

type Sustenet = typeof import("../browser.ts");

const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>sustenet bundle</title>
<script type="module">
  import * as sustenet from "/sustenet.js";
  globalThis.sustenet = sustenet;
</script>`;

Deno.test({
  name: "the bundle loads in Chromium and computes the same bytes as Deno",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "sustenet-bundle-" });
    try {
      await bundleForBrowser(`${dir}/sustenet.js`);
      const bundle = await Deno.readFile(`${dir}/sustenet.js`);
      assert.ok(!new TextDecoder().decode(bundle).includes('from"node:'), "no node: import");
      await using server = serveStatic(
        new Map<string, string | Uint8Array>([["/", PAGE], ["/sustenet.js", bundle]]),
      );
      const browser = await launchChromium();
      try {
        const page = await browser.newPage();
        const pageErrors: string[] = [];
        page.on("pageerror", (error) => pageErrors.push(error.message));
        await page.goto(server.url);
        await page.waitForFunction(() => "sustenet" in globalThis, undefined, { timeout: 60_000 });
        assert.deepEqual(pageErrors, []);

        const vectors = await protocolCryptoVectors();
        const hex = (label: string, name: string) => vectorHex(vectors, label, name).toHex();
        // A cluster identity on the Deno side; the page derives its session keys against it.
        const cluster = await exportIdentity(await generateIdentityKeyPair());
        const recordKey = crypto.getRandomValues(new Uint8Array(32));
        const frames = [
          encodePacket({ kind: "Ping", value: 41 }),
          encodePacket({ kind: "Hello", version: 2, role: Role.Client }),
        ];
        const input = {
          clientPrivate: hex("client session keys", "clientPrivate"),
          clusterPublicVector: hex("client session keys", "clusterPublic"),
          clientRandom: hex("client session keys", "clientRandom"),
          serverRandom: hex("client session keys", "serverRandom"),
          recordVectorKey: hex("sealed records", "key"),
          recordVectorFrame: hex("sealed records", "frame"),
          clusterPublic: cluster.publicRaw.toHex(),
          recordKey: recordKey.toHex(),
          frames: frames.map((f) => f.toHex()),
        };
        const result = await page.evaluate(async (input) => {
          const page = globalThis as unknown as { sustenet: Sustenet; isSecureContext: boolean };
          const s = page.sustenet;
          const bytes = (h: string) => Uint8Array.fromHex(h);
          // RFC 8410 PKCS#8 wrapping of a raw X25519 private key.
          const pkcs8 = new Uint8Array([
            ...Uint8Array.fromHex("302e020100300506032b656e04220420"),
            ...bytes(input.clientPrivate),
          ]);
          const client = await s.importIdentity(pkcs8);
          const vectorKeys = await s.clientSessionKeysForClient(
            client.privateKey,
            bytes(input.clusterPublicVector),
            bytes(input.clientRandom),
            bytes(input.serverRandom),
          );
          const vectorWriter = new s.SealedRecordWriter(
            await s.WebCryptoRecordCipher.create(bytes(input.recordVectorKey)),
          );
          const record0 = await vectorWriter.seal(bytes(input.recordVectorFrame));
          const record1 = await vectorWriter.seal(bytes(input.recordVectorFrame));
          // A fresh ephemeral key, as a join makes: WebCrypto X25519 in this page.
          const ephemeral = await s.generateEphemeralKeyPair();
          const liveKeys = await s.clientSessionKeysForClient(
            ephemeral.privateKey,
            bytes(input.clusterPublic),
            bytes(input.clientRandom),
            bytes(input.serverRandom),
          );
          const cipher = await s.WebCryptoRecordCipher.create(bytes(input.recordKey));
          const sealed = await new s.SealedRecordWriter(cipher).seal(input.frames.map(bytes));
          return {
            secure: page.isSecureContext,
            clientPublic: client.publicRaw.toHex(),
            clientToCluster: vectorKeys.clientToCluster.toHex(),
            clusterToClient: vectorKeys.clusterToClient.toHex(),
            record0: record0.toHex(),
            record1: record1.toHex(),
            ephemeralPublic: ephemeral.publicRaw.toHex(),
            liveClientToCluster: liveKeys.clientToCluster.toHex(),
            liveClusterToClient: liveKeys.clusterToClient.toHex(),
            sealed: sealed.toHex(),
            ping: s.encodePacket({ kind: "Ping", value: 41 }).toHex(),
            version: s.PROTOCOL_VERSION,
          };
        }, input);

        assert.equal(result.secure, true, "http://127.0.0.1 is a secure context");
        // PROTOCOL.md's vectors, computed in the page.
        assert.equal(result.clientPublic, hex("client session keys", "clientPublic"));
        assert.equal(result.clientToCluster, hex("client session keys", "clientToCluster"));
        assert.equal(result.clusterToClient, hex("client session keys", "clusterToClient"));
        assert.equal(result.record0, hex("sealed records", "record0"));
        assert.equal(result.record1, hex("sealed records", "record1"));
        // The page's X25519 agrees with Deno's: the cluster side derives the same keys.
        const identity = await importIdentity(cluster.privatePkcs8, cluster.publicRaw);
        const onCluster = await clientSessionKeysForCluster(
          identity.privateKey,
          Uint8Array.fromHex(result.ephemeralPublic),
          Uint8Array.fromHex(input.clientRandom),
          Uint8Array.fromHex(input.serverRandom),
        );
        assert.equal(result.liveClientToCluster, onCluster.clientToCluster.toHex());
        assert.equal(result.liveClusterToClient, onCluster.clusterToClient.toHex());
        // The page's sealed record is the server cipher's, byte for byte, and opens on Deno.
        const serverCipher = await createRecordCipher(recordKey);
        const expected = await new SealedRecordWriter(serverCipher).seal(frames);
        assert.equal(result.sealed, expected.toHex());
        const reader = new SealedRecordReader(serverCipher);
        reader.push(Uint8Array.fromHex(result.sealed));
        assert.deepEqual(
          await reader.next(),
          new Uint8Array([...frames[0], ...frames[1]]),
        );
        assert.equal(result.ping, frames[0].toHex());
        assert.equal(pageErrors.length, 0, pageErrors.join("\n"));
      } finally {
        await browser.close();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
