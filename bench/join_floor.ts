/**
 * The I/O floor of a join (issue 23): what a join's connections and round trips cost on this
 * machine with no protocol, crypto or state behind them. Two echo servers stand in for the
 * master and the cluster (each its own process, as they are); a "null join" connects to the
 * first, does three request/answer round trips (Hello, RequestClusters, JoinCluster), closes,
 * then does the same with the second (Hello, KeyExchange, SendPassword), with the join storm's
 * concurrency. It prints null joins/s and the CPU per null join of each process, from
 * `/proc`, like `bench/join_budget.ts` does for real joins.
 *
 * ```sh
 * deno run -A bench/join_floor.ts --joins 1000 --concurrency 32 --rounds 3
 * ```
 *
 * Linux only. It never leaves its servers running.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { sampleProcess } from "./process_stats.ts";
import { mapConcurrent } from "./load_clients.ts";

/** Bytes of each request and answer: about a Hello or a JoinCluster frame. */
const MESSAGE_BYTES = 48;
/** Round trips per connection. */
const ROUND_TRIPS = 3;

/** Echo server: answers every read with the same bytes, with no-delay on, like the servers. */
async function serve(): Promise<void> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  console.log(`floor server listening on ${(listener.addr as Deno.NetAddr).port}`);
  for await (const conn of listener) {
    conn.setNoDelay(true);
    (async () => {
      const buffer = new Uint8Array(4096);
      try {
        for (;;) {
          const n = await conn.read(buffer);
          if (n === null) break;
          await conn.write(buffer.subarray(0, n));
        }
      } finally {
        conn.close();
      }
    })().catch((error: unknown) => console.error(`floor server: ${error}`));
  }
}

/** One connection: connect, round trips of `MESSAGE_BYTES`, close. */
async function exchange(port: number): Promise<void> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    conn.setNoDelay(true);
    const message = new Uint8Array(MESSAGE_BYTES);
    const answer = new Uint8Array(4096);
    for (let i = 0; i < ROUND_TRIPS; i++) {
      await conn.write(message);
      let got = 0;
      while (got < MESSAGE_BYTES) {
        const n = await conn.read(answer);
        if (n === null) throw new Error("floor server closed early");
        got += n;
      }
    }
  } finally {
    conn.close();
  }
}

/** Starts an echo server child; resolves with its process and port. */
async function startServer(): Promise<{ child: Deno.ChildProcess; port: number }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(import.meta.url).pathname, "--serve"],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("floor server exited before listening");
    text += value;
  }
  reader.releaseLock();
  const match = text.match(/listening on (\d+)/);
  if (match === null) throw new Error(`floor server said: ${text}`);
  return { child, port: Number(match[1]) };
}

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    serve: { type: "boolean", default: false },
    joins: { type: "string", default: "1000" },
    concurrency: { type: "string", default: "32" },
    rounds: { type: "string", default: "1" },
  },
});
if (args.serve) {
  await serve();
} else {
  const joins = Number(args.joins);
  const concurrency = Number(args.concurrency);
  const servers = [await startServer(), await startServer()];
  try {
    const nullJoin = async () => {
      await exchange(servers[0].port);
      await exchange(servers[1].port);
    };
    await mapConcurrent(200, concurrency, nullJoin);
    const pids = [servers[0].child.pid, servers[1].child.pid, Deno.pid];
    for (let round = 0; round < Number(args.rounds); round++) {
      const before = pids.map(sampleProcess);
      const started = performance.now();
      await mapConcurrent(joins, concurrency, nullJoin);
      const ms = performance.now() - started;
      const after = pids.map(sampleProcess);
      const cpu = ["master", "cluster", "generator"].map((name, i) =>
        `${name} ${Math.round((after[i].cpuMs - before[i].cpuMs) * 1000 / joins)}`
      );
      const load = Deno.loadavg().map((l) => l.toFixed(1)).join(" ");
      console.log(
        `${Math.round(joins * 1000 / ms)} null joins/s; CPU µs/join ${
          cpu.join(" ")
        } (load ${load})`,
      );
    }
  } finally {
    for (const { child } of servers) {
      child.kill();
      await child.status;
    }
  }
}
