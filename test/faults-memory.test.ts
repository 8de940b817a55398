/**
 * Redis runs out of memory. With `noeviction` a writer waits and retries for a bounded time, then
 * fails clearly, never crashing the process or corrupting the file. With an evicting policy, a
 * reader that meets evicted chunks fails with ERR_REDIS_FILE_CORRUPT.
 */
import { once } from 'node:events';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { createRedisReadStream, createRedisWriteStream, stat } from '../src/index.js';
import { blockedIn, closeAll, connect, connectSubject, subject } from './helpers/clients.js';
import { eventually } from './helpers/eventually.js';
import { chunkStreamOf, fileKeysOf, pieceFields } from './helpers/keys.js';
import { type RedisServer, startRedis } from './helpers/redis-server.js';
import { bytes, collect, sha256 } from './helpers/streams.js';

const servers: RedisServer[] = [];
afterEach(async () => {
  await closeAll();
  await Promise.all(servers.splice(0).map((s) => s.stop()));
});

async function server(args: string[]): Promise<RedisServer> {
  const s = await startRedis({ args });
  servers.push(s);
  return s;
}

function settle(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => undefined,
    (err: unknown) => err,
  );
}

/** How many commands the server has refused for lack of memory (OOM errors). */
async function oomErrors(redis: Redis): Promise<number> {
  return Number(/^errorstat_OOM:count=(\d+)/m.exec(await redis.info('errorstats'))?.[1] ?? 0);
}

/** Fill the server with plain strings until it refuses writes. Returns the filler keys. */
async function fill(redis: Redis, piece: number): Promise<string[]> {
  const keys: string[] = [];
  for (let i = 0; ; i++) {
    try {
      await redis.set(`filler:${i}`, Buffer.alloc(piece, 1));
      keys.push(`filler:${i}`);
    } catch (err) {
      if ((err as Error).message.startsWith('OOM')) return keys;
      throw err;
    }
  }
}

describe('out of memory with noeviction', () => {
  it('the writer waits while Redis refuses writes and carries on once memory is freed', async () => {
    const s = await server(['--maxmemory', '24mb', '--maxmemory-policy', 'noeviction']);
    const redis = connect(s.url);
    const fillers = await fill(redis, 1024 * 1024);
    // Free a little room: the file starts, then runs into the limit.
    await redis.del(fillers.pop()!, fillers.pop()!);
    const refused = await oomErrors(redis);
    const data = bytes(8 * 1024 * 1024, 51);
    const writer = createRedisWriteStream(subject(redis), 'oom', { chunkSize: 64 * 1024, retryTimeout: 20_000 });
    const writing = pipeline(Readable.from([data]), writer);
    // The writer is stuck: Redis has refused its writes, more than once (it retries).
    await eventually(
      async () => (await oomErrors(redis)) >= refused + 2,
      'Redis to refuse the writer for lack of memory',
    );
    expect(writer.committedBytes).toBeLessThan(data.length);
    expect(writer.destroyed).toBe(false);
    await redis.del(...fillers);
    await writing;
    expect(sha256(await collect(createRedisReadStream(subject(redis), 'oom')))).toBe(sha256(data));
  });

  it('after retryTimeout the writer fails clearly, and the file is marked aborted, not corrupt', async () => {
    const s = await server(['--maxmemory', '16mb', '--maxmemory-policy', 'noeviction']);
    const redis = connect(s.url);
    const fillers = await fill(redis, 512 * 1024);
    await redis.del(fillers.pop()!, fillers.pop()!);
    const data = bytes(8 * 1024 * 1024, 52);
    const writer = createRedisWriteStream(subject(redis), 'oom-fail', {
      chunkSize: 64 * 1024,
      retryTimeout: 500,
      heartbeatInterval: 50,
    });
    const err = await settle(pipeline(Readable.from([data]), writer));
    expect(err).toMatchObject({ code: 'ERR_REDIS_FILE_REDIS' });
    expect((err as Error).message).toMatch(/OOM/);
    expect((err as Error).message).toMatch(/oom-fail/);
    // The piece it gave up on, named by its bytes in the file first: 64 KiB, where its chunk starts.
    const [, start, end, chunk] = /storing bytes (\d+) to (\d+) \(piece (\d+)-2\) \(gave up after 500 ms\)/
      .exec((err as Error).message)!
      .map(Number);
    expect([start, end]).toEqual([chunk! * 65536, chunk! * 65536 + 65535]);
    expect((err as Error).cause).toBeInstanceOf(Error);
    // The abort is recorded even while Redis is out of memory.
    const s2 = await stat(subject(redis), 'oom-fail');
    expect(s2.state).toBe('aborted');
    expect(await settle(collect(createRedisReadStream(subject(redis), 'oom-fail')))).toMatchObject({
      code: 'ERR_REDIS_FILE_ABORTED',
    });
    // What was stored is a correct prefix, in order, with nothing after the abort record.
    const entries = await redis.xrangeBuffer(await chunkStreamOf(redis, 'oom-fail'), '-', '+');
    const chunks = entries.slice(1, -1);
    expect(chunks.map(([id]) => id.toString())).toEqual(chunks.map((_, i) => `${i}-2`));
    const stored = Buffer.concat(chunks.map(([, fields]) => fields[1]!));
    expect(stored.length).toBeGreaterThan(0);
    expect(stored.equals(data.subarray(0, stored.length))).toBe(true);
    expect(entries.at(-1)![1][0]!.toString()).toBe('abort');
  });
  it('under lasting pressure the writer fails after retryTimeout, whatever it stores beyond the piece refused', async () => {
    // Memory for a few pieces of 256 KiB and never for the file: a piece is refused while pieces
    // behind it in the same window get stored (the memory Redis counts moves with what it has
    // read), and the repair deletes them again. Stored pieces past the one the file waits for
    // must not count as progress, or the writer retries for ever.
    const s = await server(['--maxmemory', '4mb', '--maxmemory-policy', 'noeviction']);
    const redis = connect(s.url);
    for (let round = 0; round < 4; round++) {
      const writer = createRedisWriteStream(subject(redis), `oom-lasting-${round}`, { retryTimeout: 1000 });
      const err = await settle(pipeline(Readable.from([bytes(5_000_000, 60 + round)]), writer));
      expect(err).toMatchObject({
        code: 'ERR_REDIS_FILE_REDIS',
        message: expect.stringMatching(/gave up after 1000 ms.*OOM/),
      });
      await redis.flushall();
    }
  });
});

describe('evicted chunks', () => {
  it('a reader that meets evicted chunks fails with ERR_REDIS_FILE_CORRUPT', async () => {
    const s = await server(['--maxmemory', '16mb', '--maxmemory-policy', 'volatile-lru']);
    const redis = connect(s.url);
    const data = bytes(2 * 1024 * 1024, 53);
    await pipeline(Readable.from([data]), createRedisWriteStream(subject(redis), 'evict', { chunkSize: 64 * 1024 }));
    // Only the chunk stream carries a TTL, so only it can be evicted under volatile-lru.
    const stream = await chunkStreamOf(redis, 'evict');
    await redis.expire(stream, 3600);
    await fill(redis, 512 * 1024);
    expect(await redis.exists(stream)).toBe(0);
    expect(await redis.exists(fileKeysOf('evict').meta)).toBe(1);
    expect(await settle(collect(createRedisReadStream(subject(redis), 'evict')))).toMatchObject({
      code: 'ERR_REDIS_FILE_CORRUPT',
    });
  });
});

describe('a gap while the file is being written', () => {
  it('a follower waits out a gap that the writer repairs, and delivers every byte in order', async () => {
    const s = await server([]);
    const redis = connect(s.url);
    const data = bytes(10 * 1000, 54);
    const writer = createRedisWriteStream(subject(redis), 'gap', { chunkSize: 1000 });
    await once(writer, 'ready');
    writer.write(data.subarray(0, 3000));
    const stream = await chunkStreamOf(redis, 'gap');
    const gen = await redis.hget(fileKeysOf('gap').meta, 'gen');
    // The header and chunks 0 to 2 are stored.
    await eventually(async () => (await redis.xlen(stream)) === 4, 'the first three chunks');
    // Chunk 4 stored while chunk 3 was refused: what a write refused for lack of memory leaves.
    await redis.xadd(stream, '4-2', ...pieceFields(data.subarray(4000, 5000)));
    const reader = createRedisReadStream(connectSubject(s.url, { connectionName: 'gap-reader' }), 'gap');
    const reading = collect(reader);
    // The follower has delivered everything before the gap and waits for the repair.
    await eventually(
      async () => reader.deliveredBytes === 3000 && (await blockedIn(redis, 'gap-reader')) === 1,
      'the follower to wait at the gap',
    );
    // The writer's repair: delete what lies past the gap, move the last id back, announce it.
    await redis.xdel(stream, '4-2');
    await redis.xsetid(stream, '2-2');
    await redis.xadd(fileKeysOf('gap').events, '*', 'repaired', gen!);
    writer.end(data.subarray(3000));
    await once(writer, 'finish');
    expect((await reading).equals(data)).toBe(true);
  });

  it('a gap in a complete file is corruption at once', async () => {
    const s = await server([]);
    const redis = connect(s.url);
    await pipeline(Readable.from([bytes(5000)]), createRedisWriteStream(subject(redis), 'gap2', { chunkSize: 1000 }));
    await redis.xdel(await chunkStreamOf(redis, 'gap2'), '2-2');
    expect(await settle(collect(createRedisReadStream(subject(redis), 'gap2', { idleTimeout: 60_000 })))).toMatchObject(
      {
        code: 'ERR_REDIS_FILE_CORRUPT',
      },
    );
  });
});
