import assert from "node:assert/strict";
import { BenchChild, ChildProcessError, placeChildren } from "../child_process.ts";

function denoEval(code: string): BenchChild {
  return BenchChild.spawn({ name: "child", command: Deno.execPath(), args: ["eval", code] });
}

Deno.test("a line not printed in time is child_not_ready, with the child's output", async () => {
  await using child = denoEval(
    "console.log('hello'); console.error('oops'); setTimeout(() => {}, 5000)",
  );
  await child.waitForLine(/hello/, 10_000);
  await assert.rejects(child.waitForLine(/never/, 200), (error) => {
    assert.ok(error instanceof ChildProcessError);
    assert.equal(error.code, "child_not_ready");
    assert.match(error.message, /did not print it within 200 ms/);
    return true;
  });
  assert.notEqual((await child.stop()).code, 0);
  assert.match(child.stderrText, /oops/);
  assert.equal(child.exited, true);
  await child.stop(); // twice is fine
});

Deno.test("a child that exits before the line is reported at once", async () => {
  await using child = denoEval("console.log('bye')");
  await assert.rejects(child.waitForLine(/ready/, 10_000), /exited waiting for/);
  assert.deepEqual(child.stdoutLines, ["bye"]);
});

Deno.test("a child that overruns waitExit is killed", async () => {
  await using child = denoEval("setTimeout(() => {}, 60_000)");
  await assert.rejects(child.waitExit(200), (error) => {
    assert.ok(error instanceof ChildProcessError);
    assert.equal(error.code, "child_timeout");
    return true;
  });
  assert.equal(child.exited, true);
});

Deno.test("a child ignoring SIGTERM is killed after the grace period", async () => {
  await using child = denoEval(
    "Deno.addSignalListener('SIGTERM', () => {}); console.log('up'); setTimeout(() => {}, 60_000)",
  );
  await child.waitForLine(/up/, 10_000);
  const status = await child.stop(200);
  assert.equal(status.signal, "SIGKILL");
});

Deno.test("writeLine reaches a child started with a stdin; without one it is child_stdin", async () => {
  await using child = BenchChild.spawn({
    name: "reader",
    command: Deno.execPath(),
    args: [
      "eval",
      "for await (const t of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) " +
      "{ if (t.includes('go')) { console.log('got go'); break; } }",
    ],
    stdin: true,
  });
  await child.writeLine("go");
  await child.waitForLine(/^got go$/, 10_000);
  assert.equal((await child.waitExit(10_000)).code, 0);
  await using silent = denoEval("setTimeout(() => {}, 10)");
  await assert.rejects(silent.writeLine("go"), (error) => {
    assert.ok(error instanceof ChildProcessError);
    assert.equal(error.code, "child_stdin");
    return true;
  });
});

Deno.test("with placement on, servers and generators run on separate cores", async () => {
  const placement = placeChildren(true);
  try {
    if (placement === undefined) return; // One core, no taskset, or not Linux: nothing to hold.
    const cores: Record<string, string> = {};
    for (const side of ["server", "generator"] as const) {
      await using child = BenchChild.spawn({
        name: side,
        command: Deno.execPath(),
        args: [
          "eval",
          `console.log(Deno.readTextFileSync("/proc/self/status").match(/Cpus_allowed_list:\\s*(\\S+)/)[1])`,
        ],
        side,
      });
      cores[side] = (await child.waitForLine(/^(\S+)$/, 30_000))[1];
    }
    assert.deepEqual(cores, { server: placement.server, generator: placement.generator });
    assert.notEqual(placement.server, placement.generator);
  } finally {
    assert.equal(placeChildren(false), undefined);
  }
});
