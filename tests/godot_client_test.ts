/**
 * The Godot addon (clients/godot/addons/sustenet) against a real master and cluster with TLS,
 * run headless by Debian's godot3-server: certificates from `deno task certs`, the echo plugin,
 * fragments on, and a Deno bot that walks. The Godot script (clients/godot/tests/addon_test.gd)
 * lists, joins in the TLS session mode, exchanges a plugin message, sees the bot move, leaves,
 * and checks that a client pinning another CA fails closed; its exit code is the verdict and its
 * output is part of any failure message.
 *
 * Skipped (with a message) when godot3-server is not installed; .ci/run installs it.
 */
import assert from "node:assert/strict";
import { Deployment, freePort, REPO_ROOT, runDeno } from "./_process.ts";
import { playerJoinsWhenListed } from "./_raw_client.ts";

const GODOT = "godot3-server";
const WAIT_MS = 60_000;
/** The cluster's idle timeout; the Godot client stays quiet for 1.6 times it, pinging only. */
const IDLE_MS = 2500;

async function godotInstalled(): Promise<boolean> {
  try {
    // godot3-server 3.2.3 prints its version and exits 255.
    const out = await new Deno.Command(GODOT, { args: ["--version"], stdout: "piped" }).output();
    return /^3\./.test(new TextDecoder().decode(out.stdout));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

async function denoTaskCerts(out: string): Promise<void> {
  const result = await runDeno(["task", "certs", "--out", out, "localhost", "127.0.0.1"], {
    cwd: REPO_ROOT,
  });
  assert.ok(result.success, result.stderr);
}

Deno.test({
  name: "the Godot addon joins a TLS cluster, echoes, sees a moving bot, leaves; a wrong pin fails",
  ignore: !(await godotInstalled()),
  async fn() {
    await using deployment = await Deployment.create("sustenet_godot_");
    const dir = deployment.dir;
    await denoTaskCerts(`${dir}/certs`);
    await denoTaskCerts(`${dir}/wrong`); // another CA: what a wrong pin looks like
    const [masterPort, masterTls, clusterPort, clusterTls] = [
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
    ];
    const tls = 'tls_cert = "certs/server.pem"\ntls_key = "certs/server.key"\n';
    await deployment.start(
      "master",
      "master",
      `[all]\nport = ${masterPort}\ntls_port = ${masterTls}\n${tls}status_enabled = false\n` +
        `[master]\nticket_rate_per_addr = 1000\nticket_burst_per_addr = 1000\n` +
        `reservations_per_addr = 1000\n`,
      new RegExp(
        `master listening on 127\\.0\\.0\\.1:${masterPort} tls 127\\.0\\.0\\.1:${masterTls}`,
      ),
    );
    await deployment.start(
      "cluster",
      "cluster",
      `[all]\nserver_name = "eu-1"\nport = ${clusterPort}\ntls_port = ${clusterTls}\n${tls}` +
        `status_enabled = false\nidle_timeout_ms = ${IDLE_MS}\n[cluster]\nmaster_port = ${masterPort}\n` +
        `[cluster.fragments]\nenabled = true\n` +
        `[[cluster.plugins]]\nurl = "${REPO_ROOT}plugins/echo.ts"\n`,
      /cluster eu-1 listening on .* tls 127\.0\.0\.1:\d+/,
    );

    const bot = await playerJoinsWhenListed(masterPort, clusterPort);
    let walking = true;
    const walk = (async () => {
      // Bounded in steps and time: 20 moves a second for at most the test's wait.
      for (let step = 0; walking && step < WAIT_MS / 50; step++) {
        bot.client.send({ kind: "Move", state: { x: (step % 40) * 0.5, y: 0, z: 2 } });
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();

    let output = "";
    try {
      const godot = new Deno.Command(GODOT, {
        args: [
          "--no-window",
          "--path",
          `${REPO_ROOT}clients/godot`,
          "-s",
          "res://tests/addon_test.gd",
        ],
        env: {
          SUSTENET_MASTER_HOST: "127.0.0.1",
          SUSTENET_MASTER_PORT: String(masterTls),
          SUSTENET_CA: `${dir}/certs/ca.pem`,
          SUSTENET_WRONG_CA: `${dir}/wrong/ca.pem`,
          SUSTENET_IDLE_S: String((IDLE_MS * 1.6) / 1000),
        },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const timer = setTimeout(() => godot.kill("SIGKILL"), WAIT_MS * 2);
      const result = await godot.output();
      clearTimeout(timer);
      const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
      output = `--- godot stdout ---\n${decode(result.stdout)}\n--- godot stderr ---\n${
        decode(result.stderr)
      }`;
      assert.equal(result.code, 0, `godot exited ${result.code}\n${output}`);
      assert.match(output, /RESULT: PASS/, output);
      assert.match(output, /echo: hello from godot/, output);
      assert.match(output, /wrong CA: .*certificate/, output);
      assert.match(output, /commitment vector ok/, output);
      assert.match(output, /still joined after/, output);
      assert.match(output, /unknown cluster: UnknownCluster: /, output);
    } finally {
      walking = false;
      await walk;
      await bot.client.close();
    }
  },
});
