/**
 * The demo (`scripts/demo.mjs`), run as users run it: a child process importing the built package
 * by its name, here against the shared test server (REDIS_URL) with a small file and a key of its
 * own. Never asserts times: only the outcome, the output's verdict, and that Redis is left clean.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createConnection } from 'node:net';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { createRedisWriteStream, stat } from '../src/index.js';
import { closeAll, connect, sharedRedisUrl, uniqueKey } from './helpers/clients.js';

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

/** Run the demo; with `redisUrl` null it starts its own private redis-server. */
function runDemo(args: string[], redisUrl: string | null = sharedRedisUrl()): Promise<Run> {
  const env = { ...process.env };
  delete env.REDIS_URL;
  if (redisUrl !== null) env.REDIS_URL = redisUrl;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [demo, ...args], {
      cwd: root,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
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

/** Every Redis key whose name holds the file key (the demo uses the default `rfs:` prefix). */
function keysOf(key: string): Promise<string[]> {
  return redis.keys(`rfs:*${key}*`);
}

describe('scripts/demo.mjs', () => {
  it('streams a gzipped CSV to 3 following readers that all match, and leaves no key behind', async () => {
    const key = uniqueKey('demo');
    const run = await runDemo(['--size-mib', '1', '--readers', '3', '--key', key]);
    expect(run.code, show(run)).toBe(0);
    expect(run.stdout, show(run)).toContain('demo: all 3 readers match the direct computation');
    expect(run.stderr, show(run)).not.toMatch(/\n\s+at /);
    expect(await keysOf(key)).toEqual([]);
  }, 120_000);

  it('refuses a key that already holds a file, exits 1 without a stack trace, and leaves that file alone', async () => {
    const key = uniqueKey('demo-taken');
    const content = Buffer.from('not the demo’s file\n');
    await pipeline(Readable.from([content]), createRedisWriteStream(redis, key));
    const before = await stat(redis, key);
    expect((await keysOf(key)).length).toBeGreaterThan(0); // the pattern does find a file's keys
    const run = await runDemo(['--size-mib', '0.05', '--readers', '1', '--key', key]);
    expect(run.code, show(run)).toBe(1);
    expect(run.stderr, show(run)).toContain('already holds a complete file');
    expect(run.stderr, show(run)).not.toMatch(/\n\s+at /);
    expect(await stat(redis, key)).toMatchObject({ state: 'complete', size: content.length, crc32: before.crc32 });
  }, 120_000);

  it('without REDIS_URL starts a private redis-server and stops it, and removes its temp files', async () => {
    const run = await runDemo(['--size-mib', '0.05', '--readers', '2'], null);
    expect(run.code, show(run)).toBe(0);
    expect(run.stdout, show(run)).toContain('demo: all 2 readers match the direct computation');
    const port = Number(/started a private redis-server on 127\.0\.0\.1:(\d+)/.exec(run.stdout)?.[1]);
    expect(port, show(run)).toBeGreaterThan(0);
    expect(await portIsClosed(port)).toBe(true);
    const file = /^demo: file (.+)$/m.exec(run.stdout)?.[1];
    expect(file, show(run)).toBeDefined();
    expect(existsSync(dirname(file!))).toBe(false);
  }, 120_000);

  it('rejects bad options with exit 1 and a one-line message', async () => {
    const run = await runDemo(['--readers', '0']);
    expect(run.code, show(run)).toBe(1);
    expect(run.stderr.trim(), show(run)).toBe('demo: --readers must be an integer from 1 to 32, got "0"');
  }, 60_000);
});
