/**
 * Late data: bytes a slow writer writes reach followers within `flushInterval`, as pieces of their
 * chunk, without waiting for the chunk to fill; `flush()` sends them at once; a bulk writer still
 * stores one piece per chunk.
 */
import { once } from 'node:events';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { createRedisReadStream, createRedisWriteStream } from '../src/index.js';
import { closeAll, connectAny, subject, uniqueKey } from './helpers/clients.js';
import { eventually } from './helpers/eventually.js';
import { chunkStreamOf } from './helpers/keys.js';
import { bytes, collect, get } from './helpers/streams.js';

const redis = connectAny();
afterAll(closeAll);

/** Everything a readable delivers, as it comes. */
function received(readable: NodeJS.ReadableStream): { data(): Buffer } {
  const parts: Buffer[] = [];
  readable.on('data', (d: Buffer | string) => parts.push(Buffer.from(d)));
  return { data: () => Buffer.concat(parts) };
}

function flush(writer: ReturnType<typeof createRedisWriteStream>): Promise<void> {
  return new Promise((resolve, reject) => writer.flush((err) => (err ? reject(err) : resolve())));
}

async function ids(key: string): Promise<string[]> {
  return (await redis.xrange(await chunkStreamOf(redis, key), '-', '+')).map(([id]) => id);
}

describe('flushInterval and flush()', () => {
  it("a follower receives a slow writer's bytes with default options, long before a chunk fills", async () => {
    const key = uniqueKey('late');
    const writer = createRedisWriteStream(subject(redis), key);
    await once(writer, 'ready');
    const reader = createRedisReadStream(subject(redis), key);
    const got = received(reader);
    for (const line of ['line 1\n', 'line 2\n', 'line 3\n']) {
      writer.write(line);
      // Each line arrives on its own while the writer is still far from filling a 256 KiB chunk.
      await eventually(() => got.data().toString().endsWith(line), `the follower to receive ${JSON.stringify(line)}`);
    }
    writer.end();
    await once(reader, 'end');
    expect(got.data().toString()).toBe('line 1\nline 2\nline 3\n');
    // Chunk 0 holds three pieces, and the end record follows.
    expect(await ids(key)).toEqual(['0-1', '0-2', '0-3', '0-4', '1-2']);
  });

  it('with flushInterval 0 nothing is stored before a chunk fills, until flush() sends it', async () => {
    const key = uniqueKey('manual');
    const writer = createRedisWriteStream(subject(redis), key, { flushInterval: 0, chunkSize: 1024 });
    await once(writer, 'ready');
    await new Promise<void>((resolve, reject) => writer.write('held back', (err) => (err ? reject(err) : resolve())));
    expect(await ids(key)).toEqual(['0-1']);
    const reader = createRedisReadStream(subject(redis), key);
    const got = received(reader);
    await flush(writer);
    // Stored once the flush calls back, and delivered to the follower.
    expect(await ids(key)).toEqual(['0-1', '0-2']);
    await eventually(() => got.data().toString() === 'held back', 'the follower to receive the flushed bytes');
    writer.end(' and the rest');
    await once(reader, 'end');
    expect(got.data().toString()).toBe('held back and the rest');
  });

  it('a flush comes in order after the writes before it, and an empty flush stores nothing', async () => {
    const key = uniqueKey('order');
    const writer = createRedisWriteStream(subject(redis), key, { flushInterval: 0, chunkSize: 8 });
    writer.write('abc');
    writer.write('defghij');
    await flush(writer);
    await flush(writer);
    writer.end('k');
    await once(writer, 'finish');
    // "abcdefgh" fills chunk 0 (one piece); the flush sends "ij" as the first piece of chunk 1.
    expect(await ids(key)).toEqual(['0-1', '0-2', '1-2', '1-3', '2-2']);
    expect((await get(redis, key)).toString()).toBe('abcdefghijk');
  });

  it('a bulk writer stores one piece per chunk, as if it never flushed', async () => {
    const key = uniqueKey('bulk');
    const data = bytes(10 * 4096 + 100, 17);
    const writer = createRedisWriteStream(subject(redis), key, { chunkSize: 4096, flushInterval: 1 });
    writer.end(data);
    await once(writer, 'finish');
    const stored = await ids(key);
    expect(stored).toEqual(['0-1', ...Array.from({ length: 11 }, (_, n) => `${n}-2`), '11-2']);
    expect((await get(redis, key)).equals(data)).toBe(true);
  });

  it('compress: a slow gzip writer is flushed too, so a decompressing follower sees each line', async () => {
    const key = uniqueKey('gz-late');
    const writer = createRedisWriteStream(subject(redis), key, { compress: true });
    await once(writer, 'ready');
    const reader = createRedisReadStream(subject(redis), key, { decompress: true });
    const got = received(reader);
    for (const line of ['first\n', 'second\n']) {
      writer.write(line);
      await eventually(
        () => got.data().toString().endsWith(line),
        `the decompressing follower to receive ${JSON.stringify(line)}`,
      );
    }
    writer.end();
    await once(reader, 'end');
    expect(got.data().toString()).toBe('first\nsecond\n');
  });

  it('a reader of pieces written one byte at a time gets the bytes and the checked end', async () => {
    const key = uniqueKey('bytes');
    const writer = createRedisWriteStream(subject(redis), key, { flushInterval: 0, chunkSize: 4 });
    const text = 'abcdefghij';
    for (const c of text) {
      writer.write(c);
      await flush(writer);
    }
    writer.end();
    await once(writer, 'finish');
    expect((await ids(key)).length).toBe(1 + text.length + 1);
    expect((await collect(createRedisReadStream(subject(redis), key, { start: 3, end: 6 }))).toString()).toBe('defg');
    expect((await get(redis, key)).toString()).toBe(text);
    // The stored gzip of a declared file goes through a flushing writer unchanged.
    const gz = gzipSync(text);
    const k2 = uniqueKey('bytes-gz');
    const w2 = createRedisWriteStream(subject(redis), k2, { contentEncoding: 'gzip', flushInterval: 0, chunkSize: 7 });
    for (let i = 0; i < gz.length; i += 5) {
      w2.write(gz.subarray(i, i + 5));
      await flush(w2);
    }
    w2.end();
    await once(w2, 'finish');
    expect((await get(redis, k2, { decompress: true })).toString()).toBe(text);
  });

  it('rejects a bad flushInterval at the call', () => {
    expect(() => createRedisWriteStream(subject(redis), 'k', { flushInterval: -1 })).toThrow(
      expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }),
    );
    expect(() => createRedisWriteStream(subject(redis), 'k', { flushInterval: '100' as unknown as number })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }),
    );
  });
});
