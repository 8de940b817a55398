/**
 * A range read asks Redis for the chunks the range covers and no more: a few bytes from a large
 * file cost one chunk, not a batch of them (and not the batch after it, read ahead). Counted from
 * the COUNT of every XRANGE Redis ran on the file's chunk stream, the open script's included.
 */
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisWriteStream } from '../src/index.js';
import { closeAll, connect, uniqueKey } from './helpers/clients.js';
import { commandsDuring } from './helpers/monitor.js';
import { type RedisServer, startRedis } from './helpers/redis-server.js';
import { bytes, get, put } from './helpers/streams.js';

// A server of this file's own: MONITOR on the shared one would also stream every other test's
// writes into the monitor connection.
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

const chunkSize = 1000;
const readAhead = 16;

/** The COUNT of every XRANGE on `key`'s chunk stream while `during` ran, and their sum. */
async function xranges(key: string, during: () => Promise<unknown>): Promise<{ counts: number[]; total: number }> {
  const counts = (await commandsDuring(redis, during))
    .filter(({ args }) => args[0]?.toLowerCase() === 'xrange' && args[1]?.includes(key) && args[1].includes(':chunks:'))
    .map(({ args }) => Number(args[args.findIndex((a) => a.toLowerCase() === 'count') + 1]));
  return { counts, total: counts.reduce((a, b) => a + b, 0) };
}

/** Read bytes `start` to `end` of `key`, checked against `data`; the XRANGEs it took. */
async function readRange(key: string, data: Buffer, start: number, end: number) {
  return xranges(key, async () => {
    const part = await get(redis, key, { start, end, readAhead });
    expect(part.equals(data.subarray(start, end + 1))).toBe(true);
  });
}

describe('a range read', () => {
  const key = uniqueKey('range-fetch');
  const data = bytes(100 * chunkSize + 123, 201);
  beforeAll(() => put(redis, key, data, { chunkSize }));

  it('of a few bytes in one chunk asks for that chunk alone', async () => {
    expect(await readRange(key, data, 37 * chunkSize + 10, 37 * chunkSize + 20)).toEqual({ counts: [1], total: 1 });
    expect((await readRange(key, data, 37 * chunkSize, 38 * chunkSize - 1)).total).toBe(1);
  });

  it('from byte 0 asks for the header and the chunks up to its end', async () => {
    expect(await readRange(key, data, 0, 10)).toEqual({ counts: [2], total: 2 });
    expect(await readRange(key, data, 0, 2 * chunkSize)).toEqual({ counts: [4], total: 4 });
  });

  it('across batches asks for exactly the chunks it covers', async () => {
    // Chunks 3 to 40: 38 entries, in batches of at most 16.
    const { counts, total } = await readRange(key, data, 3 * chunkSize + 999, 40 * chunkSize + 1);
    expect(total).toBe(38);
    expect(Math.max(...counts)).toBe(readAhead);
  });

  it('to the end of the file keeps whole batches, the end record read with the last', async () => {
    const size = data.length;
    for (const end of [size - 1, size, 10 ** 9]) {
      const { counts } = await xranges(key, async () => {
        expect(
          (await get(redis, key, { start: 90 * chunkSize, end, readAhead })).equals(data.subarray(90 * chunkSize)),
        ).toBe(true);
      });
      expect(counts[0]).toBe(readAhead);
    }
  });

  it('of a small complete file takes only the range from the open script', async () => {
    const small = uniqueKey('range-fetch-small');
    const smallData = bytes(12 * chunkSize, 202);
    await put(redis, small, smallData, { chunkSize });
    // The open script's XRANGE (the file fits one batch), and no other.
    expect(await readRange(small, smallData, 5 * chunkSize + 1, 7 * chunkSize)).toEqual({ counts: [3], total: 3 });
    expect(await readRange(small, smallData, 0, 0)).toEqual({ counts: [2], total: 2 });
  });
});

describe('a range read of a file stored in pieces', () => {
  it('reads it exactly, back to whole batches once a chunk comes in pieces', async () => {
    const key = uniqueKey('range-fetch-pieces');
    const data = bytes(30 * chunkSize, 203);
    // Each write flushed: chunks of four pieces of 250 bytes.
    const writer = createRedisWriteStream(redis, key, { chunkSize, flushInterval: 0 });
    for (let at = 0; at < data.length; at += 250) {
      writer.write(data.subarray(at, at + 250));
      await new Promise<void>((resolve, reject) => writer.flush((err) => (err ? reject(err) : resolve())));
    }
    await new Promise<void>((resolve, reject) => writer.end((err?: Error | null) => (err ? reject(err) : resolve())));
    // Chunks 10 to 18: 36 pieces. Counted by chunk, the first request asks for 9 entries, which
    // end at the first piece of chunk 12; the ones after it are whole batches, not one per chunk
    // counted again from a piece.
    const { counts } = await readRange(key, data, 10 * chunkSize, 19 * chunkSize - 1);
    expect(counts[0]).toBe(9);
    expect(counts.length).toBeGreaterThan(1);
    expect(counts.slice(1).every((c) => c === readAhead)).toBe(true);
  });
});
