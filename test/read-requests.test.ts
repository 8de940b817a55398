/**
 * What a read asks Redis for. A batch is bounded in bytes as well as in chunks (`readAheadBytes`):
 * larger chunks make fewer chunks per request, not larger replies. A range, the chunks it covers
 * and no more: a few bytes from a large file cost one chunk, not a batch of them (and not the
 * batch after it, read ahead). A file stored in pieces (a slowly written log), a batch of chunks
 * per request, not a batch of pieces: its requests are bounded by chunk, whether the file is
 * complete or still being written. Counted from every XRANGE Redis ran on the file's chunk stream,
 * the open script's included.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { createRedisWriteStream, type RedisWriteStream } from '../src/index.js';
import { uniqueKey } from './helpers/clients.js';
import { chunkStreamOf } from './helpers/keys.js';
import { type ChunkRange, chunkRangesDuring } from './helpers/monitor.js';
import { useOwnServer } from './helpers/own-server.js';
import { bytes, get, put } from './helpers/streams.js';

// A server of this file's own: MONITOR on the shared one would also stream every other test's
// writes into the monitor connection.
const own = useOwnServer();

const chunkSize = 1000;
const readAhead = 16;

/** Read bytes `start` to `end` of `key`, checked against `data`; the XRANGEs it took. */
function readRange(key: string, data: Buffer, start: number, end: number): Promise<ChunkRange[]> {
  return chunkRangesDuring(own.admin, key, async () => {
    const part = await get(own.admin, key, { start, end, readAhead });
    expect(part.equals(data.subarray(start, end + 1))).toBe(true);
  });
}

/** The chunks the XRANGEs bounded by chunk asked for, as [after chunk, up to chunk] pairs. */
const spans = (ranges: ChunkRange[]) => ranges.map(({ from, to }) => [from, to]);

/** The chunks each XRANGE bounded by chunk on `key`'s chunk stream asked for while `during` ran. */
async function chunksPerRequest(key: string, during: () => Promise<unknown>): Promise<number[]> {
  return (await chunkRangesDuring(own.admin, key, during))
    .filter(({ to }) => to !== Infinity)
    .map(({ from, to }) => to - from);
}

/** Resolve once `writer` has stored what was written to it. */
const flushed = (writer: RedisWriteStream) =>
  new Promise<void>((resolve, reject) => writer.flush((err) => (err ? reject(err) : resolve())));

describe('a range read of a complete file', () => {
  const key = uniqueKey('read-requests');
  const data = bytes(100 * chunkSize + 123, 201);
  beforeAll(() => put(own.admin, key, data, { chunkSize }));

  it('of a few bytes in one chunk asks for that chunk alone', async () => {
    expect(spans(await readRange(key, data, 37 * chunkSize + 10, 37 * chunkSize + 20))).toEqual([[36, 37]]);
    expect(spans(await readRange(key, data, 37 * chunkSize, 38 * chunkSize - 1))).toEqual([[36, 37]]);
  });

  it('from byte 0 asks for the header and the chunks up to its end', async () => {
    expect(spans(await readRange(key, data, 0, 10))).toEqual([[-1, 0]]);
    expect(spans(await readRange(key, data, 0, 2 * chunkSize))).toEqual([[-1, 2]]);
  });

  it('across batches asks for exactly the chunks it covers, a batch at most at a time', async () => {
    expect(spans(await readRange(key, data, 3 * chunkSize + 999, 40 * chunkSize + 1))).toEqual([
      [2, 18],
      [18, 34],
      [34, 40],
    ]);
  });

  it('to the end of the file reads whole batches, the last to the end of the stream and its end record', async () => {
    for (const end of [data.length - 1, data.length, 10 ** 9]) {
      const ranges = await chunkRangesDuring(own.admin, key, async () => {
        const part = await get(own.admin, key, { start: 70 * chunkSize, end, readAhead });
        expect(part.equals(data.subarray(70 * chunkSize))).toBe(true);
      });
      expect(spans(ranges)).toEqual([
        [69, 85],
        [85, Infinity],
      ]);
    }
  });

  it('of a small file takes only the range from the open script', async () => {
    const small = uniqueKey('read-requests-small');
    const smallData = bytes(12 * chunkSize, 202);
    await put(own.admin, small, smallData, { chunkSize });
    // The open script's XRANGE (the file fits one batch), and no other.
    expect(await readRange(small, smallData, 5 * chunkSize + 1, 7 * chunkSize)).toEqual([
      { from: 4, to: Infinity, count: 3 },
    ]);
    expect(await readRange(small, smallData, 0, 0)).toEqual([{ from: -1, to: Infinity, count: 2 }]);
  });
});

describe('a complete file stored in pieces', () => {
  const key = uniqueKey('read-requests-pieces');
  const data = bytes(60 * chunkSize, 203);
  beforeAll(async () => {
    // Each write flushed: chunks of ten pieces of 100 bytes, as a slowly written log stores them.
    const writer = createRedisWriteStream(own.admin, key, { chunkSize, flushInterval: 0 });
    for (let at = 0; at < data.length; at += 100) {
      writer.write(data.subarray(at, at + 100));
      await flushed(writer);
    }
    await new Promise<void>((resolve, reject) => writer.end((err?: Error | null) => (err ? reject(err) : resolve())));
  });

  it('is read a batch of chunks per request, not a batch of pieces', async () => {
    const ranges = await chunkRangesDuring(own.admin, key, async () => {
      expect((await get(own.admin, key, { readAhead })).equals(data)).toBe(true);
    });
    // 600 pieces in 4 requests, where requests of 16 entries took 38.
    expect(spans(ranges)).toEqual([
      [-1, 15],
      [15, 31],
      [31, 47],
      [47, Infinity],
    ]);
  });

  it('in a range, is read in the requests that cover its chunks', async () => {
    expect(spans(await readRange(key, data, 10 * chunkSize + 50, 19 * chunkSize - 1))).toEqual([[9, 18]]);
  });
});

describe('a range read of a file being written', () => {
  it('asks for the chunks the range covers', async () => {
    const key = uniqueKey('read-requests-writing');
    const data = bytes(40 * chunkSize, 204);
    const writer = createRedisWriteStream(own.admin, key, { chunkSize, flushInterval: 0 });
    writer.write(data);
    await flushed(writer);
    // The open script's first batch: chunks 10 to 12, counted as entries of whole chunks.
    expect(await readRange(key, data, 10 * chunkSize, 12 * chunkSize + 5)).toEqual([
      { from: 9, to: Infinity, count: 3 },
    ]);
    await new Promise<void>((resolve, reject) => writer.end((err?: Error | null) => (err ? reject(err) : resolve())));
  });
});

describe('a complete file with a hole longer than a batch', () => {
  it('is corrupt, however it is read: the request after an empty one reads on to the stream end', async () => {
    const key = uniqueKey('read-requests-hole');
    const data = bytes(100 * chunkSize, 205);
    await put(own.admin, key, data, { chunkSize });
    const chunks = await chunkStreamOf(own.admin, key);
    // Chunks 16 to 60: the batches bounded at 31 and 47 find nothing at all.
    for (let n = 16; n <= 60; n++) await own.admin.xdel(chunks, `${n}-2`);
    for (const range of [
      {},
      { start: 10 * chunkSize, end: 70 * chunkSize },
      { start: 30 * chunkSize, end: 30 * chunkSize + 9 },
    ]) {
      await expect(get(own.admin, key, { ...range, readAhead })).rejects.toMatchObject({
        code: 'ERR_REDIS_FILE_CORRUPT',
      });
    }
  });
});

describe('a file being written in pieces', () => {
  it('is read a batch of chunks per request, then followed from where it ends', async () => {
    const key = uniqueKey('read-requests-writing-pieces');
    const data = bytes(60 * chunkSize, 206);
    const more = bytes(5 * chunkSize, 207);
    const writer = createRedisWriteStream(own.admin, key, { chunkSize, flushInterval: 0 });
    for (let at = 0; at < data.length; at += 100) {
      writer.write(data.subarray(at, at + 100));
      await flushed(writer);
    }
    // What is stored now: the open script's first batch (16 entries), then batches bounded by
    // chunk; the last stops short of its bound, and one request to the stream's end finds the end.
    const ranges = await chunkRangesDuring(own.admin, key, async () => {
      expect((await get(own.admin, key, { readAhead, follow: false })).equals(data)).toBe(true);
    });
    expect(ranges.length).toBeLessThanOrEqual(7);
    expect(ranges[0]).toEqual({ from: -1, to: Infinity, count: readAhead });
    expect(ranges.at(-1)?.to).toBe(Infinity);
    const bounded = ranges.slice(1, -1);
    expect(bounded.length).toBeGreaterThan(0);
    expect(bounded.every(({ from, to }) => to - from === readAhead)).toBe(true);
    // A follower reads the same, then what is written after it, to the end record.
    const following = get(own.admin, key, { readAhead });
    writer.write(more);
    await new Promise<void>((resolve, reject) => writer.end((err?: Error | null) => (err ? reject(err) : resolve())));
    expect((await following).equals(Buffer.concat([data, more]))).toBe(true);
  });
});

describe('readAheadBytes: the bytes of one request', () => {
  it('asks for readAheadBytes / chunkSize chunks per request, at most readAhead, at least one', async () => {
    const key = uniqueKey('read-ahead');
    const data = bytes(40 * 1000, 81);
    await put(own.admin, key, data, { chunkSize: 1000 });
    const chunks = await chunksPerRequest(key, async () => {
      expect((await get(own.admin, key, { readAheadBytes: 3000 })).equals(data)).toBe(true);
      expect((await get(own.admin, key, { readAheadBytes: 1_000_000, readAhead: 5 })).equals(data)).toBe(true);
      expect((await get(own.admin, key, { readAheadBytes: 10 })).equals(data)).toBe(true);
    });
    expect(new Set(chunks)).toEqual(new Set([3, 5, 1]));
  });

  it('defaults to 4 MiB: 16 chunks of 256 KiB, 4 chunks of 1 MiB', async () => {
    const key = uniqueKey('read-ahead-mib');
    const data = bytes(10 * 1024 * 1024, 82);
    await put(own.admin, key, data, { chunkSize: 1024 * 1024 });
    const small = uniqueKey('read-ahead-kib');
    await put(own.admin, small, data, { chunkSize: 256 * 1024 });
    // Chunks 0 to 3 and 4 to 7; then the rest, and the end record, to the stream's end.
    expect(
      await chunksPerRequest(key, async () => expect((await get(own.admin, key)).equals(data)).toBe(true)),
    ).toEqual([4, 4]);
    expect(
      await chunksPerRequest(small, async () => expect((await get(own.admin, small)).equals(data)).toBe(true)),
    ).toEqual([16, 16]);
  });
});
