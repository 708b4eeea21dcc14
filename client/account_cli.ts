/**
 * The account commands of `deno task client`: `register NAME` and `login NAME` read the
 * password from the first line of stdin, call the account service and save the tokens to a
 * token file (mode 0600); `--token-file` on `join`, `list` or `--bots` turns the saved access
 * token into JoinCluster's credential, refreshing it first when it is about to expire. Never
 * prints a password or a token.
 *
 * @module
 */

import { AuthClient, AuthRequestError, type AuthTokens } from "./auth_client.ts";

/** The default token file, in the working directory. */
export const DEFAULT_TOKEN_FILE = ".sustenet-token.json";
/** The default account service. */
export const DEFAULT_AUTH_URL = "http://127.0.0.1:6258";

/** A refresh happens when the access token has less than this left, in ms. */
const REFRESH_MARGIN_MS = 30_000;

interface TokenFile extends AuthTokens {
  readonly authUrl: string;
}

async function readPasswordLine(): Promise<string> {
  const reader = Deno.stdin.readable.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  try {
    while (!text.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
      if (text.length > 4096) break;
    }
  } finally {
    await reader.cancel();
  }
  return text.split("\n")[0]?.replace(/\r$/, "") ?? "";
}

async function saveTokens(path: string, authUrl: string, tokens: AuthTokens): Promise<void> {
  const file: TokenFile = { authUrl, ...tokens };
  await Deno.writeTextFile(path, JSON.stringify(file, null, 2) + "\n", { mode: 0o600 });
  await Deno.chmod(path, 0o600).catch((error: unknown) => {
    if (!(error instanceof Deno.errors.NotSupported)) throw error;
  });
}

/**
 * Runs `register NAME` or `login NAME` and returns the exit code (0 ok, 1 refused).
 *
 * @param kind Which command.
 * @param username The name given.
 * @param authUrl The account service.
 * @param tokenFile Where to save the tokens.
 */
export async function accountCommand(
  kind: "register" | "login",
  username: string,
  authUrl: string,
  tokenFile: string,
): Promise<number> {
  const password = await readPasswordLine();
  const client = new AuthClient(authUrl);
  try {
    const tokens = kind === "register"
      ? await client.register(username, password)
      : await client.login(username, password);
    await saveTokens(tokenFile, authUrl, tokens);
    console.log(
      `${kind === "register" ? "registered" : "logged in"} as ${tokens.username} ` +
        `(account ${tokens.accountId}); tokens saved to ${tokenFile}`,
    );
    return 0;
  } catch (error) {
    if (!(error instanceof AuthRequestError)) throw error;
    const retry = error.retryAfterS === undefined ? "" : ` (retry in ${error.retryAfterS} s)`;
    console.error(`error: ${error.code}: ${error.message}${retry}`);
    return 1;
  }
}

/**
 * The JoinCluster credential from a token file: its access token, refreshed (and the file
 * rewritten) when it expires within 30 s.
 *
 * @param path The token file.
 * @throws {AuthRequestError} When the refresh is refused (log in again).
 */
export async function tokenFileCredential(path: string): Promise<string> {
  const saved = JSON.parse(await Deno.readTextFile(path)) as TokenFile;
  if (typeof saved.accessToken !== "string" || typeof saved.refreshToken !== "string") {
    throw new TypeError(`${path} is not a token file (run login first)`);
  }
  if (saved.accessExpiresAt - Date.now() > REFRESH_MARGIN_MS) return saved.accessToken;
  const tokens = await new AuthClient(saved.authUrl).refresh(saved.refreshToken);
  await saveTokens(path, saved.authUrl, tokens);
  return tokens.accessToken;
}
