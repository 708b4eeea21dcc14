/**
 * Example plugin: the message of the day. On start it reads the text file `settings.path`
 * and sends its text (UTF-8) as command 0x83 to each player who joins. In a Worker it needs
 * read permission on that file or its directory (`permissions = { read = ["/srv/game/motd"] }`);
 * without it the read fails with `NotCapable`, which it logs, and it then greets nobody.
 *
 * It must never fail a join because the file is missing or unreadable.
 *
 * @example
 * ```ts
 * import motd, { MOTD_COMMAND } from "./motd.ts";
 * import { InProcessPluginHost } from "../cluster/in_process_plugin_host.ts";
 * import { asClientId } from "../shared/plugin.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/motd.txt`, "welcome");
 * const greeted: string[] = [];
 * const host = new InProcessPluginHost(motd, {
 *   send: (to, command, payload) => greeted.push(`${to} ${command} ${new TextDecoder().decode(payload)}`),
 *   broadcast() {},
 *   kick() {},
 * }, { name: "motd", settings: { path: `${dir}/motd.txt` } });
 * await host.start();
 * host.join({ clientId: asClientId(4), playerId: "guest-4" });
 * await host.stop();
 * await Deno.remove(dir, { recursive: true });
 * assert.deepEqual(greeted, [`4 ${MOTD_COMMAND} welcome`]);
 * ```
 *
 * @module
 */

import { definePlugin, type PluginContext } from "../shared/plugin.ts";

/**
 * The message of the day, to each joining player.
 *
 * @example
 * ```ts
 * import motd, { MOTD_COMMAND } from "./motd.ts";
 * import { asClientId, createPluginContext } from "../shared/plugin.ts";
 * import assert from "node:assert/strict";
 *
 * const path = await Deno.makeTempFile();
 * await Deno.writeTextFile(path, "Welcome!");
 * const sent: [number, string][] = [];
 * const ctx = createPluginContext({
 *   name: "motd",
 *   settings: { path },
 *   players: () => [],
 *   sink: {
 *     send: (_to, command, payload) => sent.push([command, new TextDecoder().decode(payload)]),
 *     broadcast() {},
 *     kick() {},
 *     log() {},
 *   },
 * });
 * await motd.onStart?.(ctx);
 * motd.onJoin?.(ctx, { clientId: asClientId(1), playerId: "guest-1" });
 * assert.deepEqual(sent, [[MOTD_COMMAND, "Welcome!"]]);
 * await Deno.remove(path);
 * ```
 */
export const MOTD_COMMAND = 0x83;

const encoder = new TextEncoder();
// Per context, so one plugin object can serve several hosts.
const messages = new WeakMap<PluginContext, Uint8Array>();

/**
 * The motd plugin.
 *
 * @example
 * ```ts
 * import motd from "./motd.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(typeof motd.onJoin, "function");
 * ```
 */
export default definePlugin({
  async onStart(ctx) {
    const path = ctx.settings.path;
    if (typeof path !== "string" || path === "") {
      ctx.log.error("settings.path must name the message-of-the-day file; greeting nobody");
      return;
    }
    try {
      messages.set(ctx, encoder.encode(await Deno.readTextFile(path)));
    } catch (err) {
      const what = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
      ctx.log.warning(`cannot read ${path} (${what}); greeting nobody`);
    }
  },
  onJoin(ctx, player) {
    const text = messages.get(ctx);
    if (text !== undefined) ctx.send(player.clientId, MOTD_COMMAND, text);
  },
});
