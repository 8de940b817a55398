/**
 * Bad arguments to the functions that return a promise or an async iterator: never a throw at the
 * call (a caller's `.catch()` or `for await` sees the error), always the coded TypeError /
 * RangeError that the stream factories throw, and no I/O. The factories' synchronous throws are
 * in errors.test.ts.
 */
import { PassThrough } from 'node:stream';
import { Redis } from 'ioredis';
import { createSentinel } from 'redis';
import { afterAll, describe, expect, it } from 'vitest';
import { channelLogKey, DEFAULT_PREFIX } from '../src/format.js';
import {
  closeChannel,
  expire,
  list,
  type RedisClient,
  receiveFiles,
  remove,
  removeChannel,
  rename,
  sendFiles,
  stat,
} from '../src/index.js';
import { closeAll, connect, subject, uniqueKey } from './helpers/clients.js';

const redis = connect();
afterAll(closeAll);

type Expected = { name: 'TypeError' | 'RangeError'; code: string; message?: RegExp };

const TYPE: Expected = { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' };
const VALUE: Expected = { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' };
const RANGE: Expected = { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' };

/** Call `fn`, failing the test if it throws synchronously; returns what it returned. */
function callWithoutThrowing<T>(fn: () => T): T {
  let result: T | undefined;
  let thrown: unknown;
  try {
    result = fn();
  } catch (err) {
    thrown = err;
  }
  expect(thrown, 'must not throw at the call').toBeUndefined();
  return result as T;
}

function matches(expected: Expected): Record<string, unknown> {
  const message = expect.stringMatching(expected.message ?? /^Expected `/);
  return { name: expected.name, code: expected.code, message };
}

/** An ioredis client with a keyPrefix, never connected: only its options are looked at. */
const prefixed = new Redis({ lazyConnect: true, keyPrefix: 'app:' }) as unknown as RedisClient;

/**
 * A node-redis sentinel, never connected: it has the members a node-redis client is told by, but
 * sends commands with other arguments.
 */
const sentinel = createSentinel({
  name: 'mymaster',
  sentinelRootNodes: [{ host: '127.0.0.1', port: 1 }],
}) as unknown as RedisClient;

describe('promise-returning functions reject on bad arguments, never throw', () => {
  const key = 'k';
  const stream = (): PassThrough => new PassThrough();
  const cases: [string, () => Promise<unknown>, Expected][] = [
    ['stat with a non-client', () => stat({} as never, key), TYPE],
    ['stat with null as the client', () => stat(null as never, key), TYPE],
    ['stat with a client that has a keyPrefix', () => stat(prefixed, key), { ...VALUE, message: /keyPrefix/ }],
    [
      'sendFiles with a client that has a keyPrefix',
      () => sendFiles(prefixed, 'c', []),
      { ...VALUE, message: /keyPrefix/ },
    ],
    ['stat with a non-string key', () => stat(subject(redis), 42 as never), TYPE],
    ['stat with an empty key', () => stat(subject(redis), ''), VALUE],
    ['stat with a key holding a lone surrogate', () => stat(subject(redis), 'a\uD800b'), VALUE],
    [
      'stat with an object that has the methods of an ioredis client and no options',
      () => stat({ callBuffer() {}, call() {}, duplicate() {}, pipeline() {} } as never, key),
      TYPE,
    ],
    [
      'stat with a node-redis sentinel (never connected: only its shape is looked at)',
      () => stat(sentinel, key),
      { ...TYPE, message: /not a node-redis sentinel/ },
    ],
    [
      'sendFiles with a node-redis sentinel',
      () => sendFiles(sentinel, 'c', []),
      { ...TYPE, message: /not a node-redis sentinel/ },
    ],
    ['removeChannel with a lone surrogate', () => removeChannel(subject(redis), '\uDC00'), VALUE],
    ['stat with an unknown option', () => stat(subject(redis), key, { chunkSize: 1 } as never), VALUE],
    ['remove with a bad prefix', () => remove(subject(redis), key, { prefix: 1 as never }), TYPE],
    ['remove with a prefix holding a brace', () => remove(subject(redis), key, { prefix: 'a{' }), VALUE],
    ['rename with an empty new name', () => rename(subject(redis), key, ''), VALUE],
    [
      'rename with overwrite not a boolean',
      () => rename(subject(redis), key, 'k2', { overwrite: 'yes' as never }),
      TYPE,
    ],
    ['expire with 0 seconds', () => expire(subject(redis), key, 0), RANGE],
    ['expire with seconds as a string', () => expire(subject(redis), key, '5' as never), TYPE],
    ['sendFiles with an empty channel', () => sendFiles(subject(redis), '', []), VALUE],
    ['sendFiles with files not an array', () => sendFiles(subject(redis), 'c', 'a.log' as never), TYPE],
    [
      'sendFiles with a file neither a path nor { name, stream }',
      () => sendFiles(subject(redis), 'c', [42 as never]),
      VALUE,
    ],
    [
      'sendFiles with an empty file name',
      () => sendFiles(subject(redis), 'c', [{ name: '', stream: stream() }]),
      VALUE,
    ],
    ['sendFiles with onStart not a function', () => sendFiles(subject(redis), 'c', [], { onStart: 42 as never }), TYPE],
    ['sendFiles with chunkSize 0', () => sendFiles(subject(redis), 'c', [], { chunkSize: 0 }), RANGE],
    ['sendFiles with options not an object', () => sendFiles(subject(redis), 'c', [], 5 as never), TYPE],
    ['sendFiles with overwrite', () => sendFiles(subject(redis), 'c', [], { overwrite: true } as never), VALUE],
    ['sendFiles with resume', () => sendFiles(subject(redis), 'c', [], { resume: true } as never), VALUE],
    [
      'sendFiles with a stream that only has pipe()',
      () => sendFiles(subject(redis), 'c', [{ name: 'a', stream: { pipe: () => {} } as never }]),
      TYPE,
    ],
    [
      'sendFiles with a negative size',
      () => sendFiles(subject(redis), 'c', [{ name: 'a', stream: stream(), size: -1 }]),
      RANGE,
    ],
    [
      'sendFiles with a size not a number',
      () => sendFiles(subject(redis), 'c', [{ name: 'a', stream: stream(), size: 'big' as never }]),
      TYPE,
    ],
    [
      'sendFiles with a bad contentEncoding',
      () => sendFiles(subject(redis), 'c', [{ name: 'a', stream: stream(), contentEncoding: 'not valid!' }]),
      VALUE,
    ],
    ['closeChannel with a non-client', () => closeChannel({} as never, 'c'), TYPE],
    ['closeChannel with a bad prefix', () => closeChannel(subject(redis), 'c', { prefix: 'a}' }), VALUE],
    ['removeChannel with a non-string channel', () => removeChannel(subject(redis), 7 as never), TYPE],
  ];
  for (const [name, call, expected] of cases) {
    it(`${name}: ${expected.name} ${expected.code}`, async () => {
      const result = callWithoutThrowing(call);
      expect(result).toBeInstanceOf(Promise);
      await expect(result).rejects.toMatchObject(matches(expected));
    });
  }

  it('sendFiles checks every argument before any I/O: nothing is announced, the source is not read', async () => {
    const channel = uniqueKey('args-send');
    const source = stream();
    source.end('never read');
    const sending = sendFiles(subject(redis), channel, [{ name: 'a.log', stream: source }], { chunkSize: 0 });
    await expect(sending).rejects.toMatchObject(matches(RANGE));
    expect(await redis.exists(channelLogKey(DEFAULT_PREFIX, channel))).toBe(0);
    expect(source.readableLength).toBe('never read'.length);
  });

  it('sendFiles checks every file before any I/O: a bad second file stops the first one too', async () => {
    const channel = uniqueKey('args-send-files');
    const first = stream();
    first.end('never read');
    const files = [
      { name: 'a.log', stream: first },
      { name: 'b.log', stream: stream(), contentEncoding: 'not valid!' },
    ];
    await expect(sendFiles(subject(redis), channel, files)).rejects.toMatchObject(matches(VALUE));
    expect(await redis.exists(channelLogKey(DEFAULT_PREFIX, channel))).toBe(0);
    expect(first.readableLength).toBe('never read'.length);
  });

  it('sendFiles checks every name before any I/O: a second name with a lone surrogate stops the first file too', async () => {
    const channel = uniqueKey('args-send-names');
    const first = stream();
    first.end('never read');
    const files = [
      { name: 'a.log', stream: first },
      { name: 'b\uD800.log', stream: stream() },
    ];
    await expect(sendFiles(subject(redis), channel, files)).rejects.toMatchObject({
      ...matches(VALUE),
      message: expect.stringMatching(/^Expected `files\[1\]\.name`/),
    });
    await expect(sendFiles(subject(redis), channel, ['/tmp/ok.log', '/tmp/\uDC00'])).rejects.toMatchObject({
      ...matches(VALUE),
      message: expect.stringMatching(/^Expected `files\[1\]` /),
    });
    await expect(sendFiles(subject(redis), channel, ['/'])).rejects.toMatchObject(matches(VALUE));
    expect(await redis.exists(channelLogKey(DEFAULT_PREFIX, channel))).toBe(0);
    expect(first.readableLength).toBe('never read'.length);
  });
});

describe('functions that return an async iterator reject its first step on bad arguments, never throw', () => {
  const cases: [string, () => AsyncIterableIterator<unknown>, Expected][] = [
    ['list with a non-client', () => list({} as never), TYPE],
    ['list with a client that has a keyPrefix', () => list(prefixed), { ...VALUE, message: /keyPrefix/ }],
    ['list with count 0', () => list(subject(redis), { count: 0 }), RANGE],
    ['list with match not a string', () => list(subject(redis), { match: 5 as never }), TYPE],
    ['list with an unknown option', () => list(subject(redis), { pattern: '*' } as never), VALUE],
    ['receiveFiles with an empty channel', () => receiveFiles(subject(redis), '', { consumer: 'x' }), VALUE],
    ['receiveFiles without options', () => receiveFiles(subject(redis), 'c', undefined as never), TYPE],
    ['receiveFiles without a consumer', () => receiveFiles(subject(redis), 'c', {} as never), TYPE],
    ['receiveFiles with an empty consumer', () => receiveFiles(subject(redis), 'c', { consumer: '' }), VALUE],
    [
      'receiveFiles with idleTimeout 0',
      () => receiveFiles(subject(redis), 'c', { consumer: 'x', idleTimeout: 0 }),
      RANGE,
    ],
    ['receiveFiles with end', () => receiveFiles(subject(redis), 'c', { consumer: 'x', end: 2 } as never), VALUE],
    ['receiveFiles with start', () => receiveFiles(subject(redis), 'c', { consumer: 'x', start: 6 } as never), VALUE],
    [
      'receiveFiles with a non-signal',
      () => receiveFiles(subject(redis), 'c', { consumer: 'x', signal: {} as never }),
      TYPE,
    ],
  ];
  for (const [name, call, expected] of cases) {
    it(`${name}: ${expected.name} ${expected.code} from the first next(), then the iteration is done`, async () => {
      const iterator = callWithoutThrowing(call);
      expect(typeof iterator[Symbol.asyncIterator]).toBe('function');
      await expect(iterator.next()).rejects.toMatchObject(matches(expected));
      expect(await iterator.next()).toEqual({ done: true, value: undefined });
    });
  }

  it('a for await over list with bad arguments rejects with the coded error', async () => {
    const loop = async (): Promise<number> => {
      let n = 0;
      for await (const _ of list(subject(redis), { count: -1 })) n++;
      return n;
    };
    await expect(loop()).rejects.toMatchObject(matches(RANGE));
  });

  it('receiveFiles with bad options creates no consumer group on the channel', async () => {
    const channel = uniqueKey('args-receive');
    const first = receiveFiles(subject(redis), channel, { consumer: 'x', readAhead: 0 }).next();
    await expect(first).rejects.toMatchObject(matches(RANGE));
    expect(await redis.exists(channelLogKey(DEFAULT_PREFIX, channel))).toBe(0);
  });
});
