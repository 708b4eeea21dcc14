/**
 * Graceful shutdown wiring for the role entry points: SIGINT and SIGTERM call one async stop
 * function once; a second signal while stopping exits at once (an operator's "I mean it").
 * Never used by library code: only `main.ts` files install signal handlers.
 *
 * @module
 */

/**
 * Calls `stop(signal)` on the first SIGINT/SIGTERM, then exits with code 0 (or 1 if stop
 * threw). Returns a function that removes the handlers.
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
  let stopping = false;
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
  const handlers = signals.map((signal) => {
    const handler = () => {
      if (stopping) Deno.exit(130);
      stopping = true;
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
