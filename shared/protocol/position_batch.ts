// This module is browser compatible.
/**
 * PositionBatch (0x2F, docs/PROTOCOL.md "0x2F PositionBatch"): the quantized form of MoveBatch
 * that a cluster sends instead when `[cluster.fragments] position_format = "quantized"`. Each
 * entry is 11 bytes instead of MoveBatch's 17 to 33, so a player seeing ~40 others at 20 Hz
 * receives under 10 KB/s.
 *
 * ```
 * payload = u16 count | count × (u32 clientId | u16 qx | u16 qz | i16 qy | u8 qyaw)
 * ```
 *
 * x and z are quantized over the world bounds (65,535 steps per axis), y in 1/32 units clamped
 * to [-1024, 1023.97], yaw in 1/256 turns; velocity is not carried. A new packet kind rather
 * than a change to MoveBatch: MoveBatch's bytes are unchanged, and a client asks for this one by
 * configuration only.
 *
 * The format is stateless (no delta against what a receiver saw before), so one encoded block
 * per fragment is shared by every receiver, as with MoveBatch.
 *
 * @module
 */

import { SustenetError } from "../errors.ts";
import type { MoveState } from "./move_state.ts";

/**
 * The PositionBatch packet type byte.
 *
 * @example
 * ```ts
 * import { decodePositionBatch, encodePositionBatch, POSITION_BATCH_TYPE } from "./position_batch.ts";
 * import { encodeFrame, FrameDecoder } from "./frame.ts";
 * import assert from "node:assert/strict";
 * // The sender frames the payload under this type; the receiver dispatches on it.
 * const bounds = { minX: 0, minZ: 0, maxX: 64, maxZ: 64 };
 * const payload = encodePositionBatch([{ clientId: 9, state: { x: 8, y: 0, z: 8 } }], bounds);
 * const decoder = new FrameDecoder();
 * decoder.push(encodeFrame(POSITION_BATCH_TYPE, payload));
 * const frame = decoder.next();
 * assert.ok(frame !== undefined && !(frame instanceof Error));
 * assert.equal(frame.type, POSITION_BATCH_TYPE);
 * assert.equal(decodePositionBatch(frame.payload, bounds)[0].clientId, 9);
 * ```
 */
export const POSITION_BATCH_TYPE = 0x2f;

/**
 * Bytes of one PositionBatch entry.
 *
 * @example
 * ```ts
 * import { encodePositionBatch, POSITION_ENTRY_BYTES } from "./position_batch.ts";
 * import assert from "node:assert/strict";
 * // Sizing a batch: a u16 count, then fixed-size entries.
 * const bounds = { minX: 0, minZ: 0, maxX: 64, maxZ: 64 };
 * const entries = [1, 2, 3].map((clientId) => ({ clientId, state: { x: 1, y: 0, z: 1 } }));
 * assert.equal(encodePositionBatch(entries, bounds).length, 2 + 3 * POSITION_ENTRY_BYTES);
 * // How many entries one 1200-byte payload carries.
 * assert.equal(Math.floor((1200 - 2) / POSITION_ENTRY_BYTES), 108);
 * ```
 */
export const POSITION_ENTRY_BYTES = 11;

/** Steps per unit of y. */
const Y_STEPS_PER_UNIT = 32;
/** Largest x/z step index (u16). */
const XZ_MAX = 0xffff;
const TURN = 2 * Math.PI;

/** The world rectangle x/z are quantized over (a grid's bounds). */
export interface PositionBounds {
  /** Smallest x. */
  readonly minX: number;
  /** Smallest z. */
  readonly minZ: number;
  /** Largest x. */
  readonly maxX: number;
  /** Largest z. */
  readonly maxZ: number;
}

/**
 * The largest error of each decoded field, in world units (yaw in radians): half a step.
 *
 * @param bounds The world bounds.
 *
 * @example A 2048 × 2048 world
 * ```ts
 * import { positionPrecision } from "./position_batch.ts";
 * import assert from "node:assert/strict";
 *
 * const p = positionPrecision({ minX: 0, minZ: 0, maxX: 2048, maxZ: 2048 });
 * assert.ok(p.x < 0.016 && p.z < 0.016);
 * assert.equal(p.y, 1 / 64);
 * ```
 */
export function positionPrecision(
  bounds: PositionBounds,
): { readonly x: number; readonly y: number; readonly z: number; readonly yaw: number } {
  return {
    x: (bounds.maxX - bounds.minX) / XZ_MAX / 2,
    z: (bounds.maxZ - bounds.minZ) / XZ_MAX / 2,
    y: 1 / Y_STEPS_PER_UNIT / 2,
    yaw: TURN / 256 / 2,
  };
}

function quantize(v: number, min: number, max: number): number {
  const c = v < min ? min : v > max ? max : v;
  return Math.round((c - min) / (max - min) * XZ_MAX);
}

/**
 * Writes one entry at `at`; returns the offset after it. Positions outside the bounds are
 * clamped onto them (a grid stores them clamped already).
 *
 * @param view Where to write.
 * @param at Offset.
 * @param clientId Whose state.
 * @param state The state (velocity is dropped, a missing yaw is sent as 0).
 * @param bounds The world bounds.
 *
 * @example
 * ```ts
 * import { writePositionEntry } from "./position_batch.ts";
 * import assert from "node:assert/strict";
 *
 * const view = new DataView(new ArrayBuffer(11));
 * const end = writePositionEntry(view, 0, 7, { x: 1024, y: 2, z: 0 }, {
 *   minX: 0, minZ: 0, maxX: 2048, maxZ: 2048,
 * });
 * assert.equal(end, 11);
 * assert.equal(view.getUint32(0), 7);
 * ```
 */
export function writePositionEntry(
  view: DataView,
  at: number,
  clientId: number,
  state: MoveState,
  bounds: PositionBounds,
): number {
  view.setUint32(at, clientId);
  view.setUint16(at + 4, quantize(state.x, bounds.minX, bounds.maxX));
  view.setUint16(at + 6, quantize(state.z, bounds.minZ, bounds.maxZ));
  const qy = Math.round(state.y * Y_STEPS_PER_UNIT);
  view.setInt16(at + 8, qy < -32768 ? -32768 : qy > 32767 ? 32767 : qy);
  const yaw = state.yaw ?? 0;
  // Wrapped into [0, 256): a yaw of -π/2 and one of 3π/2 encode alike.
  view.setUint8(at + 10, ((Math.round(yaw / TURN * 256) % 256) + 256) % 256);
  return at + POSITION_ENTRY_BYTES;
}

/** One decoded PositionBatch entry. */
export interface PositionEntry {
  /** Whose state. */
  readonly clientId: number;
  /** The dequantized state: x, y, z and yaw in [0, 2π). */
  readonly state: Required<Pick<MoveState, "x" | "y" | "z" | "yaw">>;
}

/**
 * Reads one entry at `at` (the caller checks there are 11 bytes).
 *
 * @param view The bytes.
 * @param at Offset of the entry.
 * @param bounds The world bounds the sender quantized over.
 *
 * @example
 * ```ts
 * import { readPositionEntry, writePositionEntry } from "./position_batch.ts";
 * import assert from "node:assert/strict";
 *
 * const bounds = { minX: 0, minZ: 0, maxX: 2048, maxZ: 2048 };
 * const view = new DataView(new ArrayBuffer(11));
 * writePositionEntry(view, 0, 7, { x: 100, y: 2, z: 50, yaw: Math.PI }, bounds);
 * const e = readPositionEntry(view, 0, bounds);
 * assert.equal(e.clientId, 7);
 * assert.ok(Math.abs(e.state.x - 100) < 0.016);
 * assert.equal(e.state.yaw, Math.PI);
 * ```
 */
export function readPositionEntry(
  view: DataView,
  at: number,
  bounds: PositionBounds,
): PositionEntry {
  return {
    clientId: view.getUint32(at),
    state: {
      x: bounds.minX + view.getUint16(at + 4) * (bounds.maxX - bounds.minX) / XZ_MAX,
      z: bounds.minZ + view.getUint16(at + 6) * (bounds.maxZ - bounds.minZ) / XZ_MAX,
      y: view.getInt16(at + 8) / Y_STEPS_PER_UNIT,
      yaw: view.getUint8(at + 10) * TURN / 256,
    },
  };
}

/** A PositionBatch payload that does not parse. */
export class PositionBatchError extends SustenetError {
  /** @param message What is wrong. */
  constructor(message: string) {
    super("bad_position_batch", message);
  }
}

/**
 * Encodes a whole PositionBatch payload (`u16 count | entries`).
 *
 * @param entries The entries (at most 65,535).
 * @param bounds The world bounds.
 * @throws {RangeError} If there are more than 65,535 entries.
 *
 * @example
 * ```ts
 * import { encodePositionBatch } from "./position_batch.ts";
 * import assert from "node:assert/strict";
 *
 * const payload = encodePositionBatch([{ clientId: 1, state: { x: 0, y: 0, z: 0 } }], {
 *   minX: 0, minZ: 0, maxX: 64, maxZ: 64,
 * });
 * assert.equal(payload.length, 2 + 11);
 * ```
 */
export function encodePositionBatch(
  entries: readonly { readonly clientId: number; readonly state: MoveState }[],
  bounds: PositionBounds,
): Uint8Array {
  if (entries.length > 0xffff) {
    throw new RangeError(`a PositionBatch holds at most 65535 entries, got ${entries.length}`);
  }
  const out = new Uint8Array(2 + entries.length * POSITION_ENTRY_BYTES);
  const view = new DataView(out.buffer);
  view.setUint16(0, entries.length);
  let at = 2;
  for (const e of entries) at = writePositionEntry(view, at, e.clientId, e.state, bounds);
  return out;
}

/**
 * Decodes a PositionBatch payload.
 *
 * @param payload The payload (after the type byte).
 * @param bounds The world bounds the sender quantized over.
 * @throws {PositionBatchError} If its length does not match its count.
 *
 * @example
 * ```ts
 * import { decodePositionBatch, encodePositionBatch } from "./position_batch.ts";
 * import assert from "node:assert/strict";
 *
 * const bounds = { minX: 0, minZ: 0, maxX: 64, maxZ: 64 };
 * const payload = encodePositionBatch([{ clientId: 9, state: { x: 32, y: 1, z: 16 } }], bounds);
 * const [e] = decodePositionBatch(payload, bounds);
 * assert.equal(e.clientId, 9);
 * assert.ok(Math.abs(e.state.x - 32) < 0.001);
 * ```
 */
export function decodePositionBatch(payload: Uint8Array, bounds: PositionBounds): PositionEntry[] {
  if (payload.length < 2) throw new PositionBatchError("PositionBatch shorter than its count");
  const view = new DataView(payload.buffer, payload.byteOffset, payload.length);
  const count = view.getUint16(0);
  if (payload.length !== 2 + count * POSITION_ENTRY_BYTES) {
    throw new PositionBatchError(
      `PositionBatch of ${payload.length} bytes does not hold ${count} entries of ${POSITION_ENTRY_BYTES}`,
    );
  }
  const out: PositionEntry[] = [];
  for (let i = 0; i < count; i++) {
    out.push(readPositionEntry(view, 2 + i * POSITION_ENTRY_BYTES, bounds));
  }
  return out;
}
