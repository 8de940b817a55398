/**
 * Round trips per small file, counted on the wire: every client connects through a proxy that
 * delays each way by 2 ms and counts request bursts (client bytes that come first or after a reply). A
 * client that waits for each reply makes one burst per round trip; commands pipelined behind each
 * other make one. Each client is connected, and every script loaded, before the counting starts.
 */
import { once } from 'node:events';
import { Readable } from 'node:stream';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { usedMemory } from '../scripts/lib/used-memory.mjs';
import {
  closeChannel,
  createRedisReadStream,
  createRedisWriteStream,
  list,
  type RedisClient,
  receiveFiles,
  type SentFile,
  sendFiles,
  stat,
  type WriteStreamOptions,
} from '../src/index.js';
import {
  closeAll,
  connect,
  connectSubject,
  disconnectSubject,
  sharedRedisUrl,
  subject,
  subjectReady,
  uniqueKey,
} from './helpers/clients.js';
import { eventually } from './helpers/eventually.js';
import { startProxy, type Proxy as TcpProxy } from './helpers/proxy.js';
import { type RedisServer, startRedis } from './helpers/redis-server.js';
import { collect } from './helpers/streams.js';

let proxy: TcpProxy;
let direct: Redis;

beforeAll(async () => {
  direct = connect();
  // 2 ms each way: commands a client sends in one turn, or in turns right after each other, reach the
  // proxy before any reply can come back between them, however busy the machine.
  proxy = await startProxy(Number(new URL(sharedRedisUrl()).port), '127.0.0.1', { delayMs: 2 });
});
afterAll(async () => {
  await closeAll();
  await proxy.close();
});

/** A client of the library under test through the proxy, connected and past its ready check. */
async function proxied(url = proxy.url): Promise<RedisClient> {
  const client = connectSubject(url);
  await subjectReady(client);
  return client;
}

/** The request bursts `fn` sends through the proxy. */
async function bursts(fn: () => Promise<unknown>): Promise<number> {
  proxy.markBursts();
  await fn();
  return proxy.bursts;
}

async function write(
  client: Redis | RedisClient,
  key: string,
  data: Buffer,
  options?: WriteStreamOptions,
): Promise<void> {
  const ws = createRedisWriteStream(subject(client), key, options);
  ws.end(data);
  await once(ws, 'finish');
}

async function read(client: Redis | RedisClient, key: string): Promise<Buffer> {
  return collect(createRedisReadStream(subject(client), key));
}

describe('round trips of a small file', () => {
  it('writing a 1-byte file takes 1 request burst: the claim, the piece and the end record together', async () => {
    const client = await proxied();
    // The first file on a connection waits for the claim's answer (its latency is measured then).
    await write(client, uniqueKey('rtt-warm'), Buffer.from('w'));
    const key = uniqueKey('rtt-write');
    expect(await bursts(() => write(client, key, Buffer.from('x')))).toBe(1);
    expect(await read(direct, key)).toEqual(Buffer.from('x'));
  });

  it('under a memory limit too: the claim brings the reading of used_memory the first piece is admitted on', async () => {
    const client = await proxied();
    const used = await usedMemory(direct);
    const options = { maxRedisMemory: used + 64 * 1024 * 1024 };
    await write(client, uniqueKey('rtt-guard-warm'), Buffer.from('w'), options);
    const key = uniqueKey('rtt-guard');
    expect(await bursts(() => write(client, key, Buffer.from('x'), options))).toBe(2);
    expect(await read(direct, key)).toEqual(Buffer.from('x'));
  });

  it('a user refused EVALSHA_RO reads with plain commands: one round trip more, refused once', async () => {
    const user = uniqueKey('rtt-no-ro').replace(/[^A-Za-z0-9]/g, '-');
    await direct.acl('SETUSER', user, 'on', '>secret', '~*', '&*', '+@all', '-evalsha_ro', '-eval_ro');
    const url = new URL(proxy.url);
    url.username = user;
    url.password = 'secret';
    const client = await proxied(url.href);
    const key = uniqueKey('rtt-no-ro');
    await write(direct, key, Buffer.from('x'));
    let data: Buffer = Buffer.alloc(0);
    expect(await bursts(async () => (data = await read(client, key)))).toBe(3);
    expect(data).toEqual(Buffer.from('x'));
    expect(await bursts(async () => (data = await read(client, key)))).toBe(2);
    expect(data).toEqual(Buffer.from('x'));
    // Closed first: Redis drops the connections of a deleted user, and a client that then tried to
    // connect again through the proxy would add request bursts to the tests after this one.
    disconnectSubject(client);
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

describe('round trips of a small file written with waitReplicas', () => {
  let server: RedisServer;
  let replica: RedisServer;
  let replicated: TcpProxy;

  beforeAll(async () => {
    server = await startRedis();
    replica = await startRedis({ args: ['--replicaof', '127.0.0.1', String(server.port)] });
    const admin = connect(server.url);
    await eventually(
      async () => /^slave0:.*state=online/m.test(await admin.info('replication')),
      'the replica to be online',
    );
    replicated = await startProxy(server.port, '127.0.0.1', { delayMs: 2 });
  });
  afterAll(async () => {
    await replicated?.close();
    await replica?.stop();
    await server?.stop();
  });

  it('takes 3 request bursts: the claim, the piece with its WAIT, the end record with its WAIT', async () => {
    const client = await proxied(replicated.url);
    const options = { waitReplicas: 1 };
    await write(client, uniqueKey('rtt-warm'), Buffer.from('w'), options);
    const key = uniqueKey('rtt-replicated');
    replicated.markBursts();
    await write(client, key, Buffer.from('x'), options);
    expect(replicated.bursts).toBe(3);
    expect(await read(client, key)).toEqual(Buffer.from('x'));
  });
});

describe('round trips of a channel of small files', () => {
  const FILES = 10;
  const files = (prefix: string) =>
    Array.from({ length: FILES }, (_, i) => ({
      name: `${prefix}-${i}`,
      stream: Readable.from([Buffer.alloc(1024, i)]),
      size: 1024,
    }));

  it("sending: each file's claim goes with the announcement and end record of the file before it", async () => {
    const sender = await proxied();
    const channel = uniqueKey('rtt-send');
    await sendFiles(sender, channel, files('warm').slice(0, 1));
    let sent: SentFile[] = [];
    // One round trip per file, and one more for the last file's announcement and end record.
    expect(await bursts(async () => (sent = await sendFiles(sender, channel, files('f'))))).toBeLessThanOrEqual(
      FILES + 1,
    );
    for (const f of sent) expect(await stat(subject(direct), f.key)).toMatchObject({ state: 'complete', size: 1024 });
  });

  it('receiving: the next file opens while one is processed; a round trip per file, its acknowledgement', async () => {
    const receiver = await proxied();
    const channel = uniqueKey('rtt-receive');
    await sendFiles(subject(direct), channel, [...files('warm').slice(0, 1), ...files('f')]);
    await closeChannel(subject(direct), channel);
    const received: string[] = [];
    let count = 0;
    for await (const f of receiveFiles(receiver, channel, { consumer: 'c' })) {
      if (received.length === 1) proxy.markBursts();
      expect((await collect(f.stream)).length).toBe(1024);
      await f.ack();
      received.push(f.name);
    }
    count = proxy.bursts;
    expect(received).toEqual(['warm-0', ...files('f').map((f) => f.name)]);
    // One per file (its acknowledgements, which the next file's open travels with), and the close:
    // one round trip to see that nothing follows it, one to acknowledge it (five per file when
    // each file's announcement, hash, entries and acknowledgements came in turn).
    expect(count).toBeLessThanOrEqual(FILES + 3);
  });

  it('a file begun early is removed when the sending fails before it is announced', async () => {
    const channel = uniqueKey('rtt-send-fails');
    const started: string[] = [];
    const err = await sendFiles(subject(direct), channel, files('f').slice(0, 2), {
      onStart(f) {
        started.push(f.key);
        throw new Error('no thanks');
      },
    }).catch((e: unknown) => e);
    expect(err).toMatchObject({ message: 'no thanks' });
    // The first file, whose end record went with its announcement, stays; the second is gone.
    expect(started).toHaveLength(1);
    const keys: string[] = [];
    for await (const f of list(subject(direct), { match: `${channel}/*` })) keys.push(f.key);
    expect(keys).toEqual(started);
  });
});
