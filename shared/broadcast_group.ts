// This module is browser compatible.

/**
 * {@linkcode BroadcastGroup}: a standing audience of {@linkcode BroadcastMember}s (a cluster's
 * players) that frames are broadcast to once per event-loop turn.
 *
 * Queuing a broadcast frame on every receiver costs work per frame per receiver: R² for R
 * players who each broadcast. A group instead copies each frame once into a shared turn buffer
 * and, at the end of the turn, hands every member one view of everything broadcast since it was
 * last served (one piece per member per turn, plus one per frame it was left out of). A sender
 * left out of its own frame (`except`) keeps the bytes before it as a held piece and skips the
 * frame; the held pieces go out with the rest of its share, in the same write. Anything sent to a
 * member directly first takes the member's share of the buffer, so each connection still sees
 * frames in the order they were sent.
 *
 * @module
 */

import { SustenetError } from "./errors.ts";
import { FRAME_HEADER_BYTES, writeFrameHeader } from "./protocol/frame.ts";
import { ErrorCode } from "./protocol/protocol_error.ts";
import type { CloseInfo, CloseReason } from "./frame_session.ts";

/**
 * What a {@linkcode BroadcastGroup} needs of a member: a bounded queue to put bytes on, a
 * close, and the `group` slot the group keeps (every `FrameTransport` is one).
 */
export interface BroadcastMember {
  /** The group this member is in; set by {@linkcode BroadcastGroup.add} and `delete` only. */
  group: BroadcastGroup | undefined;
  /** The member's queue bound. */
  readonly maxQueueBytes: number;
  /** Queues whole frames; `false` if closed or over the bound (it then closes itself). */
  send(frameBytes: Uint8Array, frames?: number): boolean;
  /** Closes the member, sending `Error(reason)` first. */
  close(reason?: CloseReason): Promise<CloseInfo>;
}

/** First size of a group's turn buffer. */
const INITIAL_TURN_BYTES = 16 * 1024;

/**
 * Largest turn buffer: a turn that broadcasts more is handed out in several pieces (and no
 * member is handed more than this at once).
 */
const MAX_TURN_BYTES = 256 * 1024;

/** Where a member stands in the current turn buffer. */
interface Member {
  /** Bytes of the turn buffer before this offset are handed over (or skipped). */
  cursor: number;
  /** Frames of the turn buffer before `cursor`. */
  frames: number;
  /**
   * Views of this member's share before frames it was left out of (`except`), not handed over
   * yet: they go out with the rest at the next hand-out, so a sender gets no extra write for
   * being skipped.
   */
  held: Uint8Array[];
  /** Frames in `held`. */
  heldFrames: number;
}

/** Options of {@linkcode BroadcastGroup}. */
export interface BroadcastGroupOptions {
  /**
   * Least time between two hand-outs of the group's broadcasts, in ms. 0 hands them out at the
   * end of every event-loop turn that broadcast something. More makes fewer, larger writes (and
   * records) under load for at most that much added latency: a broadcast within this time of
   * the last hand-out waits until it has passed; one after a quiet period still goes out at the
   * end of its turn. Direct sends to a member are never delayed (they take its share first).
   *
   * @default {0}
   */
  readonly flushIntervalMs?: number;
  /**
   * Scales the interval with the audience: the interval used is
   * `min(flushIntervalMs, members × flushMsPerMember)`. What batching saves is one write per
   * member per hand-out, so a small group hands out almost every turn (low latency, few writes
   * anyway) and a crowded one waits up to `flushIntervalMs`. Unset: always `flushIntervalMs`.
   *
   * @default {Infinity}
   */
  readonly flushMsPerMember?: number;
}

/** Error codes of {@linkcode BroadcastGroupError}. */
export type BroadcastGroupErrorCode = "connection_in_another_group";

/** A connection cannot join a group (it is in another one). */
export class BroadcastGroupError extends SustenetError {
  /** Always `"connection_in_another_group"`. */
  declare readonly code: BroadcastGroupErrorCode;

  /**
   * @param code What went wrong.
   * @param message A description.
   */
  constructor(code: BroadcastGroupErrorCode, message: string) {
    super(code, message);
  }
}

/**
 * A set of connections that receive the same broadcasts, batched per event-loop turn.
 *
 * Members get every frame broadcast while they are members (but those they are `except`ed from),
 * in order, interleaved correctly with what is sent to them directly. A member whose queue
 * overflows is closed with `Error(SlowConsumer)` and leaves the group, as with
 * {@linkcode BroadcastMember.send}.
 *
 * @example
 * ```ts
 * import { BroadcastGroup } from "./broadcast_group.ts";
 * import { connectFrames, listenFrames } from "./transport.ts";
 * import assert from "node:assert/strict";
 *
 * const server = listenFrames({ port: 0, onFrame: () => {} });
 * const got: number[] = [];
 * const done = Promise.withResolvers<void>();
 * const client = await connectFrames({
 *   port: server.addr.port,
 *   onFrame: (frame) => {
 *     got.push(frame.payload[0]);
 *     if (got.length === 2) done.resolve();
 *   },
 * });
 * while (server.connections.size === 0) await new Promise((r) => setTimeout(r, 5));
 * const group = new BroadcastGroup();
 * for (const connection of server.connections) group.add(connection);
 * group.broadcastFrame(0x80, new Uint8Array([1]));
 * group.broadcastFrame(0x80, new Uint8Array([2]));
 * await done.promise;
 * assert.deepEqual(got, [1, 2]);
 * await client.close();
 * await server.close();
 * ```
 */
export class BroadcastGroup {
  readonly #flushIntervalMs: number;
  readonly #flushMsPerMember: number;
  readonly #members = new Map<BroadcastMember, Member>();
  /** This turn's broadcast bytes: `#used` bytes holding `#frames` whole frames. */
  #buffer = new Uint8Array(0);
  #used = 0;
  #frames = 0;
  #flushScheduled = false;
  /** Bytes the last full turn used, to size the next turn's buffer. */
  #turnBytes = INITIAL_TURN_BYTES;
  /** When the last scheduled hand-out ran (`performance.now()`). */
  #lastFlush = -Infinity;
  /** The pending delayed hand-out, if any. */
  #timer: ReturnType<typeof setTimeout> | undefined;

  /**
   * Makes an empty group.
   *
   * @param options Flush interval.
   * @throws {RangeError} If `flushIntervalMs` is negative or not finite, or `flushMsPerMember`
   * negative or NaN.
   */
  constructor(options: BroadcastGroupOptions = {}) {
    const interval = options.flushIntervalMs ?? 0;
    if (!Number.isFinite(interval) || interval < 0) {
      throw new RangeError(`flushIntervalMs must be a finite number ≥ 0, got ${interval}`);
    }
    this.#flushIntervalMs = interval;
    const perMember = options.flushMsPerMember ?? Infinity;
    if (Number.isNaN(perMember) || perMember < 0) {
      throw new RangeError(`flushMsPerMember must be a number ≥ 0, got ${perMember}`);
    }
    this.#flushMsPerMember = perMember;
  }

  /** Members now. */
  get size(): number {
    return this.#members.size;
  }

  /**
   * Whether `connection` is a member.
   *
   * @param connection A connection.
   */
  has(connection: BroadcastMember): boolean {
    return this.#members.has(connection);
  }

  /**
   * Adds a member: it receives what is broadcast from now on (not what was broadcast earlier in
   * this turn).
   *
   * @param connection The connection.
   * @returns `false` if it was already a member.
   * @throws {BroadcastGroupError} `connection_in_another_group` if it is in another group.
   */
  add(connection: BroadcastMember): boolean {
    if (connection.group === this) return false;
    if (connection.group !== undefined) {
      throw new BroadcastGroupError(
        "connection_in_another_group",
        "a connection can be in one broadcast group at a time",
      );
    }
    this.#members.set(connection, {
      cursor: this.#used,
      frames: this.#frames,
      held: [],
      heldFrames: 0,
    });
    connection.group = this;
    return true;
  }

  /**
   * Removes a member, first handing it what was broadcast while it was one.
   *
   * @param connection The connection.
   * @returns `false` if it was not a member.
   */
  delete(connection: BroadcastMember): boolean {
    const member = this.#members.get(connection);
    if (member === undefined) return false;
    this.#handOut(connection, member, this.#used, this.#frames);
    this.#leave(connection);
    return true;
  }

  /**
   * Broadcasts whole encoded frames to every member but `except`. The bytes are copied once;
   * the caller may reuse its array.
   *
   * @param frameBytes One or more whole frames (`u32 length | u8 type | payload`).
   * @param except A member to leave out (typically the sender); ignored if not a member.
   * @param frames How many frames `frameBytes` holds, for the connections' `framesOut`.
   */
  broadcast(frameBytes: Uint8Array, except?: BroadcastMember, frames = 1): void {
    if (frameBytes.length === 0) return;
    const skip = this.#skipStart(except);
    const at = this.#reserve(frameBytes.length);
    this.#buffer.set(frameBytes, at);
    this.#frames += frames;
    if (skip !== undefined) this.#skipEnd(skip);
  }

  /**
   * Broadcasts one frame given as type and payload, encoded straight into the turn buffer (no
   * frame array): the same bytes as `broadcast(encodeFrame(type, payload), except)`.
   *
   * @param type The packet type byte, an integer 0..255.
   * @param payload The payload (copied).
   * @param except A member to leave out (typically the sender); ignored if not a member.
   * @throws {RangeError} If `type` is not a byte or the payload does not fit a u32 length.
   */
  broadcastFrame(type: number, payload: Uint8Array, except?: BroadcastMember): void {
    if (!Number.isInteger(type) || type < 0 || type > 0xff) {
      throw new RangeError(`frame type must be an integer 0..255, got ${type}`);
    }
    if (payload.length >= 0xffff_ffff) {
      throw new RangeError(`frame payload of ${payload.length} bytes exceeds the u32 length field`);
    }
    const skip = this.#skipStart(except);
    const length = FRAME_HEADER_BYTES + 1 + payload.length;
    const at = this.#reserve(length);
    writeFrameHeader(this.#buffer, at, length - FRAME_HEADER_BYTES, type);
    this.#buffer.set(payload, at + FRAME_HEADER_BYTES + 1);
    this.#frames++;
    if (skip !== undefined) this.#skipEnd(skip);
  }

  /**
   * Hands one member its share of this turn's broadcasts now. Connections call it before
   * queuing anything sent to them directly; a group's own end-of-turn flush does the rest.
   *
   * @param connection A connection (nothing happens if it is not a member).
   */
  catchUp(connection: BroadcastMember): void {
    const member = this.#members.get(connection);
    if (member !== undefined) this.#handOut(connection, member, this.#used, this.#frames);
  }

  /**
   * Hands every member its share of this turn's broadcasts and starts a fresh turn buffer. Runs
   * by itself at the end of each turn that broadcast something (or once `flushIntervalMs` has
   * passed); call it to hand out at once, e.g. before stopping (it cancels a pending timer).
   */
  flush(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#flushScheduled = false;
    }
    const used = this.#used;
    if (used === 0) return;
    if (this.#flushIntervalMs > 0) this.#lastFlush = performance.now();
    const buffer = this.#buffer;
    const frames = this.#frames;
    // A fresh buffer first: views of this one are queued on members until written, and a
    // member's catch-up during the hand-out (a close, say) must find nothing left to send.
    this.#turnBytes = used;
    this.#buffer = new Uint8Array(0);
    this.#used = 0;
    this.#frames = 0;
    for (const [connection, member] of this.#members) {
      const from = member.cursor;
      const skipped = member.frames;
      member.cursor = 0;
      member.frames = 0;
      if (member.held.length > 0 && !this.#sendHeld(connection, member)) continue;
      if (from < used) this.#send(connection, buffer.subarray(from, used), frames - skipped);
    }
  }

  /** Queues `member`'s held pieces, then its pending bytes up to `end`, on its connection. */
  #handOut(connection: BroadcastMember, member: Member, end: number, endFrames: number): void {
    const from = member.cursor;
    const frames = endFrames - member.frames;
    // Moved on before anything is sent: `send` catches the member up, which must find nothing.
    if (from < end) {
      member.cursor = end;
      member.frames = endFrames;
    }
    if (member.held.length > 0 && !this.#sendHeld(connection, member)) return;
    if (from < end) this.#send(connection, this.#buffer.subarray(from, end), frames);
  }

  /** Queues a member's held pieces; `false` if it left on the way. */
  #sendHeld(connection: BroadcastMember, member: Member): boolean {
    // Taken off first: `send` catches the member up, which must not find them again.
    const held = member.held;
    const heldFrames = member.heldFrames;
    member.held = [];
    member.heldFrames = 0;
    for (let i = 0; i < held.length; i++) {
      // The frame count rides on the first piece: only the sum is counted.
      if (!this.#send(connection, held[i], i === 0 ? heldFrames : 0)) return false;
    }
    return true;
  }

  /**
   * Queues a member's share; one it cannot take (closed, or over its queue bound) leaves.
   * Returns whether it was queued.
   */
  #send(connection: BroadcastMember, bytes: Uint8Array, frames: number): boolean {
    if (bytes.length > connection.maxQueueBytes) {
      // `send` throws for this (a caller's error); here it is the member's bound that is small.
      void connection.close({
        code: ErrorCode.SlowConsumer,
        message: `outgoing queue above ${connection.maxQueueBytes} bytes`,
      });
    } else if (connection.send(bytes, frames)) {
      return true;
    }
    this.#leave(connection);
    return false;
  }

  #leave(connection: BroadcastMember): void {
    this.#members.delete(connection);
    if (connection.group === this) connection.group = undefined;
  }

  /**
   * Holds `except`'s share up to here, before its own frame goes in (handed out with the rest
   * of its share); `undefined` if not a member.
   */
  #skipStart(except: BroadcastMember | undefined): Member | undefined {
    if (except === undefined) return undefined;
    const member = this.#members.get(except);
    if (member === undefined) return undefined;
    const from = member.cursor;
    const end = this.#used;
    if (from < end) {
      member.held.push(this.#buffer.subarray(from, end));
      member.heldFrames += this.#frames - member.frames;
      member.cursor = end;
      member.frames = this.#frames;
    }
    return member;
  }

  /** Moves the left-out member past the frame just added. */
  #skipEnd(member: Member): void {
    member.cursor = this.#used;
    member.frames = this.#frames;
  }

  /** Room for `length` more bytes; returns where they go and counts them as used. */
  #reserve(length: number): number {
    if (this.#used + length > this.#buffer.length) {
      // A full buffer is handed out mid-turn rather than moved (views of it may be queued).
      if (this.#used > 0) this.flush();
      const size = Math.min(MAX_TURN_BYTES, Math.max(INITIAL_TURN_BYTES, this.#turnBytes * 2));
      this.#buffer = new Uint8Array(Math.max(size, length));
    }
    const at = this.#used;
    this.#used = at + length;
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      const perMember = this.#flushMsPerMember;
      const interval = perMember === Infinity
        ? this.#flushIntervalMs
        : Math.min(this.#flushIntervalMs, this.#members.size * perMember);
      const wait = interval > 0 ? this.#lastFlush + interval - performance.now() : 0;
      // After every frame handler of this turn has run, as connections schedule their writes.
      if (wait <= 0) queueMicrotask(this.#endTurn);
      // Rounded up: timers truncate a fractional delay, which would flush before the interval.
      else this.#timer = setTimeout(this.#endTurn, Math.ceil(wait));
    }
    return at;
  }

  readonly #endTurn = (): void => {
    this.#flushScheduled = false;
    this.#timer = undefined;
    this.flush();
  };
}
