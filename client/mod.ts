/**
 * The Sustenet client library: connect to a master with {@linkcode SustenetClient}, list its
 * clusters, join one (the cluster key checked against pinned keys, the connection sealed by an
 * ephemeral X25519 handshake and a master-issued ticket) and play through the
 * {@linkcode ClusterSession} it returns. Failures are {@linkcode ClientError}s with a `code`.
 * The sans-I/O handshake machines are exported too, for other transports and engines.
 *
 * Re-exports only; it must never hold logic of its own.
 *
 * @example
 * ```ts ignore
 * import { SustenetClient } from "./mod.ts";
 *
 * await using client = await SustenetClient.connect({ host: "127.0.0.1", port: 6256 });
 * const session = await client.join("auto");
 * session.on("message", ({ command, payload }) => console.log(command, payload.length));
 * session.send(0x80, new TextEncoder().encode("echo me"));
 * ```
 *
 * @module
 */

export * from "./errors.ts";
export * from "./sustenet_client.ts";
// The Deno client (TCP, key files) is the package's SustenetClient; it shadows the portable one.
export { DenoSustenetClient as SustenetClient } from "./deno_sustenet_client.ts";
export * from "./connector.ts";
export * from "./tcp_connector.ts";
export * from "./cluster_session.ts";
export * from "./client_plugin.ts";
export * from "./key_pinning.ts";
export * from "./master_session_machine.ts";
export * from "./cluster_session_machine.ts";
export * from "./bot_scenarios.ts";
export * from "./sample_set.ts";
export * from "./bots.ts";
export type { SessionCloseReason, UnhandledFrameEvent } from "./_session_common.ts";
export * from "./auth_client.ts";
