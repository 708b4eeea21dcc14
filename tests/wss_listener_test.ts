/**
 * `wss://`: a real master and cluster in-process with TLS and WebSocket listeners on 127.0.0.1
 * (OS-picked ports, certificates made by the code of `deno task certs` in a temp dir). A Deno
 * client trusting the development CA joins over wss:// and talks to the echo plugin; a
 * handshake that never completes, a plain ws:// client and a TLS client that never asks for
 * the upgrade are each closed with a logged reason, and the servers carry on.
 */

import assert from "node:assert/strict";
import { reset } from "@logtape/logtape";
import { ClientError, SustenetClient } from "../client/mod.ts";
import echo, { ECHO_COMMAND } from "../plugins/echo.ts";
import { listenWebSocket } from "../shared/websocket_listener.ts";
import { connectWebSocket, WebSocketConnectError } from "../shared/websocket_transport.ts";
import { encodeFrame } from "../shared/protocol/frame.ts";
import { ErrorCode } from "../shared/protocol/protocol_error.ts";
import { makeTestCerts } from "./_certs.ts";
import { captureLogs } from "./_logs.ts";
import { Deployment, freePort, REPO_ROOT } from "./_process.ts";
import { startWorld, waitUntil } from "./_raw_client.ts";

const WAIT_MS = 60_000;

function logged(logs: readonly { message: readonly unknown[] }[], text: string): boolean {
  return logs.some((r) => r.message.map(String).join("").includes(text));
}

Deno.test("a Deno client joins over wss:// and talks to the echo plugin", async () => {
  await using certs = await makeTestCerts();
  const tls = { port: 0, cert: certs.cert, key: certs.key };
  await using world = await startWorld(
    { heartbeatIntervalMs: 50, plugins: [echo], tls, webSocket: { port: 0, path: "/play" } },
    { tls, webSocket: { port: 0 } },
  );
  const { cluster } = world;
  const clients: SustenetClient[] = [];
  try {
    const ws = world.master.webSocketAddr;
    const clusterWs = cluster.webSocketAddr;
    assert.ok(ws !== null && clusterWs !== null && cluster.tlsAddr !== null);
    assert.equal(ws.scheme, "wss");
    assert.equal(clusterWs.scheme, "wss");

    // The cluster announces its WebSocket listener as a wss endpoint (and no ws one).
    const url = `wss://localhost:${ws.port}${ws.path}`;
    const client = await SustenetClient.connect({ url, caCerts: [certs.ca] });
    clients.push(client);
    const listed = await client.listClusters();
    assert.deepEqual(listed[0].endpoints, [
      { kind: "wss", port: clusterWs.port, path: "/play" },
      { kind: "tls", port: cluster.tlsAddr.port, path: "" },
    ]);

    const session = await client.join("auto");
    assert.equal(cluster.players.size, 1);
    const echoed = Promise.withResolvers<string>();
    session.on("message", ({ command, payload }) => {
      if (command === ECHO_COMMAND) echoed.resolve(new TextDecoder().decode(payload));
    });
    session.send(ECHO_COMMAND, new TextEncoder().encode("hello over wss"));
    assert.equal(await echoed.promise, "hello over wss");

    // Without the development CA the system's store does not know the certificate.
    await assert.rejects(SustenetClient.connect({ url, timeoutMs: 5000 }), (error: unknown) => {
      assert.ok(error instanceof ClientError, String(error));
      assert.equal(error.code, "master_unreachable");
      assert.match(error.message, /UnknownIssuer|certificate/i);
      return true;
    });
    // A client that trusts another CA refuses the server's certificate.
    await using other = await makeTestCerts();
    await assert.rejects(
      SustenetClient.connect({ url, caCerts: [other.ca], timeoutMs: 5000 }),
      (error: unknown) =>
        error instanceof ClientError && /UnknownIssuer|BadSignature/.test(error.message),
    );
    // A plain ws:// client on the wss port does not get a WebSocket.
    await assert.rejects(
      SustenetClient.connect({ url: `ws://127.0.0.1:${ws.port}${ws.path}`, timeoutMs: 5000 }),
      ClientError,
    );
    // caCerts without wss:// is a usage error.
    await assert.rejects(
      SustenetClient.connect({ url: `ws://127.0.0.1:${ws.port}`, caCerts: [certs.ca] }),
      RangeError,
    );

    // The first client still plays.
    const again = Promise.withResolvers<string>();
    session.on("message", ({ command, payload }) => {
      if (command === ECHO_COMMAND) again.resolve(new TextDecoder().decode(payload));
    });
    session.send(ECHO_COMMAND, new TextEncoder().encode("still here"));
    assert.equal(await again.promise, "still here");
  } finally {
    for (const client of clients) await client.close();
  }
});

Deno.test("wss: a stalled handshake, a plain ws:// client and a TLS peer without an upgrade are closed with a logged reason", async () => {
  const logs = await captureLogs("info");
  await using certs = await makeTestCerts();
  const listener = listenWebSocket({
    port: 0,
    tls: { cert: certs.cert, key: certs.key },
    handshakeTimeoutMs: 300,
    onFrame: (frame, conn) => conn.send(encodeFrame(frame.type, frame.payload)),
  });
  try {
    assert.equal(listener.scheme, "wss");
    const port = listener.addr.port;

    // Connects and sends nothing: no ClientHello, so the handshake cannot complete.
    const silent = await Deno.connect({ hostname: "127.0.0.1", port });
    assert.equal(await silent.read(new Uint8Array(16)).catch(() => null), null);
    silent.close();
    await waitUntil(
      () => logged(logs, "wss connection from 127.0.0.1 closed: TLS handshake not completed"),
      "the handshake timeout log line",
      WAIT_MS,
    );

    // A plain ws:// client: refused, logged as not TLS.
    await assert.rejects(
      connectWebSocket({ url: `ws://127.0.0.1:${port}/sustenet`, connectTimeoutMs: 30_000 }),
      WebSocketConnectError,
    );
    await waitUntil(
      () => logged(logs, "wss connection from 127.0.0.1 closed: TLS handshake failed: not TLS"),
      "the plain-on-wss log line",
      WAIT_MS,
    );

    // TLS completes, then no HTTP request: closed at the same timeout.
    const idle = await Deno.connectTls({ hostname: "localhost", port, caCerts: [certs.ca] });
    await idle.handshake();
    assert.equal(await idle.read(new Uint8Array(16)).catch(() => null), null);
    idle.close();
    await waitUntil(
      () => logged(logs, "no WebSocket upgrade within 300 ms"),
      "the upgrade timeout log line",
      WAIT_MS,
    );

    // The listener carries on: a wss client that trusts the CA is served, at its real address.
    const got = Promise.withResolvers<number>();
    const client = await connectWebSocket({
      url: `wss://localhost:${port}/sustenet`,
      caCerts: [certs.ca],
      onFrame: (frame) => got.resolve(frame.payload[0]),
    });
    client.send(encodeFrame(0x80, new Uint8Array([42])));
    assert.equal(await got.promise, 42);
    const [served] = listener.connections;
    assert.equal(served.remoteAddr.hostname, "127.0.0.1");
    assert.notEqual(served.remoteAddr.port, 0);

    // A stop tells the client why (the close frame gets through the relay before it ends).
    await listener.close({ code: ErrorCode.ShuttingDown, message: "server shutting down" });
    const info = await client.closed;
    assert.match(info.reason, /1001/);
  } finally {
    await listener.close();
    await reset();
  }
});

/** Ports of the TCP sockets this process listens on (from /proc: its own socket inodes only). */
async function ownListeningPorts(): Promise<Set<number>> {
  const inodes = new Set<string>();
  for await (const entry of Deno.readDir("/proc/self/fd")) {
    const target = await Deno.readLink(`/proc/self/fd/${entry.name}`).catch(() => "");
    const match = /^socket:\[(\d+)\]$/.exec(target);
    if (match !== null) inodes.add(match[1]);
  }
  const ports = new Set<number>();
  for (const line of (await Deno.readTextFile("/proc/self/net/tcp")).split("\n").slice(1)) {
    const fields = line.trim().split(/\s+/);
    // local_address is HEXIP:HEXPORT, st 0A = LISTEN, inode is the 10th field.
    if (fields.length > 9 && fields[3] === "0A" && inodes.has(fields[9])) {
      ports.add(parseInt(fields[1].split(":")[1], 16));
    }
  }
  return ports;
}

Deno.test("wss: the internal HTTP side serves only streams the TLS relay brought", async () => {
  const logs = await captureLogs("info");
  await using certs = await makeTestCerts();
  const before = await ownListeningPorts();
  const listener = listenWebSocket({
    port: 0,
    tls: { cert: certs.cert, key: certs.key },
    onFrame: () => {},
  });
  try {
    const added = [...await ownListeningPorts()].filter((port) => !before.has(port));
    // The public port, the internal TLS listener and the internal HTTP side.
    assert.equal(added.length, 3, `new listening ports: ${added}`);
    const statuses: number[] = [];
    for (const port of added.filter((p) => p !== listener.addr.port)) {
      // A plain upgrade request straight to the loopback port, skipping TLS.
      const response = await fetch(`http://127.0.0.1:${port}/sustenet`, {
        headers: { upgrade: "websocket", connection: "upgrade" },
      }).catch(() => null);
      if (response !== null) {
        statuses.push(response.status);
        await response.body?.cancel();
      }
    }
    assert.deepEqual(statuses, [403]);
    await waitUntil(
      () => logged(logs, "not through the wss relay"),
      "the relay-only log line",
      WAIT_MS,
    );
    assert.equal(listener.connections.size, 0);
  } finally {
    await listener.close();
    await reset();
  }
});

Deno.test("deno task master/cluster with a certificate and ws_enabled serve wss://; deno task client --ca-cert lists over it", async () => {
  await using deployment = await Deployment.create("sustenet_wss_");
  const dir = deployment.dir;
  const certs = await new Deno.Command(Deno.execPath(), {
    args: ["task", "certs", "--out", `${dir}/certs`, "localhost", "127.0.0.1"],
    cwd: REPO_ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(certs.success, new TextDecoder().decode(certs.stderr));
  const [masterPort, masterWs, clusterPort, clusterWs] = [
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
  ];
  const common = 'tls_cert = "certs/server.pem"\ntls_key = "certs/server.key"\ntls_port = 0\n' +
    'ws_enabled = true\nstatus_enabled = false\nkeys_dir = "keys"\n';
  await deployment.start(
    "master",
    "master",
    `[all]\nport = ${masterPort}\nws_port = ${masterWs}\n${common}`,
    new RegExp(`master listening on .* ws wss://127\\.0\\.0\\.1:${masterWs}/sustenet`),
  );
  await deployment.start(
    "cluster",
    "cluster",
    `[all]\nserver_name = "eu-1"\nport = ${clusterPort}\nws_port = ${clusterWs}\n${common}` +
      `[cluster]\nmaster_port = ${masterPort}\n[[cluster.plugins]]\nurl = "${REPO_ROOT}plugins/echo.ts"\n`,
    new RegExp(`cluster eu-1 listening on .* ws wss://127\\.0\\.0\\.1:${clusterWs}/sustenet`),
  );
  // The cluster registers with the master soon after it listens: list until it is there.
  let listed = "";
  for (let tries = 0; tries < 60 && !listed.includes("eu-1"); tries++) {
    if (tries > 0) await new Promise((resolve) => setTimeout(resolve, 500));
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "task",
        "client",
        "--master",
        `wss://localhost:${masterWs}/sustenet`,
        "--ca-cert",
        `${dir}/certs/ca.pem`,
        "list",
      ],
      cwd: REPO_ROOT,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    listed = new TextDecoder().decode(out.stdout);
  }
  assert.match(listed, /eu-1/);
});
