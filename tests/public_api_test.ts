/**
 * The public API is a list someone chose (docs/EMBEDDING.md, "Public API"): every entry point
 * of deno.json exports explicit lists (an `export *` only of the core's own list), every symbol
 * EMBEDDING.md names for an entry point is exported by it, the ones it says are not exported
 * are not, and no entry point hands out the internals issue 22 named.
 */
import assert from "node:assert/strict";
import { REPO_ROOT } from "./_process.ts";

const exportsMap: Record<string, string> = JSON.parse(
  await Deno.readTextFile(`${REPO_ROOT}deno.json`),
).exports;

/** The names an entry point exports, as `deno doc` (and so JSR) sees them. */
async function exportedNames(entry: string): Promise<Set<string>> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["doc", "--json", `${REPO_ROOT}${entry.replace(/^\.\//, "")}`],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const doc = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    nodes: Record<string, { symbols?: { name: string }[] }>;
  };
  return new Set(Object.values(doc.nodes).flatMap((node) => node.symbols ?? []).map((s) => s.name));
}

/** Per entry point (`.`, `./browser`, …): the symbols EMBEDDING.md lists, and those it excludes. */
async function documentedLists(): Promise<Map<string, { listed: string[]; excluded: string[] }>> {
  const markdown = await Deno.readTextFile(`${REPO_ROOT}docs/EMBEDDING.md`);
  const start = markdown.indexOf("\n## Public API");
  assert.ok(start >= 0, "docs/EMBEDDING.md has a Public API section");
  const section = markdown.slice(start).split("\nTwo types were both called")[0];
  const lists = new Map<string, { listed: string[]; excluded: string[] }>();
  let current: { listed: string[]; excluded: string[] } | undefined;
  for (const paragraph of section.split(/\n(?=\*\*`@sustenet|- )/)) {
    const heading = paragraph.match(/^\*\*`@sustenet\/sustenet(\/\w+)?`\*\*/);
    if (heading) {
      current = { listed: [], excluded: [] };
      lists.set(heading[1] === undefined ? "." : `.${heading[1]}`, current);
    }
    if (current === undefined) continue;
    const [shown, hidden = ""] = paragraph.split("Not exported:");
    const names = (text: string) =>
      [...text.matchAll(/`([A-Za-z_][A-Za-z0-9_]*)`/g)].map((m) => m[1]).filter((n) =>
        n !== "code"
      );
    current.listed.push(...names(heading ? shown.slice(heading[0].length) : shown));
    current.excluded.push(...names(hidden));
  }
  return lists;
}

Deno.test("every entry point exports explicit lists: an export * only of the core's list", async () => {
  for (const file of Object.values(exportsMap)) {
    const source = await Deno.readTextFile(`${REPO_ROOT}${file.replace(/^\.\//, "")}`);
    for (const match of source.matchAll(/^export \* from "([^"]+)";/gm)) {
      assert.match(match[1], /^(\.\.?\/)(shared\/)?mod\.ts$/, `${file}: export * from ${match[1]}`);
    }
  }
});

Deno.test("each entry point exports what docs/EMBEDDING.md lists for it, and not what it excludes", async () => {
  const lists = await documentedLists();
  assert.deepEqual(
    [...lists.keys()].sort(),
    Object.keys(exportsMap).filter((k) => k !== "./shared").sort(),
  );
  for (const [entry, { listed, excluded }] of lists) {
    const names = await exportedNames(exportsMap[entry]);
    assert.ok(listed.length > 3, `${entry}: EMBEDDING.md lists its symbols`);
    assert.deepEqual(listed.filter((n) => !names.has(n)), [], `${entry}: listed but not exported`);
    assert.deepEqual(excluded.filter((n) => names.has(n)), [], `${entry}: exported but excluded`);
  }
  // `/shared` is the same list as the package root.
  assert.deepEqual(
    [...await exportedNames(exportsMap["./shared"])].sort(),
    [...await exportedNames(exportsMap["."])].sort(),
  );
});

Deno.test("no entry point exports the internals issue 22 named", async () => {
  const internals = [
    "dirnameOf",
    "flagRole",
    "writeRecordNonce",
    "createPluginContext",
    "PlayerRoster",
    "configFromArgs",
  ];
  for (const [entry, file] of Object.entries(exportsMap)) {
    const names = await exportedNames(file);
    assert.deepEqual(internals.filter((n) => names.has(n)), [], entry);
  }
});
