import assert from "node:assert/strict";
import fc from "fast-check";
import {
  DEFAULT_PLAYER_RATE_LIMITS,
  FLOOD_QUIET_MS,
  PlayerRateLimit,
  playerRateLimitsOf,
} from "../cluster/player_rate_limit.ts";

const MOVE = 0x2a;
const PING = 0x04;
const LEAVE = 0x28;
const COMMAND = 0x80;
/** A Move frame's length field: type + MoveState (see docs/PROTOCOL.md). */
const MOVE_BYTES = 1 + 24;

Deno.test("an honest 60 Hz client (a Move and three commands per frame, pings, jitter) is never throttled", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 20, max: 60 }),
      fc.array(fc.integer({ min: 0, max: 30 }), { minLength: 600, maxLength: 600 }),
      fc.integer({ min: 1, max: 200 }),
      (hz, jitterMs, commandBytes) => {
        const limit = new PlayerRateLimit();
        // Ten seconds of frames; each frame's packets may be late by up to 30 ms, as after a
        // hiccup on the client or the network.
        for (let frame = 0; frame < hz * 10; frame++) {
          const t = frame * 1000 / hz + jitterMs[frame % jitterMs.length];
          assert.equal(limit.admit(MOVE, MOVE_BYTES, t), "pass");
          for (let c = 0; c < 3; c++) {
            assert.equal(limit.admit(COMMAND, commandBytes + 1, t), "pass");
          }
          if (frame % hz === 0) assert.equal(limit.admit(PING, 5, t), "pass");
        }
        assert.equal(limit.dropped, 0);
      },
    ),
    { numRuns: 50 },
  );
});

Deno.test("an honest client's backlog after a 4 s stall passes in one go", () => {
  const limit = new PlayerRateLimit();
  // 4 s of a 60 Hz client's frames, all arriving at once (TCP held them back).
  for (let i = 0; i < 240; i++) assert.equal(limit.admit(MOVE, MOVE_BYTES, 5000), "pass");
  for (let i = 0; i < 240; i++) assert.equal(limit.admit(COMMAND, 101, 5000), "pass");
  assert.equal(limit.dropped, 0);
});

Deno.test("a flood is throttled at once and kicked once it has lasted flood_kick_ms", () => {
  const limit = new PlayerRateLimit({ commandsPerS: 100, commandsBurst: 10, floodKickMs: 2000 });
  const verdicts: Record<string, number> = {};
  let throttledAt: number | undefined;
  let kickedAt: number | undefined;
  // 1000 commands a second (one per ms) for 3 s.
  for (let t = 0; t < 3000; t++) {
    const verdict = limit.admit(COMMAND, 9, t);
    verdicts[verdict] = (verdicts[verdict] ?? 0) + 1;
    if (verdict === "throttle") throttledAt ??= t;
    if (verdict === "kick") kickedAt ??= t;
  }
  assert.equal(throttledAt, 10); // the burst is spent by then
  assert.equal(verdicts.throttle, 1); // one episode, logged once
  assert.equal(verdicts.kick, 1); // kicked once
  assert.equal(kickedAt, 2010);
  // The limit still lets 100/s through while it throttles: the player was never starved.
  assert.ok(
    verdicts.pass >= 10 + 100 * 2.9 && verdicts.pass <= 10 + 100 * 3 + 1,
    `${verdicts.pass}`,
  );
  assert.equal(limit.dropped, 3000 - verdicts.pass);
  assert.equal(limit.droppedBytes, 9 * limit.dropped);
});

Deno.test("a byte flood of few large commands is throttled and kicked like a message flood", () => {
  const limit = new PlayerRateLimit({ floodKickMs: 3000 });
  let kickedAt: number | undefined;
  // Four 64 KiB commands a second: 4× the byte rate, far under the message rate.
  for (let t = 0; t < 10_000 && kickedAt === undefined; t += 250) {
    if (limit.admit(COMMAND, 65_536, t) === "kick") kickedAt = t;
  }
  assert.ok(kickedAt !== undefined && kickedAt >= 3000 && kickedAt <= 3500, `${kickedAt}`);
});

Deno.test("short overruns separated by quiet seconds are never kicked", () => {
  const limit = new PlayerRateLimit({ movesPerS: 10, movesBurst: 5, floodKickMs: 1500 });
  // Every 2 s, 20 moves at once: 15 dropped each time, but each episode ends in quiet.
  for (let round = 0; round < 20; round++) {
    const t = round * 2000;
    const verdicts = Array.from({ length: 20 }, () => limit.admit(MOVE, MOVE_BYTES, t));
    assert.equal(verdicts.filter((v) => v === "pass").length, 5);
    assert.equal(verdicts.filter((v) => v === "throttle").length, 1);
    assert.ok(!verdicts.includes("kick"));
    assert.equal(limit.throttledSince(t + FLOOD_QUIET_MS), undefined);
  }
});

Deno.test("a dropped command spends nothing: a throttled player recovers at the configured rate", () => {
  const limit = new PlayerRateLimit({
    commandsPerS: 10,
    commandsBurst: 1,
    commandBytesPerS: 1000,
    commandBytesBurst: 1000,
  });
  assert.equal(limit.admit(COMMAND, 1000, 0), "pass");
  // Out of bytes: the message token must not be spent by these drops.
  assert.equal(limit.admit(COMMAND, 10, 0), "throttle");
  assert.equal(limit.admit(COMMAND, 10, 50), "drop");
  assert.equal(limit.admit(COMMAND, 10, 100), "pass"); // 100 bytes and 1 message refilled
  // Moves have their own bucket, untouched by commands.
  assert.equal(limit.admit(MOVE, MOVE_BYTES, 100), "pass");
});

Deno.test("LeaveCluster and Error always pass, even from a throttled player", () => {
  const limit = new PlayerRateLimit({ movesPerS: 1, movesBurst: 1 });
  assert.equal(limit.admit(MOVE, MOVE_BYTES, 0), "pass");
  assert.equal(limit.admit(MOVE, MOVE_BYTES, 0), "throttle");
  assert.equal(limit.admit(LEAVE, 1, 0), "pass");
  assert.equal(limit.admit(0x03, 40, 0), "pass");
});

Deno.test("a command larger than the byte burst never passes", () => {
  const limit = new PlayerRateLimit({ commandBytesBurst: 100 });
  assert.equal(limit.admit(COMMAND, 101, 1_000_000), "throttle");
  assert.equal(limit.admit(COMMAND, 100, 1_000_000), "pass");
});

Deno.test("limits are checked and default to the documented values", () => {
  assert.deepEqual(playerRateLimitsOf(), DEFAULT_PLAYER_RATE_LIMITS);
  for (const bad of [0, -1, NaN, Infinity]) {
    assert.throws(
      () => new PlayerRateLimit({ movesPerS: bad }),
      new RegExp(`movesPerS must be a finite number > 0, got ${bad}`),
    );
  }
});
