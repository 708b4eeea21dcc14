/**
 * `--help` on the server tasks: the real entry points print every flag their role reads (from
 * the config schema) with its default, and exit 0 without starting anything.
 */
import assert from "node:assert/strict";
import { CONFIG_KEYS } from "../shared/config_schema.ts";
import { REPO_ROOT, runDeno } from "./_process.ts";

for (const [role, flag] of [["master", "--help"], ["cluster", "-h"], ["auth", "--help"]] as const) {
  Deno.test(`${role}/main.ts ${flag} lists every flag of the ${role} with its default and exits 0`, async () => {
    const out = await runDeno(["run", "-A", `${REPO_ROOT}${role}/main.ts`, flag]);
    const text = out.stdout;
    assert.equal(out.code, 0, out.stderr);
    assert.match(text, new RegExp(`^usage: deno task ${role} `));
    assert.doesNotMatch(text, /listening on/);
    for (const key of CONFIG_KEYS) {
      if (key.flag === null) continue;
      const listed = text.includes(`  ${key.flag} `) || text.includes(`  ${key.flag},`);
      const mine = key.role === null || key.role === role;
      assert.equal(
        listed,
        mine,
        `${key.flag} ${mine ? "missing from" : "wrongly in"} ${role}'s help`,
      );
    }
    assert.match(text, /--port VALUE +\[all\] port: an integer 0\.\.65535 \(default 0\)/);
  });
}
