/**
 * The receive side of an RFC 6455 client, sans-I/O: it takes the bytes a server sent, as they
 * came off the socket, and strips the frame headers in place so that only the data messages'
 * payload bytes are left, in order, at the front of the same buffer. Control frames (ping,
 * pong, close) are collected apart and handed back as {@linkcode WebSocketControl}s.
 *
 * Why in place: the load generator reads hundreds of connections at millions of frames per
 * second, and a copy or an event per message is what made its WebSocket side the busier process
 * (docs/PERFORMANCE.md, "WebSocket relay"). Message boundaries are not kept: the protocol's own
 * frames and records carry their lengths, so the payload is read as a stream, as on TCP.
 *
 * It never accepts a masked server frame, a control frame over 125 bytes or a reserved opcode
 * (a {@linkcode WebSocketUnframeError} names the fault), and never grows: a header split over two
 * reads is kept in 14 bytes.
 *
 * @module
 */

import { SustenetError } from "../shared/errors.ts";

/** A control frame the server sent: ping (9), pong (10) or close (8), with its payload. */
export interface WebSocketControl {
  /** 8 close, 9 ping, 10 pong. */
  readonly opcode: 8 | 9 | 10;
  /** The control frame's payload (at most 125 bytes). */
  readonly payload: Uint8Array;
}

/** The server broke RFC 6455 framing. */
export class WebSocketUnframeError extends SustenetError {
  /** @param message What was wrong. */
  constructor(message: string) {
    super("websocket_framing", message);
  }
}

/** Largest header: 2 bytes, an 8-byte length, a 4-byte mask. */
const MAX_HEADER_BYTES = 14;

/**
 * Strips WebSocket frame headers from received bytes, in place.
 *
 * @example A binary message and a ping, the header split over two reads
 * ```ts
 * import { WebSocketUnframer } from "./websocket_unframer.ts";
 * import assert from "node:assert/strict";
 *
 * const unframer = new WebSocketUnframer();
 * const first = new Uint8Array([0x82]); // FIN + binary, length still to come
 * assert.equal(unframer.unframe(first, first.length), 0);
 * const second = new Uint8Array([0x03, 1, 2, 3, 0x89, 0x01, 0x7f]);
 * assert.equal(unframer.unframe(second, second.length), 3);
 * assert.deepEqual([...second.subarray(0, 3)], [1, 2, 3]);
 * const [ping] = unframer.takeControls();
 * assert.equal(ping.opcode, 9);
 * assert.deepEqual([...ping.payload], [0x7f]);
 * ```
 */
export class WebSocketUnframer {
  /** Payload bytes of the current frame not yet seen. */
  #left = 0;
  /** The current frame's opcode when it is a control frame, else 0. */
  #controlOpcode = 0;
  #control = new Uint8Array(125);
  #controlLength = 0;
  #controls: WebSocketControl[] = [];
  readonly #header = new Uint8Array(MAX_HEADER_BYTES);
  #headerLength = 0;

  /**
   * Strips the headers from `bytes[0, length)`; the data payload is moved to the front.
   *
   * @param bytes The received bytes; rewritten.
   * @param length How many of them were received.
   * @returns How many payload bytes now start `bytes`.
   * @throws {WebSocketUnframeError} For a masked frame, a reserved opcode, a bad control frame.
   */
  unframe(bytes: Uint8Array, length: number): number {
    let read = 0;
    let written = 0;
    while (read < length) {
      if (this.#left > 0) {
        const take = Math.min(this.#left, length - read);
        if (this.#controlOpcode === 0) {
          if (written !== read) bytes.copyWithin(written, read, read + take);
          written += take;
        } else {
          this.#control.set(bytes.subarray(read, read + take), this.#controlLength);
          this.#controlLength += take;
        }
        read += take;
        this.#left -= take;
        if (this.#left === 0 && this.#controlOpcode !== 0) this.#endControl();
        continue;
      }
      this.#header[this.#headerLength++] = bytes[read++];
      const needed = this.#headerBytesNeeded();
      if (this.#headerLength === needed) this.#startFrame();
    }
    return written;
  }

  /** Hands over the control frames completed since the last call. */
  takeControls(): WebSocketControl[] {
    const controls = this.#controls;
    this.#controls = [];
    return controls;
  }

  /** Header bytes the current header needs, as far as its first two bytes tell. */
  #headerBytesNeeded(): number {
    if (this.#headerLength < 2) return 2;
    const second = this.#header[1];
    if ((second & 0x80) !== 0) throw new WebSocketUnframeError("the server masked a frame");
    const length7 = second & 0x7f;
    return length7 === 126 ? 4 : length7 === 127 ? 10 : 2;
  }

  #startFrame(): void {
    const header = this.#header;
    const first = header[0];
    if ((first & 0x70) !== 0) throw new WebSocketUnframeError("reserved bits set (no extension)");
    const opcode = first & 0x0f;
    const length7 = header[1] & 0x7f;
    let length = length7;
    if (length7 === 126) length = (header[2] << 8) | header[3];
    else if (length7 === 127) {
      const view = new DataView(header.buffer, header.byteOffset, 10);
      const big = view.getBigUint64(2);
      if (big > BigInt(Number.MAX_SAFE_INTEGER)) {
        throw new WebSocketUnframeError("frame length over 2^53");
      }
      length = Number(big);
    }
    this.#headerLength = 0;
    if (opcode <= 2) {
      this.#controlOpcode = 0;
      this.#left = length;
      return;
    }
    if (opcode < 8 || opcode > 10) throw new WebSocketUnframeError(`reserved opcode ${opcode}`);
    if (length > 125 || (first & 0x80) === 0) {
      throw new WebSocketUnframeError("a control frame over 125 bytes or fragmented");
    }
    this.#controlOpcode = opcode;
    this.#controlLength = 0;
    this.#left = length;
    if (length === 0) this.#endControl();
  }

  #endControl(): void {
    this.#controls.push({
      opcode: this.#controlOpcode as 8 | 9 | 10,
      payload: this.#control.slice(0, this.#controlLength),
    });
    this.#controlOpcode = 0;
  }
}
