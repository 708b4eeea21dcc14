// This module is browser compatible.
/**
 * Spatial interest management for one cluster (the sans-I/O core of "fragments"): the world is
 * split into square fragments on the x/z plane (y is height); each player sees the players in
 * the fragments within `viewDistance` (Chebyshev, in fragments) of its own, and nothing else.
 *
 * The cluster feeds it `add` / `move` / `remove` as packets arrive and calls `tick(nowMs)` on
 * its timer; the {@linkcode TickResult} says who must spawn / despawn whom and builds each
 * player's MoveBatch (0x2B) payload from per-fragment blocks that are encoded once per tick and
 * shared by every receiver. Crowded fragments update at a lower rate instead of melting down.
 *
 * This module never touches sockets, timers or clocks (time is passed in), never throws on bad
 * player input (it returns an outcome instead), and never lets a fragment hold more than
 * `maxPlayersPerFragment` players.
 *
 * @module
 */

import { SustenetError } from "../shared/errors.ts";
import {
  MOVE_STATE_MAX_SIZE,
  type MoveState,
  writeMoveState,
} from "../shared/protocol/move_state.ts";
import {
  POSITION_BATCH_TYPE,
  POSITION_ENTRY_BYTES,
  writePositionEntry,
} from "../shared/protocol/position_batch.ts";
import { PacketType } from "../shared/protocol/packets.ts";
import {
  FRAGMENT_COORD_LIMIT,
  fragmentCoords,
  type FragmentId,
  packFragmentId,
} from "./fragment_id.ts";

/** A player in the grid: the cluster's client id (u32). */
export type EntityId = number;

/** World limits on the x/z plane, in world units. */
export interface FragmentBounds {
  /** Smallest x. */
  readonly minX: number;
  /** Smallest z. */
  readonly minZ: number;
  /** Largest x (greater than `minX`). */
  readonly maxX: number;
  /** Largest z (greater than `minZ`). */
  readonly maxZ: number;
}

/** Options of a {@linkcode FragmentGrid}. */
export interface FragmentGridOptions {
  /** Edge length of a square fragment, in world units (> 0). */
  readonly size: number;
  /**
   * World limits. Positions outside are clamped onto the edge (the move is accepted with the
   * outcome `"clamped"`, and the clamped state is the one stored and sent).
   * @default unbounded: positions are kept as given; fragment coordinates saturate at ±2^25.
   */
  readonly bounds?: FragmentBounds;
  /**
   * How many fragments around its own a player sees (0 = own only, 1 = own + 8 neighbours).
   * @default 1
   */
  readonly viewDistance?: number;
  /** How many times per second the cluster calls `tick` (for reported update rates). */
  readonly tickHz: number;
  /** Hard cap on players in one fragment; an add or move into a full fragment is refused. */
  readonly maxPlayersPerFragment: number;
  /**
   * Population above which a fragment updates every other tick; above twice this, every
   * fourth tick.
   */
  readonly crowdThreshold: number;
  /**
   * How position updates are encoded: `"full"` as MoveBatch (0x2B) entries (f32 fields, 17 to
   * 33 bytes each), `"quantized"` as PositionBatch (0x2F) entries (11 bytes each, x/z over the
   * bounds in 65,535 steps, y in 1/32 units, yaw in 1/256 turns, no velocity). `"quantized"`
   * needs `bounds`.
   * @default "full"
   */
  readonly positionFormat?: PositionFormat;
}

/** How a grid encodes position updates; see {@linkcode FragmentGridOptions.positionFormat}. */
export type PositionFormat = "full" | "quantized";

/**
 * What `add` did: `"accepted"`, `"clamped"` (accepted at the position clamped to the bounds),
 * `"fragment_full"` (refused: the target fragment is at its cap), `"invalid_state"` (refused:
 * a NaN, infinite or out-of-f32-range number).
 */
export type AddOutcome = "accepted" | "clamped" | "fragment_full" | "invalid_state";

/**
 * What `move` did: as {@linkcode AddOutcome}, plus `"unchanged"` (same state as stored, nothing
 * marked) and `"unknown_entity"`. On a refusal the stored state stays as it was; the cluster may
 * send it back to the client as a correction (a MoveBatch entry carrying the client's own id).
 */
export type MoveOutcome =
  | "accepted"
  | "clamped"
  | "unchanged"
  | "fragment_full"
  | "invalid_state"
  | "unknown_entity";

/** An entity with its state: a spawn, or an update in a MoveBatch. */
export interface EntityState {
  /** The entity's id. */
  readonly id: EntityId;
  /** Its latest state. */
  readonly state: MoveState;
}

/**
 * How one player's interest set changed during a tick. Send the despawns (`left`) before the
 * spawns (`entered`): an id removed and re-added before the tick appears in both.
 */
export interface InterestChange {
  /** Entities the player must spawn, with their current state. */
  readonly entered: readonly EntityState[];
  /** Entities the player must despawn. */
  readonly left: readonly EntityId[];
}

/** Metrics of one populated fragment. */
export interface FragmentStats {
  /** The fragment's id. */
  readonly id: FragmentId;
  /** Column. */
  readonly fx: number;
  /** Row. */
  readonly fz: number;
  /** Players in it now. */
  readonly players: number;
  /** Update rate its population gives it now (tickHz, /2 or /4). */
  readonly updateHz: number;
  /** Bytes of MoveBatch entries it has encoded since it became populated (a counter). */
  readonly bytesOut: number;
}

/**
 * The outcome of one {@linkcode FragmentGrid.tick}. It reads the grid's state as of that tick,
 * so it is valid only until the next `add`/`move`/`remove`/`tick` on the grid; its methods throw
 * {@linkcode FragmentGridError} (`"stale_tick_result"`) after that.
 */
export interface TickResult {
  /** The tick number (1 for the first tick). */
  readonly tick: number;
  /** The time passed to `tick`. */
  readonly nowMs: number;
  /** Spawn/despawn lists of the players whose interest set changed, and only those. */
  readonly interest: ReadonlyMap<EntityId, InterestChange>;
  /** Fragments that were due this tick and had changes: one encoded block each. */
  readonly updatedFragments: readonly FragmentId[];
  /** Bytes of MoveBatch entries encoded this tick (each block counted once). */
  readonly bytesEncoded: number;
  /**
   * Whether a fragment was due this tick (its changes, if any, were sent).
   * @param fragment A fragment id.
   */
  isDue(fragment: FragmentId): boolean;
  /** Players that receive at least one update this tick (each once). */
  recipients(): EntityId[];
  /**
   * The updates a player receives this tick, excluding its own entry (unknown player: none).
   * @param player The receiving player.
   */
  updatesFor(player: EntityId): EntityState[];
  /**
   * The player's MoveBatch payloads (`u16 count | count × (u32 id, MoveState)`), built by
   * copying the shared per-fragment blocks minus the player's own entry, split so that none
   * exceeds `maxPayloadBytes`. Empty when there is nothing to send (or the player is unknown).
   *
   * @param player The receiving player.
   * @param maxPayloadBytes Largest payload; the frame adds 1 type byte. @default 65535
   * @throws {RangeError} If `maxPayloadBytes` cannot hold one largest entry.
   */
  moveBatchFor(player: EntityId, maxPayloadBytes?: number): Uint8Array[];
  /**
   * The same batches as `moveBatchFor`, as whole frames ready to queue (`u32 length | u8 type |
   * payload`, the type being the grid's {@linkcode FragmentGrid.batchPacketType}): each built
   * with one allocation and one copy of the shared blocks, no frame encoding on top.
   *
   * @param player The receiving player.
   * @param maxPayloadBytes Largest payload (the frame's length field counts 1 more). @default 65535
   * @throws {RangeError} If `maxPayloadBytes` cannot hold one largest entry.
   */
  batchFramesFor(player: EntityId, maxPayloadBytes?: number): Uint8Array[];
  /**
   * Every recipient's batch frames at once (each recipient of `recipients()` visited with the
   * same entries as `batchFramesFor` gives it, possibly in another order), the fast way: the due
   * blocks around each fragment are gathered once for all its members.
   *
   * @param visit Called once per frame, with the receiving player.
   * @param maxPayloadBytes Largest payload. @default 65535
   * @throws {RangeError} If `maxPayloadBytes` cannot hold one largest entry.
   */
  forEachBatchFrame(
    visit: (player: EntityId, frame: Uint8Array) => void,
    maxPayloadBytes?: number,
  ): void;
  /**
   * Batch frames with the current state of every entity the player has been spawned (after
   * this tick's spawns and despawns), encoded for it alone: sent instead of this tick's batch to
   * a receiver that skipped batches, it makes that receiver current again.
   *
   * @param player The receiving player (unknown: none).
   * @param maxPayloadBytes Largest payload. @default 65535
   * @throws {RangeError} If `maxPayloadBytes` cannot hold one largest entry.
   */
  snapshotFramesFor(player: EntityId, maxPayloadBytes?: number): Uint8Array[];
}

/**
 * A programming error in the use of a {@linkcode FragmentGrid}: `"duplicate_entity"` (add of an
 * id already present) or `"stale_tick_result"` (a TickResult read after the grid changed).
 *
 * @example
 * ```ts
 * import { FragmentGrid, FragmentGridError } from "./fragment_grid.ts";
 * import assert from "node:assert/strict";
 *
 * const grid = new FragmentGrid({
 *   size: 10,
 *   tickHz: 20,
 *   maxPlayersPerFragment: 10,
 *   crowdThreshold: 5,
 * });
 * grid.add(1, { x: 0, y: 0, z: 0 }, 0);
 * assert.throws(() => grid.add(1, { x: 0, y: 0, z: 0 }, 0), FragmentGridError);
 * ```
 */
export class FragmentGridError extends SustenetError {}

/** Frame header: u32 length and the type byte. */
const FRAME_HEAD = 5;
/** Largest MoveBatch entry: u32 id + largest MoveState. */
const MAX_ENTRY_BYTES = 4 + MOVE_STATE_MAX_SIZE;
/** Largest MoveBatch payload in a default 65 536-byte frame (1 byte is the type). */
const DEFAULT_MAX_PAYLOAD = 65_535;
/** MoveBatch's count is a u16. */
const MAX_BATCH_COUNT = 0xffff;
const F32_MAX = 3.4028234663852886e38;

function isF32(v: number): boolean {
  // NaN fails both comparisons.
  return v >= -F32_MAX && v <= F32_MAX;
}

function isValidState(s: MoveState): boolean {
  return isF32(s.x) && isF32(s.y) && isF32(s.z) &&
    (s.yaw === undefined || isF32(s.yaw)) &&
    (s.vx === undefined || isF32(s.vx)) &&
    (s.vy === undefined || isF32(s.vy)) &&
    (s.vz === undefined || isF32(s.vz));
}

function sameState(a: MoveState, b: MoveState): boolean {
  return a.x === b.x && a.y === b.y && a.z === b.z && a.yaw === b.yaw && a.vx === b.vx &&
    a.vy === b.vy && a.vz === b.vz;
}

class Entity {
  readonly id: EntityId;
  state: MoveState;
  updatedMs: number;
  fragment: Fragment | undefined;
  alive = true;
  /** Whether it was in a fragment at the previous tick, and which (it was added since if not). */
  tickIn = false;
  tickFx = 0;
  tickFz = 0;
  /** Crossed, added or removed since the previous tick. */
  pending = false;
  /** Entities this player has been spawned (objects, so a re-added id is a new entity). */
  readonly known = new Set<Entity>();
  /** Stamp of the last interest recompute that found this entity in range. */
  mark = 0;
  /** Where this entity's entry sits in its fragment's block, valid when blockTick is current. */
  blockTick = -1;
  blockStart = 0;
  blockEnd = 0;

  constructor(id: EntityId, state: MoveState, nowMs: number) {
    this.id = id;
    this.state = state;
    this.updatedMs = nowMs;
  }
}

class Fragment {
  readonly id: FragmentId;
  readonly fx: number;
  readonly fz: number;
  /** Spreads reduced-rate fragments over ticks so neighbours are not all due together. */
  readonly phase: number;
  readonly members = new Set<Entity>();
  /** Members whose state changed since this fragment was last due. */
  readonly dirty = new Set<Entity>();
  /** Reused across ticks: the block is re-encoded in place, never reallocated per tick. */
  buffer: Uint8Array = new Uint8Array(0);
  view: DataView = new DataView(this.buffer.buffer);
  readonly blockEntities: Entity[] = [];
  blockLength = 0;
  blockTick = -1;
  bytesOut = 0;

  constructor(fx: number, fz: number) {
    this.id = packFragmentId(fx, fz);
    // `+ 0` turns a -0 (from Math.floor(-0 / size)) into 0 so coordinates compare cleanly.
    this.fx = fx + 0;
    this.fz = fz + 0;
    this.phase = (fx + 2 * fz) & 3;
  }
}

/** A rectangle of cells, bounds included. */
interface CellArea {
  x0: number;
  x1: number;
  z0: number;
  z1: number;
}

/** The grid's state, shared by the grid facade and the TickResult it hands out. */
class GridCore {
  readonly size: number;
  readonly viewDistance: number;
  readonly tickHz: number;
  readonly cap: number;
  readonly crowd: number;
  readonly bounds: FragmentBounds | undefined;
  readonly quantized: boolean;
  /** Largest entry of this grid's format: u32 id plus the state. */
  readonly maxEntry: number;
  readonly originX: number;
  readonly originZ: number;
  readonly minCell: number;
  readonly maxCellX: number;
  readonly maxCellZ: number;
  readonly entities = new Map<EntityId, Entity>();
  readonly fragments = new Map<number, Fragment>();
  readonly dirtyFragments = new Set<Fragment>();
  readonly pending: Entity[] = [];
  /** Bumped by every mutation; a TickResult is valid while it matches. */
  version = 0;
  tick = 0;
  stamp = 0;
  bytesOut = 0;
  /** Reused by moveBatchFor: the due fragments in one player's area. */
  readonly scratch: Fragment[] = [];
  /** Reused by {@linkcode GridCore.areaAround}. */
  readonly area: CellArea = { x0: 0, x1: 0, z0: 0, z1: 0 };

  constructor(o: FragmentGridOptions) {
    if (!(o.size > 0 && Number.isFinite(o.size))) {
      throw new RangeError(`size must be a positive finite number, got ${o.size}`);
    }
    const vd = o.viewDistance ?? 1;
    if (!Number.isInteger(vd) || vd < 0 || vd > 16) {
      throw new RangeError(`viewDistance must be an integer in [0, 16], got ${vd}`);
    }
    if (!(o.tickHz > 0 && Number.isFinite(o.tickHz))) {
      throw new RangeError(`tickHz must be a positive finite number, got ${o.tickHz}`);
    }
    if (!Number.isInteger(o.maxPlayersPerFragment) || o.maxPlayersPerFragment < 1) {
      throw new RangeError(
        `maxPlayersPerFragment must be an integer ≥ 1, got ${o.maxPlayersPerFragment}`,
      );
    }
    if (!Number.isInteger(o.crowdThreshold) || o.crowdThreshold < 1) {
      throw new RangeError(`crowdThreshold must be an integer ≥ 1, got ${o.crowdThreshold}`);
    }
    this.size = o.size;
    this.viewDistance = vd;
    this.tickHz = o.tickHz;
    this.cap = o.maxPlayersPerFragment;
    this.crowd = o.crowdThreshold;
    const format = o.positionFormat ?? "full";
    if (format !== "full" && format !== "quantized") {
      throw new RangeError(`positionFormat must be "full" or "quantized", got ${format}`);
    }
    if (format === "quantized" && o.bounds === undefined) {
      throw new RangeError(`positionFormat "quantized" needs bounds`);
    }
    this.quantized = format === "quantized";
    this.maxEntry = this.quantized ? POSITION_ENTRY_BYTES : MAX_ENTRY_BYTES;
    const b = o.bounds;
    if (b === undefined) {
      this.bounds = undefined;
      this.originX = 0;
      this.originZ = 0;
      this.minCell = -FRAGMENT_COORD_LIMIT;
      this.maxCellX = FRAGMENT_COORD_LIMIT - 1;
      this.maxCellZ = FRAGMENT_COORD_LIMIT - 1;
    } else {
      for (const k of ["minX", "minZ", "maxX", "maxZ"] as const) {
        if (!Number.isFinite(b[k])) {
          throw new RangeError(`bounds.${k} must be a finite number, got ${b[k]}`);
        }
      }
      if (!(b.maxX > b.minX) || !(b.maxZ > b.minZ)) {
        throw new RangeError("bounds.maxX/maxZ must be greater than bounds.minX/minZ");
      }
      const cols = Math.ceil((b.maxX - b.minX) / o.size);
      const rows = Math.ceil((b.maxZ - b.minZ) / o.size);
      if (cols > FRAGMENT_COORD_LIMIT || rows > FRAGMENT_COORD_LIMIT) {
        throw new RangeError(
          `bounds / size gives more than ${FRAGMENT_COORD_LIMIT} fragments on an axis`,
        );
      }
      this.bounds = { minX: b.minX, minZ: b.minZ, maxX: b.maxX, maxZ: b.maxZ };
      this.originX = b.minX;
      this.originZ = b.minZ;
      this.minCell = 0;
      this.maxCellX = cols - 1;
      this.maxCellZ = rows - 1;
    }
  }

  cellX(x: number): number {
    const c = Math.floor((x - this.originX) / this.size);
    return c < this.minCell ? this.minCell : c > this.maxCellX ? this.maxCellX : c;
  }

  /**
   * The cells within viewDistance of (fx, fz), clamped to the grid, written into one reused
   * object (the area loops run per player per tick and allocate nothing): callers destructure
   * it into locals at once, so a nested call cannot change a loop's bounds.
   */
  areaAround(fx: number, fz: number): CellArea {
    const vd = this.viewDistance;
    const a = this.area;
    a.x0 = Math.max(this.minCell, fx - vd);
    a.x1 = Math.min(this.maxCellX, fx + vd);
    a.z0 = Math.max(this.minCell, fz - vd);
    a.z1 = Math.min(this.maxCellZ, fz + vd);
    return a;
  }

  cellZ(z: number): number {
    const c = Math.floor((z - this.originZ) / this.size);
    return c < this.minCell ? this.minCell : c > this.maxCellZ ? this.maxCellZ : c;
  }

  /** The state as stored: clamped onto the bounds (a new object only when it had to be). */
  clamp(s: MoveState): MoveState {
    const b = this.bounds;
    if (b === undefined || (s.x >= b.minX && s.x <= b.maxX && s.z >= b.minZ && s.z <= b.maxZ)) {
      return s;
    }
    return {
      ...s,
      x: Math.min(b.maxX, Math.max(b.minX, s.x)),
      z: Math.min(b.maxZ, Math.max(b.minZ, s.z)),
    };
  }

  divisor(population: number): number {
    return population <= this.crowd ? 1 : population <= 2 * this.crowd ? 2 : 4;
  }

  isDue(f: Fragment | undefined, tick: number): boolean {
    if (f === undefined) return true;
    const d = this.divisor(f.members.size);
    return (tick + f.phase) % d === 0;
  }

  fragmentAt(fx: number, fz: number): Fragment | undefined {
    return this.fragments.get(packFragmentId(fx, fz));
  }

  /** The fragment at (fx, fz), created if missing. */
  openFragment(fx: number, fz: number): Fragment {
    const id = packFragmentId(fx, fz);
    let f = this.fragments.get(id);
    if (f === undefined) {
      f = new Fragment(fx, fz);
      this.fragments.set(id, f);
    }
    return f;
  }

  leaveFragment(e: Entity): void {
    const f = e.fragment;
    if (f === undefined) return;
    f.members.delete(e);
    f.dirty.delete(e);
    if (f.dirty.size === 0) this.dirtyFragments.delete(f);
    // Empty fragments are dropped so an unbounded world never accumulates them.
    if (f.members.size === 0) this.fragments.delete(f.id);
    e.fragment = undefined;
  }

  markPending(e: Entity): void {
    if (!e.pending) {
      e.pending = true;
      this.pending.push(e);
    }
  }

  markDirty(e: Entity): void {
    const f = e.fragment as Fragment;
    f.dirty.add(e);
    this.dirtyFragments.add(f);
  }

  changeOf(changes: Map<EntityId, { entered: EntityState[]; left: EntityId[] }>, id: EntityId): {
    entered: EntityState[];
    left: EntityId[];
  } {
    let c = changes.get(id);
    if (c === undefined) {
      c = { entered: [], left: [] };
      changes.set(id, c);
    }
    return c;
  }

  /**
   * Updates the view of `e` held by every non-pending player around fragment (cx, cz), skipping
   * fragments within view of (sx, sz) when `skip` (already visited from the other centre).
   */
  visitObservers(
    e: Entity,
    cx: number,
    cz: number,
    skip: boolean,
    sx: number,
    sz: number,
    changes: Map<EntityId, { entered: EntityState[]; left: EntityId[] }>,
  ): void {
    const vd = this.viewDistance;
    const ef = e.fragment;
    const { x0, x1, z0, z1 } = this.areaAround(cx, cz);
    for (let gx = x0; gx <= x1; gx++) {
      for (let gz = z0; gz <= z1; gz++) {
        if (skip && Math.abs(gx - sx) <= vd && Math.abs(gz - sz) <= vd) continue;
        const g = this.fragmentAt(gx, gz);
        if (g === undefined) continue;
        const sees = ef !== undefined && Math.abs(gx - ef.fx) <= vd && Math.abs(gz - ef.fz) <= vd;
        for (const p of g.members) {
          // A pending observer's whole view is recomputed afterwards.
          if (p === e || p.pending) continue;
          const has = p.known.has(e);
          if (sees && !has) {
            p.known.add(e);
            this.changeOf(changes, p.id).entered.push({ id: e.id, state: e.state });
          } else if (!sees && has) {
            p.known.delete(e);
            this.changeOf(changes, p.id).left.push(e.id);
          }
        }
      }
    }
  }

  /** Rebuilds the view of a live player from scratch and records the difference. */
  recompute(p: Entity, changes: Map<EntityId, { entered: EntityState[]; left: EntityId[] }>): void {
    const f = p.fragment as Fragment;
    const stamp = ++this.stamp;
    const { x0, x1, z0, z1 } = this.areaAround(f.fx, f.fz);
    for (let gx = x0; gx <= x1; gx++) {
      for (let gz = z0; gz <= z1; gz++) {
        const g = this.fragmentAt(gx, gz);
        if (g === undefined) continue;
        for (const m of g.members) {
          if (m === p) continue;
          m.mark = stamp;
          if (!p.known.has(m)) {
            p.known.add(m);
            this.changeOf(changes, p.id).entered.push({ id: m.id, state: m.state });
          }
        }
      }
    }
    for (const k of p.known) {
      if (k.mark !== stamp) {
        p.known.delete(k);
        this.changeOf(changes, p.id).left.push(k.id);
      }
    }
  }

  /** Encodes a fragment's dirty members into its reusable block: one encode, many readers. */
  encode(f: Fragment, nowTick: number): void {
    const need = f.dirty.size * this.maxEntry;
    if (f.buffer.length < need) {
      f.buffer = new Uint8Array(Math.max(need, f.buffer.length * 2));
      f.view = new DataView(f.buffer.buffer);
    }
    const view = f.view;
    const list = f.blockEntities;
    let at = 0;
    let i = 0;
    const bounds = this.bounds;
    for (const e of f.dirty) {
      e.blockTick = nowTick;
      e.blockStart = at;
      if (this.quantized) {
        at = writePositionEntry(view, at, e.id, e.state, bounds as FragmentBounds);
      } else {
        view.setUint32(at, e.id);
        at = writeMoveState(view, at + 4, e.state);
      }
      e.blockEnd = at;
      list[i++] = e;
    }
    list.length = i;
    f.dirty.clear();
    f.blockLength = at;
    f.blockTick = nowTick;
    f.bytesOut += at;
    this.bytesOut += at;
  }

  runTick(nowMs: number): TickResult {
    const nowTick = ++this.tick;
    const version = ++this.version;
    const changes = new Map<EntityId, { entered: EntityState[]; left: EntityId[] }>();
    const pending = this.pending;
    // Pass 1: each crossed/added/removed entity, as seen by players that did not move.
    for (const e of pending) {
      const f = e.fragment;
      const was = e.tickIn;
      if (f !== undefined && was && f.fx === e.tickFx && f.fz === e.tickFz) continue;
      if (was) this.visitObservers(e, e.tickFx, e.tickFz, false, 0, 0, changes);
      if (f !== undefined) this.visitObservers(e, f.fx, f.fz, was, e.tickFx, e.tickFz, changes);
    }
    // Pass 2: players that moved see their whole area afresh.
    for (const e of pending) {
      if (e.alive) this.recompute(e, changes);
      const f = e.fragment;
      e.tickIn = f !== undefined;
      if (f !== undefined) {
        e.tickFx = f.fx;
        e.tickFz = f.fz;
      }
      e.pending = false;
    }
    pending.length = 0;
    // Pass 3: encode the due fragments' changes once each.
    const updated: FragmentId[] = [];
    let bytes = 0;
    for (const f of this.dirtyFragments) {
      if (!this.isDue(f, nowTick)) continue;
      this.encode(f, nowTick);
      this.dirtyFragments.delete(f);
      updated.push(f.id);
      bytes += f.blockLength;
    }
    return new CoreTickResult(this, version, nowTick, nowMs, changes, updated, bytes);
  }

  /** Fills `scratch` with the fragments in p's area that have a block this tick. */
  dueAround(p: Entity, nowTick: number): Fragment[] {
    const out = this.scratch;
    out.length = 0;
    const f = p.fragment as Fragment;
    const { x0, x1, z0, z1 } = this.areaAround(f.fx, f.fz);
    for (let gx = x0; gx <= x1; gx++) {
      for (let gz = z0; gz <= z1; gz++) {
        const g = this.fragmentAt(gx, gz);
        if (g !== undefined && g.blockTick === nowTick) out.push(g);
      }
    }
    return out;
  }

  /**
   * The player's batches: payloads (`framed` false) or whole frames (`u32 length | u8 type |
   * payload`, `framed` true), each made by copying the shared per-fragment blocks once.
   */
  moveBatchFor(
    player: EntityId,
    maxPayloadBytes: number,
    nowTick: number,
    framed = false,
  ): Uint8Array[] {
    if (!(Number.isInteger(maxPayloadBytes) && maxPayloadBytes >= 2 + this.maxEntry)) {
      throw new RangeError(
        `maxPayloadBytes must be an integer ≥ ${2 + this.maxEntry}, got ${maxPayloadBytes}`,
      );
    }
    const p = this.entities.get(player);
    if (p === undefined) return [];
    const due = this.dueAround(p, nowTick);
    const ownInBlock = p.blockTick === nowTick;
    let total = 0;
    let count = 0;
    for (const g of due) {
      total += g.blockLength;
      count += g.blockEntities.length;
    }
    if (ownInBlock) {
      total -= p.blockEnd - p.blockStart;
      count -= 1;
    }
    if (count === 0) return [];
    const head = framed ? FRAME_HEAD : 0;
    if (total + 2 <= maxPayloadBytes && count <= MAX_BATCH_COUNT) {
      // Fast path: one payload, whole blocks copied (the own block in two pieces).
      const out = new Uint8Array(head + 2 + total);
      if (framed) this.#writeHead(out, 2 + total);
      out[head] = count >>> 8;
      out[head + 1] = count & 0xff;
      let at = head + 2;
      for (const g of due) {
        if (ownInBlock && g === p.fragment) {
          out.set(g.buffer.subarray(0, p.blockStart), at);
          at += p.blockStart;
          out.set(g.buffer.subarray(p.blockEnd, g.blockLength), at);
          at += g.blockLength - p.blockEnd;
        } else {
          out.set(g.buffer.subarray(0, g.blockLength), at);
          at += g.blockLength;
        }
      }
      return [out];
    }
    return this.#split(p, due, maxPayloadBytes, head);
  }

  /** Reused by forEachBatchFrame: the due fragments around one fragment. */
  readonly fragmentScratch: Fragment[] = [];

  /**
   * Every recipient's batch frames, fragment by fragment: the due blocks around a fragment are
   * found and concatenated once for all its members, then each member's frame is that shared
   * run plus its own fragment's block minus its own entry (one allocation, three copies).
   */
  forEachBatchFrame(
    maxPayloadBytes: number,
    nowTick: number,
    visit: (player: EntityId, frame: Uint8Array) => void,
  ): void {
    if (!(Number.isInteger(maxPayloadBytes) && maxPayloadBytes >= 2 + this.maxEntry)) {
      throw new RangeError(
        `maxPayloadBytes must be an integer ≥ ${2 + this.maxEntry}, got ${maxPayloadBytes}`,
      );
    }
    const due = this.fragmentScratch;
    for (const f of this.fragments.values()) {
      due.length = 0;
      const { x0, x1, z0, z1 } = this.areaAround(f.fx, f.fz);
      let otherBytes = 0;
      let otherCount = 0;
      for (let gx = x0; gx <= x1; gx++) {
        for (let gz = z0; gz <= z1; gz++) {
          const g = gx === f.fx && gz === f.fz ? f : this.fragmentAt(gx, gz);
          if (g === undefined || g === f || g.blockTick !== nowTick) continue;
          due.push(g);
          otherBytes += g.blockLength;
          otherCount += g.blockEntities.length;
        }
      }
      const ownDue = f.blockTick === nowTick;
      if (otherCount === 0 && !ownDue) continue;
      let others: Uint8Array | undefined;
      if (otherCount > 0) {
        others = new Uint8Array(otherBytes);
        let at = 0;
        for (const g of due) {
          others.set(g.buffer.subarray(0, g.blockLength), at);
          at += g.blockLength;
        }
      }
      const ownBytes = ownDue ? f.blockLength : 0;
      const ownCount = ownDue ? f.blockEntities.length : 0;
      // One buffer for all the members' frames (views of it are queued): a typed array
      // allocation per player costs more than the copying.
      // Members with no entry of their own in the block all get the same frame: built once.
      let size = 0;
      let sharedNeeded = false;
      for (const p of f.members) {
        const inBlock = ownDue && p.blockTick === nowTick;
        const count = otherCount + ownCount - (inBlock ? 1 : 0);
        const total = otherBytes + ownBytes - (inBlock ? p.blockEnd - p.blockStart : 0);
        if (count > 0 && total + 2 <= maxPayloadBytes && count <= MAX_BATCH_COUNT) {
          if (inBlock) size += FRAME_HEAD + 2 + total;
          else sharedNeeded = true;
        }
      }
      if (sharedNeeded) size += FRAME_HEAD + 2 + otherBytes + ownBytes;
      let shared: Uint8Array | undefined;
      const out = new Uint8Array(size);
      let at = 0;
      for (const p of f.members) {
        const inBlock = ownDue && p.blockTick === nowTick;
        const count = otherCount + ownCount - (inBlock ? 1 : 0);
        if (count === 0) continue;
        const total = otherBytes + ownBytes - (inBlock ? p.blockEnd - p.blockStart : 0);
        if (total + 2 > maxPayloadBytes || count > MAX_BATCH_COUNT) {
          for (const frame of this.moveBatchFor(p.id, maxPayloadBytes, nowTick, true)) {
            visit(p.id, frame);
          }
          continue;
        }
        if (!inBlock && shared !== undefined) {
          visit(p.id, shared);
          continue;
        }
        const start = at;
        this.#writeHead(out, 2 + total, at);
        out[at + FRAME_HEAD] = count >>> 8;
        out[at + FRAME_HEAD + 1] = count & 0xff;
        at += FRAME_HEAD + 2;
        if (others !== undefined) {
          out.set(others, at);
          at += otherBytes;
        }
        if (inBlock) {
          out.set(f.buffer.subarray(0, p.blockStart), at);
          at += p.blockStart;
          out.set(f.buffer.subarray(p.blockEnd, f.blockLength), at);
          at += f.blockLength - p.blockEnd;
        } else if (ownDue) {
          out.set(f.buffer.subarray(0, f.blockLength), at);
          at += f.blockLength;
        }
        const frame = out.subarray(start, at);
        if (!inBlock) shared = frame;
        visit(p.id, frame);
      }
    }
  }

  /**
   * Batch frames holding the current state of every entity `player` has been spawned, encoded
   * for this player alone: what a receiver that skipped batches needs to be current again.
   */
  snapshotFramesFor(player: EntityId, maxPayloadBytes: number): Uint8Array[] {
    if (!(Number.isInteger(maxPayloadBytes) && maxPayloadBytes >= 2 + this.maxEntry)) {
      throw new RangeError(
        `maxPayloadBytes must be an integer ≥ ${2 + this.maxEntry}, got ${maxPayloadBytes}`,
      );
    }
    const p = this.entities.get(player);
    if (p === undefined || p.known.size === 0) return [];
    const frames: Uint8Array[] = [];
    const buf = new Uint8Array(FRAME_HEAD + maxPayloadBytes);
    const view = new DataView(buf.buffer);
    let at = FRAME_HEAD + 2;
    let count = 0;
    const flush = () => {
      this.#writeHead(buf, at - FRAME_HEAD);
      buf[FRAME_HEAD] = count >>> 8;
      buf[FRAME_HEAD + 1] = count & 0xff;
      frames.push(buf.slice(0, at));
      at = FRAME_HEAD + 2;
      count = 0;
    };
    for (const e of p.known) {
      if (at - FRAME_HEAD + this.maxEntry > maxPayloadBytes || count === MAX_BATCH_COUNT) flush();
      if (this.quantized) {
        at = writePositionEntry(view, at, e.id, e.state, this.bounds as FragmentBounds);
      } else {
        view.setUint32(at, e.id);
        at = writeMoveState(view, at + 4, e.state);
      }
      count++;
    }
    if (count > 0) flush();
    return frames;
  }

  /** Writes a frame header for a payload of `payloadBytes` (the type byte counted in). */
  #writeHead(out: Uint8Array, payloadBytes: number, at = 0): void {
    const length = payloadBytes + 1;
    out[at] = length >>> 24;
    out[at + 1] = (length >>> 16) & 0xff;
    out[at + 2] = (length >>> 8) & 0xff;
    out[at + 3] = length & 0xff;
    out[at + 4] = this.quantized ? POSITION_BATCH_TYPE : PacketType.MoveBatch;
  }

  /** Slow path: more than one frame's worth; cut at entry boundaries. */
  #split(
    p: Entity,
    due: readonly Fragment[],
    maxPayloadBytes: number,
    head: number,
  ): Uint8Array[] {
    const payloads: Uint8Array[] = [];
    const buf = new Uint8Array(head + maxPayloadBytes);
    let at = head + 2;
    let count = 0;
    const flush = () => {
      if (head > 0) this.#writeHead(buf, at - head);
      buf[head] = count >>> 8;
      buf[head + 1] = count & 0xff;
      payloads.push(buf.slice(0, at));
      at = head + 2;
      count = 0;
    };
    for (const g of due) {
      for (const e of g.blockEntities) {
        if (e === p) continue;
        const len = e.blockEnd - e.blockStart;
        if (at - head + len > maxPayloadBytes || count === MAX_BATCH_COUNT) flush();
        buf.set(g.buffer.subarray(e.blockStart, e.blockEnd), at);
        at += len;
        count++;
      }
    }
    if (count > 0) flush();
    return payloads;
  }

  updatesFor(player: EntityId, nowTick: number): EntityState[] {
    const p = this.entities.get(player);
    if (p === undefined) return [];
    const out: EntityState[] = [];
    for (const g of this.dueAround(p, nowTick)) {
      for (const e of g.blockEntities) {
        if (e !== p) out.push({ id: e.id, state: e.state });
      }
    }
    return out;
  }

  /** Ids of the players whose area includes (fx, fz), i.e. who see that fragment. */
  playersAround(fx: number, fz: number, into: Set<EntityId> | EntityId[], skip?: Entity): void {
    const { x0, x1, z0, z1 } = this.areaAround(fx, fz);
    for (let gx = x0; gx <= x1; gx++) {
      for (let gz = z0; gz <= z1; gz++) {
        const g = this.fragmentAt(gx, gz);
        if (g === undefined) continue;
        for (const m of g.members) {
          if (m === skip) continue;
          if (Array.isArray(into)) into.push(m.id);
          else into.add(m.id);
        }
      }
    }
  }

  recipients(updated: readonly FragmentId[]): EntityId[] {
    const seen = new Set<EntityId>();
    for (const id of updated) {
      const f = this.fragments.get(id) as Fragment;
      // A block holding only its own player's entry gives that player nothing.
      const only = f.blockEntities.length === 1 ? f.blockEntities[0] : undefined;
      this.playersAround(f.fx, f.fz, seen, only);
    }
    return [...seen];
  }
}

class CoreTickResult implements TickResult {
  readonly #core: GridCore;
  readonly #version: number;
  readonly tick: number;
  readonly nowMs: number;
  readonly interest: ReadonlyMap<EntityId, InterestChange>;
  readonly updatedFragments: readonly FragmentId[];
  readonly bytesEncoded: number;

  constructor(
    core: GridCore,
    version: number,
    tick: number,
    nowMs: number,
    interest: ReadonlyMap<EntityId, InterestChange>,
    updated: readonly FragmentId[],
    bytes: number,
  ) {
    this.#core = core;
    this.#version = version;
    this.tick = tick;
    this.nowMs = nowMs;
    this.interest = interest;
    this.updatedFragments = updated;
    this.bytesEncoded = bytes;
  }

  #check(): GridCore {
    if (this.#core.version !== this.#version) {
      throw new FragmentGridError(
        "stale_tick_result",
        `tick ${this.tick} result used after the grid changed; read it before the next add/move/remove/tick`,
      );
    }
    return this.#core;
  }

  isDue(fragment: FragmentId): boolean {
    return this.#check().isDue(this.#core.fragments.get(fragment), this.tick);
  }

  recipients(): EntityId[] {
    return this.#check().recipients(this.updatedFragments);
  }

  updatesFor(player: EntityId): EntityState[] {
    return this.#check().updatesFor(player, this.tick);
  }

  moveBatchFor(player: EntityId, maxPayloadBytes: number = DEFAULT_MAX_PAYLOAD): Uint8Array[] {
    return this.#check().moveBatchFor(player, maxPayloadBytes, this.tick);
  }

  batchFramesFor(player: EntityId, maxPayloadBytes: number = DEFAULT_MAX_PAYLOAD): Uint8Array[] {
    return this.#check().moveBatchFor(player, maxPayloadBytes, this.tick, true);
  }

  forEachBatchFrame(
    visit: (player: EntityId, frame: Uint8Array) => void,
    maxPayloadBytes: number = DEFAULT_MAX_PAYLOAD,
  ): void {
    this.#check().forEachBatchFrame(maxPayloadBytes, this.tick, visit);
  }

  snapshotFramesFor(player: EntityId, maxPayloadBytes: number = DEFAULT_MAX_PAYLOAD): Uint8Array[] {
    return this.#check().snapshotFramesFor(player, maxPayloadBytes);
  }
}

function checkEntityId(id: EntityId): void {
  if (!Number.isInteger(id) || id < 0 || id > 0xffffffff) {
    throw new RangeError(`entity id must be a u32, got ${id}`);
  }
}

function checkTime(nowMs: number): void {
  if (!Number.isFinite(nowMs)) throw new RangeError(`nowMs must be finite, got ${nowMs}`);
}

/**
 * A cluster's world split into square fragments: tracks players, decides who sees whom, and
 * produces the per-tick spawns, despawns and shared MoveBatch blocks.
 *
 * @example Two players near each other, one far away
 * ```ts
 * import { FragmentGrid } from "./fragment_grid.ts";
 * import assert from "node:assert/strict";
 *
 * const grid = new FragmentGrid({
 *   size: 100,
 *   tickHz: 20,
 *   maxPlayersPerFragment: 50,
 *   crowdThreshold: 20,
 * });
 * grid.add(1, { x: 10, y: 0, z: 10 }, 0);
 * grid.add(2, { x: 150, y: 0, z: 10 }, 0); // neighbouring fragment
 * grid.add(3, { x: 5000, y: 0, z: 10 }, 0); // far away
 * let result = grid.tick(50);
 * assert.deepEqual(result.interest.get(1)?.entered.map((s) => s.id), [2]);
 * assert.equal(result.interest.get(3), undefined); // sees nobody, nobody sees it
 *
 * assert.equal(grid.move(2, { x: 160, y: 0, z: 12 }, 60), "accepted");
 * result = grid.tick(100);
 * assert.deepEqual(result.updatesFor(1), [{ id: 2, state: { x: 160, y: 0, z: 12 } }]);
 * assert.deepEqual(result.moveBatchFor(2), []); // its own entry is left out
 * const [payload] = result.moveBatchFor(1);
 * assert.equal(payload.length, 2 + 4 + 13); // u16 count, u32 id, MoveState
 * ```
 */
export class FragmentGrid {
  readonly #core: GridCore;

  /**
   * @param options Fragment size, bounds, view distance, tick rate, cap and crowd threshold.
   * @throws {RangeError} If an option is out of range (the message names it).
   */
  constructor(options: FragmentGridOptions) {
    this.#core = new GridCore(options);
  }

  /** How many fragments around its own a player sees. */
  get viewDistance(): number {
    return this.#core.viewDistance;
  }

  /**
   * The packet type of the payloads `moveBatchFor` builds: MoveBatch (0x2B) for the `"full"`
   * position format, PositionBatch (0x2F) for `"quantized"`.
   *
   * @example
   * ```ts
   * import { FragmentGrid } from "./fragment_grid.ts";
   * import assert from "node:assert/strict";
   *
   * const grid = new FragmentGrid({
   *   size: 64,
   *   bounds: { minX: 0, minZ: 0, maxX: 2048, maxZ: 2048 },
   *   positionFormat: "quantized",
   *   tickHz: 20,
   *   maxPlayersPerFragment: 100,
   *   crowdThreshold: 50,
   * });
   * assert.equal(grid.batchPacketType, 0x2f);
   * ```
   */
  get batchPacketType(): number {
    return this.#core.quantized ? POSITION_BATCH_TYPE : PacketType.MoveBatch;
  }

  /** Number of players in the grid. */
  get size(): number {
    return this.#core.entities.size;
  }

  /** Ticks run so far. */
  get tickCount(): number {
    return this.#core.tick;
  }

  /** Bytes of MoveBatch entries encoded since the grid was made (a counter for metrics). */
  get bytesOut(): number {
    return this.#core.bytesOut;
  }

  /**
   * Adds a player. It is spawned to (and sees) the players around it at the next tick.
   *
   * @param id The player's client id (u32).
   * @param state Its starting state.
   * @param nowMs Current time in ms (kept as the player's last update time).
   * @returns `"accepted"`, `"clamped"`, or a refusal (`"fragment_full"`, `"invalid_state"`).
   * @throws {RangeError} If `id` is not a u32 or `nowMs` is not finite.
   * @throws {FragmentGridError} `"duplicate_entity"` if `id` is already in the grid.
   *
   * @example
   * ```ts
   * import { FragmentGrid } from "./fragment_grid.ts";
   * import assert from "node:assert/strict";
   *
   * const grid = new FragmentGrid({
   *   size: 10,
   *   bounds: { minX: 0, minZ: 0, maxX: 100, maxZ: 100 },
   *   tickHz: 10,
   *   maxPlayersPerFragment: 1,
   *   crowdThreshold: 1,
   * });
   * assert.equal(grid.add(1, { x: 5, y: 0, z: 5 }, 0), "accepted");
   * assert.equal(grid.add(2, { x: 6, y: 0, z: 6 }, 0), "fragment_full");
   * assert.equal(grid.add(3, { x: -50, y: 0, z: 55 }, 0), "clamped");
   * assert.deepEqual(grid.stateOf(3), { x: 0, y: 0, z: 55 });
   * assert.equal(grid.add(4, { x: NaN, y: 0, z: 0 }, 0), "invalid_state");
   * ```
   */
  add(id: EntityId, state: MoveState, nowMs: number): AddOutcome {
    checkEntityId(id);
    checkTime(nowMs);
    const core = this.#core;
    if (core.entities.has(id)) {
      throw new FragmentGridError("duplicate_entity", `entity ${id} is already in the grid`);
    }
    if (!isValidState(state)) return "invalid_state";
    const stored = core.clamp(state);
    const fx = core.cellX(stored.x);
    const fz = core.cellZ(stored.z);
    const existing = core.fragmentAt(fx, fz);
    if (existing !== undefined && existing.members.size >= core.cap) return "fragment_full";
    const f = existing ?? core.openFragment(fx, fz);
    const e = new Entity(id, stored, nowMs);
    e.fragment = f;
    f.members.add(e);
    core.entities.set(id, e);
    core.markPending(e);
    core.version++;
    return stored === state ? "accepted" : "clamped";
  }

  /**
   * Updates a player's state: marks it changed (sent when its fragment is next due) and moves
   * it to another fragment when it crosses a border (spawns/despawns follow at the next tick).
   *
   * @param id The player's client id.
   * @param state Its new state.
   * @param nowMs Current time in ms.
   * @returns What happened; on a refusal the stored state is unchanged.
   * @throws {RangeError} If `nowMs` is not finite.
   *
   * @example
   * ```ts
   * import { FragmentGrid } from "./fragment_grid.ts";
   * import assert from "node:assert/strict";
   *
   * const grid = new FragmentGrid({
   *   size: 10,
   *   tickHz: 10,
   *   maxPlayersPerFragment: 8,
   *   crowdThreshold: 4,
   * });
   * grid.add(1, { x: 1, y: 0, z: 1 }, 0);
   * assert.equal(grid.move(1, { x: 25, y: 0, z: 1 }, 10), "accepted");
   * assert.equal(grid.move(1, { x: 25, y: 0, z: 1 }, 20), "unchanged");
   * assert.equal(grid.move(1, { x: Infinity, y: 0, z: 1 }, 30), "invalid_state");
   * assert.equal(grid.move(9, { x: 0, y: 0, z: 0 }, 40), "unknown_entity");
   * assert.deepEqual(grid.fragmentCoordsOf(1), { fx: 2, fz: 0 });
   * ```
   */
  move(id: EntityId, state: MoveState, nowMs: number): MoveOutcome {
    checkTime(nowMs);
    const core = this.#core;
    const e = core.entities.get(id);
    if (e === undefined) return "unknown_entity";
    if (!isValidState(state)) return "invalid_state";
    const stored = core.clamp(state);
    // A clamped move is reported even when it changes nothing: the client needs a correction.
    if (sameState(stored, e.state)) return stored === state ? "unchanged" : "clamped";
    const from = e.fragment as Fragment;
    const fx = core.cellX(stored.x);
    const fz = core.cellZ(stored.z);
    if (fx !== from.fx || fz !== from.fz) {
      const target = core.fragmentAt(fx, fz);
      if (target !== undefined && target.members.size >= core.cap) return "fragment_full";
      core.leaveFragment(e);
      const to = target ?? core.openFragment(fx, fz);
      e.fragment = to;
      to.members.add(e);
      core.markPending(e);
    }
    e.state = stored;
    e.updatedMs = nowMs;
    core.markDirty(e);
    core.version++;
    return stored === state ? "accepted" : "clamped";
  }

  /**
   * Removes a player; the players that saw it get a despawn at the next tick.
   *
   * @param id The player's client id.
   * @returns Whether it was in the grid.
   *
   * @example
   * ```ts
   * import { FragmentGrid } from "./fragment_grid.ts";
   * import assert from "node:assert/strict";
   *
   * const grid = new FragmentGrid({
   *   size: 10,
   *   tickHz: 10,
   *   maxPlayersPerFragment: 8,
   *   crowdThreshold: 4,
   * });
   * grid.add(1, { x: 0, y: 0, z: 0 }, 0);
   * grid.add(2, { x: 1, y: 0, z: 0 }, 0);
   * grid.tick(100);
   * assert.equal(grid.remove(2), true);
   * assert.equal(grid.remove(2), false);
   * assert.deepEqual(grid.tick(200).interest.get(1)?.left, [2]);
   * ```
   */
  remove(id: EntityId): boolean {
    const core = this.#core;
    const e = core.entities.get(id);
    if (e === undefined) return false;
    core.leaveFragment(e);
    e.alive = false;
    e.known.clear();
    core.entities.delete(id);
    core.markPending(e);
    core.version++;
    return true;
  }

  /**
   * Runs one tick: resolves spawns/despawns for every interest change since the last tick and
   * encodes, once per fragment, the changes of the fragments that are due.
   *
   * A fragment with more than `crowdThreshold` players is due every 2nd tick, with more than
   * twice that every 4th tick (phase-shifted per fragment); others every tick. Changes of a
   * fragment that is not due accumulate; only the latest state of each player is sent.
   *
   * @param nowMs Current time in ms.
   * @returns The tick's result, valid until the grid is next changed.
   *
   * @example
   * ```ts
   * import { FragmentGrid } from "./fragment_grid.ts";
   * import assert from "node:assert/strict";
   *
   * const grid = new FragmentGrid({
   *   size: 10,
   *   tickHz: 10,
   *   maxPlayersPerFragment: 8,
   *   crowdThreshold: 4,
   * });
   * grid.add(1, { x: 0, y: 0, z: 0 }, 0);
   * const result = grid.tick(100);
   * assert.equal(result.tick, 1);
   * assert.equal(result.bytesEncoded, 0); // nothing moved
   * ```
   */
  tick(nowMs: number): TickResult {
    checkTime(nowMs);
    return this.#core.runTick(nowMs);
  }

  /**
   * A player's stored state (clamped if it had to be), or undefined if unknown.
   *
   * @param id The player's client id.
   *
   * @example
   * ```ts
   * import { FragmentGrid } from "./fragment_grid.ts";
   * import assert from "node:assert/strict";
   *
   * const grid = new FragmentGrid({ size: 10, tickHz: 10, maxPlayersPerFragment: 8, crowdThreshold: 4 });
   * grid.add(1, { x: 1, y: 2, z: 3 }, 0);
   * assert.deepEqual(grid.stateOf(1), { x: 1, y: 2, z: 3 });
   * assert.equal(grid.stateOf(2), undefined);
   * ```
   */
  stateOf(id: EntityId): MoveState | undefined {
    return this.#core.entities.get(id)?.state;
  }

  /**
   * The time of a player's last accepted add/move, or undefined if unknown (for idle checks).
   *
   * @param id The player's client id.
   *
   * @example
   * ```ts
   * import { FragmentGrid } from "./fragment_grid.ts";
   * import assert from "node:assert/strict";
   *
   * const grid = new FragmentGrid({ size: 10, tickHz: 10, maxPlayersPerFragment: 8, crowdThreshold: 4 });
   * grid.add(1, { x: 1, y: 2, z: 3 }, 500);
   * grid.move(1, { x: 2, y: 2, z: 3 }, 750);
   * assert.equal(grid.lastUpdateMs(1), 750);
   * ```
   */
  lastUpdateMs(id: EntityId): number | undefined {
    return this.#core.entities.get(id)?.updatedMs;
  }

  /**
   * The fragment a player is in, or undefined if unknown.
   *
   * @param id The player's client id.
   *
   * @example
   * ```ts
   * import { FragmentGrid } from "./fragment_grid.ts";
   * import { fragmentId } from "./fragment_id.ts";
   * import assert from "node:assert/strict";
   *
   * const grid = new FragmentGrid({ size: 10, tickHz: 10, maxPlayersPerFragment: 8, crowdThreshold: 4 });
   * grid.add(1, { x: -1, y: 0, z: 35 }, 0);
   * assert.equal(grid.fragmentOf(1), fragmentId(-1, 3));
   * ```
   */
  fragmentOf(id: EntityId): FragmentId | undefined {
    return this.#core.entities.get(id)?.fragment?.id;
  }

  /**
   * The grid coordinates of the fragment a player is in, or undefined if unknown.
   *
   * @param id The player's client id.
   *
   * @example
   * ```ts
   * import { FragmentGrid } from "./fragment_grid.ts";
   * import assert from "node:assert/strict";
   *
   * const grid = new FragmentGrid({ size: 10, tickHz: 10, maxPlayersPerFragment: 8, crowdThreshold: 4 });
   * grid.add(1, { x: -1, y: 0, z: 35 }, 0);
   * assert.deepEqual(grid.fragmentCoordsOf(1), { fx: -1, fz: 3 });
   * ```
   */
  fragmentCoordsOf(id: EntityId): { readonly fx: number; readonly fz: number } | undefined {
    const f = this.#core.entities.get(id)?.fragment;
    return f === undefined ? undefined : { fx: f.fx, fz: f.fz };
  }

  /**
   * The fragment a world position falls in (after clamping onto the bounds).
   *
   * @param x World x.
   * @param z World z.
   * @throws {RangeError} If `x` or `z` is not finite.
   *
   * @example
   * ```ts
   * import { FragmentGrid } from "./fragment_grid.ts";
   * import { fragmentId } from "./fragment_id.ts";
   * import assert from "node:assert/strict";
   *
   * const grid = new FragmentGrid({
   *   size: 10,
   *   bounds: { minX: 0, minZ: 0, maxX: 100, maxZ: 100 },
   *   tickHz: 10,
   *   maxPlayersPerFragment: 8,
   *   crowdThreshold: 4,
   * });
   * assert.equal(grid.fragmentAt(15, 99.5), fragmentId(1, 9));
   * assert.equal(grid.fragmentAt(100, 1000), fragmentId(9, 9)); // clamped onto the edge
   * ```
   */
  fragmentAt(x: number, z: number): FragmentId {
    if (!Number.isFinite(x) || !Number.isFinite(z)) {
      throw new RangeError(`position must be finite, got (${x}, ${z})`);
    }
    const core = this.#core;
    const b = core.bounds;
    const cx = b === undefined ? x : Math.min(b.maxX, Math.max(b.minX, x));
    const cz = b === undefined ? z : Math.min(b.maxZ, Math.max(b.minZ, z));
    return packFragmentId(core.cellX(cx), core.cellZ(cz));
  }

  /**
   * The players in one fragment.
   *
   * @param fragment A fragment id.
   *
   * @example
   * ```ts
   * import { FragmentGrid } from "./fragment_grid.ts";
   * import { fragmentId } from "./fragment_id.ts";
   * import assert from "node:assert/strict";
   *
   * const grid = new FragmentGrid({ size: 10, tickHz: 10, maxPlayersPerFragment: 8, crowdThreshold: 4 });
   * grid.add(1, { x: 1, y: 0, z: 1 }, 0);
   * grid.add(2, { x: 11, y: 0, z: 1 }, 0);
   * assert.deepEqual(grid.playersIn(fragmentId(0, 0)), [1]);
   * ```
   */
  playersIn(fragment: FragmentId): EntityId[] {
    const f = this.#core.fragments.get(fragment);
    return f === undefined ? [] : [...f.members].map((e) => e.id);
  }

  /**
   * The players that see a fragment (whose own fragment is within view distance of it), by
   * current positions: the audience of a plugin's "broadcast to a fragment".
   *
   * @param fragment A fragment id.
   *
   * @example
   * ```ts
   * import { FragmentGrid } from "./fragment_grid.ts";
   * import { fragmentId } from "./fragment_id.ts";
   * import assert from "node:assert/strict";
   *
   * const grid = new FragmentGrid({ size: 10, tickHz: 10, maxPlayersPerFragment: 8, crowdThreshold: 4 });
   * grid.add(1, { x: 1, y: 0, z: 1 }, 0);
   * grid.add(2, { x: 11, y: 0, z: 1 }, 0);
   * grid.add(3, { x: 51, y: 0, z: 1 }, 0);
   * assert.deepEqual(grid.playersInterestedIn(fragmentId(0, 0)).sort(), [1, 2]);
   * ```
   */
  playersInterestedIn(fragment: FragmentId): EntityId[] {
    const { fx, fz } = fragmentCoords(fragment);
    const out: EntityId[] = [];
    this.#core.playersAround(fx, fz, out);
    return out;
  }

  /**
   * Metrics of every populated fragment: players, current update rate, bytes encoded.
   *
   * @example
   * ```ts
   * import { FragmentGrid } from "./fragment_grid.ts";
   * import assert from "node:assert/strict";
   *
   * const grid = new FragmentGrid({ size: 10, tickHz: 20, maxPlayersPerFragment: 8, crowdThreshold: 1 });
   * grid.add(1, { x: 1, y: 0, z: 1 }, 0);
   * grid.add(2, { x: 2, y: 0, z: 1 }, 0);
   * const [stats] = grid.fragmentStats();
   * assert.equal(stats.players, 2);
   * assert.equal(stats.updateHz, 10); // above crowdThreshold: half rate
   * ```
   */
  *fragmentStats(): IterableIterator<FragmentStats> {
    const core = this.#core;
    for (const f of core.fragments.values()) {
      const players = f.members.size;
      yield {
        id: f.id,
        fx: f.fx,
        fz: f.fz,
        players,
        updateHz: core.tickHz / core.divisor(players),
        bytesOut: f.bytesOut,
      };
    }
  }
}
