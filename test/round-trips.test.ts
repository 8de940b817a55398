/**
 * Round trips per small file, counted on the wire: every client connects through a proxy that
 * delays nothing and counts request bursts (client bytes that come first or after a reply). A
 * client that waits for each reply makes one burst per round trip; commands pipelined behind each
 * other make one. Each client is connected, and every script loaded, before the counting starts.
 */
import { once } from 'node:events';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisReadStream, createRedisWriteStream, type WriteStreamOptions } from '../src/index.js';
import { closeAll, connect, sharedRedisUrl, uniqueKey } from './helpers/clients.js';
import { startProxy, type Proxy as TcpProxy } from './helpers/proxy.js';
import { collect } from './helpers/streams.js';

let proxy: TcpProxy;
let direct: Redis;

beforeAll(async () => {
  direct = connect();
  proxy = await startProxy(Number(new URL(sharedRedisUrl()).port));
});
afterAll(async () => {
  await closeAll();
  await proxy.close();
});

/** A client through the proxy, connected and past its ready check. */
async function proxied(): Promise<Redis> {
  const client = connect(proxy.url);
  await client.ping();
  return client;
}

/** The request bursts `fn` sends through the proxy. */
async function bursts(fn: () => Promise<unknown>): Promise<number> {
  proxy.markBursts();
  await fn();
  return proxy.bursts;
}

async function write(client: Redis, key: string, data: Buffer, options?: WriteStreamOptions): Promise<void> {
  const ws = createRedisWriteStream(client, key, options);
  ws.end(data);
  await once(ws, 'finish');
}

async function read(client: Redis, key: string): Promise<Buffer> {
  return collect(createRedisReadStream(client, key));
}

describe('round trips of a small file', () => {
  it('writing a 1-byte file takes 2 request bursts: the claim, then the piece with the end record', async () => {
    const client = await proxied();
    await write(client, uniqueKey('rtt-warm'), Buffer.from('w'));
    const key = uniqueKey('rtt-write');
    expect(await bursts(() => write(client, key, Buffer.from('x')))).toBe(2);
    expect(await read(direct, key)).toEqual(Buffer.from('x'));
  });

  it('a user refused EVALSHA_RO reads with plain commands: one round trip more, and the refusal only once', async () => {
    const user = uniqueKey('rtt-no-ro').replace(/[^A-Za-z0-9]/g, '-');
    await direct.acl('SETUSER', user, 'on', '>secret', '~*', '&*', '+@all', '-evalsha_ro', '-eval_ro');
    const url = new URL(proxy.url);
    url.username = user;
    url.password = 'secret';
    const client = connect(url.href);
    await client.ping();
    const key = uniqueKey('rtt-no-ro');
    await write(direct, key, Buffer.from('x'));
    let data: Buffer = Buffer.alloc(0);
    expect(await bursts(async () => (data = await read(client, key)))).toBe(3);
    expect(data).toEqual(Buffer.from('x'));
    expect(await bursts(async () => (data = await read(client, key)))).toBe(2);
    expect(data).toEqual(Buffer.from('x'));
    await direct.acl('DELUSER', user);
  });

  it('reading a complete 1-byte file takes 1 request burst', async () => {
    const client = await proxied();
    const key = uniqueKey('rtt-read');
    await write(direct, key, Buffer.from('x'));
    await read(client, key);
    let data: Buffer = Buffer.alloc(0);
    expect(await bursts(async () => (data = await read(client, key)))).toBe(1);
    expect(data).toEqual(Buffer.from('x'));
  });
});
