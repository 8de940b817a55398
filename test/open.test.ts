/**
 * Opening, and cancelling at every point: a writer creates its file before any write; a reader can
 * be destroyed or aborted while it waits for a file to appear; the reader's `file` event and
 * fs-like options.
 */
import { once } from 'node:events';
import { afterAll, describe, expect, it } from 'vitest';
import { createRedisReadStream, createRedisWriteStream, type RedisClient, stat } from '../src/index.js';
import { clientList, closeAll, connectAny, readyAnySubject, subject, uniqueKey } from './helpers/clients.js';
import { eventually } from './helpers/eventually.js';
import { collect, get, put } from './helpers/streams.js';

const redis = connectAny();
afterAll(closeAll);

/**
 * Connections named `name` blocked in XREAD: a reader's blocking connection is named like the client
 * it duplicates, so a client of its own per test tells its connections from other test files'.
 */
async function blocked(name: string): Promise<number> {
  const list = await clientList(redis);
  return list
    .split('\n')
    .filter((line) => line.includes(` name=${name} `) && /cmd=xread\b/.test(line) && /flags=b/.test(line)).length;
}

/** A client of its own, named after the key, and that name. */
async function named(key: string): Promise<[RedisClient, string]> {
  const name = key.replace(/[^A-Za-z0-9]/g, '-');
  return [await readyAnySubject({ connectionName: name }), name];
}

describe('opening', () => {
  it('the writer creates the file before the first write: ready comes first, and a reader finds it', async () => {
    const key = uniqueKey('ready');
    const writer = createRedisWriteStream(subject(redis), key, { contentType: 'text/plain' });
    await once(writer, 'ready');
    expect(await stat(subject(redis), key)).toMatchObject({
      state: 'writing',
      size: 0,
      writerAlive: true,
      contentType: 'text/plain',
    });
    const reading = collect(createRedisReadStream(subject(redis), key));
    writer.end('written after ready');
    expect((await reading).toString()).toBe('written after ready');
  });

  it('emits file with the stat of the file before the first byte, and keeps it as reader.file', async () => {
    const key = uniqueKey('file-event');
    await put(redis, key, Buffer.from('0123456789'), { contentType: 'text/csv', metadata: { day: '2026-12-05' } });
    const reader = createRedisReadStream(subject(redis), key);
    const seen: string[] = [];
    reader.on('file', () => seen.push('file'));
    reader.on('data', () => seen.push('data'));
    const [file] = await once(reader, 'file');
    expect(file).toMatchObject({
      key,
      state: 'complete',
      size: 10,
      contentType: 'text/csv',
      metadata: { day: '2026-12-05' },
    });
    expect(reader.file).toBe(file);
    await once(reader, 'end');
    expect(seen[0]).toBe('file');
  });

  it('encoding: as in fs, strings, with characters split across pieces whole', async () => {
    const key = uniqueKey('encoding');
    const text = 'zwölf Bücher, 二十 册 📚\n'.repeat(50);
    await put(redis, key, Buffer.from(text), { chunkSize: 7 }, [3]);
    const parts: unknown[] = [];
    for await (const part of createRedisReadStream(subject(redis), key, { encoding: 'utf8' })) parts.push(part);
    expect(parts.every((p) => typeof p === 'string')).toBe(true);
    expect(parts.join('')).toBe(text);
    expect(() => createRedisReadStream(subject(redis), key, { encoding: 'klingon' as BufferEncoding })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }),
    );
  });

  it('an end past the end of a complete file reads to the end, as fs does', async () => {
    const key = uniqueKey('end-past');
    await put(redis, key, Buffer.from('0123456789'));
    expect((await get(redis, key, { start: 4, end: 99 })).toString()).toBe('456789');
  });
});

describe('cancelling while waiting for the file', () => {
  it('destroy() ends the wait at once: close follows and the blocking connection is gone', async () => {
    const key = uniqueKey('wait-destroy');
    const [client, name] = await named(key);
    const reader = createRedisReadStream(client, key, { waitForCreate: 600_000 });
    reader.resume();
    await eventually(async () => (await blocked(name)) === 1, 'the reader to block waiting for the file');
    reader.destroy();
    await once(reader, 'close');
    await eventually(async () => (await blocked(name)) === 0, 'the blocking connection to close');
  });

  it('an AbortSignal ends the wait with an AbortError', async () => {
    const key = uniqueKey('wait-signal');
    const [client, name] = await named(key);
    const controller = new AbortController();
    const reading = collect(createRedisReadStream(client, key, { waitForCreate: 600_000, signal: controller.signal }));
    const failed = reading.catch((err: unknown) => err);
    await eventually(async () => (await blocked(name)) === 1, 'the reader to block waiting for the file');
    controller.abort();
    expect(await failed).toMatchObject({ name: 'AbortError' });
    await eventually(async () => (await blocked(name)) === 0, 'the blocking connection to close');
  });

  it('AbortSignal.timeout() ends the wait when it fires', async () => {
    const key = uniqueKey('wait-timeout');
    const failed = collect(
      createRedisReadStream(subject(redis), key, { waitForCreate: 600_000, signal: AbortSignal.timeout(200) }),
    ).catch((err: unknown) => err);
    expect(await failed).toMatchObject({ name: 'AbortError' });
  });

  it("a writer destroyed while it waits out another writer's lease closes at once and leaves the file to it", async () => {
    const key = uniqueKey('lease-destroy');
    const holder = createRedisWriteStream(subject(redis), key, { heartbeatInterval: 60_000 });
    await once(holder, 'ready');
    const second = createRedisWriteStream(subject(redis), key, { overwrite: true });
    second.on('error', () => {});
    // Its claim finds the key held, and waits for the holder's lease (three minutes).
    await eventually(async () => (await stat(subject(redis), key)).writerAlive, 'the holder to hold its lease');
    second.destroy();
    await once(second, 'close');
    holder.end("the holder's bytes");
    await once(holder, 'finish');
    expect((await get(redis, key)).toString()).toBe("the holder's bytes");
  });
});
