/**
 * Starts and stops real, private redis-server processes for the tests.
 *
 * Every server listens on 127.0.0.1 only, on a free port picked by the OS, with its own
 * temporary working directory. Nothing here ever talks to a server it did not start.
 *
 * Safety nets so that no server outlives the test run:
 * - every live server is SIGKILLed (and its directory removed) when the Node process exits;
 * - when `REDIS_FILE_STREAM_TEST_RUN_DIR` is set (the vitest global setup sets it), the
 *   servers' directories and pid files live under it, and the global teardown kills any
 *   server still recorded there (see {@link reapServers}), even if a worker died hard.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { createServer, connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** Environment variable naming the folder that holds this test run's server dirs. */
export const RUN_DIR_ENV = 'REDIS_FILE_STREAM_TEST_RUN_DIR';

export interface StartRedisOptions {
  /**
   * Extra `redis-server` arguments, appended after the defaults (so they win over them), e.g.
   * `['--appendonly', 'yes']`, `['--maxmemory', '2mb', '--maxmemory-policy', 'noeviction']`,
   * `['--aclfile', path]`.
   */
  args?: string[];
  /** Adds `--requirepass <password>` and puts the password in `url`. */
  password?: string;
  /** Port to listen on. Default: a free port picked by the OS. */
  port?: number;
  /** How many times to poll the server with PING before giving up. Default 400 (50 ms apart). */
  readyTries?: number;
  /** The redis-server binary. Default: `redis-server` from PATH. */
  bin?: string;
}

export interface RedisServer {
  readonly host: '127.0.0.1';
  readonly port: number;
  /** `redis://127.0.0.1:<port>` (with `:password@` when a password was given). */
  readonly url: string;
  /** The server's working directory (RDB/AOF files, logs). Removed by `stop()`. */
  readonly dir: string;
  /** The full argument list the server was started with. */
  readonly args: readonly string[];
  /** PID of the current process, or undefined while the server is down. */
  readonly pid: number | undefined;
  /** The server's own log output (stdout and stderr) since it was (re)started. */
  log(): string;
  /** SIGTERM (graceful shutdown), wait for exit, then remove `dir`. Idempotent. */
  stop(): Promise<void>;
  /** Stop the process (SIGTERM) and start it again on the same port and dir with the same args. */
  restart(): Promise<void>;
  /** SIGKILL the process (no shutdown, no final AOF/RDB write) and wait for it to exit. Keeps `dir`, so `restart()` works. */
  kill(): Promise<void>;
}

interface Registry {
  live: Set<ChildProcess>;
  dirs: Set<string>;
}

/**
 * One registry per process, kept on globalThis: vitest may evaluate this module once per test
 * file in the same worker, and the exit hook must be installed only once.
 */
const REGISTRY_KEY = Symbol.for('redis-file-stream.test.redis-servers');
const registry: Registry = ((globalThis as Record<symbol, unknown>)[REGISTRY_KEY] as Registry | undefined) ??
  (() => {
    const created: Registry = { live: new Set(), dirs: new Set() };
    (globalThis as Record<symbol, unknown>)[REGISTRY_KEY] = created;
    const cleanup = (): void => {
      for (const child of created.live) {
        try {
          child.kill('SIGKILL');
        } catch {
          // already gone
        }
      }
      created.live.clear();
      for (const dir of created.dirs) {
        try {
          rmSync(dir, { recursive: true, force: true });
        } catch {
          // best effort
        }
      }
      created.dirs.clear();
    };
    process.once('exit', cleanup);
    // vitest stops its fork workers with SIGTERM, which skips 'exit' handlers. Clean up, then
    // let the signal do what it would have done: if nobody else listens for it, re-raise it.
    for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
      const onSignal = (): void => {
        cleanup();
        process.removeListener(signal, onSignal);
        if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
      };
      process.on(signal, onSignal);
    }
    return created;
  })();
const live = registry.live;
const liveDirs = registry.dirs;

/** Ask the OS for a free TCP port on 127.0.0.1. */
export async function getFreePort(): Promise<number> {
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

/** True when nothing listens on 127.0.0.1:port (we can bind it ourselves). */
export async function isPortFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

type Probe = 'ready' | 'loading' | 'other' | 'down';

function encodeCommand(args: readonly string[]): string {
  return `*${args.length}\r\n` + args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('');
}

type Reply = { type: 'simple' | 'error' | 'bulk'; text: string };

/** Parse the first `count` RESP replies (simple, error, bulk) from `buf`, or undefined if incomplete. */
function parseReplies(buf: Buffer, count: number): Reply[] | undefined {
  const replies: Reply[] = [];
  let pos = 0;
  while (replies.length < count) {
    const eol = buf.indexOf('\r\n', pos);
    if (eol === -1) return undefined;
    const head = buf.toString('latin1', pos, eol);
    const kind = head[0];
    if (kind === '+' || kind === '-' || kind === ':') {
      replies.push({ type: kind === '-' ? 'error' : 'simple', text: head.slice(1) });
      pos = eol + 2;
    } else if (kind === '$') {
      const len = Number.parseInt(head.slice(1), 10);
      if (len < 0) {
        replies.push({ type: 'bulk', text: '' });
        pos = eol + 2;
        continue;
      }
      if (buf.length < eol + 2 + len + 2) return undefined;
      replies.push({ type: 'bulk', text: buf.toString('utf8', eol + 2, eol + 2 + len) });
      pos = eol + 2 + len + 2;
    } else {
      replies.push({ type: 'error', text: `unexpected reply ${JSON.stringify(head)}` });
      return replies;
    }
  }
  return replies;
}

/**
 * Ask the server on `port` whether it is up, over a raw socket (no client library, no retries):
 * AUTH (when we know the password), PING and INFO server.
 * - `ready`: PING answered, and INFO's process_id is `pid` (so it is our server, not one that
 *   grabbed the port first); or the server demands a login we cannot give (ACL file), which
 *   still proves it is up.
 * - `loading`: still loading its RDB/AOF.
 * - `other`: another process answers on that port.
 * - `down`: nothing answers.
 */
function probe(port: number, pid: number, password: string | undefined): Promise<Probe> {
  return new Promise((resolve) => {
    const commands: string[][] = [];
    if (password !== undefined) commands.push(['AUTH', password]);
    commands.push(['PING'], ['INFO', 'server']);
    let data = Buffer.alloc(0);
    let done = false;
    const socket = netConnect({ host: '127.0.0.1', port });
    const finish = (result: Probe): void => {
      if (done) return;
      done = true;
      socket.destroy();
      resolve(result);
    };
    socket.setTimeout(2000, () => finish('down'));
    socket.once('error', () => finish('down'));
    socket.once('close', () => finish('down'));
    socket.once('connect', () => socket.write(commands.map(encodeCommand).join('')));
    socket.on('data', (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      const replies = parseReplies(data, commands.length);
      if (!replies) return;
      const [ping, info] = replies.slice(password === undefined ? 0 : 1);
      if (!ping || !info) return finish('down');
      if (ping.type === 'error' && ping.text.startsWith('LOADING')) return finish('loading');
      if (ping.type === 'error' && /^(NOAUTH|WRONGPASS|NOPERM)/.test(ping.text)) return finish('ready');
      if (ping.type !== 'simple') return finish('down');
      const match = info.type === 'bulk' ? /^process_id:(\d+)/m.exec(info.text) : null;
      if (!match) return finish('ready'); // INFO not allowed for this user: cannot check, PING is enough
      finish(Number(match[1]) === pid ? 'ready' : 'other');
    });
  });
}

function runDir(): string {
  const fromEnv = process.env[RUN_DIR_ENV];
  if (fromEnv) {
    mkdirSync(fromEnv, { recursive: true });
    return fromEnv;
  }
  return tmpdir();
}

const MAX_LOG = 64 * 1024;

class ServerHandle implements RedisServer {
  readonly host = '127.0.0.1' as const;
  readonly url: string;
  readonly args: readonly string[];
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private output = '';
  private removed = false;

  constructor(
    readonly port: number,
    readonly dir: string,
    private readonly bin: string,
    extraArgs: readonly string[],
    private readonly password: string | undefined,
    private readonly readyTries: number,
  ) {
    this.args = [
      '--port', String(port),
      '--bind', '127.0.0.1',
      '--dir', dir,
      '--save', '',
      '--appendonly', 'no',
      '--daemonize', 'no',
      '--logfile', '',
      ...(password === undefined ? [] : ['--requirepass', password]),
      ...extraArgs,
    ];
    const auth = password === undefined ? '' : `:${encodeURIComponent(password)}@`;
    this.url = `redis://${auth}127.0.0.1:${port}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  log(): string {
    return this.output;
  }

  /** Spawn the process and wait until it answers PING. */
  async start(): Promise<void> {
    if (this.removed) throw new Error(`redis-server on port ${this.port} was stopped for good; start a new one`);
    if (this.child) return;
    this.output = '';
    const child = spawn(this.bin, this.args, { cwd: this.dir, stdio: ['ignore', 'pipe', 'pipe'] });
    const append = (data: Buffer): void => {
      this.output += data.toString('utf8');
      if (this.output.length > MAX_LOG) this.output = this.output.slice(-MAX_LOG);
    };
    child.stdout?.on('data', append);
    child.stderr?.on('data', append);
    let exitInfo: string | undefined;
    let spawnError: Error | undefined;
    this.exited = new Promise<void>((resolve) => {
      child.once('error', (err) => {
        spawnError = err;
        exitInfo = `failed to spawn: ${err.message}`;
        resolve();
      });
      child.once('exit', (code, signal) => {
        exitInfo = signal ? `killed by ${signal}` : `exited with code ${code}`;
        resolve();
      });
    }).then(() => {
      live.delete(child);
      if (this.child === child) this.child = undefined;
      this.removePidFile();
    });
    this.child = child;
    live.add(child);
    if (child.pid !== undefined) this.writePidFile(child.pid);

    for (let i = 0; i < this.readyTries; i++) {
      if (exitInfo !== undefined) break;
      const state = await probe(this.port, child.pid ?? -1, this.password);
      if (state === 'ready' && exitInfo === undefined) return;
      await sleep(50);
    }
    const why = exitInfo ?? `did not answer PING after ${this.readyTries} tries`;
    if (exitInfo === undefined) await this.terminate('SIGKILL');
    else await this.exited;
    const error = new Error(
      `redis-server on 127.0.0.1:${this.port} did not come up (${why}).\n` +
        `command: ${this.bin} ${this.args.map((a) => (a === '' ? "''" : a)).join(' ')}\n` +
        `--- server output ---\n${this.output.trim() || '(none)'}`,
    );
    (error as Error & { serverOutput?: string }).serverOutput = this.output;
    if (spawnError) (error as Error & { cause?: unknown }).cause = spawnError;
    throw error;
  }

  private pidFile(): string {
    return join(this.dir, 'redis-test.pid');
  }

  private writePidFile(pid: number): void {
    try {
      writeFileSync(this.pidFile(), `${pid}\n`);
    } catch {
      // only a safety net
    }
  }

  private removePidFile(): void {
    try {
      unlinkSync(this.pidFile());
    } catch {
      // not there
    }
  }

  private async terminate(signal: NodeJS.Signals): Promise<void> {
    const child = this.child;
    if (!child) return;
    child.kill(signal);
    if (signal !== 'SIGKILL') {
      // A graceful shutdown normally takes milliseconds; never wait forever.
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        this.exited.then(() => false),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(true), 20_000);
        }),
      ]);
      clearTimeout(timer);
      if (timedOut) child.kill('SIGKILL');
    }
    await this.exited;
  }

  async stop(): Promise<void> {
    await this.terminate('SIGTERM');
    if (!this.removed) {
      this.removed = true;
      rmSync(this.dir, { recursive: true, force: true });
      liveDirs.delete(this.dir);
    }
  }

  async restart(): Promise<void> {
    await this.terminate('SIGTERM');
    await this.start();
  }

  async kill(): Promise<void> {
    await this.terminate('SIGKILL');
  }
}

/**
 * Start a private redis-server on a free 127.0.0.1 port and wait until it answers PING.
 * Always `await server.stop()` when done (e.g. in `afterAll`).
 */
export async function startRedis(opts: StartRedisOptions = {}): Promise<RedisServer> {
  const bin = opts.bin ?? 'redis-server';
  const readyTries = opts.readyTries ?? 400;
  // Picking a free port and binding it later is racy when test files run in parallel:
  // retry with a new port when the one we picked was taken in between.
  const attempts = opts.port === undefined ? 5 : 1;
  let lastError: unknown;
  for (let attempt = 0; attempt < attempts; attempt++) {
    const port = opts.port ?? (await getFreePort());
    const dir = mkdtempSync(join(runDir(), `redis-${port}-`));
    liveDirs.add(dir);
    const server = new ServerHandle(port, dir, bin, opts.args ?? [], opts.password, readyTries);
    try {
      await server.start();
      return server;
    } catch (err) {
      lastError = err;
      await server.stop();
      const output = (err as { serverOutput?: string }).serverOutput ?? '';
      if (!/Address already in use/i.test(output)) break;
    }
  }
  throw lastError;
}

/**
 * Kill every server whose pid file is still under `dir` (a test run dir), then remove `dir`.
 * Only processes whose command line is a redis-server are signalled, so a recycled pid is safe.
 * Used by the vitest global teardown as the last safety net.
 */
export function reapServers(dir: string): number {
  let killed = 0;
  if (!existsSync(dir)) return killed;
  for (const entry of readdirSync(dir)) {
    const pidFile = join(dir, entry, 'redis-test.pid');
    let pid: number;
    try {
      pid = Number.parseInt(readFileSync(pidFile, 'utf8'), 10);
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
