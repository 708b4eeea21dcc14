// This module is browser compatible.
/**
 * Sustenet's logging: LogTape loggers per role (`["sustenet", role, ...]`), the Rust crate's
 * "success" level, one console line format, and {@linkcode redact}.
 *
 * **Rule: no secret is ever formatted into a log line.** Keys, passphrases, tickets, session
 * keys and credentials reach a log only through {@linkcode redact}. As a second line of defence
 * the console formatter prints any binary value (`Uint8Array`, `ArrayBuffer`, …) as its length,
 * never its bytes, and escapes control characters so a peer-supplied string cannot forge lines
 * or terminal escapes.
 *
 * Library-first: importing this module, or any Sustenet module, configures nothing. Only
 * {@linkcode setupLogging} (called by a role's `main.ts`, or by an embedder that wants our
 * format) configures LogTape. This module must never configure LogTape at import time.
 *
 * Uses no Deno API except an optional, guarded look at `Deno.stdout` to pick colours.
 *
 * @module
 */

import { configure, getLogger } from "@logtape/logtape";
import type { Logger, LogLevel, LogRecord, Sink } from "@logtape/logtape";

export type { Logger, LogRecord, Sink } from "@logtape/logtape";
import { LOG_LEVEL_NAMES, type LogLevelName } from "./log_level_name.ts";

/**
 * The roles a log category starts with (after `"sustenet"`).
 *
 * @example
 * ```ts
 * import { type LogRole, type LogSinkRecord, roleLogger, setupLogging } from "./logging.ts";
 * import { reset } from "@logtape/logtape";
 * import assert from "node:assert/strict";
 *
 * // Plugins' lines at debug, every other role's at warning.
 * const seen: LogSinkRecord[] = [];
 * const chatty: LogRole = "plugin";
 * const quiet = { debug() {}, info() {}, warn() {}, error() {} };
 * await setupLogging({
 *   level: "warning",
 *   roleLevels: { [chatty]: "debug" },
 *   sinks: { memory: (record) => seen.push(record) },
 *   console: quiet,
 * });
 * roleLogger("plugin").debug("kept");
 * roleLogger("cluster").info("dropped");
 * assert.deepEqual(seen.map((r) => r.category), [["sustenet", "plugin"]]);
 * await reset();
 * ```
 */
export type LogRole = "master" | "cluster" | "client" | "system" | "plugin" | "auth";

/**
 * Every {@linkcode LogRole}, in a fixed order.
 *
 * @example
 * ```ts
 * import { LOG_ROLES } from "./logging.ts";
 * import assert from "node:assert/strict";
 *
 * assert.ok(LOG_ROLES.includes("plugin"));
 * ```
 */
export const LOG_ROLES: readonly LogRole[] = Object.freeze([
  "master",
  "cluster",
  "client",
  "system",
  "plugin",
  "auth",
]);

export { LOG_LEVEL_NAMES, type LogLevelName } from "./log_level_name.ts";

/**
 * Returns the LogTape logger of a role, category `["sustenet", role, ...sub]`.
 *
 * @param role The role the code belongs to.
 * @param sub Optional sub-categories, e.g. `"link"`, `"fragments"`.
 *
 * @example
 * ```ts
 * import { roleLogger } from "./logging.ts";
 * import assert from "node:assert/strict";
 *
 * const log = roleLogger("cluster", "link");
 * assert.deepEqual(log.category, ["sustenet", "cluster", "link"]);
 * log.info("not configured yet, so this goes nowhere");
 * ```
 */
export function roleLogger(role: LogRole, ...sub: string[]): Logger {
  return getLogger(["sustenet", role, ...sub]);
}

/**
 * Logs the Rust crate's "success" level: an info record with property `success: true`, shown
 * as `SUCCESS` (green on a terminal) by the console format.
 *
 * @param logger The logger to write to.
 * @param message A LogTape message template (`{name}` placeholders read `props`).
 * @param props Structured properties of the record.
 *
 * @example
 * ```ts
 * import { logSuccess, roleLogger } from "./logging.ts";
 *
 * logSuccess(roleLogger("master"), "cluster {name} registered", { name: "eu-1" });
 * ```
 */
export function logSuccess(
  logger: Logger,
  message: string,
  props?: Readonly<Record<string, unknown>>,
): void {
  logger.info(message, { ...props, success: true });
}

/**
 * Replaces a secret-bearing value by a placeholder; the one way such a value may reach a log.
 * Bytes show their length (key sizes are public); strings show nothing, because the length of
 * a password or passphrase narrows guessing.
 *
 * @param value The secret (key bytes, passphrase, ticket, …).
 * @returns `"[redacted N bytes]"` for bytes, `"[redacted string]"` for a string.
 *
 * @example
 * ```ts
 * import { redact } from "./logging.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(redact(new Uint8Array(32)), "[redacted 32 bytes]");
 * assert.equal(redact("hunter2"), "[redacted string]");
 * ```
 */
export function redact(value: string | Uint8Array): string {
  return typeof value === "string" ? "[redacted string]" : `[redacted ${value.byteLength} bytes]`;
}

/**
 * Options of {@linkcode formatLogRecord}.
 *
 * @example
 * ```ts
 * import type { LogLineOptions } from "./logging.ts";
 * import assert from "node:assert/strict";
 *
 * const options: LogLineOptions = { color: false, role: "master" };
 * assert.equal(options.role, "master");
 * ```
 */
export interface LogLineOptions {
  /**
   * Wrap the level label (and dim the time) in ANSI colours.
   * @default {false}
   */
  readonly color?: boolean;
  /**
   * Role shown for records whose category names none (just `["sustenet"]`).
   * @default {"sustenet"}
   */
  readonly role?: LogRole;
}

const ANSI_RESET = "\x1b[0m";
const ANSI_DIM = "\x1b[2m";
const LEVEL_COLORS: Readonly<Record<string, string>> = {
  TRACE: "\x1b[90m",
  DEBUG: "\x1b[90m",
  INFO: "\x1b[36m",
  SUCCESS: "\x1b[32m",
  WARNING: "\x1b[33m",
  ERROR: "\x1b[31m",
  FATAL: "\x1b[1;31m",
};
const LEVEL_WIDTH = 7; // "SUCCESS" and "WARNING"
const ROLE_WIDTH = 7; // "cluster", the longest role

// C0, DEL, C1 and the two JavaScript line separators: anything that could end a line or start a
// terminal escape sequence.
// deno-lint-ignore no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;

function escapeControls(text: string): string {
  return text.replace(
    CONTROL_CHARS,
    (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

function byteLengthOf(value: unknown): number | null {
  if (value instanceof ArrayBuffer || value instanceof SharedArrayBuffer) return value.byteLength;
  if (ArrayBuffer.isView(value)) return value.byteLength;
  return null;
}

function jsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value === "bigint") return `${value}n`;
  const bytes = byteLengthOf(value);
  return bytes === null ? value : `[${bytes} bytes]`;
}

function renderValue(value: unknown): string {
  if (typeof value === "string") return value;
  const bytes = byteLengthOf(value);
  if (bytes !== null) return `[${bytes} bytes]`;
  if (value instanceof Error) return `${value.name}: ${value.message}`;
  if (typeof value === "object" && value !== null) {
    try {
      return JSON.stringify(value, jsonReplacer) ?? String(value);
    } catch (err) {
      // Circular or hostile objects: say what failed instead of losing the whole record.
      return `[unrenderable object: ${err instanceof Error ? err.message : String(err)}]`;
    }
  }
  return String(value);
}

function levelLabel(record: LogRecord): string {
  if (record.level === "info" && record.properties.success === true) return "SUCCESS";
  return record.level.toUpperCase();
}

function roleOf(category: readonly string[], fallback: string): string {
  if (category[0] !== "sustenet") return category.join(".");
  return category[1] ?? fallback;
}

/**
 * Formats one record as the console line `2026-11-25T14:00:00.000Z INFO    cluster  message`:
 * ISO time, level (`SUCCESS` for {@linkcode logSuccess}), role, message. Binary values print
 * as their length and control characters are escaped, so one record is always one line.
 *
 * @param record The LogTape record.
 * @param options Colour and fallback role.
 *
 * @example
 * ```ts
 * import { formatLogRecord } from "./logging.ts";
 * import assert from "node:assert/strict";
 *
 * const line = formatLogRecord({
 *   category: ["sustenet", "cluster"],
 *   level: "info",
 *   message: ["joined with key ", new Uint8Array(32), ""],
 *   rawMessage: "joined with key {key}",
 *   timestamp: Date.UTC(2026, 10, 25, 14),
 *   properties: {},
 * });
 * assert.equal(line, "2026-11-25T14:00:00.000Z INFO    cluster  joined with key [32 bytes]");
 * ```
 */
export function formatLogRecord(record: LogRecord, options: LogLineOptions = {}): string {
  const time = new Date(record.timestamp).toISOString();
  const label = levelLabel(record);
  const role = escapeControls(roleOf(record.category, options.role ?? "sustenet"));
  let message = "";
  for (let i = 0; i < record.message.length; i++) {
    const part = record.message[i];
    // Even slots are template text, odd slots are interpolated values.
    message += i % 2 === 0 && typeof part === "string" ? part : renderValue(part);
  }
  message = escapeControls(message);
  const level = label.padEnd(LEVEL_WIDTH);
  if (options.color !== true) return `${time} ${level} ${role.padEnd(ROLE_WIDTH)}  ${message}`;
  const color = LEVEL_COLORS[label] ?? "";
  return `${ANSI_DIM}${time}${ANSI_RESET} ${color}${level}${ANSI_RESET} ${
    role.padEnd(ROLE_WIDTH)
  }  ${message}`;
}

/**
 * The console line format (Config.toml `log_format`): `text` ({@linkcode formatLogRecord}) or
 * `json` ({@linkcode formatLogRecordJson}, one JSON object per line).
 *
 * @example
 * ```ts
 * import { LOG_FORMATS, type LogFormat } from "./logging.ts";
 * import assert from "node:assert/strict";
 *
 * const format: LogFormat = "json";
 * assert.ok(LOG_FORMATS.includes(format));
 * ```
 */
export type LogFormat = "text" | "json";

/** Every {@linkcode LogFormat}. */
export const LOG_FORMATS: readonly LogFormat[] = Object.freeze(["text", "json"]);

/**
 * Formats one record as a JSON line: `time` (ISO), `level` (`success` for
 * {@linkcode logSuccess}), `category` (dotted), `message` (rendered, as in the text format) and
 * `properties` (binary values as their length, errors as name and message). Never more than one
 * line: JSON escapes every control character.
 *
 * @param record The LogTape record.
 *
 * @example
 * ```ts
 * import { formatLogRecordJson } from "./logging.ts";
 * import assert from "node:assert/strict";
 *
 * const line = formatLogRecordJson({
 *   category: ["sustenet", "cluster"],
 *   level: "info",
 *   message: ["player ", "p1\n<x>", " joined"],
 *   rawMessage: "player {id} joined",
 *   timestamp: Date.UTC(2026, 10, 25, 14),
 *   properties: { id: "p1\n<x>", key: new Uint8Array(32) },
 * });
 * assert.deepEqual(JSON.parse(line), {
 *   time: "2026-11-25T14:00:00.000Z",
 *   level: "info",
 *   category: "sustenet.cluster",
 *   message: "player p1\n<x> joined",
 *   properties: { id: "p1\n<x>", key: "[32 bytes]" },
 * });
 * assert.ok(!line.includes("\n"));
 * ```
 */
export function formatLogRecordJson(record: LogRecord): string {
  let message = "";
  for (let i = 0; i < record.message.length; i++) {
    const part = record.message[i];
    message += i % 2 === 0 && typeof part === "string" ? part : renderValue(part);
  }
  const properties: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(record.properties)) {
    if (key === "success") continue;
    properties[key] = value instanceof Error ? `${value.name}: ${value.message}` : value;
  }
  const level = levelLabel(record).toLowerCase();
  try {
    return JSON.stringify({
      time: new Date(record.timestamp).toISOString(),
      level,
      category: record.category.join("."),
      message,
      properties,
    }, jsonReplacer).replace(/[\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16)}`);
  } catch (err) {
    // Circular or hostile properties: keep the record, say what failed.
    return JSON.stringify({
      time: new Date(record.timestamp).toISOString(),
      level,
      category: record.category.join("."),
      message,
      properties: { unrenderable: err instanceof Error ? err.message : String(err) },
    });
  }
}

/**
 * Options of {@linkcode setupLogging}.
 *
 * @example
 * ```ts
 * import { roleLogger, setupLogging, type SetupLoggingOptions } from "./logging.ts";
 * import { reset } from "@logtape/logtape";
 * import assert from "node:assert/strict";
 *
 * // JSON lines, captured instead of written to stderr.
 * const lines: string[] = [];
 * const capture = (line: string) => lines.push(line);
 * const options: SetupLoggingOptions = {
 *   level: "info",
 *   role: "master",
 *   format: "json",
 *   console: { debug: capture, info: capture, warn: capture, error: capture },
 * };
 * await setupLogging(options);
 * roleLogger("master").info("listening");
 * assert.equal(JSON.parse(lines[0]).message, "listening");
 * await reset();
 * ```
 */
export interface SetupLoggingOptions {
  /** Lowest level written, for every role not in `roleLevels`. */
  readonly level: LogLevelName;
  /** The process's role, shown for records logged under plain `["sustenet"]`. */
  readonly role?: LogRole;
  /** Per-role thresholds overriding `level`, e.g. `{ plugin: "warning" }`. */
  readonly roleLevels?: Readonly<Partial<Record<LogRole, LogLevelName>>>;
  /**
   * Extra LogTape sinks (a plugin host, an embedder) receiving the same Sustenet records as
   * the console. The name `"console"` is reserved.
   */
  readonly sinks?: Readonly<Record<string, LogSink>>;
  /**
   * Colour the console lines (text format only).
   * @default {true when stderr is a terminal and NO_COLOR is unset}
   */
  readonly color?: boolean;
  /**
   * Line format.
   * @default {"text"}
   */
  readonly format?: LogFormat;
  /**
   * The console the console sink writes to (debug/info → `debug`/`info`, warning → `warn`,
   * error → `error`).
   * @default {every level on stderr (`console.warn` for warnings, else `console.error`), so
   * stdout carries only the ready line}
   */
  readonly console?: LogConsole;
}

/** A log level as records carry it: LogTape's levels, `trace` and `fatal` included. */
export type LogRecordLevel = "trace" | "debug" | "info" | "warning" | "error" | "fatal";

/**
 * One log record as a sink receives it: LogTape's `LogRecord`, restated here so the package's
 * public API does not hand out LogTape's own types (they are LogTape's to change).
 *
 * @example A sink that keeps the messages of warnings and errors
 * ```ts
 * import type { LogSink } from "./logging.ts";
 * import assert from "node:assert/strict";
 *
 * const problems: string[] = [];
 * const sink: LogSink = (record) => {
 *   if (record.level === "warning" || record.level === "error") {
 *     problems.push(record.message.join(""));
 *   }
 * };
 * sink({
 *   category: ["sustenet", "cluster"],
 *   level: "warning",
 *   message: ["master ", "127.0.0.1:6256", " unreachable"],
 *   rawMessage: "master {addr} unreachable",
 *   timestamp: Date.now(),
 *   properties: { addr: "127.0.0.1:6256" },
 * });
 * assert.deepEqual(problems, ["master 127.0.0.1:6256 unreachable"]);
 * ```
 */
export interface LogSinkRecord {
  /** Category, e.g. `["sustenet", "cluster"]`. */
  readonly category: readonly string[];
  /** Severity. */
  readonly level: LogRecordLevel;
  /** The message: text parts interleaved with the values put in it. */
  readonly message: readonly unknown[];
  /** The message template before the values were put in. */
  readonly rawMessage: string | TemplateStringsArray;
  /** When it was logged, in ms since the epoch. */
  readonly timestamp: number;
  /** Structured fields of the record. */
  readonly properties: Record<string, unknown>;
}

/** A destination of log records (a LogTape sink): called once per record that passes. */
export type LogSink = (record: LogSinkRecord) => void;

/**
 * The part of `console` the console sink writes to.
 *
 * @example
 * ```ts
 * import type { LogConsole } from "./logging.ts";
 * import assert from "node:assert/strict";
 *
 * const lines: string[] = [];
 * const capture: LogConsole = {
 *   debug: (line) => lines.push(line),
 *   info: (line) => lines.push(line),
 *   warn: (line) => lines.push(line),
 *   error: (line) => lines.push(line),
 * };
 * capture.info("x");
 * assert.deepEqual(lines, ["x"]);
 * ```
 */
export type LogConsole = Pick<Console, "debug" | "info" | "warn" | "error">;

/**
 * Logs go to stderr: stdout is for the ready line (OPERATIONS.md) and a CLI's own output.
 * Warnings use `console.warn` (stderr too) so Deno's OTel console capture exports them with
 * severity WARN; debug and info can only reach stderr through `console.error` (Deno's `debug`,
 * `info` and `log` write to stdout), so their OTel severity reads ERROR: the true level is in
 * the line (OPERATIONS.md "OpenTelemetry logs").
 */
const STDERR_CONSOLE: LogConsole = {
  debug: (...data) => console.error(...data),
  info: (...data) => console.error(...data),
  warn: (...data) => console.warn(...data),
  error: (...data) => console.error(...data),
};

function consoleSinkOf(
  target: LogConsole,
  lineOptions: LogLineOptions,
  format: LogFormat,
): Sink {
  return (record) => {
    const line = format === "json"
      ? formatLogRecordJson(record)
      : formatLogRecord(record, lineOptions);
    switch (record.level) {
      case "trace":
      case "debug":
        target.debug(line);
        break;
      case "info":
        target.info(line);
        break;
      case "warning":
        target.warn(line);
        break;
      case "error":
      case "fatal":
        target.error(line);
        break;
    }
  };
}

interface DenoTerminalView {
  readonly noColor: boolean;
  readonly stderr: { isTerminal(): boolean };
}

function stderrWantsColor(): boolean {
  // Guarded so this module still loads in a browser or edge runtime.
  const deno = (globalThis as { Deno?: DenoTerminalView }).Deno;
  return deno !== undefined && !deno.noColor && deno.stderr.isTerminal();
}

/**
 * Configures LogTape for a Sustenet process: a console sink with {@linkcode formatLogRecord}
 * plus any extra sinks, for categories under `["sustenet"]`, and LogTape's own meta logger at
 * warning level on the console (so a failing sink is reported, not silent). Calling it again
 * replaces the previous configuration (LogTape `reset: true`), so a process can change its
 * level; call LogTape's `reset()` to remove it.
 *
 * @param options Level, role, extra sinks and colour.
 * @throws {TypeError} When an extra sink is named `"console"` or a level is not a
 * {@linkcode LogLevelName}.
 *
 * @example
 * ```ts
 * import { type LogSinkRecord, roleLogger, setupLogging } from "./logging.ts";
 * import { reset } from "@logtape/logtape";
 * import assert from "node:assert/strict";
 *
 * const seen: LogSinkRecord[] = [];
 * const quiet = { debug() {}, info() {}, warn() {}, error() {} };
 * await setupLogging({ level: "info", sinks: { memory: (r) => seen.push(r) }, console: quiet });
 * roleLogger("master").debug("filtered out");
 * roleLogger("master").info("kept");
 * assert.equal(seen.length, 1);
 * await reset();
 * ```
 */
export async function setupLogging(options: SetupLoggingOptions): Promise<void> {
  const extra = options.sinks ?? {};
  if (Object.hasOwn(extra, "console")) {
    throw new TypeError('setupLogging: the sink name "console" is reserved');
  }
  checkLevel(options.level, "level");
  const lineOptions: LogLineOptions = {
    color: options.color ?? stderrWantsColor(),
    ...(options.role === undefined ? {} : { role: options.role }),
  };
  const format = options.format ?? "text";
  if (!LOG_FORMATS.includes(format)) {
    throw new TypeError(
      `setupLogging: format must be "text" or "json", got ${JSON.stringify(format)}`,
    );
  }
  const consoleSink = consoleSinkOf(options.console ?? STDERR_CONSOLE, lineOptions, format);
  const sinks: Record<string, Sink> = { console: consoleSink, ...extra };
  const sinkIds = Object.keys(sinks);
  const roleLevels = options.roleLevels ?? {};
  const roleLoggers = LOG_ROLES.map((role) => {
    const level = roleLevels[role] ?? options.level;
    checkLevel(level, `roleLevels.${role}`);
    // Each role carries its own sinks and threshold, so a per-role "debug" is not cut off by a
    // stricter parent.
    return {
      category: ["sustenet", role],
      sinks: sinkIds,
      parentSinks: "override" as const,
      lowestLevel: level,
    };
  });
  await configure({
    reset: true,
    sinks,
    loggers: [
      { category: ["sustenet"], sinks: sinkIds, lowestLevel: options.level },
      ...roleLoggers,
      { category: ["logtape", "meta"], sinks: ["console"], lowestLevel: "warning" },
    ],
  });
}

function checkLevel(level: string, name: string): asserts level is LogLevel {
  if (!(LOG_LEVEL_NAMES as readonly string[]).includes(level)) {
    throw new TypeError(
      `setupLogging: ${name} must be one of ${LOG_LEVEL_NAMES.join(", ")}, got ${
        JSON.stringify(level)
      }`,
    );
  }
}
