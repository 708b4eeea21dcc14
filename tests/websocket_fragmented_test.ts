/**
 * Issue 16's remaining bad inputs on a master's WebSocket listener, from a raw TCP peer that
 * writes RFC 6455 frames itself: a message fragmented into continuation frames is one message
 * (reassembled by the runtime, then held to the same rules as any other), so whole frames in
 * fragments are served and a fragmented message ending inside a frame closes with 1002; a
 * peer that stops mid-record once sealed is closed with 1002 and a logged reason; a message
 * announced above the runtime's 64 MiB is dropped at its header. After each, the server
 * carries on.
 */

import assert from "node:assert/strict";
import { reset } from "@logtape/logtape";
import type { LogRecord } from "@logtape/logtape";
import { startMaster } from "../master/mod.ts";
import { decodePacket, encodePacket } from "../shared/protocol/codec.ts";
import { encodeFrame, FrameDecoder } from "../shared/protocol/frame.ts";
import { PROTOCOL_VERSION, Role } from "../shared/protocol/packets.ts";
import { listenWebSocket } from "../shared/websocket_listener.ts";
import { captureLogs } from "./_logs.ts";

const HELLO = encodePacket({ kind: "Hello", version: PROTOCOL_VERSION, role: Role.Client });

/** A client-to-server WebSocket frame (masked, as RFC 6455 requires), payload < 126 bytes. */
function clientFrame(opcode: number, fin: boolean, payload: Uint8Array): Uint8Array {
  assert.ok(payload.length < 126);
  const mask = crypto.getRandomValues(new Uint8Array(4));
  const out = new Uint8Array(6 + payload.length);
  out[0] = (fin ? 0x80 : 0) | opcode;
  out[1] = 0x80 | payload.length;
  out.set(mask, 2);
  for (let i = 0; i < payload.length; i++) out[6 + i] = payload[i] ^ mask[i % 4];
  return out;
}

/** A raw WebSocket peer on TCP: writes frames, reads the server's messages and close code. */
class RawPeer {
  readonly #conn: Deno.TcpConn;
  #buffer = new Uint8Array(0);

  private constructor(conn: Deno.TcpConn) {
    this.#conn = conn;
  }

  /** Connects and completes the upgrade on `path`. */
  static async open(port: number, path: string): Promise<RawPeer> {
    const peer = new RawPeer(await Deno.connect({ hostname: "127.0.0.1", port }));
    await peer.write(
      new TextEncoder().encode(
        `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
      ),
    );
    const head = await peer.#readUntilHeadEnd();
    assert.match(head, /^HTTP\/1\.1 101 /);
    return peer;
  }

  async write(bytes: Uint8Array): Promise<void> {
    for (let at = 0; at < bytes.length;) at += await this.#conn.write(bytes.subarray(at));
  }

  /** The next message's payload (binary), or the close code when the server closes. */
  async next(): Promise<{ binary: Uint8Array } | { close: number } | { end: true }> {
    for (;;) {
      const b = this.#buffer;
      if (b.length >= 2) {
        let length = b[1] & 0x7f;
        let at = 2;
        if (length === 126 && b.length >= 4) {
          length = (b[2] << 8) | b[3];
          at = 4;
        }
        assert.ok(length !== 127, "a test message is small");
        if ((b[1] & 0x7f) !== 126 || b.length >= 4) {
          if (b.length >= at + length) {
            const opcode = b[0] & 0x0f;
            const payload = b.slice(at, at + length);
            this.#buffer = b.slice(at + length);
            if (opcode === 0x2) return { binary: payload };
            if (opcode === 0x8) return { close: (payload[0] << 8) | payload[1] };
            continue; // ping, pong or text: not what these tests look at
          }
        }
      }
      if (!(await this.#fill())) return { end: true };
    }
  }

  close(): void {
    try {
      this.#conn.close();
    } catch (error) {
      // Already closed by the server's side: the only expected failure here.
      if (!(error instanceof Deno.errors.BadResource)) throw error;
    }
  }

  async #fill(): Promise<boolean> {
    const chunk = new Uint8Array(4096);
    let n: number | null;
    try {
      n = await this.#conn.read(chunk);
    } catch (error) {
      // A peer dropped by the server may see a reset instead of an end: both end the stream.
      if (error instanceof Deno.errors.ConnectionReset) return false;
      throw error;
    }
    if (n === null) return false;
    const merged = new Uint8Array(this.#buffer.length + n);
    merged.set(this.#buffer);
    merged.set(chunk.subarray(0, n), this.#buffer.length);
    this.#buffer = merged;
    return true;
  }

  async #readUntilHeadEnd(): Promise<string> {
    for (;;) {
      const text = new TextDecoder().decode(this.#buffer);
      const end = text.indexOf("\r\n\r\n");
      if (end >= 0) {
        this.#buffer = this.#buffer.slice(new TextEncoder().encode(text.slice(0, end + 4)).length);
        return text.slice(0, end);
      }
      assert.ok(await this.#fill(), "the server answered the upgrade");
    }
  }
}

/** The packet kinds in one binary message. */
function kindsOf(message: Uint8Array): string[] {
  const decoder = new FrameDecoder();
  decoder.push(message);
  const kinds: string[] = [];
  for (let f = decoder.next(); f !== undefined && !(f instanceof Error); f = decoder.next()) {
    const packet = decodePacket(f);
    kinds.push(packet instanceof Error ? "invalid" : packet.kind);
  }
  return kinds;
}

/** A log record mentions `text`. */
function logged(logs: readonly LogRecord[], text: string): boolean {
  return logs.some((r) =>
    JSON.stringify(r.properties).includes(text) || r.message.join("").includes(text)
  );
}

/** The first binary message's kinds, skipping nothing else the server may send first. */
async function firstKinds(peer: RawPeer): Promise<string[]> {
  const got = await peer.next();
  assert.ok("binary" in got, JSON.stringify(got));
  return kindsOf(got.binary);
}

Deno.test("websocket: a message in continuation frames is one message: whole frames are served, a cut frame is 1002", async () => {
  const logs = await captureLogs("debug");
  const keysDir = await Deno.makeTempDir();
  const master = await startMaster({ port: 0, keysDir, webSocket: { port: 0 } });
  try {
    const port = master.webSocketAddr!.port;
    // Hello split across a binary frame and a continuation frame: one message, one Hello.
    const whole = await RawPeer.open(port, "/sustenet");
    await whole.write(clientFrame(0x2, false, HELLO.subarray(0, 3)));
    await whole.write(clientFrame(0x0, true, HELLO.subarray(3)));
    assert.deepEqual(await firstKinds(whole), ["HelloOk"]);
    whole.close();

    // Fragments that end inside the Hello frame: the message ends inside a frame.
    const cut = await RawPeer.open(port, "/sustenet");
    await cut.write(clientFrame(0x2, false, HELLO.subarray(0, 3)));
    await cut.write(clientFrame(0x0, true, HELLO.subarray(3, 6)));
    let got = await cut.next();
    while ("binary" in got) got = await cut.next(); // the Error frame comes first
    assert.deepEqual(got, { close: 1002 });
    cut.close();
    assert.ok(logged(logs, "WebSocket message ends inside a frame or record"));

    // The server carries on.
    const after = await RawPeer.open(port, "/sustenet");
    await after.write(clientFrame(0x2, true, HELLO));
    assert.deepEqual(await firstKinds(after), ["HelloOk"]);
    after.close();
  } finally {
    await master.stop();
    await Deno.remove(keysDir, { recursive: true });
    await reset();
  }
});

Deno.test("websocket: a peer that stops mid-record once sealed is closed with 1002 and a logged reason", async () => {
  const logs = await captureLogs("debug");
  const key = new Uint8Array(32).fill(7);
  // Frame 0x01 switches the server's side to sealed records, as KeyExchange does.
  const server = listenWebSocket({
    port: 0,
    path: "/sealed",
    handshakeTimeoutMs: 0,
    idleTimeoutMs: 0,
    onFrame: (frame, conn) => {
      if (frame.type === 0x01) conn.startSealing({ sendKey: key, receiveKey: key });
    },
  });
  try {
    const peer = await RawPeer.open(server.addr.port, "/sealed");
    await peer.write(clientFrame(0x2, true, encodeFrame(0x01, new Uint8Array())));
    // A record header announcing 100 bytes, then 10 of them: the peer stops mid-record.
    const partial = new Uint8Array(14);
    new DataView(partial.buffer).setUint32(0, 100);
    await peer.write(clientFrame(0x2, true, partial));
    let got = await peer.next();
    while ("binary" in got) got = await peer.next();
    assert.deepEqual(got, { close: 1002 });
    peer.close();
    assert.ok(logged(logs, "WebSocket message ends inside a frame or record"));

    // Another connection is served.
    const next = await RawPeer.open(server.addr.port, "/sealed");
    next.close();
  } finally {
    await server.close();
    await reset();
  }
});

Deno.test("websocket: a message announced above the runtime's 64 MiB is dropped at its header", async () => {
  // Deno's WebSocket layer reassembles a message before the session's bound applies; what it
  // buffers per peer is capped at 64 MiB (docs/PROTOCOL.md "WebSocket", Size). A header over
  // that ends the connection before any payload; this pins the figure the docs state.
  const server = listenWebSocket({ port: 0, handshakeTimeoutMs: 0, idleTimeoutMs: 0 });
  try {
    const peer = await RawPeer.open(server.addr.port, "/sustenet");
    const header = new Uint8Array(14);
    header[0] = 0x82;
    header[1] = 0x80 | 127;
    new DataView(header.buffer).setBigUint64(2, 64n * 1024n * 1024n + 1n);
    await peer.write(header);
    const got = await peer.next();
    assert.ok("end" in got || "close" in got, JSON.stringify(got));
    peer.close();
    const next = await RawPeer.open(server.addr.port, "/sustenet");
    next.close();
  } finally {
    await server.close();
  }
});
