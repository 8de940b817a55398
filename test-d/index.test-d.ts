// Type tests of the public API, run by `npm run test:types` (tsd) against the BUILT declarations:
// `redis-file-stream` resolves to this package through its "exports" map. This file is an ES module
// (the package is "type": "module"), so it sees dist/esm/index.d.ts; test-d/cjs/ checks the
// CommonJS declarations the same way. Run `npm run build` first.
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Cluster, Redis } from 'ioredis';
import {
  type AnnouncedFile,
  closeChannel,
  crcImplementation,
  createRedisReadStream,
  createRedisWriteStream,
  ErrorCodes,
  expire,
  type FileStat,
  type FileState,
  type KeyOptions,
  type ListOptions,
  list,
  type MemoryWait,
  type Progress,
  type ReadStreamOptions,
  type ReceivedFile,
  type RedisClient,
  RedisFileError,
  type RedisFileErrorCode,
  type RedisReadStream,
  type RedisWriteStream,
  type RenameOptions,
  receiveFiles,
  remove,
  rename,
  type SentFile,
  sendFiles,
  stat,
  type WriteStreamOptions,
} from 'redis-file-stream';
import { expectAssignable, expectError, expectNotAssignable, expectNotType, expectType } from 'tsd';

declare const redis: Redis;
declare const cluster: Cluster;
declare const signal: AbortSignal;

/** Every documented error code. A new, removed or renamed code must fail this file. */
type DocumentedCode =
  | 'ERR_REDIS_FILE_NOT_FOUND'
  | 'ERR_REDIS_FILE_EXISTS'
  | 'ERR_REDIS_FILE_ABORTED'
  | 'ERR_REDIS_FILE_CORRUPT'
  | 'ERR_REDIS_FILE_TIMEOUT'
  | 'ERR_REDIS_FILE_RANGE'
  | 'ERR_REDIS_FILE_FORMAT'
  | 'ERR_REDIS_FILE_REDIS'
  | 'ERR_REDIS_FILE_DECODE'
  | 'ERR_REDIS_FILE_LINE_TOO_LONG';

/** A value of type T, for checks on types that have no convenient expression. */
declare function typeOf<T>(): T;

// ---------------------------------------------------------------------------------------------
// Clients: an ioredis Redis or Cluster.

expectAssignable<RedisClient>(redis);
expectAssignable<RedisClient>(cluster);
expectNotAssignable<RedisClient>({});
expectNotAssignable<RedisClient>('redis://127.0.0.1:6379');

// ---------------------------------------------------------------------------------------------
// createRedisWriteStream

const writer = createRedisWriteStream(redis, 'k');
expectType<RedisWriteStream>(writer);
expectAssignable<Writable>(writer);
expectNotAssignable<Readable>(writer);
expectType<RedisWriteStream>(createRedisWriteStream(cluster, 'k'));
expectType<RedisWriteStream>(createRedisWriteStream(redis, 'k', {}));
expectType<RedisWriteStream>(createRedisWriteStream(redis, 'k', undefined));
expectType<string>(writer.key);
expectType<number>(writer.committedBytes);
expectType<number>(writer.committedChunks);
expectType<string>(writer.contentEncoding);
expectType<void>(writer.flush());
writer.flush((err) => expectType<Error | null | undefined>(err));
expectError((writer.key = 'other'));
expectError((writer.committedBytes = 1));

// Every documented write option, with its documented type.
expectType<RedisWriteStream>(
  createRedisWriteStream(redis, 'k', {
    prefix: 'rfs:',
    chunkSize: 1024,
    compress: false,
    contentEncoding: 'gzip',
    contentType: 'text/csv',
    metadata: { owner: 'me', 'x-any-name': '' },
    overwrite: true,
    ttl: 60,
    resume: false,
    retryTimeout: 30_000,
    maxInFlight: 4,
    waitReplicas: 1,
    waitTimeout: 2000,
    heartbeatInterval: 500,
    signal,
    highWaterMark: 65536,
  }),
);
expectAssignable<WriteStreamOptions>({ signal: new AbortController().signal });
expectAssignable<WriteStreamOptions>({ prefix: 'p:' } satisfies KeyOptions);

// Wrong types.
expectError(createRedisWriteStream(redis, 'k', { chunkSize: '1' }));
expectError(createRedisWriteStream(redis, 'k', { prefix: 1 }));
expectError(createRedisWriteStream(redis, 'k', { compress: 'yes' }));
expectError(createRedisWriteStream(redis, 'k', { contentEncoding: true }));
expectError(createRedisWriteStream(redis, 'k', { contentType: null }));
expectError(createRedisWriteStream(redis, 'k', { metadata: { n: 1 } }));
expectError(createRedisWriteStream(redis, 'k', { metadata: 'owner=me' }));
expectError(createRedisWriteStream(redis, 'k', { overwrite: 1 }));
expectError(createRedisWriteStream(redis, 'k', { ttl: '60' }));
expectError(createRedisWriteStream(redis, 'k', { resume: 'yes' }));
expectError(createRedisWriteStream(redis, 'k', { retryTimeout: '30s' }));
expectError(createRedisWriteStream(redis, 'k', { maxInFlight: '16' }));
expectError(createRedisWriteStream(redis, 'k', { waitReplicas: true }));
expectError(createRedisWriteStream(redis, 'k', { waitTimeout: '5s' }));
expectError(createRedisWriteStream(redis, 'k', { heartbeatInterval: '1s' }));
expectError(createRedisWriteStream(redis, 'k', { signal: new AbortController() }));
expectError(createRedisWriteStream(redis, 'k', { highWaterMark: '1' }));
// Unknown option names, including read-only options and near-miss spellings.
expectError(createRedisWriteStream(redis, 'k', { chunksize: 1024 }));
expectError(createRedisWriteStream(redis, 'k', { compression: true }));
expectError(createRedisWriteStream(redis, 'k', { start: 0 }));
expectError(createRedisWriteStream(redis, 'k', { decompress: true }));
expectNotAssignable<WriteStreamOptions>('chunkSize=1024');

// The read options, as a type of their own.
expectAssignable<ReadStreamOptions>({ start: 0, end: 10, follow: false, checksum: false, readAhead: 4, prefix: 'p:' });
expectNotAssignable<ReadStreamOptions>({ chunkSize: 1024 });
expectNotAssignable<ReadStreamOptions>({ checksum: 'yes' });

// Wrong client or key.
expectError(createRedisWriteStream({}, 'k'));
expectError(createRedisWriteStream('redis://127.0.0.1:6379', 'k'));
expectError(createRedisWriteStream(redis, 1));
expectError(createRedisWriteStream(redis));
expectError(createRedisWriteStream(redis, 'k', {}, {}));

// ---------------------------------------------------------------------------------------------
// createRedisReadStream

const reader = createRedisReadStream(redis, 'k');
expectType<RedisReadStream>(reader);
expectAssignable<Readable>(reader);
expectNotAssignable<Writable>(reader);
expectType<RedisReadStream>(createRedisReadStream(cluster, 'k'));
expectType<RedisReadStream>(createRedisReadStream(redis, 'k', {}));
expectType<string>(reader.key);
expectType<number>(reader.deliveredBytes);
expectError((reader.key = 'other'));
expectError((reader.deliveredBytes = 1));

// Every documented read option, with its documented type.
expectType<RedisReadStream>(
  createRedisReadStream(redis, 'k', {
    prefix: 'rfs:',
    start: 0,
    end: Infinity,
    follow: false,
    decompress: false,
    waitForCreate: 1000,
    idleTimeout: Infinity,
    readAhead: 8,
    signal,
    highWaterMark: 1 << 20,
  }),
);
expectType<RedisReadStream>(createRedisReadStream(redis, 'k', { decompress: true }));
expectType<RedisReadStream>(createRedisReadStream(redis, 'k', { start: 10, end: 20 }));

// Wrong types.
expectError(createRedisReadStream(redis, 'k', { start: '0' }));
expectError(createRedisReadStream(redis, 'k', { end: 10n }));
expectError(createRedisReadStream(redis, 'k', { follow: 'no' }));
expectError(createRedisReadStream(redis, 'k', { decompress: 1 }));
expectError(createRedisReadStream(redis, 'k', { waitForCreate: '1s' }));
expectError(createRedisReadStream(redis, 'k', { idleTimeout: null }));
expectError(createRedisReadStream(redis, 'k', { readAhead: '16' }));
expectError(createRedisReadStream(redis, 'k', { signal: {} }));
expectError(createRedisReadStream(redis, 'k', { highWaterMark: '1' }));
expectError(createRedisReadStream(redis, 'k', { prefix: ['rfs:'] }));
// Unknown option names, including write-only options.
expectError(createRedisReadStream(redis, 'k', { chunkSize: 1024 }));
expectError(createRedisReadStream(redis, 'k', { compress: true }));
expectError(createRedisReadStream(redis, 'k', { overwrite: true }));
expectError(createRedisReadStream(redis, 'k', { offset: 10 }));
expectError(createRedisReadStream(redis, 'k', { Start: 10 }));
// Wrong client or key.
expectError(createRedisReadStream({}, 'k'));
expectError(createRedisReadStream(redis, Symbol('k')));
expectError(createRedisReadStream(redis));

// The streams compose with Node's stream utilities.
expectType<Promise<void>>(pipeline(createRedisReadStream(redis, 'a'), createRedisWriteStream(redis, 'b')));

// ---------------------------------------------------------------------------------------------
// stat and remove

expectType<Promise<FileStat>>(stat(redis, 'k'));
expectType<Promise<FileStat>>(stat(cluster, 'k'));
expectType<Promise<FileStat>>(stat(redis, 'k', { prefix: 'p:' }));
expectType<Promise<boolean>>(remove(redis, 'k'));
expectType<Promise<boolean>>(remove(cluster, 'k'));
expectType<Promise<boolean>>(remove(redis, 'k', { prefix: 'p:' }));
expectError(stat(redis, 'k', { prefix: 1 }));
expectError(stat(redis, 'k', { chunkSize: 1 }));
expectError(remove(redis, 'k', { start: 0 }));
expectError(stat({}, 'k'));
expectError(remove(redis, 1));
expectError(stat(redis));

async function useStat(): Promise<void> {
  const s = await stat(redis, 'k');
  expectType<string>(s.key);
  expectType<FileState>(s.state);
  expectType<number>(s.size);
  expectType<number>(s.chunks);
  expectType<number>(s.chunkSize);
  expectType<boolean>(s.writerAlive);
  expectType<string>(s.contentEncoding);
  expectType<string | undefined>(s.contentType);
  expectType<Readonly<Record<string, string>>>(s.metadata);
  expectType<string | undefined>(s.crc32);
  expectType<Date>(s.created);
  expectType<Date>(s.updated);
  expectType<number | undefined>(s.ttl);
  // The state is a closed union: a switch over it can be exhaustive.
  switch (s.state) {
    case 'writing':
    case 'complete':
    case 'aborted':
      break;
    default:
      expectType<never>(s.state);
  }
  // Read-only. (Last: an assignment narrows `s.state` even where it is an error.)
  expectError((s.size = 0));
  expectError((s.state = 'complete'));
  expectError((s.metadata.owner = 'me'));
}
void useStat;

// ---------------------------------------------------------------------------------------------
// FileState

expectType<'writing' | 'complete' | 'aborted'>(typeOf<FileState>());
expectAssignable<FileState>('writing');
expectAssignable<FileState>('complete');
expectAssignable<FileState>('aborted');
expectNotAssignable<FileState>('partial');
expectNotAssignable<FileState>('done');

// ---------------------------------------------------------------------------------------------
// Error codes

// Each constant is its own string literal type (not widened to string) and read-only.
expectType<'ERR_REDIS_FILE_NOT_FOUND'>(ErrorCodes.NOT_FOUND);
expectType<'ERR_REDIS_FILE_EXISTS'>(ErrorCodes.EXISTS);
expectType<'ERR_REDIS_FILE_ABORTED'>(ErrorCodes.ABORTED);
expectType<'ERR_REDIS_FILE_CORRUPT'>(ErrorCodes.CORRUPT);
expectType<'ERR_REDIS_FILE_TIMEOUT'>(ErrorCodes.TIMEOUT);
expectType<'ERR_REDIS_FILE_RANGE'>(ErrorCodes.RANGE);
expectType<'ERR_REDIS_FILE_FORMAT'>(ErrorCodes.FORMAT);
expectType<'ERR_REDIS_FILE_REDIS'>(ErrorCodes.REDIS);
expectType<'ERR_REDIS_FILE_DECODE'>(ErrorCodes.DECODE);
expectNotType<string>(ErrorCodes.NOT_FOUND);
expectError((ErrorCodes.NOT_FOUND = 'ERR_REDIS_FILE_NOT_FOUND'));
// Exactly these keys and exactly these values.
expectType<
  'NOT_FOUND' | 'EXISTS' | 'ABORTED' | 'CORRUPT' | 'TIMEOUT' | 'RANGE' | 'FORMAT' | 'REDIS' | 'DECODE' | 'LINE_TOO_LONG'
>(typeOf<keyof typeof ErrorCodes>());
expectType<DocumentedCode>(typeOf<(typeof ErrorCodes)[keyof typeof ErrorCodes]>());

// The code of an error is exactly the documented union.
expectType<DocumentedCode>(typeOf<RedisFileErrorCode>());
expectType<DocumentedCode>(typeOf<RedisFileError['code']>());
expectNotAssignable<RedisFileError['code']>('ERR_REDIS_FILE_UNKNOWN');
expectNotAssignable<RedisFileError['code']>('ERR_INVALID_ARG_TYPE');

// RedisFileError: an Error with a code (the documented union) and a key.
const notFound = new RedisFileError('ERR_REDIS_FILE_NOT_FOUND', 'File "k": no file is stored at this key', {
  key: 'k',
});
expectType<RedisFileError>(notFound);
expectType<DocumentedCode>(notFound.code);
expectAssignable<Error>(notFound);
expectType<string | undefined>(notFound.key);
expectType<'RedisFileError'>(notFound.name);
expectType<RedisFileError>(new RedisFileError(ErrorCodes.RANGE, 'm'));
expectType<RedisFileError>(new RedisFileError('ERR_REDIS_FILE_REDIS', 'm', { cause: new Error('x') }));
expectError(new RedisFileError('ERR_REDIS_FILE_NOPE', 'm'));
expectError(new RedisFileError('ERR_INVALID_ARG_TYPE', 'm'));
expectError(new RedisFileError('ERR_REDIS_FILE_NOT_FOUND', 'm', { key: 1 }));
expectError((notFound.code = 'ERR_REDIS_FILE_NOT_FOUND'));
expectError((notFound.key = 'k'));

// The documented way to tell errors apart: instanceof, then a check of the code. The narrowed
// error's code is the union, so comparing it with a misspelt code does not compile.
function onError(err: unknown): void {
  if (err instanceof RedisFileError) {
    expectType<RedisFileError>(err);
    expectType<DocumentedCode>(err.code);
    if (err.code === ErrorCodes.NOT_FOUND) expectType<'ERR_REDIS_FILE_NOT_FOUND'>(err.code);
  }
}
void onError;

// Files as a whole: list, expire, rename.
expectType<AsyncIterableIterator<FileStat>>(list(redis));
expectType<AsyncIterableIterator<FileStat>>(list(cluster, { match: 'logs/*', count: 100, prefix: 'p:' }));
expectAssignable<ListOptions>({ match: '*' });
expectError(list(redis, { match: 1 }));
expectType<Promise<boolean>>(expire(redis, 'k', 60));
expectType<Promise<boolean>>(expire(redis, 'k', null));
expectError(expire(redis, 'k', '60'));
expectType<Promise<void>>(rename(redis, 'a', 'b'));
expectType<Promise<void>>(rename(redis, 'a', 'b', { overwrite: true }));
expectAssignable<RenameOptions>({ overwrite: false, prefix: 'p:' });
expectError(rename(redis, 'a', 'b', { overwrite: 'yes' }));

// Progress events are typed on both streams.
createRedisWriteStream(redis, 'k', { progressInterval: 100 }).on('progress', (p) => expectType<Progress>(p));
createRedisReadStream(redis, 'k', { progressInterval: 100 }).once('progress', (p) => {
  expectType<number>(p.bytes);
  expectType<number | undefined>(p.total);
});
// A writer held back by maxRedisMemory says so.
createRedisWriteStream(redis, 'k', { maxRedisMemory: 1 << 29 }).on('memoryWait', (w) => {
  expectType<MemoryWait>(w);
  expectType<number>(w.usedMemory);
  expectType<number>(w.limit);
  expectType<number>(w.needed);
  expectType<number>(w.waitedMs);
});

// ---------------------------------------------------------------------------------------------
// Channels: sendFiles (with onStart), receiveFiles and the received file.

expectType<Promise<SentFile[]>>(sendFiles(redis, 'logs', ['/var/log/a.log']));
expectType<Promise<SentFile[]>>(
  sendFiles(redis, 'logs', ['/var/log/a.log'], {
    consumers: 2,
    maxRedisMemory: 1 << 29,
    ttl: 3600,
    signal,
    onStart: (file) => {
      expectType<AnnouncedFile>(file);
      expectType<string>(file.name);
      expectType<string>(file.key);
      expectType<number | undefined>(file.size);
    },
    onMemoryWait: (file, wait) => {
      expectType<AnnouncedFile>(file);
      expectType<MemoryWait>(wait);
    },
  }),
);
expectError(sendFiles(redis, 'logs', ['a'], { onStart: 'log' }));
expectError(sendFiles(redis, 'logs', ['a'], { onMemoryWait: 'log' }));
expectError(sendFiles(redis, 'logs', ['a'], { resume: true }));
expectType<Promise<void>>(closeChannel(redis, 'logs'));
expectError(receiveFiles(redis, 'logs', {}));
expectError(receiveFiles(redis, 'logs', { consumer: 'eu-1', start: 10 }));
receiveFiles(redis, 'logs', {
  consumer: 'eu-1',
  onSkip: (skipped) => {
    expectType<string>(skipped.name);
    expectType<string>(skipped.key);
  },
});
expectError(receiveFiles(redis, 'logs', { consumer: 'eu-1', onSkip: 'log' }));

async function useReceived(): Promise<void> {
  for await (const file of receiveFiles(redis, 'logs', { consumer: 'eu-1', decompress: true })) {
    expectType<ReceivedFile>(file);
    expectType<string>(file.name);
    expectType<string>(file.key);
    expectType<number | undefined>(file.size);
    expectType<string>(file.contentEncoding);
    expectType<number>(file.offset);
    expectType<RedisReadStream>(file.stream);
    expectType<Promise<void>>(file.ack());
    expectError((file.offset = 0));
  }
}
void useReceived;

// Format 2: the writer's flushInterval, the reader's encoding and its 'file' event.
createRedisWriteStream(redis, 'k', { flushInterval: 0 });
expectError(createRedisWriteStream(redis, 'k', { flushInterval: '100' }));
const textReader = createRedisReadStream(redis, 'k', { encoding: 'utf8' });
expectError(createRedisReadStream(redis, 'k', { encoding: 'klingon' }));
textReader.on('file', (file) => expectType<FileStat>(file));
expectType<FileStat | undefined>(textReader.file);
expectType<Promise<'@node-rs/crc32' | 'zlib'>>(crcImplementation());
