/**
 * A minimal protocol client for cluster tests, built from the transport, the codec and the key
 * derivations only (no client library): asks a master for a join ticket, runs the cluster
 * handshake, and reads packets in order. It can also seal a deliberately tampered record.
 * {@linkcode startWorld} starts the in-process master and cluster such tests talk to.
 *
 * Test code only: it trusts its inputs and throws on anything unexpected.
 *
 * @module
 */

import assert from "node:assert/strict";
import { type ClusterOptions, type ClusterServer, startCluster } from "../cluster/mod.ts";
import { type MasterOptions, type MasterServer, startMaster } from "../master/mod.ts";
import { generateKey } from "../shared/keys.ts";
import {
  clientSessionKeysForClient,
  type EphemeralKeyPair,
  generateEphemeralKeyPair,
} from "../shared/key_derivation.ts";
import { decodePacket, encodePacket } from "../shared/protocol/codec.ts";
import type { Packet, PacketKind, PacketOf } from "../shared/protocol/packets.ts";
import { ProtocolError } from "../shared/protocol/protocol_error.ts";
import type { RecordCipher } from "../shared/record_cipher.ts";
import { createRecordCipher } from "../shared/create_record_cipher.ts";
import { type CloseInfo, connectFrames, type FrameConnection } from "../shared/transport.ts";
import { connectTlsFrames } from "../shared/tls_listener.ts";
import { waitFor } from "./_wait.ts";

/** How long a test waits for one packet before failing. */
const DEFAULT_WAIT_MS = 60_000;

/** A framed connection whose packets are read in order with {@linkcode RawClient.next}. */
export class RawClient {
  readonly connection: FrameConnection;
  readonly #inbox: (Packet | ProtocolError)[] = [];
  #waiter: (() => void) | undefined;
  /** Set to make the next sealed record fail its tag (one bit flipped). */
  tamperNextRecord = false;

  private constructor(connection: FrameConnection) {
    this.connection = connection;
    connection.closed.then(() => this.#waiter?.());
    connection.start((frame) => {
      let packet = decodePacket(frame);
      // Plugin payloads are views of the read buffer: keep a copy.
      if (!(packet instanceof ProtocolError) && packet.kind === "Plugin") {
        packet = { ...packet, payload: packet.payload.slice() };
      }
      this.#inbox.push(packet);
      this.#waiter?.();
    });
  }

  /** Connects to `port` on 127.0.0.1. */
  static async connect(port: number): Promise<RawClient> {
    return new RawClient(await connectFrames({ port, idleTimeoutMs: 0, handshakeTimeoutMs: 0 }));
  }

  /** Connects over TLS to `port` on 127.0.0.1, trusting `caCert` (PEM). */
  static async connectTls(port: number, caCert: string): Promise<RawClient> {
    return new RawClient(
      await connectTlsFrames({ port, caCerts: [caCert], idleTimeoutMs: 0, handshakeTimeoutMs: 0 }),
    );
  }

  /** Resolves once the connection is closed. */
  get closed(): Promise<CloseInfo> {
    return this.connection.closed;
  }

  /** Sends one packet. */
  send(packet: Packet): void {
    this.connection.send(encodePacket(packet));
  }

  /** The next packet, in order; rejects on timeout or if the connection closes first. */
  async next(timeoutMs = DEFAULT_WAIT_MS): Promise<Packet> {
    const deadline = performance.now() + timeoutMs;
    while (this.#inbox.length === 0) {
      if (!this.connection.isOpen) throw new Error("connection closed while waiting");
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`no packet within ${timeoutMs} ms`);
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#waiter = resolve;
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
      this.#waiter = undefined;
    }
    const packet = this.#inbox.shift()!;
    if (packet instanceof ProtocolError) throw packet;
    return packet;
  }

  /** The next packet, which must be of `kind`. */
  async expect<K extends PacketKind>(kind: K, timeoutMs = DEFAULT_WAIT_MS): Promise<PacketOf<K>> {
    const packet = await this.next(timeoutMs);
    assert.equal(packet.kind, kind, `expected ${kind}, got ${JSON.stringify(packet)}`);
    return packet as PacketOf<K>;
  }

  /** Packets received and not read yet. */
  get pending(): readonly (Packet | ProtocolError)[] {
    return this.#inbox;
  }

  /** Switches to sealed records; the sending cipher obeys {@linkcode tamperNextRecord}. */
  async seal(sendKey: Uint8Array, receiveKey: Uint8Array): Promise<void> {
    const inner = await createRecordCipher(sendKey, { prefer: "webcrypto" });
    const tampering: RecordCipher = {
      sync: false,
      seal: async (counter, plaintext) => {
        const sealed = new Uint8Array(await inner.seal(counter, plaintext));
        if (this.tamperNextRecord) {
          this.tamperNextRecord = false;
          sealed[0] ^= 1;
        }
        return sealed;
      },
      open: (counter, sealed) => inner.open(counter, sealed),
    };
    this.connection.startSealing({ sendKey: tampering, receiveKey });
  }

  /** Closes the connection. */
  async close(): Promise<void> {
    await this.connection.close();
  }
}

/** What a master gave for a JoinCluster. */
export interface TicketGrant {
  /** The JoinTicket, or the Error the master answered. */
  readonly answer: PacketOf<"JoinTicket"> | PacketOf<"Error">;
  /** The ephemeral key pair the ticket is bound to. */
  readonly ephemeral: EphemeralKeyPair;
}

/** Asks the master at `masterPort` for a ticket to `clusterId` (0 = any). */
export async function requestTicket(
  masterPort: number,
  clusterId = 0,
  ephemeral?: EphemeralKeyPair,
): Promise<TicketGrant> {
  const keys = ephemeral ?? await generateEphemeralKeyPair();
  const master = await RawClient.connect(masterPort);
  try {
    master.send({ kind: "Hello", version: 3, role: 1 });
    await master.expect("HelloOk");
    master.send({
      kind: "JoinCluster",
      clusterId,
      clientPublicKey: keys.publicRaw,
      credential: new Uint8Array(),
    });
    const answer = await master.next();
    assert.ok(answer.kind === "JoinTicket" || answer.kind === "Error", answer.kind);
    return { answer, ephemeral: keys };
  } finally {
    await master.close();
  }
}

/** A client connected to a cluster, and the cluster's Authenticate answer. */
export interface ClusterJoin {
  /** The connection (sealed). */
  readonly client: RawClient;
  /** The Authenticate packet. */
  readonly auth: PacketOf<"Authenticate">;
}

/** Options of {@linkcode joinCluster}. */
export interface JoinClusterOptions {
  /** The cluster's identity public key (pinned); default: asked with RequestKey. */
  readonly clusterPublicKey?: Uint8Array;
  /** The ephemeral key pair for KeyExchange. */
  readonly ephemeral: EphemeralKeyPair;
  /** The ticket sent in SendPassword. */
  readonly ticket: Uint8Array;
}

/** Connects to the cluster at `port`, runs the handshake and sends the ticket. */
export async function joinCluster(port: number, options: JoinClusterOptions): Promise<ClusterJoin> {
  const client = await RawClient.connect(port);
  client.send({ kind: "Hello", version: 3, role: 1 });
  await client.expect("HelloOk");
  let clusterPublicKey = options.clusterPublicKey;
  if (clusterPublicKey === undefined) {
    client.send({ kind: "RequestKey", cachedVersion: 0 });
    clusterPublicKey = (await client.expect("SendPubKey")).publicKey;
  }
  const clientRandom = crypto.getRandomValues(new Uint8Array(32));
  client.send({ kind: "KeyExchange", clientPublicKey: options.ephemeral.publicRaw, clientRandom });
  const { serverRandom } = await client.expect("KeyExchangeOk");
  const keys = await clientSessionKeysForClient(
    options.ephemeral.privateKey,
    clusterPublicKey,
    clientRandom,
    serverRandom,
  );
  await client.seal(keys.clientToCluster, keys.clusterToClient);
  client.send({ kind: "SendPassword", ticket: options.ticket });
  const auth = await client.expect("Authenticate");
  return { client, auth };
}

/** Gets a ticket from the master and joins the cluster with it; asserts status 20. */
export async function playerJoins(masterPort: number, clusterPort: number): Promise<ClusterJoin> {
  const grant = await requestTicket(masterPort);
  assert.equal(grant.answer.kind, "JoinTicket", JSON.stringify(grant.answer));
  return await joinWithTicket(clusterPort, grant);
}

/** Joins the cluster with the ticket `grant` holds; asserts status 20. */
async function joinWithTicket(
  clusterPort: number,
  grant: Awaited<ReturnType<typeof requestTicket>>,
): Promise<ClusterJoin> {
  const ticket = grant.answer as PacketOf<"JoinTicket">;
  const join = await joinCluster(clusterPort, {
    ephemeral: grant.ephemeral,
    ticket: ticket.ticket,
    clusterPublicKey: ticket.clusterPublicKey,
  });
  assert.equal(join.auth.status, 20);
  return join;
}

/**
 * Waits until `check()` holds ({@linkcode waitFor} of tests/_wait.ts, arguments in the order
 * the raw-client tests use).
 */
export function waitUntil(
  check: () => boolean,
  what: string,
  timeoutMs = DEFAULT_WAIT_MS,
): Promise<void> {
  return waitFor(what, check, timeoutMs);
}

/**
 * Gets a ticket and joins, retrying the ticket every 100 ms while the master has no cluster to
 * give (it is not listed yet), for at most `timeoutMs`; asserts status 20.
 */
export async function playerJoinsWhenListed(
  masterPort: number,
  clusterPort: number,
  timeoutMs = DEFAULT_WAIT_MS,
): Promise<ClusterJoin> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const grant = await requestTicket(masterPort);
    if (grant.answer.kind === "JoinTicket") return await joinWithTicket(clusterPort, grant);
    if (performance.now() > deadline) throw new Error(`no ticket: ${JSON.stringify(grant.answer)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * Master join limits for tests: every test client comes from 127.0.0.1, which in production would
 * be many players' addresses, so the per-address ticket limits are lifted (the connection and
 * player limits stay at their defaults). tests/master_join_*_test.ts test the address limits.
 */
export const ONE_ADDRESS_FOR_ALL = {
  addressRatePerS: 1_000_000,
  addressBurst: 1_000_000,
  reservationsPerAddress: 1_000_000,
} as const;

/**
 * Per-player rate limits lifted, for tests whose player sends plugin commands as fast as the
 * round trip allows (a closed-loop echo is a flood by the production defaults) because they test
 * something behind those limits (a plugin host's own bounds). tests/cluster_fairness_test.ts tests
 * the limits themselves.
 */
export const UNLIMITED_PLAYERS = {
  commandsPerS: 1_000_000,
  commandsBurst: 1_000_000,
  commandBytesPerS: 1_073_741_824,
  commandBytesBurst: 1_073_741_824,
  movesPerS: 1_000_000,
  movesBurst: 1_000_000,
} as const;

/** An in-process master and a cluster registered with it, sharing a temporary keys dir. */
export interface World extends AsyncDisposable {
  /** The shared keys directory (holds `cluster_key`). */
  readonly keysDir: string;
  /** The master (a test may replace it with a restarted one; dispose stops the current one). */
  master: MasterServer;
  /** The cluster. */
  readonly cluster: ClusterServer;
}

/**
 * Starts a master and a cluster (fast heartbeats and reconnects) and waits for the listing.
 *
 * @param cluster Cluster options over the defaults (e.g. plugins, a WebSocket listener).
 * @param masterOptions Master options over the defaults (e.g. TLS, a WebSocket listener).
 */
export async function startWorld(
  cluster: ClusterOptions = {},
  masterOptions: MasterOptions = {},
): Promise<World> {
  const keysDir = await Deno.makeTempDir();
  await generateKey(keysDir, "cluster_key");
  const master = await startMaster({
    port: 0,
    keysDir,
    heartbeatTimeoutMs: 2000,
    joinLimits: ONE_ADDRESS_FOR_ALL,
    ...masterOptions,
  });
  let started: ClusterServer | undefined;
  try {
    started = await startCluster({
      port: 0,
      keysDir,
      serverName: "eu-1",
      master: { hostname: "127.0.0.1", port: master.addr.port },
      heartbeatIntervalMs: 100,
      reconnectMinMs: 50,
      reconnectMaxMs: 200,
      ...cluster,
    });
    await waitUntil(() => master.registry.size === 1, "the cluster to be listed");
  } catch (error) {
    await started?.stop();
    await master.stop();
    await Deno.remove(keysDir, { recursive: true });
    throw error;
  }
  const running = started;
  const world: World = {
    keysDir,
    master,
    cluster: running,
    async [Symbol.asyncDispose]() {
      await running.stop();
      await world.master.stop();
      await Deno.remove(keysDir, { recursive: true });
    },
  };
  return world;
}
