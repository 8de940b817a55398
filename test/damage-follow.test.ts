/**
 * Damage met by a follower of a file being written ends in a coded error within a bound, never in
 * a normal end with other bytes, and a damaged piece's bytes are never delivered. (Damage to
 * complete files: the conformance vectors.)
 */
import { once } from 'node:events';
import { afterAll, describe, expect, it } from 'vitest';
import {
  createRedisReadStream,
  createRedisWriteStream,
  type RedisReadStream,
  type RedisWriteStream,
} from '../src/index.js';
import { closeAll, connectAny, subject, uniqueKey } from './helpers/clients.js';
import { eventually } from './helpers/eventually.js';
import { chunkStreamOf, fileKeysOf, pieceFields } from './helpers/keys.js';

const redis = connectAny();
afterAll(closeAll);

/** A follower of `key` that keeps what it delivered and how it ended. */
function follow(key: string, options = {}): { reader: RedisReadStream; data(): string; outcome: Promise<unknown> } {
  const reader = createRedisReadStream(subject(redis), key, { idleTimeout: 60_000, ...options });
  const parts: Buffer[] = [];
  reader.on('data', (d: Buffer) => parts.push(d));
  const outcome = new Promise((resolve) => {
    reader.on('error', resolve);
    reader.on('end', () => resolve('end'));
  });
  return { reader, data: () => Buffer.concat(parts).toString(), outcome };
}

/** A live writer of 8-byte chunks that has stored "abcdefgh" + "ij" (pieces 0-2 and 1-2), flushing by hand. */
async function liveFile(name: string): Promise<{ key: string; writer: RedisWriteStream; stream: string }> {
  const key = uniqueKey(name);
  const writer = createRedisWriteStream(subject(redis), key, { chunkSize: 8, flushInterval: 0 });
  writer.on('error', () => {});
  writer.write('abcdefghij');
  await new Promise<void>((resolve, reject) => writer.flush((err) => (err ? reject(err) : resolve())));
  return { key, writer, stream: await chunkStreamOf(redis, key) };
}

/** Take the lease from the writer without telling it, as if its process had died long ago. */
async function silenceWriter(key: string, writer: RedisWriteStream): Promise<void> {
  await redis.hset(fileKeysOf(key).meta, 'writer', '0000000000000000', 'hb', '1');
  writer.destroy();
  await once(writer, 'close');
}

describe('damage met while following', () => {
  it('a piece whose CRC does not match: CORRUPT, and none of its bytes delivered', async () => {
    const { key, writer, stream } = await liveFile('bad-crc');
    const f = follow(key);
    await eventually(() => f.data() === 'abcdefghij', 'the follower to catch up');
    // The next piece of chunk 1, with a CRC of other bytes.
    await redis.xadd(stream, '1-3', 'd', 'XYZ', 'c', pieceFields(Buffer.from('xyz'))[3] as string);
    expect(await f.outcome).toMatchObject({
      code: 'ERR_REDIS_FILE_CORRUPT',
      message: /checksum mismatch in piece 1-3/,
    });
    expect(f.data()).toBe('abcdefghij');
    writer.destroy();
  });

  it('a gap whose writer lost its lease: CORRUPT at once, not after idleTimeout', async () => {
    const { key, writer, stream } = await liveFile('gap-dead');
    const f = follow(key);
    await eventually(() => f.data() === 'abcdefghij', 'the follower to catch up');
    await silenceWriter(key, writer);
    // Piece 1-3 is missing; 1-4 is there.
    await redis.xadd(stream, '1-4', ...pieceFields(Buffer.from('mn')));
    await redis.hset(fileKeysOf(key).meta, 'state', 'writing');
    expect(await f.outcome).toMatchObject({ code: 'ERR_REDIS_FILE_CORRUPT', message: /entries are missing/ });
    expect(f.data()).toBe('abcdefghij');
  });

  it('a gap after Redis lost acknowledged pieces (lost set): CORRUPT, never ABORTED', async () => {
    const { key, writer, stream } = await liveFile('gap-lost');
    const f = follow(key);
    await eventually(() => f.data() === 'abcdefghij', 'the follower to catch up');
    await redis.hset(fileKeysOf(key).meta, 'lost', '1');
    await redis.xadd(stream, '2-2', ...pieceFields(Buffer.from('qrstuvwx')));
    expect(await f.outcome).toMatchObject({ code: 'ERR_REDIS_FILE_CORRUPT' });
    writer.destroy();
  });

  it('an abort record after a loss (lost set): CORRUPT, never ABORTED', async () => {
    const { key, writer, stream } = await liveFile('abort-lost');
    const f = follow(key);
    await eventually(() => f.data() === 'abcdefghij', 'the follower to catch up');
    await silenceWriter(key, writer);
    await redis.xadd(stream, '2-2', 'abort', 'Redis lost acknowledged pieces');
    await redis.hset(fileKeysOf(key).meta, 'state', 'aborted', 'lost', '1');
    expect(await f.outcome).toMatchObject({ code: 'ERR_REDIS_FILE_CORRUPT' });
  });

  it('a follow: false reader meets a gap in a file with a live writer: CORRUPT at once', async () => {
    const { key, writer, stream } = await liveFile('gap-nofollow');
    await redis.xadd(stream, '1-4', ...pieceFields(Buffer.from('mn')));
    const f = follow(key, { follow: false });
    expect(await f.outcome).toMatchObject({ code: 'ERR_REDIS_FILE_CORRUPT', message: /expected entry 1-3, found 1-4/ });
    expect(f.data()).toBe('abcdefghij');
    writer.destroy();
  });

  it('an entry after the end record: CORRUPT, not a normal end', async () => {
    const { key, writer, stream } = await liveFile('after-end');
    // A follower that opened the file while it was being written, and holds what it fetched:
    // it reads on only once the end record and an entry after it are both stored.
    const reader = createRedisReadStream(subject(redis), key, { highWaterMark: 1, idleTimeout: 60_000 });
    const opened = once(reader, 'file');
    reader.read(0);
    expect((await opened)[0]).toMatchObject({ state: 'writing' });
    await eventually(() => reader.readableLength > 0, 'the follower to fetch the stored pieces');
    writer.end();
    await once(writer, 'finish');
    await redis.xadd(stream, '3-2', ...pieceFields(Buffer.from('late')));
    const parts: Buffer[] = [];
    const outcome = new Promise((resolve) => {
      reader.on('error', resolve);
      reader.on('end', () => resolve('end'));
    });
    reader.on('data', (d: Buffer) => parts.push(d));
    expect(await outcome).toMatchObject({ code: 'ERR_REDIS_FILE_CORRUPT', message: /follow the end record/ });
    expect(Buffer.concat(parts).toString()).toBe('abcdefghij');
  });

  it('a piece that overfills its chunk: CORRUPT, none of its bytes delivered', async () => {
    const { key, writer, stream } = await liveFile('overfill');
    const f = follow(key);
    await eventually(() => f.data() === 'abcdefghij', 'the follower to catch up');
    await redis.xadd(stream, '1-3', ...pieceFields(Buffer.from('klmnopqrst')));
    expect(await f.outcome).toMatchObject({ code: 'ERR_REDIS_FILE_CORRUPT', message: /chunk size is 8/ });
    expect(f.data()).toBe('abcdefghij');
    writer.destroy();
  });
});
