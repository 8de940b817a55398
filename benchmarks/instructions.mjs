#!/usr/bin/env node
// Instruction counts of the read and write paths, with valgrind's callgrind: unlike wall or CPU
// time they do not move when other work shares the machine, so they tell what each loop costs the
// Node process (user space only: the kernel's socket copies are not counted, and neither are cache
// misses or page faults, which is where fresh buffers cost).
//
// Usage (after `node scripts/build.mjs`; needs valgrind):
//   node benchmarks/instructions.mjs [contender ...] [--size MiB] [--top N]
// Contenders (default: all):
//   read            createRedisReadStream, defaults (checksum on)
//   read-nocrc      createRedisReadStream, checksum: false
//   raw-xrange      raw XRANGE COUNT 16, one request at a time, the replies' Buffers counted and dropped
//   raw-xrange-ahead  the same with the next batch asked for ahead (the package's request pattern before
//                   it kept two batches ahead)
//   raw-xrange-batches  batches named by their known ids, two in flight (the read case's ceiling)
//   raw-readable    the one-at-a-time loop, its Buffers pushed into a Readable piped into a sink
//   write           createRedisWriteStream, defaults, from 64 KiB buffers
//   raw-xadd        raw XADD of 256 KiB entries, 16 in flight
//
// A private redis-server is started (or REDIS_URL used: keys under rfs-insn:<random>: only) and the
// data stored once. Each contender then runs in `valgrind --tool=callgrind node` twice, once with 1
// and once with 3 timed runs after one warm-up run; the difference / 2 is the count of one run,
// without start-up, module loading and the first compilations. Prints the total and the functions
// that differ most. Takes minutes: callgrind runs Node about 30 to 50 times slower.

import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { createRedisReadStream, createRedisWriteStream, remove, stat } from 'redis-file-stream';
import { startRedis } from '../scripts/lib/redis-launcher.mjs';
import { rawXrangeAhead, rawXrangeBatches, rawXrangeReadable } from './cases/read.mjs';
import { runScript, trackDir, trackServer } from './lib/cleanup.mjs';
import { countingSink, deleteMatching, KiB, MiB, poolSource, randomPool, rawXadd, rawXrange } from './lib/util.mjs';

const CONTENDERS = [
  'read',
  'read-nocrc',
  'raw-xrange',
  'raw-xrange-ahead',
  'raw-xrange-batches',
  'raw-readable',
  'write',
  'raw-xadd',
];
const CHUNK = 256 * KiB;

const { values: args, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    size: { type: 'string', default: '256' },
    top: { type: 'string', default: '8' },
    child: { type: 'string' },
    runs: { type: 'string' },
    ns: { type: 'string' },
  },
});
const size = Number(args.size) * MiB;

async function child(name, runs, ns) {
  const redis = new Redis(process.env.REDIS_URL);
  const prefix = `${ns}rfs:`;
  const pool = randomPool();
  let n = 0;
  const once = {
    read: async () => {
      const sink = countingSink();
      await pipeline(createRedisReadStream(redis, 'file', { prefix }), sink);
      return sink.bytes;
    },
    'read-nocrc': async () => {
      const sink = countingSink();
      await pipeline(createRedisReadStream(redis, 'file', { prefix, checksum: false }), sink);
      return sink.bytes;
    },
    'raw-xrange': () => rawXrange(redis, `${ns}raw`, 16),
    'raw-xrange-ahead': () => rawXrangeAhead(redis, `${ns}raw`, 16),
    'raw-xrange-batches': () => rawXrangeBatches(redis, `${ns}raw`, 16, 2),
    'raw-readable': () => rawXrangeReadable(redis, `${ns}raw`, 16),
    write: async () => {
      const key = `w${n++}`;
      await pipeline(poolSource(pool, size), createRedisWriteStream(redis, key, { prefix, chunkSize: CHUNK }));
      const { size: stored } = await stat(redis, key, { prefix });
      await remove(redis, key, { prefix });
      return stored;
    },
    'raw-xadd': async () => {
      const key = `${ns}xadd${n++}`;
      await rawXadd(redis, key, pool, size, CHUNK, 16);
      await redis.del(key);
      return size;
    },
  }[name];
  for (let i = 0; i <= runs; i++) {
    const bytes = await once();
    if (bytes !== size) throw new Error(`${name}: moved ${bytes} bytes, expected ${size}`);
  }
  redis.disconnect();
}

/** Per-function instruction counts from a callgrind output file. */
function functions(file) {
  const out = spawnSync('callgrind_annotate', ['--threshold=100', file], {
    encoding: 'utf8',
    maxBuffer: 256 * MiB,
  }).stdout;
  const counts = new Map();
  for (const line of out.split('\n')) {
    const m = /^\s*([\d,]+) \([\s\d.]+%\)\s+(.*)$/.exec(line);
    if (!m || line.includes('PROGRAM TOTALS')) continue;
    const name = m[2]
      .replace(/\s*\[[^\]]*\]$/, '')
      .replace(/^(\?\?\?|\.\/[^:]*):/, '')
      .slice(0, 100);
    counts.set(name, (counts.get(name) ?? 0) + Number(m[1].replaceAll(',', '')));
  }
  return counts;
}

async function main() {
  const chosen = positionals.length ? positionals : CONTENDERS;
  for (const c of chosen)
    if (!CONTENDERS.includes(c)) throw new Error(`unknown contender "${c}"; contenders: ${CONTENDERS.join(', ')}`);
  if (spawnSync('valgrind', ['--version']).status !== 0)
    throw new Error('valgrind is not installed (apt-get install valgrind)');
  const url = process.env.REDIS_URL ?? trackServer(await startRedis()).url;
  const ns = `rfs-insn:${randomBytes(4).toString('hex')}:`;
  const redis = new Redis(url);
  const pool = randomPool();
  if (chosen.some((c) => c.startsWith('read'))) {
    await pipeline(
      poolSource(pool, size),
      createRedisWriteStream(redis, 'file', { prefix: `${ns}rfs:`, chunkSize: CHUNK }),
    );
  }
  if (chosen.some((c) => c.startsWith('raw-x') || c === 'raw-readable'))
    await rawXadd(redis, `${ns}raw`, pool, size, CHUNK, 16);
  const dir = mkdtempSync(join(os.tmpdir(), 'rfs-insn-'));
  trackDir(dir);
  const self = fileURLToPath(import.meta.url);
  const perRun = {};
  try {
    for (const c of chosen) {
      const totals = [];
      const fns = [];
      for (const runs of [1, 3]) {
        const out = join(dir, `${c}-${runs}.out`);
        const r = spawnSync(
          'valgrind',
          [
            '--tool=callgrind',
            '--smc-check=all-non-file',
            `--callgrind-out-file=${out}`,
            process.execPath,
            self,
            '--child',
            c,
            '--runs',
            String(runs),
            '--size',
            args.size,
            '--ns',
            ns,
          ],
          { env: { ...process.env, REDIS_URL: url }, encoding: 'utf8', maxBuffer: 64 * MiB },
        );
        const total = Number(/Collected : (\d+)/.exec(r.stderr)?.[1]);
        if (r.status !== 0 || !Number.isFinite(total))
          throw new Error(`${c}: valgrind failed (${r.status}):\n${r.stderr.slice(-2000)}`);
        totals.push(total);
        fns.push(functions(out));
      }
      const diff = new Map();
      for (const name of new Set([...fns[0].keys(), ...fns[1].keys()]))
        diff.set(name, ((fns[1].get(name) ?? 0) - (fns[0].get(name) ?? 0)) / 2);
      perRun[c] = { total: (totals[1] - totals[0]) / 2, diff };
      console.log(
        `${c.padEnd(17)} ${(perRun[c].total / 1e6).toFixed(0).padStart(6)} M instructions per ${args.size} MiB`,
      );
      const top = [...diff].sort((a, b) => b[1] - a[1]).slice(0, Number(args.top));
      for (const [name, count] of top) console.log(`    ${(count / 1e6).toFixed(0).padStart(6)} M  ${name}`);
    }
  } finally {
    await deleteMatching(redis, `${ns}*`);
    redis.disconnect();
  }
}

if (args.child) {
  await child(args.child, Number(args.runs), args.ns);
} else {
  await runScript('instructions', main);
}
