/**
 * Private TLS redis-servers for the tests, with certificates made at run time.
 *
 *   const tls = await startTlsRedis();                 // server cert from a fresh test CA
 *   const redis = connect(tls.url, { tls: tls.clientTls() });
 *   ...
 *   await tls.stop();                                  // stops the server, removes the certificates
 *
 * The certificates come from `selfsigned` (pure JS over Node's WebCrypto): a CA, a server
 * certificate signed by it for 127.0.0.1 / ::1 / localhost, and a client certificate signed by it
 * (for `--tls-auth-clients yes`). EC P-256 keys, so making them takes milliseconds.
 *
 * The server comes from the shared launcher's `tls` option: it checks readiness on a plain port,
 * then closes it (`CONFIG SET port 0`), leaving a TLS-only server, also after `restart()`.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import { generate } from 'selfsigned';
import { type RedisServer, RUN_DIR_ENV, startRedis } from './redis-server.js';

/** PEM texts and the files holding them. */
export interface TestCertificates {
  /** Folder of the PEM files; removed by {@link TestCertificates.remove}. */
  readonly dir: string;
  readonly ca: string;
  readonly caFile: string;
  readonly serverCert: string;
  readonly serverKey: string;
  readonly serverCertFile: string;
  readonly serverKeyFile: string;
  /** Client certificate and key, signed by the same CA (for `--tls-auth-clients yes`). */
  readonly clientCert: string;
  readonly clientKey: string;
  remove(): void;
}

const HOUR = 3600_000;

/**
 * Make a throwaway CA, a server certificate for 127.0.0.1, ::1 and localhost, and a client
 * certificate, all valid from an hour ago (clock skew) for one day, and write them to a new
 * folder (under the test run's folder when there is one, so the global teardown removes it too).
 */
export async function makeTestCertificates(): Promise<TestCertificates> {
  const notBeforeDate = new Date(Date.now() - HOUR);
  const notAfterDate = new Date(Date.now() + 24 * HOUR);
  const common = { keyType: 'ec', curve: 'P-256', algorithm: 'sha256', notBeforeDate, notAfterDate } as const;

  const ca = await generate([{ name: 'commonName', value: 'redis-file-stream test CA' }], {
    ...common,
    extensions: [
      { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    ],
  });
  const signer = { ca: { key: ca.private, cert: ca.cert } };
  const server = await generate([{ name: 'commonName', value: 'localhost' }], {
    ...common,
    ...signer,
    extensions: [
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: [
          { type: 7, ip: '127.0.0.1' },
          { type: 7, ip: '::1' },
          { type: 2, value: 'localhost' },
        ],
      },
    ],
  });
  const client = await generate([{ name: 'commonName', value: 'redis-file-stream test client' }], {
    ...common,
    ...signer,
    extensions: [
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, critical: true },
      { name: 'extKeyUsage', clientAuth: true },
    ],
  });

  const parent = process.env[RUN_DIR_ENV] || tmpdir();
  mkdirSync(parent, { recursive: true });
  const dir = mkdtempSync(join(parent, 'tls-certs-'));
  const file = (name: string, pem: string): string => {
    const path = join(dir, name);
    writeFileSync(path, pem, { mode: 0o600 });
    return path;
  };
  return {
    dir,
    ca: ca.cert,
    caFile: file('ca.crt', ca.cert),
    serverCert: server.cert,
    serverKey: server.private,
    serverCertFile: file('server.crt', server.cert),
    serverKeyFile: file('server.key', server.private),
    clientCert: client.cert,
    clientKey: client.private,
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export interface StartTlsRedisOptions {
  /** `--tls-auth-clients`: whether clients must present a certificate. Default `'no'`. */
  authClients?: 'no' | 'yes' | 'optional';
  /** Adds `--requirepass` (see `startRedis`) and puts the password in `url`. */
  password?: string;
  /** More `redis-server` arguments. */
  args?: string[];
}

export interface TlsRedisServer {
  /** The underlying server. Its plain `port` is closed once the server is ready. */
  readonly server: RedisServer;
  /** The only port the server listens on. */
  readonly tlsPort: number;
  /** `rediss://127.0.0.1:<tlsPort>` (with `:password@` when a password was given). */
  readonly url: string;
  readonly certs: TestCertificates;
  /** ioredis `tls` options trusting the test CA; with the client certificate when asked. */
  clientTls(options?: { clientCertificate?: boolean }): ConnectionOptions;
  /** Stop the server and remove the certificates. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Start a private TLS-only redis-server on a free 127.0.0.1 port, with fresh certificates.
 * Always `await tls.stop()` when done.
 */
export async function startTlsRedis(opts: StartTlsRedisOptions = {}): Promise<TlsRedisServer> {
  const certs = await makeTestCertificates();
  try {
    const server = await startRedis({
      ...(opts.password === undefined ? {} : { password: opts.password }),
      ...(opts.args === undefined ? {} : { args: opts.args }),
      tls: {
        certFile: certs.serverCertFile,
        keyFile: certs.serverKeyFile,
        caFile: certs.caFile,
        authClients: opts.authClients ?? 'no',
      },
    });
    let stopped = false;
    return {
      server,
      tlsPort: server.tlsPort!,
      url: server.url,
      certs,
      clientTls: ({ clientCertificate = false } = {}) => ({
        ca: certs.ca,
        ...(clientCertificate ? { cert: certs.clientCert, key: certs.clientKey } : {}),
      }),
      stop: async () => {
        if (stopped) return;
        stopped = true;
        try {
          await server.stop();
        } finally {
          certs.remove();
        }
      },
    };
  } catch (err) {
    certs.remove();
    throw err;
  }
}

/**
 * Send a plain-text (RESP) PING to 127.0.0.1:port and report whether `+PONG` came back before the
 * server closed the connection (or 2 s passed). False for a TLS port and for a closed port.
 */
export function answersPlainPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    let data = '';
    let done = false;
    const socket = netConnect({ host: '127.0.0.1', port });
    const finish = (answered: boolean): void => {
      if (done) return;
      done = true;
      socket.destroy();
      resolve(answered);
    };
    socket.setTimeout(2000, () => finish(false));
    socket.once('error', () => finish(false));
    socket.once('close', () => finish(data.includes('+PONG')));
    socket.once('connect', () => socket.write('*1\r\n$4\r\nPING\r\n'));
    socket.on('data', (chunk: Buffer) => {
      data += chunk.toString('latin1');
      if (data.includes('+PONG')) finish(true);
    });
  });
}
