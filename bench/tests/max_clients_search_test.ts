import assert from "node:assert/strict";
import fc from "fast-check";
import {
  confirmationCandidates,
  judgeRelay,
  MaxClientsSearch,
  median,
} from "../max_clients_search.ts";

Deno.test("a run passes only with p99 within 50 ms and at least 97 % delivered", () => {
  const base = { clients: 101, hz: 20, receivedPerSecond: 202_000, p99Ms: 50 };
  assert.equal(judgeRelay(base).pass, true);
  assert.equal(judgeRelay({ ...base, receivedPerSecond: 195_939 }).pass, false);
  assert.equal(judgeRelay({ ...base, receivedPerSecond: 195_940 }).pass, true);
  const both = judgeRelay({ ...base, receivedPerSecond: 0, p99Ms: 51 });
  assert.equal(both.reasons.length, 2);
  assert.equal(judgeRelay({ ...base, p99Ms: 80 }, { maxP99Ms: 100 }).pass, true);
  assert.equal(judgeRelay({ ...base, clients: 1 }).deliveredRatio, 0);
});

Deno.test("the search finds the threshold within its resolution for any threshold", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 2, max: 3000 }),
      fc.integer({ min: 2, max: 3000 }),
      (threshold, start) => {
        const search = new MaxClientsSearch({ start, min: 2, max: 3000, maxProbes: 40 });
        const tried = new Set<number>();
        for (let r = search.next(); r !== undefined; r = search.next()) {
          assert.ok(r >= 2 && r <= 3000, `R ${r} out of range`);
          assert.ok(!tried.has(r), `R ${r} proposed twice`);
          tried.add(r);
          search.record(r, r <= threshold);
        }
        const best = search.best;
        assert.ok(best !== undefined && best <= threshold);
        if (threshold < 3000) assert.ok(threshold - best <= Math.max(2, best * 0.05) + 1);
      },
    ),
  );
});

Deno.test("the search never exceeds its probe budget", () => {
  const search = new MaxClientsSearch({ start: 10, min: 2, max: 100_000, maxProbes: 3 });
  let probes = 0;
  for (let r = search.next(); r !== undefined; r = search.next()) {
    probes++;
    search.record(r, true);
  }
  assert.equal(probes, 3);
  assert.equal(search.firstFailure, undefined);
});

Deno.test("when even the minimum fails there is no best", () => {
  const search = new MaxClientsSearch({ start: 64, min: 4, max: 100 });
  for (let r = search.next(); r !== undefined; r = search.next()) search.record(r, false);
  assert.equal(search.best, undefined);
  assert.equal(search.firstFailure, 4);
});

Deno.test("when everything passes the search stops at the maximum", () => {
  const search = new MaxClientsSearch({ start: 50, min: 2, max: 80, maxProbes: 10 });
  for (let r = search.next(); r !== undefined; r = search.next()) search.record(r, true);
  assert.equal(search.best, 80);
});

Deno.test("bad search options and an empty median are refused", () => {
  assert.throws(() => new MaxClientsSearch({ start: 5, min: 1, max: 10 }), RangeError);
  assert.throws(() => new MaxClientsSearch({ start: 5, min: 20, max: 10 }), RangeError);
  assert.throws(() => new MaxClientsSearch({ start: 5, min: 2, max: 10, growth: 1 }), RangeError);
  assert.throws(() => median([]), RangeError);
});

Deno.test("confirmations step down 5 %, 10 %, 15 %, never below min, never repeating", () => {
  assert.deepEqual(confirmationCandidates(1000, 2), [1000, 950, 855, 727]);
  assert.deepEqual(confirmationCandidates(100, 90), [100, 95]);
  assert.deepEqual(confirmationCandidates(100, 101), [100]);
  assert.deepEqual(confirmationCandidates(20, 2), [20, 19, 17, 14]);
  // Small counts stop once a step would not lower them.
  assert.deepEqual(confirmationCandidates(3, 2), [3]);
});
