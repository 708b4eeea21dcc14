/**
 * The DisconnectCluster frame the cluster sends a player it closes (kick, flood, shutdown),
 * with its reason cut to a length the wire holds.
 *
 * It must never throw on a reason: any string, however long or ill-formed, makes a frame.
 *
 * @module
 */

import { encodePacket } from "../shared/protocol/codec.ts";

/** Longest DisconnectCluster reason sent, in characters (str16 holds 65 535 bytes). */
export const MAX_DISCONNECT_REASON_CHARS = 1000;

/**
 * Encodes DisconnectCluster(reason), the reason cut to {@linkcode MAX_DISCONNECT_REASON_CHARS}.
 *
 * @param reason Why the player is disconnected.
 * @returns The whole encoded frame.
 *
 * @example
 * ```ts
 * import { disconnectFrame, MAX_DISCONNECT_REASON_CHARS } from "./disconnect_frame.ts";
 * import { decodePacket } from "../shared/protocol/codec.ts";
 * import { FrameDecoder } from "../shared/protocol/frame.ts";
 * import assert from "node:assert/strict";
 *
 * const decoder = new FrameDecoder({ maxFrameBytes: 4096 });
 * decoder.push(disconnectFrame("x".repeat(5000)));
 * const frame = decoder.next();
 * assert.ok(frame !== undefined && !(frame instanceof Error));
 * const packet = decodePacket(frame);
 * assert.ok(!(packet instanceof Error));
 * assert.equal(packet.kind, "DisconnectCluster");
 * assert.equal(packet.kind === "DisconnectCluster" && packet.reason.length, MAX_DISCONNECT_REASON_CHARS);
 * ```
 */
export function disconnectFrame(reason: string): Uint8Array {
  // Cut, then mend a surrogate pair the cut may have split: the encoder refuses lone ones.
  return encodePacket({
    kind: "DisconnectCluster",
    reason: String(reason).slice(0, MAX_DISCONNECT_REASON_CHARS).toWellFormed(),
  });
}
