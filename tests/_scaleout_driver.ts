/**
 * The players' side of tests/scaleout_netns_test.ts, run inside the bots' network namespace
 * (the test process cannot reach namespace addresses): bots that join through a list of
 * masters and play (echo), a join probe (a fresh client joining and leaving every 200 ms),
 * and a look at each master's cluster list and `/health`. It prints one JSON line per round
 * (`{"t": …}`) until `--seconds` pass or the test kills it. Test helper; never used by library
 * code.
 *
 * Usage: deno run -A tests/_scaleout_driver.ts --masters h:p,h:p --status h:p,h:p --bots N
 *
 * @module
 */

import { parseArgs } from "node:util";
import { startBots } from "../client/bots.ts";
import { BUILTIN_SCENARIOS } from "../client/bot_scenarios.ts";
import { DenoSustenetClient as SustenetClient } from "../client/deno_sustenet_client.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    masters: { type: "string" },
    status: { type: "string" },
    bots: { type: "string" },
    seconds: { type: "string" },
  },
});
const split = (text: string | undefined) =>
  (text ?? "").split(",").filter((p) => p !== "").map((part) => {
    const colon = part.lastIndexOf(":");
    return { host: part.slice(0, colon), port: Number(part.slice(colon + 1)) };
  });
const masters = split(values.masters);
const statuses = split(values.status);
const seconds = Number(values.seconds ?? "300");
const endAt = Date.now() + seconds * 1000;

const run = startBots({
  master: masters[0],
  count: Number(values.bots ?? "10"),
  seconds,
  intervalMs: 200,
  // The clusters load the echo plugin only (chat would be answered with Error(Unhandled)).
  scenario: BUILTIN_SCENARIOS.echo,
  client: { masters: masters.slice(1), timeoutMs: 2000, reconnect: { enabled: true } },
});

const probe = { ok: 0, fail: 0, lastOk: 0, lastFail: 0, lastError: "" };
let stopping = false;

async function probeLoop(): Promise<void> {
  while (!stopping && Date.now() < endAt) {
    const started = Date.now();
    let client: SustenetClient | undefined;
    try {
      client = await SustenetClient.connect({
        ...masters[0],
        masters: masters.slice(1),
        timeoutMs: 1000,
      });
      const session = await client.join("auto");
      await session.leave();
      probe.ok++;
      probe.lastOk = started;
    } catch (error) {
      probe.fail++;
      probe.lastFail = started;
      probe.lastError = error instanceof Error ? error.message : String(error);
    } finally {
      await client?.close().catch(() => {});
    }
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, 200 - (Date.now() - started))));
  }
}

/** One master's clusters as `name#id`, or null when it does not answer. */
async function listOf(master: { host: string; port: number }): Promise<string[] | null> {
  let client: SustenetClient | undefined;
  try {
    client = await SustenetClient.connect({ ...master, timeoutMs: 500 });
    const clusters = await client.listClusters();
    return clusters.map((c) => `${c.name}#${c.id}`).sort();
  } catch {
    return null;
  } finally {
    await client?.close().catch(() => {});
  }
}

/** Delays (ms) of changes from other masters, as each master's `/health` reports them. */
const delays: (number | null)[][] = statuses.map(() => [null, null]);

async function healthOf(
  status: { host: string; port: number },
  at: number,
): Promise<string | null> {
  try {
    const response = await fetch(`http://${status.host}:${status.port}/health`, {
      signal: AbortSignal.timeout(500),
    });
    const body = await response.json();
    delays[at] = [body.registry?.lastDelayMs ?? null, body.registry?.maxDelayMs ?? null];
    return String(body.status);
  } catch {
    return null;
  }
}

const probing = probeLoop();
while (!stopping && Date.now() < endAt) {
  const started = Date.now();
  const [lists, healths] = await Promise.all([
    Promise.all(masters.map(listOf)),
    Promise.all(statuses.map((status, at) => healthOf(status, at))),
  ]);
  const status = run.status();
  console.log(JSON.stringify({
    t: started,
    lists,
    healths,
    delays,
    bots: {
      joined: status.joined,
      sent: status.sent,
      received: status.received,
      errors: status.errors,
    },
    probe,
  }));
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, 100 - (Date.now() - started))));
}
stopping = true;
run.stop();
await probing;
await run.done;
Deno.exit(0);
