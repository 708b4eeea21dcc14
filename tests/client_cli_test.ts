/**
 * The client against real server processes (`master/main.ts`, `cluster/main.ts`), both as a
 * library in this process and as `client/main.ts` (`deno task client`) child processes.
 */
import assert from "node:assert/strict";
import { SustenetClient } from "../client/mod.ts";
import { generateKey } from "../shared/keys.ts";
import {
  freePort,
  REPO_ROOT,
  type RoleProcess,
  spawnRole,
  waitForLine,
  writeTempConfig,
} from "./_process.ts";

const decoder = new TextDecoder();

/** A master and one cluster (echo + chat plugins) as processes, sharing a temp keys dir. */
async function startServers() {
  const masterPort = await freePort();
  const master = await writeTempConfig(
    `[all]\nserver_name = "cli-master"\nport = ${masterPort}\nstatus_enabled = false\n` +
      `log_level = "warning"\n`,
  );
  const keysDir = master.path.replace(/Config\.toml$/, "keys");
  await generateKey(keysDir, "cluster_key");
  const plugin = (name: string) => new URL(`../plugins/${name}`, import.meta.url).href;
  const cluster = await writeTempConfig(
    `[all]\nserver_name = "cli-cluster"\nport = ${await freePort()}\n` +
      `keys_dir = ${JSON.stringify(keysDir)}\nstatus_enabled = false\nlog_level = "warning"\n` +
      `[cluster]\nmaster_port = ${masterPort}\nheartbeat_interval_ms = 100\n` +
      `[[cluster.plugins]]\nurl = "${plugin("echo.ts")}"\n` +
      `[[cluster.plugins]]\nurl = "${plugin("chat.ts")}"\n`,
  );
  const processes: RoleProcess[] = [];
  const close = async () => {
    await Promise.all(processes.map((p) => p.close()));
    await cluster.remove();
    await master.remove();
  };
  try {
    const masterProcess = spawnRole("master", ["--config", master.path]);
    processes.push(masterProcess);
    await waitForLine(masterProcess, /^master listening on /);
    const clusterProcess = spawnRole("cluster", ["--config", cluster.path]);
    processes.push(clusterProcess);
    await waitForLine(clusterProcess, /^cluster cli-cluster listening on /);
    // Registration follows the ready line closely; wait until the master lists it.
    const observer = await SustenetClient.connect({ port: masterPort });
    try {
      const deadline = performance.now() + 10_000;
      while ((await observer.listClusters()).length === 0) {
        if (performance.now() > deadline) throw new Error("the cluster never registered");
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    } finally {
      await observer.close();
    }
  } catch (error) {
    await close();
    throw error;
  }
  return { masterPort, [Symbol.asyncDispose]: close };
}

async function runClient(args: readonly string[]) {
  await using client = spawnRole("client", args);
  const status = await client.waitExit();
  return {
    code: status.code,
    stdout: client.stdoutLines().join("\n"),
    stderr: client.stderrText(),
  };
}

Deno.test("the library and the CLI work against real master and cluster processes", async () => {
  await using servers = await startServers();
  const master = `127.0.0.1:${servers.masterPort}`;

  // The library, in this process.
  const client = await SustenetClient.connect({ port: servers.masterPort });
  try {
    assert.equal(client.serverName, "cli-master");
    const session = await client.join("auto");
    const echoed = Promise.withResolvers<string>();
    session.on("message", ({ command, payload }) => {
      if (command === 0x80) echoed.resolve(decoder.decode(payload));
    });
    session.send(0x80, new TextEncoder().encode("through a sandboxed plugin"));
    assert.equal(await echoed.promise, "through a sandboxed plugin");
    await session.leave();
  } finally {
    await client.close();
  }

  // `list` prints the cluster table.
  const list = await runClient(["--master", master, "list"]);
  assert.equal(list.code, 0, list.stderr);
  assert.match(list.stdout, /^ID +NAME +ADDRESS +LOAD +FULL$/m);
  assert.match(list.stdout, /^\d+ +cli-cluster +127\.0\.0\.1:\d+ +\d+\/∞ +no$/m);

  // `--bots` runs bots, prints plain status lines (no TTY) and a summary, and exits 0.
  const bots = await runClient(["--master", master, "--bots", "3", "--seconds", "1.5"]);
  assert.equal(bots.code, 0, bots.stderr);
  assert.match(bots.stdout, /^joined \d\/3 \| \d+ msgs\/s \| sent \d+ received \d+ \| errors 0/m);
  assert.match(bots.stdout, /^bot 3: joined cli-cluster \(cluster \d+\) as client \d+;/m);
  assert.match(
    bots.stdout,
    /^bots joined: 3\/3; chat sent \d+ received \d+; echo sent (\d+) echoed \1; errors 0$/m,
  );
});

Deno.test("`join` sends stdin lines as chat and prints the chat it receives", async () => {
  await using servers = await startServers();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      `${REPO_ROOT}client/main.ts`,
      "--master",
      `127.0.0.1:${servers.masterPort}`,
      "join",
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const writer = child.stdin.getWriter();
  let stdout = "";
  try {
    const readUntil = async (pattern: RegExp) => {
      while (!pattern.test(stdout)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`stdout ended before ${pattern}:\n${stdout}\n${await stderr}`);
        stdout += value;
      }
    };
    await readUntil(/joined cli-cluster \(cluster \d+\) as client (\d+)/);
    await writer.write(new TextEncoder().encode("hello from stdin\n"));
    await readUntil(/\[client \d+\] hello from stdin/);
  } finally {
    await writer.close(); // end of stdin: the client leaves and exits
    while (!(await reader.read()).done) {
      // drain the rest of stdout
    }
    const status = await child.status;
    assert.equal(status.code, 0, `${stdout}\n${await stderr}`);
  }
});

Deno.test("the CLI exits 1 with the error code when the master is unreachable, 2 on bad usage", async () => {
  const port = await freePort();
  const unreachable = await runClient(["--master", `127.0.0.1:${port}`, "list"]);
  assert.equal(unreachable.code, 1);
  assert.match(unreachable.stderr, /error: master_unreachable: /);
  const usage = await runClient(["--bots", "two"]);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /--bots must be a number/);
  const unknown = await runClient(["--master", "nowhere"]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /--master must be host:port/);
});
