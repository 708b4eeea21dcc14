import assert from "node:assert/strict";
import { BatchedWriter } from "../batched_writer.ts";

async function pair() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  const server = await listener.accept();
  listener.close();
  return { client, server };
}

async function readExactly(conn: Deno.Conn, n: number): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  let got = 0;
  while (got < n) {
    const r = await conn.read(out.subarray(got));
    if (r === null) break;
    got += r;
  }
  return out.subarray(0, got);
}

Deno.test("a thousand sends in one turn are one write, in order", async () => {
  const { client, server } = await pair();
  const writer = new BatchedWriter(client, { maxQueueBytes: 1 << 20, onFailure: assert.fail });
  for (let i = 0; i < 1000; i++) writer.send(new Uint8Array([i & 0xff]));
  await writer.flushed();
  assert.equal(writer.writes, 1);
  const bytes = await readExactly(server, 1000);
  assert.deepEqual([...bytes], Array.from({ length: 1000 }, (_, i) => i & 0xff));
  client.close();
  server.close();
});

Deno.test("the encoder turns each batch into the written bytes", async () => {
  const { client, server } = await pair();
  const writer = new BatchedWriter(client, {
    maxQueueBytes: 1024,
    onFailure: assert.fail,
    encode: (batch, total, join) => {
      const joined = join(batch, total);
      return Promise.resolve(new Uint8Array([batch.length, ...joined]));
    },
  });
  writer.send(new Uint8Array([7]));
  writer.send(new Uint8Array([8, 9]));
  await writer.flushed();
  assert.deepEqual([...await readExactly(server, 4)], [2, 7, 8, 9]);
  client.close();
  server.close();
});

Deno.test("crossing the queue bound fails once and refuses later sends", async () => {
  const { client, server } = await pair();
  const failures: string[] = [];
  const writer = new BatchedWriter(client, {
    maxQueueBytes: 10,
    onFailure: (reason) => failures.push(reason),
  });
  assert.equal(writer.send(new Uint8Array(8)), true);
  assert.equal(writer.send(new Uint8Array(8)), false);
  assert.equal(writer.send(new Uint8Array(1)), false);
  await writer.flushed();
  assert.deepEqual(failures, ["outgoing queue above 10 bytes"]);
  assert.equal(writer.writes, 0);
  client.close();
  server.close();
});

Deno.test("a write to a closed socket reports the failure", async () => {
  const { client, server } = await pair();
  const failures: string[] = [];
  const writer = new BatchedWriter(client, {
    maxQueueBytes: 1024,
    onFailure: (reason) => failures.push(reason),
  });
  client.close();
  writer.send(new Uint8Array([1]));
  await writer.flushed();
  assert.equal(failures.length, 1);
  assert.match(failures[0], /^write failed/);
  server.close();
});
