// This module is browser compatible.
/**
 * File path arithmetic for configuration values (relative paths resolve against the config
 * file's directory) without `node:path`, so it also runs in browsers. Pure string work: it never
 * touches the file system.
 *
 * @module
 */

/** Whether `path` is absolute (POSIX `/…`, UNC-ish `\\…`, or a Windows drive `C:\\…`). */
export function isAbsolutePath(path: string): boolean {
  return path.startsWith("/") || path.startsWith("\\") || /^[A-Za-z]:[\\/]/.test(path);
}

/** Joins `rel` to `base` (unless absolute) and folds `.` and `..` segments. */
export function resolvePath(base: string, rel: string): string {
  const sep = base.includes("\\") && !base.includes("/") ? "\\" : "/";
  const full = isAbsolutePath(rel) ? rel : `${base}${sep}${rel}`;
  const absolute = isAbsolutePath(full);
  const drive = /^[A-Za-z]:/.exec(full)?.[0] ?? "";
  const out: string[] = [];
  for (const segment of full.slice(drive.length).split(/[\\/]/)) {
    if (segment === "" || segment === ".") continue;
    if (segment === ".." && out.length > 0 && out[out.length - 1] !== "..") out.pop();
    else if (segment !== ".." || !absolute) out.push(segment);
  }
  const body = out.join(sep);
  if (absolute) return `${drive}${sep}${body}`;
  return body === "" ? "." : body;
}

/**
 * The directory part of a file path (`"."` when it has none).
 *
 * @param path A file path.
 *
 * @example
 * ```ts
 * import { dirnameOf } from "./file_paths.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(dirnameOf("/srv/game/Config.toml"), "/srv/game");
 * assert.equal(dirnameOf("Config.toml"), ".");
 * ```
 */
export function dirnameOf(path: string): string {
  const cut = Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\"));
  if (cut < 0) return ".";
  if (cut === 0) return path[0] ?? "/";
  return path.slice(0, cut);
}

/** The `file:` URL of an absolute path, percent-encoded. */
export function pathToFileHref(absolutePath: string): string {
  let path = absolutePath.replaceAll("\\", "/");
  if (!path.startsWith("/")) path = `/${path}`; // "C:/x" → "/C:/x"
  const url = new URL("file:///");
  url.pathname = path; // percent-encodes spaces, "#", "?"
  return url.href;
}
