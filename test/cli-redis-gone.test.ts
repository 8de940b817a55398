/**
 * `redis-file` when Redis goes away under a running command: a line on stderr while it retries,
 * then, once Redis has stayed away for --redis-timeout (or REDIS_FILE_REDIS_TIMEOUT), one plain
 * line and exit 1, never ioredis's own words. Redis back in time: the command says so and carries on.
 * Each test kills a private redis-server of its own.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { announced, holdsOpen, joined, run, start, stateOf, waitForStderrLine, waitUntil } from './helpers/cli.js';
import { blockedIn, closeAll, connect, uniqueKey } from './helpers/clients.js';
import { type RedisServer, startRedis } from './helpers/redis-server.js';

const servers: RedisServer[] = [];
afterAll(async () => {
  await closeAll();
  await Promise.all(servers.map((server) => server.stop()));
});

async function privateServer(args: string[] = []): Promise<RedisServer> {
  const server = await startRedis({ args });
  servers.push(server);
  return server;
}

/** The words of ioredis that a user of the command cannot act on. */
const IOREDIS_WORDS = /maxRetriesPerRequest|max retries per request|retryStrategy|enableOfflineQueue/i;

describe('Redis goes away', () => {
  it('put of a slow stdin and cat following it: a line while retrying, then exit 1 with one plain line', async () => {
    const server = await privateServer();
    const redis = connect(server.url);
    const key = uniqueKey('gone');
    const env = { REDIS_URL: server.url };
    const writer = start(['put', '--redis-timeout', '2s', '--chunk-size', '1k', '-', key], { env });
    writer.child.stdin.write(randomBytes(5000));
    await waitUntil('the put has stored its first chunks', async () => ((await stateOf(redis, key))?.size ?? 0) > 0);
    // The timeout from the environment this time.
    const reader = start(['cat', key], { env: { ...env, REDIS_FILE_REDIS_TIMEOUT: '2s' } });
    await waitUntil('cat is following the file', () => reader.stdout().length > 0);

    await server.kill();
    const where = `127.0.0.1:${server.port}`;
    for (const command of [writer, reader]) {
      const line = await waitForStderrLine(command, /lost the connection/);
      const retrying = new RegExp(
        `^redis-file: lost the connection to ${where.replace(/\./g, '\\.')}, retrying \\(\\d+ s so far\\)`,
      );
      expect(line).toMatch(retrying);
    }
    const [w, r] = await Promise.all([writer.done, reader.done]);
    for (const [result, context] of [
      [w, `put ${JSON.stringify(key)}`],
      [r, `cat ${JSON.stringify(key)}`],
    ] as const) {
      expect(result.code, result.stderr).toBe(1);
      const lines = result.stderr.trim().split('\n');
      expect(
        lines.slice(0, -1).every((l) => /^redis-file: lost the connection to .*, retrying/.test(l)),
        result.stderr,
      ).toBe(true);
      expect(lines.at(-1)).toBe(
        `redis-file: ${context}: lost the connection to Redis at ${where} and could not reconnect within 2 s (--redis-timeout): ` +
          `connect ECONNREFUSED ${where}`,
      );
      expect(result.stderr).not.toMatch(IOREDIS_WORDS);
      expect(result.stderr).not.toMatch(/^\s+at /m);
    }
  });

  it('a command that only waits on Redis (receive) fails the same way', async () => {
    const server = await privateServer();
    const channel = uniqueKey('gone-channel');
    const receiver = start(['receive', channel, '--consumer', 'r', '--exec', 'cat', '--redis-timeout', '1s'], {
      env: { REDIS_URL: server.url },
    });
    // Waiting for the first file once it has joined.
    await joined(connect(server.url), channel, 1);
    await server.kill();
    const r = await receiver.done;
    expect(r.code).toBe(1);
    const last = r.stderr.trim().split('\n').at(-1);
    expect(last).toMatch(
      /^redis-file: receive ".*": lost the connection to Redis at .* within 1 s \(--redis-timeout\)/,
    );
    expect(r.stderr).not.toMatch(IOREDIS_WORDS);
  });

  it('send and receive in the middle of a file: each fails with one line naming the file', async () => {
    const server = await privateServer();
    const redis = connect(server.url);
    const channel = uniqueKey('gone-file');
    const env = { REDIS_URL: server.url };
    // A file that is still being written to (a FIFO): the upload is under way when Redis goes.
    const fifo = join(mkdtempSync(join(tmpdir(), 'rfs-gone-')), 'live.log');
    execFileSync('mkfifo', [fifo]);
    const receiver = start(['receive', channel, '--consumer', 'r', '--exec', 'cat', '--redis-timeout', '1s'], { env });
    await joined(redis, channel, 1);
    const sender = start(['send', channel, '--redis-timeout', '1s', fifo], { env });
    const input = await open(fifo, 'w');
    try {
      await input.write('a line\n'.repeat(100));
      await waitUntil('the receiver has the first bytes', () => receiver.stdout().length > 0);
      await server.kill();
      // The FIFO's writer stays open and silent, as a log's does between lines: the sender exits
      // all the same.
      const [s, r] = await Promise.all([sender.done, receiver.done]);
      expect(s.code, s.stderr).toBe(1);
      expect(s.stderr.trim().split('\n').at(-1)).toMatch(
        /^redis-file: send "live\.log": lost the connection to Redis at .* within 1 s \(--redis-timeout\).*; 0 of 1 file sent before it$/,
      );
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr.trim().split('\n').at(-1)).toMatch(
        /^redis-file: receive "live\.log": lost the connection to Redis at .* within 1 s \(--redis-timeout\).*; it is not acknowledged/,
      );
    } finally {
      await input.close().catch(() => {});
    }
  });

  it('put of a FIFO whose writer stays open and silent: exit 1 with one line once Redis is gone', async () => {
    const server = await privateServer();
    const key = uniqueKey('gone-fifo');
    const fifo = join(mkdtempSync(join(tmpdir(), 'rfs-gone-')), 'live.log');
    execFileSync('mkfifo', [fifo]);
    const writer = start(['put', '--redis-timeout', '1s', fifo, key], { env: { REDIS_URL: server.url } });
    const input = await open(fifo, 'w');
    try {
      await input.write('a line\n');
      const redis = connect(server.url);
      await waitUntil('the line to be stored', async () => ((await stateOf(redis, key))?.size ?? 0) > 0);
      await server.kill();
      // The FIFO stays open and silent meanwhile: the command exits all the same.
      const r = await writer.done;
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr.trim().split('\n').at(-1)).toMatch(
        /^redis-file: put ".*": lost the connection to Redis at .* within 1 s \(--redis-timeout\)/,
      );
    } finally {
      await input.close().catch(() => {});
    }
  });

  it('put and send of a FIFO that no writer has opened yet: exit 1 with one line once Redis is gone', async () => {
    const server = await privateServer();
    const redis = connect(server.url);
    const dir = mkdtempSync(join(tmpdir(), 'rfs-gone-'));
    const env = { REDIS_URL: server.url };
    const put = join(dir, 'put.log');
    const sent = join(dir, 'sent.log');
    execFileSync('mkfifo', [put]);
    execFileSync('mkfifo', [sent]);
    const writer = start(['put', '--redis-timeout', '1s', put, uniqueKey('gone-unopened')], { env });
    const channel = uniqueKey('gone-unopened');
    const sender = start(['send', '--redis-timeout', '1s', channel, sent], { env });
    try {
      // Both have connected and wait for their FIFO's writer: put holds the FIFO open, send has
      // announced it.
      await waitUntil('put to open its FIFO', () => holdsOpen(writer.child.pid!, put));
      await waitUntil('send to announce its FIFO', async () =>
        (await announced(redis, channel)).some((file) => file.endsWith('/sent.log')),
      );
      await server.kill();
      // No writer ever opens either FIFO: the commands exit all the same.
      const [w, s] = await Promise.all([writer.done, sender.done]);
      expect(w.code, w.stderr).toBe(1);
      expect(w.stderr.trim().split('\n').at(-1)).toMatch(
        /^redis-file: put ".*": lost the connection to Redis at .* within 1 s \(--redis-timeout\)/,
      );
      expect(s.code, s.stderr).toBe(1);
      expect(s.stderr.trim().split('\n').at(-1)).toMatch(
        /^redis-file: send ".*": lost the connection to Redis at .* within 1 s \(--redis-timeout\)/,
      );
    } finally {
      writer.child.kill('SIGKILL');
      sender.child.kill('SIGKILL');
    }
  });

  it('a Redis that keeps the connection and answers nothing (stopped): exit 1 once twice --redis-timeout and 5 s have passed', async () => {
    const server = await privateServer();
    const key = uniqueKey('frozen');
    const reader = start(['cat', '--redis-timeout', '1s', '--wait-for-create', '10m', key], {
      env: { REDIS_URL: server.url },
    });
    await waitUntil('cat to wait for the file', async () => (await blockedIn(connect(server.url), undefined)) > 0);
    process.kill(server.pid!, 'SIGSTOP');
    try {
      const r = await reader.done;
      expect(r.code).toBe(1);
      expect(r.stderr.trim().split('\n').at(-1)).toMatch(
        /^redis-file: File ".*": waiting for the file to be created failed: Redis did not answer in time \(--redis-timeout\)/,
      );
      expect(r.stderr).not.toMatch(/^\s+at /m);
    } finally {
      process.kill(server.pid!, 'SIGCONT');
    }
  });

  it('put - waiting for more input on a stopped Redis: exit 1 with one line, its heartbeat unanswered', async () => {
    const server = await privateServer();
    const key = uniqueKey('frozen-put');
    const writer = start(['put', '--redis-timeout', '1s', '-', key], { env: { REDIS_URL: server.url } });
    // A line, then the input stays open and silent, as a log's does between lines.
    writer.child.stdin.write('a first line\n');
    const redis = connect(server.url);
    await waitUntil('the first line to be stored', async () => ((await stateOf(redis, key))?.size ?? 0) > 0);
    process.kill(server.pid!, 'SIGSTOP');
    try {
      const r = await writer.done;
      expect(r.code).toBe(1);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(
        /^redis-file: File ".*": keeping the lease \(heartbeat\) failed: Redis did not answer in time \(--redis-timeout\)/,
      );
    } finally {
      process.kill(server.pid!, 'SIGCONT');
      writer.child.stdin.end();
    }
  });

  it('a receiver waiting for its next file on a stopped Redis: exit 1 with one line', async () => {
    const server = await privateServer();
    const channel = uniqueKey('frozen-channel');
    const receiver = start(['receive', channel, '--consumer', 'r', '--exec', 'cat', '--redis-timeout', '1s'], {
      env: { REDIS_URL: server.url },
    });
    const redis = connect(server.url);
    await joined(redis, channel, 1);
    // Joined, and past its first steps (its pending entries, the last close): blocked in its read.
    await waitUntil(
      'receive to wait for its next file',
      async () => (await blockedIn(redis, undefined, 'xreadgroup')) > 0,
    );
    process.kill(server.pid!, 'SIGSTOP');
    try {
      const r = await receiver.done;
      expect(r.code).toBe(1);
      expect(r.stderr.trim().split('\n').at(-1)).toMatch(
        /^redis-file: .*: waiting for the next file failed: Redis did not answer in time \(--redis-timeout\)/,
      );
    } finally {
      process.kill(server.pid!, 'SIGCONT');
    }
  });

  it('a server that accepts the connection and never answers: exit 1 with one line, before any command', async () => {
    const silent = createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as AddressInfo;
    try {
      const r = await run(['stat', 'k', '--url', `redis://127.0.0.1:${port}`]);
      expect(r.code).toBe(1);
      expect(r.stderr.trim()).toMatch(
        /^redis-file: cannot connect to Redis at redis:\/\/127\.0\.0\.1:\d+: no answer within 10 s of connecting$/,
      );
    } finally {
      silent.close();
    }
  });

  it("a database past the server's count in the URL: exit 1 with one line, nothing stored in another", async () => {
    const server = await privateServer();
    const r = await run(['put', '-', 'k', '--url', `${server.url}/42`], { input: 'data' });
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toMatch(/^redis-file: cannot connect to Redis at .*: ERR DB index is out of range$/);
    expect(await connect(server.url).dbsize()).toBe(0);
  });

  it('Redis back within --redis-timeout: the command says it reconnected, and the upload completes', async () => {
    // Every write reaches the disk before it is acknowledged: a killed server restarts with it.
    const server = await privateServer(['--appendonly', 'yes', '--appendfsync', 'always']);
    const redis = connect(server.url);
    const key = uniqueKey('back');
    const parts = [randomBytes(3000), randomBytes(3000)];
    const writer = start(['put', '--redis-timeout', '30s', '--chunk-size', '1k', '-', key], {
      env: { REDIS_URL: server.url },
    });
    writer.child.stdin.write(parts[0]);
    await waitUntil(
      'the put has stored its first chunks',
      async () => ((await stateOf(redis, key))?.size ?? 0) >= 2048,
    );
    await server.kill();
    await waitForStderrLine(writer, /lost the connection/);
    await server.restart();
    await waitForStderrLine(writer, /reconnected/);
    writer.child.stdin.end(parts[1]);
    const w = await writer.done;
    expect(w.code, w.stderr).toBe(0);
    expect(w.stderr).toMatch(
      new RegExp(`^redis-file: reconnected to 127\\.0\\.0\\.1:${server.port} after \\d+ s$`, 'm'),
    );
    const back = await run(['get', key], { env: { REDIS_URL: server.url } });
    expect(back.code, back.stderr).toBe(0);
    expect(back.stdout.equals(Buffer.concat(parts))).toBe(true);
  });
});
