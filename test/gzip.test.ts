import { pipeline } from 'node:stream/promises';
import { createGunzip, gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { createRedisReadStream, stat } from '../src/index.js';
import { closeAll, connectAny, subject, uniqueKey } from './helpers/clients.js';
import { bytes, get, put, sink } from './helpers/streams.js';

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
