/**
 * Waiting in tests: poll a condition until it holds, with a generous overall bound (never a
 * wall-clock expectation of how fast something happens).
 */

/**
 * Polls `check` every 10 ms until it holds; fails naming `what` after `timeoutMs`.
 *
 * @param what What is awaited, for the failure message.
 * @param check The condition.
 * @param timeoutMs The overall bound (default 60 s).
 */
export async function waitFor(
  what: string,
  check: () => boolean,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > deadline) {
      throw new Error(`timed out waiting for ${what} (${timeoutMs} ms)`);
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
