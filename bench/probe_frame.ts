// This module is browser compatible.
/**
 * The frames the load generators send: a plugin command frame with a 32-byte payload carrying
 * its send time (`f64` ms, `performance.timeOrigin + performance.now()` of the sender), the
 * sender's index and a sequence number, zero-padded. The relay plugin fans out
 * {@linkcode RELAY_COMMAND}; the echo plugin (`plugins/echo.ts`) answers
 * {@linkcode ECHO_COMMAND}.
 *
 * It must never allocate more than the one frame it returns.
 *
 * @module
 */

import { FRAME_HEADER_BYTES, writeFrameHeader } from "../shared/protocol/frame.ts";

export { ECHO_COMMAND } from "../plugins/echo.ts";
export { RELAY_COMMAND } from "./relay_plugin.ts";
/** Payload bytes of a probe frame, as issue 9 specifies. */
export const PROBE_PAYLOAD_BYTES = 32;
/** Bytes of a whole probe frame: header, type, payload. */
export const PROBE_FRAME_BYTES = FRAME_HEADER_BYTES + 1 + PROBE_PAYLOAD_BYTES;

/**
 * Builds one probe frame.
 *
 * @param command The plugin command (type byte).
 * @param sentMs Send time, ms since the epoch (fractional).
 * @param sender The sending client's index.
 * @param sequence A per-sender counter.
 *
 * @example
 * ```ts
 * import { probeFrame, readProbeSentMs } from "./probe_frame.ts";
 * import assert from "node:assert/strict";
 *
 * const frame = probeFrame(0x90, 1234.5, 7, 1);
 * assert.equal(frame.length, 37);
 * assert.equal(frame[4], 0x90);
 * assert.equal(readProbeSentMs(new DataView(frame.buffer), 4), 1234.5);
 * ```
 */
export function probeFrame(
  command: number,
  sentMs: number,
  sender: number,
  sequence: number,
): Uint8Array {
  const frame = new Uint8Array(PROBE_FRAME_BYTES);
  writeFrameHeader(frame, 0, 1 + PROBE_PAYLOAD_BYTES, command);
  const view = new DataView(frame.buffer);
  view.setFloat64(FRAME_HEADER_BYTES + 1, sentMs);
  view.setUint32(FRAME_HEADER_BYTES + 9, sender >>> 0);
  view.setUint32(FRAME_HEADER_BYTES + 13, sequence >>> 0);
  return frame;
}

/**
 * Reads the send time of a probe frame visited at `offset` (its type byte).
 *
 * @param view The view holding the frame.
 * @param offset Offset of the type byte.
 */
export function readProbeSentMs(view: DataView, offset: number): number {
  return view.getFloat64(offset + 1);
}

/**
 * The current time in the probes' clock: ms since the epoch, fractional, comparable between
 * processes of one machine.
 */
export function probeNowMs(): number {
  return performance.timeOrigin + performance.now();
}
