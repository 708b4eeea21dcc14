import assert from "node:assert/strict";
import { SendSchedule } from "../send_schedule.ts";

Deno.test("over a second every client sends hz times, spread over the slots", () => {
  const schedule = new SendSchedule({ clients: 25, hz: 20 });
  const perClient = new Array(25).fill(0);
  const perTick: number[] = [];
  for (let t = 0; t < 1000; t += 5) perTick.push(schedule.due(t, (c) => perClient[c]++));
  assert.deepEqual(new Set(perClient), new Set([20]));
  assert.equal(schedule.sent, 500);
  assert.ok(Math.max(...perTick) <= 3, "no burst: at most ceil(25 / 10) per slot");
  assert.equal(schedule.skipped, 0);
});

Deno.test("a caller that lags catches up at most one period and counts the rest as skipped", () => {
  const schedule = new SendSchedule({ clients: 10, hz: 20 }); // one client per 5 ms slot
  schedule.due(0, () => {});
  const made = schedule.due(1000, () => {});
  assert.ok(made <= 11, `caught up ${made} sends, at most one period's`);
  assert.equal(schedule.sent + schedule.skipped, 201);
  assert.ok(schedule.nextDueMs > 1000);
});

Deno.test("nothing is sent before the first slot and no client twice per slot", () => {
  const schedule = new SendSchedule({ clients: 3, hz: 10, slots: 1 });
  const sent: number[] = [];
  schedule.due(-1, (c) => sent.push(c));
  assert.equal(sent.length, 0);
  schedule.due(0, (c) => sent.push(c));
  schedule.due(0, (c) => sent.push(c));
  assert.deepEqual(sent, [0, 1, 2]);
});

Deno.test("zero clients send nothing; bad options are refused", () => {
  assert.equal(new SendSchedule({ clients: 0, hz: 20 }).due(1000, () => assert.fail()), 0);
  assert.throws(() => new SendSchedule({ clients: -1, hz: 20 }), RangeError);
  assert.throws(() => new SendSchedule({ clients: 1.5, hz: 20 }), RangeError);
  assert.throws(() => new SendSchedule({ clients: 1, hz: 0 }), RangeError);
  assert.throws(() => new SendSchedule({ clients: 1, hz: Infinity }), RangeError);
  assert.throws(() => new SendSchedule({ clients: 1, hz: 20, slots: 0 }), RangeError);
});
