import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisReadStream, createRedisWriteStream } from '../src/index.js';
import { closeAll, connectAny, subject, uniqueKey } from './helpers/clients.js';
import { chunkStreamOf } from './helpers/keys.js';
import { bytes, collect, get, put } from './helpers/streams.js';

const redis = connectAny();
afterAll(closeAll);

describe('byte ranges', () => {
  const chunkSize = 1000;
  const data = bytes(10_500, 11);
  let key: string;

  beforeAll(async () => {
    key = uniqueKey('range');
    await put(redis, key, data, { chunkSize });
  });

  const ranges: [number | undefined, number | undefined][] = [
    [0, 0],
    [0, 999],
    [1000, 1999],
    [999, 1000],
    [2500, 7777],
    [10_000, undefined],
    [10_499, 10_499],
    [undefined, 1234],
    [10_500, undefined],
  ];
  for (const [start, end] of ranges) {
    it(`reads start=${start} end=${end} like fs.createReadStream`, async () => {
      const got = await get(redis, key, { start, end });
      const expected = data.subarray(start ?? 0, end === undefined ? undefined : end + 1);
      expect(got.equals(expected)).toBe(true);
    });
  }

  it('goes straight to the chunk holding the start instead of reading from the beginning', async () => {
    const k = uniqueKey('range-seek');
    await put(redis, k, data, { chunkSize });
    // Chunks 0 to 6 are gone: a reader that started from the beginning would fail on the gap.
    await redis.xdel(await chunkStreamOf(redis, k), '0-2', '1-2', '2-2', '3-2', '4-2', '5-2', '6-2');
    const got = await get(redis, k, { start: 7500, end: 7600 });
    expect(got.equals(data.subarray(7500, 7601))).toBe(true);
    await expect(get(redis, k)).rejects.toMatchObject({ code: 'ERR_REDIS_FILE_CORRUPT' });
  });

  it('fails with ERR_REDIS_FILE_RANGE when start lies beyond the end of a complete file', async () => {
    await expect(get(redis, key, { start: 10_501 })).rejects.toMatchObject({ code: 'ERR_REDIS_FILE_RANGE' });
  });

  it('reads to the end when end lies at or beyond the end of the file, as fs does', async () => {
    const all = await get(redis, key);
    expect((await get(redis, key, { start: 5000, end: all.length })).equals(all.subarray(5000))).toBe(true);
    expect((await get(redis, key, { end: 1_000_000 })).equals(all)).toBe(true);
  });

  it('a read that starts past the end of a file being written fails with ERR_REDIS_FILE_RANGE once it completes', async () => {
    const k = uniqueKey('range-past-writing');
    const writer = createRedisWriteStream(subject(redis), k, { chunkSize: 10, flushInterval: 0 });
    await new Promise<void>((resolve, reject) => writer.write(bytes(40), (err) => (err ? reject(err) : resolve())));
    await new Promise<void>((resolve, reject) => writer.flush((err?: Error | null) => (err ? reject(err) : resolve())));
    const reader = createRedisReadStream(subject(redis), k, { start: 50 });
    const result = collect(reader).catch((e: unknown) => e);
    // The reader has opened the file while it is being written, and waits past its end.
    await once(reader, 'file');
    writer.end();
    await once(writer, 'finish');
    expect(await result).toMatchObject({ code: 'ERR_REDIS_FILE_RANGE' });
  });

  it('checks the range of a file that completes while being followed', async () => {
    const k = uniqueKey('range-follow');
    const reader = createRedisReadStream(subject(redis), k, { start: 50, waitForCreate: 5000 });
    const result = collect(reader).catch((e: unknown) => e);
    await put(redis, k, bytes(40), { chunkSize: 10 });
    expect(await result).toMatchObject({ code: 'ERR_REDIS_FILE_RANGE' });
  });
});
