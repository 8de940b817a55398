#!/usr/bin/env node
// A read of a 256 MiB file on loopback with each contender in a Node process of its own, and the
// page faults it takes. `npm run bench` alternates its contenders in one process, where each run
// inherits the memory the runs before it left behind; a user's process reads on its own. This
// experiment, not used by the package, starts one child process per contender and round (one
// untimed read, then --reps timed ones), alternates the contenders between rounds, and prints per
// contender the medians over rounds of each process's median MiB/s, Node CPU ms (all threads) and
// minor page faults per read. First it prints what one page fault costs on this machine: filling a
// freshly allocated 64 MiB Buffer against filling it again.
//   package           createRedisReadStream, defaults (checksum on), into a counting sink
//   package, no CRC   the same with checksum: false
//   raw 1 at a time   XRANGE COUNT 16 batches by their known ids, one request at a time
//   raw 2 in flight   the same with 2 requests in flight (the read case's ceiling)
//   raw 3 in flight   the same with 3
//
// Usage: node benchmarks/read-processes.mjs [--size MiB] [--reps N] [--rounds N]
//        (REDIS_URL, or a private server; build the package first: node scripts/build.mjs)

import { spawn } from 'node:child_process';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { startRedis } from '../scripts/lib/redis-launcher.mjs';
import { rawXrangeBatches } from './cases/read.mjs';
import { runScript, trackChild, trackServer } from './lib/cleanup.mjs';
import {
  alternate,
  countingSink,
  importBuiltPackage,
  KiB,
  MiB,
  medians,
  poolSource,
  randomPool,
  rawXadd,
  round,
  settle,
  timed,
} from './lib/util.mjs';

const { values: args } = parseArgs({
  options: {
    size: { type: 'string', default: '256' },
    reps: { type: 'string', default: '4' },
    rounds: { type: 'string', default: '3' },
    child: { type: 'string' },
    url: { type: 'string' },
    prefix: { type: 'string' },
  },
});
const size = Number(args.size) * MiB;
const reps = Number(args.reps);
const rounds = Number(args.rounds);
if (!(size > 0) || !(reps >= 1) || !(rounds >= 1)) throw new Error('--size, --reps and --rounds take positive numbers');

const CONTENDERS = {
  package: (redis, keys, pkg) => readPackage(redis, keys, pkg, {}),
  'package, no CRC': (redis, keys, pkg) => readPackage(redis, keys, pkg, { checksum: false }),
  'raw 1 at a time': (redis, keys) => rawXrangeBatches(redis, keys.raw, 16, 1),
  'raw 2 in flight': (redis, keys) => rawXrangeBatches(redis, keys.raw, 16, 2),
  'raw 3 in flight': (redis, keys) => rawXrangeBatches(redis, keys.raw, 16, 3),
};

async function readPackage(redis, keys, pkg, options) {
  const sink = countingSink();
  await pipeline(pkg.createRedisReadStream(redis, keys.file, { prefix: keys.prefix, ...options }), sink);
  return sink.bytes;
}

/**
 * In a child: one untimed read, then `reps` timed ones (`timed`: MiB/s, Node CPU, page faults);
 * prints their medians as one JSON line.
 */
async function child(name) {
  const pkg = await importBuiltPackage('bench');
  const redis = new Redis(args.url);
  const keys = { prefix: args.prefix, file: 'file', raw: `${args.prefix}raw` };
  const read = () => CONTENDERS[name](redis, keys, pkg);
  await read();
  const runs = [];
  for (let i = 0; i < reps; i++) {
    await settle();
    runs.push(await timed(read, size));
  }
  redis.disconnect();
  console.log(JSON.stringify(medians(runs)));
}

/** Milliseconds to fill a fresh 64 MiB Buffer and to fill it again, and the faults the first took. */
function faultCost() {
  const f0 = process.resourceUsage().minorPageFault;
  let t = performance.now();
  const b = Buffer.allocUnsafeSlow(64 * MiB);
  b.fill(1);
  const fresh = performance.now() - t;
  const faults = process.resourceUsage().minorPageFault - f0;
  t = performance.now();
  b.fill(2);
  const again = performance.now() - t;
  return { fresh, again, faults, usPerFault: ((fresh - again) * 1000) / faults };
}

function runChild(name, url, prefix) {
  const proc = spawn(
    process.execPath,
    [
      fileURLToPath(import.meta.url),
      '--child',
      name,
      '--url',
      url,
      '--prefix',
      prefix,
      '--size',
      args.size,
      '--reps',
      args.reps,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  trackChild(proc);
  let out = '';
  proc.stdout.on('data', (d) => {
    out += d;
  });
  return new Promise((resolve, reject) => {
    proc.on('error', reject);
    proc.on('exit', (code) =>
      code === 0
        ? resolve(JSON.parse(out.trim().split('\n').at(-1)))
        : reject(new Error(`${name}: the child exited with ${code}`)),
    );
  });
}

async function main() {
  if (args.child) return child(args.child);
  const pkg = await importBuiltPackage('bench');
  if (!pkg) return 1;
  for (let i = 0; i < 3; i++) {
    const c = faultCost();
    console.log(
      `a fresh 64 MiB Buffer filled in ${round(c.fresh, 1)} ms (${c.faults} page faults), filled again in ${round(c.again, 1)} ms: ${round(c.usPerFault, 2)} µs per fault`,
    );
  }
  const url = process.env.REDIS_URL ?? trackServer(await startRedis()).url;
  const redis = new Redis(url);
  const prefix = `rfs-read-processes-${process.pid}:`;
  const pool = randomPool();
  await pipeline(poolSource(pool, size), pkg.createRedisWriteStream(redis, 'file', { prefix, chunkSize: 256 * KiB }));
  await rawXadd(redis, `${prefix}raw`, pool, size, 256 * KiB, 16);
  // Rounds alternated as the bench alternates runs (runOrder: a balanced order per round).
  const contenders = Object.keys(CONTENDERS).map((name) => ({ name, run: () => runChild(name, url, prefix) }));
  let results;
  try {
    results = await alternate(rounds, contenders, { log: console.log });
  } finally {
    await pkg.remove(redis, 'file', { prefix }).catch(() => {});
    await redis.del(`${prefix}raw`);
    redis.disconnect();
  }
  console.log(`\n${size / MiB} MiB, ${reps} reads per process after 1 untimed, ${rounds} rounds; medians over rounds:`);
  for (const [name, runs] of Object.entries(results)) {
    const med = medians(runs);
    console.log(
      `  ${name.padEnd(16)} ${round(med.mibps, 0)} MiB/s, ${round(med.nodeCpuMs, 0)} ms Node CPU, ${round(med.pageFaults, 0)} page faults per read`,
    );
  }
}

await runScript('read-processes', main);
