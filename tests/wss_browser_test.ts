/**
 * Chromium (Debian's, through playwright-core) opens the wss:// listener when it is told to
 * trust the server's key, and refuses it otherwise: the browser side of `wss://` with the
 * certificate of `deno task certs`. The trust is `--ignore-certificate-errors-spki-list`, a pin
 * of the server's public key (any other key fails), not playwright's `ignoreHTTPSErrors`.
 */

import assert from "node:assert/strict";
import { createHash, X509Certificate } from "node:crypto";
import type { Browser } from "playwright-core";
import { launchChromium } from "./_browser.ts";
import { encodeFrame } from "../shared/protocol/frame.ts";
import { listenWebSocket } from "../shared/websocket_listener.ts";
import { makeTestCerts } from "./_certs.ts";

/** base64(SHA-256(SubjectPublicKeyInfo)) of a certificate, as Chromium's SPKI list takes it. */
function spkiHash(pem: string): string {
  const spki = new X509Certificate(pem).publicKey.export({ type: "spki", format: "der" });
  return createHash("sha256").update(spki).digest("base64");
}

function launch(pin: string | null): Promise<Browser> {
  return launchChromium(pin === null ? [] : [`--ignore-certificate-errors-spki-list=${pin}`]);
}

/** Opens a WebSocket in a page, sends `frame`, and says what came back or how it closed. */
async function exchange(browser: Browser, url: string, frame: number[]): Promise<string> {
  const page = await browser.newPage();
  try {
    return await page.evaluate(async ([url, frame]) =>
      await new Promise<string>((resolve) => {
        const ws = new WebSocket(url as string);
        ws.binaryType = "arraybuffer";
        ws.onopen = () => ws.send(new Uint8Array(frame as number[]));
        ws.onmessage = (event) => {
          resolve(`echo ${[...new Uint8Array(event.data as ArrayBuffer)].join(",")}`);
          ws.close();
        };
        ws.onclose = (event) => resolve(`closed ${event.code}`);
      }), [url, frame] as const);
  } finally {
    await page.close();
  }
}

Deno.test({
  name: "chromium opens wss:// with the server's key pinned, and refuses another key or none",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    await using certs = await makeTestCerts();
    await using other = await makeTestCerts();
    const listener = listenWebSocket({
      port: 0,
      tls: { cert: certs.cert, key: certs.key },
      allowedOrigins: ["*"],
      onFrame: (frame, conn) => conn.send(encodeFrame(frame.type, frame.payload)),
    });
    const url = `wss://localhost:${listener.addr.port}/sustenet`;
    const frame = [...encodeFrame(0x80, new Uint8Array([42]))];
    try {
      const cases: [string | null, string][] = [
        [spkiHash(certs.cert), `echo ${frame.join(",")}`],
        [spkiHash(other.cert), "closed 1006"],
        [null, "closed 1006"],
      ];
      for (const [pin, expected] of cases) {
        const browser = await launch(pin);
        try {
          assert.equal(await exchange(browser, url, frame), expected, `pin ${pin}`);
        } finally {
          await browser.close();
        }
      }
    } finally {
      await listener.close();
    }
  },
});
