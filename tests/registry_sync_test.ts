/**
 * RegistrySync without Redis: masters in one process sharing a MemoryRegistrySpace (the
 * in-memory store), so the sharing rules are checked quickly and exactly — remote heartbeats,
 * removals, reservations counted alike on every master, silent remote clusters dropped, and
 * nothing dropped while the store is down.
 */

import assert from "node:assert/strict";
import { ClusterAllocator } from "../master/allocation.ts";
import { MemoryRegistrySpace, MemoryRegistryStore } from "../master/memory_registry_store.ts";
import { type ClusterAnnouncement, type ClusterId, ClusterRegistry } from "../master/registry.ts";
import { decodeStoredCluster, encodeStoredCluster } from "../master/registry_store_codec.ts";
import type {
  RegistryStore,
  RegistryStoreEvent,
  RegistryStoreHealth,
} from "../master/registry_store.ts";
import { RegistrySync } from "../master/registry_sync.ts";
import { waitUntil } from "./_raw_client.ts";

const announcement = (name: string, port: number, maxConnections = 100): ClusterAnnouncement => ({
  name,
  host: "10.0.0.2",
  port,
  maxConnections,
  keyVersion: 1,
  publicKey: new Uint8Array(32),
  keyName: "cluster_key",
});

/** A memory store whose health the test sets, as a failing engine would report it. */
class FlakyStore extends MemoryRegistryStore {
  #health: RegistryStoreHealth = { ok: true, detail: "ok", since: Date.now() };
  #emit: ((event: RegistryStoreEvent) => void) | undefined;

  override open(onEvent: (event: RegistryStoreEvent) => void): Promise<void> {
    this.#emit = onEvent;
    return super.open(onEvent);
  }

  set(ok: boolean): void {
    this.#health = { ok, detail: ok ? "ok" : "down", since: Date.now() };
    this.#emit?.({ kind: "health", health: this.#health });
  }

  override health(): RegistryStoreHealth {
    return this.#health;
  }
}

async function masters(
  count: number,
  timeoutMs = 300,
  store?: (space: MemoryRegistrySpace) => RegistryStore,
) {
  const space = new MemoryRegistrySpace();
  const list: {
    registry: ClusterRegistry;
    allocator: ClusterAllocator;
    sync: RegistrySync;
    store: RegistryStore;
  }[] = [];
  for (let i = 0; i < count; i++) {
    const registry = new ClusterRegistry();
    let sync: RegistrySync | undefined = undefined;
    const allocator = new ClusterAllocator({
      registry,
      ticketTtlMs: 30_000,
      reservationWindowMs: 60_000,
      onReserve: (id) => sync?.reserved(id),
    });
    const shared = store?.(space) ?? new MemoryRegistryStore({ space });
    sync = new RegistrySync({
      registry,
      allocator,
      store: shared,
      heartbeatTimeoutMs: timeoutMs,
      reservationWindowMs: 60_000,
      ticketTtlMs: 30_000,
    });
    await sync.start();
    list.push({ registry, allocator, sync, store: shared });
  }
  return {
    list,
    async [Symbol.asyncDispose]() {
      for (const m of list) await m.sync.stop();
    },
  };
}

Deno.test("heartbeats and removals on one master reach the other", async () => {
  await using m = await masters(2, 60_000);
  const [a, b] = m.list;
  const { record } = a.registry.register(announcement("eu-1", 1), Date.now());
  await waitUntil(() => b.registry.get(record.id) !== undefined, "b lists it");
  assert.equal(b.registry.get(record.id)?.owner, a.store.masterId);
  a.registry.heartbeat(record.id, 42, 100, Date.now());
  await waitUntil(() => b.registry.get(record.id)?.load === 42, "b sees the load");
  a.registry.remove(record.id, "deregistered");
  await waitUntil(() => b.registry.size === 0, "b drops it");
});

Deno.test("every master places by the same reservations", async () => {
  await using m = await masters(2, 60_000);
  const [a, b] = m.list;
  const now = Date.now();
  const first = a.registry.register(announcement("c1", 1, 10), now).record;
  const second = b.registry.register(announcement("c2", 2, 10), now).record;
  await waitUntil(() => a.registry.size === 2 && b.registry.size === 2, "both list both");
  // Alternate masters; each pick is reserved and shared before the next.
  const picks = new Map<number, number>();
  for (let i = 0; i < 20; i++) {
    const master = i % 2 === 0 ? a : b;
    const choice = master.allocator.choose(0, Date.now());
    assert.ok(choice.ok, `join ${i} refused`);
    master.allocator.reserve(choice.record.id, Date.now());
    picks.set(choice.record.id, (picks.get(choice.record.id) ?? 0) + 1);
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
  assert.deepEqual([picks.get(first.id), picks.get(second.id)], [10, 10]);
  // Both full now, on both masters.
  for (const master of [a, b]) assert.equal(master.allocator.choose(0, Date.now()).ok, false);
});

Deno.test("a remote cluster whose heartbeats stop is dropped; none is while the store is down", async () => {
  const stores: FlakyStore[] = [];
  await using m = await masters(2, 300, (space) => {
    const store = new FlakyStore({ space });
    stores.push(store);
    return store;
  });
  const [a, b] = m.list;
  const { record } = a.registry.register(announcement("eu-1", 1), Date.now());
  await waitUntil(() => b.registry.get(record.id) !== undefined, "b lists it");
  // The store goes down on b: a's silence cannot be heard, so nothing is dropped.
  stores[1].set(false);
  await new Promise((resolve) => setTimeout(resolve, 900));
  assert.equal(b.registry.size, 1);
  // Back up: the owner is given a full timeout from then, and still silent, is dropped.
  stores[1].set(true);
  const upAt = Date.now();
  await waitUntil(() => b.registry.size === 0, "b drops the silent cluster");
  assert.ok(Date.now() - upAt >= 250, "dropped before a full timeout after the store returned");
});

Deno.test("a stored record keeps the cluster's announced endpoints; bad ones make it unreadable", () => {
  const record = {
    id: 9 as ClusterId,
    name: "eu-1",
    host: "10.0.0.2",
    port: 6257,
    maxConnections: 100,
    keyVersion: 1,
    publicKey: new Uint8Array(32).fill(7),
    keyName: "cluster_key",
    load: 4,
    registeredAt: 1,
    lastHeartbeat: 2,
    owner: "m1",
    endpoints: [
      { kind: "ws", port: 6291, path: "/sustenet" },
      { kind: "tls", port: 6267, path: "" },
    ],
  } as const;
  // Another master lists the cluster with what it announced, so WebSocket and TLS clients can
  // join it through any master.
  assert.deepEqual(decodeStoredCluster(encodeStoredCluster(record)), record);
  const bad = JSON.parse(encodeStoredCluster(record));
  bad.endpoints[0].kind = "quic";
  assert.equal(decodeStoredCluster(JSON.stringify(bad)), undefined);
});
