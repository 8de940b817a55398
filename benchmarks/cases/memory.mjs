// Case 4, memory: peak RSS of a fresh Node child process that streams a file from disk into Redis
// and back to disk, for a large and a small file; the difference is the memory that grows with
// the file size (the target: none, i.e. under 16 MiB).

import { fork } from 'node:child_process';
import { closeSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { trackChild } from '../lib/cleanup.mjs';
import { alternate, checkTarget, MiB, median, round } from '../lib/util.mjs';

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

function runChild(args) {
  return new Promise((resolve, reject) => {
    const child = fork(CHILD, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [] });
    trackChild(child, `memory child ${child.pid}`);
    let report;
    child.on('message', (m) => (report = m));
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      if (report?.ok) resolve(report);
      else reject(new Error(`memory child failed (${signal ?? `exit ${code}`}): ${report?.error ?? 'no report'}`));
    });
  });
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

  const L = runs[label(large)];
  const S = runs[label(small)];
  const growth = median(L.map((r) => r.peakRssMiB)) - median(S.map((r) => r.peakRssMiB));
  const growthMax = median(L.map((r) => r.vmHwmMiB)) - median(S.map((r) => r.vmHwmMiB));
  const target = { op: '<', value: 16, on: 'value', text: `RSS growth ${label(small)} -> ${label(large)} < 16 MiB` };
  const medianOf = (rs) =>
    Object.fromEntries(Object.keys(rs[0]).map((k) => [k, round(median(rs.map((r) => r[k])), 2)]));

  return {
    id,
    title,
    description:
      `A fresh Node child process per run: fs.createReadStream -> createRedisWriteStream, then ` +
      `createRedisReadStream -> fs.createWriteStream, default options, random data on disk. RSS sampled ` +
      `(process.memoryUsage.rss()) every 10 ms; the kernel's high-water mark (VmHWM) as a cross-check. Growth = median peak ` +
      `RSS with ${label(large)} - median peak RSS with ${label(small)}.`,
    params: { large, small, reps, sampleMs: 10 },
    unit: 'MiB',
    better: 'lower',
    mainField: 'peakRssMiB',
    contenders: Object.entries(runs).map(([name, r]) => ({ name, runs: r, median: medianOf(r) })),
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
    ],
  };
}
