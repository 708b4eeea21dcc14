/**
 * A Deno client over WebSocket and a Deno client over TCP chat with each other through one
 * cluster: a real master and cluster in-process, each with a TCP and a WebSocket listener on
 * 127.0.0.1 (OS-picked ports), the cluster's WebSocket endpoint announced to the master and
 * handed to the WebSocket client in its JoinTicket.
 */

import assert from "node:assert/strict";
import { ClientError, SustenetClient } from "../client/mod.ts";
import chat, { CHAT_COMMAND } from "../plugins/chat.ts";
import { startWorld } from "./_raw_client.ts";
import { waitFor } from "./_wait.ts";

/** The text of a chat broadcast (`u32 senderClientId | text`). */
function chatText(payload: Uint8Array): string {
  return new TextDecoder().decode(payload.subarray(4));
}

Deno.test("a WebSocket client and a TCP client chat through one cluster", async () => {
  await using world = await startWorld(
    { heartbeatIntervalMs: 50, plugins: [chat], webSocket: { port: 0, path: "/play" } },
    { webSocket: { port: 0, path: "/sustenet" } },
  );
  const { master, cluster } = world;
  const clients: SustenetClient[] = [];
  try {
    const ws = master.webSocketAddr;
    const clusterWs = cluster.webSocketAddr;
    assert.ok(ws !== null && clusterWs !== null);

    // The master lists the cluster's WebSocket endpoint to every client.
    const overTcp = await SustenetClient.connect({ port: master.addr.port });
    clients.push(overTcp);
    const listed = await overTcp.listClusters();
    assert.deepEqual(listed[0].endpoints, [{ kind: "ws", port: clusterWs.port, path: "/play" }]);

    const overWs = await SustenetClient.connect({
      url: `ws://${ws.hostname}:${ws.port}${ws.path}`,
    });
    clients.push(overWs);
    const wsSession = await overWs.join("auto");
    const tcpSession = await overTcp.join("auto");
    assert.equal(cluster.players.size, 2);

    const heardByTcp: string[] = [];
    const heardByWs: string[] = [];
    tcpSession.on("message", ({ command, payload }) => {
      if (command === CHAT_COMMAND) heardByTcp.push(chatText(payload));
    });
    wsSession.on("message", ({ command, payload }) => {
      if (command === CHAT_COMMAND) heardByWs.push(chatText(payload));
    });
    wsSession.send(CHAT_COMMAND, new TextEncoder().encode("hello from a WebSocket"));
    await waitFor("the TCP client hears the WebSocket one", () => heardByTcp.length === 1);
    tcpSession.send(CHAT_COMMAND, new TextEncoder().encode("hello from TCP"));
    await waitFor("the WebSocket client hears the TCP one", () => heardByWs.length === 2);
    // The chat room echoes to the sender too.
    await waitFor("the TCP client hears itself", () => heardByTcp.length === 2);
    assert.deepEqual(heardByTcp, ["hello from a WebSocket", "hello from TCP"]);
    assert.deepEqual(heardByWs, ["hello from a WebSocket", "hello from TCP"]);
  } finally {
    for (const client of clients) await client.close();
  }
});

Deno.test("a WebSocket client refuses a cluster without a WebSocket endpoint", async () => {
  await using world = await startWorld({ heartbeatIntervalMs: 50 }, { webSocket: { port: 0 } });
  const ws = world.master.webSocketAddr;
  assert.ok(ws !== null);
  const client = await SustenetClient.connect({
    url: `ws://${ws.hostname}:${ws.port}${ws.path}`,
  });
  try {
    await assert.rejects(client.join("auto"), (error: unknown) => {
      assert.ok(error instanceof ClientError);
      assert.equal(error.code, "cluster_unreachable");
      assert.match(error.message, /no ws endpoint/);
      return true;
    });
  } finally {
    await client.close();
  }
});
