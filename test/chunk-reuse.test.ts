/**
 * The writer fills its chunk buffers again once Redis has stored them for good, and never earlier:
 * a chunk acknowledged out of order may still be sent again by a repair, so its bytes must stay.
 */
import { Buffer } from 'node:buffer';
import { once } from 'node:events';
import { pipeline } from 'node:stream/promises';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { ChunkWindow } from '../src/chunk-window.js';
import { allocChunk, headRoomFor, TAIL_ROOM } from '../src/chunker.js';
import { HEADER_ID, Meta, pieceId } from '../src/format.js';
import { createRedisWriteStream } from '../src/index.js';
import { portOf } from '../src/redis/port.js';
import { closeAll, connect, subject, uniqueKey } from './helpers/clients.js';
import { eventually } from './helpers/eventually.js';
import { fileKeysOf, headerFields, pieceFields } from './helpers/keys.js';
import { bytes, get, splitSource } from './helpers/streams.js';

const redis = connect();
afterAll(closeAll);
afterEach(() => {
  vi.restoreAllMocks();
});

/** The size of a chunk buffer of the writer of `key`: the chunk with room for its XADD around it. */
function chunkBufferBytes(key: string, chunkSize: number): number {
  return headRoomFor(Buffer.byteLength(fileKeysOf(key).chunks('0123456789abcdef'))) + chunkSize + TAIL_ROOM;
}

describe('chunk buffer reuse', () => {
  it('a chunk acknowledged before an earlier one is released only once every chunk before it is stored', async () => {
    const key = uniqueKey('window');
    const keys = fileKeysOf(key);
    const gen = '0123456789abcdef';
    const writer = 'fedcba9876543210';
    const chunksKey = keys.chunks(gen);
    // A file in state writing held by this window's token, as the create script leaves it.
    await redis.hset(keys.meta, Meta.version, '2', Meta.gen, gen, Meta.state, 'writing');
    await redis.hset(keys.meta, Meta.writer, writer, Meta.chunkSize, '4');
    await redis.xadd(chunksKey, HEADER_ID, ...headerFields(gen, 4));
    // A foreign piece where chunk 1 belongs: chunks 0 and 1 are refused (their ids are not above the
    // top), chunks 2 and 3 are stored and acknowledged first; the repair then deletes everything
    // from chunk 0 on and sends all four again.
    await redis.xadd(chunksKey, pieceId(1), ...pieceFields(Buffer.from('xxxx')));

    const released: string[] = [];
    let failure: Error | undefined;
    const window = new ChunkWindow({
      client: portOf(subject(redis)),
      key,
      keys,
      chunksKey,
      writer,
      chunkSize: 4,
      maxInFlight: 4,
      maxInFlightBytes: 16,
      minInFlight: 4,
      retryTimeout: 10_000,
      waitReplicas: 0,
      waitTimeout: 5000,
      onAck: () => {},
      onFail: (err) => (failure = err),
      // What a reuse does: the buffer is overwritten at once. Released too early, the repair would
      // send the overwritten bytes.
      release: (chunk) => {
        released.push(chunk.data.toString('latin1'));
        chunk.whole.fill('!');
      },
    });
    const chunks = ['aaaa', 'bbbb', 'cccc', 'dddd'];
    for (const c of chunks) {
      // With room for the XADD around the bytes, as the writer's chunks have.
      const chunk = allocChunk(4, headRoomFor(Buffer.byteLength(chunksKey)));
      chunk.data.write(c, 'latin1');
      window.queue(chunk.data, chunk);
    }
    await eventually(() => window.committedChunks === chunks.length || failure !== undefined, 'every chunk stored');
    expect(failure).toBeUndefined();
    expect(window.committedChunks).toBe(chunks.length);
    expect(released).toEqual(chunks);
    const stored = await redis.xrangeBuffer(chunksKey, pieceId(0), '+');
    expect(stored.map(([, fields]) => fields[1]!.toString('latin1'))).toEqual(chunks);
    // The repair announced itself: the scenario above did take the repair path.
    const events = await redis.xrange(keys.events, '-', '+');
    expect(events.some(([, fields]) => fields[0] === 'repaired')).toBe(true);
    await redis.del(keys.meta, chunksKey, keys.events);
  });

  it('one write of many chunks is taken a window at a time, not copied whole: at most maxInFlight + 2 chunk buffers', async () => {
    const key = uniqueKey('one-write');
    const chunkSize = 16 * 1024;
    const maxInFlight = 4;
    const data = bytes(64 * chunkSize + 100, 42);
    const allocUnsafe = vi.spyOn(Buffer, 'allocUnsafe');
    const writer = createRedisWriteStream(subject(redis), key, { chunkSize, maxInFlight });
    writer.end(data);
    await once(writer, 'finish');
    const chunkBuffers = allocUnsafe.mock.calls.filter(([size]) => size === chunkBufferBytes(key, chunkSize)).length;
    allocUnsafe.mockRestore();
    expect(chunkBuffers).toBeGreaterThan(0);
    expect(chunkBuffers).toBeLessThanOrEqual(maxInFlight + 2);
    expect((await get(redis, key)).equals(data)).toBe(true);
  });

  it('a writer fed writes of at most a chunk allocates at most maxInFlight + 2 chunk buffers, whatever the file size', async () => {
    const key = uniqueKey('alloc');
    const chunkSize = 16 * 1024;
    const maxInFlight = 4;
    const data = bytes(64 * chunkSize, 41);
    const allocUnsafe = vi.spyOn(Buffer, 'allocUnsafe');
    await pipeline(
      splitSource(data, [5000, chunkSize, 1000]),
      createRedisWriteStream(subject(redis), key, { chunkSize, maxInFlight }),
    );
    const chunkBuffers = allocUnsafe.mock.calls.filter(([size]) => size === chunkBufferBytes(key, chunkSize)).length;
    allocUnsafe.mockRestore();
    // In flight: maxInFlight chunks, and one more when writes buffered while the window was full
    // (at most highWaterMark, a chunk by default) complete two chunks at once; and the one being filled.
    expect(chunkBuffers).toBeGreaterThan(0);
    expect(chunkBuffers).toBeLessThanOrEqual(maxInFlight + 2);
    expect((await get(redis, key)).equals(data)).toBe(true);
  });
});
