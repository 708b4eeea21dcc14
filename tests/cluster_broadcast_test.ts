import assert from "node:assert/strict";
import type { ClientId } from "../shared/plugin.ts";
import { definePlugin } from "../shared/plugin.ts";
import { playerJoins, type RawClient, startWorld } from "./_raw_client.ts";

const TRIGGER = 0x90;

/**
 * On TRIGGER from a player: broadcast 1 to all, send 2 to the sender, broadcast 3 to all but
 * the sender, broadcast 4 to all — one handler call, so one event-loop turn.
 */
const interleaver = definePlugin({
  onMessage(ctx, from: ClientId, command) {
    if (command !== TRIGGER) return;
    ctx.broadcast(0x91, new Uint8Array([1]));
    ctx.send(from, 0x92, new Uint8Array([2]));
    ctx.broadcast(0x93, new Uint8Array([3]), { except: from });
    ctx.broadcast(0x94, new Uint8Array([4]));
  },
});

async function pluginFrames(client: RawClient, count: number): Promise<number[]> {
  const got: number[] = [];
  while (got.length < count) {
    const packet = await client.expect("Plugin");
    got.push(packet.command);
  }
  return got;
}

for (const broadcastFlushMs of [0, 10, 40]) {
  Deno.test(`broadcasts and direct sends reach each player in the order a plugin made them (broadcast_flush_ms ${broadcastFlushMs})`, async () => {
    await using w = await startWorld({ plugins: [interleaver], broadcastFlushMs });
    const a = await playerJoins(w.master.addr.port, w.cluster.addr.port);
    const b = await playerJoins(w.master.addr.port, w.cluster.addr.port);
    try {
      // Both are players once Authenticate arrived: the cluster admits before answering.
      for (let round = 0; round < 3; round++) {
        a.client.send({ kind: "Plugin", command: TRIGGER, payload: new Uint8Array() });
        assert.deepEqual(await pluginFrames(a.client, 3), [0x91, 0x92, 0x94]);
        assert.deepEqual(await pluginFrames(b.client, 3), [0x91, 0x93, 0x94]);
      }
    } finally {
      await a.client.close();
      await b.client.close();
    }
  });
}
