/**
 * The HTTP status endpoint every server runs (`Deno.serve`, loopback by default):
 * `/health` (JSON), `/metrics` (Prometheus text) and, where the role provides one, `/` (an
 * HTML page) and more routes (the console, its API and operator actions). It never exposes
 * secrets; only a role's `routes` may accept a POST (operator actions, behind the admin
 * token), with a body of at most {@linkcode MAX_BODY_BYTES}.
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
  /** Returns the HTML of `/`; absent = 404 (unless `routes` answers it). */
  readonly page?: () => string;
  /**
   * Every other request (any method); null = 404 for GET/HEAD, 405 otherwise. `remote` is the
   * peer's address, for the action log.
   */
  readonly routes?: (
    request: Request,
    url: URL,
    remote: string,
  ) => Response | null | Promise<Response | null>;
  /**
   * Most requests handled at once; more get 503 (a flood of console connections stays bounded).
   * @default {64}
   */
  readonly maxConcurrentRequests?: number;
}

/** Largest request body a route may read. */
export const MAX_BODY_BYTES = 4096;

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
  const limit = options.maxConcurrentRequests ?? 64;
  let inFlight = 0;
  const server = Deno.serve({
    hostname: options.hostname ?? "127.0.0.1",
    port: options.port,
    onListen: () => {},
  }, async (req, info) => {
    if (inFlight >= limit) {
      return new Response("busy\n", { status: 503, headers: { "retry-after": "1" } });
    }
    inFlight++;
    try {
      return await handle(req, options, remoteOf(info.remoteAddr));
    } finally {
      inFlight--;
    }
  });
  const addr = server.addr as Deno.NetAddr;
  return {
    addr: { hostname: addr.hostname, port: addr.port },
    close: () => server.shutdown(),
  };
}

function remoteOf(addr: Deno.Addr): string {
  return addr.transport === "tcp" || addr.transport === "udp"
    ? `${addr.hostname}:${addr.port}`
    : addr.transport;
}

async function handle(
  req: Request,
  options: StatusServerOptions,
  remote: string,
): Promise<Response> {
  const url = new URL(req.url);
  const path = url.pathname;
  const isRead = req.method === "GET" || req.method === "HEAD";
  if (!isRead || (path !== "/health" && path !== "/metrics")) {
    const routed = options.routes === undefined ? null : await options.routes(req, url, remote);
    if (routed !== null) return routed;
  }
  if (!isRead) {
    return new Response("method not allowed\n", { status: 405, headers: { allow: "GET, HEAD" } });
  }
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
