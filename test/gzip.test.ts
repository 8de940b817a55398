import { finished, pipeline } from 'node:stream/promises';
import { createGunzip, gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { createRedisReadStream, createRedisWriteStream, stat } from '../src/index.js';
import { closeAll, connectAny, subject, uniqueKey } from './helpers/clients.js';
import { bytes, follower, get, put, sink } from './helpers/streams.js';

const redis = connectAny();
afterAll(closeAll);

const text = Buffer.from(
  Array.from({ length: 5000 }, (_, i) => `2026-11-30T10:${i % 60},GET,/item/${i},${i % 7}\n`).join(''),
);

describe('gzip passthrough', () => {
  it('stores a declared .gz byte for byte, ready for zlib', async () => {
    const key = uniqueKey('gz');
    const gz = gzipSync(text);
    await put(redis, key, gz, { chunkSize: 4096, contentEncoding: 'gzip' }, [1000]);
    expect((await stat(subject(redis), key)).contentEncoding).toBe('gzip');
    expect((await get(redis, key)).equals(gz)).toBe(true);
    const out = sink();
    await pipeline(createRedisReadStream(subject(redis), key), createGunzip(), out);
    expect(out.data().equals(text)).toBe(true);
  });

  it("takes x-gzip, HTTP's other name for gzip, as gzip: stored as gzip, decompressed on the way out", async () => {
    const key = uniqueKey('xgz');
    await put(redis, key, gzipSync(text), { contentEncoding: 'X-Gzip' });
    expect((await stat(subject(redis), key)).contentEncoding).toBe('gzip');
    expect((await get(redis, key, { decompress: true })).equals(text)).toBe(true);
    expect(() =>
      createRedisWriteStream(subject(redis), uniqueKey('xgz2'), { contentEncoding: 'x-gzip', compress: true }),
    ).toThrow(expect.objectContaining({ name: 'TypeError' }));
  });

  it('stores plain bytes as identity', async () => {
    const key = uniqueKey('plain');
    await put(redis, key, text, { chunkSize: 4096 });
    expect((await stat(subject(redis), key)).contentEncoding).toBe('identity');
    // decompress is a no-op for identity files
    expect((await get(redis, key, { decompress: true })).equals(text)).toBe(true);
  });

  it('decompresses a declared gzip file written in single bytes and small pieces', async () => {
    const key = uniqueKey('gz1');
    const gz = gzipSync(text);
    await put(redis, key, gz, { chunkSize: 7, contentEncoding: 'gzip' }, [1, 1, 2, 4096]);
    expect((await stat(subject(redis), key)).contentEncoding).toBe('gzip');
    expect((await get(redis, key, { decompress: true })).equals(text)).toBe(true);
  });

  it('guesses nothing from the bytes: undeclared gzip input is stored as identity and read back as is', async () => {
    const key = uniqueKey('undeclared');
    const gz = gzipSync(text);
    await put(redis, key, gz);
    expect((await stat(subject(redis), key)).contentEncoding).toBe('identity');
    expect((await get(redis, key, { decompress: true })).equals(gz)).toBe(true);
  });

  it('compress: true gzips on the way in; decompress: true gunzips on the way out', async () => {
    const key = uniqueKey('compress');
    await put(redis, key, text, { compress: true, chunkSize: 2048 }, [100, 5000]);
    const s = await stat(subject(redis), key);
    expect(s.contentEncoding).toBe('gzip');
    expect(s.size).toBeLessThan(text.length);
    const stored = await get(redis, key);
    expect(gunzipSync(stored).equals(text)).toBe(true);
    expect((await get(redis, key, { decompress: true })).equals(text)).toBe(true);
  });

  it('compresses an empty input into a valid empty gzip', async () => {
    const key = uniqueKey('compress-empty');
    await put(redis, key, Buffer.alloc(0), { compress: true });
    expect((await get(redis, key, { decompress: true })).length).toBe(0);
  });

  it('decompresses multi-member gzip', async () => {
    const key = uniqueKey('multi');
    const a = text.subarray(0, 1000);
    const b = text.subarray(1000);
    await put(redis, key, Buffer.concat([gzipSync(a), gzipSync(b)]), { chunkSize: 512, contentEncoding: 'gzip' });
    expect((await get(redis, key, { decompress: true })).equals(text)).toBe(true);
  });

  it('fails on a truncated gzip instead of ending short', async () => {
    const key = uniqueKey('truncated');
    const gz = gzipSync(bytes(50_000));
    await put(redis, key, gz.subarray(0, gz.length - 100), { chunkSize: 4096, contentEncoding: 'gzip' });
    await expect(get(redis, key, { decompress: true })).rejects.toMatchObject({ code: 'ERR_REDIS_FILE_DECODE' });
  });

  it('fails when the gzip data ends before the file does: zero padding, in the same piece or in later chunks', async () => {
    const gz = gzipSync(text);
    const padded = Buffer.concat([gz, Buffer.alloc(8)]);
    const samePiece = uniqueKey('pad1');
    await put(redis, samePiece, padded, { contentEncoding: 'gzip' });
    // Then another member after the padding, in chunks of their own (zlib stops reading at a zero).
    const later = uniqueKey('pad2');
    const tail = Buffer.concat([Buffer.alloc(5000), gzipSync('more\n')]);
    await put(redis, later, Buffer.concat([gz, tail]), { chunkSize: 4096, contentEncoding: 'gzip' }, [gz.length, 5000]);
    for (const key of [samePiece, later]) {
      await expect(get(redis, key, { decompress: true })).rejects.toMatchObject({
        code: 'ERR_REDIS_FILE_DECODE',
        message: expect.stringContaining(`the gzip data ends at byte ${gz.length} and more of the file follows it`),
      });
    }
    // The stored bytes themselves are intact.
    expect((await get(redis, later)).equals(Buffer.concat([gz, tail]))).toBe(true);
  });

  it('a decompressing follower fails at once when the gzip data ends while the writer writes on', async () => {
    const key = uniqueKey('padlive');
    const writer = createRedisWriteStream(subject(redis), key, { contentEncoding: 'gzip' });
    const reader = follower(subject(redis), key, { decompress: true });
    writer.write(Buffer.concat([gzipSync('first\n'), Buffer.alloc(8)]));
    await expect(reader.done).rejects.toMatchObject({ code: 'ERR_REDIS_FILE_DECODE' });
    // It failed before the writer ended: what the writer does next changes nothing.
    expect(writer.writableEnded).toBe(false);
    writer.end(gzipSync('second\n'));
    await finished(writer);
  });

  it('follow: false on a compressed file still being written delivers what its stored pieces decode to, and ends', async () => {
    const key = uniqueKey('gzpartial');
    const writer = createRedisWriteStream(subject(redis), key, { compress: true, flushInterval: 0 });
    writer.write(text);
    await new Promise<void>((resolve, reject) => writer.flush((err) => (err ? reject(err) : resolve())));
    expect((await stat(subject(redis), key)).state).toBe('writing');
    expect((await get(redis, key, { follow: false, decompress: true })).equals(text)).toBe(true);
    writer.end();
    await finished(writer);
    expect((await get(redis, key, { decompress: true })).equals(text)).toBe(true);
  });

  it('follow: false stopping inside the gzip data hands everything decoded to a slow consumer, then ends', async () => {
    const key = uniqueKey('gzpartialslow');
    // Decodes to far more than the stream and the gunzip buffer hold: the gunzip is paused when
    // the read stops inside the data, and must still hand on the rest.
    const big = Buffer.concat(Array.from({ length: 40 }, () => text));
    const writer = createRedisWriteStream(subject(redis), key, { compress: true, flushInterval: 0 });
    writer.write(big);
    await new Promise<void>((resolve, reject) => writer.flush((err) => (err ? reject(err) : resolve())));
    const reader = createRedisReadStream(subject(redis), key, { decompress: true, follow: false, highWaterMark: 1024 });
    const parts: Buffer[] = [];
    for await (const part of reader) {
      parts.push(part as Buffer);
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(Buffer.concat(parts).equals(big)).toBe(true);
    writer.end();
    await finished(writer);
  });

  it('fails on a corrupt gzip', async () => {
    const key = uniqueKey('corrupt');
    const gz = Buffer.from(gzipSync(text));
    gz.fill(0x55, 20, 60);
    await put(redis, key, gz, { chunkSize: 4096, contentEncoding: 'gzip' });
    await expect(get(redis, key, { decompress: true })).rejects.toMatchObject({ code: 'ERR_REDIS_FILE_DECODE' });
  });

  it('streams a decompression far larger than the stored bytes', async () => {
    const key = uniqueKey('bomb');
    const big = Buffer.alloc(64 * 1024 * 1024, 0x61);
    const gz = gzipSync(big);
    expect(gz.length).toBeLessThan(200 * 1024);
    await put(redis, key, gz, { contentEncoding: 'gzip' });
    let total = 0;
    let maxBuffered = 0;
    const reader = createRedisReadStream(subject(redis), key, { decompress: true, highWaterMark: 64 * 1024 });
    for await (const part of reader) {
      total += (part as Buffer).length;
      maxBuffered = Math.max(maxBuffered, reader.readableLength);
    }
    expect(total).toBe(big.length);
    // The stream's own buffer stays near its highWaterMark, not the decompressed size.
    expect(maxBuffered).toBeLessThan(1024 * 1024);
    expect(gunzipSync(gz).length).toBe(total);
  });
});
