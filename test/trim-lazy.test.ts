/**
 * Under a memory limit, consumers trim the chunks they all consumed only once the limit has held
 * the writer back: a receiver restarted in a file that fits starts again at its first byte.
 */
import { once } from 'node:events';
import { afterAll, describe, expect, it } from 'vitest';
import { createRedisReadStream, createRedisWriteStream, stat } from '../src/index.js';
import { portOf } from '../src/redis/port.js';
import { TRIM } from '../src/scripts/consumers.js';
import { run } from '../src/scripts/define.js';
import { COMMIT } from '../src/scripts/writer.js';
import { closeAll, connect, subject, uniqueKey } from './helpers/clients.js';
import { eventually } from './helpers/eventually.js';
import { fileKeysOf } from './helpers/keys.js';
import { bytes, collect, put } from './helpers/streams.js';

const redis = connect();
afterAll(closeAll);

describe('trimming under a memory limit', () => {
  it('a file that fits is never trimmed, so a consumer that restarts reads it from byte 0; once the writer was held back, consumed chunks go', async () => {
    const key = uniqueKey('fits');
    const data = bytes(20 * 1000, 71);
    await put(redis, key, data, { consumers: ['c'], maxRedisMemory: 2 ** 40, chunkSize: 1000 });
    const { meta, chunks } = fileKeysOf(key);
    const gen = (await redis.hget(meta, 'gen'))!;
    const keys = { meta, chunks: chunks(gen) };
    // Consumer c reports that it consumed ten chunks, then goes away (a crash): its position is
    // recorded, and nothing is trimmed, as the limit never held the writer back.
    expect(await run(portOf(subject(redis)), TRIM, keys, { gen, consumer: 'c', position: 10 })).toEqual({ trimmed: 0 });
    expect(await redis.hmget(meta, 'pos:c', 'trimmed')).toEqual(['10', '0']);
    // Restarted, it reads the whole file from its first byte.
    const back = createRedisReadStream(subject(redis), key, { consumer: 'c' });
    const [file] = await Promise.all([
      once(back, 'file'),
      collect(back).then((got) => expect(got.equals(data)).toBe(true)),
    ]);
    expect(file[0]).toMatchObject({ size: data.length });
    // A writer held back by its limit marks the file (the writer's own trim, without a name): from
    // then on what every consumer consumed is trimmed.
    const k2 = uniqueKey('pressed');
    await put(redis, k2, data, { consumers: ['c'], maxRedisMemory: 2 ** 40, chunkSize: 1000 });
    const m2 = fileKeysOf(k2);
    const g2 = (await redis.hget(m2.meta, 'gen'))!;
    const keys2 = { meta: m2.meta, chunks: m2.chunks(g2) };
    expect(await run(portOf(subject(redis)), TRIM, keys2, { gen: g2, consumer: 'c', position: 10 })).toEqual({
      trimmed: 0,
    });
    expect(await run(portOf(subject(redis)), TRIM, keys2, { gen: g2, consumer: '', position: 0 })).toEqual({
      trimmed: 10,
    });
    expect(await redis.hmget(m2.meta, 'pressure', 'trimmed')).toEqual(['1', '10']);
  });
});

describe('a commit retried after a dropped connection', () => {
  it('reports success when its first run deleted the file that every consumer had acknowledged', async () => {
    const key = uniqueKey('retried-commit');
    const writer = createRedisWriteStream(subject(redis), key, { consumers: ['r'], flushInterval: 0 });
    await once(writer, 'ready');
    const { meta, events } = fileKeysOf(key);
    const [gen, token] = await redis.hmget(meta, 'gen', 'writer');
    // A channel receiver that gave the file up acknowledged it while it was written.
    await redis.hset(meta, 'ack:r', '1', 'acks', '1');
    const keys = { meta, chunks: fileKeysOf(key).chunks(gen!), events };
    const args = { writer: token!, last: '0-1', pieces: 0, size: 0, chunks: 0, crc32: '00000000', ttl: 0 };
    // The first run commits and deletes the file at once; its reply is lost with the connection,
    // and the client runs it again.
    expect(await run(portOf(subject(redis)), COMMIT, keys, args)).toEqual({ status: 'ok' });
    expect(await redis.exists(meta)).toBe(0);
    expect(await run(portOf(subject(redis)), COMMIT, keys, args)).toEqual({ status: 'ok' });
    // Another writer's commit is not taken for this one.
    expect(await run(portOf(subject(redis)), COMMIT, keys, { ...args, writer: '0000000000000000' })).toEqual({
      status: 'lease',
    });
    writer.destroy();
    await once(writer, 'close');
    await expect(stat(subject(redis), key)).rejects.toMatchObject({ code: 'ERR_REDIS_FILE_NOT_FOUND' });
  });
});

describe('resuming after a loss', () => {
  it('a file whose writer aborted after Redis lost acknowledged pieces is not resumed past the gap', async () => {
    const key = uniqueKey('lost-resume');
    const writer = createRedisWriteStream(subject(redis), key, { chunkSize: 100, heartbeatInterval: 20 });
    writer.on('error', () => {});
    writer.write(bytes(1000, 73));
    await eventually(() => writer.committedBytes === 1000, 'ten chunks stored');
    writer.destroy();
    await once(writer, 'close');
    await redis.hset(fileKeysOf(key).meta, 'lost', '1');
    const resumed = createRedisWriteStream(subject(redis), key, { resume: true });
    const [err] = await once(resumed, 'error');
    expect(err).toMatchObject({ code: 'ERR_REDIS_FILE_CORRUPT' });
  });
});
