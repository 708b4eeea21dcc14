/**
 * Embedding as docs/EMBEDDING.md describes it: `cluster.registered` resolves when the master
 * accepted the cluster and rejects when there will be no registration; an embedding process
 * without `--unstable-worker-options` gets a catchable error for a trusted plugin (a clean exit
 * with its temporary directory removed, not Deno's exit 70); a trusted plugin from an http:
 * URL in a cluster without `--allow-import` fails with a message saying so.
 */
import assert from "node:assert/strict";
import { SustenetClient } from "../client/mod.ts";
import { startCluster } from "../cluster/mod.ts";
import { startMaster } from "../master/mod.ts";
import { SustenetError } from "../shared/errors.ts";
import { generateKey } from "../shared/keys.ts";
import { freePort, REPO_ROOT, runDeno, spawnRole, writeTempConfig } from "./_process.ts";

Deno.test("cluster.registered resolves with the id the master gave, once it lists the cluster", async () => {
  const keysDir = await Deno.makeTempDir({ prefix: "sustenet_embed_" });
  try {
    await generateKey(keysDir, "cluster_key");
    await using master = await startMaster({ port: 0, keysDir });
    await using cluster = await startCluster({
      port: 0,
      keysDir,
      serverName: "embedded",
      master: { hostname: "127.0.0.1", port: master.addr.port },
    });
    const id = await cluster.registered;
    assert.equal(id, cluster.clusterId);
    const client = await SustenetClient.connect({ port: master.addr.port });
    try {
      assert.deepEqual((await client.listClusters()).map((c) => [c.id, c.name]), [[
        id,
        "embedded",
      ]]);
    } finally {
      await client.close();
    }
  } finally {
    await Deno.remove(keysDir, { recursive: true });
  }
});

Deno.test("cluster.registered rejects when the cluster stops before any registration", async () => {
  const keysDir = await Deno.makeTempDir({ prefix: "sustenet_embed_" });
  try {
    const cluster = await startCluster({
      port: 0,
      keysDir,
      master: { hostname: "127.0.0.1", port: await freePort() }, // nobody listens
    });
    await cluster.stop();
    await assert.rejects(
      cluster.registered,
      (e: unknown) => e instanceof SustenetError && e.code === "not_registered",
    );
  } finally {
    await Deno.remove(keysDir, { recursive: true });
  }
});

Deno.test("without --unstable-worker-options a trusted plugin is a catchable error: clean exit, temp dir removed", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sustenet_embedder_" });
  try {
    // The embedder's own project: its deno.json maps the packages but enables no unstable API.
    const ours = JSON.parse(await Deno.readTextFile(`${REPO_ROOT}deno.json`));
    await Deno.writeTextFile(`${dir}/deno.json`, JSON.stringify({ imports: ours.imports }));
    await Deno.writeTextFile(
      `${dir}/main.ts`,
      `import { startCluster } from "${REPO_ROOT}cluster/mod.ts";\n` +
        `const work = await Deno.makeTempDir({ prefix: "sustenet_embedder_work_" });\n` +
        `console.log(work);\n` +
        `try {\n` +
        `  await startCluster({ port: 0, keysDir: work, master: null, pluginSpecs: [{\n` +
        `    url: "${REPO_ROOT}plugins/echo.ts", name: "echo", settings: {}, trusted: true,\n` +
        `    permissions: { read: false, write: false, net: false, env: false, run: false,\n` +
        `      ffi: false, sys: false, import: false } }] });\n` +
        `} catch (error) {\n` +
        `  console.error(String(error));\n` +
        `  Deno.exitCode = 3;\n` +
        `} finally {\n` +
        `  await Deno.remove(work, { recursive: true });\n` +
        `}\n`,
    );
    const out = await runDeno(["run", "-A", "--no-lock", "main.ts"], { cwd: dir });
    const stdout = out.stdout.trim();
    const stderr = out.stderr;
    assert.equal(out.code, 3, `not Deno's exit 70:\n${stderr}`);
    assert.match(stderr, /plugin "echo" failed to load: .*--unstable-worker-options/);
    await assert.rejects(Deno.stat(stdout), Deno.errors.NotFound, "its temp dir is gone");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a trusted plugin from an http: URL without --allow-import on the cluster says which flag is missing", async () => {
  const source = await Deno.readTextFile(`${REPO_ROOT}plugins/echo.ts`);
  const shared = (path: string) => new URL(`../shared/${path}`, import.meta.url).href;
  const body = source.replace('"../shared/plugin.ts"', JSON.stringify(shared("plugin.ts")));
  await using web = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    () => new Response(body, { headers: { "content-type": "application/typescript" } }),
  );
  const host = `127.0.0.1:${web.addr.port}`;
  const keysDir = await Deno.makeTempDir({ prefix: "sustenet_embed_" });
  try {
    await using config = await writeTempConfig(
      `[all]\nport = ${await freePort()}\nkeys_dir = "${keysDir}"\nstatus_enabled = false\n` +
        `[[cluster.plugins]]\nurl = "http://${host}/echo.ts"\nname = "remote"\ntrusted = true\n` +
        `permissions = { import = ["${host}"], read = true }\n`,
    );
    const tasks = JSON.parse(await Deno.readTextFile(`${REPO_ROOT}deno.json`)).tasks;
    // The task's flags (no --allow-import), writes allowed where this test keeps its keys.
    const denoFlags = String(tasks.cluster).split(" ").filter((f) => f.startsWith("--"))
      .map((f) => f === "--allow-write=keys" ? `--allow-write=${keysDir}` : f);
    await using cluster = spawnRole("cluster", ["--config", config.path, "--master-port", "1"], {
      denoFlags,
    });
    const status = await cluster.waitExit();
    assert.equal(status.code, 1, cluster.stderrText());
    assert.match(cluster.stderrText(), /plugin "remote"/);
    assert.match(cluster.stderrText(), /--allow-import=<host>/);
  } finally {
    await Deno.remove(keysDir, { recursive: true });
  }
});

Deno.test("docs/EMBEDDING.md's script runs as written (package imports pointed at this checkout)", async () => {
  const doc = await Deno.readTextFile(`${REPO_ROOT}docs/EMBEDDING.md`);
  const script = /```ts\n([\s\S]*?)```/.exec(doc)?.[1];
  assert.ok(script !== undefined, "a ts block");
  const local = script
    .replaceAll('"@sustenet/sustenet/master"', JSON.stringify(`${REPO_ROOT}master/mod.ts`))
    .replaceAll('"@sustenet/sustenet/cluster"', JSON.stringify(`${REPO_ROOT}cluster/mod.ts`))
    .replaceAll('"@sustenet/sustenet/client"', JSON.stringify(`${REPO_ROOT}client/mod.ts`))
    .replaceAll('"@sustenet/sustenet/server"', JSON.stringify(`${REPO_ROOT}server.ts`))
    .replaceAll('"@sustenet/sustenet"', JSON.stringify(`${REPO_ROOT}mod.ts`));
  const dir = await Deno.makeTempDir({ prefix: "sustenet_embed_doc_" });
  try {
    await Deno.writeTextFile(`${dir}/main.ts`, local);
    const out = await runDeno([
      "run",
      "-A",
      "--config",
      `${REPO_ROOT}deno.json`,
      `${dir}/main.ts`,
    ]);
    const stdout = out.stdout;
    assert.equal(out.code, 0, `${stdout}\n${out.stderr}`);
    assert.match(stdout, /command: 128.*on cluster \d+/s);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
