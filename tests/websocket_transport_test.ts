/**
 * The WebSocket transport on real sockets: a master's WebSocket listener (startMaster with
 * `webSocket`) speaking the protocol, the bad inputs of docs/PROTOCOL.md "WebSocket" (text,
 * oversized and partial messages, wrong path, wrong origin), each closing one connection with a
 * logged reason while the server carries on, and the backpressure bound against a peer that
 * stops reading.
 */

import assert from "node:assert/strict";
import { reset } from "@logtape/logtape";
import type { LogRecord } from "@logtape/logtape";
import { startMaster } from "../master/mod.ts";
import { decodePacket, encodePacket } from "../shared/protocol/codec.ts";
import { encodeFrame, type Frame, FrameDecoder } from "../shared/protocol/frame.ts";
import { PROTOCOL_VERSION, Role } from "../shared/protocol/packets.ts";
import { ErrorCode } from "../shared/protocol/protocol_error.ts";
import type { CloseInfo, FrameTransport } from "../shared/frame_session.ts";
import { listenWebSocket } from "../shared/websocket_listener.ts";
import {
  connectWebSocket,
  WebSocketCloseCode,
  webSocketSession,
} from "../shared/websocket_transport.ts";
import { captureLogs } from "./_logs.ts";
import { processRss } from "./_process.ts";

const ALLOWED = "http://allowed.example";

async function withMaster(
  body: (url: string, logs: LogRecord[]) => Promise<void>,
): Promise<void> {
  const logs = await captureLogs("debug");
  const keysDir = await Deno.makeTempDir();
  const master = await startMaster({
    port: 0,
    keysDir,
    webSocket: { port: 0, path: "/sustenet", allowedOrigins: [ALLOWED] },
  });
  try {
    const ws = master.webSocketAddr;
    assert.ok(ws !== null);
    await body(`ws://${ws.hostname}:${ws.port}${ws.path}`, logs);
  } finally {
    await master.stop();
    await Deno.remove(keysDir, { recursive: true });
    await reset();
  }
}

/** Opens a raw WebSocket; resolves with it once open. */
async function open(url: string): Promise<WebSocket> {
  const socket = new WebSocket(url);
  socket.binaryType = "arraybuffer";
  await new Promise<void>((resolve, reject) => {
    socket.onopen = () => resolve();
    socket.onerror = () => reject(new Error("WebSocket failed"));
  });
  return socket;
}

/** Everything a raw socket receives until it closes: the frames and the close code. */
function collect(socket: WebSocket): Promise<{ frames: Frame[]; code: number; reason: string }> {
  const frames: Frame[] = [];
  socket.onmessage = (event) => {
    const bytes = new Uint8Array(event.data as ArrayBuffer);
    let at = 0;
    while (at < bytes.length) {
      const length = new DataView(bytes.buffer, at).getUint32(0);
      frames.push({ type: bytes[at + 4], payload: bytes.slice(at + 5, at + 4 + length) });
      at += 4 + length;
    }
  };
  return new Promise((resolve) => {
    socket.onclose = (event) => resolve({ frames, code: event.code, reason: event.reason });
  });
}

/** The Error packet among `frames`. */
function errorOf(frames: readonly Frame[]): { code: number; reason: string } {
  for (const frame of frames) {
    const packet = decodePacket(frame);
    if (!(packet instanceof Error) && packet.kind === "Error") return packet;
  }
  throw new Error(`no Error frame in ${frames.length} frames`);
}

/** The packet kind of a frame, or "invalid". */
function kindOf(frame: Frame): string {
  const packet = decodePacket(frame);
  return packet instanceof Error ? "invalid" : packet.kind;
}

/** A log record's properties mention `text` (in its reason or detail). */
function logged(logs: readonly LogRecord[], text: string): boolean {
  return logs.some((r) =>
    JSON.stringify(r.properties).includes(text) || r.message.join("").includes(text)
  );
}

/** Hello over a fresh session and back: proof the server still serves. */
async function helloWorks(url: string): Promise<void> {
  const got = Promise.withResolvers<string>();
  const session = await connectWebSocket({
    url,
    onFrame: (frame) => got.resolve(kindOf(frame)),
  });
  session.send(encodePacket({ kind: "Hello", version: PROTOCOL_VERSION, role: Role.Client }));
  assert.equal(await got.promise, "HelloOk");
  await session.close();
}

Deno.test("websocket: a master speaks the protocol over ws://, Hello to SendClusters", async () => {
  await withMaster(async (url) => {
    const kinds: string[] = [];
    const done = Promise.withResolvers<void>();
    const session = await connectWebSocket({
      url,
      onFrame: (frame) => {
        kinds.push(kindOf(frame));
        if (kinds.length === 2) done.resolve();
      },
    });
    // Both in one turn: one WebSocket message holding two frames.
    session.send(encodePacket({ kind: "Hello", version: PROTOCOL_VERSION, role: Role.Client }));
    session.send(encodePacket({ kind: "RequestClusters" }));
    await done.promise;
    assert.deepEqual(kinds, ["HelloOk", "SendClusters"]);
    assert.equal(session.writes, 1);
    await session.close();
  });
});

Deno.test("websocket: a text message is closed with 1003 and logged; the server carries on", async () => {
  await withMaster(async (url, logs) => {
    const socket = await open(url);
    const result = collect(socket);
    socket.send("hello?");
    const { frames, code } = await result;
    assert.equal(code, WebSocketCloseCode.UnsupportedData);
    assert.equal(errorOf(frames).code, ErrorCode.BadFrame);
    assert.ok(logged(logs, "text WebSocket message"));
    await helloWorks(url);
  });
});

Deno.test("websocket: a message over the bound is closed with 1009 and logged", async () => {
  await withMaster(async (url, logs) => {
    const socket = await open(url);
    const result = collect(socket);
    socket.send(new Uint8Array(1024 * 1024)); // far above a pending connection's bound
    const { frames, code } = await result;
    assert.equal(code, WebSocketCloseCode.MessageTooBig);
    assert.equal(errorOf(frames).code, ErrorCode.FrameTooLarge);
    assert.ok(logged(logs, "WebSocket message of 1048576 bytes above"));
    await helloWorks(url);
  });
});

Deno.test("websocket: a message ending inside a frame is closed with 1002 and logged", async () => {
  await withMaster(async (url, logs) => {
    const socket = await open(url);
    const result = collect(socket);
    const hello = encodePacket({ kind: "Hello", version: PROTOCOL_VERSION, role: Role.Client });
    socket.send(hello.subarray(0, 6)); // the peer "closes mid-frame": the rest never comes
    const { frames, code } = await result;
    assert.equal(code, WebSocketCloseCode.ProtocolError);
    assert.equal(errorOf(frames).code, ErrorCode.BadFrame);
    assert.ok(logged(logs, "WebSocket message ends inside a frame or record"));
    await helloWorks(url);
  });
});

Deno.test("websocket: a wrong path is 404 and a foreign origin 403, both logged", async () => {
  await withMaster(async (url, logs) => {
    const base = new URL(url);
    const wrongPath = await fetch(`http://${base.host}/other`, {
      headers: { upgrade: "websocket" },
    });
    assert.equal(wrongPath.status, 404);
    await wrongPath.body?.cancel();
    const headers = {
      upgrade: "websocket",
      connection: "Upgrade",
      "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
      "sec-websocket-version": "13",
    };
    const foreign = await fetch(`http://${base.host}${base.pathname}`, {
      headers: { ...headers, origin: "http://evil.example" },
    });
    assert.equal(foreign.status, 403);
    await foreign.body?.cancel();
    assert.ok(logged(logs, "wrong path"));
    assert.ok(logged(logs, `origin "http://evil.example" not allowed`));
    // Plain HTTP on the path is not an upgrade.
    const plain = await fetch(`http://${base.host}${base.pathname}`);
    assert.equal(plain.status, 426);
    await plain.body?.cancel();
    await helloWorks(url);
  });
});

Deno.test("websocket: a peer that stops reading is dropped with SlowConsumer, memory bounded", async () => {
  const maxQueueBytes = 1024 * 1024;
  const closed = Promise.withResolvers<CloseInfo>();
  const server = listenWebSocket({
    port: 0,
    path: "/flood",
    maxQueueBytes,
    handshakeTimeoutMs: 0,
    idleTimeoutMs: 0,
    onConnection: (connection: FrameTransport) => {
      connection.start(() => {});
      connection.closed.then(closed.resolve);
      const chunk = encodeFrame(0x80, new Uint8Array(32 * 1024));
      // Bounded in count (turns), 16 frames (half the bound) per turn.
      let turns = 0;
      const pump = () => {
        if (!connection.isOpen || ++turns > 100_000) return;
        // Only into an empty queue: then nothing but the socket's own buffer can overflow.
        if (connection.queuedBytes === 0) {
          for (let i = 0; i < 16; i++) if (!connection.send(chunk)) return;
        }
        setTimeout(pump, 0);
      };
      pump();
    },
  });
  const before = await processRss(Deno.pid) ?? 0;
  // A raw TCP peer: completes the upgrade, then never reads another byte.
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
  await conn.write(
    new TextEncoder().encode(
      "GET /flood HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    ),
  );
  let timer: ReturnType<typeof setTimeout> | undefined;
  const info = await Promise.race([
    closed.promise,
    new Promise<undefined>((resolve) => timer = setTimeout(() => resolve(undefined), 60_000)),
  ]);
  clearTimeout(timer);
  const after = await processRss(Deno.pid) ?? 0;
  conn.close();
  await server.close();
  assert.ok(info !== undefined, "not dropped within 60 s");
  assert.equal(info.code, ErrorCode.SlowConsumer);
  assert.match(info.reason, /WebSocket send buffer above 1048576 bytes/);
  // Generous: the queue bound is 1 MiB; unbounded sends grew RSS by hundreds of MB.
  const grownMb = (after - before) / 1024 / 1024;
  assert.ok(grownMb < 150, `RSS grew ${grownMb.toFixed(0)} MB`);
});

Deno.test("websocket: sealed records over WebSocket, switched mid-message", async () => {
  const a = new Uint8Array(32).fill(1);
  const b = new Uint8Array(32).fill(2);
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
    const { socket, response } = Deno.upgradeWebSocket(request);
    webSocketSession(socket, {
      onFrame: (frame, conn) => {
        if (frame.type === 0x01) conn.startSealing({ sendKey: b, receiveKey: a });
        else conn.sendFrame(frame.type, frame.payload.map((x) => x + 1));
      },
    });
    return response;
  });
  const got = Promise.withResolvers<number[]>();
  const client = await connectWebSocket({
    url: `ws://127.0.0.1:${server.addr.port}/`,
    onFrame: (frame) => got.resolve([...frame.payload]),
  });
  // One turn: a plaintext switch frame, then a sealed record, in one message.
  client.sendFrame(0x01, new Uint8Array());
  client.startSealing({ sendKey: a, receiveKey: b });
  client.sendFrame(0x80, new Uint8Array([1, 2]));
  assert.deepEqual(await got.promise, [2, 3]);
  assert.equal(client.sealed, true);
  await client.close();
  await server.shutdown();
});

Deno.test("websocket: the PROTOCOL.md message vector is one turn's message, and a master answers it", async () => {
  const markdown = await Deno.readTextFile(new URL("../docs/PROTOCOL.md", import.meta.url));
  const block = /WebSocket vector: Hello \+ RequestClusters[^\n]*\n\n```hex\n([^`]+)```/.exec(
    markdown,
  );
  assert.ok(block, "PROTOCOL.md has the WebSocket vector");
  const vector = Uint8Array.fromHex(block[1].replace(/\s+/g, ""));

  // A session sends exactly these bytes as one message for one turn's two packets.
  const message = Promise.withResolvers<Uint8Array>();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
    const { socket, response } = Deno.upgradeWebSocket(request);
    socket.binaryType = "arraybuffer";
    socket.onmessage = (event) => message.resolve(new Uint8Array(event.data as ArrayBuffer));
    return response;
  });
  const client = await connectWebSocket({ url: `ws://127.0.0.1:${server.addr.port}/` });
  client.send(encodePacket({ kind: "Hello", version: PROTOCOL_VERSION, role: Role.Client }));
  client.send(encodePacket({ kind: "RequestClusters" }));
  assert.equal((await message.promise).toHex(), vector.toHex());
  await client.close();
  await server.shutdown();

  // And a master answers that message with HelloOk and SendClusters.
  await withMaster(async (url) => {
    const socket = await open(url);
    const kinds: string[] = [];
    const done = Promise.withResolvers<void>();
    socket.onmessage = (event) => {
      const decoder = new FrameDecoder();
      decoder.push(new Uint8Array(event.data as ArrayBuffer));
      for (let f = decoder.next(); f !== undefined && !(f instanceof Error); f = decoder.next()) {
        kinds.push(kindOf(f));
      }
      if (kinds.length >= 2) done.resolve();
    };
    socket.send(vector);
    await done.promise;
    assert.deepEqual(kinds, ["HelloOk", "SendClusters"]);
    socket.close();
  });
});

Deno.test("websocket: send() copies the bytes, so a reused output buffer is safe", async () => {
  // The adapter hands the socket the session's reused join / record buffers without a copy.
  const got: number[] = [];
  const done = Promise.withResolvers<void>();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
    const { socket, response } = Deno.upgradeWebSocket(request);
    socket.onopen = () => {
      const buffer = new Uint8Array(1024 * 1024);
      for (let i = 0; i < 8; i++) {
        buffer.fill(i);
        socket.send(buffer);
      }
      buffer.fill(255);
    };
    return response;
  });
  const client = new WebSocket(`ws://127.0.0.1:${server.addr.port}/`);
  client.binaryType = "arraybuffer";
  client.onmessage = (event) => {
    const bytes = new Uint8Array(event.data as ArrayBuffer);
    got.push(bytes[0], bytes[bytes.length - 1]);
    if (got.length === 16) done.resolve();
  };
  await done.promise;
  assert.deepEqual(got, [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7]);
  const closed = new Promise((resolve) => client.onclose = resolve);
  client.close();
  await closed;
  await server.shutdown();
});
