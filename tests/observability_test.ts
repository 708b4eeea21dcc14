/**
 * Observability against real processes: `promtool check metrics` accepts the master's and a
 * cluster's `/metrics` with bots playing, the process metrics are there, and the operator
 * actions answer 401 without the token (nothing done), 404 for unknown targets, and work with
 * it (a kick, a notice, a drain, a plugin restart).
 */
import assert from "node:assert/strict";
import { ADMIN_TOKEN, OpsDeployment, promtool, sampleValue, scrape } from "./_ops_deployment.ts";
import { waitFor } from "./_wait.ts";

/** Waits (60 s at most) until `check` holds. */
/** {@linkcode waitFor} at the pace of a fetch per check. */
const until = (what: string, check: () => Promise<boolean> | boolean) =>
  waitFor(what, check, 60_000, 50);

function post(url: string, body: unknown, token?: string): Promise<Response> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  return fetch(url, { method: "POST", headers, body: JSON.stringify(body) });
}

Deno.test("promtool accepts the master's and a cluster's /metrics with bots playing", async () => {
  await using ops = await OpsDeployment.start(["prom-1"]);
  const bots = await ops.joinBots(4, 0);
  let echoes = 0;
  for (const bot of bots) bot.session.on("message", () => echoes++);
  for (const bot of bots) bot.session.send(0x80, new Uint8Array([1, 2, 3]));
  await until("the echoes", () => echoes >= 4);
  const cluster = ops.clusters[0].statusUrl;
  await until(
    "the cluster's players and a heartbeat with them",
    async () => sampleValue(await scrape(cluster), "sustenet_cluster_players") === 4,
  );
  for (const url of [ops.masterStatusUrl, cluster]) {
    const text = await scrape(url);
    const { code, output } = await promtool(text);
    assert.equal(code, 0, `promtool on ${url}/metrics:\n${output}`);
    assert.match(text, /^sustenet_build_info\{version="[^"]+",role="(master|cluster)",/m);
    assert.ok((sampleValue(text, "sustenet_event_loop_lag_seconds_count") ?? 0) > 0);
    assert.ok((sampleValue(text, "process_resident_memory_bytes") ?? 0) > 0);
    assert.match(text, /^# TYPE sustenet_gc_pause_seconds_total counter$/m);
  }
  const clusterText = await scrape(cluster);
  assert.match(clusterText, /^# TYPE sustenet_cluster_tick_seconds histogram$/m);
  // Every echo was written to its bot: each write's wait from queued to written is counted.
  assert.ok((sampleValue(clusterText, "sustenet_cluster_write_delay_seconds_count") ?? 0) >= 4);
  assert.equal(
    sampleValue(clusterText, 'sustenet_cluster_auth_results_total{status="20",reason="ok"}'),
    4,
  );
  assert.ok((sampleValue(clusterText, "sustenet_cluster_bytes_in_total") ?? 0) > 0);
  const masterText = await scrape(ops.masterStatusUrl);
  assert.equal(sampleValue(masterText, "sustenet_master_client_request_seconds_count")! >= 4, true);
});

Deno.test("operator actions: refused without the token, 404 for unknown targets, done with it", async () => {
  await using ops = await OpsDeployment.start(["act-1"]);
  const [victim, bystander] = await ops.joinBots(2, 0);
  const cluster = ops.clusters[0].statusUrl;
  const state = await (await fetch(`${cluster}/api/state`)).json();
  assert.equal(state.players, 2);
  const victimRow = state.playerRows.find((p: { clientId: number }) =>
    p.clientId === victim.session.clientId
  );
  assert.ok(victimRow !== undefined, JSON.stringify(state.playerRows));
  const kick = `${cluster}/api/players/${victim.session.clientId}/kick`;

  // No token, a wrong one: 401 and the player is still there.
  assert.equal((await post(kick, {})).status, 401);
  assert.equal((await post(kick, {}, "not-the-token-at-all")).status, 401);
  assert.equal((await post(`${cluster}/api/drain`, {}, "x".repeat(30))).status, 401);
  assert.equal((await (await fetch(`${cluster}/api/state`)).json()).players, 2);
  const stderr = ops.clusters[0].process.stderrText();
  assert.ok(!stderr.includes("not-the-token-at-all"));

  // Unknown player, unknown plugin, unknown cluster on the master: 404.
  assert.equal((await post(`${cluster}/api/players/999999/kick`, {}, ADMIN_TOKEN)).status, 404);
  assert.equal((await post(`${cluster}/api/plugins/ghost/restart`, {}, ADMIN_TOKEN)).status, 404);
  assert.equal(
    (await post(`${ops.masterStatusUrl}/api/clusters/424242/drain`, {}, ADMIN_TOKEN)).status,
    404,
  );

  // A notice reaches the players as plugin command 0xFF.
  const notices: string[] = [];
  bystander.session.on("message", ({ command, payload }) => {
    if (command === 0xff) notices.push(new TextDecoder().decode(payload));
  });
  assert.equal(
    (await post(`${cluster}/api/notice`, { text: "restart in 5" }, ADMIN_TOKEN)).status,
    200,
  );
  await until("the notice", () => notices.includes("restart in 5"));

  // The kick with the token.
  let kickedReason = "";
  victim.session.on("disconnect", ({ reason }) => kickedReason = reason);
  assert.equal((await post(kick, { reason: "be nice" }, ADMIN_TOKEN)).status, 200);
  await until("the kick", () => kickedReason !== "");
  assert.match(kickedReason, /be nice/);
  await until(
    "one player left",
    async () => (await (await fetch(`${cluster}/api/state`)).json()).players === 1,
  );

  // A plugin restart: the echo plugin comes back and still echoes.
  const restart = await post(`${cluster}/api/plugins/echo/restart`, {}, ADMIN_TOKEN);
  assert.equal(restart.status, 200, await restart.text());
  await until("the plugin running again", async () => {
    const s = await (await fetch(`${cluster}/api/state`)).json();
    return s.plugins[0].state === "running" && s.plugins[0].restarts === 1;
  });

  // Drain on the master: the cluster is listed full, no ticket is issued for it.
  const listed = await (await fetch(`${ops.masterStatusUrl}/api/state`)).json();
  const id = listed.clusters[0].id;
  const drain = await post(`${ops.masterStatusUrl}/api/clusters/${id}/drain`, {}, ADMIN_TOKEN);
  assert.equal(drain.status, 200);
  await assert.rejects(() => ops.joinBots(1, 0));
  assert.equal(
    (await (await fetch(`${ops.masterStatusUrl}/api/state`)).json()).clusters[0].draining,
    true,
  );
  // Every action is logged with who and what; the token never is.
  await until(
    "the action log",
    () => ops.clusters[0].process.stderrText().includes("operator action by operator"),
  );
  const logs = ops.clusters[0].process.stderrText() + ops.deployment.processes[0].stderrText();
  assert.match(logs, /operator action refused \(wrong\) from 127\.0\.0\.1:\d+: kick client/);
  assert.match(logs, /operator action by operator from 127\.0\.0\.1:\d+: restart plugin echo/);
  assert.ok(!logs.includes(ADMIN_TOKEN));
});

Deno.test("a flood of console streams is bounded (503 past the limit) and the game carries on", async () => {
  await using ops = await OpsDeployment.start(["flood-1"]);
  const [bot] = await ops.joinBots(1, 0);
  const cluster = ops.clusters[0].statusUrl;
  const streams: Response[] = [];
  const statuses = new Map<number, number>();
  try {
    for (let i = 0; i < 60; i++) {
      const response = await fetch(`${cluster}/api/events`);
      statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
      if (response.status === 200) streams.push(response);
      else await response.body?.cancel();
    }
    assert.equal(statuses.get(200), 32);
    assert.equal(statuses.get(503), 28);
    // The game is unaffected: the player's echo comes back.
    let echoed = false;
    bot.session.on("message", () => echoed = true);
    bot.session.send(0x80, new Uint8Array([9]));
    await until("the echo", () => echoed);
    // A stream delivers the live state.
    const reader = streams.shift()!.body!.getReader();
    const { value } = await reader.read();
    await reader.cancel();
    assert.match(new TextDecoder().decode(value), /^data: \{"name":"flood-1"/);
  } finally {
    for (const stream of streams) await stream.body?.cancel();
  }
  // Closed streams free their slots.
  await until("a free slot", async () => {
    const response = await fetch(`${cluster}/api/events`);
    await response.body?.cancel();
    return response.status === 200;
  });
});

Deno.test("logs go to stderr (JSON lines with log_format = json); stdout has only the ready line", async () => {
  await using ops = await OpsDeployment.start(["logs-1"], {
    extraAll: 'log_format = "json"\n',
    logLevel: "info",
  });
  await ops.joinBots(1, 0);
  const cluster = ops.clusters[0].process;
  await until("the join's log line", () => cluster.stderrText().includes("joined as client"));
  assert.deepEqual(cluster.stdoutLines().filter((line) => line !== ""), [
    cluster.stdoutLines()[0],
  ]);
  assert.match(cluster.stdoutLines()[0], /^cluster logs-1 listening on /);
  const lines = cluster.stderrText().split("\n").filter((line) => line.startsWith("{"));
  const joined = lines.map((line) => JSON.parse(line)).find((r) =>
    r.message.includes("joined as client")
  );
  assert.ok(joined !== undefined, cluster.stderrText());
  assert.equal(joined.level, "info");
  assert.equal(joined.category, "sustenet.cluster");
  assert.match(joined.properties.playerId, /^guest-/);
  assert.equal(typeof joined.properties.clientId, "number");
});

Deno.test("console_public = false: the views need the token too", async () => {
  await using ops = await OpsDeployment.start(["private-1"], {
    extraAll: "console_public = false\n",
  });
  for (const base of [ops.masterStatusUrl, ops.clusters[0].statusUrl]) {
    assert.equal((await fetch(`${base}/api/state`)).status, 401);
    const events = await fetch(`${base}/api/events`);
    assert.equal(events.status, 401);
    await events.body?.cancel();
    const ok = await fetch(`${base}/api/state`, {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    assert.equal(ok.status, 200);
    assert.equal(typeof (await ok.json()).name, "string");
    // /health and /metrics stay open for probes and scrapers.
    for (const path of ["/health", "/metrics"]) {
      const open = await fetch(`${base}${path}`);
      assert.equal(open.status, 200);
      await open.body?.cancel();
    }
  }
});
