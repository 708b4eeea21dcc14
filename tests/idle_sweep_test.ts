import assert from "node:assert/strict";
import { IdleSweep, type IdleSweepMember } from "../shared/idle_sweep.ts";

/** A member that stays for `periods` calls, then leaves; resolves `left` when it does. */
function member(periods: number, calls: number[] = []) {
  const left = Promise.withResolvers<void>();
  let n = 0;
  const m: IdleSweepMember = {
    sweep: (now) => {
      calls.push(now);
      if (++n < periods) return false;
      left.resolve();
      return true;
    },
  };
  return { m, left: left.promise, calls };
}

Deno.test("idle sweep: each member is called once per period until it leaves, then the timer stops", async () => {
  const sweep = new IdleSweep(5);
  const a = member(3);
  const b = member(1);
  sweep.add(a.m);
  sweep.add(b.m);
  assert.equal(sweep.size, 2);
  await b.left;
  await a.left;
  assert.equal(a.calls.length, 3);
  assert.equal(b.calls.length, 1);
  // The times passed in grow by about a period (never two calls in one tick).
  assert.ok(a.calls[1] > a.calls[0] && a.calls[2] > a.calls[1]);
  assert.equal(sweep.size, 0); // the test's sanitizer checks that no interval is left
});

Deno.test("idle sweep: a member removed during a tick is not called, and may be added back", async () => {
  const sweep = new IdleSweep(5);
  const victim = member(1);
  const remover: IdleSweepMember = {
    sweep: () => {
      sweep.delete(victim.m);
      return true;
    },
  };
  sweep.add(remover);
  sweep.add(victim.m);
  // Wait out one tick through a third member that leaves after two periods.
  const waiter = member(2);
  sweep.add(waiter.m);
  await waiter.left;
  assert.equal(victim.calls.length, 0);
  sweep.add(victim.m);
  await victim.left;
  assert.equal(victim.calls.length, 1);
  assert.equal(sweep.size, 0);
});

Deno.test("idle sweep: a period that is not a positive integer is refused", () => {
  assert.throws(() => new IdleSweep(0), RangeError);
  assert.throws(() => new IdleSweep(1.5), RangeError);
});
