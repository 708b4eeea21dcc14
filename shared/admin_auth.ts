/**
 * Who may see the console and who may act on it: the operator token (from config or a key
 * file), checked in constant time against `Authorization: Bearer <token>`. The token is never
 * logged, never echoed, never sent to a browser by the server; the console page asks the
 * operator for it.
 *
 * @module
 */
import { timingSafeEqual } from "node:crypto";

/** The verdict on one request. */
export type AdminVerdict = "ok" | "missing" | "wrong" | "disabled";

/** Options of {@linkcode AdminAuth}. */
export interface AdminAuthOptions {
  /** The operator token, or null: every action answers 403 (`disabled`). */
  readonly token: string | null;
  /**
   * Whether the read-only views (pages, `/api/state`, `/api/events`) are open to anyone.
   * @default {true}
   */
  readonly consolePublic?: boolean;
}

const encoder = new TextEncoder();

/**
 * Checks operator requests.
 *
 * @example
 * ```ts
 * import { AdminAuth } from "./admin_auth.ts";
 * import assert from "node:assert/strict";
 *
 * const auth = await AdminAuth.create({ token: "correct-horse-battery", consolePublic: false });
 * const ask = (value?: string) =>
 *   new Request("http://x/", value === undefined ? {} : { headers: { authorization: value } });
 * assert.equal(await auth.check(ask("Bearer correct-horse-battery")), "ok");
 * assert.equal(await auth.check(ask("Bearer wrong")), "wrong");
 * assert.equal(await auth.check(ask()), "missing");
 * assert.equal(await auth.canView(ask()), false);
 * ```
 */
export class AdminAuth {
  readonly #digest: Uint8Array | null;
  /** Whether the read-only views need no token. */
  readonly consolePublic: boolean;

  private constructor(digest: Uint8Array | null, consolePublic: boolean) {
    this.#digest = digest;
    this.consolePublic = consolePublic;
  }

  /** Builds the checker (hashes the token once). */
  static async create(options: AdminAuthOptions): Promise<AdminAuth> {
    const digest = options.token === null ? null : await sha256(options.token);
    return new AdminAuth(digest, options.consolePublic ?? true);
  }

  /** Whether an operator token is configured. */
  get enabled(): boolean {
    return this.#digest !== null;
  }

  /**
   * The verdict on a request's `Authorization: Bearer` token. Both sides are hashed first, so
   * the comparison takes the same time whatever the length or content of the guess.
   */
  async check(request: Request): Promise<AdminVerdict> {
    if (this.#digest === null) return "disabled";
    const header = request.headers.get("authorization") ?? "";
    const match = /^Bearer (.+)$/.exec(header);
    if (match === null) return "missing";
    const guess = await sha256(match[1]);
    return timingSafeEqual(guess, this.#digest) ? "ok" : "wrong";
  }

  /** Whether the request may see the read-only views. */
  async canView(request: Request): Promise<boolean> {
    return this.consolePublic || await this.check(request) === "ok";
  }
}

async function sha256(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(text)));
}

/**
 * The operator token of a server: `admin_token_file`'s first line if set, else `admin_token`,
 * else null.
 *
 * @param token `admin_token` (or null).
 * @param file `admin_token_file` (or null).
 * @throws {Error} If the file cannot be read or holds fewer than 16 characters (the message
 * names the file, never its content).
 *
 * @example
 * ```ts
 * import { loadAdminToken } from "./admin_auth.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(await loadAdminToken(null, null), null);
 * assert.equal(await loadAdminToken("a-token-of-16-chars", null), "a-token-of-16-chars");
 * ```
 */
export async function loadAdminToken(
  token: string | null,
  file: string | null,
): Promise<string | null> {
  if (file === null) return token;
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (error) {
    throw new Error(
      `admin_token_file ${file}: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  const line = text.split(/\r?\n/, 1)[0].trim();
  if (!/^[\x21-\x7e]{16,512}$/.test(line)) {
    throw new Error(
      `admin_token_file ${file}: the first line must be 16-512 printable ASCII characters`,
    );
  }
  return line;
}
