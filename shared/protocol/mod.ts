// This module is browser compatible.
/**
 * Sustenet wire protocol v1 (docs/PROTOCOL.md): frames, packet types, the packet codec, error
 * codes and the MoveState layout. Re-exports only; the byte reader/writer and the per-packet
 * layout table are internal to this folder.
 *
 * @example Encode a packet, cut the stream into frames, decode it back
 * ```ts
 * import { decodePacket, encodePacket, FrameDecoder, Role } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const decoder = new FrameDecoder();
 * decoder.push(encodePacket({ kind: "Hello", version: 3, role: Role.Client }));
 * const frame = decoder.next();
 * assert.ok(frame !== undefined && !(frame instanceof Error));
 * assert.deepEqual(decodePacket(frame), { kind: "Hello", version: 3, role: Role.Client });
 * ```
 *
 * @module
 */

export * from "./frame.ts";
export * from "./protocol_error.ts";
export * from "./packets.ts";
export * from "./codec.ts";
export * from "./move_state.ts";
