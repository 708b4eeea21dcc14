// This module is browser compatible.
/**
 * The MoveState wire layout (docs/PROTOCOL.md "MoveState"): a player's position, optional yaw
 * and optional velocity, as carried by Move (0x2A), MoveBatch (0x2B) and Spawn (0x2C).
 *
 * ```
 * u8 flags | f32 x | f32 y | f32 z | [f32 yaw if flags & 1] | [f32 vx, vy, vz if flags & 2]
 * ```
 *
 * This module only encodes and decodes: it never validates game values (NaN, Infinity and
 * out-of-world positions are encoded as given; the cluster decides what to accept), and it never
 * allocates a buffer — callers pass a DataView so hot paths can reuse one.
 *
 * @module
 */

/** A player's movement state: position (y is height), optional yaw, optional velocity. */
export interface MoveState {
  /** Position on the x axis. */
  readonly x: number;
  /** Height. */
  readonly y: number;
  /** Position on the z axis. */
  readonly z: number;
  /** Facing angle; encoded only when defined. */
  readonly yaw?: number;
  /** Velocity x; velocity is encoded only when `vx`, `vy` and `vz` are all defined. */
  readonly vx?: number;
  /** Velocity y. */
  readonly vy?: number;
  /** Velocity z. */
  readonly vz?: number;
}

/**
 * Flag bit 0: an `f32 yaw` follows the position.
 *
 * @example
 * ```ts
 * import { MOVE_FLAG_YAW, moveStateFlags } from "./move_state.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(moveStateFlags({ x: 0, y: 0, z: 0, yaw: 1.5 }) & MOVE_FLAG_YAW, MOVE_FLAG_YAW);
 * ```
 */
export const MOVE_FLAG_YAW = 1;

/**
 * Flag bit 1: `f32 vx, vy, vz` follow (after yaw, if present).
 *
 * @example
 * ```ts
 * import { MOVE_FLAG_VELOCITY, moveStateFlags } from "./move_state.ts";
 * import assert from "node:assert/strict";
 *
 * const running = { x: 0, y: 0, z: 0, vx: 3, vy: 0, vz: 0 };
 * assert.equal(moveStateFlags(running) & MOVE_FLAG_VELOCITY, MOVE_FLAG_VELOCITY);
 * ```
 */
export const MOVE_FLAG_VELOCITY = 2;

/** Every flag bit a valid MoveState may set; any other bit is a decode error. */
const KNOWN_FLAGS = MOVE_FLAG_YAW | MOVE_FLAG_VELOCITY;

/**
 * The smallest encoded MoveState: flags plus x, y, z.
 *
 * @example
 * ```ts
 * import { MOVE_STATE_MIN_SIZE, moveStateSize } from "./move_state.ts";
 * import assert from "node:assert/strict";
 *
 * // A position alone: flags and x, y, z.
 * assert.equal(moveStateSize({ x: 1, y: 2, z: 3 }), MOVE_STATE_MIN_SIZE);
 * ```
 */
export const MOVE_STATE_MIN_SIZE = 13;

/**
 * The largest encoded MoveState: flags, position, yaw and velocity.
 *
 * @example
 * ```ts
 * import { MOVE_STATE_MAX_SIZE, moveStateSize } from "./move_state.ts";
 * import assert from "node:assert/strict";
 *
 * // Position, yaw and velocity: the most a MoveState takes (e.g. to size a batch buffer).
 * const full = { x: 1, y: 2, z: 3, yaw: 0.5, vx: 1, vy: 0, vz: 1 };
 * assert.equal(moveStateSize(full), MOVE_STATE_MAX_SIZE);
 * ```
 */
export const MOVE_STATE_MAX_SIZE = 29;

function hasVelocity(s: MoveState): boolean {
  return s.vx !== undefined && s.vy !== undefined && s.vz !== undefined;
}

/**
 * The flags byte a state encodes with.
 *
 * @param s The state.
 * @returns `MOVE_FLAG_YAW` and/or `MOVE_FLAG_VELOCITY` bits.
 *
 * @example
 * ```ts
 * import { moveStateFlags } from "./move_state.ts";
 * import assert from "node:assert/strict";
 * assert.equal(moveStateFlags({ x: 0, y: 0, z: 0, yaw: 1, vx: 1, vy: 0 }), 1); // vz missing
 * ```
 */
export function moveStateFlags(s: MoveState): number {
  return (s.yaw !== undefined ? MOVE_FLAG_YAW : 0) | (hasVelocity(s) ? MOVE_FLAG_VELOCITY : 0);
}

/**
 * The number of bytes `s` encodes to (13, 17, 25 or 29).
 *
 * @param s The state.
 *
 * @example
 * ```ts
 * import { moveStateSize } from "./move_state.ts";
 * import assert from "node:assert/strict";
 * assert.equal(moveStateSize({ x: 1, y: 2, z: 3 }), 13);
 * assert.equal(moveStateSize({ x: 1, y: 2, z: 3, yaw: 0.5, vx: 0, vy: 0, vz: 0 }), 29);
 * ```
 */
export function moveStateSize(s: MoveState): number {
  return MOVE_STATE_MIN_SIZE + (s.yaw !== undefined ? 4 : 0) + (hasVelocity(s) ? 12 : 0);
}

/**
 * Writes `s` at `offset` and returns the offset just past it.
 *
 * Checks room first, so a too-small view throws before anything is written.
 *
 * @param view Destination.
 * @param offset Byte offset in `view`.
 * @param s The state to encode; numbers are rounded to f32 as the wire requires.
 * @returns The new offset (`offset + moveStateSize(s)`).
 * @throws {RangeError} If the state does not fit in `view` at `offset`.
 *
 * @example
 * ```ts
 * import { readMoveState, writeMoveState } from "./move_state.ts";
 * import assert from "node:assert/strict";
 *
 * const view = new DataView(new ArrayBuffer(32));
 * const end = writeMoveState(view, 0, { x: 1.5, y: 0, z: -2, yaw: 0.25 });
 * assert.equal(end, 17);
 * assert.deepEqual(readMoveState(view, 0), {
 *   state: { x: 1.5, y: 0, z: -2, yaw: 0.25 },
 *   offset: 17,
 * });
 * ```
 */
export function writeMoveState(view: DataView, offset: number, s: MoveState): number {
  const flags = moveStateFlags(s);
  const size = moveStateSize(s);
  if (offset < 0 || offset + size > view.byteLength) {
    throw new RangeError(
      `MoveState of ${size} bytes does not fit at offset ${offset} of a ${view.byteLength}-byte view`,
    );
  }
  view.setUint8(offset, flags);
  view.setFloat32(offset + 1, s.x);
  view.setFloat32(offset + 5, s.y);
  view.setFloat32(offset + 9, s.z);
  let at = offset + 13;
  if (flags & MOVE_FLAG_YAW) {
    view.setFloat32(at, s.yaw as number);
    at += 4;
  }
  if (flags & MOVE_FLAG_VELOCITY) {
    view.setFloat32(at, s.vx as number);
    view.setFloat32(at + 4, s.vy as number);
    view.setFloat32(at + 8, s.vz as number);
    at += 12;
  }
  return at;
}

/**
 * Reads a MoveState at `offset`.
 *
 * @param view Source bytes.
 * @param offset Byte offset in `view`.
 * @returns The state and the offset just past it, or `undefined` if the bytes are truncated or
 * the flags byte has an unknown bit set (the caller reports `BadPacket`).
 *
 * @example
 * ```ts
 * import { readMoveState } from "./move_state.ts";
 * import assert from "node:assert/strict";
 *
 * const bytes = Uint8Array.fromHex("00" + "3f800000" + "40000000" + "40400000");
 * assert.deepEqual(readMoveState(new DataView(bytes.buffer), 0), {
 *   state: { x: 1, y: 2, z: 3 },
 *   offset: 13,
 * });
 * assert.equal(readMoveState(new DataView(bytes.buffer, 0, 12), 0), undefined); // truncated
 * ```
 */
export function readMoveState(
  view: DataView,
  offset: number,
): { state: MoveState; offset: number } | undefined {
  if (offset < 0 || offset + MOVE_STATE_MIN_SIZE > view.byteLength) return undefined;
  const flags = view.getUint8(offset);
  if ((flags & ~KNOWN_FLAGS) !== 0) return undefined;
  const end = offset + MOVE_STATE_MIN_SIZE + (flags & MOVE_FLAG_YAW ? 4 : 0) +
    (flags & MOVE_FLAG_VELOCITY ? 12 : 0);
  if (end > view.byteLength) return undefined;
  const x = view.getFloat32(offset + 1);
  const y = view.getFloat32(offset + 5);
  const z = view.getFloat32(offset + 9);
  let at = offset + 13;
  let state: MoveState;
  if (flags === 0) {
    state = { x, y, z };
  } else {
    let yaw: number | undefined;
    if (flags & MOVE_FLAG_YAW) {
      yaw = view.getFloat32(at);
      at += 4;
    }
    if (flags & MOVE_FLAG_VELOCITY) {
      const vx = view.getFloat32(at);
      const vy = view.getFloat32(at + 4);
      const vz = view.getFloat32(at + 8);
      state = yaw === undefined ? { x, y, z, vx, vy, vz } : { x, y, z, yaw, vx, vy, vz };
    } else {
      state = { x, y, z, yaw };
    }
  }
  return { state, offset: end };
}
