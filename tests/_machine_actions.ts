/**
 * Reading a protocol machine's actions in tests (shared/machine_action.ts): the first one a
 * packet yields, and the `close` that ends a session.
 *
 * @module
 */

import assert from "node:assert/strict";

/** The first action (the machines' own events mostly come alone; a failure is then a close). */
export function firstAction<A extends { readonly type: string }>(actions: readonly A[]): A {
  assert.ok(actions.length >= 1, "an action");
  return actions[0];
}

/** The `close` action among `actions` (a failure's, after its event). */
export function closeActionOf<A extends { readonly type: string }>(
  actions: readonly A[],
): Extract<A, { readonly type: "close" }> {
  const close = actions.find((a): a is Extract<A, { readonly type: "close" }> =>
    a.type === "close"
  );
  assert.ok(close !== undefined, "a close action");
  return close;
}
