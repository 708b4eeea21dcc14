/**
 * Profiles the cluster under relay load: starts a sealed master + bench cluster with Deno's
 * `--cpu-prof`, runs the relay scenario against it, stops it gracefully (the profile is written
 * at exit), keeps the `.cpuprofile` next to the results and summarises its top functions by
 * self time (docs/PERFORMANCE.md quotes the summary).
 *
 * It never leaves the cluster running or the temporary profile directory behind.
 *
 * @module
 */

import { REPO_ROOT, startSustenetServers, type SustenetServers } from "./bench_servers.ts";
import { SustenetError } from "../shared/errors.ts";
import { type ProfileEntry, summariseLargestProfile } from "./profile_summary.ts";
import { relayJob, runGenerator } from "./run_generator.ts";

/** Profiling did not produce a profile. */
export class ProfileRunError extends SustenetError {
  /** @param message What went wrong. */
  constructor(message: string) {
    super("profile_failed", message);
  }
}

/** A profile's summary. */
export interface ClusterProfile {
  /** Clients of the relay load. */
  readonly clients: number;
  /** Top functions by self time. */
  readonly top: readonly ProfileEntry[];
  /** Where the full `.cpuprofile` was kept. */
  readonly path: string;
}

/**
 * Profiles the sealed cluster under `clients` relay clients at `hz` for about 10 s.
 *
 * @param clients Relay clients.
 * @param hz Sends per client per second.
 * @param keepAs Path to copy the `.cpuprofile` to.
 * @throws {ProfileRunError} If the load failed or no profile was written.
 */
export async function profileCluster(
  clients: number,
  hz: number,
  keepAs: string,
): Promise<ClusterProfile> {
  const dir = await Deno.makeTempDir({ prefix: "sustenet_profile_" });
  let servers: SustenetServers | undefined;
  try {
    servers = await startSustenetServers({
      sealed: true,
      clusterDenoFlags: ["--cpu-prof", `--cpu-prof-dir=${dir}`],
    });
    const run = { warmupMs: 2000, windowMs: 10_000, windows: 1 };
    const scenario = { kind: "relay", clients, hz, ...run } as const;
    const result = await runGenerator(
      relayJob(servers.target, scenario, servers.pids, 60_000 + clients * 20),
    );
    if (!result.ok) throw new ProfileRunError(`relay load failed: ${result.error}`);
    // SIGTERM: the cluster stops gracefully and Deno writes the profile as it exits.
    await servers.stop();
    servers = undefined;
    const largest = await summariseLargestProfile(dir, 20, `file://${REPO_ROOT}`);
    if (largest === undefined) throw new ProfileRunError("the cluster wrote no .cpuprofile");
    await Deno.copyFile(largest.path, keepAs);
    return { clients, top: largest.top, path: keepAs };
  } finally {
    await servers?.stop();
    await Deno.remove(dir, { recursive: true });
  }
}
