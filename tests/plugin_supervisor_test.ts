/**
 * The plugin supervisor without Workers, processes or timers: time is a number the test
 * passes in, and each call's actions are what a host would do (spawn, replay, ping, kill,
 * move verdicts, log lines).
 */
import assert from "node:assert/strict";
import {
  PluginSupervisor,
  type PluginSupervisorOptions,
  type SupervisorAction,
} from "../cluster/plugin_supervisor.ts";
import { asClientId, type PlayerInfo } from "../shared/plugin.ts";

const alice: PlayerInfo = { clientId: asClientId(1), playerId: "alice" };
const bob: PlayerInfo = { clientId: asClientId(2), playerId: "bob" };

// No jitter: restart delays are exactly 500, 1000, 2000, … ms.
function supervisor(options: Partial<PluginSupervisorOptions> = {}): PluginSupervisor {
  return new PluginSupervisor({ name: "game", random: () => 0, ...options });
}

// Spawns a sandbox at `now`, which loads and runs onStart; returns its generation.
function run(s: PluginSupervisor, now: number, hooks = ["onMove"] as const): number {
  const generation = s.spawned(now);
  s.ready(generation, hooks, undefined);
  s.started(generation, now);
  return generation;
}

function started(options: Partial<PluginSupervisorOptions> = {}) {
  const s = supervisor(options);
  s.beginStart();
  return { s, generation: run(s, 0) };
}

const kinds = (actions: readonly SupervisorAction[]) => actions.map((a) => a.kind);

function logs(actions: readonly SupervisorAction[]): string[] {
  return actions.flatMap((a) => a.kind === "log" ? [`${a.level}: ${a.message}`] : []);
}

function kill(actions: readonly SupervisorAction[]) {
  const found = actions.find((a) => a.kind === "kill");
  assert.ok(found?.kind === "kill", `no kill in ${kinds(actions)}`);
  return found;
}

Deno.test("a crash kills the sandbox and restarts it after the backoff, players replayed", () => {
  const { s, generation } = started();
  s.join(alice);
  s.join(bob);
  s.leave(alice.clientId);
  assert.equal(s.players, 1);
  const actions = s.crashed(generation, "crash", "signal SIGSEGV", 1_000);
  assert.deepEqual(kill(actions), { kind: "kill", generation, reason: "crash: signal SIGSEGV" });
  assert.deepEqual(logs(actions), [
    "error: plugin {plugin} {reason}; terminated",
    "warning: restarting plugin {plugin} in {delayMs} ms",
  ]);
  assert.equal(s.state, "restarting");
  assert.equal(s.lastError, "crash: signal SIGSEGV");
  assert.equal(s.phase(generation), "dead");
  assert.equal(s.live, false);
  assert.equal(s.failures.crash, 1);
  assert.equal(s.restarts, 1);

  assert.equal(s.nextDeadline(), 1_500);
  assert.deepEqual(s.tick(1_499), []);
  assert.deepEqual(s.tick(1_500), [{ kind: "spawn" }]);
  const next = s.spawned(1_500);
  assert.notEqual(next, generation);
  // Only players still present are replayed, after onStart.
  assert.deepEqual(s.ready(next, ["onJoin"], undefined), [{ kind: "replay", players: [bob] }]);
  const up = s.started(next, 1_600);
  assert.deepEqual(kinds(up), ["started", "log"]);
  assert.deepEqual(logs(up), ["info: plugin {plugin} restarted with {players} player(s) replayed"]);
  assert.equal(s.state, "running");

  // A second crash in a row waits twice as long.
  s.crashed(next, "exit", "exit code 1", 2_000);
  assert.equal(s.nextDeadline(), 3_000);
});

Deno.test("a plugin silent past watchdogMs is killed as hung; answered pings keep it", () => {
  const { s, generation } = started({ watchdogMs: 100 });
  // Pings go every watchdogMs / 2 while it answers.
  assert.equal(s.nextDeadline(), 50);
  assert.deepEqual(s.tick(50), [{ kind: "ping", seq: 1 }]);
  s.pong(generation, 60);
  assert.deepEqual(s.tick(100), [{ kind: "ping", seq: 2 }]);
  s.pong(generation, 110);
  assert.deepEqual(s.tick(150), [{ kind: "ping", seq: 3 }]);
  // No pong from here on: at 200 it was silent 90 ms (still fine), at 250 for 140 ms.
  assert.deepEqual(s.tick(200), [{ kind: "ping", seq: 4 }]);
  const actions = s.tick(250);
  assert.equal(kill(actions).reason, "did not answer the watchdog for 140 ms (hung)");
  assert.equal(s.failures.hang, 1);
  assert.equal(s.state, "restarting");
  // A pong of the dead sandbox changes nothing.
  s.pong(generation, 251);
  assert.equal(s.nextDeadline(), 750);
});

Deno.test("failing maxRestarts + 1 times in a row unloads the plugin; a stable run resets the count", () => {
  const { s, generation } = started({ maxRestarts: 2, stableAfterMs: 10_000 });
  let gen = generation;
  let now = 0;
  for (const delay of [500, 1_000]) {
    s.crashed(gen, "crash", "boom", now);
    assert.equal(s.nextDeadline(), now + delay);
    now += delay;
    assert.deepEqual(s.tick(now), [{ kind: "spawn" }]);
    gen = run(s, now);
  }
  const last = s.crashed(gen, "crash", "boom", now + 1);
  assert.deepEqual(
    logs(last).at(-1),
    "error: plugin {plugin} failed {count} times in a row; unloaded",
  );
  assert.deepEqual(last.at(-1), {
    kind: "log",
    level: "error",
    message: "plugin {plugin} failed {count} times in a row; unloaded",
    properties: { plugin: "game", count: 3 },
  });
  assert.equal(s.state, "failed");
  assert.equal(s.nextDeadline(), undefined);
  assert.equal(s.restarts, 2);

  // The same budget, but the second sandbox ran stableAfterMs: the backoff starts over.
  const t = started({ maxRestarts: 2, stableAfterMs: 10_000 });
  t.s.crashed(t.generation, "crash", "boom", 0);
  t.s.tick(500);
  const second = run(t.s, 500);
  t.s.crashed(second, "crash", "boom", 20_000);
  assert.equal(t.s.nextDeadline(), 20_500);
  assert.equal(t.s.state, "restarting");
});

Deno.test("pending moves are accepted when their verdict is late or their sandbox dies", () => {
  const { s, generation } = started({ moveTimeoutMs: 250 });
  s.moveSent(1, 0);
  s.moveSent(2, 100);
  s.moveSent(3, 100);
  // The watchdog's first ping is due at 1000; the first move deadline comes before.
  assert.equal(s.nextDeadline(), 250);
  assert.deepEqual(s.tick(249), []);
  const expired = s.tick(250);
  assert.deepEqual(expired[0], { kind: "verdict", id: 1, accept: true });
  assert.deepEqual(logs(expired), ["warning: {count} move verdict(s) took over {ms} ms; accepted"]);
  assert.equal(s.moveTimeouts, 1);
  // A verdict in time is passed on; a second one for the same move, or an unknown one, is not.
  assert.deepEqual(s.moveResult(generation, 2, false), [{ kind: "verdict", id: 2, accept: false }]);
  assert.deepEqual(s.moveResult(generation, 2, true), []);
  assert.deepEqual(s.moveResult(generation, 99, false), []);
  // The sandbox dies with move 3 pending: accepted right after the kill.
  const actions = s.crashed(generation, "memory", "over 128 MiB", 300);
  assert.deepEqual(actions.slice(0, 2), [
    { kind: "kill", generation, reason: "memory: over 128 MiB" },
    { kind: "verdict", id: 3, accept: true },
  ]);
  assert.equal(s.moveTimeouts, 1);
});

Deno.test("the first sandbox that does not load in time fails start; a restarted one is retried", () => {
  const s = supervisor({ loadTimeoutMs: 1_000 });
  s.beginStart();
  const generation = s.spawned(0);
  assert.equal(s.stderr(generation, "error: Module not found\n"), true);
  assert.equal(s.nextDeadline(), 1_000);
  const actions = s.tick(1_000);
  assert.deepEqual(actions, [{
    kind: "kill",
    generation,
    reason: "did not load and start within 1000 ms",
  }]);
  assert.equal(s.state, "failed");
  assert.equal(s.stderr(generation, "late"), false);

  // A crash while loading names the first stderr lines.
  const t = supervisor();
  t.beginStart();
  const loading = t.spawned(0);
  t.stderr(loading, "error: Uncaught SyntaxError  ");
  assert.equal(
    kill(t.crashed(loading, "exit", "exit code 1", 5)).reason,
    "exit code 1: error: Uncaught SyntaxError",
  );
  assert.equal(t.state, "failed");

  // After a restart, a sandbox that fails to load is replaced again, within the budget.
  const { s: r, generation: first } = started();
  r.crashed(first, "crash", "boom", 0);
  r.tick(500);
  const restarted = r.spawned(500);
  const failed = r.loadFailed(restarted, "Can't escalate parent thread permissions", 600);
  assert.match(kill(failed).reason, /--allow-import/);
  assert.deepEqual(logs(failed), [
    "error: plugin {plugin} could not restart: {error}",
    "warning: restarting plugin {plugin} in {delayMs} ms",
  ]);
  assert.equal(r.nextDeadline(), 1_600);
  // A sandbox that could not even be created counts the same way.
  r.tick(1_600);
  assert.deepEqual(kinds(r.spawnFailed(new Error("spawn failed"), 1_600)), ["log", "log"]);
  assert.equal(r.nextDeadline(), 1_600 + 2_000);
});

Deno.test("events of a killed sandbox are ignored; stopping ends restarts and pings", () => {
  const { s, generation } = started();
  s.crashed(generation, "crash", "boom", 0);
  assert.deepEqual(s.crashed(generation, "exit", "again", 1), []);
  assert.deepEqual(s.ready(generation, ["onMessage"], [0x80]), []);
  assert.deepEqual(s.started(generation, 2), []);
  assert.equal(s.failures.exit, 0);

  // Stopping while a restart waits: it never comes.
  assert.equal(s.stopping(), false);
  assert.equal(s.nextDeadline(), undefined);
  assert.deepEqual(s.tick(10_000), []);

  // Stopping a running plugin: onStop is asked for, no pings go, a crash restarts nothing.
  const t = started();
  assert.equal(t.s.stopping(), true);
  assert.equal(t.s.live, false);
  assert.equal(t.s.nextDeadline(), undefined);
  assert.deepEqual(kinds(t.s.crashed(t.generation, "crash", "boom", 5)), ["kill", "log"]);
  assert.equal(t.s.state, "stopping");
  assert.deepEqual(t.s.terminate("the host was stopped"), []);
  t.s.stopped();
  assert.equal(t.s.state, "stopped");
});

Deno.test("an operator restart replaces a running sandbox at once, with a fresh backoff", () => {
  const s = supervisor();
  assert.equal(s.restart(), null);
  s.beginStart();
  const generation = run(s, 0);
  const actions = s.restart();
  assert.ok(actions !== null);
  assert.deepEqual(kinds(actions), ["kill", "log", "spawn"]);
  assert.equal(kill(actions).reason, "restarted by an operator");
  assert.equal(s.state, "restarting");
  assert.equal(s.restart(), null);
  assert.equal(s.phase(generation), "dead");
  const next = run(s, 10);
  assert.equal(s.state, "running");
  // The declared commands are what the last loaded plugin said: without onMessage, none.
  assert.equal(s.handles(0x90), false);
  s.crashed(next, "crash", "boom", 20);
  const again = s.spawned(520);
  s.ready(again, ["onMessage"], [0x80]);
  assert.equal(s.handles(0x80), true);
  assert.equal(s.handles(0x81), false);
});
