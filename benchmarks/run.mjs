#!/usr/bin/env node
// The benchmark (`npm run bench`, `npm run bench -- --quick`).
//
// Starts a private redis-server (or uses REDIS_URL), runs every case with its contenders
// alternating, prints a summary with the targets, and writes:
//   benchmarks/results/<YYYY-MM-DD>.json   raw per-run figures, medians, ratios, the machine
//   docs/benchmarks.md, docs/benchmarks.svg regenerated from that JSON (full runs only)
//
// Options:
//   --quick          small sizes, one repetition: a smoke check (< 1 minute); writes
//                    benchmarks/results/<date>-quick.json and leaves docs/ alone
//   --only a,b       run only these cases (write, read, checksum, follow, followers, fanout, gzip, chunk-size, memory,
//                    latency, clients): writes benchmarks/results/<date>-only-<cases>.json, and the docs with these
//                    cases in place of theirs in the newest full results (see benchmarks/report.mjs)
//   --reps N         repetitions per contender, overriding every case's default
//   --no-docs        do not regenerate docs/benchmarks.md and docs/benchmarks.svg
//   --out FILE       write the results JSON here instead
//
// With REDIS_URL, only keys under a random "rfs-bench:<id>:" namespace are created, and they are
// deleted after each run (followed by MEMORY PURGE, see dropKeys). The memory case needs about
// 1.3 GiB of free Redis memory (it stops with an error when maxmemory is set lower).
//
// Exit code: 0 when every case ran (whatever the timings: no target is asserted), 1 when a case
// failed, 130 on Ctrl-C.

import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startRedis } from '../scripts/lib/redis-launcher.mjs';
import { runScript, track, trackDir, trackServer, wasInterrupted } from './lib/cleanup.mjs';
import { describeMachine, loadavg, versionOf } from './lib/machine.mjs';
import { formatSummary, mergeResults, newestFullResults, writeDocs } from './lib/report.mjs';
import {
  builtCrcImplementation,
  deleteMatching,
  headerComment,
  importBuiltPackage,
  randomPool,
  timed,
} from './lib/util.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

const CASES = [
  'write',
  'read',
  'checksum',
  'follow',
  'followers',
  'fanout',
  'gzip',
  'chunk-size',
  'memory',
  'latency',
  'clients',
];

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    reps: { type: 'string' },
    'no-docs': { type: 'boolean', default: false },
    out: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (args.help) {
  console.log(headerComment(import.meta.url));
  process.exit(0);
}
const only = args.only ? args.only.split(',').map((s) => s.trim()) : CASES;
const partial = CASES.some((c) => !only.includes(c));
for (const c of only) if (!CASES.includes(c)) throw new Error(`unknown case "${c}"; cases: ${CASES.join(', ')}`);
const repsOverride = args.reps === undefined ? undefined : Number(args.reps);
if (repsOverride !== undefined && !(Number.isInteger(repsOverride) && repsOverride > 0))
  throw new Error('--reps must be a positive integer');

const log = (line) => console.log(line);
const logRun = (line) => process.stderr.write(`${line}\n`);

async function main() {
  const startedAt = new Date();
  const t0 = Date.now();
  const pkg = await importBuiltPackage('bench');
  if (pkg === undefined) return 1;
  const { Redis } = await import('ioredis');

  let url = process.env.REDIS_URL;
  let server;
  if (!url) {
    server = trackServer(await startRedis({ args: ['--maxmemory', '0'] }));
    url = server.url;
  }
  const redis = new Redis(url);
  redis.on('error', () => {}); // failures surface through the commands
  track('redis client', () => redis.disconnect()); // a failure below must not leave it reconnecting
  const info = await redis.info('server');
  const redisVersion = /redis_version:(\S+)/.exec(info)?.[1];

  const ns = `rfs-bench:${randomBytes(4).toString('hex')}:`;
  const tmp = mkdtempSync(join(os.tmpdir(), 'rfs-bench-'));
  trackDir(tmp);
  const ctx = {
    quick: args.quick,
    url,
    redis,
    pkg,
    pool: randomPool(),
    /** Package option `prefix`: every key the package creates for the benchmark is under `ns`. */
    prefix: `${ns}rfs:`,
    rawKey: (name) => `${ns}raw:${name}`,
    reps: (full, quick) => repsOverride ?? (args.quick ? quick : full),
    /** Full runs start each comparison with one untimed run of every contender. */
    warmup: !args.quick,
    /** A timed throughput run (wall time, this process's CPU time, the Redis server's CPU time). */
    timed: (fn, expected) => timed(fn, expected, redis),
    log: logRun,
    tempDir(name) {
      const dir = join(tmp, name);
      mkdirSync(dir, { recursive: true });
      return dir;
    },
    /**
     * Delete every key of the benchmark namespace (DEL, not UNLINK: freed before the next run),
     * then MEMORY PURGE, so that every run starts from the same allocator state: without it, a
     * run that follows one which freed a lot of memory writes into pages that Redis's jemalloc
     * still holds, and is measurably faster than one that has to fault in fresh pages.
     */
    async dropKeys() {
      await deleteMatching(redis, `${ns}*`);
      await redis.call('MEMORY', 'PURGE').catch(() => {}); // refused by some managed servers: fine
    },
    async maxmemory() {
      try {
        const [, v] = await redis.config('GET', 'maxmemory');
        return Number(v);
      } catch {
        return 0; // CONFIG refused (managed Redis): cannot tell
      }
    },
  };

  const machine = {
    ...describeMachine({
      root,
      redis: redisVersion,
      redisServer: server
        ? 'a private server started by the benchmark, no persistence, maxmemory 0'
        : 'the server at REDIS_URL',
    }),
    redisWstream: versionOf('redis-wstream'),
    redisRstream: versionOf('redis-rstream'),
    /** The package's CRC-32 (every piece is checked with it on reads): the native one or zlib's. */
    crc32: await builtCrcImplementation(),
  };

  log(`redis-file-stream ${machine.package} benchmark${args.quick ? ' (quick)' : ''}: ${only.join(', ')}`);
  log(
    `node ${machine.node}, redis ${machine.redis} (${server ? 'private server' : 'REDIS_URL'}), ${machine.cpus} x ${machine.cpuModel}, load ${machine.loadavgAtStart.join(' ')}`,
  );
  log(`CRC-32: ${machine.crc32 ?? 'unknown'}`);

  const results = [];
  let failed = 0;
  try {
    for (const name of only) {
      const mod = await import(`./cases/${name}.mjs`);
      const ct = Date.now();
      log(`\n== ${name}: ${mod.title}`);
      try {
        const result = await mod.run(ctx);
        result.seconds = Math.round((Date.now() - ct) / 100) / 10;
        results.push(result);
        for (const c of result.contenders) {
          // A case may measure its contenders in different units (latency: MiB/s, ms, files/s).
          const field = c.mainField ?? result.mainField;
          const figure = `${String(c.median[field]).padStart(9)} ${c.unit ?? result.unit}`;
          log(`  ${c.name.padEnd(40)} ${figure} (${field}, median of ${c.runs.length})`);
        }
        for (const cmp of result.comparisons) {
          if (cmp.kind === 'difference') log(`  -> ${cmp.label}: ${cmp.value} ${result.unit}`);
          else if (cmp.kind === 'value') log(`  -> ${cmp.label}: ${cmp.value} ${cmp.unit}`);
          else log(`  -> ${cmp.label}: ${cmp.ratio}x`);
        }
      } catch (err) {
        if (wasInterrupted()) throw err;
        failed++;
        console.error(`bench: case ${name} failed: ${err?.stack ?? err}`);
        results.push({
          id: name,
          title: mod.title,
          error: String(err?.message ?? err),
          contenders: [],
          comparisons: [],
        });
        await ctx.dropKeys().catch(() => {});
      }
    }
  } finally {
    await ctx.dropKeys().catch(() => {});
    redis.disconnect();
  }
  machine.loadavgAtEnd = loadavg();

  const date = startedAt.toISOString().slice(0, 10);
  const output = {
    benchmark: 'redis-file-stream',
    date,
    startedAt: startedAt.toISOString(),
    durationSeconds: Math.round((Date.now() - t0) / 1000),
    quick: args.quick,
    command: `node benchmarks/run.mjs ${process.argv.slice(2).join(' ')}`.trim(),
    machine,
    cases: results,
  };
  const resultsDir = join(root, 'benchmarks', 'results');
  // A partial run never takes the place of the day's full one.
  const name = `${date}${partial ? `-only-${only.join('-')}` : ''}${args.quick ? '-quick' : ''}.json`;
  const file = args.out ?? join(resultsDir, name);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(output, null, 2)}\n`);

  log(`\n${formatSummary(output)}`);
  log(`\nresults: ${relative(process.cwd(), file)}`);
  if (!args.quick && !args['no-docs']) {
    let docs = { output, resultsFile: relative(root, file) };
    const base = partial ? newestFullResults(resultsDir) : undefined;
    if (base) {
      const merged = mergeResults(JSON.parse(readFileSync(base, 'utf8')), output, relative(root, file));
      docs = { output: merged, resultsFile: relative(root, base) };
    }
    const written = writeDocs(docs.output, { root, resultsFile: docs.resultsFile });
    log(`docs: ${written.map((f) => relative(process.cwd(), f)).join(', ')}`);
  }
  log(`took ${output.durationSeconds} s`);
  return failed > 0 ? 1 : 0;
}

await runScript('bench', main);
