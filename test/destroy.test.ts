import { once } from 'node:events';
import { PassThrough, pipeline as pipelineCb } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { createRedisReadStream, createRedisWriteStream, stat } from '../src/index.js';
import { clientList, closeAll, connectAny, uniqueKey } from './helpers/clients.js';
import { bytes, put, sink, splitSource } from './helpers/streams.js';

const redis = connectAny();
afterAll(closeAll);

async function blockedReaders(): Promise<number> {
  const list = await clientList(redis);
  return list.split('\n').filter((line) => /cmd=xread\b/.test(line) && /flags=b/.test(line)).length;
}

async function connections(): Promise<number> {
  return (await clientList(redis)).trim().split('\n').length;
}

function timers(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
}

async function settle(check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 100 && !(await check()); i++) await sleep(10);
}

describe('destroy and abort', () => {
  it('a destroyed writer marks the file aborted: nothing partial reads as complete', async () => {
    const key = uniqueKey('wdestroy');
    const writer = createRedisWriteStream(redis, key, { chunkSize: 100 });
    writer.write(bytes(250));
    await sleep(50);
    writer.destroy();
    await once(writer, 'close');
    expect((await stat(redis, key)).state).toBe('aborted');
    await expect(pipeline(createRedisReadStream(redis, key), sink())).rejects.toMatchObject({ code: 'ERR_REDIS_FILE_ABORTED' });
  });

  it('a writer destroyed while it is still claiming the key leaves the file aborted, not writing', async () => {
    const key = uniqueKey('wdestroy-early');
    const timersBefore = timers();
    const writer = createRedisWriteStream(redis, key, { chunkSize: 16 });
    writer.write(Buffer.from('0123456789abcdef')); // enough to settle the encoding: the claim starts
    await new Promise((resolve) => setImmediate(resolve));
    writer.destroy();
    await once(writer, 'close');
    expect((await stat(redis, key)).state).toBe('aborted');
    expect(timers()).toBeLessThanOrEqual(timersBefore);
    // Nothing was stored after the destroy, and a reader fails at once.
    await expect(pipeline(createRedisReadStream(redis, key, { idleTimeout: 60_000 }), sink())).rejects.toMatchObject({
      code: 'ERR_REDIS_FILE_ABORTED',
    });
  });

  it('an AbortSignal aborts an upload in a pipeline', async () => {
    const key = uniqueKey('wsignal');
    const ac = new AbortController();
    const source = new PassThrough();
    source.write(bytes(1000));
    const done = pipeline(source, createRedisWriteStream(redis, key, { chunkSize: 100, signal: ac.signal }));
    await sleep(50);
    ac.abort();
    await expect(done).rejects.toMatchObject({ name: 'AbortError' });
    await settle(async () => (await stat(redis, key)).state === 'aborted');
    expect((await stat(redis, key)).state).toBe('aborted');
  });

  it('an already aborted signal stops the writer before it creates anything', async () => {
    const key = uniqueKey('wpreaborted');
    const writer = createRedisWriteStream(redis, key, { signal: AbortSignal.abort() });
    const errors: Error[] = [];
    writer.on('error', (err) => errors.push(err));
    await new Promise((resolve) => writer.on('close', resolve));
    expect(errors.map((e) => e.name)).toEqual(['AbortError']);
    await expect(stat(redis, key)).rejects.toMatchObject({ code: 'ERR_REDIS_FILE_NOT_FOUND' });
  });

  it('an AbortSignal stops a following reader and frees its blocking connection', async () => {
    const key = uniqueKey('rsignal');
    const writer = createRedisWriteStream(redis, key, { chunkSize: 100 });
    writer.write(bytes(100));
    await sleep(50);
    const before = await blockedReaders();
    const ac = new AbortController();
    const out = sink();
    const done = pipeline(createRedisReadStream(redis, key, { signal: ac.signal }), out);
    await settle(async () => (await blockedReaders()) > before);
    expect(await blockedReaders()).toBe(before + 1);
    ac.abort();
    await expect(done).rejects.toMatchObject({ name: 'AbortError' });
    await settle(async () => (await blockedReaders()) === before);
    expect(await blockedReaders()).toBe(before);
    writer.destroy();
  });

  it('works with the callback form of pipeline', async () => {
    const key = uniqueKey('cb');
    const data = bytes(3000);
    await new Promise<void>((resolve, reject) =>
      pipelineCb(splitSource(data, [700]), createRedisWriteStream(redis, key, { chunkSize: 1000 }), (err) => (err ? reject(err) : resolve())),
    );
    const out = sink();
    await new Promise<void>((resolve, reject) =>
      pipelineCb(createRedisReadStream(redis, key), out, (err) => (err ? reject(err) : resolve())),
    );
    expect(out.data().equals(data)).toBe(true);
  });

  it('breaking out of async iteration closes the reader and leaves no connection, listener or timer', async () => {
    const key = uniqueKey('iter');
    await put(redis, key, bytes(10_000), { chunkSize: 100 });
    const writer = createRedisWriteStream(redis, uniqueKey('iter-live'), { chunkSize: 100 });
    writer.write(bytes(100));
    const conns = await connections();
    const listeners = redis.eventNames().map((e) => redis.listenerCount(e));
    const timersBefore = timers();
    const reader = createRedisReadStream(redis, key);
    for await (const _part of reader) break;
    expect(reader.destroyed).toBe(true);
    writer.destroy();
    await once(writer, 'close');
    await settle(async () => (await connections()) === conns);
    expect(await connections()).toBe(conns);
    expect(redis.eventNames().map((e) => redis.listenerCount(e))).toEqual(listeners);
    expect(timers()).toBeLessThanOrEqual(timersBefore);
  });

  it('a finished writer and a finished follower leave no connection or timer behind', async () => {
    const key = uniqueKey('clean');
    const conns = await connections();
    const timersBefore = timers();
    const reader = createRedisReadStream(redis, key, { waitForCreate: 5000 });
    const out = sink();
    const reading = pipeline(reader, out);
    await put(redis, key, bytes(5000), { chunkSize: 1000 });
    await reading;
    await settle(async () => (await connections()) === conns);
    expect(await connections()).toBe(conns);
    expect(timers()).toBeLessThanOrEqual(timersBefore);
  });
});

describe('an abort while the end record is being committed', () => {
  it('is too late: the upload completes and the stream says so, matching what Redis holds', async () => {
    const key = uniqueKey('late-abort');
    const ac = new AbortController();
    const writer = createRedisWriteStream(redis, key, { signal: ac.signal, chunkSize: 100 });
    writer.write(bytes(250));
    await sleep(50);
    // Abort in the same tick as the end: by the time the signal fires the commit is under way.
    const finished = new Promise<string>((resolve) => {
      writer.on('finish', () => resolve('finish'));
      writer.on('error', (e) => resolve(e.name));
    });
    writer.end();
    await new Promise((resolve) => setImmediate(resolve));
    ac.abort();
    const outcome = await finished;
    const { state } = await stat(redis, key);
    // Whatever the stream reports agrees with Redis.
    expect(outcome === 'finish' ? 'complete' : 'aborted').toBe(state);
  });
});
