// This module is browser compatible.
/**
 * What a web page (or a Godot HTML5 export, an edge runtime) needs from Sustenet, with no
 * `Deno.*`, no `node:*` and no FFI anywhere in its module graph (tests/browser_graph_test.ts
 * walks it): the protocol and codec, WebCrypto X25519, HKDF and AES-256-GCM, sealed records,
 * join tickets, and the client ({@linkcode SustenetClient}, whose connections come from a
 * {@linkcode Connector}) with its handshake machines. `deno task bundle` makes one ES module of
 * it (`dist/sustenet.js`).
 *
 * @example Seal a record in a page
 * ```ts
 * import { SealedRecordReader, SealedRecordWriter, WebCryptoRecordCipher } from "./browser.ts";
 * import assert from "node:assert/strict";
 *
 * const key = new Uint8Array(32).fill(9);
 * const writer = new SealedRecordWriter(await WebCryptoRecordCipher.create(key));
 * const reader = new SealedRecordReader(await WebCryptoRecordCipher.create(key));
 * const record = await writer.seal(new Uint8Array([0, 0, 0, 1, 0x10]));
 * reader.push(record);
 * const opened = await reader.next();
 * assert.deepEqual(opened, new Uint8Array([0, 0, 0, 1, 0x10]));
 * ```
 *
 * @module
 */
export * from "./shared/mod.ts";
export * from "./client/errors.ts";
export * from "./client/sustenet_client.ts";
export * from "./client/cluster_session.ts";
export * from "./client/connector.ts";
export * from "./client/websocket_connector.ts";
export * from "./shared/websocket_transport.ts";
export * from "./client/key_pinning.ts";
export * from "./client/master_session_machine.ts";
export * from "./client/cluster_session_machine.ts";
export * from "./client/client_plugin.ts";
export type { SessionCloseReason, UnhandledFrameEvent } from "./client/_session_common.ts";
