// This module is browser compatible.
/**
 * The master's plain status page (`/status` on the status server; the console is `/`): a
 * small HTML table without script, for text browsers and scripts, of the live
 * clusters and their load that refreshes itself every 2 seconds. Every value shown comes
 * from a peer (cluster names and hosts), so everything is HTML-escaped; the page must never
 * show keys or anything secret, and never load anything from elsewhere.
 *
 * @module
 */

import type { ClusterRecord } from "./registry.ts";

/** What the status page shows. */
export interface StatusPageData {
  /** The master's server name. */
  readonly serverName: string;
  /** Live clusters. */
  readonly clusters: readonly ClusterRecord[];
  /** Open connections (clients and clusters). */
  readonly connections: number;
  /** Seconds since the master started. */
  readonly uptimeS: number;
  /** Current Unix ms (for "last heartbeat … s ago"). */
  readonly now: number;
}

const ESCAPES: Readonly<Record<string, string>> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/**
 * Escapes text for HTML element content and quoted attribute values.
 *
 * @param text Untrusted text.
 *
 * @example
 * ```ts
 * import { escapeHtml } from "./status_page.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(escapeHtml(`<b a="1">&'`), "&lt;b a=&quot;1&quot;&gt;&amp;&#39;");
 * ```
 */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

/**
 * Renders the status page.
 *
 * @param data Name, clusters, connection count, uptime, clock.
 *
 * @example A hostile cluster name is shown as text
 * ```ts
 * import { renderStatusPage } from "./status_page.ts";
 * import assert from "node:assert/strict";
 *
 * const html = renderStatusPage({
 *   serverName: "Sustenet",
 *   connections: 1,
 *   uptimeS: 5,
 *   now: 2_000,
 *   clusters: [{
 *     id: 1 as never,
 *     name: "<script>alert(1)</script>",
 *     host: "127.0.0.1",
 *     port: 6257,
 *     load: 3,
 *     maxConnections: 10,
 *     keyVersion: 1,
 *     publicKey: new Uint8Array(32),
 *     keyName: "k",
 *     registeredAt: 0,
 *     lastHeartbeat: 1_000,
 *   }],
 * });
 * assert.ok(html.includes("&lt;script&gt;alert(1)&lt;/script&gt;"));
 * assert.ok(!html.includes("<script>"));
 * assert.ok(html.includes('<meta http-equiv="refresh" content="2">'));
 * ```
 */
export function renderStatusPage(data: StatusPageData): string {
  const rows = data.clusters.map((c) => {
    const capacity = c.maxConnections === 0 ? "∞" : String(c.maxConnections);
    const percent = c.maxConnections === 0
      ? ""
      : ` (${Math.round((c.load / c.maxConnections) * 100)}%)`;
    const ago = Math.max(0, Math.round((data.now - c.lastHeartbeat) / 100) / 10);
    return `<tr><td>${c.id}</td><td>${escapeHtml(c.name)}</td>` +
      `<td>${escapeHtml(c.host)}:${c.port}</td><td>${c.load} / ${capacity}${percent}</td>` +
      `<td>${c.keyVersion}</td><td>${ago} s ago</td></tr>`;
  });
  const body = rows.length === 0
    ? `<p>No cluster is registered.</p>`
    : `<table><thead><tr><th>id</th><th>name</th><th>address</th><th>load</th>` +
      `<th>key version</th><th>last heartbeat</th></tr></thead><tbody>\n${
        rows.join("\n")
      }\n</tbody></table>`;
  const title = escapeHtml(data.serverName);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="2">
<title>${title} — master status</title>
<style>
body { font: 14px system-ui, sans-serif; margin: 2em; }
table { border-collapse: collapse; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.8em; text-align: left; }
</style>
</head>
<body>
<h1>${title} — master</h1>
<p>${data.clusters.length} cluster(s), ${data.connections} connection(s), up ${
    Math.floor(data.uptimeS)
  } s.</p>
${body}
</body>
</html>
`;
}
