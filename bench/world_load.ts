/**
 * The world benchmark's generator process (issue 23): `deno run -A bench/world_load.ts <order
 * json>`. Joins N players through the master (sealed or plaintext), then each walks random
 * waypoints at walking speed and sends a Move `hz` times a second (the players' sends spread
 * over the period, as real clients' are); it decodes every MoveBatch (0x2B) and
 * PositionBatch (0x2F) it receives and measures, over one window:
 *
 * - move-to-screen latency on the generator's clock: from the send of the Move whose position
 *   a receiver sees to its arrival (matched to the newest of the sender's last 32 positions
 *   within the format's precision; an unmatched one counts as at least 32 ticks old);
 * - delivered updates against the expected ones (each tick, every player's current neighbours
 *   by the fragment rule: one position each);
 * - bytes read per player per second.
 *
 * It prints `WORLD_JOINED <n> <seconds>`, `WORLD_WINDOW_START`, `WORLD_WINDOW_END` and one
 * `WORLD_DONE <json>` line, so the runner can sample the cluster at the same moments. It only
 * connects to loopback and stops by itself after the window.
 *
 * @module
 */

import { encodePacket } from "../shared/protocol/codec.ts";
import { POSITION_BATCH_TYPE, positionPrecision } from "../shared/protocol/position_batch.ts";
import { PacketType } from "../shared/protocol/packets.ts";
import type { BenchConnection } from "./bench_connection.ts";
import { LatencyHistogram } from "./latency_histogram.ts";
import { SendSchedule } from "./send_schedule.ts";
import { closeAll, mapConcurrent } from "./load_clients.ts";
import { joinViaMaster, MasterTicketSource } from "./sustenet_join.ts";
import {
  type Area,
  NeighbourCounter,
  prng,
  townArea,
  Walker,
  type WorldLayout,
} from "./world_layout.ts";

/** What the runner asks for. */
export interface WorldOrder {
  /** The master's port on 127.0.0.1. */
  readonly masterPort: number;
  /** Whether the cluster seals client traffic. */
  readonly sealed: boolean;
  /** Players. */
  readonly players: number;
  /** Spread or town. */
  readonly layout: WorldLayout;
  /** Moves per player per second. */
  readonly hz: number;
  /** World side (the world is [0, side]²). */
  readonly side: number;
  /** The cluster's fragment edge (the whole side for the naive run). */
  readonly fragmentSize: number;
  /** The cluster's view distance. */
  readonly viewDistance: number;
  /** Whether the cluster sends PositionBatch (quantized) rather than MoveBatch. */
  readonly quantized: boolean;
  /** Players stand still and send nothing (idle memory). */
  readonly idle: boolean;
  /** Handshakes in flight. */
  readonly joinConcurrency: number;
  /** Moving time before the window, ms. */
  readonly warmupMs: number;
  /** Measured time, ms. */
  readonly windowMs: number;
}

/** Figures of one class of receivers. */
export interface ClassFigures {
  /** Players in the class. */
  readonly players: number;
  /** Move-to-screen latency p50, ms. */
  readonly p50Ms: number;
  /** p99, ms. */
  readonly p99Ms: number;
  /** Positions received from others in the window. */
  readonly received: number;
  /** Positions expected (neighbours per tick). */
  readonly expected: number;
  /** received / expected. */
  readonly deliveredRatio: number;
  /** Mean neighbours per player over the window. */
  readonly meanNeighbours: number;
  /** Bytes read per player per second. */
  readonly bytesInPerPlayerPerS: number;
}

/** The load's report (the `WORLD_DONE` line). */
export interface WorldLoadReport {
  /** Players joined. */
  readonly joined: number;
  /** Joins per second while joining. */
  readonly joinsPerS: number;
  /** Everyone. */
  readonly all: ClassFigures;
  /** Town layout: the players walking the world outside the town (not its residents). */
  readonly outside?: ClassFigures;
  /** Window length, s. */
  readonly windowS: number;
  /** p99 lateness of the generator's own ticks, ms (a late generator inflates latency). */
  readonly generatorLagP99Ms: number;
  /** Connections still open at the end. */
  readonly openAtEnd: number;
}

/** Positions remembered per sender for matching. */
const RING = 32;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

class ClassMeter {
  readonly latency = new LatencyHistogram();
  received = 0;
  expected = 0;
  neighbourSum = 0;
  samples = 0;
  bytesStart = 0;

  figures(players: number, conns: readonly BenchConnection[], seconds: number): ClassFigures {
    let bytes = 0;
    for (const c of conns) bytes += c.bytesIn;
    return {
      players,
      p50Ms: Math.round(this.latency.percentileMicros(50) / 100) / 10,
      p99Ms: Math.round(this.latency.percentileMicros(99) / 100) / 10,
      received: this.received,
      expected: this.expected,
      deliveredRatio: this.expected === 0
        ? 1
        : Math.round(this.received / this.expected * 10_000) / 10_000,
      meanNeighbours: this.samples === 0
        ? 0
        : Math.round(this.neighbourSum / this.samples * 10) / 10,
      bytesInPerPlayerPerS: players === 0
        ? 0
        : Math.round((bytes - this.bytesStart) / players / seconds),
    };
  }
}

/** Runs the order; returns the report. */
export async function runWorldLoad(order: WorldOrder): Promise<WorldLoadReport> {
  const n = order.players;
  const sources: MasterTicketSource[] = [];
  // The master takes at most 32 requests in flight per connection: ~16 each here.
  const sourceCount = Math.max(Math.ceil(order.joinConcurrency / 16), Math.min(8, n / 250));
  for (let i = 0; i < sourceCount; i++) {
    sources.push(await MasterTicketSource.open("127.0.0.1", order.masterPort));
  }
  const joinStart = performance.now();
  const outcome = await mapConcurrent(
    n,
    order.joinConcurrency,
    (i) =>
      joinViaMaster(sources[i % sources.length], {
        sealed: order.sealed,
        webSocket: false,
        readBufferBytes: 64 * 1024,
      }),
  );
  const joinSeconds = (performance.now() - joinStart) / 1000;
  for (const source of sources) source.close();
  await Promise.all(sources.map((source) => source.closed));
  if (!outcome.ok) {
    await closeAll(outcome.completed.map((j) => j.conn));
    throw outcome.error;
  }
  const joined = outcome.values;
  const conns = joined.map((j) => j.conn);
  console.log(`WORLD_JOINED ${n} ${joinSeconds.toFixed(3)}`);

  const indexOf = new Map<number, number>();
  joined.forEach((j, i) => indexOf.set(j.clientId, i));
  const random = prng(23);
  const world: Area = { x0: 0, z0: 0, x1: order.side, z1: order.side };
  const town = townArea(order.side);
  const residents = order.layout === "town" ? Math.floor(n / 5) : 0;
  const walkers = conns.map((_, i) => new Walker(i < residents ? town : world, random));
  const xs = new Float64Array(n);
  const zs = new Float64Array(n);
  walkers.forEach((w, i) => {
    xs[i] = w.x;
    zs[i] = w.z;
  });
  // Ring of each sender's recent sends: time, x, z.
  const ringT = new Float64Array(n * RING);
  const ringX = new Float64Array(n * RING);
  const ringZ = new Float64Array(n * RING);
  const ringHead = new Int32Array(n);
  const bounds = { minX: 0, minZ: 0, maxX: order.side, maxZ: order.side };
  const eps = order.quantized ? positionPrecision(bounds).x * 1.001 + 1e-9 : 1e-3;
  const all = new ClassMeter();
  const outside = new ClassMeter();
  const isOutside = (i: number) => i >= residents;
  let measuring = false;

  const match = (receiver: number, sender: number, x: number, z: number, now: number) => {
    const base = sender * RING;
    const head = ringHead[sender];
    let latencyMs = -1;
    for (let k = 0; k < RING; k++) {
      const slot = base + ((head - k + RING) % RING);
      if (Math.abs(ringX[slot] - x) <= eps && Math.abs(ringZ[slot] - z) <= eps) {
        latencyMs = now - ringT[slot];
        break;
      }
    }
    // Older than the ring: at least as old as its oldest entry.
    if (latencyMs < 0) latencyMs = now - ringT[base + ((head + 1) % RING)];
    const micros = Math.max(0, Math.round(latencyMs * 1000));
    all.latency.recordMicros(micros);
    all.received++;
    if (residents > 0 && isOutside(receiver)) {
      outside.latency.recordMicros(micros);
      outside.received++;
    }
  };

  conns.forEach((conn, receiver) => {
    const own = joined[receiver].clientId;
    conn.startReading((view, offset, length) => {
      if (!measuring) return;
      const type = view.getUint8(offset);
      if (type !== PacketType.MoveBatch && type !== POSITION_BATCH_TYPE) return;
      const now = performance.now();
      const count = view.getUint16(offset + 1);
      let at = offset + 3;
      const end = offset + length;
      for (let e = 0; e < count && at < end; e++) {
        const id = view.getUint32(at);
        let x: number;
        let z: number;
        if (type === POSITION_BATCH_TYPE) {
          x = view.getUint16(at + 4) * order.side / 0xffff;
          z = view.getUint16(at + 6) * order.side / 0xffff;
          at += 11;
        } else {
          const flags = view.getUint8(at + 4);
          x = view.getFloat32(at + 5);
          z = view.getFloat32(at + 13);
          at += 4 + 13 + ((flags & 1) !== 0 ? 4 : 0) + ((flags & 2) !== 0 ? 12 : 0);
        }
        if (id === own) continue;
        const sender = indexOf.get(id);
        if (sender !== undefined) match(receiver, sender, x, z, now);
      }
    });
  });

  const counter = new NeighbourCounter(
    order.fragmentSize,
    order.viewDistance,
    Math.max(1, Math.round(order.side / order.fragmentSize)),
  );
  const lag = new LatencyHistogram();
  const periodMs = 1000 / order.hz;
  // Players send spread over the period (as real clients do, each on its own clock), not all in
  // one burst: a burst would make every position wait for the same cluster tick.
  const schedule = new SendSchedule({ clients: n, hz: order.hz });
  const sendMove = (i: number) => {
    const w = walkers[i];
    w.step(1 / order.hz);
    xs[i] = w.x;
    zs[i] = w.z;
    const head = (ringHead[i] + 1) % RING;
    ringHead[i] = head;
    const slot = i * RING + head;
    // What the cluster stores (f32), so the MoveBatch match is exact.
    ringX[slot] = Math.fround(w.x);
    ringZ[slot] = Math.fround(w.z);
    ringT[slot] = performance.now();
    conns[i].send(encodePacket({ kind: "Move", state: { x: w.x, y: 0, z: w.z, yaw: w.yaw } }));
  };
  let periods = 0;
  const started = performance.now();
  let stopped = false;
  const tick = () => {
    if (stopped) return;
    const elapsed = performance.now() - started;
    lag.recordMicros(Math.max(0, Math.round((elapsed - schedule.nextDueMs) * 1000)));
    // Idle players send nothing, but the slots still pass (the lag above stays the timer's own).
    schedule.due(elapsed, order.idle ? () => {} : sendMove);
    // Expected positions: each period, every player's neighbours by the fragment rule.
    const period = Math.floor(elapsed / periodMs);
    if (period > periods) {
      periods = period;
      if (measuring && !order.idle) {
        const counts = counter.count(xs, zs);
        for (let i = 0; i < n; i++) {
          all.expected += counts[i];
          all.neighbourSum += counts[i];
          if (residents > 0 && isOutside(i)) {
            outside.expected += counts[i];
            outside.neighbourSum += counts[i];
          }
        }
        all.samples += n;
        if (residents > 0) outside.samples += n - residents;
      }
    }
    // The next slot on the schedule, not a fixed delay after this one: a slow one is caught up.
    setTimeout(tick, Math.max(0, schedule.nextDueMs - (performance.now() - started)));
  };
  tick();
  await sleep(order.warmupMs);
  let bytes = 0;
  let outsideBytes = 0;
  conns.forEach((c, i) => {
    bytes += c.bytesIn;
    if (isOutside(i)) outsideBytes += c.bytesIn;
  });
  all.bytesStart = bytes;
  outside.bytesStart = outsideBytes;
  lag.reset();
  measuring = true;
  const windowStart = performance.now();
  console.log("WORLD_WINDOW_START");
  await sleep(order.windowMs);
  measuring = false;
  const seconds = (performance.now() - windowStart) / 1000;
  console.log("WORLD_WINDOW_END");
  stopped = true;
  const report: WorldLoadReport = {
    joined: n,
    joinsPerS: Math.round(n / joinSeconds),
    all: all.figures(n, conns, seconds),
    ...(residents > 0
      ? { outside: outside.figures(n - residents, conns.slice(residents), seconds) }
      : {}),
    windowS: Math.round(seconds * 100) / 100,
    generatorLagP99Ms: Math.round(lag.percentileMicros(99) / 100) / 10,
    openAtEnd: conns.filter((c) => c.isOpen).length,
  };
  await closeAll(conns);
  return report;
}

if (import.meta.main) {
  const order = JSON.parse(Deno.args[0]) as WorldOrder;
  const report = await runWorldLoad(order);
  console.log(`WORLD_DONE ${JSON.stringify(report)}`);
}
