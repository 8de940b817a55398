import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { createRedisReadStream, createRedisWriteStream } from '../src/index.js';
import { closeAll, connectAny, onEveryNode, subject, uniqueKey } from './helpers/clients.js';
import { eventually } from './helpers/eventually.js';
import { bytes, collect, get, put } from './helpers/streams.js';

const redis = connectAny();
const admin = connectAny();
afterAll(closeAll);

describe('backpressure', () => {
  it('write() returns false once the in-flight window and the buffer are full', async () => {
    const key = uniqueKey('wbp');
    const chunkSize = 1000;
    const maxInFlight = 4;
    const highWaterMark = 2000;
    const writer = createRedisWriteStream(subject(redis), key, {
      chunkSize,
      maxInFlight,
      highWaterMark,
      contentEncoding: 'identity',
    });
    await once(writer, 'ready');
    const data = bytes(200 * chunkSize, 2);
    // Redis stops answering write commands: nothing is acknowledged while paused.
    await onEveryNode(admin, (node) => node.client('PAUSE', 2000, 'WRITE'));
    let accepted = 0;
    try {
      while (accepted < data.length) {
        const more = writer.write(data.subarray(accepted, accepted + 500));
        accepted += 500;
        if (!more) break;
        await new Promise((resolve) => setImmediate(resolve));
      }
      expect(writer.committedChunks).toBe(0);
    } finally {
      await onEveryNode(admin, (node) => node.client('UNPAUSE'));
    }
    // What is held: the chunks in flight, the chunk being filled, and the writable buffer.
    expect(accepted).toBeLessThanOrEqual(maxInFlight * chunkSize + chunkSize + highWaterMark + 500);
    expect(accepted).toBeLessThan(data.length);
    writer.end(data.subarray(accepted));
    await once(writer, 'finish');
    expect((await get(redis, key)).equals(data)).toBe(true);
  });

  it('a reader fetches only as far as its consumer pulls', async () => {
    const key = uniqueKey('rbp');
    const chunkSize = 1000;
    const data = bytes(300 * chunkSize, 3);
    await put(redis, key, data, { chunkSize });
    const readAhead = 4;
    const highWaterMark = 2000;
    const reader = createRedisReadStream(subject(redis), key, { readAhead, highWaterMark });
    const first = await new Promise<Buffer>((resolve) =>
      reader.once('data', (d: Buffer) => {
        reader.pause();
        resolve(d);
      }),
    );
    // The buffer fills up to its high-water mark, and then nothing pulls. Time is the subject of
    // the wait that follows: a reader that fetched on without a pull would show it within it.
    await eventually(() => reader.readableLength >= highWaterMark, 'the reader to fill its buffer');
    await sleep(100);
    // One batch fetched to satisfy the pull, plus at most one more to refill the buffer.
    expect(reader.deliveredBytes).toBeLessThanOrEqual(2 * readAhead * chunkSize + highWaterMark);
    const rest = await collect(reader);
    expect(Buffer.concat([first, rest]).equals(data)).toBe(true);
  });

  it('a slow consumer of a followed file does not make the reader buffer the file', async () => {
    const key = uniqueKey('rbp-follow');
    const chunkSize = 1000;
    const data = bytes(100 * chunkSize, 4);
    const reader = createRedisReadStream(subject(redis), key, {
      readAhead: 2,
      highWaterMark: 1000,
      waitForCreate: 5000,
    });
    // The consumer takes one piece and then stops pulling, while the whole file arrives.
    const first = new Promise<Buffer>((resolve) =>
      reader.once('data', (d: Buffer) => {
        reader.pause();
        resolve(d);
      }),
    );
    const writer = createRedisWriteStream(subject(redis), key, { chunkSize });
    writer.end(data);
    await once(writer, 'finish');
    const head = await first;
    // As above: the buffer is full, then a quiet spell in which nothing pulls.
    await eventually(() => reader.readableLength >= 1000, 'the reader to fill its buffer');
    await sleep(100);
    expect(reader.deliveredBytes).toBeLessThanOrEqual(6 * chunkSize);
    const rest = await collect(reader);
    expect(Buffer.concat([head, rest]).equals(data)).toBe(true);
  });
});
