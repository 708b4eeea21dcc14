/**
 * A WebSocket seen as a byte stream (`read` / `write` / `close`, the part of `Deno.Conn` the
 * load generator uses), so {@linkcode BenchConnection} drives a cluster's WebSocket listener
 * with the same lean read loop, scanner and batched writer as its TCP connections. Each write
 * is one binary message (one batch: whole frames or whole records, as docs/PROTOCOL.md
 * "WebSocket" requires); reads hand over received messages in order, split across reads when
 * the buffer is smaller. Loopback benches only.
 *
 * @module
 */

/** The part of `Deno.Conn` the bench connection and its writer use. */
export interface BenchSocket {
  /** Reads into `buffer`; `null` at the end of the stream. */
  read(buffer: Uint8Array): Promise<number | null>;
  /** Writes `bytes` (or a first part); resolves with how many were taken. */
  write(bytes: Uint8Array): Promise<number>;
  /** Closes the stream; a pending read resolves with `null`. */
  close(): void;
}

/**
 * A WebSocket as a {@linkcode BenchSocket}.
 *
 * @example
 * ```ts
 * import { WebSocketStream } from "./websocket_stream.ts";
 * import assert from "node:assert/strict";
 *
 * const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
 *   const { socket, response } = Deno.upgradeWebSocket(req);
 *   socket.onmessage = (event) => socket.send(event.data);
 *   return response;
 * });
 * const stream = await WebSocketStream.connect(`ws://127.0.0.1:${server.addr.port}/`);
 * await stream.write(new Uint8Array([1, 2, 3]));
 * const buffer = new Uint8Array(2);
 * assert.equal(await stream.read(buffer), 2);
 * assert.equal(await stream.read(buffer), 1);
 * stream.close();
 * assert.equal(await stream.read(buffer), null);
 * await server.shutdown();
 * ```
 */
export class WebSocketStream implements BenchSocket {
  readonly #socket: WebSocket;
  /** Received messages not yet read, the first one from `#offset`. */
  readonly #messages: Uint8Array[] = [];
  #offset = 0;
  #ended = false;
  #waiting: (() => void) | undefined;

  private constructor(socket: WebSocket) {
    this.#socket = socket;
    socket.binaryType = "arraybuffer";
    socket.addEventListener("message", (event: MessageEvent) => {
      const data = event.data;
      this.#messages.push(
        typeof data === "string" ? new TextEncoder().encode(data) : new Uint8Array(data),
      );
      this.#wake();
    });
    socket.addEventListener("close", () => {
      this.#ended = true;
      this.#wake();
    });
  }

  /**
   * Opens a WebSocket to `url`.
   *
   * @param url `ws://host:port/path`.
   * @throws {Error} If it does not open.
   */
  static async connect(url: string): Promise<WebSocketStream> {
    const socket = new WebSocket(url);
    await new Promise<void>((resolve, reject) => {
      socket.addEventListener("open", () => resolve(), { once: true });
      socket.addEventListener("close", () => reject(new Error(`WebSocket ${url} failed`)), {
        once: true,
      });
    });
    return new WebSocketStream(socket);
  }

  async read(buffer: Uint8Array): Promise<number | null> {
    while (this.#messages.length === 0) {
      if (this.#ended) return null;
      await new Promise<void>((resolve) => this.#waiting = resolve);
    }
    const first = this.#messages[0];
    const n = Math.min(buffer.length, first.length - this.#offset);
    buffer.set(first.subarray(this.#offset, this.#offset + n));
    this.#offset += n;
    if (this.#offset === first.length) {
      this.#messages.shift();
      this.#offset = 0;
    }
    return n;
  }

  write(bytes: Uint8Array): Promise<number> {
    if (this.#socket.readyState !== WebSocket.OPEN) {
      return Promise.reject(new Error("WebSocket is closed"));
    }
    // send() copies the bytes, so the writer may reuse its buffers at once.
    this.#socket.send(bytes);
    return Promise.resolve(bytes.length);
  }

  close(): void {
    if (this.#socket.readyState <= WebSocket.OPEN) this.#socket.close();
    this.#ended = true;
    this.#wake();
  }

  #wake(): void {
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.();
  }
}
