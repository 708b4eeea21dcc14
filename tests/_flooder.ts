/**
 * A flooding player in its own process, so a test's bystander measures the cluster and not a
 * client process busy sealing the flood: `deno run -A tests/_flooder.ts <masterPort>
 * <clusterPort> <payloadBytes> <maxMs>`. It joins with a master ticket, prints `flooding`, sends
 * plugin command 0x80 as fast as its queue allows until the cluster closes the connection or
 * `maxMs` pass, then prints one JSON line: frames, bytes, seconds and the DisconnectCluster
 * reason (null if the socket ended first).
 *
 * Test code only; it only ever connects to 127.0.0.1.
 *
 * @module
 */

import { encodePacket } from "../shared/protocol/codec.ts";
import { playerJoins } from "./_raw_client.ts";

const [masterPort, clusterPort, payloadBytes, maxMs] = Deno.args.map(Number);
const { client } = await playerJoins(masterPort, clusterPort);
const frame = encodePacket({
  kind: "Plugin",
  command: 0x80,
  payload: new Uint8Array(payloadBytes),
});
const connection = client.connection;
console.log("flooding");
const started = performance.now();
let frames = 0;
while (connection.isOpen && performance.now() - started < maxMs) {
  while (connection.isOpen && connection.queuedBytes < 256 * 1024) {
    connection.send(frame);
    frames++;
  }
  await new Promise((resolve) => setTimeout(resolve, 1));
}
const seconds = (performance.now() - started) / 1000;
let reason: string | null = null;
try {
  for (;;) {
    const packet = await client.next(5000);
    if (packet.kind === "DisconnectCluster") {
      reason = packet.reason;
      break;
    }
  }
} catch (error) {
  // The socket may end (a reset from our unread flood) before a DisconnectCluster: reason null.
  if (connection.isOpen) throw error;
}
await client.close();
console.log(JSON.stringify({ frames, bytes: frames * frame.length, seconds, reason }));
