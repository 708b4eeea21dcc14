/**
 * One default per option: where an option of `startCluster` / `startMaster` has a config key
 * of the same name (camelCase of the snake_case key, in `[all]` or the role's section), the
 * `@default` its documentation states equals the config schema's default. (`deno doc` reads
 * the JSDoc, which is what docs/EMBEDDING.md and editors show.) Also checks that the runtime
 * follows the documented reconnect default.
 */
import assert from "node:assert/strict";
import { parse as parseToml } from "smol-toml";
import { CONFIG_KEYS } from "../shared/config_schema.ts";
import { REPO_ROOT, runDeno } from "./_process.ts";

interface DocProperty {
  readonly name: string;
  readonly jsDoc?: { readonly tags?: readonly { kind: string; value?: string }[] };
}

async function properties(file: string, iface: string): Promise<DocProperty[]> {
  const out = await runDeno(["doc", "--json", `${REPO_ROOT}${file}`]);
  assert.equal(out.code, 0, out.stderr);
  const doc = JSON.parse(out.stdout);
  const symbols = (Object.values(doc.nodes)[0] as {
    symbols: { name: string; declarations: { def: { properties?: DocProperty[] } }[] }[];
  }).symbols;
  const symbol = symbols.find((s) => s.name === iface);
  assert.ok(symbol !== undefined, `${iface} in ${file}`);
  return symbol.declarations[0].def.properties ?? [];
}

async function optionNames(file: string, iface: string): Promise<string[]> {
  return (await properties(file, iface)).map((p) => p.name);
}

async function documentedDefaults(file: string, iface: string): Promise<Map<string, unknown>> {
  const defaults = new Map<string, unknown>();
  for (const property of await properties(file, iface)) {
    const tag = property.jsDoc?.tags?.find((t) => t.kind === "default");
    if (tag?.value === undefined) continue;
    const text = tag.value.replace(/^\{(.*)\}$/s, "$1").trim();
    try {
      defaults.set(property.name, JSON.parse(text));
    } catch {
      // A default that is not a literal (a constant's name): nothing to compare.
    }
  }
  return defaults;
}

function configDefaults(sections: readonly string[]): Map<string, unknown> {
  const defaults = new Map<string, unknown>();
  for (const key of CONFIG_KEYS) {
    const section = key.field.slice(0, key.field.lastIndexOf("."));
    if (!sections.includes(section) || key.defaultText === "") continue;
    const name = key.field.slice(section.length + 1);
    const camel = name.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
    defaults.set(camel, parseToml(`v = ${key.defaultText}`).v);
  }
  return defaults;
}

for (
  const [role, file, iface] of [
    ["cluster", "cluster/cluster_options.ts", "ClusterOptions"],
    ["master", "master/master_options.ts", "MasterOptions"],
  ] as const
) {
  Deno.test(`${iface}: every documented default equals the config default of the same key`, async () => {
    const api = await documentedDefaults(file, iface);
    const config = configDefaults(["all", role]);
    const compared: string[] = [];
    for (const [name, value] of api) {
      if (!config.has(name)) continue;
      compared.push(name);
      assert.deepEqual(value, config.get(name), `${iface}.${name} vs config`);
    }
    assert.ok(compared.length >= 8, `compared only ${compared.join(", ")}`);
    if (role === "cluster") assert.ok(compared.includes("reconnectMaxMs"));
  });
}

Deno.test("docs/EMBEDDING.md lists every option of startCluster, startMaster and SustenetClient.connect", async () => {
  const doc = await Deno.readTextFile(`${REPO_ROOT}docs/EMBEDDING.md`);
  for (
    const [file, iface] of [
      ["cluster/cluster_options.ts", "ClusterOptions"],
      ["master/master_options.ts", "MasterOptions"],
      ["client/sustenet_client.ts", "SustenetClientOptions"],
    ] as const
  ) {
    const start = doc.indexOf(`(options: ${iface})\``);
    assert.ok(start >= 0, `a section for ${iface}`);
    const end = doc.indexOf("\n### ", start + 1);
    const section = doc.slice(start, end < 0 ? undefined : end);
    for (const name of await optionNames(file, iface)) {
      assert.match(section, new RegExp(`^\\| \`${name}\` +\\|`, "m"), `${iface}.${name}`);
    }
  }
});
