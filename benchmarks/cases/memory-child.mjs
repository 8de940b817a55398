// Child process of the memory case: streams a file from disk into Redis and back to disk while
// sampling its own RSS every 10 ms, then reports to the parent over IPC and exits.
//
// argv: <redis url> <key prefix> <key> <input path> <output path>

import { createReadStream, createWriteStream, readFileSync, statSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { pipeline } from 'node:stream/promises';
import { Redis } from 'ioredis';
import { createRedisReadStream, createRedisWriteStream, remove } from 'redis-file-stream';

// Never outlive the benchmark: the IPC channel closes when the parent dies.
const orphaned = () => process.exit(2);
process.on('disconnect', orphaned);

const [url, prefix, key, input, output] = process.argv.slice(2);
const MiB = 1024 * 1024;
const rss = () => process.memoryUsage.rss();

let peak = 0;
let samples = 0;
const sample = () => {
  const r = rss();
  samples++;
  if (r > peak) peak = r;
};
const redis = new Redis(url);
redis.on('error', () => {}); // failures surface through the commands
try {
  await redis.ping();
  const startRss = rss();
  const timer = setInterval(sample, 10);
  timer.unref(); // a failure must not keep the process alive
  sample();
  const t0 = performance.now();
  await pipeline(createReadStream(input), createRedisWriteStream(redis, key, { prefix }));
  const t1 = performance.now();
  const peakWrite = peak;
  await pipeline(createRedisReadStream(redis, key, { prefix }), createWriteStream(output));
  const t2 = performance.now();
  sample();
  clearInterval(timer);
  const size = statSync(input).size;
  const copied = statSync(output).size;
  if (copied !== size) throw new Error(`copied ${copied} bytes of ${size}`);
  await remove(redis, key, { prefix });
  report({
    ok: true,
    size,
    startRssMiB: startRss / MiB,
    peakRssMiB: peak / MiB,
    peakWriteRssMiB: peakWrite / MiB,
    // The kernel's high-water mark of the RSS: a cross-check of the sampled peak, which can miss a
    // spike shorter than 10 ms.
    vmHwmMiB: highWaterMiB(),
    samples,
    writeMs: t1 - t0,
    readMs: t2 - t1,
  });
} catch (err) {
  process.exitCode = 1;
  report({ ok: false, error: String(err?.stack ?? err) });
} finally {
  redis.disconnect();
}

/**
 * VmHWM from /proc/self/status (Linux): the peak RSS of this process image. getrusage's maxRSS is
 * no use here: Linux carries it over from the parent across fork + exec, so a child forked from a
 * big parent reports the parent's peak.
 */
function highWaterMiB() {
  try {
    const kib = Number(/^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1]);
    if (Number.isFinite(kib)) return kib / 1024;
  } catch {
    // not Linux
  }
  return NaN;
}

function report(message) {
  process.off('disconnect', orphaned);
  process.send(message, () => process.disconnect());
}
