/**
 * The caller's client as applications configure it, and the connections the package opens from
 * it for blocking reads: a database selected at run time (SELECT), a timeout for commands shorter
 * than a blocking read's wait, and a client that refuses commands while it has no connection. Each
 * with the client of the library under test, made here with those options.
 */
import { once } from 'node:events';
import { afterAll, describe, expect, it } from 'vitest';
import { createRedisReadStream, createRedisWriteStream, type RedisClient, type RedisReadStream } from '../src/index.js';
import {
  blockedIn,
  closeAll,
  connect,
  sharedRedisUrl,
  subjectClientName,
  uniqueConnectionName,
  uniqueKey,
} from './helpers/clients.js';
import { eventually } from './helpers/eventually.js';
import { fileKeysOf } from './helpers/keys.js';

const library = subjectClientName();
const admin = connect();
const made: { close(): Promise<unknown> }[] = [];
afterAll(async () => {
  await Promise.all(made.splice(0).map((c) => c.close().catch(() => {})));
  await closeAll();
});

/** Options of every library, each in its own words. */
interface Options {
  name: string;
  /** A timeout for every command, in ms. */
  commandTimeout?: number;
  /** Commands fail while the client has no connection, instead of waiting for one. */
  noOfflineQueue?: boolean;
}

/** A connected client of the library under test, with `options`. */
async function client(options: Options): Promise<RedisClient> {
  const url = sharedRedisUrl();
  if (library === 'node-redis') {
    const { createClient } = await import('redis');
    const c = createClient({
      url,
      name: options.name,
      ...(options.noOfflineQueue ? { disableOfflineQueue: true } : {}),
      ...(options.commandTimeout === undefined ? {} : { commandOptions: { timeout: options.commandTimeout } }),
    });
    c.on('error', () => {});
    await c.connect();
    made.push({ close: () => c.close() });
    return c as unknown as RedisClient;
  }
  // iovalkey's Redis takes the options of ioredis's (a fork of it).
  const { Redis } = (library === 'iovalkey'
    ? await import('iovalkey')
    : await import('ioredis')) as unknown as typeof import('ioredis');
  const c = new Redis(url, {
    connectionName: options.name,
    ...(options.noOfflineQueue ? { enableOfflineQueue: false } : {}),
    ...(options.commandTimeout === undefined ? {} : { commandTimeout: options.commandTimeout }),
  });
  c.on('error', () => {});
  await once(c, 'ready');
  made.push({ close: () => c.quit() });
  return c as unknown as RedisClient;
}

/** What a follower delivers as it comes, and how it ends. */
function follow(reader: RedisReadStream): { received: () => string; ended: Promise<unknown> } {
  let text = '';
  reader.on('data', (chunk: Buffer) => (text += chunk.toString()));
  const ended = once(reader, 'end');
  ended.catch(() => {});
  return { received: () => text, ended };
}

describe("the caller's client, as configured", () => {
  it('a database selected at run time: the file is stored there; a follower gets each write (node-redis: the whole file)', async () => {
    const name = uniqueConnectionName('select');
    const c = await client({ name });
    await (c as unknown as { select(db: number): Promise<unknown> }).select(3);
    const key = uniqueKey('select');
    const writer = createRedisWriteStream(c, key);
    writer.write('a');
    await once(writer, 'ready');
    const follower = follow(createRedisReadStream(c, key));
    if (library !== 'node-redis') {
      await eventually(() => follower.received() === 'a', 'the first write to reach the follower');
      writer.write('b');
      await eventually(() => follower.received() === 'ab', 'the second write to reach the follower');
    } else {
      // node-redis keeps the selected database to itself: its duplicates connect to the one of
      // its options, so a follower's blocking reads watch another database, and it reads the file
      // once it sees it complete (docs/clients.md). It never waits for ever.
      await eventually(async () => (await blockedIn(admin, name, 'xread')) === 1, 'the follower to wait');
      writer.write('b');
    }
    writer.end('c');
    await once(writer, 'finish');
    await follower.ended;
    expect(follower.received()).toBe('abc');
    const inThree = connect(sharedRedisUrl(), { db: 3 });
    expect(await inThree.exists(fileKeysOf(key).meta)).toBe(1);
    expect(await admin.exists(fileKeysOf(key).meta)).toBe(0);
  });

  it("a timeout for commands shorter than a blocking read's wait does not cut the follower's waits short", async () => {
    const name = uniqueConnectionName('timeout');
    const c = await client({ name, commandTimeout: 300 });
    const key = uniqueKey('timeout');
    const reader = createRedisReadStream(c, key, { waitForCreate: 20_000 });
    let failed: unknown;
    reader.on('error', (err) => (failed = err));
    const follower = follow(reader);
    // Blocked in XREAD on one connection of its own for 2 s: several waits of 1 s, each longer than
    // the client's timeout.
    await eventually(async () => {
      if (failed) return true;
      const lines = ((await admin.client('LIST')) as string).split('\n');
      return lines.some(
        (l) => l.includes(` name=${name} `) && /\bcmd=xread\b/.test(l) && /\bage=([2-9]|\d\d+)\b/.test(l),
      );
    }, 'the follower to wait for 2 s');
    expect(failed).toBeUndefined();
    const writer = createRedisWriteStream(c, key);
    writer.write('a');
    await eventually(() => follower.received() === 'a', 'the write to reach the follower');
    writer.end('b');
    await follower.ended;
    expect(follower.received()).toBe('ab');
  });

  it('a client that refuses commands while it has no connection: a follower gets every write', async () => {
    const name = uniqueConnectionName('offline');
    const c = await client({ name, noOfflineQueue: true });
    const key = uniqueKey('offline');
    const writer = createRedisWriteStream(c, key);
    writer.write('a');
    await once(writer, 'ready');
    const follower = follow(createRedisReadStream(c, key));
    await eventually(() => follower.received() === 'a', 'the first write to reach the follower');
    writer.end('b');
    await follower.ended;
    expect(follower.received()).toBe('ab');
  });
});
