/**
 * The demo's web server: serves the live demo page (`demo.html`, `demo.js`), the library's
 * browser bundle (`sustenet.js`, made by `deno bundle` when the server starts) and the page's
 * `config.json` (the master's WebSocket URL) on 127.0.0.1. 127.0.0.1 is a secure context, so the
 * page has WebCrypto X25519; a page served from a real host needs https and `wss://`.
 *
 * It must never serve a path `live_page.ts` does not name, and binds to loopback only.
 *
 * @module
 */

import { startLivePage } from "./live_page.ts";

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

/**
 * Bundles the library and serves the demo page (the routes of `live_page.ts`, as a cluster
 * with `ws_page` serves them).
 *
 * @param options Where the master is, the fragment size, the port.
 * @returns The running server, once the bundle is made.
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
  const page = startLivePage({ masterUrl: options.masterUrl, fragmentSize: options.fragmentSize });
  try {
    await page.ready;
  } catch (error) {
    await page.close();
    throw error;
  }
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: options.port ?? 0, onListen() {} },
    (request) => page.respond(request) ?? new Response("not found", { status: 404 }),
  );
  const origin = `http://127.0.0.1:${server.addr.port}`;
  let closing: Promise<void> | undefined;
  const close = () => closing ??= server.shutdown().then(() => page.close());
  return { url: `${origin}/`, origin, close, [Symbol.asyncDispose]: close };
}
