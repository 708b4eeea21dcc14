/**
 * OpenTelemetry through Deno's built-in support, with the console exporter: a real join
 * (master ticket, then cluster admission and the plugin's join) shows up as spans with their
 * attributes, registration too, and the game counters as OTel metrics.
 */
import assert from "node:assert/strict";
import { ADMIN_TOKEN, OpsDeployment } from "./_ops_deployment.ts";
import { waitFor } from "./_wait.ts";

/** Waits (60 s at most) until `check` holds. */

/** The block of lines the console exporter printed for the first span named `name`. */
function spanBlock(text: string, name: string): string {
  const start = text.indexOf(`SPAN ${name} `);
  if (start < 0) return "";
  const rest = text.slice(start + 5);
  const end = rest.search(/\n(SPAN|LOG|METRIC) /);
  return end < 0 ? rest : rest.slice(0, end);
}

Deno.test("a join shows up as spans in the console exporter, counters as OTel metrics", async () => {
  await using ops = await OpsDeployment.start(["otel-1"], {
    env: {
      OTEL_DENO: "true",
      OTEL_EXPORTER_OTLP_PROTOCOL: "console",
      OTEL_SERVICE_NAME: "sustenet-test",
      OTEL_METRIC_EXPORT_INTERVAL: "1000",
      OTEL_BSP_SCHEDULE_DELAY: "200",
    },
  });
  const [bot] = await ops.joinBots(1, 0);
  const master = ops.deployment.processes[0];
  const cluster = ops.clusters[0].process;
  await waitFor(
    "the master's join span",
    () => master.stderrText().includes("SPAN sustenet.master.join "),
  );
  await waitFor(
    "the cluster's admission span",
    () => cluster.stderrText().includes("SPAN sustenet.cluster.admission "),
  );
  await waitFor(
    "the plugin's join span",
    () => cluster.stderrText().includes("SPAN sustenet.plugin.join "),
  );
  await waitFor(
    "a game counter as an OTel metric",
    () => cluster.stderrText().includes("METRIC sustenet_cluster_players"),
  );

  const join = spanBlock(master.stderrText(), "sustenet.master.join");
  assert.match(join, /sustenet\.join\.issued: true/);
  assert.match(join, /sustenet\.player\.id: "?guest-[0-9a-f]{16}/);
  const admission = spanBlock(cluster.stderrText(), "sustenet.cluster.admission");
  assert.match(admission, /sustenet\.admission\.status: 20/);
  assert.match(admission, new RegExp(`sustenet\\.client\\.id: ${bot.session.clientId}`));
  // The master's ticket and the cluster's admission name the same player and cluster.
  const player = /sustenet\.player\.id: "?(guest-[0-9a-f]{16})/.exec(join)![1];
  assert.ok(admission.includes(player), admission);
  const clusterId = /sustenet\.cluster\.id: (\d+)/.exec(join)![1];
  assert.ok(admission.includes(`sustenet.cluster.id: ${clusterId}`), admission);
  const pluginJoin = spanBlock(cluster.stderrText(), "sustenet.plugin.join");
  assert.match(pluginJoin, /sustenet\.plugin\.name: "?echo/);
  assert.match(
    spanBlock(master.stderrText(), "sustenet.master.cluster_registration"),
    /sustenet\.cluster\.name: "?otel-1/,
  );
  // The ready line stays alone on stdout: the exporter writes to stderr.
  assert.ok(!cluster.stdoutLines().some((line) => line.includes("SPAN ")));
});

Deno.test("logs reach OTel as console records; with log_format = json their body carries category and properties", async () => {
  // Deno 2.9.6 registers no OTel logger provider (`@opentelemetry/api-logs` stays a no-op proxy
  // and `Deno.telemetry` has none): a log record's only way in is the console capture, whose body
  // is the printed line. docs/OPERATIONS.md "OpenTelemetry logs" has the evidence. When a Deno
  // release adds one, this fails so the sink can be switched to real attributes.
  assert.deepEqual(Object.keys(Deno.telemetry).sort(), [
    "contextManager",
    "meterProvider",
    "tracerProvider",
  ]);
  await using ops = await OpsDeployment.start(["otel-logs-1"], {
    env: {
      OTEL_DENO: "true",
      OTEL_EXPORTER_OTLP_PROTOCOL: "console",
      OTEL_SERVICE_NAME: "sustenet-test",
      OTEL_BLRP_SCHEDULE_DELAY: "200",
    },
    logLevel: "info",
    extraAll: 'log_format = "json"\n',
  });
  await ops.joinBots(1, 0);
  const cluster = ops.clusters[0].process;
  /** The exporter's records of JSON lines: `LOG [<severity>] <time> "<the JSON line>"`. */
  const records = (text: string) =>
    text.split("\n").flatMap((line) => {
      const match = /^LOG \[(\w+)\] \S+ "(\{"time".*\})$/.exec(line);
      return match === null ? [] : [{ severity: match[1], body: JSON.parse(match[2]) }];
    });
  await waitFor(
    "the join's JSON log line exported as an OTel log record",
    () =>
      records(cluster.stderrText()).some((r) =>
        r.body.category === "sustenet.cluster" && typeof r.body.properties?.playerId === "string"
      ),
  );
  const joined = records(cluster.stderrText()).find((r) =>
    typeof r.body.properties?.playerId === "string"
  )!;
  assert.equal(joined.body.level, "info");
  assert.match(joined.body.properties.playerId, /^guest-/);
  assert.equal(typeof joined.body.properties.clientId, "number");
  // A warning (the master's drain log) is exported with severity WARN.
  const drain = await fetch(`${ops.masterStatusUrl}/api/clusters/${await clusterId(ops)}/drain`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${ADMIN_TOKEN}` },
    body: JSON.stringify({ on: true }),
  });
  assert.equal(drain.status, 200, await drain.text());
  const master = ops.deployment.processes[0];
  await waitFor(
    "the drain warning exported with severity WARN",
    () =>
      records(master.stderrText()).some((r) =>
        r.severity === "WARN" && r.body.level === "warning" && /draining/.test(r.body.message)
      ),
  );
});

/** The id of the first cluster on the master's console. */
async function clusterId(ops: OpsDeployment): Promise<number> {
  const state = await (await fetch(`${ops.masterStatusUrl}/api/state`)).json();
  return state.clusters[0].id;
}
