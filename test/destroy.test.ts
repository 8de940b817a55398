import { type EventEmitter, once } from 'node:events';
import { PassThrough, pipeline as pipelineCb } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, describe, expect, it } from 'vitest';
import {
  createRedisReadStream,
  createRedisWriteStream,
  type RedisClient,
  type RedisWriteStream,
  stat,
} from '../src/index.js';
import {
  blockedIn,
  clientList,
  closeAll,
  connectAny,
  connectAnySubject,
  onEveryNode,
  subject,
  subjectReady,
  uniqueConnectionName,
  uniqueKey,
} from './helpers/clients.js';
import { eventually } from './helpers/eventually.js';
import { bytes, get, put, sink, splitSource } from './helpers/streams.js';

const redis = connectAny();
afterAll(closeAll);

/**
 * A client of the library under test whose connections (and the blocking connections the package
 * duplicates from it) carry a name of their own, so that they can be counted while other test files
 * use the same server. Connected to every primary already: a cluster client opens a node's
 * connection when it first sends it a command, and keeps it.
 */
async function named(what: string): Promise<{ client: RedisClient; name: string }> {
  const name = uniqueConnectionName(what);
  const client = connectAnySubject({ connectionName: name });
  await subjectReady(client);
  return { client, name };
}

/** The connections named `name` on the server (on every node of a cluster). */
async function connections(name: string): Promise<number> {
  return (await clientList(redis)).split('\n').filter((line) => line.includes(` name=${name} `)).length;
}

function timers(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
}

describe('destroy and abort', () => {
  it('a destroyed writer marks the file aborted: nothing partial reads as complete', async () => {
    const key = uniqueKey('wdestroy');
    const writer = createRedisWriteStream(subject(redis), key, { chunkSize: 100 });
    writer.write(bytes(250));
    await eventually(() => writer.committedBytes >= 200, 'two chunks stored');
    writer.destroy();
    await once(writer, 'close');
    expect((await stat(subject(redis), key)).state).toBe('aborted');
    await expect(pipeline(createRedisReadStream(subject(redis), key), sink())).rejects.toMatchObject({
      code: 'ERR_REDIS_FILE_ABORTED',
    });
  });

  it('a writer destroyed while it is still claiming the key leaves the file aborted, not writing', async () => {
    const key = uniqueKey('wdestroy-early');
    const timersBefore = timers();
    const writer = createRedisWriteStream(subject(redis), key, { chunkSize: 16 });
    writer.write(Buffer.from('0123456789abcdef')); // enough to settle the encoding: the claim starts
    await new Promise((resolve) => setImmediate(resolve));
    writer.destroy();
    await once(writer, 'close');
    expect((await stat(subject(redis), key)).state).toBe('aborted');
    expect(timers()).toBeLessThanOrEqual(timersBefore);
    // Nothing was stored after the destroy, and a reader fails at once.
    await expect(
      pipeline(createRedisReadStream(subject(redis), key, { idleTimeout: 60_000 }), sink()),
    ).rejects.toMatchObject({
      code: 'ERR_REDIS_FILE_ABORTED',
    });
  });

  it('a writer destroyed while a write waits for room in its window leaves no timer behind', async () => {
    const key = uniqueKey('wdestroy-held');
    const timersBefore = timers();
    const writer = createRedisWriteStream(subject(redis), key, { chunkSize: 16 * 1024, maxInFlightBytes: 64 * 1024 });
    writer.on('error', () => {});
    await once(writer, 'ready');
    writer.write(bytes(1024 * 1024 + 1000)); // far more than the window holds: the write is held
    await new Promise((resolve) => setImmediate(resolve));
    expect(writer.writableLength).toBeGreaterThan(0);
    writer.destroy();
    await once(writer, 'close');
    expect(timers()).toBeLessThanOrEqual(timersBefore);
  });

  it('an AbortSignal aborts an upload in a pipeline', async () => {
    const key = uniqueKey('wsignal');
    const ac = new AbortController();
    const source = new PassThrough();
    source.write(bytes(1000));
    const writer = createRedisWriteStream(subject(redis), key, { chunkSize: 100, signal: ac.signal });
    const done = pipeline(source, writer);
    await once(writer, 'ready');
    ac.abort();
    await expect(done).rejects.toMatchObject({ name: 'AbortError' });
    await eventually(
      async () => (await stat(subject(redis), key)).state === 'aborted',
      'the file to be marked aborted',
    );
  });

  it('an already aborted signal stops the writer before it creates anything', async () => {
    const key = uniqueKey('wpreaborted');
    const writer = createRedisWriteStream(subject(redis), key, { signal: AbortSignal.abort() });
    const errors: Error[] = [];
    writer.on('error', (err) => errors.push(err));
    await new Promise((resolve) => writer.on('close', resolve));
    expect(errors.map((e) => e.name)).toEqual(['AbortError']);
    await expect(stat(subject(redis), key)).rejects.toMatchObject({ code: 'ERR_REDIS_FILE_NOT_FOUND' });
  });

  it('an AbortSignal stops a following reader and frees its blocking connection', async () => {
    const key = uniqueKey('rsignal');
    const writer = createRedisWriteStream(subject(redis), key, { chunkSize: 100 });
    writer.write(bytes(100));
    await once(writer, 'ready');
    const { client, name } = await named('rsignal');
    const ac = new AbortController();
    const out = sink();
    const done = pipeline(createRedisReadStream(client, key, { signal: ac.signal }), out);
    await eventually(async () => (await blockedIn(redis, name)) === 1, 'the follower to block');
    ac.abort();
    await expect(done).rejects.toMatchObject({ name: 'AbortError' });
    await eventually(async () => (await blockedIn(redis, name)) === 0, 'the blocking connection to be freed');
    writer.destroy();
  });

  it("an AbortSignal stops a reader nobody listens to for 'error' without an uncaught error, as with Node's own streams", async () => {
    const key = uniqueKey('rsignal-unheard');
    const ac = new AbortController();
    // Opened and never read (a stream made ahead of its use): no 'error' listener of the caller's.
    const reader = createRedisReadStream(subject(redis), key, { waitForCreate: 60_000, signal: ac.signal });
    ac.abort();
    // Not events.once, which would listen for 'error' itself.
    await new Promise((resolve) => reader.on('close', resolve));
    expect(reader.errored).toMatchObject({ name: 'AbortError', code: 'ABORT_ERR' });
    // An uncaught error would be emitted on the next tick after 'close': the run would report it.
    await new Promise((resolve) => setImmediate(resolve));
  });

  it('works with the callback form of pipeline', async () => {
    const key = uniqueKey('cb');
    const data = bytes(3000);
    await new Promise<void>((resolve, reject) =>
      pipelineCb(splitSource(data, [700]), createRedisWriteStream(subject(redis), key, { chunkSize: 1000 }), (err) =>
        err ? reject(err) : resolve(),
      ),
    );
    const out = sink();
    await new Promise<void>((resolve, reject) =>
      pipelineCb(createRedisReadStream(subject(redis), key), out, (err) => (err ? reject(err) : resolve())),
    );
    expect(out.data().equals(data)).toBe(true);
  });

  it('breaking out of async iteration closes the reader and leaves no connection, listener or timer', async () => {
    const key = uniqueKey('iter');
    await put(redis, key, bytes(10_000), { chunkSize: 100 });
    const { client, name } = await named('iter');
    const writer = createRedisWriteStream(client, uniqueKey('iter-live'), { chunkSize: 100 });
    writer.write(bytes(100));
    await once(writer, 'ready');
    const conns = await connections(name);
    // Every client library's client is an EventEmitter.
    const emitter = client as unknown as EventEmitter;
    const listeners = emitter.eventNames().map((e) => emitter.listenerCount(e));
    const timersBefore = timers();
    const reader = createRedisReadStream(client, key);
    for await (const _part of reader) break;
    expect(reader.destroyed).toBe(true);
    writer.destroy();
    await once(writer, 'close');
    await eventually(async () => (await connections(name)) === conns, 'the connections to be back to what they were');
    expect(emitter.eventNames().map((e) => emitter.listenerCount(e))).toEqual(listeners);
    expect(timers()).toBeLessThanOrEqual(timersBefore);
  });

  it('a finished writer and a finished follower leave no connection or timer behind', async () => {
    const key = uniqueKey('clean');
    const { client, name } = await named('clean');
    const conns = await connections(name);
    const timersBefore = timers();
    const reader = createRedisReadStream(client, key, { waitForCreate: 5000 });
    const out = sink();
    const reading = pipeline(reader, out);
    await put(client, key, bytes(5000), { chunkSize: 1000 });
    await reading;
    await eventually(async () => (await connections(name)) === conns, 'the connections to be back to what they were');
    expect(timers()).toBeLessThanOrEqual(timersBefore);
  });
});

/**
 * Store `data` through `writer`, then end it while Redis holds write commands back: the end record
 * is sent and waits in Redis, uncommitted, while `meanwhile` runs; then Redis goes on.
 */
async function whileCommitWaits(
  writer: RedisWriteStream,
  data: Buffer,
  name: string,
  meanwhile: () => void,
): Promise<void> {
  writer.write(data);
  writer.flush();
  await eventually(() => writer.committedBytes === data.length, 'every piece stored');
  await onEveryNode(redis, (node) => node.client('PAUSE', 10_000, 'WRITE'));
  try {
    writer.end();
    await eventually(
      async () => (await blockedIn(redis, name, '(?:evalsha|eval)')) === 1,
      'the commit to wait in Redis',
    );
    meanwhile();
  } finally {
    await onEveryNode(redis, (node) => node.client('UNPAUSE'));
  }
}

describe('an abort while the end record is being committed', () => {
  it('is too late: the upload completes and the stream says so, matching what Redis holds', async () => {
    const key = uniqueKey('late-abort');
    const data = bytes(250);
    const { client, name } = await named('late-abort');
    const ac = new AbortController();
    // No heartbeat within the test: after its pieces, the only script the writer runs is the commit.
    const writer = createRedisWriteStream(client, key, {
      signal: ac.signal,
      chunkSize: 100,
      heartbeatInterval: 60_000,
    });
    const errors: Error[] = [];
    writer.on('error', (err) => errors.push(err));
    const finished = once(writer, 'finish');
    await whileCommitWaits(writer, data, name, () => ac.abort());
    await finished;
    expect(errors).toEqual([]);
    expect((await stat(subject(redis), key)).state).toBe('complete');
    expect((await get(redis, key)).equals(data)).toBe(true);
  });

  it('a destroy() then still ends the stream with its error, and the file is complete, as documented', async () => {
    const key = uniqueKey('late-destroy');
    const data = bytes(250);
    const { client, name } = await named('late-destroy');
    const writer = createRedisWriteStream(client, key, { chunkSize: 100, heartbeatInterval: 60_000 });
    let finishes = 0;
    writer.on('finish', () => finishes++);
    const closed = new Promise<Error | undefined>((resolve) => {
      let error: Error | undefined;
      writer.on('error', (err) => {
        error = err;
      });
      writer.on('close', () => resolve(error));
    });
    await whileCommitWaits(writer, data, name, () => writer.destroy(new Error('changed my mind')));
    expect((await closed)?.message).toBe('changed my mind');
    expect(finishes).toBe(0);
    expect((await stat(subject(redis), key)).state).toBe('complete');
    expect((await get(redis, key)).equals(data)).toBe(true);
  });
});
