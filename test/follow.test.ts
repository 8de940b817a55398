import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { createRedisReadStream, createRedisWriteStream, RedisFileError } from '../src/index.js';
import {
  blockedIn,
  closeAll,
  connectAny,
  readyAnySubject,
  subject,
  uniqueConnectionName,
  uniqueKey,
} from './helpers/clients.js';
import { eventually } from './helpers/eventually.js';
import { fileKeysOf } from './helpers/keys.js';
import { bytes, collect } from './helpers/streams.js';

const redis = connectAny();
afterAll(closeAll);

/** Resolve with the first `n` bytes a readable delivers, leaving it flowing into `parts`. */
function firstBytes(readable: NodeJS.ReadableStream, n: number, parts: Buffer[]): Promise<void> {
  return new Promise((resolve, reject) => {
    let got = 0;
    readable.on('data', (d: Buffer) => {
      parts.push(d);
      got += d.length;
      if (got >= n) resolve();
    });
    readable.on('error', reject);
  });
}

describe('following a file that is being written', () => {
  it('delivers chunks while the writer is still writing, then ends at the end record', async () => {
    const key = uniqueKey('follow');
    const data = bytes(64 * 1024, 3);
    const writer = createRedisWriteStream(subject(redis), key, { chunkSize: 4096 });
    writer.write(data.subarray(0, 8192));
    await once(writer, 'ready');
    const reader = createRedisReadStream(subject(redis), key);
    const parts: Buffer[] = [];
    // The writer has written two chunks and is idle: the reader must get them now.
    await firstBytes(reader, 8192, parts);
    expect(writer.writableFinished).toBe(false);
    writer.end(data.subarray(8192));
    await once(writer, 'finish');
    await once(reader, 'end');
    expect(Buffer.concat(parts).equals(data)).toBe(true);
  });

  it('waits for a key that does not exist yet with waitForCreate', async () => {
    const key = uniqueKey('late');
    const data = bytes(10_000, 4);
    const name = uniqueConnectionName('late');
    const reader = createRedisReadStream(await readyAnySubject({ connectionName: name }), key, {
      waitForCreate: 10_000,
    });
    const result = collect(reader);
    await eventually(async () => (await blockedIn(redis, name)) === 1, 'the reader to wait for the file');
    const writer = createRedisWriteStream(subject(redis), key, { chunkSize: 1000 });
    writer.end(data);
    await once(writer, 'finish');
    expect((await result).equals(data)).toBe(true);
  });

  it('fails with ERR_REDIS_FILE_TIMEOUT when waitForCreate passes with no file', async () => {
    const reader = createRedisReadStream(subject(redis), uniqueKey('never'), { waitForCreate: 200 });
    await expect(collect(reader)).rejects.toMatchObject({ code: 'ERR_REDIS_FILE_TIMEOUT' });
  });

  it('with follow: false reads what is stored now and ends there', async () => {
    const key = uniqueKey('nofollow');
    const data = bytes(5000, 5);
    // No flush: the last 500 bytes stay in the writer until the end.
    const writer = createRedisWriteStream(subject(redis), key, { chunkSize: 1000, flushInterval: 0 });
    writer.write(data.subarray(0, 3500));
    await eventually(() => writer.committedBytes === 3000, 'three chunks stored');
    const got = await collect(createRedisReadStream(subject(redis), key, { follow: false }));
    expect(got.equals(data.subarray(0, 3000))).toBe(true);
    writer.end(data.subarray(3500));
    await once(writer, 'finish');
  });

  it('blocks on a connection of its own and frees it at once when destroyed', async () => {
    const key = uniqueKey('blocking');
    const writer = createRedisWriteStream(subject(redis), key, { chunkSize: 1000 });
    writer.write(bytes(1000));
    await once(writer, 'ready');
    const name = uniqueConnectionName('blocking');
    const reader = createRedisReadStream(await readyAnySubject({ connectionName: name }), key);
    const parts: Buffer[] = [];
    await firstBytes(reader, 1000, parts);
    // Meanwhile the shared connection stays usable.
    expect(await redis.ping()).toBe('PONG');
    await eventually(
      async () => (await blockedIn(redis, name)) === 1,
      'the reader to block on a connection of its own',
    );
    reader.destroy();
    await once(reader, 'close');
    await eventually(async () => (await blockedIn(redis, name)) === 0, 'the blocked connection to be freed');
    writer.destroy();
    await once(writer, 'close');
  });

  it('learns that the writer aborted', async () => {
    const key = uniqueKey('aborted');
    const writer = createRedisWriteStream(subject(redis), key, { chunkSize: 1000 });
    const writerError = once(writer, 'error');
    writer.write(bytes(2500));
    await once(writer, 'ready');
    const reader = createRedisReadStream(subject(redis), key);
    const result = collect(reader);
    await eventually(() => reader.deliveredBytes >= 2000, 'the follower to deliver the chunks stored');
    writer.destroy(new Error('source failed'));
    const err = await result.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(RedisFileError);
    expect(err).toMatchObject({ code: 'ERR_REDIS_FILE_ABORTED' });
    expect((await writerError)[0]).toMatchObject({ message: 'source failed' });
  });

  it('times out when the writer stops making progress and stops its heartbeat', async () => {
    const key = uniqueKey('idle');
    // A writer whose heartbeat stops, as when its process is killed: its keys stay in state
    // writing with no further progress.
    const writer = createRedisWriteStream(subject(redis), key, { chunkSize: 1000, heartbeatInterval: 50 });
    const writerError = once(writer, 'error');
    writer.write(bytes(1500));
    await eventually(() => writer.committedBytes >= 1000, 'the first chunk stored');
    const { meta } = fileKeysOf(key);
    // Freeze the writer: take its lease away from it without marking the file aborted.
    await redis.hset(meta, 'writer', '00000000deadbeef');
    const reader = createRedisReadStream(subject(redis), key, { idleTimeout: 300 });
    await expect(collect(reader)).rejects.toMatchObject({ code: 'ERR_REDIS_FILE_TIMEOUT' });
    // The writer itself learns at its next heartbeat that it no longer holds the key.
    expect((await writerError)[0]).toMatchObject({ code: 'ERR_REDIS_FILE_ABORTED' });
  });

  it('does not time out while a live writer waits on a slow source', async () => {
    const key = uniqueKey('slow');
    const data = bytes(3000, 6);
    const writer = createRedisWriteStream(subject(redis), key, { chunkSize: 1000, heartbeatInterval: 50 });
    writer.write(data.subarray(0, 1000));
    const reader = createRedisReadStream(subject(redis), key, { idleTimeout: 300, waitForCreate: 1000 });
    const result = collect(reader);
    // Time is the subject here: more than three idle timeouts pass with no new bytes.
    await sleep(1000);
    writer.end(data.subarray(1000));
    expect((await result).equals(data)).toBe(true);
  });
});
