/**
 * The HTTP pieces both consoles (master and cluster) share: the static assets (CSS and the
 * small script library every page loads; no build step, nothing from elsewhere), the page
 * shell, the security headers, the guard of operator actions (token check, 401/403, an action
 * log line naming who and what — never the token), and {@linkcode ConsoleSite}, the routes and
 * live stream both consoles serve.
 *
 * @module
 */
import type { Logger } from "./logging.ts";
import type { AdminAuth } from "./admin_auth.ts";
import { EventStreamHub } from "./event_stream_hub.ts";
import { MAX_BODY_BYTES } from "./status_server.ts";
import { readBoundedBody } from "./read_bounded_body.ts";

/**
 * Headers of every console response: same-origin scripts and styles only, no framing, no
 * sniffing. The pages never use inline script, so a value that escaped into the HTML could not
 * run anyway.
 */
export const CONSOLE_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  "content-security-policy":
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
  "cache-control": "no-store",
});

/**
 * A response of `body` with `type` and {@linkcode CONSOLE_HEADERS}.
 *
 * @example
 * ```ts
 * import { asset } from "./console_http.ts";
 * import assert from "node:assert/strict";
 *
 * const res = asset("body{}", "text/css");
 * assert.equal(res.headers.get("x-frame-options"), "DENY");
 * ```
 */
export function asset(body: string, type: string, status = 200): Response {
  return new Response(body, { status, headers: { ...CONSOLE_HEADERS, "content-type": type } });
}

/**
 * A JSON response with {@linkcode CONSOLE_HEADERS}.
 *
 * @example
 * ```ts
 * import { json } from "./console_http.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(await json({ ok: true }, 201).json(), { ok: true });
 * ```
 */
export function json(data: unknown, status = 200): Response {
  return new Response(JSON.stringify(data), {
    status,
    headers: { ...CONSOLE_HEADERS, "content-type": "application/json; charset=utf-8" },
  });
}

/**
 * 401 for a view that needs the token (read-only console not public).
 *
 * @example
 * ```ts
 * import { viewRefused } from "./console_http.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(viewRefused().status, 401);
 * ```
 */
export function viewRefused(): Response {
  return json({ error: "unauthorized", message: "this console needs the admin token" }, 401);
}

/**
 * Guards an operator action: resolves null when the request carries the right token (and logs
 * the action), or the refusal to send (logged at warning level, nothing done).
 *
 * @param auth The token checker.
 * @param request The action request.
 * @param remote The peer address.
 * @param action What is asked, e.g. `kick client 7` (no secret in it).
 * @param logger Where actions are logged.
 *
 * @example
 * ```ts
 * import { guardAction } from "./console_http.ts";
 * import { AdminAuth } from "./admin_auth.ts";
 * import { roleLogger } from "./logging.ts";
 * import assert from "node:assert/strict";
 *
 * const auth = await AdminAuth.create({ token: "a-long-operator-token" });
 * const ask = (token: string) =>
 *   new Request("http://x/api/drain", { method: "POST", headers: { authorization: `Bearer ${token}` } });
 * const log = roleLogger("cluster");
 * assert.equal((await guardAction(auth, ask("nope"), "127.0.0.1:1", "drain", log))?.status, 401);
 * assert.equal(await guardAction(auth, ask("a-long-operator-token"), "127.0.0.1:1", "drain", log), null);
 * ```
 */
export async function guardAction(
  auth: AdminAuth,
  request: Request,
  remote: string,
  action: string,
  logger: Logger,
): Promise<Response | null> {
  if (request.method !== "POST") {
    return json({ error: "method_not_allowed" }, 405);
  }
  const verdict = await auth.check(request);
  const operator = operatorOf(request);
  if (verdict === "ok") {
    logger.warn("operator action by {operator} from {remote}: {action}", {
      operator,
      remote,
      action,
    });
    return null;
  }
  logger.warn("operator action refused ({verdict}) from {remote}: {action}", {
    verdict,
    remote,
    action,
  });
  if (verdict === "disabled") {
    return json({ error: "disabled", message: "no admin token is configured" }, 403);
  }
  return json({ error: "unauthorized", message: "a valid admin token is needed" }, 401);
}

/** The operator's self-chosen name (`x-operator`, for the log), cut and defaulted. */
function operatorOf(request: Request): string {
  const name = request.headers.get("x-operator")?.slice(0, 64).trim();
  return name === undefined || name === "" ? "operator" : name;
}

/**
 * Reads a small JSON object body (at most {@linkcode MAX_BODY_BYTES}); null when absent,
 * too big or not an object.
 *
 * @example
 * ```ts
 * import { readJsonBody } from "./console_http.ts";
 * import assert from "node:assert/strict";
 *
 * const post = (body: string) => new Request("http://x/", { method: "POST", body });
 * assert.deepEqual(await readJsonBody(post('{"on":false}')), { on: false });
 * assert.equal(await readJsonBody(post("[1]")), null);
 * assert.equal(await readJsonBody(post("x".repeat(5000))), null);
 * ```
 */
export async function readJsonBody(request: Request): Promise<Record<string, unknown> | null> {
  const length = Number(request.headers.get("content-length") ?? "0");
  if (length > MAX_BODY_BYTES) return null;
  if (request.body === null) return null;
  const bytes = await readBoundedBody(request.body, MAX_BODY_BYTES);
  if (bytes === undefined) return null;
  try {
    const value: unknown = JSON.parse(new TextDecoder().decode(bytes));
    return typeof value === "object" && value !== null && !Array.isArray(value)
      ? value as Record<string, unknown>
      : null;
  } catch (error) {
    if (error instanceof SyntaxError) return null;
    throw error;
  }
}

/** The parts of a console page's HTML shell that differ between consoles. */
export interface ConsolePageShell {
  /** The document title before the page's script names the server, e.g. `Sustenet cluster`. */
  readonly title: string;
  /** The heading before the server's name, e.g. `Cluster`. */
  readonly heading: string;
  /** The page's own script, e.g. `/cluster.js` (loaded after `/console-common.js`). */
  readonly script: string;
  /** The id of the dim line beside the heading (the script fills it). */
  readonly subtitleId: string;
  /** The HTML inside `<main>` (no data: the script fills it with textContent only). */
  readonly main: string;
}

/**
 * A console page: the shared head (stylesheet, script library, the page's script), the header
 * (name, live indicator, operator and token fields), `main`, and the toast.
 *
 * @example
 * ```ts
 * import { consolePage } from "./console_http.ts";
 * import assert from "node:assert/strict";
 *
 * const html = consolePage({
 *   title: "Sustenet cluster",
 *   heading: "Cluster",
 *   script: "/cluster.js",
 *   subtitleId: "ident",
 *   main: "  <div class=\"cards\"></div>\n",
 * });
 * assert.match(html, /<script src="\/cluster.js" defer><\/script>/);
 * assert.match(html, /<input id="token" type="password"/);
 * ```
 */
export function consolePage(shell: ConsolePageShell): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${shell.title}</title>
<link rel="stylesheet" href="/console.css">
<script src="/console-common.js" defer></script>
<script src="${shell.script}" defer></script>
</head>
<body>
<header>
  <h1>${shell.heading} <span id="name"></span></h1>
  <span class="dim" id="${shell.subtitleId}"></span>
  <span class="live" id="live">live</span>
  <span class="spacer"></span>
  <label class="note">operator <input id="operator" autocomplete="off" size="10" maxlength="64"></label>
  <label class="note">admin token <input id="token" type="password" autocomplete="off" size="18"></label>
</header>
<main>
${shell.main}</main>
<div id="toast"></div>
</body>
</html>
`;
}

/** An operator action a console recognised in a path, run once the token is checked. */
export interface ConsoleAction {
  /** What is asked, for the action log line, e.g. `kick client 7` (no secret in it). */
  readonly what: string;
  /** Does it, given the request's JSON object body (`{}` when absent or not an object). */
  run(body: Record<string, unknown>): Response;
}

/** What a {@linkcode ConsoleSite} serves and does. */
export interface ConsoleSiteOptions<State> {
  /** Who may view and act. */
  readonly auth: AdminAuth;
  /** Where actions are logged. */
  readonly logger: Logger;
  /** The page at `/` (see {@linkcode consolePage}). */
  readonly html: string;
  /** The page's own script: its path (e.g. `/cluster.js`) and text. */
  readonly script: { readonly path: string; readonly body: string };
  /** The state `/api/state` sends and the live stream publishes. */
  state(): State;
  /** Called once a second before the state is published (the console takes its sample). */
  sample(): void;
  /** The action a POST path names, or null (404). */
  action(path: string): ConsoleAction | null;
  /** More read-only routes (GET/HEAD) by path; each checks its own access. */
  readonly views?: Readonly<Record<string, (request: Request) => Promise<Response | null>>>;
}

/**
 * The routes and the clock both consoles share: the page, stylesheet and scripts, `/api/state`
 * and the `/api/events` live stream behind the view check, POST actions behind
 * {@linkcode guardAction}, and a once-a-second sampler that publishes the state to the open
 * streams.
 *
 * @example
 * ```ts
 * import { ConsoleSite, consolePage, json } from "./console_http.ts";
 * import { AdminAuth } from "./admin_auth.ts";
 * import { roleLogger } from "./logging.ts";
 * import assert from "node:assert/strict";
 *
 * let drained = false;
 * const site = new ConsoleSite({
 *   auth: await AdminAuth.create({ token: "a-long-operator-token" }),
 *   logger: roleLogger("cluster"),
 *   html: consolePage({ title: "t", heading: "h", script: "/x.js", subtitleId: "s", main: "" }),
 *   script: { path: "/x.js", body: "" },
 *   state: () => ({ drained }),
 *   sample: () => {},
 *   action: (path) =>
 *     path === "/api/drain" ? { what: "drain", run: () => json({ ok: (drained = true) }) } : null,
 * });
 * const url = new URL("http://x/api/drain");
 * const post = (token: string) =>
 *   new Request(url, { method: "POST", headers: { authorization: `Bearer ${token}` } });
 * assert.equal((await site.routes(post("wrong"), url, "127.0.0.1:1"))?.status, 401);
 * assert.equal((await site.routes(post("a-long-operator-token"), url, "127.0.0.1:1"))?.status, 200);
 * assert.equal(drained, true);
 * site.close();
 * ```
 */
export class ConsoleSite<State> {
  readonly #options: ConsoleSiteOptions<State>;
  readonly #hub = new EventStreamHub();
  readonly #timer: ReturnType<typeof setInterval>;

  /** @param options What to serve and do. */
  constructor(options: ConsoleSiteOptions<State>) {
    this.#options = options;
    this.#timer = setInterval(() => {
      options.sample();
      this.#hub.publish(options.state());
    }, 1000);
    Deno.unrefTimer(this.#timer);
  }

  /** Stops the sampler and ends the live streams. */
  close(): void {
    clearInterval(this.#timer);
    this.#hub.close();
  }

  /** The status server's `routes`: null for a path this console does not serve. */
  readonly routes = async (
    request: Request,
    url: URL,
    remote: string,
  ): Promise<Response | null> => {
    const path = url.pathname;
    if (request.method === "GET" || request.method === "HEAD") {
      return await this.#view(request, path);
    }
    const action = this.#options.action(path);
    if (action === null) return null;
    const { auth, logger } = this.#options;
    const refused = await guardAction(auth, request, remote, action.what, logger);
    if (refused !== null) return refused;
    return action.run(await readJsonBody(request) ?? {});
  };

  async #view(request: Request, path: string): Promise<Response | null> {
    const o = this.#options;
    switch (path) {
      case "/":
        return asset(o.html, "text/html; charset=utf-8");
      case "/console.css":
        return asset(CONSOLE_CSS, "text/css; charset=utf-8");
      case "/console-common.js":
        return asset(CONSOLE_COMMON_JS, "text/javascript; charset=utf-8");
      case o.script.path:
        return asset(o.script.body, "text/javascript; charset=utf-8");
      case "/api/state":
        return await o.auth.canView(request) ? json(o.state()) : viewRefused();
      case "/api/events":
        return await o.auth.canView(request) ? this.#hub.open(o.state()) : viewRefused();
    }
    const views = o.views ?? {};
    return Object.hasOwn(views, path) ? await views[path](request) : null;
  }
}

/** The stylesheet of both consoles. */
export const CONSOLE_CSS = `
:root { --bg:#0f1419; --panel:#182028; --line:#2a3540; --text:#dce3ea; --dim:#8a99a8;
  --ok:#3fb950; --warn:#d29922; --bad:#f85149; --accent:#58a6ff; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.4 system-ui, sans-serif; background:var(--bg); color:var(--text); }
header { display:flex; align-items:center; gap:1em; padding:.8em 1.5em; border-bottom:1px solid var(--line); }
header h1 { font-size:1.2em; margin:0; }
header .dim { color:var(--dim); }
header .spacer { flex:1; }
main { padding:1em 1.5em; display:grid; gap:1em; }
.cards { display:grid; grid-template-columns:repeat(auto-fit, minmax(10em, 1fr)); gap:.8em; }
.card { background:var(--panel); border:1px solid var(--line); border-radius:6px; padding:.7em 1em; }
.card .label { color:var(--dim); font-size:.85em; }
.card .value { font-size:1.6em; font-variant-numeric:tabular-nums; }
section { background:var(--panel); border:1px solid var(--line); border-radius:6px; padding:.8em 1em; }
section h2 { font-size:1em; margin:0 0 .6em; color:var(--dim); font-weight:600; }
table { border-collapse:collapse; width:100%; font-variant-numeric:tabular-nums; }
th, td { text-align:left; padding:.35em .6em; border-bottom:1px solid var(--line); vertical-align:middle; }
th { color:var(--dim); font-weight:500; }
.bar { position:relative; width:10em; height:.9em; background:#0b1015; border-radius:3px; overflow:hidden; display:inline-block; vertical-align:middle; }
.bar > span { position:absolute; inset:0 auto 0 0; background:var(--accent); }
.bar.warn > span { background:var(--warn); } .bar.bad > span { background:var(--bad); }
.state-running, .state-registered, .ok { color:var(--ok); }
.state-restarting, .state-starting, .state-waiting, .warn { color:var(--warn); }
.state-failed, .state-stopped, .bad { color:var(--bad); }
.charts { display:grid; grid-template-columns:repeat(auto-fit, minmax(22em, 1fr)); gap:1em; }
canvas { width:100%; height:140px; background:#0b1015; border-radius:4px; }
canvas.map { height:auto; margin-bottom:.6em; }
button { background:#21262d; color:var(--text); border:1px solid var(--line); border-radius:4px; padding:.25em .7em; cursor:pointer; }
button:hover { border-color:var(--accent); }
button.danger:hover { border-color:var(--bad); }
input { background:#0b1015; color:var(--text); border:1px solid var(--line); border-radius:4px; padding:.3em .5em; }
#toast { position:fixed; bottom:1em; right:1em; padding:.6em 1em; border-radius:6px; background:var(--panel); border:1px solid var(--line); display:none; max-width:30em; }
#toast.show { display:block; } #toast.bad { border-color:var(--bad); } #toast.ok { border-color:var(--ok); }
.note { color:var(--dim); font-size:.85em; }
a { color:var(--accent); }
.live::before { content:"●"; margin-right:.3em; color:var(--bad); }
.live.on::before { color:var(--ok); }
`;

/**
 * The script library both pages load before their own: element building with textContent
 * only (never innerHTML, so peer-chosen names stay text), the operator token (kept in this
 * tab's sessionStorage, sent as a Bearer header), actions, a toast, line charts on canvas,
 * and the live stream.
 */
export const CONSOLE_COMMON_JS = `"use strict";
const Sus = (() => {
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs ?? {})) {
      if (k === "class") el.className = v;
      else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else if (k === "href") { if (/^https?:\\/\\//.test(v)) el.setAttribute("href", v); }
      else el.setAttribute(k, String(v));
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }
  function fill(id, ...children) {
    const el = document.getElementById(id);
    el.replaceChildren(...children.flat());
    return el;
  }
  function text(id, value) { document.getElementById(id).textContent = String(value); }
  function duration(ms) {
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s";
    if (s < 86400) return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
    return Math.floor(s / 86400) + " d " + Math.floor((s % 86400) / 3600) + " h";
  }
  function bytes(n) {
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i === 0 ? n : n.toFixed(1)) + " " + units[i];
  }
  function bar(value, max) {
    const ratio = max > 0 ? Math.min(1, value / max) : 0;
    const fillEl = h("span", {});
    // Set through the CSSOM: the CSP forbids style attributes.
    fillEl.style.width = (ratio * 100).toFixed(1) + "%";
    const el = h("span", { class: "bar" + (ratio >= 0.95 ? " bad" : ratio >= 0.8 ? " warn" : "") }, fillEl);
    el.title = max > 0 ? value + " / " + max : value + " (no limit)";
    return el;
  }
  function token() { return sessionStorage.getItem("sustenet-admin-token") ?? ""; }
  function operator() { return sessionStorage.getItem("sustenet-operator") ?? ""; }
  function setupToken() {
    const input = document.getElementById("token");
    input.value = token();
    input.addEventListener("change", () => sessionStorage.setItem("sustenet-admin-token", input.value));
    const name = document.getElementById("operator");
    if (name !== null) {
      name.value = operator();
      name.addEventListener("change", () => sessionStorage.setItem("sustenet-operator", name.value));
    }
  }
  function toast(message, ok) {
    const el = document.getElementById("toast");
    el.textContent = message;
    el.className = "show " + (ok ? "ok" : "bad");
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { el.className = ""; }, 4000);
  }
  async function act(path, body, label) {
    const headers = { "content-type": "application/json" };
    if (token() !== "") headers.authorization = "Bearer " + token();
    if (operator() !== "") headers["x-operator"] = operator();
    const res = await fetch(path, { method: "POST", headers, body: JSON.stringify(body ?? {}) });
    let answer = {};
    try { answer = await res.json(); } catch { answer = {}; }
    const ok = res.ok;
    toast(ok ? label + ": done" : label + ": " + res.status + " " + (answer.message ?? answer.error ?? ""), ok);
    document.body.dataset.lastAction = String(res.status);
    return res.status;
  }
  function chart(canvas, series, format) {
    const ratio = window.devicePixelRatio || 1;
    const w = canvas.clientWidth, hgt = canvas.clientHeight;
    canvas.width = w * ratio; canvas.height = hgt * ratio;
    const g = canvas.getContext("2d");
    g.scale(ratio, ratio);
    g.clearRect(0, 0, w, hgt);
    let max = 1;
    for (const s of series) for (const v of s.values) max = Math.max(max, v);
    g.strokeStyle = "#2a3540"; g.fillStyle = "#8a99a8"; g.font = "11px system-ui";
    for (let i = 0; i <= 2; i++) {
      const y = 14 + (hgt - 24) * i / 2;
      g.beginPath(); g.moveTo(40, y); g.lineTo(w - 4, y); g.stroke();
      g.fillText(format(max * (2 - i) / 2), 2, y + 4);
    }
    series.forEach((s, k) => {
      const n = s.values.length;
      g.strokeStyle = s.color; g.lineWidth = 1.5; g.beginPath();
      s.values.forEach((v, i) => {
        const x = 40 + (w - 44) * (n <= 1 ? 1 : i / (n - 1));
        const y = 14 + (hgt - 24) * (1 - v / max);
        if (i === 0) g.moveTo(x, y); else g.lineTo(x, y);
      });
      g.stroke();
      g.fillStyle = s.color; g.fillText(s.label, 48 + k * 110, 11);
    });
  }
  function live(render) {
    const headers = token() === "" ? {} : { authorization: "Bearer " + token() };
    const indicator = document.getElementById("live");
    const poll = async () => {
      const res = await fetch("api/state", { headers });
      if (res.ok) render(await res.json());
      else toast("state: " + res.status, false);
    };
    if (token() === "" && "EventSource" in window) {
      const events = new EventSource("api/events");
      events.onmessage = (e) => { indicator.classList.add("on"); render(JSON.parse(e.data)); };
      events.onerror = () => indicator.classList.remove("on");
    } else {
      // EventSource cannot send a header: a protected console polls instead.
      indicator.classList.add("on");
      setInterval(poll, 1000);
    }
    poll();
  }
  return { h, fill, text, duration, bytes, bar, setupToken, act, chart, live, toast };
})();
`;
