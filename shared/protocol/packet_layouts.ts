// This module is browser compatible.
/**
 * The byte layout of every fixed-type packet of protocol v2 (docs/PROTOCOL.md "Packet types"),
 * as a table of size / write / read functions per kind, used by `codec.ts`. Sizing validates
 * every length before a buffer is allocated; reading checks every length and count against the
 * bytes left before slicing. Internal to the protocol folder: use `codec.ts`. It must never
 * allocate a frame itself or keep state between calls.
 *
 * @module
 */

import type { ByteReader } from "./byte_reader.ts";
import { type ByteWriter, utf8Length } from "./byte_writer.ts";
import { MOVE_STATE_MIN_SIZE, moveStateSize } from "./move_state.ts";
import {
  AuthStatus,
  type ClusterInfo,
  type Endpoint,
  type EndpointKind,
  KEY_MATERIAL_BYTES,
  MAX_PLUGIN_SUMMARIES,
  type MoveEntry,
  type PacketKind,
  type PacketOf,
  PacketType,
  PLUGIN_STATES,
  type PluginStateName,
  type PluginSummary,
  PROTOCOL_MAGIC,
  Role,
} from "./packets.ts";

/** Packet kinds with a fixed type byte: all but Plugin. */
export type FixedKind = Exclude<PacketKind, "Plugin">;

/** How one packet kind is sized, written and read; sizes exclude the 5-byte frame header. */
export interface PacketLayout<K extends FixedKind> {
  /** Payload bytes; validates string and byte field lengths (RangeError naming the field). */
  size(p: PacketOf<K>): number;
  /** Writes the payload; validates integer ranges and enum values (RangeError). */
  write(w: ByteWriter, p: PacketOf<K>): void;
  /** Reads the payload (the caller checks for trailing bytes); throws ProtocolError. */
  read(r: ByteReader): PacketOf<K>;
}

const MAGIC = new TextEncoder().encode(PROTOCOL_MAGIC);

/** Smallest ClusterInfo: ids and numbers plus two empty strings and an empty endpoint list. */
const CLUSTER_INFO_MIN_SIZE = 4 + 1 + 1 + 2 + 4 + 4 + 2 + 1 + 1;
/** Smallest MoveBatch entry. */
const MOVE_ENTRY_MIN_SIZE = 4 + MOVE_STATE_MIN_SIZE;
/**
 * Bytes of a MoveBatch frame's length field that are not entries: the type byte and the count.
 *
 * @example
 * ```ts
 * import { MOVE_BATCH_OVERHEAD, moveEntrySize } from "./packet_layouts.ts";
 * import { encodePacket } from "./codec.ts";
 * import assert from "node:assert/strict";
 *
 * // A MoveBatch's length field is the overhead plus the size of each entry.
 * const entries = [
 *   { clientId: 1, state: { x: 0, y: 0, z: 0 } },
 *   { clientId: 2, state: { x: 1, y: 2, z: 3, yaw: 0.5 } },
 * ];
 * const frame = encodePacket({ kind: "MoveBatch", entries });
 * const length = new DataView(frame.buffer, frame.byteOffset).getUint32(0);
 * assert.equal(length, MOVE_BATCH_OVERHEAD + entries.map(moveEntrySize).reduce((a, b) => a + b));
 * ```
 */
export const MOVE_BATCH_OVERHEAD: number = 1 + 2;

const ROLES: ReadonlySet<number> = new Set(Object.values(Role));
const AUTH_STATUSES: ReadonlySet<number> = new Set(Object.values(AuthStatus));

function str8Size(text: string, field: string): number {
  return 1 + checkMax(utf8Length(text, field), 0xff, field);
}

function str16Size(text: string, field: string): number {
  return 2 + checkMax(utf8Length(text, field), 0xffff, field);
}

function bytes8Size(bytes: Uint8Array, field: string): number {
  return 1 + checkMax(bytes.length, 0xff, field);
}

function bytes16Size(bytes: Uint8Array, field: string): number {
  return 2 + checkMax(bytes.length, 0xffff, field);
}

function fixedSize(bytes: Uint8Array, size: number, field: string): number {
  if (bytes.length !== size) {
    throw new RangeError(`${field} must be ${size} bytes, got ${bytes.length}`);
  }
  return 1 + size;
}

function checkMax(length: number, max: number, field: string): number {
  if (length > max) {
    throw new RangeError(`${field} is ${length} bytes, above its length prefix's ${max}`);
  }
  return length;
}

function countSize(count: number, field: string): number {
  if (count > 0xffff) throw new RangeError(`${field} has ${count} entries, above 65535`);
  return 2;
}

function writeRole(w: ByteWriter, role: number, field: string): void {
  if (!ROLES.has(role)) throw new RangeError(`${field} must be a Role (1..3), got ${role}`);
  w.u8(role, field);
}

function readRole(r: ByteReader, field: string): Role {
  const role = r.u8(field);
  if (!ROLES.has(role)) throw r.fail(`${field} ${role} is not a role`);
  return role as Role;
}

/** Packets whose payload is a single u32 field. */
function u32Packet<K extends FixedKind>(
  kind: K,
  field: string & keyof PacketOf<K>,
): PacketLayout<K> {
  const name = `${kind}.${field}`;
  return {
    size: () => 4,
    write: (w, p) => w.u32(p[field] as number, name),
    read: (r) => ({ kind, [field]: r.u32(name) }) as PacketOf<K>,
  };
}

/** Packets whose payload is a single u16 field. */
function u16Packet<K extends FixedKind>(
  kind: K,
  field: string & keyof PacketOf<K>,
): PacketLayout<K> {
  const name = `${kind}.${field}`;
  return {
    size: () => 2,
    write: (w, p) => w.u16(p[field] as number, name),
    read: (r) => ({ kind, [field]: r.u16(name) }) as PacketOf<K>,
  };
}

/** Packets whose payload is a single str16 field. */
function str16Packet<K extends FixedKind>(
  kind: K,
  field: string & keyof PacketOf<K>,
): PacketLayout<K> {
  const name = `${kind}.${field}`;
  return {
    size: (p) => str16Size(p[field] as string, name),
    write: (w, p) => w.str16(p[field] as string, name),
    read: (r) => ({ kind, [field]: r.str16(name) }) as PacketOf<K>,
  };
}

/** Packets with an empty payload. */
function emptyPacket<K extends FixedKind>(kind: K): PacketLayout<K> {
  const packet = { kind } as PacketOf<K>;
  return { size: () => 0, write: () => {}, read: () => packet };
}

function clusterInfoSize(c: ClusterInfo): number {
  // The minimum counts both strings and the endpoint count; their real sizes replace them.
  return CLUSTER_INFO_MIN_SIZE - 3 + str8Size(c.name, "ClusterInfo.name") +
    str8Size(c.host, "ClusterInfo.host") + endpointsSize(c.endpoints, "ClusterInfo.endpoints");
}

/** Wire codes of the endpoint kinds. */
const ENDPOINT_CODES: Readonly<Record<EndpointKind, number>> = { tcp: 1, tls: 2, ws: 3, wss: 4 };
const ENDPOINT_KINDS: readonly EndpointKind[] = ["tcp", "tls", "ws", "wss"];

/** Wire codes of the plugin states (ClusterPlugins); unknown codes decode to `unknown`. */
const PLUGIN_STATE_CODES: Readonly<Record<PluginStateName, number>> = {
  idle: 0,
  starting: 1,
  running: 2,
  restarting: 3,
  stopping: 4,
  stopped: 5,
  failed: 6,
  unknown: 255,
};

/** Most endpoints one list may hold (u8 count). */
const MAX_ENDPOINTS = 255;

/** Encoded bytes of an endpoint list: `u8 count`, then `u8 kind | u16 port | str8 path` each. */
function endpointsSize(endpoints: readonly Endpoint[] | undefined, name: string): number {
  if (endpoints === undefined) return 1;
  if (endpoints.length > MAX_ENDPOINTS) {
    throw new RangeError(`${name} holds ${endpoints.length} entries, at most ${MAX_ENDPOINTS}`);
  }
  let size = 1;
  for (const e of endpoints) {
    if (!(e.kind in ENDPOINT_CODES)) throw new RangeError(`${name}: unknown kind ${e.kind}`);
    size += 1 + 2 + str8Size(e.path, `${name}.path`);
  }
  return size;
}

function writeEndpoints(
  w: ByteWriter,
  endpoints: readonly Endpoint[] | undefined,
  name: string,
): void {
  w.u8(endpoints?.length ?? 0, `${name}.count`);
  for (const e of endpoints ?? []) {
    w.u8(ENDPOINT_CODES[e.kind], `${name}.kind`);
    w.u16(e.port, `${name}.port`);
    w.str8(e.path, `${name}.path`);
  }
}

/**
 * Reads an endpoint list; `undefined` when it is empty, so a packet without endpoints decodes
 * to the same object it was encoded from.
 */
function readEndpoints(r: ByteReader): readonly Endpoint[] | undefined {
  const count = r.u8("endpoints.count");
  if (count === 0) return undefined;
  if (count * 4 > r.remaining) {
    throw r.fail(`endpoint count ${count} does not fit the ${r.remaining} bytes left`);
  }
  const endpoints: Endpoint[] = [];
  for (let i = 0; i < count; i++) {
    const code = r.u8("endpoint.kind");
    const kind = ENDPOINT_KINDS[code - 1];
    if (kind === undefined) throw r.fail(`unknown endpoint kind ${code}`);
    endpoints.push({ kind, port: r.u16("endpoint.port"), path: r.str8("endpoint.path") });
  }
  return endpoints;
}

/** `fields` with `endpoints` set only when there are some. */
function withEndpoints<T extends object>(
  fields: T,
  endpoints: readonly Endpoint[] | undefined,
): T & { endpoints?: readonly Endpoint[] } {
  return endpoints === undefined ? fields : { ...fields, endpoints };
}

/**
 * Encoded bytes of one MoveBatch entry (client id and MoveState).
 *
 * @param e The entry.
 *
 * @example
 * ```ts
 * import { moveEntrySize } from "./packet_layouts.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(moveEntrySize({ clientId: 1, state: { x: 0, y: 0, z: 0 } }), 17);
 * ```
 */
export function moveEntrySize(e: MoveEntry): number {
  return 4 + moveStateSize(e.state);
}

/**
 * Writes one MoveBatch entry.
 *
 * @param w The writer, positioned at the entry.
 * @param e The entry.
 *
 * @example
 * ```ts
 * import { ByteWriter } from "./byte_writer.ts";
 * import { writeMoveEntry } from "./packet_layouts.ts";
 * import assert from "node:assert/strict";
 *
 * const out = new Uint8Array(17);
 * writeMoveEntry(new ByteWriter(out), { clientId: 2, state: { x: 1, y: 0, z: 0 } });
 * assert.equal(out.toHex(), "00000002" + "00" + "3f800000" + "00000000" + "00000000");
 * ```
 */
export function writeMoveEntry(w: ByteWriter, e: MoveEntry): void {
  w.u32(e.clientId, "MoveBatch.clientId");
  w.moveState(e.state);
}

/**
 * What a cluster announces in AnswerCluster: every field but the proof, which covers them.
 *
 * @example
 * ```ts
 * import type { AnnouncedFields } from "./packet_layouts.ts";
 * import assert from "node:assert/strict";
 *
 * const fields: AnnouncedFields = {
 *   name: "eu-1", host: "h", port: 1, maxConnections: 0, keyVersion: 1, publicKey: new Uint8Array(32),
 * };
 * assert.equal(fields.port, 1);
 * ```
 */
export type AnnouncedFields = Omit<PacketOf<"AnswerCluster">, "kind" | "proof">;

/**
 * Encoded bytes of the announced fields (AnswerCluster's payload before its proof).
 *
 * @param f The fields.
 * @throws {RangeError} For a field that cannot be encoded (named in the message).
 *
 * @example
 * ```ts
 * import { announcedFieldsSize } from "./packet_layouts.ts";
 * import assert from "node:assert/strict";
 *
 * const size = announcedFieldsSize({
 *   name: "a", host: "h", port: 1, maxConnections: 2, keyVersion: 3, publicKey: new Uint8Array(32),
 * });
 * assert.equal(size, 2 + 2 + 2 + 4 + 2 + 33 + 1); // … key32 publicKey, u8 endpoint count
 * ```
 */
export function announcedFieldsSize(f: AnnouncedFields): number {
  return str8Size(f.name, "AnswerCluster.name") + str8Size(f.host, "AnswerCluster.host") +
    2 + 4 + 2 + fixedSize(f.publicKey, KEY_MATERIAL_BYTES, "AnswerCluster.publicKey") +
    endpointsSize(f.endpoints, "AnswerCluster.endpoints");
}

/**
 * Writes the announced fields, as AnswerCluster carries them and its proof covers them.
 *
 * @param w The writer, positioned at the fields.
 * @param f The fields.
 *
 * @example
 * ```ts
 * import { ByteWriter } from "./byte_writer.ts";
 * import { writeAnnouncedFields } from "./packet_layouts.ts";
 * import assert from "node:assert/strict";
 *
 * const out = new Uint8Array(15);
 * writeAnnouncedFields(new ByteWriter(out), {
 *   name: "a", host: "h", port: 1, maxConnections: 2, keyVersion: 3, publicKey: new Uint8Array(1),
 * });
 * assert.equal(out.toHex(), "016101680001000000020003010000");
 * ```
 */
export function writeAnnouncedFields(w: ByteWriter, f: AnnouncedFields): void {
  w.str8(f.name, "AnswerCluster.name");
  w.str8(f.host, "AnswerCluster.host");
  w.u16(f.port, "AnswerCluster.port");
  w.u32(f.maxConnections, "AnswerCluster.maxConnections");
  w.u16(f.keyVersion, "AnswerCluster.keyVersion");
  w.bytes8(f.publicKey, "AnswerCluster.publicKey");
  writeEndpoints(w, f.endpoints, "AnswerCluster.endpoints");
}

/**
 * The layout of each fixed-type packet kind.
 *
 * @example Size a packet's payload
 * ```ts
 * import { PACKET_LAYOUTS } from "./packet_layouts.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(PACKET_LAYOUTS.Ping.size({ kind: "Ping", value: 1 }), 4);
 * ```
 */
export const PACKET_LAYOUTS: { readonly [K in FixedKind]: PacketLayout<K> } = {
  Hello: {
    size: () => 4 + 2 + 1,
    write(w, p) {
      w.raw(MAGIC, "Hello.magic");
      w.u16(p.version, "Hello.version");
      writeRole(w, p.role, "Hello.role");
    },
    read(r) {
      const magic = r.view(4, "magic");
      if (
        magic[0] !== MAGIC[0] || magic[1] !== MAGIC[1] || magic[2] !== MAGIC[2] ||
        magic[3] !== MAGIC[3]
      ) {
        throw r.fail(`magic is not "${PROTOCOL_MAGIC}"`);
      }
      return { kind: "Hello", version: r.u16("version"), role: readRole(r, "role") };
    },
  },
  HelloOk: {
    size: (p) => 2 + 1 + str8Size(p.serverName, "HelloOk.serverName"),
    write(w, p) {
      w.u16(p.version, "HelloOk.version");
      writeRole(w, p.role, "HelloOk.role");
      w.str8(p.serverName, "HelloOk.serverName");
    },
    read: (r) => ({
      kind: "HelloOk",
      version: r.u16("version"),
      role: readRole(r, "role"),
      serverName: r.str8("serverName"),
    }),
  },
  Error: {
    size: (p) => 2 + str16Size(p.reason, "Error.reason"),
    write(w, p) {
      w.u16(p.code, "Error.code");
      w.str16(p.reason, "Error.reason");
    },
    read: (r) => ({ kind: "Error", code: r.u16("code"), reason: r.str16("reason") }),
  },
  Ping: u32Packet("Ping", "value"),
  Pong: u32Packet("Pong", "value"),
  RequestClusters: emptyPacket("RequestClusters"),
  SendClusters: {
    size(p) {
      let size = countSize(p.clusters.length, "SendClusters.clusters");
      for (const c of p.clusters) size += clusterInfoSize(c);
      return size;
    },
    write(w, p) {
      w.u16(p.clusters.length, "SendClusters.count");
      for (const c of p.clusters) {
        w.u32(c.id, "ClusterInfo.id");
        w.str8(c.name, "ClusterInfo.name");
        w.str8(c.host, "ClusterInfo.host");
        w.u16(c.port, "ClusterInfo.port");
        w.u32(c.load, "ClusterInfo.load");
        w.u32(c.maxConnections, "ClusterInfo.maxConnections");
        w.u16(c.keyVersion, "ClusterInfo.keyVersion");
        w.u8(c.full ? 1 : 0, "ClusterInfo.flags");
        writeEndpoints(w, c.endpoints, "ClusterInfo.endpoints");
      }
    },
    read(r) {
      const count = r.u16("count");
      if (count * CLUSTER_INFO_MIN_SIZE > r.remaining) {
        throw r.fail(`count ${count} does not fit the ${r.remaining} bytes left`);
      }
      const clusters: ClusterInfo[] = [];
      for (let i = 0; i < count; i++) {
        const id = r.u32("id");
        const name = r.str8("name");
        const host = r.str8("host");
        const port = r.u16("port");
        const load = r.u32("load");
        const maxConnections = r.u32("maxConnections");
        const keyVersion = r.u16("keyVersion");
        const flags = r.u8("flags");
        if (flags > 1) throw r.fail(`cluster flags 0x${flags.toString(16)} has reserved bits`);
        clusters.push(withEndpoints({
          id,
          name,
          host,
          port,
          load,
          maxConnections,
          keyVersion,
          full: flags === 1,
        }, readEndpoints(r)));
      }
      return { kind: "SendClusters", clusters };
    },
  },
  JoinCluster: {
    size: (p) =>
      4 + fixedSize(p.clientPublicKey, KEY_MATERIAL_BYTES, "JoinCluster.clientPublicKey") +
      bytes16Size(p.credential, "JoinCluster.credential"),
    write(w, p) {
      w.u32(p.clusterId, "JoinCluster.clusterId");
      w.bytes8(p.clientPublicKey, "JoinCluster.clientPublicKey");
      w.bytes16(p.credential, "JoinCluster.credential");
    },
    read: (r) => ({
      kind: "JoinCluster",
      clusterId: r.u32("clusterId"),
      clientPublicKey: r.fixed8(KEY_MATERIAL_BYTES, "clientPublicKey"),
      credential: r.bytes16("credential"),
    }),
  },
  JoinTicket: {
    size: (p) =>
      4 + str8Size(p.host, "JoinTicket.host") + 2 + 2 +
      fixedSize(p.clusterPublicKey, KEY_MATERIAL_BYTES, "JoinTicket.clusterPublicKey") +
      bytes16Size(p.ticket, "JoinTicket.ticket") +
      endpointsSize(p.endpoints, "JoinTicket.endpoints"),
    write(w, p) {
      w.u32(p.clusterId, "JoinTicket.clusterId");
      w.str8(p.host, "JoinTicket.host");
      w.u16(p.port, "JoinTicket.port");
      w.u16(p.keyVersion, "JoinTicket.keyVersion");
      w.bytes8(p.clusterPublicKey, "JoinTicket.clusterPublicKey");
      w.bytes16(p.ticket, "JoinTicket.ticket");
      writeEndpoints(w, p.endpoints, "JoinTicket.endpoints");
    },
    read: (r) =>
      withEndpoints({
        kind: "JoinTicket" as const,
        clusterId: r.u32("clusterId"),
        host: r.str8("host"),
        port: r.u16("port"),
        keyVersion: r.u16("keyVersion"),
        clusterPublicKey: r.fixed8(KEY_MATERIAL_BYTES, "clusterPublicKey"),
        ticket: r.bytes16("ticket"),
      }, readEndpoints(r)),
  },
  BecomeCluster: {
    size: (p) =>
      str8Size(p.keyName, "BecomeCluster.keyName") +
      fixedSize(p.clusterNonce, KEY_MATERIAL_BYTES, "BecomeCluster.clusterNonce"),
    write(w, p) {
      w.str8(p.keyName, "BecomeCluster.keyName");
      w.bytes8(p.clusterNonce, "BecomeCluster.clusterNonce");
    },
    read: (r) => ({
      kind: "BecomeCluster",
      keyName: r.str8("keyName"),
      clusterNonce: r.fixed8(KEY_MATERIAL_BYTES, "clusterNonce"),
    }),
  },
  VerifyCluster: {
    size: (p) => bytes8Size(p.sealedPassphrase, "VerifyCluster.sealedPassphrase"),
    write: (w, p) => w.bytes8(p.sealedPassphrase, "VerifyCluster.sealedPassphrase"),
    read: (r) => ({ kind: "VerifyCluster", sealedPassphrase: r.bytes8("sealedPassphrase") }),
  },
  AnswerCluster: {
    size: (p) =>
      announcedFieldsSize(p) + fixedSize(p.proof, KEY_MATERIAL_BYTES, "AnswerCluster.proof"),
    write(w, p) {
      writeAnnouncedFields(w, p);
      w.bytes8(p.proof, "AnswerCluster.proof");
    },
    read(r) {
      const fields = {
        kind: "AnswerCluster" as const,
        name: r.str8("name"),
        host: r.str8("host"),
        port: r.u16("port"),
        maxConnections: r.u32("maxConnections"),
        keyVersion: r.u16("keyVersion"),
        publicKey: r.fixed8(KEY_MATERIAL_BYTES, "publicKey"),
      };
      const endpoints = readEndpoints(r);
      return { ...withEndpoints(fields, endpoints), proof: r.fixed8(KEY_MATERIAL_BYTES, "proof") };
    },
  },
  CreateCluster: u32Packet("CreateCluster", "clusterId"),
  Heartbeat: {
    size: () => 8,
    write(w, p) {
      w.u32(p.load, "Heartbeat.load");
      w.u32(p.maxConnections, "Heartbeat.maxConnections");
    },
    read: (r) => ({
      kind: "Heartbeat",
      load: r.u32("load"),
      maxConnections: r.u32("maxConnections"),
    }),
  },
  Deregister: str16Packet("Deregister", "reason"),
  ClusterPage: str16Packet("ClusterPage", "url"),
  ClusterPlugins: {
    size(p) {
      if (p.plugins.length > MAX_PLUGIN_SUMMARIES) {
        throw new RangeError(
          `ClusterPlugins holds ${p.plugins.length} plugins, at most ${MAX_PLUGIN_SUMMARIES}`,
        );
      }
      let size = 1;
      for (const plugin of p.plugins) {
        if (!(plugin.state in PLUGIN_STATE_CODES)) {
          throw new RangeError(`ClusterPlugins: unknown state ${plugin.state}`);
        }
        size += str8Size(plugin.name, "ClusterPlugins.name") + 1 + 4;
      }
      return size;
    },
    write(w, p) {
      w.u8(p.plugins.length, "ClusterPlugins.count");
      for (const plugin of p.plugins) {
        w.str8(plugin.name, "ClusterPlugins.name");
        w.u8(PLUGIN_STATE_CODES[plugin.state], "ClusterPlugins.state");
        w.u32(plugin.restarts, "ClusterPlugins.restarts");
      }
    },
    read(r) {
      const count = r.u8("count");
      if (count > MAX_PLUGIN_SUMMARIES) {
        throw r.fail(`plugin count ${count} above ${MAX_PLUGIN_SUMMARIES}`);
      }
      const plugins: PluginSummary[] = [];
      for (let i = 0; i < count; i++) {
        const name = r.str8("name");
        const state = PLUGIN_STATES[r.u8("state")] ?? "unknown";
        plugins.push({ name, state, restarts: r.u32("restarts") });
      }
      return { kind: "ClusterPlugins", plugins };
    },
  },
  RequestKey: u16Packet("RequestKey", "cachedVersion"),
  VersionOfKey: u16Packet("VersionOfKey", "version"),
  SendPubKey: {
    size: (p) => 2 + fixedSize(p.publicKey, KEY_MATERIAL_BYTES, "SendPubKey.publicKey"),
    write(w, p) {
      w.u16(p.version, "SendPubKey.version");
      w.bytes8(p.publicKey, "SendPubKey.publicKey");
    },
    read: (r) => ({
      kind: "SendPubKey",
      version: r.u16("version"),
      publicKey: r.fixed8(KEY_MATERIAL_BYTES, "publicKey"),
    }),
  },
  KeyExchange: {
    size: (p) =>
      fixedSize(p.clientPublicKey, KEY_MATERIAL_BYTES, "KeyExchange.clientPublicKey") +
      fixedSize(p.clientRandom, KEY_MATERIAL_BYTES, "KeyExchange.clientRandom"),
    write(w, p) {
      w.bytes8(p.clientPublicKey, "KeyExchange.clientPublicKey");
      w.bytes8(p.clientRandom, "KeyExchange.clientRandom");
    },
    read: (r) => ({
      kind: "KeyExchange",
      clientPublicKey: r.fixed8(KEY_MATERIAL_BYTES, "clientPublicKey"),
      clientRandom: r.fixed8(KEY_MATERIAL_BYTES, "clientRandom"),
    }),
  },
  KeyExchangeOk: {
    size: (p) => fixedSize(p.serverRandom, KEY_MATERIAL_BYTES, "KeyExchangeOk.serverRandom"),
    write: (w, p) => w.bytes8(p.serverRandom, "KeyExchangeOk.serverRandom"),
    read: (r) => ({
      kind: "KeyExchangeOk",
      serverRandom: r.fixed8(KEY_MATERIAL_BYTES, "serverRandom"),
    }),
  },
  SendPassword: {
    size: (p) => bytes16Size(p.ticket, "SendPassword.ticket"),
    write: (w, p) => w.bytes16(p.ticket, "SendPassword.ticket"),
    read: (r) => ({ kind: "SendPassword", ticket: r.bytes16("ticket") }),
  },
  Authenticate: {
    size: () => 1 + 4,
    write(w, p) {
      if (!AUTH_STATUSES.has(p.status)) {
        throw new RangeError(`Authenticate.status must be an AuthStatus, got ${p.status}`);
      }
      w.u8(p.status, "Authenticate.status");
      w.u32(p.clientId, "Authenticate.clientId");
    },
    read(r) {
      const status = r.u8("status");
      if (!AUTH_STATUSES.has(status)) throw r.fail(`status ${status} is not an AuthStatus`);
      return { kind: "Authenticate", status: status as AuthStatus, clientId: r.u32("clientId") };
    },
  },
  ClusterJoinCluster: u32Packet("ClusterJoinCluster", "clusterId"),
  LeaveCluster: emptyPacket("LeaveCluster"),
  DisconnectCluster: str16Packet("DisconnectCluster", "reason"),
  Move: {
    size: (p) => moveStateSize(p.state),
    write: (w, p) => w.moveState(p.state),
    read: (r) => ({ kind: "Move", state: r.moveState("state") }),
  },
  MoveBatch: {
    size(p) {
      let size = countSize(p.entries.length, "MoveBatch.entries");
      for (const e of p.entries) size += moveEntrySize(e);
      return size;
    },
    write(w, p) {
      w.u16(p.entries.length, "MoveBatch.count");
      for (const e of p.entries) writeMoveEntry(w, e);
    },
    read(r) {
      const count = r.u16("count");
      if (count * MOVE_ENTRY_MIN_SIZE > r.remaining) {
        throw r.fail(`count ${count} does not fit the ${r.remaining} bytes left`);
      }
      const entries: MoveEntry[] = new Array(count);
      for (let i = 0; i < count; i++) {
        entries[i] = { clientId: r.u32("clientId"), state: r.moveState("state") };
      }
      return { kind: "MoveBatch", entries };
    },
  },
  Spawn: {
    size: (p) => 4 + str8Size(p.playerId, "Spawn.playerId") + moveStateSize(p.state),
    write(w, p) {
      w.u32(p.clientId, "Spawn.clientId");
      w.str8(p.playerId, "Spawn.playerId");
      w.moveState(p.state);
    },
    read: (r) => ({
      kind: "Spawn",
      clientId: r.u32("clientId"),
      playerId: r.str8("playerId"),
      state: r.moveState("state"),
    }),
  },
  Despawn: u32Packet("Despawn", "clientId"),
  TlsJoin: {
    size: (p) =>
      fixedSize(p.bindingSecret, KEY_MATERIAL_BYTES, "TlsJoin.bindingSecret") +
      bytes16Size(p.ticket, "TlsJoin.ticket"),
    write(w, p) {
      w.bytes8(p.bindingSecret, "TlsJoin.bindingSecret");
      w.bytes16(p.ticket, "TlsJoin.ticket");
    },
    read: (r) => ({
      kind: "TlsJoin",
      bindingSecret: r.fixed8(KEY_MATERIAL_BYTES, "bindingSecret"),
      ticket: r.bytes16("ticket"),
    }),
  },
};

/**
 * Kind and layout by type byte, for decoding; `undefined` for undefined types.
 *
 * @example
 * ```ts
 * import { LAYOUT_BY_TYPE } from "./packet_layouts.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(LAYOUT_BY_TYPE[0x2a]?.kind, "Move");
 * assert.equal(LAYOUT_BY_TYPE[0x06], undefined);
 * ```
 */
export const LAYOUT_BY_TYPE:
  readonly ({ kind: FixedKind; layout: PacketLayout<FixedKind> } | undefined)[] = (() => {
    const table: ({ kind: FixedKind; layout: PacketLayout<FixedKind> } | undefined)[] = [];
    for (const kind of Object.keys(PacketType) as FixedKind[]) {
      table[PacketType[kind]] = { kind, layout: PACKET_LAYOUTS[kind] as PacketLayout<FixedKind> };
    }
    return table;
  })();
