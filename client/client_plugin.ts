// This module is browser compatible.
/**
 * The client plugin hook (the Rust crate's `ClientPlugin` with `receive_master` /
 * `receive_cluster`): frames from the master or a cluster that the client library does not
 * handle itself (a packet not expected in the current state, an undecodable or future packet
 * type) are offered to each plugin in order; the first that returns `true` takes the frame.
 * A frame no plugin takes fails the connection, as the protocol requires.
 *
 * It must never be called for the frames the library handles (handshakes, game traffic), so a
 * plugin cannot weaken the handshake.
 *
 * @module
 */

import type { Frame } from "../shared/protocol/frame.ts";
import type { Packet } from "../shared/protocol/packets.ts";
import { roleLogger } from "../shared/logging.ts";

const logger = roleLogger("client", "plugins");

/**
 * A client plugin: optional hooks for frames the library does not handle.
 *
 * @example A plugin that takes every unexpected frame from the master
 * ```ts
 * import type { ClientPlugin } from "./client_plugin.ts";
 * import assert from "node:assert/strict";
 *
 * const seen: number[] = [];
 * const plugin: ClientPlugin = {
 *   receiveMaster(frame) {
 *     seen.push(frame.type);
 *     return true;
 *   },
 * };
 * assert.equal(plugin.receiveMaster?.({ type: 0x06, payload: new Uint8Array() }, undefined), true);
 * assert.deepEqual(seen, [0x06]);
 * ```
 */
export interface ClientPlugin {
  /**
   * A frame from the master the library does not handle.
   *
   * @param frame The frame; its payload is a view valid only during this call (copy to keep).
   * @param packet The decoded packet, or `undefined` if it does not decode.
   * @returns `true` if the plugin took the frame.
   */
  receiveMaster?(frame: Frame, packet: Packet | undefined): boolean | void;
  /**
   * A frame from a cluster the library does not handle.
   *
   * @param frame The frame; its payload is a view valid only during this call (copy to keep).
   * @param packet The decoded packet, or `undefined` if it does not decode.
   * @returns `true` if the plugin took the frame.
   */
  receiveCluster?(frame: Frame, packet: Packet | undefined): boolean | void;
}

/**
 * Offers a frame to the plugins in order; returns `true` once one takes it. A plugin that
 * throws is logged and counts as not taking the frame.
 *
 * @param plugins The client's plugins.
 * @param from Which hook to call.
 * @param frame The frame.
 * @param packet The decoded packet, if any.
 *
 * @example
 * ```ts
 * import { offerToPlugins } from "./client_plugin.ts";
 * import assert from "node:assert/strict";
 *
 * const frame = { type: 0x06, payload: new Uint8Array() };
 * assert.equal(offerToPlugins([], "cluster", frame, undefined), false);
 * assert.equal(offerToPlugins([{ receiveCluster: () => true }], "cluster", frame, undefined), true);
 * assert.equal(offerToPlugins([{ receiveMaster: () => true }], "cluster", frame, undefined), false);
 * ```
 */
export function offerToPlugins(
  plugins: readonly ClientPlugin[],
  from: "master" | "cluster",
  frame: Frame,
  packet: Packet | undefined,
): boolean {
  for (const plugin of plugins) {
    try {
      const taken = from === "master"
        ? plugin.receiveMaster?.(frame, packet)
        : plugin.receiveCluster?.(frame, packet);
      if (taken === true) return true;
    } catch (error) {
      logger.error("client plugin failed on a {from} frame of type {type}: {error}", {
        from,
        type: frame.type,
        error,
      });
    }
  }
  return false;
}
