import { once } from 'node:events';
import { afterAll, describe, expect, it } from 'vitest';
import { Field } from '../src/format.js';
import { createRedisReadStream, createRedisWriteStream, expire, list, remove, rename, stat } from '../src/index.js';
import {
  blockedIn,
  closeAll,
  clusterSeeds,
  connectAny,
  keysOf,
  readyAnySubject,
  subject,
  uniqueConnectionName,
  uniqueKey,
} from './helpers/clients.js';
import { eventually } from './helpers/eventually.js';
import { chunkStreamOf, chunkStreamsPattern, fileKeysOf, keyPattern, slotOfFile } from './helpers/keys.js';
import { bytes, collect, get, put } from './helpers/streams.js';

const redis = connectAny();
afterAll(closeAll);

async function all<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

describe('list', () => {
  it('iterates over the stored files that match, with their stat', async () => {
    const base = uniqueKey('ls');
    const names = ['a.log', 'b.log', 'c.csv', 'sub/d.log', 'we{ir}d 100%.log'];
    for (const [i, name] of names.entries())
      await put(redis, `${base}/${name}`, bytes(100 * (i + 1)), { chunkSize: 64 });
    const logs = await all(list(subject(redis), { match: `${base}/*.log`, count: 3 }));
    expect(logs.map((f) => f.key).sort()).toEqual(
      ['a.log', 'b.log', 'sub/d.log', 'we{ir}d 100%.log'].map((n) => `${base}/${n}`).sort(),
    );
    const a = logs.find((f) => f.key === `${base}/a.log`)!;
    expect(a).toMatchObject({ state: 'complete', size: 100, chunkSize: 64 });
    expect((await all(list(subject(redis), { match: `${base}/[ab].log` }))).map((f) => f.key).sort()).toEqual([
      `${base}/a.log`,
      `${base}/b.log`,
    ]);
    expect((await all(list(subject(redis), { match: `${base}/?.csv` }))).map((f) => f.key)).toEqual([`${base}/c.csv`]);
    expect((await all(list(subject(redis), { match: `${base}/we\\{ir\\}d*` }))).map((f) => f.key)).toEqual([
      `${base}/we{ir}d 100%.log`,
    ]);
  });

  it('uses SCAN: thousands of files come in many small batches, none missed', async () => {
    const base = uniqueKey('many');
    const n = 2000;
    await Promise.all(Array.from({ length: n }, (_, i) => put(redis, `${base}/${i}`, Buffer.from(String(i)))));
    const found = await all(list(subject(redis), { match: `${base}/*`, count: 100 }));
    expect(new Set(found.map((f) => f.key)).size).toBe(n);
    expect(found.every((f) => f.size === f.key.split('/').pop()!.length)).toBe(true);
  });

  it('skips keys that are not files, and other prefixes', async () => {
    const base = uniqueKey('other');
    await put(redis, `${base}/x`, Buffer.from('x'));
    await put(redis, `${base}/y`, Buffer.from('y'), { prefix: 'elsewhere:' });
    await redis.set(fileKeysOf(`${base}/z`).meta, 'a string, not a file');
    expect((await all(list(subject(redis), { match: `${base}/*` }))).map((f) => f.key)).toEqual([`${base}/x`]);
    expect((await all(list(subject(redis), { match: `${base}/*`, prefix: 'elsewhere:' }))).map((f) => f.key)).toEqual([
      `${base}/y`,
    ]);
  });
});

describe('expire', () => {
  it('sets and removes the TTL of every key of the file', async () => {
    const key = uniqueKey('ttl');
    await put(redis, key, bytes(1000), { chunkSize: 100 });
    expect(await expire(subject(redis), key, 100)).toBe(true);
    expect((await stat(subject(redis), key)).ttl).toBeGreaterThan(90);
    const keys = await keysOf(redis, keyPattern(key));
    expect(keys).toHaveLength(3);
    for (const k of keys) expect(await redis.ttl(k)).toBeGreaterThan(90);
    expect(await expire(subject(redis), key, null)).toBe(true);
    for (const k of keys) expect(await redis.ttl(k)).toBe(-1);
    expect((await stat(subject(redis), key)).ttl).toBeUndefined();
    expect(await expire(subject(redis), uniqueKey('none'), 10)).toBe(false);
  });

  it('a file expires as a whole', async () => {
    const key = uniqueKey('ttl-gone');
    await put(redis, key, bytes(1000), { chunkSize: 100 });
    await expire(subject(redis), key, 1);
    await eventually(
      async () => (await keysOf(redis, keyPattern(key))).length === 0,
      'every key of the file to expire',
    );
    await expect(stat(subject(redis), key)).rejects.toMatchObject({ code: 'ERR_REDIS_FILE_NOT_FOUND' });
  });
});

describe('list of a file being written', () => {
  it('gives the size stored so far, as stat does', async () => {
    const key = uniqueKey('ls-writing');
    const writer = createRedisWriteStream(subject(redis), key);
    writer.write(bytes(1000)); // part of a chunk: the hash's size (whole chunks) stays 0
    await new Promise<void>((resolve, reject) => writer.flush((err) => (err ? reject(err) : resolve())));
    const listed = [];
    for await (const file of list(subject(redis), { match: key })) listed.push(file);
    expect(listed).toMatchObject([{ key, state: 'writing', size: 1000 }]);
    expect((await stat(subject(redis), key)).size).toBe(1000);
    writer.destroy();
  });
});

describe('rename', () => {
  it('moves a file atomically; the old name is gone and the new one reads the same bytes', async () => {
    const from = uniqueKey('mv-from');
    const to = uniqueKey('mv-to');
    const data = bytes(5000);
    await put(redis, from, data, { chunkSize: 1000, ttl: 100 });
    await rename(subject(redis), from, to);
    expect(await keysOf(redis, keyPattern(from))).toEqual([]);
    expect((await get(redis, to)).equals(data)).toBe(true);
    expect((await stat(subject(redis), to)).ttl).toBeGreaterThan(90);
    await expect(stat(subject(redis), from)).rejects.toMatchObject({ code: 'ERR_REDIS_FILE_NOT_FOUND' });
  });

  it('wakes a reader waiting for the new name', async () => {
    const from = uniqueKey('mv-wake-from');
    const to = uniqueKey('mv-wake-to');
    await put(redis, from, Buffer.from('hello'));
    const name = uniqueConnectionName('mv-wake');
    const waiting = collect(
      createRedisReadStream(await readyAnySubject({ connectionName: name }), to, { waitForCreate: 10_000 }),
    );
    await eventually(async () => (await blockedIn(redis, name)) === 1, 'the reader to wait for the new name');
    await rename(subject(redis), from, to);
    expect((await waiting).toString()).toBe('hello');
  });

  it('refuses to replace a file without overwrite, replaces it with overwrite', async () => {
    const from = uniqueKey('mv-a');
    const to = uniqueKey('mv-b');
    await put(redis, from, Buffer.from('new'));
    await put(redis, to, Buffer.from('old'));
    await expect(rename(subject(redis), from, to)).rejects.toMatchObject({ code: 'ERR_REDIS_FILE_EXISTS' });
    await rename(subject(redis), from, to, { overwrite: true });
    expect((await get(redis, to)).toString()).toBe('new');
    expect((await keysOf(redis, chunkStreamsPattern(to))).length).toBe(1);
  });

  it('keeps the stored bytes, encoding, type, metadata and consumers, whichever node each name lives on', async () => {
    const from = uniqueKey('mv-keep');
    const to = uniqueKey('mv-keep-to');
    const text = 'day,country\n'.repeat(2000);
    await put(redis, from, Buffer.from(text), {
      compress: true,
      chunkSize: 1024,
      contentType: 'text/csv',
      metadata: { source: 'host-1' },
      consumers: 2,
    });
    const before = await stat(subject(redis), from);
    await rename(subject(redis), from, to);
    const after = await stat(subject(redis), to);
    expect(after).toMatchObject({
      state: 'complete',
      size: before.size,
      chunks: before.chunks,
      chunkSize: 1024,
      contentEncoding: 'gzip',
      contentType: 'text/csv',
      metadata: { source: 'host-1' },
      crc32: before.crc32,
      consumers: 2,
    });
    expect((await get(redis, to, { decompress: true })).toString()).toBe(text);
    expect(await keysOf(redis, keyPattern(from))).toEqual([]);
  });

  it('never replaces a file being written at the new name, and does not offer overwrite for it', async () => {
    const from = uniqueKey('mv-onto-busy-from');
    const to = uniqueKey('mv-onto-busy');
    await put(redis, from, Buffer.from('new'));
    // Alive all along: a short interval only shortens the lease the rename waits out.
    const writer = createRedisWriteStream(subject(redis), to, { heartbeatInterval: 100 });
    writer.write(Buffer.from('abc'));
    await once(writer, 'ready');
    for (const overwrite of [false, true]) {
      const refused = await rename(subject(redis), from, to, { overwrite }).then(
        () => undefined,
        (err: unknown) => err,
      );
      // (On a cluster the names may lie on two nodes: the copy's writer is refused, in its words.)
      expect(refused).toMatchObject({ code: 'ERR_REDIS_FILE_EXISTS', message: expect.stringMatching(/writ/) });
      expect((refused as Error).message).not.toMatch(/overwrite/);
    }
    writer.destroy();
  });

  it('refuses a file that is being written, and a missing one', async () => {
    const from = uniqueKey('mv-busy');
    const writer = createRedisWriteStream(subject(redis), from);
    writer.write(Buffer.from('abc'));
    await once(writer, 'ready');
    await expect(rename(subject(redis), from, uniqueKey('mv-x'))).rejects.toMatchObject({
      code: 'ERR_REDIS_FILE_EXISTS',
    });
    writer.end();
    await new Promise((resolve) => writer.on('finish', resolve));
    await expect(rename(subject(redis), uniqueKey('mv-none'), uniqueKey('mv-y'))).rejects.toMatchObject({
      code: 'ERR_REDIS_FILE_NOT_FOUND',
    });
    await remove(subject(redis), from);
  });

  it('leaves a file renamed to its own name as it is, with or without overwrite', async () => {
    const key = uniqueKey('mv-self');
    const data = bytes(3000);
    await put(redis, key, data, { chunkSize: 1000 });
    const keys = (await keysOf(redis, keyPattern(key))).sort();
    for (const overwrite of [false, true]) {
      await rename(subject(redis), key, key, { overwrite });
      expect((await get(redis, key)).equals(data)).toBe(true);
      expect((await keysOf(redis, keyPattern(key))).sort()).toEqual(keys);
    }
    const none = uniqueKey('mv-self-none');
    await expect(rename(subject(redis), none, none)).rejects.toMatchObject({ code: 'ERR_REDIS_FILE_NOT_FOUND' });
  });

  it('a damaged piece travels with a file moved in one script; a copy across slots stops at it, the new name aborted when rename rejects', async () => {
    const from = uniqueKey('mv-damaged');
    let to = uniqueKey('mv-damaged-to');
    while (slotOfFile(to) === slotOfFile(from)) to = uniqueKey('mv-damaged-to');
    const data = bytes(10_000, 7);
    await put(redis, from, data, { chunkSize: 1000 });
    // Store the chunk stream again under the same ids, one bit of the fifth piece's bytes flipped.
    const stream = await chunkStreamOf(redis, from);
    const entries = await redis.xrangeBuffer(stream, '-', '+');
    await redis.del(stream);
    let pieces = 0;
    for (const [id, fields] of entries) {
      const at = fields.findIndex((f, i) => i % 2 === 0 && f.toString() === Field.data);
      if (at >= 0 && ++pieces === 5) fields[at + 1]![0]! ^= 1;
      await redis.xadd(stream, id.toString(), ...fields);
    }
    const renaming = rename(subject(redis), from, to);
    if (clusterSeeds() === undefined) {
      await renaming;
      await expect(get(redis, to)).rejects.toMatchObject({ code: 'ERR_REDIS_FILE_CORRUPT' });
    } else {
      await expect(renaming).rejects.toMatchObject({ code: 'ERR_REDIS_FILE_CORRUPT' });
      expect((await stat(subject(redis), to)).state).toBe('aborted');
      expect((await stat(subject(redis), from)).state).toBe('complete');
    }
  });
});
