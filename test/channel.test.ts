/**
 * Channels: many files to many receivers, in order, with positions kept in Redis. The regression
 * tests run receivers (and senders) as processes of their own, as on separate machines; so do
 * book.test.ts (10 receivers), receiver-crash.test.ts and sender-crash.test.ts.
 */
import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import type { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AnnouncedFile,
  closeChannel,
  type RedisClient,
  receiveFiles,
  remove,
  removeChannel,
  sendFiles,
  stat,
} from '../src/index.js';
import {
  blockedIn,
  closeAll,
  connectAny,
  readyAnySubject,
  redisUrlForProcesses,
  subject,
  uniqueConnectionName,
  uniqueKey,
} from './helpers/clients.js';
import { eventually } from './helpers/eventually.js';
import { channelLogOf, fileKeysOf } from './helpers/keys.js';
import { finish, killAll, receiver, sender } from './helpers/processes.js';
import { bytes, collect } from './helpers/streams.js';

let dir: string;
const redis = connectAny();

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'rfs-channel-'));
});
afterAll(async () => {
  killAll();
  await closeAll();
  rmSync(dir, { recursive: true, force: true });
});

function file(name: string, data: Buffer | string): string {
  const path = join(dir, name);
  writeFileSync(path, data);
  return path;
}

/** Node's AbortError, as an aborted stream gives it: `reason` is the signal's. */
function abortError(reason: Error): Record<string, unknown> {
  return { name: 'AbortError', code: 'ABORT_ERR', cause: reason };
}

/** Receive until the channel closes; each file's bytes (or its error's code), acknowledged. */
async function receiveAll(
  client: Redis | Cluster | RedisClient,
  channel: string,
  consumer: string,
  options: { decompress?: boolean } = {},
) {
  const got: { name: string; data?: Buffer; error?: string }[] = [];
  for await (const f of receiveFiles(subject(client), channel, { consumer, ...options })) {
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
    const name = uniqueConnectionName('chan');
    const consumers = ['r1', 'r2', 'r3'];
    const clients = await Promise.all(consumers.map(() => readyAnySubject({ connectionName: name })));
    const receivers = consumers.map((consumer, i) => receiveAll(clients[i]!, channel, consumer));
    await eventually(
      async () => (await blockedIn(redis, name, 'xreadgroup')) === 3,
      'the three receivers to wait for a file',
    );
    const sent = await sendFiles(
      subject(redis),
      channel,
      [file('a.bin', a), { name: 'b.txt', stream: Readable.from([b]) }, file('c.bin', c)],
      { consumers: 3, chunkSize: 16 * 1024 },
    );
    expect(sent.map((f) => [f.name, f.size])).toEqual([
      ['a.bin', a.length],
      ['b.txt', b.length],
      ['c.bin', c.length],
    ]);
    await closeChannel(subject(redis), channel);
    for (const got of await Promise.all(receivers)) {
      expect(got.map((f) => f.name)).toEqual(['a.bin', 'b.txt', 'c.bin']);
      // Buffer.equals: a deep toEqual over 300 KB is slow.
      expect(got.map((f, i) => f.data!.equals([a, b, c][i]!))).toEqual([true, true, true]);
    }
    for (const f of sent) expect(await redis.exists(fileKeysOf(f.key).meta)).toBe(0);
    expect(await removeChannel(subject(redis), channel)).toBe(true);
  });

  it('a file gone before the receiver opens it is acknowledged, not yielded, and passed to onSkip', async () => {
    const channel = uniqueKey('gone');
    const sent = await sendFiles(subject(redis), channel, [
      { name: 'a.txt', stream: Readable.from([Buffer.from('a')]) },
      { name: 'b.txt', stream: Readable.from([Buffer.from('b')]) },
    ]);
    await closeChannel(subject(redis), channel);
    // Removed (as redis-file rm removes it, or an expiry) before any receiver got to it.
    expect(await remove(subject(redis), sent[0]!.key)).toBe(true);
    const skipped: { name: string; key: string }[] = [];
    const got: string[] = [];
    for await (const f of receiveFiles(subject(redis), channel, { consumer: 'r', onSkip: (g) => skipped.push(g) })) {
      got.push(`${f.name}=${(await collect(f.stream)).toString()}`);
      await f.ack();
    }
    expect(got).toEqual(['b.txt=b']);
    expect(skipped).toEqual([{ name: 'a.txt', key: sent[0]!.key }]);
    // Acknowledged: a receiver run again under the same name gets nothing more.
    const again: string[] = [];
    for await (const f of receiveFiles(subject(redis), channel, { consumer: 'r', onSkip: (g) => again.push(g.name) }))
      again.push(f.name);
    expect(again).toEqual([]);
    // A bad callback fails the iteration at its first step, as any bad option does.
    await expect(
      receiveFiles(subject(redis), channel, { consumer: 'r', onSkip: 'no' as never }).next(),
    ).rejects.toMatchObject({ name: 'TypeError', message: expect.stringMatching(/onSkip/) });
  });

  it('a channel removed under a waiting receiver ends it with ERR_REDIS_FILE_NOT_FOUND, naming the channel', async () => {
    const channel = uniqueKey('removed');
    const name = uniqueConnectionName('removed');
    const next = receiveFiles(await readyAnySubject({ connectionName: name }), channel, { consumer: 'r' }).next();
    next.catch(() => {});
    await eventually(async () => (await blockedIn(redis, name, 'xreadgroup')) === 1, 'the receiver to wait');
    expect(await removeChannel(subject(redis), channel)).toBe(true);
    const err = await next.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'ERR_REDIS_FILE_NOT_FOUND', key: channel });
    // Said of the channel, not of a file, and not in Redis's own words alone.
    expect((err as Error).message).toBe(
      `Channel ${JSON.stringify(channel)}: it was removed (its log, with this receiver's position) while the receiver was waiting for the next file`,
    );
  });

  it('a receiver run again after it ended on the close ends at once; one more file, and it waits again', async () => {
    const channel = uniqueKey('rerun');
    await sendFiles(subject(redis), channel, [file('r1.txt', 'one')]);
    await closeChannel(subject(redis), channel);
    expect((await receiveAll(redis, channel, 'r')).map((f) => f.name)).toEqual(['r1.txt']);
    expect(await receiveAll(redis, channel, 'r')).toEqual([]);
    await sendFiles(subject(redis), channel, [file('r2.txt', 'two')]);
    const name = uniqueConnectionName('rerun');
    const files = receiveFiles(await readyAnySubject({ connectionName: name }), channel, { consumer: 'r' });
    const first = await files.next();
    expect(first.done ? undefined : [first.value.name, (await collect(first.value.stream)).toString()]).toEqual([
      'r2.txt',
      'two',
    ]);
    if (!first.done) await first.value.ack();
    const second = files.next();
    let ended = false;
    second.then(() => {
      ended = true;
    });
    await eventually(async () => (await blockedIn(redis, name, 'xreadgroup')) === 1, 'the receiver to wait');
    expect(ended).toBe(false);
    await closeChannel(subject(redis), channel);
    expect(await second).toMatchObject({ done: true });
  });

  it('a late receiver process gets every file still held; a sender process run again appends without resetting anyone', async () => {
    const channel = uniqueKey('late');
    const url = redisUrlForProcesses();
    const send = async (names: string[]) => {
      const p = sender(url, channel, { files: names.map((n) => ({ path: file(n, n) })), close: true });
      expect((await p.exited).code).toBe(0);
    };
    await send(['a1', 'b1']);
    expect((await finish(receiver(url, channel, 'early'))).map((f) => f.name)).toEqual(['a1', 'b1']);
    // The channel is used again after its close: that old close ends nobody any more.
    await send(['c1']);
    expect((await finish(receiver(url, channel, 'early'))).map((f) => f.name)).toEqual(['c1']);
    expect((await finish(receiver(url, channel, 'late'))).map((f) => f.name)).toEqual(['a1', 'b1', 'c1']);
  });

  it('a corrupt gzip among the files is an error for that file; the receiver process processes the others', async () => {
    const channel = uniqueKey('corrupt');
    const good = gzipSync('fine\n'.repeat(100));
    const bad = Buffer.from(gzipSync('broken\n'.repeat(100)));
    bad.fill(0x41, 12, 30);
    await sendFiles(subject(redis), channel, [file('1.gz', good), file('2.gz', bad), file('3.gz', good)]);
    await closeChannel(subject(redis), channel);
    const got = await finish(receiver(redisUrlForProcesses(), channel, 'z', { decompress: true }));
    expect(got.map((f) => [f.name, f.error ?? f.lines])).toEqual([
      ['1.gz', 100],
      ['2.gz', 'ERR_REDIS_FILE_DECODE'],
      ['3.gz', 100],
    ]);
  });

  it('a file whose hash is damaged is an error for that file when read; the receiver goes on with the others', async () => {
    const channel = uniqueKey('bad-hash');
    const sent = await sendFiles(subject(redis), channel, [
      file('1.txt', 'one'),
      file('2.txt', 'two'),
      file('3.txt', 'three'),
    ]);
    // Strict decoding refuses a size that is not decimal: the receiver's early open fails on it,
    // and the file's fields are read apart to go on.
    await redis.hset(fileKeysOf(sent[1]!.key).meta, 'size', 'three');
    await closeChannel(subject(redis), channel);
    const got = await receiveAll(redis, channel, 'r');
    expect(got.map((f) => [f.name, f.error ?? f.data!.toString()])).toEqual([
      ['1.txt', 'one'],
      ['2.txt', 'ERR_REDIS_FILE_CORRUPT'],
      ['3.txt', 'three'],
    ]);
  });

  it('sendFiles reports each file with its key as its upload starts', async () => {
    const channel = uniqueKey('onstart');
    const started: AnnouncedFile[] = [];
    const source = new PassThrough();
    const sending = sendFiles(subject(redis), channel, [{ name: 'slow.txt', stream: source }, file('b.txt', 'bee')], {
      onStart: (f) => started.push(f),
    });
    source.write('the first part');
    await eventually(() => started.length > 0, 'the first upload to start');
    // Announced, with its key, while its upload is still open.
    expect(started).toEqual([
      {
        name: 'slow.txt',
        key: expect.stringMatching(new RegExp(`^${channel}/[0-9a-z]+-[0-9a-f]{8}/slow\\.txt$`)),
        size: undefined,
      },
    ]);
    expect((await stat(subject(redis), started[0]!.key)).state).toBe('writing');
    source.end(', and the rest');
    const sent = await sending;
    expect(started.map((f) => [f.name, f.key, f.size])).toEqual(
      sent.map((f, i) => [f.name, f.key, i === 0 ? undefined : 3]),
    );
  });

  it('an exception thrown by onStart aborts that file and rejects sendFiles', async () => {
    const channel = uniqueKey('onstart-throws');
    let key = '';
    // A source that stays open: the file cannot be complete before onStart runs.
    const source = new PassThrough();
    source.write('some bytes');
    const err = await sendFiles(subject(redis), channel, [{ name: 'a.txt', stream: source }, file('b.txt', 'b')], {
      onStart(f) {
        key = f.key;
        throw new Error('no thanks');
      },
    }).catch((e: unknown) => e);
    expect(err).toMatchObject({ message: 'no thanks' });
    expect((await stat(subject(redis), key)).state).toBe('aborted');
  });

  it.each([
    ['more', 'hello', ' world'],
    ['fewer', 'hi', ''],
  ])('a stream that gives %s bytes than its declared size aborts its file', async (_, first, rest) => {
    const channel = uniqueKey('size');
    let key = '';
    const source = new PassThrough();
    source.write(first);
    const sending = sendFiles(subject(redis), channel, [{ name: 'a.txt', stream: source, size: 5 }], {
      onStart: (f) => {
        key = f.key;
      },
    });
    sending.catch(() => {});
    // Announced with its declared size; the bytes that disagree with it come later.
    await eventually(() => key !== '', 'the file to be announced');
    source.end(rest);
    await expect(sending).rejects.toMatchObject({ code: 'ERR_REDIS_FILE_ABORTED', key });
    expect((await stat(subject(redis), key)).state).toBe('aborted');
    await closeChannel(subject(redis), channel);
    expect(await receiveAll(redis, channel, 'r')).toEqual([{ name: 'a.txt', error: 'ERR_REDIS_FILE_ABORTED' }]);
  });

  it('a path is sent at the size it had when announced, though it grows meanwhile', async () => {
    const channel = uniqueKey('grows');
    const data = bytes(16 << 20, 73);
    const path = file('grows.log', data);
    const announced: (number | undefined)[] = [];
    const sent = await sendFiles(subject(redis), channel, [path], {
      onStart: (f) => {
        announced.push(f.size);
        // The upload is under way (the writer claimed the file), its reading not finished.
        appendFileSync(path, 'appended after the announcement');
      },
    });
    expect(announced).toEqual([data.length]);
    expect(sent.map((f) => f.size)).toEqual([data.length]);
    await closeChannel(subject(redis), channel);
    const [got] = await receiveAll(redis, channel, 'r');
    expect(got!.data!.equals(data)).toBe(true);
  });

  it('a receiver given an aborted signal rejects with an AbortError and joins nothing', async () => {
    const channel = uniqueKey('aborted-join');
    const reason = new Error('stopped before it began');
    const files = receiveFiles(subject(redis), channel, { consumer: 'r', signal: AbortSignal.abort(reason) });
    await expect(files.next()).rejects.toMatchObject(abortError(reason));
    expect(await redis.exists(channelLogOf(channel))).toBe(0);
  });

  it('an abort between files acknowledges nothing more: a receiver run again gets every file after the last it acknowledged', async () => {
    const channel = uniqueKey('abort-between');
    const files = ['a', 'b', 'c'].map((name) => ({ name, stream: Readable.from([Buffer.from(name)]) }));
    await sendFiles(subject(redis), channel, files);
    await closeChannel(subject(redis), channel);
    const controller = new AbortController();
    const receiving = receiveFiles(subject(redis), channel, { consumer: 'r', signal: controller.signal });
    const first = await receiving.next();
    if (first.done) throw new Error('no file');
    expect((await collect(first.value.stream)).toString()).toBe('a');
    await first.value.ack();
    // The next announcements are read, and the next file opened, ahead: the abort finds them.
    controller.abort();
    await expect(receiving.next()).rejects.toMatchObject({ name: 'AbortError' });
    expect((await receiveAll(redis, channel, 'r')).map((f) => [f.name, f.data?.toString()])).toEqual([
      ['b', 'b'],
      ['c', 'c'],
    ]);
  });

  it("an abort rejects sendFiles and receiveFiles with Node's AbortError, the signal's reason as its cause, at any moment", async () => {
    const channel = uniqueKey('abort-shape');
    const reasons = [new Error('one'), new Error('two'), new Error('three')];
    // Before anything is sent.
    const source = () => Readable.from([Buffer.from('x')]);
    await expect(
      sendFiles(subject(redis), channel, [{ name: 'a', stream: source() }], { signal: AbortSignal.abort(reasons[0]) }),
    ).rejects.toMatchObject(abortError(reasons[0]!));
    await expect(
      sendFiles(subject(redis), channel, [], { signal: AbortSignal.abort(reasons[0]) }),
    ).rejects.toMatchObject(abortError(reasons[0]!));
    // In the middle of a file.
    const slow = new PassThrough();
    slow.write('part of it');
    const mid = new AbortController();
    const sending = sendFiles(subject(redis), channel, [{ name: 'b', stream: slow }], {
      signal: mid.signal,
      onStart: () => mid.abort(reasons[1]),
    });
    await expect(sending).rejects.toMatchObject(abortError(reasons[1]!));
    // A receiver waiting for the next file, blocked in its read.
    const name = uniqueConnectionName('abort-shape');
    const waiting = new AbortController();
    const files = receiveFiles(await readyAnySubject({ connectionName: name }), channel, {
      consumer: 'r',
      signal: waiting.signal,
    });
    const first = await files.next();
    expect(first.done ? undefined : first.value.name).toBe('b');
    const next = files.next();
    await eventually(async () => (await blockedIn(redis, name, 'xreadgroup')) === 1, 'the receiver to wait');
    waiting.abort(reasons[2]);
    await expect(next).rejects.toMatchObject(abortError(reasons[2]!));
  });

  it('a path whose size reads 0 and that has bytes (/proc) is read to its end, its size not announced; an empty file is announced at 0', async () => {
    const channel = uniqueKey('proc');
    const empty = file('empty.txt', Buffer.alloc(0));
    const announced: (number | undefined)[] = [];
    const sent = await sendFiles(subject(redis), channel, ['/proc/version', empty], {
      onStart: (f) => announced.push(f.size),
    });
    const version = readFileSync('/proc/version');
    expect(statSync('/proc/version').size).toBe(0);
    expect(announced).toEqual([undefined, 0]);
    expect(sent.map((f) => f.size)).toEqual([version.length, 0]);
    await closeChannel(subject(redis), channel);
    const got = await receiveAll(redis, channel, 'r');
    expect(got.map((f) => [f.name, f.data?.toString()])).toEqual([
      ['version', version.toString()],
      ['empty.txt', ''],
    ]);
  });
});
