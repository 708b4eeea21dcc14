/**
 * `deno task demo` end to end: the real demo script as a child process.
 */
import assert from "node:assert/strict";
import { REPO_ROOT } from "./_process.ts";

async function runDemo(
  args: readonly string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${REPO_ROOT}demo.ts`, ...args],
    cwd: REPO_ROOT,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

Deno.test("the demo starts a master and two clusters, runs bots, summarises and exits 0", async () => {
  const { code, stdout, stderr } = await runDemo(["--bots", "4", "--seconds", "2"]);
  assert.equal(code, 0, `demo failed:\n${stdout}\n${stderr}`);
  assert.match(
    stdout,
    /^master status page: http:\/\/127\.0\.0\.1:\d+\/ \(health: ok, 2 clusters\)$/m,
  );
  assert.match(stdout, /^ {2}ID +NAME +ADDRESS +LOAD +FULL$/m);
  assert.match(stdout, /^ {2}\d+ +cluster-a +127\.0\.0\.1:\d+ +\d+\/∞ +no$/m);
  assert.match(stdout, /^ {2}\d+ +cluster-b +127\.0\.0\.1:\d+ +\d+\/∞ +no$/m);
  for (let bot = 1; bot <= 4; bot++) {
    assert.match(
      stdout,
      new RegExp(`^  bot ${bot}: joined cluster-[ab] \\(cluster \\d+\\) as client \\d+;`, "m"),
    );
  }
  const totals = stdout.match(
    /^totals: bots joined: 4\/4; chat sent (\d+) received (\d+); echo sent (\d+) echoed (\d+); errors 0$/m,
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
  const { code, stderr } = await runDemo(["--bots", "zero"]);
  assert.equal(code, 2);
  assert.match(stderr, /--bots must be an integer/);
});
