/**
 * The server goes away: restarted with persistence (transfers carry on), restarted without it or
 * the file expired or removed (readers fail promptly with NOT_FOUND, never end as if complete).
 */
import { once } from 'node:events';
import { Readable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { createRedisReadStream, createRedisWriteStream, expire, stat } from '../src/index.js';
import { portOf } from '../src/redis/port.js';
import { closeAll, connect, connectSubject, subject, subjectReady } from './helpers/clients.js';
import { eventually } from './helpers/eventually.js';
import { fileKeysOf } from './helpers/keys.js';
import { type RedisServer, startRedis } from './helpers/redis-server.js';
import { bytes, collect, sha256 } from './helpers/streams.js';

const servers: RedisServer[] = [];
afterEach(async () => {
  await closeAll();
  await Promise.all(servers.splice(0).map((s) => s.stop()));
});

async function server(args: string[] = []): Promise<RedisServer> {
  const s = await startRedis({ args });
  servers.push(s);
  return s;
}

/** A source that pauses between its pieces: a slow upload, still under way when the server restarts. */
function pacedSource(data: Buffer, piece: number, pause: number): Readable {
  return Readable.from(
    (async function* () {
      for (let offset = 0; offset < data.length; offset += piece) {
        yield data.subarray(offset, offset + piece);
        await sleep(pause);
      }
    })(),
  );
}

/** Settle a promise into its error (or undefined), so that a rejection is never unhandled. */
function failure(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => undefined,
    (err: unknown) => err,
  );
}

describe('a server that is gone for good', () => {
  // node-redis reconnects without end by default: the package's adapter gives a command 10 s to be
  // answered while the client is down. ioredis and iovalkey give up after `maxRetriesPerRequest`
  // reconnections (their defaults take 40 s and more once the back-off has grown; set here to what
  // an application that wants a prompt failure sets).
  it('fails a writer and its follower with ERR_REDIS_FILE_REDIS, within seconds', async () => {
    const s = await server();
    const prompt = { maxRetriesPerRequest: 5, retryStrategy: () => 200 };
    const writerClient = connectSubject(s.url, prompt);
    const readerClient = connectSubject(s.url, prompt);
    const writer = createRedisWriteStream(writerClient, 'gone', { chunkSize: 64 * 1024 });
    writer.write(bytes(1000, 1));
    await once(writer, 'ready');
    const reader = createRedisReadStream(readerClient, 'gone');
    reader.resume();
    const writerFailed = failure(once(writer, 'close').then(() => Promise.reject(writer.errored)));
    const readerFailed = failure(once(reader, 'close').then(() => Promise.reject(reader.errored)));
    // A log written slowly, as the server goes.
    const logging = setInterval(() => writer.write('a line\n'), 100);
    try {
      await eventually(() => writer.committedBytes > 1000, 'lines to be stored');
      await s.kill();
      expect(await writerFailed).toMatchObject({ code: 'ERR_REDIS_FILE_REDIS' });
      expect(await readerFailed).toMatchObject({ code: 'ERR_REDIS_FILE_REDIS' });
    } finally {
      clearInterval(logging);
    }
  }, 60_000);
});

describe("a connection of the package's own, closed while the server is down", () => {
  // Each client library retries connecting (node-redis for ever): a close must not wait for it.
  it('settles what was sent on it, at once', async () => {
    const s = await server();
    const client = connectSubject(s.url);
    await subjectReady(client);
    await s.kill();
    const conn = portOf(client).openBlocking()!;
    const sent = conn.send(undefined, ['PING']);
    sent.catch(() => {});
    // Closed once it has started to connect (and, the server being gone, to retry).
    await new Promise((resolve) => setImmediate(resolve));
    conn.close();
    await expect(sent).rejects.toThrow();
  });
});

describe('server restarts', () => {
  it('with persistence (AOF), writer and followers carry on once the server is back', async () => {
    const s = await server(['--appendonly', 'yes', '--appendfsync', 'always']);
    const writerClient = connect(s.url);
    const readers = [connect(s.url), connect(s.url)];
    const data = bytes(4 * 1024 * 1024, 31);
    const results = readers.map((r) => collect(createRedisReadStream(subject(r), 'aof', { waitForCreate: 10_000 })));
    const writer = createRedisWriteStream(subject(writerClient), 'aof', { chunkSize: 64 * 1024 });
    const writing = pipeline(pacedSource(data, 128 * 1024, 10), writer);
    await eventually(() => writer.committedBytes >= 512 * 1024, 'the upload to be under way');
    expect(writer.committedBytes).toBeLessThan(data.length);
    await s.restart();
    await writing;
    for (const got of await Promise.all(results)) expect(sha256(got)).toBe(sha256(data));
    expect((await stat(connectSubject(s.url), 'aof')).state).toBe('complete');
  });

  it('without persistence, followers fail promptly with ERR_REDIS_FILE_NOT_FOUND', async () => {
    const s = await server();
    const writerClient = connect(s.url);
    const writer = createRedisWriteStream(subject(writerClient), 'lost', { chunkSize: 1024 });
    const writerFailed = failure(once(writer, 'close').then(() => writer.errored && Promise.reject(writer.errored)));
    writer.write(bytes(10_000));
    await once(writer, 'ready');
    const reader = createRedisReadStream(connectSubject(s.url), 'lost');
    const reading = failure(collect(reader));
    await eventually(() => reader.deliveredBytes >= 9 * 1024, 'the follower to deliver the chunks stored');
    await s.restart();
    expect(await reading).toMatchObject({ code: 'ERR_REDIS_FILE_NOT_FOUND' });
    // The writer learns it at its next chunk: its stream is gone.
    writer.write(bytes(10_000));
    expect(await writerFailed).toMatchObject({ code: 'ERR_REDIS_FILE_ABORTED' });
  });

  it('a complete file lost in a restart mid-read fails with NOT_FOUND, not a short read', async () => {
    const s = await server();
    const client = connect(s.url);
    const data = bytes(2 * 1024 * 1024, 32);
    await pipeline(Readable.from([data]), createRedisWriteStream(subject(client), 'gone', { chunkSize: 16 * 1024 }));
    const reader = createRedisReadStream(connectSubject(s.url), 'gone', { readAhead: 1, highWaterMark: 16 * 1024 });
    const first = await new Promise<Buffer>((resolve) => reader.once('data', resolve));
    reader.pause();
    expect(first.length).toBeGreaterThan(0);
    await s.restart();
    expect(await failure(collect(reader))).toMatchObject({ code: 'ERR_REDIS_FILE_NOT_FOUND' });
  });
});

describe('a restart from an older snapshot', () => {
  it('rolls a complete file back to one being written: a reader that began on it fails with CORRUPT, not a short read', async () => {
    const s = await server();
    const client = connect(s.url);
    const data = bytes(2 * 1024 * 1024, 33);
    const writer = createRedisWriteStream(subject(client), 'rolled', { chunkSize: 16 * 1024 });
    writer.write(data.subarray(0, 256 * 1024));
    await eventually(() => writer.committedBytes >= 256 * 1024, 'the first bytes to be stored');
    // The snapshot the server comes back from: the file as it was being written.
    await client.call('SAVE');
    writer.end(data.subarray(256 * 1024));
    await finished(writer);
    const reader = createRedisReadStream(connectSubject(s.url), 'rolled', { readAhead: 1, highWaterMark: 16 * 1024 });
    await new Promise((resolve) => reader.once('data', resolve));
    reader.pause();
    await s.restart();
    expect((await stat(connectSubject(s.url), 'rolled')).state).toBe('writing');
    expect(await failure(collect(reader))).toMatchObject({
      code: 'ERR_REDIS_FILE_CORRUPT',
      message: expect.stringMatching(/complete when the read began/),
    });
  });
});

describe('files that vanish mid-read', () => {
  it('a file that expires while being followed fails its readers with NOT_FOUND and its writer with ABORTED', async () => {
    const s = await server();
    const client = connect(s.url);
    const writer = createRedisWriteStream(subject(client), 'ttl', { chunkSize: 1000, ttl: 1 });
    const writerFailed = failure(once(writer, 'close').then(() => writer.errored && Promise.reject(writer.errored)));
    writer.write(bytes(2500));
    const reading = failure(collect(createRedisReadStream(connectSubject(s.url), 'ttl', { waitForCreate: 5000 })));
    expect(await reading).toMatchObject({ code: 'ERR_REDIS_FILE_NOT_FOUND' });
    writer.write(bytes(2500));
    expect(await writerFailed).toMatchObject({ code: 'ERR_REDIS_FILE_ABORTED' });
  });

  it('a complete file that expires mid-read fails with NOT_FOUND', async () => {
    const s = await server();
    const client = connect(s.url);
    await pipeline(
      Readable.from([bytes(100_000)]),
      createRedisWriteStream(subject(client), 'ttl2', { chunkSize: 1000 }),
    );
    const reader = createRedisReadStream(subject(client), 'ttl2', { readAhead: 1, highWaterMark: 1000 });
    await new Promise((resolve) => reader.once('data', resolve));
    reader.pause();
    // The time to live is set once the reader is under way (set at the write, it could run out
    // before the reader opened the file on a slow machine).
    expect(await expire(subject(client), 'ttl2', 1)).toBe(true);
    await eventually(async () => (await client.exists(fileKeysOf('ttl2').meta)) === 0, 'the file to expire');
    expect(await failure(collect(reader))).toMatchObject({ code: 'ERR_REDIS_FILE_NOT_FOUND' });
  });
});
