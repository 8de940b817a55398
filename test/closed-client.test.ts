// A caller that closes its client (quit, disconnect) under what waits on it: a reader waiting for a
// file to be created, a follower at the tail of an idle writer's file, and a receiver waiting for
// the next file. Each fails with ERR_REDIS_FILE_REDIS, rather than waiting out its timeout (or for
// ever, the receiver), and the connections the package opened for it close.

import { afterAll, describe, expect, it } from 'vitest';
import { createRedisReadStream, createRedisWriteStream, type RedisClient, receiveFiles } from '../src/index.js';
import { portOf } from '../src/redis/port.js';
import {
  blockedIn,
  closeAll,
  clusterSeeds,
  connect,
  connectAny,
  connectSubject,
  disconnectSubject,
  readyAnySubject,
  subject,
  subjectConnected,
  uniqueConnectionName,
  uniqueKey,
} from './helpers/clients.js';
import { eventually } from './helpers/eventually.js';
import { startRedis } from './helpers/redis-server.js';

const redis = connectAny();
afterAll(closeAll);

/** A client of the library under test, its connections named `name`, and its blocking reads seen. */
async function caller(name: string): Promise<RedisClient> {
  return readyAnySubject({ connectionName: name });
}

/** Blocking reads (XREAD or XREADGROUP) on connections named `name`, on every node. */
async function blocked(name: string): Promise<number> {
  return (await blockedIn(redis, name)) + (await blockedIn(redis, name, 'xreadgroup'));
}

describe('a client closed by its owner', () => {
  it('fails a reader waiting for the file to be created, at once rather than after waitForCreate', async () => {
    const name = uniqueConnectionName('closed-wait');
    const client = await caller(name);
    const reader = createRedisReadStream(client, uniqueKey('closed-wait'), { waitForCreate: 120_000 });
    reader.resume();
    const failed = new Promise<unknown>((resolve) => reader.on('error', resolve));
    await eventually(async () => (await blocked(name)) === 1, 'the reader to wait in a blocking read');
    disconnectSubject(client);
    expect(await failed).toMatchObject({ code: 'ERR_REDIS_FILE_REDIS', message: expect.stringMatching(/closed/) });
    await eventually(async () => (await blocked(name)) === 0, 'its blocking connection to close');
  });

  it('fails a follower at the tail of a file whose writer is idle', async () => {
    const key = uniqueKey('closed-follow');
    const writer = createRedisWriteStream(subject(redis), key);
    writer.write('a line\n');
    await new Promise((resolve) => writer.once('ready', resolve));
    const name = uniqueConnectionName('closed-follow');
    const client = await caller(name);
    const reader = createRedisReadStream(client, key);
    const failed = new Promise<unknown>((resolve) => reader.on('error', resolve));
    reader.resume();
    await eventually(async () => (await blocked(name)) === 1, 'the follower to wait at the tail');
    disconnectSubject(client);
    expect(await failed).toMatchObject({ code: 'ERR_REDIS_FILE_REDIS' });
    await eventually(async () => (await blocked(name)) === 0, 'its blocking connection to close');
    writer.destroy();
  });

  it('fails a writer whose end record waits for replicas at once, not after retryTimeout', async () => {
    // On the cluster, the end record and its WAIT go to a node connection of the closed client.
    const client = await caller(uniqueConnectionName('closed-commit'));
    const writer = createRedisWriteStream(client, uniqueKey('closed-commit'), {
      waitReplicas: clusterSeeds() ? 1 : 0,
      retryTimeout: 600_000,
    });
    const failed = new Promise<unknown>((resolve) => writer.on('error', resolve));
    writer.write('a line\n');
    await new Promise((resolve) => writer.once('ready', resolve));
    disconnectSubject(client);
    writer.end();
    expect(await failed).toMatchObject({ code: 'ERR_REDIS_FILE_REDIS' });
  });

  it('ends a receiver waiting for the next file with a rejection', async () => {
    const name = uniqueConnectionName('closed-receive');
    const client = await caller(name);
    const next = receiveFiles(client, uniqueKey('closed-receive'), { consumer: 'r' }).next();
    next.catch(() => {});
    await eventually(async () => (await blocked(name)) === 1, 'the receiver to wait for a file');
    disconnectSubject(client);
    await expect(next).rejects.toMatchObject({
      code: 'ERR_REDIS_FILE_REDIS',
      message: expect.stringMatching(/closed/),
    });
    await eventually(async () => (await blocked(name)) === 0, 'its blocking connection to close');
  });

  it('is heard by the package as soon as the client closes, on every client it takes', async () => {
    // What ends a waiting receiver or follower at once (the test below), for this library and
    // topology: the client's own word that it has closed, not a look after the next read.
    const client = await caller(uniqueConnectionName('closed-heard'));
    let heard = 0;
    portOf(client).onClosed(() => heard++);
    const cancelled = portOf(client).onClosed(() => heard++);
    cancelled();
    expect(heard).toBe(0);
    disconnectSubject(client);
    await eventually(async () => heard === 1, 'the close to be heard');
    expect(heard).toBe(1);
  });

  it('ends a receiver and a reader waiting for a file at once, even on a Redis that answers nothing', async () => {
    // A server of its own, stopped (SIGSTOP) under them: their blocking reads never return by
    // themselves, so only the close of the client, heard at once, ends them.
    const server = await startRedis();
    try {
      const admin = connect(server.url);
      const name = uniqueConnectionName('closed-stopped');
      // ioredis and iovalkey end a connection whose server does not answer its close after
      // `disconnectTimeout` (2 s by default): sooner here, for the test's time.
      const options = { connectionName: name, disconnectTimeout: 100 };
      const client = await subjectConnected(connectSubject(server.url, options));
      const next = receiveFiles(client, uniqueKey('closed-stopped'), { consumer: 'r' }).next();
      next.catch(() => {});
      const reader = createRedisReadStream(client, uniqueKey('closed-stopped'), { waitForCreate: 600_000 });
      const failed = new Promise<unknown>((resolve) => reader.on('error', resolve));
      reader.resume();
      const waiting = async (): Promise<number> =>
        (await blockedIn(admin, name, 'xreadgroup')) + (await blockedIn(admin, name, 'xread'));
      await eventually(async () => (await waiting()) === 2, 'the receiver and the reader to wait');
      process.kill(server.pid!, 'SIGSTOP');
      try {
        disconnectSubject(client);
        const closed = { code: 'ERR_REDIS_FILE_REDIS', message: expect.stringMatching(/client was closed/) };
        await expect(next).rejects.toMatchObject(closed);
        expect(await failed).toMatchObject(closed);
      } finally {
        process.kill(server.pid!, 'SIGCONT');
      }
      admin.disconnect();
    } finally {
      await server.stop();
    }
  });
});
