import { afterAll, describe, expect, it } from 'vitest';
import { stat } from '../src/index.js';
import { closeAll, connectAny, keysOf, subject, uniqueKey } from './helpers/clients.js';
import { chunkStreamsPattern } from './helpers/keys.js';
import { bytes, get, put } from './helpers/streams.js';

const redis = connectAny();
afterAll(closeAll);

describe('round trip', () => {
  const chunkSize = 1024;
  const cases: [string, number, number[]][] = [
    ['an empty file', 0, [1]],
    ['one byte', 1, [1]],
    ['exactly one chunk', chunkSize, [chunkSize]],
    ['an exact multiple of the chunk size', chunkSize * 5, [chunkSize]],
    ['a multiple plus one byte', chunkSize * 5 + 1, [chunkSize]],
    ['odd splits of writes', chunkSize * 7 + 333, [1, 7, 1000, 3000, 13]],
    ['writes larger than a chunk', chunkSize * 9 + 5, [chunkSize * 4 + 17]],
  ];
  for (const [name, size, splits] of cases) {
    it(`stores and reads back ${name}`, async () => {
      const key = uniqueKey('rt');
      const data = bytes(size, size + 7);
      await put(redis, key, data, { chunkSize }, splits);
      expect((await get(redis, key)).equals(data)).toBe(true);
      const s = await stat(subject(redis), key);
      expect(s).toMatchObject({ state: 'complete', size, chunks: Math.ceil(size / chunkSize), chunkSize });
    });
  }

  it('stores fixed-size chunks whatever sizes are written', async () => {
    const key = uniqueKey('chunks');
    const data = bytes(chunkSize * 3 + 10);
    await put(redis, key, data, { chunkSize }, [3, 500, 2000]);
    const keys = await keysOf(redis, chunkStreamsPattern(key));
    expect(keys).toHaveLength(1);
    const entries = await redis.xrangeBuffer(keys[0]!, '-', '+');
    const ids = entries.map(([id]) => id.toString());
    expect(ids).toEqual(['0-1', '0-2', '1-2', '2-2', '3-2', '4-2']);
    const sizes = entries.slice(1, 5).map(([, f]) => f[1]!.length);
    expect(sizes).toEqual([chunkSize, chunkSize, chunkSize, 10]);
  });
});
