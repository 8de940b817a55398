/**
 * Fan-out of one file: readers acknowledge as named consumers; the file is deleted, in one step,
 * once the writer's consumers are all done, and never earlier.
 */
import { once } from 'node:events';
import { afterAll, describe, expect, it } from 'vitest';
import { createRedisReadStream, createRedisWriteStream, stat } from '../src/index.js';
import {
  blockedIn,
  closeAll,
  connectAny,
  keysOf,
  readyAnySubject,
  subject,
  uniqueConnectionName,
  uniqueKey,
} from './helpers/clients.js';
import { eventually } from './helpers/eventually.js';
import { keyPattern } from './helpers/keys.js';
import { bytes, collect, get, put } from './helpers/streams.js';

const redis = connectAny();
afterAll(closeAll);

async function fileKeys(key: string): Promise<string[]> {
  return keysOf(redis, keyPattern(key));
}

describe('consumers and acknowledgements', () => {
  it('deletes the file once the given number of distinct consumers read it, not before', async () => {
    const key = uniqueKey('count');
    const data = bytes(50_000, 61);
    // Two of the three consumers follow the file from before it exists.
    const name = uniqueConnectionName('count');
    const clients = await Promise.all(['a', 'b'].map(() => readyAnySubject({ connectionName: name })));
    const readers = ['a', 'b'].map((consumer, i) =>
      collect(createRedisReadStream(clients[i]!, key, { consumer, waitForCreate: 10_000 })),
    );
    await eventually(async () => (await blockedIn(redis, name)) === 2, 'both readers to wait for the file');
    const writer = createRedisWriteStream(subject(redis), key, { chunkSize: 4096, consumers: 3 });
    writer.end(data);
    await once(writer, 'finish');
    for (const got of await Promise.all(readers)) expect(got.equals(data)).toBe(true);
    expect([...(await stat(subject(redis), key)).acknowledgedBy].sort()).toEqual(['a', 'b']);
    // A second full read by 'a' does not count twice.
    expect((await get(redis, key, { consumer: 'a' })).equals(data)).toBe(true);
    expect((await stat(subject(redis), key)).acknowledgedBy).toHaveLength(2);
    expect((await get(redis, key, { consumer: 'c' })).equals(data)).toBe(true);
    expect(await fileKeys(key)).toEqual([]);
  });

  it('with a list of names, only those names count', async () => {
    const key = uniqueKey('names');
    await put(redis, key, bytes(1000), { consumers: ['eu', 'us'] });
    expect((await stat(subject(redis), key)).consumers).toEqual(['eu', 'us']);
    await get(redis, key, { consumer: 'eu' });
    await get(redis, key, { consumer: 'asia' });
    expect(await fileKeys(key)).toHaveLength(3);
    await get(redis, key, { consumer: 'us' });
    expect(await fileKeys(key)).toEqual([]);
  });

  it('only a complete read acknowledges: not a range, not a reader destroyed mid-file', async () => {
    const key = uniqueKey('partial');
    await put(redis, key, bytes(100_000), { consumers: 1, chunkSize: 1000 });
    await get(redis, key, { consumer: 'r', start: 0, end: 99 });
    const reader = createRedisReadStream(subject(redis), key, { consumer: 'r', highWaterMark: 1000, readAhead: 1 });
    await new Promise((resolve) => reader.once('data', resolve));
    reader.destroy();
    await once(reader, 'close');
    expect((await stat(subject(redis), key)).acknowledgedBy).toEqual([]);
    // The restarted reader reads it all and acknowledges.
    await get(redis, key, { consumer: 'r' });
    expect(await fileKeys(key)).toEqual([]);
  });

  it('a reader that fetched every byte acknowledges only once the application has taken them all', async () => {
    const key = uniqueKey('taken');
    const data = bytes(40_000, 62);
    await put(redis, key, data, { consumers: 1, chunkSize: 4096 });
    const client = subject(redis);
    const reader = createRedisReadStream(client, key, { consumer: 'r' });
    await once(reader, 'readable');
    const first = reader.read(4096) as Buffer;
    await eventually(() => reader.deliveredBytes === data.length, 'every byte to be fetched');
    // On the reader's client, after anything it sent on fetching the last bytes.
    expect((await stat(client, key)).acknowledgedBy).toEqual([]);
    reader.destroy();
    await once(reader, 'close');
    expect((await stat(client, key)).acknowledgedBy).toEqual([]);
    expect(first.equals(data.subarray(0, 4096))).toBe(true);
    // Taken to the last byte, by read() with a size that does not divide the file (Node hands the
    // rest over at the end), it counts: the file goes.
    const again = createRedisReadStream(client, key, { consumer: 'r' });
    const parts: Buffer[] = [];
    again.on('readable', () => {
      for (let part = again.read(1024) as Buffer | null; part !== null; part = again.read(1024) as Buffer | null)
        parts.push(part);
    });
    await once(again, 'end');
    expect(Buffer.concat(parts).equals(data)).toBe(true);
    expect(await fileKeys(key)).toEqual([]);
  });

  it('a file without consumers records acknowledgements and stays', async () => {
    const key = uniqueKey('keep');
    await put(redis, key, bytes(100));
    await get(redis, key, { consumer: 'x' });
    expect((await stat(subject(redis), key)).acknowledgedBy).toEqual(['x']);
  });

  it('a decompressing consumer acknowledges after the whole file is decoded', async () => {
    const key = uniqueKey('gz');
    const text = Buffer.from('line\n'.repeat(10_000));
    await put(redis, key, text, { compress: true, consumers: 1 });
    expect((await get(redis, key, { consumer: 'z', decompress: true })).equals(text)).toBe(true);
    expect(await fileKeys(key)).toEqual([]);
  });

  it('the TTL stays a safety net for consumers that never come', async () => {
    const key = uniqueKey('ttl');
    await put(redis, key, bytes(100), { consumers: 2, ttl: 1 });
    await get(redis, key, { consumer: 'only-one' });
    await eventually(async () => (await fileKeys(key)).length === 0, 'the file to expire');
  });

  it('rejects bad consumer options at the call', () => {
    expect(() => createRedisWriteStream(subject(redis), 'k', { consumers: 0 })).toThrow(
      expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }),
    );
    expect(() => createRedisWriteStream(subject(redis), 'k', { consumers: [] })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }),
    );
    expect(() => createRedisWriteStream(subject(redis), 'k', { consumers: ['a', 'a'] })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }),
    );
    // An undefined name, and a hole in the array (the second one's index 0), are no names.
    for (const consumers of [[undefined, 'a'], Object.assign(new Array(2), { 1: 'a' })]) {
      expect(() => createRedisWriteStream(subject(redis), 'k', { consumers: consumers as string[] })).toThrow(
        expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE', message: expect.stringContaining('consumers[0]') }),
      );
    }
    expect(() => createRedisReadStream(subject(redis), 'k', { consumer: '' })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }),
    );
  });
});
