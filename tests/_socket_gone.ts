/**
 * The errors a test's TCP pump gets when a test ends it: either side reset or closed under a
 * pending read or write. Anything else is a real failure and must still be thrown.
 */

/** Whether `error` only says the socket went away (reset, broken pipe, closed, interrupted). */
export function isSocketGone(error: unknown): boolean {
  return error instanceof Deno.errors.ConnectionReset ||
    error instanceof Deno.errors.BrokenPipe ||
    error instanceof Deno.errors.BadResource ||
    error instanceof Deno.errors.Interrupted;
}
