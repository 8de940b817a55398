// Case 6, gzip: createRedisWriteStream({ compress: true }) and createRedisReadStream({ decompress:
// true }) against zlib alone (createGzip / createGunzip, default level, same data, in memory).
// Throughput in MiB/s of uncompressed data.

import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip, gzipSync } from 'node:zlib';
import { alternate, compare, countingSink, KiB, MiB, poolSource, round, throughputContenders } from '../lib/util.mjs';

export const id = 'gzip';
export const title = 'gzip on the way in and out';

/** Deterministic access-log-like CSV text (compresses roughly 4:1 with gzip's default level). */
export function makeCsv(size, seed = 42) {
  let x = seed >>> 0;
  const rnd = (n) => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % n;
  };
  const countries = ['DE', 'FR', 'US', 'GB', 'NL', 'SE', 'JP', 'BR', 'IN', 'CA'];
  const methods = ['GET', 'GET', 'GET', 'POST', 'PUT', 'DELETE'];
  const paths = ['/api/items/', '/api/users/', '/static/app.', '/search?q=', '/api/orders/'];
  const statuses = [200, 200, 200, 200, 201, 204, 301, 304, 400, 404, 500];
  const out = Buffer.allocUnsafe(size + 256);
  let off = out.write('time,ip,country,method,path,status,bytes,ms\n', 0, 'latin1');
  let t = Date.UTC(2026, 10, 30);
  while (off < size) {
    t += rnd(50);
    const line =
      `${new Date(t).toISOString()},10.${rnd(256)}.${rnd(256)}.${rnd(256)},${countries[rnd(10)]},` +
      `${methods[rnd(6)]},${paths[rnd(5)]}${rnd(100000)},${statuses[rnd(11)]},${rnd(200000)},${rnd(900)}\n`;
    off += out.write(line, off, 'latin1');
  }
  return out.subarray(0, size);
}

export async function run(ctx) {
  const { redis, pkg } = ctx;
  const size = ctx.quick ? 4 * MiB : 32 * MiB;
  const reps = ctx.reps(3, 1);
  const csv = makeCsv(size);
  const gz = gzipSync(csv);
  const piece = 64 * KiB;
  const gzSource = () =>
    Readable.from(
      (function* () {
        for (let off = 0; off < gz.length; off += piece) yield gz.subarray(off, off + piece);
      })(),
      { objectMode: false },
    );

  // One stored compressed file for the decompress runs (written by the package, so that it is the
  // package's own gzip output that is read back).
  const stored = 'gzip-stored';
  await pipeline(
    poolSource(csv, size, piece),
    pkg.createRedisWriteStream(redis, stored, { prefix: ctx.prefix, compress: true }),
  );
  const storedSize = (await pkg.stat(redis, stored, { prefix: ctx.prefix })).size;

  const compressRuns = await alternate(
    reps,
    [
      {
        name: 'redis-file-stream compress',
        run: (rep) =>
          ctx.timed(async () => {
            const key = `gzip-write-${rep}`;
            await pipeline(
              poolSource(csv, size, piece),
              pkg.createRedisWriteStream(redis, key, { prefix: ctx.prefix, compress: true }),
            );
            await pkg.remove(redis, key, { prefix: ctx.prefix });
            return size;
          }, size),
      },
      {
        name: 'zlib createGzip',
        run: () =>
          ctx.timed(async () => {
            const sink = countingSink();
            await pipeline(poolSource(csv, size, piece), createGzip(), sink);
            return size;
          }, size),
      },
    ],
    { log: ctx.log, warmup: ctx.warmup },
  );
  const decompressRuns = await alternate(
    reps,
    [
      {
        name: 'redis-file-stream decompress',
        run: () =>
          ctx.timed(async () => {
            const sink = countingSink();
            await pipeline(pkg.createRedisReadStream(redis, stored, { prefix: ctx.prefix, decompress: true }), sink);
            return sink.bytes;
          }, size),
      },
      {
        name: 'zlib createGunzip',
        run: () =>
          ctx.timed(async () => {
            const sink = countingSink();
            await pipeline(gzSource(), createGunzip(), sink);
            return sink.bytes;
          }, size),
      },
    ],
    { log: ctx.log, warmup: ctx.warmup },
  );
  await ctx.dropKeys();
  const runs = { ...compressRuns, ...decompressRuns };

  return {
    id,
    title,
    description:
      `${size / MiB} MiB of generated CSV text (gzip default level: ${round(size / storedSize, 2)}:1). Compress: ` +
      `in-memory source of ${piece / KiB} KiB buffers -> createRedisWriteStream({ compress: true }) until 'finish', ` +
      `vs the same source -> zlib.createGzip() -> a sink. Decompress: createRedisReadStream({ decompress: true }) ` +
      `of the stored file vs the gzip bytes from memory -> zlib.createGunzip() -> a sink. MiB/s of uncompressed data.`,
    params: { size, compressedSize: storedSize, reps, sourcePiece: piece },
    ...throughputContenders(runs),
    comparisons: [
      compare({
        id: 'gzip-compress',
        label: 'compress vs zlib alone',
        runs,
        contender: 'redis-file-stream compress',
        baseline: 'zlib createGzip',
        field: 'mibps',
      }),
      compare({
        id: 'gzip-decompress',
        label: 'decompress vs zlib alone',
        runs,
        contender: 'redis-file-stream decompress',
        baseline: 'zlib createGunzip',
        field: 'mibps',
      }),
    ],
  };
}
