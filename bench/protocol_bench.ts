/**
 * Micro-benchmarks of the wire protocol core: packet encode/decode and frame cutting.
 * Run with `deno bench bench/protocol_bench.ts`.
 *
 * Throughput is derived from Deno's ns/iter: for the single-packet benches packets/s =
 * 1e9 / (ns/iter); for the 64 KiB FrameDecoder benches frames/s = MOVES_PER_CHUNK × 1e9 /
 * (ns/iter), MOVES_PER_CHUNK being printed when the file loads.
 *
 * @module
 */

import { decodePacket, encodePacket, encodePluginFrame } from "../shared/protocol/codec.ts";
import { type Frame, FrameDecoder } from "../shared/protocol/frame.ts";
import type { Packet } from "../shared/protocol/packets.ts";

// The largest Move: flags, position, yaw and velocity = 29 payload bytes (34-byte frame), the
// closest a Move gets to a 32-byte payload.
const MOVE: Packet = {
  kind: "Move",
  state: { x: 10.5, y: 1, z: -3.25, yaw: 1.5, vx: 0.5, vy: 0, vz: -0.5 },
};
const MOVE_FRAME = encodePacket(MOVE);
const MOVE_AS_FRAME: Frame = { type: MOVE_FRAME[4], payload: MOVE_FRAME.subarray(5) };

const PLUGIN_PAYLOAD = new Uint8Array(32).fill(7);
const PLUGIN_FRAME = encodePluginFrame(0x81, PLUGIN_PAYLOAD);
const PLUGIN_AS_FRAME: Frame = { type: PLUGIN_FRAME[4], payload: PLUGIN_FRAME.subarray(5) };

/** A 64 KiB read's worth of back-to-back Move frames. */
const CHUNK_BYTES = 64 * 1024;
const MOVES_PER_CHUNK = Math.floor(CHUNK_BYTES / MOVE_FRAME.length);
const CHUNK = new Uint8Array(MOVES_PER_CHUNK * MOVE_FRAME.length);
for (let i = 0; i < MOVES_PER_CHUNK; i++) CHUNK.set(MOVE_FRAME, i * MOVE_FRAME.length);
console.log(`64 KiB chunk: ${MOVES_PER_CHUNK} Move frames of ${MOVE_FRAME.length} bytes`);

let sink = 0;

Deno.bench("encode Move (29-byte payload)", { group: "encode" }, () => {
  sink += encodePacket(MOVE).length;
});

Deno.bench("encode Plugin frame (32-byte payload)", { group: "encode" }, () => {
  sink += encodePluginFrame(0x81, PLUGIN_PAYLOAD).length;
});

Deno.bench("decode Move (29-byte payload)", { group: "decode" }, () => {
  const p = decodePacket(MOVE_AS_FRAME);
  if (!(p instanceof Error) && p.kind === "Move") sink += p.state.x;
});

Deno.bench("decode Plugin frame (32-byte payload)", { group: "decode" }, () => {
  const p = decodePacket(PLUGIN_AS_FRAME);
  if (!(p instanceof Error) && p.kind === "Plugin") sink += p.payload.length;
});

Deno.bench("FrameDecoder: 64 KiB chunk of Move frames", { group: "stream" }, () => {
  const decoder = new FrameDecoder();
  decoder.push(CHUNK);
  for (let f = decoder.next(); f !== undefined; f = decoder.next()) {
    if (f instanceof Error) throw f;
    sink += f.type;
  }
});

Deno.bench("FrameDecoder + decodePacket: 64 KiB chunk of Move frames", { group: "stream" }, () => {
  const decoder = new FrameDecoder();
  decoder.push(CHUNK);
  for (let f = decoder.next(); f !== undefined; f = decoder.next()) {
    if (f instanceof Error) throw f;
    const p = decodePacket(f);
    if (!(p instanceof Error) && p.kind === "Move") sink += p.state.y;
  }
});

globalThis.addEventListener("unload", () => {
  // Keeps the results observable so the JIT cannot drop the benchmarked work.
  if (Number.isNaN(sink)) console.log(sink);
});
