// This module is browser compatible.
/**
 * {@linkcode SustenetClient}: a client's connection to the master (Hello as a client), over
 * which it lists clusters and asks for join tickets, and from which it joins clusters
 * ({@linkcode ClusterSession}). It runs the sans-I/O {@linkcode MasterSessionMachine} with
 * `driveMachine` over a connection its {@linkcode Connector} opens (TCP in Deno:
 * `deno_sustenet_client.ts`; WebSocket in browsers), keeps it alive with Ping, decides which
 * cluster key each join expects ({@linkcode KeyPinning}) and, with `reconnect` on, reopens the
 * master connection when a rejoin needs it.
 *
 * It must never throw out of a frame handler, never leave a request unanswered (every pending
 * request settles when the connection ends or times out), and never log a credential, ticket
 * or key.
 *
 * @module
 */

import { driveMachine, type MachineDriver } from "../shared/drive_machine.ts";
import { generateEphemeralKeyPair } from "../shared/key_derivation.ts";
import { roleLogger } from "../shared/logging.ts";
import { DEFAULT_MAX_FRAME_BYTES } from "../shared/protocol/frame.ts";
import type { ClusterInfo, JoinTicketPacket } from "../shared/protocol/packets.ts";
import { ErrorCode } from "../shared/protocol/protocol_error.ts";
import type { CloseInfo, FrameSessionOptions, FrameTransport } from "../shared/frame_session.ts";
import { dial } from "./_dial.ts";
import type { Connector } from "./connector.ts";
import { webSocketConnector } from "./websocket_connector.ts";
import { type ClientPlugin, offerToPlugins } from "./client_plugin.ts";
import {
  ClusterSession,
  type JoinedCluster,
  type JoinGrant,
  type ReconnectSettings,
} from "./cluster_session.ts";
import type { SessionCloseReason } from "./_session_common.ts";
import { ClientError } from "./errors.ts";
import { type CachedClusterKey, KeyPinning, type PinnedKeySource } from "./key_pinning.ts";
import {
  type MasterRequest,
  type MasterSessionEvent,
  MasterSessionMachine,
} from "./master_session_machine.ts";
import { TypedEvents } from "./typed_events.ts";

const logger = roleLogger("client");

/** The master's default port (docs/PROTOCOL.md). */
const DEFAULT_MASTER_PORT = 6256;

/** Options of {@linkcode SustenetClient.connect}. */
export interface SustenetClientOptions {
  /**
   * Master host.
   *
   * @default {"127.0.0.1"}
   */
  readonly host?: string;
  /**
   * Master port.
   *
   * @default {6256}
   */
  readonly port?: number;
  /**
   * The master's WebSocket URL (`ws://host:port/path` or `wss://…`; the master's `ws_port` and
   * `ws_path`). When given, `host` and `port` are not used: the client talks to the master over
   * WebSocket and joins clusters over the endpoint of the same scheme their JoinTicket lists
   * (a cluster without one is `cluster_unreachable`), through {@linkcode webSocketConnector}.
   * Without it, the client's default connector is used (TCP for the Deno client).
   */
  readonly url?: string | URL;
  /**
   * Certificates (PEM) to trust for a `wss://` `url` (the master's and the clusters'
   * WebSocket endpoints), e.g. the development CA `ca.pem` of `deno task certs`; default: the
   * system's store. Deno only (a browser trusts its own store); given without a `wss://` `url`:
   * RangeError.
   */
  readonly caCerts?: readonly string[];
  /**
   * More masters sharing one registry, tried in order after `host`:`port` whenever a master
   * connection is opened (at connect, and on each reconnect), so a dead master is skipped.
   *
   * @default {[]}
   */
  readonly masters?: readonly { readonly host: string; readonly port: number }[];
  /** Credential for the master's authentication hook (text is sent as UTF-8). */
  readonly credential?: Uint8Array | string;
  /**
   * Cluster keys pinned by cluster name or `"*"`: raw bytes, `{ file }` (a `.pub` file) or
   * `{ url }` (a `domain_pub_key` URL). A pinned cluster whose key from the master differs is
   * refused (`key_mismatch`) before the client connects to it, whatever address the master
   * gave. Pins by `"host:port"` are refused (RangeError): an address is not an identity.
   * Unpinned clusters use the master's key.
   */
  readonly pinnedKeys?: Readonly<Record<string, PinnedKeySource>>;
  /**
   * Ask each cluster for its key (RequestKey) and pin the first one seen per address.
   *
   * @default {false}
   */
  readonly requestKey?: boolean;
  /** Keys remembered by an earlier run ({@linkcode SustenetClient.cachedKeys}). */
  readonly keyCache?: Readonly<Record<string, CachedClusterKey>>;
  /**
   * Ping period of the master and cluster connections, in ms; 0 = no keepalive.
   *
   * @default {10000}
   */
  readonly keepaliveMs?: number;
  /**
   * Time allowed to connect, to complete a handshake, and for each answer of the master, in ms.
   *
   * @default {10000}
   */
  readonly timeoutMs?: number;
  /** Rejoin a cluster that drops, with a new ticket, after a backoff; off by default. */
  readonly reconnect?: {
    /**
     * @default {true} when the object is given
     */
    readonly enabled?: boolean;
    /**
     * First delay, in ms.
     *
     * @default {500}
     */
    readonly minMs?: number;
    /**
     * Largest delay, in ms.
     *
     * @default {10000}
     */
    readonly maxMs?: number;
    /**
     * Attempts before giving up.
     *
     * @default {Infinity}
     */
    readonly maxAttempts?: number;
  };
  /** Hooks for frames from the master or a cluster that the library does not handle. */
  readonly clientPlugins?: readonly ClientPlugin[];
  /**
   * Largest frame accepted or sent (must match the servers' `max_frame_bytes`).
   *
   * @default {65536}
   */
  readonly maxFrameBytes?: number;
  /**
   * Opens the master and cluster connections.
   *
   * @default {TCP for the Deno client (`@sustenet/sustenet/client`), WebSocket for the browser one}
   */
  readonly connect?: Connector;
}

/** Detail of each {@linkcode SustenetClient} event. */
export interface SustenetClientEvents {
  /** The master connection ended without `close()`. */
  readonly disconnect: { readonly reason: string; readonly error: ClientError };
}

/** The answer a pending request waits for. */
type Answer =
  | { readonly kind: "clusters"; readonly clusters: readonly ClusterInfo[] }
  | { readonly kind: "ticket"; readonly ticket: JoinTicketPacket };

interface PendingRequest {
  readonly resolve: (answer: Answer) => void;
  readonly reject: (error: ClientError) => void;
  readonly timer: ReturnType<typeof setTimeout>;
}

/** One master connection (the client opens a new one if it reconnects). */
interface MasterLink {
  readonly machine: MasterSessionMachine;
  readonly conn: FrameTransport;
  /** Applies the machine's actions of the adapter's own calls (a timeout, an unhandled frame). */
  readonly driver: MachineDriver<never, MasterSessionEvent>;
  readonly ready: PromiseWithResolvers<void>;
  readonly pending: Map<number, PendingRequest>;
  failure: ClientError | undefined;
  ended: boolean;
  keepalive: ReturnType<typeof setInterval> | undefined;
}

interface Settings {
  readonly connect: Connector;
  readonly host: string;
  readonly port: number;
  /** `host`:`port` first, then the other masters (one master for a WebSocket URL). */
  readonly masters: readonly { readonly host: string; readonly port: number }[];
  readonly credential: Uint8Array;
  readonly keepaliveMs: number;
  readonly timeoutMs: number;
  readonly reconnect: ReconnectSettings;
  readonly plugins: readonly ClientPlugin[];
  readonly maxFrameBytes: number;
}

function checkMs(name: string, value: number, min: number): number {
  if (!Number.isFinite(value) || value < min) {
    throw new RangeError(`${name} must be a finite number >= ${min}, got ${value}`);
  }
  return value;
}

function resolveSettings(
  options: SustenetClientOptions,
  connect: Connector,
  createRecordCipher: FrameSessionOptions["createRecordCipher"],
): Settings {
  const port = options.port ?? DEFAULT_MASTER_PORT;
  if (!Number.isInteger(port) || port < 1 || port > 0xffff) {
    throw new RangeError(`port must be an integer 1..65535, got ${port}`);
  }
  const credential = typeof options.credential === "string"
    ? new TextEncoder().encode(options.credential)
    : options.credential ?? new Uint8Array();
  if (credential.length > 0xffff) {
    throw new RangeError(`credential must be at most 65535 bytes, got ${credential.length}`);
  }
  const reconnect = options.reconnect;
  const minMs = checkMs("reconnect.minMs", reconnect?.minMs ?? 500, 1);
  const maxMs = checkMs("reconnect.maxMs", reconnect?.maxMs ?? 10_000, minMs);
  const maxAttempts = reconnect?.maxAttempts ?? Infinity;
  if (!(maxAttempts >= 1)) {
    throw new RangeError(`reconnect.maxAttempts must be >= 1, got ${maxAttempts}`);
  }
  const maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
  if (!Number.isInteger(maxFrameBytes) || maxFrameBytes < 64) {
    throw new RangeError(`maxFrameBytes must be an integer >= 64, got ${maxFrameBytes}`);
  }
  let url: URL | undefined;
  if (options.url !== undefined) {
    url = new URL(String(options.url));
    if (url.protocol !== "ws:" && url.protocol !== "wss:") {
      throw new RangeError(`url must be a ws:// or wss:// URL, got ${url.protocol}`);
    }
  }
  const caCerts = options.caCerts;
  if (caCerts !== undefined && url?.protocol !== "wss:") {
    throw new RangeError("caCerts applies to a wss:// url only");
  }
  const host = options.host ?? "127.0.0.1";
  const masters = [{ host, port }];
  for (const extra of options.masters ?? []) {
    if (!Number.isInteger(extra.port) || extra.port < 1 || extra.port > 0xffff) {
      throw new RangeError(`masters port must be an integer 1..65535, got ${extra.port}`);
    }
    if (!masters.some((m) => m.host === extra.host && m.port === extra.port)) {
      masters.push({ host: extra.host, port: extra.port });
    }
  }
  return {
    // A WebSocket URL picks the WebSocket connector unless the options bring their own.
    connect: options.connect ??
      (url === undefined ? connect : webSocketConnector({
        masterUrl: url,
        createRecordCipher,
        ...(caCerts === undefined ? {} : { caCerts }),
      })),
    host: url === undefined ? host : url.hostname.replace(/^\[|\]$/g, ""),
    port: url === undefined ? port : Number(url.port || (url.protocol === "wss:" ? 443 : 80)),
    masters: url === undefined ? masters : [],
    credential,
    keepaliveMs: checkMs("keepaliveMs", options.keepaliveMs ?? 10_000, 0),
    timeoutMs: checkMs("timeoutMs", options.timeoutMs ?? 10_000, 1),
    reconnect: {
      enabled: reconnect !== undefined && (reconnect.enabled ?? true),
      minMs,
      maxMs,
      maxAttempts,
    },
    plugins: options.clientPlugins ?? [],
    maxFrameBytes,
  };
}

/** What the end of a master connection means, when no frame said it first. */
function masterEnded(info: CloseInfo): ClientError {
  if (info.by === "error" && info.code === ErrorCode.Timeout) {
    return new ClientError("timeout", `master connection timed out: ${info.reason}`);
  }
  return new ClientError("disconnected", `master connection ended: ${info.reason}`);
}

/**
 * A client of a Sustenet master: list clusters, join one, play.
 *
 * @example List, join, chat (needs a running master and cluster)
 * ```ts ignore
 * import { SustenetClient } from "./sustenet_client.ts";
 *
 * const client = await SustenetClient.connect({ host: "127.0.0.1", port: 6256 });
 * console.log(await client.listClusters());
 * const session = await client.join("auto");
 * session.on("message", ({ command, payload }) => console.log(command, payload));
 * session.send(0x81, new TextEncoder().encode("hello"));
 * await session.leave();
 * await client.close();
 * ```
 *
 * @example Options are checked before anything is sent
 * ```ts
 * import { SustenetClient } from "./sustenet_client.ts";
 * import assert from "node:assert/strict";
 *
 * await assert.rejects(SustenetClient.connect({ port: 70000 }), RangeError);
 * ```
 */
export class SustenetClient {
  readonly #settings: Settings;
  readonly #pinning: KeyPinning;
  readonly #events = new TypedEvents<SustenetClientEvents>();
  readonly #sessions = new Set<ClusterSession>();
  /** Cluster names by id, from the last SendClusters (for pins by name). */
  readonly #names = new Map<number, string>();
  #master: MasterLink | undefined;
  #opening: Promise<MasterLink> | undefined;
  #closing = false;
  #pingValue = 0;

  /**
   * Opens connections when the options name no connector. This class knows no transport (it
   * is browser compatible); the Deno and browser clients each set their own.
   */
  protected static defaultConnector: Connector = (target) =>
    Promise.reject(
      new Error(`no connector for ${target.what} ${target.host}:${target.port}: pass connect`),
    );
  /** Record ciphers of WebSocket sessions opened for `url`; `undefined` = WebCrypto. */
  protected static createRecordCipher: FrameSessionOptions["createRecordCipher"] = undefined;
  /** Reads the `.pub` file of a `{ file }` pin; `undefined` where there are no files. */
  protected static readKeyFile: ((path: string) => Promise<string>) | undefined = undefined;

  /**
   * Makes a client from resolved options; use {@linkcode SustenetClient.connect}.
   *
   * @param settings Resolved options.
   * @param pinning The key decisions of this client.
   */
  protected constructor(settings: Settings, pinning: KeyPinning) {
    this.#settings = settings;
    this.#pinning = pinning;
  }

  /**
   * Connects to a master and completes the Hello.
   *
   * @param options Address, credential, pinned keys, keepalive, reconnect, plugins.
   * @throws {ClientError} `master_unreachable`, `server_full`, `timeout` or `protocol_error`.
   * @throws {RangeError} If an option is out of range.
   */
  static async connect(options: SustenetClientOptions = {}): Promise<SustenetClient> {
    const settings = resolveSettings(options, this.defaultConnector, this.createRecordCipher);
    const pinning = new KeyPinning({
      pins: options.pinnedKeys,
      requestKey: options.requestKey,
      cache: options.keyCache,
      fetchTimeoutMs: settings.timeoutMs,
      readTextFile: this.readKeyFile,
    });
    const client = new this(settings, pinning);
    client.#master = await client.#openMaster();
    return client;
  }

  /** The master's server name from HelloOk. */
  get serverName(): string {
    return this.#master?.machine.serverName ?? "";
  }

  /** `true` while the master connection is open and ready. */
  get connected(): boolean {
    const link = this.#master;
    return link !== undefined && !link.ended && link.machine.state === "ready";
  }

  /** Cluster sessions joined through this client and not yet ended. */
  get sessions(): ReadonlySet<ClusterSession> {
    return this.#sessions;
  }

  /**
   * Adds an event listener; a listener that throws is logged.
   *
   * @param type The event name.
   * @param listener Called with the event's detail.
   * @returns A function that removes the listener.
   */
  on<K extends keyof SustenetClientEvents>(
    type: K,
    listener: (detail: SustenetClientEvents[K]) => void,
  ): () => void {
    return this.#events.on(type, listener);
  }

  /**
   * Asks the master for the cluster list (RequestClusters → SendClusters).
   *
   * @throws {ClientError} `timeout`, `disconnected` or `protocol_error`.
   */
  async listClusters(): Promise<readonly ClusterInfo[]> {
    const link = await this.#ensureMaster();
    const answer = await this.#request(link, () => link.machine.requestClusters());
    if (answer.kind !== "clusters") throw new ClientError("protocol_error", "expected clusters");
    this.#names.clear();
    for (const cluster of answer.clusters) this.#names.set(cluster.id, cluster.name);
    return answer.clusters;
  }

  /**
   * Joins a cluster: a ticket from the master for a fresh ephemeral key, the cluster key
   * checked against the pins (or the master's, if none), then the sealed handshake with the
   * cluster.
   *
   * @param cluster A cluster id from {@linkcode listClusters}, or `"auto"` for the master's
   * choice of a cluster with room.
   * @returns The joined session.
   * @throws {ClientError} `no_cluster`, `unknown_cluster`, `cluster_full`, `unauthorized`,
   * `key_mismatch`, `key_unavailable`, `cluster_unreachable`, `server_full`,
   * `ticket_refused`, `timeout`, `disconnected` or `protocol_error`.
   * @throws {RangeError} If `cluster` is neither `"auto"` nor an id 1..2^32-1.
   */
  async join(cluster: number | "auto" = "auto"): Promise<ClusterSession> {
    if (
      cluster !== "auto" && (!Number.isInteger(cluster) || cluster < 1 || cluster > 0xffff_ffff)
    ) {
      throw new RangeError(`cluster must be "auto" or an id 1..4294967295, got ${cluster}`);
    }
    const grant = await this.#grant(cluster);
    const session = await ClusterSession.open({
      grant,
      rejoin: (previous) => this.#regrant(cluster, previous),
      onLearnedKey: (target, version, publicKey) =>
        this.#pinning.remember(target, version, publicKey),
      connect: this.#settings.connect,
      plugins: this.#settings.plugins,
      keepaliveMs: this.#settings.keepaliveMs,
      timeoutMs: this.#settings.timeoutMs,
      maxFrameBytes: this.#settings.maxFrameBytes,
      reconnect: this.#settings.reconnect,
    });
    logger.info("joined cluster {name} ({address}) as client {clientId}", {
      name: session.serverName,
      address: session.address,
      clientId: session.clientId,
    });
    this.#sessions.add(session);
    session.closed.then(
      () => this.#sessions.delete(session),
      (error: unknown) => logger.error("session end failed: {error}", { error }),
    );
    return session;
  }

  /**
   * The keys learned from clusters with `requestKey` on, to pass as `keyCache` next run.
   *
   * @example
   * ```ts ignore
   * await Deno.writeTextFile("keys.json", JSON.stringify(client.cachedKeys()));
   * ```
   */
  cachedKeys(): Record<string, CachedClusterKey> {
    return this.#pinning.cachedKeys();
  }

  /** Closes every cluster session (without LeaveCluster) and the master connection. */
  async close(): Promise<void> {
    this.#closing = true;
    await Promise.all([...this.#sessions].map((session) => session.close()));
    const opening = this.#opening;
    if (opening !== undefined) {
      // Let a reconnect in progress finish so its connection is closed below.
      await opening.then(
        () => undefined,
        (error: unknown) => logger.debug("master reconnect ended: {error}", { error }),
      );
    }
    const link = this.#master;
    if (link !== undefined) await link.conn.close();
  }

  /** Closes the client; for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  // ------------------------------------------------------------------ joining

  async #grant(cluster: number | "auto"): Promise<JoinGrant> {
    const link = await this.#ensureMaster();
    const ephemeral = await generateEphemeralKeyPair();
    const answer = await this.#request(
      link,
      () =>
        link.machine.joinCluster(
          cluster === "auto" ? 0 : cluster,
          ephemeral.publicRaw,
          this.#settings.credential,
        ),
    );
    if (answer.kind !== "ticket") throw new ClientError("protocol_error", "expected a ticket");
    const ticket = answer.ticket;
    if (this.#pinning.pinsByName && !this.#names.has(ticket.clusterId)) await this.listClusters();
    const name = this.#names.get(ticket.clusterId);
    const target = { host: ticket.host, port: ticket.port, name };
    const key = await this.#pinning.decide(target, ticket.clusterPublicKey);
    return name === undefined ? { ticket, ephemeral, key } : { ticket, ephemeral, key, name };
  }

  /** A grant for a rejoin: the same address under its (possibly new) id, else `original`. */
  async #regrant(original: number | "auto", previous: JoinedCluster): Promise<JoinGrant> {
    // A restarted cluster registers again under a new id: find it by its address.
    const clusters = await this.listClusters();
    const same = clusters.find((c) => c.host === previous.host && c.port === previous.port);
    return await this.#grant(same?.id ?? original);
  }

  // ------------------------------------------------------------------ master link

  async #ensureMaster(): Promise<MasterLink> {
    const link = this.#master;
    if (link !== undefined && !link.ended) return link;
    if (this.#closing) throw new ClientError("invalid_state", "the client is closed");
    if (!this.#settings.reconnect.enabled) {
      throw new ClientError(
        "disconnected",
        link?.failure?.message ?? "the master connection has ended",
      );
    }
    this.#opening ??= this.#openMaster().then((opened) => {
      this.#master = opened;
      return opened;
    }).finally(() => {
      this.#opening = undefined;
    });
    return await this.#opening;
  }

  async #openMaster(): Promise<MasterLink> {
    // Each master in order (a WebSocket URL is the one master): the first that completes the
    // Hello wins, else the last error.
    const { host, port } = this.#settings;
    const masters = [{ host, port }, ...this.#settings.masters.slice(1)];
    for (let at = 0;; at++) {
      try {
        return await this.#openMasterAt(masters[at].host, masters[at].port);
      } catch (error) {
        if (at === masters.length - 1) throw error;
        logger.info("master {host}:{port} unavailable ({error}); trying the next", {
          host: masters[at].host,
          port: masters[at].port,
          error: error instanceof Error ? error.message : String(error),
        });
      }
    }
  }

  async #openMasterAt(host: string, port: number): Promise<MasterLink> {
    const { timeoutMs, keepaliveMs, maxFrameBytes } = this.#settings;
    const conn = await dial(this.#settings.connect, { what: "master", host, port, endpoints: [] }, {
      handshakeTimeoutMs: timeoutMs,
      idleTimeoutMs: keepaliveMs > 0 ? Math.max(keepaliveMs * 3, timeoutMs) : 0,
      maxFrameBytes,
    }, timeoutMs);
    const machine = new MasterSessionMachine();
    const link: MasterLink = {
      machine,
      conn,
      // The transport reads asynchronously: `link` exists before the first event.
      driver: driveMachine(conn, machine, { onEvent: (event) => this.#onMasterEvent(link, event) }),
      ready: Promise.withResolvers<void>(),
      pending: new Map(),
      failure: undefined,
      ended: false,
      keepalive: undefined,
    };
    conn.closed.then(
      (info) => this.#onMasterClosed(link, info),
      (error: unknown) => logger.error("master link close failed: {error}", { error }),
    );
    conn.send(machine.hello());
    await link.ready.promise;
    logger.debug("connected to master {name} at {host}:{port}", {
      name: machine.serverName,
      host,
      port,
    });
    return link;
  }

  /** Acts on one of the master session machine's own events (`driveMachine` sends and closes). */
  #onMasterEvent(link: MasterLink, event: MasterSessionEvent): void {
    switch (event.type) {
      case "ready":
        link.conn.markEstablished();
        this.#startKeepalive(link);
        link.ready.resolve();
        return;
      case "clusters":
        this.#settle(link, event.request, { kind: "clusters", clusters: event.clusters });
        return;
      case "ticket":
        this.#settle(link, event.request, { kind: "ticket", ticket: event.ticket });
        return;
      case "refused":
        this.#settle(link, event.request, event.error);
        return;
      case "pong":
        return;
      case "unhandled":
        if (
          event.frame !== undefined &&
          offerToPlugins(this.#settings.plugins, "master", event.frame, event.packet)
        ) {
          return;
        }
        this.#failMaster(link, event.error, event.closeWith);
        return;
      case "failed":
        // A `close` action follows.
        link.failure ??= event.error;
        return;
    }
  }

  #failMaster(
    link: MasterLink,
    error: ClientError,
    closeWith?: SessionCloseReason,
  ): void {
    link.driver.apply(link.machine.fail(error, closeWith));
  }

  #onMasterClosed(link: MasterLink, info: CloseInfo): void {
    const error = link.failure ?? masterEnded(info);
    link.ended = true;
    clearInterval(link.keepalive);
    // `#openMaster` awaits `ready` from before the first frame, so this rejection is handled
    // (and after HelloOk it is a no-op).
    link.ready.reject(error);
    for (const pending of link.pending.values()) {
      clearTimeout(pending.timer);
      pending.reject(error);
    }
    link.pending.clear();
    if (link.machine.state !== "hello" && !this.#closing && this.#master === link) {
      logger.warn("master connection ended: {reason}", { reason: error.message });
      this.#events.emit("disconnect", { reason: error.message, error });
    }
  }

  #request(link: MasterLink, make: () => MasterRequest): Promise<Answer> {
    if (link.ended || !link.conn.isOpen) {
      return Promise.reject(
        link.failure ?? new ClientError("disconnected", "the master connection has ended"),
      );
    }
    const { request, frame } = make();
    const { promise, resolve, reject } = Promise.withResolvers<Answer>();
    const timeoutMs = this.#settings.timeoutMs;
    const timer = setTimeout(() => {
      // Answers come in order: one that never came leaves the rest unmatchable, so give up.
      this.#failMaster(
        link,
        new ClientError("timeout", `the master did not answer within ${timeoutMs} ms`),
      );
    }, timeoutMs);
    link.pending.set(request, { resolve, reject, timer });
    link.conn.send(frame);
    return promise;
  }

  #settle(link: MasterLink, request: number, outcome: Answer | ClientError): void {
    const pending = link.pending.get(request);
    if (pending === undefined) return;
    link.pending.delete(request);
    clearTimeout(pending.timer);
    if (outcome instanceof ClientError) pending.reject(outcome);
    else pending.resolve(outcome);
  }

  #startKeepalive(link: MasterLink): void {
    if (this.#settings.keepaliveMs <= 0) return;
    link.keepalive = setInterval(() => {
      if (link.machine.state === "ready" && !link.ended) {
        link.conn.send(link.machine.ping(this.#pingValue++));
      }
    }, this.#settings.keepaliveMs);
  }
}
