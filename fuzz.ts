/**
 * Entry point of `deno task fuzz [--frames 1000000] [--seed n] [--concurrency 16]`: the long
 * socket fuzz. Starts a master and a cluster as child processes (temporary keys and configs),
 * then sends random, mutated, truncated, oversized and out-of-order frames to both at every
 * protocol state while a well-behaved player keeps playing and a client keeps pinging the
 * master. Prints frames sent, connections, connections the servers closed, each server's RSS
 * before and after, and crashes; exits 1 if a server died, wrote an uncaught error or an
 * unhandled rejection to its stderr, the well-behaved peers stopped getting answers, or a
 * server's RSS grew past its bound.
 *
 * A development tool: it only talks to 127.0.0.1 and must never be imported by library code.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { generateKey, loadKey } from "./shared/keys.ts";
import { RawPeer } from "./tests/_master_peer.ts";
import { freePort, REPO_ROOT, type RoleProcess, spawnRole, waitForLine } from "./tests/_process.ts";
import { playerJoins } from "./tests/_raw_client.ts";
import {
  CLUSTER_STAGES,
  fuzzConnection,
  FuzzRandom,
  type FuzzTargets,
  MASTER_STAGES,
  openClusterStage,
  openMasterStage,
  randomFuzzInput,
} from "./tests/_fuzz.ts";
import { processRss } from "./tests/_process.ts";

/** RSS growth allowed per server over the whole run. */
const RSS_GROWTH_BOUND = 256 * 1024 * 1024;

/**
 * What Deno prints for an uncaught exception or unhandled rejection (`error: Uncaught …`), and
 * what a server's own last-resort handlers log: either means a bug, even if the process lived.
 */
const UNCAUGHT = /\b(uncaught|unhandled)\b/i;

const USAGE = `usage: deno task fuzz [--frames N] [--seed N] [--concurrency N]

Starts a master and a cluster on 127.0.0.1 and sends them random and broken frames at every
protocol state; exits 1 if a server crashed, leaked or stopped answering well-behaved peers.

  --frames N        frames to send in all, >= 1 (default 1000000)
  --seed N          random seed, for replaying a run (default: the clock)
  --concurrency N   connections fuzzing at once, 1..256 (default 16)
  -h, --help        this text`;

let values;
try {
  values = parseArgs({
    args: Deno.args,
    strict: true,
    options: {
      frames: { type: "string", default: "1000000" },
      seed: { type: "string" },
      concurrency: { type: "string", default: "16" },
      help: { type: "boolean", short: "h" },
    },
  }).values;
} catch (error) {
  if (!(error instanceof TypeError)) throw error;
  console.error(`error: ${error.message}\n\n${USAGE}`);
  Deno.exit(2);
}
if (values.help === true) {
  console.log(USAGE);
  Deno.exit(0);
}
const totalFrames = Number(values.frames);
const concurrency = Number(values.concurrency);
const seed = values.seed === undefined ? Date.now() >>> 0 : Number(values.seed);
if (!Number.isInteger(totalFrames) || totalFrames < 1) {
  console.error(`error: --frames must be a positive integer, got ${values.frames}`);
  Deno.exit(2);
}
if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 256) {
  console.error(`error: --concurrency must be an integer 1..256, got ${values.concurrency}`);
  Deno.exit(2);
}

const dir = await Deno.makeTempDir({ prefix: "sustenet_fuzz_" });
const processes: RoleProcess[] = [];
/** Children that ended during the run (each one is a crash). */
const ended = new Set<RoleProcess>();
let failed = false;
try {
  await generateKey(`${dir}/keys`, "cluster_key");
  const masterPort = await freePort();
  const clusterPort = await freePort();
  await Deno.writeTextFile(
    `${dir}/master.toml`,
    `[all]\nport = ${masterPort}\nkeys_dir = "keys"\nstatus_enabled = false\nlog_level = "error"\n` +
      `[master]\nheartbeat_timeout_ms = 3000\n`,
  );
  await Deno.writeTextFile(
    `${dir}/cluster.toml`,
    `[all]\nport = ${clusterPort}\nkeys_dir = "keys"\nstatus_enabled = false\nlog_level = "error"\n` +
      `server_name = "fuzzed"\n[cluster]\nmaster_port = ${masterPort}\n` +
      `[[cluster.plugins]]\nurl = "${REPO_ROOT}plugins/echo.ts"\n`,
  );
  const master = spawnRole("master", ["--config", `${dir}/master.toml`]);
  processes.push(master);
  master.child.status.then(() => ended.add(master));
  await waitForLine(master, /^master listening on /, 20_000);
  const cluster = spawnRole("cluster", ["--config", `${dir}/cluster.toml`]);
  processes.push(cluster);
  cluster.child.status.then(() => ended.add(cluster));
  await waitForLine(cluster, /^cluster fuzzed listening on /, 20_000);

  // The cluster registers in the background; the player stage needs its id.
  const clusterId = await waitForListed(masterPort);
  const targets: FuzzTargets = {
    masterPort,
    clusterPort,
    clusterId,
    keyName: "cluster_key",
    key: await loadKey(`${dir}/keys`, "cluster_key"),
  };

  const rssBefore = {
    master: await processRss(master.child.pid),
    cluster: await processRss(cluster.child.pid),
  };
  const player = await playerJoins(masterPort, clusterPort); // before any fuzzing cluster
  const pinger = await RawPeer.hello(masterPort, "client");
  let exchanges = 0;
  let talkFailure: unknown;
  let stopTalking = false;
  const talking = (async () => {
    for (let n = 0; !stopTalking; n++) {
      player.client.send({ kind: "Plugin", command: 0x80, payload: new Uint8Array([n & 0xff]) });
      await player.client.expect("Plugin", 10_000);
      pinger.send({ kind: "Ping", value: n });
      await pinger.expect("Pong", 10_000);
      exchanges++;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })().catch((error: unknown) => {
    talkFailure = error;
  });

  const rng = new FuzzRandom(seed);
  let framesSent = 0;
  let connections = 0;
  let closedByServer = 0;
  let setupFailures = 0;
  let nextReport = totalFrames / 10;
  const started = performance.now();
  const worker = async (): Promise<void> => {
    while (framesSent < totalFrames && talkFailure === undefined && ended.size === 0) {
      const inputs = Array.from({ length: 1 + rng.int(8) }, () => randomFuzzInput(rng));
      framesSent += inputs.length;
      const toMaster = rng.int(2) === 0;
      let connection;
      try {
        connection = toMaster
          ? await openMasterStage(targets, rng.pick(MASTER_STAGES))
          : await openClusterStage(targets, rng.pick(CLUSTER_STAGES));
      } catch (error) {
        // A setup refused under load (e.g. a timeout) is counted, not fatal; a dead server is
        // caught by the liveness check below.
        setupFailures++;
        if (setupFailures <= 5) console.error(`setup failed: ${String(error)}`);
        continue;
      }
      connections++;
      const outcome = await fuzzConnection(connection, inputs, 20);
      if (outcome.closedByServer) closedByServer++;
      if (framesSent >= nextReport) {
        nextReport += totalFrames / 10;
        console.log(
          `${framesSent} frames, ${connections} connections, ${
            Math.round((performance.now() - started) / 1000)
          } s`,
        );
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  stopTalking = true;
  await talking;
  await player.client.close();
  await pinger.close();

  const crashes = ended.size;
  const rssAfter = {
    master: await processRss(master.child.pid),
    cluster: await processRss(cluster.child.pid),
  };
  const mb = (n: number | undefined) => n === undefined ? "?" : `${(n / 1048576).toFixed(1)} MB`;
  console.log(`seed: ${seed}`);
  console.log(`frames sent: ${framesSent}`);
  console.log(`connections: ${connections} (setup failures: ${setupFailures})`);
  console.log(`errors seen (connections closed by the server): ${closedByServer}`);
  console.log(`well-behaved exchanges: ${exchanges}`);
  console.log(`master RSS: ${mb(rssBefore.master)} -> ${mb(rssAfter.master)}`);
  console.log(`cluster RSS: ${mb(rssBefore.cluster)} -> ${mb(rssAfter.cluster)}`);
  console.log(`crashes: ${crashes}`);
  if (talkFailure !== undefined) {
    console.error(`the well-behaved peers stopped getting answers: ${String(talkFailure)}`);
    failed = true;
  }
  for (const role of ["master", "cluster"] as const) {
    const before = rssBefore[role];
    const after = rssAfter[role];
    if (before !== undefined && after !== undefined && after - before > RSS_GROWTH_BOUND) {
      console.error(`${role} RSS grew by ${mb(after - before)}`);
      failed = true;
    }
  }
  if (crashes > 0 || exchanges === 0) failed = true;
} finally {
  for (const proc of processes) await proc.close(3000);
  await Deno.remove(dir, { recursive: true });
}
// After close, so each child's stderr is complete (a shutdown error counts too).
for (const proc of processes) {
  const bad = proc.stderrText().split("\n").filter((line) => UNCAUGHT.test(line));
  if (bad.length === 0) continue;
  const role = proc === processes[0] ? "master" : "cluster";
  console.error(`${role} stderr has ${bad.length} uncaught/unhandled line(s):`);
  for (const line of bad.slice(0, 10)) console.error(`  ${line}`);
  failed = true;
}
Deno.exit(failed ? 1 : 0);

/** Waits until the master lists a cluster; returns its id. */
async function waitForListed(port: number): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const peer = await RawPeer.hello(port, "client");
    peer.send({ kind: "RequestClusters" });
    const list = await peer.expect("SendClusters");
    await peer.close();
    if (list.clusters.length > 0) return list.clusters[0].id;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error("the cluster never registered");
}
