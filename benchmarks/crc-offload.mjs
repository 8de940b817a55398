#!/usr/bin/env node
// Would a worker thread computing the CRC-32 bring a checked read within 0.9x of the raw loop?
// This experiment, not used by the package, times the bare raw XRANGE loop (COUNT 16, one request
// at a time, 256 KiB entries) three ways, alternating:
//   none    the Buffers counted and dropped (the read ceiling)
//   main    the CRC-32 of every Buffer on the main thread, as the package does
//   worker  every batch copied into a SharedArrayBuffer ring and its CRC-32 computed by a worker
//           thread (one message per batch; the main thread waits only when the ring is full)
// and checks that both CRCs agree. The CRC-32 is the package's: `@node-rs/crc32` where it loads,
// else `node:zlib` (the same values); the output names it. Moving the reply Buffers to the worker
// instead of copying them (ioredis 6's can be transferred, iovalkey's cannot) was tried in the
// reader and made the bench's read slower: docs/benchmarks.md, "The checked read on loopback".
// No stream, no other check: if the worker does not reach 0.9x here, the package, which also
// hands every Buffer to a Readable, cannot either.
//
// Usage: node benchmarks/crc-offload.mjs [--size MiB] [--reps N]   (REDIS_URL, or a private server)

import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { crc32 as zlibCrc32 } from 'node:zlib';
import { Redis } from 'ioredis';
import { startRedis } from '../scripts/lib/redis-launcher.mjs';
import { runScript, trackServer, trackWorker } from './lib/cleanup.mjs';
import { KiB, MiB, median, randomPool, rawXadd, round, settle } from './lib/util.mjs';

const { values: args } = parseArgs({
  options: { size: { type: 'string', default: '256' }, reps: { type: 'string', default: '9' } },
});
const size = Number(args.size) * MiB;
if (!(size > 0) || !(Number(args.reps) >= 1)) throw new Error('--size and --reps take positive numbers');
const COUNT = 16;
const RING = 2 * COUNT * 256 * KiB;

// The package's choice: the native CRC-32 where its optional dependency loads.
const NATIVE = await import('@node-rs/crc32').catch(() => undefined);
const crc32 = NATIVE?.crc32 ?? zlibCrc32;
const CRC_NAME = NATIVE ? '@node-rs/crc32' : 'zlib';

// workerData: the native module's path, or null for zlib's.
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { crc32 } = require(workerData ?? 'node:zlib');
let crc = 0;
let ring;
parentPort.on('message', (m) => {
  if (m.ring) ring = Buffer.from(m.ring);
  else if (m.reset) crc = 0;
  else if (m.final) parentPort.postMessage({ crc });
  else {
    for (const [offset, length] of m.parts) crc = crc32(ring.subarray(offset, offset + length), crc);
    parentPort.postMessage({ done: m.seq });
  }
});`;

async function main() {
  const url = process.env.REDIS_URL ?? trackServer(await startRedis()).url;
  const redis = new Redis(url);
  const key = `rfs-crc-offload:${randomBytes(4).toString('hex')}`;
  await rawXadd(redis, key, randomPool(), size, 256 * KiB, 16);

  const shared = new SharedArrayBuffer(RING);
  const ring = Buffer.from(shared);
  const worker = new Worker(WORKER, {
    eval: true,
    workerData: NATIVE ? fileURLToPath(import.meta.resolve('@node-rs/crc32')) : null,
  });
  trackWorker(worker);
  worker.postMessage({ ring: shared });
  let doneSeq = -1;
  const waiting = new Map();
  let onFinal;
  worker.on('message', (m) => {
    if (m.crc !== undefined) return onFinal(m.crc);
    doneSeq = m.done;
    for (const [seq, resolve] of waiting) {
      if (seq <= doneSeq) {
        waiting.delete(seq);
        resolve();
      }
    }
  });
  const until = (seq) => (seq <= doneSeq ? undefined : new Promise((resolve) => waiting.set(seq, resolve)));

  async function read(mode) {
    let from = '-';
    let bytes = 0;
    let crc = 0;
    let offset = 0;
    let seq = 0;
    // Batches in the ring: [seq, start, end]; a region is written again only once its batch is done.
    const inRing = [];
    if (mode === 'worker') {
      worker.postMessage({ reset: true });
      doneSeq = -1;
    }
    for (;;) {
      const entries = await redis.xrangeBuffer(key, from, '+', 'COUNT', COUNT);
      if (mode === 'worker') {
        const need = entries.reduce((n, [, f]) => n + f[1].length, 0);
        if (offset + need > RING) offset = 0;
        const busy = inRing.filter(([s, a, b]) => s > doneSeq && a < offset + need && b > offset).map(([s]) => s);
        if (busy.length) await until(Math.max(...busy));
        const parts = [];
        for (const [, fields] of entries) {
          fields[1].copy(ring, offset);
          parts.push([offset, fields[1].length]);
          offset += fields[1].length;
          bytes += fields[1].length;
        }
        inRing.push([seq, offset - need, offset]);
        if (inRing.length > 4) inRing.shift();
        worker.postMessage({ parts, seq: seq++ });
      } else {
        for (const [, fields] of entries) {
          bytes += fields[1].length;
          if (mode === 'main') crc = crc32(fields[1], crc);
        }
      }
      if (entries.length < COUNT) break;
      from = `(${entries[entries.length - 1][0].toString()}`;
    }
    if (mode === 'worker') {
      crc = await new Promise((resolve) => {
        onFinal = resolve;
        worker.postMessage({ final: true });
      });
    }
    if (bytes !== size) throw new Error(`${mode}: read ${bytes} bytes, expected ${size}`);
    return crc;
  }

  const modes = ['none', 'main', 'worker'];
  const [, main, offloaded] = [await read('none'), await read('main'), await read('worker')];
  if (main !== offloaded) throw new Error(`the worker's CRC-32 ${offloaded} differs from the main thread's ${main}`);
  const runs = Object.fromEntries(modes.map((m) => [m, { ms: [], cpuMs: [] }]));
  const reps = Number(args.reps);
  for (let rep = 0; rep < reps; rep++) {
    for (let j = 0; j < modes.length; j++) {
      const mode = modes[(rep + j) % modes.length];
      await settle();
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      await read(mode);
      runs[mode].ms.push(performance.now() - t0);
      const c = process.cpuUsage(c0);
      runs[mode].cpuMs.push((c.user + c.system) / 1000);
    }
  }
  const mibps = (ms) => size / MiB / (ms / 1000);
  console.log(`CRC-32: ${CRC_NAME}`);
  for (const mode of modes) {
    const r = runs[mode];
    console.log(
      `${mode.padEnd(6)} ${round(mibps(median(r.ms)), 0)} MiB/s, Node CPU (all threads) ${round(median(r.cpuMs), 0)} ms; runs ${r.ms.map((ms) => round(mibps(ms), 0)).join(', ')}`,
    );
  }
  for (const mode of ['main', 'worker']) {
    const paired = runs[mode].ms.map((ms, i) => runs.none.ms[i] / ms);
    console.log(
      `${mode} vs none: ${round(median(runs.none.ms) / median(runs[mode].ms), 3)}x (per pair of runs: ${paired.map((x) => round(x, 2)).join(', ')})`,
    );
  }
  await redis.del(key);
  redis.disconnect();
}

await runScript('crc-offload', main);
