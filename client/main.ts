/**
 * The command line of `deno task client`: list a master's clusters, join one and chat from
 * stdin, or run headless bots.
 *
 * ```
 * deno task client [--master host:port|ws://host:port/path] list
 * deno task client [--master host:port] join [id|auto]   # then: text, /cmd N text, /hex N hex, /move
 * deno task client [--master host:port] --bots N [--seconds S] [--scenario NAME|MODULE] [--json]
 * echo "$PASSWORD" | deno task client [--auth URL] [--token-file F] register|login NAME
 * deno task client --token-file F join auto        # joins as the logged-in account
 * ```
 *
 * Exit codes: 0 success (with `--bots`: every bot joined, no error, and replies came back if
 * anything was sent), 1 a failure (its code and reason on
 * stderr), 2 a usage error. It must never print a credential or key, and never exit with a
 * connection left open except by the process ending.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { UsageError } from "../shared/command_line.ts";
import { CHAT_COMMAND, CHAT_REFUSED_COMMAND } from "../plugins/chat.ts";
import { type LogLevelName, setupLogging } from "../shared/logging.ts";
import type { MoveState } from "../shared/protocol/move_state.ts";
import type { ClusterInfo } from "../shared/protocol/packets.ts";
import { onShutdownSignal } from "../shared/shutdown_signals.ts";
import { loadScenario } from "./bot_scenarios.ts";
import {
  type BotStatus,
  type BotSummary,
  formatBotStatus,
  formatLoadSummary,
  loadSummaryJson,
  startBots,
} from "./bots.ts";
import type { ClusterSession } from "./cluster_session.ts";
import { ClientError } from "./errors.ts";
import { looksLikeAddress, type PinnedKeySource } from "./key_pinning.ts";
import { DenoSustenetClient as SustenetClient } from "./deno_sustenet_client.ts";
import type { SustenetClientOptions } from "./sustenet_client.ts";
import {
  accountCommand,
  DEFAULT_AUTH_URL,
  DEFAULT_TOKEN_FILE,
  tokenFileCredential,
} from "./account_cli.ts";
import { AuthRequestError } from "./auth_client.ts";

const USAGE = `Usage:
  deno task client [options] list              print the master's clusters
  deno task client [options] join [id|auto]    join a cluster and type lines (see Joined)
  deno task client [options] --bots N          load test: N headless bots join and play a scenario
  deno task client [options] register NAME     create an account (password: first stdin line)
  deno task client [options] login NAME        log in (password: first stdin line)

Options:
  --master HOST:PORT     the master (default 127.0.0.1:6256); repeat it for masters sharing a
                         registry: each is tried in order when one does not answer. Or the
                         master's WebSocket URL (ws://HOST:PORT/PATH, wss://…) to play over
                         WebSocket
  --ca-cert FILE         trust this CA (PEM) for a wss:// master and its clusters, e.g. the
                         certs/ca.pem of deno task certs (default: the system's store)
  --credential TEXT      credential for the master's authentication hook
  --auth URL             the account service for register/login (default http://127.0.0.1:6258)
  --token-file PATH      where register/login save tokens; with join/list/--bots, join as that
                         account (access token refreshed when due) (default .sustenet-token.json)
  --pin NAME=SOURCE      pin a cluster's key by the cluster's NAME (or * for all); SOURCE a
                         .pub file or an http(s)/file URL; a bare --pin SOURCE means *=SOURCE;
                         host:port is refused (the address comes from the master) (repeatable)
  --request-key          ask clusters for their key and pin the first one seen
  --reconnect            rejoin when the cluster drops
  --timeout MS           connect / handshake / answer timeout (default 10000)
  --keepalive MS         ping period, 0 = none (default 10000)
  --bots N               number of bots
  --seconds S            how long each bot plays once joined (default 10)
  --interval MS          pace of the built-in scenarios: time between two rounds (default 250)
  --scenario NAME|PATH   what each bot does (default mixed): idle, chat, echo, walk (moves;
                         positions come back with [cluster.fragments] on), mixed (chat + echo),
                         or a module path/URL default-exporting (bot: BotContext) => … (see
                         client/bot_scenarios.ts; an http(s) module needs --allow-import)
  --json                 print the summary as one JSON object on stdout (progress: stderr)
  --log-level LEVEL      debug, info, warning or error (default warning)
  -h, --help             this text

Joined (join): each stdin line is one message
  TEXT                   chat (plugin command 0x81) to everyone on the cluster
  /cmd N TEXT            plugin command N (0x80..0xff, decimal or 0x hex) with TEXT as UTF-8
  /hex N HEX             plugin command N with the payload given as hex bytes ("" = empty)
  /move X Z | X Y Z [YAW] move (two numbers: on the ground, y = 0)
  //TEXT                 chat a line that starts with "/"
  Every message the cluster sends is printed: chat as "[client ID] text", any other command
  as "command 0xNN: text" (hex when the payload is not UTF-8), a command no plugin handles
  as "no plugin handles 0xNN", players coming into / out of view and corrections of your own
  position (with [cluster.fragments] on).`;

// A bad command line; the message says what is wrong (the one class every command shares).
export { UsageError };

/** What the command line asks for. */
export type CliCommand =
  | { readonly kind: "help" }
  | { readonly kind: "list" }
  | { readonly kind: "join"; readonly cluster: number | "auto" }
  | { readonly kind: "register"; readonly username: string }
  | { readonly kind: "login"; readonly username: string }
  | {
    readonly kind: "bots";
    readonly count: number;
    readonly seconds: number;
    readonly intervalMs: number;
    /** A built-in scenario's name or a module path / URL. */
    readonly scenario: string;
    /** Print the summary as JSON. */
    readonly json: boolean;
  };

/** The parsed command line. */
export interface CliArgs {
  /** What to do. */
  readonly command: CliCommand;
  /** Master host. */
  readonly host: string;
  /** Master port. */
  readonly port: number;
  /** Client options from the flags. */
  readonly client: Omit<SustenetClientOptions, "host" | "port">;
  /** Log threshold. */
  readonly logLevel: LogLevelName;
  /** The account service (register/login). */
  readonly authUrl: string;
  /** The token file; set when `--token-file` was given (join/list/bots use it). */
  readonly tokenFile: string | undefined;
}

function positiveNumber(flag: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (text.trim() === "" || !Number.isFinite(value) || value < 0) {
    throw new UsageError(`${flag} must be a number >= 0, got ${JSON.stringify(text)}`);
  }
  return value;
}

/**
 * Splits `host:port` (IPv6 in brackets: `[::1]:6256`).
 *
 * @param text The address.
 * @throws {UsageError} If it is not `host:port` with a port 1..65535.
 *
 * @example
 * ```ts
 * import { parseHostPort } from "./main.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(parseHostPort("127.0.0.1:6256"), { host: "127.0.0.1", port: 6256 });
 * assert.deepEqual(parseHostPort("[::1]:7000"), { host: "::1", port: 7000 });
 * assert.throws(() => parseHostPort("localhost"), /host:port/);
 * ```
 */
export function parseHostPort(text: string): { host: string; port: number } {
  const colon = text.lastIndexOf(":");
  const host = text.slice(0, colon).replace(/^\[(.*)\]$/, "$1");
  const port = Number(text.slice(colon + 1));
  if (colon <= 0 || host === "" || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new UsageError(`--master must be host:port with a port 1..65535, got ${text}`);
  }
  return { host, port };
}

function parsePins(values: readonly string[]): Record<string, PinnedKeySource> {
  const pins: Record<string, PinnedKeySource> = {};
  for (const value of values) {
    // A URL may hold "=" in its query: a value that starts with one is a bare SOURCE.
    const bare = /^(https?|file):/.test(value) || !value.includes("=");
    const eq = value.indexOf("=");
    const where = bare ? "*" : value.slice(0, eq);
    const source = bare ? value : value.slice(eq + 1);
    if (where === "" || source === "") {
      throw new UsageError(`--pin must be NAME=SOURCE or SOURCE, got ${JSON.stringify(value)}`);
    }
    if (looksLikeAddress(where)) {
      throw new UsageError(
        `--pin ${where}=…: pin a cluster by its name (see \`list\`), not host:port — the ` +
          "address is whatever the master passes on",
      );
    }
    pins[where] = /^(https?|file):/.test(source) ? { url: source } : { file: source };
  }
  return pins;
}

/**
 * Parses the command line of `deno task client`.
 *
 * @param args The arguments after the script.
 * @throws {UsageError} For an unknown flag, a bad value or a missing command.
 *
 * @example
 * ```ts
 * import { parseCliArgs } from "./main.ts";
 * import assert from "node:assert/strict";
 *
 * const args = parseCliArgs(["--master", "127.0.0.1:7000", "join", "3"]);
 * assert.deepEqual(args.command, { kind: "join", cluster: 3 });
 * assert.equal(args.port, 7000);
 * const bots = parseCliArgs(["--bots", "5", "--seconds", "2"]);
 * assert.deepEqual(bots.command, {
 *   kind: "bots", count: 5, seconds: 2, intervalMs: 250, scenario: "mixed", json: false,
 * });
 * assert.throws(() => parseCliArgs(["fly"]), /unknown command/);
 * ```
 */
export function parseCliArgs(args: readonly string[]): CliArgs {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...args],
      allowPositionals: true,
      strict: true,
      options: {
        master: { type: "string", multiple: true },
        credential: { type: "string" },
        "ca-cert": { type: "string", multiple: true },
        pin: { type: "string", multiple: true },
        "request-key": { type: "boolean" },
        reconnect: { type: "boolean" },
        timeout: { type: "string" },
        keepalive: { type: "string" },
        bots: { type: "string" },
        seconds: { type: "string" },
        interval: { type: "string" },
        scenario: { type: "string" },
        json: { type: "boolean" },
        "log-level": { type: "string" },
        auth: { type: "string" },
        "token-file": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (cause) {
    if (!(cause instanceof TypeError)) throw cause;
    throw new UsageError(cause.message);
  }
  const { values, positionals } = parsed;
  // --master may be repeated: masters sharing a registry, tried in order. A ws:// or wss:// URL
  // means everything over WebSocket (the URL wins over host and port); it stands alone.
  const masterTexts = values.master ?? ["127.0.0.1:6256"];
  const url = /^wss?:\/\//i.test(masterTexts[0]) ? masterTexts[0] : undefined;
  if (url !== undefined && !URL.canParse(url)) {
    throw new UsageError(`--master must be host:port or a ws:// URL, got ${url}`);
  }
  if (url !== undefined && masterTexts.length > 1) {
    throw new UsageError("--master: a ws:// URL cannot be combined with other masters");
  }
  const caFiles = values["ca-cert"];
  if (caFiles !== undefined && !/^wss:/i.test(url ?? "")) {
    throw new UsageError("--ca-cert goes with a wss:// --master");
  }
  const caCerts = caFiles?.map((file) => {
    try {
      return Deno.readTextFileSync(file);
    } catch (cause) {
      throw new UsageError(
        `--ca-cert: cannot read ${file}: ${cause instanceof Error ? cause.message : cause}`,
      );
    }
  });
  const masterList = url === undefined
    ? masterTexts.map(parseHostPort)
    : [{ host: new URL(url).hostname, port: Number(new URL(url).port || 80) }];
  const { host, port } = masterList[0];
  const logLevel = values["log-level"] ?? "warning";
  if (!["debug", "info", "warning", "error"].includes(logLevel)) {
    throw new UsageError(`--log-level must be debug, info, warning or error, got ${logLevel}`);
  }
  const timeoutMs = positiveNumber("--timeout", values.timeout, 10_000);
  const client: Omit<SustenetClientOptions, "host" | "port"> = {
    ...(url === undefined ? {} : { url }),
    ...(caCerts === undefined ? {} : { caCerts }),
    timeoutMs: timeoutMs === 0 ? 10_000 : timeoutMs,
    keepaliveMs: positiveNumber("--keepalive", values.keepalive, 10_000),
    ...(masterList.length > 1 ? { masters: masterList.slice(1) } : {}),
    ...(values.credential === undefined ? {} : { credential: values.credential }),
    ...(values.pin === undefined ? {} : { pinnedKeys: parsePins(values.pin) }),
    ...(values["request-key"] === true ? { requestKey: true } : {}),
    ...(values.reconnect === true ? { reconnect: { enabled: true } } : {}),
  };
  if (values.bots === undefined && (values.scenario !== undefined || values.json === true)) {
    throw new UsageError("--scenario and --json go with --bots N");
  }
  let command: CliCommand;
  if (values.help === true) {
    command = { kind: "help" };
  } else if (values.bots !== undefined) {
    const count = positiveNumber("--bots", values.bots, 0);
    if (!Number.isInteger(count) || count < 1) {
      throw new UsageError(`--bots must be an integer >= 1, got ${values.bots}`);
    }
    const seconds = positiveNumber("--seconds", values.seconds, 10);
    if (seconds <= 0) throw new UsageError("--seconds must be > 0");
    const intervalMs = Math.max(1, positiveNumber("--interval", values.interval, 250));
    if (positionals.length > 0) throw new UsageError("--bots takes no command");
    const scenario = values.scenario ?? "mixed";
    if (scenario === "") throw new UsageError("--scenario must name a scenario or a module");
    command = { kind: "bots", count, seconds, intervalMs, scenario, json: values.json === true };
  } else if (positionals[0] === "list" && positionals.length === 1) {
    command = { kind: "list" };
  } else if (positionals[0] === "join" && positionals.length <= 2) {
    const target = positionals[1] ?? "auto";
    const id = Number(target);
    if (target !== "auto" && (!Number.isInteger(id) || id < 1 || id > 0xffff_ffff)) {
      throw new UsageError(`join takes a cluster id or auto, got ${target}`);
    }
    command = { kind: "join", cluster: target === "auto" ? "auto" : id };
  } else if (
    (positionals[0] === "register" || positionals[0] === "login") && positionals.length === 2
  ) {
    const username = positionals[1] ?? "";
    command = positionals[0] === "register"
      ? { kind: "register", username }
      : { kind: "login", username };
  } else if (positionals.length === 0) {
    throw new UsageError("missing command: list, join or --bots N");
  } else {
    throw new UsageError(`unknown command: ${positionals.join(" ")}`);
  }
  const authUrl = values.auth ?? DEFAULT_AUTH_URL;
  if (!/^https?:\/\//.test(authUrl) || !URL.canParse(authUrl)) {
    throw new UsageError(`--auth must be an http(s) URL, got ${authUrl}`);
  }
  const tokenFile = values["token-file"];
  return { command, host, port, client, logLevel: logLevel as LogLevelName, authUrl, tokenFile };
}

/**
 * Formats clusters as an aligned table.
 *
 * @param clusters From `listClusters()`.
 *
 * @example
 * ```ts
 * import { formatClusterTable } from "./main.ts";
 * import assert from "node:assert/strict";
 *
 * const lines = formatClusterTable([{
 *   id: 1, name: "eu-1", host: "127.0.0.1", port: 6257, load: 2, maxConnections: 10,
 *   keyVersion: 7, full: false,
 * }]);
 * assert.match(lines[0], /^ID +NAME +ADDRESS +LOAD +FULL$/);
 * assert.match(lines[1], /^1 +eu-1 +127\.0\.0\.1:6257 +2\/10 +no$/);
 * ```
 */
export function formatClusterTable(clusters: readonly ClusterInfo[]): string[] {
  const rows = [
    ["ID", "NAME", "ADDRESS", "LOAD", "FULL"],
    ...clusters.map((c) => [
      String(c.id),
      c.name,
      `${c.host}:${c.port}`,
      `${c.load}/${c.maxConnections === 0 ? "∞" : c.maxConnections}`,
      c.full ? "yes" : "no",
    ]),
  ];
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  return rows.map((row) =>
    row.map((cell, i) => i === row.length - 1 ? cell : cell.padEnd(widths[i])).join("  ")
  );
}

/**
 * Describes a message from the cluster for the terminal: chat lines as `[client N] text`,
 * chat refusals, other commands as text (or hex if they are not UTF-8).
 *
 * @param command The plugin command.
 * @param payload Its payload.
 *
 * @example
 * ```ts
 * import { describeMessage } from "./main.ts";
 * import assert from "node:assert/strict";
 *
 * const chat = new Uint8Array([0, 0, 0, 3, ...new TextEncoder().encode("hi")]);
 * assert.equal(describeMessage(0x81, chat), "[client 3] hi");
 * assert.equal(describeMessage(0x90, new Uint8Array([0xff])), "command 0x90: ff");
 * ```
 */
export function describeMessage(command: number, payload: Uint8Array): string {
  if (command === CHAT_COMMAND && payload.length >= 4) {
    const sender = new DataView(payload.buffer, payload.byteOffset).getUint32(0);
    return `[client ${sender}] ${new TextDecoder().decode(payload.subarray(4))}`;
  }
  if (command === CHAT_REFUSED_COMMAND) {
    return `chat refused: ${new TextDecoder().decode(payload)}`;
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(payload);
  } catch (error) {
    if (!(error instanceof TypeError)) throw error;
    text = payload.toHex(); // not text: show the bytes
  }
  return `command 0x${command.toString(16)}: ${text}`;
}

/** One stdin line of `join`: a plugin message to send, or why the line cannot be sent. */
export type InputLine =
  | { readonly kind: "send"; readonly command: number; readonly payload: Uint8Array }
  | { readonly kind: "move"; readonly state: MoveState }
  | { readonly kind: "invalid"; readonly reason: string };

function pluginCommand(text: string): number | undefined {
  const value = /^0x[0-9a-f]{1,2}$/i.test(text)
    ? parseInt(text.slice(2), 16)
    : /^[0-9]{1,3}$/.test(text)
    ? Number(text)
    : Number.NaN;
  return value >= 0x80 && value <= 0xff ? value : undefined;
}

/**
 * Turns a stdin line of `join` into the plugin message it asks for: plain text is chat
 * (0x81), `/cmd N text` and `/hex N hex` send any plugin command 0x80..0xff, `//text` chats a
 * line starting with "/".
 *
 * @param line One line without its newline.
 *
 * @example
 * ```ts
 * import { parseInputLine } from "./main.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(parseInputLine("hi"), {
 *   kind: "send", command: 0x81, payload: new TextEncoder().encode("hi"),
 * });
 * assert.deepEqual(parseInputLine("/cmd 0x80 ping me"), {
 *   kind: "send", command: 0x80, payload: new TextEncoder().encode("ping me"),
 * });
 * assert.deepEqual(parseInputLine("/hex 200 ff00"), {
 *   kind: "send", command: 200, payload: new Uint8Array([0xff, 0]),
 * });
 * assert.equal(parseInputLine("/cmd 0x10 x").kind, "invalid"); // below the plugin range
 * assert.equal(parseInputLine("/hex 0x80 abc").kind, "invalid"); // odd number of digits
 * assert.deepEqual(parseInputLine("/move 10 -2.5"), { kind: "move", state: { x: 10, y: 0, z: -2.5 } });
 * assert.deepEqual(parseInputLine("/move 1 2 3 1.57"), {
 *   kind: "move", state: { x: 1, y: 2, z: 3, yaw: 1.57 },
 * });
 * ```
 */
export function parseInputLine(line: string): InputLine {
  const encoder = new TextEncoder();
  if (!line.startsWith("/")) {
    return { kind: "send", command: CHAT_COMMAND, payload: encoder.encode(line) };
  }
  if (line.startsWith("//")) {
    return { kind: "send", command: CHAT_COMMAND, payload: encoder.encode(line.slice(1)) };
  }
  if (/^\/move(\s|$)/.test(line)) return parseMove(line.slice(5).trim());
  const match = /^\/(cmd|hex)\s+(\S+)(?:\s(.*))?$/.exec(line);
  if (match === null) {
    return {
      kind: "invalid",
      reason: "use /cmd N TEXT, /hex N HEX, /move X Z, /move X Y Z [YAW], or //TEXT to chat a /",
    };
  }
  const [, verb, commandText, rest = ""] = match;
  const command = pluginCommand(commandText);
  if (command === undefined) {
    return {
      kind: "invalid",
      reason: `N must be a plugin command 0x80..0xff, got ${JSON.stringify(commandText)}`,
    };
  }
  if (verb === "cmd") return { kind: "send", command, payload: encoder.encode(rest) };
  const hex = rest.replace(/\s+/g, "");
  if (!/^(?:[0-9a-f]{2})*$/i.test(hex)) {
    return { kind: "invalid", reason: "HEX must be pairs of hex digits" };
  }
  return { kind: "send", command, payload: Uint8Array.fromHex(hex) };
}

function parseMove(text: string): InputLine {
  const numbers = text === "" ? [] : text.split(/\s+/).map(Number);
  if (numbers.length < 2 || numbers.length > 4 || !numbers.every(Number.isFinite)) {
    return { kind: "invalid", reason: "use /move X Z (on the ground) or /move X Y Z [YAW]" };
  }
  if (numbers.length === 2) return { kind: "move", state: { x: numbers[0], y: 0, z: numbers[1] } };
  const [x, y, z, yaw] = numbers;
  return { kind: "move", state: yaw === undefined ? { x, y, z } : { x, y, z, yaw } };
}

async function listCommand(client: SustenetClient): Promise<number> {
  const clusters = await client.listClusters();
  if (clusters.length === 0) console.log("no clusters");
  else for (const line of formatClusterTable(clusters)) console.log(line);
  return 0;
}

/** Sends each stdin line (see {@linkcode parseInputLine}) until stdin ends or the session does. */
async function chatFromStdin(session: ClusterSession): Promise<void> {
  const reader = Deno.stdin.readable.pipeThrough(new TextDecoderStream()).getReader();
  let reading = true;
  // A session that ends (kicked, cluster stopped) stops the wait for the next line.
  session.closed.then(() => reading ? reader.cancel() : undefined).catch((error: unknown) => {
    console.error(`stdin: ${error instanceof Error ? error.message : String(error)}`);
  });
  let buffered = "";
  while (session.status !== "closed") {
    const { value, done } = await reader.read();
    if (done) break;
    buffered += value;
    let newline: number;
    while ((newline = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, newline).replace(/\r$/, "");
      buffered = buffered.slice(newline + 1);
      if (line.length === 0 || session.status !== "joined") continue;
      const input = parseInputLine(line);
      if (input.kind === "send") session.send(input.command, input.payload);
      else if (input.kind === "move") session.move(input.state);
      else console.error(`not sent: ${input.reason}`);
    }
  }
  reading = false;
  reader.releaseLock();
}

function formatPosition(state: MoveState): string {
  return `(${[state.x, state.y, state.z].map((v) => Number(v.toFixed(2))).join(", ")})`;
}

async function joinCommand(client: SustenetClient, cluster: number | "auto"): Promise<number> {
  const session = await client.join(cluster);
  console.log(
    `joined ${session.serverName} (cluster ${session.clusterId}) as client ` +
      `${session.clientId}; type a line to chat (/cmd N TEXT, /hex N HEX for other ` +
      `commands), Ctrl-D to leave`,
  );
  session.on("message", ({ command, payload }) => console.log(describeMessage(command, payload)));
  session.on("spawn", ({ clientId, playerId, state }) => {
    console.log(`[client ${clientId}] ${playerId} came into view at ${formatPosition(state)}`);
  });
  session.on("despawn", ({ clientId }) => console.log(`[client ${clientId}] left the view`));
  session.on("moves", ({ entries }) => {
    // Others' positions stream at the tick rate; only a correction of one's own is news.
    for (const entry of entries) {
      if (entry.clientId === session.clientId) {
        console.log(`position corrected to ${formatPosition(entry.state)}`);
      }
    }
  });
  session.on("unhandled", ({ command, reason }) => {
    console.error(
      command === undefined ? reason : `no plugin handles 0x${command.toString(16)}`,
    );
  });
  session.on("disconnect", ({ reason, reconnecting }) => {
    console.error(`disconnected: ${reason}${reconnecting ? " (reconnecting)" : ""}`);
  });
  session.on("reconnect", ({ clusterId, clientId }) => {
    console.error(`rejoined cluster ${clusterId} as client ${clientId}`);
  });
  const removeSignals = onShutdownSignal(async () => {
    await session.leave();
    await client.close();
  });
  try {
    await chatFromStdin(session);
    const ended = session.status === "closed";
    await session.leave();
    if (!ended) return 0;
    const error = await session.closed;
    console.error(`session ended: ${error.code}: ${error.message}`);
    return 1;
  } finally {
    removeSignals();
  }
}

async function botsCommand(args: CliArgs, command: CliCommand & { kind: "bots" }): Promise<number> {
  let scenario;
  try {
    scenario = await loadScenario(command.scenario);
  } catch (error) {
    if (!(error instanceof TypeError)) throw error;
    console.error(`error: ${error.message}`);
    return 2;
  }
  const run = startBots({
    master: { host: args.host, port: args.port },
    count: command.count,
    seconds: command.seconds,
    intervalMs: command.intervalMs,
    scenario,
    client: args.client,
  });
  // Progress goes where it does not mix with the result: stderr when stdout carries JSON.
  const out = command.json ? Deno.stderr : Deno.stdout;
  const tty = out.isTerminal();
  const encoder = new TextEncoder();
  let previous: BotStatus | undefined;
  const timer = setInterval(() => {
    const status = run.status();
    const line = formatBotStatus(status, previous, run.rtt());
    previous = status;
    // On a terminal one line is rewritten in place; elsewhere a plain line per second.
    out.writeSync(encoder.encode(tty ? `\r\x1b[2K${line}` : `${line}\n`));
  }, tty ? 250 : 1000);
  const removeSignals = onShutdownSignal(async () => {
    run.stop();
    await run.done;
  });
  try {
    const summary = await run.done;
    if (tty) out.writeSync(encoder.encode("\r\x1b[2K"));
    if (command.json) {
      console.log(JSON.stringify(loadSummaryJson(summary, command.scenario)));
    } else {
      for (const line of formatLoadSummary(summary)) console.log(line);
    }
    return loadTestPassed(summary, command.count) ? 0 : 1;
  } finally {
    clearInterval(timer);
    removeSignals();
  }
}

/** Every bot joined, nothing failed, and if anything was sent, something came back. */
function loadTestPassed(summary: BotSummary, count: number): boolean {
  const { joined, errors, sent, received } = summary.status;
  return joined === count && errors === 0 && (sent === 0 || received > 0);
}

/**
 * Runs the command line and returns the exit code.
 *
 * @param args The arguments after the script.
 *
 * @example Help needs no master
 * ```ts
 * import { main } from "./main.ts";
 * import assert from "node:assert/strict";
 *
 * const log = console.log;
 * console.log = () => {};
 * try {
 *   assert.equal(await main(["--help"]), 0);
 * } finally {
 *   console.log = log;
 * }
 * ```
 */
export async function main(args: readonly string[]): Promise<number> {
  let cli: CliArgs;
  try {
    cli = parseCliArgs(args);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`${error.message}\n\n${USAGE}`);
    return 2;
  }
  const { command } = cli;
  if (command.kind === "help") {
    console.log(USAGE);
    return 0;
  }
  await setupLogging({ level: cli.logLevel, role: "client" });
  if (command.kind === "register" || command.kind === "login") {
    return await accountCommand(
      command.kind,
      command.username,
      cli.authUrl,
      cli.tokenFile ?? DEFAULT_TOKEN_FILE,
    );
  }
  if (cli.tokenFile !== undefined) {
    try {
      cli = {
        ...cli,
        client: { ...cli.client, credential: await tokenFileCredential(cli.tokenFile) },
      };
    } catch (error) {
      if (!(error instanceof AuthRequestError)) throw error;
      console.error(`error: ${error.code}: ${error.message} (log in again)`);
      return 1;
    }
  }
  if (command.kind === "bots") return await botsCommand(cli, command);
  let client: SustenetClient | undefined;
  try {
    client = await SustenetClient.connect({ ...cli.client, host: cli.host, port: cli.port });
    return command.kind === "list"
      ? await listCommand(client)
      : await joinCommand(client, command.cluster);
  } catch (error) {
    if (!(error instanceof ClientError)) throw error;
    console.error(`error: ${error.code}: ${error.message}`);
    return 1;
  } finally {
    await client?.close();
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
