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

// The public core, chosen (docs/EMBEDDING.md, "Public API"): what a plugin author, a client
// developer and a tool speaking the protocol import. Everything else under shared/ is internal
// to the roles and may change without notice.

// Plugins: the API a game's plugin is written against (docs/PLUGINS.md).
export {
  asClientId,
  type BroadcastOptions,
  type ClientId,
  definePlugin,
  isClientId,
  type PlayerInfo,
  type PluginContext,
  type PluginLog,
  type PluginMove,
  type SustenetPlugin,
  type Vec3,
} from "./plugin.ts";
export type { MoveState } from "./protocol/move_state.ts";

// Logging: the libraries are silent until setupLogging is called.
export {
  type LogConsole,
  type LogFormat,
  type LogLevelName,
  type LogRecordLevel,
  type LogRole,
  type LogSink,
  type LogSinkRecord,
  setupLogging,
  type SetupLoggingOptions,
} from "./logging.ts";

// Errors: every error the package throws is a SustenetError with a `code`.
export { SustenetError } from "./errors.ts";

// The wire protocol (docs/PROTOCOL.md), for tools, tests and clients of other transports.
export {
  DEFAULT_MAX_FRAME_BYTES,
  encodeFrame,
  type Frame,
  FRAME_HEADER_BYTES,
  FrameDecoder,
  type FrameDecoderOptions,
} from "./protocol/frame.ts";
export { ErrorCode, errorCodeName, ProtocolError } from "./protocol/protocol_error.ts";
export { decodePacket, encodePacket, encodePluginFrame } from "./protocol/codec.ts";
export {
  type AnswerClusterPacket,
  type AuthenticatePacket,
  AuthStatus,
  type BecomeClusterPacket,
  type ClusterInfo,
  type ClusterJoinClusterPacket,
  type ClusterPagePacket,
  type ClusterPluginsPacket,
  type CreateClusterPacket,
  type DeregisterPacket,
  type DespawnPacket,
  type DisconnectClusterPacket,
  type Endpoint,
  type EndpointKind,
  type ErrorPacket,
  type HeartbeatPacket,
  type HelloOkPacket,
  type HelloPacket,
  type JoinClusterPacket,
  type JoinTicketPacket,
  type KeyExchangeOkPacket,
  type KeyExchangePacket,
  type LeaveClusterPacket,
  type MoveBatchPacket,
  type MoveEntry,
  type MovePacket,
  type Packet,
  type PacketKind,
  type PacketOf,
  PacketType,
  type PingPacket,
  PLUGIN_COMMAND_MAX,
  PLUGIN_COMMAND_MIN,
  type PluginPacket,
  type PluginStateName,
  type PluginSummary,
  type PongPacket,
  PROTOCOL_MAGIC,
  PROTOCOL_VERSION,
  type RequestClustersPacket,
  type RequestKeyPacket,
  Role,
  type SendClustersPacket,
  type SendPasswordPacket,
  type SendPubKeyPacket,
  type SpawnPacket,
  type TlsJoinPacket,
  type VerifyClusterPacket,
  type VersionOfKeyPacket,
} from "./protocol/packets.ts";

// The client's side of the security (docs/SECURITY.md): an identity key, the handshake's
// ephemeral key and session keys, and sealed records on WebCrypto.
export {
  type ExportedIdentity,
  exportIdentity,
  generateIdentityKeyPair,
  type IdentityKey,
  importIdentity,
} from "./identity_key.ts";
export {
  type ClientSessionKeys,
  clientSessionKeysForClient,
  type EphemeralKeyPair,
  generateEphemeralKeyPair,
} from "./key_derivation.ts";
export {
  type RecordCipher,
  type RecordCounter,
  RecordError,
  type RecordErrorCode,
  WebCryptoRecordCipher,
} from "./record_cipher.ts";
export {
  type RecordReadResult,
  type SealedRecordOptions,
  SealedRecordReader,
  SealedRecordWriter,
} from "./sealed_record.ts";
