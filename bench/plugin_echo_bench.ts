/**
 * Echo throughput through a plugin host, sandboxed versus in-process (issue 6): each
 * iteration pushes a burst of echo messages (command 0x80, 32-byte payload) into the host and
 * waits with `flush()` until every echo came back through `PluginActions.send`. The
 * in-process host is the baseline; the Worker host and the subprocess host (plugins/echo.ts, no
 * permissions) should reach at least 0.7× of it on bursts. Messages/s = burst size × iterations/s in the report.
 *
 * Run with `deno bench -A bench/plugin_echo_bench.ts`. Hosts are started once at load, outside
 * the timed part, and stopped on `unload`. It must never run as part of a test and never
 * asserts on speed; it throws only if echoes go missing (a broken host, not a slow one).
 *
 * @module
 */

import echo, { ECHO_COMMAND } from "../plugins/echo.ts";
import { InProcessPluginHost } from "../cluster/in_process_plugin_host.ts";
import type { PluginActions, PluginHost } from "../cluster/plugin_host.ts";
import { NO_PLUGIN_PERMISSIONS } from "../cluster/plugin_permissions.ts";
import { type PluginIsolation, WorkerPluginHost } from "../cluster/worker_plugin_host.ts";
import { asClientId } from "../shared/plugin.ts";

const PAYLOAD_BYTES = 32;
const BURSTS: readonly number[] = [1000, 100, 1];
const SENDER = asClientId(1);
const payload = new Uint8Array(PAYLOAD_BYTES).fill(0x5a);

// Counts echoes; the payload is only touched as a real cluster would (its length).
class EchoCounter implements PluginActions {
  sends = 0;
  bytes = 0;
  send(_to: unknown, _command: number, echoed: Uint8Array): void {
    this.sends++;
    this.bytes += echoed.length;
  }
  broadcast(): void {
    throw new Error("echo never broadcasts");
  }
  kick(): void {
    throw new Error("echo never kicks");
  }
}

interface Subject {
  readonly label: string;
  readonly host: PluginHost;
  readonly counter: EchoCounter;
}

function inProcess(): Subject {
  const counter = new EchoCounter();
  const host = new InProcessPluginHost(echo, counter, { name: "echo-in-process" });
  return { label: "in-process", host, counter };
}

// plugins/echo.ts with no permissions, in a Worker (`trusted`) or its own subprocess (the
// default for untrusted plugins).
function sandboxed(isolation: PluginIsolation): Subject {
  const counter = new EchoCounter();
  const host = new WorkerPluginHost(
    {
      url: new URL("../plugins/echo.ts", import.meta.url),
      name: `echo-${isolation}`,
      settings: {},
      permissions: NO_PLUGIN_PERMISSIONS,
    },
    counter,
    { isolation },
  );
  return { label: isolation === "worker" ? "worker" : "subprocess", host, counter };
}

const subjects: readonly Subject[] = [inProcess(), sandboxed("worker"), sandboxed("process")];
await Promise.all(subjects.map((s) => s.host.start()));

// Stop the hosts (the Worker, the subprocess and their watchdog timers) once every bench has run.
globalThis.addEventListener("unload", () => {
  for (const { host } of subjects) {
    host.stop().catch((err: unknown) => console.error(`stopping ${host.name}:`, err));
  }
});

async function burst(subject: Subject, n: number): Promise<void> {
  const { host, counter } = subject;
  const before = counter.sends;
  for (let i = 0; i < n; i++) host.message(SENDER, ECHO_COMMAND, payload);
  await host.flush();
  const got = counter.sends - before;
  if (got !== n) throw new Error(`${subject.label}: ${got} of ${n} echoes came back`);
}

for (const n of BURSTS) {
  for (const subject of subjects) {
    Deno.bench({
      name: `${subject.label} echo ×${n}`,
      group: `echo burst of ${n} × ${PAYLOAD_BYTES} B`,
      baseline: subject.label === "in-process",
      // An async function: deno bench awaits only those (a plain arrow returning a promise
      // would be timed as synchronous and its bursts would overlap).
      fn: async () => await burst(subject, n),
    });
  }
}
