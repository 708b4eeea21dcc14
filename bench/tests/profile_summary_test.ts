import assert from "node:assert/strict";
import {
  ProfileFormatError,
  summariseLargestProfile,
  summariseProfile,
} from "../profile_summary.ts";

const frame = (functionName: string, url = "") => ({ functionName, url, lineNumber: 0 });

Deno.test("self time is summed per function and location and ranked", () => {
  const profile = {
    nodes: [
      { id: 1, callFrame: frame("(program)") },
      { id: 2, callFrame: frame("seal", "file:///r/a.ts") },
      { id: 3, callFrame: frame("seal", "file:///r/a.ts") },
      { id: 4, callFrame: frame("seal", "file:///r/b.ts") },
      { id: 5, callFrame: frame("(idle)") },
    ],
    samples: [2, 3, 4, 1, 5, 2],
    timeDeltas: [100, 100, 100, 100, 9000, -5],
  };
  const top = summariseProfile(profile, 10, "file:///r/");
  assert.deepEqual(top.map((e) => [e.functionName, e.location, e.percent]), [
    ["seal", "a.ts:1", 50],
    ["seal", "b.ts:1", 25],
    ["(program)", "", 25],
  ]);
  assert.equal(summariseProfile(profile, 1).length, 1);
});

Deno.test("an empty profile gives nothing; a malformed one is a ProfileFormatError", () => {
  assert.deepEqual(summariseProfile({ nodes: [], samples: [], timeDeltas: [] }), []);
  for (const bad of [null, 42, {}, { nodes: [], samples: [1], timeDeltas: [] }]) {
    assert.throws(() => summariseProfile(bad), ProfileFormatError);
  }
  const unknownNode = { nodes: [], samples: [9], timeDeltas: [1] };
  assert.throws(() => summariseProfile(unknownNode), /unknown node/);
});

Deno.test("the largest .cpuprofile of a directory is summarised; other files are not candidates", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const profile = (name: string, samples: number) =>
      JSON.stringify({
        nodes: [{ id: 1, callFrame: frame(name, "file:///r/a.ts") }],
        samples: new Array(samples).fill(1),
        timeDeltas: new Array(samples).fill(1000),
      });
    assert.equal(await summariseLargestProfile(dir), undefined);
    await Deno.writeTextFile(`${dir}/other.json`, profile("notAProfileFile", 50));
    assert.equal(await summariseLargestProfile(dir), undefined);
    await Deno.writeTextFile(`${dir}/worker.cpuprofile`, profile("worker", 1));
    await Deno.writeTextFile(`${dir}/cluster.cpuprofile`, profile("cluster", 9));
    const largest = await summariseLargestProfile(dir, 5, "file:///r/");
    assert.equal(largest?.path, `${dir}/cluster.cpuprofile`);
    assert.deepEqual(largest?.top, [
      { functionName: "cluster", location: "a.ts:1", selfMs: 9, percent: 100 },
    ]);
    await Deno.writeTextFile(`${dir}/z.cpuprofile`, JSON.stringify({ nodes: "x".repeat(500) }));
    await assert.rejects(summariseLargestProfile(dir), ProfileFormatError);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
