/**
 * The browser entry points load without Deno: their runtime module graph (`deno info --json`,
 * following code imports, static and dynamic; type-only imports are erased) holds no `node:`
 * module, no npm package outside the allowed browser-safe ones, and only local files that say
 * `// This module is browser compatible.` on their first line and use no `Deno.*` API.
 */
import assert from "node:assert/strict";
import { REPO_ROOT, runDeno } from "./_process.ts";

/** npm packages the browser graph may hold: each runs in browsers. */
const BROWSER_SAFE_NPM = new Set(["@logtape/logtape"]);

const MARKER = "// This module is browser compatible.";

interface GraphDependency {
  readonly specifier: string;
  readonly code?: { readonly specifier: string };
  readonly isDynamic?: boolean;
}

interface GraphModule {
  readonly specifier: string;
  readonly kind?: string;
  readonly dependencies?: readonly GraphDependency[];
  readonly error?: string;
}

/** The modules reachable from `entry` through code (not type-only) imports. */
async function runtimeGraph(entry: string): Promise<string[]> {
  const output = await runDeno(["info", "--json", entry], { cwd: REPO_ROOT });
  assert.equal(output.code, 0, output.stderr);
  const info: { roots: string[]; modules: GraphModule[] } = JSON.parse(output.stdout);
  const byUrl = new Map(info.modules.map((m) => [m.specifier, m]));
  const seen = new Set<string>();
  const queue = [...info.roots];
  while (queue.length > 0) {
    const url = queue.pop()!;
    if (seen.has(url)) continue;
    seen.add(url);
    for (const dep of byUrl.get(url)?.dependencies ?? []) {
      if (dep.code !== undefined) queue.push(dep.code.specifier);
    }
  }
  return [...seen].sort();
}

/** Why `url` may not be in a browser graph, or `undefined` if it may. */
async function browserProblem(url: string): Promise<string | undefined> {
  if (url.startsWith("node:")) return "a node: built-in";
  if (url.startsWith("npm:")) {
    const name = /^npm:\/?(@[^/@]+\/[^/@]+|[^/@]+)/.exec(url)?.[1];
    return name !== undefined && BROWSER_SAFE_NPM.has(name)
      ? undefined
      : "an npm package not known to run in browsers";
  }
  if (!url.startsWith("file:")) return "neither local nor npm";
  const text = await Deno.readTextFile(new URL(url));
  if (text.split("\n", 1)[0] !== MARKER) return `no "${MARKER}" on its first line`;
  // Code lines only: JSDoc examples and comments may mention Deno.
  const code = text.split("\n").filter((line) => !/^\s*(\*|\/\/|\/\*)/.test(line));
  const deno = code.find((line) => /\bDeno\./.test(line));
  if (deno !== undefined) return `uses a Deno API: ${deno.trim()}`;
  if (/\bimport\s*\(/.test(code.join("\n"))) return "has a dynamic import";
  return undefined;
}

for (const entry of ["browser.ts", "mod.ts", "shared/mod.ts"]) {
  Deno.test(`${entry}: the runtime module graph is browser compatible`, async () => {
    const graph = await runtimeGraph(entry);
    assert.ok(graph.length > 10, `the graph of ${entry} was walked: ${graph.length} modules`);
    const problems: string[] = [];
    for (const url of graph) {
      const problem = await browserProblem(url);
      if (problem !== undefined) problems.push(`${url}: ${problem}`);
    }
    assert.deepEqual(problems, []);
  });
}

Deno.test("the check catches a server module: cluster/mod.ts's graph holds node:crypto and Deno APIs", async () => {
  const graph = await runtimeGraph("cluster/mod.ts");
  const problems = new Map<string, string>();
  for (const url of graph) {
    const problem = await browserProblem(url);
    if (problem !== undefined) problems.set(url, problem);
  }
  assert.ok(problems.has("node:crypto"), [...problems.keys()].join("\n"));
  const transport = [...problems.keys()].find((url) => url.endsWith("/shared/transport.ts"));
  assert.ok(transport !== undefined);
  assert.match(problems.get(transport)!, /browser compatible|Deno API/);
});
