/**
 * How a simulated client gets onto a Sustenet cluster, over {@linkcode BenchConnection}s and the
 * client library's own sans-I/O handshake machines (`client/master_session_machine.ts`,
 * `client/cluster_session_machine.ts`): a ticket from the master (JoinCluster with a fresh ephemeral
 * X25519 key), then the cluster handshake (Hello, KeyExchange, SendPassword, Authenticate),
 * sealed with the derived keys unless the cluster runs in plaintext mode.
 *
 * It does exactly what a real client does on the wire, nothing cheaper, so join figures are
 * honest. It must never leave a connection open after a failed join, and never wait without a
 * deadline.
 *
 * @module
 */

import { MasterSessionMachine } from "../client/master_session_machine.ts";
import { ClusterSessionMachine } from "../client/cluster_session_machine.ts";
import { type EphemeralKeyPair, generateEphemeralKeyPair } from "../shared/key_derivation.ts";
import type { Frame } from "../shared/protocol/frame.ts";
import type { ClusterInfo, JoinTicketPacket } from "../shared/protocol/packets.ts";
import { SustenetError } from "../shared/errors.ts";
import { createRecordCipher } from "../shared/create_record_cipher.ts";
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
    const event = this.#session.receive(frame);
    switch (event.kind) {
      case "ready":
        this.#ready.resolve();
        return;
      case "ticket":
        // The ticket's byte fields are views of the read buffer: copy what outlives the visit.
        this.#tickets.get(event.request)?.resolve({
          ...event.ticket,
          clusterPublicKey: event.ticket.clusterPublicKey.slice(),
          ticket: event.ticket.ticket.slice(),
        });
        this.#tickets.delete(event.request);
        return;
      case "clusters":
        this.#lists.get(event.request)?.resolve(event.clusters);
        this.#lists.delete(event.request);
        return;
      case "refused":
        this.#tickets.get(event.request)?.reject(
          new JoinError("ticket_refused", event.error.message),
        );
        this.#tickets.delete(event.request);
        return;
      case "reply":
        this.#conn.send(event.frame);
        return;
      case "pong":
        return;
      case "unhandled":
      case "failed":
        this.#failAll(new JoinError("master_failed", event.error.message));
        this.#conn.close(event.error.message);
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
  const deriveAndAuthenticate = async (): Promise<void> => {
    const step = await session.deriveKeys();
    if (options.sealed) {
      // The runtime's default ciphers, as a real client in Deno gets them: the fastest
      // available per record size, so the generator takes less of the CPU it shares with the
      // server.
      const [sendKey, receiveKey] = await Promise.all([
        createRecordCipher(step.keys.sendKey),
        createRecordCipher(step.keys.receiveKey),
      ]);
      conn.startSealing({ sendKey, receiveKey });
    } else {
      conn.resumeFrames();
    }
    conn.send(step.frame);
  };
  conn.startReading((view, offset, length) => {
    const event = session.receive(frameAt(view, offset, length));
    switch (event.kind) {
      case "send":
      case "reply":
        conn.send(event.frame);
        return;
      case "derive_keys":
        // KeyExchangeOk is the last plaintext frame: hold what follows until the switch.
        conn.holdFrames();
        deriveAndAuthenticate().catch((error: unknown) => fail(String(error)));
        return;
      case "authenticated":
        done.resolve(event.clientId);
        return;
      case "failed":
      case "unhandled":
        fail(event.error.message);
        return;
      default:
        // Game traffic before the caller took over the connection: not counted.
        return;
    }
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
