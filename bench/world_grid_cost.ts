/**
 * What a cluster tick costs for the world part's layouts, in-process and without sockets (issue
 * 23): N walkers in the world sized by `worldFor(N)`, every one moving every tick; for each
 * layout it prints the mean time of the moves, `tick()` and building every recipient's batch
 * frames (`forEachBatchFrame`), and the batch bytes per player per second.
 *
 * Run: `deno run bench/world_grid_cost.ts [N]` (default 5,000). It never opens a socket and never
 * asserts timing.
 *
 * @module
 */

import { FragmentGrid, type PositionFormat } from "../cluster/fragment_grid.ts";
import {
  prng,
  townArea,
  Walker,
  WORLD_FRAGMENT_SIZE,
  WORLD_VIEW_DISTANCE,
  worldFor,
  type WorldLayout,
} from "./world_layout.ts";

/** One measured layout. */
interface Case {
  readonly name: string;
  readonly layout: WorldLayout;
  readonly format: PositionFormat;
  readonly naive: boolean;
  readonly players: number;
}

function measure(c: Case): string {
  const w = worldFor(c.players);
  const grid = new FragmentGrid({
    size: c.naive ? w.side : WORLD_FRAGMENT_SIZE,
    viewDistance: WORLD_VIEW_DISTANCE,
    bounds: { minX: 0, minZ: 0, maxX: w.side, maxZ: w.side },
    tickHz: 20,
    maxPlayersPerFragment: c.players,
    crowdThreshold: c.naive ? c.players : 100,
    positionFormat: c.format,
  });
  const random = prng(1);
  const town = townArea(w.side);
  const world = { x0: 0, z0: 0, x1: w.side, z1: w.side };
  const walkers = Array.from(
    { length: c.players },
    (_, i) => new Walker(c.layout === "town" && i < c.players / 5 ? town : world, random),
  );
  walkers.forEach((k, i) => grid.add(i, { x: k.x, y: 0, z: k.z, yaw: k.yaw }, 0));
  grid.tick(0);
  const ticks = c.naive ? 8 : 40;
  const warm = c.naive ? 2 : 10;
  let now = 0;
  let bytes = 0;
  const ms = [0, 0, 0];
  for (let t = 0; t < ticks + warm; t++) {
    now += 50;
    const a = performance.now();
    walkers.forEach((k, i) => {
      k.step(0.05);
      grid.move(i, { x: k.x, y: 0, z: k.z, yaw: k.yaw }, now);
    });
    const b = performance.now();
    const result = grid.tick(now);
    const d = performance.now();
    let tickBytes = 0;
    result.forEachBatchFrame((_player, frame) => {
      tickBytes += frame.length;
    });
    const e = performance.now();
    if (t >= warm) {
      ms[0] += b - a;
      ms[1] += d - b;
      ms[2] += e - d;
      bytes += tickBytes;
    }
  }
  const [moves, tick, frames] = ms.map((v) => (v / ticks).toFixed(1));
  const perPlayer = Math.round(bytes / ticks * 20 / c.players);
  return `${c.name} (${c.players}, ${w.side}² world): moves ${moves} ms, tick ${tick} ms, ` +
    `frames ${frames} ms per tick; ${perPlayer} B/s of batch frames per player`;
}

if (import.meta.main) {
  const n = Number(Deno.args[0] ?? 5000);
  const cases: Case[] = [
    { name: "spread, MoveBatch", layout: "spread", format: "full", naive: false, players: n },
    {
      name: "spread, PositionBatch",
      layout: "spread",
      format: "quantized",
      naive: false,
      players: n,
    },
    { name: "town, PositionBatch", layout: "town", format: "quantized", naive: false, players: n },
    {
      name: "naive, PositionBatch",
      layout: "spread",
      format: "quantized",
      naive: true,
      players: Math.min(n, 2000),
    },
  ];
  for (const c of cases) console.log(measure(c));
}
