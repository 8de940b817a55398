/**
 * A server at its `maxclients` limit: the caller's client, connected before, works, while every
 * connection the package opens of its own for blocking reads is answered with an error and closed.
 * ioredis and node-redis connect such a connection again for ever, and a blocking read queued on it
 * would wait for ever: a follower, a reader waiting for a file to be created and a channel receiver
 * waited silently, for good. Each now fails with ERR_REDIS_FILE_REDIS saying why (iovalkey's own
 * error already did).
 */

import { describe, expect, it } from 'vitest';
import { createRedisReadStream, createRedisWriteStream, type RedisClient, receiveFiles } from '../src/index.js';
import { portOf } from '../src/redis/port.js';
import { connect, connectSubject, disconnectSubject, subjectConnected, uniqueKey } from './helpers/clients.js';
import { eventually } from './helpers/eventually.js';
import { useOwnServer } from './helpers/own-server.js';

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

/** What `stream` fails with. */
function failure(stream: NodeJS.EventEmitter): Promise<unknown> {
  return new Promise((resolve) => stream.once('error', resolve));
}

describe('a server at its maxclients limit, refusing the connections the package opens', () => {
  it('fails a follower at the tail of a file being written, saying why, rather than leaving it waiting', async () => {
    const { client, release } = await callerOfFullServer();
    const key = uniqueKey('full-follow');
    const writer = createRedisWriteStream(client, key);
    writer.write('a line\n');
    await new Promise((resolve) => writer.once('ready', resolve));
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
});
