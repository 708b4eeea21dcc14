/**
 * Reading a Sustenet configuration in a Deno process: Config.toml from disk, then per-key
 * command-line flags, and the shared way a role's `main.ts` exits on a bad config. The schema,
 * validation and types live in `config_schema.ts` and are re-exported here, so callers import
 * everything config from this one module.
 *
 * Uses `Deno.readTextFile`, `Deno.stat`, `Deno.cwd` and `Deno.exit` (not browser compatible;
 * use `config_schema.ts` there). Must never start anything: it reads, validates and returns.
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  applyOverrides,
  CONFIG_KEYS,
  ConfigError,
  defaultConfig,
  dirnameOf,
  flagRole,
  parseConfig,
  type ServerRole,
  type SustenetConfig,
} from "./config_schema.ts";

export * from "./config_schema.ts";

function isAbsolute(path: string): boolean {
  return path.startsWith("/") || path.startsWith("\\") || /^[A-Za-z]:[\\/]/.test(path);
}

function absoluteFrom(cwd: string, path: string): string {
  return isAbsolute(path) ? path : `${cwd.replace(/[\\/]+$/, "")}/${path}`;
}

function readFailure(err: unknown): string {
  if (err instanceof Deno.errors.NotFound) return "not found";
  if (err instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (err instanceof Deno.errors.NotCapable) return "no read permission (--allow-read)";
  if (err instanceof Deno.errors.IsADirectory) return "is a directory";
  return err instanceof Error ? err.message : String(err);
}

/**
 * Options of {@linkcode loadConfig}.
 *
 * @example
 * ```ts
 * import { loadConfig, type LoadConfigOptions } from "./config.ts";
 * import assert from "node:assert/strict";
 *
 * // A relative path is read from `cwd`, not from the process's directory.
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/Config.toml`, '[all]\nserver_name = "EU 1"\n');
 * const options: LoadConfigOptions = { cwd: dir };
 * const config = await loadConfig("Config.toml", options);
 * assert.equal(config.all.serverName, "EU 1");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export interface LoadConfigOptions {
  /**
   * Directory a relative `path` is relative to.
   * @default {Deno.cwd()}
   */
  readonly cwd?: string;
}

/**
 * Reads and validates a Config.toml file. Relative `keys_dir` and plugin paths resolve against
 * the file's directory.
 *
 * @param path Path of the file (as shown in messages and stored in `config.file`).
 * @param options `cwd` that a relative `path` is relative to (default `Deno.cwd()`).
 * @throws {ConfigError} `config_unreadable` when the file is missing, unreadable or not TOML;
 * `config_invalid` when a value is wrong.
 *
 * @example
 * ```ts
 * import { ConfigError, loadConfig } from "./config.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/Config.toml`, '[all]\nserver_name = "EU 1"\n');
 * const config = await loadConfig(`${dir}/Config.toml`);
 * assert.equal(config.all.serverName, "EU 1");
 * assert.equal(config.all.keysDir, `${dir}/keys`);
 * await assert.rejects(loadConfig(`${dir}/missing.toml`), ConfigError);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function loadConfig(
  path: string,
  options: LoadConfigOptions = {},
): Promise<SustenetConfig> {
  const absolute = absoluteFrom(options.cwd ?? Deno.cwd(), path);
  let text: string;
  try {
    text = await Deno.readTextFile(absolute);
  } catch (err) {
    throw new ConfigError(
      "config_unreadable",
      `${path}: cannot read config file (${readFailure(err)})`,
      { file: path, field: "", cause: err },
    );
  }
  return parseConfig(text, { file: path, baseDir: dirnameOf(absolute) });
}

/** parseArgs option table: `--config` plus one flag per scalar key. */
const ARG_OPTIONS: Record<string, { type: "string" | "boolean" }> = {
  config: { type: "string" },
};
for (const key of CONFIG_KEYS) {
  if (key.flag !== null && key.flagType !== null) {
    ARG_OPTIONS[key.flag.slice(2)] = { type: key.flagType };
  }
}

/**
 * Options of {@linkcode configFromArgs}.
 *
 * @example
 * ```ts
 * import { configFromArgs, type ConfigFromArgsOptions } from "./config.ts";
 * import assert from "node:assert/strict";
 *
 * // The game's directory holds its Config.toml; the server is started from elsewhere.
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/Config.toml`, "[all]\nport = 7001\n");
 * const options: ConfigFromArgsOptions = { cwd: dir };
 * const config = await configFromArgs([], "master", options);
 * assert.equal(config.all.port, 7001);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export interface ConfigFromArgsOptions {
  /**
   * Directory holding the default `Config.toml` and that relative `--config` paths are
   * relative to.
   * @default {Deno.cwd()}
   */
  readonly cwd?: string;
}

/**
 * Builds a role's config from its command line: `--config <path>` (default `./Config.toml`
 * if it exists, else built-in defaults), then one flag per key in kebab-case (`--port 7000`,
 * `--server-name x`, `--plaintext` / `--no-plaintext`, `--fragments-tick-hz 30`). Flags of
 * the other role's section, unknown flags and positional arguments are errors.
 *
 * @param args The command-line arguments (e.g. `Deno.args`).
 * @param role The role being started.
 * @param options Working directory override.
 * @throws {ConfigError} For a bad flag, a bad value or an unreadable file.
 *
 * @example
 * ```ts
 * import { configFromArgs } from "./config.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir(); // no Config.toml there: defaults, then flags
 * const config = await configFromArgs(["--port", "7000", "--log-level", "debug"], "master", {
 *   cwd: dir,
 * });
 * assert.equal(config.file, null);
 * assert.equal(config.all.port, 7000);
 * assert.equal(config.all.logLevel, "debug");
 * await assert.rejects(
 *   configFromArgs(["--key-name", "k"], "master", { cwd: dir }),
 *   { message: "--key-name is a cluster setting; the master does not read it" },
 * );
 * await Deno.remove(dir);
 * ```
 */
export async function configFromArgs(
  args: readonly string[],
  role: ServerRole,
  options: ConfigFromArgsOptions = {},
): Promise<SustenetConfig> {
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      args: [...args],
      options: ARG_OPTIONS,
      strict: true,
      allowPositionals: false,
      allowNegative: true,
    }).values;
  } catch (err) {
    // parseArgs reports unknown flags, missing values and positionals as TypeErrors.
    if (!(err instanceof TypeError)) throw err;
    const unknown = (err as { code?: string }).code === "ERR_PARSE_ARGS_UNKNOWN_OPTION"
      ? /'([^']+)'/.exec(err.message)?.[1]
      : undefined;
    const message = unknown === undefined
      ? err.message.split("\n")[0] ?? err.message
      : `unknown flag ${unknown}`;
    throw new ConfigError("config_invalid", message, {
      file: null,
      field: "",
      cause: err,
    });
  }
  const cwd = options.cwd ?? Deno.cwd();
  const { config: configPath, ...rest } = values;
  const overrides: Record<string, string | boolean> = {};
  for (const [flag, value] of Object.entries(rest)) {
    if (value === undefined) continue;
    const owner = flagRole(flag);
    if (owner !== null && owner !== undefined && owner !== role) {
      throw new ConfigError(
        "config_invalid",
        `--${flag} is a ${owner} setting; the ${role} does not read it`,
        { file: null, field: "", flag: `--${flag}` },
      );
    }
    overrides[flag] = value;
  }
  const base = typeof configPath === "string"
    ? await loadConfig(configPath, { cwd })
    : await defaultFileOrDefaults(cwd);
  return applyOverrides(base, overrides);
}

async function defaultFileOrDefaults(cwd: string): Promise<SustenetConfig> {
  const path = "Config.toml";
  try {
    await Deno.stat(absoluteFrom(cwd, path));
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return defaultConfig();
    throw new ConfigError(
      "config_unreadable",
      `${path}: cannot read config file (${readFailure(err)})`,
      { file: path, field: "", cause: err },
    );
  }
  return await loadConfig(path, { cwd });
}

/**
 * The one way a role's `main.ts` handles a bad config: for a {@linkcode ConfigError}, prints
 * `error: <message>` to stderr and exits with status 2; anything else is rethrown.
 *
 * @param err The caught error.
 * @throws {unknown} `err` itself when it is not a ConfigError.
 *
 * @example
 * ```ts
 * import { exitOnConfigError } from "./config.ts";
 * import assert from "node:assert/strict";
 *
 * // Not a ConfigError: rethrown untouched (a ConfigError would end the process).
 * const other = new Error("disk on fire");
 * assert.throws(() => exitOnConfigError(other), other);
 * ```
 */
export function exitOnConfigError(err: unknown): never {
  if (!(err instanceof ConfigError)) throw err;
  console.error(`error: ${err.message}`);
  Deno.exit(2);
}

/**
 * The `--help` text of a server role: usage, then every flag the role reads with its key,
 * valid values and default, generated from the config schema (so it cannot drift from what
 * the server accepts).
 *
 * @param role The role (`master` or `cluster`).
 * @returns The text, lines joined with `\n`.
 *
 * @example
 * ```ts
 * import { serverHelp } from "./config.ts";
 * import assert from "node:assert/strict";
 *
 * const help = serverHelp("master");
 * assert.match(help, /^usage: deno task master/);
 * assert.match(help, /--port VALUE +\[all\] port: an integer 0\.\.65535 \(default 0\)/);
 * assert.doesNotMatch(help, /--key-name/); // a cluster setting
 * ```
 */
export function serverHelp(role: ServerRole): string {
  const rows: [string, string][] = [
    ["--config PATH", "config file (default ./Config.toml if it exists, else built-in defaults)"],
    ["--help, -h", "print this text and exit"],
  ];
  for (const key of CONFIG_KEYS) {
    if (key.flag === null || (key.role !== null && key.role !== role)) continue;
    const dot = key.field.lastIndexOf(".");
    const where = `[${key.field.slice(0, dot)}] ${key.field.slice(dot + 1)}`;
    const flag = key.flagType === "boolean"
      ? `${key.flag}, --no-${key.flag.slice(2)}`
      : `${key.flag} VALUE`;
    const fallback = key.defaultText === "" ? "" : ` (default ${key.defaultText})`;
    rows.push([flag, `${where}: ${key.expect}${fallback}`]);
  }
  const width = Math.max(...rows.map(([flag]) => flag.length)) + 2;
  return [
    `usage: deno task ${role} [--config PATH] [--FLAG VALUE ...]`,
    "",
    "Reads the config file, then applies each flag over its key (README.md, Configuration).",
    "A bad value exits with status 2 and names the field; SIGINT/SIGTERM stop gracefully.",
    "",
    ...rows.map(([flag, what]) => `  ${flag.padEnd(width)}${what}`),
  ].join("\n");
}
