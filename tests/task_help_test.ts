/**
 * `--help` on every task a user runs (`deno task <name> --help`, exactly as typed): exit 0, a
 * usage line naming the task, each flag with its default, and nothing started.
 */
import assert from "node:assert/strict";
import { REPO_ROOT, runDeno } from "./_process.ts";

const tasks: Record<string, string> = JSON.parse(
  await Deno.readTextFile(`${REPO_ROOT}deno.json`),
).tasks;
// check and test run the toolchain over the repository; every other task is ours.
const OURS = Object.keys(tasks).filter((name) => name !== "check" && name !== "test");

for (const name of OURS) {
  Deno.test(`deno task ${name} --help prints its flags with defaults and exits 0`, async () => {
    const out = await runDeno(["task", "--config", `${REPO_ROOT}deno.json`, name, "--help"]);
    const text = out.stdout;
    assert.equal(out.code, 0, out.stderr);
    assert.match(text, new RegExp(`usage:\\s+deno task ${name}\\b`, "i"));
    assert.match(text, /\(default /);
    assert.match(text, /^ +(-h, --help|--help, -h)\b/m);
    assert.doesNotMatch(text, /listening on/);
  });
}
