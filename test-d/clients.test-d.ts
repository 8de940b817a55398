// Type tests: every client library the package accepts (ioredis, node-redis `redis`, iovalkey), as
// each one's own factories type their clients, is taken by every function that takes a client,
// without a cast; anything else is not. Like index.test-d.ts, this checks the BUILT declarations
// (run `npm run build` first).
import { Redis as Ioredis, Cluster as IoredisCluster } from 'ioredis';
import { Redis as Iovalkey, Cluster as IovalkeyCluster, Valkey } from 'iovalkey';
import {
  createClient,
  createCluster,
  createSentinel,
  RESP_TYPES,
  type RedisClientType,
  type RedisClusterType,
} from 'redis';
import {
  closeChannel,
  createRedisReadStream,
  createRedisWriteStream,
  expire,
  type FileStat,
  list,
  type ReceivedFile,
  type RedisClient,
  type RedisReadStream,
  type RedisWriteStream,
  receiveFiles,
  remove,
  removeChannel,
  rename,
  type SentFile,
  sendFiles,
  stat,
} from 'redis-file-stream';
import { expectAssignable, expectError, expectNotAssignable, expectType } from 'tsd';

// Each client as its library's own API makes it: factories and constructors, no annotations.
const ioredis = new Ioredis('redis://127.0.0.1:6379', { lazyConnect: true });
const ioredisCluster = new IoredisCluster([{ host: '127.0.0.1', port: 7000 }], { lazyConnect: true });
const iovalkey = new Iovalkey('redis://127.0.0.1:6379', { lazyConnect: true });
const valkey = new Valkey({ host: '127.0.0.1', port: 6379, lazyConnect: true });
const iovalkeyCluster = new IovalkeyCluster([{ host: '127.0.0.1', port: 7000 }], { lazyConnect: true });
const nodeRedis = createClient({ url: 'redis://127.0.0.1:6379' });
const nodeRedisResp2 = createClient({ url: 'redis://127.0.0.1:6379', RESP: 2 });
const nodeRedisResp3 = createClient({ url: 'redis://127.0.0.1:6379', RESP: 3 });
const nodeRedisBuffers = nodeRedis.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer });
const nodeRedisResp3Buffers = createClient({
  RESP: 3,
  commandOptions: { typeMapping: { [RESP_TYPES.BLOB_STRING]: Buffer } },
});
const nodeRedisCluster = createCluster({ rootNodes: [{ url: 'redis://127.0.0.1:7000' }] });
const nodeRedisClusterResp2 = createCluster({ rootNodes: [{ url: 'redis://127.0.0.1:7000' }], RESP: 2 });
const nodeRedisClusterBuffers = nodeRedisCluster.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer });
// node-redis's named types, as an application declares a client it keeps in a field.
declare const nodeRedisTyped: RedisClientType;
declare const nodeRedisClusterTyped: RedisClusterType;

expectAssignable<RedisClient>(ioredis);
expectAssignable<RedisClient>(ioredisCluster);
expectAssignable<RedisClient>(iovalkey);
expectAssignable<RedisClient>(valkey);
expectAssignable<RedisClient>(iovalkeyCluster);
expectAssignable<RedisClient>(nodeRedis);
expectAssignable<RedisClient>(nodeRedisResp2);
expectAssignable<RedisClient>(nodeRedisResp3);
expectAssignable<RedisClient>(nodeRedisBuffers);
expectAssignable<RedisClient>(nodeRedisResp3Buffers);
expectAssignable<RedisClient>(nodeRedisCluster);
expectAssignable<RedisClient>(nodeRedisClusterResp2);
expectAssignable<RedisClient>(nodeRedisClusterBuffers);
expectAssignable<RedisClient>(nodeRedisTyped);
expectAssignable<RedisClient>(nodeRedisClusterTyped);

// The streams, on one client of each library written out (an error names the client).
expectType<RedisWriteStream>(createRedisWriteStream(ioredis, 'k'));
expectType<RedisWriteStream>(createRedisWriteStream(iovalkey, 'k', { chunkSize: 65536 }));
expectType<RedisWriteStream>(createRedisWriteStream(nodeRedis, 'k', { chunkSize: 65536 }));
expectType<RedisWriteStream>(createRedisWriteStream(nodeRedisCluster, 'k'));
expectType<RedisReadStream>(createRedisReadStream(ioredisCluster, 'k'));
expectType<RedisReadStream>(createRedisReadStream(iovalkeyCluster, 'k', { start: 10 }));
expectType<RedisReadStream>(createRedisReadStream(nodeRedis, 'k', { follow: false }));
expectType<RedisReadStream>(createRedisReadStream(nodeRedisBuffers, 'k'));

// Every function that takes a client, on every client (a union of them all is accepted only when
// each member is).
const clients = [
  ioredis,
  ioredisCluster,
  iovalkey,
  valkey,
  iovalkeyCluster,
  nodeRedis,
  nodeRedisResp2,
  nodeRedisResp3,
  nodeRedisBuffers,
  nodeRedisResp3Buffers,
  nodeRedisCluster,
  nodeRedisClusterResp2,
  nodeRedisClusterBuffers,
  nodeRedisTyped,
  nodeRedisClusterTyped,
] as const;

async function everyFunction(): Promise<void> {
  for (const client of clients) {
    expectType<RedisWriteStream>(createRedisWriteStream(client, 'k', { prefix: 'p:' }));
    expectType<RedisReadStream>(createRedisReadStream(client, 'k', { prefix: 'p:' }));
    expectType<Promise<FileStat>>(stat(client, 'k'));
    expectType<AsyncIterableIterator<FileStat>>(list(client, { match: 'logs/*' }));
    expectType<Promise<boolean>>(remove(client, 'k'));
    expectType<Promise<void>>(rename(client, 'a', 'b', { overwrite: true }));
    expectType<Promise<boolean>>(expire(client, 'k', 60));
    expectType<Promise<SentFile[]>>(sendFiles(client, 'logs', ['/var/log/a.log']));
    expectType<Promise<void>>(closeChannel(client, 'logs'));
    expectType<Promise<boolean>>(removeChannel(client, 'logs'));
    for await (const file of receiveFiles(client, 'logs', { consumer: 'eu-1' })) {
      expectType<ReceivedFile>(file);
    }
  }
}
void everyFunction;

// Not a client: a plain object, a URL string, a half-built client, nothing.
expectNotAssignable<RedisClient>({});
expectNotAssignable<RedisClient>('redis://127.0.0.1:6379');
expectNotAssignable<RedisClient>({ xadd() {}, duplicate() {} });
expectNotAssignable<RedisClient>(null);
expectNotAssignable<RedisClient>(undefined);
// A node-redis sentinel sends commands with other arguments, and lends its connections.
const nodeRedisSentinel = createSentinel({ name: 'mymaster', sentinelRootNodes: [{ host: '127.0.0.1', port: 26379 }] });
expectNotAssignable<RedisClient>(nodeRedisSentinel);
expectError(createRedisWriteStream(nodeRedisSentinel, 'k'));
expectError(stat(nodeRedisSentinel, 'k'));
expectError(createRedisWriteStream({}, 'k'));
expectError(createRedisWriteStream('redis://127.0.0.1:6379', 'k'));
expectError(createRedisReadStream({}, 'k'));
expectError(createRedisReadStream('redis://127.0.0.1:6379', 'k'));
expectError(stat({}, 'k'));
expectError(stat('redis://127.0.0.1:6379', 'k'));
expectError(list({}));
expectError(remove('redis://127.0.0.1:6379', 'k'));
expectError(sendFiles({}, 'logs', ['a']));
expectError(receiveFiles('redis://127.0.0.1:6379', 'logs', { consumer: 'eu-1' }));
// A client is not the options or the key either.
expectError(createRedisWriteStream('k', nodeRedis));
expectError(createRedisReadStream(nodeRedis));
