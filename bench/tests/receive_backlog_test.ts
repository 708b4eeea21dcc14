import assert from "node:assert/strict";
import { type BacklogFigures, ReceiveBacklogSampler } from "../receive_backlog.ts";

/**
 * A peer in another process: connects, sends `bytes`, reads nothing, and stays until its
 * stdin closes. The sockets of this test's process are the "generator's".
 */
function unreadingPeer(port: number, bytes: number): Deno.ChildProcess {
  const code = `const c = await Deno.connect({ hostname: "127.0.0.1", port: ${port} });
await c.write(new Uint8Array(${bytes}).fill(7));
for await (const _ of Deno.stdin.readable) {}
c.close();`;
  return new Deno.Command(Deno.execPath(), {
    args: ["eval", code],
    stdin: "piped",
    stdout: "null",
    stderr: "inherit",
  }).spawn();
}

/** Windows of the sampler until one saw `accept` (bounded in count, not in time). */
async function sampleUntil(
  sampler: ReceiveBacklogSampler,
  accept: (figures: BacklogFigures) => boolean,
): Promise<BacklogFigures> {
  let last: BacklogFigures | undefined;
  for (let i = 0; i < 200; i++) {
    sampler.start();
    await new Promise((resolve) => setTimeout(resolve, 100));
    last = sampler.finish();
    if (last !== undefined && accept(last)) return last;
  }
  assert.fail(`never sampled as expected: ${JSON.stringify(last)}`);
}

Deno.test({
  name:
    "bytes this process leaves unread count as its backlog; bytes its peer leaves unread, as the peer's",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const peer = unreadingPeer(listener.addr.port, 40_000);
    const conn = await listener.accept();
    listener.close();
    const sampler = new ReceiveBacklogSampler();
    try {
      // The peer's 40,000 bytes wait in our socket: ours, and nothing in the peer's.
      const own = await sampleUntil(sampler, (f) => f.generatorMaxBytes >= 40_000);
      assert.equal(own.generatorMaxBytes, 40_000);
      assert.equal(own.serverMaxBytes, 0);

      // We read them; then we send 30,000 the peer never reads: the wait moved to the peer.
      const buffer = new Uint8Array(65_536);
      let read = 0;
      while (read < 40_000) read += (await conn.read(buffer)) ?? assert.fail("peer closed");
      await conn.write(new Uint8Array(30_000));
      const theirs = await sampleUntil(
        sampler,
        (f) => f.serverMaxBytes >= 30_000 && f.generatorMaxBytes === 0,
      );
      assert.equal(theirs.serverMaxBytes, 30_000);
      assert.ok(theirs.samples >= 1);
    } finally {
      sampler.stop();
      conn.close();
      await peer.stdin.close();
      await peer.status;
    }
  },
});
