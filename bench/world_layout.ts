// This module is browser compatible.
/**
 * The world benchmark's geometry (issue 23), sans-I/O: how large the world is for N players so
 * that each sees about 40 others ({@linkcode worldFor}), where players walk (random waypoints
 * at walking speed, {@linkcode Walker}), and how many neighbours each player has at a moment
 * ({@linkcode NeighbourCounter}: the same Chebyshev fragment rule as `cluster/fragment_grid.ts`).
 *
 * @module
 */

/** Fragment edge in world units (1 unit = 1 m). */
export const WORLD_FRAGMENT_SIZE = 64;
/** Fragments around a player's own that it sees. */
export const WORLD_VIEW_DISTANCE = 1;
/** Walking speed, units per second. */
export const WALK_SPEED = 1.4;
/** The average number of others a player should see. */
export const TARGET_NEIGHBOURS = 40;

/** The two layouts: everyone spread, or a fifth of the players crowded into one town. */
export type WorldLayout = "spread" | "town";

/** A square world of `cells × cells` fragments. */
export interface WorldSize {
  /** Fragments per side. */
  readonly cells: number;
  /** Side in world units (`cells × WORLD_FRAGMENT_SIZE`). */
  readonly side: number;
  /** Expected neighbours of a player when all N are spread uniformly (edges included). */
  readonly expectedNeighbours: number;
}

/**
 * Expected number of others within view of a player when `players` are uniform over a
 * `cells × cells` grid with view distance 1: per axis a random other is within ±1 cell with
 * probability (3c − 2)/c² (edge cells see 2 columns, not 3), so (N − 1)·((3c − 2)/c²)².
 *
 * @param players N.
 * @param cells Fragments per side (≥ 1).
 *
 * @example
 * ```ts
 * import { expectedNeighbours } from "./world_layout.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(Math.round(expectedNeighbours(5000, 33)), 40);
 * assert.equal(expectedNeighbours(10, 1), 9); // one fragment: everyone sees everyone
 * ```
 */
export function expectedNeighbours(players: number, cells: number): number {
  if (cells <= 1) return Math.max(0, players - 1);
  const p = (3 * cells - 2) / (cells * cells);
  return Math.max(0, players - 1) * p * p;
}

/**
 * The world for N players: the number of fragments per side whose expected neighbour count is
 * closest to {@linkcode TARGET_NEIGHBOURS} (at least 3 per side, so that the view does not
 * cover the whole world).
 *
 * @param players N.
 *
 * @example 5,000 players: 33 × 33 fragments of 64, a 2,112-unit square, ~40 neighbours
 * ```ts
 * import { worldFor } from "./world_layout.ts";
 * import assert from "node:assert/strict";
 *
 * const w = worldFor(5000);
 * assert.equal(w.cells, 33);
 * assert.equal(w.side, 2112);
 * assert.equal(Math.round(w.expectedNeighbours), 40);
 * ```
 */
export function worldFor(players: number): WorldSize {
  let best = 3;
  for (let c = 3; c <= 4096; c++) {
    const d = Math.abs(expectedNeighbours(players, c) - TARGET_NEIGHBOURS);
    if (d < Math.abs(expectedNeighbours(players, best) - TARGET_NEIGHBOURS)) best = c;
    if (expectedNeighbours(players, c) < TARGET_NEIGHBOURS) break;
  }
  return {
    cells: best,
    side: best * WORLD_FRAGMENT_SIZE,
    expectedNeighbours: expectedNeighbours(players, best),
  };
}

/** A rectangle players pick waypoints in. */
export interface Area {
  /** Smallest x. */
  readonly x0: number;
  /** Smallest z. */
  readonly z0: number;
  /** Largest x. */
  readonly x1: number;
  /** Largest z. */
  readonly z1: number;
}

/**
 * The town of the `"town"` layout: a 2 × 2-fragment square at the world's centre, aligned to
 * fragments (so the crowd fills 4 fragments).
 *
 * @param side The world's side.
 *
 * @example
 * ```ts
 * import { townArea } from "./world_layout.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(townArea(2112), { x0: 960, z0: 960, x1: 1088, z1: 1088 });
 * ```
 */
export function townArea(side: number): Area {
  const cells = Math.round(side / WORLD_FRAGMENT_SIZE);
  const c0 = Math.max(0, Math.floor(cells / 2) - 1) * WORLD_FRAGMENT_SIZE;
  const c1 = Math.min(side, c0 + 2 * WORLD_FRAGMENT_SIZE);
  return { x0: c0, z0: c0, x1: c1, z1: c1 };
}

/** Deterministic PRNG (mulberry32), so runs are comparable. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * One player walking between random waypoints in an area at {@linkcode WALK_SPEED}.
 *
 * @example
 * ```ts
 * import { prng, Walker } from "./world_layout.ts";
 * import assert from "node:assert/strict";
 *
 * const w = new Walker({ x0: 0, z0: 0, x1: 100, z1: 100 }, prng(1));
 * const { x, z } = w;
 * w.step(1);
 * assert.ok(Math.abs(Math.hypot(w.x - x, w.z - z) - 1.4) < 1e-9);
 * ```
 */
export class Walker {
  /** Position x. */
  x: number;
  /** Position z. */
  z: number;
  /** Facing, radians. */
  yaw = 0;
  readonly #area: Area;
  readonly #random: () => number;
  #tx: number;
  #tz: number;

  /**
   * @param area Where it walks (and starts, at a random point).
   * @param random A PRNG in [0, 1).
   */
  constructor(area: Area, random: () => number) {
    this.#area = area;
    this.#random = random;
    this.x = this.#pick(area.x0, area.x1);
    this.z = this.#pick(area.z0, area.z1);
    this.#tx = this.#pick(area.x0, area.x1);
    this.#tz = this.#pick(area.z0, area.z1);
  }

  #pick(lo: number, hi: number): number {
    // Kept off the area's edge so a walker stays inside it (and in its fragments).
    return lo + 0.01 + this.#random() * (hi - lo - 0.02);
  }

  /**
   * Walks for `seconds`, picking a new waypoint on arrival.
   *
   * @param seconds Time step.
   */
  step(seconds: number): void {
    let left = WALK_SPEED * seconds;
    while (left > 0) {
      const dx = this.#tx - this.x;
      const dz = this.#tz - this.z;
      const d = Math.hypot(dx, dz);
      if (d > 0) this.yaw = Math.atan2(dx, dz);
      if (d <= left) {
        this.x = this.#tx;
        this.z = this.#tz;
        left -= d;
        this.#tx = this.#pick(this.#area.x0, this.#area.x1);
        this.#tz = this.#pick(this.#area.z0, this.#area.z1);
        if (d === 0) break;
      } else {
        this.x += dx / d * left;
        this.z += dz / d * left;
        left = 0;
      }
    }
  }
}

/**
 * Counts each player's neighbours (others in fragments within the view distance of its own),
 * by the fragment rule of `cluster/fragment_grid.ts`.
 *
 * @example
 * ```ts
 * import { NeighbourCounter } from "./world_layout.ts";
 * import assert from "node:assert/strict";
 *
 * const counter = new NeighbourCounter(64, 1, 10);
 * const xs = new Float64Array([1, 70, 200]);
 * const zs = new Float64Array([1, 1, 1]);
 * assert.deepEqual([...counter.count(xs, zs)], [1, 1, 0]);
 * ```
 */
export class NeighbourCounter {
  readonly #size: number;
  readonly #vd: number;
  readonly #cells: number;
  readonly #grid: Uint32Array;
  #out = new Uint32Array(0);

  /**
   * @param size Fragment edge.
   * @param viewDistance View distance in fragments.
   * @param cells Fragments per side.
   */
  constructor(size: number, viewDistance: number, cells: number) {
    this.#size = size;
    this.#vd = viewDistance;
    this.#cells = cells;
    this.#grid = new Uint32Array(cells * cells);
  }

  #cell(v: number): number {
    const c = Math.floor(v / this.#size);
    return c < 0 ? 0 : c >= this.#cells ? this.#cells - 1 : c;
  }

  /**
   * Each player's neighbour count now (the array is reused by the next call).
   *
   * @param xs Players' x.
   * @param zs Players' z.
   */
  count(xs: Float64Array, zs: Float64Array): Uint32Array {
    const n = xs.length;
    const grid = this.#grid;
    const cells = this.#cells;
    const vd = this.#vd;
    grid.fill(0);
    for (let i = 0; i < n; i++) grid[this.#cell(xs[i]) * cells + this.#cell(zs[i])]++;
    if (this.#out.length !== n) this.#out = new Uint32Array(n);
    const out = this.#out;
    for (let i = 0; i < n; i++) {
      const cx = this.#cell(xs[i]);
      const cz = this.#cell(zs[i]);
      let sum = 0;
      for (let gx = Math.max(0, cx - vd); gx <= Math.min(cells - 1, cx + vd); gx++) {
        for (let gz = Math.max(0, cz - vd); gz <= Math.min(cells - 1, cz + vd); gz++) {
          sum += grid[gx * cells + gz];
        }
      }
      out[i] = sum - 1;
    }
    return out;
  }
}
