// This module is browser compatible.
/**
 * What a web page (or a Godot HTML5 export, an edge runtime) needs from Sustenet, with no
 * `Deno.*`, no `node:*` and no FFI anywhere in its module graph (tests/browser_graph_test.ts
 * walks it): the protocol and codec, WebCrypto X25519, HKDF and AES-256-GCM, sealed records,
 * and the client ({@linkcode SustenetClient}, whose connections come from a
 * {@linkcode Connector}: WebSocket by default). `deno task bundle` makes one ES module of it
 * (`dist/sustenet.js`).
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

// The public browser API, chosen (docs/EMBEDDING.md, "Public API"): the core and the portable
// client. Like `/client`, without TCP and key files.
export * from "./shared/mod.ts";

// The client (WebSocket and WebCrypto by default), and a session.
export {
  SustenetClient,
  type SustenetClientEvents,
  type SustenetClientOptions,
} from "./client/sustenet_client.ts";
export {
  ClusterSession,
  type ClusterSessionEvents,
  type ClusterSessionStatus,
  type JoinedCluster,
  type ReconnectSettings,
} from "./client/cluster_session.ts";
export type { SessionCloseReason, UnhandledFrameEvent } from "./client/_session_common.ts";
export type { CachedClusterKey, PinnedKeySource } from "./client/key_pinning.ts";

// Errors: every failure is a ClientError with a `code`.
export { ClientError, type ClientErrorCode, type ClientErrorDetails } from "./client/errors.ts";

// How connections are opened, and what a connector returns (for your own transport).
export type { Connector, ConnectTarget } from "./client/connector.ts";
export {
  webSocketConnector,
  type WebSocketConnectorOptions,
} from "./client/websocket_connector.ts";
export type {
  CloseInfo,
  CloseReason,
  CloseSource,
  FrameHandler,
  FrameSessionOptions,
  FrameTransport,
  PeerAddress,
  SealingKey,
  SealingKeys,
} from "./shared/frame_session.ts";
export type { RecordCipherKind, RecordCipherOptions } from "./shared/record_cipher.ts";
export type { BroadcastGroup, BroadcastMember } from "./shared/broadcast_group.ts";

// Hooks for frames the library does not handle.
export type { ClientPlugin } from "./client/client_plugin.ts";
