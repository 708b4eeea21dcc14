/**
 * Headless Chromium for tests: Debian's `/usr/bin/chromium` driven by playwright-core with the
 * flags CI uses, and a static file server on 127.0.0.1 (a secure context, so WebCrypto X25519
 * is available to the page).
 */
import { type Browser, chromium } from "playwright-core";

/** Where CI and this machine install Chromium (Debian's `chromium` package). */
export const CHROMIUM_PATH = "/usr/bin/chromium";

/**
 * Launches headless Chromium with no network access beyond what the page asks for.
 *
 * @param extraArgs More Chromium flags (e.g. a pinned server key for a wss test).
 */
export async function launchChromium(extraArgs: readonly string[] = []): Promise<Browser> {
  return await chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
      ...extraArgs,
    ],
  });
}

/** A static HTTP server on 127.0.0.1 and an OS-picked port. */
export interface StaticServer extends AsyncDisposable {
  /** `http://127.0.0.1:<port>/`. */
  readonly url: string;
}

/** Serves `files` (path → body) with their content types; anything else is a 404. */
export function serveStatic(files: ReadonlyMap<string, string | Uint8Array>): StaticServer {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
    const path = new URL(request.url).pathname;
    const body = files.get(path);
    if (body === undefined) return new Response("not found", { status: 404 });
    const type = path.endsWith(".js")
      ? "text/javascript; charset=utf-8"
      : path.endsWith(".html") || path === "/"
      ? "text/html; charset=utf-8"
      : "application/octet-stream";
    return new Response(body as BodyInit, { headers: { "content-type": type } });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}/`,
    async [Symbol.asyncDispose]() {
      await server.shutdown();
    },
  };
}
