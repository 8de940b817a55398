/**
 * The package under TLS and under Redis ACLs, each on a private server of its own.
 *
 * - TLS: a TLS-only server with certificates made at run time (test/helpers/tls.ts). Round trip,
 *   and a follower that starts before the writer: its blocking connection (`client.duplicate()`)
 *   must speak TLS too. Also with client certificates (`--tls-auth-clients yes`).
 * - ACL: a user confined to the package's key namespace (`~rfs:*`) with only the commands the
 *   package sends (APP_RULES) can do everything; a prefix outside the pattern, and a user without
 *   scripting, fail with clear errors and store nothing.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis, type RedisOptions } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  closeChannel,
  createRedisReadStream,
  createRedisWriteStream,
  ErrorCodes,
  type KeyOptions,
  RedisFileError,
  receiveFiles,
  remove,
  stat,
} from '../src/index.js';
import { denials } from './helpers/acl.js';
import { closeAll, connect, replyErrorClass, subject, uniqueKey } from './helpers/clients.js';
import { eventually } from './helpers/eventually.js';
import { type RedisServer, startRedis } from './helpers/redis-server.js';
import { bytes, collect, get, put } from './helpers/streams.js';
import { answersPlainPing, startTlsRedis, type TlsRedisServer } from './helpers/tls.js';

afterAll(closeAll);

// -------------------------------------------------------------------------------------------------
// Helpers

/** CLIENT LIST, one record per connection. */
async function clientList(redis: Redis): Promise<Record<string, string>[]> {
  const text = (await redis.client('LIST')) as string;
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) =>
      Object.fromEntries(
        line
          .trim()
          .split(' ')
          .map((field) => [field.slice(0, field.indexOf('=')), field.slice(field.indexOf('=') + 1)]),
      ),
    );
}

/**
 * Connect once (no retries) and PING. Returns whether it worked, and the 'error' events seen
 * (ioredis rejects the command with a bare "Connection is closed."; the reason is in the event).
 */
async function tryConnect(url: string, options: RedisOptions = {}): Promise<{ ok: boolean; events: Error[] }> {
  const client = new Redis(url, {
    ...options,
    lazyConnect: true,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
    connectTimeout: 5000,
  });
  const events: Error[] = [];
  client.on('error', (err: Error) => events.push(err));
  try {
    await client.connect();
    return { ok: (await client.ping()) === 'PONG', events };
  } catch {
    return { ok: false, events };
  } finally {
    client.disconnect();
  }
}

/** The rejection of `promise` (fails the test when it resolves). */
async function rejection(promise: Promise<unknown>): Promise<Error> {
  const result = await promise.then(
    () => undefined,
    (err: unknown) => err,
  );
  if (!(result instanceof Error)) throw new Error(`expected a rejection with an Error, got ${String(result)}`);
  return result;
}

/**
 * A source that yields `data` in `parts` pieces with a pause before each: a slow upload, so that
 * the writer's heartbeats run (time is the subject of its pauses).
 */
function slowSource(data: Buffer, parts: number, pauseMs: number): Readable {
  const size = Math.ceil(data.length / parts);
  return Readable.from(
    (async function* () {
      for (let offset = 0; offset < data.length; offset += size) {
        await sleep(pauseMs);
        yield data.subarray(offset, offset + size);
      }
    })(),
  );
}

/**
 * Start a follower that waits for `key` (which must not exist yet); resolves once it is blocked in
 * XREAD, with what it will receive (wrapped: an async function would wait for a returned promise).
 */
async function startFollower(
  client: Redis,
  admin: Redis,
  key: string,
  options: KeyOptions = {},
): Promise<{ received: Promise<Buffer> }> {
  const blockedBefore = (await clientList(admin)).filter((c) => c.cmd === 'xread').length;
  const received = collect(createRedisReadStream(subject(client), key, { ...options, waitForCreate: 15_000 }));
  received.catch(() => {}); // awaited by the caller; do not report it as unhandled meanwhile
  await eventually(
    async () => (await clientList(admin)).filter((c) => c.cmd === 'xread').length > blockedBefore,
    'the follower to block in XREAD',
  );
  return { received };
}

/**
 * Everything the package does, with `client`: a follower waiting for the file before the writer
 * creates it, a slow writer (so that heartbeats run), full and range reads, stat, an overwrite with
 * a TTL, an upload destroyed half-way (abort) and continued with `resume`, and remove. Every Lua
 * script of the package runs, except the repair after a refused write (out of memory), whose
 * commands the resume runs too.
 */
async function scenario(client: Redis, admin: Redis, options: KeyOptions = {}): Promise<void> {
  const key = uniqueKey('scenario');
  const data = bytes(200 * 1024 + 5, 21);
  const chunkSize = 16 * 1024;

  const { received: follower } = await startFollower(client, admin, key, options);
  await pipeline(
    slowSource(data, 8, 15),
    createRedisWriteStream(subject(client), key, { ...options, chunkSize, heartbeatInterval: 10 }),
  );
  expect((await follower).equals(data)).toBe(true);
  expect((await get(client, key, options)).equals(data)).toBe(true);
  expect((await get(client, key, { ...options, start: 1000, end: 99_999 })).equals(data.subarray(1000, 100_000))).toBe(
    true,
  );
  expect(await stat(subject(client), key, options)).toMatchObject({
    key,
    state: 'complete',
    size: data.length,
    ttl: undefined,
  });

  // Overwrite, with a TTL.
  const second = bytes(50_000, 22);
  await put(client, key, second, { ...options, chunkSize, overwrite: true, ttl: 600 });
  expect((await get(client, key, options)).equals(second)).toBe(true);
  expect((await stat(subject(client), key, options)).ttl).toBeGreaterThan(500);

  // An upload destroyed half-way (the file is marked aborted), continued with resume from the
  // size its last heartbeat recorded.
  const third = bytes(120 * 1024, 23);
  const writer = createRedisWriteStream(subject(client), key, {
    ...options,
    chunkSize,
    overwrite: true,
    heartbeatInterval: 10,
  });
  writer.on('error', () => {});
  writer.write(third.subarray(0, 70 * 1024));
  await eventually(
    async () => (await stat(subject(client), key, options)).size >= 64 * 1024,
    'the heartbeat to record progress',
  );
  writer.destroy();
  await new Promise((resolve) => writer.once('close', resolve));
  const partial = await stat(subject(client), key, options);
  expect(partial).toMatchObject({ state: 'aborted', size: 64 * 1024 });
  await pipeline(
    Readable.from([third.subarray(partial.size)]),
    createRedisWriteStream(subject(client), key, { ...options, resume: true }),
  );
  expect((await get(client, key, options)).equals(third)).toBe(true);

  expect(await remove(subject(client), key, options)).toBe(true);
  expect(await remove(subject(client), key, options)).toBe(false);
  await expect(stat(subject(client), key, options)).rejects.toMatchObject({ code: ErrorCodes.NOT_FOUND });
}

// -------------------------------------------------------------------------------------------------
// TLS

describe('TLS', () => {
  let tls: TlsRedisServer;
  let redis: Redis;

  beforeAll(async () => {
    tls = await startTlsRedis();
    redis = connect(tls.url, { tls: tls.clientTls() });
  });
  afterAll(async () => {
    await closeAll();
    await tls?.stop();
  });

  it('the server speaks TLS only: a plain client, or one that does not trust the CA, cannot connect', async () => {
    expect(tls.url).toBe(`rediss://127.0.0.1:${tls.tlsPort}`);
    // Plain RESP gets no answer on the TLS port, and the plain port used to start it is closed.
    expect(await answersPlainPing(tls.tlsPort)).toBe(false);
    expect(await answersPlainPing(tls.server.port)).toBe(false);
    expect((await tryConnect(`redis://127.0.0.1:${tls.tlsPort}`)).ok).toBe(false);
    // The server's certificate is really checked: without the test CA the handshake fails.
    const untrusted = await tryConnect(tls.url, { tls: {} });
    expect(untrusted.ok).toBe(false);
    expect(untrusted.events.map((e) => e.message).join('\n')).toMatch(/unable to verify|self.signed|certificate/i);
    // The TLS client works, on the TLS port.
    expect(await redis.ping()).toBe('PONG');
    expect((await redis.client('INFO')) as string).toContain(` laddr=127.0.0.1:${tls.tlsPort} `);
  });

  it('writes and reads back a file of a few hundred KiB', async () => {
    const key = uniqueKey('tls-roundtrip');
    const data = bytes(300 * 1024 + 7, 11);
    await put(redis, key, data, { chunkSize: 64 * 1024 }, [10_000, 65_536, 3]);
    expect((await get(redis, key)).equals(data)).toBe(true);
    expect(await stat(subject(redis), key)).toMatchObject({ state: 'complete', size: data.length, chunks: 5 });
    expect(await remove(subject(redis), key)).toBe(true);
  });

  it('a follower started before the writer gets the whole file over its own TLS connection', async () => {
    const key = uniqueKey('tls-follow');
    const data = bytes(400 * 1024 + 1, 12);
    const { received } = await startFollower(redis, redis, key);
    // Two connections now: the caller's, and the follower's duplicate blocked in XREAD. Both
    // are on the TLS port, the only port the server has.
    const clients = await clientList(redis);
    expect(clients.length).toBeGreaterThanOrEqual(2);
    for (const c of clients) expect(c.laddr).toBe(`127.0.0.1:${tls.tlsPort}`);
    await pipeline(slowSource(data, 10, 10), createRedisWriteStream(subject(redis), key, { chunkSize: 32 * 1024 }));
    expect((await received).equals(data)).toBe(true);
    expect(await remove(subject(redis), key)).toBe(true);
  });
});

describe('TLS with client certificates', () => {
  let tls: TlsRedisServer;

  beforeAll(async () => {
    tls = await startTlsRedis({ authClients: 'yes' });
  });
  afterAll(async () => {
    await closeAll();
    await tls?.stop();
  });

  it('refuses a client without a certificate', async () => {
    expect((await tryConnect(tls.url, { tls: tls.clientTls() })).ok).toBe(false);
    expect((await tryConnect(tls.url, { tls: tls.clientTls({ clientCertificate: true }) })).ok).toBe(true);
  });

  it("a follower's duplicated connection presents the client certificate too", async () => {
    const redis = connect(tls.url, { tls: tls.clientTls({ clientCertificate: true }) });
    const key = uniqueKey('mtls-follow');
    const data = bytes(100 * 1024 + 3, 13);
    const { received } = await startFollower(redis, redis, key);
    await put(redis, key, data, { chunkSize: 16 * 1024 });
    expect((await received).equals(data)).toBe(true);
    expect(await remove(subject(redis), key)).toBe(true);
  });
});

// -------------------------------------------------------------------------------------------------
// ACL

/**
 * The commands redis-file-stream sends, directly or from its Lua scripts: read from src/, then
 * checked with MONITOR and ACL LOG while the scenario above ran, and by dropping each one in turn
 * (the scenario fails without any one of them).
 * - direct: HGET HGETALL HMGET EXISTS TTL XADD XRANGE XREVRANGE XREAD, EVALSHA and EVAL (EVAL
 *   after NOSCRIPT: a new or restarted server);
 * - inside the scripts (Redis checks the ACL there too): TIME TYPE EXISTS HMGET HSET DEL EXPIRE
 *   PEXPIRE PERSIST XADD XRANGE XREVRANGE XLEN XDEL XSETID XINFO STREAM (an abort reads the
 *   stream's last id). With `waitReplicas`, also WAIT; with `maxRedisMemory`, INFO (from a script).
 * No MULTI/EXEC: the reader and stat read without transactions (before 0b533b3 they used them).
 */
const PACKAGE_COMMANDS = [
  'hget',
  'hgetall',
  'hmget',
  'hset',
  'del',
  'exists',
  'type',
  'ttl',
  'expire',
  'pexpire',
  'persist',
  'time',
  'xadd',
  'xrange',
  'xrevrange',
  'xread',
  'xlen',
  'xdel',
  'xsetid',
  'xinfo|stream',
  'evalsha',
  'eval',
  'evalsha_ro',
  'eval_ro',
];

/**
 * A user confined to the package's default namespace: its keys only, no pub/sub channels, and only
 * the package's commands, plus INFO, which ioredis sends to check that the server is ready
 * (without it ioredis warns and skips the check; or connect with `enableReadyCheck: false`).
 * HELLO/AUTH (the login) and QUIT need no grant.
 */
const APP_RULES = ['~rfs:*', 'resetchannels', '-@all', '+info', ...PACKAGE_COMMANDS.map((c) => `+${c}`)];

describe('ACL: a user confined to the package namespace', () => {
  const adminPassword = 'admin-secret';
  let server: RedisServer;
  let admin: Redis;
  let app: Redis;
  let noScripts: Redis;
  let noTime: Redis;
  let noXrange: Redis;

  /** Every key on the server matching `pattern` (as the admin). */
  function keys(pattern: string): Promise<string[]> {
    return admin.keys(pattern);
  }

  beforeAll(async () => {
    server = await startRedis({ password: adminPassword });
    admin = connect(server.url);
    await admin.acl('SETUSER', 'rfs-app', 'reset', 'on', '>app-secret', ...APP_RULES);
    await admin.acl('SETUSER', 'rfs-noscripts', 'reset', 'on', '>noscripts-secret', ...APP_RULES, '-@scripting');
    app = connect(`redis://127.0.0.1:${server.port}`, { username: 'rfs-app', password: 'app-secret' });
    noScripts = connect(`redis://127.0.0.1:${server.port}`, {
      username: 'rfs-noscripts',
      password: 'noscripts-secret',
    });
    await admin.acl('SETUSER', 'rfs-notime', 'reset', 'on', '>notime-secret', ...APP_RULES, '-time');
    noTime = connect(`redis://127.0.0.1:${server.port}`, { username: 'rfs-notime', password: 'notime-secret' });
    // The package's commands and a channel receiver's, but no XRANGE.
    const receiverRules = ['+xgroup', '+xreadgroup', '+xack', '-xrange'];
    await admin.acl('SETUSER', 'rfs-noxrange', 'reset', 'on', '>noxrange-secret', ...APP_RULES, ...receiverRules);
    noXrange = connect(`redis://127.0.0.1:${server.port}`, { username: 'rfs-noxrange', password: 'noxrange-secret' });
  });
  afterAll(async () => {
    await closeAll();
    await server?.stop();
  });

  it('the ACL is in force: the user cannot touch other keys or run other commands', async () => {
    expect(await app.hgetall('rfs:nothing')).toEqual({});
    expect((await clientList(admin)).map((c) => c.user)).toContain('rfs-app');
    await expect(app.set('other:x', '1')).rejects.toThrow(/NOPERM/);
    await expect(app.hget('other:x', 'f')).rejects.toThrow(/NOPERM.*key/i);
    await expect(app.keys('*')).rejects.toThrow(/NOPERM.*'keys'/);
    await expect(app.flushall()).rejects.toThrow(/NOPERM.*'flushall'/);
    await admin.acl('LOG', 'RESET');
  });

  it('follow (waitForCreate), write, read, stat, overwrite with TTL, resume and remove all work, with no denial', async () => {
    await admin.acl('LOG', 'RESET');
    await admin.script('FLUSH'); // so that the first EVALSHA meets NOSCRIPT and EVAL runs too
    await scenario(app, admin);
    expect(await denials(admin, 'rfs-app')).toEqual([]);
    expect(await keys('*')).toSatisfy((all: string[]) => all.every((k) => k.startsWith('rfs:')));
  });

  it('a prefix outside the key pattern fails with ERR_REDIS_FILE_REDIS naming the key, the operation and NOPERM', async () => {
    const key = uniqueKey('wrong-prefix');
    const options = { prefix: 'other:' };
    // Redis 7.0: "NOPERM this user has no permissions to access one of the keys used as arguments";
    // 7.2+: "NOPERM No permissions to access a key".
    const noKeyAccess = /NOPERM .*permissions to access .*key/i;

    const check = (err: Error, operation: string): void => {
      expect(err).toBeInstanceOf(RedisFileError);
      expect(err).toMatchObject({ code: ErrorCodes.REDIS, key });
      expect(err.message).toContain(`File ${JSON.stringify(key)}: ${operation} failed: NOPERM`);
      expect(err.message).toMatch(noKeyAccess);
      expect(err.cause).toBeInstanceOf(replyErrorClass());
      expect((err.cause as Error).message).toMatch(noKeyAccess);
    };

    check(await rejection(put(app, key, bytes(10_000, 1), options)), 'creating the file');
    check(await rejection(get(app, key, options)), 'reading the metadata');
    // A follower fails at once too, instead of waiting out waitForCreate.
    const started = Date.now();
    check(await rejection(get(app, key, { ...options, waitForCreate: 10_000 })), 'reading the metadata');
    expect(Date.now() - started).toBeLessThan(5000);
    check(await rejection(stat(subject(app), key, options)), 'stat');
    check(await rejection(remove(subject(app), key, options)), 'remove');

    expect(await keys('other:*')).toEqual([]);
    expect(await keys(`*${key}*`)).toEqual([]);
  });

  it('a user without scripting gets ERR_REDIS_FILE_REDIS naming evalsha, and nothing is stored', async () => {
    const key = uniqueKey('no-scripts');
    const data = bytes(50_000, 2);

    const err = await rejection(put(noScripts, key, data, { chunkSize: 16 * 1024 }));
    expect(err).toBeInstanceOf(RedisFileError);
    expect(err).toMatchObject({ code: ErrorCodes.REDIS, key });
    // Redis 7.0: "NOPERM this user has no permissions to run the 'evalsha' command" (7.2+ names the user).
    expect(err.message).toMatch(
      new RegExp(
        `^File ${JSON.stringify(key)}: creating the file failed: NOPERM .*has no permissions to run the 'evalsha' command \\(check the ACL rules of the Redis user: ACL LOG names what was denied\\)$`,
      ),
    );
    expect(err.cause).toBeInstanceOf(replyErrorClass());
    expect((err.cause as Error).message).toMatch(/^NOPERM .*'evalsha'/);
    expect(await keys(`*${key}*`)).toEqual([]);

    // Reads need no scripts: the same user reads a file another user wrote, but cannot remove it.
    await put(app, key, data, { chunkSize: 16 * 1024 });
    expect((await get(noScripts, key)).equals(data)).toBe(true);
    expect(await stat(subject(noScripts), key)).toMatchObject({ state: 'complete', size: data.length });
    const removeErr = await rejection(remove(subject(noScripts), key));
    expect(removeErr).toMatchObject({ code: ErrorCodes.REDIS, key });
    expect(removeErr.message).toMatch(/: remove failed: NOPERM .*'evalsha'/);
    expect((await get(app, key)).equals(data)).toBe(true);
    expect(await remove(subject(app), key)).toBe(true);
    expect(await keys(`*${key}*`)).toSatisfy((left: string[]) => left.every((k) => k.endsWith(':events')));
  });

  it('a range read that Redis refuses fails with ERR_REDIS_FILE_REDIS naming the read, for a file and a channel', async () => {
    const check = (err: Error, key: string, operation: string): void => {
      expect(err).toBeInstanceOf(RedisFileError);
      expect(err).toMatchObject({ code: ErrorCodes.REDIS, key });
      expect(err.message).toContain(`${JSON.stringify(key)}: ${operation} failed: NOPERM`);
      expect(err.message).toMatch(/'xrange'/);
      expect(err.cause).toBeInstanceOf(replyErrorClass());
    };
    const key = uniqueKey('no-xrange');
    await put(app, key, bytes(10_000, 4));
    check(await rejection(get(noXrange, key)), key, 'reading after entry 0-0');

    // A receiver meets a close announcement and reads the channel on to see whether anything
    // was announced after it.
    const channel = uniqueKey('no-xrange-channel');
    await closeChannel(subject(app), channel);
    const received: string[] = [];
    const receiving = (async () => {
      for await (const f of receiveFiles(subject(noXrange), channel, { consumer: 'r' })) received.push(f.key);
    })();
    check(await rejection(receiving), channel, 'reading the channel');
    expect(received).toEqual([]);
  });

  it('a command missing inside a script fails the call with ERR_REDIS_FILE_REDIS, and nothing is stored', async () => {
    // Every script starts with TIME: without it, creating the file fails before anything is written.
    // Redis 7.0's message does not name the command denied inside the script ("ERR The user
    // executing the script can't run this command or subcommand script: <sha>, on
    // @user_script:<line>."); 7.2+ does ("ERR ACL failure in script: User ... has no permissions to
    // run the 'time' command ..."). ACL LOG always does.
    const key = uniqueKey('no-time');
    await admin.acl('LOG', 'RESET');
    const err = await rejection(put(noTime, key, bytes(10_000, 3)));
    expect(err).toBeInstanceOf(RedisFileError);
    expect(err).toMatchObject({ code: ErrorCodes.REDIS, key });
    expect(err.message).toMatch(
      new RegExp(
        `^File ${JSON.stringify(key)}: creating the file failed: ERR (The user executing the script can't run this command|ACL failure in script)`,
      ),
    );
    expect(err.cause).toBeInstanceOf(replyErrorClass());
    expect(await denials(admin, 'rfs-notime')).toEqual(['lua:time']);
    expect(await keys(`*${key}*`)).toEqual([]);
  });
});
