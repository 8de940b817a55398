/**
 * Proves the test harness itself: private servers from startRedis(), the shared server
 * from the global setup, and the clients of the library under test that the tests hand the package.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { Redis as ValkeyRedis } from 'iovalkey';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  clientList,
  closeAll,
  connect,
  connectSubject,
  sharedRedisUrl,
  subject,
  subjectClientName,
  subjectReady,
  uniqueConnectionName,
  uniqueKey,
} from './helpers/clients.js';
import { eventually } from './helpers/eventually.js';
import { isPortFree, type RedisServer, startRedis } from './helpers/redis-server.js';

const servers: RedisServer[] = [];

async function start(...args: Parameters<typeof startRedis>): Promise<RedisServer> {
  const server = await startRedis(...args);
  servers.push(server);
  return server;
}

afterEach(async () => {
  await closeAll();
  await Promise.all(servers.splice(0).map((s) => s.stop()));
});
afterAll(closeAll);

describe('startRedis', () => {
  it('starts a private server on 127.0.0.1 that SET/GET works against', async () => {
    const server = await start();
    expect(server.host).toBe('127.0.0.1');
    expect(server.url).toBe(`redis://127.0.0.1:${server.port}`);
    expect(existsSync(server.dir)).toBe(true);
    expect(server.pid).toBeTypeOf('number');

    const redis = connect(server.url);
    expect(await redis.set('greeting', 'hello')).toBe('OK');
    expect(await redis.get('greeting')).toBe('hello');
    expect(await redis.config('GET', 'bind')).toEqual(['bind', '127.0.0.1']);
    expect(await redis.config('GET', 'dir')).toEqual(['dir', expect.stringContaining(server.dir.split('/').pop()!)]);
    expect(await redis.config('GET', 'appendonly')).toEqual(['appendonly', 'no']);
    expect(await redis.config('GET', 'save')).toEqual(['save', '']);
  });

  it('passes extra args to redis-server, after the defaults', async () => {
    const server = await start({
      args: ['--maxmemory', '3mb', '--maxmemory-policy', 'noeviction', '--appendonly', 'yes'],
    });
    const redis = connect(server.url);
    expect(await redis.config('GET', 'maxmemory')).toEqual(['maxmemory', String(3 * 1024 * 1024)]);
    expect(await redis.config('GET', 'maxmemory-policy')).toEqual(['maxmemory-policy', 'noeviction']);
    expect(await redis.config('GET', 'appendonly')).toEqual(['appendonly', 'yes']);
  });

  it('restart() keeps the port, and data written with --appendonly yes survives it', async () => {
    const server = await start({ args: ['--appendonly', 'yes'] });
    const before = connect(server.url);
    await before.set('kept', 'value');
    await before.rpush('list', 'a', 'b', 'c');
    const pid = server.pid;
    before.disconnect();

    await server.restart();
    expect(server.pid).not.toBe(pid);

    const after = connect(server.url);
    expect(await after.get('kept')).toBe('value');
    expect(await after.lrange('list', 0, -1)).toEqual(['a', 'b', 'c']);
    expect(await after.set('more', '1')).toBe('OK');
  });

  it('without persistence, data is gone after restart() (the default is --save "" --appendonly no)', async () => {
    const server = await start();
    const before = connect(server.url);
    await before.set('volatile', 'x');
    before.disconnect();
    await server.restart();
    const after = connect(server.url);
    expect(await after.get('volatile')).toBeNull();
  });

  it('kill() is a crash: restart() then brings back what appendfsync always wrote', async () => {
    const server = await start({ args: ['--appendonly', 'yes', '--appendfsync', 'always'] });
    const before = connect(server.url);
    await before.set('durable', 'yes');
    before.disconnect();
    await server.kill();
    expect(server.pid).toBeUndefined();
    await server.restart();
    const after = connect(server.url);
    expect(await after.get('durable')).toBe('yes');
  });

  it('stop() waits for the process to exit, frees the port and removes the dir', async () => {
    const server = await start();
    const redis = connect(server.url);
    expect(await redis.ping()).toBe('PONG');
    redis.disconnect();
    await server.stop();
    expect(server.pid).toBeUndefined();
    expect(existsSync(server.dir)).toBe(false);
    expect(await isPortFree(server.port)).toBe(true);
    await server.stop(); // idempotent
  });

  it('starts with a password (readiness check copes with NOAUTH) and puts it in the url', async () => {
    const server = await start({ password: 'p@ss word' });
    expect(server.url).toBe(`redis://:p%40ss%20word@127.0.0.1:${server.port}`);
    const withoutPassword = new Redis({
      host: '127.0.0.1',
      port: server.port,
      lazyConnect: true,
      protocol: 2, // ioredis 6 defaults to RESP3, whose HELLO already fails with NOAUTH
      enableReadyCheck: false,
      retryStrategy: () => null,
    });
    try {
      await withoutPassword.connect();
      await expect(withoutPassword.ping()).rejects.toThrow(/NOAUTH/);
    } finally {
      withoutPassword.disconnect();
    }
    const redis = connect(server.url);
    expect(await redis.ping()).toBe('PONG');
  });

  it('starts with an ACL file whose default user is off', async () => {
    const setup = await start();
    const aclfile = join(setup.dir, 'users.acl');
    writeFileSync(aclfile, 'user default off\nuser app on >secret ~* &* +@all\n');
    const server = await start({ args: ['--aclfile', aclfile] });
    const redis = connect(`redis://app:secret@127.0.0.1:${server.port}`);
    expect(await redis.acl('WHOAMI')).toBe('app');
  });

  it('fails with a clear error that includes the server output when redis-server cannot start', async () => {
    const error = await startRedis({ args: ['--maxmemory-policy', 'not-a-policy'] }).then(
      () => new Error('expected startRedis to fail'),
      (err: unknown) => err as Error,
    );
    expect(error.message).toMatch(/did not come up \(exited with code 1\)/);
    expect(error.message).toContain('--maxmemory-policy not-a-policy');
    expect(error.message).toMatch(/--- server output ---[\s\S]*maxmemory-policy/);
  });
});

describe('shared server (global setup)', () => {
  it('answers PING at inject("redisUrl")', async () => {
    const url = sharedRedisUrl();
    expect(url).toMatch(/^redis:\/\/127\.0\.0\.1:\d+$/);
    const redis = connect();
    expect(await redis.ping()).toBe('PONG');
  });

  it('uniqueKey() never repeats and names the test file', async () => {
    const a = uniqueKey('x');
    const b = uniqueKey('x');
    expect(a).not.toBe(b);
    expect(a).toMatch(/^test:harness:[0-9a-f]{8}:x:\d+$/);
    const redis = connect();
    await redis.set(a, '1');
    await redis.set(b, '2');
    expect(await redis.mget(a, b)).toEqual(['1', '2']);
    await redis.del(a, b);
  });

  it('closeAll() disconnects every client', async () => {
    const one = connect();
    const two = connect();
    await Promise.all([one.ping(), two.ping()]);
    await closeAll();
    expect(one.status).toBe('end');
    expect(two.status).toBe('end');
  });
});

describe('the client under test (subject)', () => {
  it('is a client of the library RFS_CLIENT names, the same one for the same client', () => {
    const library = subjectClientName();
    expect(library).toBe(process.env.RFS_CLIENT || 'ioredis');
    const redis = connect();
    const made = subject(redis);
    expect(subject(redis)).toBe(made);
    expect(subject(made)).toBe(made);
    if (library === 'ioredis') expect(made).toBe(redis);
    if (library === 'iovalkey') expect(made).toBeInstanceOf(ValkeyRedis);
    // node-redis's clients are made by createClient(), not by a class of its API.
    if (library === 'node-redis') expect(made).toHaveProperty('sendCommand', expect.any(Function));
  });

  it('connects to the same server under the same name, and only it (connectSubject)', async () => {
    const name = uniqueConnectionName('subject');
    const made = connectSubject(undefined, { connectionName: name });
    await subjectReady(made);
    const named = (await clientList(connect())).split('\n').filter((line) => line.includes(` name=${name} `));
    expect(named).toHaveLength(1);
  });

  it('logs in as the same user, on the same database', async () => {
    const server = await start();
    const admin = connect(server.url);
    await admin.acl('SETUSER', 'app', 'on', '>secret', '~*', '&*', '+@all');
    const name = uniqueConnectionName('subject-user');
    const made = connectSubject(`redis://app:secret@127.0.0.1:${server.port}/3`, { connectionName: name });
    await subjectReady(made);
    const line = (await clientList(admin)).split('\n').find((l) => l.includes(` name=${name} `));
    expect(line).toMatch(/ user=app /);
    expect(line).toMatch(/ db=3 /);
  });

  it('closeAll() closes the subjects too', async () => {
    const name = uniqueConnectionName('subject-close');
    await subjectReady(connectSubject(undefined, { connectionName: name }));
    await closeAll();
    const probe = connect();
    await eventually(
      async () => !(await clientList(probe)).includes(` name=${name} `),
      'the subject connection to be closed',
    );
  });
});
