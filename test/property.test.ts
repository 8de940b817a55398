/**
 * Property-based tests (fast-check) of the round-trip laws, against the shared redis-server:
 *
 * - whatever bytes are written, however the writes are split and whatever the chunk size, the
 *   reader yields exactly the written bytes, and stat() describes them;
 * - a byte range within a complete file reads like `fs.createReadStream({ start, end })` (end
 *   inclusive); one reaching past its end fails with ERR_REDIS_FILE_RANGE instead of reading short
 *   (see `#checkRange` in src/read-stream.ts, and {@link rangeOutcome} here);
 * - with `compress` on the way in and `decompress` on the way out, any input round-trips.
 *
 * fast-check picks a new seed on every run. On failure it shrinks the input and its error message
 * gives the seed and path; replay with `fc.assert(prop, { seed, path, endOnFailure: true })`.
 */
import { Buffer } from 'node:buffer';
import { once } from 'node:events';
import { finished } from 'node:stream/promises';
import { crc32, gunzipSync } from 'node:zlib';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import {
  createRedisReadStream,
  createRedisWriteStream,
  type ReadStreamOptions,
  RedisFileError,
  remove,
  stat,
  type WriteStreamOptions,
} from '../src/index.js';
import { closeAll, connect, subject, uniqueKey } from './helpers/clients.js';
import { get, put } from './helpers/streams.js';

const redis = connect();
afterAll(closeAll);

const KiB = 1024;
const MAX_SIZE = 20 * KiB;
/**
 * Files of more chunks than this are skipped (fc.pre), so that a 20 KiB file in 1-byte chunks
 * (20,480 Redis entries) does not eat the time budget; small chunk sizes still get files of
 * hundreds of chunks, and large files still get small chunks (20 KiB in chunks of 20 bytes).
 */
const MAX_CHUNKS = 1024;
const fewEnoughChunks = (bytes: number, chunkSize: number): boolean => bytes <= chunkSize * MAX_CHUNKS;

/**
 * Shared runner settings. A run that hangs fails after `timeout` instead of running into the vitest
 * timeout (which would lose fast-check's report with the seed); shrinking is cut short after
 * `interruptAfterTimeLimit`, still reporting the smallest counterexample found so far.
 */
const runner = (numRuns: number): fc.Parameters<unknown> => ({
  numRuns,
  plugins: [fc.timeout(15_000), fc.interruptAfterTimeLimit(45_000, { failOnInterrupt: true })],
});
const TEST_TIMEOUT = 75_000;

// ---------------------------------------------------------------------------------------------
// Arbitraries

/** File contents from 0 to 20 KiB, most of them small so that edge cases come up often. */
const contents: fc.Arbitrary<Buffer> = fc
  .oneof(
    { weight: 2, arbitrary: fc.uint8Array({ maxLength: MAX_SIZE, size: 'small' }) }, // up to ~10 bytes
    { weight: 3, arbitrary: fc.uint8Array({ maxLength: MAX_SIZE, size: 'medium' }) }, // up to ~100
    { weight: 3, arbitrary: fc.uint8Array({ maxLength: MAX_SIZE, size: 'large' }) }, // up to ~1000
    { weight: 2, arbitrary: fc.uint8Array({ maxLength: MAX_SIZE, size: 'max' }) }, // up to 20 KiB
  )
  .map((a) => Buffer.from(a));

/** Chunk sizes from 1 to 4 KiB, weighted to small ones so that files span many chunk boundaries. */
const chunkSizes: fc.Arbitrary<number> = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: 1, max: 8 }) },
  { weight: 3, arbitrary: fc.integer({ min: 9, max: 64 }) },
  { weight: 2, arbitrary: fc.integer({ min: 65, max: 512 }) },
  { weight: 2, arbitrary: fc.integer({ min: 513, max: 4 * KiB }) },
);

/** How the input is cut into write() calls: sizes used in turn, cycled (see splitSource). */
const writeSplits: fc.Arbitrary<number[]> = fc.array(
  fc.oneof(
    { weight: 3, arbitrary: fc.integer({ min: 1, max: 16 }) },
    { weight: 2, arbitrary: fc.integer({ min: 17, max: 8 * KiB }) },
  ),
  { minLength: 1, maxLength: 12 },
);

/** Optional tuning of the writer's and the reader's windows, which changes how I/O interleaves. */
const writeTuning: fc.Arbitrary<Pick<WriteStreamOptions, 'maxInFlight'>> = fc.record(
  { maxInFlight: fc.integer({ min: 1, max: 32 }) },
  { requiredKeys: [] },
);
const readTuning: fc.Arbitrary<Pick<ReadStreamOptions, 'readAhead' | 'highWaterMark'>> = fc.record(
  { readAhead: fc.integer({ min: 1, max: 20 }), highWaterMark: fc.integer({ min: 1, max: 64 * KiB }) },
  { requiredKeys: [] },
);

/** A byte range for a file of `size` bytes: bounds within and slightly beyond the file. */
type Range = { start: number | undefined; end: number | undefined };
function ranges(size: number): fc.Arbitrary<Range[]> {
  const end = (min: number): fc.Arbitrary<number | undefined> =>
    fc.oneof(
      { weight: 6, arbitrary: fc.integer({ min, max: size + 2 }) },
      { weight: 1, arbitrary: fc.constantFrom(undefined, Infinity, Number.MAX_SAFE_INTEGER) },
    );
  // The edges: the whole file, its last byte, the empty read at its end, and just past them.
  const edges: Range[] = [
    { start: 0, end: size - 1 },
    { start: size - 1, end: size - 1 },
    { start: size, end: undefined },
    { start: size, end: size },
    { start: 0, end: size },
    { start: size + 1, end: undefined },
  ].filter((r) => r.start >= 0 && (r.end === undefined || r.end >= r.start));
  const range = fc.oneof(
    {
      weight: 5,
      arbitrary: fc
        .integer({ min: 0, max: size + 2 })
        .chain((start) => fc.record({ start: fc.constant(start), end: end(start) })),
    },
    { weight: 1, arbitrary: fc.record({ start: fc.constant(undefined), end: end(0) }) },
    { weight: 1, arbitrary: fc.constantFrom(...edges) },
  );
  return fc.array(range, { minLength: 1, maxLength: 6 });
}

/**
 * What reading `range` of a complete file holding `data` gives: the bytes
 * `fs.createReadStream(path, { start, end })` would yield, when the range lies within the file.
 * Unlike fs, which reads short (or nothing), a range reaching past the end is an error: `start`
 * after the last byte (start == size is an empty read), or a finite `end` at or after the size.
 */
function rangeOutcome(
  data: Buffer,
  { start = 0, end = Infinity }: Range,
): { bytes: Buffer } | { error: 'ERR_REDIS_FILE_RANGE' } {
  // As fs: an end past the end reads to the end; a start past it is an error here (fs reads nothing).
  if (start > data.length) return { error: 'ERR_REDIS_FILE_RANGE' };
  return { bytes: data.subarray(start, end === Infinity ? undefined : end + 1) };
}

/** Write `data` in parts of the given sizes, flushing after the parts the flags (cycled) say. */
async function putWithFlushes(
  key: string,
  data: Buffer,
  options: WriteStreamOptions,
  sizes: number[],
  flushes: boolean[],
): Promise<void> {
  const writer = createRedisWriteStream(subject(redis), key, { ...options, flushInterval: 0 });
  const done = finished(writer);
  done.catch(() => {});
  let offset = 0;
  for (let i = 0; offset < data.length; i++) {
    const n = Math.max(1, sizes[i % sizes.length]!);
    const room = writer.write(data.subarray(offset, offset + n));
    offset += n;
    if (flushes[i % flushes.length])
      await new Promise<void>((resolve, reject) => writer.flush((err) => (err ? reject(err) : resolve())));
    else if (!room) await once(writer, 'drain');
  }
  writer.end();
  await done;
}

function crcHex(data: Buffer): string {
  return crc32(data).toString(16).padStart(8, '0');
}

/** The error `promise` rejects with; fails when it resolves. */
async function rejection(promise: Promise<unknown>, what: string): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error(`expected reading the ${what} to fail, but it succeeded`);
}

// ---------------------------------------------------------------------------------------------

describe('round-trip laws (property-based)', () => {
  it(
    'reads back exactly what was written, for any bytes, any split of the writes and any chunk size',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          contents,
          fc.boolean(),
          writeSplits,
          fc.array(fc.boolean(), { minLength: 1, maxLength: 8 }),
          chunkSizes,
          writeTuning,
          readTuning,
          async (body, gzipMagic, splits, flushes, chunkSize, wopts, ropts) => {
            // Sometimes gzip's magic bytes, declared as gzip: the encoding is recorded, and the
            // stored bytes stay exactly the written ones.
            const data = gzipMagic ? Buffer.concat([Buffer.from([0x1f, 0x8b]), body]) : body;
            fc.pre(fewEnoughChunks(data.length, chunkSize));
            const key = uniqueKey('rt');
            // Flushes after some writes store chunks as several pieces.
            await putWithFlushes(
              key,
              data,
              { chunkSize, ...wopts, ...(gzipMagic ? { contentEncoding: 'gzip' } : {}) },
              splits,
              flushes,
            );

            const back = await get(redis, key, ropts);
            expect(back.length).toBe(data.length);
            expect(back.equals(data)).toBe(true);

            const s = await stat(subject(redis), key);
            expect(s).toMatchObject({
              key,
              state: 'complete',
              size: data.length,
              chunks: Math.ceil(data.length / chunkSize),
              chunkSize,
              contentEncoding: gzipMagic ? 'gzip' : 'identity',
              crc32: crcHex(data),
            });
            expect(await remove(subject(redis), key)).toBe(true);
          },
        ),
        runner(200),
      );
    },
    TEST_TIMEOUT,
  );

  it(
    'reads any byte range like fs.createReadStream (an end past the end reads to the end), and fails with ERR_REDIS_FILE_RANGE for a start past it',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          contents.chain((data) => fc.tuple(fc.constant(data), ranges(data.length))),
          chunkSizes,
          readTuning,
          async ([data, wanted], chunkSize, ropts) => {
            fc.pre(fewEnoughChunks(data.length, chunkSize));
            const key = uniqueKey('range');
            await put(redis, key, data, { chunkSize });
            for (const range of wanted) {
              const options: ReadStreamOptions = { ...ropts };
              if (range.start !== undefined) options.start = range.start;
              if (range.end !== undefined) options.end = range.end;
              const what = `range ${JSON.stringify(range)} of a file of ${data.length} bytes`;
              const expected = rangeOutcome(data, range);
              if ('error' in expected) {
                const err = await rejection(get(redis, key, options), what);
                expect(err, what).toBeInstanceOf(RedisFileError);
                expect(err, what).toMatchObject({ code: expected.error, key });
              } else {
                const got = await get(redis, key, options);
                expect(got.length, what).toBe(expected.bytes.length);
                expect(got.equals(expected.bytes), what).toBe(true);
              }
            }
            expect(await remove(subject(redis), key)).toBe(true);
          },
        ),
        runner(120),
      );
    },
    TEST_TIMEOUT,
  );

  it('refuses a range that ends before it starts, at the call', () => {
    fc.assert(
      fc.property(fc.nat({ max: 2 * MAX_SIZE }), fc.integer({ min: 1, max: 2 * MAX_SIZE }), (end, gap) => {
        const start = end + gap;
        expect(() => createRedisReadStream(subject(redis), uniqueKey('bad-range'), { start, end })).toThrow(
          expect.objectContaining({ name: 'RangeError', code: 'ERR_OUT_OF_RANGE' }),
        );
      }),
      { numRuns: 200 },
    );
  });

  it(
    'round-trips any bytes through compress on the way in and decompress on the way out',
    async () => {
      await fc.assert(
        fc.asyncProperty(contents, writeSplits, chunkSizes, readTuning, async (data, splits, chunkSize, ropts) => {
          // The stored gzip is about as long as the input for random bytes, a lot shorter for repetitive ones.
          fc.pre(fewEnoughChunks(data.length, chunkSize));
          const key = uniqueKey('gzip');
          await put(redis, key, data, { chunkSize, compress: true }, splits);

          const back = await get(redis, key, { decompress: true, ...ropts });
          expect(back.length).toBe(data.length);
          expect(back.equals(data)).toBe(true);

          // Without decompress the reader yields the stored gzip bytes, which are a valid gzip of the input.
          const stored = await get(redis, key);
          expect(gunzipSync(stored).equals(data)).toBe(true);
          expect(await stat(subject(redis), key)).toMatchObject({
            state: 'complete',
            contentEncoding: 'gzip',
            size: stored.length,
            chunks: Math.ceil(stored.length / chunkSize),
            crc32: crcHex(stored),
          });
          expect(await remove(subject(redis), key)).toBe(true);
        }),
        runner(120),
      );
    },
    TEST_TIMEOUT,
  );
});
