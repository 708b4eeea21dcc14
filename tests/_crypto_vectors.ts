/** The `Crypto vector:` blocks of docs/PROTOCOL.md, parsed for the tests that check them. */
import assert from "node:assert/strict";

/** One `Crypto vector:` block of docs/PROTOCOL.md: its label and its `name = value` lines. */
export interface CryptoVector {
  readonly label: string;
  readonly values: ReadonlyMap<string, string>;
}

/**
 * Reads every crypto vector of the Markdown: a line `Crypto vector: <label>`, then a fenced
 * `text` block of `name = value` lines, a line starting with two spaces continuing the value.
 */
export function parseCryptoVectors(markdown: string): CryptoVector[] {
  const lines = markdown.split("\n");
  const vectors: CryptoVector[] = [];
  for (let i = 0; i < lines.length; i++) {
    const head = /^Crypto vector: (.+?)\s*$/.exec(lines[i]);
    if (head === null) continue;
    let j = i + 1;
    while (j < lines.length && lines[j].trim() === "") j++;
    assert.equal(lines[j], "```text", `a text block follows "${lines[i]}" (line ${i + 1})`);
    const values = new Map<string, string>();
    let last: string | undefined;
    for (j++; j < lines.length && lines[j] !== "```"; j++) {
      const line = lines[j];
      if (line.startsWith("  ")) {
        assert.ok(last !== undefined, `line ${j + 1} continues a value`);
        values.set(last, `${values.get(last)} ${line.trim()}`);
        continue;
      }
      const entry = /^(\w+)\s*=\s*(.+)$/.exec(line);
      assert.ok(entry !== null, `line ${j + 1} is "name = value": ${line}`);
      assert.ok(!values.has(entry[1]), `"${entry[1]}" appears once in "${head[1]}"`);
      values.set(entry[1], entry[2].trim());
      last = entry[1];
    }
    assert.ok(j < lines.length, `the block of "${lines[i]}" is closed`);
    vectors.push({ label: head[1], values });
    i = j;
  }
  return vectors;
}

/** The vectors of docs/PROTOCOL.md. */
export async function protocolCryptoVectors(): Promise<CryptoVector[]> {
  return parseCryptoVectors(
    await Deno.readTextFile(new URL("../docs/PROTOCOL.md", import.meta.url)),
  );
}

/** The value `name` of the vector `label` as bytes (its hex, spaces removed). */
export function vectorHex(
  vectors: readonly CryptoVector[],
  label: string,
  name: string,
): Uint8Array<ArrayBuffer> {
  const value = vectors.find((v) => v.label === label)?.values.get(name);
  assert.ok(value !== undefined, `PROTOCOL.md's "${label}" has ${name}`);
  return Uint8Array.fromHex(value.replace(/\s+/g, ""));
}
