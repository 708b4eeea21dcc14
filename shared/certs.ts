/**
 * Entry point of `deno task certs [--out certs] [--days 90] [host …]`: makes a development
 * certificate authority (`ca.pem`, `ca.key`) and a server certificate signed by it
 * (`server.pem`, `server.key`) for the given host names and IP addresses (default
 * `localhost 127.0.0.1 ::1`), all P-256 ECDSA, so a newcomer runs TLS locally in one command:
 * `tls_cert = "certs/server.pem"`, `tls_key = "certs/server.key"`, and clients pin `ca.pem`.
 * An existing CA in the folder is reused, so pins survive a new server certificate.
 *
 * Made with the `openssl` CLI: it ships with every Linux distribution and macOS and in the CI
 * image, writes the standard PEM every TLS stack reads, and needs no npm code on the server
 * (`@peculiar/x509` 2.2.0, pinned for this, needs a `reflect-metadata` polyfill that is not
 * pinned). An IPv4 address goes in both as an IP and as a DNS name: rustls matches IP SANs,
 * Godot 3's mbedtls only DNS names.
 *
 * It must never overwrite an existing CA key, and never leave a key readable by others
 * (mode 0600).
 *
 * @module
 */

import { type CommandOutput, consoleOutput, runCommandLine, UsageError } from "./command_line.ts";
import { isIp } from "./ip_address.ts";
import { pathExists } from "./path_exists.ts";

const USAGE = "usage: deno task certs [--out DIR] [--days N] [host-or-ip …]\n" +
  "  makes <out>/ca.pem + ca.key (development CA, reused if present) and\n" +
  "  <out>/server.pem + server.key (P-256, signed by the CA) for the hosts\n" +
  "  (default: localhost 127.0.0.1 ::1); set tls_cert / tls_key to the server files\n" +
  "  and pin ca.pem in clients\n" +
  "\n" +
  "  --out DIR     where the files go (default certs)\n" +
  "  --days N      validity of the server certificate in days (default 90)\n" +
  "  -h, --help    this text";

/** Where {@linkcode runCerts} writes its lines. */
export type CertsOutput = CommandOutput;

const HOST_NAME =
  /^(?=.{1,253}$)([A-Za-z0-9*]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/**
 * The subjectAltName value for the hosts: DNS names, and each IP both as IP and as DNS name.
 *
 * @param hosts Host names and IP addresses.
 * @returns The OpenSSL `subjectAltName` text.
 * @throws {TypeError} If a host is neither.
 *
 * @example
 * ```ts
 * import { subjectAltName } from "./certs.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(subjectAltName(["localhost", "127.0.0.1"]), "DNS:localhost,IP:127.0.0.1,DNS:127.0.0.1");
 * ```
 */
export function subjectAltName(hosts: readonly string[]): string {
  const names: string[] = [];
  for (const host of hosts) {
    if (isIp(host)) {
      // IPv4 text is also a valid DNS label sequence; IPv6 text is not, so it stays IP only.
      names.push(`IP:${host}`, ...(host.includes(":") ? [] : [`DNS:${host}`]));
    } else if (HOST_NAME.test(host)) {
      names.push(`DNS:${host}`);
    } else {
      throw new TypeError(`not a host name or IP address: ${JSON.stringify(host)}`);
    }
  }
  return names.join(",");
}

async function openssl(args: readonly string[], cwd: string): Promise<void> {
  let result: Deno.CommandOutput;
  try {
    result = await new Deno.Command("openssl", { args: [...args], cwd, stdin: "null" }).output();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new Error("the openssl command is not installed (apt install openssl)");
    }
    throw error;
  }
  if (!result.success) {
    const stderr = new TextDecoder().decode(result.stderr).trim().split("\n").slice(-3).join(" ");
    throw new Error(`openssl ${args[0]} failed: ${stderr}`);
  }
}

/**
 * Runs the certs command line and returns its exit code: 0 written (or help), 2 usage error,
 * 1 any other failure (no openssl, no write permission).
 *
 * @param args Command-line arguments, e.g. `Deno.args`.
 * @param output Where lines go (default: the console).
 *
 * @example
 * ```ts
 * import { runCerts } from "./certs.ts";
 * import assert from "node:assert/strict";
 *
 * const lines: string[] = [];
 * const output = { out: (l: string) => lines.push(l), err: (l: string) => lines.push(l) };
 * assert.equal(await runCerts(["--help"], output), 0);
 * assert.match(lines[0], /^usage: deno task certs/);
 * assert.equal(await runCerts(["not a host!"], output), 2);
 * ```
 */
export function runCerts(
  args: readonly string[],
  output: CertsOutput = consoleOutput,
): Promise<number> {
  return runCommandLine(
    {
      name: "certs",
      usage: USAGE,
      options: {
        out: { type: "string", default: "certs" },
        days: { type: "string", default: "90" },
      },
      allowPositionals: true,
      run: ({ values, positionals }) => writeCerts(values.out, values.days, positionals, output),
    },
    args,
    output,
  );
}

/** The certs command once its flags are parsed. */
async function writeCerts(
  dir: string,
  daysText: string,
  positionals: readonly string[],
  output: CertsOutput,
): Promise<number> {
  const days = Number(daysText);
  if (!/^\d+$/.test(daysText) || days < 1 || days > 3650) {
    output.err(`certs: --days must be an integer 1..3650, got ${JSON.stringify(daysText)}`);
    return 2;
  }
  if (dir === "") {
    output.err("certs: --out must not be empty");
    return 2;
  }
  const hosts = positionals.length === 0 ? ["localhost", "127.0.0.1", "::1"] : positionals;
  let san: string;
  try {
    san = subjectAltName(hosts);
  } catch (cause) {
    if (!(cause instanceof TypeError)) throw cause;
    throw new UsageError(cause.message);
  }
  try {
    await Deno.mkdir(dir, { recursive: true });
    const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
    if (await pathExists(`${dir}/ca.pem`) && await pathExists(`${dir}/ca.key`)) {
      output.out(`reusing the CA in ${dir}/ca.pem`);
    } else {
      await openssl([
        "req",
        "-x509",
        ...ec,
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "3650",
        "-subj",
        "/CN=Sustenet development CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE,pathlen:0",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
      ], dir);
      await Deno.chmod(`${dir}/ca.key`, 0o600);
      output.out(`wrote ${dir}/ca.pem (development CA, 10 years) and ${dir}/ca.key (mode 0600)`);
    }
    const first = hosts[0];
    await openssl([
      "req",
      ...ec,
      "-keyout",
      "server.key",
      "-out",
      "server.csr",
      "-subj",
      `/CN=${first.replaceAll("/", "")}`,
    ], dir);
    await Deno.chmod(`${dir}/server.key`, 0o600);
    await Deno.writeTextFile(
      `${dir}/server.ext`,
      "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n" +
        `extendedKeyUsage=serverAuth\nsubjectAltName=${san}\n`,
    );
    await openssl([
      "x509",
      "-req",
      "-in",
      "server.csr",
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca.key",
      "-set_serial",
      `0x${crypto.getRandomValues(new Uint8Array(16)).toHex()}`,
      "-days",
      String(days),
      "-sha256",
      "-extfile",
      "server.ext",
      "-out",
      "server.pem",
    ], dir);
    await Deno.remove(`${dir}/server.csr`);
    await Deno.remove(`${dir}/server.ext`);
    output.out(
      `wrote ${dir}/server.pem and ${dir}/server.key (mode 0600) for ${hosts.join(", ")}, ` +
        `valid ${days} days`,
    );
    output.out(
      `servers: tls_cert = "${dir}/server.pem", tls_key = "${dir}/server.key"; ` +
        `clients pin ${dir}/ca.pem`,
    );
    return 0;
  } catch (cause) {
    output.err(`certs: ${cause instanceof Error ? cause.message : String(cause)}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await runCerts(Deno.args));
