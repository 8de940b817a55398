// Case 5, fan-out: one writer (main thread) and 8 following readers (worker threads, one Redis
// connection each) against one writer and a single reader: aggregate MiB/s delivered to readers.
// The 8 workers are started once for the case and reused by every run (the single reader is one
// of them), so that both contenders run warm code after the warm-up run.

import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import { trackWorker } from '../lib/cleanup.mjs';
import { alternate, compare, MiB, medians, poolSource, redisCpuMs, round } from '../lib/util.mjs';

export const id = 'fanout';
export const title = 'Fan-out: 1 writer, 8 following readers';

const READER = new URL('./fanout-reader.mjs', import.meta.url);

/** A pool of reader threads. `read(n, key)` has the first n of them follow `key`. */
async function startPool(size, workerData) {
  let nextJob = 0;
  const jobs = new Map(); // job id -> { ready, done, fail }
  const workers = [];
  let broken;
  const started = [];
  for (let i = 0; i < size; i++) {
    const w = new Worker(READER, { workerData });
    trackWorker(w);
    workers.push(w);
    started.push(
      new Promise((resolve, reject) => {
        w.on('message', (m) => {
          if (m.started) return resolve();
          const j = jobs.get(m.job);
          if (!j) return;
          if (m.ready) j.ready();
          else if (m.done) j.done(m);
          else if (m.error) j.fail(new Error(`reader ${i}: ${m.error}`));
        });
        const die = (err) => {
          broken = err;
          reject(err);
          for (const j of jobs.values()) j.fail(err);
        };
        w.once('error', die);
        w.once('exit', (code) => die(new Error(`reader ${i} exited (${code})`)));
      }),
    );
  }
  await Promise.all(started);
  return {
    async read(n, key) {
      if (broken) throw broken;
      const runs = workers.slice(0, n).map((w) => {
        const job = nextJob++;
        let ready;
        const readyP = new Promise((r) => (ready = r));
        const result = new Promise((done, fail) => jobs.set(job, { ready, done, fail }));
        result.catch(() => {}).finally(() => jobs.delete(job));
        w.postMessage({ job, key });
        return { readyP, result };
      });
      await Promise.race([Promise.all(runs.map((r) => r.readyP)), ...runs.map((r) => r.result)]);
      return runs.map((r) => r.result);
    },
    stop: () => Promise.all(workers.map((w) => w.terminate())),
  };
}

export async function run(ctx) {
  const { redis, pkg, pool } = ctx;
  const size = ctx.quick ? 8 * MiB : 128 * MiB;
  const reps = ctx.reps(5, 1);
  const fanout = 8;
  const readers = await startPool(fanout, { url: ctx.url, prefix: ctx.prefix });

  const contender = (n) => ({
    name: n === 1 ? 'single reader' : `${n} readers`,
    run: async (rep) => {
      const key = `fanout-${n}-${rep}`;
      const results = await readers.read(n, key);
      await sleep(200); // the readers are now blocked, waiting for the file
      const load1 = round(os.loadavg()[0], 2);
      const r0 = await redisCpuMs(redis);
      const c0 = process.cpuUsage();
      const start = performance.timeOrigin + performance.now();
      await pipeline(poolSource(pool, size), pkg.createRedisWriteStream(redis, key, { prefix: ctx.prefix }));
      const writerEnd = performance.timeOrigin + performance.now();
      const done = await Promise.all(results);
      const end = Math.max(...done.map((d) => d.end));
      const c = process.cpuUsage(c0);
      const redisCpu = (await redisCpuMs(redis)) - r0;
      const bytes = done.reduce((a, d) => a + d.bytes, 0);
      if (bytes !== n * size) throw new Error(`readers got ${bytes} bytes, expected ${n * size}`);
      const seconds = (end - start) / 1000;
      return {
        aggregateMiBps: round(bytes / MiB / seconds, 1),
        perReaderMiBps: round(size / MiB / seconds, 1),
        writerMiBps: round(size / MiB / ((writerEnd - start) / 1000), 1),
        ms: round(end - start, 1),
        lagAfterWriterMs: round(end - writerEnd, 1),
        // This process with its reader threads, and the Redis server: CPU ms during the run.
        nodeCpuMs: round((c.user + c.system) / 1000, 1),
        redisCpuMs: round(redisCpu, 1),
        load1,
      };
    },
  });

  let runs;
  try {
    runs = await alternate(reps, [contender(fanout), contender(1)], {
      after: () => ctx.dropKeys(),
      log: ctx.log,
      warmup: ctx.warmup,
    });
  } finally {
    await readers.stop();
  }
  return {
    id,
    title,
    description:
      `A ${size / MiB} MiB file written from memory by createRedisWriteStream (defaults) in the main thread while ` +
      `N following readers (createRedisReadStream, defaults, started first with waitForCreate) run in worker ` +
      `threads with a connection each; the ${fanout} threads are started once and reused by every run (the single ` +
      `reader is one of them), warm after the warm-up run. Aggregate = bytes delivered to all readers / time from ` +
      `the writer's start to the last reader's end. Node CPU counts this process with its reader threads.`,
    params: { size, readers: fanout, reps },
    unit: 'MiB/s',
    better: 'higher',
    mainField: 'aggregateMiBps',
    contenders: Object.entries(runs).map(([name, r]) => ({ name, runs: r, median: medians(r) })),
    comparisons: [
      compare({
        id: 'fanout-aggregate',
        label: `fan-out aggregate, ${fanout} readers vs 1`,
        runs,
        contender: `${fanout} readers`,
        baseline: 'single reader',
        field: 'aggregateMiBps',
        target: { op: '>=', value: 2, on: 'ratio', text: `${fanout} readers >= 2x single reader aggregate` },
      }),
    ],
  };
}
