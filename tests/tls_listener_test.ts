import assert from "node:assert/strict";
import { reset } from "@logtape/logtape";
import { startMaster } from "../master/mod.ts";
import { PROTOCOL_VERSION } from "../shared/protocol/packets.ts";
import { loadTlsCredentials, TlsCredentialsError } from "../shared/tls_credentials.ts";
import { connectTlsFrames, listenTlsFrames } from "../shared/tls_listener.ts";
import { captureLogs } from "./_logs.ts";
import { makeExpiredCert, makeTestCerts } from "./_certs.ts";
import { REPO_ROOT } from "./_process.ts";
import { RawClient, waitUntil } from "./_raw_client.ts";

const WAIT_MS = 60_000;

async function rejectsWith(
  promise: Promise<unknown>,
  code: string,
  field: string,
  file: string,
): Promise<void> {
  await assert.rejects(promise, (error) => {
    assert.ok(error instanceof TlsCredentialsError, String(error));
    assert.equal(error.code, code);
    assert.equal(error.field, field);
    assert.ok(error.message.startsWith(`${field} (${file}): `), error.message);
    return true;
  });
}

Deno.test("certificates made by deno task certs load; bad ones are named with key and file", async () => {
  await using certs = await makeTestCerts();
  await using other = await makeTestCerts();
  const ok = await loadTlsCredentials(certs.certFile, certs.keyFile);
  assert.ok(ok.notAfter.getTime() > Date.now());
  assert.match(ok.subject, /localhost/);

  const missing = `${certs.dir}/nope.pem`;
  await rejectsWith(
    loadTlsCredentials(missing, certs.keyFile),
    "tls_file_unreadable",
    "all.tls_cert",
    missing,
  );
  await rejectsWith(
    loadTlsCredentials(certs.certFile, missing),
    "tls_file_unreadable",
    "all.tls_key",
    missing,
  );
  // A key where the certificate should be, and the other way round.
  await rejectsWith(
    loadTlsCredentials(certs.keyFile, certs.keyFile),
    "tls_cert_invalid",
    "all.tls_cert",
    certs.keyFile,
  );
  await rejectsWith(
    loadTlsCredentials(certs.certFile, certs.certFile),
    "tls_key_invalid",
    "all.tls_key",
    certs.certFile,
  );
  await rejectsWith(
    loadTlsCredentials(certs.certFile, other.keyFile),
    "tls_key_mismatch",
    "all.tls_key",
    other.keyFile,
  );
  const expired = await makeExpiredCert(certs);
  await rejectsWith(
    loadTlsCredentials(expired, certs.keyFile),
    "tls_cert_expired",
    "all.tls_cert",
    expired,
  );
  await rejectsWith(
    loadTlsCredentials(certs.certFile, certs.keyFile, new Date(Date.UTC(2000, 0, 1))),
    "tls_cert_not_yet_valid",
    "all.tls_cert",
    certs.certFile,
  );
});

async function runMaster(args: string[]): Promise<{ code: number; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      `${REPO_ROOT}master/main.ts`,
      "--port",
      "0",
      "--no-status-enabled",
      ...args,
    ],
    cwd: REPO_ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

Deno.test("deno task master refuses bad TLS files with exit 2 naming the key and the file", async () => {
  await using certs = await makeTestCerts();
  await using other = await makeTestCerts();
  const expired = await makeExpiredCert(certs);
  const cases: [string[], RegExp][] = [
    [
      ["--tls-cert", certs.certFile, "--tls-key", other.keyFile],
      new RegExp(`all\\.tls_key \\(${other.keyFile}\\): the private key does not match`),
    ],
    [
      ["--tls-cert", expired, "--tls-key", certs.keyFile],
      new RegExp(`all\\.tls_cert \\(${expired}\\): the certificate expired`),
    ],
    [
      ["--tls-cert", `${certs.dir}/missing.pem`, "--tls-key", certs.keyFile],
      /all\.tls_cert \(.*missing\.pem\): file not found/,
    ],
    [["--tls-cert", certs.certFile], /--tls-cert must be set together with all\.tls_key/],
  ];
  for (const [args, message] of cases) {
    const { code, stderr } = await runMaster(args);
    assert.equal(code, 2, stderr);
    assert.match(stderr, message);
  }
});

Deno.test("the master serves the protocol on its TLS port, and only TLS there", async () => {
  const logs = await captureLogs("info");
  await using certs = await makeTestCerts();
  const keysDir = await Deno.makeTempDir();
  const master = await startMaster({
    port: 0,
    keysDir,
    tls: { port: 0, cert: certs.cert, key: certs.key },
  });
  try {
    assert.ok(master.tlsAddr !== null);
    const tlsPort = master.tlsAddr.port;
    const client = await RawClient.connectTls(tlsPort, certs.ca);
    client.send({ kind: "Hello", version: PROTOCOL_VERSION, role: 1 });
    const ok = await client.expect("HelloOk");
    assert.equal(ok.role, 3);
    client.send({ kind: "RequestClusters" });
    assert.deepEqual((await client.expect("SendClusters")).clusters, []);

    // Plain TCP on the TLS port: that socket closes with a logged reason; TLS carries on.
    const plain = await RawClient.connect(tlsPort);
    plain.send({ kind: "Hello", version: PROTOCOL_VERSION, role: 1 });
    await plain.closed;
    await waitUntil(
      () => logs.some((r) => String(r.message.join("")).includes("not TLS")),
      "the plain-on-TLS log line",
      WAIT_MS,
    );

    // TLS on the plain port: the handshake bytes are refused as a frame, with a TLS hint.
    await assert.rejects(
      Deno.connectTls({ port: master.addr.port, caCerts: [certs.ca] }).then(async (conn) => {
        try {
          await conn.handshake();
        } finally {
          conn.close();
        }
      }),
    );
    await waitUntil(
      () =>
        logs.some((r) => String(r.message.join("")).includes("a TLS handshake on a plain port")),
      "the TLS-on-plain log line",
      WAIT_MS,
    );

    // A client that trusts another CA refuses the master's certificate.
    await using other = await makeTestCerts();
    await assert.rejects(RawClient.connectTls(tlsPort, other.ca));

    // The first TLS client is still served.
    client.send({ kind: "Ping", value: 7 });
    assert.equal((await client.expect("Pong")).value, 7);
    await client.close();
  } finally {
    await master.stop();
    await Deno.remove(keysDir, { recursive: true });
    await reset();
  }
});

Deno.test("a TLS handshake that never completes is closed at the handshake timeout", async () => {
  const logs = await captureLogs("info");
  await using certs = await makeTestCerts();
  const listener = listenTlsFrames({
    port: 0,
    cert: certs.cert,
    key: certs.key,
    handshakeTimeoutMs: 200,
    onFrame: () => {},
  });
  try {
    // Connects and sends nothing: no ClientHello, so the handshake cannot complete.
    const silent = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
    const buffer = new Uint8Array(16);
    const read = await silent.read(buffer).catch(() => null); // EOF (null) once closed
    assert.equal(read, null);
    silent.close();
    await waitUntil(
      () => logs.some((r) => String(r.message.join("")).includes("not completed within 200 ms")),
      "the handshake timeout log line",
      WAIT_MS,
    );
    assert.equal(listener.connections.size, 0);
  } finally {
    await listener.close();
    await reset();
  }
});

Deno.test("a TLS connection reports the peer's own address, not the loopback relay's", async () => {
  await using certs = await makeTestCerts();
  const accepted = Promise.withResolvers<number>();
  const listener = listenTlsFrames({
    port: 0,
    cert: certs.cert,
    key: certs.key,
    onConnection: (connection) => accepted.resolve(connection.remoteAddr.port),
    onFrame: () => {},
  });
  try {
    const client = await connectTlsFrames({
      port: listener.addr.port,
      caCerts: [certs.ca],
      onFrame: () => {},
    });
    assert.equal(await accepted.promise, (client.localAddr as Deno.NetAddr).port);
    await client.close();
  } finally {
    await listener.close();
  }
});
