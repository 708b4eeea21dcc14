/**
 * The cluster's own page on its status server (the address its ready line prints): players
 * (client id, player id, address, connected for, queued bytes, fragment), populated fragments,
 * plugins (state, restarts, last error), tick p50/p99 and traffic, live over server-sent events;
 * and the operator actions this cluster serves itself, behind the admin token: kick a player,
 * broadcast a notice, drain (refuse new players, keep the others), restart a plugin.
 *
 * Every value a peer chose (player ids, names, plugin errors) reaches the page as JSON and is
 * put in the DOM as text by the page's script; the HTML itself carries no data.
 *
 * @module
 */
import type { AdminAuth } from "../shared/admin_auth.ts";
import { type ConsoleAction, consolePage, ConsoleSite, json } from "../shared/console_http.ts";
import type { Logger } from "../shared/logging.ts";
import { SampleRing } from "../shared/sample_ring.ts";

/** One player row. */
export interface ConsolePlayer {
  readonly clientId: number;
  readonly playerId: string;
  readonly address: string;
  readonly connectedMs: number;
  readonly queuedBytes: number;
  readonly fragment: string | null;
}

/** One plugin row. */
export interface ConsolePlugin {
  readonly name: string;
  readonly state: string;
  readonly restarts: number;
  readonly failures: number;
  readonly lastError: string | null;
  readonly sandboxed: boolean;
}

/** What the cluster page shows, as `/api/state` sends it. */
export interface ClusterConsoleState {
  readonly name: string;
  readonly clusterId: number | null;
  readonly masterLink: string;
  readonly uptimeMs: number;
  readonly draining: boolean;
  readonly players: number;
  readonly capacity: number;
  readonly playerRows: readonly ConsolePlayer[];
  readonly fragments:
    | readonly { fx: number; fz: number; players: number; updateHz: number; bytesOut: number }[]
    | null;
  readonly plugins: readonly ConsolePlugin[];
  readonly tick: { readonly p50Ms: number; readonly p99Ms: number };
  readonly traffic: {
    readonly bytesIn: number;
    readonly bytesOut: number;
    readonly framesIn: number;
    readonly framesOut: number;
  };
  readonly eventLoopLagMaxMs: number;
  readonly samples: readonly ClusterSample[];
}

/** One point of the page's charts. */
export interface ClusterSample {
  readonly t: number;
  readonly players: number;
  readonly bytesInPerS: number;
  readonly bytesOutPerS: number;
  readonly tickP99Ms: number;
}

/** What the console reads from and does to the running cluster. */
export interface ClusterConsoleSource {
  /** The state now (without samples). */
  snapshot(): Omit<ClusterConsoleState, "samples">;
  /** Kicks a player; false if there is none with this client id. */
  kick(clientId: number, reason: string): boolean;
  /** Sends a notice to every player; returns how many got it. */
  notice(text: string): number;
  /** Turns draining on or off. */
  drain(on: boolean): void;
  /** Restarts a plugin: `unknown` name, `not_restartable` (in-process or not running). */
  restartPlugin(name: string): "ok" | "unknown" | "not_restartable";
}

/** Most player rows sent (the page says when there are more). */
export const MAX_PLAYER_ROWS = 500;
/** Samples kept: 5 minutes at one a second. */
const SAMPLES = 300;

/**
 * The cluster console: routes for the status server, and a once-a-second sampler that feeds
 * the charts and the live stream.
 *
 * @example
 * ```ts
 * import { ClusterConsole, type ClusterConsoleSource } from "./cluster_console.ts";
 * import { AdminAuth } from "../shared/admin_auth.ts";
 * import { roleLogger } from "../shared/logging.ts";
 * import assert from "node:assert/strict";
 *
 * const kicked: number[] = [];
 * const source: ClusterConsoleSource = {
 *   snapshot: () => ({
 *     name: "eu-1", clusterId: 7, masterLink: "registered", uptimeMs: 1000, draining: false,
 *     players: 1, capacity: 10, fragments: null, plugins: [], eventLoopLagMaxMs: 1,
 *     playerRows: [{ clientId: 1, playerId: "<b>p</b>", address: "127.0.0.1:9", connectedMs: 5,
 *       queuedBytes: 0, fragment: null }],
 *     tick: { p50Ms: 0.1, p99Ms: 0.2 },
 *     traffic: { bytesIn: 1, bytesOut: 2, framesIn: 1, framesOut: 1 },
 *   }),
 *   kick: (id) => kicked.push(id) > 0 && id === 1,
 *   notice: () => 1,
 *   drain: () => {},
 *   restartPlugin: () => "unknown",
 * };
 * const page = new ClusterConsole(
 *   source,
 *   await AdminAuth.create({ token: "a-long-operator-token" }),
 *   roleLogger("cluster"),
 * );
 * const url = new URL("http://x/api/players/1/kick");
 * const post = (token: string) =>
 *   new Request(url, { method: "POST", headers: { authorization: `Bearer ${token}` } });
 * assert.equal((await page.routes(post("wrong"), url, "127.0.0.1:1"))?.status, 401);
 * assert.deepEqual(kicked, []);
 * assert.equal((await page.routes(post("a-long-operator-token"), url, "127.0.0.1:1"))?.status, 200);
 * assert.deepEqual(kicked, [1]);
 * page.close();
 * ```
 */
export class ClusterConsole {
  readonly #source: ClusterConsoleSource;
  readonly #ring = new SampleRing<ClusterSample>(SAMPLES);
  readonly #site: ConsoleSite<ClusterConsoleState>;
  #last: { t: number; bytesIn: number; bytesOut: number } | undefined;

  /**
   * @param source The running cluster.
   * @param auth Who may view and act.
   * @param logger Where actions are logged.
   */
  constructor(source: ClusterConsoleSource, auth: AdminAuth, logger: Logger) {
    this.#source = source;
    this.#site = new ConsoleSite({
      auth,
      logger,
      html: CLUSTER_PAGE_HTML,
      script: { path: "/cluster.js", body: CLUSTER_PAGE_JS },
      state: () => this.state(),
      sample: () => this.#sample(),
      action: (path) => this.#action(path),
    });
    this.routes = this.#site.routes;
  }

  #sample(): void {
    const now = Date.now();
    const s = this.#source.snapshot();
    const last = this.#last;
    const dt = last === undefined ? 1 : Math.max(0.001, (now - last.t) / 1000);
    this.#ring.push({
      t: now,
      players: s.players,
      bytesInPerS: last === undefined ? 0 : Math.round((s.traffic.bytesIn - last.bytesIn) / dt),
      bytesOutPerS: last === undefined ? 0 : Math.round((s.traffic.bytesOut - last.bytesOut) / dt),
      tickP99Ms: s.tick.p99Ms,
    });
    this.#last = { t: now, bytesIn: s.traffic.bytesIn, bytesOut: s.traffic.bytesOut };
  }

  /** The state `/api/state` sends. */
  state(): ClusterConsoleState {
    const snapshot = this.#source.snapshot();
    return { ...snapshot, samples: this.#ring.toArray() };
  }

  /** Stops the sampler and ends the live streams. */
  close(): void {
    this.#site.close();
  }

  /** The status server's `routes`. */
  readonly routes: (request: Request, url: URL, remote: string) => Promise<Response | null>;

  #action(path: string): ConsoleAction | null {
    const kick = /^\/api\/players\/(\d{1,10})\/kick$/.exec(path);
    if (kick !== null) {
      return {
        what: `kick client ${kick[1]}`,
        run: (body) => {
          const reason = typeof body.reason === "string" && body.reason.trim() !== ""
            ? body.reason.slice(0, 200)
            : "kicked by an operator";
          return this.#source.kick(Number(kick[1]), reason)
            ? json({ ok: true })
            : json({ error: "not_found", message: `no player with client id ${kick[1]}` }, 404);
        },
      };
    }
    const restart = /^\/api\/plugins\/([^/]{1,128})\/restart$/.exec(path);
    if (restart !== null) {
      const name = decodeURIComponent(restart[1]);
      return { what: `restart plugin ${name}`, run: () => this.#restart(name) };
    }
    if (path === "/api/notice") {
      return {
        what: "broadcast a notice",
        run: (body) => {
          const text = typeof body.text === "string" ? body.text.trim() : "";
          if (text === "" || text.length > 500) {
            return json({ error: "bad_request", message: "text must be 1-500 characters" }, 400);
          }
          return json({ ok: true, players: this.#source.notice(text) });
        },
      };
    }
    if (path === "/api/drain") {
      return {
        what: "drain",
        run: (body) => {
          const on = body.on !== false;
          this.#source.drain(on);
          return json({ ok: true, draining: on });
        },
      };
    }
    return null;
  }

  #restart(name: string): Response {
    const result = this.#source.restartPlugin(name);
    if (result === "unknown") {
      return json({ error: "not_found", message: "no plugin with this name" }, 404);
    }
    if (result === "not_restartable") {
      return json({
        error: "conflict",
        message: "only a running URL (sandboxed) plugin can be restarted",
      }, 409);
    }
    return json({ ok: true });
  }
}

const CLUSTER_PAGE_HTML = consolePage({
  title: "Sustenet cluster",
  heading: "Cluster",
  script: "/cluster.js",
  subtitleId: "ident",
  main: `  <div class="cards">
    <div class="card"><div class="label">players</div><div class="value" id="players">–</div><div id="load"></div></div>
    <div class="card"><div class="label">tick p50 / p99</div><div class="value" id="tick">–</div></div>
    <div class="card"><div class="label">traffic in / out</div><div class="value" id="traffic">–</div></div>
    <div class="card"><div class="label">master link</div><div class="value" id="link">–</div></div>
    <div class="card"><div class="label">state</div><div class="value" id="drain">–</div><div class="note" id="uptime"></div></div>
  </div>
  <div class="charts">
    <section><h2>Players, last minutes</h2><canvas id="chart-players"></canvas></section>
    <section><h2>Traffic per second</h2><canvas id="chart-traffic"></canvas></section>
  </div>
  <section>
    <h2>Operator</h2>
    <input id="notice" placeholder="notice to every player" size="40" maxlength="500">
    <button id="send-notice">Broadcast notice</button>
    <button id="drain-on" class="danger">Drain (no new players)</button>
    <button id="drain-off">Stop draining</button>
    <span class="note">Actions need the admin token; each one is logged with who and what.</span>
  </section>
  <section><h2>Plugins</h2><table><thead><tr><th>name</th><th>state</th><th>restarts</th><th>failures</th><th>last error</th><th></th></tr></thead><tbody id="plugins"></tbody></table></section>
  <section><h2>Players <span class="note" id="players-note"></span></h2><table><thead><tr><th>client id</th><th>player id</th><th>address</th><th>connected for</th><th>queued</th><th>fragment</th><th></th></tr></thead><tbody id="player-rows"></tbody></table></section>
  <section><h2>Populated fragments</h2><canvas id="fragment-map" class="map" hidden></canvas><div id="fragments" class="note">fragments are off</div></section>
`,
});

const CLUSTER_PAGE_JS = `"use strict";
(() => {
  const { h, fill, text, duration, bytes, bar, act, chart, live, setupToken } = Sus;
  setupToken();
  document.getElementById("send-notice").addEventListener("click", () => {
    const input = document.getElementById("notice");
    act("api/notice", { text: input.value }, "notice");
  });
  document.getElementById("drain-on").addEventListener("click", () => act("api/drain", { on: true }, "drain"));
  document.getElementById("drain-off").addEventListener("click", () => act("api/drain", { on: false }, "stop draining"));
  function render(s) {
    document.title = "Sustenet cluster " + s.name;
    text("name", s.name);
    text("ident", s.clusterId === null ? "not registered" : "cluster id " + s.clusterId);
    text("players", s.capacity > 0 ? s.players + " / " + s.capacity : String(s.players));
    fill("load", s.capacity > 0 ? bar(s.players, s.capacity) : h("span", { class: "note" }, "no player limit"));
    text("tick", s.tick.p50Ms.toFixed(2) + " / " + s.tick.p99Ms.toFixed(2) + " ms");
    text("traffic", bytes(s.traffic.bytesIn) + " / " + bytes(s.traffic.bytesOut));
    const link = document.getElementById("link");
    link.textContent = s.masterLink;
    link.className = "value state-" + s.masterLink;
    const drain = document.getElementById("drain");
    drain.textContent = s.draining ? "draining" : "open";
    drain.className = "value " + (s.draining ? "warn" : "ok");
    text("uptime", "up " + duration(s.uptimeMs) + " · event-loop lag max " + s.eventLoopLagMaxMs.toFixed(1) + " ms");
    if (s.plugins.length === 0) fill("plugins", h("tr", {}, h("td", { colspan: 6, class: "note" }, "No plugin is loaded.")));
    else fill("plugins", s.plugins.map((p) => h("tr", {},
      h("td", {}, p.name),
      h("td", { class: "state-" + p.state }, p.state),
      h("td", {}, p.restarts),
      h("td", {}, p.failures),
      h("td", { class: p.lastError ? "bad" : "note" }, p.lastError ?? "—"),
      h("td", {}, p.sandboxed
        ? h("button", { onclick: () => act("api/plugins/" + encodeURIComponent(p.name) + "/restart", {}, "restart " + p.name) }, "Restart")
        : h("span", { class: "note" }, "in-process")),
    )));
    text("players-note", s.playerRows.length < s.players ? "(first " + s.playerRows.length + " of " + s.players + ")" : "");
    fill("player-rows", s.playerRows.map((p) => h("tr", { "data-client": p.clientId },
      h("td", {}, p.clientId),
      h("td", { class: "player-id" }, p.playerId),
      h("td", {}, p.address),
      h("td", {}, duration(p.connectedMs)),
      h("td", {}, bytes(p.queuedBytes)),
      h("td", {}, p.fragment ?? "—"),
      h("td", {}, h("button", { class: "danger kick", onclick: () => act("api/players/" + p.clientId + "/kick", {}, "kick " + p.clientId) }, "Kick")),
    )));
    if (s.fragments !== null) {
      drawFragments(document.getElementById("fragment-map"), s.fragments);
      fill("fragments", s.fragments.length === 0 ? "no populated fragment" : h("table", {},
        h("thead", {}, h("tr", {}, h("th", {}, "fragment"), h("th", {}, "players"), h("th", {}, "update rate"), h("th", {}, "sent"))),
        h("tbody", {}, s.fragments.map((f) => h("tr", {},
          h("td", {}, f.fx + "," + f.fz), h("td", {}, f.players), h("td", {}, f.updateHz + " Hz"), h("td", {}, bytes(f.bytesOut)))))));
    }
    chart(document.getElementById("chart-players"), [
      { label: "players", color: "#58a6ff", values: s.samples.map((x) => x.players) },
    ], (v) => String(Math.round(v)));
    chart(document.getElementById("chart-traffic"), [
      { label: "in", color: "#3fb950", values: s.samples.map((x) => x.bytesInPerS) },
      { label: "out", color: "#d29922", values: s.samples.map((x) => x.bytesOutPerS) },
    ], (v) => bytes(Math.round(v)));
    document.body.dataset.players = String(s.players);
  }
  // A small map: one cell per populated fragment (grid x to the right, z down), brighter with
  // more players, its player count and update rate written in it.
  function drawFragments(canvas, fragments) {
    canvas.hidden = fragments.length === 0;
    if (fragments.length === 0) return;
    const xs = fragments.map((f) => f.fx), zs = fragments.map((f) => f.fz);
    const minX = Math.min(...xs), maxX = Math.max(...xs), minZ = Math.min(...zs), maxZ = Math.max(...zs);
    const cols = Math.min(40, maxX - minX + 1), rows = Math.min(40, maxZ - minZ + 1);
    const ratio = window.devicePixelRatio || 1;
    const w = canvas.clientWidth, cell = Math.max(14, Math.min(64, Math.floor(w / cols)));
    const hgt = rows * cell;
    canvas.style.height = hgt + "px";
    canvas.width = w * ratio; canvas.height = hgt * ratio;
    const g = canvas.getContext("2d");
    g.scale(ratio, ratio);
    g.clearRect(0, 0, w, hgt);
    const most = Math.max(1, ...fragments.map((f) => f.players));
    g.font = "10px system-ui"; g.textBaseline = "top";
    for (const f of fragments) {
      const cx = f.fx - minX, cz = f.fz - minZ;
      if (cx >= cols || cz >= rows) continue;
      const a = 0.2 + 0.8 * (f.players / most);
      g.fillStyle = "rgba(88,166,255," + a.toFixed(2) + ")";
      g.fillRect(cx * cell + 1, cz * cell + 1, cell - 2, cell - 2);
      if (cell >= 28) {
        g.fillStyle = "#0f1419";
        g.fillText(String(f.players), cx * cell + 3, cz * cell + 3);
        g.fillText(f.updateHz + "Hz", cx * cell + 3, cz * cell + 14);
      }
    }
  }
  live(render);
})();
`;
