/**
 * The Colyseus 0.18 baseline server (Node): one room type, "relay", whose only handler
 * broadcasts every byte message of type 1 to every other client of the room — the same
 * fan-out as the Sustenet relay plugin. Run by `bench/main.ts` as
 * `node bench/colyseus/server.mjs --port <port>`; prints
 * `colyseus listening on 127.0.0.1:<port>` when ready and stops on SIGTERM.
 *
 * It must never listen beyond loopback.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { Room, Server } from "@colyseus/core";
import { WebSocketTransport } from "@colyseus/ws-transport";

/** Relays byte messages of type 1 to everyone but the sender. */
class RelayRoom extends Room {
  onCreate() {
    this.maxClients = 100_000;
    this.autoDispose = false;
    this.onMessageBytes(1, (client, message) => {
      this.broadcastBytes(1, message, { except: client });
    });
  }
}

const { values } = parseArgs({
  options: { port: { type: "string", default: "2567" } },
});
const port = Number(values.port);
const server = new Server({
  transport: new WebSocketTransport(),
  greet: false,
});
server.define("relay", RelayRoom);
await server.listen(port, "127.0.0.1");
console.log(`colyseus listening on 127.0.0.1:${port}`);

const stop = async () => {
  await server.gracefullyShutdown(false);
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
