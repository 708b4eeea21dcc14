/**
 * Shared fuzz inputs and fuzz connections for `tests/fuzz_sockets_test.ts` (short budget, with
 * fast-check) and `fuzz.ts` (the long run, with a seeded random source): random bytes, mutated
 * valid frames, truncated frames, oversized frame headers and valid frames in the wrong order,
 * and connections brought to each protocol state of a master or a cluster before the fuzz
 * bytes are sent. Test code only; it must never be imported by library code, and never sends
 * anything but to 127.0.0.1.
 *
 * @module
 */

import fc from "fast-check";
import { encodePacket } from "../shared/protocol/codec.ts";
import { Role } from "../shared/protocol/packets.ts";
import { connectFrames, type FrameConnection } from "../shared/transport.ts";
import { clientSessionKeysForClient, generateEphemeralKeyPair } from "../shared/key_derivation.ts";
import { registerRawCluster } from "./_master_peer.ts";
import { joinCluster, RawClient, requestTicket } from "./_raw_client.ts";
import { concatBytes } from "./_bytes.ts";

/** Every whole frame of PROTOCOL.md's vectors (valid and invalid), as mutation seeds. */
export const SEED_FRAMES: readonly Uint8Array[] = [
  ...(await Deno.readTextFile(new URL("../docs/PROTOCOL.md", import.meta.url)))
    .matchAll(/```hex\n([\s\S]*?)```/g),
].map((m) => Uint8Array.fromHex(m[1].replace(/\s+/g, "")));

/** The largest frame the fuzzed servers accept (their default). */
export const FUZZ_MAX_FRAME_BYTES = 65536;

/** A small seeded random source (xorshift32), so a long run can be replayed from its seed. */
export class FuzzRandom {
  #state: number;

  /** @param seed Any integer; 0 is replaced by a fixed non-zero value. */
  constructor(seed: number) {
    this.#state = (seed >>> 0) || 0x9e3779b9;
  }

  /** A uniform integer in `0..n-1`. */
  int(n: number): number {
    let x = this.#state;
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    this.#state = x;
    return x % n;
  }

  /** `n` random bytes. */
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }

  /** One element of `items`. */
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }
}

/** One edit of a mutated frame: at `at` (modulo the length), `byte` is xored, set or inserted. */
export interface FrameEdit {
  readonly at: number;
  readonly byte: number;
  readonly how: "xor" | "set" | "insert" | "delete";
}

/** Applies `edits` to a copy of `frame`. */
export function mutateFrame(frame: Uint8Array, edits: readonly FrameEdit[]): Uint8Array {
  const bytes = [...frame];
  for (const edit of edits) {
    if (bytes.length === 0) break;
    const at = edit.at % bytes.length;
    if (edit.how === "xor") bytes[at] ^= edit.byte || 1;
    else if (edit.how === "set") bytes[at] = edit.byte;
    else if (edit.how === "insert") bytes.splice(at, 0, edit.byte);
    else bytes.splice(at, 1);
  }
  return Uint8Array.from(bytes);
}

/** A frame header claiming `length` bytes (above the bound), followed by a few bytes. */
export function oversizedFrame(length: number, tail: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + tail.length);
  new DataView(out.buffer).setUint32(0, length);
  out.set(tail, 4);
  return out;
}

const EDIT_KINDS = ["xor", "set", "insert", "delete"] as const;

/** A fast-check arbitrary of fuzz inputs (one chunk of bytes to send). */
export function fuzzInputArbitrary(): fc.Arbitrary<Uint8Array> {
  const seed = fc.constantFrom(...SEED_FRAMES);
  const edit = fc.record({
    at: fc.nat(),
    byte: fc.integer({ min: 0, max: 255 }),
    how: fc.constantFrom(...EDIT_KINDS),
  });
  return fc.oneof(
    fc.uint8Array({ minLength: 1, maxLength: 300 }),
    fc.tuple(seed, fc.array(edit, { minLength: 1, maxLength: 4 })).map(([f, e]) =>
      mutateFrame(f, e)
    ),
    fc.tuple(seed, fc.nat()).map(([f, n]) => f.subarray(0, n % f.length)),
    fc.tuple(
      fc.integer({ min: FUZZ_MAX_FRAME_BYTES + 1, max: 0xffff_ffff }),
      fc.uint8Array({ maxLength: 16 }),
    ).map(([n, tail]) => oversizedFrame(n, tail)),
    fc.array(seed, { minLength: 1, maxLength: 6 }).map(concatBytes),
  );
}

/** The same kinds of fuzz input as {@linkcode fuzzInputArbitrary}, from a seeded source. */
export function randomFuzzInput(rng: FuzzRandom): Uint8Array {
  switch (rng.int(5)) {
    case 0:
      return rng.bytes(1 + rng.int(300));
    case 1: {
      const edits = Array.from({ length: 1 + rng.int(4) }, () => ({
        at: rng.int(1 << 16),
        byte: rng.int(256),
        how: rng.pick(EDIT_KINDS),
      }));
      return mutateFrame(rng.pick(SEED_FRAMES), edits);
    }
    case 2: {
      const frame = rng.pick(SEED_FRAMES);
      return frame.subarray(0, rng.int(frame.length));
    }
    case 3:
      return oversizedFrame(
        FUZZ_MAX_FRAME_BYTES + 1 + rng.int(0xffff_0000 - FUZZ_MAX_FRAME_BYTES),
        rng.bytes(rng.int(16)),
      );
    default:
      return concatBytes(Array.from({ length: 1 + rng.int(6) }, () => rng.pick(SEED_FRAMES)));
  }
}

/** The protocol states a fuzz connection is brought to before its fuzz bytes. */
export const MASTER_STAGES = [
  "before_hello",
  "client",
  "cluster_challenge",
  "cluster_linked",
] as const;
/** The protocol states of a cluster connection. */
export const CLUSTER_STAGES = [
  "before_hello",
  "after_hello",
  "sealed_unauthenticated",
  "player",
] as const;

/** A master stage. */
export type MasterStage = typeof MASTER_STAGES[number];
/** A cluster stage. */
export type ClusterStage = typeof CLUSTER_STAGES[number];

/** Where the fuzzed servers are, and the cluster key (for the registered-cluster stage). */
export interface FuzzTargets {
  readonly masterPort: number;
  readonly clusterPort: number;
  /** The real cluster's id (fuzzing clusters are listed too, so joins name it). */
  readonly clusterId: number;
  readonly keyName: string;
  readonly key: Uint8Array;
}

const HELLO_CLIENT = encodePacket({ kind: "Hello", version: 3, role: Role.Client });
const HELLO_CLUSTER = encodePacket({ kind: "Hello", version: 3, role: Role.Cluster });

async function rawConnection(port: number): Promise<FrameConnection> {
  const connection = await connectFrames({
    port,
    handshakeTimeoutMs: 0,
    idleTimeoutMs: 0,
    closeFlushTimeoutMs: 100,
    // The fuzzer sends whole chunks as they are; answers are only counted.
    onFrame: () => {},
  });
  return connection;
}

/** Opens a connection to the master brought to `stage`; fuzz bytes then go through `send`. */
export async function openMasterStage(
  targets: FuzzTargets,
  stage: MasterStage,
): Promise<FrameConnection> {
  switch (stage) {
    case "before_hello":
      return await rawConnection(targets.masterPort);
    case "client": {
      const connection = await rawConnection(targets.masterPort);
      connection.send(HELLO_CLIENT);
      return connection;
    }
    case "cluster_challenge": {
      const connection = await rawConnection(targets.masterPort);
      connection.send(concatBytes([
        HELLO_CLUSTER,
        encodePacket({
          kind: "BecomeCluster",
          keyName: targets.keyName,
          clusterNonce: crypto.getRandomValues(new Uint8Array(32)),
        }),
      ]));
      return connection;
    }
    case "cluster_linked": {
      // A port of its own so it never replaces the real cluster's listing.
      const { peer } = await registerRawCluster(targets.masterPort, {
        keyName: targets.keyName,
        key: targets.key,
        name: "fuzz",
        port: 1,
        maxConnections: 1,
      });
      return peer.connection;
    }
  }
}

/** Opens a connection to the cluster brought to `stage`. */
export async function openClusterStage(
  targets: FuzzTargets,
  stage: ClusterStage,
): Promise<FrameConnection> {
  switch (stage) {
    case "before_hello":
      return await rawConnection(targets.clusterPort);
    case "after_hello": {
      const connection = await rawConnection(targets.clusterPort);
      connection.send(HELLO_CLIENT);
      return connection;
    }
    case "sealed_unauthenticated":
      return (await keyedClusterClient(targets.clusterPort)).connection;
    case "player": {
      const grant = await requestTicket(targets.masterPort, targets.clusterId);
      if (grant.answer.kind !== "JoinTicket") {
        throw new Error(`no ticket: ${JSON.stringify(grant.answer)}`);
      }
      const join = await joinCluster(targets.clusterPort, {
        ephemeral: grant.ephemeral,
        ticket: grant.answer.ticket,
        clusterPublicKey: grant.answer.clusterPublicKey,
      });
      return join.client.connection;
    }
  }
}

/**
 * A client that finished the cluster's key exchange (its connection sealed) but has not sent
 * SendPassword: the state a ticket check guards.
 *
 * @param port The cluster's port on 127.0.0.1.
 */
export async function keyedClusterClient(port: number): Promise<RawClient> {
  const client = await RawClient.connect(port);
  client.send({ kind: "Hello", version: 3, role: Role.Client });
  await client.expect("HelloOk");
  client.send({ kind: "RequestKey", cachedVersion: 0 });
  const { publicKey } = await client.expect("SendPubKey");
  const ephemeral = await generateEphemeralKeyPair();
  const clientRandom = crypto.getRandomValues(new Uint8Array(32));
  client.send({ kind: "KeyExchange", clientPublicKey: ephemeral.publicRaw, clientRandom });
  const { serverRandom } = await client.expect("KeyExchangeOk");
  const keys = await clientSessionKeysForClient(
    ephemeral.privateKey,
    publicKey,
    clientRandom,
    serverRandom,
  );
  await client.seal(keys.clientToCluster, keys.clusterToClient);
  return client;
}

/** What one fuzz connection saw. */
export interface FuzzOutcome {
  /** `true` if the server closed the connection before the fuzzer did. */
  readonly closedByServer: boolean;
}

/**
 * Sends `inputs` on `connection`, one per event-loop turn, waits up to `waitMs` for the server
 * to close it, then closes it from this side.
 */
export async function fuzzConnection(
  connection: FrameConnection,
  inputs: readonly Uint8Array[],
  waitMs: number,
): Promise<FuzzOutcome> {
  for (const input of inputs) {
    if (!connection.isOpen) break;
    connection.send(input);
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const outcome = await Promise.race([
    connection.closed.then((info) => ({ closedByServer: info.by !== "local" })),
    new Promise<FuzzOutcome>((resolve) => {
      timer = setTimeout(() => resolve({ closedByServer: false }), waitMs);
    }),
  ]);
  clearTimeout(timer);
  await connection.close();
  return outcome;
}
