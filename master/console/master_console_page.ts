/**
 * The master console's HTML shell and script (served as they are: no build step, nothing
 * loaded from elsewhere). The HTML carries no data; the script fills it from `/api/state` and
 * the live stream with textContent only.
 *
 * @module
 */
import { consolePage } from "../../shared/console_http.ts";

/** The console page. */
export const MASTER_CONSOLE_HTML: string = consolePage({
  title: "Sustenet master",
  heading: "Master",
  script: "/master.js",
  subtitleId: "uptime",
  main: `  <div class="cards">
    <div class="card"><div class="label">clusters</div><div class="value" id="t-clusters">–</div></div>
    <div class="card"><div class="label">players</div><div class="value" id="t-players">–</div><div id="t-load"></div></div>
    <div class="card"><div class="label">joins / s</div><div class="value" id="t-joins">–</div><div class="note" id="t-tickets"></div></div>
    <div class="card"><div class="label">errors (refused joins, failed registrations)</div><div class="value" id="t-errors">–</div></div>
    <div class="card"><div class="label">connections</div><div class="value" id="t-connections">–</div><div class="note" id="t-lag"></div></div>
  </div>
  <div class="charts">
    <section><h2>Players, last minutes</h2><canvas id="chart-players"></canvas></section>
    <section><h2>Joins and errors per second</h2><canvas id="chart-joins"></canvas></section>
    <section><h2>Master traffic per second</h2><canvas id="chart-traffic"></canvas></section>
  </div>
  <section>
    <h2>Clusters</h2>
    <table><thead><tr><th>id</th><th>name</th><th>address</th><th>load</th><th></th><th>heartbeat</th><th>registered</th><th title="Version of the cluster's identity key that clients pin; it changes when the cluster's identity key is rotated">key version (?)</th><th>state</th><th>plugins</th><th></th></tr></thead>
    <tbody id="clusters"></tbody></table>
    <p class="note">Key version: which identity key the cluster announces (clients pin the key and
    re-check it when this number changes, i.e. after a key rotation). Drain: the master issues no
    new ticket for that cluster; players already on it stay. Plugins: each plugin's state as the
    cluster reports it (at most one update per heartbeat), with its restarts so far. Kick, notices and plugin restarts are
    on each cluster's own page: the name links to it when the cluster sets <code>status_page_url</code>
    (else open its status address, printed in its ready line).</p>
  </section>
`,
});

/** The console script. */
export const MASTER_CONSOLE_JS = `"use strict";
(() => {
  const { h, fill, text, duration, bytes, bar, act, chart, live, setupToken } = Sus;
  setupToken();
  function render(s) {
    document.title = "Sustenet master " + s.name;
    text("name", s.name);
    text("uptime", "up " + duration(s.uptimeMs));
    const t = s.totals;
    text("t-clusters", t.clusters);
    text("t-players", t.capacity === null ? String(t.players) : t.players + " / " + t.capacity);
    fill("t-load", t.capacity === null ? h("span", { class: "note" }, "a cluster has no limit") : bar(t.players, t.capacity));
    text("t-joins", t.joinsPerS);
    text("t-tickets", t.ticketsIssued + " tickets issued");
    text("t-errors", t.errors);
    text("t-connections", t.connections);
    text("t-lag", "event-loop lag max " + s.eventLoopLagMaxMs.toFixed(1) + " ms");
    fill("clusters", s.clusters.length === 0
      ? h("tr", {}, h("td", { colspan: 11, class: "note" }, "No cluster is registered."))
      : s.clusters.map((c) => h("tr", { "data-cluster": c.id },
        h("td", {}, c.id),
        h("td", { class: "cluster-name" }, c.pageUrl === null ? c.name : h("a", { href: c.pageUrl, class: "cluster-page" }, c.name)),
        h("td", {}, c.host + ":" + c.port),
        h("td", { class: "cluster-load" }, c.maxConnections > 0 ? c.load + " / " + c.maxConnections : c.load + " (no limit)"),
        h("td", {}, bar(c.load, c.maxConnections)),
        h("td", { class: c.heartbeatAgeMs > 2500 ? "warn" : "" }, (c.heartbeatAgeMs / 1000).toFixed(1) + " s ago"),
        h("td", {}, duration(c.registeredForMs) + " ago"),
        h("td", {}, "v" + c.keyVersion),
        h("td", { class: c.draining ? "warn" : "ok" }, c.draining ? "draining" : "open"),
        h("td", { class: "cluster-plugins" }, c.plugins.length === 0
          ? h("span", { class: "note" }, "none")
          : c.plugins.map((p) => h("div", { class: "plugin", "data-plugin": p.name },
            h("span", { class: "plugin-name" }, p.name), " ",
            h("span", { class: "plugin-state state-" + p.state }, p.state),
            p.restarts > 0 ? h("span", { class: "note" }, " (" + p.restarts + " restarts)") : null))),
        h("td", {}, c.draining
          ? h("button", { onclick: () => act("api/clusters/" + c.id + "/drain", { on: false }, "undrain " + c.id) }, "Undrain")
          : h("button", { class: "danger", onclick: () => act("api/clusters/" + c.id + "/drain", { on: true }, "drain " + c.id) }, "Drain")),
      )));
    chart(document.getElementById("chart-players"), [
      { label: "players", color: "#58a6ff", values: s.samples.map((x) => x.players) },
    ], (v) => String(Math.round(v)));
    chart(document.getElementById("chart-joins"), [
      { label: "joins/s", color: "#3fb950", values: s.samples.map((x) => x.joinsPerS) },
      { label: "errors/s", color: "#f85149", values: s.samples.map((x) => x.errorsPerS) },
    ], (v) => v.toFixed(1));
    chart(document.getElementById("chart-traffic"), [
      { label: "in", color: "#3fb950", values: s.samples.map((x) => x.bytesInPerS) },
      { label: "out", color: "#d29922", values: s.samples.map((x) => x.bytesOutPerS) },
    ], (v) => bytes(Math.round(v)));
    document.body.dataset.players = String(t.players);
  }
  live(render);
})();
`;
