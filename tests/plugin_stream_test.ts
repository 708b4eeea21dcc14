import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import {
  encodePluginFrame,
  MAX_PLUGIN_FRAME_BYTES,
  PluginFrameReader,
} from "../cluster/plugin_stream.ts";
import { PluginQueueBound } from "../cluster/plugin_queue_bound.ts";
import { ProcessPluginSandbox } from "../cluster/process_plugin_sandbox.ts";
import { isMessageBatch, type MessageBatch } from "../cluster/plugin_messages.ts";

function batch(n: number): MessageBatch<unknown> {
  const records = new Uint32Array(n * 4);
  for (let i = 0; i < n; i++) records.set([i + 1, 0x80, i * 2, 2], i * 4);
  return {
    events: [{ kind: "sends", count: n }, { kind: "log", level: "info", message: "é\n{x}" }],
    bytes: new Uint8Array(n * 2).map((_, i) => i & 0xff),
    records,
  };
}

Deno.test("frames cut anywhere across chunks come back whole, records and bytes intact", () => {
  const frames = [batch(1), batch(300), { events: [], bytes: new Uint8Array() }].map(
    encodePluginFrame,
  );
  const stream = new Uint8Array(frames.reduce((sum, f) => sum + f.length, 0));
  let at = 0;
  for (const f of frames) {
    stream.set(f, at);
    at += f.length;
  }
  for (const cut of [1, 3, 7, 64, 1000]) {
    const reader = new PluginFrameReader();
    const out: unknown[] = [];
    // One reused chunk buffer, as the host's BYOB reader does.
    const chunk = new Uint8Array(cut);
    for (let i = 0; i < stream.length; i += cut) {
      const part = stream.subarray(i, i + cut);
      chunk.set(part);
      out.push(...reader.push(chunk.subarray(0, part.length)));
    }
    assert.equal(reader.error, null);
    assert.equal(out.length, 3);
    assert.ok(out.every(isMessageBatch));
    assert.deepEqual(out[0], batch(1));
    assert.deepEqual(out[1], batch(300));
    assert.deepEqual(out[2], { events: [], bytes: new Uint8Array() });
  }
});

Deno.test("a node Buffer chunk (pooled, not at offset 0; slice does not copy) decodes into batches that own their bytes", () => {
  const frame = encodePluginFrame(batch(3));
  // Buffer.from copies small arrays into its shared pool: the chunk starts past offset 0.
  Buffer.alloc(8);
  const chunk = Buffer.from(frame);
  const reader = new PluginFrameReader();
  const [got] = reader.push(chunk);
  assert.equal(reader.error, null);
  assert.deepEqual(got, batch(3));
  chunk.fill(0); // the batch must not alias the chunk
  assert.deepEqual(got, batch(3));
});

Deno.test("a malformed or oversized stream fails the reader and it stays failed", () => {
  const good = encodePluginFrame(batch(2));
  const cases: [string, Uint8Array, RegExp][] = [
    ["oversized", new Uint8Array([0x7f, 0xff, 0xff, 0xff]), /above/],
    [
      "not JSON",
      new Uint8Array([0, 0, 0, 16, 0, 0, 0, 4, 0x7b, 0x7b, 0x7b, 0x7b, 0, 0, 0, 0, 0, 0, 0, 0]),
      /deserialize/,
    ],
    [
      "events not an array",
      encodePluginFrame({ events: {} as never, bytes: new Uint8Array() }),
      /not an array/,
    ],
    [
      "lengths past the frame",
      new Uint8Array([0, 0, 0, 8, 0, 0, 0, 9, 0, 0, 0, 0]),
      /past the frame/,
    ],
  ];
  for (const [what, bytes, reason] of cases) {
    const reader = new PluginFrameReader();
    assert.deepEqual(reader.push(bytes), [], what);
    assert.match(reader.error ?? "", reason, what);
    assert.deepEqual(reader.push(good), [], `${what}: stays failed`);
    assert.equal(reader.buffered, 0);
  }
  assert.equal(MAX_PLUGIN_FRAME_BYTES, 16 * 1024 * 1024);
});

Deno.test("the queue bound pops acknowledgements oldest first and caps each player's share", () => {
  const bound = new PluginQueueBound({ maxMessages: 4, maxBytes: 100, maxPerPlayer: 3 });
  assert.equal(bound.admit(1, 10), true);
  assert.equal(bound.admit(1, 10), true);
  assert.equal(bound.admit(1, 10), true);
  assert.equal(bound.admit(1, 10), false); // player 1's share
  assert.equal(bound.admit(2, 80), false); // bytes
  assert.equal(bound.admit(2, 10), true);
  assert.equal(bound.admit(3, 1), false); // total
  bound.handled(2, 20); // two of player 1's
  assert.equal(bound.queued, 2);
  assert.equal(bound.admit(1, 10), true);
  assert.equal(bound.admit(1, 10), true);
  assert.equal(bound.admit(1, 10), false); // player 1 has 3 again
  bound.handled(1_000, 1_000); // a plugin acknowledging more than it got empties it, no more
  assert.equal(bound.queued, 0);
  assert.equal(bound.queuedBytes, 0);
  assert.equal(bound.admit(3, 10), true);
  assert.throws(() => new PluginQueueBound({ maxMessages: 0, maxBytes: 1 }), RangeError);
});

Deno.test("a subprocess that writes garbage to its stdout is ended as malformed and reaped", async () => {
  const source = "await Deno.stdout.write(new Uint8Array([0xff, 0xff, 0xff, 0xff, 1, 2, 3]));\n" +
    "setInterval(() => {}, 1000);\n";
  const failed = Promise.withResolvers<[string, string]>();
  const sandbox = new ProcessPluginSandbox({
    bootstrapUrl: `data:application/javascript,${encodeURIComponent(source)}`,
    permissionFlags: [],
    maxMemoryMb: 64,
  }, {
    batch: () => failed.reject(new Error("a batch from garbage")),
    invalid() {},
    failed: (reason, message) => failed.resolve([reason, message]),
    stderr() {},
  });
  const pid = sandbox.pid;
  const [reason, message] = await failed.promise;
  assert.equal(reason, "malformed");
  assert.match(message, /above/);
  await sandbox.closed;
  assert.throws(() => Deno.statSync(`/proc/${pid}`), Deno.errors.NotFound);
});
