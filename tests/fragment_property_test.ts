import assert from "node:assert/strict";
import fc from "fast-check";
import {
  type EntityId,
  FragmentGrid,
  FragmentGridError,
  type FragmentGridOptions,
} from "../cluster/fragment_grid.ts";
import { fragmentId } from "../cluster/fragment_id.ts";
import { type MoveState, readMoveState } from "../shared/protocol/move_state.ts";
import {
  POSITION_BATCH_TYPE,
  POSITION_ENTRY_BYTES,
  positionPrecision,
  readPositionEntry,
} from "../shared/protocol/position_batch.ts";
import { PacketType } from "../shared/protocol/packets.ts";
import { PositionSender } from "../cluster/position_sender.ts";

type Command =
  | { readonly kind: "add"; readonly id: EntityId; readonly state: MoveState }
  | { readonly kind: "move"; readonly id: EntityId; readonly state: MoveState }
  | { readonly kind: "remove"; readonly id: EntityId }
  | { readonly kind: "tick" };

const coord = fc.float({ min: -60, max: 60, noNaN: true, noDefaultInfinity: true });
const stateArb: fc.Arbitrary<MoveState> = fc.record({
  x: coord,
  y: fc.float({ min: -5, max: 5, noNaN: true, noDefaultInfinity: true }),
  z: coord,
  yaw: fc.option(fc.float({ min: -4, max: 4, noNaN: true }), { nil: undefined }),
  velocity: fc.option(fc.tuple(coord, coord, coord), { nil: undefined }),
}).map(({ x, y, z, yaw, velocity }) => {
  const s: {
    x: number;
    y: number;
    z: number;
    yaw?: number;
    vx?: number;
    vy?: number;
    vz?: number;
  } = { x, y, z };
  if (yaw !== undefined) s.yaw = yaw;
  if (velocity !== undefined) [s.vx, s.vy, s.vz] = velocity;
  return s;
});
const idArb = fc.integer({ min: 1, max: 7 });
const commandArb: fc.Arbitrary<Command> = fc.oneof(
  {
    arbitrary: fc.record({ kind: fc.constant("add" as const), id: idArb, state: stateArb }),
    weight: 3,
  },
  {
    arbitrary: fc.record({ kind: fc.constant("move" as const), id: idArb, state: stateArb }),
    weight: 6,
  },
  { arbitrary: fc.record({ kind: fc.constant("remove" as const), id: idArb }), weight: 1 },
  { arbitrary: fc.constant({ kind: "tick" as const }), weight: 4 },
);
const optionsArb: fc.Arbitrary<FragmentGridOptions> = fc.record({
  size: fc.constantFrom(5, 10, 25),
  viewDistance: fc.integer({ min: 0, max: 2 }),
  tickHz: fc.constant(20),
  maxPlayersPerFragment: fc.integer({ min: 1, max: 6 }),
  crowdThreshold: fc.integer({ min: 1, max: 4 }),
  bounds: fc.option(fc.constant({ minX: -40, minZ: -30, maxX: 40, maxZ: 45 }), {
    nil: undefined,
  }),
  quantized: fc.boolean(),
}).map(({ quantized, ...o }) =>
  o.bounds === undefined
    ? { ...o, bounds: undefined }
    // PositionBatch needs bounds; half the bounded runs use it.
    : { ...o, positionFormat: quantized ? "quantized" as const : "full" as const }
);

/** The reference world: plain arithmetic, no grid code. */
class Model {
  readonly entities = new Map<EntityId, { state: MoveState; fx: number; fz: number }>();
  constructor(readonly o: FragmentGridOptions) {}

  clamp(s: MoveState): MoveState {
    const b = this.o.bounds;
    if (b === undefined) return s;
    const x = Math.min(b.maxX, Math.max(b.minX, s.x));
    const z = Math.min(b.maxZ, Math.max(b.minZ, s.z));
    return x === s.x && z === s.z ? s : { ...s, x, z };
  }

  cell(s: MoveState): { fx: number; fz: number } {
    const b = this.o.bounds;
    let fx = Math.floor((s.x - (b?.minX ?? 0)) / this.o.size);
    let fz = Math.floor((s.z - (b?.minZ ?? 0)) / this.o.size);
    if (b !== undefined) {
      fx = Math.min(fx, Math.ceil((b.maxX - b.minX) / this.o.size) - 1);
      fz = Math.min(fz, Math.ceil((b.maxZ - b.minZ) / this.o.size) - 1);
    }
    return { fx: fx + 0, fz: fz + 0 }; // -0 → 0
  }

  population(fx: number, fz: number, except?: EntityId): number {
    let n = 0;
    for (const [id, e] of this.entities) if (id !== except && e.fx === fx && e.fz === fz) n++;
    return n;
  }

  /** Everybody within view distance of `id`, brute force. */
  inView(id: EntityId): Set<EntityId> {
    const me = this.entities.get(id)!;
    const vd = this.o.viewDistance ?? 1;
    const out = new Set<EntityId>();
    for (const [other, e] of this.entities) {
      if (other !== id && Math.max(Math.abs(e.fx - me.fx), Math.abs(e.fz - me.fz)) <= vd) {
        out.add(other);
      }
    }
    return out;
  }
}

function sorted(ids: Iterable<EntityId>): EntityId[] {
  return [...ids].sort((a, b) => a - b);
}

function same(a: MoveState, b: MoveState): boolean {
  return a.x === b.x && a.y === b.y && a.z === b.z && a.yaw === b.yaw && a.vx === b.vx &&
    a.vy === b.vy && a.vz === b.vz;
}

/** States heard through PositionBatch, by receiver and sender, to be judged by precision. */
const QUANTIZED = new WeakSet<MoveState>();

/** Distance between two angles, radians, around the circle. */
function angleGap(a: number, b: number): number {
  const d = Math.abs(a - b) % (2 * Math.PI);
  return Math.min(d, 2 * Math.PI - d);
}

/**
 * Whether `heard` is `truth` as the grid's format carries it: exact for MoveBatch and spawns,
 * within the stated precision (plus float rounding) for PositionBatch, whose yaw wraps and
 * whose missing yaw reads as 0 (velocity is not carried).
 */
function carries(heard: MoveState, truth: MoveState, o: FragmentGridOptions): boolean {
  if (!QUANTIZED.has(heard)) return same(heard, truth);
  const p = positionPrecision(o.bounds!);
  const slack = 1e-9;
  return Math.abs(heard.x - truth.x) <= p.x + slack && Math.abs(heard.z - truth.z) <= p.z + slack &&
    Math.abs(heard.y - truth.y) <= p.y + slack &&
    angleGap(heard.yaw ?? 0, truth.yaw ?? 0) <= p.yaw + slack;
}

/** Stats of all runs, to check the generators reach the interesting cases. */
const reached = {
  ticks: 0,
  spawns: 0,
  despawns: 0,
  updates: 0,
  full: 0,
  clamped: 0,
  quantized: 0,
};
/** Players found skipping batches after a tick (the lag test's own counter). */
let lagging = 0;

/**
 * Runs the commands against the grid and the model. With `lag`, batches go through a
 * PositionSender and the players `lag(id, tick)` names have a full queue that tick.
 */
function run(
  options: FragmentGridOptions,
  commands: readonly Command[],
  alwaysDue = false,
  lag?: (id: EntityId, tick: number) => boolean,
): void {
  const sender = new PositionSender();
  const grid = new FragmentGrid(options);
  const model = new Model(options);
  /** What each player's client believes: spawned minus despawned, with the last state heard. */
  const views = new Map<EntityId, Map<EntityId, MoveState>>();
  let now = 0;
  for (const cmd of [...commands, { kind: "tick" } as const]) {
    now += 5;
    if (cmd.kind === "add") {
      if (model.entities.has(cmd.id)) {
        assert.throws(() => grid.add(cmd.id, cmd.state, now), FragmentGridError);
        continue;
      }
      const stored = model.clamp(cmd.state);
      const { fx, fz } = model.cell(stored);
      const outcome = grid.add(cmd.id, cmd.state, now);
      if (model.population(fx, fz) >= options.maxPlayersPerFragment) {
        assert.equal(outcome, "fragment_full");
        reached.full++;
        continue;
      }
      assert.equal(outcome, stored === cmd.state ? "accepted" : "clamped");
      if (stored !== cmd.state) reached.clamped++;
      model.entities.set(cmd.id, { state: stored, fx, fz });
      views.set(cmd.id, new Map());
    } else if (cmd.kind === "move") {
      const outcome = grid.move(cmd.id, cmd.state, now);
      const e = model.entities.get(cmd.id);
      if (e === undefined) {
        assert.equal(outcome, "unknown_entity");
        continue;
      }
      const stored = model.clamp(cmd.state);
      const clamped = stored !== cmd.state;
      if (same(stored, e.state)) {
        assert.equal(outcome, clamped ? "clamped" : "unchanged");
        continue;
      }
      const { fx, fz } = model.cell(stored);
      if (
        (fx !== e.fx || fz !== e.fz) && model.population(fx, fz) >= options.maxPlayersPerFragment
      ) {
        assert.equal(outcome, "fragment_full");
        continue;
      }
      assert.equal(outcome, clamped ? "clamped" : "accepted");
      if (clamped) reached.clamped++;
      model.entities.set(cmd.id, { state: stored, fx, fz });
    } else if (cmd.kind === "remove") {
      assert.equal(grid.remove(cmd.id), model.entities.delete(cmd.id));
      views.delete(cmd.id);
    } else {
      const r = grid.tick(now);
      reached.ticks++;
      for (const id of r.interest.keys()) assert.ok(model.entities.has(id), `change for ${id}`);
      for (const [id, view] of views) {
        const change = r.interest.get(id);
        for (const gone of change?.left ?? []) {
          assert.ok(view.delete(gone), `${id} despawns ${gone} it never spawned`);
          reached.despawns++;
        }
        for (const s of change?.entered ?? []) {
          assert.ok(!view.has(s.id), `${id} spawns ${s.id} twice`);
          assert.notEqual(s.id, id);
          view.set(s.id, s.state);
          reached.spawns++;
        }
        // batchFramesFor wraps moveBatchFor's payloads in frame headers.
        const quantized = options.positionFormat === "quantized";
        const maxPayload = 2 + (quantized ? POSITION_ENTRY_BYTES : 33) * 3;
        const frames = r.batchFramesFor(id, maxPayload);
        const payloads = r.moveBatchFor(id, maxPayload);
        assert.equal(frames.length, payloads.length);
        frames.forEach((frame, i) => {
          assert.equal(new DataView(frame.buffer, frame.byteOffset).getUint32(0), frame.length - 4);
          assert.equal(frame[4], quantized ? POSITION_BATCH_TYPE : PacketType.MoveBatch);
          assert.deepEqual(frame.subarray(5), payloads[i], "a frame wraps its payload");
        });
      }
      // The cluster's path: every recipient's frames, built fragment by fragment from the
      // shared blocks (small frames force the split path too).
      const quantized = options.positionFormat === "quantized";
      const maxPayload = 2 + (quantized ? POSITION_ENTRY_BYTES : 33) * 3;
      const visited = new Set<EntityId>();
      const apply = (id: EntityId, frame: Uint8Array) => {
        visited.add(id);
        const view = views.get(id);
        assert.ok(view !== undefined, `a frame for ${id}, not in the grid`);
        const dv = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
        assert.equal(dv.getUint32(0), frame.length - 4, "frame length field");
        assert.equal(frame[4], quantized ? POSITION_BATCH_TYPE : PacketType.MoveBatch);
        assert.ok(frame.length - 5 <= maxPayload);
        let offset = 7;
        for (let n = dv.getUint16(5); n > 0; n--) {
          const other = dv.getUint32(offset);
          let state: MoveState;
          if (quantized) {
            state = readPositionEntry(dv, offset, options.bounds!).state;
            QUANTIZED.add(state);
            offset += POSITION_ENTRY_BYTES;
            reached.quantized++;
          } else {
            const read = readMoveState(dv, offset + 4);
            assert.ok(read);
            state = read.state;
            offset = read.offset;
          }
          assert.notEqual(other, id, "a player never receives its own entry");
          assert.ok(view.has(other), `${id} got an update about unspawned ${other}`);
          view.set(other, state);
          reached.updates++;
        }
        assert.equal(offset, frame.length);
      };
      if (lag === undefined) {
        r.forEachBatchFrame(apply, maxPayload);
        assert.deepEqual(sorted(visited), sorted(r.recipients()), "frames go to the recipients");
      } else {
        sender.send(r, (id) => (lag(id, reached.ticks) ? 1 << 30 : 0), apply, maxPayload);
        lagging += sender.behind;
      }
      for (const [id, view] of views) {
        const e = model.entities.get(id)!;
        assert.deepEqual(grid.fragmentCoordsOf(id), { fx: e.fx, fz: e.fz });
        assert.deepEqual(sorted(view.keys()), sorted(model.inView(id)), `view of ${id}`);
        for (const [other, heard] of view) {
          const o = model.entities.get(other)!;
          const due = r.isDue(fragmentId(o.fx, o.fz));
          if (alwaysDue) assert.ok(due);
          if (due && !sender.isBehind(id)) {
            assert.ok(carries(heard, o.state, options), `${id} has a stale state of ${other}`);
          }
        }
      }
    }
  }
}

Deno.test("every player's view equals the brute-force set in view, with latest states when due", () => {
  fc.assert(
    fc.property(
      optionsArb,
      fc.array(commandArb, { minLength: 10, maxLength: 120, size: "medium" }),
      (o, c) => run(o, c),
    ),
    {
      numRuns: 300,
    },
  );
  // The generators must reach every interesting case, or the property proves little.
  for (const [name, n] of Object.entries(reached)) {
    assert.ok(n > 50, `${name} reached ${n} times: ${JSON.stringify(reached)}`);
  }
});

Deno.test("with no crowding every fragment is due every tick, so every view is always current", () => {
  const calm = optionsArb.map((o) => ({ ...o, crowdThreshold: 7, maxPlayersPerFragment: 7 }));
  fc.assert(
    fc.property(
      calm,
      fc.array(commandArb, { minLength: 10, maxLength: 120, size: "medium" }),
      (o, c) => run(o, c, true),
    ),
    { numRuns: 200 },
  );
});

Deno.test("players whose queue is full skip batches and, once drained, a snapshot makes them current", () => {
  fc.assert(
    fc.property(
      optionsArb,
      fc.array(commandArb, { minLength: 10, maxLength: 120, size: "medium" }),
      fc.integer({ min: 0, max: 0xffff }),
      // Lagging players whose hash says so, on roughly a third of the ticks.
      (o, c, seed) => run(o, c, false, (id, tick) => ((id * 31 + tick * 17 + seed) % 7) < 2),
    ),
    { numRuns: 200 },
  );
  assert.ok(lagging > 50, `lagging reached ${lagging} times`);
});
