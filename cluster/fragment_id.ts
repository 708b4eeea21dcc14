// This module is browser compatible.
/**
 * Fragment ids: the branded number that names one square fragment of a cluster's world by its
 * grid coordinates `(fx, fz)` on the x/z plane.
 *
 * An id packs both coordinates into one safe integer so it is a cheap `Map` key on the hot path
 * (no string is ever built per move). This module never allocates except in
 * {@linkcode fragmentCoords}, and never accepts coordinates it cannot pack losslessly.
 *
 * @module
 */

/** A fragment's id: a packed `(fx, fz)` pair; use {@linkcode fragmentCoords} to unpack it. */
export type FragmentId = number & { readonly __brand: "FragmentId" };

/**
 * Fragment coordinates lie in `[-FRAGMENT_COORD_LIMIT, FRAGMENT_COORD_LIMIT)` on each axis.
 *
 * @example
 * ```ts
 * import { FRAGMENT_COORD_LIMIT, fragmentCoords, fragmentId } from "./fragment_id.ts";
 * import assert from "node:assert/strict";
 * // The corners of the grid round-trip; one step past them is refused.
 * const last = FRAGMENT_COORD_LIMIT - 1;
 * assert.deepEqual(fragmentCoords(fragmentId(-FRAGMENT_COORD_LIMIT, last)), {
 *   fx: -FRAGMENT_COORD_LIMIT,
 *   fz: last,
 * });
 * assert.throws(() => fragmentId(FRAGMENT_COORD_LIMIT, 0), RangeError);
 * ```
 */
export const FRAGMENT_COORD_LIMIT = 2 ** 25;

/** 2^26: one axis' span; fx is stored above it, fz below. */
const SPAN = FRAGMENT_COORD_LIMIT * 2;

function checkCoord(name: string, v: number): void {
  if (!Number.isInteger(v) || v < -FRAGMENT_COORD_LIMIT || v >= FRAGMENT_COORD_LIMIT) {
    throw new RangeError(
      `fragment coordinate ${name} must be an integer in [-${FRAGMENT_COORD_LIMIT}, ${FRAGMENT_COORD_LIMIT}), got ${v}`,
    );
  }
}

/**
 * The id of the fragment at grid coordinates `(fx, fz)`.
 *
 * @param fx Column (along x).
 * @param fz Row (along z).
 * @throws {RangeError} If a coordinate is not an integer within ±{@linkcode FRAGMENT_COORD_LIMIT}.
 *
 * @example
 * ```ts
 * import { fragmentCoords, fragmentId } from "./fragment_id.ts";
 * import assert from "node:assert/strict";
 *
 * const id = fragmentId(-3, 7);
 * assert.deepEqual(fragmentCoords(id), { fx: -3, fz: 7 });
 * assert.throws(() => fragmentId(0.5, 0), RangeError);
 * ```
 */
export function fragmentId(fx: number, fz: number): FragmentId {
  checkCoord("fx", fx);
  checkCoord("fz", fz);
  return packFragmentId(fx, fz);
}

/**
 * Packs coordinates already known to be in range (internal hot path; no checks).
 *
 * @param fx Column, an integer in range.
 * @param fz Row, an integer in range.
 *
 * @example
 * ```ts
 * import { fragmentId, packFragmentId } from "./fragment_id.ts";
 * import assert from "node:assert/strict";
 * assert.equal(packFragmentId(2, -1), fragmentId(2, -1));
 * ```
 */
export function packFragmentId(fx: number, fz: number): FragmentId {
  return ((fx + FRAGMENT_COORD_LIMIT) * SPAN + (fz + FRAGMENT_COORD_LIMIT)) as FragmentId;
}

/**
 * The grid coordinates of a fragment id.
 *
 * @param id A fragment id.
 * @throws {RangeError} If `id` is not a value {@linkcode fragmentId} can produce.
 *
 * @example
 * ```ts
 * import { fragmentCoords, fragmentId } from "./fragment_id.ts";
 * import assert from "node:assert/strict";
 * assert.deepEqual(fragmentCoords(fragmentId(0, 0)), { fx: 0, fz: 0 });
 * ```
 */
export function fragmentCoords(id: FragmentId): { readonly fx: number; readonly fz: number } {
  if (!Number.isSafeInteger(id) || id < 0 || id >= SPAN * SPAN) {
    throw new RangeError(`not a fragment id: ${id}`);
  }
  const hi = Math.floor(id / SPAN);
  return { fx: hi - FRAGMENT_COORD_LIMIT, fz: id - hi * SPAN - FRAGMENT_COORD_LIMIT };
}

/**
 * The Chebyshev distance between two fragments, in fragments (0 = same fragment, 1 = one of
 * the 8 neighbours).
 *
 * @param a A fragment id.
 * @param b Another fragment id.
 *
 * @example
 * ```ts
 * import { fragmentDistance, fragmentId } from "./fragment_id.ts";
 * import assert from "node:assert/strict";
 * assert.equal(fragmentDistance(fragmentId(0, 0), fragmentId(1, -1)), 1);
 * assert.equal(fragmentDistance(fragmentId(0, 0), fragmentId(3, 1)), 3);
 * ```
 */
export function fragmentDistance(a: FragmentId, b: FragmentId): number {
  const ca = fragmentCoords(a);
  const cb = fragmentCoords(b);
  return Math.max(Math.abs(ca.fx - cb.fx), Math.abs(ca.fz - cb.fz));
}
