/**
 * The memory guard: a writer with `maxRedisMemory` holds back while Redis is over the limit, woken
 * by freed memory (acknowledgements, trimming), and a file larger than the limit goes through
 * while its consumers follow it.
 */
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisReadStream, createRedisWriteStream, removeChannel } from '../src/index.js';
import { MemoryGuard } from '../src/memory-guard.js';
import { portOf } from '../src/redis/port.js';
import {
  blockedIn,
  clientList,
  closeAll,
  connect,
  connectSubject,
  subject,
  uniqueConnectionName,
} from './helpers/clients.js';
import { eventually } from './helpers/eventually.js';
import { fileKeysOf, filesPattern, keyPattern } from './helpers/keys.js';
import { finish, killAll, receiver, sender } from './helpers/processes.js';
import { type RedisServer, startRedis } from './helpers/redis-server.js';
import { bytes, collect, sha256 } from './helpers/streams.js';

let server: RedisServer;
let admin: Redis;
let dir: string;
beforeAll(async () => {
  server = await startRedis();
  admin = connect(server.url);
  dir = mkdtempSync(join(tmpdir(), 'rfs-memory-guard-'));
});
afterAll(async () => {
  killAll();
  await closeAll();
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function usedMemory(): Promise<number> {
  return Number(/^used_memory:(\d+)/m.exec(await admin.info('memory'))![1]);
}

async function infoCalls(): Promise<number> {
  return Number(/cmdstat_info:calls=(\d+)/.exec(await admin.info('commandstats'))?.[1] ?? 0);
}

describe('maxRedisMemory', () => {
  it('a guard closed while it frees memory opens no connection afterwards', async () => {
    const name = uniqueConnectionName('guard-closed');
    const client = connectSubject(server.url, { connectionName: name });
    const named = async (): Promise<number> =>
      (await clientList(admin)).split('\n').filter((l) => l.includes(` name=${name} `)).length;
    let relieved!: (freed: boolean) => void;
    let relieving!: () => void;
    const asked = new Promise<void>((resolve) => (relieving = resolve));
    // A limit of 1 byte: always over it, so the guard frees what it can, then would wait.
    const guard = new MemoryGuard(
      portOf(client),
      1,
      'guard-closed:events',
      'guard-closed',
      () => 0,
      1024,
      () => {
        relieving();
        return new Promise<boolean>((resolve) => (relieved = resolve));
      },
    );
    const admitted = guard.admit(1000) as Promise<void>;
    await asked;
    guard.close(); // the writer is destroyed while the relief is on its way
    relieved(false);
    await admitted;
    expect(await named()).toBe(1); // the client's own connection only: no blocking one
  });

  it('a file four times larger than the limit goes through while its consumers follow it', async () => {
    const MiB = 1024 * 1024;
    const limit = (await usedMemory()) + 8 * MiB;
    const data = bytes(32 * MiB, 81);
    const readers = ['a', 'b'].map((consumer) => {
      const client = connect(server.url, { connectionName: 'big-reader' });
      return collect(createRedisReadStream(subject(client), 'big', { consumer, waitForCreate: 10_000 }));
    });
    let peak = 0;
    let sampling = true;
    // A sample of used_memory every 20 ms: time is the subject of this loop.
    const sampler = (async () => {
      while (sampling) {
        peak = Math.max(peak, await usedMemory());
        await sleep(20);
      }
    })();
    await eventually(async () => (await blockedIn(admin, 'big-reader')) === 2, 'both consumers to wait for the file');
    await pipeline(
      Readable.from([data]),
      createRedisWriteStream(connectSubject(server.url), 'big', {
        consumers: ['a', 'b'],
        maxRedisMemory: limit,
        chunkSize: 256 * 1024,
        maxInFlight: 4,
      }),
    );
    const outputs = await Promise.all(readers);
    sampling = false;
    await sampler;
    for (const out of outputs) expect(sha256(out)).toBe(sha256(data));
    console.log(
      `memory guard: limit ${(limit / MiB).toFixed(1)} MiB, peak ${(peak / MiB).toFixed(1)} MiB, file ${data.length / MiB} MiB`,
    );
    // Over the limit by at most the window of chunks in flight and what the consumers have not yet passed.
    expect(peak).toBeLessThan(limit + 8 * MiB);
    expect(await admin.keys(keyPattern('big'))).toEqual([]);
  });

  it('holds back while over the limit, without polling, and resumes when an acknowledgement frees memory', async () => {
    const MiB = 1024 * 1024;
    // A file nobody has read yet fills Redis past the writer's limit.
    await pipeline(
      Readable.from([bytes(16 * MiB, 82)]),
      createRedisWriteStream(subject(admin), 'filler', { consumers: 1 }),
    );
    const limit = (await usedMemory()) - 4 * MiB;
    const data = bytes(4 * MiB, 83);
    const writer = createRedisWriteStream(connectSubject(server.url, { connectionName: 'held' }), 'held', {
      maxRedisMemory: limit,
      chunkSize: 64 * 1024,
    });
    const writing = pipeline(Readable.from([data]), writer);
    await eventually(async () => (await blockedIn(admin, 'held')) === 1, 'the writer to wait for freed memory');
    const callsBefore = await infoCalls();
    // Time is the subject: how often the held-back writer reads INFO in a second and a half.
    await sleep(1500);
    expect(writer.committedBytes).toBeLessThan(data.length);
    // Waiting is a blocking read on the freed-memory events: a reading of INFO per second at most.
    expect((await infoCalls()) - callsBefore).toBeLessThanOrEqual(4);
    await collect(createRedisReadStream(subject(admin), 'filler', { consumer: 'only' }));
    expect(await admin.exists(fileKeysOf('filler').meta)).toBe(0);
    await writing;
    expect(sha256(await collect(createRedisReadStream(subject(admin), 'held')))).toBe(sha256(data));
  });

  it('through a channel too: a file larger than the limit reaches every receiver process', async () => {
    const MiB = 1024 * 1024;
    const limit = (await usedMemory()) + 6 * MiB;
    const data = bytes(24 * MiB, 84);
    const path = join(dir, 'big.bin');
    writeFileSync(path, data);
    const receivers = ['r1', 'r2'].map((consumer) => receiver(server.url, 'big-chan', consumer));
    const send = sender(server.url, 'big-chan', {
      files: [{ path }],
      send: { consumers: 2, maxRedisMemory: limit },
      close: true,
    });
    for (const r of receivers)
      expect((await finish(r)).map((f) => [f.name, f.offset, f.sha256])).toEqual([['big.bin', 0, sha256(data)]]);
    expect((await send.exited).code).toBe(0);
    expect(await removeChannel(subject(admin), 'big-chan')).toBe(true);
    expect(await admin.keys(filesPattern('big-chan/*'))).toEqual([]);
  });

  it('a reader that is not a consumer cannot read chunks already trimmed', async () => {
    const writer = createRedisWriteStream(subject(admin), 'trimmed', {
      consumers: ['c'],
      maxRedisMemory: 1024 * 1024 * 1024,
      chunkSize: 1000,
    });
    await once(writer, 'ready');
    // As a writer held back by its limit marks the file: from then on consumed chunks are trimmed.
    await admin.hset(fileKeysOf('trimmed').meta, 'pressure', '1');
    const reading = collect(createRedisReadStream(subject(admin), 'trimmed', { consumer: 'c', waitForCreate: 5000 }));
    writer.write(bytes(5000));
    await eventually(
      async () => Number(await admin.hget(fileKeysOf('trimmed').meta, 'trimmed')) > 0,
      'the consumer to trim a chunk',
    );
    await expect(collect(createRedisReadStream(subject(admin), 'trimmed'))).rejects.toMatchObject({
      code: 'ERR_REDIS_FILE_NOT_FOUND',
      message: /trimmed/,
    });
    writer.end(bytes(5000));
    await once(writer, 'finish');
    expect((await reading).length).toBe(10_000);
  });
});
