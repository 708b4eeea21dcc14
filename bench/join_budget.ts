/**
 * The per-join CPU budget (issue 23, docs/PERFORMANCE.md "Joins"): starts a sealed master and
 * bench cluster, runs join storms from this process and prints joins/s with the CPU each
 * process spent per join (master, cluster, and this process as the generator), read from
 * `/proc` before and after each storm, and per thread with `--threads`. With `--profile DIR`
 * the master and the cluster run with `--cpu-prof` into DIR; run this process with it too to
 * profile the generator:
 *
 * ```sh
 * deno run -A bench/join_budget.ts --joins 1000 --concurrency 32 --rounds 3
 * deno run -A --cpu-prof --cpu-prof-dir=/tmp/p bench/join_budget.ts --profile /tmp/p
 * ```
 *
 * Linux only (`/proc`). A warm-up storm of 200 joins runs first and is not reported. It never
 * leaves the servers running.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { startSustenetServers } from "./bench_servers.ts";
import { runJoinStorm } from "./join_load.ts";
import { sampleProcess } from "./process_stats.ts";

/** CPU ticks (user, system) of each of a process's threads, summed by thread name. */
function threadTicks(pid: number): Map<string, { user: number; sys: number }> {
  const out = new Map<string, { user: number; sys: number }>();
  for (const entry of Deno.readDirSync(`/proc/${pid}/task`)) {
    const stat = Deno.readTextFileSync(`/proc/${pid}/task/${entry.name}/stat`);
    const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
    // Fields after the name: utime and stime are the 12th and 13th (stat(5) fields 14, 15).
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const prev = out.get(name) ?? { user: 0, sys: 0 };
    out.set(name, { user: prev.user + Number(fields[11]), sys: prev.sys + Number(fields[12]) });
  }
  return out;
}

/** µs of CPU per join from a tick difference (ticks are 10 ms on Linux). */
function ticksPerJoin(ticks: number, joins: number): number {
  return Math.round(ticks * 10_000 / joins);
}

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    joins: { type: "string", default: "1000" },
    concurrency: { type: "string", default: "32" },
    rounds: { type: "string", default: "1" },
    profile: { type: "string" },
    threads: { type: "boolean", default: false },
  },
});
const joins = Number(args.joins);
const concurrency = Number(args.concurrency);
const flags = args.profile === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${args.profile}`];
const servers = await startSustenetServers({
  sealed: true,
  clusterDenoFlags: flags,
  masterDenoFlags: flags,
});
try {
  await runJoinStorm(servers.target, 200, concurrency);
  const names = ["master", "cluster", "generator"];
  const pids = [servers.masterPid, servers.clusterPid, Deno.pid];
  for (let round = 0; round < Number(args.rounds); round++) {
    const threadsBefore = pids.map(threadTicks);
    const before = pids.map(sampleProcess);
    const result = await runJoinStorm(servers.target, joins, concurrency);
    const after = pids.map(sampleProcess);
    const threadsAfter = pids.map(threadTicks);
    if (result.kind !== "join" || !result.ok) throw new Error("the join storm failed");
    const cpu = names.map((name, i) =>
      `${name} ${Math.round((after[i].cpuMs - before[i].cpuMs) * 1000 / joins)}`
    );
    const load = Deno.loadavg().map((l) => l.toFixed(1)).join(" ");
    console.log(
      `${result.joinsPerSecond} joins/s p50 ${result.p50Ms} ms p99 ${result.p99Ms} ms; ` +
        `CPU µs/join ${cpu.join(" ")} (failures ${result.failures}; load ${load})`,
    );
    if (!args.threads) continue;
    pids.forEach((_, i) => {
      const rows = [...threadsAfter[i]].map(([name, t]) => {
        const b = threadsBefore[i].get(name) ?? { user: 0, sys: 0 };
        const user = ticksPerJoin(t.user - b.user, joins);
        const sys = ticksPerJoin(t.sys - b.sys, joins);
        return user + sys === 0 ? "" : `${name} user ${user} sys ${sys}`;
      }).filter((row) => row !== "");
      console.log(`  ${names[i]}: ${rows.join(", ")}`);
    });
  }
} finally {
  await servers.stop();
}
