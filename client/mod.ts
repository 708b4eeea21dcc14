/**
 * The Sustenet client library: connect to a master with {@linkcode SustenetClient}, list its
 * clusters, join one (the cluster key checked against pinned keys, the connection sealed by an
 * ephemeral X25519 handshake and a master-issued ticket) and play through the
 * {@linkcode ClusterSession} it returns. Failures are {@linkcode ClientError}s with a `code`.
 * Connections come from a {@linkcode Connector}: TCP by default, WebSocket with
 * {@linkcode webSocketConnector}, or your own transport.
 *
 * Re-exports only; it must never hold logic of its own.
 *
 * @example
 * ```ts ignore
 * import { SustenetClient } from "./mod.ts";
 *
 * await using client = await SustenetClient.connect({ host: "127.0.0.1", port: 6256 });
 * const session = await client.join("auto");
 * session.on("message", ({ command, payload }) => console.log(command, payload.length));
 * session.send(0x80, new TextEncoder().encode("echo me"));
 * ```
 *
 * @module
 */

// The public client API, chosen (docs/EMBEDDING.md, "Public API"): the client and the session
// it joins, their errors, how connections are opened, client plugins, and the account
// service's client. The handshake machines, key pinning and the bots are internal.

// The core: plugin API, logging, protocol codec, the client's side of the security.
export * from "../shared/mod.ts";

// The client (TCP and key files in Deno; the portable one is in `/browser`), and a session.
export { DenoSustenetClient as SustenetClient } from "./deno_sustenet_client.ts";
// Its base class, the portable client (`/browser` exports it as SustenetClient).
export {
  SustenetClient as PortableSustenetClient,
  type SustenetClientEvents,
  type SustenetClientOptions,
} from "./sustenet_client.ts";
export {
  ClusterSession,
  type ClusterSessionEvents,
  type ClusterSessionStatus,
  type JoinedCluster,
  type ReconnectSettings,
} from "./cluster_session.ts";
export type { SessionCloseReason, UnhandledFrameEvent } from "./_session_common.ts";
export type { CachedClusterKey, PinnedKeySource } from "./key_pinning.ts";

// Errors: every failure is a ClientError with a `code`.
export { ClientError, type ClientErrorCode, type ClientErrorDetails } from "./errors.ts";

// How connections are opened.
export type { Connector, ConnectTarget } from "./connector.ts";
// What a connector returns: the framed connection the client drives (for your own transport).
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
} from "../shared/frame_session.ts";
export type { RecordCipherKind, RecordCipherOptions } from "../shared/record_cipher.ts";
export type { BroadcastGroup, BroadcastMember } from "../shared/broadcast_group.ts";
export { connectTcp } from "./tcp_connector.ts";
export { webSocketConnector, type WebSocketConnectorOptions } from "./websocket_connector.ts";

// Hooks for frames the library does not handle.
export type { ClientPlugin } from "./client_plugin.ts";

// The account service (`/auth`): log in, get tokens, pass them to the master.
export {
  AuthClient,
  type AuthClientOptions,
  AuthRequestError,
  type AuthTokens,
} from "./auth_client.ts";
