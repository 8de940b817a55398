// Child process of the memory case, in one of three roles; each reports to the parent over IPC and exits.
//
//   <redis url> <key prefix> <key> <input path> <output path>
//       streams a file from disk into Redis and back to disk while sampling its own RSS every 10 ms
//   --one-write <redis url> <key prefix> <key> <size>
//       a buffer of `size` bytes in one `ws.end(buffer)`: the RSS before the write, and its peak
//       during it (sampled every 10 ms)
//   --slow-reader <redis url> <key prefix> <key> <consumer> <busy ms per MiB>
//       reads the file as `consumer`, keeping its CPU busy that long per MiB it takes (a receiver
//       that processes what it reads: its event loop blocked, Redis holds its replies meanwhile)

import { once } from 'node:events';
import { createReadStream, createWriteStream, readFileSync, statSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { finished, pipeline } from 'node:stream/promises';
import { Redis } from 'ioredis';
import { createRedisReadStream, createRedisWriteStream, remove } from 'redis-file-stream';

// Never outlive the benchmark: the IPC channel closes when the parent dies.
const orphaned = () => process.exit(2);
process.on('disconnect', orphaned);

const MiB = 1024 * 1024;
const rss = () => process.memoryUsage.rss();
const role = process.argv[2]?.startsWith('--') ? process.argv[2] : '--copy';
if (role === '--one-write') await oneWrite(...process.argv.slice(3));
else if (role === '--slow-reader') await slowReader(...process.argv.slice(3));
else await copy(...process.argv.slice(2));

/** The default role: disk -> Redis -> disk. */
async function copy(url, prefix, key, input, output) {
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
}

/** One `ws.end(buffer)` of `size` bytes: how much the process grows beyond the buffer it was given. */
async function oneWrite(url, prefix, key, size) {
  const redis = new Redis(url);
  redis.on('error', () => {});
  try {
    await redis.ping();
    // Every page of the buffer touched before the first sample: the buffer is the caller's.
    const buffer = Buffer.allocUnsafe(Number(size));
    for (let off = 0; off < buffer.length; off += MiB) buffer.fill(off / MiB, off, Math.min(buffer.length, off + MiB));
    const ws = createRedisWriteStream(redis, key, { prefix });
    await once(ws, 'ready');
    const before = rss();
    let peak = before;
    const timer = setInterval(() => (peak = Math.max(peak, rss())), 10);
    const t0 = performance.now();
    ws.end(buffer);
    await finished(ws);
    const ms = performance.now() - t0;
    clearInterval(timer);
    peak = Math.max(peak, rss());
    await remove(redis, key, { prefix });
    report({ ok: true, size: buffer.length, beforeRssMiB: before / MiB, peakRssMiB: peak / MiB, writeMs: ms });
  } catch (err) {
    process.exitCode = 1;
    report({ ok: false, error: String(err?.stack ?? err) });
  } finally {
    redis.disconnect();
  }
}

/** Read the file as `consumer`, busy `busyMsPerMiB` per MiB taken. */
async function slowReader(url, prefix, key, consumer, busyMsPerMiB) {
  const redis = new Redis(url);
  redis.on('error', () => {});
  try {
    await redis.ping();
    const rs = createRedisReadStream(redis, key, { prefix, consumer, waitForCreate: 60_000 });
    process.send({ ready: true });
    let bytes = 0;
    for await (const chunk of rs) {
      bytes += chunk.length;
      for (const until = performance.now() + (chunk.length / MiB) * Number(busyMsPerMiB); performance.now() < until; );
    }
    report({ ok: true, bytes });
  } catch (err) {
    process.exitCode = 1;
    report({ ok: false, error: String(err?.stack ?? err) });
  } finally {
    redis.disconnect();
  }
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
