#!/usr/bin/env node
// How large should the reads of a local file be when it is stored? Times
// pipeline(fs.createReadStream(path, { highWaterMark }), createRedisWriteStream(...)) for a file on
// disk (in the page cache after the first run) with reads of 64 KiB (fs's default), 256 KiB, 1 MiB
// and 4 MiB, alternating, and prints the median MiB/s of each. `redis-file put`, `redis-file send`
// and `sendFiles` given a path read in 1 MiB reads (src/options/common.ts FILE_READ_BYTES,
// src/cli/local.ts) because of what this measured.
//
// Usage (after `node scripts/build.mjs`):
//   node benchmarks/file-reads.mjs [--size MiB] [--reps N]   (REDIS_URL, or a private server)

import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, mkdtempSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { createRedisWriteStream, remove } from 'redis-file-stream';
import { startRedis } from '../scripts/lib/redis-launcher.mjs';
import { runScript, trackDir, trackServer } from './lib/cleanup.mjs';
import { KiB, MiB, median, poolSource, randomPool, round, settle } from './lib/util.mjs';

const { values: args } = parseArgs({
  options: { size: { type: 'string', default: '256' }, reps: { type: 'string', default: '5' } },
});
const size = Number(args.size) * MiB;
if (!(size > 0) || !(Number(args.reps) >= 1)) throw new Error('--size and --reps take positive numbers');
const READS = [64 * KiB, 256 * KiB, MiB, 4 * MiB];

async function main() {
  const url = process.env.REDIS_URL ?? trackServer(await startRedis()).url;
  const redis = new Redis(url);
  const dir = mkdtempSync(join(os.tmpdir(), 'rfs-file-reads-'));
  trackDir(dir);
  const path = join(dir, 'file.bin');
  await pipeline(poolSource(randomPool(), size), createWriteStream(path));
  const key = `rfs-file-reads:${randomBytes(4).toString('hex')}`;

  const store = async (highWaterMark) => {
    await settle();
    const t0 = performance.now();
    await pipeline(createReadStream(path, { highWaterMark }), createRedisWriteStream(redis, key));
    const ms = performance.now() - t0;
    await remove(redis, key);
    return ms;
  };
  for (const bytes of READS) await store(bytes); // warm-up: the page cache, the JIT
  const runs = new Map(READS.map((bytes) => [bytes, []]));
  for (let rep = 0; rep < Number(args.reps); rep++) {
    for (let j = 0; j < READS.length; j++) {
      const bytes = READS[(rep + j) % READS.length];
      runs.get(bytes).push(await store(bytes));
    }
  }
  const mibps = (ms) => size / MiB / (ms / 1000);
  const base = median(runs.get(64 * KiB));
  for (const [bytes, ms] of runs) {
    console.log(
      `reads of ${String(bytes / KiB).padStart(4)} KiB: ${round(mibps(median(ms)), 0)} MiB/s ` +
        `(${round(base / median(ms), 2)}x the 64 KiB reads); runs ${ms.map((m) => round(mibps(m), 0)).join(', ')}`,
    );
  }
  redis.disconnect();
}

await runScript('file-reads', main);
