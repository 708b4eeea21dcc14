/**
 * The Colyseus baseline's load generator (Node, driven by Colyseus's own client library
 * `@colyseus/sdk`): R clients join one "relay" room, each sends a 32-byte byte message (send
 * time inside, as the Deno generator's probe frames) at `hz`, and every relayed message is
 * counted with its one-way latency; then windows are measured with CPU % / RSS of this process
 * and the server from `/proc`. It takes the Deno generator's job JSON (`--job`, target
 * `{ kind: "colyseus", host, port }`, scenario `relay`) and prints the same
 * `LOAD_RESULT <json>` line, so `bench/main.ts` reads both alike.
 *
 * It must never outlive the job's `deadlineMs`.
 *
 * @module
 */

import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { Client } from "@colyseus/sdk";
import { LATENCY_BUCKETS, latencyBucket } from "./latency_buckets.mjs";

const { values } = parseArgs({ options: { job: { type: "string" } } });
const job = JSON.parse(values.job ?? "{}");
const { target, scenario, serverPids, deadlineMs } = job;
if (target?.kind !== "colyseus" || scenario?.kind !== "relay") {
  console.error(
    "usage: load_generator.mjs --job '<relay job with a colyseus target>'",
  );
  process.exit(2);
}

const deadline = setTimeout(() => {
  const error = `deadline of ${deadlineMs} ms passed`;
  console.log(
    "LOAD_RESULT " + JSON.stringify({ kind: "relay", ok: false, error }),
  );
  process.exit(3);
}, deadlineMs);

const now = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** CPU ms and RSS bytes of a process from /proc (100 clock ticks per second). */
function sample(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const rss = /^VmRSS:\s+(\d+)\s+kB/m.exec(
    readFileSync(`/proc/${pid}/status`, "utf8"),
  );
  return {
    pid,
    atMs: now(),
    cpuMs: (Number(fields[11]) + Number(fields[12])) * 10,
    rssBytes: rss === null ? 0 : Number(rss[1]) * 1024,
  };
}

const counts = new Uint32Array(LATENCY_BUCKETS);
let measuring = false;
let received = 0;
let sent = 0;
let maxMicros = 0;

const url = `ws://${target.host}:${target.port}`;
const started = now();
const rooms = [await new Client(url).joinOrCreate("relay")];
const roomId = rooms[0].roomId;
let nextJoin = 1;
await Promise.all(Array.from({ length: 16 }, async () => {
  while (nextJoin < scenario.clients) {
    nextJoin++;
    rooms.push(await new Client(url).joinById(roomId));
  }
}));
const connectMs = Math.round(now() - started);
console.error(`joined ${rooms.length} clients in ${connectMs} ms`);

if (job.waitForStart === true) {
  // Several generator processes share the load: start sending together (bench/load_job.ts).
  console.log("CONNECTED");
  await new Promise((resolve, reject) => {
    let text = "";
    const onData = (chunk) => {
      text += chunk;
      if (text.split("\n").slice(0, -1).includes("START")) {
        process.stdin.off("data", onData);
        process.stdin.pause();
        resolve();
      }
    };
    process.stdin.setEncoding("utf8");
    process.stdin.on("data", onData);
    process.stdin.once("end", () => reject(new Error('stdin ended before "START"')));
  });
}

for (const room of rooms) {
  room.onMessage(1, (bytes) => {
    if (!measuring) return;
    received++;
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const micros = (now() - view.getFloat64(0)) * 1000;
    counts[latencyBucket(micros)]++;
    if (micros > maxMicros) maxMicros = micros;
  });
}

// Sends spread over 10 slots per period, as bench/send_schedule.ts does.
const slots = 10;
const slotMs = 1000 / scenario.hz / slots;
const sendStart = performance.now();
let nextSlot = 0;
const timer = setInterval(() => {
  const elapsed = performance.now() - sendStart;
  while (nextSlot * slotMs <= elapsed) {
    for (
      let client = nextSlot % slots;
      client < rooms.length;
      client += slots
    ) {
      const payload = new Uint8Array(32);
      const view = new DataView(payload.buffer);
      view.setFloat64(0, now());
      view.setUint32(8, client);
      rooms[client].sendBytes(1, payload);
      if (measuring) sent++;
    }
    nextSlot++;
  }
}, 5);

// This process's own event-loop lag, sampled as bench/window_meter.ts does (a 5 ms timer's
// lateness), so a Colyseus window the generator stalled in is marked and measured again too.
const STALL_MS = 20;
const lagSamples = [];
let lagExpected = performance.now() + 5;
const lagTimer = setInterval(() => {
  const t = performance.now();
  if (measuring) lagSamples.push(Math.max(0, t - lagExpected));
  lagExpected = t + 5;
}, 5);

await sleep(scenario.warmupMs);
const windows = [];
let clean = 0;
let reruns = 0;
const maxReruns = job.waitForStart === true ? 0 : scenario.windows;
while (clean < scenario.windows) {
  counts.fill(0);
  received = 0;
  sent = 0;
  maxMicros = 0;
  lagSamples.length = 0;
  const before = [process.pid, ...serverPids].map(sample);
  const windowStart = performance.now();
  measuring = true;
  await sleep(scenario.windowMs);
  measuring = false;
  const durationMs = performance.now() - windowStart;
  const figures = before.map((b) => {
    const a = sample(b.pid);
    const cpuPercent = Math.round((a.cpuMs - b.cpuMs) * 1000 / (a.atMs - b.atMs)) / 10;
    return { pid: b.pid, cpuPercent, rssBytes: a.rssBytes };
  });
  const buckets = [];
  for (let i = 0; i < LATENCY_BUCKETS; i++) {
    if (counts[i] > 0) buckets.push([i, counts[i]]);
  }
  windows.push({
    durationMs: Math.round(durationMs * 10) / 10,
    sent,
    skipped: 0,
    received,
    receivedPerSecond: Math.round(received * 1000 / durationMs),
    // Percentiles are computed by bench/main.ts from the buckets, as for the Deno generator.
    p50Ms: -1,
    p99Ms: -1,
    maxMs: Math.round(maxMicros) / 1000,
    latencyBuckets: buckets,
    openClients: rooms.length,
    generator: figures[0],
    servers: figures.slice(1),
    ...lagFigures(),
  });
  if (windows[windows.length - 1].generatorFault && reruns < maxReruns) {
    reruns++;
    console.error(`window ${windows.length}: generator stalled; re-run`);
  } else clean++;
}
clearInterval(timer);
clearInterval(lagTimer);
clearTimeout(deadline);
/** This window's generator lag: p99 and max, ms, and whether it stalled. */
function lagFigures() {
  const sorted = [...lagSamples].sort((a, b) => a - b);
  const at = (q) => sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  const maxMs = Math.round(at(1) * 1000) / 1000;
  return {
    generatorLag: { p99Ms: Math.round(at(0.99) * 1000) / 1000, maxMs },
    generatorFault: maxMs > STALL_MS,
  };
}

const result = {
  kind: "relay",
  ok: true,
  clients: rooms.length,
  connectMs,
  windows,
};
console.log("LOAD_RESULT " + JSON.stringify(result));
await Promise.all(
  rooms.map((room) => room.leave().catch((error) => console.error(`leave failed: ${error}`))),
);
process.exit(0);
