/**
 * The live browser page (`demo.html`, `demo.js`, the library's bundle `sustenet.js` and the
 * page's `config.json`) as routes any `Deno.serve` handler can answer from: the demo's web
 * server serves only these, and a cluster's WebSocket listener serves them beside its upgrade
 * path when `ws_page` is on. The bundle is made once, by `deno bundle`, when the page starts;
 * requests that come before it is ready wait for it.
 *
 * It must never serve anything but the five paths it names (no file system lookup by path,
 * so no traversal), and never answers a request it does not serve (the caller's 404 stays).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { bundleBrowserModule } from "./bundle.ts";
import { DEFAULT_WS_PORTS, type SustenetConfig } from "../shared/config_types.ts";
import { parseHostPort } from "../shared/config_schema.ts";
import type { WebSocketServerOptions } from "../shared/websocket_listener.ts";

const logger = getLogger(["sustenet", "system", "page"]);

/**
 * Options of {@linkcode startLivePage}, what the page's `config.json` tells the page: the
 * master's WebSocket URL, the fragment size (default 64) and the cluster to join by name (the
 * master's choice when absent or not listed; a cluster serving the page names itself). Declared
 * with the listener's `page` option, which the public API shows.
 */
export type LivePageOptions = NonNullable<WebSocketServerOptions["page"]>;

/**
 * The live page a cluster serves under `ws_page = true`: it joins through
 * `ws_page_master_url`, or when that is unset through `ws://<master>:6290<ws_path>` — the
 * master's address (`master_addresses`' first, else `master_ip`), the master's default
 * WebSocket port and this file's `ws_path` (`wss://` when `tls_cert` is set: a page served over
 * https may only open `wss://`). The page joins this cluster (`server_name`) and draws its
 * fragment grid (`[cluster.fragments] size`).
 *
 * @param config A validated config.
 * @returns The page's options.
 *
 * @example
 * ```ts
 * import { livePageOptionsFromConfig } from "./live_page.ts";
 * import { parseConfig } from "../shared/config_schema.ts";
 * import assert from "node:assert/strict";
 *
 * const derived = parseConfig('[all]\nserver_name = "eu-1"\n[cluster]\nmaster_ip = "10.0.0.5"');
 * assert.deepEqual(livePageOptionsFromConfig(derived), {
 *   masterUrl: "ws://10.0.0.5:6290/sustenet",
 *   fragmentSize: 64,
 *   clusterName: "eu-1",
 * });
 * const named = parseConfig('[cluster]\nws_page_master_url = "wss://game.example/sustenet"');
 * assert.equal(livePageOptionsFromConfig(named).masterUrl, "wss://game.example/sustenet");
 * ```
 */
export function livePageOptionsFromConfig(config: SustenetConfig): LivePageOptions {
  const { all, cluster } = config;
  const first = cluster.masterAddresses[0];
  const host = first === undefined
    ? cluster.masterIp
    : parseHostPort(first)?.hostname ?? cluster.masterIp;
  const scheme = all.tlsCert === "" ? "ws" : "wss";
  const hostText = host.includes(":") ? `[${host}]` : host; // an IPv6 address in a URL
  return {
    masterUrl: cluster.wsPageMasterUrl ??
      `${scheme}://${hostText}:${DEFAULT_WS_PORTS.master}${all.wsPath}`,
    fragmentSize: cluster.fragments.size,
    clusterName: all.serverName,
  };
}

/** The content types of the page's files (`/index.html` is `/`; LIVE_PAGE_PATHS lists both). */
const TYPES: ReadonlyMap<string, string> = new Map([
  ["/", "text/html; charset=utf-8"],
  ["/demo.js", "text/javascript; charset=utf-8"],
  ["/sustenet.js", "text/javascript; charset=utf-8"],
  ["/config.json", "application/json"],
]);

/**
 * The live page's routes, made by {@linkcode startLivePage}.
 *
 * @example
 * ```ts ignore
 * import { startLivePage } from "./live_page.ts";
 *
 * await using page = startLivePage({ masterUrl: "ws://127.0.0.1:6290/sustenet" });
 * Deno.serve((request) => page.respond(request) ?? new Response("not found", { status: 404 }));
 * ```
 */
export interface LivePage extends AsyncDisposable {
  /** Settles when the bundle is made (rejects with the reason if `deno bundle` failed). */
  readonly ready: Promise<void>;
  /**
   * The page's answer to `request`, or undefined when the page does not serve its path or
   * method (only GET is served). Waits for the bundle; 503 if it could not be made.
   */
  respond(request: Request): Promise<Response> | undefined;
  /** Stops a bundle still being made (its `deno bundle` is killed) and waits for it. */
  close(): Promise<void>;
}

/**
 * Starts making the live page: reads `demo.html` and `demo.js` and bundles the library with
 * `deno bundle` (0.6–0.8 s on a loaded 2-core machine), in the background. Needs the package
 * as local files and the permission to run `Deno.execPath()` (`--allow-run`).
 *
 * @param options What the page's `config.json` holds.
 * @returns The page; `respond` works at once and waits for `ready` itself.
 *
 * @example
 * ```ts ignore
 * import { startLivePage } from "./live_page.ts";
 * import assert from "node:assert/strict";
 *
 * await using page = startLivePage({ masterUrl: "ws://127.0.0.1:6290/sustenet" });
 * const config = await page.respond(new Request("http://127.0.0.1/config.json"))!;
 * assert.equal((await config.json()).masterUrl, "ws://127.0.0.1:6290/sustenet");
 * assert.equal(page.respond(new Request("http://127.0.0.1/keys/cluster_key")), undefined);
 * ```
 */
export function startLivePage(options: LivePageOptions): LivePage {
  const abort = new AbortController();
  const config = JSON.stringify({
    masterUrl: options.masterUrl,
    fragmentSize: options.fragmentSize ?? 64,
    ...(options.clusterName === undefined ? {} : { clusterName: options.clusterName }),
  });
  const startedAt = performance.now();
  const ready = loadFiles(config, abort.signal).then((loaded) => {
    logger.debug("live page ready in {ms} ms (bundle {bytes} bytes)", {
      ms: Math.round(performance.now() - startedAt),
      bytes: loaded.get("/sustenet.js")?.length ?? 0,
    });
    return loaded;
  });
  let failure: string | undefined;
  // Logged once here; requests get a 503 naming it. A page stopped while bundling is no failure.
  const settled = ready.then(() => {}, (error: unknown) => {
    if (abort.signal.aborted) return;
    failure = error instanceof Error ? error.message : String(error);
    logger.error("the live page is unavailable: {error}", { error });
  });
  let closing: Promise<void> | undefined;
  const close = () =>
    closing ??= (() => {
      abort.abort();
      return settled;
    })();
  return {
    // A getter: a fresh promise per reader, so a failure nobody asked about is no unhandled
    // rejection (it is logged by `settled`).
    get ready(): Promise<void> {
      return ready.then(() => {});
    },
    respond(request: Request): Promise<Response> | undefined {
      const asked = new URL(request.url).pathname;
      const path = asked === "/index.html" ? "/" : asked;
      const type = TYPES.get(path);
      if (type === undefined || request.method !== "GET") return undefined;
      return settled.then(async () => {
        if (failure !== undefined || abort.signal.aborted) {
          return new Response("the live page is unavailable (see the server's log)\n", {
            status: 503,
          });
        }
        const body = (await ready).get(path)!;
        return new Response(body as BodyInit, {
          headers: { "content-type": type, "cache-control": "no-store" },
        });
      });
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** The page's files by path: the two static ones, the fresh bundle and `config`. */
async function loadFiles(
  config: string,
  signal: AbortSignal,
): Promise<Map<string, Uint8Array | string>> {
  // From deno bundle's stdout: no temporary file (`deno task cluster` may write only keys/).
  const bundle = await bundleBrowserModule({ signal });
  return new Map<string, Uint8Array | string>([
    ["/", await Deno.readFile(new URL("./demo.html", import.meta.url))],
    ["/demo.js", await Deno.readFile(new URL("./demo.js", import.meta.url))],
    ["/sustenet.js", bundle],
    ["/config.json", config],
  ]);
}
