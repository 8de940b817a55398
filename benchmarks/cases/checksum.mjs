// Extra case: the cost of the CRC-32 check on full reads (checksum: true, the default, vs false).

import { pipeline } from 'node:stream/promises';
import { alternate, compare, countingSink, MiB, poolSource, throughputContenders } from '../lib/util.mjs';

export const id = 'checksum';
export const title = 'Read with and without the checksum';

export async function run(ctx) {
  const { redis, pkg, pool } = ctx;
  const size = ctx.quick ? 32 * MiB : 256 * MiB;
  const reps = ctx.reps(7, 1);
  const key = 'checksum-file';
  await pipeline(poolSource(pool, size), pkg.createRedisWriteStream(redis, key, { prefix: ctx.prefix }));

  const read = (checksum) => () =>
    ctx.timed(async () => {
      const sink = countingSink();
      await pipeline(pkg.createRedisReadStream(redis, key, { prefix: ctx.prefix, checksum }), sink);
      return sink.bytes;
    }, size);
  const runs = await alternate(
    reps,
    [
      { name: 'checksum: true', run: read(true) },
      { name: 'checksum: false', run: read(false) },
    ],
    { log: ctx.log, warmup: ctx.warmup },
  );
  await ctx.dropKeys();

  return {
    id,
    title,
    description: `${size / MiB} MiB file of 256 KiB chunks, read into a sink with the default checksum: true and with checksum: false.`,
    params: { size, reps },
    ...throughputContenders(runs),
    comparisons: [
      compare({
        id: 'checksum-cost',
        label: 'read, checksum on vs off',
        runs,
        contender: 'checksum: true',
        baseline: 'checksum: false',
        field: 'mibps',
      }),
    ],
  };
}
