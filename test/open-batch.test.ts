/**
 * What the open script returns with the hash: the first batch of a file being written, and of a
 * complete file of at most one batch (read whole in that one round trip); nothing for a larger
 * complete file, whose pieces would pass through Lua as copies (an XRANGE of the same entries costs
 * Redis a fraction of it): its reader asks for the first batches with XRANGEs right away. For a file
 * written under a memory limit, a batch of the guarded size only (Redis holds the reply until the
 * reader takes it, and the writer's guard counts on replies of that size).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { fileKeys } from '../src/format.js';
import { createRedisWriteStream } from '../src/index.js';
import { GUARDED_READ_BYTES, guardedBatch } from '../src/memory-guard.js';
import { portOf } from '../src/redis/port.js';
import { OPEN, run } from '../src/scripts/index.js';
import { closeAll, connectAny, subject, uniqueKey } from './helpers/clients.js';
import { bytes, get, put } from './helpers/streams.js';

const redis = connectAny();
afterAll(closeAll);

const chunkSize = 1000;
const readAhead = 16;

/** The open script for a read of `key` from byte `start` to byte `last` (-1: to the end). */
function open(key: string, { start = 0, last = -1 } = {}) {
  const keys = fileKeys('rfs:', key);
  return run(
    portOf(subject(redis)),
    OPEN,
    { meta: keys.meta, events: keys.events },
    {
      chunks: keys.chunks(''),
      start,
      last,
      readAhead,
      readAheadBytes: 1 << 30,
      guardedBytes: GUARDED_READ_BYTES,
    },
  );
}

describe('the open script', () => {
  it('returns the whole of a complete file of one batch, with its header and end record', async () => {
    const key = uniqueKey('open-small');
    const data = bytes(12 * chunkSize, 1);
    await put(subject(redis), key, data, { chunkSize });
    const reply = await open(key);
    expect(reply.status).toBe('ok');
    if (reply.status !== 'ok') return;
    // The header, 12 chunks and the end record: fewer than a batch, so the stream ends there.
    expect(reply.first?.count).toBe(readAhead);
    expect(reply.first?.entries).toHaveLength(14);
  });

  it('returns no more of a range than the chunks it covers, counted as the reader counts them', async () => {
    const key = uniqueKey('open-range');
    const data = bytes(12 * chunkSize, 4);
    await put(subject(redis), key, data, { chunkSize });
    const count = async (start: number, last: number) => {
      const reply = await open(key, { start, last });
      if (reply.status !== 'ok') throw new Error(reply.status);
      return [reply.first?.count, reply.first?.entries.length];
    };
    // From byte 0: the header, then chunks 0 to 2.
    expect(await count(0, 2 * chunkSize + 5)).toEqual([4, 4]);
    expect(await count(0, 0)).toEqual([2, 2]);
    // From chunk 5 to chunk 7.
    expect(await count(5 * chunkSize + 1, 7 * chunkSize)).toEqual([3, 3]);
    // To the last byte or past it: the whole batch, the end record with it.
    expect(await count(5 * chunkSize, 12 * chunkSize - 1)).toEqual([readAhead, 8]);
    expect(await count(5 * chunkSize, 10 ** 9)).toEqual([readAhead, 8]);
    // And the reads themselves.
    expect(
      (await get(subject(redis), key, { start: 5 * chunkSize + 1, end: 7 * chunkSize })).equals(
        data.subarray(5 * chunkSize + 1, 7 * chunkSize + 1),
      ),
    ).toBe(true);
    expect((await get(subject(redis), key, { end: 0 })).equals(data.subarray(0, 1))).toBe(true);
  });

  it('returns no entries of a complete file larger than one batch, which reads whole all the same', async () => {
    const key = uniqueKey('open-large');
    const data = bytes(40 * chunkSize + 7, 2);
    await put(subject(redis), key, data, { chunkSize });
    const reply = await open(key);
    expect(reply.status).toBe('ok');
    if (reply.status !== 'ok') return;
    expect(reply.first).toBeUndefined();
    expect((await get(subject(redis), key)).equals(data)).toBe(true);
    // And from its middle.
    expect(
      (await get(subject(redis), key, { start: 17 * chunkSize + 3 })).equals(data.subarray(17 * chunkSize + 3)),
    ).toBe(true);
  });

  it('returns the first batch of a file being written, however large', async () => {
    const key = uniqueKey('open-writing');
    const ws = createRedisWriteStream(subject(redis), key, { chunkSize, flushInterval: 0 });
    const data = bytes(40 * chunkSize, 3);
    await new Promise<void>((resolve, reject) => ws.write(data, (err) => (err ? reject(err) : resolve())));
    await new Promise<void>((resolve, reject) => ws.flush((err?: Error | null) => (err ? reject(err) : resolve())));
    const reply = await open(key);
    expect(reply.status).toBe('ok');
    if (reply.status !== 'ok') return;
    expect(reply.first?.entries).toHaveLength(readAhead);
    ws.end();
    await new Promise((resolve) => ws.on('finish', resolve));
  });

  it('returns a batch of the guarded size only of a file written under a memory limit', async () => {
    const key = uniqueKey('open-guarded');
    const big = 64 * 1024;
    expect(guardedBatch(big)).toBe(4);
    // A limit far above what the file needs: nothing waits; consumers trim what they all read.
    const ws = createRedisWriteStream(subject(redis), key, {
      chunkSize: big,
      flushInterval: 0,
      maxRedisMemory: 1 << 30,
      consumers: ['a'],
    });
    ws.on('error', () => {});
    const data = bytes(20 * big, 4);
    await new Promise<void>((resolve, reject) => ws.write(data, (err) => (err ? reject(err) : resolve())));
    await new Promise<void>((resolve, reject) => ws.flush((err?: Error | null) => (err ? reject(err) : resolve())));
    const reply = await open(key);
    expect(reply.status).toBe('ok');
    if (reply.status !== 'ok') return;
    expect(reply.meta.trim).toBe('1');
    // The header and 3 chunks: 4 entries, not 16.
    expect(reply.first?.count).toBe(4);
    expect(reply.first?.entries).toHaveLength(4);
    ws.end();
    await new Promise((resolve) => ws.on('finish', resolve));
    expect((await get(subject(redis), key, { consumer: 'a' })).equals(data)).toBe(true);
  });
});
