/**
 * The demo (`scripts/demo.mjs`), run as users run it: a child process importing the built package
 * by its name, forking its receiver processes, with small files and a channel of its own: the runs
 * that send under a memory limit on a private redis-server the demo starts (the limit is counted
 * from the server's used_memory), the others on the shared test server (REDIS_URL). Never asserts
 * times: only the outcome, the
 * output's verdict, and that Redis, the processes and the temp dir are left clean.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createConnection } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { closeChannel } from '../src/index.js';
import { closeAll, connect, sharedRedisUrl, uniqueKey } from './helpers/clients.js';
import { channelLogOf } from './helpers/keys.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const demo = join(root, 'scripts', 'demo.mjs');

const redis = connect();
afterAll(closeAll);

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

interface RunOptions {
  /** The server; null: none, the demo starts its own private redis-server. */
  redisUrl?: string | null;
  /** Called with the demo's pid and its output so far, each time it prints. */
  onOutput?: (pid: number, stdout: string) => void;
}

function runDemo(args: string[], { redisUrl = sharedRedisUrl(), onOutput }: RunOptions = {}): Promise<Run> {
  const env = { ...process.env };
  delete env.REDIS_URL;
  if (redisUrl !== null) env.REDIS_URL = redisUrl;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [demo, ...args], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString('utf8');
      onOutput?.(child.pid!, stdout);
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    // Never leave a demo running if the test times out.
    const timer = setTimeout(() => child.kill('SIGKILL'), 110_000);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

function show(run: Run): string {
  return `exit ${run.code ?? run.signal}\n--- stdout ---\n${run.stdout}\n--- stderr ---\n${run.stderr}`;
}

/** Whether nothing accepts connections on 127.0.0.1:`port` any more. */
function portIsClosed(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Every Redis key of the channel under the demo's default `rfs:` prefix: its log
 * `rfs:channel:{<channel>}:log` and its files' keys `rfs:{<channel>/<upload>/<file>}:…`.
 */
function keysOf(channel: string): Promise<string[]> {
  return redis.keys(`rfs:*${channel}*`);
}

const tempDirOf = (run: Run): string | undefined => /^demo: sender's log directory (\S+) /m.exec(run.stdout)?.[1];

describe('scripts/demo.mjs', () => {
  it('sends 4 log files to 3 receiver processes that all match, and leaves no key of the channel behind', async () => {
    const channel = uniqueKey('demo');
    // A server of its own: the demo's memory limit is the server's used_memory at its start plus
    // a few MiB, which the other test files, writing to the shared server meanwhile, could take.
    const run = await runDemo(['--size-mib', '1', '--receivers', '3', '--channel', channel], { redisUrl: null });
    expect(run.code, show(run)).toBe(0);
    expect(run.stdout, show(run)).toContain('demo: all 3 receivers match the direct computation');
    expect(run.stdout, show(run)).toMatch(/^ {2}receiver-3 +4 /m); // every receiver got the 4 files
    // On its own server, the demo checks that nothing at all is left.
    expect(run.stdout, show(run)).toContain('Redis is empty (DBSIZE 0)');
    expect(run.stderr, show(run)).toBe('');
    expect(existsSync(dirname(tempDirOf(run)!))).toBe(false);
  }, 120_000);

  it('a receiver killed (SIGKILL) in the middle of a file and restarted as the same consumer still ends with the right aggregate', async () => {
    const channel = uniqueKey('demo-kill');
    const run = await runDemo(['--size-mib', '1', '--receivers', '2', '--channel', channel, '--kill-receiver', '2'], {
      redisUrl: null,
    });
    expect(run.code, show(run)).toBe(0);
    expect(run.stdout, show(run)).toContain(
      'demo: receiver 2 killed (SIGKILL) in the middle of access-2026-11-28.csv, after 1 acknowledged file',
    );
    // It resumed at the file it had not acknowledged, from its beginning, and not earlier.
    expect(run.stdout, show(run)).toContain(
      "demo: receiver 2's new process resumed at access-2026-11-28.csv from byte 0 and received access-2026-11-28.csv, access-2026-11-29.csv, access-2026-11-30.csv",
    );
    expect(run.stdout, show(run)).toContain(
      'demo: all 2 receivers match the direct computation (receiver 2 was killed and restarted)',
    );
    expect(run.stdout, show(run)).toContain('Redis is empty (DBSIZE 0)');
    expect(run.stderr, show(run)).toBe('');
  }, 120_000);

  it('refuses a channel that already exists, exits 1 with one line, and leaves it alone', async () => {
    const channel = uniqueKey('demo-taken');
    await closeChannel(redis, channel);
    const log = channelLogOf(channel);
    expect(await keysOf(channel)).toEqual([log]); // the pattern does find a channel's keys
    const run = await runDemo(['--size-mib', '0.05', '--receivers', '1', '--channel', channel]);
    expect(run.code, show(run)).toBe(1);
    expect(run.stderr.trim(), show(run)).toBe(
      `demo: the channel ${JSON.stringify(channel)} already has 1 key on this server (${log}); ` +
        'the demo never touches a channel it did not create: pick another --channel',
    );
    expect(await redis.xlen(log)).toBe(1);
    await redis.del(log);
  }, 120_000);

  it('without REDIS_URL starts a private redis-server, leaves it empty, stops it, and removes its temp files', async () => {
    const run = await runDemo(['--size-mib', '0.05', '--receivers', '2'], { redisUrl: null });
    expect(run.code, show(run)).toBe(0);
    expect(run.stdout, show(run)).toContain('demo: all 2 receivers match the direct computation');
    expect(run.stdout, show(run)).toContain('Redis is empty (DBSIZE 0)');
    const port = Number(/started a private redis-server on 127\.0\.0\.1:(\d+)/.exec(run.stdout)?.[1]);
    expect(port, show(run)).toBeGreaterThan(0);
    expect(await portIsClosed(port)).toBe(true);
    const dir = tempDirOf(run);
    expect(dir, show(run)).toBeDefined();
    expect(existsSync(dirname(dir!))).toBe(false);
  }, 120_000);

  it('on SIGINT stops its receivers and its redis-server, removes its temp dir, and exits 130', async () => {
    let receivers: number[] = [];
    let sent = false;
    const run = await runDemo(['--size-mib', '8', '--receivers', '2'], {
      redisUrl: null,
      onOutput(pid, stdout) {
        if (sent || !stdout.includes('demo: sending')) return;
        sent = true;
        // The demo's children: the redis-server and the receiver processes.
        const ps = spawnSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' });
        receivers = ps.stdout
          .split('\n')
          .filter((l) => l.trim())
          .map(Number);
        process.kill(pid, 'SIGINT');
      },
    });
    expect(sent, show(run)).toBe(true);
    expect(run.code, show(run)).toBe(130);
    expect(run.stderr, show(run)).toContain('demo: interrupted');
    expect(run.stderr, show(run)).not.toMatch(/\n\s+at /);
    expect(receivers.length, show(run)).toBe(3);
    expect(receivers.filter(isAlive)).toEqual([]);
    const port = Number(/started a private redis-server on 127\.0\.0\.1:(\d+)/.exec(run.stdout)?.[1]);
    expect(await portIsClosed(port)).toBe(true);
    expect(existsSync(dirname(tempDirOf(run)!))).toBe(false);
  }, 120_000);

  it('rejects bad options with exit 1 and a one-line message', async () => {
    const run = await runDemo(['--receivers', '0']);
    expect(run.code, show(run)).toBe(1);
    expect(run.stderr.trim(), show(run)).toBe('demo: --receivers must be an integer from 1 to 32, got "0"');
    const alias = await runDemo(['--readers', '40']);
    expect(alias.code, show(alias)).toBe(1);
    expect(alias.stderr.trim(), show(alias)).toBe('demo: --readers must be an integer from 1 to 32, got "40"');
    const unknown = await runDemo(['--key', 'x']);
    expect(unknown.code, show(unknown)).toBe(1);
    expect(unknown.stderr.trim(), show(unknown)).toBe("demo: Unknown option '--key' (see --help)");
  }, 60_000);
});
