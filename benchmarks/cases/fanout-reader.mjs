// Worker thread of the fan-out case: a following reader with a Redis connection of its own, kept
// for the whole case so that its JIT is warm after the warm-up run (a fresh worker per run spends
// most of a short run compiling: measured at 2 to 3 times the CPU per MiB of a warm one).
//
// workerData: { url, prefix }. Messages in: { job, key }. Messages out, per job: { job, ready }
// once its stream is open and waiting for the file, then { job, done, bytes, end } (end: absolute
// ms, performance.timeOrigin + performance.now()) or { job, error }.

import { performance } from 'node:perf_hooks';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parentPort, workerData } from 'node:worker_threads';
import { Redis } from 'ioredis';
import { createRedisReadStream } from 'redis-file-stream';

const { url, prefix } = workerData;
const redis = new Redis(url);
redis.on('error', () => {}); // failures surface through the commands; no noise when the run is stopped

parentPort.on('message', async ({ job, key }) => {
  try {
    let bytes = 0;
    const sink = new Writable({
      highWaterMark: 1024 * 1024,
      write(chunk, _enc, cb) {
        bytes += chunk.length;
        cb();
      },
    });
    const reader = createRedisReadStream(redis, key, { prefix, waitForCreate: 30_000 });
    parentPort.postMessage({ job, ready: true });
    await pipeline(reader, sink);
    parentPort.postMessage({ job, done: true, bytes, end: performance.timeOrigin + performance.now() });
  } catch (err) {
    parentPort.postMessage({ job, error: String(err?.stack ?? err) });
  }
});

await redis.ping();
parentPort.postMessage({ started: true });
