/**
 * The memory guard holds: with receivers in processes of their own that are slower than the
 * sender (their CPU busy with what they read, so that Redis holds their replies meanwhile), Redis's
 * `used_memory`, sampled every few milliseconds, never exceeds the sender's `maxRedisMemory` by more
 * than one chunk as Redis stores it. And the guard's estimate of what a chunk costs in Redis is
 * never below what Redis really stores for it.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sampleUsedMemory, usedMemory } from '../scripts/lib/used-memory.mjs';
import { removeChannel } from '../src/index.js';
import { entryCost, guardedBatch, writerGuard } from '../src/memory-guard.js';
import { portOf } from '../src/redis/port.js';
import { closeAll, connect, subject } from './helpers/clients.js';
import { finish, killAll, receiver, sender } from './helpers/processes.js';
import { type RedisServer, startRedis } from './helpers/redis-server.js';
import { bytes, sha256 } from './helpers/streams.js';

const MiB = 1024 * 1024;
const CHUNK = 256 * 1024;
/**
 * Beyond the limit, one chunk may be on its way into Redis, as Redis stores it: jemalloc rounds an
 * allocation up to its next size class (classes are a quarter of a power of two apart, so a quarter
 * chunk more at most), and a stream entry adds its fields and its node in the radix tree (under
 * 1 KiB). The same allowance is documented in docs/distribution.md.
 */
const ALLOWANCE = CHUNK + CHUNK / 4 + 1024;

let server: RedisServer;
let admin: Redis;
let dir: string;
beforeAll(async () => {
  // A maxmemory far above what the test uses: nothing is evicted or refused.
  server = await startRedis({ args: ['--maxmemory', '1gb', '--maxmemory-policy', 'noeviction'] });
  admin = connect(server.url);
  dir = mkdtempSync(join(tmpdir(), 'rfs-memory-peak-'));
});
afterAll(async () => {
  killAll();
  await closeAll();
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('what a chunk costs in Redis', () => {
  it('the guard counts a chunk at no less than Redis stores it, and at most a quarter more and 1 KiB', async () => {
    for (const size of [4096, 65_536, 100_000, CHUNK, MiB]) {
      const key = `cost-${size}`;
      await admin.xadd(key, '1-0', 'h', 'x');
      const before = Number(await admin.memory('USAGE', key, 'SAMPLES', 0));
      const n = 8;
      for (let i = 0; i < n; i++) await admin.xadd(key, `${i + 2}-1`, 'data', bytes(size, i), 'crc', '0123abcd');
      const perEntry = (Number(await admin.memory('USAGE', key, 'SAMPLES', 0)) - before) / n;
      expect(entryCost(size)).toBeGreaterThanOrEqual(perEntry);
      expect(entryCost(size)).toBeLessThanOrEqual(size + size / 4 + 1024);
      await admin.del(key);
    }
  });
});

describe("the readers' reserve", () => {
  it("is one batch of chunks per consumer, of the file's own chunk size once a resume says which", () => {
    const opts = { maxRedisMemory: 64 * MiB, consumers: ['a', 'b', 'c'], prefix: 'rfs:', chunkSize: 64 * 1024 };
    const guard = writerGuard(portOf(subject(admin)), opts, 'rfs:{x}:meta', () => ({
      chunks: 'rfs:{x}:chunks:0',
      gen: '0',
    }))!;
    expect(guard.reserve).toBe(3 * guardedBatch(64 * 1024) * entryCost(64 * 1024));
    // A resumed file keeps the chunk size it was written with.
    guard.useChunkSize(MiB);
    expect(guard.reserve).toBe(3 * guardedBatch(MiB) * entryCost(MiB));
    expect(guardedBatch(MiB)).toBe(1);
    guard.close();
  });
});

describe('what the guard admits on a reading', () => {
  it("leaves room for the readers' reserve and for the query buffer Redis keeps for the next chunk", async () => {
    const chunkSize = 256 * 1024;
    const limit = 64 * MiB;
    const opts = { maxRedisMemory: limit, consumers: ['a', 'b'], prefix: 'rfs:', chunkSize };
    const guard = writerGuard(portOf(subject(admin)), opts, 'rfs:{x}:meta', () => ({
      chunks: 'rfs:{x}:chunks:0',
      gen: '0',
    }))!;
    const used = 40 * MiB;
    guard.note(used);
    const cost = entryCost(chunkSize);
    let admitted = 0;
    let held: true | Promise<void>;
    while ((held = guard.admit(chunkSize)) === true) admitted++;
    // Every chunk admitted, the reserve, and one chunk more (Redis's query buffer for the next
    // one) fit under the limit; one chunk more would not.
    expect(admitted).toBe(Math.floor((limit - used - guard.reserve - cost) / cost));
    guard.close();
    await held;
  });
});

describe('maxRedisMemory with slow receivers in other processes', () => {
  it('used_memory never exceeds the limit by more than one chunk', async () => {
    const limit = (await usedMemory(admin)) + 6 * MiB;
    const data = bytes(32 * MiB, 91);
    const path = join(dir, 'big.bin');
    writeFileSync(path, data);
    const receivers = ['r1', 'r2'].map((consumer) => receiver(server.url, 'peak-chan', consumer, { busyMsPerMiB: 40 }));
    await Promise.all(receivers.map((r) => r.waitFor((e) => e.event === 'ready', 'ready')));
    const monitor = connect(server.url);
    // A sample of used_memory every 2 ms during the transfer.
    const sampler = sampleUsedMemory(monitor, 2);
    const send = sender(server.url, 'peak-chan', {
      files: [{ path }],
      send: { consumers: 2, maxRedisMemory: limit, chunkSize: CHUNK },
      close: true,
    });
    const results = await Promise.all(receivers.map((r) => finish(r)));
    const { peak, samples } = await sampler.stop();
    for (const files of results) expect(files.map((f) => f.sha256)).toEqual([sha256(data)]);
    expect((await send.exited).code).toBe(0);
    console.log(
      `memory peak: ${(peak / MiB).toFixed(2)} MiB vs limit ${(limit / MiB).toFixed(2)} MiB ` +
        `(${((peak - limit) / MiB).toFixed(2)} MiB over, allowance ${(ALLOWANCE / MiB).toFixed(2)} MiB, ${samples} samples)`,
    );
    expect(peak - limit).toBeLessThanOrEqual(ALLOWANCE);
    expect(await removeChannel(subject(admin), 'peak-chan')).toBe(true);
  });

  it('holds with several files on a channel, each stored whole before the next begins', async () => {
    // Receivers take the files in order: a later file stored early would take the room the one
    // before still needs, and the sender and the receivers would wait for each other.
    const limit = (await usedMemory(admin)) + 6 * MiB;
    const files = [0, 1, 2, 3].map((i) => {
      const data = bytes(6 * MiB, 100 + i);
      const path = join(dir, `many-${i}.bin`);
      writeFileSync(path, data);
      return { path, data };
    });
    const receivers = ['r1', 'r2'].map((consumer) => receiver(server.url, 'many-chan', consumer, { busyMsPerMiB: 40 }));
    await Promise.all(receivers.map((r) => r.waitFor((e) => e.event === 'ready', 'ready')));
    const monitor = connect(server.url);
    const sampler = sampleUsedMemory(monitor, 2);
    const send = sender(server.url, 'many-chan', {
      files: files.map(({ path }) => ({ path })),
      send: { consumers: 2, maxRedisMemory: limit, chunkSize: CHUNK },
      close: true,
    });
    const results = await Promise.all(receivers.map((r) => finish(r)));
    const { peak, samples } = await sampler.stop();
    for (const got of results) expect(got.map((f) => f.sha256)).toEqual(files.map((f) => sha256(f.data)));
    expect((await send.exited).code).toBe(0);
    console.log(
      `memory peak, 4 files: ${(peak / MiB).toFixed(2)} MiB vs limit ${(limit / MiB).toFixed(2)} MiB ` +
        `(${((peak - limit) / MiB).toFixed(2)} MiB over, allowance ${(ALLOWANCE / MiB).toFixed(2)} MiB, ${samples} samples)`,
    );
    expect(peak - limit).toBeLessThanOrEqual(ALLOWANCE);
    expect(await removeChannel(subject(admin), 'many-chan')).toBe(true);
  });
});
