/**
 * The HTTP pieces both consoles (master and cluster) share: the static assets (CSS and the
 * small script library every page loads; no build step, nothing from elsewhere), the security
 * headers, and the guard of operator actions (token check, 401/403, an action log line naming
 * who and what — never the token).
 *
 * @module
 */
import type { Logger } from "./logging.ts";
import type { AdminAuth } from "./admin_auth.ts";
import { MAX_BODY_BYTES } from "./status_server.ts";

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
  const reader = request.body?.getReader();
  if (reader === undefined) return null;
  const chunks: Uint8Array[] = [];
  let size = 0;
  while (true) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_BODY_BYTES) {
      await reader.cancel();
      return null;
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.byteLength;
  }
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
