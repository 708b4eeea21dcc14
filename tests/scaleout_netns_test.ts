/**
 * Scale-out on real addresses: network namespaces (iproute2) joined by veth pairs to a bridge
 * that lives in a namespace of its own, so every address (10.231.0.0/24) exists only inside
 * namespaces this test made, and is gone when it deletes them. Hosts: two masters (one
 * address, two ports), Redis, two clusters, and the bots (tests/_scaleout_driver.ts, which
 * reports what the players see). The test kills -9 a master while bots play, restarts Redis,
 * and partitions a cluster's host, and prints the recovery figures.
 *
 * Needs root and `ip`. Without them it fails, except that it is skipped with a message when
 * `CI` is unset (a developer machine).
 */

import assert from "node:assert/strict";
import { generateKey } from "../shared/keys.ts";
import { REPO_ROOT, type RoleProcess, spawnRole, waitForLine } from "./_process.ts";
import { type RedisServer, startRedis } from "./_redis.ts";

const SUBNET = "10.231.0";
const HOSTS = { masters: 1, redis: 2, c1: 3, c2: 4, bots: 5 } as const;
type Host = keyof typeof HOSTS;
const M1 = 6256;
const M2 = 6356;
/** Overall bound of each wait (the figures asserted are far smaller). */
const WAIT_MS = 60_000;

async function run(cmd: string, args: readonly string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args: [...args], stdout: "piped", stderr: "piped" })
    .output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  return text;
}

async function canRun(): Promise<string | undefined> {
  if (Deno.build.os !== "linux") return "not Linux";
  if (Deno.uid() !== 0) return "not root";
  try {
    await run("ip", ["-V"]);
  } catch {
    return "no `ip` (iproute2)";
  }
  try {
    await run("redis-server", ["--version"]);
  } catch {
    return "no redis-server";
  }
  return undefined;
}

const missing = await canRun();
const skip = missing !== undefined && Deno.env.get("CI") === undefined;
if (skip) {
  console.warn(`scaleout_netns_test skipped: ${missing} (it runs, and must pass, where CI is set)`);
}

/** The namespaces of one run, named uniquely, and their cleanup. */
class Network {
  readonly id = crypto.getRandomValues(new Uint8Array(3)).toHex();
  readonly made: string[] = [];

  ns(host: Host | "sw"): string {
    return `sn${this.id}${host}`;
  }

  /** The switch-side veth of a host (≤ 15 characters). */
  port(host: Host): string {
    return `v${this.id}${host}`;
  }

  address(host: Host): string {
    return `${SUBNET}.${HOSTS[host]}`;
  }

  async build(): Promise<void> {
    const sw = this.ns("sw");
    await this.#add(sw);
    await run("ip", ["-n", sw, "link", "add", "br0", "type", "bridge"]);
    await run("ip", ["-n", sw, "link", "set", "br0", "up"]);
    for (const host of Object.keys(HOSTS) as Host[]) {
      const ns = this.ns(host);
      await this.#add(ns);
      // Both ends are created inside namespaces: nothing is added to the host's own.
      await run("ip", [
        "-n",
        sw,
        "link",
        "add",
        this.port(host),
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        ns,
      ]);
      await run("ip", ["-n", sw, "link", "set", this.port(host), "master", "br0", "up"]);
      await run("ip", ["-n", ns, "addr", "add", `${this.address(host)}/24`, "dev", "eth0"]);
      await run("ip", ["-n", ns, "link", "set", "eth0", "up"]);
      await run("ip", ["-n", ns, "link", "set", "lo", "up"]);
    }
  }

  async #add(ns: string): Promise<void> {
    await run("ip", ["netns", "add", ns]);
    this.made.push(ns);
  }

  /** Takes a host's link down (a partition) or up again. */
  async link(host: Host, up: boolean): Promise<void> {
    await run("ip", ["-n", this.ns("sw"), "link", "set", this.port(host), up ? "up" : "down"]);
  }

  exec(host: Host): string[] {
    return ["ip", "netns", "exec", this.ns(host)];
  }

  async destroy(): Promise<void> {
    for (const ns of this.made.reverse()) {
      await run("ip", ["netns", "del", ns]).catch((error) => console.error(String(error)));
    }
  }
}

interface Round {
  readonly t: number;
  readonly lists: (string[] | null)[];
  readonly healths: (string | null)[];
  /** Per master: [last, max] delay of changes from the other masters, in ms. */
  readonly delays: (number | null)[][];
  readonly bots: { joined: number; sent: number; received: number; errors: number };
  readonly probe: { ok: number; fail: number; lastOk: number; lastFail: number; lastError: string };
}

/** Reads the driver's rounds in order. */
class Driver {
  readonly #lines: AsyncIterableIterator<string>;
  last: Round | undefined;

  constructor(readonly process: RoleProcess) {
    this.#lines = process.lines();
  }

  /** Reads rounds until `done(round)` holds; fails after `WAIT_MS`. */
  async until(what: string, done: (round: Round) => boolean): Promise<Round> {
    const deadline = Date.now() + WAIT_MS;
    while (Date.now() < deadline) {
      const { value, done: ended } = await this.#lines.next();
      if (ended) throw new Error(`driver ended waiting for ${what}: ${this.process.stderrText()}`);
      if (!value.startsWith("{")) continue;
      const round = JSON.parse(value) as Round;
      this.last = round;
      if (done(round)) return round;
    }
    throw new Error(`timed out waiting for ${what}; last round ${JSON.stringify(this.last)}`);
  }
}

const names = (list: string[] | null) => (list ?? []).map((entry) => entry.split("#")[0]);
const idOf = (list: string[] | null, name: string) =>
  (list ?? []).find((entry) => entry.startsWith(`${name}#`));

Deno.test({
  name: "scale-out across namespaces: master killed, Redis restarted, cluster partitioned",
  ignore: skip,
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  assert.equal(missing, undefined, `cannot build network namespaces: ${missing}`);
  const net = new Network();
  const processes: RoleProcess[] = [];
  let redis: RedisServer | undefined;
  const dirs: string[] = [];
  const tempDir = async () => {
    const dir = await Deno.makeTempDir();
    dirs.push(dir);
    return dir;
  };
  const figures: string[] = [];
  try {
    await net.build();
    const masterAddress = net.address("masters");
    const redisHost = net.address("redis");
    const startRedisHere = () =>
      startRedis({
        host: redisHost,
        port: 6379,
        netns: net.ns("redis"),
        ready: async () =>
          (await run("ip", [
            "netns",
            "exec",
            net.ns("redis"),
            "redis-cli",
            "-h",
            redisHost,
            "-p",
            "6379",
            "ping",
          ]).catch(() => "")).includes("PONG"),
      });
    redis = await startRedisHere();

    const keysDir = await tempDir();
    await generateKey(keysDir, "cluster_key");
    const key = await Deno.readFile(`${keysDir}/cluster_key`);
    const startMasterAt = async (port: number): Promise<RoleProcess> => {
      const master = spawnRole("master", [
        "--bind-ip",
        masterAddress,
        "--port",
        String(port),
        "--status-ip",
        masterAddress,
        "--status-port",
        String(port + 1),
        "--keys-dir",
        keysDir,
        "--redis-url",
        `redis://${redisHost}:6379`,
        "--server-name",
        `m${port}`,
        "--ticket-rate-per-addr",
        "100000",
        "--ticket-burst-per-addr",
        "100000",
        "--reservations-per-addr",
        "100000",
      ], { wrapper: net.exec("masters") });
      processes.push(master);
      await waitForLine(master, /master listening on/, WAIT_MS);
      return master;
    };
    let m1 = await startMasterAt(M1);
    await startMasterAt(M2);

    const masterList = (first: number, second: number) =>
      `["${masterAddress}:${first}", "${masterAddress}:${second}"]`;
    const startClusterAt = async (host: "c1" | "c2", order: string) => {
      const dir = await tempDir();
      await Deno.writeFile(`${dir}/cluster_key`, key, { mode: 0o600 });
      const config = `${dir}/cluster.toml`;
      await Deno.writeTextFile(
        config,
        `[all]\nserver_name = "${host}"\nbind_ip = "${net.address(host)}"\nport = 6257\n` +
          `status_ip = "${net.address(host)}"\nstatus_port = 6258\nkeys_dir = "${dir}"\n` +
          `[cluster]\nmaster_addresses = ${order}\nreconnect_min_ms = 200\n` +
          `reconnect_max_ms = 1000\n` +
          `[[cluster.plugins]]\nurl = "${REPO_ROOT}plugins/echo.ts"\n`,
      );
      const cluster = spawnRole("cluster", ["--config", config], { wrapper: net.exec(host) });
      processes.push(cluster);
      await waitForLine(cluster, /listening on/, WAIT_MS);
    };
    // c1 prefers the first master, c2 the second: each master holds one cluster's link.
    await startClusterAt("c1", masterList(M1, M2));
    await startClusterAt("c2", masterList(M2, M1));

    const bots = 20;
    const driverProcess = spawnRole(`${REPO_ROOT}tests/_scaleout_driver.ts`, [
      "--masters",
      `${masterAddress}:${M1},${masterAddress}:${M2}`,
      "--status",
      `${masterAddress}:${M1 + 1},${masterAddress}:${M2 + 1}`,
      "--bots",
      String(bots),
      "--seconds",
      "600",
    ], { wrapper: net.exec("bots") });
    processes.push(driverProcess);
    const driver = new Driver(driverProcess);
    const both = (list: string[] | null) =>
      names(list).includes("c1") && names(list).includes("c2");
    const ready = await driver.until(
      "both masters to list both clusters and every bot to join",
      (r) => r.lists.every(both) && r.bots.joined === bots && r.probe.ok > 0,
    );
    const c1Before = idOf(ready.lists[1], "c1");
    figures.push(
      `propagation between masters (last / max ms): ${
        ready.delays.map(([last, max]) => `${last} / ${max}`).join(", ")
      }`,
    );

    // ---- kill -9 the first master while the bots play
    const receivedBefore = ready.bots.received;
    const errorsBefore = ready.bots.errors;
    m1.kill("SIGKILL");
    const killedAt = Date.now();
    const failedOver = await driver.until(
      "joins through the second master and c1 registered there",
      (r) =>
        r.probe.lastOk > killedAt && both(r.lists[1]) &&
        idOf(r.lists[1], "c1") !== c1Before,
    );
    const firstJoin = await driver.until("a join after the kill", (r) => r.probe.lastOk > killedAt);
    const joinS = (firstJoin.probe.lastOk - killedAt) / 1000;
    const relistS = (failedOver.t - killedAt) / 1000;
    const failedJoins = failedOver.probe.fail - ready.probe.fail;
    const played = await driver.until(
      "bots to keep playing for 2 s",
      (r) => r.t > killedAt + 2000,
    );
    const echoesAfter = played.bots.received - receivedBefore;
    figures.push(
      `kill -9 master 1: new joins through master 2 after ${joinS.toFixed(2)} s ` +
        `(${failedJoins} probe joins failed), c1 re-registered on master 2 and listed after ` +
        `${relistS.toFixed(2)} s, bots received ${echoesAfter} replies in the 2 s after ` +
        `(${played.bots.errors - errorsBefore} new bot errors)`,
    );
    assert.ok(joinS < 3, figures.at(-1));
    assert.ok(relistS < 3, figures.at(-1));
    assert.ok(echoesAfter > 0, "the bots stopped playing");
    assert.equal(played.bots.errors - errorsBefore, 0, "bots failed after the kill");

    // Master 1 back, so both masters face the Redis restart.
    processes.splice(processes.indexOf(m1), 1);
    await m1.close();
    m1 = await startMasterAt(M1);
    await driver.until("master 1 back", (r) => r.lists.every(both));

    // ---- restart Redis (kill -9, empty on return)
    await redis.stop("SIGKILL");
    const redisKilledAt = Date.now();
    let missingSince: number | undefined;
    let longestGap = 0;
    let unanswered = 0;
    const trackGap = (r: Round) => {
      // A round where a master did not answer in time (a busy machine) says nothing either way.
      if (r.lists.some((list) => list === null)) {
        unanswered++;
        return;
      }
      const listed = r.lists.every(both);
      if (!listed) missingSince ??= r.t;
      if (listed && missingSince !== undefined) {
        longestGap = Math.max(longestGap, r.t - missingSince);
        missingSince = undefined;
      }
    };
    await driver.until("a master to report the store down", (r) => {
      trackGap(r);
      return r.healths.some((h) => h === "degraded");
    });
    // Timed from starting redis-server again (it accepts connections somewhat later).
    const restartedAt = Date.now();
    redis = await startRedisHere();
    const rebuilt = await driver.until("both masters healthy and listing both clusters", (r) => {
      trackGap(r);
      return r.healths.every((h) => h === "ok") && r.lists.every(both);
    });
    // A few more rounds: a rebuild must not drop anything afterwards either.
    await driver.until("2 s after the rebuild", (r) => {
      trackGap(r);
      return r.t > rebuilt.t + 2000;
    });
    figures.push(
      `redis restart: down ${((restartedAt - redisKilledAt) / 1000).toFixed(2)} s, masters ` +
        `healthy ${
          ((rebuilt.t - restartedAt) / 1000).toFixed(2)
        } s after redis-server was started again, ` +
        `longest time a cluster was missing from a list ${(longestGap / 1000).toFixed(2)} s ` +
        `(${unanswered} rounds where a master did not answer the driver within 500 ms)`,
    );
    assert.ok(longestGap < 5000, figures.at(-1));

    // ---- partition c2's host
    await net.link("c2", false);
    const partitionedAt = Date.now();
    const dropped = await driver.until(
      "c2 dropped from both lists",
      (r) => r.lists.every((list) => list !== null && !names(list).includes("c2")),
    );
    const droppedS = (dropped.t - partitionedAt) / 1000;
    await net.link("c2", true);
    const healedAt = Date.now();
    const back = await driver.until("c2 listed again", (r) => r.lists.every(both));
    const backS = (back.t - healedAt) / 1000;
    figures.push(
      `partition of c2: dropped from both lists after ${droppedS.toFixed(2)} s ` +
        `(heartbeat timeout 3 s), listed again ${backS.toFixed(2)} s after the link returned`,
    );
    assert.ok(droppedS < 3 + 2, figures.at(-1));
  } finally {
    for (const figure of figures) console.log(figure);
    for (const process of processes.reverse()) {
      await process.close(500).catch(() => {});
    }
    await redis?.stop("SIGKILL");
    await net.destroy();
    for (const dir of dirs) await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
