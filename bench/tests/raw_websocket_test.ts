import assert from "node:assert/strict";
import { RawWebSocket } from "../raw_websocket.ts";

Deno.test("RawWebSocket: a server's close ends the reads, and close() then frees the socket", async () => {
  const closedByServer = Promise.withResolvers<void>();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const { socket, response } = Deno.upgradeWebSocket(req);
    socket.onopen = () => {
      socket.send(new Uint8Array([9, 8, 7]));
      socket.close(1000, "bye");
    };
    socket.onclose = () => closedByServer.resolve();
    return response;
  });
  const stream = await RawWebSocket.connect(`ws://127.0.0.1:${server.addr.port}/`);
  const buffer = new Uint8Array(16);
  const n = await stream.read(buffer);
  assert.deepEqual([...buffer.subarray(0, n ?? 0)], [9, 8, 7]);
  assert.equal(await stream.read(buffer), null);
  stream.close();
  await closedByServer.promise;
  await server.shutdown();
});
