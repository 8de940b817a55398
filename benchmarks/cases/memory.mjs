// Case 4, memory: peak RSS of a fresh Node child process that streams a file from disk into Redis
// and back to disk, for a large and a small file; the difference is the memory that grows with
// the file size (the target: none, i.e. under 16 MiB). Then the RSS a single `ws.end(buffer)` of
// the large size adds to the process (the writer takes a big write a window at a time, never
// copied whole), and the writer's memory guard: Redis's used_memory, sampled every 2 ms, against
// `maxRedisMemory`, while two consumers in processes of their own read slower than the writer; and
// what the guard costs a writer it never holds back.

import { fork } from 'node:child_process';
import { closeSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { sampleUsedMemory, usedMemory } from '../../scripts/lib/used-memory.mjs';
import { trackChild } from '../lib/cleanup.mjs';
import { alternate, checkTarget, compare, MiB, median, poolSource, round } from '../lib/util.mjs';

export const id = 'memory';
export const title = 'Memory: peak RSS, disk -> Redis -> disk';

const CHILD = fileURLToPath(new URL('./memory-child.mjs', import.meta.url));

/** Write `size` bytes of the random pool to `path` (real data on disk, not a sparse file). */
function makeFile(path, pool, size) {
  const fd = openSync(path, 'w');
  try {
    for (let off = 0; off < size; off += pool.length) writeSync(fd, pool, 0, Math.min(pool.length, size - off));
  } finally {
    closeSync(fd);
  }
}

/** A child in one of its roles (see memory-child.mjs): `ready` when it says so, `done` with its report. */
function startChild(args) {
  const child = fork(CHILD, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [] });
  trackChild(child, `memory child ${child.pid}`);
  let report;
  let markReady;
  const ready = new Promise((resolve) => (markReady = resolve));
  const done = new Promise((resolve, reject) => {
    child.on('message', (m) => {
      if (m.ready) markReady();
      else report = m;
    });
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      if (report?.ok) resolve(report);
      else reject(new Error(`memory child failed (${signal ?? `exit ${code}`}): ${report?.error ?? 'no report'}`));
    });
  });
  done.catch(() => {});
  return { ready: Promise.race([ready, done]), done };
}

const runChild = (args) => startChild(args).done;

/** Chunk size of the guard's run, and what may lie beyond the limit (see docs/distribution.md). */
const GUARD_CHUNK = 256 * 1024;
const GUARD_ALLOWANCE = GUARD_CHUNK + GUARD_CHUNK / 4 + 1024;

/**
 * A file written with `maxRedisMemory` = used_memory + `room`, read by two consumers in processes
 * of their own that are slower than the writer; used_memory sampled every 2 ms meanwhile.
 */
async function guardRun(ctx, { key, size, room, busyMsPerMiB }) {
  const { Redis } = await import('ioredis');
  const consumers = ['r1', 'r2'];
  const readers = consumers.map((c) =>
    startChild(['--slow-reader', ctx.url, ctx.prefix, key, c, String(busyMsPerMiB)]),
  );
  await Promise.all(readers.map((r) => r.ready));
  const monitor = new Redis(ctx.url);
  monitor.on('error', () => {});
  try {
    const limit = (await usedMemory(monitor)) + room;
    const sampler = sampleUsedMemory(monitor, 2);
    const t0 = performance.now();
    await pipeline(
      poolSource(ctx.pool, size),
      ctx.pkg.createRedisWriteStream(ctx.redis, key, {
        prefix: ctx.prefix,
        consumers,
        maxRedisMemory: limit,
        chunkSize: GUARD_CHUNK,
      }),
    );
    const writeMs = performance.now() - t0;
    const reports = await Promise.all(readers.map((r) => r.done));
    const { peak, samples } = await sampler.stop();
    for (const r of reports) if (r.bytes !== size) throw new Error(`a slow reader read ${r.bytes} bytes of ${size}`);
    return {
      peakMiB: round(peak / MiB, 3),
      limitMiB: round(limit / MiB, 3),
      overMiB: round((peak - limit) / MiB, 3),
      writeMiBps: round(size / MiB / (writeMs / 1000), 1),
      usedMemorySamples: samples,
    };
  } finally {
    monitor.disconnect();
  }
}

export async function run(ctx) {
  const large = ctx.quick ? 64 * MiB : 1024 * MiB;
  const small = ctx.quick ? 16 * MiB : 256 * MiB;
  const reps = ctx.reps(3, 1);
  const dir = ctx.tempDir('memory');

  // A 1 GiB file needs ~1.1 GiB of Redis memory: refuse early on a server that cannot hold it.
  const maxmemory = await ctx.maxmemory();
  if (maxmemory > 0 && maxmemory < large * 1.3) {
    throw new Error(
      `the Redis server's maxmemory (${round(maxmemory / MiB, 0)} MiB) is too small for a ${large / MiB} MiB file`,
    );
  }

  const files = {};
  for (const size of [small, large]) {
    files[size] = join(dir, `in-${size / MiB}MiB.bin`);
    makeFile(files[size], ctx.pool, size);
  }
  const label = (size) => (size >= 1024 * MiB ? `${size / 1024 / MiB} GiB` : `${size / MiB} MiB`);
  const contender = (size) => ({
    name: label(size),
    run: async (rep) => {
      const out = join(dir, `out-${size / MiB}-${rep}.bin`);
      try {
        const r = await runChild([ctx.url, ctx.prefix, `memory-${size / MiB}-${rep}`, files[size], out]);
        return {
          peakRssMiB: round(r.peakRssMiB, 2),
          vmHwmMiB: round(r.vmHwmMiB, 2),
          startRssMiB: round(r.startRssMiB, 2),
          peakWriteRssMiB: round(r.peakWriteRssMiB, 2),
          writeMiBps: round(r.size / MiB / (r.writeMs / 1000), 1),
          readMiBps: round(r.size / MiB / (r.readMs / 1000), 1),
          samples: r.samples,
        };
      } finally {
        rmSync(out, { force: true });
      }
    },
  });
  let runs;
  try {
    runs = await alternate(reps, [contender(large), contender(small)], { after: () => ctx.dropKeys(), log: ctx.log });
  } finally {
    for (const f of Object.values(files)) rmSync(f, { force: true });
  }

  // One write of the large size, and the guard under slow readers, then what the guard costs.
  const oneWrite = [];
  const guard = [];
  for (let rep = 0; rep < reps; rep++) {
    const r = await runChild(['--one-write', ctx.url, ctx.prefix, `one-write-${rep}`, String(large)]);
    oneWrite.push({
      beforeRssMiB: round(r.beforeRssMiB, 2),
      peakRssMiB: round(r.peakRssMiB, 2),
      writeMiBps: round(r.size / MiB / (r.writeMs / 1000), 1),
    });
    await ctx.dropKeys();
    const g = ctx.quick
      ? { size: 16 * MiB, room: 6 * MiB, busyMsPerMiB: 40 }
      : { size: 64 * MiB, room: 8 * MiB, busyMsPerMiB: 20 };
    guard.push(await guardRun(ctx, { key: `guard-${rep}`, ...g }));
    ctx.log(`  guard: peak ${guard.at(-1).overMiB} MiB over the limit, ${guard.at(-1).usedMemorySamples} samples`);
    await ctx.dropKeys();
  }
  const costSize = ctx.quick ? 16 * MiB : 256 * MiB;
  const writeWith = (maxRedisMemory) => ({
    name: maxRedisMemory === undefined ? 'write, no maxRedisMemory' : 'write, maxRedisMemory never reached',
    run: (rep) =>
      ctx.timed(async () => {
        await pipeline(
          poolSource(ctx.pool, costSize),
          ctx.pkg.createRedisWriteStream(ctx.redis, `guard-cost-${rep}`, { prefix: ctx.prefix, maxRedisMemory }),
        );
        return costSize;
      }, costSize),
  });
  const cost = await alternate(reps, [writeWith(1024 * 1024 * MiB), writeWith(undefined)], {
    after: () => ctx.dropKeys(),
    log: ctx.log,
    warmup: ctx.warmup,
  });

  const L = runs[label(large)];
  const S = runs[label(small)];
  const growth = median(L.map((r) => r.peakRssMiB)) - median(S.map((r) => r.peakRssMiB));
  const growthMax = median(L.map((r) => r.vmHwmMiB)) - median(S.map((r) => r.vmHwmMiB));
  const target = { op: '<', value: 16, on: 'value', text: `RSS growth ${label(small)} -> ${label(large)} < 16 MiB` };
  const medianOf = (rs) =>
    Object.fromEntries(Object.keys(rs[0]).map((k) => [k, round(median(rs.map((r) => r[k])), 2)]));

  const oneWriteGrowth = median(oneWrite.map((r) => r.peakRssMiB - r.beforeRssMiB));
  const oneWriteTarget = { op: '<', value: 64, on: 'value', text: `RSS added by one ${label(large)} write < 64 MiB` };
  const over = median(guard.map((r) => r.overMiB));
  const allowance = round(GUARD_ALLOWANCE / MiB, 3);
  const guardTarget = {
    op: '<=',
    value: allowance,
    on: 'value',
    text: `guard: used_memory - maxRedisMemory <= ${allowance} MiB (a chunk as Redis stores it)`,
  };
  return {
    id,
    title,
    description:
      `A fresh Node child process per run: fs.createReadStream -> createRedisWriteStream, then ` +
      `createRedisReadStream -> fs.createWriteStream, default options, random data on disk. RSS sampled ` +
      `(process.memoryUsage.rss()) every 10 ms; the kernel's high-water mark (VmHWM) as a cross-check. Growth = median peak ` +
      `RSS with ${label(large)} - median peak RSS with ${label(small)}.`,
    params: {
      large,
      small,
      reps,
      sampleMs: 10,
      guard: { chunkSize: GUARD_CHUNK, readers: 2, sampleMs: 2, allowanceMiB: allowance },
      guardCostSize: costSize,
    },
    unit: 'MiB',
    better: 'lower',
    mainField: 'peakRssMiB',
    contenders: [
      ...Object.entries(runs).map(([name, r]) => ({ name, runs: r, median: medianOf(r) })),
      { name: `one ${label(large)} write`, runs: oneWrite, median: medianOf(oneWrite) },
      { name: 'guard, 2 slow readers', runs: guard, median: medianOf(guard), mainField: 'peakMiB' },
      ...Object.entries(cost).map(([name, r]) => ({
        name,
        runs: r,
        median: medianOf(r),
        mainField: 'mibps',
        unit: 'MiB/s',
      })),
    ],
    comparisons: [
      {
        id: 'memory-growth',
        label: `RSS growth ${label(small)} -> ${label(large)}`,
        kind: 'difference',
        contender: label(large),
        baseline: label(small),
        field: 'peakRssMiB',
        better: 'lower',
        contenderMedian: round(median(L.map((r) => r.peakRssMiB)), 2),
        baselineMedian: round(median(S.map((r) => r.peakRssMiB)), 2),
        value: round(growth, 2),
        vmHwmGrowth: round(growthMax, 2),
        pairedDifferences: L.map((r, i) => round(r.peakRssMiB - S[i].peakRssMiB, 2)),
        target,
        met: checkTarget(target, growth),
      },
      {
        id: 'memory-one-write',
        label: `RSS added by one ${label(large)} ws.end(buffer)`,
        kind: 'difference',
        contender: `one ${label(large)} write`,
        baseline: `one ${label(large)} write`,
        field: 'peakRssMiB',
        better: 'lower',
        contenderMedian: round(median(oneWrite.map((r) => r.peakRssMiB)), 2),
        baselineMedian: round(median(oneWrite.map((r) => r.beforeRssMiB)), 2),
        value: round(oneWriteGrowth, 2),
        target: oneWriteTarget,
        met: checkTarget(oneWriteTarget, oneWriteGrowth),
      },
      {
        id: 'memory-guard-peak',
        label: 'guard: peak used_memory vs maxRedisMemory, 2 slow readers',
        kind: 'difference',
        contender: 'guard, 2 slow readers',
        baseline: 'guard, 2 slow readers',
        field: 'peakMiB',
        better: 'lower',
        contenderMedian: round(median(guard.map((r) => r.peakMiB)), 2),
        baselineMedian: round(median(guard.map((r) => r.limitMiB)), 2),
        value: round(over, 3),
        target: guardTarget,
        met: checkTarget(guardTarget, over),
      },
      compare({
        id: 'memory-guard-write-cost',
        label: 'write with maxRedisMemory (never reached) vs without',
        runs: cost,
        contender: 'write, maxRedisMemory never reached',
        baseline: 'write, no maxRedisMemory',
        field: 'mibps',
        extra: { unit: 'MiB/s' },
      }),
    ],
  };
}
