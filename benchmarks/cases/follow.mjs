// Case 3, follow latency: how long a write takes to reach a following reader (arrival - write,
// performance.now() carried in each write, same process).
//
// Slow writer (what a log looks like, and what `flushInterval` is for): 100 bytes every 500 ms with
// the DEFAULT options (chunk size 256 KiB, so no write ever fills a chunk: what a follower sees of
// it is what `flushInterval` sends), against the same writes with `flushInterval: 0` and a
// `flush()` after each write, and against the raw ceiling: XADD of each write and a reader blocked
// in XREAD BLOCK on its own connection. The three run interleaved, in slots a third of the interval
// apart, so they share the machine's load; each has its own connections.
//
// Bulk (kept from the first version of this case): 4 KiB every 10 ms with 4 KiB chunks, so that
// every write fills a chunk and is sent at once; the cost of following at a high rate, against the
// same raw ceiling.
//
// The followers and the schedule are exported for the latency case, which runs them through a
// delaying proxy.

import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { crc32 } from 'node:zlib';
import {
  alternate,
  builtWriteOptions,
  checkTarget,
  compare,
  KiB,
  median,
  medians,
  percentile,
  round,
} from '../lib/util.mjs';

export const id = 'follow';
export const title = 'Follow latency (write to delivery)';

const SMALL = 100;
const SMALL_INTERVAL_MS = 500;
const BULK = 4 * KiB;
const BULK_INTERVAL_MS = 10;
/** The first bulk records are not counted: the readers are still waking up to the new file. */
const BULK_WARMUP = 10;

const DEFAULTS = 'redis-file-stream, defaults';
const FLUSHED = 'redis-file-stream, flush() per write';
const RAW = 'raw XREAD BLOCK';
const BULK_PKG = 'bulk: redis-file-stream, 4 KiB chunks';
const BULK_RAW = 'bulk: raw XREAD BLOCK';

/** A record of `size` bytes: the time it is written, its number, then filler. */
function record(size, i) {
  const buf = Buffer.alloc(size, i & 0xff);
  buf.writeUInt32LE(i, 8);
  buf.writeDoubleLE(performance.now(), 0);
  return buf;
}

/** The entry fields of a format 2 piece holding `buf`, as the package stores it. */
const piece = (buf) => ['d', buf, 'c', crc32(buf).toString(16).padStart(8, '0')];

/**
 * Collects latencies from a byte stream of fixed-size records (chunks may be cut anywhere), in
 * order from record 0; `onRecord(i)` runs after record i has been counted.
 */
function recordParser(size, latencies, onRecord = () => {}) {
  let pending = Buffer.alloc(0);
  let seen = 0;
  return (chunk) => {
    const t = performance.now();
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    while (pending.length >= size) {
      const sent = pending.readDoubleLE(0);
      const i = pending.readUInt32LE(8);
      if (i !== seen) throw new Error(`record ${i} arrived where ${seen} was expected`);
      latencies.push(t - sent);
      seen++;
      pending = pending.subarray(size);
      onRecord(i);
    }
  };
}

/** Calls send(i) for i = 0 … count-1 every `interval` ms from `t0`, on a schedule that does not drift. */
export async function steady(count, interval, send, t0 = performance.now()) {
  for (let i = 0; i < count; i++) {
    const wait = t0 + i * interval - performance.now();
    if (wait > 1) await sleep(wait);
    send(i);
  }
}

export function summary(xs) {
  return {
    p50: round(percentile(xs, 50), 3),
    p90: round(percentile(xs, 90), 3),
    p99: round(percentile(xs, 99), 3),
    max: round(Math.max(...xs), 3),
    mean: round(xs.reduce((a, b) => a + b, 0) / xs.length, 3),
    writes: xs.length,
  };
}

/** A promise that `emitter` emits `event` before 'error' (settled either way, never unhandled). */
function settled(emitter, event) {
  const p = new Promise((resolve, reject) => {
    emitter.once(event, resolve);
    emitter.once('error', reject);
  });
  p.catch(() => {});
  return p;
}

// ---------------------------------------------------------------------------------------------
// Slow writer: one contender = open(), then send(i) for each write, then close() → latencies.
// Record 0 is a primer, sent and delivered before the timed writes: the reader is then blocked in
// its steady state, which no fixed sleep could promise.

/** The package, writer and following reader, each on connections of their own. */
export function packageFollower(ctx, key, writeOptions, flushEach) {
  const { pkg } = ctx;
  const latencies = [];
  const writerClient = ctx.redis.duplicate();
  const readerClient = ctx.redis.duplicate();
  // Failures surface through the streams; a client without a listener would also log them.
  writerClient.on('error', () => {});
  readerClient.on('error', () => {});
  let writer;
  let reader;
  let ended;
  let writerDone;
  let primed;
  return {
    async open() {
      writer = pkg.createRedisWriteStream(writerClient, key, { prefix: ctx.prefix, ...writeOptions });
      writerDone = settled(writer, 'finish');
      await Promise.race([once(writer, 'ready'), writerDone]);
      reader = pkg.createRedisReadStream(readerClient, key, { prefix: ctx.prefix });
      ended = settled(reader, 'end');
      primed = new Promise((resolve) =>
        reader.on(
          'data',
          recordParser(SMALL, latencies, (i) => i === 0 && resolve()),
        ),
      );
      this.send(0);
      await Promise.race([primed, ended, writerDone]);
    },
    send(i) {
      writer.write(record(SMALL, i));
      if (flushEach) writer.flush();
    },
    async close(count) {
      writer.end();
      await Promise.all([writerDone, ended]);
      if (latencies.length !== count + 1) throw new Error(`received ${latencies.length - 1} of ${count} writes`);
      return latencies.slice(1);
    },
    destroy() {
      reader?.destroy();
      writer?.destroy();
      writerClient.disconnect();
      readerClient.disconnect();
    },
  };
}

/** XADD of each write (a format 2 piece of chunk 0) and a reader in XREAD BLOCK on its own connection. */
export function rawFollower(ctx, key, count) {
  const latencies = [];
  const writerClient = ctx.redis.duplicate();
  const readerClient = ctx.redis.duplicate();
  writerClient.on('error', () => {}); // failures surface through the commands
  readerClient.on('error', () => {});
  let reading;
  let primed;
  const acks = [];
  return {
    async open() {
      let onPrimer;
      primed = new Promise((resolve) => (onPrimer = resolve));
      const parse = recordParser(SMALL, latencies, (i) => i === 0 && onPrimer());
      reading = (async () => {
        let last = '0-0';
        while (latencies.length < count + 1) {
          const reply = await readerClient.xreadBuffer('COUNT', 16, 'BLOCK', 0, 'STREAMS', key, last);
          for (const [, entries] of reply ?? []) {
            for (const [entryId, fields] of entries) {
              parse(fields[1]);
              last = entryId.toString();
            }
          }
        }
      })();
      reading.catch(() => {}); // awaited in close(); a failure ends the wait for the primer below
      this.send(0);
      await Promise.race([primed, reading]);
    },
    send(i) {
      acks.push(writerClient.xaddBuffer(key, `0-${i + 2}`, ...piece(record(SMALL, i))));
    },
    async close() {
      await Promise.all(acks);
      await reading;
      if (latencies.length !== count + 1) throw new Error(`received ${latencies.length - 1} of ${count} writes`);
      return latencies.slice(1);
    },
    destroy() {
      writerClient.disconnect();
      readerClient.disconnect();
    },
  };
}

/**
 * One interleaved run: every contender writes `count` times, every SMALL_INTERVAL_MS, contender j
 * in a slot j / n of the interval after contender 0 (167 ms apart for three: longer than the
 * flush interval, so one contender's write and delivery never overlap another's).
 */
async function slowRun(ctx, rep, count, flushInterval) {
  const contenders = {
    [DEFAULTS]: packageFollower(ctx, `follow-default-${rep}`, {}, false),
    [FLUSHED]: packageFollower(ctx, `follow-flush-${rep}`, { flushInterval: 0 }, true),
    [RAW]: rawFollower(ctx, ctx.rawKey(`follow-xread-${rep}`), count),
  };
  const list = Object.values(contenders);
  try {
    for (const c of list) await c.open();
    const t0 = performance.now() + 20;
    const slot = SMALL_INTERVAL_MS / list.length;
    await Promise.all(list.map((c, j) => steady(count, SMALL_INTERVAL_MS, (i) => c.send(i + 1), t0 + j * slot)));
    const out = {};
    for (const [name, c] of Object.entries(contenders)) {
      // Every latency is kept in the results: with a few dozen writes, p99 is the worst one.
      const latencies = await c.close(count);
      out[name] = { ...summary(latencies), latenciesMs: latencies.map((x) => round(x, 2)) };
    }
    const figures = Object.entries(out).map(([n, s]) => `${n} p50=${s.p50} p99=${s.p99}`);
    const which = rep === 'warmup' ? 'warm-up' : `#${rep + 1}`;
    ctx.log(`  slow writer ${which}: ${figures.join('; ')} (flushInterval ${flushInterval} ms)`);
    return out;
  } finally {
    for (const c of list) c.destroy();
    await ctx.dropKeys();
  }
}

// ---------------------------------------------------------------------------------------------
// Bulk

function bulkSummary(latencies) {
  return summary(latencies.slice(BULK_WARMUP));
}

async function bulkPackageRun(ctx, rep, count) {
  const { redis, pkg } = ctx;
  const key = `follow-bulk-${rep}`;
  const latencies = [];
  const reader = pkg.createRedisReadStream(redis, key, { prefix: ctx.prefix, waitForCreate: 10_000 });
  reader.on('data', recordParser(BULK, latencies));
  const ended = settled(reader, 'end');
  let writer;
  try {
    await sleep(100); // the reader is now blocked, waiting for the file
    writer = pkg.createRedisWriteStream(redis, key, { prefix: ctx.prefix, chunkSize: BULK });
    const writerDone = settled(writer, 'finish');
    await steady(count, BULK_INTERVAL_MS, (i) => writer.write(record(BULK, i)));
    writer.end();
    await Promise.all([writerDone, ended]);
  } catch (err) {
    reader.destroy();
    writer?.destroy();
    throw err;
  }
  if (latencies.length !== count) throw new Error(`received ${latencies.length} of ${count} records`);
  return bulkSummary(latencies);
}

async function bulkRawRun(ctx, rep, count) {
  const { redis } = ctx;
  const key = ctx.rawKey(`follow-bulk-xread-${rep}`);
  const conn = redis.duplicate();
  conn.on('error', () => {});
  const latencies = [];
  const parse = recordParser(BULK, latencies);
  const reading = (async () => {
    let last = '0-0';
    while (latencies.length < count && conn.status !== 'end') {
      const reply = await conn.xreadBuffer('COUNT', 16, 'BLOCK', 0, 'STREAMS', key, last);
      for (const [, entries] of reply ?? []) {
        for (const [entryId, fields] of entries) {
          parse(fields[1]);
          last = entryId.toString();
        }
      }
    }
  })();
  reading.catch(() => {}); // a failed writer disconnects the reader below
  try {
    await sleep(100);
    const acks = [];
    await steady(count, BULK_INTERVAL_MS, (i) => acks.push(redis.xaddBuffer(key, `${i}-2`, ...piece(record(BULK, i)))));
    await Promise.all(acks);
    await reading;
  } finally {
    conn.disconnect();
  }
  return bulkSummary(latencies);
}

// ---------------------------------------------------------------------------------------------

/** A comparison of one contender's figure with a value in the same unit: their difference. */
export function difference({ id, label, contender, baseline, contenderMedian, baselineMedian, target }) {
  const value = round(contenderMedian - baselineMedian, 3);
  const result = { id, label, kind: 'difference', contender, baseline, better: 'lower' };
  Object.assign(result, { contenderMedian, baselineMedian, value });
  if (target) {
    result.target = target;
    result.met = checkTarget(target, value);
  }
  return result;
}

export async function run(ctx) {
  const slowCount = ctx.quick ? 5 : 24;
  const slowReps = ctx.reps(1, 1);
  const bulkCount = ctx.quick ? 60 : 500;
  const bulkReps = ctx.reps(3, 1);
  // The writer's default, as the built package resolves it (not a copy that could drift from it).
  const flushInterval = (await builtWriteOptions())?.flushInterval;
  if (typeof flushInterval !== 'number') throw new Error("cannot tell the writer's default flushInterval");

  const runs = { [DEFAULTS]: [], [FLUSHED]: [], [RAW]: [] };
  if (ctx.warmup) await slowRun(ctx, 'warmup', 3, flushInterval);
  for (let rep = 0; rep < slowReps; rep++) {
    const out = await slowRun(ctx, rep, slowCount, flushInterval);
    for (const [name, s] of Object.entries(out)) runs[name].push(s);
  }
  const bulk = await alternate(
    bulkReps,
    [
      { name: BULK_PKG, run: (rep) => bulkPackageRun(ctx, rep, bulkCount) },
      { name: BULK_RAW, run: (rep) => bulkRawRun(ctx, rep, bulkCount) },
    ],
    { after: () => ctx.dropKeys(), log: ctx.log, warmup: ctx.warmup },
  );
  Object.assign(runs, bulk);

  const med = (name, field) => round(median(runs[name].map((r) => r[field])), 3);
  return {
    id,
    title,
    description:
      `Latency = arrival at the following reader - write, in ms, one process. Slow writer: ${SMALL} bytes ` +
      `every ${SMALL_INTERVAL_MS} ms, ${slowCount} writes per contender (p99 of ${slowCount} is the worst one), ` +
      `the three contenders interleaved a third of the interval apart, each on connections of its own, after ` +
      `one untimed write delivered. "${DEFAULTS}": createRedisWriteStream with the default options ` +
      `(chunkSize 256 KiB, flushInterval ${flushInterval} ms: a write waits up to that long before it is ` +
      `stored as a piece) and a following createRedisReadStream with the default options (checksum on). ` +
      `"${FLUSHED}": flushInterval 0 and flush() after every write. "${RAW}": XADD of each write (a format 2 ` +
      `piece, d <bytes> c <crc>) and an XREAD COUNT 16 BLOCK 0 reader on a connection of its own (the ` +
      `ceiling); every latency is in the results file (latenciesMs). Bulk: ${bulkCount} records of ${BULK / KiB} KiB every ${BULK_INTERVAL_MS} ms with chunkSize ` +
      `${BULK / KiB} KiB (every write fills a chunk and is sent at once; the first ${BULK_WARMUP} records not ` +
      `counted), against the same raw ceiling, alternated. Figures per run: p50, p90, p99, max, mean, writes counted.`,
    params: {
      flushIntervalMs: flushInterval,
      slow: { writes: slowCount, writeSize: SMALL, intervalMs: SMALL_INTERVAL_MS, reps: slowReps },
      bulk: {
        records: bulkCount,
        recordSize: BULK,
        chunkSize: BULK,
        intervalMs: BULK_INTERVAL_MS,
        warmup: BULK_WARMUP,
        reps: bulkReps,
      },
    },
    unit: 'ms',
    better: 'lower',
    mainField: 'p99',
    contenders: Object.entries(runs).map(([name, r]) => ({ name, runs: r, median: medians(r) })),
    comparisons: [
      difference({
        id: 'follow-default-over-flush-interval',
        label: `follow p99, defaults, over flushInterval (${flushInterval} ms)`,
        contender: DEFAULTS,
        baseline: 'flushInterval',
        contenderMedian: med(DEFAULTS, 'p99'),
        baselineMedian: flushInterval,
        target: { op: '<=', value: 10, on: 'value', text: 'defaults: p99 <= flushInterval + 10 ms' },
      }),
      difference({
        id: 'follow-default-p50-over-xread',
        label: 'follow p50, defaults, over raw XREAD BLOCK',
        contender: DEFAULTS,
        baseline: RAW,
        contenderMedian: med(DEFAULTS, 'p50'),
        baselineMedian: med(RAW, 'p50'),
      }),
      difference({
        id: 'follow-flush-over-xread',
        label: 'follow p99, flush() per write, over raw XREAD BLOCK',
        contender: FLUSHED,
        baseline: RAW,
        contenderMedian: med(FLUSHED, 'p99'),
        baselineMedian: med(RAW, 'p99'),
        target: { op: '<=', value: 5, on: 'value', text: 'flush() per write: p99 <= raw XREAD p99 + 5 ms' },
      }),
      compare({
        id: 'follow-bulk-vs-xread',
        label: 'bulk follow p99 vs raw XREAD BLOCK (4 KiB chunks)',
        runs,
        contender: BULK_PKG,
        baseline: BULK_RAW,
        field: 'p99',
        better: 'lower',
        target: { op: '<=', value: 2, on: 'ratio', text: 'bulk, 4 KiB chunks: p99 <= 2x raw XREAD' },
      }),
    ],
  };
}
