/**
 * {@linkcode RedisRegistryStore}: the registry store on Redis (npm `redis`, node-redis), shared
 * by several masters. Keys (under a prefix, default `sustenet`):
 *
 * - `<p>:cluster:<id>` — the record as JSON, written `SET NX PX` at registration (the atomic
 *   id claim) and `SET PX` on every heartbeat, so a record whose master died expires;
 * - `<p>:res:<id>:<random>` — one reservation, `PX` the reservation window;
 * - `<p>:ticket:<hex>` — one issued ticket id, `SET NX PX` the ticket lifetime;
 * - channel `<p>:events` — every change as JSON (registry_store_codec.ts), so other masters
 *   apply it within milliseconds.
 *
 * Every command has a deadline; a failed or late answer (Redis down, slow, or answering
 * garbage) marks the store unhealthy and a probe marks it healthy again, which makes the
 * master rebuild. It must never log the URL's password, and never throw from a timer or an
 * event handler.
 *
 * @module
 */

import { createClient } from "redis";
import { roleLogger } from "../shared/logging.ts";
import type { ClusterRemovalReason } from "./registry.ts";
import {
  newMasterId,
  type RegistrySnapshot,
  type RegistryStore,
  RegistryStoreError,
  type RegistryStoreEvent,
  type RegistryStoreHealth,
  type StoredCluster,
} from "./registry_store.ts";
import {
  decodeStoredCluster,
  decodeStoreEvent,
  encodeStoredCluster,
  encodeStoreEvent,
} from "./registry_store_codec.ts";

const logger = roleLogger("master", "redis_store");

/** Most keys a snapshot reads (a bound, far above any real deployment). */
const MAX_SNAPSHOT_KEYS = 100_000;
/** Keys read per MGET. */
const MGET_CHUNK = 500;

/** Options of {@linkcode RedisRegistryStore}. */
export interface RedisRegistryStoreOptions {
  /** `redis://[user:password@]host:port[/db]` (or `rediss://`). */
  readonly url: string;
  /**
   * Prefix of every key and of the channel.
   *
   * @default {"sustenet"}
   */
  readonly keyPrefix?: string;
  /**
   * Time to connect at start before giving up, in ms.
   *
   * @default {3000}
   */
  readonly connectTimeoutMs?: number;
  /**
   * Deadline of each command, in ms.
   *
   * @default {1000}
   */
  readonly operationTimeoutMs?: number;
  /**
   * Time between health probes (PING), in ms.
   *
   * @default {500}
   */
  readonly probeIntervalMs?: number;
}

/**
 * The URL with its password replaced by `***`, for logs and errors.
 *
 * @example
 * ```ts
 * import { redactRedisUrl } from "./redis_registry_store.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(redactRedisUrl("redis://u:secret@h:6379/0"), "redis://u:***@h:6379/0");
 * assert.equal(redactRedisUrl("redis://h:6379"), "redis://h:6379");
 * ```
 */
export function redactRedisUrl(url: string): string {
  if (!URL.canParse(url)) return "(unparseable URL)";
  const parsed = new URL(url);
  if (parsed.password !== "") parsed.password = "***";
  return parsed.href.replace(/\/$/, "");
}

function newRedisClient(
  url: string,
  connectTimeout: number,
  retry: (retries: number, cause: Error) => number | Error,
) {
  return createClient({
    url,
    // Fail commands at once while disconnected instead of queueing them without bound.
    disableOfflineQueue: true,
    socket: { connectTimeout, reconnectStrategy: retry },
  });
}

type Client = ReturnType<typeof newRedisClient>;

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * A {@linkcode RegistryStore} on Redis.
 *
 * @example An unreachable Redis fails `open` naming the URL
 * ```ts
 * import { RedisRegistryStore } from "./redis_registry_store.ts";
 * import assert from "node:assert/strict";
 *
 * const free = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const url = `redis://127.0.0.1:${free.addr.port}`;
 * free.close(); // nothing listens there now
 * const store = new RedisRegistryStore({ url, connectTimeoutMs: 500 });
 * await assert.rejects(store.open(() => {}), (e: Error) => e.message.includes(url));
 * ```
 */
export class RedisRegistryStore implements RegistryStore {
  /** Always `"redis"`. */
  readonly kind = "redis";
  /** This master's id. */
  readonly masterId: string = newMasterId();
  readonly #url: string;
  readonly #shownUrl: string;
  readonly #prefix: string;
  readonly #channel: string;
  readonly #connectTimeoutMs: number;
  readonly #opTimeoutMs: number;
  readonly #probeIntervalMs: number;
  #client: Client | undefined;
  #subscriber: Client | undefined;
  #onEvent: (event: RegistryStoreEvent) => void = () => {};
  #health: RegistryStoreHealth;
  #opened = false;
  #closed = false;
  #probeTimer: ReturnType<typeof setInterval> | undefined;
  #probing = false;
  /** Probes that timed out in a row (a silent Redis keeps the socket open). */
  #lateProbes = 0;
  #recycling = false;

  /**
   * Makes a new RedisRegistryStore.
   *
   * @param options URL, prefix and timings.
   */
  constructor(options: RedisRegistryStoreOptions) {
    this.#url = options.url;
    this.#shownUrl = redactRedisUrl(options.url);
    this.#prefix = options.keyPrefix ?? "sustenet";
    this.#channel = `${this.#prefix}:events`;
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 3000;
    this.#opTimeoutMs = options.operationTimeoutMs ?? 1000;
    this.#probeIntervalMs = options.probeIntervalMs ?? 500;
    this.#health = { ok: false, detail: "not connected", since: Date.now() };
  }

  /**
   * Connects both clients (commands and pub/sub) and checks Redis answers PING.
   *
   * @throws {RegistryStoreError} `store_unreachable`, naming the URL (password hidden).
   */
  async open(onEvent: (event: RegistryStoreEvent) => void): Promise<void> {
    this.#onEvent = onEvent;
    try {
      this.#client = this.#newClient("commands");
      await this.#deadline(this.#client.connect(), this.#connectTimeoutMs, "connect");
      const pong = await this.#deadline(this.#client.ping(), this.#connectTimeoutMs, "PING");
      if (pong !== "PONG") throw new Error(`PING answered ${JSON.stringify(pong)}`);
      this.#subscriber = this.#newClient("pub/sub");
      await this.#deadline(this.#subscriber.connect(), this.#connectTimeoutMs, "connect");
      await this.#deadline(
        this.#subscriber.subscribe(this.#channel, (text: string) => this.#onMessage(text)),
        this.#connectTimeoutMs,
        "SUBSCRIBE",
      );
    } catch (error) {
      this.#destroy();
      throw new RegistryStoreError(
        "store_unreachable",
        `cannot reach Redis at ${this.#shownUrl} (redis_url): ${message(error)}`,
      );
    }
    this.#opened = true;
    this.#setHealth(true, "ok");
    this.#probeTimer = setInterval(() => this.#probe(), this.#probeIntervalMs);
  }

  #newClient(role: string): Client {
    // Before open() succeeds a failure is final (open reports it); after, retry for ever
    // with a short capped backoff so a restarted Redis is found within a second.
    const client = newRedisClient(
      this.#url,
      this.#connectTimeoutMs,
      (retries, cause) => this.#opened && !this.#closed ? Math.min(50 * 2 ** retries, 1000) : cause,
    );
    client.on("error", (error: unknown) => {
      if (this.#opened && !this.#closed) this.#setHealth(false, `${role}: ${message(error)}`);
    });
    client.on("ready", () => {
      // A pub/sub reconnect may have missed messages: rebuild from a snapshot.
      if (this.#opened && !this.#closed && role === "pub/sub") this.#emit({ kind: "resync" });
    });
    return client;
  }

  async #deadline<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
    });
    try {
      return await Promise.race([work, late]);
    } finally {
      clearTimeout(timer);
      // The losing side may still settle; never let it become an unhandled rejection.
      work.catch(() => {});
    }
  }

  /** Runs one command with the operation deadline; a failure marks the store unhealthy. */
  async #op<T>(what: string, run: (client: Client) => Promise<T>): Promise<T> {
    const client = this.#client;
    if (client === undefined || this.#closed) {
      throw new RegistryStoreError("store_failed", "redis store is closed");
    }
    try {
      return await this.#deadline(run(client), this.#opTimeoutMs, what);
    } catch (error) {
      this.#setHealth(false, `${what}: ${message(error)}`);
      throw new RegistryStoreError(
        "store_failed",
        `${what} on ${this.#shownUrl}: ${message(error)}`,
      );
    }
  }

  #probe(): void {
    if (this.#probing || this.#closed) return;
    this.#probing = true;
    this.#op("PING", (client) => client.ping()).then((pong) => {
      this.#lateProbes = 0;
      if (pong !== "PONG") {
        this.#setHealth(false, `PING answered ${JSON.stringify(pong)}`);
      } else if (this.#subscriber?.isReady !== true) {
        this.#setHealth(false, "pub/sub connection down");
      } else {
        this.#setHealth(true, "ok");
      }
    }, (error: unknown) => {
      // #op has recorded the failure in the health state. A Redis that accepts and never
      // answers leaves commands waiting on its socket: after 3 late probes, new sockets.
      if (String(error).includes("timed out") && ++this.#lateProbes >= 3) this.#recycle();
    }).finally(() => {
      this.#probing = false;
    });
  }

  /** Drops both connections and opens new ones (their commands in flight fail). */
  #recycle(): void {
    if (this.#recycling || this.#closed) return;
    this.#recycling = true;
    this.#lateProbes = 0;
    for (const client of [this.#subscriber, this.#client]) {
      try {
        if (client?.isOpen === true) client.destroy();
      } catch {
        // Already closed: nothing to release.
      }
    }
    const client = this.#newClient("commands");
    const subscriber = this.#newClient("pub/sub");
    this.#client = client;
    this.#subscriber = subscriber;
    (async () => {
      await client.connect();
      await subscriber.connect();
      await subscriber.subscribe(this.#channel, (text: string) => this.#onMessage(text));
    })().catch((error: unknown) => {
      this.#setHealth(false, `reconnect: ${message(error)}`);
    }).finally(() => {
      this.#recycling = false;
    });
  }

  #setHealth(ok: boolean, detail: string): void {
    if (this.#health.ok === ok && (ok || this.#health.detail === detail)) return;
    const changed = this.#health.ok !== ok;
    this.#health = { ok, detail, since: changed ? Date.now() : this.#health.since };
    if (changed) this.#emit({ kind: "health", health: this.#health });
  }

  #emit(event: RegistryStoreEvent): void {
    try {
      this.#onEvent(event);
    } catch (error) {
      logger.error("registry event handler failed: {error}", { error });
    }
  }

  #onMessage(text: string): void {
    if (this.#closed) return;
    const event = decodeStoreEvent(text);
    if (event === undefined) {
      logger.warn("ignored a malformed message on {channel}", { channel: this.#channel });
      return;
    }
    this.#emit(event);
  }

  #key(kind: string, id: number | string): string {
    return `${this.#prefix}:${kind}:${id}`;
  }

  /** Every record and live reservation (SCAN + MGET, bounded). */
  async snapshot(): Promise<RegistrySnapshot> {
    const clusterKeys = await this.#scan(`${this.#prefix}:cluster:*`);
    const clusters: StoredCluster[] = [];
    for (let at = 0; at < clusterKeys.length; at += MGET_CHUNK) {
      const chunk = clusterKeys.slice(at, at + MGET_CHUNK);
      const values = await this.#op("MGET", (client) => client.mGet(chunk));
      for (const value of values) {
        const record = typeof value === "string" ? decodeStoredCluster(value) : undefined;
        if (record !== undefined) clusters.push(record);
      }
    }
    const reservations = new Map<number, number>();
    for (const key of await this.#scan(`${this.#prefix}:res:*`)) {
      const id = Number(key.split(":").at(-2));
      if (Number.isInteger(id)) reservations.set(id, (reservations.get(id) ?? 0) + 1);
    }
    return { clusters, reservations };
  }

  async #scan(match: string): Promise<string[]> {
    return await this.#op("SCAN", async (client) => {
      const keys: string[] = [];
      for await (const batch of client.scanIterator({ MATCH: match, COUNT: 1000 })) {
        keys.push(...batch);
        if (keys.length >= MAX_SNAPSHOT_KEYS) break;
      }
      return keys;
    });
  }

  /** `SET NX PX` of the record, then the `up` message. */
  async claim(record: StoredCluster, ttlMs: number): Promise<boolean> {
    const text = encodeStoredCluster(record);
    const set = await this.#op(
      "SET NX",
      (client) => client.set(this.#key("cluster", record.id), text, { NX: true, PX: ttlMs }),
    );
    if (set !== "OK") return false;
    const event = encodeStoreEvent({ kind: "up", record, sentAt: Date.now() });
    await this.#op("PUBLISH", (client) => client.publish(this.#channel, event));
    return true;
  }

  /** `SET PX` of the record and the `heartbeat` message, in one round trip. */
  async refresh(record: StoredCluster, ttlMs: number): Promise<void> {
    const event = encodeStoreEvent({ kind: "heartbeat", record, sentAt: Date.now() });
    await this.#op("SET+PUBLISH", (client) =>
      client.multi()
        .set(this.#key("cluster", record.id), encodeStoredCluster(record), { PX: ttlMs })
        .publish(this.#channel, event)
        .exec());
  }

  /** Deletes the record if this master owns it, and sends the `down` message. */
  async remove(id: number, reason: ClusterRemovalReason): Promise<void> {
    const key = this.#key("cluster", id);
    const current = await this.#op("GET", (client) => client.get(key));
    if (typeof current === "string" && decodeStoredCluster(current)?.owner === this.masterId) {
      await this.#op("DEL", (client) => client.del(key));
    }
    const event = encodeStoreEvent({
      kind: "down",
      owner: this.masterId,
      id,
      reason,
      sentAt: Date.now(),
    });
    await this.#op("PUBLISH", (client) => client.publish(this.#channel, event));
  }

  /** One reservation key with its expiry, and the `reserve` message. */
  async reserve(id: number, ttlMs: number): Promise<void> {
    const key = this.#key("res", `${id}:${crypto.getRandomValues(new Uint8Array(8)).toHex()}`);
    const event = encodeStoreEvent({
      kind: "reserve",
      owner: this.masterId,
      id,
      sentAt: Date.now(),
    });
    await this.#op(
      "SET+PUBLISH",
      (client) => client.multi().set(key, "1", { PX: ttlMs }).publish(this.#channel, event).exec(),
    );
  }

  /** `SET NX PX` of the ticket id. */
  async claimTicketId(ticketId: Uint8Array, ttlMs: number): Promise<boolean> {
    const set = await this.#op(
      "SET NX",
      (client) => client.set(this.#key("ticket", ticketId.toHex()), "1", { NX: true, PX: ttlMs }),
    );
    return set === "OK";
  }

  /** Whether Redis answered the last command and probe in time. */
  health(): RegistryStoreHealth {
    return this.#health;
  }

  /** Stops probing and closes both connections. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#probeTimer);
    for (const client of [this.#subscriber, this.#client]) {
      if (client === undefined) continue;
      try {
        await this.#deadline(client.close(), this.#opTimeoutMs, "close");
      } catch {
        client.destroy(); // Redis is gone or stuck: drop the socket instead
      }
    }
    this.#client = undefined;
    this.#subscriber = undefined;
  }

  #destroy(): void {
    this.#closed = true;
    for (const client of [this.#subscriber, this.#client]) {
      try {
        if (client?.isOpen === true) client.destroy();
      } catch {
        // Already closed: nothing to release.
      }
    }
    this.#client = undefined;
    this.#subscriber = undefined;
  }
}
