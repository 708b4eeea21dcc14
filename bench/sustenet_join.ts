/**
 * How a simulated client gets onto a Sustenet cluster, over {@linkcode BenchConnection}s and the
 * client library's own sans-I/O handshake machines (`client/master_session_machine.ts`,
 * `client/cluster_session_machine.ts`): a ticket from the master (JoinCluster with a fresh
 * ephemeral X25519 key), then the cluster handshake (Hello, KeyExchange, SendPassword,
 * Authenticate), sealed with the derived keys unless the cluster runs in plaintext mode. A
 * `BenchConnection` is not a `FrameTransport` (it reads whole runs of frames and seals with its
 * own ciphers), so the machines' actions are applied here rather than by `driveMachine`.
 *
 * It does exactly what a real client does on the wire, nothing cheaper, so join figures are
 * honest. It must never leave a connection open after a failed join, and never wait without a
 * deadline.
 *
 * @module
 */

import {
  type MasterSessionAction,
  MasterSessionMachine,
} from "../client/master_session_machine.ts";
import {
  type ClusterSessionAction,
  ClusterSessionMachine,
} from "../client/cluster_session_machine.ts";
import { type EphemeralKeyPair, generateEphemeralKeyPair } from "../shared/key_derivation.ts";
import { decodePacket } from "../shared/protocol/codec.ts";
import type { Frame } from "../shared/protocol/frame.ts";
import type { ClusterInfo, JoinTicketPacket } from "../shared/protocol/packets.ts";
import { SustenetError } from "../shared/errors.ts";
import { createRecordCipher } from "../shared/create_record_cipher.ts";
import type { SealingKey } from "../shared/frame_session.ts";
import type { RecordCipher } from "../shared/record_cipher.ts";
import { BenchConnection, type BenchConnectionOptions } from "./bench_connection.ts";

/** A join step failed (refused, closed, timed out). */
export class JoinError extends SustenetError {
  /**
   * @param code What failed: `master_failed`, `ticket_refused`, `cluster_failed` or
   * `join_timeout`.
   * @param message Details.
   */
  constructor(
    code: "master_failed" | "ticket_refused" | "cluster_failed" | "join_timeout",
    message: string,
  ) {
    super(code, message);
  }
}

/** How long one handshake may take before it is abandoned, ms. */
const HANDSHAKE_TIMEOUT_MS = 15_000;

/**
 * Turns a visited frame into the `Frame` the session machines take (a view, valid only during
 * the visit).
 *
 * @param view The visitor's view.
 * @param offset Offset of the type byte.
 * @param length The frame's length field.
 *
 * @example
 * ```ts
 * import { frameAt } from "./sustenet_join.ts";
 * import assert from "node:assert/strict";
 *
 * const bytes = new Uint8Array([0, 0, 0, 2, 0x04, 9]);
 * const frame = frameAt(new DataView(bytes.buffer), 4, 2);
 * assert.equal(frame.type, 0x04);
 * assert.deepEqual([...frame.payload], [9]);
 * ```
 */
export function frameAt(view: DataView, offset: number, length: number): Frame {
  return {
    type: view.getUint8(offset),
    payload: new Uint8Array(view.buffer, view.byteOffset + offset + 1, length - 1),
  };
}

/** Rejects with a timeout error unless `promise` settles first; always clears its timer. */
async function withTimeout<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new JoinError("join_timeout", `${what} took over ${HANDSHAKE_TIMEOUT_MS} ms`)),
      HANDSHAKE_TIMEOUT_MS,
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The runtime's default record cipher for a raw key (a cipher already made is kept). */
function cipherOf(key: SealingKey): Promise<RecordCipher> {
  return key instanceof Uint8Array ? createRecordCipher(key) : Promise.resolve(key);
}

type Pending<T> = {
  readonly resolve: (value: T) => void;
  readonly reject: (error: Error) => void;
};

/**
 * One master connection that hands out join tickets; requests may be pipelined (the master
 * answers in order).
 *
 * No doc example: it needs a running master (see `bench/tests/`).
 */
export class MasterTicketSource {
  readonly #conn: BenchConnection;
  readonly #session = new MasterSessionMachine();
  readonly #tickets = new Map<number, Pending<JoinTicketPacket>>();
  readonly #lists = new Map<number, Pending<readonly ClusterInfo[]>>();
  readonly #ready = Promise.withResolvers<void>();
  #failure: Error | undefined;

  private constructor(conn: BenchConnection) {
    this.#conn = conn;
    conn.startReading((view, offset, length) => this.#receive(frameAt(view, offset, length)));
    conn.closed.then((reason) => this.#failAll(new JoinError("master_failed", reason)));
  }

  /**
   * Connects to the master and completes Hello.
   *
   * @param host Master host.
   * @param port Master port.
   * @throws {JoinError} If the master refuses or does not answer in time.
   */
  static async open(host: string, port: number): Promise<MasterTicketSource> {
    const source = new MasterTicketSource(
      await BenchConnection.connect(host, port, { readBufferBytes: 16 * 1024 }),
    );
    source.#conn.send(source.#session.hello());
    try {
      await withTimeout(source.#ready.promise, "master hello");
    } catch (error) {
      source.close();
      throw error;
    }
    return source;
  }

  /** Requests sent and not yet answered. */
  get pending(): number {
    return this.#tickets.size + this.#lists.size;
  }

  /**
   * Asks for the cluster list (RequestClusters).
   *
   * @throws {JoinError} If the connection fails first.
   */
  listClusters(): Promise<readonly ClusterInfo[]> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    const request = this.#session.requestClusters();
    const { promise, resolve, reject } = Promise.withResolvers<readonly ClusterInfo[]>();
    this.#lists.set(request.request, { resolve, reject });
    this.#conn.send(request.frame);
    return withTimeout(promise, "cluster list");
  }

  /**
   * Asks for a join ticket (JoinCluster) for an ephemeral public key.
   *
   * @param clusterId The cluster, 0 = any with room.
   * @param clientPublicKey The raw 32-byte ephemeral X25519 public key.
   * @throws {JoinError} `ticket_refused` if the master refuses, `master_failed` if the
   * connection fails.
   */
  requestTicket(clusterId: number, clientPublicKey: Uint8Array): Promise<JoinTicketPacket> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    const request = this.#session.joinCluster(clusterId, clientPublicKey, new Uint8Array(0));
    const { promise, resolve, reject } = Promise.withResolvers<JoinTicketPacket>();
    this.#tickets.set(request.request, { resolve, reject });
    this.#conn.send(request.frame);
    return withTimeout(promise, "join ticket");
  }

  /** Closes the master connection; pending requests fail. */
  close(): void {
    this.#conn.close();
  }

  /** Resolves once the connection is fully closed. */
  get closed(): Promise<string> {
    return this.#conn.closed;
  }

  #receive(frame: Frame): void {
    const actions = this.#session.receive(decodePacket(frame), performance.now(), frame);
    for (const action of actions) this.#apply(action);
  }

  #apply(action: MasterSessionAction): void {
    switch (action.type) {
      case "send":
        this.#conn.send(action.frame);
        return;
      case "ready":
        this.#ready.resolve();
        return;
      case "ticket":
        // The ticket's byte fields are views of the read buffer: copy what outlives the visit.
        this.#tickets.get(action.request)?.resolve({
          ...action.ticket,
          clusterPublicKey: action.ticket.clusterPublicKey.slice(),
          ticket: action.ticket.ticket.slice(),
        });
        this.#tickets.delete(action.request);
        return;
      case "clusters":
        this.#lists.get(action.request)?.resolve(action.clusters);
        this.#lists.delete(action.request);
        return;
      case "refused":
        this.#tickets.get(action.request)?.reject(
          new JoinError("ticket_refused", action.error.message),
        );
        this.#tickets.delete(action.request);
        return;
      case "pong":
        return;
      case "unhandled":
      case "failed":
        this.#failAll(new JoinError("master_failed", action.error.message));
        this.#conn.close(action.error.message);
        return;
      case "close":
        // After `failed`, which closed already (close is idempotent).
        this.#conn.close(action.reason);
        return;
      case "seal":
      case "derive":
        // The master session has neither.
        return;
    }
  }

  #failAll(error: Error): void {
    this.#failure ??= error;
    // A no-op once resolved; before that, open() is awaiting it.
    this.#ready.reject(error);
    for (const pending of [...this.#tickets.values(), ...this.#lists.values()]) {
      pending.reject(error);
    }
    this.#tickets.clear();
    this.#lists.clear();
  }
}

/** An authenticated client connection. */
export interface JoinedClient {
  /** The connection, reading with a no-op visitor until the caller sets its own. */
  readonly conn: BenchConnection;
  /** The id the cluster gave this client. */
  readonly clientId: number;
}

/** Options of {@linkcode joinCluster}. */
export interface JoinClusterOptions extends BenchConnectionOptions {
  /** Seal after the key exchange (`false` for a cluster with `plaintext = true`). */
  readonly sealed: boolean;
  /** Join over the cluster's `ws` endpoint from the ticket instead of TCP. */
  readonly webSocket?: boolean;
}

/**
 * Runs the cluster handshake with a ticket: Hello, KeyExchange, then (sealed unless plaintext)
 * SendPassword, until Authenticate(20).
 *
 * @param ticket The master's JoinTicket (host, port, cluster key, sealed ticket).
 * @param ephemeral The key pair whose public half the ticket is bound to.
 * @param options Sealing and buffer sizes.
 * @throws {JoinError} `cluster_failed` if the cluster refuses or closes, `join_timeout`.
 */
export async function joinCluster(
  ticket: JoinTicketPacket,
  ephemeral: EphemeralKeyPair,
  options: JoinClusterOptions,
): Promise<JoinedClient> {
  let conn: BenchConnection;
  if (options.webSocket === true) {
    const endpoint = ticket.endpoints?.find((e) => e.kind === "ws");
    if (endpoint === undefined) throw new JoinError("cluster_failed", "no ws endpoint in ticket");
    conn = await BenchConnection.connectWebSocket(
      `ws://${ticket.host}:${endpoint.port}${endpoint.path}`,
      options,
    );
  } else {
    conn = await BenchConnection.connect(ticket.host, ticket.port, options);
  }
  const session = new ClusterSessionMachine({
    ephemeral,
    ticket: ticket.ticket,
    clusterPublicKey: ticket.clusterPublicKey,
  });
  const done = Promise.withResolvers<number>();
  const fail = (message: string) => done.reject(new JoinError("cluster_failed", message));
  // Applies the machine's actions in order; async only at `seal` (a cipher to make), so the
  // SendPassword after it goes out sealed.
  const apply = async (actions: readonly ClusterSessionAction[]): Promise<void> => {
    for (const action of actions) {
      switch (action.type) {
        case "send":
          conn.send(action.frame);
          break;
        case "derive":
          // KeyExchangeOk is the last plaintext frame: hold what follows until the switch.
          conn.holdFrames();
          await apply(session.derived(await action.derive(), performance.now()));
          break;
        case "seal":
          if (options.sealed) {
            // The runtime's default ciphers, as a real client in Deno gets them: the fastest
            // available per record size, so the generator takes less of the CPU it shares with
            // the server.
            const [sendKey, receiveKey] = await Promise.all([
              cipherOf(action.keys.sendKey),
              cipherOf(action.keys.receiveKey),
            ]);
            conn.startSealing({ sendKey, receiveKey });
          } else {
            conn.resumeFrames();
          }
          break;
        case "authenticated":
          done.resolve(action.clientId);
          break;
        case "failed":
        case "unhandled":
          fail(action.error.message);
          return;
        case "close":
          fail(action.reason);
          return;
        default:
          // A learned key, or game traffic before the caller took over the connection: not
          // counted.
          break;
      }
    }
  };
  conn.startReading((view, offset, length) => {
    const frame = frameAt(view, offset, length);
    apply(session.receive(decodePacket(frame), performance.now(), frame)).catch((error: unknown) =>
      fail(String(error))
    );
  });
  conn.closed.then((reason) => fail(`cluster closed the connection: ${reason}`));
  conn.send(session.hello());
  try {
    const clientId = await withTimeout(done.promise, "cluster handshake");
    return { conn, clientId };
  } catch (error) {
    conn.close();
    await conn.closed;
    throw error;
  }
}

/**
 * A whole join as a client makes it: a fresh ephemeral key, a ticket from `source`, then the
 * cluster handshake.
 *
 * @param source An open master connection.
 * @param options Sealing and buffer sizes.
 * @param clusterId The cluster, 0 = any with room.
 * @throws {JoinError} From either step.
 */
export async function joinViaMaster(
  source: MasterTicketSource,
  options: JoinClusterOptions,
  clusterId = 0,
): Promise<JoinedClient> {
  const ephemeral = await generateEphemeralKeyPair();
  const ticket = await source.requestTicket(clusterId, ephemeral.publicRaw);
  return await joinCluster(ticket, ephemeral, options);
}
