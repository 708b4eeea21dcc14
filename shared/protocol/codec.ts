// This module is browser compatible.
/**
 * Encoding and decoding of protocol v1 packets (docs/PROTOCOL.md "Packet types") to and from
 * whole frames. {@linkcode encodePacket} sizes a frame exactly and allocates it once;
 * {@linkcode decodePacket} never throws on any input: malformed bytes give a
 * {@linkcode ProtocolError} value. The codec must never trust a length or count field before
 * checking it against the bytes that remain, and never keeps state between calls.
 *
 * @module
 */

import { ByteReader } from "./byte_reader.ts";
import { ByteWriter } from "./byte_writer.ts";
import {
  DEFAULT_MAX_FRAME_BYTES,
  encodeFrame,
  type Frame,
  FRAME_HEADER_BYTES,
  writeFrameHeader,
} from "./frame.ts";
import {
  type FixedKind,
  LAYOUT_BY_TYPE,
  MOVE_BATCH_OVERHEAD,
  moveEntrySize,
  PACKET_LAYOUTS,
  type PacketLayout,
  writeMoveEntry,
} from "./packet_layouts.ts";
import {
  type MoveEntry,
  type Packet,
  type PacketOf,
  PacketType,
  PLUGIN_COMMAND_MAX,
  PLUGIN_COMMAND_MIN,
} from "./packets.ts";
import { ErrorCode, ProtocolError } from "./protocol_error.ts";

function encodeFixed<K extends FixedKind>(kind: K, p: PacketOf<K>): Uint8Array {
  const layout = PACKET_LAYOUTS[kind] as PacketLayout<K>;
  const size = layout.size(p);
  const out = new Uint8Array(FRAME_HEADER_BYTES + 1 + size);
  writeFrameHeader(out, 0, size + 1, PacketType[kind]);
  const w = new ByteWriter(out, FRAME_HEADER_BYTES + 1);
  layout.write(w, p);
  return out;
}

/**
 * Encodes a packet as one whole frame, exactly sized, in a single allocation.
 *
 * @param packet The packet.
 * @returns The frame bytes (`u32 length | u8 type | payload`).
 * @throws {RangeError} If a field is out of range, naming it: an integer too large for its
 * width, a string or byte field longer than its length prefix allows, a fixed-size field of the
 * wrong size, a role / status / plugin command outside its set.
 * @throws {TypeError} If a string has a lone surrogate.
 *
 * @example
 * ```ts
 * import { encodePacket } from "./codec.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(encodePacket({ kind: "Ping", value: 7 }).toHex(), "000000050400000007");
 * assert.throws(
 *   () => encodePacket({ kind: "HelloOk", version: 3, role: 3, serverName: "x".repeat(256) }),
 *   /HelloOk.serverName/,
 * );
 * ```
 */
export function encodePacket(packet: Packet): Uint8Array {
  if (packet.kind === "Plugin") return encodePluginFrame(packet.command, packet.payload);
  return encodeFixed(packet.kind, packet);
}

/**
 * Encodes a plugin command frame: the fast path for game messages (no packet object needed).
 *
 * @param command The command, 0x80..0xFF; it is the frame's type byte.
 * @param payload Opaque bytes for the plugin.
 * @throws {RangeError} If `command` is outside 0x80..0xFF.
 *
 * @example
 * ```ts
 * import { encodePluginFrame } from "./codec.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(encodePluginFrame(0x80, new Uint8Array([1, 2])).toHex(), "00000003800102");
 * assert.throws(() => encodePluginFrame(0x2a, new Uint8Array()), RangeError);
 * ```
 */
export function encodePluginFrame(command: number, payload: Uint8Array): Uint8Array {
  assertPluginCommand(command);
  return encodeFrame(command, payload);
}

/**
 * Checks that `command` is a plugin command (an integer 0x80..0xFF), the rule
 * {@linkcode encodePluginFrame} applies; for senders that encode a plugin frame elsewhere
 * (e.g. straight into a connection's queue).
 *
 * @param command The command to check.
 * @throws {RangeError} If `command` is outside 0x80..0xFF.
 *
 * @example
 * ```ts
 * import { assertPluginCommand } from "./codec.ts";
 * import assert from "node:assert/strict";
 *
 * assertPluginCommand(0xff);
 * assert.throws(() => assertPluginCommand(0x7f), RangeError);
 * assert.throws(() => assertPluginCommand(0x80 + 0.5), RangeError);
 * ```
 */
export function assertPluginCommand(command: number): void {
  if (!Number.isInteger(command) || command < PLUGIN_COMMAND_MIN || command > PLUGIN_COMMAND_MAX) {
    throw new RangeError(`plugin command must be 0x80..0xff, got ${command}`);
  }
}

/**
 * Encodes any number of MoveBatch entries as consecutive MoveBatch frames in one array, each
 * frame within `maxFrameBytes` and 65535 entries, so a broadcast can write the bytes once.
 *
 * @param entries The entries, in order; none gives an empty array (nothing to send).
 * @param maxFrameBytes The receivers' frame bound.
 * @throws {RangeError} If `maxFrameBytes` cannot hold even one entry, or a field is out of range.
 *
 * @example Split at the frame bound
 * ```ts
 * import { decodePacket, encodeMoveBatches } from "./codec.ts";
 * import { FrameDecoder } from "./frame.ts";
 * import assert from "node:assert/strict";
 *
 * const entries = [1, 2, 3].map((clientId) => ({ clientId, state: { x: clientId, y: 0, z: 0 } }));
 * // A frame of 1 + 2 + 2 × 17 bytes holds two 17-byte entries.
 * const bytes = encodeMoveBatches(entries, 37);
 * const decoder = new FrameDecoder({ maxFrameBytes: 37 });
 * decoder.push(bytes);
 * const counts = [];
 * for (let f = decoder.next(); f !== undefined; f = decoder.next()) {
 *   assert.ok(!(f instanceof Error));
 *   const p = decodePacket(f);
 *   assert.ok(!(p instanceof Error) && p.kind === "MoveBatch");
 *   counts.push(p.entries.length);
 * }
 * assert.deepEqual(counts, [2, 1]);
 * ```
 */
export function encodeMoveBatches(
  entries: readonly MoveEntry[],
  maxFrameBytes: number = DEFAULT_MAX_FRAME_BYTES,
): Uint8Array {
  // Pass 1: where each frame ends, and the total size, so the output is allocated once.
  const frameEnds: number[] = [];
  let total = 0;
  let frameLength = MOVE_BATCH_OVERHEAD;
  let count = 0;
  for (let i = 0; i < entries.length; i++) {
    const size = moveEntrySize(entries[i]);
    if (MOVE_BATCH_OVERHEAD + size > maxFrameBytes) {
      throw new RangeError(
        `maxFrameBytes ${maxFrameBytes} cannot hold a MoveBatch entry of ${size} bytes`,
      );
    }
    if (frameLength + size > maxFrameBytes || count === 0xffff) {
      frameEnds.push(i);
      total += FRAME_HEADER_BYTES + frameLength;
      frameLength = MOVE_BATCH_OVERHEAD;
      count = 0;
    }
    frameLength += size;
    count++;
  }
  if (count > 0) {
    frameEnds.push(entries.length);
    total += FRAME_HEADER_BYTES + frameLength;
  }
  // Pass 2: write the frames, filling each header once its length is known.
  const out = new Uint8Array(total);
  const w = new ByteWriter(out);
  let start = 0;
  for (const end of frameEnds) {
    const headerAt = w.offset;
    w.offset = headerAt + FRAME_HEADER_BYTES + 1;
    w.u16(end - start, "MoveBatch.count");
    for (let i = start; i < end; i++) writeMoveEntry(w, entries[i]);
    writeFrameHeader(out, headerAt, w.offset - headerAt - FRAME_HEADER_BYTES, PacketType.MoveBatch);
    start = end;
  }
  return out;
}

/**
 * Decodes one frame into a packet. Never throws: a malformed frame gives a
 * {@linkcode ProtocolError} — `UnknownPacket` for a type that is neither defined nor a plugin
 * command, `BadHello` for any malformed Hello (wrong magic included), `BadPacket` for any other
 * payload that does not match its layout exactly (truncated, trailing bytes, bad UTF-8, bad
 * enum value, wrong fixed size).
 *
 * Byte fields are copies, except a Plugin packet's `payload`, which is a view of the frame
 * (valid until the frame decoder's next push) because it is the hot path.
 *
 * @param frame A frame from {@linkcode FrameDecoder}.
 *
 * @example
 * ```ts
 * import { decodePacket } from "./codec.ts";
 * import { ErrorCode, ProtocolError } from "./protocol_error.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(decodePacket({ type: 0x04, payload: Uint8Array.fromHex("00000007") }), {
 *   kind: "Ping",
 *   value: 7,
 * });
 * const bad = decodePacket({ type: 0x04, payload: Uint8Array.fromHex("0000000700") });
 * assert.ok(bad instanceof ProtocolError);
 * assert.equal(bad.errorCode, ErrorCode.BadPacket);
 * ```
 */
export function decodePacket(frame: Frame): Packet | ProtocolError {
  const type = frame.type;
  if (type >= PLUGIN_COMMAND_MIN && type <= PLUGIN_COMMAND_MAX && Number.isInteger(type)) {
    return { kind: "Plugin", command: type, payload: frame.payload };
  }
  const entry = LAYOUT_BY_TYPE[type];
  if (entry === undefined || !Number.isInteger(type)) {
    return new ProtocolError(ErrorCode.UnknownPacket, `unknown packet type ${type}`);
  }
  const reader = new ByteReader(
    frame.payload,
    entry.kind,
    entry.kind === "Hello" ? ErrorCode.BadHello : ErrorCode.BadPacket,
  );
  try {
    const packet = entry.layout.read(reader);
    reader.end();
    return packet;
  } catch (err) {
    // Reads throw ProtocolError for malformed input; anything else is a bug and propagates.
    if (err instanceof ProtocolError) return err;
    throw err;
  }
}
