/**
 * Graceful shutdown wiring for the role entry points: SIGINT and SIGTERM call one async stop
 * function once. The same stop request often arrives twice within milliseconds — Ctrl-C in a
 * terminal or systemd's stop signal the whole process group, and `deno task` forwards the
 * signal it got to its child as well — so a repeat within {@linkcode DUPLICATE_SIGNAL_MS} of
 * the first is the same request and ignored; a later one while stopping exits at once with
 * 130 (an operator's "I mean it"). Never used by library code: only `main.ts` files install
 * signal handlers.
 *
 * @module
 */

/**
 * How long after the first stop signal another one counts as the same request (the copy a
 * process group or `deno task` delivers), in ms.
 *
 * @example
 * ```ts
 * import { DUPLICATE_SIGNAL_MS, ShutdownSignalFilter } from "./shutdown_signals.ts";
 * import assert from "node:assert/strict";
 *
 * const filter = new ShutdownSignalFilter();
 * assert.equal(filter.receive(0), "stop");
 * assert.equal(filter.receive(DUPLICATE_SIGNAL_MS - 1), "duplicate"); // still the same request
 * assert.equal(filter.receive(DUPLICATE_SIGNAL_MS), "force"); // asked again: exit now
 * ```
 */
export const DUPLICATE_SIGNAL_MS = 1500;

/** What to do with one stop signal: start stopping, ignore a duplicate, or exit at once. */
export type ShutdownSignalAction = "stop" | "duplicate" | "force";

/**
 * Decides what each stop signal means (sans I/O: the caller passes the time).
 *
 * @example
 * ```ts
 * import { ShutdownSignalFilter } from "./shutdown_signals.ts";
 * import assert from "node:assert/strict";
 *
 * const filter = new ShutdownSignalFilter();
 * assert.equal(filter.receive(1000), "stop");
 * assert.equal(filter.receive(1003), "duplicate"); // the group's copy, or deno task's
 * assert.equal(filter.receive(5000), "force"); // asked again much later: exit now
 * ```
 */
export class ShutdownSignalFilter {
  #firstAt: number | undefined;

  /**
   * Classifies a signal received at `nowMs`.
   *
   * @param nowMs A monotonic time in ms (`performance.now()`).
   */
  receive(nowMs: number): ShutdownSignalAction {
    if (this.#firstAt === undefined) {
      this.#firstAt = nowMs;
      return "stop";
    }
    return nowMs - this.#firstAt < DUPLICATE_SIGNAL_MS ? "duplicate" : "force";
  }
}

/**
 * Calls `stop(signal)` on the first SIGINT/SIGTERM, then exits with code 0 (or 1 if stop
 * threw). A repeat within {@linkcode DUPLICATE_SIGNAL_MS} is ignored; a later one exits 130.
 * Returns a function that removes the handlers.
 *
 * @example
 * ```ts
 * import { onShutdownSignal } from "./shutdown_signals.ts";
 * import assert from "node:assert/strict";
 *
 * const remove = onShutdownSignal(async () => {});
 * assert.equal(typeof remove, "function");
 * remove();
 * ```
 */
export function onShutdownSignal(stop: (signal: Deno.Signal) => Promise<void>): () => void {
  const filter = new ShutdownSignalFilter();
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
  const handlers = signals.map((signal) => {
    const handler = () => {
      const action = filter.receive(performance.now());
      if (action === "duplicate") return;
      if (action === "force") Deno.exit(130);
      stop(signal).then(
        () => Deno.exit(0),
        (err) => {
          console.error(`error during shutdown: ${err instanceof Error ? err.message : err}`);
          Deno.exit(1);
        },
      );
    };
    Deno.addSignalListener(signal, handler);
    return [signal, handler] as const;
  });
  return () => {
    for (const [signal, handler] of handlers) Deno.removeSignalListener(signal, handler);
  };
}
