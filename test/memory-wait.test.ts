/**
 * A writer held back by `maxRedisMemory` says so: the write stream's `memoryWait` event and
 * sendFiles' `onMemoryWait`, with what Redis uses, the limit and what the next chunk needs, until
 * memory is freed; a listener that throws ends the upload with its exception.
 */
import { once } from 'node:events';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import {
  createRedisReadStream,
  createRedisWriteStream,
  type MemoryWait,
  removeChannel,
  sendFiles,
  stat,
} from '../src/index.js';
import { entryCost } from '../src/memory-guard.js';
import { blockedIn, connectSubject, subject, uniqueKey } from './helpers/clients.js';
import { eventually } from './helpers/eventually.js';
import { channelLogOf } from './helpers/keys.js';
import { useOwnServer } from './helpers/own-server.js';
import { bytes, collect, sha256 } from './helpers/streams.js';

const KiB = 1024;
const MiB = 1024 * KiB;

const own = useOwnServer();

async function usedMemory(): Promise<number> {
  return Number(/^used_memory:(\d+)/m.exec(await own.admin.info('memory'))![1]);
}

/** A file nobody has read yet, that keeps Redis `bytes` above where it was: freed by reading it as its one consumer. */
async function filler(key: string, size: number): Promise<() => Promise<void>> {
  await pipeline(Readable.from([bytes(size, 91)]), createRedisWriteStream(subject(own.admin), key, { consumers: 1 }));
  return async () => {
    await collect(createRedisReadStream(subject(own.admin), key, { consumer: 'only' }));
  };
}

describe('memoryWait', () => {
  it('a held-back writer tells what Redis uses, the limit and what it needs, at every reading, until memory is freed', async () => {
    const free = await filler(uniqueKey('filler'), 8 * MiB);
    const limit = (await usedMemory()) - 4 * MiB;
    const chunkSize = 64 * KiB;
    const data = bytes(MiB, 92);
    const key = uniqueKey('held');
    const writer = createRedisWriteStream(connectSubject(own.server.url, { connectionName: key }), key, {
      maxRedisMemory: limit,
      chunkSize,
    });
    const waits: MemoryWait[] = [];
    writer.on('memoryWait', (wait: MemoryWait) => waits.push(wait));
    const writing = pipeline(Readable.from([data]), writer);
    // Told when the wait begins, and again at the reading after the blocking read that nothing woke.
    await eventually(() => waits.length >= 2, 'two readings of a held-back writer');
    const [first, second] = waits as [MemoryWait, MemoryWait];
    expect(first.limit).toBe(limit);
    expect(first.usedMemory).toBeGreaterThan(limit);
    // The chunk as Redis stores it, the chunk Redis takes in next, and one consumer's pending reply.
    expect(first.needed).toBe(entryCost(chunkSize) * 2 + ((256 * KiB) / chunkSize) * entryCost(chunkSize));
    expect(first.usedMemory + first.needed).toBeGreaterThan(first.limit);
    expect(second.waitedMs).toBeGreaterThan(first.waitedMs);
    expect(writer.committedBytes).toBeLessThan(data.length);
    await free();
    await writing;
    expect(sha256(await collect(createRedisReadStream(subject(own.admin), key)))).toBe(sha256(data));
    expect(await blockedIn(own.admin, key)).toBe(0);
  });

  it('a listener that throws destroys the writer with its exception; the file is aborted and the guard closed', async () => {
    const key = uniqueKey('throws');
    // A limit of one byte: Redis never has room.
    const writer = createRedisWriteStream(connectSubject(own.server.url, { connectionName: key }), key, {
      maxRedisMemory: 1,
    });
    const thrown = new Error('stop waiting');
    writer.on('memoryWait', () => {
      throw thrown;
    });
    writer.end(bytes(1000, 93));
    const [err] = (await once(writer, 'error')) as [Error];
    expect(err).toBe(thrown);
    await eventually(async () => (await stat(subject(own.admin), key))?.state === 'aborted', 'the file to be aborted');
    expect(await blockedIn(own.admin, key)).toBe(0);
  });
});

describe('sendFiles onMemoryWait', () => {
  it('is told of the file held back; one that throws rejects sendFiles and ends that upload', async () => {
    const channel = uniqueKey('mem-chan');
    const files = [{ name: 'a.bin', stream: Readable.from([bytes(1000, 94)]), size: 1000 }];
    const told: { file: string; key: string; size: number | undefined; limit: number }[] = [];
    const stop = new Error('enough');
    const sending = sendFiles(subject(own.admin), channel, files, {
      maxRedisMemory: 1,
      onMemoryWait: (file, wait) => {
        told.push({ file: file.name, key: file.key, size: file.size, limit: wait.limit });
        throw stop;
      },
    });
    await expect(sending).rejects.toBe(stop);
    expect(told).toHaveLength(1);
    expect(told[0]).toMatchObject({ file: 'a.bin', size: 1000, limit: 1 });
    // Aborted once announced; removed when the wait came before the announcement.
    expect(['aborted', undefined]).toContain((await stat(subject(own.admin), told[0]!.key))?.state);
    expect(await removeChannel(subject(own.admin), channel)).toBe(true);
  });

  it('a non-function onMemoryWait rejects before anything is sent', async () => {
    const channel = uniqueKey('mem-bad');
    const sending = sendFiles(subject(own.admin), channel, ['/nonexistent'], {
      // @ts-expect-error: not a function
      onMemoryWait: 'loud',
    });
    await expect(sending).rejects.toMatchObject({ name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
    expect(await own.admin.exists(channelLogOf(channel))).toBe(0);
  });
});
