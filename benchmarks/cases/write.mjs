// Case 1, write: createRedisWriteStream against the raw XADD ceiling (same chunk size, explicit
// ids `<n>-2`, the same entries as the package's, `d <bytes> c <crc>`, 16 commands in flight, no copies) and against redis-wstream (one APPEND per
// written buffer, one at a time, then RENAME), all fed by the same in-memory source of 64 KiB
// buffers (what fs.createReadStream delivers).

import { pipeline } from 'node:stream/promises';
import redisWStream from 'redis-wstream';
import { alternate, compare, KiB, MiB, poolSource, rawXadd, throughputContenders } from '../lib/util.mjs';

export const id = 'write';
export const title = 'Write a file to Redis';

export async function run(ctx) {
  const { redis, pkg, pool } = ctx;
  const size = ctx.quick ? 32 * MiB : 256 * MiB;
  const reps = ctx.reps(7, 1);
  const chunkSize = 256 * KiB;
  const piece = 64 * KiB;

  const contenders = [
    {
      name: 'redis-file-stream',
      run: (rep) =>
        ctx.timed(async () => {
          const key = `write-${rep}`;
          await pipeline(
            poolSource(pool, size, piece),
            pkg.createRedisWriteStream(redis, key, { prefix: ctx.prefix, chunkSize }),
          );
          const st = await pkg.stat(redis, key, { prefix: ctx.prefix });
          if (st.state !== 'complete') throw new Error(`file is ${st.state}`);
          return st.size;
        }, size),
    },
    {
      name: 'raw XADD',
      run: (rep) =>
        ctx.timed(async () => {
          const key = ctx.rawKey(`xadd-${rep}`);
          await rawXadd(redis, key, pool, size, chunkSize, 16);
          const n = await redis.xlen(key);
          if (n !== size / chunkSize) throw new Error(`raw stream has ${n} entries`);
          return size;
        }, size),
    },
    {
      name: 'redis-wstream',
      run: (rep) =>
        ctx.timed(async () => {
          const key = ctx.rawKey(`wstream-${rep}`);
          await pipeline(poolSource(pool, size, piece), redisWStream(redis, key));
          return redis.strlen(key);
        }, size),
    },
  ];
  const runs = await alternate(reps, contenders, { after: () => ctx.dropKeys(), log: ctx.log, warmup: ctx.warmup });

  return {
    id,
    title,
    description:
      `${size / MiB} MiB from an in-memory source of ${piece / KiB} KiB buffers. redis-file-stream: defaults ` +
      `(chunkSize ${chunkSize / KiB} KiB, the window sized to the link: 16 chunks on loopback), timed until 'finish' ` +
      `(end record committed). raw XADD: ` +
      `${chunkSize / KiB} KiB entries with explicit ids <n>-2 in the package's layout (d <bytes> c <crc-32>, the ` +
      `CRCs computed before the timed runs), 16 commands in flight (the ceiling). redis-wstream: ` +
      `one APPEND per ${piece / KiB} KiB buffer, then RENAME, on the same ioredis client.`,
    params: { size, chunkSize, sourcePiece: piece, reps, rawInFlight: 16 },
    ...throughputContenders(runs),
    comparisons: [
      compare({
        id: 'write-vs-raw',
        label: 'write vs raw XADD',
        runs,
        contender: 'redis-file-stream',
        baseline: 'raw XADD',
        field: 'mibps',
        target: { op: '>=', value: 0.9, on: 'ratio', text: '>= 0.9x raw XADD' },
      }),
      compare({
        id: 'write-vs-wstream',
        label: 'write vs redis-wstream',
        runs,
        contender: 'redis-file-stream',
        baseline: 'redis-wstream',
        field: 'mibps',
        target: { op: '>=', value: 5, on: 'ratio', text: '>= 5x redis-wstream' },
      }),
    ],
  };
}
