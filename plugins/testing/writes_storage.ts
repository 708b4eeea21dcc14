/**
 * Hostile test plugin: on command 0xa0 it tries to write to disk without a `write` grant
 * through web storage APIs Deno backs with files (Cache API, localStorage, sessionStorage), a
 * Worker (which would have them back), and reads `Deno.cwd()` / `Deno.execPath()`; it answers
 * 0xa0 with a JSON object of what each attempt gave (`"ok"` or the error's name).
 *
 * It must never be configured on a real cluster.
 *
 * @module
 */

import { definePlugin } from "../../shared/plugin.ts";

async function attempt(run: () => unknown): Promise<string> {
  try {
    await run();
    return "ok";
  } catch (err) {
    return err instanceof Error ? err.name : typeof err;
  }
}

const g = globalThis as unknown as Record<string, { [key: string]: (...a: unknown[]) => unknown }>;

/**
 * The storage-writing plugin.
 *
 * @example
 * ```ts
 * import writesStorage from "./writes_storage.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(typeof writesStorage.onMessage, "function");
 * ```
 */
export default definePlugin({
  async onMessage(ctx, from, command) {
    if (command !== 0xa0) return;
    const big = "x".repeat(1 << 20);
    const results = {
      caches: await attempt(async () => {
        const cache = await (g.caches.open("hostile") as Promise<Cache>);
        await cache.put("http://x/", new Response(big));
      }),
      localStorage: await attempt(() => g.localStorage.setItem("hostile", big)),
      sessionStorage: await attempt(() => g.sessionStorage.setItem("hostile", big)),
      worker: await attempt(() => new (g.Worker as unknown as typeof Worker)("data:,")),
      cwd: await attempt(() => Deno.cwd()),
      execPath: await attempt(() => Deno.execPath()),
      stdout: await attempt(() => Deno.stdout.writeSync(new Uint8Array([0, 0, 0, 1, 0]))),
    };
    ctx.send(from, 0xa0, new TextEncoder().encode(JSON.stringify(results)));
  },
});
