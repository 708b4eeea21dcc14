/**
 * Waiting in tests: poll a condition until it holds, with a generous overall bound (never a
 * wall-clock expectation of how fast something happens).
 */

/**
 * Polls `check` every `intervalMs` until it holds; fails naming `what` after `timeoutMs`.
 *
 * @param what What is awaited, for the failure message.
 * @param check The condition (may be async, e.g. a fetch).
 * @param timeoutMs The overall bound (default 60 s).
 * @param intervalMs Time between two checks (default 10 ms; more for costly checks).
 */
export async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 60_000,
  intervalMs = 10,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) {
      throw new Error(`timed out waiting for ${what} (${timeoutMs} ms)`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
