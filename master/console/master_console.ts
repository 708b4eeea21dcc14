/**
 * The master's console on its status server (`/`): totals (clusters, players, joins/s,
 * errors), each cluster with its load bar against capacity, heartbeat age, key version, and
 * draining state, charts of players, joins and traffic over the last minutes (a ring of one
 * sample a second kept here), live over server-sent events; and the master's own operator
 * action behind the admin token: drain a cluster (no new tickets for it; its players stay).
 * Player-level actions (kick, notice, plugin restart) are served by each cluster's own page.
 *
 * Every value a peer chose (cluster names, hosts) reaches the page as JSON and is put in the
 * DOM as text by the page's script; the HTML carries no data.
 *
 * @module
 */
import type { AdminAuth } from "../../shared/admin_auth.ts";
import {
  CONSOLE_HEADERS,
  type ConsoleAction,
  ConsoleSite,
  json,
  viewRefused,
} from "../../shared/console_http.ts";
import type { ClusterInfo, PluginSummary } from "../../shared/protocol/packets.ts";
import type { Logger } from "../../shared/logging.ts";
import { SampleRing } from "../../shared/sample_ring.ts";
import { MASTER_CONSOLE_HTML, MASTER_CONSOLE_JS } from "./master_console_page.ts";

/** One cluster row of the console: what SendClusters lists of it, and its registry state. */
export interface ConsoleCluster
  extends
    Pick<ClusterInfo, "id" | "name" | "host" | "port" | "load" | "maxConnections" | "keyVersion"> {
  /** Milliseconds since its last heartbeat. */
  readonly heartbeatAgeMs: number;
  /** Milliseconds since it registered. */
  readonly registeredForMs: number;
  /** Whether an operator drains it (no new players are sent to it). */
  readonly draining: boolean;
  /** The cluster's own page (its `status_page_url`), or null when it did not say. */
  readonly pageUrl: string | null;
  /** The cluster's plugins and their state (ClusterPlugins); empty until it says. */
  readonly plugins: readonly PluginSummary[];
}

/** Counters the console turns into rates. */
export interface MasterCounters {
  readonly ticketsIssued: number;
  readonly joinsRefused: number;
  readonly registrationFailures: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
}

/** What the console reads from and does to the running master. */
export interface MasterConsoleSource {
  readonly serverName: string;
  uptimeMs(): number;
  connections(): number;
  clusters(): readonly ConsoleCluster[];
  counters(): MasterCounters;
  eventLoopLagMaxMs(): number;
  /** Drains (or undrains) a cluster; false if there is none with this id. */
  drain(id: number, on: boolean): boolean;
  /** The HTML of `/status`, a table without script for text browsers and scripts. */
  plainPage?(): string;
}

/** One point of the charts. */
export interface MasterSample {
  readonly t: number;
  readonly players: number;
  readonly joinsPerS: number;
  readonly errorsPerS: number;
  readonly bytesInPerS: number;
  readonly bytesOutPerS: number;
}

/** What `/api/state` sends. */
export interface MasterConsoleState {
  readonly name: string;
  readonly uptimeMs: number;
  readonly totals: {
    readonly clusters: number;
    readonly players: number;
    readonly capacity: number | null;
    readonly connections: number;
    readonly joinsPerS: number;
    readonly ticketsIssued: number;
    readonly errors: number;
  };
  readonly clusters: readonly ConsoleCluster[];
  readonly eventLoopLagMaxMs: number;
  readonly samples: readonly MasterSample[];
}

const SAMPLES = 300;

/**
 * The master console: routes for the status server and the once-a-second sampler.
 *
 * @example
 * ```ts
 * import { MasterConsole } from "./master_console.ts";
 * import { AdminAuth } from "../../shared/admin_auth.ts";
 * import { roleLogger } from "../../shared/logging.ts";
 * import assert from "node:assert/strict";
 *
 * const console_ = new MasterConsole({
 *   serverName: "master",
 *   uptimeMs: () => 1000,
 *   connections: () => 3,
 *   clusters: () => [],
 *   counters: () => ({
 *     ticketsIssued: 4, joinsRefused: 1, registrationFailures: 0, bytesIn: 0, bytesOut: 0,
 *   }),
 *   eventLoopLagMaxMs: () => 2,
 *   drain: () => false,
 * }, await AdminAuth.create({ token: null }), roleLogger("master"));
 * const state = console_.state();
 * assert.equal(state.totals.errors, 1);
 * const url = new URL("http://x/api/clusters/9/drain");
 * const res = await console_.routes(new Request(url, { method: "POST" }), url, "127.0.0.1:1");
 * assert.equal(res?.status, 403); // no admin token configured: actions are disabled
 * console_.close();
 * ```
 */
export class MasterConsole {
  readonly #source: MasterConsoleSource;
  readonly #auth: AdminAuth;
  readonly #ring = new SampleRing<MasterSample>(SAMPLES);
  readonly #site: ConsoleSite<MasterConsoleState>;
  #last: (MasterCounters & { t: number }) | undefined;

  /**
   * @param source The running master.
   * @param auth Who may view and act.
   * @param logger Where actions are logged.
   */
  constructor(source: MasterConsoleSource, auth: AdminAuth, logger: Logger) {
    this.#source = source;
    this.#auth = auth;
    this.#site = new ConsoleSite({
      auth,
      logger,
      html: MASTER_CONSOLE_HTML,
      script: { path: "/master.js", body: MASTER_CONSOLE_JS },
      state: () => this.state(),
      sample: () => this.#sample(),
      action: (path) => this.#action(path),
      views: { "/status": (request) => this.#plainPage(request) },
    });
    this.routes = this.#site.routes;
  }

  #sample(): void {
    const now = Date.now();
    const c = this.#source.counters();
    const last = this.#last;
    const dt = last === undefined ? 1 : Math.max(0.001, (now - last.t) / 1000);
    const rate = (pick: (x: MasterCounters) => number) =>
      last === undefined ? 0 : Math.round(((pick(c) - pick(last)) / dt) * 10) / 10;
    this.#ring.push({
      t: now,
      players: this.#source.clusters().reduce((sum, x) => sum + x.load, 0),
      joinsPerS: rate((x) => x.ticketsIssued),
      errorsPerS: rate((x) => x.joinsRefused + x.registrationFailures),
      bytesInPerS: rate((x) => x.bytesIn),
      bytesOutPerS: rate((x) => x.bytesOut),
    });
    this.#last = { ...c, t: now };
  }

  /** The state now. */
  state(): MasterConsoleState {
    const clusters = this.#source.clusters();
    const c = this.#source.counters();
    const samples = this.#ring.toArray();
    const unlimited = clusters.some((x) => x.maxConnections === 0);
    return {
      name: this.#source.serverName,
      uptimeMs: this.#source.uptimeMs(),
      totals: {
        clusters: clusters.length,
        players: clusters.reduce((sum, x) => sum + x.load, 0),
        capacity: unlimited ? null : clusters.reduce((sum, x) => sum + x.maxConnections, 0),
        connections: this.#source.connections(),
        joinsPerS: samples.at(-1)?.joinsPerS ?? 0,
        ticketsIssued: c.ticketsIssued,
        errors: c.joinsRefused + c.registrationFailures,
      },
      clusters,
      eventLoopLagMaxMs: this.#source.eventLoopLagMaxMs(),
      samples,
    };
  }

  /** Stops the sampler and ends the live streams. */
  close(): void {
    this.#site.close();
  }

  /** The status server's `routes`. */
  readonly routes: (request: Request, url: URL, remote: string) => Promise<Response | null>;

  async #plainPage(request: Request): Promise<Response | null> {
    if (this.#source.plainPage === undefined) return null;
    if (!await this.#auth.canView(request)) return viewRefused();
    // No script at all here; only its own inline stylesheet is allowed.
    return new Response(this.#source.plainPage(), {
      headers: {
        ...CONSOLE_HEADERS,
        "content-security-policy":
          "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        "content-type": "text/html; charset=utf-8",
      },
    });
  }

  #action(path: string): ConsoleAction | null {
    const drain = /^\/api\/clusters\/(\d{1,10})\/drain$/.exec(path);
    if (drain === null) return null;
    return {
      what: `drain cluster ${drain[1]}`,
      run: (body) => {
        const on = body.on !== false;
        return this.#source.drain(Number(drain[1]), on)
          ? json({ ok: true, draining: on })
          : json({ error: "not_found", message: `no cluster with id ${drain[1]}` }, 404);
      },
    };
  }
}
