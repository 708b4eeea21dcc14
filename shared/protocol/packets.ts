// This module is browser compatible.
/**
 * The packets of wire protocol v1 as TypeScript types: a discriminated union {@linkcode Packet}
 * on `kind`, one member per row of docs/PROTOCOL.md's "Packet types" table, plus the constants
 * the layouts use (type numbers, roles, statuses, magic, version). Types and constants only:
 * this module must never encode, decode or do I/O (see `codec.ts`).
 *
 * @module
 */

import type { MoveState } from "./move_state.ts";

/**
 * The four magic bytes a Hello starts with, as text (`"SUST"`, ASCII).
 *
 * @example
 * ```ts
 * import { PROTOCOL_MAGIC } from "./packets.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(new TextEncoder().encode(PROTOCOL_MAGIC).toHex(), "53555354");
 * ```
 */
export const PROTOCOL_MAGIC = "SUST";

/**
 * The protocol version this code speaks, sent in Hello and HelloOk.
 *
 * @example
 * ```ts
 * import { PROTOCOL_VERSION, Role } from "./packets.ts";
 * import { decodePacket, encodePacket } from "./codec.ts";
 * import { FrameDecoder } from "./frame.ts";
 * import assert from "node:assert/strict";
 *
 * // Every connection starts with a Hello naming the version its sender speaks.
 * const decoder = new FrameDecoder();
 * decoder.push(encodePacket({ kind: "Hello", version: PROTOCOL_VERSION, role: Role.Client }));
 * const frame = decoder.next();
 * assert.ok(frame && !(frame instanceof Error));
 * const hello = decodePacket(frame);
 * assert.ok(!(hello instanceof Error) && hello.kind === "Hello");
 * assert.equal(hello.version, PROTOCOL_VERSION);
 * ```
 */
// 2: AnswerCluster carries an HMAC proof over the announced fields instead of the passphrase.
// 3: AnswerCluster, ClusterInfo and JoinTicket end with the cluster's endpoint list.
export const PROTOCOL_VERSION = 3;

/**
 * The first type byte of the plugin command range (0x80..0xFF).
 *
 * @example
 * ```ts
 * import { PLUGIN_COMMAND_MAX, PLUGIN_COMMAND_MIN } from "./packets.ts";
 * import { encodePluginFrame } from "./codec.ts";
 * import assert from "node:assert/strict";
 *
 * // A game numbers its commands from PLUGIN_COMMAND_MIN; the command is the frame's type byte.
 * const CHAT = PLUGIN_COMMAND_MIN + 1;
 * assert.equal(encodePluginFrame(CHAT, new Uint8Array([7]))[4], CHAT);
 * assert.throws(() => encodePluginFrame(PLUGIN_COMMAND_MAX + 1, new Uint8Array()), RangeError);
 * ```
 */
export const PLUGIN_COMMAND_MIN = 0x80;

/**
 * The last type byte of the plugin command range.
 *
 * @example
 * ```ts
 * import { PLUGIN_COMMAND_MAX, PLUGIN_COMMAND_MIN } from "./packets.ts";
 * import { encodePluginFrame } from "./codec.ts";
 * import assert from "node:assert/strict";
 *
 * // Every command a game can use: 128 of them.
 * const count = PLUGIN_COMMAND_MAX - PLUGIN_COMMAND_MIN + 1;
 * const commands = Array.from({ length: count }, (_, i) => PLUGIN_COMMAND_MIN + i);
 * assert.equal(commands.length, 128);
 * for (const command of commands) encodePluginFrame(command, new Uint8Array()); // none throws
 * ```
 */
export const PLUGIN_COMMAND_MAX = 0xff;

/**
 * Type byte of each packet kind (docs/PROTOCOL.md "Packet types"); plugin commands use
 * {@linkcode PLUGIN_COMMAND_MIN}..{@linkcode PLUGIN_COMMAND_MAX} instead.
 *
 * @example
 * ```ts
 * import { PacketType } from "./packets.ts";
 * import { encodePacket } from "./codec.ts";
 * import assert from "node:assert/strict";
 *
 * // The byte after the length is the packet type.
 * const ping = encodePacket({ kind: "Ping", value: 1 });
 * assert.equal(ping[4], PacketType.Ping);
 * ```
 */
export const PacketType = {
  Hello: 0x01,
  HelloOk: 0x02,
  Error: 0x03,
  Ping: 0x04,
  Pong: 0x05,
  RequestClusters: 0x10,
  SendClusters: 0x11,
  JoinCluster: 0x12,
  JoinTicket: 0x13,
  BecomeCluster: 0x14,
  VerifyCluster: 0x15,
  AnswerCluster: 0x16,
  CreateCluster: 0x17,
  Heartbeat: 0x18,
  Deregister: 0x19,
  ClusterPage: 0x1a,
  ClusterPlugins: 0x1b,
  RequestKey: 0x20,
  VersionOfKey: 0x21,
  SendPubKey: 0x22,
  KeyExchange: 0x23,
  KeyExchangeOk: 0x24,
  SendPassword: 0x25,
  Authenticate: 0x26,
  ClusterJoinCluster: 0x27,
  LeaveCluster: 0x28,
  DisconnectCluster: 0x29,
  Move: 0x2a,
  MoveBatch: 0x2b,
  Spawn: 0x2c,
  Despawn: 0x2d,
  TlsJoin: 0x2e,
} as const;

/** One of the {@linkcode PacketType} numbers. */
export type PacketType = typeof PacketType[keyof typeof PacketType];

/**
 * The role a peer announces in Hello / HelloOk.
 *
 * @example
 * ```ts
 * import { PROTOCOL_VERSION, Role } from "./packets.ts";
 * import { encodePacket } from "./codec.ts";
 * import assert from "node:assert/strict";
 *
 * // A cluster's Hello to its master: the role is the last byte.
 * const hello = encodePacket({ kind: "Hello", version: PROTOCOL_VERSION, role: Role.Cluster });
 * assert.equal(hello.at(-1), Role.Cluster);
 * ```
 */
export const Role = { Client: 1, Cluster: 2, Master: 3 } as const;

/** One of the {@linkcode Role} numbers. */
export type Role = typeof Role[keyof typeof Role];

/**
 * Status of an Authenticate packet (the Rust crate's 20/40/44/50); anything but `Ok` is
 * followed by close.
 *
 * @example
 * ```ts
 * import { AuthStatus } from "./packets.ts";
 * import { decodePacket, encodePacket } from "./codec.ts";
 * import { FrameDecoder } from "./frame.ts";
 * import assert from "node:assert/strict";
 *
 * // A client reads the cluster's answer to its ticket.
 * const decoder = new FrameDecoder();
 * decoder.push(encodePacket({ kind: "Authenticate", status: AuthStatus.TicketExpired, clientId: 0 }));
 * const frame = decoder.next();
 * assert.ok(frame && !(frame instanceof Error));
 * const answer = decodePacket(frame);
 * assert.ok(!(answer instanceof Error) && answer.kind === "Authenticate");
 * assert.notEqual(answer.status, AuthStatus.Ok); // refused: ask the master for a new ticket
 * ```
 */
export const AuthStatus = {
  /** Authenticated; `clientId` is valid. */
  Ok: 20,
  /** Ticket cannot be opened, is for another cluster, bound to another key, or malformed. */
  TicketInvalid: 40,
  /** Ticket expired or already used. */
  TicketExpired: 44,
  /** Server error or cluster full. */
  ServerError: 50,
} as const;

/** One of the {@linkcode AuthStatus} numbers. */
export type AuthStatus = typeof AuthStatus[keyof typeof AuthStatus];

/**
 * Bytes of the fixed-size `key32` fields: KeyExchange's key and random, KeyExchangeOk's random,
 * BecomeCluster's nonce, AnswerCluster's proof.
 *
 * @example
 * ```ts
 * import { KEY_MATERIAL_BYTES } from "./packets.ts";
 * import { decodePacket, encodePacket } from "./codec.ts";
 * import assert from "node:assert/strict";
 *
 * // BecomeCluster's nonce is a key32 field: exactly KEY_MATERIAL_BYTES, or it does not encode.
 * const clusterNonce = crypto.getRandomValues(new Uint8Array(KEY_MATERIAL_BYTES));
 * const frame = encodePacket({ kind: "BecomeCluster", keyName: "cluster_key", clusterNonce });
 * const packet = decodePacket({ type: frame[4], payload: frame.subarray(5) });
 * assert.ok(!(packet instanceof Error) && packet.kind === "BecomeCluster");
 * assert.deepEqual(packet.clusterNonce, clusterNonce);
 * assert.throws(() =>
 *   encodePacket({ kind: "BecomeCluster", keyName: "k", clusterNonce: new Uint8Array(16) })
 * );
 * ```
 */
export const KEY_MATERIAL_BYTES = 32;

/** The transports an endpoint speaks (wire codes 1..4, docs/PROTOCOL.md "Endpoint"). */
export type EndpointKind = "tcp" | "tls" | "ws" | "wss";

/**
 * An extra listener of a cluster, on the cluster's one `host`: a client of any transport picks
 * the endpoint it can speak. `path` is the HTTP path of a ws/wss endpoint (str8), empty for
 * tcp/tls.
 *
 * @example
 * ```ts
 * import type { Endpoint } from "./packets.ts";
 * import { clusterWebSocketUrl } from "../../client/websocket_connector.ts";
 * import assert from "node:assert/strict";
 *
 * // A browser client joins the cluster through its ws endpoint.
 * const ws: Endpoint = { kind: "ws", port: 6259, path: "/sustenet" };
 * const target = { what: "cluster", host: "eu.example", port: 6257, endpoints: [ws] } as const;
 * assert.equal(clusterWebSocketUrl(target, false), "ws://eu.example:6259/sustenet");
 * ```
 */
export interface Endpoint {
  /** The transport. */
  readonly kind: EndpointKind;
  /** Its port (u16). */
  readonly port: number;
  /** HTTP path for ws/wss (str8); empty otherwise. */
  readonly path: string;
}

/** One cluster as listed by SendClusters. */
export interface ClusterInfo {
  /** Cluster id assigned by the master (never 0). */
  readonly id: number;
  /** Display name (str8). */
  readonly name: string;
  /** Host clients connect to (str8). */
  readonly host: string;
  /** TCP port. */
  readonly port: number;
  /** Connected players. */
  readonly load: number;
  /** Player capacity. */
  readonly maxConnections: number;
  /** Version of the cluster's identity public key. */
  readonly keyVersion: number;
  /** Flags bit 0: no free slot. */
  readonly full: boolean;
  /** Extra listeners besides the TCP `port` (absent = none; encoded as count 0). */
  readonly endpoints?: readonly Endpoint[];
}

/** One entry of a MoveBatch: whose state it is and the state. */
export interface MoveEntry {
  /** The cluster-local client id. */
  readonly clientId: number;
  /** That client's movement state. */
  readonly state: MoveState;
}

/** 0x01: first frame of every connection. The magic is implied (checked by the codec). */
export interface HelloPacket {
  /** Discriminant of the packet union. */
  readonly kind: "Hello";
  /** Protocol version the sender speaks. */
  readonly version: number;
  /** The sender's role. */
  readonly role: Role;
}

/** 0x02: the server accepted the Hello. */
export interface HelloOkPacket {
  /** Discriminant of the packet union. */
  readonly kind: "HelloOk";
  /** Protocol version the server speaks. */
  readonly version: number;
  /** The server's role. */
  readonly role: Role;
  /** The server's configured name (str8). */
  readonly serverName: string;
}

/**
 * 0x03: a protocol or application error. The sender closes after it, except the master's
 * answers 11–14 to JoinCluster, which leave a client's master connection open.
 */
export interface ErrorPacket {
  /** Discriminant of the packet union. */
  readonly kind: "Error";
  /** An `ErrorCode`; any u16 is accepted on decode (a newer peer may send new codes). */
  readonly code: number;
  /** Readable reason (str16). */
  readonly reason: string;
}

/** 0x04: keep-alive probe. */
export interface PingPacket {
  /** Discriminant of the packet union. */
  readonly kind: "Ping";
  /** Opaque u32 echoed by Pong. */
  readonly value: number;
}

/** 0x05: answer to Ping with the same value. */
export interface PongPacket {
  /** Discriminant of the packet union. */
  readonly kind: "Pong";
  /** The value of the Ping answered. */
  readonly value: number;
}

/** 0x10: ask for the cluster list. */
export interface RequestClustersPacket {
  /** Discriminant of the packet union. */
  readonly kind: "RequestClusters";
}

/** 0x11: the cluster list. */
export interface SendClustersPacket {
  /** Discriminant of the packet union. */
  readonly kind: "SendClusters";
  /** At most 65535 entries. */
  readonly clusters: readonly ClusterInfo[];
}

/** 0x12: client asks the master for a join ticket. */
export interface JoinClusterPacket {
  /** Discriminant of the packet union. */
  readonly kind: "JoinCluster";
  /** Wanted cluster, 0 = any with room. */
  readonly clusterId: number;
  /** The client's ephemeral X25519 public key (bytes8). */
  readonly clientPublicKey: Uint8Array;
  /** Opaque credential for the master's authentication hook (bytes16, may be empty). */
  readonly credential: Uint8Array;
}

/** 0x13: the master's answer to JoinCluster. */
export interface JoinTicketPacket {
  /** Discriminant of the packet union. */
  readonly kind: "JoinTicket";
  /** Cluster id assigned by the master. */
  readonly clusterId: number;
  /** Where to connect (str8). */
  readonly host: string;
  /** TCP port. */
  readonly port: number;
  /** Version of the cluster's identity key. */
  readonly keyVersion: number;
  /** The cluster's identity public key (bytes8), to pin or compare. */
  readonly clusterPublicKey: Uint8Array;
  /** The sealed ticket, opaque to the client (bytes16). */
  readonly ticket: Uint8Array;
  /** The cluster's extra listeners on `host` (absent = none; encoded as count 0). */
  readonly endpoints?: readonly Endpoint[];
}

/** 0x14: a cluster asks the master to register it. */
export interface BecomeClusterPacket {
  /** Discriminant of the packet union. */
  readonly kind: "BecomeCluster";
  /** Name of the shared key file (str8). */
  readonly keyName: string;
  /** 32 random bytes, part of the session key salt. */
  readonly clusterNonce: Uint8Array;
}

/** 0x15: the master's challenge. */
export interface VerifyClusterPacket {
  /** Discriminant of the packet union. */
  readonly kind: "VerifyCluster";
  /** nonce ‖ ciphertext ‖ tag of the passphrase (bytes8). */
  readonly sealedPassphrase: Uint8Array;
}

/**
 * 0x16: the cluster's answer to the challenge: what it announces, and a proof over all of it
 * made with a key only a holder of the cluster key who opened this challenge can derive.
 */
export interface AnswerClusterPacket {
  /** Discriminant of the packet union. */
  readonly kind: "AnswerCluster";
  /** Cluster display name (str8). */
  readonly name: string;
  /** Host clients connect to (str8). */
  readonly host: string;
  /** TCP port. */
  readonly port: number;
  /** Player capacity. */
  readonly maxConnections: number;
  /** Version of the cluster's identity public key. */
  readonly keyVersion: number;
  /** The cluster's identity public key (bytes8). */
  readonly publicKey: Uint8Array;
  /** Extra listeners on `host` (absent = none; encoded as count 0; covered by the proof). */
  readonly endpoints?: readonly Endpoint[];
  /**
   * HMAC-SHA-256 of the fields above under the registration's announce key (bytes8, exactly
   * 32 bytes; `shared/announce_proof.ts`).
   */
  readonly proof: Uint8Array;
}

/** 0x17: registration accepted; the last plaintext frame of the master link. */
export interface CreateClusterPacket {
  /** Discriminant of the packet union. */
  readonly kind: "CreateCluster";
  /** Cluster id assigned by the master. */
  readonly clusterId: number;
}

/** 0x18: the cluster's periodic load report (sealed). */
export interface HeartbeatPacket {
  /** Discriminant of the packet union. */
  readonly kind: "Heartbeat";
  /** Connected players. */
  readonly load: number;
  /** Player capacity. */
  readonly maxConnections: number;
}

/**
 * 0x1A: the URL of the cluster's status page, for the master console's link (sealed, optional:
 * sent once after CreateCluster only when `status_page_url` is set).
 */
export interface ClusterPagePacket {
  /** Discriminant of the packet union. */
  readonly kind: "ClusterPage";
  /** str16: an http(s) URL. */
  readonly url: string;
}

/**
 * A plugin's lifecycle state as ClusterPlugins carries it (wire codes 0..6 in the order of
 * {@linkcode PLUGIN_STATES}; `unknown` is 255, and any code a master does not know decodes to it).
 */
export type PluginStateName =
  | "idle"
  | "starting"
  | "running"
  | "restarting"
  | "stopping"
  | "stopped"
  | "failed"
  | "unknown";

/**
 * The plugin lifecycle states a cluster reports, in wire-code order (a state's code is its
 * index, 0..6); `unknown` (255) is not among them.
 *
 * @example
 * ```ts
 * import { PLUGIN_STATES } from "./packets.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(PLUGIN_STATES.indexOf("running"), 2); // the wire code of "running"
 * ```
 */
export const PLUGIN_STATES: readonly Exclude<PluginStateName, "unknown">[] = Object.freeze([
  "idle",
  "starting",
  "running",
  "restarting",
  "stopping",
  "stopped",
  "failed",
]);

/**
 * One plugin in a ClusterPlugins summary.
 *
 * @example
 * ```ts
 * import type { PluginSummary } from "./packets.ts";
 * import { decodePacket, encodePacket } from "./codec.ts";
 * import { FrameDecoder } from "./frame.ts";
 * import assert from "node:assert/strict";
 *
 * // A cluster reports its plugins to the master; the master's console lists them.
 * const echo: PluginSummary = { name: "echo", state: "running", restarts: 0 };
 * const decoder = new FrameDecoder();
 * decoder.push(encodePacket({ kind: "ClusterPlugins", plugins: [echo] }));
 * const frame = decoder.next();
 * assert.ok(frame && !(frame instanceof Error));
 * const packet = decodePacket(frame);
 * assert.ok(!(packet instanceof Error) && packet.kind === "ClusterPlugins");
 * assert.deepEqual(packet.plugins, [echo]);
 * ```
 */
export interface PluginSummary {
  /** str8: the plugin's name. */
  readonly name: string;
  /** u8: its state. */
  readonly state: PluginStateName;
  /** u32: restarts so far (saturating). */
  readonly restarts: number;
}

/** Most plugins one ClusterPlugins packet lists (the rest are left out). */
export const MAX_PLUGIN_SUMMARIES = 32;

/**
 * 0x1B: the cluster's plugins and their state, for the master console (sealed, optional: sent
 * after CreateCluster and whenever the summary changes, only by a cluster with plugins).
 */
export interface ClusterPluginsPacket {
  /** Discriminant of the packet union. */
  readonly kind: "ClusterPlugins";
  /** `u8 count` (≤ {@linkcode MAX_PLUGIN_SUMMARIES}), then each plugin. */
  readonly plugins: readonly PluginSummary[];
}

/** 0x19: the cluster leaves the master (sealed). */
export interface DeregisterPacket {
  /** Discriminant of the packet union. */
  readonly kind: "Deregister";
  /** str16. */
  readonly reason: string;
}

/** 0x20: the client asks for the cluster's identity key. */
export interface RequestKeyPacket {
  /** Discriminant of the packet union. */
  readonly kind: "RequestKey";
  /** Version the client has cached, 0 = none. */
  readonly cachedVersion: number;
}

/** 0x21: the client's cached key is current. */
export interface VersionOfKeyPacket {
  /** Discriminant of the packet union. */
  readonly kind: "VersionOfKey";
  /** Version of the cluster's identity key. */
  readonly version: number;
}

/** 0x22: the cluster's identity key. */
export interface SendPubKeyPacket {
  /** Discriminant of the packet union. */
  readonly kind: "SendPubKey";
  /** Version of the cluster's identity key. */
  readonly version: number;
  /** bytes8. */
  readonly publicKey: Uint8Array;
}

/** 0x23: the client's half of the session handshake. */
export interface KeyExchangePacket {
  /** Discriminant of the packet union. */
  readonly kind: "KeyExchange";
  /** The client's ephemeral X25519 public key, exactly 32 bytes. */
  readonly clientPublicKey: Uint8Array;
  /** Exactly 32 random bytes. */
  readonly clientRandom: Uint8Array;
}

/** 0x24: the cluster's half; the last plaintext frame of a client connection. */
export interface KeyExchangeOkPacket {
  /** Discriminant of the packet union. */
  readonly kind: "KeyExchangeOk";
  /** Exactly 32 random bytes. */
  readonly serverRandom: Uint8Array;
}

/** 0x25: the join ticket, sent sealed to the cluster. */
export interface SendPasswordPacket {
  /** Discriminant of the packet union. */
  readonly kind: "SendPassword";
  /** bytes16. */
  readonly ticket: Uint8Array;
}

/**
 * 0x2E: the TLS session mode's join (docs/PROTOCOL.md "TLS session mode"): the secret whose
 * hash stood in for the X25519 key in JoinCluster, and the ticket. Valid only inside TLS.
 */
export interface TlsJoinPacket {
  /** Discriminant of the packet union. */
  readonly kind: "TlsJoin";
  /** Exactly 32 random bytes, drawn by the client for this join. */
  readonly bindingSecret: Uint8Array;
  /** bytes16: the JoinTicket's ticket, unchanged. */
  readonly ticket: Uint8Array;
}

/** 0x26: the cluster's verdict on the ticket. */
export interface AuthenticatePacket {
  /** Discriminant of the packet union. */
  readonly kind: "Authenticate";
  /** The verdict. */
  readonly status: AuthStatus;
  /** The cluster-local client id (0 unless `status` is `Ok`). */
  readonly clientId: number;
}

/** 0x27: JoinCluster sent to a cluster; always answered with `Error(UseMaster)`. */
export interface ClusterJoinClusterPacket {
  /** Discriminant of the packet union. */
  readonly kind: "ClusterJoinCluster";
  /** Cluster id assigned by the master. */
  readonly clusterId: number;
}

/** 0x28: the client leaves; the cluster acknowledges with the same packet and closes. */
export interface LeaveClusterPacket {
  /** Discriminant of the packet union. */
  readonly kind: "LeaveCluster";
}

/** 0x29: the cluster disconnects the client, then closes. */
export interface DisconnectClusterPacket {
  /** Discriminant of the packet union. */
  readonly kind: "DisconnectCluster";
  /** str16. */
  readonly reason: string;
}

/** 0x2A: the client's own movement. */
export interface MovePacket {
  /** Discriminant of the packet union. */
  readonly kind: "Move";
  /** The movement state. */
  readonly state: MoveState;
}

/** 0x2B: positions of nearby players. */
export interface MoveBatchPacket {
  /** Discriminant of the packet union. */
  readonly kind: "MoveBatch";
  /** At most 65535 entries (and what fits one frame). */
  readonly entries: readonly MoveEntry[];
}

/** 0x2C: a player appeared nearby. */
export interface SpawnPacket {
  /** Discriminant of the packet union. */
  readonly kind: "Spawn";
  /** The cluster-local client id. */
  readonly clientId: number;
  /** The player's id as decided by the master's authentication hook (str8). */
  readonly playerId: string;
  /** The movement state. */
  readonly state: MoveState;
}

/** 0x2D: a player left the neighbourhood. */
export interface DespawnPacket {
  /** Discriminant of the packet union. */
  readonly kind: "Despawn";
  /** The cluster-local client id. */
  readonly clientId: number;
}

/** 0x80..0xFF: a game command for the plugins; the type byte is the command. */
export interface PluginPacket {
  /** Discriminant of the packet union. */
  readonly kind: "Plugin";
  /** 0x80..0xFF. */
  readonly command: number;
  /**
   * Opaque bytes. When decoded, a view of the frame (valid until the frame decoder's next
   * push); copy it to keep it.
   */
  readonly payload: Uint8Array;
}

/**
 * Every packet of protocol v1, discriminated by `kind`.
 *
 * @example Narrow on kind
 * ```ts
 * import type { Packet } from "./packets.ts";
 * import assert from "node:assert/strict";
 *
 * function describe(p: Packet): string {
 *   switch (p.kind) {
 *     case "Ping":
 *       return `ping ${p.value}`;
 *     case "Plugin":
 *       return `command ${p.command}`;
 *     default:
 *       return p.kind;
 *   }
 * }
 * assert.equal(describe({ kind: "Ping", value: 7 }), "ping 7");
 * assert.equal(describe({ kind: "LeaveCluster" }), "LeaveCluster");
 * ```
 */
export type Packet =
  | HelloPacket
  | HelloOkPacket
  | ErrorPacket
  | PingPacket
  | PongPacket
  | RequestClustersPacket
  | SendClustersPacket
  | JoinClusterPacket
  | JoinTicketPacket
  | BecomeClusterPacket
  | VerifyClusterPacket
  | AnswerClusterPacket
  | CreateClusterPacket
  | HeartbeatPacket
  | DeregisterPacket
  | ClusterPagePacket
  | ClusterPluginsPacket
  | RequestKeyPacket
  | VersionOfKeyPacket
  | SendPubKeyPacket
  | KeyExchangePacket
  | KeyExchangeOkPacket
  | SendPasswordPacket
  | AuthenticatePacket
  | ClusterJoinClusterPacket
  | LeaveClusterPacket
  | DisconnectClusterPacket
  | MovePacket
  | MoveBatchPacket
  | SpawnPacket
  | DespawnPacket
  | TlsJoinPacket
  | PluginPacket;

/** The `kind` names of {@linkcode Packet}. */
export type PacketKind = Packet["kind"];

/** The packet of a given kind, e.g. `PacketOf<"Hello">`. */
export type PacketOf<K extends PacketKind> = Extract<Packet, { readonly kind: K }>;

/**
 * Every packet kind, in type-number order (Plugin last).
 *
 * @example
 * ```ts
 * import { PACKET_KINDS, type PacketKind } from "./packets.ts";
 * import assert from "node:assert/strict";
 *
 * // A per-kind counter for a metrics label, with every kind present from the start.
 * const received = new Map<PacketKind, number>(PACKET_KINDS.map((kind) => [kind, 0]));
 * received.set("Ping", (received.get("Ping") ?? 0) + 1);
 * assert.equal(received.size, PACKET_KINDS.length);
 * assert.equal(received.get("Ping"), 1);
 * assert.equal(PACKET_KINDS.at(-1), "Plugin");
 * ```
 */
export const PACKET_KINDS: readonly PacketKind[] = [
  ...(Object.keys(PacketType) as (keyof typeof PacketType)[]),
  "Plugin",
];
