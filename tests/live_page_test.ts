/**
 * The live page's routes and config without a browser: `ws_page` is refused without the
 * WebSocket listener or on a path the page owns, a listener stopped while its page is still
 * bundling leaves no `deno bundle` behind, and a listener without the page answers only its
 * upgrade path (as before `ws_page`). The browser side is tests/browser_cluster_page_test.ts.
 */
import assert from "node:assert/strict";
import { ConfigError, parseConfig } from "../shared/config_schema.ts";
import { loadOrCreateIdentity } from "../shared/keys.ts";
import { listenWebSocket } from "../shared/websocket_listener.ts";
import { livePageOptionsFromConfig, startLivePage } from "../web/live_page.ts";
import { makeTestCerts } from "./_certs.ts";
import { Deployment, freePort, spawnRole, waitForLine } from "./_process.ts";

Deno.test("ws_page needs the WebSocket listener, and a path the page does not own", () => {
  assert.throws(
    () => parseConfig("[cluster]\nws_page = true"),
    (error: unknown) =>
      error instanceof ConfigError && /cluster\.ws_page.*all\.ws_enabled/.test(error.message),
  );
  assert.throws(
    () => parseConfig('[all]\nws_enabled = true\nws_path = "/"\n[cluster]\nws_page = true'),
    (error: unknown) => error instanceof ConfigError && /all\.ws_path/.test(error.message),
  );
  assert.throws(
    () => parseConfig('[cluster]\nws_page_master_url = "http://127.0.0.1:6290/sustenet"'),
    (error: unknown) => error instanceof ConfigError && /ws_page_master_url/.test(error.message),
  );
  // Off by default; on, it is served beside the default path.
  assert.equal(parseConfig("").cluster.wsPage, false);
  const on = parseConfig("[all]\nws_enabled = true\n[cluster]\nws_page = true");
  assert.equal(on.cluster.wsPage, true);
});

Deno.test("the page's master URL is derived from the master's address unless set", () => {
  const failover = parseConfig('[cluster]\nmaster_addresses = ["[::1]:7000", "10.0.0.2:7000"]');
  assert.equal(livePageOptionsFromConfig(failover).masterUrl, "ws://[::1]:6290/sustenet");
  const tls = parseConfig(
    '[all]\ntls_cert = "/c.pem"\ntls_key = "/k.pem"\nws_path = "/play"\n' +
      '[cluster]\nmaster_ip = "master.example"',
  );
  assert.equal(livePageOptionsFromConfig(tls).masterUrl, "wss://master.example:6290/play");
});

Deno.test("a listener with the page refuses an upgrade path the page owns", () => {
  assert.throws(
    () => listenWebSocket({ port: 0, path: "/", page: { masterUrl: "ws://127.0.0.1:1/x" } }),
    TypeError,
  );
});

Deno.test("a listener stopped while its page bundles leaves no deno bundle running", async () => {
  // The sanitizers (on here) fail the test if the bundling child or its pipes outlive close.
  const listener = listenWebSocket({
    port: 0,
    page: { masterUrl: "ws://127.0.0.1:6290/sustenet" },
  });
  const base = `http://127.0.0.1:${listener.addr.port}`;
  const other = await fetch(`${base}/keys/cluster_key`);
  assert.equal(other.status, 404);
  await other.body?.cancel();
  await listener.close();
});

Deno.test("the page answers its own paths only, once its bundle is made", async () => {
  await using page = startLivePage({ masterUrl: "ws://127.0.0.1:6290/sustenet" });
  assert.equal(page.respond(new Request("http://h/Config.toml")), undefined);
  assert.equal(page.respond(new Request("http://h/", { method: "POST" })), undefined);
  const config = await page.respond(new Request("http://h/config.json"))!;
  assert.deepEqual(await config.json(), {
    masterUrl: "ws://127.0.0.1:6290/sustenet",
    fragmentSize: 64,
  });
  const index = await page.respond(new Request("http://h/index.html"))!;
  assert.match(index.headers.get("content-type") ?? "", /^text\/html/);
  assert.match(await index.text(), /<canvas/);
  const bundle = await page.respond(new Request("http://h/sustenet.js"))!;
  assert.match(await bundle.text(), /SustenetClient/);
});

Deno.test("a listener without the page answers only its upgrade path", async () => {
  const listener = listenWebSocket({ port: 0 });
  try {
    const base = `http://127.0.0.1:${listener.addr.port}`;
    for (const path of ["/", "/index.html", "/config.json", "/sustenet.js"]) {
      const response = await fetch(`${base}${path}`);
      assert.equal(response.status, 404, path);
      await response.body?.cancel();
    }
  } finally {
    await listener.close();
  }
});

Deno.test("`deno task cluster` with ws_page serves the page with the task's own permissions", async () => {
  // The task may write only keys/ and run subprocesses: the bundle goes from deno bundle's
  // stdout to memory, and the master's URL is derived (no master is needed to serve it).
  await using deployment = await Deployment.create("sustenet_page_task_");
  const config = `${deployment.dir}/cluster.toml`;
  const [port, wsPort] = [await freePort(), await freePort()];
  await Deno.writeTextFile(
    config,
    `[all]\nserver_name = "eu-page"\nport = ${port}\nkeys_dir = "keys"\nstatus_enabled = false\n` +
      `ws_enabled = true\nws_port = ${wsPort}\n[cluster]\nmaster_port = ${await freePort()}\n` +
      "ws_page = true\n",
  );
  // The task may write under ./keys only: the identity exists before it starts.
  await loadOrCreateIdentity(`${deployment.dir}/keys`, "cluster_identity");
  const cluster = spawnRole("cluster", ["--config", config], { viaTask: true });
  deployment.processes.push(cluster);
  // The ready line ends with the page's URL.
  await waitForLine(
    cluster,
    new RegExp(`^cluster eu-page listening on .* page http://127\\.0\\.0\\.1:${wsPort}/$`),
  );
  const base = `http://127.0.0.1:${wsPort}`;
  const index = await fetch(`${base}/`);
  assert.equal(index.status, 200, cluster.stderrText());
  assert.match(await index.text(), /<canvas/);
  const bundle = await fetch(`${base}/sustenet.js`);
  assert.equal(bundle.status, 200, cluster.stderrText());
  assert.match(await bundle.text(), /SustenetClient/);
  assert.deepEqual(await (await fetch(`${base}/config.json`)).json(), {
    masterUrl: "ws://127.0.0.1:6290/sustenet",
    fragmentSize: 64,
    clusterName: "eu-page",
  });
  const other = await fetch(`${base}/cluster.toml`);
  assert.equal(other.status, 404);
  await other.body?.cancel();
});

Deno.test("with a certificate the page is served over https on the wss port, other paths 404", async () => {
  await using certs = await makeTestCerts();
  const listener = listenWebSocket({
    port: 0,
    tls: { cert: certs.cert, key: certs.key },
    page: { masterUrl: "wss://localhost:6290/sustenet" },
  });
  const client = Deno.createHttpClient({ caCerts: [certs.ca] });
  try {
    assert.equal(listener.scheme, "wss");
    const base = `https://localhost:${listener.addr.port}`;
    const index = await fetch(`${base}/`, { client });
    assert.equal(index.status, 200);
    assert.match(await index.text(), /<canvas/);
    // The same TLS connection (keep-alive) serves the next request through the relay.
    const config = await fetch(`${base}/config.json`, { client });
    assert.equal((await config.json()).masterUrl, "wss://localhost:6290/sustenet");
    const other = await fetch(`${base}/keys/cluster_key`, { client });
    assert.equal(other.status, 404);
    await other.body?.cancel();
  } finally {
    client.close();
    await listener.close();
  }
});
