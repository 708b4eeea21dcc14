import assert from "node:assert/strict";
import fc from "fast-check";
import { bucketQuantileMs, formatWorld, runWorld } from "../world_bench.ts";
import {
  expectedNeighbours,
  NeighbourCounter,
  prng,
  townArea,
  WALK_SPEED,
  Walker,
  WORLD_FRAGMENT_SIZE,
  worldFor,
} from "../world_layout.ts";

Deno.test("world sizing: ~40 neighbours at every N, stated for 5,000", () => {
  for (const n of [100, 1000, 5000, 10_000, 20_000]) {
    const w = worldFor(n);
    assert.equal(w.side, w.cells * WORLD_FRAGMENT_SIZE);
    assert.ok(Math.abs(w.expectedNeighbours - 40) < 5, `${n}: ${w.expectedNeighbours}`);
  }
  assert.deepEqual(worldFor(5000).cells, 33);
});

Deno.test("the neighbour counter matches brute force, and its mean matches the formula", () => {
  fc.assert(fc.property(
    fc.array(
      fc.tuple(
        fc.double({ min: 0, max: 639.9, noNaN: true }),
        fc.double({
          min: 0,
          max: 639.9,
          noNaN: true,
        }),
      ),
      { maxLength: 60 },
    ),
    (points) => {
      const xs = Float64Array.from(points.map((p) => p[0]));
      const zs = Float64Array.from(points.map((p) => p[1]));
      const got = new NeighbourCounter(64, 1, 10).count(xs, zs);
      points.forEach(([x, z], i) => {
        let want = 0;
        points.forEach(([x2, z2], j) => {
          if (
            j !== i && Math.abs(Math.floor(x / 64) - Math.floor(x2 / 64)) <= 1 &&
            Math.abs(Math.floor(z / 64) - Math.floor(z2 / 64)) <= 1
          ) want++;
        });
        assert.equal(got[i], want);
      });
    },
  ));
  const random = prng(7);
  const n = 4000;
  const xs = Float64Array.from({ length: n }, () => random() * 640);
  const zs = Float64Array.from({ length: n }, () => random() * 640);
  const counts = new NeighbourCounter(64, 1, 10).count(xs, zs);
  const mean = counts.reduce((a, b) => a + b, 0) / n;
  assert.ok(Math.abs(mean / expectedNeighbours(n, 10) - 1) < 0.05, `${mean}`);
});

Deno.test("walkers keep walking speed and stay in their area", () => {
  const town = townArea(2112);
  const random = prng(3);
  for (let i = 0; i < 50; i++) {
    const w = new Walker(town, random);
    for (let t = 0; t < 400; t++) {
      const { x, z } = w;
      w.step(0.05);
      assert.ok(Math.hypot(w.x - x, w.z - z) <= WALK_SPEED * 0.05 + 1e-9);
      assert.ok(w.x > town.x0 && w.x < town.x1 && w.z > town.z0 && w.z < town.z1);
    }
  }
});

Deno.test("tick quantiles interpolate inside the histogram's buckets", () => {
  const before = new Map([[0.001, 0], [0.002, 0], [Infinity, 0]]);
  const after = new Map([[0.001, 50], [0.002, 100], [Infinity, 100]]);
  assert.equal(bucketQuantileMs(before, after, 0.5), 1);
  assert.equal(bucketQuantileMs(before, after, 0.75), 1.5);
  assert.equal(bucketQuantileMs(before, before, 0.5), 0);
});

Deno.test("a small world run end to end: quantized positions arrive, figures, verdict, profile", async () => {
  const profileDir = await Deno.makeTempDir();
  const run = await runWorld({
    profileDir,
    label: "spread sealed",
    layout: "spread",
    mode: "interest",
    sealed: true,
    players: 24,
    warmupMs: 500,
    windowMs: 1000,
  });
  assert.equal(run.load.joined, 24);
  assert.equal(run.load.openAtEnd, 24);
  assert.ok(run.load.all.expected > 0);
  assert.ok(run.load.all.received > 0, JSON.stringify(run.load));
  assert.ok(run.load.all.bytesInPerPlayerPerS > 0);
  assert.ok(run.load.all.p99Ms > 0);
  assert.equal(run.world.fragmentSize, WORLD_FRAGMENT_SIZE);
  assert.equal(typeof run.pass, "boolean");
  const text = formatWorld({ runs: [run], confirmed: false, goals: [], comparison: "x" });
  assert.match(text, /spread sealed\s+24/);
  assert.ok((run.profile ?? []).length > 0, "the cluster's profile is summarised");
  await Deno.remove(profileDir, { recursive: true });
});
