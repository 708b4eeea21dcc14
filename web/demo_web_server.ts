/**
 * The demo's web server: serves the live demo page (`demo.html`, `demo.js`), the library's
 * browser bundle (`sustenet.js`, made by `deno bundle` when the server starts) and the page's
 * `config.json` (the master's WebSocket URL) on 127.0.0.1. 127.0.0.1 is a secure context, so the
 * page has WebCrypto X25519; a page served from a real host needs https and `wss://`.
 *
 * It must never serve a file outside the four it names, and binds to loopback only.
 *
 * @module
 */

import { bundleForBrowser } from "./bundle.ts";

/** Options of {@linkcode serveDemoPage}. */
export interface DemoPageOptions {
  /** The master's WebSocket URL, for the page. */
  readonly masterUrl: string;
  /** Side of a fragment in world units (the grid the page draws). */
  readonly fragmentSize: number;
  /**
   * Port to listen on; 0 = any free one.
   *
   * @default {0}
   */
  readonly port?: number;
}

/** A running demo web server. */
export interface DemoPageServer extends AsyncDisposable {
  /** The page's URL, `http://127.0.0.1:<port>/`. */
  readonly url: string;
  /** The page's origin, `http://127.0.0.1:<port>` (for `ws_allowed_origins`). */
  readonly origin: string;
  /** Stops serving. */
  close(): Promise<void>;
}

const TYPES: Readonly<Record<string, string>> = {
  "/": "text/html; charset=utf-8",
  "/demo.js": "text/javascript; charset=utf-8",
  "/sustenet.js": "text/javascript; charset=utf-8",
  "/config.json": "application/json",
};

/**
 * Bundles the library and serves the demo page.
 *
 * @param options Where the master is, the fragment size, the port.
 * @returns The running server.
 * @throws {Error} If bundling fails.
 *
 * @example
 * ```ts ignore
 * import { serveDemoPage } from "./demo_web_server.ts";
 *
 * await using page = await serveDemoPage({
 *   masterUrl: "ws://127.0.0.1:6290/sustenet",
 *   fragmentSize: 64,
 * });
 * console.log(`open ${page.url}`);
 * ```
 */
export async function serveDemoPage(options: DemoPageOptions): Promise<DemoPageServer> {
  const dir = await Deno.makeTempDir({ prefix: "sustenet_demo_page_" });
  let bundle: Uint8Array;
  try {
    await bundleForBrowser(`${dir}/sustenet.js`);
    bundle = await Deno.readFile(`${dir}/sustenet.js`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  const files = new Map<string, Uint8Array | string>([
    ["/", await Deno.readFile(new URL("./demo.html", import.meta.url))],
    ["/demo.js", await Deno.readFile(new URL("./demo.js", import.meta.url))],
    ["/sustenet.js", bundle],
    [
      "/config.json",
      JSON.stringify({ masterUrl: options.masterUrl, fragmentSize: options.fragmentSize }),
    ],
  ]);
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: options.port ?? 0, onListen() {} },
    (request) => {
      const path = new URL(request.url).pathname;
      const body = files.get(path === "/index.html" ? "/" : path);
      if (body === undefined || request.method !== "GET") {
        return new Response("not found", { status: 404 });
      }
      return new Response(body as BodyInit, {
        headers: { "content-type": TYPES[path] ?? TYPES["/"], "cache-control": "no-store" },
      });
    },
  );
  const origin = `http://127.0.0.1:${server.addr.port}`;
  let closing: Promise<void> | undefined;
  const close = () => closing ??= server.shutdown();
  return { url: `${origin}/`, origin, close, [Symbol.asyncDispose]: close };
}
