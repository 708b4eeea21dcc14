/**
 * The master's connection slots on a real in-process master (issue 15): pending connections
 * (before the Hello, and clusters until registered) have their own pool and per-address limit;
 * clients count against `max_connections`, registered clusters against `max_clusters`, so
 * neither can keep the other out; pending peers read small frames only.
 */

import { PROTOCOL_VERSION } from "../shared/protocol/packets.ts";
import assert from "node:assert/strict";
import { resolveMasterOptions } from "../master/master_options.ts";
import { PER_ADDRESS_REASON, POOL_FULL_REASON } from "../shared/pending_gate.ts";
import { ErrorCode } from "../shared/protocol/protocol_error.ts";
import { withMaster } from "./_master_peer.ts";
import { waitFor } from "./_wait.ts";

Deno.test("a master with max_connections = N and N idle client connections still registers and lists a cluster", async () => {
  await withMaster({ maxConnections: 3 }, async ({ master, connect, hello, cluster }) => {
    const idle = [await hello("client"), await hello("client"), await hello("client")];
    const extra = await connect();
    extra.send({ kind: "Hello", version: PROTOCOL_VERSION, role: 1 });
    await extra.expectError(ErrorCode.ServerFull);
    await extra.waitClosed();
    const { clusterId } = await cluster({ name: "eu-1" });
    assert.equal(master.registry.get(clusterId)?.name, "eu-1");
    idle[0].send({ kind: "RequestClusters" });
    const list = await idle[0].expect("SendClusters");
    assert.deepEqual(list.clusters.map((c) => c.name), ["eu-1"]);
    assert.equal(master.metrics.connectionsRefused.value, 1);
  });
});

Deno.test("max_clusters: a cluster past it gets ServerFull at its Hello; clients are unaffected", async () => {
  await withMaster({ maxClusters: 1 }, async ({ master, connect, hello, cluster }) => {
    await cluster({ name: "eu-1" });
    const second = await connect();
    second.send({ kind: "Hello", version: PROTOCOL_VERSION, role: 2 });
    const error = await second.expectError(ErrorCode.ServerFull);
    assert.match(error.reason, /cluster limit/);
    await second.waitClosed();
    const client = await hello("client");
    client.send({ kind: "RequestClusters" });
    assert.equal((await client.expect("SendClusters")).clusters.length, 1);
    assert.equal(master.registry.size, 1);
  });
});

Deno.test("connections that never say Hello hold no client or cluster slot: the full pending pool evicts the oldest", async () => {
  await withMaster(
    { maxConnections: 1, maxPendingConnections: 3, maxPendingPerAddress: 100 },
    async ({ master, connect, hello, cluster }) => {
      const silent = [await connect(), await connect(), await connect()];
      // The cluster's connection takes the oldest one's place while it registers.
      const { clusterId } = await cluster({ name: "eu-1" });
      assert.ok(master.registry.get(clusterId) !== undefined);
      const error = await silent[0].expectError(ErrorCode.ServerFull);
      assert.equal(error.reason, POOL_FULL_REASON);
      // Registered, it left the pool: a client fits in again (pending until its Hello).
      const client = await hello("client");
      client.send({ kind: "RequestClusters" });
      assert.equal((await client.expect("SendClusters")).clusters.length, 1);
      assert.equal(master.metrics.preAuth.refused.get("pool_full"), 1);
      assert.equal(master.metrics.preAuth.pending, 2);
    },
  );
});

Deno.test("the master's per-address limit refuses the (k+1)-th pending connection; a client past its Hello is unaffected", async () => {
  await withMaster({ maxPendingPerAddress: 2 }, async ({ master, connect, hello }) => {
    const client = await hello("client");
    await connect();
    await connect();
    const extra = await connect();
    const error = await extra.expectError(ErrorCode.ServerFull);
    assert.equal(error.reason, PER_ADDRESS_REASON);
    await extra.waitClosed();
    client.send({ kind: "Ping", value: 7 });
    assert.equal((await client.expect("Pong")).value, 7);
    assert.equal(master.metrics.preAuth.refused.get("per_address"), 1);
  });
});

Deno.test("a pre-Hello peer announcing a 1 MiB frame is closed at once with FrameTooLarge", async () => {
  await withMaster({}, async ({ master, connect }) => {
    const peer = await connect();
    peer.connection.send(new Uint8Array([0x00, 0x10, 0x00, 0x00, 0x01]));
    const error = await peer.expectError(ErrorCode.FrameTooLarge);
    assert.match(error.reason, /frame length 1048576 above max_frame_bytes 4096/);
    await peer.waitClosed();
    await waitFor("the count", () => master.metrics.preAuth.badInput.value === 1, 3000);
  });
});

Deno.test("a master's client frames stay within max_pending_frame_bytes; a registered cluster's link gets max_frame_bytes", async () => {
  await withMaster({ maxPendingFrameBytes: 4096 }, async ({ master, hello, cluster }) => {
    const client = await hello("client");
    client.send({
      kind: "JoinCluster",
      clusterId: 0,
      clientPublicKey: new Uint8Array(32).fill(9),
      credential: new Uint8Array(5000),
    });
    await client.expectError(ErrorCode.FrameTooLarge);
    await client.waitClosed();
    const registering = await hello("cluster");
    registering.send({ kind: "Deregister", reason: "x".repeat(10_000) });
    await registering.expectError(ErrorCode.FrameTooLarge);
    const { peer, clusterId } = await cluster({ name: "eu-1" });
    peer.send({ kind: "Deregister", reason: "y".repeat(10_000) });
    await waitFor("deregistration", () => master.registry.get(clusterId) === undefined, 3000);
    assert.equal(master.metrics.clustersRemoved.get("deregistered"), 1);
  });
});

Deno.test("a master connection that never says Hello is closed at the deadline and counted", async () => {
  await withMaster({ handshakeTimeoutMs: 200 }, async ({ master, connect }) => {
    const silent = await connect();
    const error = await silent.expectError(ErrorCode.Timeout);
    assert.equal(error.reason, "handshake timeout");
    await silent.waitClosed();
    await waitFor("the count", () => master.metrics.preAuth.timeouts.value === 1, 3000);
    assert.equal(master.metrics.preAuth.pending, 0);
  });
});

Deno.test("bad slot options are refused at start, naming the option", () => {
  assert.throws(() => resolveMasterOptions({ maxClusters: -1 }), /maxClusters/);
  assert.throws(() => resolveMasterOptions({ maxPendingConnections: 0 }), /maxPendingConnections/);
  assert.throws(() => resolveMasterOptions({ maxPendingPerAddress: 1.5 }), /maxPendingPerAddress/);
  assert.throws(() => resolveMasterOptions({ maxPendingFrameBytes: 63 }), /maxPendingFrameBytes/);
  // The pending frame bound never exceeds the frame bound.
  assert.equal(
    resolveMasterOptions({ maxFrameBytes: 1024, maxPendingFrameBytes: 4096 }).maxPendingFrameBytes,
    1024,
  );
});
