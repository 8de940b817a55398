// Small helpers shared by the benchmark cases: statistics, in-memory sources and sinks, the raw
// ceilings (ioredis, or any client through rawCommands), and the runner that alternates contenders.

import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { Readable, Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { crc32 as zlibCrc32 } from 'node:zlib';
import { runOrder } from './run-order.mjs';

/** The comment lines that open the script at `url` (after its shebang): its --help text. */
export function headerComment(url) {
  const lines = readFileSync(fileURLToPath(url), 'utf8').split('\n').slice(1);
  return lines
    .slice(
      0,
      lines.findIndex((l) => !l.startsWith('//')),
    )
    .map((l) => l.replace(/^\/\/ ?/, ''))
    .join('\n');
}

export const KiB = 1024;
export const MiB = 1024 * 1024;

// A full GC between runs, so that one contender's garbage is not collected on the next one's time.
// `npm run bench` starts plain `node`; expose gc at run time instead of asking for a flag.
setFlagsFromString('--expose-gc');
const collect = runInNewContext('gc');

/** Collect garbage and let the event loop (and Redis) settle before a timed run. */
export async function settle(ms = 30) {
  collect();
  await sleep(ms);
}

export function median(xs) {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Nearest-rank percentile (p in 0..100) of an unsorted array. */
export function percentile(xs, p) {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * s.length);
  return s[Math.min(s.length - 1, Math.max(0, rank - 1))];
}

export function round(x, digits = 3) {
  if (!Number.isFinite(x)) return x;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

export const now = () => performance.now();
export const mibps = (bytes, ms) => bytes / MiB / (ms / 1000);

/** 8 MiB of random bytes: every chunk size used here divides it. */
export function randomPool(size = 8 * MiB) {
  return randomBytes(size);
}

/**
 * A Readable of `total` bytes in `piece`-byte buffers (views into `pool`, no copies), as a file
 * read with fs.createReadStream would deliver them (64 KiB by default).
 */
export function poolSource(pool, total, piece = 64 * KiB) {
  let sent = 0;
  let offset = 0;
  return new Readable({
    highWaterMark: piece,
    read() {
      if (sent >= total) {
        this.push(null);
        return;
      }
      const n = Math.min(piece, total - sent, pool.length - offset);
      const buf = pool.subarray(offset, offset + n);
      offset = (offset + n) % pool.length;
      sent += n;
      this.push(buf);
    },
  });
}

/** A Writable that throws the bytes away and counts them. */
export function countingSink(onChunk) {
  const sink = new Writable({
    highWaterMark: 1 * MiB,
    write(chunk, _enc, cb) {
      sink.bytes += chunk.length;
      onChunk?.(chunk);
      cb();
    },
    writev(chunks, cb) {
      for (const { chunk } of chunks) {
        sink.bytes += chunk.length;
        onChunk?.(chunk);
      }
      cb();
    },
  });
  sink.bytes = 0;
  return sink;
}

/** The CRC-32 of each `chunkSize` slice the raw loops cut from a pool, computed once per pool and size. */
const sliceCrcs = new WeakMap();

function sliceCrc(pool, start, len) {
  let bySlice = sliceCrcs.get(pool);
  if (!bySlice) sliceCrcs.set(pool, (bySlice = new Map()));
  const at = `${start}+${len}`;
  let crc = bySlice.get(at);
  if (crc === undefined) {
    crc = zlibCrc32(pool.subarray(start, start + len))
      .toString(16)
      .padStart(8, '0');
    bySlice.set(at, crc);
  }
  return crc;
}

/**
 * The two commands the raw loops send, on an ioredis client (or an iovalkey one: the same API):
 * `xadd(key, id, data, crc)` stores one entry `d <data> c <crc>`, `xrange(key, from, count)` and
 * `xrangeIds(key, start, end)` resolve to `[id, [field, value, ...]][]` with Buffers. The raw loops
 * take a client or such an object (benchmarks/cases/clients.mjs builds one for node-redis).
 */
export function rawCommands(client) {
  if (typeof client.xaddBuffer !== 'function') return client;
  return {
    xadd: (key, id, data, crc) => client.xaddBuffer(key, id, 'd', data, 'c', crc),
    xrange: (key, from, count) => client.xrangeBuffer(key, from, '+', 'COUNT', count),
    xrangeIds: (key, start, end) => client.xrangeBuffer(key, start, end),
  };
}

/**
 * The write ceiling: XADD with explicit ids `<n>-2`, each entry a piece of storage format 2
 * (`d <bytes> c <crc>`, as the package stores a chunk written in one go), `inFlight` commands
 * waiting for Redis at once, chunks cut from the pool without copies. The CRC-32s are those of the
 * pool's slices, computed on the first call for a pool and chunk size and reused after it (a warm-up
 * run pays for them): the ceiling stores what the package stores, and does none of its work.
 * `redis`: a client or the commands of one (rawCommands).
 */
export function rawXadd(redis, key, pool, total, chunkSize, inFlight = 16) {
  const { xadd } = rawCommands(redis);
  const chunks = Math.ceil(total / chunkSize);
  const crcs = [];
  for (let n = 0; n < chunks; n++) {
    const start = (n * chunkSize) % pool.length;
    crcs.push(sliceCrc(pool, start, Math.min(chunkSize, total - n * chunkSize)));
  }
  return new Promise((resolve, reject) => {
    let next = 0;
    let pending = 0;
    let failed = false;
    const pump = () => {
      while (!failed && pending < inFlight && next < chunks) {
        const n = next++;
        const start = (n * chunkSize) % pool.length;
        const len = Math.min(chunkSize, total - n * chunkSize);
        pending++;
        xadd(key, `${n}-2`, pool.subarray(start, start + len), crcs[n]).then(
          () => {
            pending--;
            if (next >= chunks && pending === 0) resolve(total);
            else pump();
          },
          (err) => {
            failed = true;
            reject(err);
          },
        );
      }
    };
    pump();
  });
}

/**
 * The read ceiling: XRANGE batches of `count` entries, one after another (each request waits for
 * the previous reply), the bytes counted and thrown away. Returns the byte count. `redis`: a client
 * or the commands of one (rawCommands).
 */
export async function rawXrange(redis, key, count = 16) {
  const { xrange } = rawCommands(redis);
  let from = '-';
  let bytes = 0;
  for (;;) {
    const entries = await xrange(key, from, count);
    for (const [, fields] of entries) bytes += fields[1].length;
    if (entries.length < count) return bytes;
    const last = entries[entries.length - 1][0].toString();
    from = `(${last}`;
  }
}

/**
 * Run every contender `reps` times, alternating in the orders of {@link runOrder}, so that no
 * contender always runs first, or right after the same other one.
 * `after` runs after every single run (untimed), e.g. to delete the keys it made. With `warmup`,
 * each contender first runs once untimed (not recorded).
 *
 * @param {number} reps
 * @param {{ name: string, run: (rep: number) => Promise<object> }[]} contenders
 * @returns {Promise<Record<string, object[]>>} the runs of each contender, by name
 */
export async function alternate(reps, contenders, { after, log, warmup = false } = {}) {
  const runs = Object.fromEntries(contenders.map((c) => [c.name, []]));
  if (warmup) {
    // One untimed run of each first: the JIT warms up, and Redis (jemalloc) has the memory mapped.
    for (const c of contenders) {
      await c.run('warmup');
      log?.(`  ${c.name}: warm-up run done`);
      if (after) await after(c.name);
    }
  }
  for (let rep = 0; rep < reps; rep++) {
    for (const i of runOrder(contenders.length, rep)) {
      const c = contenders[i];
      await settle();
      const result = await c.run(rep);
      runs[c.name].push(result);
      log?.(`  ${c.name} #${rep + 1}: ${describeRun(result)}`);
      if (after) await after(c.name);
    }
  }
  return runs;
}

function describeRun(r) {
  return Object.entries(r)
    .filter(([, v]) => typeof v === 'number')
    .map(([k, v]) => `${k}=${round(v, 2)}`)
    .join(' ');
}

/** CPU seconds the Redis server has used so far (all its threads), from INFO cpu. */
export async function redisCpuMs(redis) {
  const info = await redis.info('cpu');
  const user = Number(/used_cpu_user:(\S+)/.exec(info)?.[1]);
  const sys = Number(/used_cpu_sys:(\S+)/.exec(info)?.[1]);
  return (user + sys) * 1000;
}

/**
 * Timed throughput run: `fn` returns the byte count it moved; `expected` is checked. Besides the
 * wall time, records the CPU time of this Node process (all threads) and, given `redis`, of the
 * Redis server during the run: on a shared machine they say where the time went even when the
 * wall clock is disturbed by other work. `pageFaults`: the minor page faults of this process during
 * the run (memory the allocator took from the kernel afresh, which a read of large Buffers pays
 * for: see "Page faults" in docs/benchmarks.md). `load1` is the 1-minute load average at the start.
 */
export async function timed(fn, expected, redis) {
  const load1 = round(os.loadavg()[0], 2);
  const r0 = redis ? await redisCpuMs(redis) : 0;
  const f0 = process.resourceUsage().minorPageFault;
  const c0 = process.cpuUsage();
  const t0 = now();
  const bytes = await fn();
  const ms = now() - t0;
  const c = process.cpuUsage(c0);
  const pageFaults = process.resourceUsage().minorPageFault - f0;
  const r1 = redis ? await redisCpuMs(redis) : 0;
  if (expected !== undefined && bytes !== expected) {
    throw new Error(`moved ${bytes} bytes, expected ${expected}`);
  }
  const result = {
    mibps: round(mibps(bytes, ms), 1),
    ms: round(ms, 2),
    nodeCpuMs: round((c.user + c.system) / 1000, 1),
    pageFaults,
  };
  if (redis) result.redisCpuMs = round(r1 - r0, 1);
  result.load1 = load1;
  return result;
}

/** Of the contenders `names`, the one with the highest median `field` in `runs` (the first on a tie). */
export function bestOf(runs, names, field) {
  return names.reduce((a, b) => (median(runs[b].map((r) => r[field])) > median(runs[a].map((r) => r[field])) ? b : a));
}

/** Medians of every numeric field over a list of runs. */
export function medians(runs) {
  const out = {};
  for (const field of Object.keys(runs[0] ?? {})) {
    if (runs.every((r) => typeof r[field] === 'number')) out[field] = round(median(runs.map((r) => r[field])), 3);
  }
  return out;
}

/**
 * A comparison of two contenders on one field. `ratio` is contender / baseline. `factor` is "how
 * many times better the contender is" (ratio when higher is better, 1/ratio when lower is).
 */
export function compare({ id, label, runs, contender, baseline, field, better = 'higher', target, extra }) {
  const a = runs[contender].map((r) => r[field]);
  const b = runs[baseline].map((r) => r[field]);
  const ma = median(a);
  const mb = median(b);
  const ratio = ma / mb;
  const paired = a.map((x, i) => round(x / b[i], 4));
  const factor = better === 'higher' ? ratio : 1 / ratio;
  const result = {
    id,
    label,
    contender,
    baseline,
    field,
    better,
    contenderMedian: round(ma, 3),
    baselineMedian: round(mb, 3),
    ratio: round(ratio, 4),
    pairedRatios: paired,
    factor: round(factor, 4),
    ...extra,
  };
  if (target) {
    result.target = target;
    result.met = checkTarget(target, target.on === 'factor' ? factor : ratio);
  }
  return result;
}

/** target: { op: '>=' | '<=' | '<', value, on: 'ratio' | 'factor' | 'value', text } */
export function checkTarget(target, x) {
  switch (target.op) {
    case '>=':
      return x >= target.value;
    case '<=':
      return x <= target.value;
    case '<':
      return x < target.value;
    case '>':
      return x > target.value;
    default:
      throw new Error(`unknown target op ${target.op}`);
  }
}

/** Bytes as "256 MiB" / "64 KiB". */
export function formatBytes(n) {
  if (n >= MiB && n % MiB === 0) return `${n / MiB} MiB`;
  if (n >= KiB && n % KiB === 0) return `${n / KiB} KiB`;
  return `${n} B`;
}

/** Delete every key matching `pattern` on `redis` (SCAN, then DEL: freed at once, not lazily). */
export async function deleteMatching(redis, pattern) {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    if (keys.length) await redis.del(...keys);
  } while (cursor !== '0');
}

/**
 * The built package (dist/), or undefined after saying how to build it: the benchmarks measure
 * what users install, not src/.
 * @param {string} script the npm script that builds first, for the message
 */
export async function importBuiltPackage(script) {
  try {
    return await import('redis-file-stream');
  } catch (err) {
    if (err?.code !== 'ERR_MODULE_NOT_FOUND') throw err;
    console.error(
      `bench: the package is not built (dist/ is missing): run \`node scripts/build.mjs\` first, or \`npm run ${script}\`, which does`,
    );
    return undefined;
  }
}

/**
 * An internal module of the built package, e.g. `crc.js`, loaded by its path beside the entry point
 * that importBuiltPackage loads (dist/esm/); `undefined` when the build has no such module.
 */
export async function importBuiltInternal(file) {
  try {
    return await import(new URL(`./${file}`, import.meta.resolve('redis-file-stream')).href);
  } catch (err) {
    if (err?.code !== 'ERR_MODULE_NOT_FOUND') throw err;
    return undefined;
  }
}

/** Which CRC-32 implementation the built package computes with: `'@node-rs/crc32'` or `'zlib'`. */
export async function builtCrcImplementation() {
  const mod = await importBuiltInternal('crc.js');
  return typeof mod?.crcImplementation === 'function' ? await mod.crcImplementation() : undefined;
}

/** The writer's options as the built package resolves them from `options` (its defaults for `{}`). */
export async function builtWriteOptions(options = {}) {
  const mod = await importBuiltInternal('options.js');
  return typeof mod?.resolveWriteOptions === 'function' ? mod.resolveWriteOptions(options) : undefined;
}

/** The fields of a case result whose contenders are measured in MiB/s (more is better). */
export function throughputContenders(runs) {
  return {
    unit: 'MiB/s',
    better: 'higher',
    mainField: 'mibps',
    contenders: Object.entries(runs).map(([name, r]) => ({ name, runs: r, median: medians(r) })),
  };
}
