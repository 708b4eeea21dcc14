// This module is browser compatible.
/**
 * The text form of registry store records and events (JSON, the public key in hex), for
 * stores that keep strings (Redis values and pub/sub messages). Decoding checks every field
 * and returns `undefined` for anything else: a store answering garbage must never put a
 * malformed cluster in the registry.
 *
 * @module
 */

import type { Endpoint } from "../shared/protocol/packets.ts";
import type { ClusterId, ClusterRemovalReason } from "./registry.ts";
import type { RegistryStoreEvent, StoredCluster } from "./registry_store.ts";

const REASONS: readonly ClusterRemovalReason[] = [
  "deregistered",
  "heartbeat_timeout",
  "disconnected",
  "replaced",
  "shutdown",
];

/**
 * A record as JSON text.
 *
 * @example Round trip
 * ```ts
 * import { decodeStoredCluster, encodeStoredCluster } from "./registry_store_codec.ts";
 * import type { ClusterId } from "./registry.ts";
 * import assert from "node:assert/strict";
 *
 * const record = {
 *   id: 9 as ClusterId, name: "eu-1", host: "10.0.0.2", port: 6257, maxConnections: 100,
 *   keyVersion: 1, publicKey: new Uint8Array(32).fill(7), keyName: "k", load: 4,
 *   registeredAt: 1, lastHeartbeat: 2, owner: "abc",
 * };
 * assert.deepEqual(decodeStoredCluster(encodeStoredCluster(record)), record);
 * assert.equal(decodeStoredCluster("garbage"), undefined);
 * ```
 */
export function encodeStoredCluster(record: StoredCluster): string {
  return JSON.stringify(recordJson(record));
}

function recordJson(record: StoredCluster): Record<string, unknown> {
  return {
    id: record.id,
    name: record.name,
    host: record.host,
    port: record.port,
    maxConnections: record.maxConnections,
    keyVersion: record.keyVersion,
    publicKey: record.publicKey.toHex(),
    keyName: record.keyName,
    load: record.load,
    registeredAt: record.registeredAt,
    lastHeartbeat: record.lastHeartbeat,
    owner: record.owner,
    ...(record.endpoints === undefined ? {} : { endpoints: record.endpoints }),
  };
}

/** The record in `text`, or `undefined` if it is not a well-formed one. */
export function decodeStoredCluster(text: string): StoredCluster | undefined {
  return recordFrom(parse(text));
}

function parse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined; // garbage is answered with undefined, by contract
  }
}

const U32 = 0xffff_ffff;

function int(value: unknown, min: number, max: number): value is number {
  return typeof value === "number" && Number.isInteger(value) && value >= min && value <= max;
}

function str(value: unknown, maxLength: number): value is string {
  return typeof value === "string" && value.length <= maxLength;
}

function recordFrom(value: unknown): StoredCluster | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const v = value as Record<string, unknown>;
  if (
    !int(v.id, 1, U32) || !str(v.name, 255) || !str(v.host, 255) || !int(v.port, 1, 65535) ||
    !int(v.maxConnections, 0, U32) || !int(v.keyVersion, 0, U32) || !str(v.keyName, 64) ||
    !int(v.load, 0, U32) || !int(v.registeredAt, 0, Number.MAX_SAFE_INTEGER) ||
    !int(v.lastHeartbeat, 0, Number.MAX_SAFE_INTEGER) || !str(v.owner, 64) ||
    typeof v.publicKey !== "string" || !/^([0-9a-f]{2}){1,255}$/.test(v.publicKey)
  ) {
    return undefined;
  }
  const endpoints = v.endpoints === undefined ? undefined : endpointsFrom(v.endpoints);
  if (endpoints === null) return undefined;
  return {
    id: v.id as ClusterId,
    name: v.name,
    host: v.host,
    port: v.port,
    maxConnections: v.maxConnections,
    keyVersion: v.keyVersion,
    publicKey: Uint8Array.fromHex(v.publicKey),
    keyName: v.keyName,
    load: v.load,
    registeredAt: v.registeredAt,
    lastHeartbeat: v.lastHeartbeat,
    owner: v.owner,
    ...(endpoints === undefined ? {} : { endpoints }),
  };
}

const ENDPOINT_KINDS: readonly string[] = ["tcp", "tls", "ws", "wss"];

// The announced endpoints as the wire allows them (u8 count, u16 ports, str8 paths), else null.
function endpointsFrom(value: unknown): Endpoint[] | null {
  if (!Array.isArray(value) || value.length > 255) return null;
  const endpoints: Endpoint[] = [];
  for (const item of value) {
    if (typeof item !== "object" || item === null) return null;
    const e = item as Record<string, unknown>;
    if (
      typeof e.kind !== "string" || !ENDPOINT_KINDS.includes(e.kind) || !int(e.port, 1, 65535) ||
      !str(e.path, 255)
    ) {
      return null;
    }
    endpoints.push({ kind: e.kind as Endpoint["kind"], port: e.port, path: e.path });
  }
  return endpoints;
}

/**
 * An event as JSON text (`resync` and `health` are local and never sent).
 *
 * @example
 * ```ts
 * import { decodeStoreEvent, encodeStoreEvent } from "./registry_store_codec.ts";
 * import assert from "node:assert/strict";
 *
 * const event = { kind: "reserve", owner: "m1", id: 3, sentAt: 10 } as const;
 * assert.deepEqual(decodeStoreEvent(encodeStoreEvent(event)), event);
 * assert.equal(decodeStoreEvent('{"kind":"down"}'), undefined);
 * ```
 */
export function encodeStoreEvent(
  event: Exclude<RegistryStoreEvent, { kind: "resync" | "health" }>,
): string {
  switch (event.kind) {
    case "up":
    case "heartbeat":
      return JSON.stringify({
        kind: event.kind,
        record: recordJson(event.record),
        sentAt: event.sentAt,
      });
    case "down":
    case "reserve":
      return JSON.stringify(event);
  }
}

/** The event in `text`, or `undefined` if it is not a well-formed one. */
export function decodeStoreEvent(text: string): RegistryStoreEvent | undefined {
  const value = parse(text);
  if (typeof value !== "object" || value === null) return undefined;
  const v = value as Record<string, unknown>;
  if (!int(v.sentAt, 0, Number.MAX_SAFE_INTEGER)) return undefined;
  const sentAt = v.sentAt;
  switch (v.kind) {
    case "up":
    case "heartbeat": {
      const record = recordFrom(v.record);
      return record === undefined ? undefined : { kind: v.kind, record, sentAt };
    }
    case "down": {
      const reason = REASONS.find((r) => r === v.reason);
      if (!int(v.id, 1, U32) || !str(v.owner, 64) || reason === undefined) return undefined;
      return { kind: "down", owner: v.owner, id: v.id, reason, sentAt };
    }
    case "reserve":
      if (!int(v.id, 1, U32) || !str(v.owner, 64)) return undefined;
      return { kind: "reserve", owner: v.owner, id: v.id, sentAt };
    default:
      return undefined;
  }
}
