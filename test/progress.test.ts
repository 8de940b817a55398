import { pipeline } from 'node:stream/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { createRedisReadStream, createRedisWriteStream, type Progress } from '../src/index.js';
import { closeAll, connectAny, subject, uniqueKey } from './helpers/clients.js';
import { bytes, sink, splitSource } from './helpers/streams.js';

const redis = connectAny();
afterAll(closeAll);

describe('progress', () => {
  it('the writer reports acknowledged bytes, rate-limited, and a final total', async () => {
    const key = uniqueKey('wprogress');
    const data = bytes(2 * 1024 * 1024);
    const events: Progress[] = [];
    const writer = createRedisWriteStream(subject(redis), key, { chunkSize: 1024, progressInterval: 60_000 });
    writer.on('progress', (p) => events.push(p));
    await pipeline(splitSource(data, [4096]), writer);
    // 2048 chunks, but one event at the first acknowledgement and one at the end: not one per chunk.
    expect(events.length).toBe(2);
    expect(events.at(-1)).toEqual({ bytes: data.length, total: data.length });
    expect(writer.committedBytes).toBe(data.length);
  });

  it('with progressInterval 0 the writer reports every acknowledgement, in increasing order', async () => {
    const key = uniqueKey('wprogress0');
    const events: Progress[] = [];
    const writer = createRedisWriteStream(subject(redis), key, { chunkSize: 100, progressInterval: 0 });
    writer.on('progress', (p) => events.push(p));
    await pipeline(splitSource(bytes(1000), [1000]), writer);
    expect(events.map((e) => e.bytes)).toEqual([100, 200, 300, 400, 500, 600, 700, 800, 900, 1000, 1000]);
  });

  it('the reader reports delivered bytes with the total of a complete file', async () => {
    const key = uniqueKey('rprogress');
    const data = bytes(10_000);
    await pipeline(splitSource(data), createRedisWriteStream(subject(redis), key, { chunkSize: 1000 }));
    const events: Progress[] = [];
    const reader = createRedisReadStream(subject(redis), key, { progressInterval: 0 });
    reader.on('progress', (p) => events.push(p));
    await pipeline(reader, sink());
    expect(events.length).toBeGreaterThanOrEqual(10);
    expect(events.every((e) => e.total === data.length)).toBe(true);
    expect(events.at(-1)).toEqual({ bytes: data.length, total: data.length });
    expect(reader.deliveredBytes).toBe(data.length);
  });
});
