import assert from "node:assert/strict";
import fc from "fast-check";
import { getConfig, getLogger, type LogRecord, reset } from "@logtape/logtape";
// Importing every entry point too: no Sustenet module may configure logging on import.
import "../shared/config.ts";
import "../mod.ts";
import "../master/mod.ts";
import "../cluster/mod.ts";
import "../client/mod.ts";
import {
  formatLogRecord,
  LOG_LEVEL_NAMES,
  LOG_ROLES,
  type LogConsole,
  logSuccess,
  redact,
  roleLogger,
  setupLogging,
} from "../shared/logging.ts";

const TIME = Date.UTC(2026, 10, 25, 14, 0, 0, 0);
const STAMP = "2026-11-25T14:00:00.000Z";

function record(
  level: LogRecord["level"],
  message: readonly unknown[],
  category: readonly string[] = ["sustenet", "cluster"],
  properties: Record<string, unknown> = {},
): LogRecord {
  return { category, level, message, rawMessage: "", timestamp: TIME, properties };
}

interface Captured {
  readonly method: keyof LogConsole;
  readonly line: string;
}

function captureConsole(): { readonly console: LogConsole; readonly lines: Captured[] } {
  const lines: Captured[] = [];
  return {
    lines,
    console: {
      debug: (line: string) => lines.push({ method: "debug", line }),
      info: (line: string) => lines.push({ method: "info", line }),
      warn: (line: string) => lines.push({ method: "warn", line }),
      error: (line: string) => lines.push({ method: "error", line }),
    },
  };
}

// Must stay the first test: it checks the state left by the imports alone.
Deno.test("importing Sustenet modules configures nothing", () => {
  assert.equal(getConfig(), null);
  // Logging before setup is harmless and still configures nothing.
  roleLogger("master").error("dropped on the floor");
  logSuccess(roleLogger("cluster"), "also dropped");
  assert.equal(getConfig(), null);
});

Deno.test("each level has its own label in the console format", () => {
  const cases: readonly [LogRecord, string][] = [
    [record("debug", ["tick ", 42, ""]), `${STAMP} DEBUG   cluster  tick 42`],
    [record("info", ["listening"]), `${STAMP} INFO    cluster  listening`],
    [
      record("info", ["registered"], ["sustenet", "master"], { success: true }),
      `${STAMP} SUCCESS master   registered`,
    ],
    [record("warning", ["slow consumer"]), `${STAMP} WARNING cluster  slow consumer`],
    [record("error", ["boom"], ["sustenet", "client"]), `${STAMP} ERROR   client   boom`],
    [record("trace", ["t"], ["sustenet", "system"]), `${STAMP} TRACE   system   t`],
    [record("fatal", ["f"], ["sustenet", "plugin"]), `${STAMP} FATAL   plugin   f`],
  ];
  for (const [rec, line] of cases) assert.equal(formatLogRecord(rec), line);
});

Deno.test("the role column comes from the category, sub-categories do not change it", () => {
  assert.equal(
    formatLogRecord(record("info", ["x"], ["sustenet", "cluster", "link", "tx"])),
    `${STAMP} INFO    cluster  x`,
  );
  // A bare ["sustenet"] record shows the process role, or "sustenet".
  assert.equal(
    formatLogRecord(record("info", ["x"], ["sustenet"])),
    `${STAMP} INFO    sustenet  x`,
  );
  assert.equal(
    formatLogRecord(record("info", ["x"], ["sustenet"]), { role: "master" }),
    `${STAMP} INFO    master   x`,
  );
  // Foreign categories (LogTape's meta logger) are shown in full.
  assert.equal(
    formatLogRecord(record("warning", ["sink failed"], ["logtape", "meta"])),
    `${STAMP} WARNING logtape.meta  sink failed`,
  );
});

Deno.test("colour marks the level: SUCCESS green, WARNING yellow, ERROR red", () => {
  const success = formatLogRecord(
    record("info", ["ok"], ["sustenet", "master"], { success: true }),
    {
      color: true,
    },
  );
  assert.equal(
    success,
    `\x1b[2m${STAMP}\x1b[0m \x1b[32mSUCCESS\x1b[0m master   ok`,
  );
  assert.ok(formatLogRecord(record("warning", ["w"]), { color: true }).includes("\x1b[33mWARNING"));
  assert.ok(formatLogRecord(record("error", ["e"]), { color: true }).includes("\x1b[31mERROR  "));
  assert.ok(!formatLogRecord(record("error", ["e"])).includes("\x1b"));
});

Deno.test("interpolated values are rendered safely on one line", () => {
  const line = formatLogRecord(
    record("info", [
      "player ",
      "evil\n2026-01-01T00:00:00.000Z ERROR master fake\x1b[2J",
      " sent ",
      new Uint8Array([1, 2, 3]),
      " key ",
      new ArrayBuffer(16),
      " view ",
      new DataView(new ArrayBuffer(4)),
      " state ",
      { hp: 10n, blob: new Uint8Array(2) },
      " err ",
      new RangeError("bad"),
      " none ",
      undefined,
      "",
    ]),
  );
  assert.equal(
    line,
    `${STAMP} INFO    cluster  player evil\\u000a2026-01-01T00:00:00.000Z ERROR master fake` +
      '\\u001b[2J sent [3 bytes] key [16 bytes] view [4 bytes] state {"hp":"10n","blob":"[2 bytes]"}' +
      " err RangeError: bad none undefined",
  );
  assert.ok(!line.includes("\n"));
  // An object that cannot be serialised is described, not allowed to break the record.
  const circular: Record<string, unknown> = {};
  circular.self = circular;
  assert.match(formatLogRecord(record("info", ["c ", circular, ""])), /c \[unrenderable object: /);
});

Deno.test("setupLogging writes Sustenet records to the console at the configured level", async () => {
  const { console, lines } = captureConsole();
  try {
    await setupLogging({ level: "info", role: "cluster", console, color: false });
    const log = roleLogger("cluster");
    log.debug("hidden");
    log.info("shown {n}", { n: 1 });
    logSuccess(roleLogger("master", "registry"), "cluster {name} registered", { name: "eu" });
    log.warn("warned");
    log.error("failed");
    getLogger(["sustenet"]).info("bare");
    getLogger(["other-library"]).error("not ours");
    assert.deepEqual(
      lines.map(({ method, line }) => [method, line.slice(STAMP.length + 1)]),
      [
        ["info", "INFO    cluster  shown 1"],
        ["info", "SUCCESS master   cluster eu registered"],
        ["warn", "WARNING cluster  warned"],
        ["error", "ERROR   cluster  failed"],
        ["info", "INFO    cluster  bare"],
      ],
    );
    for (const { line } of lines) assert.match(line, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z /);
  } finally {
    await reset();
  }
});

Deno.test("category filtering: per-role levels override the global level", async () => {
  const seen: LogRecord[] = [];
  const { console } = captureConsole();
  try {
    await setupLogging({
      level: "warning",
      roleLevels: { plugin: "debug", master: "error" },
      sinks: { memory: (r) => seen.push(r) },
      console,
    });
    roleLogger("plugin", "chat").debug("plugin debug");
    roleLogger("cluster").info("cluster info");
    roleLogger("cluster").warn("cluster warning");
    roleLogger("master").warn("master warning");
    roleLogger("master").error("master error");
    roleLogger("system").warn("system warning");
    assert.deepEqual(seen.map((r) => r.message.join("")), [
      "plugin debug",
      "cluster warning",
      "master error",
      "system warning",
    ]);
  } finally {
    await reset();
  }
});

Deno.test("a custom sink receives the structured records, success flag included", async () => {
  const seen: LogRecord[] = [];
  const { console, lines } = captureConsole();
  try {
    await setupLogging({ level: "debug", sinks: { memory: (r) => seen.push(r) }, console });
    logSuccess(roleLogger("cluster", "plugins"), "loaded {plugin}", { plugin: "chat" });
    roleLogger("client").debug("ping {ms}", { ms: 3 });
    assert.equal(seen.length, 2);
    assert.deepEqual(seen[0]?.category, ["sustenet", "cluster", "plugins"]);
    assert.equal(seen[0]?.level, "info");
    assert.deepEqual(seen[0]?.properties, { plugin: "chat", success: true });
    assert.deepEqual(seen[1]?.properties, { ms: 3 });
    assert.equal(lines.length, 2); // the console got them too
  } finally {
    await reset();
  }
});

Deno.test("calling setupLogging again replaces the previous configuration", async () => {
  const first: LogRecord[] = [];
  const second: LogRecord[] = [];
  const { console } = captureConsole();
  try {
    await setupLogging({ level: "error", sinks: { a: (r) => first.push(r) }, console });
    roleLogger("master").info("one");
    await setupLogging({ level: "info", sinks: { b: (r) => second.push(r) }, console });
    roleLogger("master").info("two");
    assert.equal(first.length, 0);
    assert.deepEqual(second.map((r) => r.message.join("")), ["two"]);
  } finally {
    await reset();
  }
  assert.equal(getConfig(), null);
});

Deno.test("setupLogging rejects a sink named console and unknown levels", async () => {
  await assert.rejects(
    setupLogging({ level: "info", sinks: { console: () => {} } }),
    { name: "TypeError", message: 'setupLogging: the sink name "console" is reserved' },
  );
  await assert.rejects(
    // @ts-expect-error: a level from outside the type, as a config typo would give
    setupLogging({ level: "verbose" }),
    /setupLogging: level must be one of debug, info, warning, error, got "verbose"/,
  );
  await assert.rejects(
    // @ts-expect-error: same for a per-role level
    setupLogging({ level: "info", roleLevels: { plugin: "loud" } }),
    /roleLevels\.plugin must be one of/,
  );
  assert.equal(getConfig(), null);
});

Deno.test("a failing extra sink is reported on the console, not silently lost", async () => {
  const { console, lines } = captureConsole();
  try {
    await setupLogging({
      level: "info",
      sinks: {
        broken: () => {
          throw new Error("disk full");
        },
      },
      console,
    });
    roleLogger("cluster").info("hello");
    assert.ok(lines.some(({ line }) => line.includes("INFO    cluster  hello")));
    assert.ok(
      lines.some(({ line }) => line.includes("logtape.meta") && line.includes("disk full")),
      JSON.stringify(lines),
    );
  } finally {
    await reset();
  }
});

Deno.test("redact never lets a secret through", () => {
  assert.equal(redact(new Uint8Array(32)), "[redacted 32 bytes]");
  assert.equal(redact(new Uint8Array(0)), "[redacted 0 bytes]");
  assert.equal(redact("correct horse battery staple"), "[redacted string]");
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 1, maxLength: 64 }), (secret) => {
      // The output depends on the length only: no byte of the secret can be recovered.
      assert.equal(redact(secret), redact(new Uint8Array(secret.length)));
      // Short secrets can spell words of the label itself ("ed" is in "redacted").
      if (secret.length >= 4) {
        assert.ok(!redact(secret).includes(secret.toHex()));
        assert.ok(!redact(secret).includes(secret.toBase64()));
      }
    }),
  );
  fc.assert(
    fc.property(fc.string({ minLength: 1 }), (secret) => {
      assert.equal(redact(secret), "[redacted string]");
    }),
  );
});

Deno.test("redacted values stay redacted through a whole log line", async () => {
  const key = crypto.getRandomValues(new Uint8Array(32));
  const seen: string[] = [];
  const { console, lines } = captureConsole();
  try {
    await setupLogging({
      level: "debug",
      sinks: { text: (r) => seen.push(formatLogRecord(r)) },
      console,
    });
    roleLogger("master").info("cluster key {key}", { key: redact(key) });
    roleLogger("master").info("raw bytes {key}", { key }); // the formatter's backstop
    for (const line of [...seen, ...lines.map((l) => l.line)]) {
      assert.ok(!line.includes(key.toHex()));
      assert.ok(!line.includes(key.toBase64()));
      assert.ok(!line.includes(key.join(",")));
    }
    assert.match(seen[0] ?? "", /cluster key \[redacted 32 bytes\]$/);
    assert.match(seen[1] ?? "", /raw bytes \[32 bytes\]$/);
  } finally {
    await reset();
  }
});

Deno.test("the exported level and role lists match the config's", () => {
  assert.deepEqual([...LOG_LEVEL_NAMES], ["debug", "info", "warning", "error"]);
  assert.deepEqual([...LOG_ROLES], ["master", "cluster", "client", "system", "plugin", "auth"]);
  assert.ok(Object.isFrozen(LOG_LEVEL_NAMES) && Object.isFrozen(LOG_ROLES));
});
