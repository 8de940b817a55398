/**
 * A writer sends its first pieces behind the claim of the file, without waiting for the claim's
 * answer: one round trip less per file. A piece sent behind a claim that is not granted at once
 * (another writer's lease to wait out, a script to load again) stores nothing, and is sent again
 * once the file is claimed: nothing is lost, nothing is stored twice.
 */
import { once } from 'node:events';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisWriteStream, type RedisClient, type WriteStreamOptions } from '../src/index.js';
import { COMMIT } from '../src/scripts/index.js';
import { closeAll, connect, connectSubject, subjectReady, uniqueKey } from './helpers/clients.js';
import { chunkStreamOf } from './helpers/keys.js';
import { commandsDuring, type Monitored } from './helpers/monitor.js';
import { startProxy, type Proxy as TcpProxy } from './helpers/proxy.js';
import { type RedisServer, startRedis } from './helpers/redis-server.js';
import { bytes, get } from './helpers/streams.js';

// A server of this file's own: the tests flush its scripts and watch it with MONITOR.
let server: RedisServer;
let redis: Redis;
/** The library under test's client, on the same server. */
let client: RedisClient;
let proxy: TcpProxy;
beforeAll(async () => {
  server = await startRedis();
  redis = connect(server.url);
  client = connectSubject(server.url);
  await subjectReady(client);
  // Pieces go behind the claim only on a connection whose latency a first file has measured.
  await write(client, uniqueKey('warm'), bytes(10, 1));
  // 5 ms each way: a piece sent on the turn after the claim reaches the proxy before any reply.
  proxy = await startProxy(server.port, '127.0.0.1', { delayMs: 5 });
});
afterAll(async () => {
  await closeAll();
  await proxy?.close();
  await server?.stop();
});

async function write(client: RedisClient, key: string, data: Buffer, options?: WriteStreamOptions): Promise<void> {
  const ws = createRedisWriteStream(client, key, options);
  ws.end(data);
  await once(ws, 'finish');
}

/** Of `commands`, the XADDs of pieces to `key`'s chunk streams (not those of scripts). */
function pieceWrites(commands: Monitored[], key: string): number {
  return commands.filter(
    ({ args, source }) =>
      source !== 'lua' && args[0]?.toLowerCase() === 'xadd' && args[1]?.includes(key) && args[1].includes(':chunks:'),
  ).length;
}

/** Of `commands`, the calls of the commit script (the end record). */
function commits(commands: Monitored[]): number {
  return commands.filter(({ args: [name, script] }) => {
    const n = name?.toLowerCase();
    return (n === 'evalsha' && script === COMMIT.sha) || (n === 'eval' && script === COMMIT.source);
  }).length;
}

describe('pieces behind the claim', () => {
  it('go out with the claim: one piece in flight at a time, a 3-chunk file takes 4 request bursts, not 5', async () => {
    // Through a proxy that counts request bursts (bytes sent first, or after a reply).
    const proxied = connectSubject(proxy.url);
    await subjectReady(proxied);
    const options = { chunkSize: 1000, maxInFlight: 1 };
    // Every script loaded, and the latency of the connection measured.
    await write(proxied, uniqueKey('warm'), bytes(10, 1), options);
    const key = uniqueKey('bursts');
    const data = bytes(3000, 2);
    proxy.markBursts();
    await write(proxied, key, data, options);
    // The claim with piece 0; piece 1; piece 2; the end record (a piece the window holds back is
    // acknowledged before the end record goes). Without waiting for the claim's answer: 5.
    expect(proxy.bursts).toBe(4);
    expect((await get(redis, key)).equals(data)).toBe(true);
  });

  it('are sent again when the claim first met NOSCRIPT (a restarted server): the file is whole', async () => {
    const key = uniqueKey('noscript');
    const data = bytes(5000, 3);
    await redis.script('FLUSH');
    const commands = await commandsDuring(redis, () => write(client, key, data, { chunkSize: 1000 }));
    const xadds = pieceWrites(commands, key);
    // 5 pieces, sent behind the refused EVALSHA (they stored nothing), then again.
    expect(xadds).toBeGreaterThan(5);
    expect((await get(redis, key)).equals(data)).toBe(true);
    expect(await redis.xlen(await chunkStreamOf(redis, key))).toBe(5 + 2);
  });

  it('are sent again once the claim has waited out another writer: the file is whole', async () => {
    const key = uniqueKey('busy');
    // A writer that holds the key with a short lease, and whose connection then goes: its heartbeat
    // stops, and its lease lapses after 3 intervals.
    const holder = connect(server.url);
    const first = createRedisWriteStream(holder, key, { heartbeatInterval: 100 });
    first.on('error', () => {});
    first.write(bytes(100, 4));
    await once(first, 'ready');
    holder.disconnect();
    const data = bytes(3000, 5);
    const commands = await commandsDuring(redis, () => write(client, key, data, { chunkSize: 1000, overwrite: true }));
    const xadds = pieceWrites(commands, key);
    // 3 pieces, sent behind the first try of the claim (they stored nothing), then again; and the
    // end record, sent behind them (refused: the lease was not this writer's yet), then again.
    expect(xadds).toBeGreaterThan(3);
    expect(commits(commands)).toBe(2);
    expect((await get(redis, key)).equals(data)).toBe(true);
  });
});
