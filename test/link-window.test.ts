/**
 * Windows sized to the link: across a link with a long round trip (a proxy that delays every
 * byte) the writer puts more than its floor in flight and the reader asks for more than its floor
 * of two batches ahead, never more than their byte budgets; on loopback both stay at the floor. What is observed
 * is what the client was asked to send: the XADDs and XRANGEs not yet answered, counted as they go.
 * Most tests run two streams on one connection (the second starts from what the first learned);
 * the first stream on a new connection, one that is still connecting, follows the link too.
 */

import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisReadStream, createRedisWriteStream } from '../src/index.js';
import { type Arg, portOf, type RedisClient } from '../src/redis/port.js';
import { linkMemory } from '../src/window-size.js';
import {
  closeAll,
  connect,
  connectSubject,
  sharedRedisUrl,
  subject,
  subjectReady,
  uniqueKey,
} from './helpers/clients.js';
import { chunkOfId } from './helpers/monitor.js';
import { startProxy, type Proxy as TcpProxy } from './helpers/proxy.js';
import { bytes, collect, get, put } from './helpers/streams.js';

const KiB = 1024;
const MiB = 1024 * KiB;

const redis = connect();
/** Every byte takes 25 ms each way through it: a round trip of 50 ms. */
let slow: TcpProxy;

beforeAll(async () => {
  slow = await startProxy(Number(new URL(sharedRedisUrl()).port), '127.0.0.1', { delayMs: 25 });
});
afterAll(async () => {
  await closeAll();
  await slow.close();
});

/**
 * Wrap the package's sending of commands on `client` (its port, which every stream of the client
 * uses), to count what is in flight: commands sent as usual, and chunks handed over encoded.
 */
function watchSends(client: RedisClient, watch: (args: readonly Arg[], sent: Promise<unknown>) => void): void {
  const port = portOf(client);
  const send = port.send.bind(port);
  port.send = (key, args, buffers) => {
    const sent = send(key, args, buffers);
    watch(args, sent);
    return sent;
  };
  const sendEncoded = port.sendEncoded?.bind(port);
  if (sendEncoded) {
    port.sendEncoded = (key, args, wire, current) => {
      const sent = sendEncoded(key, args, wire, current);
      watch(args, sent);
      return sent;
    };
  }
}

/** The most bytes of piece writes that `client` had sent and Redis had not answered, at once. */
function watchWrites(client: RedisClient): { readonly most: number } {
  let now = 0;
  const seen = { most: 0 };
  watchSends(client, (args, sent) => {
    if (String(args[0]).toUpperCase() !== 'XADD') return;
    const size = args.find((a): a is Buffer => Buffer.isBuffer(a))?.length ?? 0;
    now += size;
    seen.most = Math.max(seen.most, now);
    sent.finally(() => (now -= size)).catch(() => {});
  });
  return seen;
}

/** The most batch reads (XRANGE with a COUNT above 1) that `client` had sent and not had answered, at once. */
function watchReads(client: RedisClient): { readonly most: number; readonly chunks: number } {
  let now = 0;
  const seen = { most: 0, chunks: 0 };
  watchSends(client, (args, sent) => {
    if (String(args[0]).toUpperCase() !== 'XRANGE') return;
    const at = args.findIndex((a) => String(a).toUpperCase() === 'COUNT');
    if (at < 0 || Number(args[at + 1]) <= 1) return;
    // A batch bounded by chunk: the chunks it asks for. (The last one reads to the stream's end.)
    if (String(args[3]) !== '+') seen.chunks = chunkOfId(String(args[3])) - chunkOfId(String(args[2]));
    now++;
    seen.most = Math.max(seen.most, now);
    sent.finally(() => now--).catch(() => {});
  });
  return seen;
}

describe('the writer across a link with a long round trip', () => {
  it('puts more than its floor of 16 chunks in flight, and never more than maxInFlightBytes', async () => {
    const client = connectSubject(slow.url);
    const writes = watchWrites(client);
    // Connected first: the second stream starts from what the first learned.
    await subjectReady(client);
    const data = bytes(16 * MiB, 141);
    const chunkSize = 64 * KiB;
    for (const key of [uniqueKey('link-write'), uniqueKey('link-write')]) {
      await put(client, key, data, { chunkSize, maxInFlightBytes: 4 * MiB });
      expect((await get(redis, key)).equals(data)).toBe(true);
    }
    expect(writes.most).toBeGreaterThan(16 * chunkSize);
    expect(writes.most).toBeLessThanOrEqual(4 * MiB);
  });

  it('grows past its floor as the only stream of a client created just before it', async () => {
    // As a command-line tool does: the client still connecting when the stream starts.
    const client = connectSubject(slow.url, { lazyConnect: false });
    const writes = watchWrites(client);
    const data = bytes(16 * MiB, 142);
    const chunkSize = 64 * KiB;
    const key = uniqueKey('link-write-first');
    await put(client, key, data, { chunkSize, maxInFlightBytes: 4 * MiB });
    expect((await get(redis, key)).equals(data)).toBe(true);
    expect(writes.most).toBeGreaterThan(16 * chunkSize);
    expect(writes.most).toBeLessThanOrEqual(4 * MiB);
  });

  it('keeps a window of maxInFlight pieces whatever the link', async () => {
    const client = connectSubject(slow.url);
    const writes = watchWrites(client);
    const key = uniqueKey('link-write-pieces');
    const data = bytes(4 * MiB, 142);
    const chunkSize = 64 * KiB;
    await put(client, key, data, { chunkSize, maxInFlight: 4 });
    expect(writes.most).toBeLessThanOrEqual(4 * chunkSize);
    expect((await get(redis, key)).equals(data)).toBe(true);
  });

  it('sends one piece at a time when the budget is smaller than a chunk', async () => {
    const client = connectSubject(slow.url);
    const writes = watchWrites(client);
    const key = uniqueKey('link-write-small-budget');
    const data = bytes(300 * KiB, 143);
    const chunkSize = 64 * KiB;
    await put(client, key, data, { chunkSize, maxInFlightBytes: 1000 });
    expect(writes.most).toBe(chunkSize);
    expect((await get(redis, key)).equals(data)).toBe(true);
  });
});

describe('the reader across a link with a long round trip', () => {
  const chunkSize = 64 * KiB;
  /** Batches of 4 chunks: 256 KiB. */
  const batch = { readAhead: 4 };

  it('asks for more than two batches ahead, and never for more than maxReadAheadBytes', async () => {
    const key = uniqueKey('link-read');
    const data = bytes(16 * MiB, 144);
    await put(redis, key, data, { chunkSize });
    const client = connectSubject(slow.url);
    const reads = watchReads(client);
    for (let i = 0; i < 2; i++) {
      expect((await get(client, key, { ...batch, maxReadAheadBytes: 1 * MiB })).equals(data)).toBe(true);
    }
    expect(reads.chunks).toBe(4);
    expect(reads.most).toBeGreaterThan(2);
    expect(reads.most * 4 * chunkSize).toBeLessThanOrEqual(1 * MiB);
  });

  it('asks for more than two batches ahead as the only stream of a client created just before it', async () => {
    const key = uniqueKey('link-read-first');
    const data = bytes(16 * MiB, 145);
    await put(redis, key, data, { chunkSize });
    const client = connectSubject(slow.url, { lazyConnect: false });
    const reads = watchReads(client);
    expect((await get(client, key, { ...batch, maxReadAheadBytes: 1 * MiB })).equals(data)).toBe(true);
    expect(reads.most).toBeGreaterThan(2);
    expect(reads.most * 4 * chunkSize).toBeLessThanOrEqual(1 * MiB);
  });

  it('reads a file of pieces (its batches bounded by chunk, whatever their entries) exactly', async () => {
    const key = uniqueKey('link-read-pieces');
    const data = bytes(2 * MiB, 145);
    // Each write flushed: chunks of several pieces.
    const writer = createRedisWriteStream(subject(redis), key, { chunkSize, flushInterval: 0 });
    for (let at = 0; at < data.length; at += 40 * KiB) {
      writer.write(data.subarray(at, at + 40 * KiB));
      await new Promise<void>((resolve, reject) => writer.flush((err) => (err ? reject(err) : resolve())));
    }
    await new Promise<void>((resolve, reject) => writer.end((err?: Error | null) => (err ? reject(err) : resolve())));
    const client = connectSubject(slow.url);
    // Read twice: the second read starts from what the first learned of the link.
    expect((await get(client, key, batch)).equals(data)).toBe(true);
    expect((await get(client, key, batch)).equals(data)).toBe(true);
  });

  it('reads a range exactly, asking for nothing past its end', async () => {
    const key = uniqueKey('link-read-range');
    const data = bytes(8 * MiB, 146);
    await put(redis, key, data, { chunkSize });
    const client = connectSubject(slow.url);
    expect((await get(client, key, batch)).equals(data)).toBe(true);
    const start = 1 * MiB + 17;
    const end = 5 * MiB + 3;
    const part = await collect(createRedisReadStream(client, key, { ...batch, start, end }));
    expect(part.equals(data.subarray(start, end + 1))).toBe(true);
  });

  it('reads from the middle of a large file to its end exactly, its first batches asked for together', async () => {
    const key = uniqueKey('link-read-tail');
    const data = bytes(8 * MiB, 149);
    await put(redis, key, data, { chunkSize });
    const client = connectSubject(slow.url);
    const reads = watchReads(client);
    expect((await get(client, key, batch)).equals(data)).toBe(true);
    const start = 2 * MiB + 5;
    const part = await collect(createRedisReadStream(client, key, { ...batch, start }));
    expect(part.equals(data.subarray(start))).toBe(true);
    expect(reads.most).toBeGreaterThan(2);
  });
});

describe('on loopback', () => {
  // Large chunks and batches: the floor (16 chunks, one batch ahead) stays far above what a round
  // trip of loopback holds, even on a busy machine.
  const chunkSize = 1 * MiB;

  it('the writer stays at its floor of 16 chunks', async () => {
    const client = connectSubject();
    const writes = watchWrites(client);
    await subjectReady(client);
    const data = bytes(48 * MiB, 147);
    for (const key of [uniqueKey('loopback-write'), uniqueKey('loopback-write')]) {
      await put(client, key, data, { chunkSize });
      expect((await get(redis, key)).equals(data)).toBe(true);
    }
    expect(writes.most).toBeLessThanOrEqual(16 * chunkSize);
  });

  it.each([
    ['two batches ahead when maxReadAheadBytes holds them', 32 * MiB, 2],
    ['one batch ahead when maxReadAheadBytes holds one batch only', 31 * MiB, 1],
  ])('the reader asks for %s', async (_, budget, most) => {
    const key = uniqueKey('loopback-read');
    const data = bytes(48 * MiB, 148);
    await put(redis, key, data, { chunkSize });
    const client = connectSubject();
    const reads = watchReads(client);
    const options = { readAhead: 16, readAheadBytes: 16 * MiB, maxReadAheadBytes: budget };
    for (let i = 0; i < 2; i++) expect((await get(client, key, options)).equals(data)).toBe(true);
    expect(reads.chunks).toBe(16);
    expect(reads.most).toBe(most);
  });
});

describe('the budgets are checked at the call', () => {
  it('maxInFlightBytes and maxReadAheadBytes take positive integers', () => {
    for (const bad of [0, -1, 1.5]) {
      expect(() => createRedisWriteStream(subject(redis), 'k', { maxInFlightBytes: bad })).toThrow(
        expect.objectContaining({ name: 'RangeError', code: 'ERR_OUT_OF_RANGE' }),
      );
      expect(() => createRedisReadStream(subject(redis), 'k', { maxReadAheadBytes: bad })).toThrow(
        expect.objectContaining({ name: 'RangeError', code: 'ERR_OUT_OF_RANGE' }),
      );
    }
    expect(() => createRedisWriteStream(subject(redis), 'k', { maxInFlightBytes: '1' as never })).toThrow(
      expect.objectContaining({ name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' }),
    );
    expect(() => createRedisReadStream(subject(redis), 'k', { maxReadAheadBytes: '1' as never })).toThrow(
      expect.objectContaining({ name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' }),
    );
  });
});

describe('the latency of a link', () => {
  // A delay in a process of its own, as a network's: in this process a busy event loop would hold
  // the proxy's timers back too, and the round trip would grow by exactly the busy time.
  let delay: ChildProcess;
  let url: string;
  beforeAll(async () => {
    const script = fileURLToPath(new URL('../benchmarks/lib/delay-proxy.mjs', import.meta.url));
    const target = new URL(sharedRedisUrl());
    delay = fork(script, [target.hostname, target.port, '25'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const [message] = (await once(delay, 'message')) as [{ type: string; port: number }];
    url = `redis://127.0.0.1:${message.port}`;
  });
  afterAll(async () => {
    if (delay.exitCode === null && delay.signalCode === null) {
      const exited = once(delay, 'exit');
      delay.disconnect();
      await exited;
    }
  });

  it('is kept when the event loop is busy during a later probe', async () => {
    const client = connectSubject(url);
    await subjectReady(client);
    const data = bytes(1 * MiB, 143);
    // A first file: its probe goes out alone and measures the round trip of 50 ms.
    await put(client, uniqueKey('link-probe'), data);
    const memory = linkMemory(portOf(client), 'write');
    // The loop's idle time during the probe: less than the round trip when the machine is loaded
    // (the process descheduled while it runs), yet well above what a busy probe below measures.
    const first = memory.latency;
    expect(first).toBeGreaterThan(20);
    // Later files go out behind their claims; here the loop is kept busy for 40 ms right after each
    // probe is sent, as a large first window or other streams would keep it. Such a probe sees the
    // loop idle for only the last 10 ms of the round trip: it must not count (a probe that did
    // count would bring the estimate down to about 10 ms).
    watchSends(client, (args) => {
      if (String(args[0]).toUpperCase() !== 'EXISTS') return;
      const until = performance.now() + 40;
      while (performance.now() < until) {}
    });
    for (let i = 0; i < 3; i++) await put(client, uniqueKey('link-probe'), data);
    expect(memory.latency).toBeGreaterThanOrEqual(Math.min(first, 40));
  });
});
