/**
 * The writer's heartbeat while it waits for its next bytes (as a log's writer does between lines):
 * a heartbeat Redis refuses for good ends the writer with that error, one refused for a passing
 * reason is tried again for up to `retryTimeout`; with no piece write in flight, nothing else
 * would tell.
 */
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { createRedisReadStream, createRedisWriteStream, ErrorCodes, stat } from '../src/index.js';
import { connect, connectSubject, subject, uniqueKey } from './helpers/clients.js';
import { eventually } from './helpers/eventually.js';
import { useOwnServer } from './helpers/own-server.js';
import { collect } from './helpers/streams.js';

const own = useOwnServer();

/** A writer that has stored its first bytes and waits for more. */
async function idleWriter(key: string, options: object, user?: { username: string; password: string }) {
  const writer = createRedisWriteStream(connectSubject(own.server.url, user ?? {}), key, {
    heartbeatInterval: 50,
    ...options,
  });
  const failed = once(writer, 'error').then(([err]) => err as Error);
  failed.catch(() => {});
  writer.write('a first line\n');
  // stat() rejects until the writer has created the file.
  const stored = async () => ((await stat(subject(own.admin), key).catch(() => undefined))?.size ?? 0) > 0;
  await eventually(stored, 'the first line to be stored');
  return { writer, failed };
}

describe('the heartbeat of a writer waiting for its next bytes', () => {
  it('refused for good (an ACL that no longer grants scripts): the writer fails with that error', async () => {
    const user = { username: uniqueKey('hb-user'), password: 'pw' };
    await own.admin.acl('SETUSER', user.username, 'on', `>${user.password}`, '~*', '&*', '+@all');
    const key = uniqueKey('denied');
    const { failed } = await idleWriter(key, {}, user);
    await own.admin.acl('SETUSER', user.username, '-@scripting');
    const err = await failed;
    expect(err).toMatchObject({ code: ErrorCodes.REDIS, key });
    expect(err.message).toMatch(/keeping the lease \(heartbeat\) failed: NOPERM/);
  });

  it('refused for a passing reason (Redis busy with a script): tried again, and the writer goes on once Redis answers', async () => {
    const key = uniqueKey('passing');
    const { writer, failed } = await idleWriter(key, { retryTimeout: 60_000 });
    const before = await busyCount();
    // Time is the subject: a refusal that lasts several heartbeats, well within retryTimeout.
    await busyWhile(() => sleep(500));
    expect((await busyCount()) - before).toBeGreaterThanOrEqual(3);
    writer.end('a last line\n');
    await Promise.race([once(writer, 'finish'), failed.then((err) => Promise.reject(err))]);
    expect((await collect(createRedisReadStream(subject(own.admin), key))).toString()).toBe(
      'a first line\na last line\n',
    );
  });

  it('refused for a passing reason for longer than retryTimeout: the writer fails with that error', async () => {
    const key = uniqueKey('lasting');
    const { failed } = await idleWriter(key, { retryTimeout: 300 });
    const err = await busyWhile(() => failed);
    expect(err).toMatchObject({ code: ErrorCodes.REDIS, key });
    expect(err.message).toMatch(/keeping the lease \(heartbeat\) failed: BUSY/);
  });
});

/** Replies Redis refused as busy so far (`errorstat_BUSY`). */
async function busyCount(): Promise<number> {
  return Number(/^errorstat_BUSY:count=(\d+)/m.exec(await own.admin.info('errorstats'))?.[1] ?? 0);
}

/**
 * Keep Redis busy with an endless script (every other command is refused with BUSY once it has
 * run 20 ms) until `during()` settles, then kill it. Resolves to what `during()` resolved to.
 */
async function busyWhile<T>(during: () => Promise<T>): Promise<T> {
  const runner = connect(own.server.url);
  const probe = connect(own.server.url);
  // Both ready first: a connection's ready check (INFO) is refused while Redis is busy.
  await Promise.all([runner.ping(), probe.ping()]);
  await own.admin.config('SET', 'busy-reply-threshold', '20');
  const running = runner.eval('while true do end', 0).catch(() => {});
  try {
    await eventually(async () => /^BUSY/.test(await probe.ping().catch((e: Error) => e.message)), 'Redis to be busy');
    return await during();
  } finally {
    await probe.script('KILL');
    await running;
    await own.admin.config('SET', 'busy-reply-threshold', '5000');
  }
}
