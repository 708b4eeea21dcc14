/**
 * Raw protocol peers for the master's socket tests, built from shared/transport and the codec
 * only (no client or cluster library): a {@linkcode RawPeer} that sends packets and reads
 * decoded ones in order, and {@linkcode registerRawCluster} that runs the whole cluster
 * registration and switches the link to sealed records exactly at the switch point. Test
 * helper; never used by library code.
 *
 * @module
 */

import { type MasterOptions, type MasterServer, startMaster } from "../master/mod.ts";
import { saveKey } from "../shared/keys.ts";
import { connectFrames, type FrameConnection, type SealingKeys } from "../shared/transport.ts";
import { decodePacket, encodePacket } from "../shared/protocol/codec.ts";
import {
  type AnswerClusterPacket,
  type Packet,
  type PacketKind,
  type PacketOf,
  Role,
} from "../shared/protocol/packets.ts";
import { proveAnnounce } from "../shared/announce_proof.ts";
import { ProtocolError } from "../shared/protocol/protocol_error.ts";
import { deriveMasterLinkKeys } from "../shared/key_derivation.ts";
import { decrypt, importAesKey } from "../shared/security.ts";

/** A test connection to the master speaking raw packets. */
export class RawPeer {
  readonly connection: FrameConnection;
  readonly #queue: (Packet | ProtocolError)[] = [];
  #waiters: Array<() => void> = [];
  #sealOn: { kind: PacketKind; keys: SealingKeys } | undefined;

  private constructor(connection: FrameConnection) {
    this.connection = connection;
    connection.closed.then(() => this.#wake());
  }

  /** Connects to 127.0.0.1:`port`. */
  static async connect(port: number): Promise<RawPeer> {
    const connection = await connectFrames({
      port,
      handshakeTimeoutMs: 0,
      idleTimeoutMs: 0,
      closeFlushTimeoutMs: 200,
    });
    const self = new RawPeer(connection);
    connection.start((frame) => {
      const packet = decodePacket(frame);
      self.#queue.push(packet);
      // The cluster switches both directions right after reading the switch frame.
      const seal = self.#sealOn;
      if (seal !== undefined && !(packet instanceof ProtocolError) && packet.kind === seal.kind) {
        self.#sealOn = undefined;
        connection.startSealing(seal.keys);
      }
      self.#wake();
    });
    return self;
  }

  /** Connects and completes Hello as `role`; returns the peer (HelloOk consumed). */
  static async hello(port: number, role: "client" | "cluster"): Promise<RawPeer> {
    const peer = await RawPeer.connect(port);
    peer.send({ kind: "Hello", version: 3, role: role === "client" ? Role.Client : Role.Cluster });
    await peer.expect("HelloOk");
    return peer;
  }

  /** Queues a packet. */
  send(packet: Packet): void {
    this.connection.send(encodePacket(packet));
  }

  /** Switches to sealed records, synchronously, when a packet of `kind` arrives. */
  sealOn(kind: PacketKind, keys: SealingKeys): void {
    this.#sealOn = { kind, keys };
  }

  /** The next packet, or `undefined` once the connection is closed and nothing is left. */
  async next(timeoutMs = 60_000): Promise<Packet | undefined> {
    const deadline = Date.now() + timeoutMs;
    while (true) {
      const item = this.#queue.shift();
      if (item !== undefined) {
        if (item instanceof ProtocolError) throw item;
        return item;
      }
      if (!this.connection.isOpen) return undefined;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no packet within ${timeoutMs} ms`);
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
    }
  }

  /** The next packet, which must be of `kind`. */
  async expect<K extends PacketKind>(kind: K, timeoutMs = 60_000): Promise<PacketOf<K>> {
    const packet = await this.next(timeoutMs);
    if (packet === undefined) throw new Error(`connection closed while expecting ${kind}`);
    if (packet.kind !== kind) {
      throw new Error(`expected ${kind}, got ${JSON.stringify(describe(packet))}`);
    }
    return packet as PacketOf<K>;
  }

  /** The next packet must be Error(code); returns it. */
  async expectError(code: number, timeoutMs = 60_000): Promise<PacketOf<"Error">> {
    const error = await this.expect("Error", timeoutMs);
    if (error.code !== code) {
      throw new Error(`expected Error ${code}, got ${error.code} ${error.reason}`);
    }
    return error;
  }

  /** Resolves once the master closed the connection (draining anything left). */
  async waitClosed(timeoutMs = 60_000): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), timeoutMs);
    });
    const result = await Promise.race([this.connection.closed, timeout]);
    clearTimeout(timer);
    if (result === "timeout") throw new Error(`still open after ${timeoutMs} ms`);
  }

  /** Closes this side. */
  async close(): Promise<void> {
    await this.connection.close();
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }
}

function describe(packet: Packet): unknown {
  return packet.kind === "Error" ? packet : { kind: packet.kind };
}

/** What a raw cluster announces. */
export interface RawClusterOptions {
  readonly keyName: string;
  readonly key: Uint8Array;
  readonly name?: string;
  readonly host?: string;
  readonly port?: number;
  readonly maxConnections?: number;
  readonly keyVersion?: number;
  readonly publicKey?: Uint8Array;
}

/** A registered raw cluster: its sealed link and id. */
export interface RawCluster {
  readonly peer: RawPeer;
  readonly clusterId: number;
}

/** Hello, BecomeCluster, answers the challenge; resolves with the VerifyCluster packet. */
export async function challengeOf(
  port: number,
  keyName: string,
  clusterNonce: Uint8Array = crypto.getRandomValues(new Uint8Array(32)),
): Promise<{ peer: RawPeer; sealedPassphrase: Uint8Array; clusterNonce: Uint8Array }> {
  const peer = await RawPeer.hello(port, "cluster");
  peer.send({ kind: "BecomeCluster", keyName, clusterNonce });
  const verify = await peer.expect("VerifyCluster");
  return { peer, sealedPassphrase: verify.sealedPassphrase, clusterNonce };
}

/**
 * The AnswerCluster a raw cluster sends after opening `passphrase`: its fields and their proof
 * under the announce key derived from `options.key`, `clusterNonce` and `passphrase` (a wrong
 * key, nonce or passphrase gives a proof the master refuses).
 */
export async function answerOf(
  options: RawClusterOptions,
  passphrase: Uint8Array,
  clusterNonce: Uint8Array = new Uint8Array(32),
): Promise<AnswerClusterPacket> {
  const fields = {
    name: options.name ?? "test-cluster",
    host: options.host ?? "127.0.0.1",
    port: options.port ?? 7000,
    maxConnections: options.maxConnections ?? 100,
    keyVersion: options.keyVersion ?? 1,
    publicKey: options.publicKey ?? new Uint8Array(32).fill(0x42),
  };
  const { announceKey } = await deriveMasterLinkKeys(options.key, clusterNonce, passphrase);
  return { kind: "AnswerCluster", ...fields, proof: await proveAnnounce(announceKey, fields) };
}

/** Registers a raw cluster with the master at `masterPort`; the link is sealed afterwards. */
export async function registerRawCluster(
  masterPort: number,
  options: RawClusterOptions,
): Promise<RawCluster> {
  const { peer, sealedPassphrase, clusterNonce } = await challengeOf(masterPort, options.keyName);
  const passphrase = await decrypt(await importAesKey(options.key), sealedPassphrase);
  const keys = await deriveMasterLinkKeys(options.key, clusterNonce, passphrase);
  peer.sealOn("CreateCluster", { sendKey: keys.clusterToMaster, receiveKey: keys.masterToCluster });
  peer.send(await answerOf(options, passphrase, clusterNonce));
  const created = await peer.expect("CreateCluster");
  return { peer, clusterId: created.clusterId };
}

/** The key name {@linkcode withMaster} saves its cluster key under. */
export const MASTER_KEY_NAME = "cluster_key";

/** What {@linkcode withMaster} hands a test: the master and raw peers on it. */
export interface MasterFixture {
  readonly master: MasterServer;
  readonly port: number;
  readonly key: Uint8Array;
  readonly keysDir: string;
  /** Connects a raw peer that is closed when the test ends. */
  hello(role: "client" | "cluster"): Promise<RawPeer>;
  connect(): Promise<RawPeer>;
  cluster(options?: Partial<RawClusterOptions>): Promise<RawCluster>;
  challenge(keyName?: string): ReturnType<typeof challengeOf>;
}

/**
 * Runs `run` against an in-process master on port 0 with a random `cluster_key`; every raw peer
 * made through the fixture is closed, the master stopped and its keys folder removed after.
 *
 * @param options Master options (port and keysDir are set here).
 * @param run The test.
 */
export async function withMaster(
  options: MasterOptions,
  run: (fixture: MasterFixture) => Promise<void>,
): Promise<void> {
  const keysDir = await Deno.makeTempDir({ prefix: "sustenet_master_test_" });
  const key = crypto.getRandomValues(new Uint8Array(32));
  await saveKey(keysDir, MASTER_KEY_NAME, key);
  const master = await startMaster({ port: 0, keysDir, ...options });
  const peers: RawPeer[] = [];
  const port = master.addr.port;
  const keep = (peer: RawPeer) => {
    peers.push(peer);
    return peer;
  };
  try {
    await run({
      master,
      port,
      key,
      keysDir,
      hello: async (role) => keep(await RawPeer.hello(port, role)),
      connect: async () => keep(await RawPeer.connect(port)),
      cluster: async (extra = {}) => {
        const cluster = await registerRawCluster(port, { keyName: MASTER_KEY_NAME, key, ...extra });
        keep(cluster.peer);
        return cluster;
      },
      challenge: async (keyName = MASTER_KEY_NAME) => {
        const challenge = await challengeOf(port, keyName);
        keep(challenge.peer);
        return challenge;
      },
    });
  } finally {
    await Promise.all(peers.map((peer) => peer.close()));
    await master.stop();
    await Deno.remove(keysDir, { recursive: true });
  }
}
