/**
 * A consumer's position, in a file whose consumers trim what they all consumed: the chunks the
 * application has taken out of the stream, never those merely fetched and buffered (with
 * `decompress`, the chunks whose decoded bytes it has taken). What a crashed consumer had not
 * consumed is never trimmed.
 */
import { once } from 'node:events';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { createRedisReadStream, type RedisReadStream } from '../src/index.js';
import { closeAll, connect, subject, uniqueKey } from './helpers/clients.js';
import { eventually } from './helpers/eventually.js';
import { fileKeysOf } from './helpers/keys.js';
import { bytes, put } from './helpers/streams.js';

const redis = connect();
afterAll(closeAll);

/**
 * A file whose one consumer `c` trims what it consumed: stored under a memory limit that never held
 * the writer back, then marked as under pressure, as a writer held back by its limit marks it.
 */
async function trimmedFile(data: Buffer, chunkSize: number, contentEncoding = 'identity'): Promise<string> {
  const key = uniqueKey('positions');
  await put(redis, key, data, { consumers: ['c'], maxRedisMemory: 2 ** 40, chunkSize, contentEncoding });
  await redis.hset(fileKeysOf(key).meta, 'pressure', '1');
  return key;
}

async function position(key: string): Promise<[string | null, string | null]> {
  return (await redis.hmget(fileKeysOf(key).meta, 'pos:c', 'trimmed')) as [string | null, string | null];
}

/** Take `n` bytes out of the stream. */
async function take(reader: RedisReadStream, n: number): Promise<void> {
  while (n > 0) {
    const part = reader.read() as Buffer | null;
    if (part === null) await once(reader, 'readable');
    else if (part.length > n) {
      reader.unshift(part.subarray(n));
      n = 0;
    } else n -= part.length;
  }
}

/**
 * Consumer `c` of a trimmed file of 50 chunks of 1,000 bytes, once its reader buffered at least
 * `buffered` bytes (highWaterMark 20,000) of which nothing was taken: nothing may be trimmed yet.
 */
async function bufferedReader(seed: number, buffered: number): Promise<{ key: string; reader: RedisReadStream }> {
  const key = await trimmedFile(bytes(50_000, seed), 1000);
  const reader = createRedisReadStream(subject(redis), key, { consumer: 'c', readAhead: 16, highWaterMark: 20_000 });
  await once(reader, 'readable');
  await eventually(() => reader.readableLength >= buffered, `the reader to buffer ${buffered} bytes`);
  expect(await position(key)).toEqual(['0', '0']);
  return { key, reader };
}

describe('consumer positions', () => {
  it('count the chunks the application took out of the stream, not those fetched', async () => {
    const { key, reader } = await bufferedReader(91, 16_000);
    await take(reader, 3500);
    await eventually(async () => (await position(key))[0] === '3', 'the position to reach 3');
    expect(await position(key)).toEqual(['3', '3']);
    reader.destroy();
  });

  it('count what read(n) took from a buffer that stays above highWaterMark', async () => {
    // Node calls _read only below the high-water mark: taking 3,500 of about 30,000 buffered bytes
    // leaves the buffer above it, so the position must move without any _read.
    const { key, reader } = await bufferedReader(93, 20_000);
    // The reader fetches whole batches of 16 chunks: about 31,000 bytes are buffered by now.
    expect(reader.readableLength - 3500).toBeGreaterThanOrEqual(20_000);
    expect((reader.read(3500) as Buffer).length).toBe(3500);
    await eventually(async () => (await position(key))[0] === '3', 'the position to reach 3');
    expect(await position(key)).toEqual(['3', '3']);
    reader.destroy();
  });

  it('with decompress, count the chunks whose decoded bytes the application took', async () => {
    // Random bytes do not compress: about one decoded byte per stored byte.
    const gz = gzipSync(bytes(200_000, 92), { level: 1 });
    const key = await trimmedFile(gz, 10_000, 'gzip');
    const reader = createRedisReadStream(subject(redis), key, {
      consumer: 'c',
      decompress: true,
      readAhead: 16,
      highWaterMark: 16 * 1024,
    });
    await once(reader, 'readable');
    // Fetched, decoded and buffered up to the high-water mark, but nothing taken.
    await eventually(() => reader.readableLength >= 16 * 1024, 'the reader to fill its buffer');
    expect(await position(key)).toEqual(['0', '0']);
    await take(reader, 50_000);
    await eventually(async () => Number((await position(key))[0]) > 0, 'the position to move');
    const [pos, trimmed] = (await position(key)).map(Number);
    // At most the chunks that hold the first 50,000 decoded bytes; far fewer than were fetched.
    expect(pos).toBeLessThanOrEqual(5);
    expect(trimmed).toBe(pos);
    reader.destroy();
  });
});
