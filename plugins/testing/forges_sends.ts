// This module is browser compatible.
/**
 * Test plugin: on command 0x90 it bypasses its context and posts malformed compact `sends`
 * batches straight to the host (a run longer than its records, commands outside 0x80..0xff,
 * payload ranges outside the batch's bytes, a run with no records at all), then answers
 * 0x91 "ok" through `ctx.send`, so a test can check the host dropped every forged send and
 * kept going. Every forged record is addressed to the sender with command 0x9f or outside the
 * plugin range, so a leak is easy to spot.
 *
 * It must never be configured on a real cluster.
 *
 * @module
 */

import { definePlugin } from "../../shared/plugin.ts";

interface Poster {
  postMessage(message: unknown): void;
}

/** The command that triggers the forgeries. */
export const FORGE_SENDS = 0x90;
/** The command of the one valid answer. */
export const FORGE_SENDS_ANSWER = 0x91;
/** The command of forged records that are well-formed apart from their run or range. */
export const FORGED_COMMAND = 0x9f;
/** The plugin-level log line posted after a malformed run, in the same batch. */
export const AFTER_FORGED_RUN = "after a forged run";

/**
 * The malformed batches posted on {@linkcode FORGE_SENDS}, each with how many records the
 * host must reject (its `invalidEvents` rise) and why, for `client`.
 *
 * @param client The client id the forged records are addressed to.
 * @returns The batches, in posting order.
 *
 * @example
 * ```ts
 * import { forgedSendBatches } from "./forges_sends.ts";
 * import assert from "node:assert/strict";
 *
 * const batches = forgedSendBatches(1);
 * assert.ok(batches.every((b) => b.invalid > 0));
 * ```
 */
export function forgedSendBatches(
  client: number,
): { readonly what: string; readonly invalid: number; readonly batch: unknown }[] {
  const c = FORGED_COMMAND;
  // A 1-byte view of a 64-byte buffer: structured clone keeps the whole buffer, so a range
  // checked against the buffer instead of the view would leak the 0xee bytes.
  const secret = new Uint8Array(64).fill(0xee).subarray(0, 1);
  return [
    {
      what: "a run of 3 over a records array holding half a record (2 rejected: index 0 and 4)",
      invalid: 2,
      batch: {
        events: [{ kind: "sends", count: 3 }],
        bytes: new Uint8Array(4),
        records: new Uint32Array([client, c]),
      },
    },
    {
      what: "a second run reading past the records the first run used up",
      invalid: 2, // the first run's bad command, then the second run past the end
      batch: {
        events: [
          { kind: "sends", count: 1 },
          { kind: "log", level: "info", message: AFTER_FORGED_RUN },
          { kind: "sends", count: 1 },
        ],
        bytes: new Uint8Array(4),
        records: new Uint32Array([client, 0x2a, 0, 1]),
      },
    },
    {
      what: "commands outside 0x80..0xff (Move 0x2a, 0x7f, 0x100, 0x180, u32 max)",
      invalid: 5,
      batch: {
        events: [{ kind: "sends", count: 5 }],
        bytes: new Uint8Array(4),
        records: new Uint32Array([
          ...[client, 0x2a, 0, 1],
          ...[client, 0x7f, 0, 1],
          ...[client, 0x100, 0, 1],
          ...[client, 0x180, 0, 1],
          ...[client, 0xffff_ffff, 0, 1],
        ]),
      },
    },
    {
      what: "payload ranges outside the 4 transferred bytes",
      invalid: 5,
      batch: {
        events: [{ kind: "sends", count: 5 }],
        bytes: new Uint8Array(4),
        records: new Uint32Array([
          ...[client, c, 0, 5],
          ...[client, c, 4, 1],
          ...[client, c, 0xffff_ffff, 1],
          ...[client, c, 1, 0xffff_ffff],
          ...[client, c, 0xffff_ffff, 0xffff_ffff],
        ]),
      },
    },
    {
      what: "a payload range past a 1-byte view of a larger buffer",
      invalid: 1,
      batch: {
        events: [{ kind: "sends", count: 1 }],
        bytes: secret,
        records: new Uint32Array([client, c, 0, 8]),
      },
    },
    {
      what: "a run with no records at all",
      invalid: 1,
      batch: { events: [{ kind: "sends", count: 2 }], bytes: new Uint8Array(4) },
    },
    {
      what: "runs with a bad count (0, negative, fractional, a string)",
      invalid: 4,
      batch: {
        events: [
          { kind: "sends", count: 0 },
          { kind: "sends", count: -1 },
          { kind: "sends", count: 0.5 },
          { kind: "sends", count: "1" },
        ],
        bytes: new Uint8Array(4),
        records: new Uint32Array([client, c, 0, 1]),
      },
    },
    {
      what: "records that are not a Uint32Array (the whole message is dropped)",
      invalid: 1,
      batch: {
        events: [{ kind: "sends", count: 1 }],
        bytes: new Uint8Array(4),
        records: [client, c, 0, 1],
      },
    },
  ];
}

/**
 * The plugin forging `sends` batches.
 *
 * @example
 * ```ts
 * import forgesSends from "./forges_sends.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(typeof forgesSends.onMessage, "function");
 * ```
 */
export default definePlugin({
  onMessage(ctx, from, command) {
    if (command !== FORGE_SENDS) return;
    const scope = globalThis as unknown as Poster;
    for (const { batch } of forgedSendBatches(from)) scope.postMessage(batch);
    ctx.send(from, FORGE_SENDS_ANSWER, new TextEncoder().encode("ok"));
  },
});
