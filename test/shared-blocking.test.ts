/**
 * Followers of one client share one blocking connection: one XREAD over the streams of every
 * follower that waits (src/blocking-reads.ts). Each still gets exactly its own file, a slow one
 * holds back no one, one that joins while the shared read blocks is served, the connection closes
 * when the last follower leaves, and each follower keeps its own liveness checks.
 */
import { once } from 'node:events';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FOLLOWERS_PER_CONNECTION } from '../src/blocking-reads.js';
import { createRedisReadStream, createRedisWriteStream, type RedisWriteStream } from '../src/index.js';
import { aclLog } from './helpers/acl.js';
import {
  blockedIn,
  clientList,
  closeAll,
  connect,
  connectSubject,
  subject,
  subjectReady,
  uniqueConnectionName,
  uniqueKey,
} from './helpers/clients.js';
import { eventually } from './helpers/eventually.js';
import { fileKeysOf } from './helpers/keys.js';
import { type RedisServer, startRedis } from './helpers/redis-server.js';
import { bytes, collect, follower } from './helpers/streams.js';

let server: RedisServer;
let admin: Redis;
let writers: Redis;

beforeAll(async () => {
  // A server of its own: the counts of connections and commands below are this file's alone.
  server = await startRedis();
  admin = connect(server.url);
  writers = connect(server.url);
});
afterAll(async () => {
  await closeAll();
  await server?.stop();
});

/** How many connections named `name` the server has. */
async function connectionsNamed(name: string): Promise<number> {
  return (await clientList(admin)).split('\n').filter((line) => line.includes(` name=${name} `)).length;
}

async function calls(command: string): Promise<number> {
  const stats = (await admin.info('commandstats')) as string;
  return Number(new RegExp(`^cmdstat_${command.replace('|', '\\|')}:calls=(\\d+)`, 'm').exec(stats)?.[1] ?? 0);
}

function write(key: string, options = {}): RedisWriteStream {
  const w = createRedisWriteStream(subject(writers), key, { chunkSize: 1000, ...options });
  w.on('error', () => {});
  return w;
}

async function stored(w: RedisWriteStream, n: number): Promise<void> {
  await eventually(() => w.committedBytes >= n, `${n} bytes stored`);
}

describe('followers of one client', () => {
  it('200 followers share a blocking connection per 64, and each gets exactly its own file', async () => {
    const name = uniqueConnectionName('many');
    const client = connectSubject(server.url, { connectionName: name });
    await subjectReady(client);
    const n = 200;
    const shared = Math.ceil(n / FOLLOWERS_PER_CONNECTION);
    expect(shared).toBe(4);
    const keys = Array.from({ length: n }, (_, i) => uniqueKey(`many-${i}`));
    const data = keys.map((_, i) => bytes(1500, i + 1));
    // Every follower waits for its file to be created ...
    const followers = keys.map((key) => follower(client, key));
    // A wake-up may replace a blocked connection: the counts settle once every follower waits.
    const settled = async () =>
      (await blockedIn(admin, name)) === shared && (await connectionsNamed(name)) === 1 + shared;
    await eventually(settled, 'the followers to wait, 64 a connection');
    // ... then for its bytes, while its writer is still writing ...
    const ws = keys.map((key, i) => {
      const w = write(key);
      w.write(data[i]!.subarray(0, 1000));
      return w;
    });
    await eventually(
      () => followers.every((f) => f.received().length === 1000),
      'every follower to get its first chunk',
      20_000,
    );
    await eventually(settled, 'the followers to wait again');
    // ... and to the end.
    for (const [i, w] of ws.entries()) w.end(data[i]!.subarray(1000));
    const got = await Promise.all(followers.map((f) => f.done));
    for (const [i, bytesOf] of got.entries()) expect(bytesOf.equals(data[i]!), keys[i]).toBe(true);
    await eventually(async () => (await connectionsNamed(name)) === 1, 'the blocking connections to be closed');
  });

  it('a follower that does not read holds back no other', async () => {
    const client = connectSubject(server.url);
    const keys = Array.from({ length: 4 }, (_, i) => uniqueKey(`slow-${i}`));
    // Larger than what a paused stream buffers (its highWaterMark is 1 MiB): the paused follower
    // stops asking for more.
    const data = keys.map((_, i) => bytes(3 * 1024 * 1024, 40 + i));
    const ws = keys.map((key, i) => {
      const w = write(key, { chunkSize: 64 * 1024 });
      w.write(data[i]!.subarray(0, 1000));
      return w;
    });
    await Promise.all(ws.map((w) => stored(w, 1000)));
    // One chunk per read: what a paused follower holds stays far below the file.
    const followers = keys.map((key) => follower(client, key, { readAhead: 1 }));
    await eventually(() => followers.every((f) => f.received().length === 1000), 'every follower to get 1000 bytes');
    const slow = followers[0]!;
    slow.reader.pause();
    for (const [i, w] of ws.entries()) w.end(data[i]!.subarray(1000));
    // The others complete while the slow one is paused.
    const others = await Promise.all(followers.slice(1).map((f) => f.done));
    for (const [i, got] of others.entries()) expect(got.equals(data[i + 1]!)).toBe(true);
    expect(slow.reader.deliveredBytes).toBeLessThan(data[0]!.length);
    slow.reader.resume();
    expect((await slow.done).equals(data[0]!)).toBe(true);
  });

  it('a follower whose buffer is full is read for one batch ahead at most, then left out of the reads', async () => {
    const name = uniqueConnectionName('full');
    const client = connectSubject(server.url, { connectionName: name });
    const key = uniqueKey('full');
    const chunk = 64 * 1024;
    const data = bytes(18 * chunk, 9);
    const w = write(key, { chunkSize: chunk });
    // 15 chunks: less than one read (16), and less than the reader's highWaterMark (1 MiB).
    w.write(data.subarray(0, 15 * chunk));
    await stored(w, 15 * chunk);
    const reader = createRedisReadStream(client, key);
    // Read into the buffer, never out of it.
    reader.on('readable', () => {});
    await eventually(() => reader.deliveredBytes === 15 * chunk, 'the stored chunks buffered');
    await eventually(async () => (await blockedIn(admin, name)) === 1, 'the follower to wait at the tail');
    // This chunk fills the buffer: the follower stops asking.
    w.write(data.subarray(15 * chunk, 16 * chunk));
    await eventually(() => reader.deliveredBytes === 16 * chunk, 'the 16th chunk buffered');
    // This one the shared read brings and keeps for it; then nothing is left to block for.
    w.write(data.subarray(16 * chunk, 17 * chunk));
    await stored(w, 17 * chunk);
    await eventually(async () => (await blockedIn(admin, name)) === 0, 'the shared read to stop blocking');
    expect(await connectionsNamed(name)).toBe(2);
    expect(reader.deliveredBytes).toBe(16 * chunk);
    w.end(data.subarray(17 * chunk));
    expect((await collect(reader)).equals(data)).toBe(true);
  });

  it('a follower that joins while the shared read blocks gets its bytes (woken by CLIENT UNBLOCK)', async () => {
    const name = uniqueConnectionName('join');
    const client = connectSubject(server.url, { connectionName: name });
    const first = uniqueKey('join-first');
    const w0 = write(first);
    w0.write(bytes(1000, 7));
    const f0 = follower(client, first);
    await eventually(() => f0.received().length === 1000, 'the first follower to get its bytes');
    await eventually(async () => (await blockedIn(admin, name)) === 1, 'the first follower to block');
    const unblocksBefore = await calls('client|unblock');
    const late: { key: string; data: Buffer; w: RedisWriteStream; f: ReturnType<typeof follower> }[] = [];
    for (let i = 0; i < 3; i++) {
      const key = uniqueKey(`join-${i}`);
      const data = bytes(3000, 70 + i);
      const w = write(key);
      w.write(data.subarray(0, 1000));
      await stored(w, 1000);
      const f = follower(client, key);
      await eventually(() => f.received().length === 1000, 'the late follower to read what is stored');
      // Written after the follower reached the tail: only the shared read can bring it.
      w.write(data.subarray(1000, 2000));
      await eventually(() => f.received().length === 2000, 'the late follower to get bytes written while it waits');
      late.push({ key, data, w, f });
    }
    // The first wake of a lane replaces its connection; from then on it knows the connection's id.
    expect(await calls('client|unblock')).toBeGreaterThan(unblocksBefore);
    await eventually(async () => (await blockedIn(admin, name)) === 1, 'all four to wait on one connection');
    for (const { data, w } of late) w.end(data.subarray(2000));
    w0.end(bytes(500, 8));
    for (const { data, f } of late) expect((await f.done).equals(data)).toBe(true);
    expect((await f0.done).length).toBe(1500);
  });

  it('destroying followers while the shared read blocks: the others go on; the last frees the connection', async () => {
    const name = uniqueConnectionName('leave');
    const client = connectSubject(server.url, { connectionName: name });
    const keys = Array.from({ length: 20 }, (_, i) => uniqueKey(`leave-${i}`));
    const ws = keys.map((key) => {
      const w = write(key);
      w.write(bytes(1000, 3));
      return w;
    });
    await Promise.all(ws.map((w) => stored(w, 1000)));
    const followers = keys.map((key) => follower(client, key));
    await eventually(() => followers.every((f) => f.received().length === 1000), 'every follower at the tail');
    const one = async () => (await blockedIn(admin, name)) === 1 && (await connectionsNamed(name)) === 2;
    await eventually(one, 'the followers to block on one connection');
    const last = followers.pop()!;
    for (const f of followers) f.reader.destroy();
    await Promise.all(followers.map((f) => once(f.reader, 'close')));
    // The last follower keeps the connection, blocked for it.
    await eventually(one, 'the remaining follower to keep one blocked connection');
    ws[19]!.write(bytes(1000, 4));
    await eventually(() => last.received().length === 2000, 'the remaining follower to get its bytes');
    last.reader.destroy();
    await once(last.reader, 'close');
    await eventually(async () => (await connectionsNamed(name)) === 1, 'the blocking connection to be closed');
    expect(await blockedIn(admin, name)).toBe(0);
    for (const w of ws) w.destroy();
  });

  it('each follower keeps its own liveness: the one whose writer stopped times out, the others complete', async () => {
    const client = connectSubject(server.url);
    const frozen = uniqueKey('frozen');
    const fw = write(frozen, { heartbeatInterval: 50 });
    fw.write(bytes(1500));
    await stored(fw, 1000);
    const live = Array.from({ length: 3 }, (_, i) => {
      const key = uniqueKey(`live-${i}`);
      const data = bytes(2000, 90 + i);
      const w = write(key, { heartbeatInterval: 50 });
      w.write(data.subarray(0, 1000));
      return { key, data, w };
    });
    await Promise.all(live.map(({ w }) => stored(w, 1000)));
    // Freeze the writer: take its lease away without marking the file aborted.
    await writers.hset(fileKeysOf(frozen).meta, 'writer', '00000000deadbeef');
    const stopped = createRedisReadStream(client, frozen, { idleTimeout: 300 });
    const followers = live.map(({ key }) => follower(client, key, { idleTimeout: 30_000 }));
    await expect(collect(stopped)).rejects.toMatchObject({ code: 'ERR_REDIS_FILE_TIMEOUT' });
    for (const { data, w } of live) w.end(data.subarray(1000));
    for (const [i, f] of followers.entries()) expect((await f.done).equals(live[i]!.data)).toBe(true);
  });

  it('a key of another type fails only the follower whose file it belongs to', async () => {
    const client = connectSubject(server.url);
    const keys = [uniqueKey('bad'), uniqueKey('good-1'), uniqueKey('good-2')];
    const data = keys.map((_, i) => bytes(2000, 20 + i));
    const ws = keys.map((key, i) => {
      const w = write(key);
      w.write(data[i]!.subarray(0, 1000));
      return w;
    });
    await Promise.all(ws.map((w) => stored(w, 1000)));
    const followers = keys.map((key) => follower(client, key));
    await eventually(() => followers.every((f) => f.received().length === 1000), 'every follower at the tail');
    const { events } = fileKeysOf(keys[0]!);
    await writers.multi().del(events).set(events, 'not a stream').exec();
    await expect(followers[0]!.done).rejects.toMatchObject({ code: 'ERR_REDIS_FILE_FORMAT' });
    for (const [i, w] of ws.entries()) if (i > 0) w.end(data[i]!.subarray(1000));
    for (const i of [1, 2]) expect((await followers[i]!.done).equals(data[i]!)).toBe(true);
    ws[0]!.destroy();
  });
});

describe('a user whose ACL refuses CLIENT ID and CLIENT UNBLOCK', () => {
  it('followers that join while the shared read blocks are served all the same', async () => {
    const user = uniqueConnectionName('no-unblock');
    // The read-only rule of docs/format.md.
    await admin.acl('SETUSER', user, 'on', '>pw', 'resetkeys', '%R~rfs:*', 'resetchannels', '-@all');
    await admin.acl(
      'SETUSER',
      user,
      ...'+info +time +ttl +exists +hgetall +hmget +xrange +xrevrange +xread +scan'.split(' '),
    );
    await admin.acl('LOG', 'RESET');
    const client = connectSubject(`redis://127.0.0.1:${server.port}`, { username: user, password: 'pw' });
    const followers: { data: Buffer; w: RedisWriteStream; f: ReturnType<typeof follower> }[] = [];
    for (let i = 0; i < 4; i++) {
      const data = bytes(3000, 110 + i);
      const w = write(uniqueKey(`no-unblock-${i}`));
      w.write(data.subarray(0, 1000));
      await stored(w, 1000);
      const f = follower(client, w.key);
      await eventually(() => f.received().length === 1000, 'the follower to read what is stored');
      w.write(data.subarray(1000, 2000));
      await eventually(() => f.received().length === 2000, 'the follower to get bytes written while it waits');
      followers.push({ data, w, f });
    }
    for (const { data, w } of followers) w.end(data.subarray(2000));
    for (const { data, f } of followers) expect((await f.done).equals(data)).toBe(true);
    // ACL LOG folds repeated denials into one entry with a count: asked once for this client.
    const refused = (await aclLog(admin)).filter((f) => f.get('username') === user && f.get('object') === 'client|id');
    expect(refused.map((f) => Number(f.get('count')))).toEqual([1]);
  });
});

describe('a reader left alone', () => {
  it('opens no blocking connection before it waits, and none once it is done', async () => {
    const name = uniqueConnectionName('alone');
    const client = connectSubject(server.url, { connectionName: name });
    const key = uniqueKey('alone');
    const w = write(key);
    w.end(bytes(3000, 5));
    await once(w, 'finish');
    expect((await collect(createRedisReadStream(client, key))).length).toBe(3000);
    expect(await connectionsNamed(name)).toBe(1);
  });
});
