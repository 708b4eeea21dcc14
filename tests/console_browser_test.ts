/**
 * The operator console in a real browser (Debian's chromium through playwright-core): the
 * master console and a cluster page with bots connected show the numbers `/metrics` has, a
 * kick from the cluster page is refused without the token and done with it, and HTML in a
 * cluster name, a plugin name and a player id is shown as text; each cluster's plugins and
 * their state reach the master console (and a plugin restart shows there). Screenshots go to a temporary folder (its
 * path is printed).
 */
import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import { launchChromium } from "./_browser.ts";
import { ADMIN_TOKEN, OpsDeployment, sampleValue, scrape } from "./_ops_deployment.ts";
import { startMaster } from "../master/mod.ts";
import { startCluster } from "../cluster/mod.ts";
import { SustenetClient } from "../client/mod.ts";
import { generateKey } from "../shared/keys.ts";
import { definePlugin } from "../shared/plugin.ts";
import { waitFor } from "./_wait.ts";

/** Waits (60 s at most) until `check` holds. */
/** {@linkcode waitFor} at a browser's pace (each check may ask the page). */
const until = (what: string, check: () => Promise<boolean> | boolean) =>
  waitFor(what, check, 60_000, 100);

async function cellText(page: Page, selector: string): Promise<string> {
  return (await page.locator(selector).first().textContent()) ?? "";
}

Deno.test({
  name: "the console and a cluster page in chromium show /metrics' numbers; a kick needs the token",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const shots = await Deno.makeTempDir({ prefix: "sustenet_console_shots_" });
    console.log(`screenshots in ${shots}`);
    await using ops = await OpsDeployment.start(["eu-1", "eu-2"], { capacity: 50 });
    const bots = [...await ops.joinBots(6, 0), ...await ops.joinBots(3, 1)];
    for (const bot of bots) bot.session.send(0x80, new Uint8Array(64));
    const browser = await launchChromium();
    try {
      const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
      // The master console: totals and per-cluster load as the clusters' heartbeats report.
      await page.goto(`${ops.masterStatusUrl}/`);
      await until(
        "9 players on the console",
        async () => (await page.locator("body").getAttribute("data-players")) === "9",
      );
      await page.locator("#live.on").waitFor({ timeout: 60_000 });
      assert.equal(await cellText(page, "#t-clusters"), "2");
      assert.equal(await cellText(page, "#t-players"), "9 / 100");
      const masterMetrics = await scrape(ops.masterStatusUrl);
      assert.equal(sampleValue(masterMetrics, "sustenet_master_clusters"), 2);
      const ticketsText = await cellText(page, "#t-tickets");
      const issued = sampleValue(masterMetrics, "sustenet_master_tickets_issued_total");
      assert.equal(ticketsText, `${issued} tickets issued`);
      // Each cluster's name links to its own page (ClusterPage from status_page_url).
      const links = await Promise.all(
        (await page.locator("a.cluster-page").all()).map((link) => link.getAttribute("href")),
      );
      assert.deepEqual(links.sort(), ops.clusters.map((c) => `${c.statusUrl}/`).sort());
      const loads = await page.locator("td.cluster-load").allTextContents();
      assert.deepEqual(loads.sort(), ["3 / 50", "6 / 50"]);
      // Each cluster's plugins and their state, as the clusters report them (ClusterPlugins).
      await until(
        "both clusters' echo plugin shown running",
        async () =>
          (await page.locator("td.cluster-plugins .plugin-state.state-running").count()) === 2,
      );
      assert.deepEqual(
        await page.locator("td.cluster-plugins .plugin-name").allTextContents(),
        ["echo", "echo"],
      );
      await page.waitForTimeout(2500); // a few samples in the charts for the screenshot
      await page.screenshot({ path: `${shots}/master_console.png`, fullPage: true });

      // A cluster page: players as on its /metrics, one row per bot.
      const cluster = ops.clusters[0];
      const clusterPage = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
      await clusterPage.goto(`${cluster.statusUrl}/`);
      await until(
        "6 players on the cluster page",
        async () => (await clusterPage.locator("body").getAttribute("data-players")) === "6",
      );
      const clusterMetrics = await scrape(cluster.statusUrl);
      assert.equal(sampleValue(clusterMetrics, "sustenet_cluster_players"), 6);
      assert.equal(await clusterPage.locator("#player-rows tr").count(), 6);
      assert.equal(await cellText(clusterPage, "#players"), "6 / 50");
      assert.equal(await cellText(clusterPage, "#plugins td:nth-child(2)"), "running");
      await clusterPage.waitForTimeout(1500);
      await clusterPage.screenshot({ path: `${shots}/cluster_page.png`, fullPage: true });

      // Kick without the token: refused (401), the player stays.
      const victim = bots[0];
      const row = clusterPage.locator(`#player-rows tr[data-client="${victim.session.clientId}"]`);
      await row.locator("button.kick").click();
      await until(
        "the refusal",
        async () => (await clusterPage.locator("body").getAttribute("data-last-action")) === "401",
      );
      assert.equal(sampleValue(await scrape(cluster.statusUrl), "sustenet_cluster_players"), 6);
      await clusterPage.screenshot({ path: `${shots}/kick_refused.png` });

      // With the token: the player is kicked and leaves the page and /metrics.
      await clusterPage.fill("#operator", "alice");
      await clusterPage.locator("#operator").dispatchEvent("change");
      await clusterPage.fill("#token", ADMIN_TOKEN);
      await clusterPage.locator("#token").dispatchEvent("change");
      await row.locator("button.kick").click();
      await until(
        "the kick",
        async () => (await clusterPage.locator("body").getAttribute("data-last-action")) === "200",
      );
      await until(
        "5 players",
        async () => sampleValue(await scrape(cluster.statusUrl), "sustenet_cluster_players") === 5,
      );
      await until("5 rows", async () => await clusterPage.locator("#player-rows tr").count() === 5);
      await clusterPage.screenshot({ path: `${shots}/kick_done.png`, fullPage: true });
      assert.match(cluster.process.stderrText(), /operator action by alice from .*: kick client/);

      // A notice from the page reaches the players (plugin command 0xFF).
      const notices: string[] = [];
      bots[1].session.on("message", ({ command, payload }) => {
        if (command === 0xff) notices.push(new TextDecoder().decode(payload));
      });
      await clusterPage.fill("#notice", "server restarts in 5 minutes");
      await clusterPage.click("#send-notice");
      await until("the notice", () => notices.includes("server restarts in 5 minutes"));

      // Drain from the cluster page: it says so, and /health still counts its players.
      await clusterPage.click("#drain-on");
      await until(
        "the cluster draining",
        async () => (await cellText(clusterPage, "#drain")) === "draining",
      );
      await clusterPage.click("#drain-off");
      await until(
        "the cluster open again",
        async () => (await cellText(clusterPage, "#drain")) === "open",
      );

      // Drain from the master console: refused without the token, done with it.
      const eu2 = page.locator("tr", { has: page.locator("td.cluster-name", { hasText: "eu-2" }) });
      await eu2.locator("button", { hasText: "Drain" }).click();
      await until(
        "the master's refusal",
        async () => (await page.locator("body").getAttribute("data-last-action")) === "401",
      );
      await page.fill("#token", ADMIN_TOKEN);
      await page.locator("#token").dispatchEvent("change");
      await eu2.locator("button", { hasText: "Drain" }).click();
      await until(
        "the master's drain",
        async () => (await page.locator("body").getAttribute("data-last-action")) === "200",
      );
      await until(
        "eu-2 shown draining",
        async () => (await eu2.locator("td.warn").allTextContents()).includes("draining"),
      );
      await page.screenshot({ path: `${shots}/master_drained.png`, fullPage: true });

      // A plugin restart on eu-2 reaches the master console's plugin column.
      const eu2Status = ops.clusters[1].statusUrl;
      const restart = await fetch(`${eu2Status}/api/plugins/echo/restart`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${ADMIN_TOKEN}` },
        body: "{}",
      });
      assert.equal(restart.status, 200, await restart.text());
      await until(
        "eu-2's echo shown running after 1 restart",
        async () =>
          (await eu2.locator("td.cluster-plugins").textContent()) === "echo running (1 restarts)",
      );
    } finally {
      await browser.close();
    }
  },
});

Deno.test({
  name: "HTML in a cluster name, a plugin name and a player id is shown as text on both pages",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const hostileName = `<img src=x onerror="window.pwned=1">`;
    const hostileId = `<script>window.pwned=2</script><b>bold</b>`;
    const hostilePlugin = `<img src=x onerror="window.pwned=3">`;
    const keysDir = await Deno.makeTempDir();
    await generateKey(keysDir, "cluster_key");
    const master = await startMaster({
      port: 0,
      keysDir,
      status: { port: 0 },
      authenticate: (credential) =>
        Promise.resolve({ playerId: new TextDecoder().decode(credential) }),
    });
    const cluster = await startCluster({
      port: 0,
      keysDir,
      serverName: hostileName,
      master: { hostname: "127.0.0.1", port: master.addr.port },
      heartbeatIntervalMs: 200,
      status: { port: 0 },
      plugins: [{ plugin: definePlugin({}), name: hostilePlugin }],
    });
    const client = await SustenetClient.connect({ port: master.addr.port, credential: hostileId });
    const browser = await launchChromium();
    try {
      await until("the registration", () => master.registry.size === 1);
      await client.join("auto");
      const page = await browser.newPage();
      await page.goto(`http://127.0.0.1:${master.statusAddr!.port}/`);
      await page.locator("td.cluster-name").waitFor({ timeout: 60_000 });
      assert.equal(await cellText(page, "td.cluster-name"), hostileName);
      assert.equal(await page.locator("td.cluster-name img").count(), 0);
      await page.locator("td.cluster-plugins .plugin-name").waitFor({ timeout: 60_000 });
      assert.equal(await cellText(page, "td.cluster-plugins .plugin-name"), hostilePlugin);
      assert.equal(await page.locator("td.cluster-plugins img").count(), 0);
      const clusterPage = await browser.newPage();
      await clusterPage.goto(`http://127.0.0.1:${cluster.statusAddr!.port}/`);
      await clusterPage.locator("td.player-id").waitFor({ timeout: 60_000 });
      assert.equal(await cellText(clusterPage, "td.player-id"), hostileId);
      assert.equal(await cellText(clusterPage, "#name"), hostileName);
      assert.equal(await clusterPage.locator("td.player-id b, #name img").count(), 0);
      for (const p of [page, clusterPage]) {
        assert.equal(await p.evaluate(() => (globalThis as { pwned?: number }).pwned), undefined);
      }
    } finally {
      await browser.close();
      await client.close();
      await cluster.stop();
      await master.stop();
      await Deno.remove(keysDir, { recursive: true });
    }
  },
});

Deno.test({
  name: "a cluster page with fragments on maps the populated fragments /metrics lists",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const shots = await Deno.makeTempDir({ prefix: "sustenet_console_shots_" });
    console.log(`screenshots in ${shots}`);
    const keysDir = await Deno.makeTempDir();
    await generateKey(keysDir, "cluster_key");
    const master = await startMaster({ port: 0, keysDir, status: false });
    const cluster = await startCluster({
      port: 0,
      keysDir,
      serverName: "fragments-1",
      master: { hostname: "127.0.0.1", port: master.addr.port },
      heartbeatIntervalMs: 200,
      status: { port: 0 },
      fragments: { size: 64, maxPlayersPerFragment: 500, crowdThreshold: 100 },
    });
    const clients: SustenetClient[] = [];
    const browser = await launchChromium();
    try {
      await until("the registration", () => master.registry.size === 1);
      const spots = [[10, 10], [20, 30], [100, 10], [10, 100], [200, 200]];
      for (const [x, z] of spots) {
        const client = await SustenetClient.connect({ port: master.addr.port });
        clients.push(client);
        const session = await client.join("auto");
        session.move({ x, y: 0, z });
      }
      const statusUrl = `http://127.0.0.1:${cluster.statusAddr!.port}`;
      let series: string[] = [];
      await until("four populated fragments on /metrics", async () => {
        series = (await scrape(statusUrl)).split("\n").filter((line) =>
          line.startsWith("sustenet_cluster_fragment_players{")
        );
        return series.length === 4;
      });
      const page = await browser.newPage({ viewport: { width: 1200, height: 1400 } });
      await page.goto(`${statusUrl}/`);
      await until(
        "four fragment rows",
        async () => await page.locator("#fragments tbody tr").count() === 4,
      );
      const cells = await page.locator("#fragments tbody tr td:first-child").allTextContents();
      const fromMetrics = series.map((line) => /fragment="([^"]+)"/.exec(line)![1]);
      assert.deepEqual(cells.sort(), fromMetrics.sort());
      assert.equal(await page.locator("#fragment-map").isVisible(), true);
      await page.waitForTimeout(1200);
      await page.screenshot({ path: `${shots}/cluster_fragments.png`, fullPage: true });
    } finally {
      await browser.close();
      for (const client of clients) await client.close();
      await cluster.stop();
      await master.stop();
      await Deno.remove(keysDir, { recursive: true });
    }
  },
});
