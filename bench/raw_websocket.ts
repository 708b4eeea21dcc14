/**
 * The load generator's WebSocket client: RFC 6455 spoken over a plain `Deno.TcpConn`, seen as a
 * byte stream ({@linkcode BenchSocket}) so {@linkcode BenchConnection} drives a cluster's
 * WebSocket listener with the same read loop, scanner and batched writer as its TCP
 * connections. Each write is one masked binary message (one batch: whole frames or whole records,
 * as docs/PROTOCOL.md "WebSocket" requires); reads return the messages' payload with the headers
 * stripped in place ({@linkcode WebSocketUnframer}), so a read costs what a TCP read costs.
 *
 * Why not the runtime's `WebSocket`: it dispatches one event per message and copies each into
 * a new buffer, which made the generator, not the cluster, the bound of the WebSocket relay.
 * The server side is untouched (`Deno.upgradeWebSocket`), and what crosses the wire is the same.
 * Loopback benches only: no TLS, no extensions, pings are answered.
 *
 * @module
 */

import type { BenchSocket } from "./bench_socket.ts";
import { WebSocketUnframer } from "./websocket_unframer.ts";

const ACCEPT_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const MAX_RESPONSE_HEAD_BYTES = 8192;

/**
 * A WebSocket client over raw TCP.
 *
 * @example
 * ```ts
 * import { RawWebSocket } from "./raw_websocket.ts";
 * import assert from "node:assert/strict";
 *
 * const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
 *   const { socket, response } = Deno.upgradeWebSocket(req);
 *   socket.onmessage = (event) => socket.send(event.data);
 *   return response;
 * });
 * const stream = await RawWebSocket.connect(`ws://127.0.0.1:${server.addr.port}/`);
 * await stream.write(new Uint8Array([1, 2, 3]));
 * const buffer = new Uint8Array(2);
 * assert.equal(await stream.read(buffer), 2);
 * assert.equal(await stream.read(buffer), 1);
 * stream.close();
 * assert.equal(await stream.read(buffer), null);
 * await server.shutdown();
 * ```
 */
export class RawWebSocket implements BenchSocket {
  readonly #conn: Deno.TcpConn;
  readonly #unframer = new WebSocketUnframer();
  /** Bytes that came with the handshake's response, not yet read. */
  #early: Uint8Array | undefined;
  /** No more data will be read: the server closed, the stream ended, or {@linkcode close}. */
  #ended = false;
  /** {@linkcode close} was called: the socket is closed or closing. */
  #closed = false;
  /** xorshift32 state for the masking keys (a mask hides nothing on loopback). */
  #seed: number;
  /** The write in progress: frames (a pong among messages) never interleave. */
  #writing: Promise<void> = Promise.resolve();

  private constructor(conn: Deno.TcpConn, early: Uint8Array | undefined) {
    this.#conn = conn;
    this.#early = early;
    this.#seed = crypto.getRandomValues(new Uint32Array(1))[0] | 1;
  }

  /**
   * Opens a WebSocket to `url` with the HTTP/1.1 upgrade handshake.
   *
   * @param url `ws://host:port/path`.
   * @throws {Error} If the connection or the upgrade fails.
   */
  static async connect(url: string): Promise<RawWebSocket> {
    const target = new URL(url);
    if (target.protocol !== "ws:") throw new Error(`not a ws: URL: ${url}`);
    const conn = await Deno.connect({
      hostname: target.hostname,
      port: Number(target.port || 80),
      transport: "tcp",
    });
    try {
      conn.setNoDelay(true);
      const key = crypto.getRandomValues(new Uint8Array(16)).toBase64();
      const request =
        `GET ${target.pathname}${target.search} HTTP/1.1\r\nHost: ${target.host}\r\n` +
        `Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\n` +
        `Sec-WebSocket-Version: 13\r\n\r\n`;
      await writeAll(conn, new TextEncoder().encode(request));
      const { head, early } = await readResponseHead(conn);
      const accept = new Uint8Array(
        await crypto.subtle.digest("SHA-1", new TextEncoder().encode(key + ACCEPT_GUID)),
      ).toBase64();
      const status = head.slice(0, head.indexOf("\r\n"));
      if (!/^HTTP\/1\.1 101 /.test(status)) throw new Error(`upgrade refused: ${status}`);
      if (!new RegExp(`^sec-websocket-accept: *${escape(accept)} *$`, "im").test(head)) {
        throw new Error("upgrade answered with a wrong Sec-WebSocket-Accept");
      }
      return new RawWebSocket(conn, early);
    } catch (error) {
      conn.close();
      throw error;
    }
  }

  async read(buffer: Uint8Array): Promise<number | null> {
    while (!this.#ended) {
      let n: number | null;
      const early = this.#early;
      if (early !== undefined) {
        n = Math.min(buffer.length, early.length);
        buffer.set(early.subarray(0, n));
        this.#early = n === early.length ? undefined : early.subarray(n);
      } else {
        try {
          n = await this.#conn.read(buffer);
        } catch (error) {
          // A read cut short by our own close is the end of the stream, not a fault.
          if (this.#ended) return null;
          throw error;
        }
      }
      if (n === null) break;
      const payload = this.#unframer.unframe(buffer, n);
      for (const control of this.#unframer.takeControls()) {
        if (control.opcode === 9) await this.#send(0x8a, control.payload);
        else if (control.opcode === 8) this.#ended = true;
      }
      if (payload > 0) return payload;
    }
    this.#ended = true;
    return null;
  }

  async write(bytes: Uint8Array): Promise<number> {
    await this.#send(0x82, bytes);
    return bytes.length;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const peerEnded = this.#ended;
    this.#ended = true;
    if (peerEnded) {
      // The server closed (its close frame or the end of the stream): nothing left to say.
      this.#conn.close();
      return;
    }
    // A close frame (1000) first, then the socket. The frame may not get out if the peer has
    // gone; the socket is closed either way, which is all a bench connection needs.
    const closing = this.#send(0x88, new Uint8Array([0x03, 0xe8]));
    closing.then(() => this.#conn.close(), () => this.#conn.close());
  }

  /** Queues one masked frame (`first`: FIN and opcode) behind the write in progress. */
  #send(first: number, payload: Uint8Array): Promise<void> {
    const frame = this.#frame(first, payload);
    const writing = this.#writing.then(() => writeAll(this.#conn, frame));
    // The chain goes on after a failed write; the caller of that write gets its error.
    this.#writing = writing.then(undefined, () => {});
    return writing;
  }

  /** One masked frame. */
  #frame(first: number, payload: Uint8Array): Uint8Array {
    const length = payload.length;
    const lengthBytes = length < 126 ? 0 : length < 65536 ? 2 : 8;
    const start = 2 + lengthBytes + 4;
    const frame = new Uint8Array(start + length);
    frame[0] = first;
    if (lengthBytes === 0) frame[1] = 0x80 | length;
    else if (lengthBytes === 2) {
      frame[1] = 0x80 | 126;
      frame[2] = length >>> 8;
      frame[3] = length & 0xff;
    } else {
      frame[1] = 0x80 | 127;
      new DataView(frame.buffer).setBigUint64(2, BigInt(length));
    }
    let seed = this.#seed;
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    this.#seed = seed;
    const maskAt = start - 4;
    frame[maskAt] = seed >>> 24;
    frame[maskAt + 1] = seed >>> 16;
    frame[maskAt + 2] = seed >>> 8;
    frame[maskAt + 3] = seed;
    for (let i = 0; i < length; i++) frame[start + i] = payload[i] ^ frame[maskAt + (i & 3)];
    return frame;
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) offset += await conn.write(bytes.subarray(offset));
}

/** Reads up to the end of the response head; bytes after it are the first frames. */
async function readResponseHead(
  conn: Deno.Conn,
): Promise<{ head: string; early: Uint8Array | undefined }> {
  const buffer = new Uint8Array(MAX_RESPONSE_HEAD_BYTES);
  let length = 0;
  while (length < buffer.length) {
    const n = await conn.read(buffer.subarray(length));
    if (n === null) throw new Error("closed during the upgrade");
    length += n;
    const text = new TextDecoder().decode(buffer.subarray(0, length));
    const end = text.indexOf("\r\n\r\n");
    if (end >= 0) {
      // The head is ASCII, so its characters are its bytes.
      const headBytes = end + 4;
      return {
        head: text.slice(0, end),
        early: headBytes < length ? buffer.slice(headBytes, length) : undefined,
      };
    }
  }
  throw new Error(`upgrade response head over ${MAX_RESPONSE_HEAD_BYTES} bytes`);
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}
