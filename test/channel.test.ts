/**
 * Channels: many files to many receivers, in order, with positions kept in Redis.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { gzipSync } from 'node:zlib';
import type { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeChannel, lines, receiveFiles, removeChannel, sendFiles } from '../src/index.js';
import { closeAll, connectAny, uniqueKey } from './helpers/clients.js';
import { bytes, collect } from './helpers/streams.js';

let dir: string;
const redis = connectAny();

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'rfs-channel-'));
});
afterAll(async () => {
  await closeAll();
  rmSync(dir, { recursive: true, force: true });
});

function file(name: string, data: Buffer | string): string {
  const path = join(dir, name);
  writeFileSync(path, data);
  return path;
}

/** Receive until the channel closes; each file's bytes (or its error's code), acknowledged. */
async function receiveAll(client: Redis | Cluster, channel: string, consumer: string, options: { decompress?: boolean } = {}) {
  const got: { name: string; data?: Buffer; error?: string }[] = [];
  for await (const f of receiveFiles(client, channel, { consumer, ...options })) {
    try {
      got.push({ name: f.name, data: await collect(f.stream) });
    } catch (err) {
      got.push({ name: f.name, error: (err as { code?: string }).code ?? String(err) });
    }
    await f.ack();
  }
  return got;
}

describe('channels', () => {
  it('delivers every file in order to every receiver, then deletes each file once all acknowledged', async () => {
    const channel = uniqueKey('chan');
    const a = bytes(300_000, 71);
    const b = Buffer.from('b'.repeat(1000));
    const c = bytes(5, 72);
    const receivers = ['r1', 'r2', 'r3'].map((name) => receiveAll(connectAny(), channel, name));
    await sleep(100);
    const sent = await sendFiles(
      redis,
      channel,
      [file('a.bin', a), { name: 'b.txt', stream: Readable.from([b]) }, file('c.bin', c)],
      { consumers: 3, chunkSize: 16 * 1024 },
    );
    expect(sent.map((f) => [f.name, f.size])).toEqual([
      ['a.bin', a.length],
      ['b.txt', b.length],
      ['c.bin', c.length],
    ]);
    await closeChannel(redis, channel);
    for (const got of await Promise.all(receivers)) {
      expect(got.map((f) => f.name)).toEqual(['a.bin', 'b.txt', 'c.bin']);
      // Buffer.equals: a deep toEqual over 300 KB is slow.
      expect(got.map((f, i) => f.data!.equals([a, b, c][i]!))).toEqual([true, true, true]);
    }
    for (const f of sent) expect(await redis.exists(`rfs:{${f.key}}:meta`)).toBe(0);
    expect(await removeChannel(redis, channel)).toBe(true);
  });

  it('a receiver that restarts resumes at the first file it had not acknowledged', async () => {
    const channel = uniqueKey('restart');
    await sendFiles(redis, channel, ['one', 'two', 'three'].map((n) => ({ name: n, stream: Readable.from([Buffer.from(n)]) })));
    await closeChannel(redis, channel);
    const first: string[] = [];
    for await (const f of receiveFiles(redis, channel, { consumer: 'x' })) {
      first.push((await collect(f.stream)).toString());
      if (f.name === 'two') break; // crashed while processing 'two': never acknowledged
      await f.ack();
    }
    expect(first).toEqual(['one', 'two']);
    const again = await receiveAll(redis, channel, 'x');
    expect(again.map((f) => f.data!.toString())).toEqual(['two', 'three']);
  });

  it('a late receiver gets every file still held; a sender run again appends without resetting anyone', async () => {
    const channel = uniqueKey('late');
    const send = (names: string[]) => sendFiles(redis, channel, names.map((n) => ({ name: n, stream: Readable.from([Buffer.from(n)]) })));
    await send(['a', 'b']);
    await closeChannel(redis, channel);
    expect((await receiveAll(redis, channel, 'early')).map((f) => f.name)).toEqual(['a', 'b']);
    // The channel is used again after its close: that old close ends nobody any more.
    await send(['c']);
    await closeChannel(redis, channel);
    expect((await receiveAll(redis, channel, 'early')).map((f) => f.name)).toEqual(['c']);
    expect((await receiveAll(redis, channel, 'late')).map((f) => f.name)).toEqual(['a', 'b', 'c']);
  });

  it('a corrupt gzip among the files is an error for that file; the others are processed', async () => {
    const channel = uniqueKey('corrupt');
    const good = gzipSync('fine\n'.repeat(100));
    const bad = Buffer.from(gzipSync('broken\n'.repeat(100)));
    bad.fill(0x41, 12, 30);
    await sendFiles(redis, channel, [file('1.gz', good), file('2.gz', bad), file('3.gz', good)]);
    await closeChannel(redis, channel);
    const got = await receiveAll(redis, channel, 'z', { decompress: true });
    expect(got.map((f) => f.error ?? f.data!.toString().length)).toEqual([500, 'ERR_REDIS_FILE_DECODE', 500]);
  });

  it('the book test: files of 1, 10,000 and 100,000 lines, one gzipped, to 10 receivers', async () => {
    const channel = uniqueKey('book');
    const makeLog = (n: number, tag: string) => Array.from({ length: n }, (_, i) => `${tag},${i},2026-11-30`).join('\n') + '\n';
    const files = [file('one.log', makeLog(1, 'one')), file('ten.log', makeLog(10_000, 'ten')), file('hundred.log.gz', gzipSync(makeLog(100_000, 'hun')))];
    const receivers = Array.from({ length: 10 }, async (_, i) => {
      const counts: Record<string, number> = {};
      for await (const f of receiveFiles(connectAny(), channel, { consumer: `r${i}`, decompress: true })) {
        let n = 0;
        for await (const _line of f.stream.pipe(lines())) n++;
        counts[f.name] = n;
        await f.ack();
      }
      return counts;
    });
    await sleep(100);
    await sendFiles(redis, channel, files, { consumers: 10 });
    await closeChannel(redis, channel);
    for (const counts of await Promise.all(receivers)) {
      expect(counts).toEqual({ 'one.log': 1, 'ten.log': 10_000, 'hundred.log.gz': 100_000 });
    }
  });

  it('rejects bad arguments at the call', () => {
    expect(() => sendFiles(redis, '', [])).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    expect(() => sendFiles(redis, 'c', [42 as never])).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    expect(() => sendFiles(redis, 'c', [], { chunkSize: 0 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => receiveFiles(redis, 'c', {} as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => receiveFiles(redis, 'c', { consumer: 'x', idleTimeout: 0 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
  });
});

