/**
 * The read-ahead is bounded in bytes as well as in entries: larger chunks make fewer entries per
 * request, not larger replies.
 */
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeAll, connect, uniqueKey } from './helpers/clients.js';
import { commandsDuring } from './helpers/monitor.js';
import { type RedisServer, startRedis } from './helpers/redis-server.js';
import { bytes, get, put } from './helpers/streams.js';

// A server of this file's own: MONITOR on the shared one would also stream every other test's
// writes (MiB of chunks) into the monitor connection, which ioredis then chokes on.
let server: RedisServer;
let redis: Redis;
beforeAll(async () => {
  server = await startRedis();
  redis = connect(server.url);
});
afterAll(async () => {
  await closeAll();
  await server?.stop();
});

/** The COUNT of every XRANGE on `key`'s chunk stream that Redis ran while `during` ran. */
async function xrangeCounts(key: string, during: () => Promise<unknown>): Promise<number[]> {
  return (await commandsDuring(redis, during))
    .filter(({ args }) => args[0]?.toLowerCase() === 'xrange' && args[1]?.includes(key) && args[1].includes(':chunks:'))
    .map(({ args }) => Number(args[args.findIndex((a) => a.toLowerCase() === 'count') + 1]));
}

describe('readAheadBytes', () => {
  it('asks for readAheadBytes / chunkSize entries per request, at most readAhead, at least one', async () => {
    const key = uniqueKey('read-ahead');
    const data = bytes(40 * 1000, 81);
    await put(redis, key, data, { chunkSize: 1000 });
    const counts = await xrangeCounts(key, async () => {
      expect((await get(redis, key, { readAheadBytes: 3000 })).equals(data)).toBe(true);
      expect((await get(redis, key, { readAheadBytes: 1_000_000, readAhead: 5 })).equals(data)).toBe(true);
      expect((await get(redis, key, { readAheadBytes: 10 })).equals(data)).toBe(true);
    });
    // (COUNT 1 is also the look after the end record that nothing follows it.)
    expect(new Set(counts)).toEqual(new Set([3, 5, 1]));
  });

  it('defaults to 4 MiB: 16 entries of 256 KiB, 4 entries of 1 MiB', async () => {
    const key = uniqueKey('read-ahead-mib');
    const data = bytes(6 * 1024 * 1024, 82);
    await put(redis, key, data, { chunkSize: 1024 * 1024 });
    const counts = await xrangeCounts(key, async () => expect((await get(redis, key)).equals(data)).toBe(true));
    // Batches of 4, and the look after the end record (COUNT 1) that nothing follows it.
    expect(new Set(counts)).toEqual(new Set([4, 1]));
    expect(counts.filter((c) => c === 4).length).toBeGreaterThan(0);
  });
});
