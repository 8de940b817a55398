// Case 7, chunk-size sweep: write and read throughput of the package at 64 KiB … 1 MiB chunks,
// each against the raw ceiling at the same size (XADD 16 in flight; XRANGE COUNT 16, the fastest of
// the next batch ahead, one at a time, and two batches in flight), to justify the default of 256 KiB.

import { pipeline } from 'node:stream/promises';
import {
  alternate,
  bestOf,
  compare,
  countingSink,
  KiB,
  MiB,
  poolSource,
  rawXadd,
  rawXrange,
  throughputContenders,
} from '../lib/util.mjs';
import { rawXrangeAhead, rawXrangeBatches } from './read.mjs';

export const id = 'chunk-size';
export const title = 'Chunk size sweep';

const SIZES = [64 * KiB, 128 * KiB, 256 * KiB, 512 * KiB, 1024 * KiB];

const label = (cs) => (cs >= MiB ? `${cs / MiB} MiB` : `${cs / KiB} KiB`);

export async function run(ctx) {
  const { redis, pkg, pool } = ctx;
  const size = ctx.quick ? 16 * MiB : 128 * MiB;
  const reps = ctx.reps(3, 1);
  const runs = {};
  const comparisons = [];
  const sweep = [];

  for (const chunkSize of SIZES) {
    const L = label(chunkSize);
    ctx.log(` chunk size ${L}`);
    const w = await alternate(
      reps,
      [
        {
          name: `write @${L}`,
          run: (rep) =>
            ctx.timed(async () => {
              await pipeline(
                poolSource(pool, size),
                pkg.createRedisWriteStream(redis, `sweep-w-${rep}`, { prefix: ctx.prefix, chunkSize }),
              );
              return size;
            }, size),
        },
        {
          name: `raw XADD @${L}`,
          run: (rep) =>
            ctx.timed(() => rawXadd(redis, ctx.rawKey(`sweep-xadd-${rep}`), pool, size, chunkSize, 16), size),
        },
      ],
      { after: () => ctx.dropKeys(), log: ctx.log, warmup: ctx.warmup },
    );
    // The files the reads use: one of each kind at this chunk size.
    await pipeline(
      poolSource(pool, size),
      pkg.createRedisWriteStream(redis, 'sweep-file', { prefix: ctx.prefix, chunkSize }),
    );
    await rawXadd(redis, ctx.rawKey('sweep-raw'), pool, size, chunkSize, 16);
    const r = await alternate(
      reps,
      [
        {
          name: `read @${L}`,
          run: () =>
            ctx.timed(async () => {
              const sink = countingSink();
              await pipeline(pkg.createRedisReadStream(redis, 'sweep-file', { prefix: ctx.prefix }), sink);
              return sink.bytes;
            }, size),
        },
        {
          name: `raw XRANGE @${L}`,
          run: () => ctx.timed(() => rawXrangeAhead(redis, ctx.rawKey('sweep-raw'), 16), size),
        },
        {
          name: `raw XRANGE 1 at a time @${L}`,
          run: () => ctx.timed(() => rawXrange(redis, ctx.rawKey('sweep-raw'), 16), size),
        },
        {
          name: `raw XRANGE 2 batches in flight @${L}`,
          run: () => ctx.timed(() => rawXrangeBatches(redis, ctx.rawKey('sweep-raw'), 16, 2), size),
        },
      ],
      { log: ctx.log, warmup: ctx.warmup },
    );
    await ctx.dropKeys();
    Object.assign(runs, w, r);
    const cw = compare({
      id: `sweep-write-${chunkSize / KiB}k`,
      label: `write @${L} vs raw XADD`,
      runs,
      contender: `write @${L}`,
      baseline: `raw XADD @${L}`,
      field: 'mibps',
    });
    // The read ceiling: the fastest of the three raw loops (as in the read case).
    const loops = {
      [`raw XRANGE @${L}`]: 'next batch ahead',
      [`raw XRANGE 1 at a time @${L}`]: '1 at a time',
      [`raw XRANGE 2 batches in flight @${L}`]: '2 batches in flight',
    };
    const rawReadName = bestOf(runs, Object.keys(loops), 'mibps');
    const cr = compare({
      id: `sweep-read-${chunkSize / KiB}k`,
      label: `read @${L} vs raw XRANGE`,
      runs,
      contender: `read @${L}`,
      baseline: rawReadName,
      field: 'mibps',
    });
    comparisons.push(cw, cr);
    sweep.push({
      chunkSize,
      write: cw.contenderMedian,
      rawWrite: cw.baselineMedian,
      writeRatio: cw.ratio,
      read: cr.contenderMedian,
      rawRead: cr.baselineMedian,
      rawReadLoop: loops[rawReadName],
      readRatio: cr.ratio,
    });
  }

  // In the summary: what reading at 1 MiB chunks gains over the default 256 KiB.
  comparisons.push({
    ...compare({
      id: 'sweep-read-1m-vs-256k',
      label: 'read MiB/s @1 MiB chunks vs @256 KiB',
      runs,
      contender: `read @${label(MiB)}`,
      baseline: `read @${label(256 * KiB)}`,
      field: 'mibps',
    }),
    unit: 'MiB/s',
    summary: true,
  });
  return {
    id,
    title,
    description:
      `${size / MiB} MiB written and read at each chunk size (in-memory source of 64 KiB buffers; the read ` +
      `uses readAhead 16, so a batch holds 16 chunks). Raw ceilings at the same size: XADD with 16 in flight; ` +
      `XRANGE COUNT 16, the fastest of the three loops of the read case (next batch ahead, 1 at a time, or 2 batches in flight). MiB/s, medians.`,
    params: { size, chunkSizes: SIZES, reps },
    ...throughputContenders(runs),
    comparisons,
    sweep,
  };
}
