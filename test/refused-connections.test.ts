/**
 * A server at its `maxclients` limit: the caller's client, connected before, works, while every
 * connection the package opens of its own for blocking reads is answered with an error and closed.
 * ioredis and node-redis connect such a connection again for ever, and a blocking read queued on it
 * would wait for ever: a follower, a reader waiting for a file to be created and a channel receiver
 * waited silently, for good. Each now fails with ERR_REDIS_FILE_REDIS saying why (iovalkey's own
 * error already did).
 */

import { describe, expect, it } from 'vitest';
import {
  createRedisReadStream,
  createRedisWriteStream,
  type RedisClient,
  type RedisWriteStream,
  receiveFiles,
} from '../src/index.js';
import { portOf } from '../src/redis/port.js';
import {
  blockedIn,
  clientList,
  connect,
  connectSubject,
  disconnectSubject,
  subject,
  subjectConnected,
  uniqueConnectionName,
  uniqueKey,
} from './helpers/clients.js';
import { eventually } from './helpers/eventually.js';
import { useOwnServer } from './helpers/own-server.js';
import { startProxy } from './helpers/proxy.js';

// The file's server admits 3 clients: its admin client, the caller's client of each test, and
// the one below, which fills it once the caller's is connected.
const own = useOwnServer({ args: ['--maxclients', '3'] });

const REFUSED = { code: 'ERR_REDIS_FILE_REDIS', message: expect.stringMatching(/maxclients|max number of clients/) };

/**
 * A connected client of the library under test, the server full once it is, and what frees both
 * places again: every test makes one.
 */
async function callerOfFullServer(): Promise<{ client: RedisClient; release: () => Promise<void> }> {
  const client = await subjectConnected(connectSubject(own.server.url));
  // Answered through the caller's client: it is connected before the server fills.
  await portOf(client).send(undefined, ['PING']);
  const filler = connect(own.server.url);
  await filler.ping();
  expect(await connectedClients()).toBe(3);
  return {
    client,
    release: async () => {
      disconnectSubject(client);
      filler.disconnect();
      await eventually(async () => (await connectedClients()) === 1, 'the two places to be free');
    },
  };
}

/** Clients connected to the file's server, its admin client among them. */
async function connectedClients(): Promise<number> {
  return Number(/connected_clients:(\d+)/.exec(await own.admin.info('clients'))?.[1]);
}

/** A writer of the library under test on `client` that has stored a first line of file `name`. */
async function liveFile(client: RedisClient, name: string): Promise<{ key: string; writer: RedisWriteStream }> {
  const key = uniqueKey(name);
  const writer = createRedisWriteStream(client, key);
  writer.write(`${name}\n`);
  await new Promise((resolve) => writer.once('ready', resolve));
  return { key, writer };
}

/** What `stream` fails with. */
function failure(stream: NodeJS.EventEmitter): Promise<unknown> {
  return new Promise((resolve) => stream.once('error', resolve));
}

describe('a server at its maxclients limit, refusing the connections the package opens', () => {
  it('fails a follower at the tail of a file being written, saying why, rather than leaving it waiting', async () => {
    const { client, release } = await callerOfFullServer();
    const { key, writer } = await liveFile(client, 'full-follow');
    const reader = createRedisReadStream(client, key);
    const failed = failure(reader);
    reader.resume();
    expect(await failed).toMatchObject(REFUSED);
    writer.end();
    await new Promise((resolve) => writer.once('finish', resolve));
    await release();
  });

  it('fails a reader waiting for a file to be created, saying why, long before waitForCreate', async () => {
    const { client, release } = await callerOfFullServer();
    const reader = createRedisReadStream(client, uniqueKey('full-wait'), { waitForCreate: 600_000 });
    const failed = failure(reader);
    reader.resume();
    expect(await failed).toMatchObject(REFUSED);
    await release();
  });

  it('fails a channel receiver waiting for the next file, saying why, once idleTimeout is over', async () => {
    const { client, release } = await callerOfFullServer();
    const files = receiveFiles(client, uniqueKey('full-channel'), { consumer: 'r', idleTimeout: 1000 });
    await expect(files.next()).rejects.toMatchObject(REFUSED);
    await release();
  });

  it('leaves no follower of a shared blocking connection it gave up on with it: one that waits again, once there is room, reads on', async () => {
    const { admin } = own;
    await admin.config('SET', 'maxclients', '10');
    const name = uniqueConnectionName('full-lane');
    const client = await subjectConnected(connectSubject(own.server.url, { connectionName: name }));
    try {
      // A follower that waited in the shared blocking read, then took a write it does not consume:
      // it stays in the read's group without waiting in it.
      const keyA = uniqueKey('full-lane-a');
      const writerA = createRedisWriteStream(client, keyA);
      writerA.write('first\n');
      await new Promise((resolve) => writerA.once('ready', resolve));
      const followerA = createRedisReadStream(client, keyA, { highWaterMark: 1 });
      const gotA: string[] = [];
      followerA.on('data', (data: Buffer) => gotA.push(data.toString()));
      const failedA = failure(followerA);
      await eventually(() => gotA.join('') === 'first\n', 'the first line to reach the follower');
      await eventually(async () => (await blockedIn(admin, name)) === 1, 'the follower to wait');
      followerA.pause();
      writerA.write('second\n');
      writerA.flush();
      await eventually(() => followerA.readableLength > 0, 'the second line to wait in the paused follower');
      // The shared connection goes, and the server, full now, refuses it again and again.
      const lane = (await clientList(admin))
        .split('\n')
        .find((line) => line.includes(` name=${name} `) && /\bcmd=xread\b/.test(line));
      const laneId = /\bid=(\d+)/.exec(lane ?? '')?.[1];
      expect(laneId).toBeDefined();
      const rejected = async (): Promise<number> =>
        Number(/rejected_connections:(\d+)/.exec(await admin.info('stats'))?.[1]);
      const before = await rejected();
      const connected = await connectedClients();
      await admin
        .multi()
        .call('CLIENT', 'KILL', 'ID', laneId!)
        .config('SET', 'maxclients', String(connected - 1))
        .exec();
      await eventually(async () => (await rejected()) >= before + 3, 'Redis to refuse the connection 3 times');
      // A follower that waits now fails, saying why.
      const { key: keyB, writer: writerB } = await liveFile(client, 'full-lane-b');
      const followerB = createRedisReadStream(client, keyB);
      const failedB = failure(followerB);
      followerB.resume();
      expect(await failedB).toMatchObject(REFUSED);
      // Room again: the paused follower reads on, on a new connection.
      await admin.config('SET', 'maxclients', '10');
      followerA.resume();
      writerA.end('third\n');
      await new Promise((resolve) => followerA.once('end', resolve));
      expect(gotA.join('')).toBe('first\nsecond\nthird\n');
      expect(await Promise.race([failedA, 'none'])).toBe('none');
      writerB.destroy();
    } finally {
      disconnectSubject(client);
      await admin.config('SET', 'maxclients', '3');
    }
  });

  it("gives up on no connection while the caller's client is down too (a proxy turning every connection away): the follower reads on once Redis is back", async () => {
    const { admin } = own;
    await admin.config('SET', 'maxclients', '10');
    const proxy = await startProxy(own.server.port);
    const client = await subjectConnected(connectSubject(proxy.url));
    try {
      const key = uniqueKey('full-proxy');
      const writer = createRedisWriteStream(subject(admin), key);
      writer.write('first\n');
      await new Promise((resolve) => writer.once('ready', resolve));
      const follower = createRedisReadStream(client, key);
      const got: string[] = [];
      follower.on('data', (data: Buffer) => got.push(data.toString()));
      const failed = failure(follower);
      await eventually(() => got.join('') === 'first\n', 'the first line to reach the follower');
      // Every connection of the follower's side, its client's and the package's alike, is turned
      // away again and again (each accepted, then closed), as while Redis restarts behind a proxy.
      proxy.down();
      writer.write('second\n');
      writer.flush();
      await eventually(() => proxy.turnedAway >= 8, 'the proxy to turn 8 connections away');
      proxy.up();
      writer.end('third\n');
      await new Promise((resolve) => follower.once('end', resolve));
      expect(got.join('')).toBe('first\nsecond\nthird\n');
      expect(await Promise.race([failed, 'none'])).toBe('none');
    } finally {
      disconnectSubject(client);
      await proxy.close();
      await admin.config('SET', 'maxclients', '3');
    }
  });
});
