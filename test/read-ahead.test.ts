/**
 * The read-ahead is bounded in bytes as well as in chunks: larger chunks make fewer chunks per
 * request, not larger replies.
 */
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeAll, connect, uniqueKey } from './helpers/clients.js';
import { chunkRangesDuring } from './helpers/monitor.js';
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

/** The chunks each XRANGE bounded by chunk on `key`'s chunk stream asked for while `during` ran. */
async function chunksPerRequest(key: string, during: () => Promise<unknown>): Promise<number[]> {
  return (await chunkRangesDuring(redis, key, during))
    .filter(({ to }) => to !== Infinity)
    .map(({ from, to }) => to - from);
}

describe('readAheadBytes', () => {
  it('asks for readAheadBytes / chunkSize chunks per request, at most readAhead, at least one', async () => {
    const key = uniqueKey('read-ahead');
    const data = bytes(40 * 1000, 81);
    await put(redis, key, data, { chunkSize: 1000 });
    const chunks = await chunksPerRequest(key, async () => {
      expect((await get(redis, key, { readAheadBytes: 3000 })).equals(data)).toBe(true);
      expect((await get(redis, key, { readAheadBytes: 1_000_000, readAhead: 5 })).equals(data)).toBe(true);
      expect((await get(redis, key, { readAheadBytes: 10 })).equals(data)).toBe(true);
    });
    expect(new Set(chunks)).toEqual(new Set([3, 5, 1]));
  });

  it('defaults to 4 MiB: 16 chunks of 256 KiB, 4 chunks of 1 MiB', async () => {
    const key = uniqueKey('read-ahead-mib');
    const data = bytes(10 * 1024 * 1024, 82);
    await put(redis, key, data, { chunkSize: 1024 * 1024 });
    const small = uniqueKey('read-ahead-kib');
    await put(redis, small, data, { chunkSize: 256 * 1024 });
    // Chunks 0 to 3 and 4 to 7; then the rest, and the end record, to the stream's end.
    expect(await chunksPerRequest(key, async () => expect((await get(redis, key)).equals(data)).toBe(true))).toEqual([
      4, 4,
    ]);
    expect(
      await chunksPerRequest(small, async () => expect((await get(redis, small)).equals(data)).toBe(true)),
    ).toEqual([16, 16]);
  });
});
