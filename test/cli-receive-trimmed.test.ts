/**
 * `redis-file receive` killed (SIGKILL) in the middle of a file whose first bytes Redis then trims
 * (the sender's --max-redis-memory, once every receiver had consumed them): started again, it never
 * passes the rest off as the file. It says in one line that it skips it, and goes on with the next.
 * The built binary against a private redis-server, so that the memory limit is exact.
 */
import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeChannel, sendFiles } from '../src/index.js';
import { closeAll, connect } from './helpers/clients.js';
import { type RedisServer, startRedis } from './helpers/redis-server.js';
import { bytes } from './helpers/streams.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const CLI = join(root, 'dist', 'esm', 'cli', 'main.js');
const MiB = 1024 * 1024;

let server: RedisServer;
let admin: Redis;
let dir: string;
const children = new Set<ChildProcessWithoutNullStreams>();
beforeAll(async () => {
  server = await startRedis();
  admin = connect(server.url);
  dir = mkdtempSync(join(tmpdir(), 'rfs-cli-trimmed-'));
});
afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  await closeAll();
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** `redis-file ...args` against the private server; resolves with its exit code and stderr. */
function start(args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: root,
    env: { ...process.env, REDIS_URL: server.url, ...env },
    stdio: 'pipe',
  });
  children.add(child);
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) =>
    child.on('close', (code, signal) => {
      children.delete(child);
      resolve({ code, signal, stderr });
    }),
  );
  return { child, done };
}

/** Poll Redis until `check` holds (a guard against a hang, not a timing assertion). */
async function until(check: () => Promise<boolean>, what: string): Promise<void> {
  for (const deadline = Date.now() + 60_000; !(await check()); await sleep(20)) {
    if (Date.now() > deadline) throw new Error(`still waiting for ${what}`);
  }
}

describe('redis-file receive, killed in the middle of a file that Redis then trims', () => {
  it('started again, it skips that file in one line and receives the next', async () => {
    const used = Number(/^used_memory:(\d+)/m.exec(await admin.info('memory'))![1]);
    const big = bytes(8 * MiB, 7);
    const out = mkdtempSync(join(dir, 'out-'));
    writeFileSync(join(dir, 'big.bin'), big);
    writeFileSync(join(dir, 'after.txt'), 'after\n');
    // r1's command takes 2 MiB and then stops reading: receive stops there.
    const r1 = start(['receive', 'ch', '--consumer', 'r1', '--exec', 'head -c 2097152 > /dev/null; exec sleep 60']);
    const r2 = start(['receive', 'ch', '--consumer', 'r2', '--quiet', '--exec', 'wc -c']);
    let counts = '';
    r2.child.stdout.on('data', (d: Buffer) => (counts += d.toString()));
    let key = '';
    const sending = sendFiles(connect(server.url), 'ch', [join(dir, 'big.bin'), join(dir, 'after.txt')], {
      consumers: 2,
      maxRedisMemory: used + 3 * MiB,
      onStart: (f) => (key ||= f.key),
    });
    await until(async () => {
      const [trimmed, position] = key ? await admin.hmget(`rfs:{${key}}:meta`, 'trimmed', 'pos:r1') : [null, null];
      return Number(trimmed) > 0 && trimmed === position;
    }, 'r2 to pass r1 and the chunks both consumed to be trimmed');
    // The command runs in a process group of its own: it goes with its receiver.
    const command = Number(
      spawnSync('ps', ['-o', 'pid=', '--ppid', String(r1.child.pid)], { encoding: 'utf8' }).stdout.trim(),
    );
    r1.child.kill('SIGKILL');
    // It holds receive's stdout and stderr: receive is closed only once it is gone too.
    if (command > 0) process.kill(-command, 'SIGKILL');
    expect((await r1.done).signal).toBe('SIGKILL');

    const again = start(['receive', 'ch', '--consumer', 'r1', '--exec', 'cat > "$OUT/$RFS_NAME"'], { OUT: out });
    await sending;
    await closeChannel(admin, 'ch');
    const r = await again.done;
    expect(r.code, r.stderr).toBe(0);
    const [skipped, received] = r.stderr.trim().split('\n');
    expect(skipped).toMatch(
      /^redis-file: skipped "big\.bin": this receiver stopped in the middle of it, and Redis no longer holds its first \d+ bytes/,
    );
    expect(received).toMatch(/^received after\.txt /);
    expect(readdirSync(out)).toEqual(['after.txt']);
    expect(readFileSync(join(out, 'after.txt'), 'utf8')).toBe('after\n');
    expect((await r2.done).code).toBe(0);
    expect(counts.trim().split(/\s+/).map(Number)).toEqual([big.length, 6]);
    // Every file went with both acknowledgements, the skipped one included.
    expect(await admin.keys('rfs:{ch/*')).toEqual([]);
  }, 120_000);
});
