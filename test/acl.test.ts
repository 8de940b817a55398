/**
 * The ACL rules docs/format.md gives (section "ACL"), taken from the document itself: on a private
 * server, a user made with exactly the documented rule does everything the package does (write,
 * read and follow a file, stat, list, remove, rename, expire, abort and resume, consumers, a
 * channel's send, receive, close and remove, a writer held back by `maxRedisMemory`, a writer that
 * waits for a replica) with no denial in ACL LOG, and the rule grants no command that none of them
 * sends (counted by the server's command statistics). The read-only rule follows a file, reads
 * what is stored of one being written, reads complete files and ranges, stats and lists, and is
 * refused every write and every script but the reader's read-only open script.
 */
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  closeChannel,
  createRedisReadStream,
  createRedisWriteStream,
  ErrorCodes,
  expire,
  list,
  type RedisReadStream,
  receiveFiles,
  remove,
  removeChannel,
  rename,
  sendFiles,
  stat,
} from '../src/index.js';
import { denials } from './helpers/acl.js';
import { closeAll, connect, subject, uniqueKey } from './helpers/clients.js';
import { eventually } from './helpers/eventually.js';
import { fileKeysOf } from './helpers/keys.js';
import { type RedisServer, startRedis } from './helpers/redis-server.js';
import { bytes, collect, get, put } from './helpers/streams.js';

afterAll(closeAll);

// -------------------------------------------------------------------------------------------------
// The rules, as docs/format.md writes them

interface DocumentedUser {
  readonly name: string;
  readonly password: string;
  /** The rules after the user name, as `ACL SETUSER` takes them. */
  readonly rules: readonly string[];
}

/** Every `ACL SETUSER` line of the code blocks of docs/format.md's section "ACL", by user name. */
function documentedUsers(): Map<string, DocumentedUser> {
  const doc = readFileSync(new URL('../docs/format.md', import.meta.url), 'utf8');
  const start = doc.indexOf('\n### ACL\n');
  if (start < 0) throw new Error('docs/format.md has no section "### ACL"');
  const end = doc.slice(start + 1).search(/\n##+ /);
  const section = end < 0 ? doc.slice(start) : doc.slice(start, start + 1 + end);
  const blocks = [...section.matchAll(/```[a-z]*\n([\s\S]*?)```/g)].map((m) => m[1]!);
  const users = new Map<string, DocumentedUser>();
  for (const line of blocks.flatMap((b) => b.split('\n'))) {
    const words = line.trim().split(/\s+/);
    if (words[0]?.toUpperCase() !== 'ACL' || words[1]?.toUpperCase() !== 'SETUSER') continue;
    const [name, ...rules] = words.slice(2);
    const password = rules.find((r) => r.startsWith('>'))?.slice(1);
    if (!name || !password) throw new Error(`docs/format.md: no user name or password in ${line}`);
    users.set(name, { name, password, rules });
  }
  return users;
}

/** The commands a rule grants one by one (`+xadd`, `+xinfo|stream`); categories (`+@…`) are listed apart. */
function grants(rules: readonly string[]): { commands: string[]; categories: string[] } {
  const added = rules.filter((r) => r.startsWith('+')).map((r) => r.slice(1).toLowerCase());
  return { commands: added.filter((c) => !c.startsWith('@')), categories: added.filter((c) => c.startsWith('@')) };
}

// -------------------------------------------------------------------------------------------------
// What the server saw

/** The commands the server ran since CONFIG RESETSTAT (`calls` > 0), as `xadd`, `xinfo|stream`. */
async function commandsRun(admin: Redis): Promise<Set<string>> {
  const stats = await admin.info('commandstats');
  return new Set(
    [...stats.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)].filter((m) => Number(m[2]) > 0).map((m) => m[1]!),
  );
}

/** How many connections of `user` are blocked in `command`. */
async function blockedOf(admin: Redis, user: string, command: string): Promise<number> {
  const list = (await admin.client('LIST')) as string;
  return list
    .split('\n')
    .filter((line) => line.includes(` user=${user} `) && line.includes(` cmd=${command} `) && /\bflags=\S*b/.test(line))
    .length;
}

async function usedMemory(admin: Redis): Promise<number> {
  return Number(/^used_memory:(\d+)/m.exec(await admin.info('memory'))![1]);
}

/** What a read stream delivers as it comes, and its end (awaited by the caller; a failure rejects it). */
function track(stream: RedisReadStream): { received: () => Buffer; ended: Promise<unknown> } {
  const parts: Buffer[] = [];
  stream.on('data', (chunk: Buffer) => parts.push(chunk));
  const ended = once(stream, 'end');
  ended.catch(() => {});
  return { received: () => Buffer.concat(parts), ended };
}

// -------------------------------------------------------------------------------------------------

const ADMIN_PASSWORD = 'acl-admin-secret';
const USERS = documentedUsers();
const MiB = 1024 * 1024;

describe('docs/format.md, section ACL', () => {
  it('documents a rule for a user of the whole package, and one for a reader', () => {
    expect([...USERS.keys()]).toEqual(['rfs-app', 'rfs-reader']);
  });

  it('the rules grant commands one by one, never a category, and only keys under the prefix', () => {
    for (const user of USERS.values()) {
      expect(grants(user.rules).categories, user.name).toEqual([]);
      expect(
        user.rules.filter((r) => /^(%[RW]+)?~/.test(r)),
        user.name,
      ).toHaveLength(1);
      expect(user.rules, user.name).toEqual(expect.arrayContaining(['on', 'resetkeys', 'resetchannels', '-@all']));
    }
    expect(USERS.get('rfs-app')!.rules).toContain('~rfs:*');
    expect(USERS.get('rfs-reader')!.rules).toContain('%R~rfs:*');
  });
});

describe('a user made with the documented rule', () => {
  let server: RedisServer;
  let replica: RedisServer;
  let admin: Redis;
  const appUser = USERS.get('rfs-app')!;
  const readerUser = USERS.get('rfs-reader')!;

  beforeAll(async () => {
    server = await startRedis({ password: ADMIN_PASSWORD });
    // A replica, so that a writer's `waitReplicas` has one to wait for.
    replica = await startRedis({
      args: ['--replicaof', '127.0.0.1', String(server.port), '--masterauth', ADMIN_PASSWORD],
    });
    admin = connect(server.url);
    await eventually(
      async () => /^connected_slaves:1\b/m.test(await admin.info('replication')),
      'the replica to connect',
    );
    for (const user of [appUser, readerUser]) await admin.acl('SETUSER', user.name, 'reset', ...user.rules);
  });
  /** A new client logged in as `user`: it connects (INFO is its ready check) once made. */
  function login(user: DocumentedUser): Redis {
    return connect(`redis://127.0.0.1:${server.port}`, { username: user.name, password: user.password });
  }

  afterAll(async () => {
    await closeAll();
    await replica?.stop();
    await server?.stop();
  });

  it('is confined: keys outside the prefix, and commands the package never sends, are refused', async () => {
    const app = login(appUser);
    await expect(app.set('other:x', '1')).rejects.toThrow(/NOPERM/);
    await expect(app.hget('other:x', 'f')).rejects.toThrow(/NOPERM/);
    await expect(app.keys('*')).rejects.toThrow(/NOPERM/);
    await expect(app.flushall()).rejects.toThrow(/NOPERM/);
    await expect(app.config('GET', 'maxmemory')).rejects.toThrow(/NOPERM/);
    await expect(put(app, uniqueKey('outside'), bytes(100), { prefix: 'other:' })).rejects.toMatchObject({
      code: ErrorCodes.REDIS,
      message: /NOPERM/,
    });
    expect(await admin.keys('other:*')).toEqual([]);
    await expect(app.subscribe('rfs:anything')).rejects.toThrow(/NOPERM/);
  });

  it('does everything the package does, with no denial, and every command the rule grants is used', async () => {
    await admin.script('FLUSH'); // so that the first EVALSHA of each script meets NOSCRIPT and EVAL runs too
    await admin.acl('LOG', 'RESET');
    await admin.config('RESETSTAT');
    const app = login(appUser);

    // Follow: a reader waits for a file that does not exist yet, and gets its bytes while it is written.
    const key = uniqueKey('acl-file');
    const data = bytes(100 * 1024 + 7, 31);
    const follower = track(createRedisReadStream(subject(app), key, { waitForCreate: 15_000 }));
    const writer = createRedisWriteStream(subject(app), key, { chunkSize: 16 * 1024, heartbeatInterval: 20 });
    writer.write(data.subarray(0, 40 * 1024));
    await eventually(() => follower.received().length > 0, 'the follower to get bytes while the file is written');
    writer.end(data.subarray(40 * 1024));
    await once(writer, 'finish');
    await follower.ended;
    expect(follower.received().equals(data)).toBe(true);

    // Read, range, stat, list.
    expect((await get(app, key)).equals(data)).toBe(true);
    expect((await get(app, key, { start: 1000, end: 49_999 })).equals(data.subarray(1000, 50_000))).toBe(true);
    expect(await stat(subject(app), key)).toMatchObject({ state: 'complete', size: data.length });
    const listed: string[] = [];
    for await (const file of list(subject(app), { match: key })) listed.push(file.key);
    expect(listed).toEqual([key]);

    // Rename, expire and its removal, overwrite with a TTL.
    const renamed = `${key}-renamed`;
    await rename(subject(app), key, renamed);
    expect(await expire(subject(app), renamed, 600)).toBe(true);
    expect((await stat(subject(app), renamed)).ttl).toBeGreaterThan(500);
    expect(await expire(subject(app), renamed, null)).toBe(true);
    expect((await stat(subject(app), renamed)).ttl).toBeUndefined();
    await put(app, renamed, bytes(20_000, 32), { overwrite: true, ttl: 600 });

    // An upload destroyed half-way (marked aborted), continued with resume.
    const third = bytes(80 * 1024, 33);
    const aborted = createRedisWriteStream(subject(app), renamed, {
      chunkSize: 16 * 1024,
      overwrite: true,
      heartbeatInterval: 20,
    });
    aborted.on('error', () => {});
    aborted.write(third.subarray(0, 40 * 1024));
    await eventually(
      async () => (await stat(subject(app), renamed)).size >= 32 * 1024,
      'the heartbeat to record progress',
    );
    aborted.destroy();
    await once(aborted, 'close');
    const partial = await stat(subject(app), renamed);
    expect(partial).toMatchObject({ state: 'aborted', size: 32 * 1024 });
    const resumed = createRedisWriteStream(subject(app), renamed, { resume: true });
    await pipeline(Readable.from([third.subarray(partial.size)]), resumed);
    expect((await get(app, renamed)).equals(third)).toBe(true);
    expect(await remove(subject(app), renamed)).toBe(true);

    // A file deleted once its one consumer has read it.
    const consumed = uniqueKey('acl-consumed');
    await put(app, consumed, bytes(30_000, 34), { consumers: ['c1'] });
    expect((await get(app, consumed, { consumer: 'c1' })).length).toBe(30_000);
    await expect(stat(subject(app), consumed)).rejects.toMatchObject({ code: ErrorCodes.NOT_FOUND });

    // A writer that waits for the replica.
    const replicated = uniqueKey('acl-replicated');
    await put(app, replicated, bytes(50_000, 35), { chunkSize: 16 * 1024, waitReplicas: 1 });
    expect(await remove(subject(app), replicated)).toBe(true);

    // A channel: the receiver waits, the sender sends under a memory limit, so that the receiver
    // reports its position and trims what it consumed (a file larger than its read-ahead and its
    // buffer: the receiver reads on only once it has consumed chunks), the channel is closed (the
    // receiver ends) and removed.
    const channel = uniqueKey('acl-channel');
    const sent = bytes(2 * MiB, 36);
    const received: { name: string; data: Buffer }[] = [];
    const receiving = (async () => {
      for await (const file of receiveFiles(subject(app), channel, { consumer: 'r1' })) {
        received.push({ name: file.name, data: await collect(file.stream) });
        await file.ack();
      }
    })();
    await eventually(async () => (await blockedOf(admin, appUser.name, 'xreadgroup')) === 1, 'the receiver to wait');
    // A limit the 2 MiB file does not fit in: the sender is held back, and the receiver trims what
    // it consumed (XTRIM). The room above what Redis uses now holds the receiver's pending reply,
    // a chunk on its way, and what the transfer adds besides (connections, scripts, streams).
    await sendFiles(subject(app), channel, [{ name: 'a.bin', stream: Readable.from([sent]), size: sent.length }], {
      consumers: 1,
      maxRedisMemory: (await usedMemory(admin)) + 2 * MiB,
      chunkSize: 64 * 1024,
    });
    await closeChannel(subject(app), channel);
    await receiving;
    expect(received.map((f) => [f.name, f.data.equals(sent)])).toEqual([['a.bin', true]]);
    // Run again after it ended on the close, the receiver ends at once (it reads its group's
    // position with XINFO STREAM ... FULL).
    const again: string[] = [];
    for await (const file of receiveFiles(subject(app), channel, { consumer: 'r1' })) again.push(file.name);
    expect(again).toEqual([]);
    expect(await removeChannel(subject(app), channel)).toBe(true);

    // A writer held back by maxRedisMemory (it waits on the freed-memory stream), woken when the
    // acknowledgement of its one consumer deletes a file that fills Redis.
    const filler = uniqueKey('acl-filler');
    await put(app, filler, bytes(8 * MiB, 37), { consumers: 1, maxRedisMemory: 1024 * MiB, chunkSize: 256 * 1024 });
    const held = uniqueKey('acl-held');
    const heldData = bytes(MiB, 38);
    const heldWriter = createRedisWriteStream(subject(app), held, {
      maxRedisMemory: (await usedMemory(admin)) - 2 * MiB,
    });
    const writing = pipeline(Readable.from([heldData]), heldWriter);
    await eventually(
      async () => (await blockedOf(admin, appUser.name, 'xread')) === 1,
      'the writer to wait for freed memory',
    );
    expect(heldWriter.committedBytes).toBeLessThan(heldData.length);
    expect((await get(app, filler, { consumer: 'only' })).length).toBe(8 * MiB);
    await writing;
    expect((await get(app, held)).equals(heldData)).toBe(true);
    expect(await remove(subject(app), held)).toBe(true);

    expect(await denials(admin, appUser.name)).toEqual([]);
    // Every command the rule grants was run (by the user: the admin sends none of them but INFO,
    // which the user's client sends too when it connects, and the memory guard from its script).
    const run = await commandsRun(admin);
    expect(grants(appUser.rules).commands.filter((c) => !run.has(c))).toEqual([]);
    expect((await admin.keys('*')).filter((k) => !k.startsWith('rfs:'))).toEqual([]);
  });

  it('the read-only rule reads: follow, what is stored so far, a complete file, a range, stat, list', async () => {
    const app = login(appUser);
    const key = uniqueKey('acl-read');
    const data = bytes(60 * 1024 + 3, 41);
    await admin.acl('LOG', 'RESET');
    await admin.config('RESETSTAT');
    // Readers load the open script themselves (EVAL_RO) where no one has yet.
    await admin.script('FLUSH');
    const reader = login(readerUser);

    // A follower that waits for the file, and gets its bytes while it is written.
    const follower = track(createRedisReadStream(subject(reader), key, { waitForCreate: 15_000 }));
    const writer = createRedisWriteStream(subject(app), key, { chunkSize: 16 * 1024 });
    writer.write(data.subarray(0, 20 * 1024));
    // All of it, its last piece stored by the writer's flushInterval.
    await eventually(() => follower.received().length === 20 * 1024, 'the follower to get what was written so far');
    // Without follow, what is stored now: the reader checks the file at the tail.
    expect((await get(reader, key, { follow: false })).equals(data.subarray(0, 20 * 1024))).toBe(true);
    writer.end(data.subarray(20 * 1024));
    await once(writer, 'finish');
    await follower.ended;
    expect(follower.received().equals(data)).toBe(true);

    expect(await stat(subject(reader), key)).toMatchObject({ state: 'complete', size: data.length });
    const listed: string[] = [];
    for await (const file of list(subject(reader), { match: key })) listed.push(file.key);
    expect(listed).toEqual([key]);
    expect((await get(reader, key)).equals(data)).toBe(true);
    expect((await get(reader, key, { start: 100, end: 20_000 })).equals(data.subarray(100, 20_001))).toBe(true);

    // An aborted file: stat tells what its writer committed.
    const abortedKey = uniqueKey('acl-read-aborted');
    const aborted = createRedisWriteStream(subject(app), abortedKey, { chunkSize: 16 * 1024 });
    aborted.on('error', () => {});
    aborted.write(bytes(20 * 1024, 42));
    await once(aborted, 'ready');
    aborted.destroy();
    await once(aborted, 'close');
    expect(await stat(subject(reader), abortedKey)).toMatchObject({ state: 'aborted' });

    expect(await denials(admin, readerUser.name)).toEqual([]);
    const run = await commandsRun(admin);
    expect(grants(readerUser.rules).commands.filter((c) => !run.has(c))).toEqual([]);
    expect(await remove(subject(app), key)).toBe(true);
    expect(await remove(subject(app), abortedKey)).toBe(true);
  });

  it('the read-only rule is refused every write, and every script (stat of a file being written)', async () => {
    const app = login(appUser);
    const reader = login(readerUser);
    const key = uniqueKey('acl-read-refused');
    const writer = createRedisWriteStream(subject(app), key, { chunkSize: 16 * 1024 });
    writer.write(bytes(20 * 1024, 43));
    await once(writer, 'ready');
    // Redis refuses EVALSHA to a user with read access alone: it declares its keys as written.
    await expect(stat(subject(reader), key)).rejects.toMatchObject({ code: ErrorCodes.REDIS, message: /NOPERM/ });
    await expect(put(reader, uniqueKey('acl-read-put'), bytes(100))).rejects.toMatchObject({ code: ErrorCodes.REDIS });
    await expect(remove(subject(reader), key)).rejects.toMatchObject({ code: ErrorCodes.REDIS });
    await expect(expire(subject(reader), key, 60)).rejects.toMatchObject({ code: ErrorCodes.REDIS });
    await expect(reader.hset(fileKeysOf(key).meta, 'state', 'aborted')).rejects.toThrow(/NOPERM/);
    await expect(reader.del(fileKeysOf(key).meta)).rejects.toThrow(/NOPERM/);
    writer.end();
    await once(writer, 'finish');
    expect(await stat(subject(app), key)).toMatchObject({ state: 'complete', size: 20 * 1024, ttl: undefined });
    expect(await remove(subject(app), key)).toBe(true);
  });
});
