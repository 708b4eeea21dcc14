/**
 * `master/main.ts` as a real process: the ready line, the status server, a clean exit on
 * SIGTERM, and exit code 2 naming the field for a bad config.
 */

import assert from "node:assert/strict";
import { freePort, spawnRole, waitForLine, waitForLog, writeTempConfig } from "./_process.ts";

Deno.test("master/main.ts prints the ready line, serves /health and exits 0 on SIGTERM", async () => {
  const port = await freePort();
  const statusPort = await freePort();
  await using config = await writeTempConfig(
    `[all]\nserver_name = "proc-test"\nport = ${port}\nstatus_port = ${statusPort}\n` +
      `log_level = "warning"\n`,
  );
  await using master = spawnRole("master", ["--config", config.path]);
  const ready = await waitForLine(
    master,
    /^master listening on 127\.0\.0\.1:(\d+) status http:\/\/127\.0\.0\.1:(\d+)\/$/,
  );
  assert.equal(Number(ready[1]), port);
  assert.equal(Number(ready[2]), statusPort);
  const health = await (await fetch(`http://127.0.0.1:${statusPort}/health`)).json();
  assert.equal(health.status, "ok");
  assert.equal(health.role, "master");
  master.kill("SIGTERM");
  const status = await master.waitExit();
  assert.equal(status.code, 0, master.stderrText());
});

Deno.test("master/main.ts without status prints the short ready line", async () => {
  const port = await freePort();
  await using config = await writeTempConfig(`[all]\nport = ${port}\nstatus_enabled = false\n`);
  await using master = spawnRole("master", ["--config", config.path, "--log-level", "error"]);
  await waitForLine(master, new RegExp(`^master listening on 127\\.0\\.0\\.1:${port}$`));
  master.kill("SIGINT");
  assert.equal((await master.waitExit()).code, 0, master.stderrText());
});

Deno.test("master/main.ts with a bad config exits 2 naming the field", async () => {
  await using config = await writeTempConfig(`[master]\nticket_ttl_ms = "soon"\n`);
  await using master = spawnRole("master", ["--config", config.path]);
  const status = await master.waitExit();
  assert.equal(status.code, 2);
  assert.match(master.stderrText(), /master\.ticket_ttl_ms/);
  assert.match(master.stderrText(), /Config\.toml/);
});

Deno.test("master/main.ts exits 1 when its port is taken", async () => {
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const port = (taken.addr as Deno.NetAddr).port;
    await using config = await writeTempConfig(`[all]\nport = ${port}\nstatus_enabled = false\n`);
    await using master = spawnRole("master", ["--config", config.path, "--log-level", "error"]);
    const status = await master.waitExit();
    assert.equal(status.code, 1);
    assert.match(master.stderrText(), /cannot start master/);
  } finally {
    taken.close();
  }
});

Deno.test("a master started without --allow-ffi warns that it seals with the slower cipher", async () => {
  const port = await freePort();
  const statusPort = await freePort();
  await using config = await writeTempConfig(
    `[all]\nport = ${port}\nstatus_port = ${statusPort}\n`,
  );
  // deno.json's master task minus --allow-ffi (and with a scratch keys dir writable).
  await using master = spawnRole("master", ["--config", config.path], {
    denoFlags: ["--allow-net", "--allow-read", "--allow-write", "--allow-env"],
  });
  await waitForLine(master, /^master listening on /);
  await waitForLog(master, /libcrypto through FFI is unavailable \(.+\); sealing with node:crypto/);
});
