// Private redis-server processes: 127.0.0.1 only, a free port, a temp dir of their own, no
// persistence unless asked. Types and docs: ../redis-launcher.d.mts.
//
// Safety nets so that no server outlives the process that started it:
// - every live server is SIGKILLed (and its dir removed) when the Node process exits, and on
//   SIGTERM / SIGINT / SIGHUP when nothing else in the process handles that signal (a process that
//   does, like the demo or the benchmarks, stops its servers itself, in order);
// - when RUN_DIR_ENV names a folder (the vitest global setup sets it), the servers' dirs and pid
//   files live under it, and reapServers() kills any server still recorded there, even one whose
//   process died hard.

import { spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { command, exchange } from './resp.mjs';

export const RUN_DIR_ENV = 'REDIS_FILE_STREAM_TEST_RUN_DIR';

const PID_FILE = 'redis-test.pid';
const MAX_LOG = 64 * 1024;

/**
 * One registry per process, kept on globalThis: vitest may evaluate this module once per test file
 * in the same worker, and the hooks must be installed only once.
 */
const REGISTRY_KEY = Symbol.for('redis-file-stream.test.redis-servers');
const registry = globalThis[REGISTRY_KEY] ?? createRegistry();

function createRegistry() {
  const created = { live: new Set(), dirs: new Set() };
  globalThis[REGISTRY_KEY] = created;
  const cleanup = () => {
    for (const child of created.live) {
      try {
        child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
    created.live.clear();
    for (const dir of created.dirs) rmSync(dir, { recursive: true, force: true });
    created.dirs.clear();
  };
  process.once('exit', cleanup);
  // A signal skips 'exit' handlers when nobody listens for it (vitest stops its fork workers with
  // SIGTERM). Then clean up and let the signal do what it would have done. When someone else
  // listens, the signal is theirs: they stop the servers (and exit, which runs `cleanup`).
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP']) {
    const onSignal = () => {
      if (process.listenerCount(signal) > 1) return;
      cleanup();
      process.removeListener(signal, onSignal);
      process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
  return created;
}

/** A free TCP port on 127.0.0.1, as the OS picks it. */
export function getFreePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      if (address === null || typeof address === 'string') {
        srv.close();
        reject(new Error('could not read the port of a listening socket'));
        return;
      }
      srv.close((err) => (err ? reject(err) : resolve(address.port)));
    });
  });
}

/** True when nothing listens on 127.0.0.1:`port` (we can bind it ourselves). */
export function isPortFree(port) {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/**
 * Whether the server on `port` is up, asked with AUTH (when we know the password), PING and INFO:
 * - 'ready': PING answered and INFO's process_id is `pid` (our server, not one that grabbed the
 *   port first); or the server demands a login we cannot give (ACL file), which proves it is up;
 * - 'loading': still loading its RDB/AOF;
 * - 'other': another process answers on that port;
 * - 'down': nothing answers.
 */
async function probe(port, pid, password) {
  const commands = [...(password === undefined ? [] : [['AUTH', password]]), ['PING'], ['INFO', 'server']];
  let replies;
  try {
    replies = await exchange(port, commands);
  } catch {
    return 'down';
  }
  const [ping, info] = replies.slice(password === undefined ? 0 : 1);
  if (!ping || !info) return 'down';
  if (ping.type === 'error' && ping.text.startsWith('LOADING')) return 'loading';
  if (ping.type === 'error' && /^(NOAUTH|WRONGPASS|NOPERM)/.test(ping.text)) return 'ready';
  if (ping.type !== 'simple') return 'down';
  const match = info.type === 'bulk' ? /^process_id:(\d+)/m.exec(info.text) : null;
  if (!match) return 'ready'; // INFO not allowed for this user: cannot check, PING is enough
  return Number(match[1]) === pid ? 'ready' : 'other';
}

function runDir() {
  const fromEnv = process.env[RUN_DIR_ENV];
  if (!fromEnv) return tmpdir();
  mkdirSync(fromEnv, { recursive: true });
  return fromEnv;
}

class RedisServer {
  host = '127.0.0.1';
  #bin;
  #password;
  #readyTries;
  #detached;
  #child;
  #exited = Promise.resolve();
  #output = '';
  #removed = false;

  constructor({ port, tlsPort, dir, bin, args, password, readyTries, detached, tls }) {
    this.port = port;
    this.tlsPort = tlsPort;
    this.dir = dir;
    this.#bin = bin;
    this.#password = password;
    this.#readyTries = readyTries;
    this.#detached = detached;
    this.args = [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--save',
      '',
      '--appendonly',
      'no',
      // A replica's first sync starts at once: by default a primary waits 5 s for more replicas
      // to share it, and a new cluster, or a replica rejoining one, waited those 5 s every time.
      '--repl-diskless-sync-delay',
      '0',
      '--daemonize',
      'no',
      '--logfile',
      '',
      ...(password === undefined ? [] : ['--requirepass', password]),
      ...(tls === undefined
        ? []
        : [
            '--tls-port',
            String(tlsPort),
            '--tls-cert-file',
            tls.certFile,
            '--tls-key-file',
            tls.keyFile,
            '--tls-ca-cert-file',
            tls.caFile,
            '--tls-auth-clients',
            tls.authClients ?? 'no',
          ]),
      ...args,
    ];
    const auth = password === undefined ? '' : `:${encodeURIComponent(password)}@`;
    this.url = tls === undefined ? `redis://${auth}127.0.0.1:${port}` : `rediss://${auth}127.0.0.1:${tlsPort}`;
  }

  get pid() {
    return this.#child?.pid;
  }

  log() {
    return this.#output;
  }

  /** Spawn the process and wait until it answers PING (then close the plain port of a TLS server). */
  async start() {
    if (this.#removed) throw new Error(`redis-server on port ${this.port} was stopped for good; start a new one`);
    if (this.#child) return;
    this.#output = '';
    const child = spawn(this.#bin, this.args, {
      cwd: this.dir,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: this.#detached,
    });
    const append = (data) => {
      this.#output += data.toString('utf8');
      if (this.#output.length > MAX_LOG) this.#output = this.#output.slice(-MAX_LOG);
    };
    child.stdout.on('data', append);
    child.stderr.on('data', append);
    let exitInfo;
    let spawnError;
    this.#exited = new Promise((resolve) => {
      child.once('error', (err) => {
        spawnError = err;
        exitInfo =
          err.code === 'ENOENT'
            ? `${this.#bin} is not installed (bash scripts/ensure-redis.sh installs it)`
            : `failed to spawn: ${err.message}`;
        resolve();
      });
      child.once('exit', (code, signal) => {
        exitInfo ??= signal ? `killed by ${signal}` : `exited with code ${code}`;
        resolve();
      });
    }).then(() => {
      registry.live.delete(child);
      if (this.#child === child) this.#child = undefined;
      this.#removePidFile();
    });
    this.#child = child;
    registry.live.add(child);
    if (child.pid !== undefined) this.#writePidFile(child.pid);

    for (let i = 0; i < this.#readyTries && exitInfo === undefined; i++) {
      const state = await probe(this.port, child.pid ?? -1, this.#password);
      if (state === 'ready' && exitInfo === undefined) {
        if (this.tlsPort !== undefined) await this.#closePlainPort();
        return;
      }
      await sleep(50);
    }
    const why = exitInfo ?? `did not answer PING after ${this.#readyTries} tries`;
    if (exitInfo === undefined) await this.#terminate('SIGKILL');
    else await this.#exited;
    const error = new Error(
      `redis-server on 127.0.0.1:${this.port} did not come up (${why}).\n` +
        `command: ${this.#bin} ${this.args.map((a) => (a === '' ? "''" : a)).join(' ')}\n` +
        `--- server output ---\n${this.#output.trim() || '(none)'}`,
      spawnError === undefined ? undefined : { cause: spawnError },
    );
    error.serverOutput = this.#output;
    throw error;
  }

  /**
   * A TLS port cannot answer the plain-socket readiness check, so a TLS server starts with both
   * ports; once it is ready, only the TLS port stays open.
   */
  async #closePlainPort() {
    try {
      await command(this.port, ['CONFIG', 'SET', 'port', '0'], { password: this.#password });
      if ((await probe(this.port, this.pid ?? -1, this.#password)) !== 'down') {
        throw new Error(`redis-server still answers on its plain port 127.0.0.1:${this.port} after CONFIG SET port 0`);
      }
    } catch (err) {
      await this.#terminate('SIGKILL');
      throw err;
    }
  }

  #pidFile() {
    return join(this.dir, PID_FILE);
  }

  #writePidFile(pid) {
    try {
      writeFileSync(this.#pidFile(), `${pid}\n`);
    } catch {
      // only a safety net
    }
  }

  #removePidFile() {
    try {
      unlinkSync(this.#pidFile());
    } catch {
      // not there
    }
  }

  async #terminate(signal) {
    const child = this.#child;
    if (!child) return;
    child.kill(signal);
    if (signal !== 'SIGKILL') {
      // A graceful shutdown normally takes milliseconds; never wait forever.
      let timer;
      const timedOut = await Promise.race([
        this.#exited.then(() => false),
        new Promise((resolve) => {
          timer = setTimeout(() => resolve(true), 20_000);
        }),
      ]);
      clearTimeout(timer);
      if (timedOut) child.kill('SIGKILL');
    }
    await this.#exited;
  }

  async stop() {
    await this.#terminate('SIGTERM');
    if (!this.#removed) {
      this.#removed = true;
      rmSync(this.dir, { recursive: true, force: true });
      registry.dirs.delete(this.dir);
    }
  }

  async restart() {
    await this.#terminate('SIGTERM');
    await this.start();
  }

  async kill() {
    await this.#terminate('SIGKILL');
  }
}

/**
 * Start a private redis-server and wait until it answers PING. Always `await server.stop()`.
 *
 * @param {import('../redis-launcher.mjs').StartRedisOptions} [opts]
 */
export async function startRedis(opts = {}) {
  const { bin = 'redis-server', readyTries = 400, args = [], password, tls, detached = false } = opts;
  const pickPort = opts.port === undefined ? (opts.pickPort ?? getFreePort) : async () => opts.port;
  // Picking a free port and binding it later is racy when other processes start servers too:
  // try again with new ports when one was taken in between.
  const attempts = opts.port === undefined ? 5 : 1;
  let lastError;
  for (let attempt = 0; attempt < attempts; attempt++) {
    const port = await pickPort();
    const tlsPort = tls === undefined ? undefined : await getFreePort();
    const dir = mkdtempSync(join(runDir(), `redis-${port}-`));
    registry.dirs.add(dir);
    const server = new RedisServer({ port, tlsPort, dir, bin, args, password, readyTries, detached, tls });
    try {
      await server.start();
      return server;
    } catch (err) {
      lastError = err;
      await server.stop();
      if (!/Address already in use/i.test(err.serverOutput ?? '')) break;
    }
  }
  throw lastError;
}

/**
 * Kill every server whose pid file is still under `dir` (a run dir), then remove `dir`. Only
 * processes whose command line is a redis-server are signalled, so a recycled pid is safe.
 */
export function reapServers(dir) {
  let killed = 0;
  if (!existsSync(dir)) return killed;
  for (const entry of readdirSync(dir)) {
    let pid;
    try {
      pid = Number.parseInt(readFileSync(join(dir, entry, PID_FILE), 'utf8'), 10);
    } catch {
      continue;
    }
    if (!Number.isInteger(pid) || pid <= 0) continue;
    let cmdline = '';
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      continue; // not running (or no /proc)
    }
    if (!cmdline.includes('redis-server')) continue;
    try {
      process.kill(pid, 'SIGKILL');
      killed++;
    } catch {
      // already gone
    }
  }
  rmSync(dir, { recursive: true, force: true });
  return killed;
}
