// Case 3, follow latency: a writer stores small records at a steady rate, each carrying the time
// it was written (performance.now(), same process); a following reader measures arrival - send.
// redis-file-stream (package writer + following reader) against the raw ceiling (XADD writer +
// XREAD BLOCK reader on its own connection) and against a reader that polls XRANGE every 50 ms.

import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { alternate, compare, KiB, medians, percentile, round } from '../lib/util.mjs';

export const id = 'follow';
export const title = 'Follow latency (write to delivery)';

const RECORD = 4 * KiB;
const INTERVAL_MS = 10;
const POLL_MS = 50;
/** The first records are not counted: the readers are still waking up to the new file. */
const WARMUP = 10;

function record(i) {
  const buf = Buffer.alloc(RECORD, i & 0xff);
  buf.writeUInt32LE(i, 8);
  buf.writeDoubleLE(performance.now(), 0);
  return buf;
}

/** Collects latencies from a byte stream of fixed-size records (chunks may be cut anywhere). */
function recordParser(latencies, expectCount, onDone) {
  let pending = Buffer.alloc(0);
  let seen = 0;
  return (chunk) => {
    const t = performance.now();
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    while (pending.length >= RECORD) {
      const sent = pending.readDoubleLE(0);
      const i = pending.readUInt32LE(8);
      if (i !== seen) throw new Error(`record ${i} arrived where ${seen} was expected`);
      latencies.push(t - sent);
      seen++;
      pending = pending.subarray(RECORD);
    }
    if (seen === expectCount) onDone();
  };
}

/** Calls send(i) for i = 0 … count-1 every INTERVAL_MS, on a schedule that does not drift. */
async function steady(count, send) {
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    const wait = t0 + i * INTERVAL_MS - performance.now();
    if (wait > 1) await sleep(wait);
    send(i);
  }
}

function summary(latencies) {
  const xs = latencies.slice(WARMUP);
  return {
    p50: round(percentile(xs, 50), 3),
    p90: round(percentile(xs, 90), 3),
    p99: round(percentile(xs, 99), 3),
    max: round(Math.max(...xs), 3),
    mean: round(xs.reduce((a, b) => a + b, 0) / xs.length, 3),
  };
}

export async function run(ctx) {
  const { redis, pkg } = ctx;
  const count = ctx.quick ? 60 : 500;
  const reps = ctx.reps(3, 1);

  const packageRun = async (rep) => {
    const key = `follow-${rep}`;
    const latencies = [];
    const reader = pkg.createRedisReadStream(redis, key, { prefix: ctx.prefix, waitForCreate: 10_000 });
    reader.on('data', recordParser(latencies, count, () => {}));
    const ended = new Promise((resolve, reject) => {
      reader.once('end', resolve);
      reader.once('error', reject);
    });
    ended.catch(() => {}); // awaited below; this only keeps an early failure from being unhandled
    let writer;
    try {
      await sleep(100); // the reader is now blocked, waiting for the file
      writer = pkg.createRedisWriteStream(redis, key, { prefix: ctx.prefix, chunkSize: RECORD, contentEncoding: 'identity' });
      const writerDone = new Promise((resolve, reject) => {
        writer.once('finish', resolve);
        writer.once('error', reject);
      });
      writerDone.catch(() => {});
      await steady(count, (i) => writer.write(record(i)));
      writer.end();
      await Promise.all([writerDone, ended]);
    } catch (err) {
      reader.destroy();
      writer?.destroy();
      throw err;
    }
    if (latencies.length !== count) throw new Error(`received ${latencies.length} of ${count} records`);
    return summary(latencies);
  };

  // The raw writer: XADD with explicit ids, as the package stores chunks.
  const rawWriter = async (key) => {
    const acks = [];
    await steady(count, (i) => acks.push(redis.xaddBuffer(key, `${i}-2`, 'd', record(i))));
    await Promise.all(acks);
  };

  const xreadRun = async (rep) => {
    const key = ctx.rawKey(`follow-xread-${rep}`);
    const conn = redis.duplicate();
    conn.on('error', () => {});
    const latencies = [];
    let got = 0;
    const parse = recordParser(latencies, count, () => {});
    const reading = (async () => {
      let last = '0-0';
      while (got < count && conn.status !== 'end') {
        const reply = await conn.xreadBuffer('COUNT', 16, 'BLOCK', 0, 'STREAMS', key, last);
        for (const [, entries] of reply ?? []) {
          for (const [id, fields] of entries) {
            parse(fields[1]);
            got++;
            last = id.toString();
          }
        }
      }
    })();
    reading.catch(() => {}); // a failed writer disconnects the reader below
    try {
      await sleep(100);
      await rawWriter(key);
      await reading;
    } finally {
      conn.disconnect();
    }
    return summary(latencies);
  };

  const pollRun = async (rep) => {
    const key = ctx.rawKey(`follow-poll-${rep}`);
    const latencies = [];
    let got = 0;
    const parse = recordParser(latencies, count, () => {});
    let stopped = false;
    const reading = (async () => {
      let from = '-';
      while (got < count && !stopped) {
        const entries = await redis.xrangeBuffer(key, from, '+');
        for (const [id, fields] of entries) {
          parse(fields[1]);
          got++;
          from = `(${id.toString()}`;
        }
        if (got < count) await sleep(POLL_MS);
      }
    })();
    reading.catch(() => {});
    try {
      await sleep(100);
      await rawWriter(key);
      await reading;
    } finally {
      stopped = true;
    }
    return summary(latencies);
  };

  const runs = await alternate(
    reps,
    [
      { name: 'redis-file-stream', run: packageRun },
      { name: 'raw XREAD BLOCK', run: xreadRun },
      { name: 'polling every 50 ms', run: pollRun },
    ],
    { after: () => ctx.dropKeys(), log: ctx.log, warmup: ctx.warmup },
  );

  return {
    id,
    title,
    description:
      `${count} records of ${RECORD / KiB} KiB written every ${INTERVAL_MS} ms, each carrying performance.now() at ` +
      `write time; latency = arrival at the reader - write, in ms, same process, first ${WARMUP} records not ` +
      `counted. redis-file-stream: createRedisWriteStream (chunkSize ${RECORD / KiB} KiB, so that every record ` +
      `is one chunk) and a following createRedisReadStream started first with waitForCreate. raw XREAD BLOCK: ` +
      `XADD writer, XREAD COUNT 16 BLOCK 0 reader on a connection of its own (the ceiling). polling: XRANGE ` +
      `from the last id, then a ${POLL_MS} ms sleep. Figures per run: p50, p90, p99, max, mean.`,
    params: { records: count, recordSize: RECORD, intervalMs: INTERVAL_MS, pollMs: POLL_MS, warmup: WARMUP, reps },
    unit: 'ms',
    better: 'lower',
    mainField: 'p99',
    contenders: Object.entries(runs).map(([name, r]) => ({ name, runs: r, median: medians(r) })),
    comparisons: [
      compare({
        id: 'follow-vs-xread',
        label: 'follow p99 vs raw XREAD BLOCK',
        runs,
        contender: 'redis-file-stream',
        baseline: 'raw XREAD BLOCK',
        field: 'p99',
        better: 'lower',
        target: { op: '<=', value: 2, on: 'ratio', text: 'p99 <= 2x raw XREAD' },
      }),
      compare({
        id: 'follow-vs-poll',
        label: 'follow p99 vs polling 50 ms',
        runs,
        contender: 'redis-file-stream',
        baseline: 'polling every 50 ms',
        field: 'p99',
        better: 'lower',
        target: { op: '>=', value: 10, on: 'factor', text: 'p99 >= 10x better than polling' },
      }),
      compare({
        id: 'follow-p50-vs-xread',
        label: 'follow p50 vs raw XREAD BLOCK',
        runs,
        contender: 'redis-file-stream',
        baseline: 'raw XREAD BLOCK',
        field: 'p50',
        better: 'lower',
      }),
    ],
  };
}
