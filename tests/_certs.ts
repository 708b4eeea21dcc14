/**
 * Development certificates for TLS tests, made by the code of `deno task certs` (openssl) in a
 * temporary directory, plus an expired server certificate and a second, unrelated CA.
 *
 * @module
 */

import { runCerts } from "../shared/certs.ts";

/** Files made by {@linkcode makeTestCerts}. */
export interface TestCerts extends AsyncDisposable {
  /** The directory. */
  readonly dir: string;
  /** Paths of the development CA and the server certificate and key. */
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
  /** The CA (PEM), to trust or pin. */
  readonly ca: string;
  /** The server certificate chain and key (PEM). */
  readonly cert: string;
  readonly key: string;
}

/** Makes a CA and a server certificate for localhost / 127.0.0.1 in `dir` (or a temp dir). */
export async function makeTestCerts(dir?: string): Promise<TestCerts> {
  const where = dir ?? await Deno.makeTempDir({ prefix: "sustenet-certs-" });
  const lines: string[] = [];
  const output = { out: (l: string) => lines.push(l), err: (l: string) => lines.push(l) };
  const code = await runCerts(["--out", where, "localhost", "127.0.0.1"], output);
  if (code !== 0) throw new Error(`certs failed (${code}): ${lines.join("\n")}`);
  const read = (name: string) => Deno.readTextFile(`${where}/${name}`);
  return {
    dir: where,
    caFile: `${where}/ca.pem`,
    certFile: `${where}/server.pem`,
    keyFile: `${where}/server.key`,
    ca: await read("ca.pem"),
    cert: await read("server.pem"),
    key: await read("server.key"),
    async [Symbol.asyncDispose]() {
      if (dir === undefined) await Deno.remove(where, { recursive: true });
    },
  };
}

/** Signs a certificate for the server key of `certs` that expired yesterday; returns its path. */
export async function makeExpiredCert(certs: TestCerts): Promise<string> {
  const run = async (args: string[]) => {
    const out = await new Deno.Command("openssl", { args, cwd: certs.dir, stdin: "null" }).output();
    if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
  };
  await run(["req", "-new", "-key", "server.key", "-subj", "/CN=localhost", "-out", "old.csr"]);
  await run([
    "x509",
    "-req",
    "-in",
    "old.csr",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-days",
    "-1",
    "-out",
    "expired.pem",
  ]);
  return `${certs.dir}/expired.pem`;
}
