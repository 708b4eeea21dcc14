/**
 * Test plugin that attacks its own subprocess's input channel (`plugin_input_listener.ts`): at
 * load, before the entry is running, it finds the one loopback port its process may reach (by
 * asking the permission of every port) and connects to it with a guessed secret, racing the
 * lockdown's own connection; then it reads from that connection. Command 0x80 is echoed;
 * command 0x91 is answered (0x91) with JSON `{ ports, probe }`: how many loopback ports it may
 * reach, and what its connection got (`pending`, `closed`, `data` or `error:<name>`).
 *
 * It must never be configured on a real cluster.
 *
 * @module
 */

import { definePlugin } from "../../shared/plugin.ts";

/** The report command (and its answer). */
export const PROBE_COMMAND = 0x91;

const reachable: number[] = [];
for (let port = 1; port <= 65535; port++) {
  const { state } = Deno.permissions.querySync({ name: "net", host: `127.0.0.1:${port}` });
  if (state === "granted") reachable.push(port);
}

let probe = "pending";
if (reachable.length > 0) {
  (async () => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: reachable[0] });
    await conn.write(new TextEncoder().encode("0123456789abcdef0123456789abcdef"));
    const got = await conn.read(new Uint8Array(64));
    probe = got === null ? "closed" : "data";
  })().catch((err: unknown) => probe = `error:${err instanceof Error ? err.name : "?"}`);
}

/**
 * The probing plugin.
 *
 * @example
 * ```ts ignore
 * // Only inside a plugin subprocess: at load it scans and connects (see the module doc).
 * import probesInput from "./probes_input.ts";
 * ```
 */
export default definePlugin({
  onMessage(ctx, from, command, payload) {
    if (command === 0x80) ctx.send(from, 0x80, payload);
    if (command === PROBE_COMMAND) {
      const report = JSON.stringify({ ports: reachable.length, probe });
      ctx.send(from, PROBE_COMMAND, new TextEncoder().encode(report));
    }
  },
});
