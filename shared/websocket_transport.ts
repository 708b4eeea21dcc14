// This module is browser compatible.

/**
 * The WebSocket adapter of the wire protocol: a {@linkcode FrameSession} over any standard
 * `WebSocket` object, so the same code serves a server's socket from `Deno.upgradeWebSocket`,
 * a Deno client's `new WebSocket(url)` and a browser's. It uses the `WebSocket` API only.
 *
 * The mapping (docs/PROTOCOL.md, "WebSocket"): every binary message holds one or more whole
 * frames, or once sealed one or more whole records: exactly the bytes a TCP connection would
 * carry, cut where this side's writer cut them (one message per event-loop turn). A text
 * message closes with 1003, a message over the bound with 1009, a message ending inside a frame
 * or record with 1002; each is logged and told to the peer in an Error frame first.
 *
 * @module
 */

import {
  type ByteChannel,
  type ChannelErrorKind,
  ChannelOverflowError,
  type ChannelSink,
  type CloseInfo,
  FrameSession,
  type FrameSessionOptions,
  type PeerAddress,
} from "./frame_session.ts";
import { SustenetError } from "./errors.ts";
import { ErrorCode } from "./protocol/protocol_error.ts";

/** WebSocket close codes used by the adapter (RFC 6455 §7.4.1). */
export const WebSocketCloseCode = {
  /** Normal closure: the owner closed. */
  Normal: 1000,
  /** Going away: the server shuts down. */
  GoingAway: 1001,
  /** A message that does not hold whole frames or records. */
  ProtocolError: 1002,
  /** A text message: the protocol is binary. */
  UnsupportedData: 1003,
  /** Any other failure this side detected (bad frame, timeout, slow consumer). */
  PolicyViolation: 1008,
  /** A message over the bound. */
  MessageTooBig: 1009,
} as const;

/** Longest close reason a WebSocket close frame carries, in UTF-8 bytes. */
const MAX_CLOSE_REASON_BYTES = 123;

/** Messages a connection that has not authenticated may hold in one message, at most. */
const PENDING_RECORDS_PER_MESSAGE = 16;

/** Options of {@linkcode webSocketSession}. */
export interface WebSocketSessionOptions extends FrameSessionOptions {
  /** The peer's address (a server knows the TCP address under the WebSocket). */
  readonly remoteAddr?: PeerAddress;
}

/**
 * The largest binary message a session accepts in its current state: before authentication
 * (pending read bounds) 16 one-frame records, after it `maxQueueBytes` plus one record (what
 * one turn of a peer with the same queue bound can send).
 *
 * @param session The session.
 * @returns The bound, in bytes.
 *
 * @example
 * ```ts
 * import { maxMessageBytes } from "./websocket_transport.ts";
 * import assert from "node:assert/strict";
 *
 * const session = {
 *   readLimits: { maxFrameBytes: 4096, maxRecordBytes: 4116, raised: false },
 *   maxQueueBytes: 1048576,
 * };
 * assert.equal(maxMessageBytes(session), 16 * (4116 + 4));
 * ```
 */
export function maxMessageBytes(
  session: Pick<FrameSession, "readLimits" | "maxQueueBytes">,
): number {
  const limits = session.readLimits;
  return limits.raised
    ? session.maxQueueBytes + limits.maxRecordBytes + 4
    : PENDING_RECORDS_PER_MESSAGE * (limits.maxRecordBytes + 4);
}

/** Cuts `reason` to the 123 UTF-8 bytes a close frame may carry, on a character boundary. */
function closeReason(reason: string): string {
  const encoder = new TextEncoder();
  if (encoder.encode(reason).length <= MAX_CLOSE_REASON_BYTES) return reason;
  let cut = reason;
  while (encoder.encode(cut).length > MAX_CLOSE_REASON_BYTES - 3) cut = cut.slice(0, -1);
  return `${cut}...`;
}

/** A standard `WebSocket` as a {@linkcode ByteChannel}. */
class WebSocketChannel implements ByteChannel {
  readonly remoteAddr: PeerAddress;
  readonly #socket: WebSocket;
  /** Bound on bytes in the socket's own send buffer (`bufferedAmount`). */
  readonly #maxBufferedBytes: number;
  /** The session's message bound, read per message (it rises once the peer authenticates). */
  #messageBound: () => number = () => Infinity;
  #sink: ChannelSink | undefined;
  /** Messages received before reading started. */
  #early: (ArrayBuffer | string)[] = [];
  /** The message being processed and the ones after it, in order. */
  #chain: Promise<void> = Promise.resolve();
  /** The close code to use, set when the peer broke a WebSocket rule. */
  #closeCode: number | undefined;
  #opened: Promise<void>;
  #ended = false;

  constructor(socket: WebSocket, remoteAddr: PeerAddress, maxBufferedBytes: number) {
    this.#socket = socket;
    this.remoteAddr = remoteAddr;
    this.#maxBufferedBytes = maxBufferedBytes;
    socket.binaryType = "arraybuffer";
    this.#opened = socket.readyState === WebSocket.CONNECTING
      ? new Promise((resolve) => socket.addEventListener("open", () => resolve(), { once: true }))
      : Promise.resolve();
    socket.addEventListener("message", (event: MessageEvent) => {
      const data = event.data as ArrayBuffer | string;
      if (this.#sink === undefined) this.#early.push(data);
      else this.#enqueue(this.#sink, data);
    });
    socket.addEventListener("close", (event: CloseEvent) => {
      this.#ended = true;
      const sink = this.#sink;
      if (sink === undefined) return;
      // After the messages already received: they are processed first, as TCP would.
      this.#chain = this.#chain.then(() => {
        const detail = event.reason === "" ? `${event.code}` : `${event.code} ${event.reason}`;
        sink.ended(`connection closed by peer (${detail})`);
      });
    });
  }

  /** Sets how the message bound is read (once the session exists). */
  bindMessageBound(bound: () => number): void {
    this.#messageBound = bound;
  }

  startReading(sink: ChannelSink): void {
    this.#sink = sink;
    for (const data of this.#early.splice(0)) this.#enqueue(sink, data);
    if (this.#ended && sink.isOpen()) {
      this.#chain = this.#chain.then(() => sink.ended("connection closed by peer"));
    }
  }

  async write(bytes: Uint8Array): Promise<number> {
    const socket = this.#socket;
    if (socket.readyState === WebSocket.CONNECTING) await this.#opened;
    if (socket.readyState !== WebSocket.OPEN) throw new WebSocketClosedError();
    // The socket has no backpressure of its own: its buffer counts against the queue bound.
    if (socket.bufferedAmount + bytes.length > this.#maxBufferedBytes) {
      throw new ChannelOverflowError(
        `WebSocket send buffer above ${this.#maxBufferedBytes} bytes`,
      );
    }
    // send() takes a copy of the bytes (Deno and browsers alike; websocket_transport_test
    // checks it), so the session may reuse its output buffers once the write resolves.
    socket.send(bytes);
    return bytes.length;
  }

  pauseReading(_untilMs: number): void {
    // A WebSocket cannot leave bytes in the kernel: frames over a rate limit are dropped by
    // the owner instead, and a lasting flood is kicked, as on TCP.
  }

  async close(info: CloseInfo): Promise<void> {
    const socket = this.#socket;
    if (socket.readyState === WebSocket.CONNECTING || socket.readyState === WebSocket.OPEN) {
      const code = this.#closeCode ?? closeCodeOf(info);
      try {
        socket.close(code, closeReason(info.reason));
      } catch {
        // Browsers allow only 1000 and 3000..4999 from script (Deno's server sockets take any
        // code): close without one; the Error frame sent before says why.
        socket.close();
      }
    }
    this.#ended = true;
    await this.#chain;
  }

  classify(error: unknown): ChannelErrorKind {
    return error instanceof WebSocketClosedError ? "closed" : "failure";
  }

  #enqueue(sink: ChannelSink, data: ArrayBuffer | string): void {
    this.#chain = this.#chain.then(() => this.#process(sink, data));
  }

  async #process(sink: ChannelSink, data: ArrayBuffer | string): Promise<void> {
    if (!sink.isOpen()) return;
    if (typeof data === "string") {
      this.#closeCode = WebSocketCloseCode.UnsupportedData;
      sink.violation(ErrorCode.BadFrame, "text WebSocket message (the protocol is binary)");
      return;
    }
    const bound = this.#messageBound();
    if (data.byteLength > bound) {
      this.#closeCode = WebSocketCloseCode.MessageTooBig;
      sink.violation(
        ErrorCode.FrameTooLarge,
        `WebSocket message of ${data.byteLength} bytes above ${bound}`,
      );
      return;
    }
    if (data.byteLength === 0) return;
    try {
      await sink.receive(new Uint8Array(data));
    } catch (error) {
      sink.failed("read", error);
      return;
    }
    if (sink.isOpen() && sink.bufferedBytes() > 0) {
      this.#closeCode = WebSocketCloseCode.ProtocolError;
      sink.violation(
        ErrorCode.BadFrame,
        `WebSocket message ends inside a frame or record (${sink.bufferedBytes()} bytes left)`,
      );
    }
  }
}

/** A write on a WebSocket that is closing or closed. */
class WebSocketClosedError extends Error {
  constructor() {
    super("WebSocket is closed");
  }
}

/** The close code for a session's close (`closeCode` of the adapter aside). */
function closeCodeOf(info: CloseInfo): number {
  if (info.by !== "error") {
    return info.code === ErrorCode.ShuttingDown
      ? WebSocketCloseCode.GoingAway
      : WebSocketCloseCode.Normal;
  }
  return info.code === ErrorCode.BadFrame
    ? WebSocketCloseCode.ProtocolError
    : info.code === ErrorCode.FrameTooLarge
    ? WebSocketCloseCode.MessageTooBig
    : WebSocketCloseCode.PolicyViolation;
}

/**
 * Wraps a WebSocket (open or still connecting) in a {@linkcode FrameSession}: the server side
 * of `Deno.upgradeWebSocket`, or a client's `new WebSocket(url)`. Bytes in the socket's send
 * buffer count against `maxQueueBytes`: a peer that stops reading is closed with
 * `Error(SlowConsumer)` once they pass it.
 *
 * @param socket The WebSocket; the session owns it from now on.
 * @param options Session options, and the peer's address.
 * @returns The session.
 *
 * @example See {@linkcode connectWebSocket}.
 * ```ts
 * import { webSocketSession } from "./websocket_transport.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(typeof webSocketSession, "function");
 * ```
 */
export function webSocketSession(
  socket: WebSocket,
  options: WebSocketSessionOptions = {},
): FrameSession {
  const remoteAddr = options.remoteAddr ?? addressOfUrl(socket.url);
  const channel = new WebSocketChannel(socket, remoteAddr, options.maxQueueBytes ?? 1024 * 1024);
  const session = new FrameSession(channel, options);
  channel.bindMessageBound(() => maxMessageBytes(session));
  return session;
}

/** The host and port of a `ws://` or `wss://` URL, as a {@linkcode PeerAddress}. */
function addressOfUrl(url: string): PeerAddress {
  try {
    const parsed = new URL(url);
    const port = parsed.port === "" ? (parsed.protocol === "wss:" ? 443 : 80) : +parsed.port;
    return { transport: "tcp", hostname: parsed.hostname.replace(/^\[|\]$/g, ""), port };
  } catch {
    return { transport: "tcp", hostname: "", port: 0 };
  }
}

/** Options of {@linkcode connectWebSocket}. */
export interface ConnectWebSocketOptions extends FrameSessionOptions {
  /** `ws://host:port/path` or `wss://…`. */
  readonly url: string | URL;
  /**
   * Longest wait for the WebSocket to open, in ms.
   *
   * @default {10000}
   */
  readonly connectTimeoutMs?: number;
  /**
   * Deno only: certificates (PEM) to trust for a `wss://` URL, e.g. the development CA of
   * `deno task certs`, instead of the system's store (through `Deno.createHttpClient`). A
   * browser trusts its own store: there the option throws a RangeError.
   */
  readonly caCerts?: readonly string[];
}

/** The part of the Deno namespace used for `caCerts`, read at run time (browser-safe module). */
interface DenoHttpClients {
  createHttpClient(options: { caCerts: string[] }): { close(): void };
}

/** Opens the socket, with a Deno HTTP client trusting `caCerts` when given. */
function openSocket(url: string, caCerts: readonly string[] | undefined): WebSocket {
  if (caCerts === undefined) return new WebSocket(url);
  const runtime = (globalThis as { Deno?: Partial<DenoHttpClients> }).Deno;
  if (typeof runtime?.createHttpClient !== "function") {
    throw new RangeError("caCerts needs Deno (a browser trusts its own certificate store)");
  }
  const client = runtime.createHttpClient({ caCerts: [...caCerts] });
  // `client` is Deno's non-standard WebSocket option (Deno 2.x); the socket keeps its own
  // connection, the client's resource is released once the socket is done with it.
  let socket: WebSocket;
  try {
    socket = new WebSocket(
      url,
      { client } as unknown as ConstructorParameters<typeof WebSocket>[1],
    );
  } catch (error) {
    client.close();
    throw error;
  }
  socket.addEventListener("close", () => client.close(), { once: true });
  return socket;
}

/** Codes of {@linkcode WebSocketConnectError}. */
export type WebSocketConnectErrorCode = "websocket_failed" | "websocket_timeout";

/**
 * A WebSocket did not open (refused, wrong path or origin, TLS failure, or too slow).
 *
 * @example
 * ```ts
 * import { WebSocketConnectError } from "./websocket_transport.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(new WebSocketConnectError("websocket_timeout", "slow").code, "websocket_timeout");
 * ```
 */
export class WebSocketConnectError extends SustenetError {
  /** What went wrong. */
  declare readonly code: WebSocketConnectErrorCode;

  /**
   * @param code What went wrong.
   * @param message A readable description.
   */
  constructor(code: WebSocketConnectErrorCode, message: string) {
    super(code, message);
  }
}

/**
 * Opens a WebSocket to `url` and wraps it in a {@linkcode FrameSession} once it is open.
 *
 * @param options The URL and session options (give `onFrame`, or call `start` at once).
 * @returns The open session.
 * @throws {WebSocketConnectError} If the socket does not open in time.
 *
 * @example Echo one frame over a loopback WebSocket
 * ```ts
 * import { connectWebSocket, webSocketSession } from "./websocket_transport.ts";
 * import { encodeFrame } from "./protocol/frame.ts";
 * import assert from "node:assert/strict";
 *
 * const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
 *   const { socket, response } = Deno.upgradeWebSocket(req);
 *   webSocketSession(socket, {
 *     onFrame: (frame, conn) => conn.send(encodeFrame(frame.type, frame.payload)),
 *   });
 *   return response;
 * });
 * const got = Promise.withResolvers<number>();
 * const client = await connectWebSocket({
 *   url: `ws://127.0.0.1:${server.addr.port}/`,
 *   onFrame: (frame) => got.resolve(frame.payload[0]),
 * });
 * client.send(encodeFrame(0x80, new Uint8Array([42])));
 * assert.equal(await got.promise, 42);
 * await client.close();
 * await server.shutdown();
 * ```
 */
export async function connectWebSocket(options: ConnectWebSocketOptions): Promise<FrameSession> {
  const url = String(options.url);
  const socket = openSocket(url, options.caCerts);
  socket.binaryType = "arraybuffer";
  const timeoutMs = options.connectTimeoutMs ?? 10_000;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      timer = setTimeout(() => {
        reject(new WebSocketConnectError("websocket_timeout", `no WebSocket to ${url} in time`));
      }, timeoutMs);
      socket.addEventListener("open", () => resolve(), { once: true });
      // Deno says why in the error event (e.g. an untrusted certificate); a browser does not.
      let why = "";
      socket.addEventListener("error", (event: Event) => {
        const message = (event as { message?: unknown }).message;
        if (typeof message === "string" && message !== "") why = `: ${message.slice(0, 200)}`;
      }, { once: true });
      socket.addEventListener("close", (event: CloseEvent) => {
        reject(
          new WebSocketConnectError(
            "websocket_failed",
            `WebSocket to ${url} failed (${event.code}${
              event.reason ? ` ${event.reason}` : ""
            })${why}`,
          ),
        );
      }, { once: true });
    });
  } catch (error) {
    if (socket.readyState === WebSocket.CONNECTING || socket.readyState === WebSocket.OPEN) {
      socket.close();
    }
    throw error;
  } finally {
    clearTimeout(timer);
  }
  return webSocketSession(socket, options);
}
