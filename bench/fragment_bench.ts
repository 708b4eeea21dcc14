/**
 * Fragment grid tick cost: 1000 players spread over a 32×32-fragment world versus all 1000 in
 * one fragment, every player moving every tick. Each case measures the moves plus `tick()`,
 * and the moves plus `tick()` plus building every recipient's MoveBatch payloads; the bytes
 * each tick produces are printed once before the benches run.
 *
 * Run: `deno bench bench/fragment_bench.ts`. It never opens a socket and never asserts timing.
 *
 * @module
 */

import { FragmentGrid, type FragmentGridOptions } from "../cluster/fragment_grid.ts";
import { prng } from "./world_layout.ts";

const PLAYERS = 1000;
const WORLD = 1000;

interface Scenario {
  readonly grid: FragmentGrid;
  readonly xs: Float64Array;
  readonly zs: Float64Array;
  readonly random: () => number;
  now: number;
}

function scenario(options: FragmentGridOptions, spread: number): Scenario {
  const random = prng(42);
  const grid = new FragmentGrid(options);
  const xs = new Float64Array(PLAYERS);
  const zs = new Float64Array(PLAYERS);
  for (let i = 0; i < PLAYERS; i++) {
    xs[i] = random() * spread;
    zs[i] = random() * spread;
    const outcome = grid.add(i + 1, { x: xs[i], y: 0, z: zs[i] }, 0);
    if (outcome !== "accepted") throw new Error(`setup: add ${i + 1} was ${outcome}`);
  }
  grid.tick(0);
  return { grid, xs, zs, random, now: 0 };
}

/** Every player takes a small step (bouncing off the edges), then one tick. */
function step(s: Scenario, spread: number) {
  s.now += 50;
  for (let i = 0; i < PLAYERS; i++) {
    s.xs[i] = Math.min(spread, Math.max(0, s.xs[i] + (s.random() - 0.5) * 4));
    s.zs[i] = Math.min(spread, Math.max(0, s.zs[i] + (s.random() - 0.5) * 4));
    s.grid.move(i + 1, { x: s.xs[i], y: 0, z: s.zs[i], yaw: s.random() }, s.now);
  }
  return s.grid.tick(s.now);
}

/** Builds every recipient's payloads; returns their total bytes. */
function payloads(result: ReturnType<typeof step>): number {
  let bytes = 0;
  for (const id of result.recipients()) {
    for (const p of result.moveBatchFor(id)) bytes += p.length;
  }
  return bytes;
}

const cases = [
  {
    name: "spread over 32×32 fragments",
    spread: WORLD - 1,
    options: {
      size: WORLD / 32,
      bounds: { minX: 0, minZ: 0, maxX: WORLD, maxZ: WORLD },
      tickHz: 20,
      maxPlayersPerFragment: PLAYERS,
      crowdThreshold: 50,
    },
  },
  {
    name: "all in one fragment (quarter rate)",
    spread: 99,
    options: {
      size: 100,
      bounds: { minX: 0, minZ: 0, maxX: WORLD, maxZ: WORLD },
      tickHz: 20,
      maxPlayersPerFragment: PLAYERS,
      crowdThreshold: 100,
    },
  },
  {
    name: "all in one fragment (full rate)",
    spread: 99,
    options: {
      size: 100,
      bounds: { minX: 0, minZ: 0, maxX: WORLD, maxZ: WORLD },
      tickHz: 20,
      maxPlayersPerFragment: PLAYERS,
      crowdThreshold: PLAYERS,
    },
  },
] as const;

// Bytes per tick, averaged over 40 ticks, printed once so the bench table stays about time.
for (const c of cases) {
  const s = scenario(c.options, c.spread);
  let encoded = 0;
  let sent = 0;
  const ticks = 40;
  for (let t = 0; t < ticks; t++) {
    const r = step(s, c.spread);
    encoded += r.bytesEncoded;
    sent += payloads(r);
  }
  console.log(
    `${c.name}: ${(encoded / ticks / 1024).toFixed(1)} KiB of entries encoded per tick, ` +
      `${(sent / ticks / 1024).toFixed(1)} KiB of MoveBatch payloads built per tick`,
  );
}

for (const c of cases) {
  const ticking = scenario(c.options, c.spread);
  Deno.bench({
    name: `${c.name}: moves + tick`,
    group: "tick",
    fn: () => {
      step(ticking, c.spread);
    },
  });
  const full = scenario(c.options, c.spread);
  Deno.bench({
    name: `${c.name}: moves + tick + payloads`,
    group: "tick + payloads",
    fn: () => {
      payloads(step(full, c.spread));
    },
  });
}
