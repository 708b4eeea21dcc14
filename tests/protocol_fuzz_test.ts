import assert from "node:assert/strict";
import fc from "fast-check";
import { decodePacket, encodePacket } from "../shared/protocol/codec.ts";
import { type Frame, FrameDecoder } from "../shared/protocol/frame.ts";
import type { Packet } from "../shared/protocol/packets.ts";
import { ErrorCode, ProtocolError } from "../shared/protocol/protocol_error.ts";

/** Codes a payload can fail with; framing codes come from the frame decoder only. */
const PAYLOAD_CODES = new Set<number>([
  ErrorCode.BadHello,
  ErrorCode.BadPacket,
  ErrorCode.UnknownPacket,
]);
const FRAME_CODES = new Set<number>([ErrorCode.BadFrame, ErrorCode.FrameTooLarge]);

/** Every whole frame of PROTOCOL.md's vectors (valid and invalid), as mutation seeds. */
const SEEDS: readonly Uint8Array[] = [
  ...(await Deno.readTextFile(new URL("../docs/PROTOCOL.md", import.meta.url)))
    .matchAll(/```hex\n([\s\S]*?)```/g),
].map((m) => Uint8Array.fromHex(m[1].replace(/\s+/g, "")));

/**
 * Decodes one frame and checks the outcome is sane: a ProtocolError with a payload code, or a
 * packet that survives another encode/decode unchanged. Throws only if decodePacket throws or
 * the outcome is wrong.
 */
function checkFrame(frame: Frame): Packet | ProtocolError {
  const result = decodePacket(frame);
  if (result instanceof ProtocolError) {
    assert.ok(PAYLOAD_CODES.has(result.errorCode), result.message);
    return result;
  }
  if (result.kind === "Plugin") {
    assert.equal(result.command, frame.type);
    return result;
  }
  // Not byte-canonical (a NaN's payload bits are not kept) but idempotent.
  const again = encodePacket(result);
  const reread = decodePacket({ type: again[4], payload: again.subarray(5) });
  assert.deepEqual(reread, result);
  return result;
}

/** Feeds a byte stream in chunks; checks the decoder never holds more than one frame. */
function checkStream(bytes: Uint8Array, chunk: number, maxFrameBytes: number): void {
  const decoder = new FrameDecoder({ maxFrameBytes });
  for (let at = 0; at < bytes.length; at += chunk) {
    decoder.push(bytes.subarray(at, at + chunk));
    for (let f = decoder.next(); f !== undefined; f = decoder.next()) {
      if (f instanceof ProtocolError) {
        assert.ok(FRAME_CODES.has(f.errorCode), f.message);
        return;
      }
      checkFrame(f);
    }
    // After next() returned undefined only a partial frame is left.
    assert.ok(decoder.bufferedBytes < maxFrameBytes + 4);
  }
}

Deno.test("PROTOCOL.md provides mutation seeds", () => {
  assert.ok(SEEDS.length > 40);
});

Deno.test("decodePacket never throws on thousands of random frames", () => {
  let packets = 0;
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 0x7f }),
      fc.uint8Array({ maxLength: 120 }),
      (type, payload) => {
        if (!(checkFrame({ type, payload }) instanceof ProtocolError)) packets++;
      },
    ),
    { numRuns: 4000 },
  );
  // Sanity: random bytes do sometimes form packets (so the property checks both branches).
  assert.ok(packets > 0);
});

type Mutation =
  | { readonly op: "flip"; readonly at: number; readonly bit: number }
  | { readonly op: "set"; readonly at: number; readonly value: number }
  | { readonly op: "insert"; readonly at: number; readonly value: number }
  | { readonly op: "delete"; readonly at: number }
  | { readonly op: "truncate"; readonly at: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant("flip"), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ op: fc.constant("set"), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ op: fc.constant("insert"), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ op: fc.constant("delete"), at: fc.nat() }),
  fc.record({ op: fc.constant("truncate"), at: fc.nat() }),
);

function mutate(seed: Uint8Array, mutations: readonly Mutation[]): Uint8Array {
  let bytes = [...seed];
  for (const m of mutations) {
    if (bytes.length === 0) break;
    const at = m.at % bytes.length;
    switch (m.op) {
      case "flip":
        bytes[at] ^= 1 << m.bit;
        break;
      case "set":
        bytes[at] = m.value;
        break;
      case "insert":
        bytes.splice(at, 0, m.value);
        break;
      case "delete":
        bytes.splice(at, 1);
        break;
      case "truncate":
        bytes = bytes.slice(0, at);
        break;
    }
  }
  return Uint8Array.from(bytes);
}

Deno.test("mutated vectors never make the decoders throw, whatever the chunking", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: SEEDS.length - 1 }),
      fc.array(mutation, { minLength: 1, maxLength: 4 }),
      fc.integer({ min: 1, max: 16 }),
      (seed, mutations, chunk) => {
        const bytes = mutate(SEEDS[seed], mutations);
        checkStream(bytes, chunk, 4096);
        // The payload alone, whatever its length field says, must not throw either.
        if (bytes.length >= 5) checkFrame({ type: bytes[4], payload: bytes.subarray(5) });
      },
    ),
    { numRuns: 4000 },
  );
});

Deno.test("random byte streams never make the decoders throw or over-buffer", () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 1, maxLength: 600 }),
      fc.integer({ min: 1, max: 64 }),
      fc.integer({ min: 1, max: 300 }),
      (bytes, chunk, maxFrameBytes) => {
        // Small lengths so random streams often hold whole frames, not just oversize ones.
        for (let i = 0; i + 4 < bytes.length; i += 37) bytes[i] = bytes[i + 1] = bytes[i + 2] = 0;
        checkStream(bytes, chunk, maxFrameBytes);
      },
    ),
    { numRuns: 2000 },
  );
});
