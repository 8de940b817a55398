// The public API as a CommonJS consumer sees it. `resolution-mode: 'require'` resolves
// `redis-file-stream` through the "require" condition of the package's "exports", i.e. to the built
// dist/cjs/index.d.ts (index.test-d.ts checks dist/esm, which an ES module import resolves to).
// The full set of assertions lives in index.test-d.ts; this file checks that the CommonJS
// declarations agree on the essentials.
import type { Readable, Writable } from 'node:stream';
import type { Cluster, Redis } from 'ioredis';
import type { Cluster as IovalkeyCluster, Redis as Iovalkey } from 'iovalkey';
import type { RedisClientType, RedisClusterType } from 'redis';
import type * as Cjs from 'redis-file-stream' with { 'resolution-mode': 'require' };
import { expectAssignable, expectError, expectNotAssignable, expectType } from 'tsd';

declare const cjs: typeof Cjs;
declare const redis: Redis;
declare const cluster: Cluster;
declare const iovalkey: Iovalkey;
declare const iovalkeyCluster: IovalkeyCluster;
declare const nodeRedis: RedisClientType;
declare const nodeRedisCluster: RedisClusterType;
declare function typeOf<T>(): T;

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

expectAssignable<Cjs.RedisClient>(redis);
expectAssignable<Cjs.RedisClient>(cluster);
expectAssignable<Cjs.RedisClient>(iovalkey);
expectAssignable<Cjs.RedisClient>(iovalkeyCluster);
expectAssignable<Cjs.RedisClient>(nodeRedis);
expectAssignable<Cjs.RedisClient>(nodeRedisCluster);
expectNotAssignable<Cjs.RedisClient>({});
expectNotAssignable<Cjs.RedisClient>('redis://127.0.0.1:6379');

expectType<Cjs.RedisWriteStream>(cjs.createRedisWriteStream(redis, 'k'));
expectType<Cjs.RedisWriteStream>(
  cjs.createRedisWriteStream(cluster, 'k', { chunkSize: 1024, compress: true, metadata: { a: 'b' } }),
);
expectAssignable<Writable>(cjs.createRedisWriteStream(redis, 'k'));
expectType<Cjs.RedisReadStream>(cjs.createRedisReadStream(redis, 'k'));
expectType<Cjs.RedisReadStream>(cjs.createRedisReadStream(cluster, 'k', { start: 1, end: 2, follow: false }));
expectAssignable<Readable>(cjs.createRedisReadStream(redis, 'k'));
expectType<Promise<Cjs.FileStat>>(cjs.stat(redis, 'k'));
expectType<Promise<boolean>>(cjs.remove(cluster, 'k'));
expectType<Cjs.RedisWriteStream>(cjs.createRedisWriteStream(iovalkey, 'k'));
expectType<Cjs.RedisReadStream>(cjs.createRedisReadStream(iovalkeyCluster, 'k'));
expectType<Cjs.RedisWriteStream>(cjs.createRedisWriteStream(nodeRedis, 'k'));
expectType<Cjs.RedisReadStream>(cjs.createRedisReadStream(nodeRedisCluster, 'k'));
expectType<Promise<Cjs.FileStat>>(cjs.stat(nodeRedis, 'k'));
expectError(cjs.createRedisWriteStream({}, 'k'));
expectError(cjs.stat('redis://127.0.0.1:6379', 'k'));

expectError(cjs.createRedisWriteStream(redis, 'k', { chunkSize: '1' }));
expectError(cjs.createRedisWriteStream(redis, 'k', { chunksize: 1 }));
expectError(cjs.createRedisReadStream(redis, 'k', { start: '0' }));
expectError(cjs.createRedisReadStream(redis, 'k', { chunkSize: 1 }));
expectError(cjs.stat(redis, 'k', { prefix: 1 }));

expectType<'writing' | 'complete' | 'aborted'>(typeOf<Cjs.FileState>());
expectType<'ERR_REDIS_FILE_NOT_FOUND'>(cjs.ErrorCodes.NOT_FOUND);
expectType<'ERR_REDIS_FILE_DECODE'>(cjs.ErrorCodes.DECODE);
expectType<DocumentedCode>(typeOf<(typeof Cjs.ErrorCodes)[keyof typeof Cjs.ErrorCodes]>());
expectType<DocumentedCode>(typeOf<Cjs.RedisFileErrorCode>());
expectType<DocumentedCode>(typeOf<Cjs.RedisFileError['code']>());
expectNotAssignable<Cjs.RedisFileError['code']>('ERR_REDIS_FILE_UNKNOWN');
expectAssignable<Error>(new cjs.RedisFileError('ERR_REDIS_FILE_RANGE', 'm'));
