// This module is browser compatible.
/**
 * How a peer is named in log lines and on the operator console: `host:port` for IP peers, the
 * transport's kind otherwise.
 *
 * @module
 */

import type { PeerAddress } from "./frame_session.ts";

/**
 * Names a peer for a log line.
 *
 * @param addr The peer's address (a connection's `remoteAddr`).
 * @returns `hostname:port` for TCP (and WebSocket) peers, else the transport's kind.
 *
 * @example
 * ```ts
 * import { peerLabel } from "./peer_label.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(peerLabel({ transport: "tcp", hostname: "127.0.0.1", port: 6257 }), "127.0.0.1:6257");
 * assert.equal(peerLabel({ transport: "unix", hostname: "", port: 0 }), "unix");
 * ```
 */
export function peerLabel(addr: PeerAddress): string {
  return addr.transport === "tcp" ? `${addr.hostname}:${addr.port}` : addr.transport;
}
