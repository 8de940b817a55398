/**
 * A receiver process killed (SIGKILL) in the middle of a file and started again as the same
 * consumer: it resumes at the first file it had not acknowledged. Without a memory limit, from that
 * file's beginning; under a `maxRedisMemory` smaller than the file, from the first chunk still held,
 * which lies at or before what it had consumed (positions count what the application took out of
 * the stream, not what was fetched), and the received file's `offset` says so. A gzip file cannot
 * be decompressed from the middle: that file fails clearly, and the receiver goes on.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { usedMemory } from '../scripts/lib/used-memory.mjs';
import { stat } from '../src/index.js';
import { closeAll, connect, subject } from './helpers/clients.js';
import { eventually } from './helpers/eventually.js';
import { fileKeysOf, filesPattern } from './helpers/keys.js';
import { type FixtureProcess, finish, killAll, receiver, sender } from './helpers/processes.js';
import { type RedisServer, startRedis } from './helpers/redis-server.js';
import { bytes } from './helpers/streams.js';

const MiB = 1024 * 1024;
const CHUNK = 256 * 1024;

let server: RedisServer;
let admin: Redis;
let dir: string;
beforeAll(async () => {
  server = await startRedis();
  admin = connect(server.url);
  dir = mkdtempSync(join(tmpdir(), 'rfs-receiver-crash-'));
});
afterAll(async () => {
  killAll();
  await closeAll();
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

function file(name: string, data: Buffer): string {
  const path = join(dir, name);
  writeFileSync(path, data);
  return path;
}

/** Kill the receiver once it paused in the middle of its file; what it had consumed by then. */
async function killWhenPaused(r: FixtureProcess): Promise<number> {
  const paused = await r.waitFor((e) => e.event === 'paused', 'the pause');
  await r.kill();
  return paused.consumed as number;
}

describe('a receiver process killed in the middle of a file', () => {
  it('without a memory limit, restarts that file from its beginning, and not an earlier one', async () => {
    const channel = 'restart';
    const [a, b, c] = [bytes(200_000, 1), bytes(3 * MiB, 2), bytes(1000, 3)];
    const r1 = receiver(server.url, channel, 'r1', { pause: { file: 'b.bin', after: MiB } });
    const r2 = receiver(server.url, channel, 'r2');
    const send = sender(server.url, channel, {
      files: [file('a.bin', a), file('b.bin', b), file('c.bin', c)].map((path) => ({ path })),
      send: { consumers: 2, chunkSize: 64 * 1024 },
      close: true,
    });
    const consumed = await killWhenPaused(r1);
    expect(consumed).toBeGreaterThanOrEqual(MiB);
    expect(r1.all('file').map((f) => f.name)).toEqual(['a.bin']);
    const again = receiver(server.url, channel, 'r1');
    const files = await finish(again);
    expect(files.map((f) => [f.name, f.offset, f.sha256])).toEqual([
      ['b.bin', 0, sha256(b)],
      ['c.bin', 0, sha256(c)],
    ]);
    expect((await finish(r2)).map((f) => f.sha256)).toEqual([a, b, c].map(sha256));
    expect((await send.exited).code).toBe(0);
    expect(await admin.keys(filesPattern(`${channel}/*`))).toEqual([]);
  }, 120_000);

  it('under a memory limit smaller than the file, resumes at the first chunk still held, at or before what it had consumed', async () => {
    const channel = 'trimmed';
    const data = bytes(16 * MiB, 4);
    const after = bytes(5000, 5);
    // A limit a quarter of the file: the sender goes on only as far as both receivers let it.
    const limit = (await usedMemory(admin)) + 4 * MiB;
    const r1 = receiver(server.url, channel, 'r1', { pause: { file: 'big.bin', after: 5 * MiB } });
    const r2 = receiver(server.url, channel, 'r2');
    const send = sender(server.url, channel, {
      files: [file('big.bin', data), file('after.bin', after)].map((path) => ({ path })),
      send: { consumers: 2, chunkSize: CHUNK, maxRedisMemory: limit },
      close: true,
    });
    const consumed = await killWhenPaused(r1);
    const { key } = await send.waitFor((e) => e.event === 'started' && e.name === 'big.bin');
    const { meta } = fileKeysOf(key as string);
    // r2 passes the point where r1 stopped: every chunk before r1's position is trimmed.
    await eventually(
      async () => {
        const [trimmed, position] = await admin.hmget(meta, 'trimmed', 'pos:r1');
        return Number(trimmed) > 0 && trimmed === position;
      },
      'r2 to pass r1 and the chunks both consumed to be trimmed',
      60_000,
    );
    const trimmed = Number(await admin.hget(meta, 'trimmed'));
    // The sender is held back by the dead receiver: the file cannot be complete without it.
    expect((await stat(subject(admin), key as string)).state).toBe('writing');
    expect(trimmed * CHUNK).toBeLessThanOrEqual(consumed);

    const again = receiver(server.url, channel, 'r1');
    const files = await finish(again);
    expect(files.map((f) => [f.name, f.offset, f.bytes, f.sha256])).toEqual([
      ['big.bin', trimmed * CHUNK, data.length - trimmed * CHUNK, sha256(data.subarray(trimmed * CHUNK))],
      ['after.bin', 0, after.length, sha256(after)],
    ]);
    expect((await finish(r2)).map((f) => [f.offset, f.sha256])).toEqual([
      [0, sha256(data)],
      [0, sha256(after)],
    ]);
    expect((await send.exited).code).toBe(0);
    expect(await admin.keys(filesPattern(`${channel}/*`))).toEqual([]);
  }, 120_000);

  it('a gzip file whose head was trimmed fails clearly for a decompressing receiver, which goes on with the next file', async () => {
    const channel = 'trimmed-gz';
    // Random bytes do not compress: the stored file is larger than the limit.
    const gz = gzipSync(bytes(8 * MiB, 6), { level: 1 });
    const after = Buffer.from('still here\n');
    const limit = (await usedMemory(admin)) + 3 * MiB;
    const r1 = receiver(server.url, channel, 'r1', { decompress: true, pause: { file: 'big.bin.gz', after: 3 * MiB } });
    const r2 = receiver(server.url, channel, 'r2', { decompress: true });
    const send = sender(server.url, channel, {
      files: [file('big.bin.gz', gz), file('after.txt', after)].map((path) => ({ path })),
      send: { consumers: 2, chunkSize: CHUNK, maxRedisMemory: limit },
      close: true,
    });
    await killWhenPaused(r1);
    const { key } = await send.waitFor((e) => e.event === 'started' && e.name === 'big.bin.gz');
    const { meta } = fileKeysOf(key as string);
    await eventually(
      async () => {
        const [trimmed, position] = await admin.hmget(meta, 'trimmed', 'pos:r1');
        return Number(trimmed) > 0 && trimmed === position;
      },
      'the chunks both receivers consumed to be trimmed',
      60_000,
    );
    const trimmed = Number(await admin.hget(meta, 'trimmed'));

    const files = await finish(receiver(server.url, channel, 'r1', { decompress: true }));
    expect(files.map((f) => [f.name, f.offset, f.contentEncoding, f.error ?? f.sha256])).toEqual([
      ['big.bin.gz', trimmed * CHUNK, 'gzip', 'ERR_REDIS_FILE_NOT_FOUND'],
      ['after.txt', 0, 'identity', sha256(after)],
    ]);
    expect((await finish(r2)).map((f) => f.error ?? f.sha256)).toEqual([sha256(bytes(8 * MiB, 6)), sha256(after)]);
    expect((await send.exited).code).toBe(0);
    expect(await admin.keys(filesPattern(`${channel}/*`))).toEqual([]);
  }, 120_000);
});
