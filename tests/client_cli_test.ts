/**
 * The client against real server processes (`master/main.ts`, `cluster/main.ts`), both as a
 * library in this process and as `client/main.ts` (`deno task client`) child processes,
 * including the library's typed errors. (ticket_refused needs a ticket the master issues but
 * the cluster refuses, which is not reachable from outside the processes;
 * tests/client_integration_test.ts covers it in-process.)
 */
import assert from "node:assert/strict";
import { SustenetClient, type SustenetClientOptions } from "../client/mod.ts";
import {
  exportIdentity,
  formatPublicKeyFile,
  generateIdentityKeyPair,
} from "../shared/identity_key.ts";
import { generateKey } from "../shared/keys.ts";
import {
  freePort,
  type RoleProcess,
  spawnJoiningClient,
  spawnRole,
  waitForClusters,
  waitForLine,
  writeTempConfig,
} from "./_process.ts";
import { hasCode } from "./_has_code.ts";

const decoder = new TextDecoder();

/**
 * A master and one cluster (echo + chat plugins) as processes, sharing a temp keys dir.
 *
 * @param maxConnections The cluster's max_connections (0 = no limit).
 */
async function startServers(maxConnections = 0) {
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
      `max_connections = ${maxConnections}\n` +
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
    await waitForClusters(masterPort);
  } catch (error) {
    await close();
    throw error;
  }
  return { masterPort, keysDir, [Symbol.asyncDispose]: close };
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
  assert.match(bots.stdout, /^bots joined 3\/3 in [\d.]+ s; join p50 /m);
  assert.match(bots.stdout, /^rtt p50 [\d.]+ p95 [\d.]+ p99 [\d.]+ max [\d.]+ ms \(\d+\)$/m);
  assert.match(bots.stdout, /^errors 0$/m);
});

Deno.test("`join` sends stdin lines as chat or any plugin command and prints what comes back", async () => {
  await using servers = await startServers();
  const child = spawnJoiningClient(servers.masterPort);
  try {
    await child.readUntil(/joined cli-cluster \(cluster \d+\) as client (\d+)/);
    await child.write("hello from stdin\n");
    await child.readUntil(/\[client \d+\] hello from stdin/);
    // Any plugin command: the echo plugin answers 0x80, printed with its command.
    await child.write("/cmd 0x80 echo me\n");
    await child.readUntil(/^command 0x80: echo me$/m);
    await child.write("/cmd 0x7f refused\n/hex 128 ff01\n");
    await child.readUntil(/^command 0x80: ff01$/m);
    await child.write("//slash chat\n");
    await child.readUntil(/\[client \d+\] \/slash chat/);
  } finally {
    const code = await child.finish(); // end of stdin: the client leaves and exits
    assert.equal(code, 0, `${child.stdout}\n${child.stderr}`);
    // A command outside 0x80..0xff is not sent, and nothing came back for it.
    assert.match(
      child.stderr,
      /not sent: N must be a plugin command 0x80\.\.0xff, got "0x7f"/,
    );
    assert.doesNotMatch(child.stdout, /refused/);
  }
});

Deno.test("the CLI exits 1 when the master is unreachable, 2 on bad usage; --help shows /cmd and /hex", async () => {
  const port = await freePort();
  const unreachable = await runClient(["--master", `127.0.0.1:${port}`, "list"]);
  assert.equal(unreachable.code, 1);
  assert.match(unreachable.stderr, /error: master_unreachable: /);
  const usage = await runClient(["--bots", "two"]);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /--bots must be a number/);
  const help = await runClient(["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^ {2}\/cmd N TEXT +plugin command N \(0x80\.\.0xff/m);
  assert.match(help.stdout, /^ {2}\/hex N HEX +plugin command N with the payload given as hex/m);
  const unknown = await runClient(["--master", "nowhere"]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /--master must be host:port/);
});

Deno.test("a closed master port is master_unreachable", async () => {
  const port = await freePort();
  await assert.rejects(
    SustenetClient.connect({ port, timeoutMs: 2000 }),
    hasCode("master_unreachable"),
  );
});

Deno.test("against real processes: wrong and unavailable pins, then a full cluster", async (t) => {
  await using servers = await startServers(1);
  const clients: SustenetClient[] = [];
  const connect = async (options: Omit<SustenetClientOptions, "port"> = {}) => {
    const client = await SustenetClient.connect({ port: servers.masterPort, ...options });
    clients.push(client);
    return client;
  };
  // A web server whose every path is missing, for a pinned `{ url }` that 404s.
  const web = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    () => new Response("no such key", { status: 404 }),
  );
  try {
    // Each ticket reserves the one slot until the cluster's next heartbeat (100 ms): before a
    // join, wait until the master lists the cluster (registration follows the ready line
    // closely) with room.
    const observer = await connect();
    const room = async (): Promise<number> => {
      const deadline = performance.now() + 60_000;
      for (;;) {
        const [cluster] = await observer.listClusters();
        if (cluster !== undefined && !cluster.full) return cluster.id;
        assert.ok(performance.now() < deadline, "the cluster never had room");
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    };

    await t.step("a pinned key that is not the cluster's is key_mismatch", async () => {
      const other = await exportIdentity(await generateIdentityKeyPair());
      const bytes = await connect({ pinnedKeys: { "cli-cluster": other.publicRaw } });
      await assert.rejects(bytes.join(await room()), hasCode("key_mismatch"));
      const file = `${servers.keysDir}/other.pub`;
      await Deno.writeTextFile(file, formatPublicKeyFile(other.publicRaw));
      const fromFile = await connect({ pinnedKeys: { "*": { file } } });
      await assert.rejects(fromFile.join(await room()), hasCode("key_mismatch"));
    });

    await t.step(
      "a pin whose URL 404s or whose .pub file is missing is key_unavailable",
      async () => {
        const url = `http://127.0.0.1:${web.addr.port}/solo.pub`;
        const byUrl = await connect({ pinnedKeys: { "cli-cluster": { url } } });
        await assert.rejects(byUrl.join(await room()), hasCode("key_unavailable"));
        const file = `${servers.keysDir}/missing.pub`;
        const byFile = await connect({ pinnedKeys: { "*": { file } } });
        await assert.rejects(byFile.join(await room()), hasCode("key_unavailable"));
      },
    );

    await t.step("with max_connections = 1 the second join is cluster_full", async () => {
      // The first player pins the cluster's real .pub file: pins that match let joins through.
      const file = `${servers.keysDir}/cluster_identity.pub`;
      const first = await connect({ pinnedKeys: { "cli-cluster": { file } } });
      const clusterId = await room();
      const session = await first.join(clusterId);
      assert.equal(session.serverName, "cli-cluster");
      const second = await connect();
      await assert.rejects(second.join(clusterId), hasCode("cluster_full"));
      await session.leave();
    });
  } finally {
    for (const client of clients) await client.close();
    await web.shutdown();
  }
});
