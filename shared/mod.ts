/**
 * Sustenet's shared core: the wire protocol, security primitives, configuration, logging and
 * metrics every role builds on. Everything here except the key-file, transport, pending-gate
 * and status modules is browser compatible.
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
// Both the protocol and the config define a Role; the wire role is the one the package exports.
export { Role } from "./protocol/mod.ts";
export * from "./security.ts";
export * from "./identity_key.ts";
export * from "./key_derivation.ts";
export * from "./announce_proof.ts";
export * from "./join_ticket.ts";
export * from "./keys.ts";
export * from "./config.ts";
export * from "./logging.ts";
export * from "./metrics.ts";
export * from "./status_server.ts";
export * from "./record_cipher.ts";
export * from "./record_cipher_node.ts";
export * from "./record_cipher_ffi.ts";
export * from "./sealed_record.ts";
export * from "./transport.ts";
export * from "./broadcast_group.ts";
export * from "./plugin.ts";
export * from "./token_bucket.ts";
export * from "./log_throttle.ts";
export { addressKey } from "./ip_address.ts";
export * from "./pending_connections.ts";
export * from "./pending_gate.ts";
export * from "./pre_auth_metrics.ts";
