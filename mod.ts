// This module is browser compatible.
/**
 * Sustenet for Deno: networking for MMOs and large multiplayer games. A master coordinates
 * clusters; clients ask the master for a cluster and play on it; game logic runs in plugins.
 *
 * This entry point is the browser-compatible core every other one builds on: the plugin API
 * ({@linkcode definePlugin}), logging ({@linkcode setupLogging}), {@linkcode SustenetError}, the
 * wire protocol's codec, and the client's side of the security (identity and ephemeral keys,
 * session keys, sealed records on WebCrypto). It loads in a web page as it does in Deno. The
 * other entry points: `@sustenet/sustenet/browser` (the core plus the client a web page needs),
 * `/server` (config and key files for operators), and the roles `/master`, `/cluster`,
 * `/client`, `/auth`. docs/EMBEDDING.md ("Public API") says what each holds and why.
 *
 * @example An echo plugin, and the frame a client sends it
 * ```ts
 * import { decodePacket, definePlugin, encodePluginFrame, FrameDecoder } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const ECHO = 0x80;
 * const echo = definePlugin({
 *   commands: [ECHO],
 *   onMessage(ctx, from, command, payload) {
 *     ctx.send(from, command, payload);
 *   },
 * });
 * assert.deepEqual(echo.commands, [ECHO]);
 *
 * const decoder = new FrameDecoder();
 * decoder.push(encodePluginFrame(ECHO, new TextEncoder().encode("hi")));
 * const frame = decoder.next();
 * assert.ok(frame && !(frame instanceof Error));
 * const packet = decodePacket(frame);
 * assert.ok(!(packet instanceof Error) && packet.kind === "Plugin");
 * assert.equal(new TextDecoder().decode(packet.payload), "hi");
 * ```
 *
 * @module
 */
export * from "./shared/mod.ts";
