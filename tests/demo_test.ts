/**
 * `deno task demo` end to end: the real demo as a child process, started the way the README
 * says (`deno task demo`, so with the task's permissions), and the script itself for flags.
 */
import assert from "node:assert/strict";
import { REPO_ROOT, runDeno as runDenoIn } from "./_process.ts";

/** Runs `deno <args>` from the repository root. */
const runDeno = (args: readonly string[]) => runDenoIn(args, { cwd: REPO_ROOT });

Deno.test("`deno task demo` starts a master and two clusters, runs bots, summarises and exits 0", async () => {
  // Default arguments, as in the README: 6 bots for 4 seconds.
  const { code, stdout, stderr } = await runDeno(["task", "demo"]);
  assert.equal(code, 0, `demo failed:\n${stdout}\n${stderr}`);
  assert.match(
    stdout,
    /^master status page: http:\/\/127\.0\.0\.1:\d+\/ \(health: ok, 2 clusters\)$/m,
  );
  assert.match(stdout, /^ {2}ID +NAME +ADDRESS +LOAD +FULL$/m);
  assert.match(stdout, /^ {2}\d+ +cluster-a +127\.0\.0\.1:\d+ +\d+\/∞ +no$/m);
  assert.match(stdout, /^ {2}\d+ +cluster-b +127\.0\.0\.1:\d+ +\d+\/∞ +no$/m);
  for (let bot = 1; bot <= 6; bot++) {
    assert.match(
      stdout,
      new RegExp(`^  bot ${bot}: joined cluster-[ab] \\(cluster \\d+\\) as client \\d+;`, "m"),
    );
  }
  const totals = stdout.match(
    /^totals: bots joined: 6\/6; chat sent (\d+) received (\d+); echo sent (\d+) echoed (\d+); errors 0$/m,
  );
  assert.ok(totals !== null, stdout);
  const [chatSent, chatReceived, echoSent, echoed] = totals.slice(1).map(Number);
  assert.ok(
    chatSent > 0 && chatReceived >= chatSent,
    "every chat line reaches at least its sender",
  );
  assert.ok(echoSent > 0 && echoed === echoSent, "every echo comes back");
  assert.match(stdout, /^demo finished in [\d.]+ s$/m);
});

Deno.test("the demo refuses a bad flag with exit code 2 before starting anything", async () => {
  const { code, stderr } = await runDeno(["run", "-A", `${REPO_ROOT}demo.ts`, "--bots", "zero"]);
  assert.equal(code, 2);
  assert.match(stderr, /--bots must be an integer/);
});
