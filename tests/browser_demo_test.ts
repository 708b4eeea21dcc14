/**
 * The live demo page in headless Chromium against the real demo deployment (a master and two
 * clusters as child processes, WebSocket listeners, fragments on, walking bots): the page
 * joins through the master over WebSocket, sees bots move, walks with the arrow keys (a Deno
 * client in the same fragment sees it), chats both ways with that Deno client, and rejoins
 * when its cluster restarts. A screenshot is saved in the run's temporary directory.
 */
import assert from "node:assert/strict";
import { type BotRun, startBots } from "../client/bots.ts";
import type { ClusterSession } from "../client/cluster_session.ts";
import { SustenetClient } from "../client/mod.ts";
import {
  DEMO_BOT_SCENARIO,
  emptyDemoServers,
  restartDemoCluster,
  startDemoServers,
  stopDemoServers,
  waitForDemoClusters,
} from "../demo.ts";
import { CHAT_COMMAND } from "../plugins/chat.ts";
import { launchChromium } from "./_browser.ts";
import {
  PAGE_WAIT,
  type PageGlobal,
  waitForJoined,
  waitForMovingPlayers,
  walkRight,
} from "./_demo_page.ts";
import { REPO_ROOT } from "./_process.ts";
import { waitFor } from "./_wait.ts";

Deno.test({
  name: "the demo page joins over WebSocket, shows walking bots, chats with Deno and rejoins",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "sustenet_browser_demo_" });
    const shots = await Deno.makeTempDir({ prefix: "sustenet_browser_shots_" });
    const servers = emptyDemoServers();
    const browser = await launchChromium();
    let bots: BotRun | undefined;
    let observer: SustenetClient | undefined;
    let denoClient: SustenetClient | undefined;
    const pageErrors: string[] = [];
    try {
      await startDemoServers(dir, servers);
      assert.ok(servers.page !== undefined, "the demo page was built");
      observer = await SustenetClient.connect({ port: servers.masterPort });
      await waitForDemoClusters(observer);
      const page = await browser.newPage({ viewport: { width: 1040, height: 560 } });
      page.on("pageerror", (error) => pageErrors.push(error.message));
      await page.goto(servers.page.url);
      const joined = await waitForJoined(page);
      assert.ok(joined.clientId > 0);
      assert.match(await page.locator("#state").innerText(), /^joined/);
      const clusters = await observer.listClusters();
      const pageCluster = clusters.find((c) => c.name === joined.cluster);
      assert.ok(pageCluster !== undefined, `the master lists ${joined.cluster}`);
      // Walking bots on the page's cluster (the demo's: wandering in the first fragment).
      bots = startBots({
        master: { host: "127.0.0.1", port: servers.masterPort },
        cluster: pageCluster.id,
        count: 4,
        seconds: 600,
        intervalMs: 1000,
        scenario: DEMO_BOT_SCENARIO,
      });
      await bots.allJoined;
      assert.equal(bots.status().joined, 4);

      // The bots walk in the page's fragment: the page sees players and their moves.
      await waitForMovingPlayers(page);
      assert.ok(Number(await page.locator("#players").innerText()) > 0);
      assert.ok(Number(await page.locator("#world").getAttribute("data-players")) > 0);
      await page.waitForFunction(
        () => (globalThis as PageGlobal).sustenetDemo!.rttMs !== undefined,
        undefined,
        PAGE_WAIT,
      );
      assert.match(await page.locator("#latency").innerText(), /^\d+\.\d ms$/);

      // A Deno client joins the page's cluster and stands in its fragment.
      denoClient = await SustenetClient.connect({ port: servers.masterPort });
      const deno: ClusterSession = await denoClient.join(pageCluster.id);
      const denoHeard: string[] = [];
      const seenPage: { x: number; y: number }[] = [];
      deno.on("message", ({ command, payload }) => {
        if (command === CHAT_COMMAND) denoHeard.push(new TextDecoder().decode(payload.subarray(4)));
      });
      const pageId = joined.clientId;
      deno.on("moves", ({ entries }) => {
        for (const e of entries) if (e.clientId === pageId) seenPage.push(e.state);
      });
      deno.on("spawn", ({ clientId, state }) => {
        if (clientId === pageId) seenPage.push(state);
      });
      deno.move({ x: joined.me.x, y: joined.me.y, z: 0 });

      // The player walks right with the arrow key; the Deno client sees the page move.
      const startX = await walkRight(page, "ArrowRight");
      await waitFor("the page's moves", () => seenPage.some((state) => state.x > startX + 2));

      // Chat from the page's form reaches the Deno client, and the Deno client's line the page.
      await page.locator("#chat-input").fill("hello from the browser");
      await page.locator("#chat-form button").click();
      await waitFor("the page's chat", () => denoHeard.includes("hello from the browser"));
      deno.send(CHAT_COMMAND, new TextEncoder().encode("hello from deno"));
      await page.waitForFunction(
        () =>
          (globalThis as PageGlobal).sustenetDemo!.chat.some((l) =>
            l.endsWith(": hello from deno")
          ),
        undefined,
        PAGE_WAIT,
      );
      await page.locator("#chat-log li", { hasText: "hello from deno" }).waitFor(PAGE_WAIT);
      await page.screenshot({ path: `${shots}/demo_page.png` });
      console.log(`screenshot: ${shots}/demo_page.png`);

      // The page's cluster restarts: the page shows it and rejoins through the master.
      await restartDemoCluster(dir, servers, joined.cluster);
      await page.waitForFunction(
        () => {
          const demo = (globalThis as PageGlobal).sustenetDemo!;
          return demo.reconnects >= 1 && demo.state === "joined";
        },
        undefined,
        PAGE_WAIT,
      );
      await page.evaluate(() =>
        (globalThis as unknown as { sustenetDemo: { say(t: string): boolean } })
          .sustenetDemo.say("back again")
      );
      await page.waitForFunction(
        () => (globalThis as PageGlobal).sustenetDemo!.chat.includes("you: back again"),
        undefined,
        PAGE_WAIT,
      );
      await page.screenshot({ path: `${shots}/demo_page_rejoined.png` });
      assert.deepEqual(pageErrors, []);
    } finally {
      await browser.close();
      bots?.stop();
      await bots?.done;
      await denoClient?.close();
      await observer?.close();
      await stopDemoServers(servers);
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "`deno task demo --keep` serves a page that shows moving players, until Ctrl-C",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    // Its own process group, so Ctrl-C reaches `deno task` and the demo as in a terminal.
    const child = new Deno.Command("setsid", {
      args: [Deno.execPath(), "task", "demo", "--keep", "--bots", "4"],
      cwd: REPO_ROOT,
      env: { NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const stderr = new Response(child.stderr).text();
    const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let output = "";
    const browser = await launchChromium();
    try {
      // The URL is printed in the summary; the --keep line comes once the walkers start.
      let pageUrl: string | undefined;
      while (!/^--keep: /m.test(output)) {
        const { value, done } = await lines.read();
        if (done) assert.fail(`the demo ended early:\n${output}\n${await stderr}`);
        output += value;
        pageUrl ??= /^demo page: (http:\/\/127\.0\.0\.1:\d+\/) /m.exec(output)?.[1];
      }
      assert.ok(pageUrl !== undefined, output);
      assert.match(output, /^--keep: the servers and 4 walking bots keep running, open http/m);

      const page = await browser.newPage();
      await page.goto(pageUrl);
      await waitForJoined(page);
      // Walkers join both clusters; the page's has some once they spread, and they move.
      await page.waitForFunction(
        () => (globalThis as PageGlobal).sustenetDemo!.movesReceived > 20,
        undefined,
        PAGE_WAIT,
      );
      assert.ok(
        Object.keys(await page.evaluate(() => (globalThis as PageGlobal).sustenetDemo!.players))
          .length > 0,
      );
    } finally {
      await browser.close();
      Deno.kill(-child.pid, "SIGINT");
      // Drain stdout so the demo never blocks on a full pipe while it stops.
      for (;;) {
        const { value, done } = await lines.read();
        if (done) break;
        output += value;
      }
    }
    const status = await child.status;
    assert.equal(status.code, 0, `${output}\n${await stderr}`);
    assert.match(output, /^SIGINT: stopping the servers$/m);
  },
});
