import assert from "node:assert/strict";
import { SustenetClient } from "../client/mod.ts";
import type { ClusterInfo, PacketOf } from "../shared/protocol/packets.ts";
import { RawPeer } from "./_master_peer.ts";
import { Deployment, freePort, REPO_ROOT, type RoleProcess } from "./_process.ts";
import { joinCluster, type RawClient, requestTicket, waitUntil } from "./_raw_client.ts";

const HEARTBEAT_TIMEOUT_MS = 1500;

/** A deployment that starts masters and clusters as these fault tests need them. */
class FaultDeployment extends Deployment {
  static override async create(): Promise<FaultDeployment> {
    return new FaultDeployment(await Deployment.makeDir("sustenet_fault_"));
  }

  /** Starts a master on `port` and waits for its ready line. */
  async master(port: number): Promise<RoleProcess> {
    return await this.start(
      "master",
      `master_${port}`,
      `[all]\nport = ${port}\nkeys_dir = "keys"\nstatus_enabled = false\n` +
        `[master]\nheartbeat_timeout_ms = ${HEARTBEAT_TIMEOUT_MS}\n`,
      /^master listening on /,
    );
  }

  /** Starts a cluster named `name` on `port` with the given plugin files, registered to `masterPort`. */
  async cluster(
    name: string,
    port: number,
    masterPort: number,
    plugins: readonly string[] = ["plugins/echo.ts"],
  ): Promise<RoleProcess> {
    const pluginTables = plugins.map((p) => `[[cluster.plugins]]\nurl = "${REPO_ROOT}${p}"\n`);
    return await this.start(
      "cluster",
      `cluster_${name}`,
      `[all]\nport = ${port}\nkeys_dir = "keys"\nstatus_enabled = false\nserver_name = "${name}"\n` +
        `[cluster]\nmaster_port = ${masterPort}\nidentity_key_name = "${name}_identity"\n` +
        `heartbeat_interval_ms = 200\n` + // reconnect delays at their defaults
        pluginTables.join(""),
      new RegExp(`^cluster ${name} listening on `),
    );
  }

  /** A master, a cluster `name` (the victim) and a cluster "survivor", both listed. */
  async victimAndSurvivor(
    name: string,
  ): Promise<{ masterPort: number; victim: RoleProcess; victimPort: number }> {
    const masterPort = await freePort();
    await this.master(masterPort);
    const victimPort = await freePort();
    const victim = await this.cluster(name, victimPort, masterPort);
    await this.cluster("survivor", await freePort(), masterPort);
    await waitForList(masterPort, (list) => list.length === 2, "two clusters listed", 60_000);
    return { masterPort, victim, victimPort };
  }
}

async function clustersOf(masterPort: number): Promise<readonly ClusterInfo[]> {
  const peer = await RawPeer.hello(masterPort, "client");
  try {
    peer.send({ kind: "RequestClusters" });
    return (await peer.expect("SendClusters")).clusters;
  } finally {
    await peer.close();
  }
}

/** Polls the master's list until `check` holds. */
async function waitForList(
  masterPort: number,
  check: (clusters: readonly ClusterInfo[]) => boolean,
  what: string,
  timeoutMs: number,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (true) {
    try {
      if (check(await clustersOf(masterPort))) return;
    } catch (error) {
      // A master still starting refuses the connection: poll again.
      if (!(error instanceof Deno.errors.ConnectionRefused)) throw error;
    }
    if (performance.now() > deadline) throw new Error(`${what} not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Joins the cluster `clusterId` (0 = any) through the master, the raw way; asserts status 20. */
async function joinThrough(masterPort: number, clusterId = 0): Promise<RawClient> {
  const grant = await requestTicket(masterPort, clusterId);
  assert.equal(grant.answer.kind, "JoinTicket", JSON.stringify(grant.answer));
  const ticket = grant.answer as PacketOf<"JoinTicket">;
  const { client, auth } = await joinCluster(ticket.port, {
    ephemeral: grant.ephemeral,
    ticket: ticket.ticket,
    clusterPublicKey: ticket.clusterPublicKey,
  });
  assert.equal(auth.status, 20);
  return client;
}

/**
 * Waits (heartbeat timeout + 1 s at most) until only "survivor" is listed, then checks that new
 * joins never get the port of the cluster that went silent.
 */
async function unlistedAndAvoided(masterPort: number, gonePort: number, what: string) {
  await waitForList(
    masterPort,
    (list) => list.length === 1 && list[0].name === "survivor",
    `${what} to be unlisted`,
    HEARTBEAT_TIMEOUT_MS + 1000,
  );
  for (let i = 0; i < 5; i++) {
    const grant = await requestTicket(masterPort);
    assert.equal(grant.answer.kind, "JoinTicket");
    assert.notEqual((grant.answer as { port: number }).port, gonePort);
  }
}

async function echoes(client: RawClient, text: string, command = 0x80): Promise<void> {
  const payload = new TextEncoder().encode(text);
  // A plugin that is being restarted (a thawed cluster's watchdog may just have replaced it)
  // drops what it is sent meanwhile: ask again each second, a bounded number of times.
  for (let attempt = 1;; attempt++) {
    client.send({ kind: "Plugin", command, payload });
    try {
      let answer = await client.expect("Plugin", 1000);
      // exits.ts greets (0x92) every player it sees join, again when it is restarted.
      while (answer.command === 0x92) answer = await client.expect("Plugin", 60_000);
      assert.equal(answer.command, command);
      assert.equal(new TextDecoder().decode(answer.payload), text);
      return;
    } catch (error) {
      const silent = error instanceof Error && /^no packet within/.test(error.message);
      if (!silent || attempt >= 60) throw error;
    }
  }
}

Deno.test("kill -9 of the master: players keep playing, clusters are listed again within 3 s of a new master", async () => {
  await using deployment = await FaultDeployment.create();
  const masterPort = await freePort();
  const master = await deployment.master(masterPort);
  await deployment.cluster("eu-1", await freePort(), masterPort);
  await deployment.cluster("eu-2", await freePort(), masterPort);
  await waitForList(masterPort, (list) => list.length === 2, "two clusters listed", 60_000);
  const players = [];
  for (const cluster of await clustersOf(masterPort)) {
    players.push(await joinThrough(masterPort, cluster.id));
  }
  try {
    master.kill("SIGKILL");
    await master.waitExit();
    for (const [i, player] of players.entries()) await echoes(player, `no master ${i}`);

    await deployment.master(masterPort);
    await waitForList(
      masterPort,
      (list) => list.length === 2,
      "both clusters listed again",
      60_000,
    );
    for (const [i, player] of players.entries()) await echoes(player, `new master ${i}`);
    // And joins work through the new master.
    const late = await joinThrough(masterPort);
    await echoes(late, "late");
    await late.close();
  } finally {
    for (const player of players) await player.close();
  }
});

Deno.test("kill -9 of a cluster: it leaves the list within the heartbeat timeout and gets no new joins", async () => {
  await using deployment = await FaultDeployment.create();
  const { masterPort, victim: doomed, victimPort: doomedPort } = await deployment.victimAndSurvivor(
    "doomed",
  );

  doomed.kill("SIGKILL");
  await doomed.waitExit();
  await unlistedAndAvoided(masterPort, doomedPort, "the killed cluster");
  assert.deepEqual((await clustersOf(masterPort)).map((c) => c.name), ["survivor"]);
});

Deno.test("SIGSTOP of a cluster: unlisted within the heartbeat timeout, no new joins; back after SIGCONT", async () => {
  await using deployment = await FaultDeployment.create();
  const { masterPort, victim: frozen, victimPort: frozenPort } = await deployment.victimAndSurvivor(
    "frozen",
  );

  // Alive to the kernel (its sockets stay open) but silent: only the heartbeat timeout tells.
  frozen.kill("SIGSTOP");
  try {
    await unlistedAndAvoided(masterPort, frozenPort, "the stopped cluster");
  } finally {
    // Before any cleanup: a stopped process would ignore the SIGTERM that close() sends.
    frozen.kill("SIGCONT");
  }
  // Resumed, it finds its link dropped and registers again.
  await waitForList(masterPort, (list) => list.length === 2, "the resumed cluster listed", 60_000);
  const client = await joinThrough(
    masterPort,
    (await clustersOf(masterPort)).find((c) => c.name === "frozen")!.id,
  );
  try {
    await echoes(client, "thawed");
  } finally {
    await client.close();
  }
});

Deno.test("a plugin crash mid-game (its Worker exits) leaves the other players playing", async () => {
  await using deployment = await FaultDeployment.create();
  const masterPort = await freePort();
  await deployment.master(masterPort);
  const clusterPort = await freePort();
  await deployment.cluster("eu-1", clusterPort, masterPort, [
    "plugins/echo.ts",
    "plugins/testing/exits.ts",
  ]);
  await waitForList(masterPort, (list) => list.length === 1, "the cluster listed", 60_000);
  const crasher = { client: await joinThrough(masterPort) };
  const bystander = { client: await joinThrough(masterPort) };
  try {
    // exits.ts greets each joining player with 0x92.
    assert.equal((await crasher.client.expect("Plugin", 60_000)).command, 0x92);
    assert.equal((await bystander.client.expect("Plugin", 60_000)).command, 0x92);
    crasher.client.send({ kind: "Plugin", command: 0x90, payload: new Uint8Array() });
    await echoes(bystander.client, "the game goes on");
    await echoes(crasher.client, "me too");
    // The crashed plugin is restarted (messages sent meanwhile are dropped) and answers again.
    await waitUntil(
      () => {
        const answered = bystander.client.pending.some((p) =>
          !(p instanceof Error) && p.kind === "Plugin" && p.command === 0x91
        );
        if (!answered) {
          bystander.client.send({ kind: "Plugin", command: 0x91, payload: new Uint8Array([1]) });
        }
        return answered;
      },
      "the restarted plugin to answer",
      10_000,
    );
  } finally {
    await crasher.client.close();
    await bystander.client.close();
  }
});

Deno.test("SIGTERM of a cluster drains its players with a DisconnectCluster reason", async () => {
  await using deployment = await FaultDeployment.create();
  const masterPort = await freePort();
  await deployment.master(masterPort);
  const cluster = await deployment.cluster("eu-1", await freePort(), masterPort);
  await waitForList(masterPort, (list) => list.length === 1, "the cluster listed", 60_000);
  await using client = await SustenetClient.connect({ port: masterPort, keepaliveMs: 0 });
  const session = await client.join("auto");
  const disconnected = new Promise<string>((resolve) => {
    session.on("disconnect", ({ reason }) => resolve(reason));
  });
  cluster.kill("SIGTERM");
  const reason = await disconnected;
  assert.match(reason, /shut|stop/i);
  assert.equal((await cluster.waitExit()).code, 0);
  await waitForList(masterPort, (list) => list.length === 0, "the cluster to deregister", 60_000);
  await waitUntil(() => session.status === "closed", "the session to close");
});
