/**
 * The live page served by a cluster (`ws_page = true`), in headless Chromium: a real master and
 * a cluster in-process, the cluster configured from TOML (WebSocket listener, fragments on, the
 * page on, the page's origin allowed on both servers), walking bots in the first fragment. The
 * page, loaded from the CLUSTER's WebSocket port, joins that cluster through the master and
 * shows the bots moving; the same port still 404s any other path and upgrades only its own.
 */
import assert from "node:assert/strict";
import { type BotRun, startBots } from "../client/bots.ts";
import { SustenetClient } from "../client/mod.ts";
import { clusterOptionsFromConfig } from "../cluster/cluster_options.ts";
import { startCluster } from "../cluster/mod.ts";
import { DEMO_BOT_SCENARIO } from "../demo.ts";
import { startMaster } from "../master/mod.ts";
import { parseConfig } from "../shared/config_schema.ts";
import { generateKey } from "../shared/keys.ts";
import { reset } from "@logtape/logtape";
import { launchChromium } from "./_browser.ts";
import { waitForJoined, waitForMovingPlayers, walkRight } from "./_demo_page.ts";
import { captureLogs } from "./_logs.ts";
import { freePort } from "./_process.ts";
import { waitFor } from "./_wait.ts";

Deno.test({
  name: "a cluster with ws_page serves the live page; loaded from it, the page joins and sees bots",
  // playwright-core's pipes and timers outlive the browser's close by a turn.
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const logs = await captureLogs("warning");
    const keysDir = await Deno.makeTempDir({ prefix: "sustenet_cluster_page_" });
    await generateKey(keysDir, "cluster_key");
    // The page's origin is the cluster's WebSocket port: known before either server starts.
    const clusterWsPort = await freePort();
    const pageOrigin = `http://127.0.0.1:${clusterWsPort}`;
    const master = await startMaster({
      port: 0,
      keysDir,
      webSocket: { port: 0, path: "/sustenet", allowedOrigins: [pageOrigin] },
    });
    const masterWs = master.webSocketAddr;
    assert.ok(masterWs !== null);
    const config = parseConfig(`[all]
server_name = "page-cluster"
port = 0
keys_dir = ${JSON.stringify(keysDir)}
status_enabled = false
log_level = "warning"
ws_enabled = true
ws_port = ${clusterWsPort}
ws_allowed_origins = [${JSON.stringify(pageOrigin)}]

[cluster]
master_port = ${master.addr.port}
heartbeat_interval_ms = 100
ws_page = true
ws_page_master_url = "ws://127.0.0.1:${masterWs.port}/sustenet"

[cluster.fragments]
enabled = true
size = 64
`);
    const options = clusterOptionsFromConfig(config);
    assert.ok(options.webSocket !== false && options.webSocket?.page !== undefined);
    const cluster = await startCluster({ ...options, port: 0 });
    const browser = await launchChromium();
    let bots: BotRun | undefined;
    const pageErrors: string[] = [];
    try {
      await waitFor("the cluster registers", () => master.registry.size === 1);
      // Another cluster-less client would be sent anywhere by "auto": the page asks by name.
      const observer = await SustenetClient.connect({ port: master.addr.port });
      const [listed] = await observer.listClusters();
      await observer.close();
      assert.equal(listed.name, "page-cluster");
      bots = startBots({
        master: { host: "127.0.0.1", port: master.addr.port },
        cluster: listed.id,
        count: 3,
        seconds: 600,
        intervalMs: 1000,
        scenario: DEMO_BOT_SCENARIO,
      });
      await bots.allJoined;

      const page = await browser.newPage();
      page.on("pageerror", (error) => pageErrors.push(error.message));
      await page.goto(`${pageOrigin}/`);
      const joined = await waitForJoined(page);
      assert.equal(joined.cluster, "page-cluster", joined.error);
      assert.ok(joined.clientId > 0);
      // The bots walk in the page's fragment: it sees them and their moves.
      await waitForMovingPlayers(page);
      assert.ok(Number(await page.locator("#world").getAttribute("data-players")) > 0);

      // The player walks with WASD too ("d": right), after a click on the map.
      await walkRight(page, "d");

      // Loading and playing made no refused request (no favicon, no origin refusal).
      const refused = logs.filter((r) => r.message.join("").includes("refused WebSocket request"));
      assert.deepEqual(refused.map((r) => r.properties), []);

      // The same port: another path is a 404 (in the browser too), the upgrade path only
      // upgrades, and a POST to the page is no page.
      const missing = await page.goto(`${pageOrigin}/keys/cluster_key`);
      assert.equal(missing?.status(), 404);
      for (const path of ["/web/demo.html", "/..%2fConfig.toml", "/demo.html", "/favicon.ico"]) {
        const response = await fetch(`${pageOrigin}${path}`);
        assert.equal(response.status, 404, path);
        await response.body?.cancel();
      }
      const plain = await fetch(`${pageOrigin}/sustenet`);
      assert.equal(plain.status, 426);
      await plain.body?.cancel();
      const posted = await fetch(`${pageOrigin}/`, { method: "POST", body: "x" });
      assert.equal(posted.status, 404);
      await posted.body?.cancel();
      const pageConfig = await (await fetch(`${pageOrigin}/config.json`)).json();
      assert.deepEqual(pageConfig, {
        masterUrl: `ws://127.0.0.1:${masterWs.port}/sustenet`,
        fragmentSize: 64,
        clusterName: "page-cluster",
      });
      assert.deepEqual(pageErrors, []);
    } finally {
      await browser.close();
      bots?.stop();
      await bots?.done;
      await cluster.stop();
      await master.stop();
      await Deno.remove(keysDir, { recursive: true });
      await reset();
    }
  },
});
