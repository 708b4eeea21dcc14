import assert from "node:assert/strict";
import {
  type EntityId,
  FragmentGrid,
  FragmentGridError,
  type FragmentGridOptions,
  type TickResult,
} from "../cluster/fragment_grid.ts";
import {
  FRAGMENT_COORD_LIMIT,
  fragmentCoords,
  fragmentDistance,
  fragmentId,
} from "../cluster/fragment_id.ts";
import { type MoveState, readMoveState } from "../shared/protocol/move_state.ts";

const BASE: FragmentGridOptions = {
  size: 10,
  tickHz: 20,
  maxPlayersPerFragment: 100,
  crowdThreshold: 50,
};

function at(x: number, z: number, y = 0): MoveState {
  return { x, y, z };
}

/** Decodes a MoveBatch payload the way a client would, failing on any malformed byte. */
function decodeBatch(payload: Uint8Array): { id: EntityId; state: MoveState }[] {
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const count = view.getUint16(0);
  const out: { id: EntityId; state: MoveState }[] = [];
  let offset = 2;
  for (let i = 0; i < count; i++) {
    const id = view.getUint32(offset);
    const read = readMoveState(view, offset + 4);
    assert.ok(read, `entry ${i} decodes`);
    out.push({ id, state: read.state });
    offset = read.offset;
  }
  assert.equal(offset, payload.length, "no trailing bytes");
  return out;
}

function batchFor(result: TickResult, id: EntityId): { id: EntityId; state: MoveState }[] {
  return result.moveBatchFor(id).flatMap(decodeBatch);
}

Deno.test("players far apart never receive each other", () => {
  const grid = new FragmentGrid(BASE);
  grid.add(1, at(0, 0), 0);
  grid.add(2, at(1000, 1000), 0);
  for (let t = 1; t <= 20; t++) {
    grid.move(1, at(t % 7, t % 5), t);
    grid.move(2, at(1000 + (t % 7), 1000 - (t % 3)), t);
    const r = grid.tick(t * 50);
    assert.equal(r.interest.size, 0);
    assert.deepEqual(r.updatesFor(1), []);
    assert.deepEqual(r.updatesFor(2), []);
    assert.deepEqual(r.moveBatchFor(1), []);
    assert.deepEqual(r.moveBatchFor(2), []);
    assert.deepEqual(r.recipients(), []);
  }
});

Deno.test("walking across a border at the edge of view gives exactly one leave, then one enter", () => {
  const grid = new FragmentGrid(BASE); // viewDistance 1
  grid.add(1, at(5, 5), 0); // watcher in fragment (0,0)
  grid.add(2, at(15, 5), 0); // walker in (1,0): the edge of the watcher's view
  const first = grid.tick(0);
  assert.deepEqual(first.interest.get(1), { entered: [{ id: 2, state: at(15, 5) }], left: [] });
  assert.deepEqual(first.interest.get(2), { entered: [{ id: 1, state: at(5, 5) }], left: [] });

  const seen: { watcher: string[]; walker: string[] } = { watcher: [], walker: [] };
  const walk = (from: number, to: number, tick0: number) => {
    const step = from < to ? 0.5 : -0.5;
    let t = tick0;
    for (let x = from + step; from < to ? x <= to : x >= to; x += step) {
      assert.equal(grid.move(2, at(x, 5), t), "accepted");
      const r = grid.tick(t++);
      for (const id of r.interest.get(1)?.left ?? []) seen.watcher.push(`left ${id}`);
      for (const s of r.interest.get(1)?.entered ?? []) seen.watcher.push(`enter ${s.id}`);
      for (const id of r.interest.get(2)?.left ?? []) seen.walker.push(`left ${id}`);
      for (const s of r.interest.get(2)?.entered ?? []) seen.walker.push(`enter ${s.id}`);
    }
    return t;
  };
  const t = walk(15, 29, 1); // to fragment (2,0): out of view
  assert.deepEqual(seen, { watcher: ["left 2"], walker: ["left 1"] });
  walk(29, 15, t); // back into (1,0)
  assert.deepEqual(seen, {
    watcher: ["left 2", "enter 2"],
    walker: ["left 1", "enter 1"],
  });
});

Deno.test("the spawn after walking back into view carries the current state", () => {
  const grid = new FragmentGrid(BASE);
  grid.add(1, at(5, 5), 0);
  grid.add(2, at(50, 5), 0);
  assert.equal(grid.tick(0).interest.size, 0);
  grid.move(2, at(40, 5), 1);
  grid.move(2, at(19.5, 5, 3), 2);
  const r = grid.tick(3);
  assert.deepEqual(r.interest.get(1), { entered: [{ id: 2, state: at(19.5, 5, 3) }], left: [] });
});

Deno.test("an unchanged player produces no update", () => {
  const grid = new FragmentGrid(BASE);
  grid.add(1, at(1, 1), 0);
  grid.add(2, at(2, 2), 0);
  grid.tick(0);
  for (let t = 1; t <= 5; t++) {
    if (t === 3) assert.equal(grid.move(2, at(2, 2), t), "unchanged");
    const r = grid.tick(t);
    assert.equal(r.bytesEncoded, 0);
    assert.deepEqual(r.updatedFragments, []);
    assert.deepEqual(r.updatesFor(1), []);
    assert.deepEqual(r.moveBatchFor(1), []);
    assert.deepEqual(r.recipients(), []);
  }
  grid.move(2, at(3, 2), 6);
  const r = grid.tick(6);
  assert.deepEqual(r.updatesFor(1), [{ id: 2, state: at(3, 2) }]);
  assert.deepEqual(r.updatesFor(2), []); // excluding itself
  assert.deepEqual(r.recipients(), [1]);
});

Deno.test("a crowded fragment lowers its rate: half above the threshold, a quarter above twice it", () => {
  const countUpdates = (population: number): { updates: number; hz: number } => {
    const grid = new FragmentGrid({ ...BASE, crowdThreshold: 3 });
    for (let i = 1; i <= population; i++) grid.add(i, at(i * 0.1, 1), 0);
    grid.tick(0);
    let updates = 0;
    let sent = 0;
    for (let t = 1; t <= 16; t++) {
      for (let i = 1; i <= population; i++) grid.move(i, at(i * 0.1, 1 + t * 0.01), t);
      const r = grid.tick(t);
      const got = r.updatesFor(1);
      if (got.length > 0) {
        updates++;
        // Every other player's latest state, nothing stale.
        assert.equal(got.length, population - 1);
        for (const u of got) assert.deepEqual(u.state, at(u.id * 0.1, 1 + t * 0.01));
      }
      sent += r.updatedFragments.length;
      assert.equal(r.isDue(grid.fragmentOf(1)!), got.length > 0);
    }
    assert.equal(sent, updates);
    const [stats] = grid.fragmentStats();
    return { updates, hz: stats.updateHz };
  };
  assert.deepEqual(countUpdates(3), { updates: 16, hz: 20 });
  assert.deepEqual(countUpdates(4), { updates: 8, hz: 10 });
  assert.deepEqual(countUpdates(6), { updates: 8, hz: 10 });
  assert.deepEqual(countUpdates(7), { updates: 4, hz: 5 });
});

Deno.test("changes of a fragment that is not due accumulate and only the latest is sent", () => {
  const grid = new FragmentGrid({ ...BASE, crowdThreshold: 1 });
  grid.add(1, at(1, 1), 0);
  grid.add(2, at(2, 2), 0);
  grid.tick(0);
  const f = grid.fragmentOf(1)!;
  let t = 1;
  // Move several times across ticks until the fragment is due: only the last state arrives.
  for (;;) {
    grid.move(2, at(2 + t, 2), t);
    const r = grid.tick(t);
    if (r.isDue(f)) {
      assert.deepEqual(batchFor(r, 1), [{ id: 2, state: at(2 + t, 2) }]);
      break;
    }
    assert.deepEqual(r.moveBatchFor(1), []);
    t++;
  }
  assert.ok(t <= 2);
});

Deno.test("the per-fragment cap refuses an extra player, on add and on move", () => {
  const grid = new FragmentGrid({ ...BASE, maxPlayersPerFragment: 2 });
  assert.equal(grid.add(1, at(1, 1), 0), "accepted");
  assert.equal(grid.add(2, at(2, 2), 0), "accepted");
  assert.equal(grid.add(3, at(3, 3), 0), "fragment_full");
  assert.equal(grid.size, 2);
  assert.equal(grid.stateOf(3), undefined);
  assert.equal(grid.add(3, at(13, 3), 0), "accepted");
  assert.equal(grid.move(3, at(9, 3), 1), "fragment_full");
  assert.deepEqual(grid.stateOf(3), at(13, 3));
  assert.deepEqual(grid.fragmentCoordsOf(3), { fx: 1, fz: 0 });
  // Moving inside a full fragment is fine; a free slot lets the move in.
  assert.equal(grid.move(2, at(2.5, 2), 1), "accepted");
  assert.equal(grid.remove(2), true);
  assert.equal(grid.move(3, at(9, 3), 2), "accepted");
  assert.deepEqual(grid.playersIn(fragmentId(0, 0)).sort(), [1, 3]);
});

Deno.test("every receiver shares one encoded block and its own entry is left out", () => {
  const grid = new FragmentGrid(BASE);
  for (let i = 1; i <= 4; i++) grid.add(i, at(i, i), 0);
  grid.add(5, at(15, 5), 0); // neighbouring fragment
  grid.tick(0);
  grid.move(1, { x: 1.5, y: 1, z: 1, yaw: 0.5 }, 1);
  grid.move(2, { x: 2.5, y: 2, z: 2, vx: 1, vy: 0, vz: -1 }, 1);
  grid.move(3, at(3.5, 3), 1);
  const r = grid.tick(1);
  assert.deepEqual(r.updatedFragments, [fragmentId(0, 0)]);
  // One block: 3 entries, encoded once (4 + 17, 4 + 25, 4 + 13 bytes).
  assert.equal(r.bytesEncoded, 21 + 29 + 17);
  const all = [
    { id: 1, state: { x: 1.5, y: 1, z: 1, yaw: 0.5 } },
    { id: 2, state: { x: 2.5, y: 2, z: 2, vx: 1, vy: 0, vz: -1 } },
    { id: 3, state: at(3.5, 3) },
  ];
  assert.deepEqual(batchFor(r, 4), all);
  assert.deepEqual(batchFor(r, 5), all);
  assert.deepEqual(r.moveBatchFor(4), r.moveBatchFor(5)); // same bytes
  assert.deepEqual(batchFor(r, 1), [all[1], all[2]]);
  assert.deepEqual(batchFor(r, 2), [all[0], all[2]]);
  assert.deepEqual(batchFor(r, 3), [all[0], all[1]]);
  assert.deepEqual(r.recipients().sort(), [1, 2, 3, 4, 5]);
  for (const id of [1, 2, 3, 4, 5]) {
    assert.deepEqual(batchFor(r, id), r.updatesFor(id));
  }
  assert.deepEqual(r.moveBatchFor(99), []);
  assert.deepEqual(r.updatesFor(99), []);
  const stats = [...grid.fragmentStats()].find((s) => s.fx === 0 && s.fz === 0);
  assert.equal(stats?.bytesOut, 67);
  assert.equal(grid.bytesOut, 67);
});

Deno.test("a lone mover in a fragment is nobody's recipient, itself included", () => {
  const grid = new FragmentGrid(BASE);
  grid.add(1, at(1, 1), 0);
  grid.add(2, at(500, 1), 0);
  grid.tick(0);
  grid.move(1, at(2, 1), 1);
  const r = grid.tick(1);
  assert.equal(r.updatedFragments.length, 1);
  assert.deepEqual(r.recipients(), []);
  assert.deepEqual(r.moveBatchFor(1), []);
});

Deno.test("a batch too big for one frame is split at entry boundaries", () => {
  const grid = new FragmentGrid(BASE);
  for (let i = 1; i <= 41; i++) grid.add(i, at(i * 0.125, 1), 0);
  grid.tick(0);
  for (let i = 1; i <= 41; i++) grid.move(i, at(i * 0.125, 2), 1);
  const r = grid.tick(1);
  const payloads = r.moveBatchFor(41, 2 + 17 * 7); // 7 entries of 17 bytes per payload
  assert.equal(payloads.length, 6); // 40 entries: 6 × ≤ 7
  for (const p of payloads) assert.ok(p.length <= 2 + 17 * 7);
  const entries = payloads.flatMap(decodeBatch);
  assert.deepEqual(entries.map((e) => e.id), Array.from({ length: 40 }, (_, i) => i + 1));
  assert.deepEqual(entries, r.updatesFor(41));
  assert.throws(() => r.moveBatchFor(41, 34), RangeError);
  assert.throws(() => r.moveBatchFor(41, 1.5), RangeError);
  assert.equal(r.moveBatchFor(41, 35).length, 40);
});

Deno.test("removing a player despawns it for its watchers; a re-added id is despawned and respawned", () => {
  const grid = new FragmentGrid(BASE);
  grid.add(1, at(1, 1), 0);
  grid.add(2, at(2, 2), 0);
  grid.add(3, at(3, 3), 0);
  grid.tick(0);
  assert.equal(grid.remove(3), true);
  assert.equal(grid.remove(3), false);
  let r = grid.tick(1);
  assert.deepEqual(r.interest.get(1), { entered: [], left: [3] });
  assert.deepEqual(r.interest.get(2), { entered: [], left: [3] });
  assert.equal(r.interest.has(3), false);

  grid.remove(2);
  assert.equal(grid.add(2, at(5, 5), 2), "accepted");
  r = grid.tick(2);
  assert.deepEqual(r.interest.get(1), { entered: [{ id: 2, state: at(5, 5) }], left: [2] });
  assert.deepEqual(r.interest.get(2), { entered: [{ id: 1, state: at(1, 1) }], left: [] });
});

Deno.test("a player moving out and back before a tick changes nobody's view", () => {
  const grid = new FragmentGrid(BASE);
  grid.add(1, at(1, 1), 0);
  grid.add(2, at(2, 2), 0);
  grid.tick(0);
  grid.move(2, at(200, 2), 1);
  grid.move(2, at(3, 2), 1);
  const r = grid.tick(1);
  assert.equal(r.interest.size, 0);
  assert.deepEqual(r.updatesFor(1), [{ id: 2, state: at(3, 2) }]);
});

Deno.test("viewDistance 0 shows only the own fragment, 2 shows two rings", () => {
  for (const [vd, expect] of [[0, [2]], [2, [2, 3, 4]]] as const) {
    const grid = new FragmentGrid({ ...BASE, viewDistance: vd });
    grid.add(1, at(5, 5), 0);
    grid.add(2, at(6, 6), 0);
    grid.add(3, at(15, -5), 0); // (1,-1)
    grid.add(4, at(-15, 25), 0); // (-2,2)
    grid.add(5, at(35, 5), 0); // (3,0)
    const ids = grid.tick(0).interest.get(1)?.entered.map((s) => s.id).sort();
    assert.deepEqual(ids, expect);
    assert.equal(grid.viewDistance, vd);
  }
});

Deno.test("positions outside the bounds are clamped onto the edge", () => {
  const grid = new FragmentGrid({
    ...BASE,
    bounds: { minX: -50, minZ: 0, maxX: 50, maxZ: 95 },
  });
  assert.equal(grid.add(1, at(-80, 200, 7), 0), "clamped");
  assert.deepEqual(grid.stateOf(1), at(-50, 95, 7));
  assert.deepEqual(grid.fragmentCoordsOf(1), { fx: 0, fz: 9 });
  assert.equal(grid.move(1, { x: 50, y: 0, z: 0, yaw: 1 }, 1), "accepted");
  assert.deepEqual(grid.fragmentCoordsOf(1), { fx: 9, fz: 0 }); // maxX lands in the last column
  assert.equal(grid.move(1, { x: 60, y: 0, z: -1, yaw: 1 }, 2), "clamped");
  assert.deepEqual(grid.stateOf(1), { x: 50, y: 0, z: 0, yaw: 1 });
  // Clamped onto the stored state: still reported (the client needs a correction), nothing sent.
  assert.equal(grid.move(1, { x: 70, y: 0, z: -1, yaw: 1 }, 3), "clamped");
  assert.equal(grid.lastUpdateMs(1), 1);
  assert.equal(grid.fragmentAt(-1000, 1000), fragmentId(0, 9));
  assert.equal(grid.fragmentAt(-45, 15), fragmentId(0, 1));
});

Deno.test("an unbounded world saturates fragment coordinates instead of overflowing", () => {
  const grid = new FragmentGrid(BASE);
  assert.equal(grid.add(1, at(3e38, -3e38), 0), "accepted");
  assert.deepEqual(grid.fragmentCoordsOf(1), {
    fx: FRAGMENT_COORD_LIMIT - 1,
    fz: -FRAGMENT_COORD_LIMIT,
  });
  grid.add(2, at(3.3e38, -3.1e38), 0);
  assert.deepEqual(grid.tick(0).interest.get(1)?.entered.map((s) => s.id), [2]);
  assert.equal(grid.move(1, at(3.5e38, 0), 1), "invalid_state"); // beyond f32
});

Deno.test("the players interested in a fragment are those whose view covers it", () => {
  const grid = new FragmentGrid(BASE);
  grid.add(1, at(5, 5), 0); // (0,0)
  grid.add(2, at(-5, -5), 0); // (-1,-1)
  grid.add(3, at(25, 5), 0); // (2,0)
  grid.add(4, at(500, 5), 0);
  assert.deepEqual(grid.playersInterestedIn(fragmentId(0, 0)).sort(), [1, 2]);
  assert.deepEqual(grid.playersInterestedIn(fragmentId(1, 0)).sort(), [1, 3]);
  assert.deepEqual(grid.playersInterestedIn(fragmentId(-5, -5)), []);
  assert.deepEqual(grid.playersIn(fragmentId(0, 0)), [1]);
  assert.deepEqual(grid.playersIn(fragmentId(7, 7)), []);
});

Deno.test("fragment stats list populated fragments with players, rate and bytes", () => {
  const grid = new FragmentGrid({ ...BASE, crowdThreshold: 2 });
  grid.add(1, at(1, 1), 0);
  grid.add(2, at(2, 1), 0);
  grid.add(3, at(3, 1), 0);
  grid.add(4, at(45, 1), 0);
  const byPlace = new Map([...grid.fragmentStats()].map((s) => [`${s.fx},${s.fz}`, s]));
  assert.equal(byPlace.size, 2);
  assert.deepEqual(byPlace.get("0,0"), {
    id: fragmentId(0, 0),
    fx: 0,
    fz: 0,
    players: 3,
    updateHz: 10,
    bytesOut: 0,
  });
  assert.equal(byPlace.get("4,0")?.updateHz, 20);
  grid.remove(4);
  assert.equal([...grid.fragmentStats()].length, 1); // empty fragments are dropped
});

Deno.test("time is recorded per player and the tick counter advances", () => {
  const grid = new FragmentGrid(BASE);
  grid.add(1, at(1, 1), 100);
  assert.equal(grid.lastUpdateMs(1), 100);
  grid.move(1, at(2, 1), 180);
  assert.equal(grid.lastUpdateMs(1), 180);
  grid.move(1, at(2, 1), 190); // unchanged: not an update
  assert.equal(grid.lastUpdateMs(1), 180);
  assert.equal(grid.lastUpdateMs(2), undefined);
  const r = grid.tick(200);
  assert.equal(r.tick, 1);
  assert.equal(r.nowMs, 200);
  assert.equal(grid.tickCount, 1);
});

Deno.test("a tick result read after the grid changed throws stale_tick_result", () => {
  const grid = new FragmentGrid(BASE);
  grid.add(1, at(1, 1), 0);
  grid.add(2, at(2, 1), 0);
  const r = grid.tick(0);
  grid.move(2, at(3, 1), 1);
  for (
    const use of [
      () => r.moveBatchFor(1),
      () => r.updatesFor(1),
      () => r.recipients(),
      () => r.isDue(fragmentId(0, 0)),
    ]
  ) {
    assert.throws(
      use,
      (e: unknown) => e instanceof FragmentGridError && e.code === "stale_tick_result",
    );
  }
  const r2 = grid.tick(1);
  grid.remove(5); // not present: not a change
  assert.deepEqual(r2.updatesFor(1), [{ id: 2, state: at(3, 1) }]);
});

Deno.test("bad player input is refused with an outcome, never a throw", () => {
  const grid = new FragmentGrid(BASE);
  for (const v of [NaN, Infinity, -Infinity, 1e39]) {
    assert.equal(grid.add(1, at(v, 0), 0), "invalid_state");
    assert.equal(grid.add(1, { x: 0, y: v, z: 0 }, 0), "invalid_state");
    assert.equal(grid.add(1, { x: 0, y: 0, z: 0, yaw: v }, 0), "invalid_state");
    assert.equal(grid.add(1, { x: 0, y: 0, z: 0, vx: 0, vy: v, vz: 0 }, 0), "invalid_state");
  }
  assert.equal(grid.size, 0);
  grid.add(1, at(1, 1), 0);
  assert.equal(grid.move(1, at(1, NaN), 1), "invalid_state");
  assert.equal(grid.move(1, { x: 1, y: 0, z: 1, vz: Infinity }, 1), "invalid_state");
  assert.deepEqual(grid.stateOf(1), at(1, 1));
  assert.equal(grid.move(7, at(1, 1), 1), "unknown_entity");
});

Deno.test("programming errors throw typed errors that name the limit", () => {
  const grid = new FragmentGrid(BASE);
  grid.add(1, at(0, 0), 0);
  assert.throws(
    () => grid.add(1, at(0, 0), 0),
    (e: unknown) => e instanceof FragmentGridError && e.code === "duplicate_entity",
  );
  for (const id of [-1, 1.5, 2 ** 32, NaN]) {
    assert.throws(() => grid.add(id, at(0, 0), 0), RangeError);
  }
  assert.equal(grid.add(2 ** 32 - 1, at(0, 0), 0), "accepted");
  assert.throws(() => grid.add(3, at(0, 0), NaN), RangeError);
  assert.throws(() => grid.move(1, at(0, 0), Infinity), RangeError);
  assert.throws(() => grid.tick(NaN), RangeError);
  assert.throws(() => grid.fragmentAt(NaN, 0), RangeError);

  const bad: [Partial<FragmentGridOptions>, RegExp][] = [
    [{ size: 0 }, /size/],
    [{ size: Infinity }, /size/],
    [{ viewDistance: -1 }, /viewDistance/],
    [{ viewDistance: 1.5 }, /viewDistance/],
    [{ viewDistance: 17 }, /viewDistance/],
    [{ tickHz: 0 }, /tickHz/],
    [{ maxPlayersPerFragment: 0 }, /maxPlayersPerFragment/],
    [{ crowdThreshold: 0.5 }, /crowdThreshold/],
    [{ bounds: { minX: 0, minZ: 0, maxX: NaN, maxZ: 1 } }, /bounds.maxX/],
    [{ bounds: { minX: 0, minZ: 0, maxX: 0, maxZ: 1 } }, /bounds/],
    [{ bounds: { minX: 0, minZ: 0, maxX: 1e12, maxZ: 1 }, size: 1 }, /fragments on an axis/],
  ];
  for (const [patch, message] of bad) {
    assert.throws(() => new FragmentGrid({ ...BASE, ...patch }), (e: unknown) => {
      return e instanceof RangeError && message.test(e.message);
    });
  }
});

Deno.test("fragment ids pack and unpack coordinates and refuse what they cannot hold", () => {
  for (const [fx, fz] of [[0, 0], [-1, 1], [FRAGMENT_COORD_LIMIT - 1, -FRAGMENT_COORD_LIMIT]]) {
    assert.deepEqual(fragmentCoords(fragmentId(fx, fz)), { fx, fz });
  }
  assert.throws(() => fragmentId(FRAGMENT_COORD_LIMIT, 0), RangeError);
  assert.throws(() => fragmentId(0, -FRAGMENT_COORD_LIMIT - 1), RangeError);
  assert.throws(() => fragmentId(NaN, 0), RangeError);
  assert.throws(() => fragmentCoords(-1 as ReturnType<typeof fragmentId>), RangeError);
  assert.throws(() => fragmentCoords(2 ** 52 as ReturnType<typeof fragmentId>), RangeError);
  assert.throws(() => fragmentCoords(0.5 as ReturnType<typeof fragmentId>), RangeError);
  assert.equal(fragmentDistance(fragmentId(-2, 3), fragmentId(1, 1)), 3);
});
