// This module is browser compatible.
/**
 * Sustenet's shared core: the wire protocol, security primitives (X25519, HKDF, AES-256-GCM on
 * WebCrypto), sealed records, join tickets, logging and metrics every role builds on. Every
 * module reached from here is browser compatible: it imports no `Deno.*`, no `node:*` and no
 * FFI (tests/browser_graph_test.ts walks the graph to prove it). Server-only code (TCP
 * transport, the `node:crypto` and FFI ciphers, key files, config files, the status server)
 * is re-exported by `../server.ts` instead.
 *
 * @example Encode and decode a packet
 * ```ts
 * import { decodePacket, encodePacket, FrameDecoder } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const bytes = encodePacket({ kind: "Ping", value: 7 });
 * const decoder = new FrameDecoder();
 * decoder.push(bytes);
 * const frame = decoder.next();
 * assert.ok(frame && !(frame instanceof Error));
 * assert.deepEqual(decodePacket(frame), { kind: "Ping", value: 7 });
 * ```
 *
 * @module
 */
export * from "./errors.ts";
export * from "./protocol/mod.ts";
export * from "./security.ts";
export * from "./identity_key.ts";
export * from "./key_derivation.ts";
export * from "./announce_proof.ts";
export * from "./join_ticket.ts";
export * from "./logging.ts";
export * from "./metrics.ts";
export * from "./record_cipher.ts";
export * from "./sealed_record.ts";
export * from "./plugin.ts";
export * from "./token_bucket.ts";
export * from "./log_throttle.ts";
export { addressKey } from "./ip_address.ts";
export * from "./pending_connections.ts";
export * from "./pre_auth_metrics.ts";
