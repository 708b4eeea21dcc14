/**
 * A broken libcrypto (a file that is not a library where the loader finds libcrypto) is never
 * swapped for the slower node:crypto cipher in silence: the servers' start-up warning names
 * the loader's error, and sealing still works. Runs a child process whose LD_LIBRARY_PATH
 * points at the broken files, with --allow-ffi granted, so only the library is at fault.
 */
import assert from "node:assert/strict";
import { REPO_ROOT, runDeno } from "./_process.ts";

const PROBE = `
import { createRecordCipher, warnIfFfiUnavailable } from "./shared/create_record_cipher.ts";
const lines = [];
const warned = warnIfFfiUnavailable({ warn: (message, properties) => lines.push({ message, properties }) });
const cipher = await createRecordCipher(new Uint8Array(32).fill(3));
const sealed = await cipher.seal(0, new Uint8Array([1, 2, 3]));
console.log(JSON.stringify({ warned, lines, sealedBytes: sealed.length }));
`;

Deno.test({
  name:
    "a broken libcrypto is logged as a warning naming the loader's error, and sealing falls back",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "sustenet-broken-libcrypto-" });
    try {
      for (const name of ["libcrypto.so.3", "libcrypto.so", "libcrypto.3.dylib"]) {
        await Deno.writeTextFile(`${dir}/${name}`, "not a shared library\n");
      }
      const probe = `${dir}/probe.ts`;
      await Deno.writeTextFile(probe, PROBE.replace("./shared/", `${REPO_ROOT}shared/`));
      const run = await runDeno(["run", "--allow-ffi", probe], {
        cwd: REPO_ROOT,
        env: { LD_LIBRARY_PATH: dir },
      });
      assert.equal(run.code, 0, run.stderr);
      const result = JSON.parse(run.stdout);
      assert.equal(result.warned, true);
      assert.equal(result.lines.length, 1);
      assert.match(result.lines[0].message, /libcrypto through FFI is unavailable/);
      // The reason is the loader's own: which file, and what is wrong with it.
      assert.match(result.lines[0].properties.reason, /libcrypto not usable: libcrypto\.so\.3: /);
      assert.ok(result.lines[0].properties.reason.includes(dir), result.lines[0].properties.reason);
      assert.equal(result.sealedBytes, 3 + 16);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
