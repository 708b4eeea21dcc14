/**
 * The HTTP status endpoint every server runs (`Deno.serve`, loopback by default):
 * `/health` (JSON), `/metrics` (Prometheus text) and, where the role provides one, `/` (an
 * HTML page). It never exposes secrets and never accepts writes: GET/HEAD only.
 *
 * @module
 */
import { type MetricFamily, PROMETHEUS_CONTENT_TYPE, renderPrometheus } from "./metrics.ts";

/** Options of {@linkcode startStatusServer}. */
export interface StatusServerOptions {
  /** Address to bind. @default {"127.0.0.1"} */
  readonly hostname?: string;
  /** Port; 0 lets the OS choose. */
  readonly port: number;
  /** Returns the `/health` JSON body. */
  readonly health: () => Readonly<Record<string, unknown>>;
  /** Metric families rendered on `/metrics`. */
  readonly metrics: () => Iterable<MetricFamily>;
  /** Returns the HTML of `/`; absent = 404. */
  readonly page?: () => string;
}

/** A running status server. */
export interface StatusServer {
  /** The bound address (real port when 0 was asked). */
  readonly addr: { readonly hostname: string; readonly port: number };
  /** Stops listening and waits for in-flight requests. */
  close(): Promise<void>;
}

/**
 * Starts the status HTTP server.
 *
 * @example
 * ```ts
 * import { startStatusServer } from "./status_server.ts";
 * import { Counter } from "./metrics.ts";
 * import assert from "node:assert/strict";
 *
 * const c = new Counter("demo_total", "Demo");
 * const s = startStatusServer({ port: 0, health: () => ({ ok: true }), metrics: () => [c] });
 * const res = await fetch(`http://127.0.0.1:${s.addr.port}/health`);
 * assert.deepEqual(await res.json(), { ok: true });
 * await s.close();
 * ```
 */
export function startStatusServer(options: StatusServerOptions): StatusServer {
  const server = Deno.serve({
    hostname: options.hostname ?? "127.0.0.1",
    port: options.port,
    onListen: () => {},
  }, (req) => handle(req, options));
  const addr = server.addr as Deno.NetAddr;
  return {
    addr: { hostname: addr.hostname, port: addr.port },
    close: () => server.shutdown(),
  };
}

function handle(req: Request, options: StatusServerOptions): Response {
  if (req.method !== "GET" && req.method !== "HEAD") {
    return new Response("method not allowed\n", { status: 405, headers: { allow: "GET, HEAD" } });
  }
  const path = new URL(req.url).pathname;
  switch (path) {
    case "/health":
      return Response.json(options.health(), { headers: { "cache-control": "no-store" } });
    case "/metrics":
      return new Response(renderPrometheus(options.metrics()), {
        headers: { "content-type": PROMETHEUS_CONTENT_TYPE, "cache-control": "no-store" },
      });
    case "/":
      if (options.page) {
        return new Response(options.page(), {
          headers: { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" },
        });
      }
  }
  return new Response("not found\n", { status: 404 });
}
