import assert from "node:assert/strict";
import { decodePacket, encodePacket } from "../shared/protocol/codec.ts";
import { FrameDecoder } from "../shared/protocol/frame.ts";
import {
  AuthStatus,
  type Packet,
  PACKET_KINDS,
  type PacketKind,
  Role,
} from "../shared/protocol/packets.ts";
import { ErrorCode, ProtocolError } from "../shared/protocol/protocol_error.ts";

/** `start, start+1, …` as bytes: recognisable key material in a hex dump. */
function run(start: number, length: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (start + i) & 0xff);
}

const ascii = (text: string) => new TextEncoder().encode(text);

/**
 * The packet each `Vector: <label>` of docs/PROTOCOL.md must decode to and encode from. The
 * label's first word is the packet kind.
 */
const EXPECTED: Readonly<Record<string, Packet>> = {
  "Hello": { kind: "Hello", version: 3, role: Role.Client },
  "HelloOk": { kind: "HelloOk", version: 3, role: Role.Master, serverName: "master-1" },
  "Error": { kind: "Error", code: ErrorCode.VersionMismatch, reason: "version 2 unsupported" },
  "Error (RateLimited)": {
    kind: "Error",
    code: ErrorCode.RateLimited,
    reason: "too many join requests; wait a second",
  },
  "Error (Unhandled)": {
    kind: "Error",
    code: ErrorCode.Unhandled,
    reason: "no plugin handles command 0x90",
  },
  "Ping": { kind: "Ping", value: 42 },
  "Pong": { kind: "Pong", value: 42 },
  "RequestClusters": { kind: "RequestClusters" },
  "SendClusters": {
    kind: "SendClusters",
    clusters: [
      {
        id: 1,
        name: "eu-1",
        host: "10.0.0.5",
        port: 6257,
        load: 12,
        maxConnections: 500,
        keyVersion: 1,
        full: false,
      },
      {
        id: 2,
        name: "Zürich",
        host: "::1",
        port: 6258,
        load: 500,
        maxConnections: 500,
        keyVersion: 3,
        full: true,
      },
    ],
  },
  "SendClusters (empty)": { kind: "SendClusters", clusters: [] },
  "JoinCluster": {
    kind: "JoinCluster",
    clusterId: 0,
    clientPublicKey: run(0x00, 32),
    credential: ascii("guest"),
  },
  "JoinTicket": {
    kind: "JoinTicket",
    clusterId: 1,
    host: "127.0.0.1",
    port: 6257,
    keyVersion: 1,
    clusterPublicKey: run(0x20, 32),
    ticket: run(0xe0, 20),
  },
  "BecomeCluster": { kind: "BecomeCluster", keyName: "cluster", clusterNonce: run(0x40, 32) },
  "VerifyCluster": { kind: "VerifyCluster", sealedPassphrase: run(0x60, 44) },
  "AnswerCluster": {
    kind: "AnswerCluster",
    name: "eu-1",
    host: "10.0.0.5",
    port: 6257,
    maxConnections: 500,
    keyVersion: 1,
    publicKey: run(0x20, 32),
    proof: run(0x90, 32),
  },
  "AnswerCluster (endpoints)": {
    kind: "AnswerCluster",
    name: "eu-1",
    host: "10.0.0.5",
    port: 6257,
    maxConnections: 500,
    keyVersion: 1,
    publicKey: run(0x20, 32),
    endpoints: [{ kind: "ws", port: 6259, path: "/sustenet" }, {
      kind: "tls",
      port: 6443,
      path: "",
    }],
    proof: run(0x90, 32),
  },
  "SendClusters (endpoints)": {
    kind: "SendClusters",
    clusters: [{
      id: 1,
      name: "eu-1",
      host: "10.0.0.5",
      port: 6257,
      load: 12,
      maxConnections: 500,
      keyVersion: 1,
      full: false,
      endpoints: [{ kind: "wss", port: 443, path: "/play" }],
    }],
  },
  "JoinTicket (endpoints)": {
    kind: "JoinTicket",
    clusterId: 1,
    host: "127.0.0.1",
    port: 6257,
    keyVersion: 1,
    clusterPublicKey: run(0x20, 32),
    ticket: run(0xe0, 20),
    endpoints: [{ kind: "ws", port: 6259, path: "/sustenet" }],
  },
  "CreateCluster": { kind: "CreateCluster", clusterId: 1 },
  "Heartbeat": { kind: "Heartbeat", load: 12, maxConnections: 500 },
  "Deregister": { kind: "Deregister", reason: "shutting down" },
  "ClusterPage": { kind: "ClusterPage", url: "http://10.0.0.7:6281/" },
  "ClusterPlugins": {
    kind: "ClusterPlugins",
    plugins: [
      { name: "echo", state: "running", restarts: 0 },
      { name: "walk", state: "failed", restarts: 3 },
    ],
  },
  "RequestKey": { kind: "RequestKey", cachedVersion: 0 },
  "VersionOfKey": { kind: "VersionOfKey", version: 1 },
  "SendPubKey": { kind: "SendPubKey", version: 1, publicKey: run(0x20, 32) },
  "KeyExchange": {
    kind: "KeyExchange",
    clientPublicKey: run(0x00, 32),
    clientRandom: run(0xa0, 32),
  },
  "KeyExchangeOk": { kind: "KeyExchangeOk", serverRandom: run(0xc0, 32) },
  "SendPassword": { kind: "SendPassword", ticket: run(0xe0, 20) },
  "Authenticate": { kind: "Authenticate", status: AuthStatus.Ok, clientId: 7 },
  "Authenticate (expired)": { kind: "Authenticate", status: AuthStatus.TicketExpired, clientId: 0 },
  "ClusterJoinCluster": { kind: "ClusterJoinCluster", clusterId: 1 },
  "LeaveCluster": { kind: "LeaveCluster" },
  "DisconnectCluster": { kind: "DisconnectCluster", reason: "kicked" },
  "Move": { kind: "Move", state: { x: 1, y: 2, z: 3 } },
  "Move (yaw)": { kind: "Move", state: { x: 1.5, y: 0, z: -2, yaw: 0.25 } },
  "Move (yaw, velocity)": {
    kind: "Move",
    state: { x: 10, y: 0, z: 5, yaw: 1.5, vx: 1, vy: 0, vz: -1 },
  },
  "MoveBatch": {
    kind: "MoveBatch",
    entries: [
      { clientId: 7, state: { x: 1, y: 2, z: 3 } },
      { clientId: 9, state: { x: 4, y: 0, z: 0.5, vx: 0.5, vy: 0, vz: 0 } },
    ],
  },
  "Spawn": {
    kind: "Spawn",
    clientId: 7,
    playerId: "guest-7",
    state: { x: 1, y: 2, z: 3, yaw: 0.5 },
  },
  "Despawn": { kind: "Despawn", clientId: 7 },
  "TlsJoin": { kind: "TlsJoin", bindingSecret: run(0x40, 32), ticket: run(0xe0, 20) },
  "Plugin": { kind: "Plugin", command: 0x80, payload: ascii("hi") },
  "Plugin (operator notice)": { kind: "Plugin", command: 0xff, payload: ascii("restart in 5") },
};

interface MarkdownVector {
  /** `valid` for `Vector:`, `invalid` for `Invalid:`. */
  readonly sort: "valid" | "invalid";
  /** The text after the colon: a packet label, or an error name and a note. */
  readonly label: string;
  readonly bytes: Uint8Array;
}

/**
 * Reads every vector of the Markdown: a line `Vector: <label>` or `Invalid: <ErrorName> …`,
 * then a fenced block tagged `hex` (whitespace inside it is ignored).
 */
function parseVectors(markdown: string): MarkdownVector[] {
  const lines = markdown.split("\n");
  const vectors: MarkdownVector[] = [];
  for (let i = 0; i < lines.length; i++) {
    const head = /^(Vector|Invalid): (.+?)\s*$/.exec(lines[i]);
    if (head === null) continue;
    let j = i + 1;
    while (j < lines.length && lines[j].trim() === "") j++;
    assert.equal(lines[j], "```hex", `a hex block follows "${lines[i]}" (line ${i + 1})`);
    const hex: string[] = [];
    for (j++; j < lines.length && lines[j] !== "```"; j++) hex.push(lines[j]);
    assert.ok(j < lines.length, `the hex block of "${lines[i]}" is closed`);
    const compact = hex.join("").replace(/\s+/g, "");
    assert.match(compact, /^([0-9a-f]{2})+$/, `lowercase hex bytes for "${lines[i]}"`);
    vectors.push({
      sort: head[1] === "Vector" ? "valid" : "invalid",
      label: head[2],
      bytes: Uint8Array.fromHex(compact),
    });
    i = j;
  }
  return vectors;
}

const markdown = await Deno.readTextFile(new URL("../docs/PROTOCOL.md", import.meta.url));
const vectors = parseVectors(markdown);

/** Cuts bytes into frames and decodes each, as a peer would. */
function decodeStream(bytes: Uint8Array): (Packet | ProtocolError)[] {
  const decoder = new FrameDecoder();
  decoder.push(bytes);
  const out: (Packet | ProtocolError)[] = [];
  for (let f = decoder.next(); f !== undefined; f = decoder.next()) {
    if (f instanceof ProtocolError) {
      out.push(f);
      break;
    }
    out.push(decodePacket(f));
  }
  return out;
}

Deno.test("PROTOCOL.md has one vector per label the test expects, and no other", () => {
  const labels = vectors.filter((v) => v.sort === "valid").map((v) => v.label);
  assert.deepEqual([...labels].sort(), Object.keys(EXPECTED).sort());
});

Deno.test("PROTOCOL.md's vectors cover every packet kind", () => {
  const kinds = new Set<PacketKind>();
  for (const v of vectors) {
    if (v.sort === "valid") kinds.add(EXPECTED[v.label].kind);
  }
  assert.deepEqual([...kinds].sort(), [...PACKET_KINDS].sort());
});

Deno.test("every vector decodes to its expected packet and encodes to the same bytes", () => {
  for (const v of vectors) {
    if (v.sort !== "valid") continue;
    const expected = EXPECTED[v.label];
    const decoded = decodeStream(v.bytes);
    assert.equal(decoded.length, 1, `"${v.label}" is exactly one whole frame`);
    assert.deepEqual(decoded[0], expected, `"${v.label}" decodes to the expected packet`);
    assert.equal(encodePacket(expected).toHex(), v.bytes.toHex(), `"${v.label}" encodes`);
  }
});

Deno.test("every invalid vector fails with the error code it names", () => {
  const invalid = vectors.filter((v) => v.sort === "invalid");
  assert.ok(invalid.length >= 6);
  for (const v of invalid) {
    const name = v.label.split(" ")[0];
    assert.ok(name in ErrorCode, `"${name}" is an error code name`);
    const results = decodeStream(v.bytes);
    const last = results.at(-1);
    assert.ok(last instanceof ProtocolError, `"${v.label}" fails`);
    assert.equal(last.errorCode, ErrorCode[name as keyof typeof ErrorCode], v.label);
  }
});
