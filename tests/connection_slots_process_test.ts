/**
 * The slot-starving attacks of issue 15 against real `deno task master` / `cluster` processes:
 * hundreds of never-authenticating connections on a cluster with `max_connections = 40`, each
 * holding the largest partial frame a pending peer may announce, while a ticket holder joins;
 * the cluster's RSS per pending connection is measured and printed (docs/SECURITY.md quotes
 * it); peers announcing 1 MiB are closed at once. Also idle clients against a master with
 * `max_connections = 40`, while a cluster process registers.
 */

import { PROTOCOL_VERSION } from "../shared/protocol/packets.ts";
import assert from "node:assert/strict";
import { encodePacket } from "../shared/protocol/codec.ts";
import { Deployment, freePort, processRss, REPO_ROOT } from "./_process.ts";
import { RawPeer } from "./_master_peer.ts";
import { playerJoins } from "./_raw_client.ts";

/** Pending connections opened against the cluster (`SLOTS_PENDING` to measure with more). */
const PENDING = Number(Deno.env.get("SLOTS_PENDING") ?? 400);
/** Bytes of a 4096-byte frame body each of them leaves half-sent (`SLOTS_PARTIAL`, 1..4095). */
const PARTIAL_BODY = Number(Deno.env.get("SLOTS_PARTIAL") ?? 4000);

/** Resident set size of a process, in KiB (Linux /proc). */
async function rssKiB(pid: number): Promise<number> {
  const bytes = await processRss(pid);
  assert.ok(bytes !== undefined, "VmRSS in /proc/<pid>/status");
  return bytes / 1024;
}

/** One counter's value from a `/metrics` page. */
async function metric(statusPort: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${statusPort}/metrics`)).text();
  const match = new RegExp(`^${name} (\\d+)$`, "m").exec(text);
  return match === null ? NaN : Number(match[1]);
}

/** Reads until the server closes the connection; resolves `true` on EOF, `false` on reset. */
async function readUntilClosed(conn: Deno.TcpConn): Promise<boolean> {
  const buffer = new Uint8Array(4096);
  try {
    while ((await conn.read(buffer)) !== null) { /* drain the Error frame */ }
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.ConnectionReset) return false;
    throw error;
  }
}

Deno.test("cluster process with max_connections = 40: hundreds of pending connections holding partial frames, a ticket holder still joins; RSS per pending connection printed", async () => {
  await using deployment = await Deployment.create("sustenet_slots_");
  const masterPort = await freePort();
  await deployment.start(
    "master",
    "master",
    `[all]\nport = ${masterPort}\nkeys_dir = "keys"\nstatus_enabled = false\n`,
    /^master listening on /,
  );
  const clusterPort = await freePort();
  const statusPort = await freePort();
  const cluster = await deployment.start(
    "cluster",
    "cluster",
    `[all]\nport = ${clusterPort}\nkeys_dir = "keys"\nstatus_port = ${statusPort}\n` +
      `server_name = "eu-1"\nmax_connections = 40\nhandshake_timeout_ms = 120000\n` +
      // Every test connection comes from 127.0.0.1: the per-address limit is lifted here.
      `max_pending_per_address = ${PENDING + 10}\nmax_pending_connections = ${PENDING + 10}\n` +
      `log_level = "warning"\n` +
      `[cluster]\nmaster_port = ${masterPort}\nheartbeat_interval_ms = 200\n` +
      `[[cluster.plugins]]\nurl = "${REPO_ROOT}plugins/echo.ts"\n`,
    /^cluster eu-1 listening on /,
  );
  const pid = cluster.child.pid;
  // Warm up: one whole join, so code paths and caches are in before the baseline.
  const warm = await waitJoin(masterPort, clusterPort);
  await warm.client.close();
  const conns: Deno.TcpConn[] = [];
  try {
    const perConnection = await holdPartialFrames(
      conns,
      { port: clusterPort, statusPort, pid, role: "cluster" },
      encodePacket({ kind: "Hello", version: PROTOCOL_VERSION, role: 1 }),
    );
    // Generous: a pending connection holds its 4 KiB read buffer and its <= 4 KiB partial frame.
    assert.ok(perConnection < 64, `${perConnection} KiB per pending connection`);

    // The players' slots are untouched: a ticket holder joins and plays.
    const { client } = await waitJoin(masterPort, clusterPort);
    client.send({ kind: "Plugin", command: 0x80, payload: new Uint8Array([1, 2, 3]) });
    assert.deepEqual([...(await client.expect("Plugin", 60_000)).payload], [1, 2, 3]);
    await client.close();

    // Announcing 1 MiB (the old pre-auth record bound) is refused at once, not buffered.
    const hello = encodePacket({ kind: "Hello", version: PROTOCOL_VERSION, role: 1 });
    const big = new Uint8Array(hello.length + 5 + 65536);
    big.set(hello);
    big.set([0x00, 0x10, 0x00, 0x00, 0x80], hello.length);
    const bad = await Deno.connect({ hostname: "127.0.0.1", port: clusterPort });
    try {
      await bad.write(big).catch(() => 0); // the cluster may close before it is all written
      await readUntilClosed(bad);
    } finally {
      bad.close();
    }
    assert.equal(await metric(statusPort, "sustenet_cluster_preauth_bad_input_total"), 1);
  } finally {
    for (const conn of conns) conn.close();
  }
});

Deno.test("master process with max_connections = 40, 40 idle clients and hundreds of pending connections: a cluster process still registers and is listed", async () => {
  await using deployment = await Deployment.create("sustenet_slots_");
  const masterPort = await freePort();
  const statusPort = await freePort();
  const master = await deployment.start(
    "master",
    "master",
    `[all]\nport = ${masterPort}\nkeys_dir = "keys"\nstatus_port = ${statusPort}\n` +
      `max_connections = 40\nlog_level = "warning"\n` +
      `max_pending_per_address = ${PENDING + 10}\nmax_pending_connections = ${PENDING + 10}\n`,
    /^master listening on /,
  );
  const idle: RawPeer[] = [];
  const conns: Deno.TcpConn[] = [];
  try {
    for (let i = 0; i < 40; i++) idle.push(await RawPeer.hello(masterPort, "client"));
    const extra = await RawPeer.connect(masterPort);
    idle.push(extra);
    extra.send({ kind: "Hello", version: PROTOCOL_VERSION, role: 1 });
    await extra.expectError(8); // ServerFull: the client slots are full
    // Connections that never say Hello, each holding most of a 4096-byte first frame.
    const perConnection = await holdPartialFrames(
      conns,
      { port: masterPort, statusPort, pid: master.child.pid, role: "master" },
      new Uint8Array(0),
    );
    assert.ok(perConnection < 64, `${perConnection} KiB per pending connection`);
    await deployment.start(
      "cluster",
      "cluster",
      `[all]\nport = ${await freePort()}\nkeys_dir = "keys"\nstatus_enabled = false\n` +
        `server_name = "eu-1"\n[cluster]\nmaster_port = ${masterPort}\n`,
      /^cluster eu-1 listening on /,
    );
    const deadline = performance.now() + 60_000;
    let names: string[] = [];
    while (names.length === 0) {
      assert.ok(performance.now() < deadline, "the cluster was never listed");
      idle[0].send({ kind: "RequestClusters" });
      names = (await idle[0].expect("SendClusters")).clusters.map((c) => c.name);
      if (names.length === 0) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.deepEqual(names, ["eu-1"]);
  } finally {
    for (const conn of conns) conn.close();
    await Promise.all(idle.map((peer) => peer.close()));
  }
});

/** Where {@linkcode holdPartialFrames} connects and what it measures. */
interface Target {
  readonly port: number;
  readonly statusPort: number;
  readonly pid: number;
  readonly role: "cluster" | "master";
}

/**
 * Opens {@linkcode PENDING} connections to `target`, each sending `prefix` and then most of a
 * 4096-byte frame, waits (on the server's byte counter) until the server has read all of it,
 * and returns the server's RSS growth per connection in KiB (also printed).
 */
async function holdPartialFrames(
  conns: Deno.TcpConn[],
  target: Target,
  prefix: Uint8Array,
): Promise<number> {
  const before = await rssKiB(target.pid);
  const bytesIn = `sustenet_${target.role}_bytes_in_total`;
  const bytesBefore = await metric(target.statusPort, bytesIn);
  const header = new Uint8Array([0x00, 0x00, 0x10, 0x00, 0x80]); // a 4096-byte frame
  const attack = new Uint8Array(prefix.length + header.length + PARTIAL_BODY - 1);
  attack.set(prefix);
  attack.set(header, prefix.length);
  for (let i = 0; i < PENDING; i++) {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: target.port });
    conns.push(conn);
    await conn.write(attack);
  }
  // Every byte read by the server (its counters include open connections).
  const expected = bytesBefore + PENDING * attack.length;
  const deadline = performance.now() + 30_000;
  while (await metric(target.statusPort, bytesIn) < expected) {
    if (performance.now() > deadline) throw new Error(`the ${target.role} did not read it all`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const pending = `sustenet_${target.role}_pending_connections`;
  assert.equal(await metric(target.statusPort, pending), PENDING);
  const after = await rssKiB(target.pid);
  const perConnection = (after - before) / PENDING;
  console.log(
    `${target.role} RSS ${before} KiB -> ${after} KiB with ${PENDING} pending connections each ` +
      `holding a ${PARTIAL_BODY}-byte partial frame: ${perConnection.toFixed(1)} KiB each`,
  );
  return perConnection;
}

/** Joins once the master lists the cluster (it registers right after starting). */
async function waitJoin(masterPort: number, clusterPort: number) {
  const deadline = performance.now() + 60_000;
  while (true) {
    try {
      return await playerJoins(masterPort, clusterPort);
    } catch (error) {
      if (performance.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}
