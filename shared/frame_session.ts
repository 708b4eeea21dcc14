// This module is browser compatible.

/**
 * The runtime-free core of a framed connection: {@linkcode FrameSession} turns bytes in into
 * frames for a handler, and frames out into bytes for one write per event-loop turn,
 * plaintext first and sealed records after the link's switch point (docs/PROTOCOL.md,
 * "Sealed records"). It owns the frame decoder, the record reader, the outgoing queue (staging,
 * bounds, per-turn batching, the seal switch), the timeouts and the counters; the bytes move
 * through a {@linkcode ByteChannel}, a thin adapter per transport (Deno TCP in `transport.ts`,
 * WebSocket in `websocket_transport.ts`). It uses web-standard APIs only.
 *
 * It knows nothing of packets beyond the Error frame it sends when it closes a connection. It
 * must never let one connection's memory grow without bound (frames, records and the outgoing
 * queue are all bounded), never let one bad peer throw out of a loop into the server, and
 * never log frame contents or keys.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { BroadcastGroup } from "./broadcast_group.ts";
import { SustenetError } from "./errors.ts";
import { type IdleSweep, type IdleSweepMember, sharedIdleSweep } from "./idle_sweep.ts";
import {
  DEFAULT_MAX_FRAME_BYTES,
  encodeFrame,
  type Frame,
  FRAME_HEADER_BYTES,
  FrameDecoder,
  writeFrameHeader,
} from "./protocol/frame.ts";
import { ErrorCode, ProtocolError } from "./protocol/protocol_error.ts";
import {
  assertRecordKey,
  RECORD_TAG_BYTES,
  type RecordCipher,
  type RecordCipherKind,
  type RecordCipherOptions,
  RecordError,
  WebCryptoRecordCipher,
} from "./record_cipher.ts";
import {
  DEFAULT_MAX_RECORD_BYTES,
  type RecordReadResult,
  SealedRecordReader,
  SealedRecordWriter,
} from "./sealed_record.ts";

const logger = getLogger(["sustenet", "system", "transport"]);

/** Packet type of the Error frame (docs/PROTOCOL.md). */
const ERROR_FRAME_TYPE = 0x03;

/** Largest join buffer a connection keeps between writes. */
const KEEP_JOIN_BUFFER_BYTES = 64 * 1024;

/** First size of a join buffer: small, for links that write little (a handshake, pings). */
const MIN_JOIN_BUFFER_BYTES = 256;

/** Frames below this size are copied into a staging buffer when queued back to back. */
const STAGE_FRAME_BYTES = 512;

/** First size of a staging buffer; each new one doubles, up to the cap below. */
const MIN_STAGE_BYTES = 1024;

/** Largest staging buffer; a longer run of small frames continues in a new one. */
const MAX_STAGE_BYTES = 64 * 1024;

/** Shared empty buffer: connections allocate staging space only once they stage frames. */
const NO_STAGE = new Uint8Array(0);

/** The idle timeout is checked this many times per timeout (so it fires up to 1/8 late). */
const IDLE_CHECKS_PER_TIMEOUT = 8;

/** Longest reason, in UTF-8 bytes, put in an Error frame the transport sends. */
const MAX_REASON_BYTES = 1024;

/** Who ended a connection: its owner, the peer, or a failure this side detected. */
export type CloseSource = "local" | "remote" | "error";

/** Why and by whom a {@linkcode FrameTransport} was closed. */
export interface CloseInfo {
  /** Human-readable reason (never secret). */
  readonly reason: string;
  /** The code of the Error frame this side sent (best effort) when closing, if any. */
  readonly code?: number;
  /** Who ended it. */
  readonly by: CloseSource;
}

/** A reason to close a connection with: an Error frame `code` plus a message for the peer. */
export interface CloseReason {
  /** Error code (docs/PROTOCOL.md "Error codes"). */
  readonly code: number;
  /** Reason sent in the Error frame and logged; never secret. */
  readonly message: string;
}

/**
 * Receives each frame, in order. A payload is a view that stays valid only until the handler
 * returns: copy what you keep. The handler may call {@linkcode FrameTransport.send},
 * {@linkcode FrameTransport.startSealing} or {@linkcode FrameTransport.close}; if it throws,
 * the connection is closed with `Error(Internal)`.
 */
export type FrameHandler = (frame: Frame, connection: FrameTransport) => void;

/**
 * The address of a peer (a `Deno.NetAddr` fits). Over WebSocket it is the TCP address under
 * the WebSocket, so per-address limits work the same on every transport.
 */
export interface PeerAddress {
  /** `"tcp"` for TCP and WebSocket peers. */
  readonly transport: string;
  /** IP address (or host name on the client side). */
  readonly hostname: string;
  /** Port. */
  readonly port: number;
}

/**
 * What the owner of a framed connection talks to, whatever carries it (TCP, WebSocket, TLS):
 * pre-encoded frames out through a bounded per-turn queue, frames in through a handler, a
 * switch to sealed records, a close with a reason. {@linkcode FrameSession} implements it over
 * any {@linkcode ByteChannel}; servers and clients type against this interface only.
 */
export interface FrameTransport {
  /** Resolves once the connection is closed; never rejects. */
  readonly closed: Promise<CloseInfo>;
  /** The peer's address. */
  readonly remoteAddr: PeerAddress;
  /** The broadcast group this connection is in (set by the group only). */
  group: BroadcastGroup | undefined;
  /** The bound on queued bytes. */
  readonly maxQueueBytes: number;
  /** Bytes queued plus bytes being written. */
  readonly queuedBytes: number;
  /** `true` until the connection starts closing. */
  readonly isOpen: boolean;
  /** `true` once {@linkcode markEstablished} was called. */
  readonly established: boolean;
  /** `true` once this side seals what it sends. */
  readonly sealed: boolean;
  /** The read bounds in force. */
  readonly readLimits: { maxFrameBytes: number; maxRecordBytes: number; raised: boolean };
  /** Frames received and delivered to the handler. */
  readonly framesIn: number;
  /** Frames written. */
  readonly framesOut: number;
  /** Bytes read (record overhead included once sealed). */
  readonly bytesIn: number;
  /** Bytes written (record overhead included once sealed). */
  readonly bytesOut: number;
  /** Writes completed: one per flushed batch. */
  readonly writes: number;
  /** Starts reading, delivering each frame to `onFrame`. */
  start(onFrame: FrameHandler): void;
  /** Queues whole pre-encoded frames; `false` if closed or over the queue bound. */
  send(frameBytes: Uint8Array, frames?: number): boolean;
  /** Queues one frame given as type and payload. */
  sendFrame(type: number, payload: Uint8Array): boolean;
  /** Switches both directions to sealed records. */
  startSealing(keys: SealingKeys): void;
  /** Seals every frame queued from now on. */
  startSealingWriter(sendKey: SealingKey): void;
  /** Reads everything after the frame being handled as records. */
  startSealingReader(receiveKey: SealingKey): void;
  /** Ends the handshake period. */
  markEstablished(): void;
  /** Lifts the pending read bounds to the full ones. */
  raiseReadLimits(): void;
  /** Reads nothing more for `ms` (where the transport can pause reading). */
  pauseReading(ms: number): void;
  /** Closes, sending `Error(reason)` first if given; idempotent. */
  close(reason?: CloseReason): Promise<CloseInfo>;
}

/**
 * What a {@linkcode FrameSession} hands its {@linkcode ByteChannel}: the way bytes and events
 * come back in. Only the channel calls it.
 */
export interface ChannelSink {
  /** `true` until the session starts closing. */
  isOpen(): boolean;
  /** `false` while the pending read bounds hold (a channel keeps its read buffer small). */
  readLimitsRaised(): boolean;
  /**
   * Bytes received, in stream order. The view must stay untouched until the returned promise
   * settles; the next chunk is given only after that.
   */
  receive(chunk: Uint8Array): Promise<void>;
  /**
   * Received bytes waiting for the rest of their frame (or, once sealed, of their record): a
   * message-based channel checks that each message held whole frames or records.
   */
  bufferedBytes(): number;
  /** The channel's read pause ended (a pause is not idleness). */
  resumed(): void;
  /** The peer ended the stream. */
  ended(reason: string): void;
  /** A read failed (see {@linkcode ByteChannel.classify}). */
  failed(operation: "read" | "write", error: unknown): void;
  /** The peer broke a rule of the transport's own (e.g. a WebSocket text message). */
  violation(code: number, reason: string): void;
}

/**
 * One transport's way of moving bytes for a {@linkcode FrameSession}: a thin adapter (Deno TCP,
 * WebSocket, TLS) with no protocol logic.
 */
export interface ByteChannel {
  /** The peer's address. */
  readonly remoteAddr: PeerAddress;
  /** Begins delivering received bytes to `sink` (called once). */
  startReading(sink: ChannelSink): void;
  /**
   * Writes `bytes` (or a first part of them); resolves with how many were taken. Rejects when
   * the channel failed (the session then closes it).
   */
  write(bytes: Uint8Array): Promise<number>;
  /** Reads nothing before `performance.now()` reaches `untilMs` (best effort). */
  pauseReading(untilMs: number): void;
  /**
   * Closes the channel and resolves once its reading has stopped; never rejects.
   *
   * @param info Why the session closed (a WebSocket puts it in its close frame).
   */
  close(info: CloseInfo): Promise<void>;
  /**
   * What a failed read or write means: the peer reset or went away (`"peer_gone"`, not worth a
   * warning), the channel was already closed (`"closed"`), or anything else (`"failure"`).
   */
  classify(error: unknown): ChannelErrorKind;
}

/**
 * Thrown by a {@linkcode ByteChannel.write} whose transport buffers writes itself (WebSocket)
 * when taking more would pass the queue bound: the session closes with `Error(SlowConsumer)`.
 */
export class ChannelOverflowError extends SustenetError {
  /** Always `"channel_overflow"`. */
  declare readonly code: "channel_overflow";

  /** @param message What overflowed. */
  constructor(message: string) {
    super("channel_overflow", message);
  }
}

/** See {@linkcode ByteChannel.classify}. */
export type ChannelErrorKind = "peer_gone" | "closed" | "failure";

/** A key for one direction of a sealed link: 32 raw bytes, or a ready cipher. */
export type SealingKey = Uint8Array | RecordCipher;

/** The keys of both directions of a sealed link, from this side's point of view. */
export interface SealingKeys {
  /** Seals what this side sends. */
  readonly sendKey: SealingKey;
  /** Opens what this side receives. */
  readonly receiveKey: SealingKey;
}

/** Options of {@linkcode FrameSession} (and of every transport's connections). */
export interface FrameSessionOptions {
  /**
   * Frame handler; reading starts as soon as there is one (else call
   * {@linkcode FrameSession.start}).
   */
  readonly onFrame?: FrameHandler;
  /**
   * Largest accepted frame `length` (type + payload); a larger one is `Error(FrameTooLarge)`.
   *
   * @default {65536}
   */
  readonly maxFrameBytes?: number;
  /**
   * Largest record `length` (ciphertext + tag) once sealed, both ways. The default is derived
   * from `maxFrameBytes` so that any frame the link accepts fits in one record:
   * `max(1 MiB + 16, maxFrameBytes + 4 + 16)`.
   *
   * @default {1048592}
   */
  readonly maxRecordBytes?: number;
  /**
   * The read bounds of a connection whose peer has not authenticated yet: frames above this
   * `length` are `Error(FrameTooLarge)` and, once sealed, records above
   * `pendingMaxFrameBytes + 4 + 16` fail, until {@linkcode FrameSession.raiseReadLimits}
   * lifts them to `maxFrameBytes` / `maxRecordBytes` (call it when the peer authenticates). The
   * read buffer does not grow past its first 512 bytes meanwhile either, so a pending connection
   * holds a few KiB whatever its peer announces. While these bounds hold and the connection is
   * not established ({@linkcode FrameSession.markEstablished}), closes for bad input and the
   * handshake timeout are logged at debug only: an unauthenticated peer causes them at will,
   * so the owner counts them and logs them rate-limited. Must be at most
   * `maxFrameBytes`; absent = the full bounds from the start.
   */
  readonly pendingMaxFrameBytes?: number;
  /**
   * Bound on bytes queued and being written; reaching it closes the connection with
   * `Error(SlowConsumer)`.
   *
   * @default {1048576}
   */
  readonly maxQueueBytes?: number;
  /**
   * Time until {@linkcode FrameSession.markEstablished} before `Error(Timeout)`; 0 = none.
   *
   * @default {10000}
   */
  readonly handshakeTimeoutMs?: number;
  /**
   * Time without receiving a byte before `Error(Timeout)`; 0 = none. Checked every eighth of
   * it by a timer shared with the other connections, so the close comes up to 1/8 later.
   *
   * @default {30000}
   */
  readonly idleTimeoutMs?: number;
  /**
   * How long {@linkcode FrameSession.close} waits for queued frames to be written.
   *
   * @default {1000}
   */
  readonly closeFlushTimeoutMs?: number;
  /**
   * Record cipher made from raw keys given to {@linkcode FrameSession.startSealing}.
   *
   * @default {"hybrid"}
   */
  readonly recordCipher?: RecordCipherKind;
  /**
   * Makes the record cipher of a raw key given to {@linkcode FrameSession.startSealing}, asked
   * for the {@linkcode recordCipher} kind. This core stays runtime-free, so it only knows
   * WebCrypto; server adapters (the TCP one in `transport.ts`) pass `createRecordCipher` of
   * `create_record_cipher.ts`, which picks the faster `node:crypto` and FFI ciphers.
   *
   * @default {WebCrypto (`WebCryptoRecordCipher.create`), whatever the kind}
   */
  readonly createRecordCipher?: (
    key: Uint8Array,
    options: RecordCipherOptions,
  ) => Promise<RecordCipher>;
  /**
   * A connection that neither reads nor writes for one to two of these periods gives back what
   * it can rebuild on its next traffic: its write buffers (staging, join, sealed output) and
   * its record ciphers' native contexts, so an idle player holds little more than its socket.
   * One timer per process and period serves every connection; 0 = never.
   *
   * @default {1000}
   */
  readonly idleTrimMs?: number;
  /**
   * Largest size of the read buffer of stream transports (TCP), reused for every read of this
   * connection. It starts at 512 bytes (or this, if smaller), doubles whenever a read fills it, and
   * shrinks back after a long run of small reads, so idle connections hold little.
   *
   * @default {65536}
   */
  readonly readBufferBytes?: number;
  /**
   * Called after each write the socket took whole, with how long its oldest bytes waited since
   * they were queued, in ms: the time a frame spends in this process after the game queued it
   * (waiting for the connection's previous write, then for the event loop to run the write).
   * The cluster exports it as `sustenet_cluster_write_delay_seconds`.
   */
  readonly onWritten?: (waitedMs: number) => void;
}

/** Codes of {@linkcode TransportError}. */
export type TransportErrorCode = "transport_already_started" | "transport_already_sealed";

/**
 * A {@linkcode FrameTransport} method was called in a state where it makes no sense (a
 * programming error of the owner, not of the peer).
 *
 * @example
 * ```ts
 * import { TransportError } from "./frame_session.ts";
 * import assert from "node:assert/strict";
 *
 * const err = new TransportError("transport_already_sealed", "writer already sealed");
 * assert.equal(err.code, "transport_already_sealed");
 * ```
 */
export class TransportError extends SustenetError {
  /** Which misuse this is. */
  declare readonly code: TransportErrorCode;

  /**
   * @param code Which misuse this is.
   * @param message Human-readable reason.
   */
  constructor(code: TransportErrorCode, message: string) {
    super(code, message);
  }
}

type State = "open" | "closing" | "closed";

function checkNonNegative(name: string, value: number): number {
  if (!Number.isFinite(value) || value < 0) {
    throw new RangeError(`${name} must be a finite number >= 0, got ${value}`);
  }
  return value;
}

function checkPositiveInteger(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(`${name} must be a positive integer, got ${value}`);
  }
  return value;
}

/** `host:port` of an address, for logs. */
function formatAddr(addr: PeerAddress): string {
  return `${addr.hostname}:${addr.port}`;
}

/**
 * The record bound a link with frame bound `maxFrameBytes` uses when none is given: large
 * enough for its largest frame (header and tag included), never below the 1 MiB + 16 default.
 *
 * @param maxFrameBytes The link's largest accepted frame `length`.
 * @returns The largest record `length` (ciphertext + tag) the link accepts.
 *
 * @example
 * ```ts
 * import { recordBytesFor } from "./frame_session.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(recordBytesFor(65536), 1024 * 1024 + 16);
 * assert.equal(recordBytesFor(2 * 1024 * 1024), 2 * 1024 * 1024 + 4 + 16);
 * ```
 */
export function recordBytesFor(maxFrameBytes: number): number {
  return Math.max(DEFAULT_MAX_RECORD_BYTES, maxFrameBytes + FRAME_HEADER_BYTES + RECORD_TAG_BYTES);
}

/**
 * Encodes an Error frame (`u16 code | str16 reason`), the reason cut to whole characters
 * within 1 KiB.
 *
 * @param code The error code.
 * @param reason The readable reason.
 *
 * @example
 * ```ts
 * import { encodeErrorFrame } from "./frame_session.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(encodeErrorFrame(9, "idle").toHex(), "0000000903" + "0009" + "0004" + "69646c65");
 * ```
 */
export function encodeErrorFrame(code: number, reason: string): Uint8Array {
  const payload = new Uint8Array(4 + MAX_REASON_BYTES);
  const { written } = new TextEncoder().encodeInto(reason, payload.subarray(4));
  const view = new DataView(payload.buffer);
  view.setUint16(0, code);
  view.setUint16(2, written);
  return encodeFrame(ERROR_FRAME_TYPE, payload.subarray(0, 4 + written));
}

/**
 * One framed connection over any {@linkcode ByteChannel}: frames in through a handler,
 * pre-encoded frames out through a bounded, per-turn batched queue, sealed records after
 * {@linkcode startSealing}. The TCP adapter's `FrameConnection` and the WebSocket adapter's
 * connections are sessions over their channels.
 *
 * Everything {@linkcode send} queues in one event-loop turn goes out as one channel write
 * (plaintext: one buffer; sealed: one record, or a few if above the record bound). Writes are
 * awaited one at a time, so a peer that does not read makes the queue grow until
 * `maxQueueBytes`, and then it is disconnected with `Error(SlowConsumer)`. Bad frames and bad
 * records close the connection with the matching Error frame and a logged reason; timeouts
 * close it with `Error(Timeout)`. {@linkcode closed} always resolves, never rejects.
 *
 * @example Echo one frame over loopback
 * ```ts
 * import { connectFrames, listenFrames } from "./transport.ts";
 * import { encodeFrame } from "./protocol/frame.ts";
 * import assert from "node:assert/strict";
 *
 * const server = listenFrames({
 *   port: 0,
 *   onFrame: (frame, conn) => conn.send(encodeFrame(frame.type, frame.payload)),
 * });
 * const got = Promise.withResolvers<number>();
 * const client = await connectFrames({
 *   port: server.addr.port,
 *   onFrame: (frame) => got.resolve(frame.payload[0]),
 * });
 * client.send(encodeFrame(0x04, new Uint8Array([42, 0, 0, 0])));
 * assert.equal(await got.promise, 42);
 * assert.equal((await client.close()).by, "local");
 * await server.close();
 * ```
 */
export class FrameSession implements FrameTransport {
  /** Resolves once the channel is closed and both loops have ended; never rejects. */
  readonly closed: Promise<CloseInfo>;
  /** The peer's address. */
  readonly remoteAddr: PeerAddress;
  /**
   * The {@linkcode BroadcastGroup} this connection is in, set by the group's `add` and `delete`
   * (do not set it otherwise). Bytes broadcast to the group and not yet handed to this
   * connection are queued before anything sent to it directly, so it sees frames in the order
   * they were sent.
   */
  group: BroadcastGroup | undefined = undefined;

  readonly #channel: ByteChannel;
  readonly #resolveClosed: (info: CloseInfo) => void;
  readonly #maxQueueBytes: number;
  readonly #maxRecordBytes: number;
  readonly #maxFrameBytes: number;
  /** The record bound of the reader: pending, then `#maxRecordBytes` once raised. */
  #readRecordBytes: number;
  /** `false` while the pending read bounds hold (see `pendingMaxFrameBytes`). */
  #readLimitsRaised: boolean;
  readonly #idleTimeoutMs: number;
  readonly #closeFlushTimeoutMs: number;
  readonly #recordCipher: RecordCipherKind | undefined;
  readonly #createRecordCipher: (
    key: Uint8Array,
    options: RecordCipherOptions,
  ) => Promise<RecordCipher>;
  readonly #decoder: FrameDecoder;
  #state: State = "open";
  #closeInfo: CloseInfo | undefined;
  #onFrame: FrameHandler | undefined;
  #established = false;

  // Reading.
  #readerSealed = false;
  #records: SealedRecordReader | Promise<SealedRecordReader | undefined> | undefined;
  #lastReceived = performance.now();

  // Writing.
  /**
   * Queued pieces: caller arrays kept by reference, and runs of small frames copied into
   * `#stage` (so a turn of many tiny frames reaches the writer as a few pieces).
   */
  #queue: Uint8Array[] = [];
  /** The array of the previous batch, reused as the next queue (no allocation per write). */
  #spareQueue: Uint8Array[] = [];
  #queuedBytes = 0;
  /** When the queue's oldest bytes were queued (kept only for `onWritten`). */
  #queuedAt = 0;
  readonly #onWritten: ((waitedMs: number) => void) | undefined;
  #inflightBytes = 0;
  /** Frames (sends) in `#queue`, and in the batch being written. */
  #queuedFrames = 0;
  #inflightFrames = 0;
  /** Staging buffer the current queue's runs are copied into; `#stageUsed` bytes are taken. */
  #stage: Uint8Array = NO_STAGE;
  #stageUsed = 0;
  /** The other staging buffer: the one of the batch being written, or free. */
  #spareStage: Uint8Array = NO_STAGE;
  /** Start in `#stage` of the run the last queue entry stands for; -1 if none is open. */
  #runStart = -1;
  /** `true` when the last queue entry is a lone small caller array that a run may start from. */
  #loneSmall = false;
  /** Queue entries before this index were queued before the writer switch: plaintext. */
  #sealFrom = 0;
  #sealer: SealedRecordWriter | Promise<SealedRecordWriter | undefined> | undefined;
  readonly #ownedCiphers: RecordCipher[] = [];
  #writerSealed = false;
  #flushScheduled = false;
  #writeLoop: Promise<void> | undefined;
  #writeFailed = false;
  /** Reused buffer for joining a plaintext batch; free again once its write completed. */
  #joinBuffer = new Uint8Array(0);

  // Timers.
  #handshakeTimer: ReturnType<typeof setTimeout> | undefined;
  /** The idle-timeout check in the shared sweep of this timeout (no timer per connection). */
  #idleCheck: { sweep: IdleSweepMember; in: IdleSweep } | undefined;

  // Idle trimming (see `idleTrimMs`).
  readonly #sweep: IdleSweep | undefined;
  /** What the sweep calls; made on the first traffic. */
  #sweepMember: IdleSweepMember | undefined;
  /** In the sweep: traffic since the last trim. */
  #inSweep = false;
  /** Traffic since the sweep's last call. */
  #active = false;
  #idleTrims = 0;

  // Counters.
  #framesIn = 0;
  #framesOut = 0;
  #bytesIn = 0;
  #bytesOut = 0;
  #writes = 0;

  /**
   * Wraps an open channel; timers start now, reading starts once there is a handler.
   *
   * @param channel A connected channel; the session owns it from now on.
   * @param options Bounds, timeouts and the frame handler.
   * @throws {RangeError} If an option is out of range.
   */
  constructor(channel: ByteChannel, options: FrameSessionOptions = {}) {
    this.#maxQueueBytes = checkPositiveInteger(
      "maxQueueBytes",
      options.maxQueueBytes ?? 1024 * 1024,
    );
    const maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    // The decoder validates maxFrameBytes before the record bound is derived from it.
    this.#decoder = new FrameDecoder({ maxFrameBytes });
    this.#maxFrameBytes = maxFrameBytes;
    this.#maxRecordBytes = options.maxRecordBytes ?? recordBytesFor(maxFrameBytes);
    this.#readRecordBytes = this.#maxRecordBytes;
    this.#readLimitsRaised = true;
    const pending = options.pendingMaxFrameBytes;
    if (pending !== undefined) {
      if (!Number.isInteger(pending) || pending < 1 || pending > maxFrameBytes) {
        throw new RangeError(
          `pendingMaxFrameBytes must be an integer 1..maxFrameBytes (${maxFrameBytes}), got ${pending}`,
        );
      }
      this.#decoder = new FrameDecoder({ maxFrameBytes: pending });
      // One frame per record before authentication: a handshake never batches more.
      this.#readRecordBytes = Math.min(
        this.#maxRecordBytes,
        pending + FRAME_HEADER_BYTES + RECORD_TAG_BYTES,
      );
      this.#readLimitsRaised = false;
    }
    if (
      !Number.isInteger(this.#maxRecordBytes) || this.#maxRecordBytes <= RECORD_TAG_BYTES ||
      this.#maxRecordBytes > 0xffff_ffff
    ) {
      throw new RangeError(
        `maxRecordBytes must be an integer ${
          RECORD_TAG_BYTES + 1
        }..${0xffff_ffff}, got ${this.#maxRecordBytes}`,
      );
    }
    const handshakeMs = checkNonNegative(
      "handshakeTimeoutMs",
      options.handshakeTimeoutMs ?? 10_000,
    );
    this.#idleTimeoutMs = checkNonNegative("idleTimeoutMs", options.idleTimeoutMs ?? 30_000);
    this.#closeFlushTimeoutMs = checkNonNegative(
      "closeFlushTimeoutMs",
      options.closeFlushTimeoutMs ?? 1000,
    );
    const idleTrimMs = options.idleTrimMs ?? 1000;
    if (idleTrimMs !== 0) {
      this.#sweep = sharedIdleSweep(checkPositiveInteger("idleTrimMs", idleTrimMs));
    }
    this.#recordCipher = options.recordCipher;
    this.#onWritten = options.onWritten;
    this.#createRecordCipher = options.createRecordCipher ??
      ((key) => WebCryptoRecordCipher.create(key));

    this.#channel = channel;
    this.remoteAddr = channel.remoteAddr;
    const { promise, resolve } = Promise.withResolvers<CloseInfo>();
    this.closed = promise;
    this.#resolveClosed = resolve;

    if (handshakeMs > 0) {
      this.#handshakeTimer = setTimeout(() => {
        this.#handshakeTimer = undefined;
        this.#fail(ErrorCode.Timeout, "handshake timeout", "info");
      }, handshakeMs);
    }
    if (this.#idleTimeoutMs > 0) {
      // Checked every eighth of the timeout by one timer shared with every connection of the
      // same timeout: a timer per connection costs an idle player more than its session does.
      const period = Math.max(1, Math.floor(this.#idleTimeoutMs / IDLE_CHECKS_PER_TIMEOUT));
      this.#idleCheck = {
        sweep: { sweep: (now) => this.#checkIdle(now) },
        in: sharedIdleSweep(period),
      };
      this.#idleCheck.in.add(this.#idleCheck.sweep);
    }
    if (options.onFrame !== undefined) this.start(options.onFrame);
  }

  /** Frames received and delivered to the handler. */
  get framesIn(): number {
    return this.#framesIn;
  }

  /** Frames written to the socket (queued frames whose write completed). */
  get framesOut(): number {
    return this.#framesOut;
  }

  /** Bytes read from the socket (record overhead included once sealed). */
  get bytesIn(): number {
    return this.#bytesIn;
  }

  /** Bytes written to the socket (record overhead included once sealed). */
  get bytesOut(): number {
    return this.#bytesOut;
  }

  /**
   * Times this connection gave back its idle memory (option `idleTrimMs`).
   *
   * @example
   * ```ts
   * import { connectFrames, listenFrames } from "./transport.ts";
   * import { encodeFrame } from "./protocol/frame.ts";
   * import assert from "node:assert/strict";
   *
   * const server = listenFrames({ port: 0, onFrame: (f, conn) => conn.send(encodeFrame(f.type, f.payload)) });
   * const echoed = Promise.withResolvers<void>();
   * const client = await connectFrames({ port: server.addr.port, idleTrimMs: 10, onFrame: () => echoed.resolve() });
   * client.send(encodeFrame(0x80, new Uint8Array(3)));
   * await echoed.promise;
   * while (client.idleTrims === 0) await new Promise((resolve) => setTimeout(resolve, 10));
   * await client.close();
   * await server.close();
   * ```
   */
  get idleTrims(): number {
    return this.#idleTrims;
  }

  /** Socket writes completed: one per flushed batch, however many frames it held. */
  get writes(): number {
    return this.#writes;
  }

  /** The bound on {@linkcode queuedBytes} (option `maxQueueBytes`). */
  get maxQueueBytes(): number {
    return this.#maxQueueBytes;
  }

  /** Bytes queued plus bytes being written; stays within `maxQueueBytes` while open. */
  get queuedBytes(): number {
    return this.#queuedBytes + this.#inflightBytes;
  }

  /** `true` until the connection starts closing. */
  get isOpen(): boolean {
    return this.#state === "open";
  }

  /**
   * The read bounds in force: the largest frame `length` and record `length` accepted, and
   * whether they are the full ones (`raised`) or still the pending ones.
   */
  get readLimits(): { maxFrameBytes: number; maxRecordBytes: number; raised: boolean } {
    return {
      maxFrameBytes: this.#decoder.maxFrameBytes,
      maxRecordBytes: this.#readRecordBytes,
      raised: this.#readLimitsRaised,
    };
  }

  /**
   * Lifts the pending read bounds (option `pendingMaxFrameBytes`) to the full `maxFrameBytes`
   * and `maxRecordBytes`, for frames and records whose header has not been read yet, and lets
   * the read buffer grow again. Call it once the peer has authenticated. Does nothing if the
   * bounds are already the full ones.
   *
   * @example
   * ```ts
   * import { connectFrames, type FrameConnection, listenFrames } from "./transport.ts";
   * import assert from "node:assert/strict";
   *
   * const accepted = Promise.withResolvers<FrameConnection>();
   * const server = listenFrames({
   *   port: 0,
   *   maxFrameBytes: 65536,
   *   pendingMaxFrameBytes: 4096,
   *   onConnection: (conn) => {
   *     conn.start(() => {});
   *     accepted.resolve(conn);
   *   },
   * });
   * const client = await connectFrames({ port: server.addr.port, onFrame: () => {} });
   * const conn = await accepted.promise;
   * assert.deepEqual(conn.readLimits, { maxFrameBytes: 4096, maxRecordBytes: 4116, raised: false });
   * conn.raiseReadLimits();
   * assert.equal(conn.readLimits.maxFrameBytes, 65536);
   * assert.equal(conn.readLimits.raised, true);
   * await client.close();
   * await server.close();
   * ```
   */
  raiseReadLimits(): void {
    if (this.#readLimitsRaised) return;
    this.#readLimitsRaised = true;
    this.#decoder.raiseMaxFrameBytes(this.#maxFrameBytes);
    this.#readRecordBytes = this.#maxRecordBytes;
    // A reader still being made reads #readRecordBytes when it is made.
    const records = this.#records;
    if (records instanceof SealedRecordReader) records.raiseMaxRecordBytes(this.#maxRecordBytes);
  }

  /** `true` once {@linkcode markEstablished} was called. */
  get established(): boolean {
    return this.#established;
  }

  /** `true` once this side seals what it sends. */
  get sealed(): boolean {
    return this.#writerSealed;
  }

  /**
   * Starts reading, delivering each frame to `onFrame`.
   *
   * @param onFrame The frame handler.
   * @throws {TransportError} `transport_already_started` if reading has already started.
   */
  start(onFrame: FrameHandler): void {
    if (this.#onFrame !== undefined) {
      throw new TransportError("transport_already_started", "frame handler already set");
    }
    this.#onFrame = onFrame;
    if (this.#state === "open") this.#channel.startReading(new FrameSession.#Sink(this));
  }

  /** Ends the handshake period: the handshake timeout no longer applies. */
  markEstablished(): void {
    this.#established = true;
    if (this.#handshakeTimer !== undefined) {
      clearTimeout(this.#handshakeTimer);
      this.#handshakeTimer = undefined;
    }
  }

  /**
   * Queues one pre-encoded frame (or several concatenated). The array is only read, never
   * modified, so one encoded frame may be queued on many connections. Everything queued in one
   * event-loop turn is written together. Small frames (under 512 bytes) sent back to back are
   * copied into a staging buffer of this connection, so the writer gathers a few pieces rather
   * than hundreds; larger ones are kept by reference until written.
   *
   * @param frameBytes Whole frames, `u32 length | u8 type | payload`.
   * @param frames How many frames `frameBytes` holds, for the `framesOut` count (default 1).
   * @returns `false` if the connection is closing or closed, or the frames tripped the queue
   * bound (the connection is then closed with `Error(SlowConsumer)`).
   * @throws {RangeError} If `frameBytes` alone is larger than `maxQueueBytes`.
   */
  send(frameBytes: Uint8Array, frames = 1): boolean {
    if (this.group !== undefined) this.group.catchUp(this);
    const length = frameBytes.length;
    if (!this.#admit(length)) return false;
    if (length === 0) return true;
    if (this.#queuedBytes === 0 && this.#onWritten !== undefined) {
      this.#queuedAt = performance.now();
    }
    if (length < STAGE_FRAME_BYTES) this.#stageSmall(frameBytes);
    else this.#enqueue(frameBytes);
    this.#queuedBytes += length;
    this.#queuedFrames += frames;
    this.#scheduleFlush();
    return true;
  }

  /**
   * Queues one frame built from its type and payload: the same as
   * `send(encodeFrame(type, payload))` (same bytes, queue bound, `SlowConsumer` close, sealing
   * and counters), but a small frame (under 512 bytes) is written straight into this
   * connection's staging buffer, with no frame array in between. Larger frames are encoded and
   * queued by reference as {@linkcode send} does.
   *
   * @param type The packet type byte, an integer 0..255.
   * @param payload The payload; copied (small frames at once, larger ones when encoded).
   * @returns `false` if the connection is closing or closed, or the frame tripped the queue
   * bound (the connection is then closed with `Error(SlowConsumer)`).
   * @throws {RangeError} If `type` is not a byte, or the frame alone is larger than
   * `maxQueueBytes`.
   *
   * @example
   * ```ts
   * import { connectFrames, listenFrames } from "./transport.ts";
   * import assert from "node:assert/strict";
   *
   * const got = Promise.withResolvers<number[]>();
   * const server = listenFrames({
   *   port: 0,
   *   onFrame: (frame) => got.resolve([frame.type, ...frame.payload]),
   * });
   * const client = await connectFrames({ port: server.addr.port, onFrame: () => {} });
   * assert.equal(client.sendFrame(0x80, new Uint8Array([1, 2])), true);
   * assert.deepEqual(await got.promise, [0x80, 1, 2]);
   * assert.throws(() => client.sendFrame(256, new Uint8Array()), RangeError);
   * await client.close();
   * await server.close();
   * ```
   */
  sendFrame(type: number, payload: Uint8Array): boolean {
    const length = FRAME_HEADER_BYTES + 1 + payload.length;
    if (length >= STAGE_FRAME_BYTES) return this.send(encodeFrame(type, payload));
    // Checked first, as encodeFrame would, whatever the connection's state.
    if (!Number.isInteger(type) || type < 0 || type > 0xff) {
      throw new RangeError(`frame type must be an integer 0..255, got ${type}`);
    }
    if (this.group !== undefined) this.group.catchUp(this);
    if (!this.#admit(length)) return false;
    if (this.#queuedBytes === 0 && this.#onWritten !== undefined) {
      this.#queuedAt = performance.now();
    }
    this.#stageFrame(type, payload, length);
    this.#queuedBytes += length;
    this.#queuedFrames++;
    this.#scheduleFlush();
    return true;
  }

  /**
   * Whether `length` more bytes may be queued: `false` when not open, or (after closing the
   * connection with `Error(SlowConsumer)`) when they would pass the queue bound.
   */
  #admit(length: number): boolean {
    if (this.#state !== "open") return false;
    if (length > this.#maxQueueBytes) {
      throw new RangeError(
        `frame of ${length} bytes above maxQueueBytes ${this.#maxQueueBytes}`,
      );
    }
    if (this.#queuedBytes + this.#inflightBytes + length > this.#maxQueueBytes) {
      this.#clearQueue();
      this.#sealFrom = 0;
      this.#fail(
        ErrorCode.SlowConsumer,
        `outgoing queue above ${this.#maxQueueBytes} bytes`,
        "warning",
      );
      return false;
    }
    return true;
  }

  /**
   * Switches both directions to sealed records: frames sent from now on are sealed, and bytes
   * received after the frame being handled are read as records. Synchronous, so it can be
   * called from the handler between two frames of one read.
   *
   * @param keys The send and receive keys (raw 32 bytes or ready ciphers).
   * @throws {TransportError} `transport_already_sealed` if either direction already is.
   * @throws {RangeError} If a raw key is not 32 bytes.
   */
  startSealing(keys: SealingKeys): void {
    if (this.#writerSealed || this.#readerSealed) {
      throw new TransportError("transport_already_sealed", "connection already sealed");
    }
    this.#checkKey(keys.sendKey);
    this.#checkKey(keys.receiveKey);
    this.startSealingWriter(keys.sendKey);
    this.startSealingReader(keys.receiveKey);
  }

  /**
   * Seals every frame queued from now on; frames queued before stay plaintext.
   *
   * @param sendKey The key (or cipher) of this side's sending direction.
   * @throws {TransportError} `transport_already_sealed` if the writer already seals.
   * @throws {RangeError} If a raw key is not 32 bytes.
   */
  startSealingWriter(sendKey: SealingKey): void {
    if (this.#writerSealed) {
      throw new TransportError("transport_already_sealed", "writer already sealed");
    }
    const cipher = this.#toCipher(sendKey);
    // Broadcasts made before the switch are plaintext, like everything else queued before it.
    if (this.group !== undefined) this.group.catchUp(this);
    this.#writerSealed = true;
    // A run must not span the switch: what is queued so far stays plaintext.
    this.#closeRun();
    this.#sealFrom = this.#queue.length;
    // Each batch is written out before the next is sealed, so one output buffer serves them all.
    const options = { maxRecordBytes: this.#maxRecordBytes, reuseOutput: true };
    this.#sealer = cipher instanceof Promise
      ? cipher.then((c) => {
        const writer = c === undefined ? undefined : new SealedRecordWriter(c, options);
        this.#sealer = writer;
        return writer;
      })
      : new SealedRecordWriter(cipher, options);
  }

  /**
   * Reads everything after the frame being handled (or after the last frame read) as records.
   *
   * @param receiveKey The key (or cipher) of this side's receiving direction.
   * @throws {TransportError} `transport_already_sealed` if the reader already opens records.
   * @throws {RangeError} If a raw key is not 32 bytes.
   */
  startSealingReader(receiveKey: SealingKey): void {
    if (this.#readerSealed) {
      throw new TransportError("transport_already_sealed", "reader already sealed");
    }
    const cipher = this.#toCipher(receiveKey);
    this.#readerSealed = true;
    // Bytes after the switch frame are record bytes: move them to the record reader.
    const remainder = this.#decoder.takeRemainder();
    const makeReader = (c: RecordCipher) => {
      const reader = new SealedRecordReader(c, { maxRecordBytes: this.#readRecordBytes });
      reader.push(remainder);
      this.#records = reader;
      return reader;
    };
    this.#records = cipher instanceof Promise
      ? cipher.then((c) => c === undefined ? undefined : makeReader(c))
      : makeReader(cipher);
  }

  /**
   * Reads nothing more from the socket for `ms` (frames already read are still delivered):
   * backpressure for a peer over its rate limit. Its bytes wait in the kernel and TCP slows the
   * peer down, so a flood costs this process neither the reading and opening of records it
   * would only drop, nor the event-loop turns every other connection needs. Pauses do not add
   * up: the later end wins. A close ends the pause.
   *
   * @param ms How long, in ms (≥ 0).
   *
   * @example
   * ```ts
   * import { connectFrames, listenFrames } from "./transport.ts";
   * import { encodePacket } from "./protocol/codec.ts";
   * import assert from "node:assert/strict";
   *
   * let received = 0;
   * const server = listenFrames({
   *   port: 0,
   *   onConnection: (conn) => {
   *     conn.pauseReading(100);
   *     conn.start(() => received++);
   *   },
   * });
   * const client = await connectFrames({ port: server.addr.port });
   * client.send(encodePacket({ kind: "Ping", value: 1 }));
   * await new Promise((resolve) => setTimeout(resolve, 30));
   * assert.equal(received, 0); // still paused
   * await new Promise((resolve) => setTimeout(resolve, 150));
   * assert.equal(received, 1);
   * await client.close();
   * await server.close();
   * ```
   */
  pauseReading(ms: number): void {
    this.#channel.pauseReading(performance.now() + ms);
  }

  /**
   * Closes the connection: sends `Error(reason.code, reason.message)` if a reason is given,
   * writes what is queued (bounded by `closeFlushTimeoutMs`), closes the socket. Idempotent:
   * later calls return the same promise.
   *
   * @param reason Optional Error frame to send first.
   * @returns {@linkcode closed}.
   */
  close(reason?: CloseReason): Promise<CloseInfo> {
    return this.#beginClose(reason?.message ?? "closed by owner", reason?.code, "local");
  }

  // ---------------------------------------------------------------- reading

  /** The channel's way back in; only the channel calls it. */
  /**
   * The channel's way back in; only the channel calls it. A class rather than an object of
   * arrow functions: one small object per connection, its methods shared by all of them.
   */
  static readonly #Sink = class SessionSink implements ChannelSink {
    readonly #session: FrameSession;

    constructor(session: FrameSession) {
      this.#session = session;
    }

    isOpen(): boolean {
      return this.#session.#state === "open";
    }

    readLimitsRaised(): boolean {
      return this.#session.#readLimitsRaised;
    }

    bufferedBytes(): number {
      const session = this.#session;
      if (!session.#readerSealed) return session.#decoder.bufferedBytes;
      const records = session.#records;
      return records instanceof SealedRecordReader ? records.bufferedBytes : 0;
    }

    receive(chunk: Uint8Array): Promise<void> {
      const session = this.#session;
      session.#bytesIn += chunk.length;
      session.#lastReceived = performance.now();
      session.#trafficSeen();
      return session.#ingest(chunk);
    }

    resumed(): void {
      this.#session.#lastReceived = performance.now();
    }

    ended(reason: string): void {
      this.#session.#beginClose(reason, undefined, "remote");
    }

    failed(operation: "read" | "write", error: unknown): void {
      const session = this.#session;
      if (session.#state === "open") session.#socketFailed(operation, error);
    }

    violation(code: number, reason: string): void {
      this.#session.#fail(code, reason, "warning");
    }
  };

  async #ingest(chunk: Uint8Array): Promise<void> {
    if (this.#readerSealed) {
      const records = this.#records;
      const reader = records instanceof Promise ? await records : records;
      if (reader === undefined) return;
      // Read in place: the chunk stays untouched until this drain has given the reader "need
      // more", which copies only the start of a record cut off at the chunk's end.
      reader.pushView(chunk);
    } else {
      this.#decoder.push(chunk);
    }
    await this.#drain();
  }

  /** Delivers every complete frame, opening records as needed. */
  async #drain(): Promise<void> {
    while (this.#state === "open") {
      const item = this.#decoder.next();
      if (item === undefined) {
        if (!this.#readerSealed) return;
        const records = this.#records;
        // Awaited only while the cipher is being made: a ready reader costs no microtask.
        const reader = records instanceof Promise ? await records : records;
        if (reader === undefined || this.#state !== "open") return;
        let plaintext: RecordReadResult | Promise<Uint8Array | RecordError> = reader.next();
        // Synchronous ciphers cost no promise here.
        if (plaintext instanceof Promise) plaintext = await plaintext;
        if (plaintext === undefined) return;
        if (plaintext instanceof RecordError) {
          this.#fail(ErrorCode.BadFrame, `bad record: ${plaintext.message}`, "warning");
          return;
        }
        this.#decoder.push(plaintext);
        continue;
      }
      if (item instanceof ProtocolError) {
        this.#fail(item.errorCode, item.message, "warning");
        return;
      }
      this.#framesIn++;
      try {
        (this.#onFrame as FrameHandler)(item, this);
      } catch (error) {
        logger.error("frame handler failed on {remote}: {error}", {
          remote: formatAddr(this.remoteAddr),
          error,
        });
        this.#fail(ErrorCode.Internal, "internal error", "none");
        return;
      }
    }
  }

  /** The idle sweep's call: closes after `idleTimeoutMs` without a byte; `true` = leave. */
  #checkIdle(now: number): boolean {
    if (this.#state !== "open") return true;
    if (now - this.#lastReceived < this.#idleTimeoutMs) return false;
    this.#fail(ErrorCode.Timeout, "idle timeout", "info");
    return true;
  }

  // ---------------------------------------------------------------- idle trimming

  /** Notes traffic (one store per read or write); joins the sweep again after a trim. */
  #trafficSeen(): void {
    this.#active = true;
    if (this.#inSweep || this.#sweep === undefined || this.#state !== "open") return;
    this.#inSweep = true;
    this.#sweep.add(this.#sweepMember ??= { sweep: () => this.#sweepIdle() });
  }

  /**
   * The sweep's call: after a whole period without traffic (and nothing being written), gives
   * back the write buffers and the ciphers' contexts, and leaves the sweep until the next
   * traffic. The read buffer is not the session's: the channel shrinks its own.
   */
  #sweepIdle(): boolean {
    if (this.#state !== "open") {
      this.#inSweep = false;
      return true;
    }
    if (this.#active) {
      this.#active = false;
      return false;
    }
    if (this.#writeLoop !== undefined || this.#queue.length > 0 || this.#flushScheduled) {
      return false;
    }
    this.#joinBuffer = NO_STAGE;
    this.#stage = NO_STAGE;
    this.#spareStage = NO_STAGE;
    this.#stageUsed = 0;
    this.#spareQueue = [];
    const sealer = this.#sealer;
    if (sealer instanceof SealedRecordWriter) sealer.trim();
    const records = this.#records;
    if (records instanceof SealedRecordReader) records.trim();
    this.#idleTrims++;
    this.#inSweep = false;
    return true;
  }

  // ---------------------------------------------------------------- writing

  #scheduleFlush(): void {
    if (this.#flushScheduled || this.#writeLoop !== undefined) return;
    this.#flushScheduled = true;
    // A microtask runs after everything the current task queues, so one turn = one write.
    queueMicrotask(this.#flush);
  }

  readonly #flush = (): void => {
    this.#flushScheduled = false;
    if (this.#writeLoop === undefined && this.#queue.length > 0 && !this.#writeFailed) {
      this.#writeLoop = this.#runWrites();
    }
  };

  async #runWrites(): Promise<void> {
    try {
      while (this.#queue.length > 0 && !this.#writeFailed) {
        this.#closeRun();
        const batch = this.#queue;
        const sealFrom = this.#writerSealed ? this.#sealFrom : batch.length;
        this.#queue = this.#spareQueue;
        this.#sealFrom = 0;
        this.#inflightBytes = this.#queuedBytes;
        this.#queuedBytes = 0;
        this.#inflightFrames = this.#queuedFrames;
        this.#queuedFrames = 0;
        const queuedAt = this.#queuedAt;
        // The batch keeps its staging buffer until written; the free one takes new runs.
        const stage = this.#stage;
        this.#stage = this.#spareStage;
        this.#spareStage = stage;
        this.#stageUsed = 0;
        const bytes = await this.#encodeBatch(batch, sealFrom);
        if (bytes === undefined) return;
        let offset = 0;
        while (offset < bytes.length) {
          offset += await this.#channel.write(offset === 0 ? bytes : bytes.subarray(offset));
        }
        this.#writes++;
        this.#onWritten?.(performance.now() - queuedAt);
        this.#trafficSeen();
        this.#bytesOut += bytes.length;
        this.#framesOut += this.#inflightFrames;
        this.#inflightBytes = 0;
        this.#inflightFrames = 0;
        batch.length = 0;
        this.#spareQueue = batch;
      }
    } catch (error) {
      this.#writeFailed = true;
      this.#clearQueue();
      if (error instanceof ChannelOverflowError) {
        this.#fail(ErrorCode.SlowConsumer, error.message, "warning");
      } else if (this.#state === "open") this.#socketFailed("write", error);
      else if (this.#channel.classify(error) !== "closed") {
        logger.debug("write on {remote} ended while closing: {error}", {
          remote: formatAddr(this.remoteAddr),
          error,
        });
      }
    } finally {
      this.#inflightBytes = 0;
      this.#inflightFrames = 0;
      this.#writeLoop = undefined;
    }
  }

  /** Queues a caller's array as its own piece, by reference. */
  #enqueue(frameBytes: Uint8Array): void {
    this.#closeRun();
    this.#queue.push(frameBytes);
  }

  /**
   * Queues a small frame: a lone one by reference; from the second in a row on, the frames are
   * copied one after the other into the staging buffer, which the queue sees as one piece.
   * Copying here is cheaper than handing the writer hundreds of tiny pieces to gather.
   */
  #stageSmall(frameBytes: Uint8Array): void {
    const queue = this.#queue;
    if (this.#runStart >= 0) {
      if (this.#stageUsed + frameBytes.length <= this.#stage.length) {
        this.#stage.set(frameBytes, this.#stageUsed);
        this.#stageUsed += frameBytes.length;
        return;
      }
      // This buffer is full: the run ends here, and the frame may start the next one.
      this.#closeRun();
      queue.push(frameBytes);
      this.#loneSmall = true;
      return;
    }
    if (!this.#loneSmall) {
      queue.push(frameBytes);
      this.#loneSmall = true;
      return;
    }
    const lone = queue[queue.length - 1];
    const need = lone.length + frameBytes.length;
    if (this.#stageUsed + need > this.#stage.length) {
      // Pieces queued earlier keep the old buffer alive through their views until written.
      this.#stage = new Uint8Array(
        Math.min(MAX_STAGE_BYTES, Math.max(MIN_STAGE_BYTES, this.#stage.length * 2, need)),
      );
      this.#stageUsed = 0;
    }
    const start = this.#stageUsed;
    this.#stage.set(lone, start);
    this.#stage.set(frameBytes, start + lone.length);
    this.#stageUsed = start + need;
    this.#runStart = start;
    this.#loneSmall = false;
  }

  /**
   * Queues a small frame given as type and payload, encoding it straight into the staging
   * buffer: it extends the open run, or starts one (taking in a lone small caller array queued
   * just before, as {@linkcode #stageSmall} would).
   */
  #stageFrame(type: number, payload: Uint8Array, length: number): void {
    const queue = this.#queue;
    if (this.#runStart >= 0 && this.#stageUsed + length > this.#stage.length) {
      // This buffer is full: the run ends here, and the frame starts the next one.
      this.#closeRun();
    }
    if (this.#runStart < 0) {
      const lone = this.#loneSmall ? queue[queue.length - 1] : undefined;
      const need = (lone === undefined ? 0 : lone.length) + length;
      if (this.#stageUsed + need > this.#stage.length) {
        // Pieces queued earlier keep the old buffer alive through their views until written.
        this.#stage = new Uint8Array(
          Math.min(MAX_STAGE_BYTES, Math.max(MIN_STAGE_BYTES, this.#stage.length * 2, need)),
        );
        this.#stageUsed = 0;
      }
      this.#runStart = this.#stageUsed;
      this.#loneSmall = false;
      if (lone === undefined) {
        // A placeholder for the run; #closeRun replaces it with a view of the staged bytes.
        queue.push(NO_STAGE);
      } else {
        this.#stage.set(lone, this.#stageUsed);
        this.#stageUsed += lone.length;
      }
    }
    const stage = this.#stage;
    const at = this.#stageUsed;
    writeFrameHeader(stage, at, length - FRAME_HEADER_BYTES, type);
    stage.set(payload, at + FRAME_HEADER_BYTES + 1);
    this.#stageUsed = at + length;
  }

  /** Ends the open run, if any: the last queue entry becomes a view of its staged bytes. */
  #closeRun(): void {
    if (this.#runStart >= 0) {
      this.#queue[this.#queue.length - 1] = this.#stage.subarray(this.#runStart, this.#stageUsed);
      this.#runStart = -1;
    }
    this.#loneSmall = false;
  }

  /** Drops everything queued (not the batch being written). */
  #clearQueue(): void {
    this.#queue.length = 0;
    this.#queuedBytes = 0;
    this.#queuedFrames = 0;
    this.#runStart = -1;
    this.#loneSmall = false;
    // Only views in the dropped queue pointed into this buffer.
    this.#stageUsed = 0;
  }

  /** Joins a batch into the bytes of one write: plaintext frames, then sealed records. */
  async #encodeBatch(batch: Uint8Array[], sealFrom: number): Promise<Uint8Array | undefined> {
    if (sealFrom >= batch.length) return this.#joinPlain(batch, batch.length, 0);
    const pending = this.#sealer;
    const sealer = pending instanceof Promise ? await pending : pending;
    if (sealer === undefined) return undefined;
    const records = sealer.seal(sealFrom === 0 ? batch : batch.slice(sealFrom));
    const recordBytes = records instanceof Uint8Array ? records : await records;
    if (sealFrom === 0) return recordBytes;
    // The switch happened mid-batch: the plaintext frames, then the records, in one write.
    const joined = this.#joinPlain(batch, sealFrom, recordBytes.length);
    joined.set(recordBytes, joined.length - recordBytes.length);
    return joined;
  }

  /** Concatenates `batch[0, end)` followed by `extra` free bytes, reusing a buffer. */
  #joinPlain(batch: readonly Uint8Array[], end: number, extra: number): Uint8Array {
    if (end === 1 && extra === 0) return batch[0]; // nothing to join: write it as is
    let total = extra;
    for (let i = 0; i < end; i++) total += batch[i].length;
    let out: Uint8Array;
    if (total > KEEP_JOIN_BUFFER_BYTES) {
      // A rare large batch gets its own array, so idle connections do not keep big buffers.
      out = new Uint8Array(total);
    } else {
      if (this.#joinBuffer.length < total) {
        this.#joinBuffer = new Uint8Array(
          Math.min(KEEP_JOIN_BUFFER_BYTES, Math.max(total * 2, MIN_JOIN_BUFFER_BYTES)),
        );
      }
      out = this.#joinBuffer.subarray(0, total);
    }
    let offset = 0;
    for (let i = 0; i < end; i++) {
      out.set(batch[i], offset);
      offset += batch[i].length;
    }
    return out;
  }

  // ---------------------------------------------------------------- sealing helpers

  #checkKey(key: SealingKey): void {
    if (key instanceof Uint8Array) assertRecordKey(key);
  }

  /** A ready cipher, or a promise of one that resolves to `undefined` if creation failed. */
  #toCipher(key: SealingKey): RecordCipher | Promise<RecordCipher | undefined> {
    if (!(key instanceof Uint8Array)) return key;
    assertRecordKey(key);
    return this.#createRecordCipher(key, { prefer: this.#recordCipher }).then((cipher) => {
      // Ciphers made here are ours to release (native libcrypto contexts are invisible to GC).
      this.#ownedCiphers.push(cipher);
      return cipher;
    }).catch((error: unknown) => {
      logger.error("record cipher setup failed for {remote}: {error}", {
        remote: formatAddr(this.remoteAddr),
        error,
      });
      this.#fail(ErrorCode.Internal, "internal error", "none");
      return undefined;
    });
  }

  // ---------------------------------------------------------------- closing

  #socketFailed(operation: "read" | "write", error: unknown): void {
    const byPeer = this.#channel.classify(error) === "peer_gone";
    const message = error instanceof Error ? error.message : String(error);
    if (!byPeer) {
      logger.warn("{operation} failed on {remote}: {message}", {
        operation,
        remote: formatAddr(this.remoteAddr),
        message,
      });
    }
    this.#beginClose(`${operation} failed: ${message}`, undefined, byPeer ? "remote" : "error");
  }

  /** Closes because of something this side detected, telling the peer `code`. */
  #fail(code: number, reason: string, log: "info" | "warning" | "none"): void {
    if (this.#state !== "open") return;
    const properties = { remote: formatAddr(this.remoteAddr), reason, code };
    // During the handshake of a pending connection the owner counts these and logs them
    // rate-limited: a peer that has not authenticated can cause them at will.
    if (!this.#readLimitsRaised && !this.#established && log !== "none") {
      logger.debug("closing {remote}: {reason}", properties);
    } else if (log === "info") logger.info("closing {remote}: {reason}", properties);
    else if (log === "warning") logger.warn("closing {remote}: {reason}", properties);
    this.#beginClose(reason, code, "error");
  }

  #beginClose(reason: string, code: number | undefined, by: CloseSource): Promise<CloseInfo> {
    // What the group broadcast before the close goes out first, as a direct send would.
    if (this.#state === "open" && this.group !== undefined) this.group.catchUp(this);
    if (this.#state !== "open") return this.closed;
    this.#state = "closing";
    this.#closeInfo = code === undefined ? { reason, by } : { reason, code, by };
    if (this.#handshakeTimer !== undefined) clearTimeout(this.#handshakeTimer);
    if (this.#idleCheck !== undefined) this.#idleCheck.in.delete(this.#idleCheck.sweep);
    this.#idleCheck = undefined;
    if (this.#inSweep && this.#sweepMember !== undefined) this.#sweep?.delete(this.#sweepMember);
    this.#inSweep = false;
    this.#handshakeTimer = undefined;
    if (code !== undefined && !this.#writeFailed) {
      // Bypasses the queue bound on purpose: one small frame, and it is the last.
      const frame = encodeErrorFrame(code, reason);
      this.#enqueue(frame);
      this.#queuedBytes += frame.length;
      this.#queuedFrames++;
    }
    this.#finish().then(
      (info) => this.#resolveClosed(info),
      (error: unknown) => {
        // #finish handles every expected failure; this is a last resort so closed resolves.
        logger.error("closing {remote} failed: {error}", {
          remote: formatAddr(this.remoteAddr),
          error,
        });
        this.#resolveClosed(this.#closeInfo ?? { reason, by });
      },
    );
    return this.closed;
  }

  async #finish(): Promise<CloseInfo> {
    if (this.#writeLoop === undefined && this.#queue.length > 0 && !this.#writeFailed) {
      this.#writeLoop = this.#runWrites();
    }
    const writes = this.#writeLoop;
    if (writes !== undefined) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, this.#closeFlushTimeoutMs);
      });
      await Promise.race([writes, timeout]);
      clearTimeout(timer);
    }
    // Both loops end promptly once the channel is closed; wait so nothing outlives `closed`.
    await this.#channel.close(this.#closeInfo as CloseInfo);
    await this.#writeLoop;
    for (const cipher of this.#ownedCiphers.splice(0)) {
      if (Symbol.dispose in cipher) (cipher as RecordCipher & Disposable)[Symbol.dispose]();
    }
    this.#state = "closed";
    const info = this.#closeInfo as CloseInfo;
    logger.debug("closed {remote} by {by}: {reason}", {
      remote: formatAddr(this.remoteAddr),
      by: info.by,
      reason: info.reason,
    });
    return info;
  }
}

/**
 * Queues the same encoded frame on every connection (but `except`); encodes nothing, copies
 * nothing.
 *
 * @param connections Receivers.
 * @param frameBytes One or more whole encoded frames, shared by every queue, never modified.
 * @param except A connection to skip (typically the sender).
 * @returns How many connections accepted the frame.
 *
 * @example
 * ```ts
 * import { broadcast, type FrameTransport } from "./frame_session.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(broadcast(new Set<FrameTransport>(), new Uint8Array([0, 0, 0, 1, 0x10])), 0);
 * ```
 */
export function broadcast(
  connections: Iterable<FrameTransport>,
  frameBytes: Uint8Array,
  except?: FrameTransport,
): number {
  let sent = 0;
  for (const connection of connections) {
    if (connection !== except && connection.send(frameBytes)) sent++;
  }
  return sent;
}
