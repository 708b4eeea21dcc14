/**
 * Summarises a V8 `.cpuprofile` (as written by `deno run --cpu-prof`) into the functions that
 * took the most self time: sample time attributed to each node, summed per function and source
 * location, as a share of the non-idle time. docs/PERFORMANCE.md quotes it.
 *
 * It only reads: the profile object, or the profile directory a profiled run wrote; a malformed
 * profile is a typed error, not a crash.
 *
 * @module
 */

import { SustenetError } from "../shared/errors.ts";

/** One line of the summary. */
export interface ProfileEntry {
  /** Function name (`(anonymous)` when unnamed; V8's `(program)`, `(garbage collector)`). */
  readonly functionName: string;
  /** `file:line` (the URL shortened to the path after the repository root). */
  readonly location: string;
  /** Self time, ms. */
  readonly selfMs: number;
  /** Self time as a percentage of all non-idle samples. */
  readonly percent: number;
}

/** The profile is not a V8 CPU profile. */
export class ProfileFormatError extends SustenetError {
  /** @param message What is missing. */
  constructor(message: string) {
    super("profile_invalid", message);
  }
}

interface CpuProfileNode {
  readonly id: number;
  readonly callFrame: {
    readonly functionName: string;
    readonly url: string;
    readonly lineNumber: number;
  };
}

interface CpuProfile {
  readonly nodes: readonly CpuProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

function isProfile(value: unknown): value is CpuProfile {
  const p = value as Partial<CpuProfile> | null;
  return typeof p === "object" && p !== null && Array.isArray(p.nodes) &&
    Array.isArray(p.samples) && Array.isArray(p.timeDeltas) &&
    p.samples.length === p.timeDeltas.length;
}

/**
 * The top functions by self time.
 *
 * @param profile The parsed `.cpuprofile` JSON.
 * @param top How many entries.
 * @param rootUrl Prefix removed from locations (e.g. the repository's file URL).
 * @throws {ProfileFormatError} If `profile` is not a CPU profile.
 *
 * @example
 * ```ts
 * import { summariseProfile } from "./profile_summary.ts";
 * import assert from "node:assert/strict";
 *
 * const frame = (functionName: string, lineNumber: number) => ({
 *   functionName,
 *   url: "file:///repo/shared/transport.ts",
 *   lineNumber,
 * });
 * const profile = {
 *   nodes: [
 *     { id: 1, callFrame: frame("(idle)", -1) },
 *     { id: 2, callFrame: frame("send", 9) },
 *     { id: 3, callFrame: frame("", 20) },
 *   ],
 *   samples: [2, 2, 3, 1],
 *   timeDeltas: [1000, 1000, 2000, 5000],
 * };
 * const top = summariseProfile(profile, 5, "file:///repo/");
 * assert.deepEqual(top[0], {
 *   functionName: "send",
 *   location: "shared/transport.ts:10",
 *   selfMs: 2,
 *   percent: 50,
 * });
 * assert.equal(top[1].functionName, "(anonymous)");
 * assert.equal(top.length, 2); // idle is left out
 * ```
 */
export function summariseProfile(profile: unknown, top = 15, rootUrl = ""): ProfileEntry[] {
  if (!isProfile(profile)) throw new ProfileFormatError("not a V8 CPU profile");
  const byNode = new Map<number, CpuProfileNode>();
  for (const node of profile.nodes) byNode.set(node.id, node);
  const selfUs = new Map<string, { name: string; location: string; us: number }>();
  let totalUs = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byNode.get(profile.samples[i]);
    if (node === undefined) throw new ProfileFormatError(`sample of unknown node ${i}`);
    const frame = node.callFrame;
    if (frame.functionName === "(idle)") continue;
    const delta = Math.max(0, profile.timeDeltas[i]);
    totalUs += delta;
    const url = frame.url.startsWith(rootUrl) ? frame.url.slice(rootUrl.length) : frame.url;
    const location = url === "" ? "" : `${url}:${frame.lineNumber + 1}`;
    const name = frame.functionName === "" ? "(anonymous)" : frame.functionName;
    const key = `${name}@${location}`;
    const entry = selfUs.get(key);
    if (entry === undefined) selfUs.set(key, { name, location, us: delta });
    else entry.us += delta;
  }
  return [...selfUs.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, top)
    .map((e) => ({
      functionName: e.name,
      location: e.location,
      selfMs: Math.round(e.us / 100) / 10,
      percent: totalUs === 0 ? 0 : Math.round(e.us * 1000 / totalUs) / 10,
    }));
}

/** The largest profile of a directory and its summary. */
export interface LargestProfile {
  /** Path of the `.cpuprofile` file. */
  readonly path: string;
  /** Its top functions by self time ({@linkcode summariseProfile}). */
  readonly top: ProfileEntry[];
}

/**
 * Summarises the largest `.cpuprofile` in `dir`: a profiled run's directory holds one file per
 * Deno process that exited, and the busiest process (the cluster under load) wrote the largest.
 *
 * @param dir The `--cpu-prof-dir` directory.
 * @param top How many entries.
 * @param rootUrl Prefix removed from locations (e.g. the repository's file URL).
 * @returns The file and its summary, or `undefined` when `dir` holds no `.cpuprofile`.
 * @throws {ProfileFormatError} If the largest file is not a CPU profile.
 *
 * @example
 * ```ts
 * import { summariseLargestProfile } from "./profile_summary.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const profile = (n: number) =>
 *   JSON.stringify({
 *     nodes: [{ id: 1, callFrame: { functionName: "tick", url: "", lineNumber: 0 } }],
 *     samples: new Array(n).fill(1),
 *     timeDeltas: new Array(n).fill(1000),
 *   });
 * assert.equal(await summariseLargestProfile(dir), undefined);
 * await Deno.writeTextFile(`${dir}/small.cpuprofile`, profile(1));
 * await Deno.writeTextFile(`${dir}/large.cpuprofile`, profile(5));
 * const largest = await summariseLargestProfile(dir);
 * assert.equal(largest?.path, `${dir}/large.cpuprofile`);
 * assert.deepEqual(largest?.top.map((e) => [e.functionName, e.selfMs]), [["tick", 5]]);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function summariseLargestProfile(
  dir: string,
  top = 15,
  rootUrl = "",
): Promise<LargestProfile | undefined> {
  let largest: { path: string; size: number } | undefined;
  for await (const entry of Deno.readDir(dir)) {
    if (!entry.name.endsWith(".cpuprofile")) continue;
    const path = `${dir}/${entry.name}`;
    const size = (await Deno.stat(path)).size;
    if (largest === undefined || size > largest.size) largest = { path, size };
  }
  if (largest === undefined) return undefined;
  const profile: unknown = JSON.parse(await Deno.readTextFile(largest.path));
  return { path: largest.path, top: summariseProfile(profile, top, rootUrl) };
}
