// This module is browser compatible.
/**
 * The one rule for key names (`key_name`, `identity_key_name`, BecomeCluster's key name): they
 * become file names in `keys_dir`, so no separators, no hidden files, and not the suffixes the
 * identity files use.
 *
 * @module
 */

/**
 * The characters a key name may use: 1 to 64 of `A-Z a-z 0-9 _ . -`. {@linkcode isKeyName}
 * further refuses names starting with `.` and names ending in `.identity` or `.pub`.
 *
 * @example
 * ```ts
 * import { KEY_NAME_PATTERN } from "./key_name.ts";
 * import assert from "node:assert/strict";
 *
 * assert.ok(KEY_NAME_PATTERN.test("cluster_key"));
 * assert.ok(!KEY_NAME_PATTERN.test("../etc/passwd"));
 * ```
 */
export const KEY_NAME_PATTERN: RegExp = /^[A-Za-z0-9_.-]{1,64}$/;
const RESERVED_SUFFIXES = [".identity", ".pub"] as const;

/**
 * What a key name may be, in words (for error messages and config help).
 *
 * @example
 * ```ts
 * import { KEY_NAME_RULE } from "./key_name.ts";
 * import assert from "node:assert/strict";
 *
 * assert.match(KEY_NAME_RULE, /not starting with "\."/);
 * ```
 */
export const KEY_NAME_RULE =
  '1-64 of A-Z a-z 0-9 _ . -, not starting with "." nor ending in .identity or .pub';

/**
 * Whether `name` is a valid key name ({@linkcode KEY_NAME_RULE}).
 *
 * @param name A key name, possibly from the network, a flag or a config file.
 *
 * @example
 * ```ts
 * import { isKeyName } from "./key_name.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(isKeyName("eu-1"), true);
 * assert.equal(isKeyName(".."), false);
 * assert.equal(isKeyName("eu.pub"), false); // the public half of an identity, not a key
 * ```
 */
export function isKeyName(name: string): boolean {
  return KEY_NAME_PATTERN.test(name) && !name.startsWith(".") &&
    !RESERVED_SUFFIXES.some((suffix) => name.endsWith(suffix));
}
